"""The shapes of the dicts that `crm` returns and accepts, as TypedDicts.

Everything `crm` returns is a plain dict; these types only tell a type
checker (and a reader) which keys each one has.

* ids are ``str`` (UUIDv7, time-ordered);
* times are timezone-aware ``datetime.datetime`` in UTC;
* dates are ``datetime.date``;
* money is an ``int`` of minor units (cents) plus an ISO-4217 currency code.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Literal, TypedDict, TypeVar

__all__ = [
    "Address",
    "AttributeDefinition",
    "AttributeType",
    "AttributeValue",
    "BgNbdFit",
    "Change",
    "ConsentRecord",
    "ConsentStatus",
    "Customer",
    "CustomerCard",
    "CustomerCardPage",
    "CustomerFields",
    "CustomerKind",
    "CustomerPage",
    "CustomerPatchFields",
    "CustomerRef",
    "CustomerScores",
    "Deal",
    "DealFields",
    "DealPatchFields",
    "DealStageChange",
    "DealStatus",
    "Direction",
    "Forecast",
    "ForecastStage",
    "ImportMode",
    "Filter",
    "FilterTree",
    "FunnelStep",
    "GammaGammaFit",
    "ImportProgress",
    "ImportReport",
    "Interaction",
    "InteractionFields",
    "InteractionPage",
    "LegalBasis",
    "LifecycleConfig",
    "LifecycleConfigFields",
    "LifecycleStage",
    "MaterializeReport",
    "Page",
    "Period",
    "Pipeline",
    "PipelineStage",
    "PipelineStageFields",
    "RfmSegment",
    "RowError",
    "Satisfaction",
    "ScoreOptions",
    "ScoreRun",
    "SearchHit",
    "Segment",
    "SegmentKind",
    "StageCount",
    "StageTime",
    "StageTransition",
    "Sort",
    "Task",
    "TaskFields",
    "TaskPatchFields",
    "TaskPriority",
    "TaskStatus",
    "TimeUnit",
    "TransitionCause",
    "Upserted",
]

T = TypeVar("T")

CustomerKind = Literal["person", "organization"]
AttributeType = Literal["text", "number", "bool", "date"]
AttributeValue = str | float | bool | datetime.date
Direction = Literal["inbound", "outbound"]
ConsentStatus = Literal["granted", "denied", "withdrawn"]
LegalBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
]
ImportMode = Literal["all_or_nothing", "skip_invalid"]
Sort = Literal["created_at", "updated_at", "name"]
SegmentKind = Literal["dynamic", "static"]
FilterTree = dict[str, Any]
"""A filter's syntax tree as JSON-like dicts and lists (`crm.parse_filter`)."""
Filter = str | Mapping[str, Any]
"""A filter: text in the filter language, or its syntax tree."""
TimeUnit = Literal["days", "weeks"]
"""The period `compute_scores` counts frequency, recency and T in."""
Period = Literal["day", "week", "month", "quarter", "year", "all"]
"""How `satisfaction` groups answers (UTC calendar periods; weeks from
Monday; "all": one group)."""
TransitionCause = Literal["manual", "import", "rule", "upgrade"]
"""Why a customer changed lifecycle stage ("upgrade": the stage the customer
had when the database started recording transitions)."""
RfmSegment = Literal[
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose_them",
    "hibernating",
]


class Address(TypedDict):
    """A postal address."""

    label: str | None
    line1: str | None
    line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


class Customer(TypedDict):
    """A stored customer (person or organization)."""

    id: str
    kind: CustomerKind
    external_id: str | None
    name: str
    first_name: str | None
    last_name: str | None
    organization_id: str | None
    emails: list[str]
    phones: list[str]
    addresses: list[Address]
    birth_date: datetime.date | None
    locale: str | None
    country: str | None
    tags: list[str]
    attributes: dict[str, AttributeValue]
    lifecycle_stage: str
    owner: str | None
    source: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class Interaction(TypedDict):
    """A stored entry of a customer's timeline."""

    id: str
    customer_id: str
    kind: str
    channel: str | None
    direction: Direction | None
    occurred_at: datetime.datetime
    subject: str | None
    body: str | None
    amount_minor: int | None
    currency: str | None
    product: str | None
    quantity: int | None
    score: int | None
    metadata: dict[str, Any] | None
    created_at: datetime.datetime


class CustomerCard(TypedDict):
    """A customer as one row of a list (`list_customer_cards`): the first
    email and phone, and the most recent interaction by when it happened."""

    id: str
    kind: CustomerKind
    name: str
    email: str | None
    phone: str | None
    lifecycle_stage: str
    owner: str | None
    tags: list[str]
    latest_interaction: Interaction | None


class ConsentRecord(TypedDict):
    """One entry of a customer's consent ledger."""

    id: str
    customer_id: str
    purpose: str
    channel: str | None
    status: ConsentStatus
    legal_basis: LegalBasis | None
    source: str | None
    proof: str | None
    recorded_at: datetime.datetime


class Change(TypedDict):
    """One entry of the change log."""

    seq: int
    at: datetime.datetime
    entity: Literal[
        "customer",
        "interaction",
        "consent",
        "segment",
        "segment_member",
        "pipeline",
        "deal",
        "task",
        "rule",
        "team",
        "settings",
    ]
    entity_id: str
    op: Literal["created", "updated", "deleted"]
    fields: list[str]
    actor: str | None
    source: str | None
    rule: str | None


class SearchHit(TypedDict):
    """A search result; `interaction_id` and `subject` are set when the
    customer was found through an interaction's subject."""

    customer: Customer
    score: float
    matched: Literal["customer", "interaction"]
    interaction_id: str | None
    subject: str | None


class Upserted(TypedDict):
    """What `upsert_customer` did."""

    customer: Customer
    created: bool


class AttributeDefinition(TypedDict):
    """A custom attribute's key and type."""

    key: str
    type: AttributeType


class RowError(TypedDict):
    """A rejected import row (1-based; CSV rows count after the header)."""

    row: int
    field: str
    reason: str


class ImportReport(TypedDict):
    """The outcome of an import."""

    rows: int
    inserted: int
    updated: int
    rejected: int
    errors: list[RowError]


class ImportProgress(TypedDict):
    """What a progress callback receives."""

    rows: int
    applied: int
    rejected: int


class Page(TypedDict, Generic[T]):
    """One page of results; pass `next_cursor` back for the next one."""

    items: list[T]
    next_cursor: str | None


class Segment(TypedDict):
    """A segment: dynamic (whoever matches `filter`, its canonical text) or
    static (an explicit list of customers; `filter` is None)."""

    id: str
    name: str
    description: str | None
    kind: SegmentKind
    filter: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    evaluated_at: datetime.datetime | None


class MaterializeReport(TypedDict):
    """What `materialize_segment` did: members now, and how many customers
    entered and left since the last materialization."""

    members: int
    entered: int
    left: int


CustomerPage = Page[Customer]
CustomerCardPage = Page[CustomerCard]
InteractionPage = Page[Interaction]


class CustomerRef(TypedDict, total=False):
    """How an interaction names its customer: exactly one key."""

    id: str
    external_id: str
    email: str


class CustomerFields(TypedDict, total=False):
    """The fields of a new customer (all optional; a name, or a first or
    last name, is required)."""

    kind: CustomerKind | None
    external_id: str | None
    name: str | None
    first_name: str | None
    last_name: str | None
    organization_id: str | None
    emails: Sequence[str] | None
    phones: Sequence[str] | None
    addresses: Sequence[Mapping[str, str | None]] | None
    birth_date: datetime.date | str | None
    locale: str | None
    country: str | None
    tags: Sequence[str] | None
    attributes: Mapping[str, AttributeValue | int | None] | None
    lifecycle_stage: str | None
    owner: str | None
    source: str | None


class CustomerPatchFields(TypedDict, total=False):
    """The changes of `update_customer`; None clears a field."""

    external_id: str | None
    name: str
    first_name: str | None
    last_name: str | None
    organization_id: str | None
    emails: Sequence[str] | None
    phones: Sequence[str] | None
    addresses: Sequence[Mapping[str, str | None]] | None
    birth_date: datetime.date | str | None
    locale: str | None
    country: str | None
    tags: Sequence[str] | None
    set_attributes: Mapping[str, AttributeValue | int | None] | None
    remove_attributes: Sequence[str] | None
    lifecycle_stage: str
    owner: str | None
    source: str | None


class InteractionFields(TypedDict, total=False):
    """The optional fields of `log_interaction`."""

    channel: str | None
    direction: Direction | None
    occurred_at: datetime.datetime | datetime.date | str | None
    subject: str | None
    body: str | None
    amount_minor: int | None
    currency: str | None
    product: str | None
    quantity: int | None
    score: int | None
    metadata: Mapping[str, Any] | None


class ScoreOptions(TypedDict):
    """The options of a `compute_scores` run (its keyword arguments), with
    the currency resolved."""

    kind: str
    currency: str | None
    unit: TimeUnit
    observation_end: datetime.datetime | None
    horizon_days: int
    clv_months: int
    discount_rate: float
    penalizer: float


class BgNbdFit(TypedDict):
    """A fitted BG/NBD model of purchase counts (parameters in the run's
    time unit). `standard_errors` maps "r", "alpha", "a", "b" to theirs;
    `covariance` is their 4×4 matrix as rows in that order; both None when
    not available."""

    r: float
    alpha: float
    a: float
    b: float
    standard_errors: dict[str, float] | None
    covariance: list[list[float]] | None
    log_likelihood: float | None
    customers: float
    iterations: int


class GammaGammaFit(TypedDict):
    """A fitted Gamma-Gamma model of spend (in major units).
    `standard_errors` maps "p", "q", "gamma" to theirs; `covariance` is
    their 3×3 matrix as rows in that order."""

    p: float
    q: float
    gamma: float
    standard_errors: dict[str, float] | None
    covariance: list[list[float]] | None
    log_likelihood: float | None
    customers: float
    iterations: int


class ScoreRun(TypedDict):
    """What a `compute_scores` run did: when, its options, the counts and
    the fitted models. Customers are those with a purchase up to
    `observation_end`; refunds (negative amounts) and purchases in another
    currency are left out and counted."""

    computed_at: datetime.datetime
    observation_end: datetime.datetime
    options: ScoreOptions
    customers: int
    purchases: int
    skipped_refunds: int
    skipped_other_currency: int
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit


class CustomerScores(TypedDict):
    """One customer's stored scores. Times are in the run's unit; money in
    major units of its currency, except `total_minor`. `rfm_r`, `rfm_f`,
    `rfm_m` are 1–5 (5 best)."""

    customer_id: str
    frequency: float
    recency: float
    t: float
    monetary_value: float
    total_minor: int
    rfm_r: int
    rfm_f: int
    rfm_m: int
    rfm_segment: RfmSegment
    p_alive: float
    expected_purchases: float
    expected_value: float
    clv: float


class Satisfaction(TypedDict):
    """NPS and CSAT of one period: promoters score 9–10, passives 7–8,
    detractors 0–6; NPS = 100 · (promoters − detractors) / responses; CSAT
    is the percentage of `satisfied` answers. `period_start` is the
    period's first day, None for `period="all"`."""

    period_start: datetime.date | None
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float
    satisfied: int
    csat: float
    mean_score: float


class LifecycleStage(TypedDict):
    """An ordered lifecycle stage; with `allow_backward`, customers may move
    from it back to any earlier stage."""

    name: str
    allow_backward: bool


class _LifecycleStageFields(TypedDict, total=False):
    name: str
    allow_backward: bool


class LifecycleConfig(TypedDict):
    """The lifecycle stages: `stages` ordered (earliest first), `off_track`
    outside the order (entered and left freely), `default_stage` for new
    customers given none."""

    stages: list[LifecycleStage]
    off_track: list[str]
    default_stage: str


class LifecycleConfigFields(TypedDict, total=False):
    """What `set_lifecycle_config` takes (`stages` and `default_stage` are
    required; `off_track` defaults to none, `allow_backward` to False)."""

    stages: Sequence[_LifecycleStageFields]
    off_track: Sequence[str]
    default_stage: str


StageTransition = TypedDict(
    "StageTransition",
    {
        "from": str | None,
        "to": str,
        "at": datetime.datetime,
        "cause": TransitionCause,
        "rule": str | None,
        "note": str | None,
    },
)
"""One change of a customer's lifecycle stage; `from` is None for the stage
the customer was created in, `rule` names the rule when `cause` is "rule"."""


class StageTime(TypedDict):
    """Whole seconds a customer spent in a stage, over `entered` visits."""

    stage: str
    seconds: int
    entered: int


class StageCount(TypedDict):
    """How many customers were in a stage at one instant."""

    stage: str
    customers: int


class FunnelStep(TypedDict):
    """One ordered stage of a funnel over a period: `entered` customers
    entered it, `advanced` of them then reached a later stage within the
    period; `conversion_rate` is advanced / entered (None when 0)."""

    stage: str
    entered: int
    advanced: int
    conversion_rate: float | None


# ----- rules and assignment -------------------------------------------------

RuleTrigger = dict[str, Any]
"""A trigger as a dict with a `"type"`: `customer_created`,
`customer_updated` (`fields`), `interaction_logged` (`kind`),
`deal_stage_changed` (`pipeline`, `from_stage`, `to_stage`),
`segment_entered` / `segment_left` (`segment`), `schedule`."""

RuleAction = dict[str, Any]
"""An action as a dict with a `"type"`: `set_stage` (`stage`), `add_tag` /
`remove_tag` (`tag`), `set_attribute` (`key`, `value`), `create_task`
(`title`, `due_in_days`, `priority`, `assign`), `assign_owner`
(`assignment`, `overwrite`), `add_to_segment` / `remove_from_segment`
(`segment`), `emit` (`event`). An assignment is `{"type": "round_robin" |
"least_open_work", "team"}` or `{"type": "territory", "attribute",
"owners", "team"}`."""


class Rule(TypedDict):
    """A stored rule: its trigger, condition (canonical filter text) and
    actions, as dicts of the same shape `create_rule` takes."""

    id: str
    name: str
    description: str | None
    trigger: RuleTrigger
    condition: str | None
    actions: list[RuleAction]
    enabled: bool
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class RuleEffect(TypedDict):
    """One thing a rule did (or would do, in a dry run), and why."""

    rule: str
    rule_version: int
    at: datetime.datetime
    entity: str
    entity_id: str
    action: str
    detail: str


class DryRun(TypedDict):
    """What a rule would do: `matching` customers, `simulated` of them acted
    on, and the effects (nothing was stored)."""

    matching: int
    simulated: int
    effects: list[RuleEffect]


class SweepRule(TypedDict):
    """One scheduled rule in a sweep: customers matching its condition, and
    those it newly acted on."""

    rule: str
    matching: int
    acted_on: int


class SweepReport(TypedDict):
    """What `run_sweep` did, per enabled scheduled rule."""

    at: datetime.datetime
    rules: list[SweepRule]


class RuleEvent(TypedDict):
    """An `emit` action as the event handler receives it."""

    event: str
    rule: str
    trigger: str
    customer_id: str | None
    deal_id: str | None


class TeamMember(TypedDict):
    """A member of an assignment team; `capacity` caps their open work
    (open tasks and deals), `out` skips them."""

    name: str
    capacity: int | None
    out: bool


class Team(TypedDict):
    """An assignment team, members in round-robin order."""

    name: str
    members: list[TeamMember]


# ----- pipelines, deals, tasks ------------------------------------------------

DealStatus = Literal["open", "won", "lost"]
TaskPriority = Literal["low", "normal", "high", "urgent"]
TaskStatus = Literal["open", "done", "cancelled"]


class PipelineStage(TypedDict):
    """One stage of a pipeline: its default `probability` (percent) and
    whether deals in it are `closed` and, if so, `won` (a won stage has
    probability 100, a lost one 0)."""

    name: str
    probability: int
    closed: bool
    won: bool


class PipelineStageFields(TypedDict, total=False):
    """A stage as `create_pipeline` takes it (`name` and `probability` are
    required; `closed` and `won` default to False)."""

    name: str
    probability: int
    closed: bool
    won: bool


class Pipeline(TypedDict):
    """A sales pipeline: ordered stages in one currency."""

    id: str
    name: str
    currency: str
    stages: list[PipelineStage]
    created_at: datetime.datetime
    updated_at: datetime.datetime


class Deal(TypedDict):
    """A deal in a pipeline. `probability` is its effective probability
    (100 when won, 0 when lost, else `probability_override` or the stage's
    default); `status` follows from its stage."""

    id: str
    pipeline: str
    title: str
    stage: str
    value_minor: int
    currency: str
    probability: int
    probability_override: int | None
    owner: str | None
    expected_close: datetime.date | None
    customer_id: str | None
    organization_id: str | None
    status: DealStatus
    close_reason: str | None
    closed_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class DealFields(TypedDict, total=False):
    """What `create_deal` takes (`pipeline`, `title` and `value_minor` are
    required)."""

    pipeline: str
    title: str
    stage: str | None
    value_minor: int
    currency: str | None
    owner: str | None
    expected_close: datetime.date | str | None
    probability: int | None
    customer_id: str | None
    organization_id: str | None
    close_reason: str | None


class DealPatchFields(TypedDict, total=False):
    """What `update_deal` takes; None clears a field."""

    title: str
    value_minor: int
    owner: str | None
    expected_close: datetime.date | str | None
    probability: int | None
    customer_id: str | None
    organization_id: str | None


DealStageChange = TypedDict(
    "DealStageChange",
    {
        "from": str | None,
        "to": str,
        "at": datetime.datetime,
        "reason": str | None,
        "rule": str | None,
    },
)
"""One stage change of a deal; `from` is None for the stage it was created
in, `rule` names the rule that moved it, if one did."""


class ForecastStage(TypedDict):
    """The open deals of one stage: how many, their value and their
    weighted value (minor units)."""

    stage: str
    probability: int
    deals: int
    value_minor: int
    weighted_minor: int


class Forecast(TypedDict):
    """A weighted forecast of a pipeline's open deals: every open stage in
    order, and the totals. Each deal weighs value × probability / 100,
    rounded half up on its own."""

    pipeline: str
    currency: str
    stages: list[ForecastStage]
    total_minor: int
    weighted_minor: int


class Task(TypedDict):
    """A task; `rule` names the rule that created it, if one did;
    `completed_at` is when it was done or cancelled."""

    id: str
    title: str
    notes: str | None
    owner: str | None
    due_at: datetime.datetime | None
    priority: TaskPriority
    status: TaskStatus
    customer_id: str | None
    deal_id: str | None
    rule: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    completed_at: datetime.datetime | None


class TaskFields(TypedDict, total=False):
    """What `create_task` takes (`title` is required)."""

    title: str
    notes: str | None
    owner: str | None
    due_at: datetime.datetime | datetime.date | str | None
    priority: TaskPriority
    customer_id: str | None
    deal_id: str | None


class TaskPatchFields(TypedDict, total=False):
    """What `update_task` takes; None clears a field (not `title` or
    `priority`)."""

    title: str
    notes: str | None
    owner: str | None
    due_at: datetime.datetime | datetime.date | str | None
    priority: TaskPriority
    customer_id: str | None
    deal_id: str | None
