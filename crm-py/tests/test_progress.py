"""`progress=True` draws a tqdm bar over an import, sized by the source
when it knows its length; without tqdm it says how to get it and imports
nothing; other values than a callable or a bool are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import crm


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"name": [f"Customer {i}" for i in range(n)]})


def test_progress_true_draws_a_bar_with_the_dataframes_length(
    db: crm.Crm, capsys: pytest.CaptureFixture[str]
) -> None:
    report = db.import_customers(frame(250), progress=True, progress_every=100)
    assert report["inserted"] == 250
    err = capsys.readouterr().err
    assert "customers" in err
    assert "250/250" in err


def test_progress_true_on_a_csv_counts_rows_without_a_total(
    db: crm.Crm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("name\n" + "".join(f"Customer {i}\n" for i in range(30)))
    db.import_customers_csv(path, progress=True)
    err = capsys.readouterr().err
    assert "customers" in err
    assert "30" in err


def test_the_bar_shows_rejected_rows(db: crm.Crm, capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.DataFrame({"name": ["Ana", "Bo"], "email": ["ana@example.com", "nope"]})
    report = db.import_customers(df, mode="skip_invalid", progress=True, progress_every=1)
    assert report["rejected"] == 1
    assert "rejected=1" in capsys.readouterr().err


def test_progress_false_or_none_is_quiet(db: crm.Crm, capsys: pytest.CaptureFixture[str]) -> None:
    db.import_customers(frame(3), progress=False)
    db.import_customers([{"name": "Ana"}], progress=None)
    assert capsys.readouterr().err == ""
    assert db.count_customers() == 4


def test_without_tqdm_progress_true_says_how_to_install_it_and_imports_nothing(
    db: crm.Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'crm\[progress\]'"):
        db.import_customers(frame(3), progress=True)
    assert db.count_customers() == 0


def test_a_progress_that_is_neither_callable_nor_bool_is_refused(db: crm.Crm) -> None:
    with pytest.raises(crm.ValidationError) as e:
        db.import_customers(frame(3), progress="yes")  # type: ignore[arg-type]
    assert e.value.field == "progress"
    assert db.count_customers() == 0
