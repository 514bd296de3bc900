"""Customer analytics as pure functions of columns: per-customer summaries
of a purchase log, the BG/NBD and Gamma-Gamma models (purchases, P(alive),
spend, lifetime value), RFM scores and segments, and retention cohorts.

The computations are crm-core's (`crm_core::analytics`), run with the GIL
released; this module only re-exports them. Conventions and results follow
the `lifetimes` package.

>>> import datetime
>>> from crm import analytics
>>> log = {
...     "customer": [1, 1, 1, 2],
...     "date": [datetime.date(2024, 1, d) for d in (1, 5, 9, 3)],
...     "amount": [10.0, 20.0, 40.0, 7.5],
... }
>>> s = analytics.summary(log, observation_end=datetime.date(2024, 1, 10))
>>> s.frequency.tolist(), s.recency.tolist(), s.T.tolist()
([2.0, 0.0], [8.0, 0.0], [9.0, 7.0])
>>> s.monetary_value.tolist(), s.total.tolist()
([30.0, 0.0], [70.0, 7.5])
>>> model = analytics.BgNbdModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
>>> alive = model.p_alive(s.frequency, s.recency, s.T)
>>> bool(0.0 < alive[0] < 1.0), float(alive[1])
(True, 1.0)

Columns may be lists, NumPy arrays, pandas or polars Series, or pyarrow
arrays; tables (for `summary` and `cohort_retention`) pandas or polars
DataFrames, pyarrow Tables or dicts of columns. Results are NumPy arrays.
Bad input raises `crm.ValidationError` whose `field` names the column and
the 0-based position, e.g. ``amount[3]``.
"""

from crm._crm.analytics import (
    BgNbdModel,
    GammaGammaModel,
    Retention,
    RfmScores,
    Summary,
    cohort_retention,
    fit_bgnbd,
    fit_gamma_gamma,
    rfm,
    rfm_quintiles,
    summary,
)

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
