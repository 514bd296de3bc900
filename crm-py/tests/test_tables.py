"""Tables as Arrow data (`Crm.table`): schemas and values against the object
API, the row selection options, bad input, pandas/polars/pyarrow, and the
messages when an optional dependency is missing."""

from __future__ import annotations

import builtins
import datetime
import json
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import crm

UTC = datetime.timezone.utc


def at(day: int) -> datetime.datetime:
    return datetime.datetime(2025, 3, day, 12, 0, tzinfo=UTC)


def seed(db: crm.Crm) -> list[str]:
    """An organization, a person with every field, a bare person; their
    interactions and consent. Returns the ids in creation order."""
    db.define_attribute("plan", "text")
    db.define_attribute("seats", "number")
    db.define_attribute("trial", "bool")
    db.define_attribute("renewal", "date")
    acme = db.create_customer(
        kind="organization",
        name="Acme <Ltd> & Co",
        country="DE",
        tags=["b2b"],
        attributes={"plan": "pro", "seats": 25},
    )
    ana = db.create_customer(
        external_id="ext-ana",
        first_name="Ana",
        last_name="Novak",
        organization_id=acme["id"],
        emails=["ana@example.com", "a.novak@example.org"],
        phones=["+386 40 123 456"],
        addresses=[{"label": "home", "city": "Ljubljana", "country": "SI"}],
        birth_date=datetime.date(1990, 5, 17),
        locale="sl-SI",
        country="SI",
        tags=["vip", "newsletter"],
        attributes={"trial": True, "renewal": datetime.date(2026, 1, 31)},
        lifecycle_stage="customer",
        owner="maja",
        source="web",
    )
    bo = db.create_customer(name="Bo")
    db.log_interaction(
        ana["id"],
        "purchase",
        occurred_at=at(1),
        amount_minor=12_990,
        currency="EUR",
        product="sku-1",
        quantity=2,
        channel="web",
    )
    db.log_interaction(ana["id"], "purchase", occurred_at=at(5), amount_minor=1_500, currency="JPY")
    db.log_interaction(
        bo["id"],
        "email",
        occurred_at=at(10),
        subject="Hello <there>",
        body="Long text",
        direction="inbound",
        metadata={"thread": 7, "tags": ["a"]},
    )
    db.log_interaction(ana["id"], "survey_response", occurred_at=at(20), score=9)
    db.log_interaction(acme["id"], "demo_booked", occurred_at=at(2))
    db.record_consent(
        ana["id"],
        "email_marketing",
        "granted",
        channel="email",
        legal_basis="consent",
        source="signup form",
        proof="ip 10.0.0.1",
        recorded_at=at(1),
    )
    db.record_consent(ana["id"], "email_marketing", "withdrawn", recorded_at=at(15))
    db.record_consent(bo["id"], "profiling", "denied", recorded_at=at(3))
    return [acme["id"], ana["id"], bo["id"]]


def rows(table: crm.Table) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = table.to_arrow().to_pylist()
    return result


# ----- schemas and values ----------------------------------------------------------


def test_customers_read_back_as_get_customer_returns_them(db: crm.Crm) -> None:
    ids = seed(db)
    table = db.table("customers")
    got = rows(table)
    assert [r["id"] for r in got] == ids
    for row in got:
        want: dict[str, Any] = dict(db.get_customer(row["id"]))
        for field in [
            "kind", "external_id", "name", "first_name", "last_name", "organization_id",
            "emails", "phones", "tags", "birth_date", "locale", "country",
            "lifecycle_stage", "owner", "source", "created_at", "updated_at",
        ]:  # fmt: skip
            assert row[field] == want[field], field
        assert json.loads(row["addresses"]) == want["addresses"]
        attributes = {k[5:]: v for k, v in row.items() if k.startswith("attr.") and v is not None}
        assert attributes == want["attributes"]
    assert got[1]["phones"] == ["+38640123456"]
    schema = table.schema
    assert schema.field("kind").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("emails").type == pa.list_(pa.string())
    assert schema.field("birth_date").type == pa.date32()
    assert schema.field("attr.plan").type == pa.string()
    assert schema.field("attr.seats").type == pa.float64()
    assert schema.field("attr.trial").type == pa.bool_()
    assert schema.field("attr.renewal").type == pa.date32()
    assert not schema.field("id").nullable and schema.field("external_id").nullable
    assert table.columns == schema.names
    assert table.columns[-2:] == ["created_at", "updated_at"]


def test_interactions_read_back_as_the_timeline_returns_them(db: crm.Crm) -> None:
    ids = seed(db)
    got = rows(db.table("interactions"))
    assert [r["kind"] for r in got] == [
        "purchase", "purchase", "email", "survey_response", "demo_booked",
    ]  # fmt: skip
    timeline: dict[str, dict[str, Any]] = {
        i["id"]: dict(i) for cid in ids for i in db.timeline(cid)["items"]
    }
    assert {r["id"] for r in got} == set(timeline)
    for row in got:
        want = timeline[row["id"]]
        for field in [
            "customer_id", "kind", "channel", "direction", "occurred_at", "subject",
            "body", "amount_minor", "currency", "product", "quantity", "score", "created_at",
        ]:  # fmt: skip
            assert row[field] == want[field], field
        metadata = None if row["metadata"] is None else json.loads(row["metadata"])
        assert metadata == want["metadata"]
    # Major units by the currency's exponent (EUR cents, JPY none).
    assert [r["amount"] for r in got] == [129.9, 1500.0, None, None, None]
    schema = db.table("interactions").schema
    assert schema.names == [
        "id", "customer_id", "kind", "channel", "direction", "occurred_at", "subject",
        "body", "amount", "amount_minor", "currency", "product", "quantity", "score",
        "metadata", "created_at",
    ]  # fmt: skip
    assert schema.field("amount_minor").type == pa.int64()
    assert schema.field("score").type == pa.int32()


def test_consent_reads_back_as_the_history_returns_it(db: crm.Crm) -> None:
    ids = seed(db)
    got = rows(db.table("consent"))
    history = [r for cid in ids for r in reversed(db.consent_history(cid))]
    assert got == [dict(r) for r in history]


def test_scores_are_empty_until_computed_then_match_customer_scores(db: crm.Crm) -> None:
    # Purchases as the BG/NBD model tells them: each customer buys at a
    # rate and around a mean of their own until they drop out.
    rng = random.Random(5)
    people = [db.create_customer(name=f"P{i}")["id"] for i in range(120)]
    end = at(2)
    purchases = []
    for cid in people:
        per_day = rng.gammavariate(0.5, 1 / 20)
        dropout = rng.betavariate(0.6, 2.5)
        mean_spend = rng.gammavariate(5.0, 8.0)
        when = end - datetime.timedelta(days=rng.uniform(10, 365))
        for n in range(20):
            if n > 0:
                when += datetime.timedelta(days=min(rng.expovariate(per_day), 400))
                if when > end:
                    break
            purchases.append(
                {
                    "customer_id": cid,
                    "kind": "purchase",
                    "occurred_at": when,
                    "amount_minor": max(1, round(rng.gammavariate(4.0, mean_spend / 4) * 100)),
                    "currency": "EUR",
                }
            )
            if n > 0 and rng.random() < dropout:
                break
    db.import_interactions(purchases)
    empty = db.table("scores")
    assert empty.to_arrow().num_rows == 0
    assert "rfm_segment" in empty.columns
    assert len(empty.to_pandas()) == 0
    db.compute_scores(observation_end=end)
    got = rows(db.table("scores"))
    assert {r["customer_id"] for r in got} == set(people)
    for row in got:
        assert row == db.customer_scores(row["customer_id"])
    assert db.table("scores").schema.field("rfm_segment").type == pa.dictionary(
        pa.int32(), pa.string()
    )


# ----- which rows ------------------------------------------------------------------


def test_filter_and_segment_select_customers_and_their_rows(db: crm.Crm) -> None:
    acme, ana, bo = seed(db)
    assert [r["id"] for r in rows(db.table("customers", filter='"vip" in tags'))] == [ana]
    assert {r["customer_id"] for r in rows(db.table("interactions", filter='"vip" in tags'))} == {
        ana
    }
    tree = crm.parse_filter('name = "Bo"')
    assert [r["customer_id"] for r in rows(db.table("consent", filter=tree))] == [bo]
    db.create_segment("picked")
    db.add_to_segment("picked", [acme, bo])
    db.create_segment("people", filter='kind = "person"')
    assert [r["id"] for r in rows(db.table("customers", segment="picked"))] == [acme, bo]
    assert [r["id"] for r in rows(db.table("customers", segment="people"))] == [ana, bo]
    both = db.table("customers", segment="picked", filter='kind = "person"')
    assert [r["id"] for r in rows(both)] == [bo]
    assert len(rows(db.table("interactions", segment="picked"))) == 2


def test_since_and_until_bound_interactions_and_consent(db: crm.Crm) -> None:
    seed(db)
    window = db.table("interactions", since=at(2), until=at(10))
    assert [r["occurred_at"] for r in rows(window)] == [at(5), at(2)]
    # Naive datetimes are UTC, like everywhere else in crm; strings work too.
    naive = db.table("interactions", since=datetime.datetime(2025, 3, 10, 12))
    assert [r["occurred_at"] for r in rows(naive)] == [at(10), at(20)]
    text = db.table("consent", until="2025-03-03T12:00:00Z")
    assert [r["recorded_at"] for r in rows(text)] == [at(1)]


def test_an_empty_result_keeps_the_full_schema(db: crm.Crm) -> None:
    seed(db)
    nobody = db.table("interactions", filter='name = "Nobody"')
    assert nobody.to_arrow().num_rows == 0
    assert len(nobody.to_arrow().schema) == 16
    frame = nobody.to_pandas()
    assert list(frame.columns) == nobody.columns and len(frame) == 0
    assert nobody.to_polars().shape == (0, 16)
    assert [b.num_rows for b in nobody] == [0]


# ----- bad input -------------------------------------------------------------------


def test_bad_input_raises_the_crm_error_when_the_table_is_made(db: crm.Crm) -> None:
    seed(db)
    with pytest.raises(crm.ValidationError) as invalid:
        db.table("orders")  # type: ignore[arg-type]
    assert invalid.value.field == "table"
    with pytest.raises(crm.ParseError) as parse:
        db.table("customers", filter='country = "SI" and\n  nmae = 1')
    assert (parse.value.line, parse.value.column) == (2, 3)
    assert parse.value.suggestion == "name"
    with pytest.raises(crm.NotFoundError) as missing:
        db.table("interactions", segment="nope")
    assert missing.value.entity == "segment"
    with pytest.raises(crm.ValidationError) as invalid:
        db.table("customers", batch_size=0)
    assert invalid.value.field == "batch_size"
    with pytest.raises(crm.ValidationError) as invalid:
        db.table("customers", batch_size=-1)
    assert invalid.value.field == "batch_size"
    for name in ["customers", "scores"]:
        with pytest.raises(crm.ValidationError) as invalid:
            db.table(name, since=at(1))  # type: ignore[arg-type]
        assert invalid.value.field == "since"
        with pytest.raises(crm.ValidationError) as invalid:
            db.table(name, until=at(1))  # type: ignore[arg-type]
        assert invalid.value.field == "until"
    with pytest.raises(crm.ValidationError) as invalid:
        db.table("interactions", since=12)  # type: ignore[arg-type]
    assert invalid.value.field == "since"
    with pytest.raises(crm.ValidationError) as invalid:
        db.table("customers", filter=42)  # type: ignore[arg-type]
    assert invalid.value.field == "filter"


def test_a_closed_handle_raises_closed_error(db_path: Path) -> None:
    db = crm.open(db_path)
    table = db.table("customers")
    db.close()
    with pytest.raises(crm.ClosedError):
        table.to_arrow()
    assert "closed" in table._repr_html_()
    assert repr(table).endswith("columns: ?)")
    with pytest.raises(crm.ClosedError):
        db.table("customers")


def test_a_damaged_row_raises_storage_error_from_every_read(db_path: Path) -> None:
    with crm.open(db_path) as db:
        db.import_customers([{"name": f"C{i}"} for i in range(5)])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE customers SET emails = 'not json' WHERE rowid = 4")
    conn.close()
    with crm.open(db_path) as db:
        table = db.table("customers", batch_size=2)
        for read in [table.to_arrow, table.to_pandas, table.to_polars, lambda: list(table)]:
            with pytest.raises(crm.StorageError, match="emails"):
                read()
        # Through the raw Arrow stream, the consumer's own error says so.
        with pytest.raises(Exception, match="emails"):
            pa.RecordBatchReader.from_stream(table).read_all()


# ----- pandas, polars, pyarrow -----------------------------------------------------


def test_pandas_gets_categoricals_and_utc_microsecond_times(db: crm.Crm) -> None:
    seed(db)
    frame = db.table("interactions").to_pandas()
    assert isinstance(frame.dtypes["kind"], pd.CategoricalDtype)
    assert isinstance(frame.dtypes["currency"], pd.CategoricalDtype)
    assert str(frame.dtypes["occurred_at"]) == "datetime64[us, UTC]"
    assert frame["occurred_at"].iloc[0] == pd.Timestamp(at(1))
    assert frame["amount"].iloc[0] == 129.9
    customers = db.table("customers").to_pandas()
    assert isinstance(customers.dtypes["lifecycle_stage"], pd.CategoricalDtype)
    assert str(customers.dtypes["created_at"]) == "datetime64[us, UTC]"
    # Keyword arguments go to pyarrow's to_pandas.
    plain = db.table("interactions").to_pandas(categories=[], strings_to_categorical=False)
    assert isinstance(plain.dtypes["kind"], pd.CategoricalDtype)
    assert db.table("interactions").to_pandas(self_destruct=True).shape == (5, 16)


def test_polars_reads_the_stream_with_categoricals_and_times(db: crm.Crm) -> None:
    seed(db)
    frame = db.table("interactions").to_polars()
    assert isinstance(frame, pl.DataFrame)
    assert frame.shape == (5, 16)
    assert frame.schema["kind"] == pl.Categorical
    assert frame.schema["occurred_at"] == pl.Datetime("us", "UTC")
    assert frame["amount_minor"].to_list() == [12_990, 1_500, None, None, None]
    # Any reader of the Arrow PyCapsule interface reads a Table directly.
    assert pl.DataFrame(db.table("customers")).shape[0] == 3
    assert pa.table(db.table("consent")).num_rows == 3


def test_a_table_is_re_readable_and_sees_new_rows(db: crm.Crm) -> None:
    seed(db)
    table = db.table("customers")
    assert len(table.to_pandas()) == 3
    assert table.to_polars().shape[0] == 3
    db.create_customer(name="Late")
    assert table.to_arrow().num_rows == 4
    assert len(list(table)) == 1


def test_iteration_yields_record_batches_of_batch_size(file_db: crm.Crm) -> None:
    file_db.import_customers([{"name": f"C{i:03}"} for i in range(25)])
    table = file_db.table("customers", batch_size=10)
    batches = list(table)
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert [b.num_rows for b in batches] == [10, 10, 5]
    names = [n for b in batches for n in b.column("name").to_pylist()]
    assert names == [f"C{i:03}" for i in range(25)]
    # Stopping early and reading again is fine.
    first = next(iter(table))
    assert first.num_rows == 10
    reader = pa.RecordBatchReader.from_stream(table)
    assert reader.read_all().num_rows == 25


def test_an_in_memory_database_may_be_written_between_batches(db: crm.Crm) -> None:
    db.import_customers([{"name": f"C{i}"} for i in range(7)])
    batches = iter(db.table("customers", batch_size=3))
    assert next(batches).num_rows == 3
    db.create_customer(name="Between")
    assert [b.num_rows for b in batches] == [3, 2]


# ----- presentation ----------------------------------------------------------------


def test_repr_names_the_table_its_options_and_columns(db: crm.Crm) -> None:
    seed(db)
    db.create_segment("picked")
    text = repr(
        db.table("interactions", filter='"vip" in tags', segment="picked", since=at(1), batch_size=5)
    )
    assert text.startswith("crm.Table('interactions', filter='\"vip\" in tags', segment='picked'")
    assert "since='2025-03-01T12:00:00+00:00'" in text
    assert "batch_size=5" in text
    assert "columns: id, customer_id, kind" in text


def test_repr_html_shows_columns_and_the_first_rows_escaped(db: crm.Crm) -> None:
    seed(db)
    db.import_customers([{"name": f"Many {i}"} for i in range(30)])
    html = db.table("customers")._repr_html_()
    for column in ["id", "kind", "attr.plan", "created_at"]:
        assert f"<th>{column}<br>" in html
    assert "Acme &lt;Ltd&gt; &amp; Co" in html
    assert "<Ltd>" not in html
    assert html.count("<tr>") == 1 + 10  # the header and the first 10 rows
    assert "Many 6" in html and "Many 7" not in html
    interactions = db.table("interactions")._repr_html_()
    assert "Hello &lt;there&gt;" in interactions


# ----- optional dependencies -------------------------------------------------------


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Makes importing `modules` fail as if they were not installed."""
    real_import = builtins.__import__
    for name in list(sys.modules):
        if name.split(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in modules:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_missing_pandas_or_pyarrow_says_how_to_install_it(
    db: crm.Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db)
    table = db.table("customers")
    hide(monkeypatch, "pandas")
    with pytest.raises(ImportError, match=r"to_pandas\(\) needs pandas: pip install 'crm\[pandas\]'"):
        table.to_pandas()
    monkeypatch.undo()
    hide(monkeypatch, "pyarrow")
    with pytest.raises(ImportError, match=r"to_pandas\(\) needs pyarrow: pip install 'crm\[pandas\]'"):
        table.to_pandas()
    with pytest.raises(ImportError, match=r"to_arrow\(\) needs pyarrow: pip install 'crm\[arrow\]'"):
        table.to_arrow()
    with pytest.raises(ImportError, match=r"needs pyarrow"):
        iter(table)
    with pytest.raises(ImportError, match=r"needs pyarrow"):
        table.schema  # noqa: B018
    # Without pyarrow, polars still reads the table, and it still shows.
    assert table.to_polars().shape == (3, table.columns.__len__())
    assert "Acme &lt;Ltd&gt;" in table._repr_html_()


def test_a_missing_polars_says_how_to_install_it(
    db: crm.Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = db.table("customers")
    hide(monkeypatch, "polars")
    with pytest.raises(ImportError, match=r"to_polars\(\) needs polars: pip install 'crm\[polars\]'"):
        table.to_polars()
