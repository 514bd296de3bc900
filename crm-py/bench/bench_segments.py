"""Segment counts: crm-core (through the Python binding) against DuckDB over
the same data exported to Parquet, measured in the same run.

    python3 crm-py/bench/bench_segments.py /tmp/seg1m.crm [--parquet-dir DIR] [--runs 5]

The CRM file is the one `cargo run --release --example bench_segments -- --db
PATH` generates (1,000,000 customers by default). The columns the five
questions need are exported to Parquet first (timed, but not part of the
comparison; reused when `--parquet-dir` already holds them):

- customers.parquet: rowid, country, tags (a list), plan (the `plan`
  attribute), stage, created_at;
- interactions.parquet: customer_rowid, kind, occurred_at, amount_minor,
  currency;
- consent.parquet: the current answer per customer, purpose and channel
  (`''` for every channel).

Then each question is answered by `crm.open(path).count_matching(filter)`
and by DuckDB reading the Parquet files (its default settings: as many
threads as cores), one warm-up and then `--runs` runs alternating between
the two; the medians are printed with the ratio crm / DuckDB. As a second
DuckDB figure, the same query over the data loaded into DuckDB's own
in-memory tables (what a notebook would do after the first read).

The counts are checked to agree (a real check, not a timing one). The
library reads "now" itself; DuckDB is given now (before and after the
library's call) as a parameter, so that a purchase crossing a window's edge
in between is noticed and the check repeated.

Needs `duckdb` and `pyarrow` (`pip install duckdb pyarrow`) and the `crm`
module built with the release profile (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import crm
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DAY_MICROS = 86_400_000_000
EPOCH = datetime.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Case:
    name: str
    filter: str
    duckdb: str


# The same questions as examples/bench_segments.rs. $now, $lo90 and $lo365
# are now and now minus 90 / 365 days, as TIMESTAMPs (UTC).
PURCHASES_365 = """
    SELECT customer_rowid FROM interactions
    WHERE kind = 'purchase' AND occurred_at BETWEEN $lo365 AND $now
    GROUP BY customer_rowid HAVING sum(amount_minor) > 50000"""
PURCHASES_90 = """
    SELECT customer_rowid FROM interactions
    WHERE kind = 'purchase' AND occurred_at BETWEEN $lo90 AND $now
    GROUP BY customer_rowid HAVING count(*) >= 3"""
CONSENTED = """
    SELECT customer_rowid FROM consent
    WHERE purpose = 'email_marketing' AND channel = '' AND status = 'granted'"""

CASES = [
    Case(
        "1 field",
        'country = "DE"',
        "SELECT count(*) FROM customers WHERE country = 'DE'",
    ),
    Case(
        "2 tag + attribute",
        '"vip" in tags and attr.plan = "pro"',
        "SELECT count(*) FROM customers WHERE list_contains(tags, 'vip') AND plan = 'pro'",
    ),
    Case(
        "3 purchases in 90 days",
        "count(purchases within 90d) >= 3",
        f"SELECT count(*) FROM ({PURCHASES_90})",
    ),
    Case(
        "4 365-day spend + consent",
        'sum(purchases.amount within 365d) > 500 and consented("email_marketing")',
        f"SELECT count(*) FROM ({PURCHASES_365}) s JOIN ({CONSENTED}) k USING (customer_rowid)",
    ),
    Case(
        "5 nested and/or/not",
        '(country = "DE" or ("vip" in tags and attr.plan = "pro")) and '
        'sum(purchases.amount within 365d) > 500 and consented("email_marketing") and '
        "not (count(purchases within 90d) >= 3)",
        f"""SELECT count(*) FROM customers c
            JOIN ({PURCHASES_365}) s ON s.customer_rowid = c.rowid
            JOIN ({CONSENTED}) k ON k.customer_rowid = c.rowid
            WHERE (c.country = 'DE' OR (list_contains(c.tags, 'vip') AND c.plan = 'pro'))
              AND c.rowid NOT IN ({PURCHASES_90})""",
    ),
    Case(
        "6 almost everyone",
        'not ("do-not-call" in tags)',
        "SELECT count(*) FROM customers WHERE NOT list_contains(tags, 'do-not-call')",
    ),
]

CHUNK = 500_000


def export(db_path: str, out: str) -> None:
    """Writes the three Parquet files from the CRM file, in chunks."""
    os.makedirs(out, exist_ok=True)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    ts = pa.timestamp("us")

    def write(
        name: str,
        sql: str,
        schema: pa.Schema,
        convert: Callable[[list[Any]], list[Any]],
    ) -> int:
        tmp = os.path.join(out, name + ".tmp")
        n = 0
        with pq.ParquetWriter(tmp, schema) as w:
            cur = src.execute(sql)
            while rows := cur.fetchmany(CHUNK):
                cols = [list(c) for c in zip(*rows)]
                cols = convert(cols)
                w.write_table(pa.Table.from_arrays(cols, schema=schema))
                n += len(rows)
        os.replace(tmp, os.path.join(out, name))
        return n

    def micros(col: list[int]) -> pa.Array:
        return pa.array(col, pa.int64()).cast(ts)

    customers = write(
        "customers.parquet",
        "SELECT rowid, country, tags, json_extract(attributes, '$.plan'), lifecycle_stage, created_at"
        " FROM customers ORDER BY rowid",
        pa.schema(
            [
                ("rowid", pa.int64()),
                ("country", pa.string()),
                ("tags", pa.list_(pa.string())),
                ("plan", pa.string()),
                ("stage", pa.string()),
                ("created_at", ts),
            ]
        ),
        lambda c: [c[0], c[1], [json.loads(t) for t in c[2]], c[3], c[4], micros(c[5])],
    )
    interactions = write(
        "interactions.parquet",
        "SELECT customer_rowid, kind, occurred_at, amount_minor, currency FROM interactions ORDER BY rowid",
        pa.schema(
            [
                ("customer_rowid", pa.int64()),
                ("kind", pa.string()),
                ("occurred_at", ts),
                ("amount_minor", pa.int64()),
                ("currency", pa.string()),
            ]
        ),
        lambda c: [c[0], c[1], micros(c[2]), c[3], c[4]],
    )
    consents = write(
        "consent.parquet",
        "SELECT customer_rowid, purpose, channel, status, recorded_at FROM consent_current",
        pa.schema(
            [
                ("customer_rowid", pa.int64()),
                ("purpose", pa.string()),
                ("channel", pa.string()),
                ("status", pa.string()),
                ("recorded_at", ts),
            ]
        ),
        lambda c: [c[0], c[1], c[2], c[3], micros(c[4])],
    )
    src.close()
    print(
        f"exported {customers} customers, {interactions} interactions, {consents} consent rows"
    )


def now_micros() -> int:
    return time.time_ns() // 1_000


def timestamp(micros: int) -> datetime.datetime:
    """A naive UTC datetime, exact to the microsecond (DuckDB: TIMESTAMP)."""
    return EPOCH + datetime.timedelta(microseconds=micros)


def bounds(now: int) -> dict[str, datetime.datetime]:
    return {
        "now": timestamp(now),
        "lo90": timestamp(now - 90 * DAY_MICROS),
        "lo365": timestamp(now - 365 * DAY_MICROS),
    }


class Duck:
    """A DuckDB connection whose `customers`, `interactions` and `consent`
    are views over the Parquet files, or tables loaded from them."""

    def __init__(self, parquet: str, *, load: bool) -> None:
        self.con = duckdb.connect()
        kind = "TABLE" if load else "VIEW"
        for name in ("customers", "interactions", "consent"):
            path = os.path.join(parquet, name + ".parquet").replace("'", "''")
            self.con.execute(
                f"CREATE {kind} {name} AS SELECT * FROM read_parquet('{path}')"
            )

    def count(self, case: Case, now: int) -> int:
        params = {k: v for k, v in bounds(now).items() if f"${k}" in case.duckdb}
        row = self.con.execute(case.duckdb, params).fetchone()
        assert row is not None
        return int(row[0])


def timed(f: Callable[[], object]) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1_000


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("db", help="the CRM file made by examples/bench_segments.rs")
    p.add_argument(
        "--parquet-dir",
        help="where the Parquet files go (default: next to the CRM file)",
    )
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    parquet = args.parquet_dir or os.path.splitext(args.db)[0] + "-parquet"

    if all(
        os.path.exists(os.path.join(parquet, f + ".parquet"))
        for f in ("customers", "interactions", "consent")
    ):
        print(f"reusing the Parquet files in {parquet}")
    else:
        started = time.perf_counter()
        export(args.db, parquet)
        print(
            f"export to Parquet: {time.perf_counter() - started:.1f} s (not part of the comparison)"
        )
    size = sum(os.path.getsize(os.path.join(parquet, f)) for f in os.listdir(parquet))
    print(
        f"Parquet: {size / 1e6:.0f} MB; CRM file: {os.path.getsize(args.db) / 1e6:.0f} MB"
    )

    db = crm.open(args.db)
    if not hasattr(db, "count_matching"):
        sys.exit(
            "this build of the crm module has no count_matching; rebuild it (see BENCHMARKS.md)"
        )
    views = Duck(parquet, load=False)
    started = time.perf_counter()
    tables = Duck(parquet, load=True)
    print(
        f"loading the Parquet files into DuckDB tables: {time.perf_counter() - started:.1f} s"
    )
    threads = views.con.execute("SELECT current_setting('threads')").fetchone()
    print(
        f"\n# {db.count_customers()} customers, {db.count_interactions()} interactions; "
        f"crm {crm.__version__}, DuckDB {duckdb.__version__} (threads = {threads[0] if threads else '?'}), "
        f"{os.cpu_count()} cores; median of {args.runs} runs after a warm-up\n"
    )
    print(
        "| segment | matches | crm-core (Python) | DuckDB over Parquet | ratio crm / DuckDB (target ≤ 1.0) "
        "| DuckDB, tables in memory | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in CASES:
        # The check (and the warm-up).
        for _ in range(5):
            t0 = now_micros()
            ours = db.count_matching(case.filter)
            t1 = now_micros()
            a, b = views.count(case, t0), views.count(case, t1)
            if a == b:
                assert ours == a, f"{case.name}: crm says {ours}, DuckDB {a}"
                assert tables.count(case, t0) == a
                break
        else:
            sys.exit(f"{case.name}: a window edge moved during every check")
        crm_t: list[float] = []
        view_t: list[float] = []
        table_t: list[float] = []
        for run in range(args.runs):
            now = now_micros()
            # Each side goes first in turn, so that all see the same state
            # of a shared machine.
            jobs: list[tuple[list[float], Callable[[], object]]] = [
                (crm_t, functools.partial(db.count_matching, case.filter)),
                (view_t, functools.partial(views.count, case, now)),
                (table_t, functools.partial(tables.count, case, now)),
            ]
            for i in range(len(jobs)):
                times, job = jobs[(run + i) % len(jobs)]
                times.append(timed(job))
        c, v, t = median_ms(crm_t), median_ms(view_t), median_ms(table_t)
        print(
            f"| {case.name} | {ours} | {c:.1f} ms | {v:.1f} ms | {c / v:.2f} | {t:.1f} ms | {c / t:.2f} |"
        )
    db.close()


if __name__ == "__main__":
    main()
