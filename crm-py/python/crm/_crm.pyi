"""Stubs of the compiled module `crm._crm` (checked with mypy.stubtest)."""

import datetime
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, Unpack, final

from crm.analytics import Retention
from crm.types import (
    AttributeDefinition,
    AttributeType,
    Change,
    ConsentRecord,
    ConsentStatus,
    Customer,
    CustomerCard,
    CustomerFields,
    CustomerPatchFields,
    CustomerRef,
    CustomerScores,
    Deal,
    DealFields,
    DealPatchFields,
    DealStageChange,
    DealStatus,
    DryRun,
    Filter,
    FilterTree,
    Forecast,
    FunnelStep,
    ImportMode,
    ImportProgress,
    ImportReport,
    Interaction,
    InteractionFields,
    LegalBasis,
    LifecycleConfig,
    LifecycleConfigFields,
    MaterializeReport,
    Page,
    Period,
    Pipeline,
    PipelineStageFields,
    Rule,
    RuleAction,
    RuleEffect,
    RuleEvent,
    RuleTrigger,
    Satisfaction,
    ScoreRun,
    SearchHit,
    Segment,
    Sort,
    StageCount,
    StageTime,
    StageTransition,
    SweepReport,
    Task,
    TaskFields,
    TaskPatchFields,
    TaskStatus,
    Team,
    TeamMember,
    TimeUnit,
    Upserted,
)

__all__ = [
    "Crm",
    "Explain",
    "Table",
    "open",
    "parse_filter",
    "format_filter",
    "CrmError",
    "NotFoundError",
    "ValidationError",
    "ParseError",
    "ConflictError",
    "IncompatibleDatabaseError",
    "CorruptDatabaseError",
    "BusyError",
    "ClosedError",
    "RuleError",
    "StorageError",
    "SCHEMA_VERSION",
    "__version__",
]

__version__: str
SCHEMA_VERSION: int

_Path = str | os.PathLike[str]
_Time = datetime.datetime | datetime.date | str
# A callable given each `ImportProgress`, or `True` for a tqdm progress bar.
_Progress = Callable[[ImportProgress], object] | bool
_Listener = Callable[[list[Change]], object]

class _ArrowStream(Protocol):
    """A DataFrame or Arrow object (pandas, polars, pyarrow, DuckDB)."""
    def __arrow_c_stream__(self, requested_schema: Any = None, /) -> object: ...

class _ArrowArray(Protocol):
    """A pyarrow RecordBatch or another Arrow record batch."""
    def __arrow_c_array__(self, requested_schema: Any = None, /) -> object: ...

_Records = Iterable[Mapping[str, Any]] | _ArrowStream | _ArrowArray

class CrmError(Exception):
    """Base class of every error raised by crm."""

class NotFoundError(CrmError):
    """The entity does not exist; `entity` names its kind."""

    entity: str

class ValidationError(CrmError):
    """Input was rejected: `field` names what, `reason` says why; `row` is the
    1-based row of an import, else None."""

    field: str
    reason: str
    row: int | None

class ParseError(ValidationError):
    """A filter expression is malformed or does not fit the schema; nothing
    ran. `line` and `column` (1-based, columns in characters; both 0 for a
    syntax tree given as a dict) point at the offending token, `message` says
    what was wrong, `suggestion` is the nearest valid name or None. `field`
    is "filter" and `reason` the message."""

    line: int
    column: int
    message: str
    suggestion: str | None

class ConflictError(CrmError):
    """A uniqueness rule would break (an email or external id in use)."""

    field: str
    reason: str

class IncompatibleDatabaseError(CrmError):
    """The file's schema version `found` is newer than `supported`."""

    found: int
    supported: int

class CorruptDatabaseError(CrmError):
    """The file is not a CRM database or is damaged."""

class BusyError(CrmError):
    """The database is locked."""

class ClosedError(CrmError):
    """The handle was closed."""

class RuleError(CrmError):
    """A rule could not run (its host event handler failed or raised, or its
    actions cascaded too deep or in a cycle); `rule` names it, `reason` says
    what went wrong. The write that triggered it was rolled back whole."""

    rule: str
    reason: str

class StorageError(CrmError):
    """Any other storage or file I/O failure."""

def parse_filter(text: str) -> FilterTree:
    """Parses text in the filter language into its syntax tree (JSON-like
    dicts and lists), without checking names; ParseError if malformed."""

def format_filter(ast: Mapping[str, Any]) -> str:
    """The canonical text of a syntax tree (a dict from `parse_filter`)."""

@final
class Explain:
    """What `Crm.explain` tells about a filter."""

    @property
    def canonical(self) -> str:
        """The canonical text of the filter."""
    @property
    def sql(self) -> str:
        """The SQL that counts the matching customers; values are `?N` parameters."""
    @property
    def params(self) -> list[str]:
        """The parameters' values, in order, as text."""
    @property
    def plan(self) -> list[str]:
        """SQLite's query plan, one step per line, indented under its parent."""

def open(
    path: _Path = ":memory:",
    *,
    default_region: str | None = None,
    busy_timeout_ms: int = 5000,
) -> Crm:
    """Opens a CRM: a file path (created if needed) or ":memory:"."""

@final
class Crm:
    """A handle on one CRM database, usable from many threads."""

    def __new__(
        cls,
        path: _Path = ":memory:",
        *,
        default_region: str | None = None,
        busy_timeout_ms: int = 5000,
    ) -> Crm: ...
    def __enter__(self) -> Crm: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...
    def close(self) -> None:
        """Closes the database for this handle and every handle made from
        it, and unregisters their change listeners."""
    def with_actor(self, actor: str, source: str | None = None) -> Crm: ...

    # customers
    def create_customer(
        self, customer: Mapping[str, Any] | None = None, /, **fields: Unpack[CustomerFields]
    ) -> Customer: ...
    def get_customer(self, id: str) -> Customer: ...
    def find_customer_by_external_id(self, external_id: str) -> Customer | None: ...
    def find_customer_by_email(self, email: str) -> Customer | None: ...
    def update_customer(
        self,
        id: str,
        changes: Mapping[str, Any] | None = None,
        /,
        **fields: Unpack[CustomerPatchFields],
    ) -> Customer: ...
    def delete_customer(self, id: str) -> None: ...
    def upsert_customer(
        self, customer: Mapping[str, Any] | None = None, /, **fields: Unpack[CustomerFields]
    ) -> Upserted: ...
    def list_customers(
        self,
        sort: Sort = "created_at",
        descending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Customer]: ...
    def list_customer_cards(
        self,
        *,
        sort: Sort = "created_at",
        descending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[CustomerCard]:
        """One page of customers as small list rows, each with the latest
        interaction."""
    def iter_customers(
        self, sort: Sort = "created_at", descending: bool = False, page_size: int = 500
    ) -> Iterator[Customer]: ...
    def count_customers(self) -> int: ...
    def define_attribute(self, key: str, type: AttributeType) -> None: ...
    def attribute_definitions(self) -> list[AttributeDefinition]: ...

    # interactions
    def log_interaction(
        self, customer: str | CustomerRef, kind: str, **fields: Unpack[InteractionFields]
    ) -> Interaction: ...
    def get_interaction(self, id: str) -> Interaction: ...
    def timeline(
        self,
        customer_id: str,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Interaction]: ...
    def iter_timeline(
        self, customer_id: str, kind: str | None = None, page_size: int = 500
    ) -> Iterator[Interaction]: ...
    def count_interactions(self) -> int: ...

    # consent
    def record_consent(
        self,
        customer_id: str,
        purpose: str,
        status: ConsentStatus,
        *,
        channel: str | None = None,
        legal_basis: LegalBasis | None = None,
        source: str | None = None,
        proof: str | None = None,
        recorded_at: datetime.datetime | datetime.date | str | None = None,
    ) -> ConsentRecord: ...
    def consent(
        self, customer_id: str, purpose: str, channel: str | None = None
    ) -> ConsentRecord | None: ...
    def has_consent(self, customer_id: str, purpose: str, channel: str | None = None) -> bool: ...
    def consent_history(
        self, customer_id: str, purpose: str | None = None
    ) -> list[ConsentRecord]: ...

    # search and change log
    def search(self, query: str, limit: int = 20) -> list[SearchHit]: ...
    def changes_since(self, after_seq: int = 0, limit: int = 1000) -> list[Change]: ...
    def customer_history(self, id: str) -> list[Change]: ...
    def add_change_listener(self, callback: _Listener) -> int:
        """Calls `callback` with the change-log entries of every committed
        write (on the writing thread, in batches of at most 1000); returns
        the id that `remove_change_listener` takes. Its exceptions go to
        `sys.unraisablehook`."""
    def remove_change_listener(self, listener_id: int) -> bool:
        """Unregisters a change listener; returns whether it was registered."""

    # filters
    def check_filter(self, filter: Filter) -> str:
        """Checks a filter against this database; returns its canonical text."""
    def count_matching(self, filter: Filter) -> int:
        """How many customers match a filter."""
    def find_matching(
        self, filter: Filter, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Customer]:
        """One page of the customers who match a filter, in creation order."""
    def customer_matches(self, customer_id: str, filter: Filter) -> bool:
        """Whether one customer matches a filter."""
    def explain(self, filter: Filter) -> Explain:
        """The SQL a filter runs as, its parameters and SQLite's plan."""

    # segments
    def create_segment(
        self, name: str, *, filter: Filter | None = None, description: str | None = None
    ) -> Segment:
        """Creates a dynamic segment (with a filter) or a static one (without)."""
    def segment(self, name: str) -> Segment:
        """The segment called `name`; NotFoundError if there is none."""
    def segments(self) -> list[Segment]:
        """Every segment, by name."""
    def rename_segment(self, name: str, new_name: str) -> Segment:
        """Renames a segment; filters of segments that use it follow."""
    def update_segment(
        self, name: str, *, filter: Filter | None = None, description: str | None = ...
    ) -> Segment:
        """Changes a dynamic segment's filter (None: unchanged) or the
        description (None clears it; left out: unchanged)."""
    def delete_segment(self, name: str) -> None:
        """Deletes a segment; ConflictError if other segments use it."""
    def add_to_segment(self, name: str, customer_ids: list[str] | tuple[str, ...]) -> int:
        """Adds customers to a static segment; returns how many were new."""
    def remove_from_segment(
        self, name: str, customer_ids: list[str] | tuple[str, ...]
    ) -> int:
        """Removes customers from a static segment; returns how many were members."""
    def segment_count(self, name: str) -> int:
        """How many members a segment has now."""
    def segment_members(
        self, name: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Customer]:
        """One page of a segment's members, in creation order."""
    def iter_segment_members(self, name: str, *, batch_size: int = 1000) -> Iterator[Customer]:
        """Every member of a segment, fetched `batch_size` at a time."""
    def segment_contains(self, name: str, customer_id: str) -> bool:
        """Whether a customer is a member of a segment now."""
    def materialize_segment(self, name: str) -> MaterializeReport:
        """Stores a dynamic segment's membership; logs who entered and left."""

    # imports
    def import_customers(
        self,
        records: _Records,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        upsert: bool = False,
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport:
        """Imports customers from a DataFrame (pandas, polars), Arrow data
        (anything with `__arrow_c_stream__`) or an iterable of dicts.
        `mapping` (field → column) and `ignore` apply to DataFrames; row N
        of an error is the DataFrame's N-th row (`df.iloc[N-1]`)."""
    def import_customers_csv(
        self,
        path: _Path,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        upsert: bool = False,
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport: ...
    def import_customers_ndjson(
        self,
        path: _Path,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        upsert: bool = False,
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport: ...
    def import_interactions(
        self,
        records: _Records,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport:
        """Imports interactions from a DataFrame, Arrow data or an iterable
        of dicts; `mapping` and `ignore` as for `import_customers`."""
    def import_interactions_csv(
        self,
        path: _Path,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport: ...
    def import_interactions_ndjson(
        self,
        path: _Path,
        *,
        mapping: Mapping[str, str] | None = None,
        ignore: list[str] | tuple[str, ...] | None = None,
        mode: ImportMode = "all_or_nothing",
        max_errors: int = 1000,
        progress: _Progress | None = None,
        progress_every: int = 10000,
    ) -> ImportReport: ...

    # exports
    def export_customers(self, path: _Path, format: Literal["csv", "ndjson"] = "csv") -> int: ...
    def export_interactions(
        self, path: _Path, format: Literal["csv", "ndjson"] = "csv"
    ) -> int: ...

    # analytics over the store
    def compute_scores(
        self,
        *,
        kind: str = "purchase",
        currency: str | None = None,
        unit: TimeUnit = "days",
        observation_end: _Time | None = None,
        horizon_days: int = 90,
        clv_months: int = 12,
        discount_rate: float = 0.01,
        penalizer: float = 0.0,
    ) -> ScoreRun:
        """Computes and stores every customer's scores (RFM, BG/NBD P(alive)
        and expected purchases, Gamma-Gamma expected value, CLV) from the
        purchase log, for the filter language (`p_alive < 0.3`,
        `rfm.segment = "champions"`); returns the run. A failed run changes
        nothing."""
    def score_run(self) -> ScoreRun | None:
        """The latest `compute_scores` run, or None."""
    def customer_scores(self, customer_id: str) -> CustomerScores | None:
        """A customer's stored scores; None without a purchase at the latest
        run. NotFoundError if the customer doesn't exist."""
    def satisfaction(
        self,
        *,
        segment: Filter | None = None,
        kind: str = "survey_response",
        subject: str | None = None,
        since: _Time | None = None,
        until: _Time | None = None,
        period: Period = "month",
        satisfied_from: int = 8,
    ) -> list[Satisfaction]:
        """NPS and CSAT of the survey answers per period, oldest first;
        `since` inclusive, `until` exclusive; only the customers matching
        `segment`, when given."""
    def cohort_retention(
        self,
        *,
        segment: Filter | None = None,
        kind: str = "purchase",
        observation_end: _Time | None = None,
    ) -> Retention:
        """Retention by acquisition month of the customers' purchases (of
        the customers matching `segment`, when given)."""

    # lifecycle stages
    def lifecycle_config(self) -> LifecycleConfig:
        """The lifecycle configuration (the default stages until one is set)."""
    def set_lifecycle_config(
        self,
        config: Mapping[str, Any] | None = None,
        /,
        **fields: Unpack[LifecycleConfigFields],
    ) -> LifecycleConfig:
        """Replaces the lifecycle configuration; returns it as stored.
        ValidationError for a bad one, ConflictError when it removes a stage
        customers are in; nothing changes on error."""
    def set_lifecycle_stage(self, id: str, stage: str, note: str | None = None) -> Customer:
        """Moves the customer to `stage` (a manual transition, `note` kept on
        it); ValidationError for an unknown stage or a refused backward move."""
    def stage_history(self, id: str) -> list[StageTransition]:
        """Every stage transition of the customer, oldest first."""
    def time_in_stages(self, id: str, now: _Time | None = None) -> list[StageTime]:
        """Time spent in each stage the customer has been in, up to `now`."""
    def stage_counts(self, at: _Time) -> list[StageCount]:
        """Customers per stage at the instant `at`, every configured stage."""
    def stage_funnel(self, since: _Time, until: _Time) -> list[FunnelStep]:
        """Per ordered stage: customers who entered it in [since, until) and
        how many of them then reached a later stage in the period."""

    # rules and assignment
    def create_rule(
        self,
        name: str,
        trigger: RuleTrigger | str,
        actions: Iterable[RuleAction],
        *,
        condition: Filter | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Rule:
        """Stores a rule: when `trigger` happens and `condition` holds for
        the customer, run `actions`, in the same transaction. ValidationError
        (or ParseError for the condition) for a bad rule; nothing is stored."""
    def rule(self, name: str) -> Rule:
        """The rule called `name`; NotFoundError if there is none."""
    def rules(self) -> list[Rule]:
        """Every rule, by name."""
    def update_rule(
        self,
        name: str,
        trigger: RuleTrigger | str,
        actions: Iterable[RuleAction],
        *,
        condition: Filter | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Rule:
        """Replaces a rule's definition: a new version."""
    def set_rule_enabled(self, name: str, enabled: bool) -> Rule:
        """Enables or disables a rule (a new version if it changes)."""
    def rule_versions(self, name: str) -> list[Rule]:
        """Every version of a rule, oldest first."""
    def delete_rule(self, name: str) -> None:
        """Deletes a rule (its effects stay in the change log)."""
    def dry_run_rule(
        self,
        name: str,
        trigger: RuleTrigger | str,
        actions: Iterable[RuleAction],
        *,
        condition: Filter | None = None,
        description: str | None = None,
        limit: int | None = None,
    ) -> DryRun:
        """What a rule would do to the existing data; nothing is stored."""
    def run_sweep(self, now: _Time | None = None) -> SweepReport:
        """Runs the scheduled rules: each acts once on the customers who
        newly match its condition."""
    def rule_effects(
        self,
        *,
        rule: str | None = None,
        entity_id: str | None = None,
        limit: int | None = None,
    ) -> list[RuleEffect]:
        """What rules did, newest first, with why."""
    def set_rule_event_handler(self, handler: Callable[[RuleEvent], object] | None) -> None:
        """Sets the callable that receives `emit` actions inside the write
        (raising rolls the write back with a RuleError), or removes it."""
    def set_team(self, name: str, members: Iterable[str | TeamMember]) -> Team:
        """Creates or replaces an assignment team (at least one member)."""
    def team(self, name: str) -> Team:
        """The team called `name`; NotFoundError if there is none."""
    def teams(self) -> list[Team]:
        """Every team, by name."""
    def set_member_out(self, team: str, member: str, out: bool | None = None) -> Team:
        """Marks a member out of office (skipped by assignments) or back."""
    def delete_team(self, name: str) -> None:
        """Deletes a team; ConflictError while a rule assigns from it."""

    # pipelines, deals and tasks
    def create_pipeline(
        self, name: str, currency: str, stages: Sequence[PipelineStageFields]
    ) -> Pipeline:
        """Creates a pipeline of ordered stages in one currency;
        ValidationError (nothing stored) for no stages, duplicate stage
        names, no open stage or a bad currency."""
    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called `name`; NotFoundError if there is none."""
    def pipelines(self) -> list[Pipeline]:
        """Every pipeline, by name."""
    def update_pipeline_stages(
        self, name: str, stages: Sequence[PipelineStageFields]
    ) -> Pipeline:
        """Replaces a pipeline's stages; ConflictError when a stage that
        holds deals would go or change whether it is closed or won."""
    def delete_pipeline(self, name: str) -> None:
        """Deletes a pipeline; ConflictError if it has deals."""
    def create_deal(
        self, deal: Mapping[str, Any] | None = None, /, **fields: Unpack[DealFields]
    ) -> Deal:
        """Creates a deal (by default in the pipeline's first open stage and
        currency; another currency is a ValidationError)."""
    def get_deal(self, id: str) -> Deal:
        """The deal with `id`; NotFoundError if there is none."""
    def update_deal(
        self,
        id: str,
        changes: Mapping[str, Any] | None = None,
        /,
        **fields: Unpack[DealPatchFields],
    ) -> Deal:
        """Changes a deal's fields (not its stage); None clears a field."""
    def move_deal(self, id: str, stage: str, reason: str | None = None) -> Deal:
        """Moves a deal to a stage of its pipeline; a closed stage closes it
        as won or lost (a lost deal needs a `reason`), an open one reopens it."""
    def deals(
        self,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        owner: str | None = None,
        customer_id: str | None = None,
        status: DealStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Deal]:
        """One page of deals, in creation order."""
    def deal_history(self, id: str) -> list[DealStageChange]:
        """A deal's stage changes, oldest first."""
    def delete_deal(self, id: str) -> None:
        """Deletes a deal with its history and tasks."""
    def forecast(
        self,
        pipeline: str,
        *,
        owner: str | None = None,
        close_from: datetime.date | str | None = None,
        close_to: datetime.date | str | None = None,
    ) -> Forecast:
        """The weighted forecast of a pipeline's open deals, per open stage
        and in total (minor units)."""
    def create_task(
        self, task: Mapping[str, Any] | None = None, /, **fields: Unpack[TaskFields]
    ) -> Task:
        """Creates an open task (`title` required)."""
    def get_task(self, id: str) -> Task:
        """The task with `id`; NotFoundError if there is none."""
    def update_task(
        self,
        id: str,
        changes: Mapping[str, Any] | None = None,
        /,
        **fields: Unpack[TaskPatchFields],
    ) -> Task:
        """Changes a task's fields (not its status); None clears a field."""
    def complete_task(self, id: str) -> Task:
        """Marks an open task done; ConflictError for a cancelled one."""
    def cancel_task(self, id: str) -> Task:
        """Cancels an open task; ConflictError for a done one."""
    def reopen_task(self, id: str) -> Task:
        """Opens a done or cancelled task again."""
    def delete_task(self, id: str) -> None:
        """Deletes a task."""
    def tasks(
        self,
        *,
        owner: str | None = None,
        customer_id: str | None = None,
        deal_id: str | None = None,
        status: TaskStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of tasks, in creation order."""
    def overdue_tasks(
        self,
        now: _Time | None = None,
        owner: str | None = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of the open tasks due before `now` (default: the
        current time), oldest due first."""

    # tables as Arrow data
    def table(
        self,
        name: _TableName,
        *,
        filter: Filter | None = None,
        segment: str | None = None,
        since: _Time | None = None,
        until: _Time | None = None,
        batch_size: int = 65536,
    ) -> Table:
        """A table as Arrow data, to read with `to_pandas()`, `to_polars()`,
        `to_arrow()`, by iteration or through `__arrow_c_stream__`. `filter`
        and `segment` keep the rows of the matching customers; `since`
        (inclusive) and `until` (exclusive) bound interactions by
        `occurred_at`, consent by `recorded_at` and stage transitions by
        `at` (a ValidationError for customers and scores). Bad input raises here: ValidationError,
        ParseError, NotFoundError for an unknown segment."""

_TableName = Literal[
    "customers", "interactions", "consent", "scores", "stage_transitions", "deals", "tasks"
]

@final
class Table:
    """A table of the database as Arrow data: which table and which rows.
    Each read starts afresh (a file database is read in one consistent
    snapshot), so a Table can be read any number of times. Columns: ids as
    text, times as timestamp[us, UTC], low-cardinality text as dictionaries
    (categoricals), customer attributes as `attr.<key>` columns."""

    @property
    def name(self) -> str:
        """customers, interactions, consent, scores, stage_transitions, deals or tasks."""
    @property
    def schema(self) -> Any:
        """The columns a read has now, as a `pyarrow.Schema` (needs pyarrow)."""
    @property
    def columns(self) -> list[str]:
        """The column names a read has now."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow C stream of a fresh read (the Arrow PyCapsule interface)."""
    def to_arrow(self) -> Any:
        """The rows as a `pyarrow.Table` (needs pyarrow: pip install 'crm[arrow]')."""
    def to_pandas(self, **kwargs: Any) -> Any:
        """The rows as a pandas DataFrame, through pyarrow (keyword arguments
        go to `pyarrow.Table.to_pandas`, with `split_blocks=True` unless
        given: no copy to consolidate columns); dictionary columns become
        categoricals, times datetime64[us, UTC] (needs pandas and pyarrow:
        pip install 'crm[pandas]')."""
    def to_polars(self) -> Any:
        """The rows as a polars DataFrame (needs polars, not pyarrow:
        pip install 'crm[polars]')."""
    def __iter__(self) -> Iterator[Any]:
        """A fresh read, one `pyarrow.RecordBatch` at a time (needs pyarrow)."""
    def _preview(self, n: int) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        """The first `n` rows for display: (column (name, type) pairs, rows)."""
    def _repr_html_(self) -> str:
        """The columns and the first rows as an HTML table (notebooks)."""
