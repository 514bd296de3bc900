from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import crm


@pytest.fixture
def db() -> Iterator[crm.Crm]:
    """An in-memory CRM."""
    with crm.open() as handle:
        yield handle


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def file_db(db_path: Path) -> Iterator[crm.Crm]:
    """A CRM in a file (WAL, pooled readers)."""
    with crm.open(db_path) as handle:
        yield handle
