from __future__ import annotations

import gc
import sys
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crm


class Recorder:
    """A listener that keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[crm.Change]] = []

    def __call__(self, changes: list[crm.Change]) -> None:
        self.batches.append(changes)

    @property
    def changes(self) -> list[crm.Change]:
        return [c for batch in self.batches for c in batch]


class Boom(Exception):
    pass


@pytest.fixture(params=["memory", "file"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[crm.Crm]:
    """An in-memory CRM, then one in a file."""
    with crm.open(":memory:" if request.param == "memory" else tmp_path / "crm.db") as handle:
        yield handle


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What reaches sys.unraisablehook during the test."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


# ----- change listeners ------------------------------------------------------


def test_a_listener_receives_created_updated_and_deleted_changes(db: crm.Crm) -> None:
    heard = Recorder()
    listener_id = db.add_change_listener(heard)
    assert isinstance(listener_id, int)
    ana = db.create_customer(name="Ana")
    # Told before the write returns.
    assert [(c["entity"], c["entity_id"], c["op"]) for c in heard.changes] == [
        ("customer", ana["id"], "created")
    ]
    db.update_customer(ana["id"], owner="maja")
    note = db.log_interaction(ana["id"], "note", subject="hi")
    db.delete_customer(ana["id"])
    assert [(c["entity"], c["entity_id"], c["op"]) for c in heard.changes] == [
        ("customer", ana["id"], "created"),
        ("customer", ana["id"], "updated"),
        ("interaction", note["id"], "created"),
        ("customer", ana["id"], "deleted"),
    ]
    assert heard.changes[1]["fields"] == ["owner"]
    # The same dicts as the change feed.
    assert heard.changes == db.changes_since()


def test_a_listener_hears_writes_through_every_handle_of_the_database(db: crm.Crm) -> None:
    heard = Recorder()
    db.add_change_listener(heard)
    db.with_actor("maja", source="app").create_customer(name="Ana")
    assert [(c["actor"], c["source"]) for c in heard.changes] == [("maja", "app")]


def test_a_write_that_changes_nothing_notifies_no_one(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana", owner="maja")
    heard = Recorder()
    db.add_change_listener(heard)
    db.update_customer(ana["id"], owner="maja")
    db.get_customer(ana["id"])
    assert heard.batches == []


def test_removing_a_listener_stops_it(db: crm.Crm) -> None:
    heard = Recorder()
    listener_id = db.add_change_listener(heard)
    db.create_customer(name="Ana")
    assert db.remove_change_listener(listener_id) is True
    db.create_customer(name="Bo")
    assert len(heard.changes) == 1
    assert db.remove_change_listener(listener_id) is False
    assert db.remove_change_listener(10**9) is False


def test_a_listener_may_remove_itself(db: crm.Crm) -> None:
    heard = Recorder()

    def once(changes: list[crm.Change]) -> None:
        heard(changes)
        assert db.remove_change_listener(listener_id)

    listener_id = db.add_change_listener(once)
    db.create_customer(name="Ana")
    db.create_customer(name="Bo")
    assert len(heard.changes) == 1


def test_a_listener_must_be_callable_and_ids_integers(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as info:
        db.add_change_listener("print")  # type: ignore[arg-type]
    assert info.value.field == "callback"
    with pytest.raises(crm.ValidationError) as info:
        db.remove_change_listener("1")  # type: ignore[arg-type]
    assert info.value.field == "listener_id"


def test_a_raising_listener_does_not_break_the_write_or_other_listeners(
    db: crm.Crm, unraisable: list[Any]
) -> None:
    def broken(changes: list[crm.Change]) -> None:
        raise Boom("listener bug")

    db.add_change_listener(broken)
    heard = Recorder()
    db.add_change_listener(heard)
    ana = db.create_customer(name="Ana")
    assert db.get_customer(ana["id"])["name"] == "Ana"
    assert [c["entity_id"] for c in heard.changes] == [ana["id"]]
    # Reported through sys.unraisablehook, once per batch, naming the listener.
    assert len(unraisable) == 1
    report = unraisable[0]
    assert report.exc_type is Boom
    assert str(report.exc_value) == "listener bug"
    assert report.object is broken
    assert any("write was committed" in n for n in report.exc_value.__notes__)
    db.create_customer(name="Bo")
    assert len(unraisable) == 2
    assert len(heard.changes) == 2


def test_a_listener_can_read_and_write_the_crm(any_db: crm.Crm) -> None:
    db = any_db
    names: list[str] = []

    def welcome(changes: list[crm.Change]) -> None:
        for c in changes:
            if (c["entity"], c["op"]) == ("customer", "created"):
                customer = db.get_customer(c["entity_id"])  # a read
                names.append(customer["name"])
                db.log_interaction(customer["id"], "note", subject="Welcome")  # a write

    heard = Recorder()
    db.add_change_listener(welcome)
    db.add_change_listener(heard)
    ana = db.create_customer(name="Ana")
    assert names == ["Ana"]
    timeline = db.timeline(ana["id"])["items"]
    assert [i["subject"] for i in timeline] == ["Welcome"]
    # The listener's own write is announced too, from inside its call: the
    # second listener hears it before the write that caused it.
    assert [(c["entity"], c["op"]) for c in heard.changes] == [
        ("interaction", "created"),
        ("customer", "created"),
    ]


def test_writes_from_several_threads_with_a_listener_do_not_deadlock(any_db: crm.Crm) -> None:
    db = any_db
    lock = threading.Lock()
    heard: dict[str, int] = {}  # entity id -> thread the listener ran on
    writers: dict[str, int] = {}  # customer id -> thread that created it

    def listener(changes: list[crm.Change]) -> None:
        for c in changes:
            with lock:
                heard[c["entity_id"]] = threading.get_ident()
            if (c["entity"], c["op"]) == ("customer", "created"):
                db.count_customers()  # a read and a write, from the writing thread
                db.log_interaction(c["entity_id"], "note", subject="seen")

    db.add_change_listener(listener)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                c = db.create_customer(name=f"T{t} C{i}")
                with lock:
                    writers[c["id"]] = threading.get_ident()
        except BaseException as e:
            errors.append(e)

    # Daemon threads: a deadlock fails the test instead of hanging it.
    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlocked"
    assert errors == []
    assert len(writers) == 80
    assert db.count_interactions() == 80
    assert len(heard) == 160
    # Each listener call ran on the thread that wrote.
    assert all(heard[i] == writers[i] for i in writers)


def test_a_bulk_import_delivers_its_changes_in_batches(file_db: crm.Crm) -> None:
    sizes: list[int] = []
    counts: list[int] = []
    threads: set[int] = set()

    def listener(changes: list[crm.Change]) -> None:
        sizes.append(len(changes))
        threads.add(threading.get_ident())
        # The import has committed: the listener may use the database, even
        # though it runs on the import's own thread.
        counts.append(file_db.count_customers())

    file_db.add_change_listener(listener)
    rows = [{"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(2500)]
    report = file_db.import_customers(rows)
    assert report["inserted"] == 2500
    assert sizes == [1000, 1000, 500]
    assert counts == [2500, 2500, 2500]
    assert threading.get_ident() not in threads


def test_a_rolled_back_import_notifies_no_one(db: crm.Crm) -> None:
    heard = Recorder()
    db.add_change_listener(heard)
    with pytest.raises(crm.ValidationError):
        db.import_customers([{"name": "Ana"}, {"name": "Bo", "email": "broken"}])
    assert heard.batches == []


def test_closing_unregisters_listeners(db_path: Path) -> None:
    db = crm.open(db_path)
    heard = Recorder()
    listener_id = db.add_change_listener(heard)
    gone = weakref.ref(heard)
    db.create_customer(name="Ana")
    db.close()
    assert db.remove_change_listener(listener_id) is False
    del heard
    gc.collect()
    assert gone() is None


# ----- customer cards ----------------------------------------------------------


def test_customer_cards_carry_list_fields_and_the_latest_interaction(db: crm.Crm) -> None:
    ana = db.create_customer(
        name="Ana",
        emails=["ana@example.com", "ana2@example.com"],
        phones=["+38640123456"],
        tags=["vip"],
        owner="maja",
        lifecycle_stage="customer",
    )
    db.log_interaction(ana["id"], "purchase", occurred_at="2024-05-01T10:00:00Z", amount_minor=100, currency="EUR")
    latest = db.log_interaction(ana["id"], "call", occurred_at="2024-06-01T10:00:00Z", subject="Follow-up")
    db.log_interaction(ana["id"], "note", occurred_at="2024-03-01T10:00:00Z")  # logged last, happened first
    bo = db.create_customer(name="Bo Org", kind="organization")
    page = db.list_customer_cards()
    assert page["next_cursor"] is None
    first, second = page["items"]
    assert first == {
        "id": ana["id"],
        "kind": "person",
        "name": "Ana",
        "email": "ana@example.com",
        "phone": "+38640123456",
        "lifecycle_stage": "customer",
        "owner": "maja",
        "tags": ["vip"],
        "latest_interaction": db.get_interaction(latest["id"]),
    }
    assert second["id"] == bo["id"] and second["kind"] == "organization"
    assert (second["email"], second["phone"], second["latest_interaction"]) == (None, None, None)


def test_customer_cards_page_with_a_cursor(db: crm.Crm) -> None:
    for i in range(7):
        db.create_customer(name=f"Customer {i}")
    seen: list[str] = []
    cursor = None
    while True:
        page = db.list_customer_cards(sort="name", descending=True, limit=3, cursor=cursor)
        assert len(page["items"]) <= 3
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Customer {i}" for i in reversed(range(7))]
    assert seen == [c["name"] for c in db.list_customers(sort="name", descending=True, limit=10)["items"]]


def test_customer_cards_check_their_arguments(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as info:
        db.list_customer_cards(sort="email")  # type: ignore[arg-type]
    assert info.value.field == "sort"
    with pytest.raises(crm.ValidationError) as info:
        db.list_customer_cards(limit=0)
    assert info.value.field == "limit"
    with pytest.raises(crm.ValidationError) as info:
        db.list_customer_cards(cursor="garbage")
    assert info.value.field == "cursor"
    with pytest.raises(TypeError):
        db.list_customer_cards("name")  # type: ignore[misc]
