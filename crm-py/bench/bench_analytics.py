"""Customer analytics: `crm.analytics` against lifetimes + pandas (and RFM
against polars) on the same seeded purchase log, measured in the same run.

    python3 crm-py/bench/bench_analytics.py [--customers 1000000] [--seed 7] [--ordered]

The log is generated with NumPy from the BG/NBD and Gamma-Gamma models
themselves (so that both fits have something to find): first purchases
spread over a year, two years observed, about twelve purchases per customer
(about 11,600,000 for the default 1,000,000 customers), amounts in cents,
shuffled (`--ordered`: ordered by customer and time, as crm's store reads
it, which crm's summary takes without sorting). It is one pandas DataFrame
(customer int64, date datetime64[s], amount float64) that both sides read.
Then, per step:

- summary: `crm.analytics.summary` / lifetimes'
  `summary_data_from_transaction_data` (days);
- BG/NBD fit: `fit_bgnbd` / `BetaGeoFitter().fit` on that summary;
- predictions for every customer: expected purchases in the next 30 days
  and P(alive);
- Gamma-Gamma: `fit_gamma_gamma` / `GammaGammaFitter().fit` (repeat
  customers) and the expected average value of every customer;
- RFM from the log: `summary` + `rfm` / a polars group-by (last purchase
  day, purchase days, spend in cents) with the same quintile rule
  (1 + ⌊5·w/n⌋, w = customers strictly worse), over a polars DataFrame of
  the same log.

Each side runs in a child process forked after the log is generated, so
that its peak memory (VmHWM minus the RSS at the fork: what the side
allocates on top of the shared input) is its own; it warms up on the first
1 % of the customers (untimed), then runs every step once. The results are
checked to agree: the summaries, the fitted parameters (relative
differences printed), the predictions and the RFM scores.

`--skip-lifetimes-summary` gives lifetimes crm's summary instead of timing
its own (its summary takes minutes on 10,000,000 rows); the default compares
end to end.

Needs `lifetimes`, `pandas` and `polars`, and the `crm` module built with
the release profile (`CRM_PY_RELEASE=1 bash scripts/test-python.sh`, or
`maturin build --release -m crm-py/Cargo.toml` and pip install the wheel).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

START = np.datetime64("2022-01-01T00:00:00", "s")
OBSERVED_DAYS = 730  # two years
ACQUISITION_DAYS = 365  # first purchases in the first year
END = START + np.timedelta64(OBSERVED_DAYS * 86_400 - 1, "s")  # the last second observed

# The generating models, per day and per dollar.
BGNBD = {"r": 0.6, "alpha": 12.0, "a": 0.7, "b": 6.0}
GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def generate(customers: int, seed: int, *, ordered: bool = False) -> pd.DataFrame:
    """A purchase log from the BG/NBD: λ ~ Gamma(r, 1/α), p ~ Beta(a, b);
    given n arrivals of the rate-λ process in the observed span (uniform
    times), the customer makes the first N of them, N ~ Geometric(p) (they
    drop out after the N-th). Amounts per customer ~ Gamma(p, ν), ν ~
    Gamma(q, γ), rounded to cents."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], customers)
    dropout = rng.beta(BGNBD["a"], BGNBD["b"], customers)
    first = rng.uniform(0.0, ACQUISITION_DAYS, customers)
    span = OBSERVED_DAYS - first
    arrivals = rng.poisson(rate * span)
    kept = np.minimum(arrivals, rng.geometric(dropout))
    # Arrival times, sorted within each customer; the first `kept` are purchases.
    owner = np.repeat(np.arange(customers), arrivals)
    offset = rng.uniform(0.0, 1.0, owner.size) * span[owner]
    order = np.lexsort((offset, owner))
    owner, offset = owner[order], offset[order]
    starts = np.concatenate([[0], np.cumsum(arrivals)[:-1]])
    rank = np.arange(owner.size) - starts[owner]
    repeat = rank < kept[owner]
    customer = np.concatenate([np.arange(customers), owner[repeat]])
    day = np.concatenate([first, first[owner[repeat]] + offset[repeat]])
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], customers)
    amount = np.maximum(np.round(rng.gamma(GAMMA_GAMMA["p"], 1.0 / nu[customer]), 2), 0.01)
    # A log in no particular order, as a file or a query without ORDER BY
    # gives it; or ordered by customer and time, as the store reads it.
    seconds = np.floor(day * 86_400).astype(np.int64)
    order = np.lexsort((seconds, customer)) if ordered else rng.permutation(customer.size)
    return pd.DataFrame(
        {
            "customer": customer[order].astype(np.int64),
            "date": START + seconds[order].astype("timedelta64[s]"),
            "amount": amount[order],
        }
    )


def timed(steps: dict[str, float], name: str, f: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = f()
    steps[name] = time.perf_counter() - started
    return result


def memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Starts VmHWM afresh (Linux ≥ 4.0); else it is the parent's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def warm_up(
    job: Callable[[pd.DataFrame, dict[str, float]], dict[str, Any]], log: pd.DataFrame
) -> None:
    """Runs `job` once on the first customers' purchases (imports, first
    calls), untimed."""
    few = log[log["customer"] < max(1_000, log["customer"].max() // 100)]
    job(few, {})


def run_crm(log: pd.DataFrame, steps: dict[str, float] | None = None) -> dict[str, Any]:
    from crm import analytics

    if steps is None:
        warm_up(run_crm, log)
        steps = {}
    end = END.astype(datetime.datetime)
    s = timed(steps, "summary", lambda: analytics.summary(log, observation_end=end))
    bg = timed(steps, "BG/NBD fit", lambda: analytics.fit_bgnbd(s.frequency, s.recency, s.T))

    def predict() -> tuple[np.ndarray, np.ndarray]:
        return (
            bg.expected_purchases(30.0, s.frequency, s.recency, s.T),
            bg.p_alive(s.frequency, s.recency, s.T),
        )

    purchases, alive = timed(steps, "predictions (30-day purchases + P(alive))", predict)

    def spend() -> tuple[Any, np.ndarray]:
        gg = analytics.fit_gamma_gamma(s.frequency, s.monetary_value)
        return gg, gg.expected_average_value(s.frequency, s.monetary_value)

    gg, value = timed(steps, "Gamma-Gamma fit + expected values", spend)

    def rfm() -> Any:
        from_log = analytics.summary(log, observation_end=end)
        return analytics.rfm(from_log.T - from_log.recency, from_log.frequency + 1, from_log.total)

    scores = timed(steps, "RFM from the log", rfm)
    return {
        "steps": steps,
        "customers": len(s),
        "sums": [float(s.frequency.sum()), float(s.recency.sum()), float(s.T.sum())],
        "monetary": s.monetary_value,
        "bgnbd": [bg.r, bg.alpha, bg.a, bg.b],
        "gamma_gamma": [gg.p, gg.q, gg.gamma],
        "purchases": purchases,
        "alive": alive,
        "value": value,
        "rfm": np.stack([scores.r, scores.f, scores.m]),
    }


def polars_rfm(pl: Any, log: Any, end_day: datetime.date) -> Any:
    n = pl.len()

    def score(column: str, *, descending: bool = False) -> Any:
        worse = pl.col(column).rank("min", descending=descending) - 1
        return (1 + 5 * worse // n).cast(pl.UInt8)

    return (
        log.lazy()
        .with_columns(
            day=pl.col("date").dt.date(), cents=(pl.col("amount") * 100).round().cast(pl.Int64)
        )
        .group_by("customer")
        .agg(last=pl.col("day").max(), days=pl.col("day").n_unique(), spent=pl.col("cents").sum())
        .with_columns(since=(pl.lit(end_day) - pl.col("last")).dt.total_days())
        .with_columns(r=score("since", descending=True), f=score("days"), m=score("spent"))
        .sort("customer")
        .select("r", "f", "m")
        .collect()
    )


def run_reference(
    log: pd.DataFrame,
    steps: dict[str, float] | None = None,
    crm_summary: pd.DataFrame | None = None,
) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    import polars as pl
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    if steps is None:
        warm_up(run_reference, log)
        steps = {}
    end = pd.Timestamp(END)
    if crm_summary is None:
        s = timed(
            steps,
            "summary",
            lambda: summary_data_from_transaction_data(
                log,
                "customer",
                "date",
                monetary_value_col="amount",
                observation_period_end=end,
                freq="D",
            ),
        )
    else:
        s = crm_summary
    bg = timed(
        steps, "BG/NBD fit", lambda: BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    )

    def predict() -> tuple[np.ndarray, np.ndarray]:
        return (
            np.asarray(
                bg.conditional_expected_number_of_purchases_up_to_time(
                    30.0, s["frequency"], s["recency"], s["T"]
                )
            ),
            np.asarray(bg.conditional_probability_alive(s["frequency"], s["recency"], s["T"])),
        )

    purchases, alive = timed(steps, "predictions (30-day purchases + P(alive))", predict)

    def spend() -> tuple[Any, np.ndarray]:
        repeat = s[s["frequency"] > 0]
        gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        return gg, np.asarray(
            gg.conditional_expected_average_profit(s["frequency"], s["monetary_value"])
        )

    gg, value = timed(steps, "Gamma-Gamma fit + expected values", spend)
    frame = pl.from_pandas(log)
    end_day = END.astype(datetime.datetime).date()
    scores = timed(steps, "RFM from the log", lambda: polars_rfm(pl, frame, end_day))
    return {
        "steps": steps,
        "customers": len(s),
        "sums": [float(s["frequency"].sum()), float(s["recency"].sum()), float(s["T"].sum())],
        "monetary": np.asarray(s["monetary_value"]),
        "bgnbd": [bg.params_[k] for k in ("r", "alpha", "a", "b")],
        "gamma_gamma": [gg.params_[k] for k in ("p", "q", "v")],
        "purchases": purchases,
        "alive": alive,
        "value": value,
        "rfm": scores.to_numpy().T,
    }


def in_child(job: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Runs `job(*args)` in a forked child; adds its memory figures."""
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)

    def child() -> None:
        try:
            reset_peak()
            at_fork = memory_kb("VmRSS")
            result = job(*args)
            result["extra_mb"] = (memory_kb("VmHWM") - at_fork) / 1024
            writer.send(result)
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            writer.send({"error": repr(e)})
            raise

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    result: dict[str, Any] = reader.recv()
    process.join()
    if "error" in result:
        sys.exit(f"{job.__name__} failed: {result['error']}")
    return result


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--ordered",
        action="store_true",
        help="the log ordered by customer and time (as the store reads it) instead of shuffled",
    )
    p.add_argument(
        "--skip-lifetimes-summary",
        action="store_true",
        help="give lifetimes crm's summary instead of timing its own",
    )
    args = p.parse_args()

    started = time.perf_counter()
    log = generate(args.customers, args.seed, ordered=args.ordered)
    print(
        f"generated {len(log):,} purchases of {args.customers:,} customers "
        f"({'ordered by customer and time' if args.ordered else 'shuffled'}) "
        f"in {time.perf_counter() - started:.1f} s (not timed); "
        f"RSS {memory_kb('VmRSS') / 1024:.0f} MB with the log"
    )

    import crm
    import lifetimes
    import polars

    ours = in_child(run_crm, log)
    crm_summary = None
    if args.skip_lifetimes_summary:
        # The same numbers lifetimes' own summary gives (checked by default).
        from crm import analytics

        s = analytics.summary(log, observation_end=END.astype(datetime.datetime))
        crm_summary = pd.DataFrame(s.to_dict()).set_index("customer")
    theirs = in_child(run_reference, log, None, crm_summary)

    print(
        f"\n# {args.customers:,} customers, {len(log):,} purchases; crm {crm.__version__}, "
        f"lifetimes {lifetimes.__version__}, pandas {pd.__version__}, polars {polars.__version__}, "
        f"NumPy {np.__version__}; {os.cpu_count()} cores; one run of each step after a warm-up\n"
    )
    print("| step | crm.analytics | reference | ratio reference / crm |")
    print("|---|---|---|---|")
    for step, ref_seconds in theirs["steps"].items():
        crm_seconds = ours["steps"][step]
        reference = "polars" if step.startswith("RFM") else "lifetimes + pandas"
        print(
            f"| {step} | {crm_seconds:.3f} s | {ref_seconds:.3f} s ({reference}) "
            f"| {ref_seconds / crm_seconds:.1f}× |"
        )
    lifetimes_steps = [k for k in theirs["steps"] if not k.startswith("RFM")]
    crm_total = sum(ours["steps"][k] for k in lifetimes_steps)
    ref_total = sum(theirs["steps"][k] for k in lifetimes_steps)
    skipped = " (lifetimes' summary not timed)" if args.skip_lifetimes_summary else ""
    print(
        f"| **end to end{skipped}** | **{crm_total:.3f} s** | **{ref_total:.3f} s** "
        f"| **{ref_total / crm_total:.1f}×** (target ≥ 20×) |"
    )
    rfm_ratio = theirs["steps"]["RFM from the log"] / ours["steps"]["RFM from the log"]
    print(f"\nRFM: crm is {rfm_ratio:.1f}× as fast as polars (target > 1×)")
    print(
        f"peak memory on top of the shared log: crm {ours['extra_mb']:.0f} MB, "
        f"lifetimes + pandas + polars {theirs['extra_mb']:.0f} MB"
    )

    # The check: same summaries, parameters, predictions and scores.
    print("\n## agreement")
    assert ours["customers"] == theirs["customers"], (ours["customers"], theirs["customers"])
    for name, a, b in zip(("frequency", "recency", "T"), ours["sums"], theirs["sums"], strict=True):
        assert a == b, f"summary {name}: crm sums to {a}, lifetimes to {b}"
    monetary = np.max(
        np.abs(ours["monetary"] - theirs["monetary"]) / np.maximum(theirs["monetary"], 1e-300)
    )
    print(
        "summaries: identical frequency, recency and T; "
        f"monetary value within {monetary:.1e} relative"
    )
    for model, names in (("bgnbd", ("r", "alpha", "a", "b")), ("gamma_gamma", ("p", "q", "gamma"))):
        diffs = ", ".join(
            f"{n} {a:.6g} vs {b:.6g} ({relative(a, b):.1e})"
            for n, a, b in zip(names, ours[model], theirs[model], strict=True)
        )
        truth = BGNBD if model == "bgnbd" else GAMMA_GAMMA
        print(f"{model} crm vs lifetimes (relative difference): {diffs}; generated with {truth}")
    for name in ("purchases", "alive", "value"):
        worst = np.max(np.abs(ours[name] - theirs[name]) / np.maximum(np.abs(theirs[name]), 1e-12))
        print(f"{name}: largest relative difference {worst:.1e} (the fits differ by the above)")
    same = np.mean(np.all(ours["rfm"] == theirs["rfm"], axis=0))
    print(f"RFM scores: {same:.4%} of customers identical")
    assert same == 1.0


if __name__ == "__main__":
    main()
