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
    Deal,
    DealStageChange,
    DryRun,
    Forecast,
    FunnelStep,
    ImportProgress,
    ImportReport,
    Interaction,
    LifecycleConfig,
    MaterializeReport,
    Page,
    Pipeline,
    Rule,
    RuleEffect,
    RuleEvent,
    Satisfaction,
    ScoreRun,
    SearchHit,
    Segment,
    StageCount,
    StageTime,
    StageTransition,
    SweepReport,
    Task,
    Team,
    TeamMember,
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
    "Deal",
    "DealStageChange",
    "DryRun",
    "Explain",
    "Forecast",
    "FunnelStep",
    "ImportProgress",
    "ImportReport",
    "IncompatibleDatabaseError",
    "Interaction",
    "LifecycleConfig",
    "MaterializeReport",
    "NotFoundError",
    "Page",
    "ParseError",
    "Pipeline",
    "Rule",
    "RuleEffect",
    "RuleError",
    "RuleEvent",
    "Satisfaction",
    "ScoreRun",
    "SearchHit",
    "Segment",
    "StageCount",
    "StageTime",
    "StageTransition",
    "StorageError",
    "SweepReport",
    "Table",
    "Task",
    "Team",
    "TeamMember",
    "ValidationError",
    "__version__",
    "analytics",
    "format_filter",
    "open",
    "parse_filter",
]
