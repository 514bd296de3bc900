"""Imports from pandas and polars DataFrames and pyarrow data: every column
type a data scientist has, the same validation as the other imports, and
errors that name the column and row and import nothing."""

from __future__ import annotations

import datetime
import decimal
import sys
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import crm

UTC = datetime.timezone.utc


def with_ana(db: crm.Crm) -> str:
    return db.create_customer(name="Ana Novak", emails=["ana@example.com"])["id"]


def customer(db: crm.Crm, email: str) -> Any:
    found = db.find_customer_by_email(email)
    assert found is not None, email
    return found


def timeline(db: crm.Crm, customer_id: str) -> list[Any]:
    return sorted(db.timeline(customer_id)["items"], key=lambda i: i["occurred_at"])


# ----- customers ---------------------------------------------------------------


def test_pandas_customers_with_categoricals_lists_dates_and_missing_text(db: crm.Crm) -> None:
    df = pd.DataFrame(
        {
            "name": ["Ana Novak", "Bo Li", "Cy Doe"],
            "email": ["ana@example.com", "bo@example.com", "cy@example.com"],
            "phone": ["+386 41 123 456", None, float("nan")],
            "source": pd.Categorical(["web", "fair", "web"]),
            "tags": [["VIP", "newsletter"], [], None],
            "birth_date": [datetime.date(1990, 5, 17), None, datetime.date(2001, 1, 2)],
            "attr.ltv": [120.5, float("nan"), 3.0],
        }
    )
    report = db.import_customers(df)
    assert report == {"rows": 3, "inserted": 3, "updated": 0, "rejected": 0, "errors": []}
    ana = customer(db, "ana@example.com")
    assert ana["phones"] == ["+38641123456"]
    assert ana["source"] == "web"
    assert ana["tags"] == ["newsletter", "vip"]
    assert ana["birth_date"] == datetime.date(1990, 5, 17)
    assert ana["attributes"] == {"ltv": 120.5}
    bo = customer(db, "bo@example.com")
    # pandas' missing values (None, NaN) are missing fields.
    assert bo["phones"] == [] and bo["birth_date"] is None and bo["attributes"] == {}
    assert bo["source"] == "fair" and bo["tags"] == []
    cy = customer(db, "cy@example.com")
    assert cy["phones"] == [] and cy["tags"] == []
    assert cy["birth_date"] == datetime.date(2001, 1, 2)


def test_a_pandas_index_is_not_imported(db: crm.Crm) -> None:
    df = pd.DataFrame({"name": ["Ana", "Bo", "Cy"], "email": ["a@x.com", "b@x.com", "c@x.com"]})
    filtered = df[df["name"] != "Bo"]  # an index of 0 and 2, exported as a column
    report = db.import_customers(filtered)
    assert report["inserted"] == 2
    assert db.count_customers() == 2


def test_naive_midnight_datetimes_are_birth_dates(db: crm.Crm) -> None:
    df = pd.DataFrame(
        {"name": ["Ana"], "email": ["ana@example.com"], "birth_date": pd.to_datetime(["1990-05-17"])}
    )
    db.import_customers(df)
    assert customer(db, "ana@example.com")["birth_date"] == datetime.date(1990, 5, 17)


def test_polars_customers_with_categoricals_lists_and_dates(db: crm.Crm) -> None:
    df = pl.DataFrame(
        {
            "name": ["Ana Novak", "Bo Li"],
            "email": ["ana@example.com", None],
            "emails": [None, ["bo@example.com", "bo@work.example"]],
            "lifecycle_stage": pl.Series(["customer", "lead"], dtype=pl.Categorical),
            "tags": [["vip"], None],
            "birth_date": [datetime.date(1990, 5, 17), None],
            "attr.active": [True, None],
            "attr.visits": pl.Series([3, None], dtype=pl.Int32),
        }
    )
    report = db.import_customers(df)
    assert report["inserted"] == 2
    ana = customer(db, "ana@example.com")
    assert ana["lifecycle_stage"] == "customer" and ana["tags"] == ["vip"]
    assert ana["birth_date"] == datetime.date(1990, 5, 17)
    assert ana["attributes"] == {"active": True, "visits": 3}
    bo = customer(db, "bo@work.example")
    assert bo["emails"] == ["bo@example.com", "bo@work.example"]
    assert bo["lifecycle_stage"] == "lead" and bo["attributes"] == {}


def test_a_polars_lazyframe_is_collected(db: crm.Crm) -> None:
    lazy = pl.DataFrame({"name": ["Ana", "Bo"], "email": ["a@x.com", "b@x.com"]}).lazy()
    assert db.import_customers(lazy)["inserted"] == 2


def test_pyarrow_tables_batches_and_readers(db: crm.Crm) -> None:
    table = pa.table({"name": ["Ana", "Bo", "Cy"], "email": ["a@x.com", "b@x.com", "c@x.com"]})
    assert db.import_customers(table.slice(0, 1))["inserted"] == 1
    assert db.import_customers(table.to_batches()[0].slice(1, 1))["inserted"] == 1
    reader = pa.RecordBatchReader.from_batches(table.schema, table.slice(2).to_batches())
    assert db.import_customers(reader)["inserted"] == 1
    assert sorted(c["name"] for c in db.list_customers(limit=10)["items"]) == ["Ana", "Bo", "Cy"]


def test_upsert_from_a_dataframe_updates_matches(db: crm.Crm) -> None:
    with_ana(db)
    df = pd.DataFrame({"name": ["Ana Maria Novak", "Bo"], "email": ["ana@example.com", "bo@example.com"]})
    report = db.import_customers(df, upsert=True)
    assert (report["inserted"], report["updated"]) == (1, 1)
    assert customer(db, "ana@example.com")["name"] == "Ana Maria Novak"


def test_mapping_renames_columns_and_ignore_skips_them(db: crm.Crm) -> None:
    df = pd.DataFrame(
        {"Full name": ["Ana"], "E-mail": ["ana@example.com"], "Segment": ["vip"], "notes": ["x"]}
    )
    report = db.import_customers(
        df, mapping={"name": "Full name", "email": "E-mail", "tags": "Segment"}, ignore=["notes"]
    )
    assert report["inserted"] == 1
    ana = customer(db, "ana@example.com")
    assert ana["name"] == "Ana" and ana["tags"] == ["vip"]


def test_mapping_is_refused_for_dicts(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers([{"name": "Ana"}], mapping={"name": "Full name"})
    assert info.value.field == "mapping"
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers([{"name": "Ana"}], ignore=["x"])
    assert info.value.field == "ignore"
    assert db.count_customers() == 0


def test_progress_is_called_during_a_dataframe_import(db: crm.Crm) -> None:
    df = pl.DataFrame({"name": [f"Person {i}" for i in range(25)]})
    seen: list[int] = []
    db.import_customers(df, progress=lambda p: seen.append(p["rows"]), progress_every=10)
    assert seen == [10, 20, 25]


# ----- interactions ------------------------------------------------------------


def test_pandas_interactions_with_datetimes_decimals_and_float_amounts(db: crm.Crm) -> None:
    ana = with_ana(db)
    naive = pd.to_datetime(["2024-05-01 10:00", "2024-05-02 10:00", "2024-05-03 10:00"])
    df = pd.DataFrame(
        {
            "customer_email": ["ana@example.com"] * 3,
            "kind": pd.Categorical(["purchase", "purchase", "call"]),
            "amount": [12.99, 0.1, None],
            "amount_exact": [decimal.Decimal("19.90"), decimal.Decimal("1234567.89"), None],
            "currency": ["EUR", "EUR", None],
            "occurred_at": naive,
            "booked_at": naive.tz_localize("Europe/Ljubljana"),
        }
    )
    report = db.import_interactions(df, ignore=["amount_exact", "booked_at"])
    assert report["inserted"] == 3
    items = timeline(db, ana)
    assert [i["amount_minor"] for i in items] == [1299, 10, None]
    # A datetime without a time zone is UTC.
    assert items[0]["occurred_at"] == datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert items[2]["kind"] == "call"

    report = db.import_interactions(
        df,
        mapping={"amount": "amount_exact", "occurred_at": "booked_at"},
        ignore=["amount", "occurred_at"],
    )
    assert report["inserted"] == 3
    items = [i for i in timeline(db, ana) if i["occurred_at"].hour == 8]
    assert [i["amount_minor"] for i in items] == [1990, 123456789, None]
    # A zoned datetime is that instant (10:00 in Ljubljana in May is 08:00 UTC).
    assert items[0]["occurred_at"] == datetime.datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_polars_interactions(db: crm.Crm) -> None:
    ana = with_ana(db)
    df = pl.DataFrame(
        {
            "customer_email": ["ana@example.com", "ana@example.com"],
            "kind": ["purchase", "survey_response"],
            "amount_minor": [1299, None],
            "currency": ["EUR", None],
            "score": [None, 9],
            "occurred_at": [datetime.datetime(2024, 5, 1, 10), datetime.datetime(2024, 5, 2, 10)],
            "product": pl.Series(["book", None], dtype=pl.Categorical),
        }
    )
    assert db.import_interactions(df)["inserted"] == 2
    items = timeline(db, ana)
    assert items[0]["amount_minor"] == 1299 and items[0]["product"] == "book"
    assert items[1]["score"] == 9 and items[1]["product"] is None
    assert items[1]["occurred_at"] == datetime.datetime(2024, 5, 2, 10, tzinfo=UTC)


def test_pyarrow_interactions_with_a_zoned_timestamp(db: crm.Crm) -> None:
    ana = with_ana(db)
    when = datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    table = pa.table(
        {
            "customer_email": ["ana@example.com"],
            "kind": ["note"],
            "occurred_at": pa.array([when], type=pa.timestamp("ms", tz="+02:00")),
        }
    )
    db.import_interactions(table)
    assert timeline(db, ana)[0]["occurred_at"] == datetime.datetime(2024, 5, 1, 8, tzinfo=UTC)


# ----- bad input -----------------------------------------------------------------


def assert_refused(info: pytest.ExceptionInfo[crm.ValidationError], row: int | None, field: str) -> None:
    assert (info.value.row, info.value.field) == (row, field), str(info.value)
    assert field in str(info.value)
    if row is not None:
        assert f"row {row}" in str(info.value)


def test_text_that_is_no_date_in_a_date_column_is_refused(db: crm.Crm) -> None:
    df = pd.DataFrame({"name": ["Ana", "Bo"], "birth_date": ["1990-05-17", "yesterday"]})
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(df)
    assert_refused(info, 2, "birth_date")
    assert db.count_customers() == 0


def test_a_column_pyarrow_cannot_convert_is_refused_naming_it(db: crm.Crm) -> None:
    df = pd.DataFrame({"name": ["Ana", "Bo"], "birth_date": [datetime.date(1990, 5, 17), "yesterday"]})
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(df)
    assert info.value.field == "records"
    assert "birth_date" in str(info.value)
    assert db.count_customers() == 0


def test_a_nan_amount_is_refused_not_missing(db: crm.Crm) -> None:
    with_ana(db)
    df = pl.DataFrame(
        {
            "customer_email": ["ana@example.com"] * 2,
            "kind": ["purchase"] * 2,
            "amount": [12.99, float("nan")],
            "currency": ["EUR"] * 2,
        }
    )
    with pytest.raises(crm.ValidationError) as info:
        db.import_interactions(df)
    assert_refused(info, 2, "amount")
    assert "finite" in info.value.reason
    assert db.count_interactions() == 0


def test_a_float_amount_with_too_many_decimals_is_refused_not_rounded(db: crm.Crm) -> None:
    with_ana(db)
    df = pd.DataFrame(
        {
            "customer_email": ["ana@example.com"] * 2,
            "kind": ["purchase"] * 2,
            "Total": [12.99, 12.345],
            "currency": ["EUR"] * 2,
        }
    )
    with pytest.raises(crm.ValidationError) as info:
        db.import_interactions(df, mapping={"amount": "Total"})
    assert_refused(info, 2, "amount")
    assert db.count_interactions() == 0


def test_bytes_that_are_not_utf8_are_refused_naming_the_column(db: crm.Crm) -> None:
    df = pd.DataFrame({"name": ["Ana", "Bo"], "Notes": [b"fine", b"\xff\xfe"]})
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(df, mapping={"owner": "Notes"})
    assert_refused(info, 2, "Notes")
    assert "UTF-8" in info.value.reason
    assert db.count_customers() == 0


def test_a_missing_interaction_kind_is_refused(db: crm.Crm) -> None:
    with_ana(db)
    df = pd.DataFrame({"customer_email": ["ana@example.com"] * 3, "kind": ["call", "note", None]})
    with pytest.raises(crm.ValidationError) as info:
        db.import_interactions(df)
    assert_refused(info, 3, "kind")
    assert db.count_interactions() == 0
    with pytest.raises(crm.ValidationError) as info:
        db.import_interactions(df.drop(columns=["kind"]))
    assert_refused(info, 1, "kind")
    assert db.count_interactions() == 0


def test_a_misspelled_column_is_refused_with_a_suggestion(db: crm.Crm) -> None:
    df = pl.DataFrame({"name": ["Ana"], "emial": ["ana@example.com"]})
    with pytest.raises(crm.ValidationError) as info:
        db.import_customers(df)
    assert_refused(info, None, "emial")
    assert "did you mean 'email'" in info.value.reason
    assert db.count_customers() == 0


def test_skip_invalid_reports_bad_rows_and_imports_the_rest(db: crm.Crm) -> None:
    ana = with_ana(db)
    df = pl.DataFrame(
        {
            "customer_email": ["ana@example.com"] * 4,
            "kind": ["purchase", "purchase", None, "purchase"],
            "amount": [12.99, float("nan"), 1.0, 12.345],
            "currency": ["EUR"] * 4,
        }
    )
    report = db.import_interactions(df, mode="skip_invalid")
    assert (report["rows"], report["inserted"], report["rejected"]) == (4, 1, 3)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "amount"), (3, "kind"), (4, "amount")]
    assert [i["amount_minor"] for i in timeline(db, ana)] == [1299]


def test_pandas_without_the_arrow_interface_is_converted_by_pyarrow(
    db: crm.Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(pd.DataFrame, "__arrow_c_stream__")
    df = pd.DataFrame({"name": ["Ana", "Bo"]}, index=[10, 20])
    assert db.import_customers(df)["inserted"] == 2
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        db.import_customers(df)
    assert db.count_customers() == 2


def test_a_reader_over_a_python_generator_is_read_and_its_error_rolls_back(db: crm.Crm) -> None:
    schema = pa.schema([("name", pa.string())])

    def batches(fail: bool) -> Any:
        for i in range(3):
            yield pa.record_batch([pa.array([f"P{i}a", f"P{i}b"])], schema=schema)
        if fail:
            raise KeyError("boom")

    report = db.import_customers(pa.RecordBatchReader.from_batches(schema, batches(False)))
    assert report["inserted"] == 6
    with pytest.raises(crm.CrmError, match="boom"):
        db.import_customers(pa.RecordBatchReader.from_batches(schema, batches(True)))
    assert db.count_customers() == 6
