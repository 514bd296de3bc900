"""An embeddable CRM engine over one SQLite file.

>>> import crm
>>> with crm.open() as db:
...     ana = db.create_customer(name="Ana Novak", emails=["Ana@Example.com"])
...     ana["emails"]
['ana@example.com']

`crm.open(path)` opens (or creates) a database file; `crm.open()` an
in-memory one. Results are plain dicts (see `crm.types`); errors are
subclasses of `crm.CrmError`.

Filters select customers with a small language, as text or as its syntax
tree (`crm.parse_filter`, `crm.format_filter`); segments name them:

>>> with crm.open() as db:
...     _ = db.create_customer(name="Ana", tags=["vip"])
...     db.create_segment("vips", filter='"vip" in tags')["kind"]
...     db.segment_count("vips")
'dynamic'
1
"""

from crm._crm import (
    SCHEMA_VERSION,
    BusyError,
    ClosedError,
    ConflictError,
    CorruptDatabaseError,
    Crm,
    CrmError,
    Explain,
    IncompatibleDatabaseError,
    NotFoundError,
    ParseError,
    RuleError,
    StorageError,
    Table,
    ValidationError,
    __version__,
    format_filter,
    open,
    parse_filter,
)
from crm import analytics
from crm.types import (
    Change,
    ConsentRecord,
    Customer,
    CustomerCard,
    CustomerScores,
    ImportProgress,
    ImportReport,
    Interaction,
    MaterializeReport,
    Page,
    Satisfaction,
    ScoreRun,
    SearchHit,
    Segment,
)

__all__ = [
    "SCHEMA_VERSION",
    "BusyError",
    "Change",
    "ClosedError",
    "ConflictError",
    "ConsentRecord",
    "CorruptDatabaseError",
    "Crm",
    "CrmError",
    "Customer",
    "CustomerCard",
    "CustomerScores",
    "Explain",
    "ImportProgress",
    "ImportReport",
    "IncompatibleDatabaseError",
    "Interaction",
    "MaterializeReport",
    "NotFoundError",
    "Page",
    "ParseError",
    "RuleError",
    "Satisfaction",
    "ScoreRun",
    "SearchHit",
    "Segment",
    "StorageError",
    "Table",
    "ValidationError",
    "__version__",
    "analytics",
    "format_filter",
    "open",
    "parse_filter",
]
