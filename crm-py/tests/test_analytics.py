"""crm.analytics: the core's customer analytics from Python.

The models themselves are tested in crm-core (against mpmath, scipy and the
published estimates); here the reference vectors are replayed through the
binding, to show that every kind of column converts to the same numbers,
that bad input comes back as a ValidationError naming the element, and that
the GIL is released while the core computes.
"""

from __future__ import annotations

import csv
import datetime
import doctest
import json
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import crm
from crm import analytics
from crm.analytics import (
    BgNbdModel,
    GammaGammaModel,
    cohort_retention,
    fit_bgnbd,
    fit_gamma_gamma,
    rfm,
    rfm_quintiles,
    summary,
)

DATA = Path(__file__).resolve().parents[2] / "crm-core" / "tests" / "data" / "analytics"
UTC = datetime.UTC


def load(name: str) -> Any:
    with (DATA / name).open() as f:
        return json.load(f)


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    """The CDNOW sample: x, t_x, T (weeks) and zbar (dollars) per customer."""
    with (DATA / "cdnow.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar")}


@pytest.fixture(scope="module")
def reference_log() -> dict[str, Any]:
    """The purchase log of summary.json as columns; amounts in minor units."""
    v = load("summary.json")
    tx = v["transactions"]
    return {
        "customer": [t[0] for t in tx],
        "date": [datetime.datetime.fromisoformat(t[1]) for t in tx],
        "amount_minor": [t[2] for t in tx],
        "observation_end": datetime.datetime.fromisoformat(v["observation_end"]),
        "cases": v["cases"],
        "rfm": v["rfm"],
        "retention": v["retention"],
    }


def log_frame(log: dict[str, Any]) -> Any:
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(
        {
            "customer": log["customer"],
            "date": pd.to_datetime(log["date"]),
            "amount": np.array(log["amount_minor"]) / 100,
        }
    )


def field_of(call: Callable[[], object]) -> str:
    with pytest.raises(crm.ValidationError) as info:
        call()
    assert info.value.row is None
    return info.value.field


# ===== fits on CDNOW ============================================================


def test_bgnbd_fit_on_cdnow_matches_the_reference_and_the_published_estimates(
    cdnow: dict[str, np.ndarray],
) -> None:
    ref = load("cdnow_fit.json")["bgnbd"]
    model = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    params = [model.r, model.alpha, model.a, model.b]
    np.testing.assert_allclose(params, ref["params"], rtol=1e-8)
    assert model.log_likelihood == pytest.approx(ref["log_likelihood"], rel=1e-12)
    assert model.standard_errors is not None
    assert list(model.standard_errors) == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(
        list(model.standard_errors.values()), ref["standard_errors"], rtol=1e-6
    )
    # Fader, Hardie & Lee (2005): r = 0.243, α = 4.414, a = 0.793, b = 2.426.
    np.testing.assert_allclose(params, ref["published"]["params"], atol=5e-4)
    assert model.log_likelihood == pytest.approx(ref["published"]["log_likelihood"], abs=0.05)
    assert model.iterations > 0
    assert model.covariance is not None and model.covariance.shape == (4, 4)
    assert np.sqrt(model.covariance[0, 0]) == pytest.approx(model.standard_errors["r"])


def test_penalized_fits_match_the_reference(cdnow: dict[str, np.ndarray]) -> None:
    ref = load("cdnow_fit.json")
    bg = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], penalizer=ref["penalizer"])
    np.testing.assert_allclose(
        [bg.r, bg.alpha, bg.a, bg.b], ref["bgnbd"]["penalized_params"], rtol=1e-7
    )
    gg = fit_gamma_gamma(cdnow["x"], cdnow["zbar"], penalizer=ref["penalizer"])
    np.testing.assert_allclose(
        [gg.p, gg.q, gg.gamma], ref["gamma_gamma"]["penalized_params"], rtol=1e-7
    )


def test_gamma_gamma_fit_on_cdnow_matches_the_reference_and_the_published_estimates(
    cdnow: dict[str, np.ndarray],
) -> None:
    ref = load("cdnow_fit.json")["gamma_gamma"]
    # Customers without repeat purchases are skipped: the whole column goes in.
    model = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    np.testing.assert_allclose([model.p, model.q, model.gamma], ref["params"], rtol=1e-8)
    assert model.log_likelihood == pytest.approx(ref["log_likelihood"], rel=1e-12)
    assert model.standard_errors is not None
    assert list(model.standard_errors) == ["p", "q", "gamma"]
    np.testing.assert_allclose(
        list(model.standard_errors.values()), ref["standard_errors"], rtol=1e-6
    )
    # Fader & Hardie (2013): p = 6.25, q = 3.74, γ = 15.44.
    np.testing.assert_allclose(
        [model.p, model.q, model.gamma], ref["published"]["params"], atol=0.01
    )


def test_weights_stand_for_repeated_customers(cdnow: dict[str, np.ndarray]) -> None:
    doubled = fit_bgnbd(np.tile(cdnow["x"], 2), np.tile(cdnow["t_x"], 2), np.tile(cdnow["T"], 2))
    weighted = fit_bgnbd(
        cdnow["x"], cdnow["t_x"], cdnow["T"], weights=np.full(len(cdnow["x"]), 2.0)
    )
    np.testing.assert_allclose(
        [weighted.r, weighted.alpha, weighted.a, weighted.b],
        [doubled.r, doubled.alpha, doubled.a, doubled.b],
        rtol=1e-9,
    )


def test_an_iteration_limit_is_passed_to_the_optimizer(cdnow: dict[str, np.ndarray]) -> None:
    model = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], max_iterations=1000)
    assert model.iterations <= 1000


# ===== predictions against the reference vectors ================================


def test_bgnbd_predictions_match_the_closed_form_vectors() -> None:
    v = load("bgnbd_closed_forms.json")
    c = v["customers"]
    for case in v["cases"]:
        model = BgNbdModel(*case["params"])
        np.testing.assert_allclose(
            model.p_alive(c["frequency"], c["recency"], c["T"]), case["p_alive"], rtol=1e-11
        )
        for horizon, want in zip(v["horizons"], case["expected_purchases"], strict=True):
            got = model.expected_purchases(horizon, c["frequency"], c["recency"], c["T"])
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(
            model.expected_purchases_unconditional(v["horizons"]), case["unconditional"], rtol=1e-11
        )


def test_bgnbd_predictions_match_lifetimes_record(cdnow: dict[str, np.ndarray]) -> None:
    ref = load("cdnow_fit.json")["bgnbd"]
    # lifetimes' predictions (scipy's 2F1) at the reference estimates.
    model = BgNbdModel(*ref["params"])
    rows = ref["lifetimes_predictions"]["index"]
    x, tx, t = cdnow["x"][rows], cdnow["t_x"][rows], cdnow["T"][rows]
    np.testing.assert_allclose(
        model.expected_purchases(10, x, tx, t),
        ref["lifetimes_predictions"]["expected_purchases_10"],
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        model.p_alive(x, tx, t), ref["lifetimes_predictions"]["p_alive"], rtol=1e-10
    )


def test_gamma_gamma_predictions_match_the_reference_vectors() -> None:
    v = load("gamma_gamma.json")
    for case in v["cases"]:
        model = GammaGammaModel(*case["params"])
        # The vectors lead with a customer without repeat purchases (0, 0).
        np.testing.assert_allclose(
            model.expected_average_value([0, *v["frequency"]], [0.0, *v["monetary_value"]]),
            case["expected_average_value"],
            rtol=1e-12,
        )
    c = v["clv"]
    assert c["periods_per_month"] == 4.345
    clv = GammaGammaModel(*c["gamma_gamma"]).clv(
        BgNbdModel(*c["bgnbd"]),
        c["frequency"],
        c["recency"],
        c["T"],
        c["monetary_value"],
        months=c["months"],
        discount_rate=c["discount_rate"],
        unit="weeks",
    )
    np.testing.assert_allclose(clv, c["clv"], rtol=1e-10)


def test_clv_counts_months_in_the_data_time_unit() -> None:
    bg, gg = BgNbdModel(0.243, 4.414, 0.793, 2.426), GammaGammaModel(6.25, 3.74, 15.44)
    history = ([2.0], [30.0], [38.0], [22.35])
    weeks = gg.clv(bg, *history, unit="weeks")
    days = gg.clv(bg, *history, unit="days")
    assert days[0] > weeks[0]  # a month is 30 time units in days, 4.345 in weeks
    assert gg.clv(bg, *history, months=24, unit="weeks")[0] > weeks[0]
    assert gg.clv(bg, *history, discount_rate=0.0, unit="weeks")[0] > weeks[0]
    assert field_of(lambda: gg.clv(bg, *history, unit="hours")) == "unit"  # type: ignore[arg-type]
    assert field_of(lambda: gg.clv(bg, *history, discount_rate=-1.0)) == "discount_rate"


# ===== models ===================================================================


def test_models_from_known_parameters_are_not_fitted() -> None:
    bg = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    assert (bg.r, bg.alpha, bg.a, bg.b) == (0.243, 4.414, 0.793, 2.426)
    assert bg.log_likelihood is None and bg.standard_errors is None and bg.covariance is None
    assert bg.iterations == 0
    assert repr(bg) == "BgNbdModel(r=0.243, alpha=4.414, a=0.793, b=2.426)"
    gg = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)
    assert repr(gg) == "GammaGammaModel(p=6.25, q=3.74, gamma=15.44)"
    assert gg.log_likelihood is None and gg.standard_errors is None


def test_fitted_models_say_so_in_their_repr(cdnow: dict[str, np.ndarray]) -> None:
    model = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert repr(model) == (
        "BgNbdModel(r=0.242593, alpha=4.41353, a=0.792886, b=2.42575, log_likelihood=-9582.43)"
    )


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: BgNbdModel(0.0, 1.0, 1.0, 1.0), "r"),
        (lambda: BgNbdModel(1.0, float("nan"), 1.0, 1.0), "alpha"),
        (lambda: BgNbdModel(1.0, 1.0, -1.0, 1.0), "a"),
        (lambda: BgNbdModel(1.0, 1.0, 1.0, float("inf")), "b"),
        (lambda: GammaGammaModel(0.0, 2.0, 1.0), "p"),
        (lambda: GammaGammaModel(1.0, 0.5, 1.0).expected_average_value([1], [1.0]), "q"),
        (lambda: GammaGammaModel(1.0, 2.0, -1.0), "gamma"),
    ],
)
def test_bad_parameters_are_validation_errors(make: Callable[[], object], field: str) -> None:
    assert field_of(make) == field


def test_the_unconditional_expectation_takes_a_number_or_an_array() -> None:
    model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    one = model.expected_purchases_unconditional(52.0)
    assert isinstance(one, float)
    assert isinstance(model.expected_purchases_unconditional(52), float)
    assert isinstance(model.expected_purchases_unconditional(np.float64(52.0)), float)
    many = model.expected_purchases_unconditional([0.0, 26.0, 52.0])
    assert isinstance(many, np.ndarray) and many.dtype == np.float64
    assert many[0] == 0.0 and many[2] == one and many[1] < one
    assert field_of(lambda: model.expected_purchases_unconditional(-1.0)) == "t"
    assert field_of(lambda: model.expected_purchases_unconditional([1.0, -1.0])) == "t[1]"


def test_predictions_are_float64_arrays_in_input_order(cdnow: dict[str, np.ndarray]) -> None:
    model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    x, tx, t = cdnow["x"], cdnow["t_x"], cdnow["T"]
    forward = model.expected_purchases(52, x, tx, t)
    assert forward.dtype == np.float64 and forward.shape == x.shape
    backward = model.expected_purchases(52, x[::-1], tx[::-1], t[::-1])
    np.testing.assert_array_equal(backward, forward[::-1])
    alive = model.p_alive(x, tx, t)
    assert np.all((alive >= 0) & (alive <= 1)) and np.all(alive[x == 0] == 1.0)


# ===== every kind of column =====================================================


def convert(kind: str, values: np.ndarray) -> Any:
    if kind == "list":
        return values.tolist()
    if kind == "tuple":
        return tuple(values.tolist())
    if kind == "numpy":
        return values
    if kind == "numpy_float32":
        return values.astype(np.float32).astype(np.float64)  # exactly representable values
    if kind == "numpy_strided":
        doubled = np.repeat(values, 2)
        return doubled[::2]
    if kind == "numpy_big_endian":
        return values.astype(">f8")
    if kind == "pandas":
        pd = pytest.importorskip("pandas")
        return pd.Series(values, index=np.arange(len(values)) * 3)
    if kind == "polars":
        pl = pytest.importorskip("polars")
        return pl.Series(values)
    if kind == "pyarrow":
        pa = pytest.importorskip("pyarrow")
        return pa.array(values)
    if kind == "pyarrow_chunked":
        pa = pytest.importorskip("pyarrow")
        return pa.chunked_array([values[:1000], values[1000:]])
    raise AssertionError(kind)


KINDS = [
    "list",
    "tuple",
    "numpy",
    "numpy_strided",
    "numpy_big_endian",
    "pandas",
    "polars",
    "pyarrow",
    "pyarrow_chunked",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_column_gives_the_same_results(
    cdnow: dict[str, np.ndarray], kind: str
) -> None:
    x, tx, t, m = (convert(kind, cdnow[k]) for k in ("x", "t_x", "T", "zbar"))
    want = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    got = fit_bgnbd(x, tx, t)
    assert (got.r, got.alpha, got.a, got.b) == (want.r, want.alpha, want.a, want.b)
    np.testing.assert_array_equal(
        got.p_alive(x, tx, t), want.p_alive(cdnow["x"], cdnow["t_x"], cdnow["T"])
    )
    gg = fit_gamma_gamma(x, m)
    assert gg.p == fit_gamma_gamma(cdnow["x"], cdnow["zbar"]).p
    scores = rfm_quintiles(t)
    np.testing.assert_array_equal(scores, rfm_quintiles(cdnow["T"]))


def test_integer_columns_are_numbers(cdnow: dict[str, np.ndarray]) -> None:
    x = cdnow["x"].astype(np.int64)
    model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    np.testing.assert_array_equal(
        model.p_alive(x, cdnow["t_x"], cdnow["T"]),
        model.p_alive(cdnow["x"], cdnow["t_x"], cdnow["T"]),
    )
    assert model.p_alive(x.astype(np.uint8), cdnow["t_x"], cdnow["T"]).shape == x.shape
    pd = pytest.importorskip("pandas")
    nullable = pd.Series(x, dtype="Int64")
    np.testing.assert_array_equal(
        model.p_alive(nullable, cdnow["t_x"], cdnow["T"]),
        model.p_alive(cdnow["x"], cdnow["t_x"], cdnow["T"]),
    )


# ===== bad input ================================================================

GOOD = ([1.0, 2.0, 0.0], [1.0, 5.0, 0.0], [4.0, 6.0, 3.0])


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "field"),
    [
        ([1.0, 2.0], GOOD[1], GOOD[2], "recency"),
        (GOOD[0], GOOD[1], [4.0, 6.0], "T"),
        ([1.0, float("nan"), 0.0], GOOD[1], GOOD[2], "frequency[1]"),
        ([1.0, None, 0.0], GOOD[1], GOOD[2], "frequency[1]"),
        ([1.0, "2", 0.0], GOOD[1], GOOD[2], "frequency[1]"),
        ([1.5, 2.0, 0.0], GOOD[1], GOOD[2], "frequency[0]"),
        ([-1.0, 2.0, 0.0], GOOD[1], GOOD[2], "frequency[0]"),
        (GOOD[0], [1.0, -5.0, 0.0], GOOD[2], "recency[1]"),
        (GOOD[0], [1.0, 7.0, 0.0], GOOD[2], "recency[1]"),
        (GOOD[0], [1.0, 5.0, 1.0], GOOD[2], "recency[2]"),
        (GOOD[0], GOOD[1], [4.0, 6.0, float("inf")], "T[2]"),
        (GOOD[0], GOOD[1], np.array(["4", "6", "3"]), "T"),
        (np.array([True, False, True]), GOOD[1], GOOD[2], "frequency"),
        ([True, False, True], GOOD[1], GOOD[2], "frequency[0]"),
        (np.ones((3, 1)), GOOD[1], GOOD[2], "frequency"),
        (3.0, GOOD[1], GOOD[2], "frequency"),
        ({"a": 1}, GOOD[1], GOOD[2], "frequency"),
        ([], [], [], "frequency"),
    ],
)
def test_bad_histories_are_validation_errors_naming_the_element(
    frequency: Any, recency: Any, T: Any, field: str
) -> None:
    assert field_of(lambda: fit_bgnbd(frequency, recency, T)) == field
    if len(GOOD[0]) == 3 and field != "frequency":
        model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
        assert field_of(lambda: model.p_alive(frequency, recency, T)) == field
        assert field_of(lambda: model.expected_purchases(1.0, frequency, recency, T)) == field


def test_missing_values_in_pandas_and_polars_columns_are_reported() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    with_na = pd.Series([1.0, None, 0.0], dtype="Float64")
    assert field_of(lambda: model.p_alive(with_na, GOOD[1], GOOD[2])) == "frequency[1]"
    assert (
        field_of(lambda: model.p_alive(pl.Series([1.0, None, 0.0]), GOOD[1], GOOD[2]))
        == "frequency[1]"
    )


def test_bad_fit_options_are_validation_errors(cdnow: dict[str, np.ndarray]) -> None:
    x, tx, t = cdnow["x"], cdnow["t_x"], cdnow["T"]
    assert field_of(lambda: fit_bgnbd(x, tx, t, weights=[1.0, 2.0])) == "weights"
    bad = np.ones_like(x)
    bad[7] = -1
    assert field_of(lambda: fit_bgnbd(x, tx, t, weights=bad)) == "weights[7]"
    assert field_of(lambda: fit_bgnbd(x, tx, t, penalizer=-0.1)) == "penalizer"
    assert field_of(lambda: fit_gamma_gamma(x, np.zeros_like(x))) == "monetary_value[0]"
    assert field_of(lambda: fit_gamma_gamma([0.0, 0.0], [0.0, 0.0])) == "frequency"


def test_a_fit_without_repeat_purchases_is_refused() -> None:
    assert field_of(lambda: fit_bgnbd([0, 0], [0, 0], [5, 6])) == "frequency"


# ===== summary ==================================================================


@pytest.mark.parametrize("case", range(4))
def test_summary_matches_the_reference_implementation(
    reference_log: dict[str, Any], case: int
) -> None:
    c = reference_log["cases"][case]
    calibration_end = c["calibration_end"] and datetime.datetime.fromisoformat(c["calibration_end"])
    s = summary(
        log_frame(reference_log),
        observation_end=reference_log["observation_end"],
        unit=c["unit"],
        calibration_end=calibration_end,
    )
    e = c["expected"]
    assert s.customer.tolist() == e["customers"] and s.customer.dtype == np.int64
    assert s.frequency.tolist() == e["frequency"]
    assert s.recency.tolist() == e["recency"]
    assert s.T.tolist() == e["T"]
    np.testing.assert_allclose(s.monetary_value * 100, e["monetary_value"], rtol=1e-14)
    assert np.round(s.total * 100).astype(np.int64).tolist() == e["total_minor"]
    assert len(s) == len(e["customers"])
    assert s.unit == c["unit"] and s.decimals == 2
    if calibration_end:
        assert s.calibration_end == calibration_end
        assert s.frequency_holdout is not None and s.monetary_value_holdout is not None
        assert s.duration_holdout is not None
        assert s.frequency_holdout.tolist() == e["holdout_frequency"]
        np.testing.assert_allclose(
            s.monetary_value_holdout * 100, e["holdout_monetary_value"], rtol=1e-14
        )
        assert s.duration_holdout.tolist() == [e["holdout_duration"]] * len(s)
    else:
        assert s.calibration_end is None
        assert s.frequency_holdout is None and s.monetary_value_holdout is None
        assert s.duration_holdout is None


def summaries_equal(a: analytics.Summary, b: analytics.Summary) -> None:
    for name, column in a.to_dict().items():
        np.testing.assert_array_equal(column, b.to_dict()[name], err_msg=name)
    assert list(a.to_dict()) == list(b.to_dict())


def test_summary_from_pandas_polars_pyarrow_and_dicts_is_identical(
    reference_log: dict[str, Any],
) -> None:
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    frame = log_frame(reference_log)
    options: dict[str, Any] = {
        "observation_end": reference_log["observation_end"],
        "calibration_end": datetime.date(2023, 10, 1),
    }
    want = summary(frame, **options)
    summaries_equal(summary(pl.from_pandas(frame), **options), want)
    summaries_equal(summary(pa.Table.from_pandas(frame), **options), want)
    as_lists = {
        "customer": reference_log["customer"],
        "date": reference_log["date"],
        "amount": [m / 100 for m in reference_log["amount_minor"]],
    }
    summaries_equal(summary(as_lists, **options), want)
    as_arrays = {k: frame[k].to_numpy() for k in frame}
    summaries_equal(summary(as_arrays, **options), want)
    in_cents = {**as_lists, "amount": reference_log["amount_minor"]}
    cents = summary(in_cents, decimals=0, **options)
    np.testing.assert_array_equal(cents.total / 100, want.total)


def test_summary_keeps_string_customer_keys(reference_log: dict[str, Any]) -> None:
    pl = pytest.importorskip("polars")
    frame = log_frame(reference_log)
    by_number = summary(frame, observation_end=reference_log["observation_end"])
    named = frame.assign(customer="c" + frame["customer"].astype(str))
    s = summary(named, observation_end=reference_log["observation_end"])
    assert s.customer.dtype == object
    assert s.customer.tolist() == sorted(f"c{c}" for c in by_number.customer.tolist())
    order = np.argsort(np.array([f"c{c}" for c in by_number.customer]))
    np.testing.assert_array_equal(s.frequency, by_number.frequency[order])
    summaries_equal(
        summary(pl.from_pandas(named), observation_end=reference_log["observation_end"]), s
    )
    # Unicode and NumPy's own string arrays.
    u = summary(
        {
            "customer": np.array(["žan", "ana", "žan"]),
            "date": [datetime.date(2024, 1, d) for d in (1, 2, 3)],
        },
        amount=None,
    )
    assert u.customer.tolist() == ["ana", "žan"] and u.frequency.tolist() == [0.0, 1.0]


def test_summary_keeps_unsigned_customer_keys() -> None:
    big = np.array([2**64 - 1, 5, 2**64 - 1], dtype=np.uint64)
    s = summary(
        {"customer": big, "date": [datetime.date(2024, 1, d) for d in (1, 2, 3)]}, amount=None
    )
    assert s.customer.dtype == np.uint64 and s.customer.tolist() == [5, 2**64 - 1]
    negative = summary(
        {"customer": [-3, 7, -3], "date": ["2024-01-01", "2024-01-02", "2024-01-04"]}, amount=None
    )
    assert negative.customer.tolist() == [-3, 7] and negative.recency.tolist() == [3.0, 0.0]


def test_amounts_are_converted_exactly() -> None:
    days = [datetime.date(2024, 1, d) for d in (1, 2, 3, 4)]
    floats = summary(
        {"customer": [1, 1, 1, 1], "date": days, "amount": [0.1, 0.2, 0.29, 1234567.89]}
    )
    assert floats.total.tolist() == [1234568.48]
    assert floats.monetary_value.tolist() == [pytest.approx((0.2 + 0.29 + 1234567.89) / 3)]
    decimals = summary(
        {
            "customer": [1, 1, 1, 1],
            "date": days,
            "amount": [Decimal("0.10"), Decimal("0.2"), 1, np.int64(2)],
        }
    )
    assert decimals.total.tolist() == [3.3]
    yen = summary(
        {"customer": [1, 1], "date": days[:2], "amount": np.array([100, 250])}, decimals=0
    )
    assert yen.total.tolist() == [350.0] and yen.decimals == 0
    dinar = summary({"customer": [1], "date": days[:1], "amount": [1.005]}, decimals=3)
    assert dinar.total.tolist() == [1.005]
    no_money = summary({"customer": [1, 1], "date": days[:2]}, amount=None)
    assert no_money.total.tolist() == [0.0] and no_money.monetary_value.tolist() == [0.0]


def test_the_observation_end_defaults_to_the_latest_date(reference_log: dict[str, Any]) -> None:
    frame = log_frame(reference_log)
    s = summary(frame)
    latest = max(reference_log["date"])
    assert s.observation_end == latest
    summaries_equal(s, summary(frame, observation_end=latest))


def test_dates_of_every_kind_give_the_same_summary() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    utc = [
        datetime.datetime(2024, 1, 1, 23, 30, tzinfo=UTC),
        datetime.datetime(2024, 1, 5, 0, 15, tzinfo=UTC),
        datetime.datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    ]
    ljubljana = [t.astimezone(datetime.timezone(datetime.timedelta(hours=1))) for t in utc]
    naive = [t.replace(tzinfo=None) for t in utc]
    kinds: dict[str, Any] = {
        "aware datetimes": ljubljana,
        "naive datetimes (UTC)": naive,
        "ISO strings": [t.isoformat() for t in ljubljana],
        "numpy datetime64[ns]": np.array(naive, dtype="datetime64[ns]"),
        "numpy datetime64[s]": np.array(naive, dtype="datetime64[s]"),
        "pandas": pd.Series(pd.to_datetime(naive)),
        "pandas, time zone": pd.Series(pd.to_datetime(utc)).dt.tz_convert("Europe/Ljubljana"),
        "pandas Timestamps": [pd.Timestamp(t) for t in ljubljana],
        "polars": pl.Series(naive),
        "polars, time zone": pl.Series(naive)
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Asia/Tokyo"),
        "pyarrow": pa.array(naive, pa.timestamp("us")),
        "pyarrow, time zone": pa.array(utc, pa.timestamp("ms", tz="America/New_York")),
    }
    end = datetime.date(2024, 3, 1)

    def history(dates: Any) -> list[list[float]]:
        s = summary({"customer": [1, 1, 1], "date": dates}, amount=None, observation_end=end)
        return [s.frequency.tolist(), s.recency.tolist(), s.T.tolist()]

    assert history(utc) == [[2.0], [59.0], [60.0]]
    for kind, dates in kinds.items():
        assert history(dates) == [[2.0], [59.0], [60.0]], kind
    days = [datetime.date(2024, 1, 1), datetime.date(2024, 1, 5), datetime.date(2024, 2, 29)]
    for dates in (days, np.array(days, dtype="datetime64[D]"), pl.Series(days), pa.array(days)):
        got = summary({"customer": [1, 1, 1], "date": dates}, amount=None, observation_end=end)
        assert got.T.tolist() == [60.0]
    for end_kind in (
        "2024-03-01",
        np.datetime64("2024-03-01T10:00"),
        pd.Timestamp("2024-03-01 10:00"),
        datetime.datetime(2024, 3, 1, 10, tzinfo=UTC),
    ):
        got = summary({"customer": [1, 1, 1], "date": utc}, amount=None, observation_end=end_kind)
        assert got.T.tolist() == [60.0]


def test_weeks_run_monday_to_sunday() -> None:
    # 2024-01-01 is a Monday.
    dates = [datetime.date(2024, 1, d) for d in (1, 7, 8, 21)]
    s = summary({"customer": [1] * 4, "date": dates, "amount": [1, 2, 4, 8]}, unit="weeks")
    assert (s.frequency.tolist(), s.recency.tolist(), s.T.tolist()) == ([2.0], [2.0], [2.0])
    assert s.monetary_value.tolist() == [6.0] and s.total.tolist() == [15.0]


def test_calibration_and_holdout() -> None:
    day = lambda d: datetime.date(2024, 5, d)  # noqa: E731
    log = {
        "customer": [1, 1, 1, 1, 2],
        "date": [day(1), day(5), day(12), day(15), day(12)],
        "amount": [1, 1, 3, 5, 9],
    }
    s = summary(log, observation_end=day(20), calibration_end=day(10))
    assert s.customer.tolist() == [1]  # customer 2 arrived in the holdout
    assert (s.frequency.tolist(), s.T.tolist(), s.total.tolist()) == ([1.0], [9.0], [2.0])
    assert s.frequency_holdout is not None and s.frequency_holdout.tolist() == [2.0]
    assert s.monetary_value_holdout is not None and s.monetary_value_holdout.tolist() == [4.0]
    assert s.duration_holdout is not None and s.duration_holdout.tolist() == [10.0]
    assert list(s.to_dict()) == [
        "customer",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "total",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]


def test_summary_columns_feed_the_models() -> None:
    # A random purchase log: a summary's columns (arrays in, arrays out) go
    # straight into the models.
    rng = np.random.default_rng(7)
    n = 400
    first = rng.integers(0, 200, n)
    repeats = rng.poisson(2, n)
    days = []
    for c in range(n):
        days.append(first[c])
        days.extend(first[c] + np.sort(rng.integers(1, 300, repeats[c])))
    log = {
        "customer": np.repeat(np.arange(n), repeats + 1),
        "date": np.datetime64("2023-01-01") + np.array(days).astype("timedelta64[D]"),
        "amount": np.round(rng.gamma(2.0, 20.0, len(days)), 2),
    }
    s = summary(log, observation_end=datetime.date(2024, 6, 30))
    assert len(s) == n
    # Nobody drops out of this log: a small penalty keeps the BG/NBD finite.
    model = fit_bgnbd(s.frequency, s.recency, s.T, penalizer=0.001)
    assert model.expected_purchases(30, s.frequency, s.recency, s.T).shape == (n,)
    spend = fit_gamma_gamma(s.frequency, s.monetary_value)
    assert np.all(spend.clv(model, s.frequency, s.recency, s.T, s.monetary_value) >= 0)


def table(**columns: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer": [1, 2, 3, 4],
        "date": [datetime.date(2024, 1, 1)] * 4,
        "amount": [1.0, 2.5, 0.29, 3],
    }
    base.update(columns)
    return base


@pytest.mark.parametrize(
    ("log", "options", "field"),
    [
        (table(amount=[1.0, 2.5, 0.295, 3]), {}, "amount[2]"),
        (table(amount=np.array([1.0, 2.5, 0.001, 3])), {}, "amount[2]"),
        (table(amount=[1.5, 2, 3, 4]), {"decimals": 0}, "amount[0]"),
        (table(amount=[1.0, 2.5, float("nan"), 3]), {}, "amount[2]"),
        (table(amount=[1.0, 2.5, None, 3]), {}, "amount[2]"),
        (table(amount=[1.0, -2.5, 1, 3]), {}, "amount[1]"),
        (table(amount=np.array([1, 2, -3, 3])), {}, "amount[2]"),
        (table(amount=[1.0, "2.5", 1, 3]), {}, "amount[1]"),
        (table(amount=[1.0, float("inf"), 1, 3]), {}, "amount[1]"),
        (table(amount=[1, 2, 3, Decimal("1.005")]), {}, "amount[3]"),
        (table(amount=[1, 2, Decimal("NaN"), 1]), {}, "amount[2]"),
        (table(amount=[1, 2, 3, True]), {}, "amount[3]"),
        (table(amount=[1.0, 2.0, 3.0]), {}, "amount"),
        (table(date=[datetime.date(2024, 1, 1)] * 3), {}, "date"),
        (
            table(
                date=[
                    datetime.date(2024, 1, 1),
                    None,
                    datetime.date(2024, 1, 1),
                    datetime.date(2024, 1, 1),
                ]
            ),
            {},
            "date[1]",
        ),
        (table(date=["2024-01-01", "yesterday", "2024-01-01", "2024-01-01"]), {}, "date[1]"),
        (table(date=[1, 2, 3, 4]), {}, "date[0]"),
        (table(date=np.array([1, 2, 3, 4])), {}, "date"),
        (
            table(
                date=np.array(
                    ["2024-01-01", "NaT", "2024-01-01", "2024-01-01"], dtype="datetime64[s]"
                )
            ),
            {},
            "date[1]",
        ),
        (table(customer=[1, None, 3, 4]), {}, "customer[1]"),
        (table(customer=[1, "b", 3, 4]), {}, "customer[1]"),
        (table(customer=["a", 2, "c", "d"]), {}, "customer[1]"),
        (table(customer=[1.5, 2, 3, 4]), {}, "customer[0]"),
        (table(customer=np.array([1.0, np.nan, 3.0, 4.0])), {}, "customer[1]"),
        (table(customer=[True, False, True, False]), {}, "customer[0]"),
        (table(), {"unit": "hours"}, "unit"),
        (table(), {"amount": "price"}, "price"),
        (table(), {"customer": "id"}, "id"),
        (table(), {"date": "when"}, "when"),
        (table(), {"decimals": -1}, "decimals"),
        (table(), {"decimals": 19}, "decimals"),
        (table(), {"observation_end": "the end"}, "observation_end"),
        (table(), {"observation_end": 5}, "observation_end"),
        (
            table(),
            {
                "observation_end": datetime.date(2024, 1, 1),
                "calibration_end": datetime.date(2024, 2, 1),
            },
            "calibration_end",
        ),
        ({"customer": [], "date": [], "amount": []}, {}, "observation_end"),
    ],
)
def test_bad_logs_are_validation_errors_naming_column_and_row(
    log: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    assert field_of(lambda: summary(log, **options)) == field


def test_bad_columns_of_dataframes_are_reported_by_name() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame(table())
    for t in (frame, pl.from_pandas(frame), pa.Table.from_pandas(frame)):
        with pytest.raises(crm.ValidationError) as info:
            summary(t, amount="price")
        assert info.value.field == "price" and "no such column" in info.value.reason
    with_na = frame.assign(customer=pd.Series([1, None, 3, 4], dtype="Int64"))
    assert field_of(lambda: summary(with_na)) == "customer[1]"
    with_nat = frame.assign(date=pd.to_datetime(["2024-01-01", None, "2024-01-01", "2024-01-01"]))
    assert field_of(lambda: summary(with_nat)) == "date[1]"
    bad_money = frame.assign(amount=pd.Series([1.0, 2.0, None, 1.0], dtype="Float64"))
    assert field_of(lambda: summary(bad_money)) == "amount[2]"


def test_errors_name_fields_but_never_values() -> None:
    with pytest.raises(crm.ValidationError) as info:
        summary(table(amount=[1.0, 2.5, 12345.678, 3]))
    assert "12345" not in str(info.value) and "amount[2]" in str(info.value)
    assert info.value.reason == "is not a multiple of 0.01"


def test_an_empty_log_with_an_observation_end_has_no_customers() -> None:
    s = summary(
        {"customer": [], "date": [], "amount": []}, observation_end=datetime.date(2024, 1, 1)
    )
    assert len(s) == 0 and s.frequency.shape == (0,)


def test_summary_repr_len_and_dataframes() -> None:
    s = summary(table(customer=["b", "a", "b", "c"]), observation_end=datetime.date(2024, 1, 31))
    assert repr(s) == (
        "Summary(customers=3, unit='days', observation_end='2024-01-31T00:00:00+00:00', "
        "calibration_end=None)"
    )
    assert len(s) == 3 and s.observation_end == datetime.datetime(2024, 1, 31, tzinfo=UTC)
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    frame = s.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [
        "customer",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "total",
    ]
    assert frame["customer"].tolist() == ["a", "b", "c"] and frame["total"].tolist() == [
        2.5,
        1.29,
        3.0,
    ]
    pd.testing.assert_frame_equal(frame, pd.DataFrame(s.to_dict()))
    polars_frame = s.to_polars()
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame.schema["customer"] == pl.String and polars_frame["total"].to_list() == [
        2.5,
        1.29,
        3.0,
    ]


@pytest.mark.parametrize(("method", "package"), [("to_pandas", "pandas"), ("to_polars", "polars")])
def test_dataframes_without_the_package_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, method: str, package: str
) -> None:
    s = summary(table())
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=rf"pip install 'crm\[{package}\]'"):
        getattr(s, method)()


# ===== RFM ======================================================================


def test_rfm_of_a_summary_matches_the_reference(reference_log: dict[str, Any]) -> None:
    s = summary(log_frame(reference_log), observation_end=reference_log["observation_end"])
    scores = rfm(s.T - s.recency, s.frequency + 1, s.total)
    want = reference_log["rfm"]
    assert scores.r.tolist() == want["recency"]
    assert scores.f.tolist() == want["frequency"]
    assert scores.m.tolist() == want["monetary"]
    assert scores.r.dtype == np.uint8 and len(scores) == len(s)


def test_rfm_scores_and_segments() -> None:
    days_since_last = [2.0, 40.0, 300.0, 10.0, 700.0]
    purchases = [12, 3, 1, 8, 2]
    spent = [2500.00, 90.00, 15.00, 1200.00, 30.00]
    scores = rfm(days_since_last, purchases, spent)
    assert scores.r.tolist() == [5, 3, 2, 4, 1]
    assert scores.f.tolist() == [5, 3, 1, 4, 2]
    assert scores.m.tolist() == [5, 3, 1, 4, 2]
    assert scores.segment.tolist() == [
        "champions",
        "need_attention",
        "hibernating",
        "loyal",
        "hibernating",
    ]
    assert list(scores.to_dict()) == ["r", "f", "m", "segment"]
    assert repr(scores) == "RfmScores(customers=5)"
    pd = pytest.importorskip("pandas")
    assert pd.DataFrame(scores.to_dict())["segment"].tolist()[0] == "champions"
    # Money in minor units: decimals=0.
    cents = rfm(days_since_last, purchases, [250000, 9000, 1500, 120000, 3000], decimals=0)
    assert cents.m.tolist() == scores.m.tolist()


def test_rfm_quintiles_and_ties() -> None:
    assert rfm_quintiles([3.0, 3.0, 1.0, 8.0, 5.0]).tolist() == [2, 2, 1, 5, 4]
    assert rfm_quintiles([3.0, 3.0, 1.0, 8.0, 5.0], higher_is_better=False).tolist() == [
        3,
        3,
        5,
        1,
        2,
    ]
    assert rfm_quintiles([4.0] * 7).tolist() == [1] * 7
    assert rfm_quintiles([]).tolist() == []
    assert rfm_quintiles(np.arange(1000)).dtype == np.uint8


def test_bad_rfm_input_is_a_validation_error() -> None:
    assert field_of(lambda: rfm([1, 2], [1], [1, 2])) == "frequency"
    assert field_of(lambda: rfm([1, 2], [1, 1], [1])) == "monetary_minor"
    assert field_of(lambda: rfm([1, float("nan")], [1, 1], [1, 2])) == "recency[1]"
    assert field_of(lambda: rfm([1, 2], [1, None], [1, 2])) == "frequency[1]"
    assert field_of(lambda: rfm([1, 2], [1, 1], [1, 2.001])) == "monetary[1]"
    assert field_of(lambda: rfm([1, 2], [1, 1], [1, -2])) == "monetary[1]"
    assert field_of(lambda: rfm_quintiles([1.0, float("nan")])) == "values[1]"


# ===== cohorts ==================================================================


def test_cohort_retention_matches_the_reference(reference_log: dict[str, Any]) -> None:
    r = cohort_retention(log_frame(reference_log), observation_end=reference_log["observation_end"])
    want = reference_log["retention"]
    assert r.cohorts[0] == datetime.date.fromisoformat(want["first_cohort"])
    assert all(isinstance(c, datetime.date) and c.day == 1 for c in r.cohorts)
    assert r.sizes.tolist() == want["sizes"] and len(r) == len(want["sizes"])
    rows = len(want["active"])
    assert r.active.shape == (rows, rows) and r.rates.shape == (rows, rows)
    for c, row in enumerate(want["active"]):
        assert r.active[c, : len(row)].tolist() == row
        assert np.all(r.active[c, len(row) :] == 0)  # padding past the observation end
        assert np.all(np.isnan(r.rates[c, len(row) :]))
    np.testing.assert_allclose(r.rates[0, 0], 1.0)
    assert r.rates[0, 1] == r.active[0, 1] / r.sizes[0]


def test_cohort_retention_from_a_polars_frame_of_string_customers() -> None:
    pl = pytest.importorskip("polars")
    at = lambda m: datetime.datetime(2024, m, 15)  # noqa: E731
    log = pl.DataFrame(
        {"who": ["a", "a", "b", "b", "c", "c"], "when": [at(1), at(2), at(1), at(3), at(2), at(3)]}
    )
    r = cohort_retention(log, customer="who", date="when")
    assert r.cohorts == [datetime.date(2024, m, 1) for m in (1, 2, 3)]
    assert r.sizes.tolist() == [2, 1, 0]
    assert r.active.tolist() == [[2, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert r.rates[1].tolist()[:2] == [1.0, 1.0] and np.isnan(r.rates[2, 0])
    assert repr(r) == "Retention(cohorts=3, from='2024-01-01', to='2024-03-01')"
    assert field_of(lambda: cohort_retention(log)) == "customer"


def test_cohort_retention_of_nothing_is_empty() -> None:
    r = cohort_retention({"customer": [], "date": []}, observation_end=datetime.date(2024, 1, 1))
    assert len(r) == 0 and r.cohorts == [] and r.active.shape == (0, 0)
    assert field_of(lambda: cohort_retention({"customer": [], "date": []})) == "observation_end"


# ===== threads ==================================================================


def test_the_gil_is_released_while_the_core_computes() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    t = rng.uniform(1.0, 52.0, n)
    x = rng.poisson(2.0, n).astype(np.float64)
    recency = np.where(x > 0, rng.uniform(0.0, 1.0, n) * t, 0.0)
    model = BgNbdModel(0.243, 4.414, 0.793, 2.426)
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=tick)
    thread.start()
    windows = []
    try:
        for _ in range(3):
            start = time.perf_counter()
            model.expected_purchases(30.0, x, recency, t)
            windows.append((start, time.perf_counter()))
    finally:
        stop.set()
        thread.join()
    inside = sum(1 for tick_at in ticks for start, end in windows if start < tick_at < end)
    # Holding the GIL, the other thread could not have run during the calls.
    assert inside >= 10, (inside, windows)


# ===== lifetimes ================================================================


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_fits_and_predictions_agree_with_lifetimes(cdnow: dict[str, np.ndarray]) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    pd = pytest.importorskip("pandas")
    x, tx, t, m = (pd.Series(cdnow[k]) for k in ("x", "t_x", "T", "zbar"))
    theirs = lifetimes.BetaGeoFitter().fit(x, tx, t)
    ours = fit_bgnbd(x, tx, t)
    np.testing.assert_allclose(
        [ours.r, ours.alpha, ours.a, ours.b], theirs.params_[["r", "alpha", "a", "b"]], rtol=1e-6
    )
    # Predictions at the same parameters (lifetimes').
    same = BgNbdModel(*theirs.params_[["r", "alpha", "a", "b"]])
    np.testing.assert_allclose(
        same.expected_purchases(10, x, tx, t),
        theirs.conditional_expected_number_of_purchases_up_to_time(10, x, tx, t),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        same.p_alive(x, tx, t), theirs.conditional_probability_alive(x, tx, t), rtol=1e-9
    )
    horizons = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(
        same.expected_purchases_unconditional(horizons),
        theirs.expected_number_of_purchases_up_to_time(horizons),
        rtol=1e-9,
    )
    # And at each one's own estimates, which differ by lifetimes' tolerance.
    np.testing.assert_allclose(
        ours.expected_purchases(10, x, tx, t),
        theirs.conditional_expected_number_of_purchases_up_to_time(10, x, tx, t),
        rtol=1e-6,
        atol=1e-12,
    )
    repeat = x > 0
    spend_theirs = lifetimes.GammaGammaFitter().fit(x[repeat], m[repeat])
    spend_ours = fit_gamma_gamma(x, m)
    np.testing.assert_allclose(
        [spend_ours.p, spend_ours.q, spend_ours.gamma],
        spend_theirs.params_[["p", "q", "v"]],
        rtol=1e-6,
    )
    same_spend = GammaGammaModel(*spend_theirs.params_[["p", "q", "v"]])
    np.testing.assert_allclose(
        same_spend.expected_average_value(x, m),
        spend_theirs.conditional_expected_average_profit(x, m),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        same_spend.clv(same, x, tx, t, m, unit="weeks"),
        spend_theirs.customer_lifetime_value(
            theirs, x, tx, t, m, time=12, discount_rate=0.01, freq="W"
        ),
        rtol=1e-9,
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_summary_agrees_with_lifetimes(reference_log: dict[str, Any]) -> None:
    lifetimes_utils = pytest.importorskip("lifetimes.utils")
    frame = log_frame(reference_log)
    end = reference_log["observation_end"]
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        frame.assign(date=frame["date"].dt.tz_localize(None)),
        "customer",
        "date",
        monetary_value_col="amount",
        observation_period_end=end.replace(tzinfo=None),
        freq="D",
    )
    ours = summary(frame, observation_end=end)
    assert ours.customer.tolist() == theirs.index.tolist()
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(getattr(ours, column), theirs[column], err_msg=column)
    np.testing.assert_allclose(ours.monetary_value, theirs["monetary_value"], rtol=1e-12)


# ===== the module ===============================================================


def test_the_module_doctests_pass() -> None:
    result = doctest.testmod(analytics, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_the_native_module_is_importable_and_reexported() -> None:
    import crm._crm.analytics as native

    assert crm.analytics.fit_bgnbd is native.fit_bgnbd
    assert set(analytics.__all__) == {n for n in dir(native) if not n.startswith("_")}
    assert analytics.Summary.__module__ == "crm.analytics"
    for name in analytics.__all__:
        assert getattr(analytics, name).__doc__, name
