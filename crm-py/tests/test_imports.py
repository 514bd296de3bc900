from __future__ import annotations

import _thread
import datetime
import decimal
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crm


class Stop(Exception):
    pass


def people(n: int) -> list[dict[str, Any]]:
    return [{"name": f"Person {i}", "email": f"p{i}@example.com"} for i in range(n)]


def test_import_customers_from_dicts(db: crm.Crm) -> None:
    report = db.import_customers(
        [
            {"name": "Ana", "emails": ["ana@example.com"], "tags": ["vip"], "attr.plan": "pro"},
            {"first_name": "Bo", "last_name": "Berg", "phone": "+386 40 123 456", "birth_date": datetime.date(1990, 1, 2)},
            {"name": "Acme", "kind": "organization", "external_id": "acme", "attributes": {"seats": 10}},
            {"name": "Cid", "organization_external_id": "acme"},
        ]
    )
    assert report == {"rows": 4, "inserted": 4, "updated": 0, "rejected": 0, "errors": []}
    ana = db.find_customer_by_email("ana@example.com")
    assert ana is not None and ana["attributes"] == {"plan": "pro"} and ana["tags"] == ["vip"]
    bo = db.search("berg")[0]["customer"]
    assert bo["phones"] == ["+38640123456"] and bo["birth_date"] == datetime.date(1990, 1, 2)
    acme = db.find_customer_by_external_id("acme")
    assert acme is not None
    cid = db.search("cid")[0]["customer"]
    assert cid["organization_id"] == acme["id"]


def test_all_or_nothing_import_rolls_back_on_a_bad_row(db: crm.Crm) -> None:
    rows = people(5)
    rows[3]["email"] = "not-an-email"
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(rows)
    assert (info.value.row, info.value.field) == (4, "emails[0]")
    assert "nothing was imported" in str(info.value)
    assert db.count_customers() == 0


def test_skip_invalid_reports_row_and_field_and_applies_the_rest(db: crm.Crm) -> None:
    rows = people(5)
    rows[1]["email"] = "broken"
    rows[3]["name"] = ""
    report = db.import_customers(rows, mode="skip_invalid")
    assert report["rows"] == 5
    assert report["inserted"] == 3
    assert report["rejected"] == 2
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "emails[0]"), (4, "name")]
    assert db.count_customers() == 3
    limited = crm.open().import_customers(rows, mode="skip_invalid", max_errors=1)
    assert limited["rejected"] == 2 and len(limited["errors"]) == 1


def test_import_customers_with_upsert_updates_matches(db: crm.Crm) -> None:
    db.create_customer(name="Ana", external_id="a1")
    report = db.import_customers(
        [{"external_id": "a1", "name": "Ana", "owner": "maja"}, {"external_id": "b1", "name": "Bo"}], upsert=True
    )
    assert (report["inserted"], report["updated"]) == (1, 1)
    ana = db.find_customer_by_external_id("a1")
    assert ana is not None and ana["owner"] == "maja"
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers([{"external_id": "a1", "name": "Ana"}])
    assert info.value.row == 1


def test_an_unknown_key_in_records_is_named(db: crm.Crm) -> None:
    report = db.import_customers([{"name": "Ana"}, {"nmae": "Bo"}], mode="skip_invalid")
    assert report["inserted"] == 1
    [error] = report["errors"]
    assert (error["row"], error["field"]) == (2, "nmae")
    assert "did you mean 'name'" in error["reason"]
    with pytest.raises(crm.ValidationError) as info:
        crm.open().import_customers([{"name": "Ana"}, {"nmae": "Bo"}])
    assert (info.value.row, info.value.field) == (2, "nmae")


def test_python_values_that_are_not_json_abort_the_import(db: crm.Crm) -> None:
    for bad, field in (({"name": b"Ana"}, "name"), ({"name": "Ana", "attr.score": float("nan")}, "attr.score")):
        rows = people(3) + [bad] + people(2)
        with pytest.raises(crm.ValidationError) as info:
            db.import_customers(rows, mode="skip_invalid")
        assert (info.value.row, info.value.field) == (4, field)
        assert db.count_customers() == 0
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(people(1) + ["not a dict"])  # type: ignore[list-item]
    assert info.value.row == 2
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(42)  # type: ignore[arg-type]
    assert info.value.field == "records"


def test_import_reads_records_lazily_from_a_generator(db: crm.Crm) -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for row in people(1000):
            pulled += 1
            yield row

    assert db.import_customers(rows())["inserted"] == 1000
    assert pulled == 1000
    assert db.count_customers() == 1000


def test_an_exception_in_the_records_iterable_rolls_back_and_propagates(db: crm.Crm) -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield from people(600)
        raise Stop("source failed")

    with pytest.raises(Stop, match="source failed"):
        db.import_customers(rows(), mode="skip_invalid")
    assert db.count_customers() == 0


def test_progress_callback_is_called(db: crm.Crm) -> None:
    seen: list[crm.ImportProgress] = []
    rows = people(5)
    rows[2]["email"] = "bad"
    report = db.import_customers(rows, mode="skip_invalid", progress=seen.append, progress_every=2)
    assert report["rows"] == 5
    assert seen[:2] == [{"rows": 2, "applied": 2, "rejected": 0}, {"rows": 4, "applied": 3, "rejected": 1}]
    assert seen[-1] == {"rows": 5, "applied": 4, "rejected": 1}


def test_an_exception_in_the_progress_callback_stops_the_import_and_rolls_back(db: crm.Crm, tmp_path: Path) -> None:
    def progress(p: crm.ImportProgress) -> None:
        if p["rows"] >= 200:
            raise Stop(p["rows"])

    with pytest.raises(Stop) as info:
        db.import_customers(people(5000), progress=progress, progress_every=100)
    assert "rolled back" in info.value.__notes__[0]
    assert db.count_customers() == 0

    csv_path = tmp_path / "people.csv"
    csv_path.write_text("name,email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(5000)))
    with pytest.raises(Stop):
        db.import_customers_csv(csv_path, progress=progress, progress_every=100)
    assert db.count_customers() == 0
    ndjson_path = tmp_path / "people.ndjson"
    ndjson_path.write_text("".join(json.dumps(r) + "\n" for r in people(5000)))
    with pytest.raises(Stop):
        db.import_customers_ndjson(ndjson_path, progress=progress, progress_every=100)
    assert db.count_customers() == 0


def test_an_exception_in_the_last_progress_call_is_raised_after_the_commit(db: crm.Crm) -> None:
    # The last call comes once everything is read (here: after the commit);
    # the exception still propagates, and its note says the rows are in.
    def progress(p: crm.ImportProgress) -> None:
        if p["rows"] == 10:
            raise Stop()

    with pytest.raises(Stop) as info:
        db.import_customers(people(10), progress=progress)
    assert "committed (10 inserted, 0 updated, 0 rejected)" in info.value.__notes__[0]
    assert db.count_customers() == 10


def test_the_callback_cannot_deadlock_by_calling_back_into_the_database(db: crm.Crm, file_db: crm.Crm) -> None:
    for handle in (db, file_db):

        def use_the_same_database(_: crm.ImportProgress) -> None:
            handle.count_customers()

        with pytest.raises(crm.BusyError):
            handle.import_customers(people(3000), progress=use_the_same_database, progress_every=1)
        assert handle.count_customers() == 0

        def records() -> Iterator[dict[str, Any]]:
            yield {"name": "A"}
            handle.with_actor("someone").create_customer(name="B")

        with pytest.raises(crm.BusyError):
            handle.import_customers(records())
        assert handle.count_customers() == 0
    # Another database has its own lock: a callback may use it.
    other = crm.open()
    db.import_customers(people(2), progress=lambda p: other.create_customer(name=f"log {p['rows']}"), progress_every=1)
    assert other.count_customers() == 3


def test_csv_with_a_misspelled_column_names_it(db: crm.Crm, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,emial\nAna,ana@example.com\n")
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers_csv(path)
    assert info.value.field == "emial"
    assert "did you mean 'email'" in str(info.value)
    assert db.count_customers() == 0


def test_csv_import_with_mapping_and_ignore(db: crm.Crm, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("Full Name,E-mail,Notes,Plan\nAna Novak,ana@example.com,likes tea,pro\nBo,bad,,\n")
    report = db.import_customers_csv(
        str(path),
        mapping={"name": "Full Name", "email": "E-mail", "attr.plan": "Plan"},
        ignore=["Notes"],
        mode="skip_invalid",
    )
    assert (report["inserted"], report["rejected"]) == (1, 1)
    assert report["errors"] == [{"row": 2, "field": "emails[0]", "reason": "not a valid email address"}]
    ana = db.find_customer_by_email("ana@example.com")
    assert ana is not None and ana["attributes"] == {"plan": "pro"}
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers_csv(path, mapping={"nmae": "Full Name"})
    assert info.value.field == "mapping.nmae"
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers_csv(path, mapping=["name"])  # type: ignore[arg-type]
    assert info.value.field == "mapping"


def test_ndjson_import(db: crm.Crm, tmp_path: Path) -> None:
    path = tmp_path / "people.ndjson"
    path.write_text('{"name": "Ana", "tags": ["a", "b"]}\n\n{"name": "Bo", "emails": ["x"]}\nnot json\n')
    report = db.import_customers_ndjson(path, mode="skip_invalid")
    assert report["inserted"] == 1
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "emails[0]"), (4, "")]


def test_import_interactions_from_dicts_csv_and_ndjson(db: crm.Crm, tmp_path: Path) -> None:
    ana = db.create_customer(name="Ana", external_id="ana", emails=["ana@example.com"])
    report = db.import_interactions(
        [
            {"customer_id": ana["id"], "kind": "purchase", "amount": decimal.Decimal("12.99"), "currency": "EUR"},
            {"customer_external_id": "ana", "kind": "note", "occurred_at": datetime.datetime(2024, 5, 1, 10, 0)},
            {"customer_email": "ana@example.com", "kind": "call", "metadata": {"duration_s": 60}},
            {"customer_external_id": "nobody", "kind": "note"},
        ],
        mode="skip_invalid",
    )
    assert (report["inserted"], report["rejected"]) == (3, 1)
    assert report["errors"][0]["row"] == 4
    purchase = db.timeline(ana["id"], kind="purchase")["items"][0]
    assert purchase["amount_minor"] == 1299
    note = db.timeline(ana["id"], kind="note")["items"][0]
    assert note["occurred_at"] == datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)

    csv_path = tmp_path / "interactions.csv"
    csv_path.write_text("customer_external_id,kind,amount,currency\nana,purchase,5.00,EUR\n")
    assert db.import_interactions_csv(csv_path)["inserted"] == 1
    ndjson_path = tmp_path / "interactions.ndjson"
    ndjson_path.write_text('{"customer_email": "ana@example.com", "kind": "email", "subject": "Hi"}\n')
    assert db.import_interactions_ndjson(ndjson_path)["inserted"] == 1
    assert db.count_interactions() == 5
    with pytest.raises(crm.ValidationError) as info:
        db.import_interactions([{"customer_id": ana["id"], "kind": "note", "amount_minor": 1.5}])
    assert (info.value.row, info.value.field) == (1, "amount_minor")


def test_import_options_are_checked(db: crm.Crm) -> None:
    for kwargs, field in (
        ({"mode": "best_effort"}, "mode"),
        ({"upsert": 1}, "upsert"),
        ({"max_errors": -1}, "max_errors"),
        ({"progress": "print"}, "progress"),
        ({"progress_every": "often"}, "progress_every"),
    ):
        with pytest.raises(crm.ValidationError) as info:
            db.import_customers(people(1), **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_import_from_a_missing_file_raises_storage_error(db: crm.Crm, tmp_path: Path) -> None:
    with pytest.raises(crm.StorageError):
        db.import_customers_csv(tmp_path / "missing.csv")
    with pytest.raises(crm.StorageError):
        db.import_interactions_ndjson(tmp_path / "missing.ndjson")


def test_ctrl_c_stops_an_import_and_rolls_back(file_db: crm.Crm, tmp_path: Path) -> None:
    started = threading.Event()

    def endless() -> Iterator[dict[str, Any]]:
        for i in range(10_000_000):
            if i == 2_000:
                started.set()
            yield {"name": f"P{i}"}

    def press_ctrl_c() -> None:
        started.wait(30)
        _thread.interrupt_main()

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            file_db.import_customers(endless())
    finally:
        presser.join()
    assert "rolled back" in info.value.__notes__[0]
    assert file_db.count_customers() == 0
