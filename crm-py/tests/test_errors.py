from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import crm

ERRORS = [
    crm.NotFoundError,
    crm.ValidationError,
    crm.ParseError,
    crm.ConflictError,
    crm.IncompatibleDatabaseError,
    crm.CorruptDatabaseError,
    crm.BusyError,
    crm.ClosedError,
    crm.StorageError,
]


def test_every_error_is_a_crm_error_and_nothing_else() -> None:
    assert issubclass(crm.CrmError, Exception)
    for error in ERRORS:
        assert issubclass(error, crm.CrmError)
        assert not issubclass(error, (ValueError, RuntimeError, KeyError, OSError))
        assert error.__module__ == "crm"


def test_invalid_email_raises_validation_error_naming_the_element(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as info:
        db.create_customer(name="Ana", emails=["secret-address"])
    err = info.value
    assert err.field == "emails[0]"
    assert err.reason == "not a valid email address"
    assert err.row is None
    # Messages never repeat the value (it may be personal data).
    assert "secret-address" not in str(err)
    assert "emails[0]" in str(err)


def test_validation_errors_survive_pickling(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as info:
        db.create_customer(name="Ana", emails=["nope"])
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is crm.ValidationError
    assert (copy.field, copy.reason, copy.row) == ("emails[0]", "not a valid email address", None)


def test_wrong_python_types_raise_validation_error_naming_the_field(db: crm.Crm) -> None:
    cases = [
        ({"name": b"Ana"}, "name"),
        ({"name": 42}, "name"),
        ({"name": "Ana", "emails": "ana@example.com"}, "emails"),
        ({"name": "Ana", "emails": ["ok@example.com", 7]}, "emails[1]"),
        ({"name": "Ana", "tags": [b"x"]}, "tags[0]"),
        ({"name": "Ana", "attributes": {"score": float("nan")}}, "attributes.score"),
        ({"name": "Ana", "attributes": {"score": float("inf")}}, "attributes.score"),
        ({"name": "Ana", "attributes": {"big": 2**60}}, "attributes.big"),
        ({"name": "Ana", "attributes": {"blob": b"x"}}, "attributes.blob"),
        ({"name": "Ana", "attributes": {"Bad Key": 1}}, "attributes.Bad Key"),
        ({"name": "Ana", "attributes": ["x"]}, "attributes"),
        ({"name": "Ana", "birth_date": "17.5.1990"}, "birth_date"),
        ({"name": "Ana", "birth_date": 1990}, "birth_date"),
        ({"name": "Ana", "organization_id": "not-a-uuid"}, "organization_id"),
        ({"name": "Ana", "addresses": [{"street": "x"}]}, "addresses[0].street"),
        ({"name": "Ana", "addresses": {"city": "x"}}, "addresses"),
        ({"name": "Ana", "kind": "robot"}, "kind"),
        ({"nmae": "Ana"}, "nmae"),
        ({"name": "\ud800"}, "name"),
        ({}, "name"),
    ]
    for fields, field in cases:
        with pytest.raises(crm.ValidationError) as info:
            db.create_customer(**fields)  # type: ignore[arg-type]
        assert info.value.field == field, fields
    for bad_id in (42, "nope", None):
        with pytest.raises(crm.ValidationError) as info:
            db.get_customer(bad_id)  # type: ignore[arg-type]
        assert info.value.field == "id"
    assert db.count_customers() == 0


def test_duplicate_email_raises_conflict_error(db: crm.Crm) -> None:
    db.create_customer(name="Ana", emails=["ana@example.com"], external_id="e1")
    with pytest.raises(crm.ConflictError) as info:
        db.create_customer(name="Other Ana", emails=["ANA@example.com"])
    assert info.value.field.startswith("email")
    assert info.value.reason
    with pytest.raises(crm.ConflictError):
        db.create_customer(name="Again", external_id="e1")
    assert db.count_customers() == 1


def test_missing_id_raises_not_found_error(db: crm.Crm) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    for call in (db.get_customer, db.delete_customer):
        with pytest.raises(crm.NotFoundError):
            call(missing)
    with pytest.raises(crm.NotFoundError) as info:
        db.update_customer(missing, owner="x")
    assert info.value.entity == "customer"


def test_closed_handle_raises_closed_error(db_path: Path) -> None:
    db = crm.open(db_path)
    as_maja = db.with_actor("maja")
    db.create_customer(name="Ana")
    db.close()
    db.close()
    for call in (db.count_customers, as_maja.count_customers, lambda: db.create_customer(name="B")):
        with pytest.raises(crm.ClosedError):
            call()
    with crm.open(db_path) as reopened:
        assert reopened.count_customers() == 1


def test_context_manager_closes_even_on_error(db_path: Path) -> None:
    with pytest.raises(KeyError):
        with crm.open(db_path) as db:
            db.create_customer(name="Ana")
            raise KeyError("boom")
    with pytest.raises(crm.ClosedError):
        db.count_customers()
    with crm.Crm(str(db_path)) as again:
        assert again.count_customers() == 1


def test_newer_schema_raises_incompatible_database_error_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(crm.IncompatibleDatabaseError) as info:
        crm.open(path)
    assert info.value.found == 99
    assert info.value.supported == crm.SCHEMA_VERSION
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.db"]


def test_a_non_crm_sqlite_file_raises_corrupt_database_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(crm.CorruptDatabaseError):
        crm.open(path)
    assert path.read_bytes() == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(crm.CorruptDatabaseError):
        crm.open(garbage)


def test_a_locked_database_raises_busy_error(db_path: Path) -> None:
    # The lock is held by another process: two copies of SQLite in one
    # process (Python's and crm's) don't see each other's locks.
    holder = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
        "c.execute('ROLLBACK')\n"
    )
    with crm.open(db_path, busy_timeout_ms=50) as db:
        db.create_customer(name="Ana")
        proc = subprocess.Popen(
            [sys.executable, "-c", holder, str(db_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
            with pytest.raises(crm.BusyError):
                db.create_customer(name="Bo")
            assert db.count_customers() == 1  # reads still work (WAL)
        finally:
            proc.communicate("", timeout=30)
        db.create_customer(name="Bo")
        assert db.count_customers() == 2


def test_open_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(crm.ValidationError) as info:
        crm.open(default_region="Atlantis")
    assert info.value.field == "default_region"
    with pytest.raises(crm.ValidationError) as info:
        crm.open(busy_timeout_ms=-1)
    assert info.value.field == "busy_timeout_ms"
    with pytest.raises(crm.ValidationError) as info:
        crm.open(42)  # type: ignore[arg-type]
    assert info.value.field == "path"
    with pytest.raises(crm.StorageError):
        crm.open(tmp_path / "missing-dir" / "x.db")


def test_default_region_reads_national_phone_numbers() -> None:
    with crm.open(default_region="si") as db:
        assert db.create_customer(name="Ana", phones=["040 123 456"])["phones"] == ["+38640123456"]
    with crm.open() as db:
        with pytest.raises(crm.ValidationError) as info:
            db.create_customer(name="Ana", phones=["040 123 456"])
        assert info.value.field == "phones[0]"
