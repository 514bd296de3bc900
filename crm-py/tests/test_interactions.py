from __future__ import annotations

import datetime
import decimal
import zoneinfo

import pytest

import crm

UTC = datetime.timezone.utc


@pytest.fixture
def ana(db: crm.Crm) -> crm.Customer:
    return db.create_customer(name="Ana Novak", external_id="ana-1", emails=["ana@example.com"])


def test_log_interaction_keeps_money_in_minor_units(db: crm.Crm, ana: crm.Customer) -> None:
    i = db.log_interaction(
        ana["id"],
        "Purchase",
        amount_minor=12_990,
        currency="eur",
        product="SKU-1",
        quantity=2,
        channel="Web",
        direction="inbound",
        subject="Order 1",
        metadata={"order": {"lines": [1, 2]}, "coupon": None, "ratio": 0.5},
    )
    assert i["kind"] == "purchase"
    assert i["amount_minor"] == 12_990 and isinstance(i["amount_minor"], int)
    assert i["currency"] == "EUR"
    assert i["channel"] == "web"
    assert i["direction"] == "inbound"
    assert i["customer_id"] == ana["id"]
    assert i["metadata"] == {"order": {"lines": [1, 2]}, "coupon": None, "ratio": 0.5}
    assert db.get_interaction(i["id"]) == i


def test_metadata_nested_too_deeply_is_a_validation_error_not_a_crash(db: crm.Crm, ana: crm.Customer) -> None:
    deep: object = 1
    for _ in range(200_000):
        deep = [deep]
    with pytest.raises(crm.ValidationError) as info:
        db.log_interaction(ana["id"], "note", metadata={"x": deep})
    assert info.value.field.startswith("metadata")
    assert "nested too deeply" in info.value.reason
    assert db.timeline(ana["id"])["items"] == []


def test_log_interaction_names_the_customer_by_id_external_id_or_email(db: crm.Crm, ana: crm.Customer) -> None:
    for ref in (ana["id"], {"id": ana["id"]}, {"external_id": "ana-1"}, {"email": "ANA@example.com"}):
        assert db.log_interaction(ref, "note")["customer_id"] == ana["id"]  # type: ignore[arg-type]
    for bad in ({"id": ana["id"], "email": "ana@example.com"}, {"phone": "1"}, {}, 42, ["x"]):
        with pytest.raises(crm.ValidationError) as info:
            db.log_interaction(bad, "note")  # type: ignore[arg-type]
        assert info.value.field == "customer"
    with pytest.raises(crm.NotFoundError):
        db.log_interaction({"external_id": "nobody"}, "note")


def test_occurred_at_accepts_datetimes_dates_and_iso_strings(db: crm.Crm, ana: crm.Customer) -> None:
    cet = zoneinfo.ZoneInfo("Europe/Ljubljana")
    cases = [
        (datetime.datetime(2024, 5, 1, 12, 0, tzinfo=cet), datetime.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        (datetime.datetime(2024, 5, 1, 12, 0), datetime.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        (datetime.date(2024, 5, 1), datetime.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01 12:00:00", datetime.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        (
            datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
            datetime.datetime(2024, 5, 1, 17, 0, 0, 123456, tzinfo=UTC),
        ),
    ]
    for given, expected in cases:
        i = db.log_interaction(ana["id"], "call", occurred_at=given)
        assert i["occurred_at"] == expected, given
        assert i["occurred_at"].tzinfo is UTC


def test_log_interaction_rejects_wrong_types_naming_the_field(db: crm.Crm, ana: crm.Customer) -> None:
    cases = [
        ({"amount_minor": 12.5, "currency": "EUR"}, "amount_minor"),
        ({"amount_minor": 12.0, "currency": "EUR"}, "amount_minor"),
        ({"amount_minor": True, "currency": "EUR"}, "amount_minor"),
        ({"amount_minor": decimal.Decimal("1"), "currency": "EUR"}, "amount_minor"),
        ({"amount_minor": 2**70, "currency": "EUR"}, "amount_minor"),
        ({"amount_minor": 100}, "currency"),
        ({"subject": b"bytes"}, "subject"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": 1714557600}, "occurred_at"),
        ({"score": 11}, "score"),
        ({"quantity": -1}, "quantity"),
        ({"direction": "sideways"}, "direction"),
        ({"metadata": {"x": float("nan")}}, "metadata.x"),
        ({"metadata": {"x": b"raw"}}, "metadata.x"),
        ({"metadata": {1: "x"}}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"colour": "red"}, "colour"),
    ]
    for fields, field in cases:
        with pytest.raises(crm.ValidationError) as info:
            db.log_interaction(ana["id"], "purchase", **fields)  # type: ignore[arg-type]
        assert info.value.field == field, fields
    with pytest.raises(crm.ValidationError) as info:
        db.log_interaction(ana["id"], "not a kind!")
    assert info.value.field == "kind"
    assert db.count_interactions() == 0


def test_timeline_is_newest_first_and_pages(db: crm.Crm, ana: crm.Customer) -> None:
    start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    for day in range(5):
        db.log_interaction(ana["id"], "note" if day % 2 else "email", occurred_at=start + datetime.timedelta(days=day))
    page = db.timeline(ana["id"], limit=2)
    assert [i["occurred_at"].day for i in page["items"]] == [5, 4]
    rest = db.timeline(ana["id"], limit=10, cursor=page["next_cursor"])
    assert [i["occurred_at"].day for i in rest["items"]] == [3, 2, 1]
    assert rest["next_cursor"] is None
    notes = db.timeline(ana["id"], kind="note")
    assert [i["occurred_at"].day for i in notes["items"]] == [4, 2]
    assert [i["occurred_at"].day for i in db.iter_timeline(ana["id"], page_size=2)] == [5, 4, 3, 2, 1]
    assert len(list(db.iter_timeline(ana["id"], kind="email"))) == 3
    with pytest.raises(crm.NotFoundError):
        db.timeline("01900000-0000-7000-8000-000000000000")


def test_count_interactions(db: crm.Crm, ana: crm.Customer) -> None:
    db.log_interaction(ana["id"], "note")
    db.log_interaction(ana["id"], "demo_booked")
    assert db.count_interactions() == 2


def test_get_interaction_missing_raises_not_found(db: crm.Crm) -> None:
    with pytest.raises(crm.NotFoundError) as info:
        db.get_interaction("01900000-0000-7000-8000-000000000000")
    assert info.value.entity == "interaction"
