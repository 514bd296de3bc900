"""Docs are tests: every Python block of the README and the package's
doctests run here."""

from __future__ import annotations

import doctest
import os
import re
from pathlib import Path

import pytest

import crm

README = Path(__file__).resolve().parent.parent / "README.md"
PROJECT_README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = [
    block
    for readme in (README, PROJECT_README)
    for block in re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
]


def test_the_readme_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_examples_run(block: str, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)


def test_package_doctests_pass() -> None:
    result = doctest.testmod(crm, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0
