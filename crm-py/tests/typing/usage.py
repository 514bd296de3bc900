"""Typed usage of the public API, checked with `mypy --strict` (not run by
pytest): the stubs must describe real code without casts or ignores."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import crm
from crm.types import (
    Change,
    Customer,
    CustomerCard,
    CustomerCardPage,
    Deal,
    DealStageChange,
    FilterTree,
    Forecast,
    ImportProgress,
    ImportReport,
    Interaction,
    MaterializeReport,
    Page,
    Pipeline,
    Segment,
    Task,
)


def on_progress(p: ImportProgress) -> None:
    print(p["rows"], p["applied"], p["rejected"])


def main() -> None:
    with crm.open(":memory:", default_region="SI", busy_timeout_ms=1000) as db:
        ana: Customer = db.create_customer(
            name="Ana Novak",
            emails=["ana@example.com"],
            attributes={"plan": "pro", "seats": 3, "since": datetime.date(2024, 1, 1)},
        )
        created: datetime.datetime = ana["created_at"]
        db.update_customer(ana["id"], locale=None, set_attributes={"plan": None})
        purchase: Interaction = db.log_interaction(
            ana["id"], "purchase", amount_minor=1299, currency="EUR", occurred_at=created
        )
        db.log_interaction({"email": "ana@example.com"}, "note", subject="hello")
        amount: int | None = purchase["amount_minor"]
        page: Page[Customer] = db.list_customers(sort="name", limit=10)
        everyone: Iterator[Customer] = db.iter_customers(page_size=100)
        names = [c["name"] for c in everyone]
        report: ImportReport = db.import_customers(
            [{"name": "Bo"}], mode="skip_invalid", progress=on_progress
        )
        if db.has_consent(ana["id"], "newsletter", "email"):
            print("ok")
        db.record_consent(ana["id"], "newsletter", "granted", channel="email")
        for hit in db.search("novak"):
            print(hit["customer"]["name"], hit["score"])
        for change in db.changes_since(0):
            print(change["seq"], change["op"])
        print(amount, page["next_cursor"], names, report["errors"], db.count_customers())
        try:
            db.get_customer("nope")
        except crm.ValidationError as e:
            field: str = e.field
            row: int | None = e.row
            print(field, row)
        except crm.NotFoundError as e:
            print(e.entity)
        segments(db)
        listeners_and_cards(db)
        lifecycle(db)
    as_maja = crm.Crm().with_actor("maja", source="script")
    as_maja.close()


def lifecycle(db: crm.Crm) -> None:
    config: crm.LifecycleConfig = db.lifecycle_config()
    config["stages"].insert(2, {"name": "trial", "allow_backward": True})
    db.set_lifecycle_config(config)
    db.set_lifecycle_config(stages=[{"name": "lead"}, {"name": "won"}], default_stage="lead")
    ana = db.create_customer(name="Ana")
    moved: Customer = db.set_lifecycle_stage(ana["id"], "won", note="signed")
    history: list[crm.StageTransition] = db.stage_history(moved["id"])
    print(history[0]["from"], history[-1]["cause"], history[-1]["at"].isoformat())
    times: list[crm.StageTime] = db.time_in_stages(ana["id"], now=datetime.date(2030, 1, 1))
    counts: list[crm.StageCount] = db.stage_counts("2025-01-01")
    since = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    funnel: list[crm.FunnelStep] = db.stage_funnel(since, datetime.datetime.now(datetime.UTC))
    rate: float | None = funnel[0]["conversion_rate"]
    print(times[0]["seconds"], counts[0]["customers"], rate)


def segments(db: crm.Crm) -> None:
    canonical: str = db.check_filter('country = "SI"')
    tree: FilterTree = crm.parse_filter(canonical)
    text: str = crm.format_filter(tree)
    n: int = db.count_matching(tree) + db.count_matching(text)
    page: Page[Customer] = db.find_matching('"vip" in tags', limit=10, cursor=None)
    matches: bool = db.customer_matches(page["items"][0]["id"], tree)
    explain: crm.Explain = db.explain(text)
    sql: str = explain.sql
    plan: list[str] = explain.plan
    params: list[str] = explain.params
    si: Segment = db.create_segment("si", filter=tree, description="Slovenians")
    picked: crm.Segment = db.create_segment("picked")
    added: int = db.add_to_segment("picked", [c["id"] for c in page["items"]])
    removed: int = db.remove_from_segment("picked", (page["items"][0]["id"],))
    db.update_segment("si", filter='country = "AT"')
    db.update_segment("si", description=None)
    db.rename_segment("picked", "chosen")
    everyone: list[Segment] = db.segments()
    count: int = db.segment_count("si")
    members: Page[Customer] = db.segment_members("si", limit=50)
    for member in db.iter_segment_members("si", batch_size=500):
        print(member["name"])
    inside: bool = db.segment_contains("si", page["items"][0]["id"])
    report: MaterializeReport = db.materialize_segment("si")
    evaluated: datetime.datetime | None = db.segment("si")["evaluated_at"]
    db.delete_segment("chosen")
    try:
        db.count_matching('contry = "SI"')
    except crm.ParseError as e:
        where: tuple[int, int] = (e.line, e.column)
        suggestion: str | None = e.suggestion
        print(where, suggestion, e.message, e.field)
    print(n, matches, sql, plan, params, si["kind"], picked["filter"], added, removed)
    print(everyone, count, members["next_cursor"], inside, report["entered"], evaluated)


def on_changes(changes: list[Change]) -> None:
    for change in changes:
        print(change["entity"], change["entity_id"], change["op"], change["fields"])


def listeners_and_cards(db: crm.Crm) -> None:
    listener_id: int = db.add_change_listener(on_changes)
    seen: list[Change] = []
    other: int = db.add_change_listener(seen.extend)
    db.create_customer(name="Cid")
    removed: bool = db.remove_change_listener(listener_id)
    db.remove_change_listener(other)
    page: Page[CustomerCard] = db.list_customer_cards(sort="name", descending=True, limit=10)
    for card in page["items"]:
        email: str | None = card["email"]
        latest: Interaction | None = card["latest_interaction"]
        when = latest["occurred_at"] if latest is not None else None
        print(card["id"], card["kind"], card["name"], email, card["tags"], when)
    more: CustomerCardPage = db.list_customer_cards(cursor=page["next_cursor"])
    first: crm.CustomerCard | None = more["items"][0] if more["items"] else None
    print(removed, seen, first)


def analytics_end_to_end() -> None:
    from decimal import Decimal
    from typing import Any

    import numpy as np
    import numpy.typing as npt

    from crm import analytics
    from crm.analytics import BgNbdModel, fit_bgnbd

    log = {
        "customer": ["ana", "ana", "bo", "ana"],
        "date": [datetime.date(2024, 1, d) for d in (1, 5, 9, 20)],
        "amount": [Decimal("10.00"), Decimal("4.50"), Decimal("7.25"), Decimal("1")],
    }
    s: analytics.Summary = analytics.summary(
        log, observation_end=datetime.date(2024, 2, 1), unit="weeks", decimals=2
    )
    held = analytics.summary(
        log,
        amount=None,
        calibration_end=datetime.datetime(2024, 1, 10, tzinfo=datetime.UTC),
    )
    holdout: npt.NDArray[np.float64] | None = held.frequency_holdout
    customers: npt.NDArray[Any] = s.customer
    columns: dict[str, npt.NDArray[Any]] = s.to_dict()
    n: int = len(s)
    end: datetime.datetime = s.observation_end
    model: BgNbdModel = fit_bgnbd(
        [0, 2, 1], np.array([0.0, 8.0, 2.0]), (10.0, 10.0, 9.0), penalizer=0.01
    )
    known = BgNbdModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
    se: dict[str, float] | None = model.standard_errors
    ll: float | None = model.log_likelihood
    next_month: npt.NDArray[np.float64] = known.expected_purchases(4.0, [0, 2], [0.0, 3.0], [5, 5])
    alive: npt.NDArray[np.float64] = known.p_alive(s.frequency, s.recency, s.T)
    one: float = known.expected_purchases_unconditional(52.0)
    many: npt.NDArray[np.float64] = known.expected_purchases_unconditional([13.0, 52.0])
    spend = analytics.fit_gamma_gamma([1, 2, 5, 3], [20.0, 35.0, 28.0, 12.0], penalizer=0.001)
    value: npt.NDArray[np.float64] = spend.expected_average_value(s.frequency, s.monetary_value)
    clv: npt.NDArray[np.float64] = analytics.GammaGammaModel(6.25, 3.74, 15.44).clv(
        known, s.frequency, s.recency, s.T, s.monetary_value, months=6, unit="weeks"
    )
    scores: analytics.RfmScores = analytics.rfm(s.T - s.recency, s.frequency + 1, s.total)
    r: npt.NDArray[np.uint8] = scores.r
    segments: npt.NDArray[np.object_] = scores.segment
    quintiles: npt.NDArray[np.uint8] = analytics.rfm_quintiles([3.0, 1.0], higher_is_better=False)
    cohorts: analytics.Retention = analytics.cohort_retention(log)
    first: list[datetime.date] = cohorts.cohorts
    rates: npt.NDArray[np.float64] = cohorts.rates
    try:
        analytics.summary(log, unit="weeks", amount="price")
    except crm.ValidationError as e:
        print(e.field, e.reason)
    print(holdout, customers, columns, n, end, se, ll, next_month, alive, one, many, value)
    print(clv, r, segments, quintiles, first, rates, cohorts.active, cohorts.sizes, spend.gamma)


def insights_over_the_store(db: crm.Crm) -> None:
    from crm.types import BgNbdFit, RfmSegment, ScoreOptions

    end = datetime.datetime(2025, 6, 30, tzinfo=datetime.UTC)
    run: crm.ScoreRun = db.compute_scores(observation_end=end, horizon_days=30, unit="weeks")
    db.compute_scores(kind="purchase", currency="EUR", clv_months=24, discount_rate=0.02)
    db.compute_scores(observation_end="2025-06-30", penalizer=0.001)
    options: ScoreOptions = run["options"]
    currency: str | None = options["currency"]
    fit: BgNbdFit = run["bgnbd"]
    errors: dict[str, float] | None = fit["standard_errors"]
    latest: crm.ScoreRun | None = db.score_run()
    computed: datetime.datetime | None = latest["computed_at"] if latest else None
    scores: crm.CustomerScores | None = db.customer_scores("01900000-0000-7000-8000-000000000000")
    if scores is not None:
        segment: RfmSegment = scores["rfm_segment"]
        alive: float = scores["p_alive"]
        spent: int = scores["total_minor"]
        print(segment, alive, spent, scores["clv"], scores["rfm_r"])
    months: list[crm.Satisfaction] = db.satisfaction(
        segment='"vip" in tags', since=end - datetime.timedelta(days=90), until=end
    )
    for month in months:
        start: datetime.date | None = month["period_start"]
        print(start, month["nps"], month["csat"], month["responses"])
    db.satisfaction(
        segment=crm.parse_filter("p_alive < 0.3"),
        kind="survey_response",
        subject="nps",
        since=datetime.date(2025, 1, 1),
        period="quarter",
        satisfied_from=9,
    )
    cohorts: crm.analytics.Retention = db.cohort_retention(
        segment="rfm.m >= 4", kind="purchase", observation_end=end
    )
    first: list[datetime.date] = cohorts.cohorts
    try:
        db.compute_scores(horizon_days=0)
    except crm.ValidationError as e:
        print(e.field)
    print(currency, fit["r"], errors, computed, first, cohorts.rates, run["gamma_gamma"]["p"])

    # Tables out as Arrow data, DataFrames in.
    table: crm.Table = db.table(
        "interactions", filter='"vip" in tags', since=end - datetime.timedelta(days=30), batch_size=10_000
    )
    names: list[str] = table.columns
    print(table.name, names, table.to_pandas().shape, table.to_polars().height, table._repr_html_())
    for batch in db.table("customers", segment="vips"):
        print(batch.num_rows)
    imported: crm.ImportReport = db.import_customers(
        table.to_polars(), mapping={"name": "Full Name"}, ignore=["id"], progress=True
    )
    db.import_interactions(db.table("interactions").to_arrow(), mode="skip_invalid", progress=print)
    print(imported["inserted"])


def deals_and_tasks(db: crm.Crm) -> None:
    pipeline: Pipeline = db.create_pipeline(
        "Sales",
        "EUR",
        [{"name": "Lead", "probability": 10}, {"name": "Won", "probability": 100, "closed": True, "won": True}],
    )
    deal: Deal = db.create_deal(
        pipeline=pipeline["name"], title="Roof", value_minor=1_000, expected_close=datetime.date(2030, 1, 1)
    )
    deal = db.move_deal(deal["id"], "Won", reason="best offer")
    history: list[DealStageChange] = db.deal_history(deal["id"])
    page: crm.Page[Deal] = db.deals(pipeline="Sales", status="won", limit=10)
    forecast: Forecast = db.forecast("Sales", owner="maja", close_to="2030-12-31")
    task: Task = db.create_task(title="Call back", due_at=datetime.datetime.now(datetime.UTC), priority="high")
    task = db.update_task(task["id"], notes=None)
    overdue: crm.Page[Task] = db.overdue_tasks(owner="maja", limit=5)
    print(history[0]["from"], page["next_cursor"], forecast["weighted_minor"], task["status"], overdue["items"])


def rules_and_teams(db: crm.Crm) -> None:
    team: crm.Team = db.set_team("sales", ["ana", {"name": "bo", "capacity": 5, "out": False}])
    rule: crm.Rule = db.create_rule(
        "first purchase",
        {"type": "interaction_logged", "kind": "purchase"},
        [{"type": "set_stage", "stage": "customer"}],
        condition="count(purchases) >= 1",
    )
    events: list[crm.RuleEvent] = []
    db.set_rule_event_handler(events.append)
    run: crm.DryRun = db.dry_run_rule("try", "customer_created", [{"type": "add_tag", "tag": "x"}], limit=10)
    report: crm.SweepReport = db.run_sweep(datetime.datetime.now(datetime.UTC))
    effects: list[crm.RuleEffect] = db.rule_effects(rule=rule["name"], limit=5)
    versions: list[crm.Rule] = db.rule_versions(rule["name"])
    db.set_rule_enabled(rule["name"], False)
    member: crm.TeamMember = db.set_member_out("sales", "bo")["members"][1]
    print(team["members"], run["matching"], report["rules"], effects, versions[0]["version"], member["out"])


if __name__ == "__main__":
    main()
