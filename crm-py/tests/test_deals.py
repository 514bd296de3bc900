"""Pipelines, deals, the weighted forecast and tasks through the binding:
defaults, stage moves with their history, bad input raising typed errors
and storing nothing, pages, and overdue tasks."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import crm

STAGES: list[dict[str, Any]] = [
    {"name": "Lead", "probability": 10},
    {"name": "Qualified", "probability": 30},
    {"name": "Proposal", "probability": 60},
    {"name": "Won", "probability": 100, "closed": True, "won": True},
    {"name": "Lost", "probability": 0, "closed": True},
]


@pytest.fixture
def sales(db: crm.Crm) -> crm.Crm:
    db.create_pipeline("Sales", "EUR", STAGES)
    return db


def last_seq(db: crm.Crm) -> int:
    changes = db.changes_since(0, limit=10_000)
    return changes[-1]["seq"] if changes else 0


def test_pipelines_round_trip(db: crm.Crm) -> None:
    p = db.create_pipeline(" Sales ", "eur", STAGES)
    assert p["name"] == "Sales"
    assert p["currency"] == "EUR"
    assert p["stages"][0] == {"name": "Lead", "probability": 10, "closed": False, "won": False}
    assert p["stages"][3]["won"] is True
    assert db.pipeline("Sales") == p
    assert [x["name"] for x in db.pipelines()] == ["Sales"]
    with pytest.raises(crm.ConflictError):
        db.create_pipeline("Sales", "EUR", STAGES)
    with pytest.raises(crm.NotFoundError):
        db.pipeline("Nope")


def test_bad_pipelines_raise_and_store_nothing(db: crm.Crm) -> None:
    before = last_seq(db)
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EUR", [])
    assert e.value.field == "stages"
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EURO", STAGES)
    assert e.value.field == "currency"
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EUR", [*STAGES, {"name": "lead", "probability": 5}])
    assert e.value.field == "stages[5].name"
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EUR", [{"name": "Won", "probability": 100, "closed": True, "won": True}])
    assert e.value.field == "stages"
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EUR", [{"name": "Lead"}])
    assert e.value.field == "stages[0].probability"
    with pytest.raises(crm.ValidationError) as e:
        db.create_pipeline("Sales", "EUR", [{"name": "Lead", "probability": 10, "colour": "red"}])
    assert e.value.field == "stages[0].colour"
    assert db.pipelines() == []
    assert last_seq(db) == before


def test_deals_take_their_defaults_from_the_pipeline(sales: crm.Crm) -> None:
    acme = sales.create_customer(kind="organization", name="Acme")
    ana = sales.create_customer(name="Ana")
    deal = sales.create_deal(
        pipeline="Sales",
        title="Solar roof",
        value_minor=1_250_000,
        owner="maja",
        expected_close=datetime.date(2030, 1, 31),
        customer_id=ana["id"],
        organization_id=acme["id"],
    )
    assert deal["stage"] == "Lead"
    assert deal["currency"] == "EUR"
    assert deal["probability"] == 10
    assert deal["probability_override"] is None
    assert deal["status"] == "open"
    assert deal["expected_close"] == datetime.date(2030, 1, 31)
    assert sales.get_deal(deal["id"]) == deal
    # The same through a dict.
    again = sales.create_deal({"pipeline": "Sales", "title": "Heat pump", "value_minor": 5})
    assert again["stage"] == "Lead"
    page = sales.deals(customer_id=acme["id"])
    assert [d["id"] for d in page["items"]] == [deal["id"]]
    assert page["next_cursor"] is None


def test_bad_deals_raise_and_store_nothing(sales: crm.Crm) -> None:
    ana = sales.create_customer(name="Ana")
    before = last_seq(sales)
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=100, currency="USD")
    assert e.value.field == "currency"
    assert "USD" in str(e.value) and "EUR" in str(e.value)
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=100, stage="Proposl")
    assert e.value.field == "stage"
    assert "did you mean 'Proposal'" in str(e.value)
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=100, organization_id=ana["id"])
    assert e.value.field == "organization_id"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=-1)
    assert e.value.field == "value_minor"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof")
    assert e.value.field == "value_minor"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=1, colour="red")
    assert e.value.field == "colour"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_deal(pipeline="Sales", title="Roof", value_minor=1, stage="Lost")
    assert e.value.field == "close_reason"
    with pytest.raises(crm.NotFoundError):
        sales.create_deal(pipeline="Nope", title="Roof", value_minor=1)
    assert sales.deals()["items"] == []
    assert last_seq(sales) == before


def test_moves_close_reopen_and_keep_history(sales: crm.Crm) -> None:
    deal = sales.create_deal(pipeline="Sales", title="Roof", value_minor=1_000)
    deal = sales.move_deal(deal["id"], "Proposal")
    assert (deal["probability"], deal["status"]) == (60, "open")

    before = last_seq(sales)
    with pytest.raises(crm.ValidationError) as e:
        sales.move_deal(deal["id"], "Lost")
    assert e.value.field == "reason"
    with pytest.raises(crm.ValidationError) as e:
        sales.move_deal(deal["id"], "Lots", reason="price")
    assert "did you mean 'Lost'" in str(e.value)
    assert last_seq(sales) == before
    assert sales.get_deal(deal["id"]) == deal

    lost = sales.move_deal(deal["id"], "Lost", reason="price")
    assert (lost["status"], lost["probability"], lost["close_reason"]) == ("lost", 0, "price")
    assert isinstance(lost["closed_at"], datetime.datetime)
    reopened = sales.move_deal(deal["id"], "Qualified", "came back")
    assert (reopened["status"], reopened["close_reason"], reopened["closed_at"]) == ("open", None, None)
    won = sales.move_deal(deal["id"], "Won")
    assert (won["status"], won["probability"]) == ("won", 100)

    history = sales.deal_history(deal["id"])
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [
        (None, "Lead", None),
        ("Lead", "Proposal", None),
        ("Proposal", "Lost", "price"),
        ("Lost", "Qualified", "came back"),
        ("Qualified", "Won", None),
    ]
    assert all(h["rule"] is None for h in history)


def test_update_deal_and_clear_fields(sales: crm.Crm) -> None:
    deal = sales.create_deal(pipeline="Sales", title="Roof", value_minor=1_000, owner="maja")
    updated = sales.update_deal(deal["id"], value_minor=2_000, probability=45)
    assert (updated["value_minor"], updated["probability"], updated["probability_override"]) == (2_000, 45, 45)
    cleared = sales.update_deal(deal["id"], {"probability": None, "owner": None})
    assert (cleared["probability"], cleared["owner"]) == (10, None)
    assert sales.get_deal(deal["id"]) == cleared
    change = sales.changes_since(0, limit=10_000)[-1]
    assert (change["entity"], change["op"]) == ("deal", "updated")
    assert change["fields"] == ["owner", "probability"]
    with pytest.raises(crm.ValidationError) as e:
        sales.update_deal(deal["id"], stage="Won")
    assert e.value.field == "stage"
    with pytest.raises(crm.ValidationError):
        sales.update_deal(deal["id"], title=None)


def test_forecast_weighs_each_deal_exactly(sales: crm.Crm) -> None:
    for title, value, stage, probability, owner, day in [
        ("a", 1_001, "Lead", None, "maja", 1),
        ("b", 1_005, "Lead", None, "maja", 10),
        ("c", 999, "Proposal", 33, "rok", 20),
        ("d", 5_000, "Won", None, "rok", 5),
    ]:
        sales.create_deal(
            pipeline="Sales",
            title=title,
            value_minor=value,
            stage=stage,
            probability=probability,
            owner=owner,
            expected_close=datetime.date(2030, 3, day),
        )
    f = sales.forecast("Sales")
    assert (f["pipeline"], f["currency"]) == ("Sales", "EUR")
    assert [(s["stage"], s["deals"], s["value_minor"], s["weighted_minor"]) for s in f["stages"]] == [
        ("Lead", 2, 2_006, 201),
        ("Qualified", 0, 0, 0),
        ("Proposal", 1, 999, 330),
    ]
    assert (f["total_minor"], f["weighted_minor"]) == (3_005, 531)
    assert sales.forecast("Sales", owner="maja")["total_minor"] == 2_006
    early = sales.forecast("Sales", close_from=datetime.date(2030, 3, 1), close_to="2030-03-10")
    assert early["total_minor"] == 2_006
    with pytest.raises(crm.ValidationError):
        sales.forecast("Sales", close_from="2030-03-10", close_to="2030-03-01")


def test_stages_holding_deals_are_kept(sales: crm.Crm) -> None:
    deal = sales.create_deal(pipeline="Sales", title="Roof", value_minor=1, stage="Qualified")
    without = [s for s in STAGES if s["name"] != "Qualified"]
    with pytest.raises(crm.ConflictError) as e:
        sales.update_pipeline_stages("Sales", without)
    assert "holds 1 deal" in str(e.value)
    reweighed = [dict(s, probability=40) if s["name"] == "Qualified" else s for s in STAGES]
    assert sales.update_pipeline_stages("Sales", reweighed)["stages"][1]["probability"] == 40
    assert sales.get_deal(deal["id"])["probability"] == 40
    with pytest.raises(crm.ConflictError):
        sales.delete_pipeline("Sales")
    sales.delete_deal(deal["id"])
    with pytest.raises(crm.NotFoundError):
        sales.get_deal(deal["id"])
    sales.delete_pipeline("Sales")
    assert sales.pipelines() == []


def test_deals_page(sales: crm.Crm) -> None:
    for i in range(5):
        sales.create_deal(pipeline="Sales", title=f"deal {i}", value_minor=1, owner="maja" if i % 2 else "rok")
    titles: list[str] = []
    cursor = None
    while True:
        page = sales.deals(pipeline="Sales", limit=2, cursor=cursor)
        titles += [d["title"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert titles == [f"deal {i}" for i in range(5)]
    assert len(sales.deals(owner="maja")["items"]) == 2
    assert len(sales.deals(pipeline="Sales", stage="Lead", status="open")["items"]) == 5
    assert sales.deals(status="won")["items"] == []
    with pytest.raises(crm.ValidationError):
        sales.deals(status="closed")


def test_tasks(sales: crm.Crm) -> None:
    ana = sales.create_customer(name="Ana")
    deal = sales.create_deal(pipeline="Sales", title="Roof", value_minor=1)
    now = datetime.datetime.now(datetime.UTC)
    ids = []
    for i, days in enumerate([3, 1, 2, -1]):
        t = sales.create_task(
            title=f"task {i}",
            owner="rok" if i == 2 else "maja",
            due_at=now - datetime.timedelta(days=days),
            customer_id=ana["id"],
            deal_id=deal["id"] if i == 0 else None,
        )
        assert (t["status"], t["priority"], t["rule"]) == ("open", "normal", None)
        ids.append(t["id"])
    overdue = sales.overdue_tasks(now)
    assert [t["title"] for t in overdue["items"]] == ["task 0", "task 2", "task 1"]
    first = sales.overdue_tasks(now, limit=1)
    second = sales.overdue_tasks(now, limit=1, cursor=first["next_cursor"])
    assert second["items"][0]["title"] == "task 2"
    assert len(sales.overdue_tasks(now, "maja")["items"]) == 2

    done = sales.complete_task(ids[0])
    assert done["status"] == "done" and isinstance(done["completed_at"], datetime.datetime)
    with pytest.raises(crm.ConflictError):
        sales.cancel_task(ids[0])
    assert sales.reopen_task(ids[0])["completed_at"] is None
    assert sales.cancel_task(ids[1])["status"] == "cancelled"
    assert len(sales.overdue_tasks()["items"]) == 2

    assert len(sales.tasks(deal_id=deal["id"])["items"]) == 1
    assert len(sales.tasks(customer_id=ana["id"], status="open")["items"]) == 3
    patched = sales.update_task(ids[2], priority="urgent", due_at=None, notes="bring samples")
    assert (patched["priority"], patched["due_at"], patched["notes"]) == ("urgent", None, "bring samples")
    assert sales.get_task(ids[2]) == patched

    sales.delete_task(ids[3])
    with pytest.raises(crm.NotFoundError):
        sales.get_task(ids[3])
    sales.delete_deal(deal["id"])
    with pytest.raises(crm.NotFoundError):
        sales.get_task(ids[0])


def test_bad_tasks_raise_and_store_nothing(sales: crm.Crm) -> None:
    ghost = sales.create_customer(name="Ghost")
    sales.delete_customer(ghost["id"])
    before = last_seq(sales)
    with pytest.raises(crm.ValidationError) as e:
        sales.create_task(title=" ")
    assert e.value.field == "title"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_task(title="Call", customer_id=ghost["id"])
    assert e.value.field == "customer_id"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_task(title="Call", priority="asap")
    assert e.value.field == "priority"
    with pytest.raises(crm.ValidationError) as e:
        sales.create_task(title="Call", due_at="tomorrow-ish")
    assert e.value.field == "due_at"
    assert sales.tasks()["items"] == []
    assert last_seq(sales) == before


def test_deals_and_tasks_as_arrow_tables(sales: crm.Crm) -> None:
    pytest.importorskip("pyarrow")
    ana = sales.create_customer(name="Ana")
    deal = sales.create_deal(pipeline="Sales", title="Roof", value_minor=1_000, customer_id=ana["id"])
    sales.create_deal(pipeline="Sales", title="Shed", value_minor=50)
    sales.move_deal(deal["id"], "Proposal")
    sales.create_task(title="Call", deal_id=deal["id"])
    deals = sales.table("deals").to_arrow()
    assert deals.column("probability").to_pylist() == [60, 10]
    assert deals.column("value_minor").to_pylist() == [1_000, 50]
    assert sales.table("deals", filter='name = "Ana"').to_arrow().num_rows == 1
    tasks = sales.table("tasks").to_arrow()
    assert tasks.column("deal_id").to_pylist() == [deal["id"]]
