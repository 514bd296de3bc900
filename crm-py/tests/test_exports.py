from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import pytest

import crm


def fill(db: crm.Crm) -> None:
    db.create_customer(name="Acme d.o.o.", kind="organization", external_id="acme")
    ana = db.create_customer(
        first_name="Ana",
        last_name="Novak",
        emails=["ana@example.com", "ana.novak@example.com"],
        phones=["+38640123456"],
        tags=["vip", "newsletter"],
        attributes={"plan": "pro", "seats": 3, "active": True},
        addresses=[{"label": "home", "city": "Ljubljana", "country": "SI"}],
        birth_date=datetime.date(1990, 5, 17),
        locale="sl-SI",
        country="SI",
        lifecycle_stage="customer",
        owner="maja",
        source="web",
    )
    db.log_interaction(ana["id"], "purchase", amount_minor=1299, currency="EUR", metadata={"order": 1})
    db.log_interaction(ana["id"], "note", subject="Likes, \"quotes\"\nand newlines")


def comparable(c: crm.Customer) -> dict[str, object]:
    return {k: v for k, v in c.items() if k not in ("id", "created_at", "updated_at", "organization_id")}


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_then_import_round_trips_customers(db: crm.Crm, tmp_path: Path, fmt: str) -> None:
    fill(db)
    path = tmp_path / f"customers.{fmt}"
    assert db.export_customers(path, format=fmt) == 2  # type: ignore[arg-type]
    with crm.open() as copy:
        importer = copy.import_customers_csv if fmt == "csv" else copy.import_customers_ndjson
        assert importer(path)["inserted"] == 2
        originals = sorted(map(comparable, db.iter_customers()), key=lambda c: str(c["name"]))
        copies = sorted(map(comparable, copy.iter_customers()), key=lambda c: str(c["name"]))
        assert copies == originals


def test_export_interactions_writes_every_row(db: crm.Crm, tmp_path: Path) -> None:
    fill(db)
    csv_path = tmp_path / "interactions.csv"
    assert db.export_interactions(csv_path) == 2
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == ["purchase", "note"]
    assert rows[0]["amount_minor"] == "1299"
    assert rows[1]["subject"] == 'Likes, "quotes"\nand newlines'
    ndjson_path = tmp_path / "interactions.ndjson"
    assert db.export_interactions(ndjson_path, format="ndjson") == 2
    lines = [json.loads(line) for line in ndjson_path.read_text().splitlines()]
    assert lines[0]["metadata"] == {"order": 1}
    # The export imports back into the same database (ids resolve).
    assert db.import_interactions_ndjson(ndjson_path, ignore=["id", "created_at"])["inserted"] == 2
    assert db.count_interactions() == 4


def test_export_errors(db: crm.Crm, tmp_path: Path) -> None:
    fill(db)
    with pytest.raises(crm.ValidationError) as info:
        db.export_customers(tmp_path / "x.parquet", format="parquet")  # type: ignore[arg-type]
    assert info.value.field == "format"
    with pytest.raises(crm.StorageError):
        db.export_customers(tmp_path / "no-such-dir" / "x.csv")
    db.close()
    target = tmp_path / "closed.csv"
    with pytest.raises(crm.ClosedError):
        db.export_customers(target)
    assert not target.exists()
