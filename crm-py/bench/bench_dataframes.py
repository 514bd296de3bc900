"""DataFrames in and out of `crm`, each against baselines measured in the
same run on the same rows.

    python3 crm-py/bench/bench_dataframes.py [--customers 1000000]
        [--interactions 10000000] [--store PATH] [--skip-read-sql] [--skip-import]

Import (the customers are a seeded pandas DataFrame: external id, first and
last name, email, phone, country and lifecycle stage as categoricals, tags
as lists; about one in ten rows has a tag):

- crm: `Crm.import_customers(df)` into a new file (validation, E.164
  phones, unique emails and external ids, indexes, search index, change
  log, all through the Arrow stream of the DataFrame);
- Rust-native: the same rows, written to CSV first and built into
  `NewCustomer` values before the clock starts, imported by
  `Crm::import_customers` (`examples/bench_import.rs`, built with
  `cargo build --release --example bench_import`);
- `sqlite3.executemany` into an equivalent table (the same columns, a
  16-byte random id as primary key, unique email and external id indexes,
  WAL), from the same DataFrame.

Read (the store: those customers and `--interactions` interactions,
imported from a DataFrame once, or reused from `--store`):

- crm into pandas: `crm.table("interactions").to_pandas()`;
- `pandas.read_sql` of the same columns from the same file (the stored
  forms: ids as bytes, times as integers, so the baseline does less);
- crm into polars via Arrow: `polars.DataFrame(crm.table("interactions"))`.

Each measurement runs in a child process forked from the parent after the
input is built, and reports its peak memory on top of the parent (VmHWM
minus the RSS at the fork).

Needs pandas, polars, pyarrow, the `crm` module built with the release
profile (`CRM_PY_RELEASE=1 bash scripts/test-python.sh`), and cargo for the
Rust-native side.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analytics import in_child  # noqa: E402  (forks a measured child)

ROOT = Path(__file__).resolve().parents[2]
FIRST = ["Ana", "Marko", "Eva", "Luka", "Nina", "Jan", "Sara", "Tim", "Maja", "Rok"]
LAST = ["Novak", "Horvat", "Krajnc", "Zupan", "Kovač", "Potočnik", "Mlakar", "Vidmar"]
COUNTRIES = ["SI", "DE", "AT", "IT", "FR", "US", "GB", "HR"]
STAGES = ["subscriber", "lead", "customer"]
KINDS = ["purchase", "email_open", "page_view", "support_ticket"]


def customers_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST)[rng.integers(0, len(LAST), n)]
    ids = pd.Series(i).map("{:08d}".format)
    return pd.DataFrame(
        {
            "external_id": "C" + ids,
            "first_name": first,
            "last_name": last,
            "email": pd.Series(first).str.lower() + "." + ids + "@example.com",
            "phone": "+38640" + pd.Series(i % 1_000_000).map("{:06d}".format),
            "country": pd.Categorical(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)]),
            "lifecycle_stage": pd.Categorical(np.array(STAGES)[rng.integers(0, len(STAGES), n)]),
            "tags": [["vip"] if k % 10 == 0 else [] for k in range(n)],
        }
    )


def interactions_frame(customers: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    who = np.sort(rng.integers(0, customers, n))
    kind = rng.integers(0, len(KINDS), n)
    purchase = kind == 0
    minor = pd.array(np.where(purchase, rng.integers(100, 50_000, n), 0), dtype="Int64")
    minor[~purchase] = pd.NA
    start = np.datetime64("2024-01-01T00:00:00", "us")
    seconds = rng.integers(0, 2 * 365 * 86_400, n)
    return pd.DataFrame(
        {
            "customer_external_id": "C" + pd.Series(who).map("{:08d}".format),
            "kind": pd.Categorical.from_codes(kind, KINDS),
            "occurred_at": pd.Series(start + seconds.astype("timedelta64[s]")).dt.tz_localize(
                "UTC"
            ),
            "amount_minor": minor,
            "currency": pd.Categorical(np.where(purchase, "EUR", None)),
        }
    )


def import_crm(df: pd.DataFrame, path: str) -> dict[str, Any]:
    import crm

    with crm.open(path) as db:
        started = time.perf_counter()
        report = db.import_customers(df)
        seconds = time.perf_counter() - started
    assert report["inserted"] == len(df), report
    return {"seconds": seconds}


def import_rust(csv_path: str, path: str) -> dict[str, Any]:
    binary = ROOT / "target" / "release" / "examples" / "bench_import"
    out = subprocess.run([str(binary), csv_path, path], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return {"seconds": result["seconds"], "rust_extra_mb": result["extra_mb"]}


def import_sqlite(df: pd.DataFrame, path: str) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
        CREATE TABLE customers (id BLOB PRIMARY KEY, external_id TEXT, first_name TEXT,
            last_name TEXT, email TEXT, phone TEXT, country TEXT, lifecycle_stage TEXT,
            tags TEXT, created_at TEXT);
        CREATE UNIQUE INDEX customers_email ON customers (email);
        CREATE UNIQUE INDEX customers_external_id ON customers (external_id);
        """
    )
    started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC").isoformat()
    rows = (
        (os.urandom(16), e, f, la, m, p, c, s, json.dumps(t), now)
        for e, f, la, m, p, c, s, t in zip(
            df["external_id"],
            df["first_name"],
            df["last_name"],
            df["email"],
            df["phone"],
            df["country"],
            df["lifecycle_stage"],
            df["tags"],
        )
    )
    with conn:
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds}


def read_crm_pandas(path: str) -> dict[str, Any]:
    import crm

    with crm.open(path) as db:
        started = time.perf_counter()
        df = db.table("interactions").to_pandas()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(df)}


def read_crm_polars(path: str) -> dict[str, Any]:
    import polars as pl

    import crm

    with crm.open(path) as db:
        started = time.perf_counter()
        df = pl.DataFrame(db.table("interactions"))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": df.height}


READ_SQL = """
SELECT i.id, c.id AS customer_id, i.kind, i.channel, i.direction, i.occurred_at, i.subject,
       i.body, i.amount_minor, i.currency, i.product, i.quantity, i.score, i.metadata,
       i.created_at
FROM interactions i JOIN customers c ON c.rowid = i.customer_rowid
ORDER BY i.rowid
"""


def read_pandas_sql(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    started = time.perf_counter()
    df = pd.read_sql(READ_SQL, conn)
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "rows": len(df)}


def line(what: str, result: dict[str, Any], rows: int) -> None:
    print(
        f"{what:<44} {result['seconds']:8.2f} s  {rows / result['seconds']:>11,.0f} rows/s"
        f"  peak +{result['extra_mb']:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", help="the CRM file to read (built when missing)")
    parser.add_argument("--skip-read-sql", action="store_true", help="skip pandas.read_sql")
    parser.add_argument(
        "--skip-import", action="store_true", help="only the reads (of an existing --store)"
    )
    args = parser.parse_args()
    print(f"# crm DataFrames: {args.customers:,} customers, {args.interactions:,} interactions")

    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--example", "bench_import"],
        cwd=ROOT,
        check=True,
    )
    work = tempfile.mkdtemp(prefix="crm-bench-")
    customers = customers_frame(args.customers, args.seed)
    if not args.skip_import:
        import_customers(customers, work)
    read_interactions(args, customers, work)


def import_customers(customers: pd.DataFrame, work: str) -> None:
    csv_path = os.path.join(work, "customers.csv")
    customers.assign(tags=customers["tags"].map(";".join)).to_csv(csv_path, index=False)
    print("\n## Import customers")
    crm_import = in_child(import_crm, customers, os.path.join(work, "crm.db"))
    rust_import = in_child(import_rust, csv_path, os.path.join(work, "rust.db"))
    rust_import["extra_mb"] = rust_import["rust_extra_mb"]  # the Rust process's own
    sqlite_import = in_child(import_sqlite, customers, os.path.join(work, "sqlite.db"))
    n = len(customers)
    line("crm: import_customers(pandas DataFrame)", crm_import, n)
    line("Rust-native: Crm::import_customers", rust_import, n)
    line("sqlite3.executemany, equivalent table", sqlite_import, n)
    print(
        f"DataFrame / Rust-native: {rust_import['seconds'] / crm_import['seconds']:.2f}× "
        f"(target ≥ 0.8)   DataFrame / executemany: "
        f"{sqlite_import['seconds'] / crm_import['seconds']:.2f}× (target ≥ 2)"
    )


def read_interactions(args: argparse.Namespace, customers: pd.DataFrame, work: str) -> None:
    print("\n## Read interactions")
    store = args.store or os.path.join(work, "store.db")
    if not os.path.exists(store):
        import crm

        started = time.perf_counter()
        with crm.open(store) as db:
            db.import_customers(customers)
            step = 2_000_000
            for first in range(0, args.interactions, step):
                part = interactions_frame(
                    args.customers, min(step, args.interactions - first), args.seed + first
                )
                db.import_interactions(part)
        print(f"(store built in {time.perf_counter() - started:.0f} s: {store})")
    crm_pandas = in_child(read_crm_pandas, store)
    crm_polars = in_child(read_crm_polars, store)
    rows = crm_pandas["rows"]
    line("crm: table('interactions').to_pandas()", crm_pandas, rows)
    line("crm: polars.DataFrame(table('interactions'))", crm_polars, rows)
    if not args.skip_read_sql:
        sql = in_child(read_pandas_sql, store)
        line("pandas.read_sql, same columns", sql, rows)
        print(
            f"crm → pandas / read_sql: {sql['seconds'] / crm_pandas['seconds']:.1f}× "
            f"(target ≥ 5)   crm → polars / read_sql: "
            f"{sql['seconds'] / crm_polars['seconds']:.1f}×"
        )


if __name__ == "__main__":
    main()
