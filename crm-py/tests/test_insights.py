"""Analytics over the store through the binding: `compute_scores`,
`score_run`, `customer_scores`, `satisfaction` and `cohort_retention`.

What the models compute is the core's to test; these check that Python gets
it unchanged and in Python's types, that the stored scores agree with the
pure `crm.analytics` functions run on the same purchase log, and that bad
arguments are `ValidationError`s naming them and change nothing."""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

import crm
from crm import analytics, types

END = datetime.datetime(2025, 6, 30, 23, 0, tzinfo=datetime.UTC)
MISSING_ID = "01900000-0000-7000-8000-000000000000"
REL = 1e-9
# Most customers buy 1 to 15 times. A hard cap at 15 would cut the busiest
# histories short so often that dropout looks alike for everyone and the
# BG/NBD likelihood has no maximum; this one is rarely reached.
MAX_PURCHASES = 30


@dataclass(frozen=True)
class Purchase:
    customer: str
    at: datetime.datetime
    amount_minor: int


def purchase_log(customers: list[str], seed: int) -> list[Purchase]:
    """A year of purchases as the BG/NBD model tells them, with variety:
    each customer buys first at a random time in the year before END, then
    at their own rate (Gamma distributed across customers) until, after any
    repeat purchase, they drop out (at their own chance, Beta distributed),
    END passes, or they reach MAX_PURCHASES. Amounts in EUR cents around
    each customer's own mean."""
    rng = random.Random(seed)
    log = []
    for customer in customers:
        per_day = rng.gammavariate(0.5, 1 / 20)
        dropout = rng.betavariate(0.6, 2.5)
        mean_spend = rng.gammavariate(5.0, 8.0)
        at = END - datetime.timedelta(days=rng.uniform(10, 365), seconds=rng.randrange(86_400))
        for n in range(MAX_PURCHASES):
            if n > 0:
                gap = rng.expovariate(per_day)
                if gap > 400:  # past END anyway (and maybe past what timedelta holds)
                    break
                at += datetime.timedelta(days=gap)
                if at > END:
                    break
            amount = max(1, round(rng.gammavariate(4.0, mean_spend / 4.0) * 100))
            log.append(Purchase(customer, at.replace(microsecond=0), amount))
            if n > 0 and rng.random() < dropout:
                break
    return log


@dataclass
class Store:
    """A CRM holding a purchase log, and the log."""

    db: crm.Crm
    ids: list[str]
    idle: list[str]
    log: list[Purchase]

    def table(self, keep: set[str] | None = None) -> dict[str, list[Any]]:
        """The log as columns for `crm.analytics`, amounts in euros."""
        rows = [p for p in self.log if keep is None or p.customer in keep]
        return {
            "customer": [p.customer for p in rows],
            "date": [p.at for p in rows],
            "amount": [Decimal(p.amount_minor) / 100 for p in rows],
        }


def stock(db: crm.Crm, customers: int, idle: int = 0, seed: int = 7) -> Store:
    """`customers` buyers (odd ones in SI, even ones in AT) with a seeded
    purchase log, plus `idle` customers who never bought."""
    ids = [
        db.create_customer(name=f"C{i}", country="SI" if i % 2 else "AT")["id"]
        for i in range(customers)
    ]
    never = [db.create_customer(name=f"Idle {i}")["id"] for i in range(idle)]
    log = purchase_log(ids, seed)
    report = db.import_interactions(
        {
            "customer_id": p.customer,
            "kind": "purchase",
            "occurred_at": p.at,
            "amount_minor": p.amount_minor,
            "currency": "EUR",
        }
        for p in log
    )
    assert (report["inserted"], report["rejected"]) == (len(log), 0)
    return Store(db, ids, never, log)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    """400 buyers and 6 idle customers, scored as of END (read only)."""
    with crm.open() as db:
        s = stock(db, 400, idle=6)
        db.compute_scores(observation_end=END)
        yield s


@pytest.fixture
def small(db: crm.Crm) -> Store:
    """A fresh CRM with 250 buyers, not scored yet (tests may change it)."""
    return stock(db, 250, seed=3)


def is_utc(t: object) -> bool:
    return (
        isinstance(t, datetime.datetime)
        and t.tzinfo is not None
        and t.utcoffset() == datetime.timedelta(0)
    )


# ----- scores ----------------------------------------------------------------


def test_stored_scores_equal_the_pure_models_on_the_same_log(store: Store) -> None:
    s = analytics.summary(store.table(), observation_end=END)
    bg = analytics.fit_bgnbd(s.frequency, s.recency, s.T)
    p_alive = bg.p_alive(s.frequency, s.recency, s.T)
    expected = bg.expected_purchases(90, s.frequency, s.recency, s.T)
    gg = analytics.fit_gamma_gamma(s.frequency, s.monetary_value)
    value = gg.expected_average_value(s.frequency, s.monetary_value)
    clv = gg.clv(bg, s.frequency, s.recency, s.T, s.monetary_value)
    rfm = analytics.rfm(s.T - s.recency, s.frequency + 1, s.total)

    run = store.db.score_run()
    assert run is not None
    assert (run["customers"], run["purchases"]) == (len(s), len(store.log))
    assert (run["skipped_refunds"], run["skipped_other_currency"]) == (0, 0)
    fit = run["bgnbd"]
    assert [fit["r"], fit["alpha"], fit["a"], fit["b"]] == pytest.approx(
        [bg.r, bg.alpha, bg.a, bg.b], rel=REL
    )
    assert fit["log_likelihood"] == pytest.approx(bg.log_likelihood, rel=REL)
    spend = run["gamma_gamma"]
    assert [spend["p"], spend["q"], spend["gamma"]] == pytest.approx(
        [gg.p, gg.q, gg.gamma], rel=REL
    )

    for i, customer in enumerate(s.customer.tolist()):
        got = store.db.customer_scores(customer)
        assert got is not None, customer
        assert got["customer_id"] == customer
        assert (got["frequency"], got["recency"], got["t"]) == (
            s.frequency[i],
            s.recency[i],
            s.T[i],
        )
        assert got["total_minor"] == round(s.total[i] * 100)
        assert got["monetary_value"] == pytest.approx(s.monetary_value[i], rel=REL)
        assert got["p_alive"] == pytest.approx(p_alive[i], rel=REL), customer
        assert got["expected_purchases"] == pytest.approx(expected[i], rel=REL)
        assert got["expected_value"] == pytest.approx(value[i], rel=REL)
        assert got["clv"] == pytest.approx(clv[i], rel=REL)
        assert (got["rfm_r"], got["rfm_f"], got["rfm_m"]) == (rfm.r[i], rfm.f[i], rfm.m[i])
        assert got["rfm_segment"] == rfm.segment[i]


def test_a_run_is_a_dict_of_python_values(store: Store) -> None:
    run = store.db.score_run()
    assert run is not None
    assert is_utc(run["computed_at"]) and is_utc(run["observation_end"])
    assert run["observation_end"] == END
    assert run["options"] == {
        "kind": "purchase",
        "currency": "EUR",  # resolved: the one currency used
        "unit": "days",
        "observation_end": END,
        "horizon_days": 90,
        "clv_months": 12,
        "discount_rate": 0.01,
        "penalizer": 0.0,
    }
    assert is_utc(run["options"]["observation_end"])
    # The keys are those of the TypedDicts that describe them.
    assert list(run) == list(crm.ScoreRun.__annotations__)
    assert list(run["options"]) == list(types.ScoreOptions.__annotations__)
    assert list(run["bgnbd"]) == list(types.BgNbdFit.__annotations__)
    assert list(run["gamma_gamma"]) == list(types.GammaGammaFit.__annotations__)
    fits: list[tuple[dict[str, Any], list[str]]] = [
        (dict(run["bgnbd"]), ["r", "alpha", "a", "b"]),
        (dict(run["gamma_gamma"]), ["p", "q", "gamma"]),
    ]
    for fit, names in fits:
        assert all(isinstance(fit[n], float) for n in names)
        assert fit["standard_errors"] is not None and list(fit["standard_errors"]) == names
        assert [len(row) for row in fit["covariance"]] == [len(names)] * len(names)
        assert isinstance(fit["iterations"], int) and fit["iterations"] > 0
        assert fit["customers"] > 0
    scores = store.db.customer_scores(store.ids[0])
    assert scores is not None
    assert list(scores) == list(crm.CustomerScores.__annotations__)
    assert isinstance(scores["total_minor"], int) and isinstance(scores["rfm_r"], int)
    assert 0.0 <= scores["p_alive"] <= 1.0


def test_compute_scores_returns_what_score_run_keeps(small: Store) -> None:
    db = small.db
    assert db.score_run() is None
    run = db.compute_scores(observation_end=END)
    assert db.score_run() == run
    # Times of every kind are read as points in time (naive ones as UTC).
    east = datetime.timezone(datetime.timedelta(hours=2))
    for end in (END.replace(tzinfo=None), END.isoformat(), END.astimezone(east)):
        again = db.compute_scores(observation_end=end)
        assert again["observation_end"] == END
        assert again["bgnbd"] == run["bgnbd"]


def test_scores_are_fields_of_the_filter_language(store: Store) -> None:
    db = store.db
    scores = [db.customer_scores(c) for c in store.ids]
    stored = [s for s in scores if s is not None]
    assert len(stored) == len(store.ids)
    total = len(store.ids) + len(store.idle)

    low = sum(1 for s in stored if s["p_alive"] < 0.3)
    assert 0 < low < len(stored), "the log has both kinds"
    assert db.count_matching("p_alive < 0.3") == low
    assert db.count_matching("not p_alive < 0.3") == total - low
    champions = sum(1 for s in stored if s["rfm_segment"] == "champions")
    assert champions > 0
    assert db.count_matching('rfm.segment = "champions"') == champions
    assert db.count_matching(crm.parse_filter('rfm.segment = "champions"')) == champions
    assert db.count_matching("rfm.r >= 4") == sum(1 for s in stored if s["rfm_r"] >= 4)
    valuable = sum(1 for s in stored if s["clv"] > 50)
    assert db.count_matching("clv > 50") == valuable

    # Customers without a purchase have no scores.
    assert db.count_matching("p_alive is null") == len(store.idle)
    for idle in store.idle:
        assert db.customer_scores(idle) is None
        assert db.customer_matches(idle, "p_alive is null")
    somebody = next(s for s in stored if s["p_alive"] < 0.3)
    assert db.customer_matches(somebody["customer_id"], "p_alive < 0.3")


def test_customer_scores_take_an_existing_customer_id(store: Store) -> None:
    with pytest.raises(crm.NotFoundError) as not_found:
        store.db.customer_scores(MISSING_ID)
    assert not_found.value.entity == "customer"
    with pytest.raises(crm.ValidationError) as invalid:
        store.db.customer_scores("not-an-id")
    assert invalid.value.field == "customer_id"


def test_an_empty_crm_has_nothing_to_score(db: crm.Crm) -> None:
    db.create_customer(name="Ana")
    with pytest.raises(crm.ValidationError) as info:
        db.compute_scores(observation_end=END)
    assert info.value.field == "purchases"
    assert db.score_run() is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 4_000}, "horizon_days"),
        ({"horizon_days": -1}, "horizon_days"),
        ({"horizon_days": "90"}, "horizon_days"),
        ({"horizon_days": 90.0}, "horizon_days"),
        ({"clv_months": 500}, "clv_months"),
        ({"discount_rate": math.nan}, "discount_rate"),
        ({"discount_rate": True}, "discount_rate"),
        ({"discount_rate": "1%"}, "discount_rate"),
        ({"penalizer": -1}, "penalizer"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"unit": "hours"}, "unit"),
        ({"unit": 7}, "unit"),
        ({"kind": "not a kind!"}, "kind"),
        ({"observation_end": "yesterday"}, "observation_end"),
        # Nothing in that currency, or nobody before that time: nothing to fit.
        ({"currency": "JPY"}, "purchases"),
        ({"observation_end": END - datetime.timedelta(days=3_000)}, "purchases"),
    ],
)
def test_bad_options_are_validation_errors_that_change_nothing(
    small: Store, kwargs: dict[str, Any], field: str
) -> None:
    db = small.db
    first = db.compute_scores(observation_end=END)
    before = db.customer_scores(small.ids[0])
    with pytest.raises(crm.ValidationError) as info:
        db.compute_scores(**{"observation_end": END, **kwargs})
    assert info.value.field == field
    assert db.score_run() == first
    assert db.customer_scores(small.ids[0]) == before


def test_options_are_keyword_only(small: Store) -> None:
    with pytest.raises(TypeError):
        small.db.compute_scores("purchase")  # type: ignore[misc]
    with pytest.raises(TypeError):
        small.db.satisfaction('"vip" in tags')  # type: ignore[misc]
    with pytest.raises(TypeError):
        small.db.cohort_retention('"vip" in tags')  # type: ignore[misc]


def test_several_currencies_need_a_choice_refunds_are_left_out(small: Store) -> None:
    db = small.db
    first = db.compute_scores(observation_end=END)
    ana, bo = small.ids[:2]
    late = END - datetime.timedelta(days=2)
    db.log_interaction(ana, "purchase", amount_minor=-500, currency="EUR", occurred_at=late)
    db.log_interaction(bo, "purchase", amount_minor=900, currency="USD", occurred_at=late)
    with pytest.raises(crm.ValidationError) as info:
        db.compute_scores(observation_end=END)
    assert info.value.field == "currency"
    assert "EUR, USD" in info.value.reason
    assert db.score_run() == first

    run = db.compute_scores(currency="eur", observation_end=END)
    assert run["options"]["currency"] == "EUR"
    assert (run["skipped_refunds"], run["skipped_other_currency"]) == (1, 1)
    assert run["purchases"] == len(small.log) + 2
    assert run["bgnbd"] == first["bgnbd"], "the left-out rows change no summary"


def test_weekly_scores_count_weeks(small: Store) -> None:
    run = small.db.compute_scores(unit="weeks", horizon_days=28, observation_end=END)
    assert (run["options"]["unit"], run["options"]["horizon_days"]) == ("weeks", 28)
    s = analytics.summary(small.table(), observation_end=END, unit="weeks")
    bg = analytics.fit_bgnbd(s.frequency, s.recency, s.T)
    assert run["bgnbd"]["r"] == pytest.approx(bg.r, rel=REL)
    expected = bg.expected_purchases(4.0, s.frequency, s.recency, s.T)
    for i in range(0, len(s), 25):
        got = small.db.customer_scores(str(s.customer[i]))
        assert got is not None
        assert got["t"] == s.T[i]
        assert got["expected_purchases"] == pytest.approx(expected[i], rel=REL)


def test_other_options_reach_the_core(small: Store) -> None:
    plain = small.db.compute_scores(observation_end=END)
    run = small.db.compute_scores(
        kind="Purchase", clv_months=24, discount_rate=0, penalizer=0.001, observation_end=END
    )
    assert run["options"]["kind"] == "purchase"
    assert (run["options"]["clv_months"], run["options"]["discount_rate"]) == (24, 0.0)
    assert run["options"]["penalizer"] == 0.001
    assert run["bgnbd"]["r"] != plain["bgnbd"]["r"]  # penalized
    # Nobody bought anything of another kind.
    with pytest.raises(crm.ValidationError) as info:
        small.db.compute_scores(kind="order", observation_end=END)
    assert info.value.field == "purchases"


# ----- satisfaction ------------------------------------------------------------


def jan(day: int) -> datetime.datetime:
    return datetime.datetime(2025, 1, day, 12, tzinfo=datetime.UTC)


def mar(day: int) -> datetime.datetime:
    return datetime.datetime(2025, 3, day, 12, tzinfo=datetime.UTC)


@pytest.fixture
def surveyed(db: crm.Crm) -> crm.Crm:
    """January: 10, 9, 8, 2 (nps); March: 6 and 0 from the VIP (nps), 9
    (csat)."""
    vip = db.create_customer(name="V", tags=["vip"])["id"]
    other = db.create_customer(name="O")["id"]
    for who, score in ((vip, 10), (vip, 9), (other, 8), (other, 2)):
        db.log_interaction(who, "survey_response", score=score, subject="nps", occurred_at=jan(5))
    db.log_interaction(vip, "survey_response", score=6, subject="nps", occurred_at=mar(1))
    db.log_interaction(vip, "survey_response", score=0, subject="nps", occurred_at=mar(31))
    db.log_interaction(other, "survey_response", score=9, subject="csat", occurred_at=mar(2))
    return db


def test_satisfaction_gives_nps_and_csat_by_month(surveyed: crm.Crm) -> None:
    months = surveyed.satisfaction(subject="nps")
    assert len(months) == 2, "February had no answers"
    j, m = months
    assert type(j["period_start"]) is datetime.date
    assert list(j) == list(crm.Satisfaction.__annotations__)
    assert j == {
        "period_start": datetime.date(2025, 1, 1),
        "responses": 4,
        "promoters": 2,
        "passives": 1,
        "detractors": 1,
        "nps": 25.0,
        "satisfied": 3,
        "csat": 75.0,
        "mean_score": 7.25,
    }
    assert m["period_start"] == datetime.date(2025, 3, 1)
    assert (m["responses"], m["nps"], m["csat"]) == (2, -100.0, 0.0)
    # The defaults: every survey answer, by month.
    assert [r["responses"] for r in surveyed.satisfaction()] == [4, 3]
    assert surveyed.satisfaction(kind="survey", period="month") == surveyed.satisfaction()


def test_satisfaction_of_a_segment(surveyed: crm.Crm) -> None:
    vips = surveyed.satisfaction(segment='"vip" in tags', subject="nps", period="all")
    assert len(vips) == 1
    assert (vips[0]["period_start"], vips[0]["responses"], vips[0]["nps"]) == (None, 4, 0.0)
    tree = crm.parse_filter('"vip" in tags')
    assert surveyed.satisfaction(segment=tree, subject="nps", period="all") == vips
    surveyed.create_segment("vips", filter='"vip" in tags')
    assert surveyed.satisfaction(segment='in_segment("vips")', subject="nps", period="all") == vips


def test_satisfaction_periods_thresholds_and_ranges(surveyed: crm.Crm) -> None:
    quarters = surveyed.satisfaction(period="quarter", satisfied_from=9)
    assert [(q["period_start"], q["responses"], q["satisfied"]) for q in quarters] == [
        (datetime.date(2025, 1, 1), 7, 3)
    ]
    # `since` is inclusive, `until` exclusive; weeks start on Monday.
    ranged = surveyed.satisfaction(subject="nps", since=mar(1), until=mar(31), period="week")
    assert [(r["period_start"], r["responses"]) for r in ranged] == [
        (datetime.date(2025, 2, 24), 1)
    ]
    assert (
        surveyed.satisfaction(
            subject="nps",
            since=datetime.date(2025, 3, 1),
            until="2025-03-31T12:00:00Z",
            period="week",
        )
        == ranged
    )
    assert surveyed.satisfaction(subject="none") == []
    # Scores of another kind of interaction.
    someone = surveyed.create_customer(name="R")["id"]
    surveyed.log_interaction(someone, "review", score=10)
    assert [r["promoters"] for r in surveyed.satisfaction(kind="review", period="all")] == [1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"satisfied_from": 11}, "satisfied_from"),
        ({"satisfied_from": -1}, "satisfied_from"),
        ({"satisfied_from": "8"}, "satisfied_from"),
        ({"since": mar(2), "until": jan(1)}, "since"),
        ({"since": "March"}, "since"),
        ({"until": 2025}, "until"),
        ({"period": "fortnight"}, "period"),
        ({"subject": 1}, "subject"),
        ({"kind": "not a kind!"}, "kind"),
        ({"segment": 3}, "segment"),
    ],
)
def test_bad_satisfaction_arguments_are_validation_errors(
    surveyed: crm.Crm, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(crm.ValidationError) as info:
        surveyed.satisfaction(**kwargs)
    assert info.value.field == field


def test_a_bad_segment_filter_is_a_parse_error(surveyed: crm.Crm) -> None:
    with pytest.raises(crm.ParseError) as info:
        surveyed.satisfaction(segment='"vip" in tagz')
    assert info.value.suggestion == "tags"
    with pytest.raises(crm.ParseError):
        surveyed.cohort_retention(segment='"vip" in tagz')


# ----- cohorts -----------------------------------------------------------------


def assert_same_retention(got: analytics.Retention, want: analytics.Retention) -> None:
    assert type(got) is analytics.Retention
    assert got.cohorts == want.cohorts
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.sizes, want.sizes)
    np.testing.assert_array_equal(got.active, want.active)
    np.testing.assert_array_equal(got.rates, want.rates)  # NaN where undefined, in both
    assert (got.sizes.dtype, got.active.dtype, got.rates.dtype) == (
        want.sizes.dtype,
        want.active.dtype,
        want.rates.dtype,
    )


def test_cohort_retention_equals_the_pure_function(store: Store) -> None:
    got = store.db.cohort_retention(observation_end=END)
    assert len(got) >= 12
    assert_same_retention(got, analytics.cohort_retention(store.table(), observation_end=END))
    assert repr(got).startswith(f"Retention(cohorts={len(got)}, from=")


def test_cohort_retention_of_a_segment(store: Store) -> None:
    slovenians = set(store.ids[1::2])
    want = analytics.cohort_retention(store.table(slovenians), observation_end=END)
    assert_same_retention(
        store.db.cohort_retention(segment='country = "SI"', observation_end=END), want
    )
    assert_same_retention(
        store.db.cohort_retention(
            segment=crm.parse_filter('country = "SI"'), kind="purchase", observation_end=END
        ),
        want,
    )


def test_cohort_retention_without_purchases_is_empty(db: crm.Crm) -> None:
    r = db.cohort_retention()
    assert len(r) == 0 and r.cohorts == []
    assert r.active.shape[0] == 0
    with pytest.raises(crm.ValidationError) as info:
        db.cohort_retention(observation_end="soon")
    assert info.value.field == "observation_end"
