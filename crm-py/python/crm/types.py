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
    "Direction",
    "ImportMode",
    "Filter",
    "FilterTree",
    "GammaGammaFit",
    "ImportProgress",
    "ImportReport",
    "Interaction",
    "InteractionFields",
    "InteractionPage",
    "LegalBasis",
    "MaterializeReport",
    "Page",
    "Period",
    "RfmSegment",
    "RowError",
    "Satisfaction",
    "ScoreOptions",
    "ScoreRun",
    "SearchHit",
    "Segment",
    "SegmentKind",
    "Sort",
    "TimeUnit",
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
