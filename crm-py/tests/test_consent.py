from __future__ import annotations

import datetime

import pytest

import crm

UTC = datetime.timezone.utc


def test_consent_ledger_answers_with_the_latest_record(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana")
    assert db.has_consent(c["id"], "newsletter", "email") is False
    assert db.consent(c["id"], "newsletter") is None
    granted = db.record_consent(
        c["id"],
        "newsletter",
        "granted",
        legal_basis="consent",
        source="signup-form",
        proof="checkbox v3",
        recorded_at=datetime.datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert granted["status"] == "granted"
    assert granted["channel"] is None
    assert granted["legal_basis"] == "consent"
    assert granted["recorded_at"] == datetime.datetime(2024, 1, 1, tzinfo=UTC)
    assert db.has_consent(c["id"], "newsletter", "email") is True
    db.record_consent(c["id"], "newsletter", "withdrawn", channel="email")
    assert db.has_consent(c["id"], "newsletter", "email") is False
    current = db.consent(c["id"], "newsletter", "email")
    assert current is not None and current["status"] == "withdrawn"
    history = db.consent_history(c["id"])
    assert [r["status"] for r in history] == ["withdrawn", "granted"]
    assert db.consent_history(c["id"], "other") == []


def test_record_consent_rejects_bad_input(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana")
    cases = [
        ({"purpose": "News Letter!", "status": "granted"}, "purpose"),
        ({"purpose": "newsletter", "status": "maybe"}, "status"),
        ({"purpose": "newsletter", "status": "granted", "legal_basis": "because"}, "legal_basis"),
        ({"purpose": "newsletter", "status": "granted", "recorded_at": "soon"}, "recorded_at"),
    ]
    for kwargs, field in cases:
        with pytest.raises(crm.ValidationError) as info:
            db.record_consent(c["id"], **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(crm.NotFoundError):
        db.record_consent("01900000-0000-7000-8000-000000000000", "newsletter", "granted")
