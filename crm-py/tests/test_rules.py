"""Rules and assignment from Python: the same behaviour as the core's."""

import datetime

import pytest

import crm


@pytest.fixture
def db() -> crm.Crm:
    return crm.open()


def on_purchase() -> dict:
    return {"type": "interaction_logged", "kind": "purchase"}


def test_a_purchase_rule_moves_the_customer_and_the_log_names_the_rule(db):
    rule = db.create_rule(
        "repeat buyer",
        on_purchase(),
        [{"type": "set_stage", "stage": "customer"}, {"type": "add_tag", "tag": "repeat"}],
        condition="count(purchases) >= 2",
    )
    assert rule["version"] == 1
    assert rule["trigger"] == {"type": "interaction_logged", "kind": "purchase"}
    assert isinstance(rule["created_at"], datetime.datetime)
    ana = db.create_customer(name="Ana")
    db.log_interaction(ana["id"], "purchase")
    assert db.get_customer(ana["id"])["lifecycle_stage"] == "subscriber"
    db.log_interaction(ana["id"], "purchase")
    ana = db.get_customer(ana["id"])
    assert ana["lifecycle_stage"] == "customer"
    assert ana["tags"] == ["repeat"]
    by_rule = [c for c in db.customer_history(ana["id"]) if c["rule"]]
    assert [c["rule"] for c in by_rule] == ["repeat buyer"]
    history = db.stage_history(ana["id"])
    assert history[-1]["cause"] == "rule"
    assert history[-1]["rule"] == "repeat buyer"
    details = [e["detail"] for e in db.rule_effects(entity_id=ana["id"])]
    assert "moved from stage 'subscriber' to 'customer'" in details


def test_round_robin_skips_members_who_are_out_and_explains_itself(db):
    db.set_team("sales", ["ana", "bo", {"name": "cy", "capacity": None, "out": False}])
    db.set_member_out("sales", "bo")
    db.create_rule(
        "assign new",
        "customer_created",
        [{"type": "assign_owner", "assignment": {"type": "round_robin", "team": "sales"}}],
    )
    owners = [db.create_customer(name=f"c{i}")["owner"] for i in range(4)]
    assert owners == ["ana", "cy", "ana", "cy"]
    second = db.find_matching('name = "c1"')["items"][0]
    assert db.rule_effects(entity_id=second["id"])[0]["detail"] == (
        "assigned to cy by rule 'assign new': round-robin over team 'sales', next after ana; bo is out"
    )
    assert db.team("sales")["members"][1] == {"name": "bo", "capacity": None, "out": True}


def test_territory_assigns_by_country_and_falls_back_to_the_team(db):
    db.set_team("field", ["maja", "sven"])
    db.create_rule(
        "territories",
        "customer_created",
        [
            {
                "type": "assign_owner",
                "assignment": {
                    "type": "territory",
                    "attribute": "country",
                    "owners": {"SE": "sven"},
                    "team": "field",
                },
            }
        ],
    )
    assert db.create_customer(name="Swede", country="SE")["owner"] == "sven"
    fr = db.create_customer(name="French", country="FR")
    assert fr["owner"] == "maja"
    assert "no owner for country 'FR'" in db.rule_effects(entity_id=fr["id"])[0]["detail"]


def test_a_rule_creates_a_task_from_a_template(db):
    db.set_team("support", [{"name": "ana", "capacity": 5}])
    db.create_rule(
        "welcome call",
        "customer_created",
        [
            {
                "type": "create_task",
                "title": "Welcome {name}",
                "due_in_days": 2,
                "priority": "high",
                "assign": {"type": "least_open_work", "team": "support"},
            }
        ],
    )
    c = db.create_customer(name="Bo Berg")
    effect = db.rule_effects(rule="welcome call")[0]
    assert effect["entity"] == "task"
    assert effect["detail"].startswith("created task 'Welcome Bo Berg' for ana")
    assert c["id"]


def test_an_emitted_event_reaches_the_handler_and_a_raising_handler_rolls_back(db):
    db.create_rule(
        "vip alert",
        "customer_created",
        [{"type": "emit", "event": "vip_created"}],
        condition='"vip" in tags',
    )
    seen: list[dict] = []
    db.set_rule_event_handler(seen.append)
    vip = db.create_customer(name="Vip", tags=["vip"])
    db.create_customer(name="Plain")
    assert seen == [
        {
            "event": "vip_created",
            "rule": "vip alert",
            "trigger": "customer_created",
            "customer_id": vip["id"],
            "deal_id": None,
        }
    ]

    def fail(event: dict) -> None:
        raise RuntimeError("queue is down")

    db.set_rule_event_handler(fail)
    before = db.count_customers()
    with pytest.raises(crm.RuleError) as e:
        db.create_customer(name="Vip 2", tags=["vip"])
    assert e.value.rule == "vip alert"
    assert "RuntimeError: queue is down" in e.value.reason
    assert db.count_customers() == before
    db.set_rule_event_handler(None)
    db.create_customer(name="Vip 3", tags=["vip"])
    with pytest.raises(crm.ValidationError):
        db.set_rule_event_handler(42)


def test_rules_that_undo_each_other_are_a_cycle_and_nothing_is_written(db):
    watch = {"type": "customer_updated", "fields": ["tags"]}
    db.create_rule(
        "cool down",
        watch,
        [{"type": "remove_tag", "tag": "hot"}, {"type": "add_tag", "tag": "cold"}],
        condition='"hot" in tags',
    )
    db.create_rule(
        "heat up",
        watch,
        [{"type": "remove_tag", "tag": "cold"}, {"type": "add_tag", "tag": "hot"}],
        condition='"cold" in tags',
    )
    ana = db.create_customer(name="Ana")
    with pytest.raises(crm.RuleError, match="cycle"):
        db.update_customer(ana["id"], tags=["hot"])
    assert db.get_customer(ana["id"])["tags"] == []


def test_the_sweep_acts_once_per_customer(db):
    db.create_rule(
        "churn dormant",
        "schedule",
        [{"type": "set_stage", "stage": "churned"}],
        condition='"dormant" in tags',
    )
    ana = db.create_customer(name="Ana", tags=["dormant"])
    report = db.run_sweep()
    assert report["rules"] == [{"rule": "churn dormant", "matching": 1, "acted_on": 1}]
    assert isinstance(report["at"], datetime.datetime)
    assert db.get_customer(ana["id"])["lifecycle_stage"] == "churned"
    assert db.run_sweep(datetime.datetime.now(datetime.UTC))["rules"][0]["acted_on"] == 0


def test_a_dry_run_shows_effects_and_stores_nothing(db):
    for i in range(5):
        db.create_customer(name=f"c{i}", country="SI" if i % 2 == 0 else "AT")
    run = db.dry_run_rule(
        "tag si",
        "customer_created",
        [{"type": "add_tag", "tag": "si"}],
        condition='country = "SI"',
        limit=2,
    )
    assert (run["matching"], run["simulated"], len(run["effects"])) == (3, 2, 2)
    assert run["effects"][0]["detail"] == "added tag 'si'"
    assert db.count_matching('"si" in tags') == 0
    assert db.rules() == []


def test_rules_are_versioned_and_can_be_disabled(db):
    db.create_rule("tagger", "customer_created", [{"type": "add_tag", "tag": "a"}])
    db.update_rule("tagger", "customer_created", [{"type": "add_tag", "tag": "b"}])
    assert db.create_customer(name="x")["tags"] == ["b"]
    off = db.set_rule_enabled("tagger", False)
    assert (off["version"], off["enabled"]) == (3, False)
    assert db.create_customer(name="y")["tags"] == []
    assert [v["version"] for v in db.rule_versions("tagger")] == [1, 2, 3]
    assert [r["name"] for r in db.rules()] == ["tagger"]
    db.delete_rule("tagger")
    with pytest.raises(crm.NotFoundError):
        db.rule("tagger")


def test_bad_rules_raise_typed_errors_and_store_nothing(db):
    with pytest.raises(crm.ParseError) as e:
        db.create_rule("r", "customer_created", [{"type": "add_tag", "tag": "x"}], condition='contry = "SI"')
    assert e.value.suggestion == "country"
    with pytest.raises(crm.ValidationError, match="unknown variant `send_fax`"):
        db.create_rule("r", "customer_created", [{"type": "send_fax"}])
    with pytest.raises(crm.ValidationError) as e:
        db.create_rule("r", "customer_created", [{"type": "set_stage", "stage": "custmer"}])
    assert e.value.field == "actions[0].stage"
    assert "did you mean 'customer'" in e.value.reason
    with pytest.raises(crm.ValidationError) as e:
        db.create_rule(
            "r",
            "customer_created",
            [{"type": "assign_owner", "assignment": {"type": "round_robin", "team": "ghosts"}}],
        )
    assert e.value.field == "actions[0].assignment.team"
    with pytest.raises(crm.ValidationError) as e:
        db.set_team("empty", [])
    assert e.value.field == "members"
    with pytest.raises(crm.ValidationError):
        db.create_rule("r", "no_such_trigger", [{"type": "add_tag", "tag": "x"}])
    with pytest.raises(crm.ValidationError):
        db.create_rule("r", "customer_created", [])
    assert db.rules() == []
    assert db.teams() == []


def test_a_deal_moving_stage_creates_a_task_and_assigns_the_deal(db):
    db.create_pipeline(
        "sales",
        "EUR",
        [
            {"name": "lead", "probability": 10},
            {"name": "proposal", "probability": 50},
            {"name": "won", "probability": 100, "closed": True, "won": True},
        ],
    )
    db.set_team("closers", ["maja"])
    db.create_rule(
        "proposal follow-up",
        {"type": "deal_stage_changed", "pipeline": "sales", "to_stage": "proposal"},
        [
            {"type": "assign_owner", "assignment": {"type": "least_open_work", "team": "closers"}},
            {"type": "create_task", "title": "Follow up {deal.title} for {name}", "due_in_days": 3, "priority": "high"},
        ],
    )
    ana = db.create_customer(name="Ana")
    deal = db.create_deal(pipeline="sales", title="Roof", value_minor=100_000, customer_id=ana["id"])
    db.move_deal(deal["id"], "proposal")
    assert db.get_deal(deal["id"])["owner"] == "maja"
    tasks = db.tasks(deal_id=deal["id"])["items"]
    assert [(t["title"], t["owner"], t["priority"], t["rule"]) for t in tasks] == [
        ("Follow up Roof for Ana", "maja", "high", "proposal follow-up")
    ]
    # A dry run of a deal rule acts on the open deals its trigger names.
    run = db.dry_run_rule(
        "tag proposals",
        {"type": "deal_stage_changed", "to_stage": "proposal"},
        [{"type": "emit", "event": "x"}],
    )
    assert (run["matching"], run["effects"][0]["entity"]) == (1, "deal")
