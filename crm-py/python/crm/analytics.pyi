"""Stubs of `crm.analytics` (re-exported from the compiled `crm._crm.analytics`;
checked with mypy.stubtest)."""

import datetime
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeAlias, final, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "BgNbdModel",
    "GammaGammaModel",
    "Retention",
    "RfmScores",
    "Summary",
    "cohort_retention",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "rfm",
    "rfm_quintiles",
    "summary",
]

class _ArrayLike(Protocol):
    """Anything NumPy can read as an array: a NumPy array, a pandas or
    polars Series, a pyarrow Array or ChunkedArray."""

    def __array__(self) -> npt.NDArray[Any]: ...

class _Table(Protocol):
    """Anything indexable by column name: a pandas or polars DataFrame, a
    pyarrow Table, a dict of columns."""

    def __getitem__(self, key: str, /) -> Any: ...

_Numbers: TypeAlias = Sequence[float] | _ArrayLike
_Amounts: TypeAlias = Sequence[float | Decimal] | _ArrayLike
_Time: TypeAlias = datetime.date | str | np.datetime64
_Unit: TypeAlias = Literal["days", "weeks"]
_Floats: TypeAlias = npt.NDArray[np.float64]

@final
class BgNbdModel:
    """A BG/NBD model of purchase counts: rates λ ~ Gamma(r, alpha) while
    alive, dropout after each repeat purchase with p ~ Beta(a, b)."""

    def __new__(cls, r: float, alpha: float, a: float, b: float) -> BgNbdModel: ...
    @property
    def r(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def log_likelihood(self) -> float | None: ...
    @property
    def standard_errors(self) -> dict[str, float] | None:
        """{"r", "alpha", "a", "b"} → standard error; None when not fitted."""

    @property
    def covariance(self) -> _Floats | None: ...
    @property
    def iterations(self) -> int: ...
    def expected_purchases(
        self, t: float, frequency: _Numbers, recency: _Numbers, T: _Numbers
    ) -> _Floats:
        """Each customer's expected purchases in the next `t` time units."""

    def p_alive(self, frequency: _Numbers, recency: _Numbers, T: _Numbers) -> _Floats:
        """Each customer's probability of being alive at the end of observation."""

    @overload
    def expected_purchases_unconditional(self, t: float) -> float: ...
    @overload
    def expected_purchases_unconditional(self, t: _Numbers) -> _Floats: ...

def fit_bgnbd(
    frequency: _Numbers,
    recency: _Numbers,
    T: _Numbers,
    *,
    weights: _Numbers | None = None,
    penalizer: float = 0.0,
    max_iterations: int | None = None,
) -> BgNbdModel:
    """Fits a BG/NBD model by maximum likelihood."""

@final
class GammaGammaModel:
    """A Gamma-Gamma model of spend per purchase."""

    def __new__(cls, p: float, q: float, gamma: float) -> GammaGammaModel: ...
    @property
    def p(self) -> float: ...
    @property
    def q(self) -> float: ...
    @property
    def gamma(self) -> float: ...
    @property
    def log_likelihood(self) -> float | None: ...
    @property
    def standard_errors(self) -> dict[str, float] | None:
        """{"p", "q", "gamma"} → standard error; None when not fitted."""

    @property
    def covariance(self) -> _Floats | None: ...
    @property
    def iterations(self) -> int: ...
    def expected_average_value(self, frequency: _Numbers, monetary_value: _Numbers) -> _Floats:
        """Each customer's expected mean spend per purchase."""

    def clv(
        self,
        bgnbd_model: BgNbdModel,
        frequency: _Numbers,
        recency: _Numbers,
        T: _Numbers,
        monetary_value: _Numbers,
        *,
        months: int = 12,
        discount_rate: float = 0.01,
        unit: _Unit = "days",
    ) -> _Floats:
        """Customer lifetime value over `months` months, discounted monthly."""

def fit_gamma_gamma(
    frequency: _Numbers,
    monetary_value: _Numbers,
    *,
    weights: _Numbers | None = None,
    penalizer: float = 0.0,
    max_iterations: int | None = None,
) -> GammaGammaModel:
    """Fits a Gamma-Gamma model by maximum likelihood (repeat customers only)."""

@final
class Summary:
    """One row per customer (ascending key), as NumPy arrays; amounts in
    major units."""

    @property
    def customer(self) -> npt.NDArray[Any]:
        """The customer keys as given: int64, uint64 or an object array of str."""

    @property
    def frequency(self) -> _Floats: ...
    @property
    def recency(self) -> _Floats: ...
    @property
    def T(self) -> _Floats: ...
    @property
    def monetary_value(self) -> _Floats: ...
    @property
    def total(self) -> _Floats: ...
    @property
    def frequency_holdout(self) -> _Floats | None: ...
    @property
    def monetary_value_holdout(self) -> _Floats | None: ...
    @property
    def duration_holdout(self) -> _Floats | None: ...
    @property
    def unit(self) -> _Unit: ...
    @property
    def observation_end(self) -> datetime.datetime: ...
    @property
    def calibration_end(self) -> datetime.datetime | None: ...
    @property
    def decimals(self) -> int: ...
    def __len__(self) -> int: ...
    def to_dict(self) -> dict[str, npt.NDArray[Any]]:
        """The columns by name: `pandas.DataFrame(s.to_dict())`."""

    def to_pandas(self) -> Any:
        """A pandas DataFrame (needs pandas: pip install 'crm[pandas]')."""

    def to_polars(self) -> Any:
        """A polars DataFrame (needs polars: pip install 'crm[polars]')."""

def summary(
    table: _Table,
    *,
    customer: str = "customer",
    date: str = "date",
    amount: str | None = "amount",
    observation_end: _Time | None = None,
    unit: _Unit = "days",
    calibration_end: _Time | None = None,
    decimals: int = 2,
) -> Summary:
    """Per-customer frequency, recency, T and monetary value of a purchase log."""

@final
class RfmScores:
    """RFM scores 1–5 (5 best) and segment names, in input order."""

    @property
    def r(self) -> npt.NDArray[np.uint8]: ...
    @property
    def f(self) -> npt.NDArray[np.uint8]: ...
    @property
    def m(self) -> npt.NDArray[np.uint8]: ...
    @property
    def segment(self) -> npt.NDArray[np.object_]:
        """Segment names (str): "champions", "loyal", …, "hibernating"."""

    def __len__(self) -> int: ...
    def to_dict(self) -> dict[str, npt.NDArray[Any]]: ...

def rfm(
    recency: _Numbers, frequency: _Numbers, monetary: _Amounts, *, decimals: int = 2
) -> RfmScores:
    """RFM scores: recency = time since the last purchase (smaller is better),
    frequency = purchases, monetary = spend in major units."""

def rfm_quintiles(values: _Numbers, *, higher_is_better: bool = True) -> npt.NDArray[np.uint8]:
    """Quintile scores 1–5 (5 best) of one column."""

@final
class Retention:
    """Retention by acquisition month (UTC): cohorts × months since acquisition."""

    @property
    def cohorts(self) -> list[datetime.date]: ...
    @property
    def sizes(self) -> npt.NDArray[np.int64]: ...
    @property
    def active(self) -> npt.NDArray[np.int64]: ...
    @property
    def rates(self) -> _Floats: ...
    def __len__(self) -> int: ...

def cohort_retention(
    table: _Table,
    *,
    customer: str = "customer",
    date: str = "date",
    observation_end: _Time | None = None,
) -> Retention:
    """Retention by acquisition month from a purchase log."""
