"""What rules cost from Python: logging interactions one call at a time with
20 active rules against the same with none, in the same run; and the
scheduled sweep against the same question asked with hand-written SQL
through `sqlite3`.

    python3 crm-py/bench/bench_rules.py [--interactions 100000] [--customers 1000000]

Logging: two fresh files with the same 10,000 customers; one gets the 20
rules of `RULES` (what a sales team would run: five react to interactions,
the others to customer changes, deals, segments and the sweep). Each file
first gets the customers' histories (`--interactions` rows, not timed), so
that the rules have acted as they would have in a store in use; then the
same `--interactions` rows (40 % purchases, 30 % emails, 20 % web visits,
10 % calls) are logged with `log_interaction` into both, alternating blocks
of 1,000. The ratio is with rules / without.

Sweep: a file of `--customers` customers with one purchase each at a
random time in the past 365 days, and a scheduled rule "no purchase for 90
days → churned, tag lapsed"; the first sweep (a day ago: catching up with
three customers in four) and the next day's are timed, next to `sqlite3`
counting the same customers on the same file.

No timing is asserted; ratios are printed. Build the `crm` module with the
release profile for meaningful figures (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import crm

PURCHASE = {"type": "interaction_logged", "kind": "purchase"}


def updated(field: str) -> dict[str, Any]:
    return {"type": "customer_updated", "fields": [field]}


def tag(t: str) -> dict[str, Any]:
    return {"type": "add_tag", "tag": t}


def stage(s: str) -> dict[str, Any]:
    return {"type": "set_stage", "stage": s}


ROUND_ROBIN = {"type": "round_robin", "team": "sales"}

# name, trigger, condition, actions: the same 20 rules as
# examples/bench_rules.rs.
RULES: list[tuple[str, Any, str | None, list[dict[str, Any]]]] = [
    ("first purchase", PURCHASE, None, [stage("customer")]),
    ("repeat buyer", PURCHASE, "count(purchases) >= 3", [tag("repeat")]),
    ("big spender", PURCHASE, "sum(purchases.amount) > 500", [tag("big-spender")]),
    (
        "engaged by email",
        {"type": "interaction_logged", "kind": "email"},
        "count(emails within 30d) >= 5",
        [tag("engaged")],
    ),
    ("active", {"type": "interaction_logged"}, 'stage = "subscriber"', [stage("lead")]),
    (
        "vip to list",
        updated("tags"),
        '"vip" in tags',
        [{"type": "add_to_segment", "segment": "vip list"}],
    ),
    (
        "big spenders are evangelists",
        updated("tags"),
        '"big-spender" in tags and "repeat" in tags',
        [stage("evangelist")],
    ),
    (
        "assign customers",
        updated("lifecycle_stage"),
        'stage = "customer"',
        [{"type": "assign_owner", "assignment": ROUND_ROBIN}],
    ),
    (
        "churned win-back",
        updated("lifecycle_stage"),
        'stage = "churned"',
        [{"type": "add_to_segment", "segment": "win-back"}],
    ),
    ("plan change", updated("attributes"), 'attr.plan = "pro"', [tag("pro")]),
    ("welcome", "customer_created", None, [tag("new")]),
    (
        "austrians",
        "customer_created",
        'country = "AT"',
        [
            {
                "type": "assign_owner",
                "assignment": {
                    "type": "territory",
                    "attribute": "country",
                    "owners": {"AT": "bo"},
                    "team": "sales",
                },
            }
        ],
    ),
    (
        "vip welcome call",
        "customer_created",
        '"vip" in tags',
        [{"type": "create_task", "title": "Call {name}", "due_in_days": 1}],
    ),
    (
        "proposal follow-up",
        {"type": "deal_stage_changed", "pipeline": "sales", "to_stage": "proposal"},
        None,
        [{"type": "create_task", "title": "Follow up {deal.title}", "due_in_days": 3}],
    ),
    (
        "deal won",
        {"type": "deal_stage_changed", "pipeline": "sales", "to_stage": "won"},
        None,
        [stage("customer")],
    ),
    (
        "vip entered",
        {"type": "segment_entered", "segment": "vip list"},
        None,
        [tag("vip-listed")],
    ),
    (
        "win-back entered",
        {"type": "segment_entered", "segment": "win-back"},
        None,
        [{"type": "emit", "event": "win_back"}],
    ),
    ("lapsed", "schedule", "days_since(last purchase) > 90", [stage("churned")]),
    (
        "never bought",
        "schedule",
        'days_since(last purchase) is null and created_at < "2026-01-01"',
        [tag("never-bought")],
    ),
    (
        "pro without purchase",
        updated("attributes"),
        'attr.plan = "pro" and count(purchases) = 0',
        [tag("pro-idle")],
    ),
]


def set_up(path: Path, customers: int) -> crm.Crm:
    db = crm.open(path)
    db.create_pipeline(
        "sales",
        "EUR",
        [
            {"name": "lead", "probability": 10},
            {"name": "proposal", "probability": 50},
            {"name": "won", "probability": 100, "closed": True, "won": True},
        ],
    )
    db.set_team("sales", ["ana", "bo", "cy", "dee"])
    db.define_attribute("plan", "text")
    db.create_segment("vip list")
    db.create_segment("win-back")
    db.import_customers(
        {
            "name": f"Customer {i}",
            "external_id": f"c{i}",
            "country": ["SI", "AT", "DE", "SE"][i % 4],
            "tags": ["vip"] if i % 10 == 0 else [],
        }
        for i in range(customers)
    )
    return db


def interactions(customers: int, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for _ in range(n):
        roll = rng.randrange(10)
        kind = "purchase" if roll < 4 else "email" if roll < 7 else "web_visit" if roll < 9 else "call"
        row: dict[str, Any] = {
            "customer": {"external_id": f"c{rng.randrange(customers)}"},
            "kind": kind,
            "occurred_at": now - datetime.timedelta(seconds=rng.randrange(86_400 * 60)),
        }
        if kind == "purchase":
            row["amount_minor"] = 1_000 + rng.randrange(20_000)
            row["currency"] = "EUR"
        rows.append(row)
    return rows


def log_alternating(dbs: list[crm.Crm], rows: list[dict[str, Any]]) -> list[float]:
    spent = [0.0] * len(dbs)
    for start in range(0, len(rows), 1_000):
        block = rows[start : start + 1_000]
        for k, db in enumerate(dbs):
            t = time.perf_counter()
            for row in block:
                db.log_interaction(**row)
            spent[k] += time.perf_counter() - t
    return spent


def sweep(directory: Path, customers: int) -> dict[str, float]:
    path = directory / "sweep.crm"
    db = crm.open(path)
    db.import_customers({"name": f"Customer {i}", "external_id": f"c{i}"} for i in range(customers))
    rng = random.Random(7)
    now = datetime.datetime.now(datetime.UTC)
    db.import_interactions(
        {
            "customer_external_id": f"c{i}",
            "kind": "purchase",
            "amount_minor": 1_000,
            "currency": "EUR",
            "occurred_at": now - datetime.timedelta(seconds=rng.randrange(86_400 * 365)),
        }
        for i in range(customers)
    )
    db.create_rule(
        "lapsed",
        "schedule",
        [stage("churned"), tag("lapsed")],
        condition="days_since(last purchase) > 90",
    )
    t = time.perf_counter()
    first = db.run_sweep(now - datetime.timedelta(days=1))
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    daily = db.run_sweep(now)
    daily_s = time.perf_counter() - t
    raw = sqlite3.connect(path)
    threshold = int((now - datetime.timedelta(days=91)).timestamp() * 1_000_000)
    t = time.perf_counter()
    (count,) = raw.execute(
        "SELECT count(*) FROM interaction_stats WHERE kind = 'purchase' AND currency = 'EUR' AND last_at <= ?",
        (threshold,),
    ).fetchone()
    sql_s = time.perf_counter() - t
    assert count == daily["rules"][0]["matching"], (count, daily["rules"][0])
    return {
        "sweep_first_s": first_s,
        "sweep_first_acted": first["rules"][0]["acted_on"],
        "sweep_daily_s": daily_s,
        "sweep_daily_acted": daily["rules"][0]["acted_on"],
        "sweep_sql_s": sql_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        plain = set_up(directory / "plain.crm", 10_000)
        ruled = set_up(directory / "ruled.crm", 10_000)
        for name, trigger, condition, actions in RULES:
            ruled.create_rule(name, trigger, actions, condition=condition)
        log_alternating([plain, ruled], interactions(10_000, args.interactions, 1))
        spent = log_alternating([plain, ruled], interactions(10_000, args.interactions, 2))
        ratio = spent[1] / spent[0]
        per = [s * 1e6 / args.interactions for s in spent]
        print(
            f"log {args.interactions} interactions: no rules {spent[0]:.2f} s ({per[0]:.1f} µs each); "
            f"20 rules {spent[1]:.2f} s ({per[1]:.1f} µs); ratio {ratio:.2f}×"
        )
        figures: dict[str, Any] = {
            "interactions": args.interactions,
            "log_no_rules_s": spent[0],
            "log_20_rules_s": spent[1],
            "ratio": ratio,
        }
        s = sweep(directory, args.customers)
        print(
            f"sweep over {args.customers} customers: first {s['sweep_first_s']:.2f} s "
            f"(acted on {s['sweep_first_acted']}); next day {s['sweep_daily_s']:.2f} s "
            f"(acted on {s['sweep_daily_acted']}); sqlite3 count {s['sweep_sql_s']:.2f} s, "
            f"ratio {s['sweep_daily_s'] / s['sweep_sql_s']:.1f}×"
        )
        figures.update(s, customers=args.customers)
        if args.json:
            Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
