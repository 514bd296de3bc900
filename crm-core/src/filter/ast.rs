//! The syntax tree of a filter expression.
//!
//! [`crate::filter::parse`] builds it from text and its [`std::fmt::Display`]
//! prints it back as canonical text, which parses to the same tree. Trees are
//! serializable, so segments and rules can be stored and shipped as data.
//!
//! Names are kept as written (`stage`, `attr.plan`, `purchases`); whether they
//! exist and what type they have is decided by the checker, against the
//! schema of a particular CRM.

use serde::{Deserialize, Serialize};

/// Where a node came from in the source text: byte offsets `start..end`.
///
/// Spans only serve error messages: they are not serialized and two spans
/// always compare equal, so a tree parsed from text equals the same tree
/// built in code or read back from JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// A boolean filter expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// All of the expressions hold (at least two).
    And(Vec<Expr>),
    /// Any of the expressions holds (at least two).
    Or(Vec<Expr>),
    /// The expression does not hold. A predicate on a missing value (no
    /// purchase yet, an unset attribute) is false, so its negation is true.
    Not(Box<Expr>),
    /// `left op right`, e.g. `country = "SI"`, `count(purchases) >= 3`.
    Compare {
        /// Left-hand side.
        left: Operand,
        /// The comparison.
        op: CompareOp,
        /// Right-hand side.
        right: Operand,
    },
    /// `operand in ("a", "b")` or, with `negated`, `operand not in (...)`.
    InList {
        /// The value tested.
        operand: Operand,
        /// The candidates (at least one).
        values: Vec<Literal>,
        /// `not in`.
        negated: bool,
        /// Where the list starts.
        #[serde(skip)]
        span: Span,
    },
    /// `"vip" in tags` or, with `negated`, `"vip" not in tags`: membership
    /// of a value in a list-valued field.
    Has {
        /// The list-valued field (`tags`, `emails`, `phones`).
        list: Field,
        /// The value looked for.
        value: Literal,
        /// `not in`.
        negated: bool,
        /// Where the value is.
        #[serde(skip)]
        span: Span,
    },
    /// `operand contains "x"`, `starts with`, `ends with`; case-insensitive.
    Text {
        /// The text tested.
        operand: Operand,
        /// Which test.
        op: TextOp,
        /// What is looked for.
        pattern: String,
        /// Where the pattern is.
        #[serde(skip)]
        span: Span,
    },
    /// `operand is null` or, with `negated`, `operand is not null`.
    IsNull {
        /// The value tested.
        operand: Operand,
        /// `is not null`.
        negated: bool,
    },
    /// `operand is empty` (null, empty text or empty list) or, with
    /// `negated`, `operand is not empty`.
    IsEmpty {
        /// The value tested.
        operand: Operand,
        /// `is not empty`.
        negated: bool,
    },
    /// `created_at within 30d`, `birth_date within next 14d`.
    Within {
        /// A date or time.
        operand: Operand,
        /// The window around now.
        window: Window,
    },
    /// `consented("email_marketing")`, `consented("newsletter", "email")`:
    /// the customer's current consent for the purpose (on the channel, or
    /// covering every channel) is granted.
    Consented {
        /// The purpose.
        purpose: String,
        /// The channel, if the question is about one.
        channel: Option<String>,
        /// Where the call is.
        #[serde(skip)]
        span: Span,
    },
    /// `in_segment("churn-risk")`: membership of another segment.
    InSegment {
        /// The segment's name.
        name: String,
        /// Where the call is.
        #[serde(skip)]
        span: Span,
    },
    /// A boolean operand on its own: `attr.newsletter`, `true`.
    Truth(Operand),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    /// `=` (also written `==`).
    Eq,
    /// `!=` (also written `<>`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// A text test; all of them ignore case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextOp {
    /// `contains`.
    Contains,
    /// `starts with`.
    StartsWith,
    /// `ends with`.
    EndsWith,
}

/// A value: a field, a literal, an aggregate, a point in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A field of the customer (`country`), of their organization
    /// (`organization.country`), a custom attribute (`attr.plan`), an
    /// analytics score, or — inside an aggregate's `where` — of the
    /// interaction (`kind`, `amount`).
    Field(Field),
    /// A constant.
    Literal {
        /// Its value.
        #[serde(flatten)]
        value: Literal,
        /// Where it is.
        #[serde(skip)]
        span: Span,
    },
    /// `count(purchases within 90d)`, `sum(purchases.amount)`, …
    Aggregate(Box<Aggregate>),
    /// `last purchase`, `first call`: when the customer's latest (earliest)
    /// interaction of that kind happened; missing when there is none.
    Event {
        /// First or last.
        which: Which,
        /// Which interactions.
        source: Source,
        /// Where it is.
        #[serde(skip)]
        span: Span,
    },
    /// `days_since(x)`: whole days from the date or time `x` to now.
    DaysSince {
        /// The date or time.
        #[serde(flatten)]
        of: Box<Operand>,
        /// Where the call is.
        #[serde(skip)]
        span: Span,
    },
    /// `now`, `now - 30d`: the moment the expression is evaluated, shifted.
    Now(Option<Offset>),
    /// `today`, `today + 14d`: the current UTC date, shifted.
    Today(Option<Offset>),
}

/// A dotted name, e.g. `stage`, `attr.plan`, `organization.country`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The name's parts, e.g. `["attr", "plan"]`.
    pub path: Vec<String>,
    /// Where it is.
    #[serde(skip)]
    pub span: Span,
}

impl Field {
    /// The name as written, e.g. `attr.plan`.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

/// A constant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    /// `"text"`; also how dates are written (`"2024-05-31"`).
    String(String),
    /// `42`, `-1.5`.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// An aggregate over a customer's interactions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// What is computed.
    pub function: AggregateFn,
    /// Which interactions.
    pub source: Source,
    /// What is summed or averaged (`purchases.amount`); `None` for `count`.
    pub measure: Option<Measure>,
    /// Only interactions in this window (`within 90d`).
    pub window: Option<Window>,
    /// Only interactions for which this holds (`where direction = "inbound"`);
    /// its fields are the interaction's.
    pub condition: Option<Box<Expr>>,
    /// Where the call is.
    #[serde(skip)]
    pub span: Span,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFn {
    /// How many; 0 when there are none.
    Count,
    /// Total of the measure; 0 when there are none.
    Sum,
    /// Mean of the measure; missing when there are none.
    Avg,
    /// Smallest value of the measure; missing when there are none.
    Min,
    /// Largest value of the measure; missing when there are none.
    Max,
}

impl AggregateFn {
    /// The name in the language.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateFn::Count => "count",
            AggregateFn::Sum => "sum",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
        }
    }
}

/// Which interactions an aggregate or event looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// All of them: `interactions` (`interaction` after `first` / `last`).
    All,
    /// Those of one built-in kind: `purchases`, `calls`, `survey_responses`…
    /// Written in the plural in aggregates and in the singular after
    /// `first` / `last`; either form is accepted in both places. The string
    /// is the stored kind name (`purchase`, `web_visit`). Custom kinds are
    /// reached with `interactions where kind = "webinar"`.
    Kind(String),
}

/// The numeric field of an interaction an aggregate works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The amount in major units of its currency (`12.99`); see the
    /// module documentation on currencies.
    Amount,
    /// The quantity.
    Quantity,
    /// The satisfaction score.
    Score,
}

impl Measure {
    /// The name in the language.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Amount => "amount",
            Measure::Quantity => "quantity",
            Measure::Score => "score",
        }
    }
}

/// `first` or `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The earliest.
    First,
    /// The latest.
    Last,
}

/// A window of time ending (or starting) now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Past (`within 30d`, also written `within last 30d`) or future
    /// (`within next 14d`).
    pub direction: Direction,
    /// How long.
    pub length: Duration,
}

/// Past or future.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Ending now.
    Past,
    /// Starting now.
    Future,
}

/// A length of time: `12h`, `30d`, `2w`. Months and years are not offered:
/// their length varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duration {
    /// How many units; at least 1, at most [`Duration::MAX_AMOUNT`].
    pub amount: u32,
    /// Which unit.
    pub unit: DurationUnit,
}

impl Duration {
    /// The largest amount accepted: about 270 years in weeks.
    pub const MAX_AMOUNT: u32 = 100_000;

    /// The length in microseconds.
    pub fn micros(self) -> i64 {
        let unit: i64 = match self.unit {
            DurationUnit::Hours => 3_600_000_000,
            DurationUnit::Days => 86_400_000_000,
            DurationUnit::Weeks => 604_800_000_000,
        };
        i64::from(self.amount.min(Self::MAX_AMOUNT)) * unit
    }
}

/// The unit of a [`Duration`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationUnit {
    /// `h`.
    Hours,
    /// `d`.
    Days,
    /// `w`.
    Weeks,
}

/// `+ 14d` or `- 30d` after `now` or `today`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// `-` rather than `+`.
    pub negative: bool,
    /// How much.
    pub length: Duration,
}
