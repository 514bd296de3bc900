"""Lifecycle stages through the binding: the configuration, the moves it
allows (bad ones raise and store nothing), the recorded transitions with
their causes, and the queries over them (history, time in stages, counts at
an instant, the funnel), plus `stage >= "..."` in filters following the
configured order."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

import crm

DEFAULT_ORDER = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist"]

CUSTOM: dict[str, Any] = {
    "stages": [
        {"name": "lead", "allow_backward": False},
        {"name": "trial", "allow_backward": False},
        {"name": "sql", "allow_backward": True},
        {"name": "customer", "allow_backward": False},
    ],
    "off_track": ["lost"],
    "default_stage": "lead",
}


def tick() -> datetime.datetime:
    """An instant strictly between the writes before and after it."""
    time.sleep(0.002)
    now = datetime.datetime.now(datetime.UTC)
    time.sleep(0.002)
    return now


def stages(db: crm.Crm, id: str) -> list[tuple[str | None, str]]:
    return [(t["from"], t["to"]) for t in db.stage_history(id)]


def test_the_default_configuration() -> None:
    with crm.open() as db:
        config = db.lifecycle_config()
        assert [s["name"] for s in config["stages"]] == DEFAULT_ORDER
        assert not any(s["allow_backward"] for s in config["stages"])
        assert config["off_track"] == ["other", "churned"]
        assert config["default_stage"] == "subscriber"


def test_a_custom_configuration_round_trips_and_is_logged(db: crm.Crm) -> None:
    wanted = {**CUSTOM, "stages": [{"name": " Lead "}, *CUSTOM["stages"][1:]]}
    stored = db.set_lifecycle_config(wanted)
    assert stored == CUSTOM
    assert db.lifecycle_config() == CUSTOM
    # Keyword arguments work too.
    assert db.set_lifecycle_config(**CUSTOM) == CUSTOM
    last = db.changes_since(0)[-1]
    assert (last["entity"], last["op"], last["fields"]) == ("settings", "updated", ["lifecycle"])
    assert db.create_customer(name="Ana")["lifecycle_stage"] == "lead"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stages": []}, "lifecycle.stages"),
        ({"off_track": ["trial"]}, "lifecycle.off_track[0]"),
        ({"default_stage": "nobody"}, "lifecycle.default_stage"),
        ({"stages": [{"name": "has space"}]}, "lifecycle.stages[0]"),
        ({"stages": [{"name": "lead", "backwards": True}]}, "config"),
        ({"stages": "lead"}, "config"),
    ],
)
def test_bad_configurations_raise_and_change_nothing(
    db: crm.Crm, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(crm.ValidationError) as e:
        db.set_lifecycle_config({**CUSTOM, **change})
    assert e.value.field == field
    assert db.lifecycle_config()["default_stage"] == "subscriber"
    assert db.changes_since(0) == []


def test_removing_a_stage_customers_are_in_is_a_conflict(db: crm.Crm) -> None:
    db.create_customer(name="Ana", lifecycle_stage="mql")
    config = db.lifecycle_config()
    config["stages"] = [s for s in config["stages"] if s["name"] != "mql"]
    with pytest.raises(crm.ConflictError) as e:
        db.set_lifecycle_config(config)
    assert "'mql'" in e.value.reason and "1 customer" in e.value.reason
    assert [s["name"] for s in db.lifecycle_config()["stages"]] == DEFAULT_ORDER


def test_an_unknown_stage_raises_everywhere_and_stores_nothing(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana", lifecycle_stage="lead")
    before = len(db.changes_since(0))
    attempts = [
        lambda: db.create_customer(name="Bo", lifecycle_stage="mqll"),
        lambda: db.update_customer(ana["id"], lifecycle_stage="mqll"),
        lambda: db.set_lifecycle_stage(ana["id"], "mqll"),
        lambda: db.upsert_customer(name="Cy", emails=["cy@example.com"], lifecycle_stage="mqll"),
    ]
    for attempt in attempts:
        with pytest.raises(crm.ValidationError) as e:
            attempt()
        assert e.value.field == "lifecycle_stage"
        assert "did you mean 'mql'" in e.value.reason
    with pytest.raises(crm.ValidationError) as e:
        db.import_customers(
            [{"name": "Di", "lifecycle_stage": "lead"}, {"name": "Ed", "lifecycle_stage": "mqll"}]
        )
    assert (e.value.row, e.value.field) == (2, "lifecycle_stage")
    assert db.count_customers() == 1
    assert stages(db, ana["id"]) == [(None, "lead")]
    assert len(db.changes_since(0)) == before


def test_moving_backward_needs_the_stage_left_to_allow_it(db: crm.Crm) -> None:
    db.set_lifecycle_config(CUSTOM)
    ana = db.create_customer(name="Ana")
    db.set_lifecycle_stage(ana["id"], "trial")
    with pytest.raises(crm.ValidationError) as e:
        db.set_lifecycle_stage(ana["id"], "lead")
    assert "'trial'" in e.value.reason and "'lead'" in e.value.reason
    assert db.get_customer(ana["id"])["lifecycle_stage"] == "trial"
    db.set_lifecycle_stage(ana["id"], "sql")
    moved = db.set_lifecycle_stage(ana["id"], "lead", note="went quiet")
    assert moved["lifecycle_stage"] == "lead"
    db.set_lifecycle_stage(ana["id"], "customer")
    db.set_lifecycle_stage(ana["id"], "lost")
    db.set_lifecycle_stage(ana["id"], "lead")
    assert stages(db, ana["id"]) == [
        (None, "lead"),
        ("lead", "trial"),
        ("trial", "sql"),
        ("sql", "lead"),
        ("lead", "customer"),
        ("customer", "lost"),
        ("lost", "lead"),
    ]
    assert db.stage_history(ana["id"])[3]["note"] == "went quiet"


def test_transitions_record_their_cause(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana")
    db.update_customer(ana["id"], lifecycle_stage="lead")
    history = db.stage_history(ana["id"])
    assert [t["cause"] for t in history] == ["manual", "manual"]
    assert history[0]["at"] == ana["created_at"]
    assert history[0]["at"].tzinfo is not None
    assert all(t["rule"] is None and t["note"] is None for t in history)

    db.import_customers([{"name": "Bo", "emails": ["bo@example.com"], "lifecycle_stage": "mql"}])
    db.import_customers(
        [{"name": "Bo", "emails": ["bo@example.com"], "lifecycle_stage": "sql"}], upsert=True
    )
    bo = db.find_customer_by_email("bo@example.com")
    assert bo is not None
    assert [(t["from"], t["to"], t["cause"]) for t in db.stage_history(bo["id"])] == [
        (None, "mql", "import"),
        ("mql", "sql", "import"),
    ]


def test_time_in_stages(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana", lifecycle_stage="lead")
    db.set_lifecycle_stage(ana["id"], "churned")
    db.set_lifecycle_stage(ana["id"], "mql")
    last = db.stage_history(ana["id"])[-1]["at"]
    times = db.time_in_stages(ana["id"], now=last + datetime.timedelta(seconds=90))
    assert [(t["stage"], t["entered"]) for t in times] == [("lead", 1), ("mql", 1), ("churned", 1)]
    assert times[1]["seconds"] == 90
    assert len(db.time_in_stages(ana["id"])) == 3
    with pytest.raises(crm.NotFoundError):
        db.time_in_stages("01900000-0000-7000-8000-000000000000")


def test_stage_counts_at_an_instant(db: crm.Crm) -> None:
    t0 = tick()
    ana = db.create_customer(name="Ana", lifecycle_stage="lead")
    bo = db.create_customer(name="Bo", lifecycle_stage="lead")
    t1 = tick()
    db.set_lifecycle_stage(ana["id"], "mql")
    db.set_lifecycle_stage(bo["id"], "churned")
    t2 = tick()

    def counts(at: datetime.datetime) -> dict[str, int]:
        return {c["stage"]: c["customers"] for c in db.stage_counts(at) if c["customers"]}

    assert counts(t0) == {}
    assert counts(t1) == {"lead": 2}
    assert counts(t2) == {"mql": 1, "churned": 1}
    all_stages = [c["stage"] for c in db.stage_counts(t2.isoformat())]
    assert all_stages == [*DEFAULT_ORDER, "other", "churned"]


def test_the_funnel(db: crm.Crm) -> None:
    a = db.create_customer(name="A", lifecycle_stage="lead")
    start = tick()
    c = db.create_customer(name="C", lifecycle_stage="lead")
    d = db.create_customer(name="D", lifecycle_stage="lead")
    db.set_lifecycle_stage(a["id"], "mql")
    db.set_lifecycle_stage(c["id"], "mql")
    db.set_lifecycle_stage(c["id"], "churned")
    db.set_lifecycle_stage(c["id"], "customer")
    db.set_lifecycle_stage(d["id"], "sql")
    end = tick()
    db.set_lifecycle_stage(a["id"], "sql")  # after the period

    funnel = {f["stage"]: f for f in db.stage_funnel(start, end)}
    assert list(funnel) == DEFAULT_ORDER
    got = {
        s: (f["entered"], f["advanced"], f["conversion_rate"]) for s, f in funnel.items() if f["entered"]
    }
    assert got == {
        "lead": (2, 2, 1.0),
        "mql": (2, 1, 0.5),
        "sql": (1, 0, 0.0),
        "customer": (1, 0, 0.0),
    }
    assert funnel["subscriber"]["conversion_rate"] is None
    with pytest.raises(crm.ValidationError) as e:
        db.stage_funnel(end, start)
    assert e.value.field == "until"


def test_filters_compare_stages_by_the_configured_order(db: crm.Crm) -> None:
    for name, stage in [("A", "lead"), ("B", "sql"), ("C", "mql"), ("D", "churned")]:
        db.create_customer(name=name, lifecycle_stage=stage)
    assert db.count_matching('stage >= "mql"') == 2
    config = db.lifecycle_config()
    s = config["stages"]
    s[2], s[3] = s[3], s[2]  # sql before mql
    db.set_lifecycle_config(config)
    assert db.count_matching('stage > "mql"') == 0
    assert db.count_matching('stage >= "sql"') == 2
    assert db.count_matching('stage < "sql"') == 1
    with pytest.raises(crm.ParseError) as e:
        db.count_matching('stage > "sqll"')
    assert e.value.suggestion == "sql"


def test_the_transitions_as_a_table(db: crm.Crm) -> None:
    pytest.importorskip("pyarrow")
    ana = db.create_customer(name="Ana", lifecycle_stage="lead")
    since = tick()
    db.set_lifecycle_stage(ana["id"], "mql", note="asked for a demo")
    table = db.table("stage_transitions")
    assert table.name == "stage_transitions"
    assert table.columns == ["customer_id", "from_stage", "to_stage", "at", "cause", "rule", "note"]
    rows = table.to_arrow().to_pylist()
    assert [(r["from_stage"], r["to_stage"], r["cause"]) for r in rows] == [
        (None, "lead", "manual"),
        ("lead", "mql", "manual"),
    ]
    assert rows[1]["note"] == "asked for a demo" and rows[0]["customer_id"] == ana["id"]
    assert db.table("stage_transitions", since=since).to_arrow().num_rows == 1
