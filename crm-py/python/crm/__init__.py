"""An embeddable CRM engine over one SQLite file.

>>> import crm
>>> with crm.open() as db:
...     ana = db.create_customer(name="Ana Novak", emails=["Ana@Example.com"])
...     ana["emails"]
['ana@example.com']

`crm.open(path)` opens (or creates) a database file; `crm.open()` an
in-memory one. Results are plain dicts (see `crm.types`); errors are
subclasses of `crm.CrmError`.
"""

from crm._crm import (
    SCHEMA_VERSION,
    BusyError,
    ClosedError,
    ConflictError,
    CorruptDatabaseError,
    Crm,
    CrmError,
    IncompatibleDatabaseError,
    NotFoundError,
    StorageError,
    ValidationError,
    __version__,
    open,
)
from crm.types import (
    Change,
    ConsentRecord,
    Customer,
    ImportProgress,
    ImportReport,
    Interaction,
    Page,
    SearchHit,
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
    "ImportProgress",
    "ImportReport",
    "IncompatibleDatabaseError",
    "Interaction",
    "NotFoundError",
    "Page",
    "SearchHit",
    "StorageError",
    "ValidationError",
    "__version__",
    "open",
]
