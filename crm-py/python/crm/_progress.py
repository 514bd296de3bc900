"""Progress bars for `progress=True` (drawn by tqdm, an optional extra)."""

from __future__ import annotations

from typing import Any

from crm.types import ImportProgress


class ProgressBar:
    """A progress callback that draws a tqdm bar of the rows read, with the
    rejected rows beside it; `close()` ends the bar."""

    def __init__(self, total: int | None, desc: str) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "progress=True draws a progress bar with tqdm, which is not installed: "
                "pip install 'crm[progress]' (or pass a callable as progress=)"
            ) from None
        self._bar: Any = tqdm(total=total, desc=desc, unit=" rows", unit_scale=True)
        self._rejected = 0

    def __call__(self, progress: ImportProgress) -> None:
        self._bar.update(progress["rows"] - self._bar.n)
        if progress["rejected"] != self._rejected:
            self._rejected = progress["rejected"]
            self._bar.set_postfix(rejected=self._rejected, refresh=False)

    def close(self) -> None:
        self._bar.close()
