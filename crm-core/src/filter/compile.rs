//! Checks an expression against a CRM's schema and compiles it to one SQL
//! boolean expression over `customers c`, with every value bound as a
//! parameter.
//!
//! Two shapes of the same expression are produced:
//!
//! - [`Mode::Set`] answers "which customers": a predicate on an aggregate
//!   becomes `c.rowid IN (SELECT customer_rowid … GROUP BY customer_rowid
//!   HAVING …)`, computed once for the whole population, from the index
//!   `interactions_kind_time` for windowed aggregates or from the per-customer
//!   totals `interaction_stats` otherwise;
//! - [`Mode::Row`] answers "does this customer match": aggregates become
//!   correlated subqueries that read only that customer's rows.
//!
//! Logic is two-valued: a predicate on a missing value is false (SQL NULL in
//! a `WHERE` drops the row) and `not` is `IS NOT 1`, which turns NULL into
//! true.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rusqlite::Connection;
use rusqlite::types::Value;

use super::ast::*;
use super::error_at;
use crate::error::{Error, Result};
use crate::import::nearest;
use crate::model::customer::AttributeType;
use crate::model::normalize;

/// Which question the SQL answers; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Set,
    Row,
}

/// A boolean SQL expression over `customers c` and its parameters (`?1`…).
#[derive(Debug)]
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Value>,
    /// The segments the expression names, directly (for dependencies).
    pub segments: Vec<i64>,
    /// What the whole expression amounts to, when counting can skip the
    /// customers table.
    pub shape: Shape,
}

/// The form of a whole compiled expression.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Anything else.
    Other,
    /// `c.rowid IN (subquery)`, where the subquery yields each customer's
    /// rowid at most once (and only existing customers, by foreign key):
    /// a count is the subquery's row count.
    Member(String),
    /// The negation of [`Shape::Member`]: a count is the number of
    /// customers minus the subquery's row count.
    NotMember(String),
}

/// Compiles `expr`, parsed from `text` (empty when built in code: errors then
/// carry no position). `segment` names the segment whose definition this is,
/// so that it can't refer back to itself.
pub(crate) fn compile(
    conn: &Connection,
    text: &str,
    expr: &Expr,
    mode: Mode,
    now: DateTime<Utc>,
    segment: Option<&str>,
) -> Result<Compiled> {
    let mut c = Compiler {
        conn,
        text: text.to_string(),
        now: now.timestamp_micros(),
        today: now.date_naive(),
        mode,
        params: Vec::new(),
        scope: Scope::Customer,
        group: None,
        attributes: None,
        factors: None,
        segment_stack: segment.map(str::to_string).into_iter().collect(),
        direct_depth: usize::from(segment.is_some()),
        direct_segments: Vec::new(),
        sets: Vec::new(),
        depth: 0,
    };
    let sql = c.predicate(expr)?;
    let shape = c
        .sets
        .iter()
        .find_map(|(full, subquery, negated)| {
            let negated = if sql == *full {
                *negated
            } else if sql == format!("(({full}) IS NOT 1)") {
                !*negated
            } else {
                return None;
            };
            Some(if negated {
                Shape::NotMember(subquery.clone())
            } else {
                Shape::Member(subquery.clone())
            })
        })
        .unwrap_or(Shape::Other);
    Ok(Compiled {
        sql,
        params: c.params,
        segments: c.direct_segments,
        shape,
    })
}

/// Whose fields a predicate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The customer, `c`.
    Customer,
    /// The customer's organization, `o`.
    Organization,
    /// An interaction inside an aggregate's `where`, `i`.
    Interaction,
}

impl Scope {
    fn alias(self) -> &'static str {
        match self {
            Scope::Customer => "c",
            Scope::Organization => "o",
            Scope::Interaction => "i",
        }
    }
}

/// How the single aggregate of a predicate compiles in set mode.
#[derive(Clone, Debug)]
enum Group {
    /// As the aggregate over the group of one customer's rows.
    Over(String),
    /// As its value for a customer with no rows (0 or NULL).
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Norm {
    Country,
    Locale,
    Email,
    CustomerKind,
    InteractionKind,
    Direction,
    Currency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Tags,
    Emails,
    Phones,
}

/// The type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// Human text, compared ignoring case.
    Text,
    /// A code stored normalized; literals are normalized the same way.
    Code(Norm),
    Number,
    /// An amount in major units, computed as an integer of 1/10 000ths.
    Money,
    Bool,
    /// `YYYY-MM-DD` text.
    Date,
    /// Integer microseconds since the epoch.
    Time,
    Stage,
    List(ListKind),
}

impl Ty {
    fn describe(self) -> &'static str {
        match self {
            Ty::Text | Ty::Code(_) => "text",
            Ty::Number => "a number",
            Ty::Money => "an amount",
            Ty::Bool => "a boolean",
            Ty::Date => "a date",
            Ty::Time => "a time",
            Ty::Stage => "a lifecycle stage",
            Ty::List(_) => "a list",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Ty::Text | Ty::Code(_))
    }
}

/// A constant not yet bound: its type is decided by what it meets.
#[derive(Clone, Debug)]
enum Const {
    Str(String),
    Num(f64),
    Bool(bool),
    Time(i64),
    Date(NaiveDate),
}

impl Const {
    fn describe(&self) -> &'static str {
        match self {
            Const::Str(_) => "text",
            Const::Num(_) => "a number",
            Const::Bool(_) => "a boolean",
            Const::Time(_) => "a time",
            Const::Date(_) => "a date",
        }
    }

    fn natural(&self) -> Ty {
        match self {
            Const::Str(_) => Ty::Text,
            Const::Num(_) => Ty::Number,
            Const::Bool(_) => Ty::Bool,
            Const::Time(_) => Ty::Time,
            Const::Date(_) => Ty::Date,
        }
    }
}

/// A compiled operand.
#[derive(Clone, Debug)]
enum Val {
    /// SQL of a known type.
    Sql(String, Ty),
    /// A constant, bound once its type is known.
    Const(Const, Span),
    /// A customer's emails: any of them may match (`email = "…"`).
    AnyEmail,
}

const DAY_MICROS: i64 = 86_400_000_000;

/// Customer fields: name in the language, column, type.
const CUSTOMER_FIELDS: &[(&str, &str, Ty)] = &[
    ("name", "name", Ty::Text),
    ("first_name", "first_name", Ty::Text),
    ("last_name", "last_name", Ty::Text),
    ("external_id", "external_id", Ty::Text),
    ("kind", "kind", Ty::Code(Norm::CustomerKind)),
    ("email", "", Ty::Code(Norm::Email)),
    ("emails", "emails", Ty::List(ListKind::Emails)),
    ("phones", "phones", Ty::List(ListKind::Phones)),
    ("tags", "tags", Ty::List(ListKind::Tags)),
    ("birth_date", "birth_date", Ty::Date),
    ("locale", "locale", Ty::Code(Norm::Locale)),
    ("country", "country", Ty::Code(Norm::Country)),
    ("stage", "lifecycle_stage", Ty::Stage),
    ("lifecycle_stage", "lifecycle_stage", Ty::Stage),
    ("owner", "owner", Ty::Text),
    ("source", "source", Ty::Text),
    ("created_at", "created_at", Ty::Time),
    ("updated_at", "updated_at", Ty::Time),
];

/// Stored analytics scores (`Crm::compute_scores`): name, column, type.
const SCORE_FIELDS: &[(&str, &str, Ty)] = &[
    ("p_alive", "p_alive", Ty::Number),
    ("expected_purchases", "expected_purchases", Ty::Number),
    ("expected_value", "expected_value", Ty::Number),
    ("clv", "clv", Ty::Number),
    ("rfm.r", "rfm_r", Ty::Number),
    ("rfm.f", "rfm_f", Ty::Number),
    ("rfm.m", "rfm_m", Ty::Number),
    ("rfm.segment", "rfm_segment", Ty::Text),
];

/// Interaction fields usable in an aggregate's `where`.
const INTERACTION_FIELDS: &[(&str, &str, Ty)] = &[
    ("kind", "kind", Ty::Code(Norm::InteractionKind)),
    ("channel", "channel", Ty::Text),
    ("direction", "direction", Ty::Code(Norm::Direction)),
    ("occurred_at", "occurred_at", Ty::Time),
    ("subject", "subject", Ty::Text),
    ("product", "product", Ty::Text),
    ("currency", "currency", Ty::Code(Norm::Currency)),
    ("amount", "", Ty::Money),
    ("quantity", "quantity", Ty::Number),
    ("score", "score", Ty::Number),
];

struct Compiler<'a> {
    conn: &'a Connection,
    /// The source text errors point into ("" for trees built in code).
    text: String,
    now: i64,
    today: NaiveDate,
    mode: Mode,
    params: Vec<Value>,
    scope: Scope,
    group: Option<Group>,
    attributes: Option<HashMap<String, AttributeType>>,
    /// The scale of each currency in use whose minor unit is not 1/100.
    factors: Option<Vec<(String, i64)>>,
    /// Segments being compiled, outermost first (cycle detection).
    segment_stack: Vec<String>,
    /// The stack depth at which a named segment is named directly.
    direct_depth: usize,
    direct_segments: Vec<i64>,
    /// Set-mode memberships produced, as (SQL, its subquery, whether the
    /// SQL is the subquery's negation): candidates for [`Shape`].
    sets: Vec<(String, String, bool)>,
    depth: usize,
}

impl Compiler<'_> {
    fn err(&self, span: Span, message: impl Into<String>) -> Error {
        error_at(&self.text, span, message, None)
    }

    fn err_hint(&self, span: Span, message: impl Into<String>, hint: Option<&str>) -> Error {
        error_at(&self.text, span, message, hint)
    }

    fn param(&mut self, v: impl Into<Value>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    fn alias(&self) -> &'static str {
        self.scope.alias()
    }

    // ----- predicates -----------------------------------------------------

    fn predicate(&mut self, e: &Expr) -> Result<String> {
        self.depth += 1;
        if self.depth > super::MAX_DEPTH * 4 {
            return Err(self.err(Span::default(), "expression is nested too deeply"));
        }
        let out = self.predicate_inner(e);
        self.depth -= 1;
        out
    }

    fn predicate_inner(&mut self, e: &Expr) -> Result<String> {
        match e {
            Expr::And(parts) | Expr::Or(parts) => {
                if parts.is_empty() {
                    return Err(self.err(Span::default(), "'and' / 'or' needs operands"));
                }
                let glue = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let sql = parts
                    .iter()
                    .map(|p| self.predicate(p))
                    .collect::<Result<Vec<_>>>()?;
                Ok(balanced(&sql, glue))
            }
            Expr::Not(inner) => Ok(format!("(({}) IS NOT 1)", self.predicate(inner)?)),
            leaf => self.leaf(leaf),
        }
    }

    /// A predicate without `and` / `or` / `not`: routed to the organization
    /// or through a grouped subquery where that is what makes it fast.
    fn leaf(&mut self, e: &Expr) -> Result<String> {
        if self.scope == Scope::Customer {
            let mut fields = Vec::new();
            collect_fields(e, &mut fields);
            let on_org = fields.iter().filter(|f| is_org_field(f)).count();
            if on_org > 0 {
                if on_org < fields.len() || has_aggregate(e) {
                    let f = fields
                        .iter()
                        .find(|f| !is_org_field(f))
                        .unwrap_or(&fields[0]);
                    return Err(self.err(
                        f.span,
                        "a comparison can't mix fields of the organization with fields of the customer",
                    ));
                }
                return self.on_organization(e);
            }
            if self.mode == Mode::Set && self.group.is_none() && fields.is_empty() {
                if let Some(agg) = single_aggregate(e) {
                    return self.grouped(e, &agg);
                }
            }
        }
        self.plain_leaf(e)
    }

    fn on_organization(&mut self, e: &Expr) -> Result<String> {
        let stripped = strip_org(e);
        self.scope = Scope::Organization;
        let inner = self.plain_leaf(&stripped);
        self.scope = Scope::Customer;
        let inner = inner?;
        Ok(match self.mode {
            Mode::Set => {
                format!("c.organization_rowid IN (SELECT o.rowid FROM customers o WHERE {inner})")
            }
            Mode::Row => format!(
                "EXISTS (SELECT 1 FROM customers o WHERE o.rowid = c.organization_rowid AND {inner})"
            ),
        })
    }

    /// Set mode, a predicate whose only varying value is one aggregate or
    /// event: the customers for whom it holds are found by one grouped scan.
    fn grouped(&mut self, e: &Expr, agg: &AggRef) -> Result<String> {
        let source = self.agg_source(agg)?;
        self.group = Some(Group::Over(source.group_expr.clone()));
        let having = self.plain_leaf(e);
        self.group = Some(Group::Empty);
        let saved = std::mem::take(&mut self.params);
        let empty = self.plain_leaf(e);
        let empty_params = std::mem::replace(&mut self.params, saved);
        self.group = None;
        let (having, empty) = (having?, empty?);
        let empty_holds: i64 = self
            .conn
            .prepare(&format!("SELECT coalesce(({empty}), 0)"))?
            .query_row(rusqlite::params_from_iter(empty_params), |r| r.get(0))?;
        let from = &source.from_where;
        let negated = empty_holds == 1;
        // Customers without rows match: exclude those whose rows fail.
        let subquery = if negated {
            format!(
                "SELECT customer_rowid FROM {from} GROUP BY customer_rowid HAVING ({having}) IS NOT 1"
            )
        } else {
            format!("SELECT customer_rowid FROM {from} GROUP BY customer_rowid HAVING {having}")
        };
        let sql = format!(
            "c.rowid {}IN ({subquery})",
            if negated { "NOT " } else { "" }
        );
        self.sets.push((sql.clone(), subquery, negated));
        Ok(sql)
    }

    fn plain_leaf(&mut self, e: &Expr) -> Result<String> {
        match e {
            Expr::And(_) | Expr::Or(_) | Expr::Not(_) => self.predicate(e),
            Expr::Compare { left, op, right } => {
                let l = self.operand(left)?;
                let r = self.operand(right)?;
                self.compare(l, *op, r, operand_span(left))
            }
            Expr::InList {
                operand,
                values,
                negated,
                span,
            } => self.in_list(operand, values, *negated, *span),
            Expr::Has {
                list,
                value,
                negated,
                span,
            } => self.has(list, value, *negated, *span),
            Expr::Text {
                operand,
                op,
                pattern,
                ..
            } => {
                let v = self.operand(operand)?;
                self.text_test(v, *op, pattern, operand_span(operand))
            }
            Expr::IsNull { operand, negated } => {
                let span = operand_span(operand);
                match self.operand(operand)? {
                    Val::AnyEmail => {
                        let any = self.member("customer_emails", "1")?;
                        Ok(if *negated { any } else { format!("NOT {any}") })
                    }
                    Val::Const(..) => Err(self.err(span, "expected a field before 'is null'")),
                    Val::Sql(_, Ty::List(_)) => Err(self.err(
                        span,
                        "a list is never null; use 'is empty' or 'is not empty'",
                    )),
                    Val::Sql(sql, _) => Ok(format!(
                        "({sql} IS {}NULL)",
                        if *negated { "NOT " } else { "" }
                    )),
                }
            }
            Expr::IsEmpty { operand, negated } => {
                let span = operand_span(operand);
                let sql = match self.operand(operand)? {
                    Val::AnyEmail => format!("NOT {}", self.member("customer_emails", "1")?),
                    Val::Sql(sql, Ty::List(_)) => format!("({sql} = '[]')"),
                    Val::Sql(sql, ty) if ty.is_text() => format!("({sql} IS NULL OR {sql} = '')"),
                    Val::Sql(_, ty) => {
                        return Err(self.err(
                            span,
                            format!(
                                "'is empty' applies to text and lists, not to {}; use 'is null'",
                                ty.describe()
                            ),
                        ));
                    }
                    Val::Const(..) => {
                        return Err(self.err(span, "expected a field before 'is empty'"));
                    }
                };
                Ok(if *negated {
                    format!("(({sql}) IS NOT 1)")
                } else {
                    sql
                })
            }
            Expr::Within { operand, window } => self.within(operand, *window),
            Expr::Consented {
                purpose,
                channel,
                span,
            } => self.consented(purpose, channel.as_deref(), *span),
            Expr::InSegment { name, span } => self.in_segment(name, *span),
            Expr::Truth(operand) => {
                let span = operand_span(operand);
                match self.operand(operand)? {
                    Val::Sql(sql, Ty::Bool) => Ok(format!("({sql} = 1)")),
                    Val::Const(Const::Bool(b), _) => Ok(if b { "1".into() } else { "0".into() }),
                    other => Err(self.err(
                        span,
                        format!(
                            "expected a condition, found {} on its own",
                            describe_val(&other)
                        ),
                    )),
                }
            }
        }
    }

    /// `subject IN (SELECT customer_rowid FROM table WHERE cond)` in set mode,
    /// an `EXISTS` on the subject's rows in row mode.
    fn member(&mut self, table: &str, cond: &str) -> Result<String> {
        let subject = format!("{}.rowid", self.alias());
        Ok(match self.mode {
            Mode::Set => {
                let subquery = format!("SELECT customer_rowid FROM {table} WHERE {cond}");
                let sql = format!("{subject} IN ({subquery})");
                // Every table but the emails has one row per customer and
                // condition (its primary key says so).
                if self.scope == Scope::Customer && table != "customer_emails" {
                    self.sets.push((sql.clone(), subquery, false));
                }
                sql
            }
            Mode::Row => format!(
                "EXISTS (SELECT 1 FROM {table} WHERE customer_rowid = {subject} AND {cond})"
            ),
        })
    }

    fn compare(&mut self, l: Val, op: CompareOp, r: Val, span: Span) -> Result<String> {
        let (sql_op, ordering) = match op {
            CompareOp::Eq => ("=", false),
            CompareOp::Ne => ("!=", false),
            CompareOp::Lt => ("<", true),
            CompareOp::Le => ("<=", true),
            CompareOp::Gt => (">", true),
            CompareOp::Ge => (">=", true),
        };
        // Put the typed side first so that the constant takes its type.
        let (l, r, op, sql_op) = match (&l, &r) {
            (Val::Const(..), Val::Sql(..) | Val::AnyEmail) => (r, l, flip(op), flip_sql(sql_op)),
            _ => (l, r, op, sql_op),
        };
        match (l, r) {
            (Val::AnyEmail, Val::Const(k, kspan)) => {
                if ordering {
                    return Err(self.err(kspan, "emails are compared with = or !="));
                }
                let v = self.bind(&k, Ty::Code(Norm::Email), kspan)?;
                let any = self.member("customer_emails", &format!("email = {v}"))?;
                Ok(if op == CompareOp::Eq {
                    any
                } else {
                    // Like any other field, a customer without an email does
                    // not satisfy `email != "x"`.
                    let some = self.member("customer_emails", "1")?;
                    format!("({some} AND NOT {any})")
                })
            }
            (Val::AnyEmail, _) | (_, Val::AnyEmail) => {
                Err(self.err(span, "email can only be compared with a text value"))
            }
            (Val::Sql(sql, ty), Val::Const(k, kspan)) => {
                self.check_ordering(ty, ordering, span)?;
                match ty {
                    Ty::Stage if ordering => self.stage_order(&sql, op, &k, kspan),
                    Ty::Text => {
                        let Const::Str(s) = &k else {
                            return Err(self.mismatch(ty, &k, kspan));
                        };
                        Ok(self.text_equal(&sql, sql_op, s))
                    }
                    _ => {
                        let v = self.bind(&k, ty, kspan)?;
                        Ok(format!("({sql} {sql_op} {v})"))
                    }
                }
            }
            (Val::Sql(a, ta), Val::Sql(b, tb)) => {
                self.check_ordering(ta, ordering, span)?;
                let (a, b) = self.unify(a, ta, b, tb, span)?;
                Ok(format!("({a} {sql_op} {b})"))
            }
            (Val::Const(a, aspan), Val::Const(b, bspan)) => {
                let ty = a.natural();
                self.check_ordering(ty, ordering, span)?;
                let a = self.bind(&a, ty, aspan)?;
                let b = self.bind(&b, ty, bspan)?;
                Ok(format!("({a} {sql_op} {b})"))
            }
            (Val::Const(..), _) => unreachable!("constants were moved to the right"),
        }
    }

    fn check_ordering(&self, ty: Ty, ordering: bool, span: Span) -> Result<()> {
        if !ordering {
            if let Ty::List(_) = ty {
                return Err(self.err(
                    span,
                    "a list can't be compared; test membership with \"value\" in list",
                ));
            }
            return Ok(());
        }
        match ty {
            Ty::Number | Ty::Money | Ty::Date | Ty::Time | Ty::Stage => Ok(()),
            Ty::Text | Ty::Code(_) => Err(self.err(
                span,
                "text is compared with = or !=, 'in', 'contains', 'starts with' or 'ends with', not with < or >",
            )),
            other => Err(self.err(
                span,
                format!("{} can't be compared with < or >", other.describe()),
            )),
        }
    }

    /// Two typed values made comparable: amounts against numbers, dates
    /// against times.
    fn unify(&self, a: String, ta: Ty, b: String, tb: Ty, span: Span) -> Result<(String, String)> {
        Ok(match (ta, tb) {
            _ if ta == tb => (a, b),
            (Ty::Code(_) | Ty::Text, Ty::Code(_) | Ty::Text) => (a, b),
            (Ty::Money, Ty::Number) => (a, format!("({b} * 10000)")),
            (Ty::Number, Ty::Money) => (format!("({a} * 10000)"), b),
            (Ty::Date, Ty::Time) => (date_to_micros_sql(&a), b),
            (Ty::Time, Ty::Date) => (a, date_to_micros_sql(&b)),
            _ => {
                return Err(self.err(
                    span,
                    format!("can't compare {} with {}", ta.describe(), tb.describe()),
                ));
            }
        })
    }

    fn mismatch(&self, ty: Ty, k: &Const, span: Span) -> Error {
        self.err(
            span,
            format!("expected {}, found {}", ty.describe(), k.describe()),
        )
    }

    /// Binds a constant as a parameter of type `ty`, normalizing it as stored
    /// values of that type are.
    fn bind(&mut self, k: &Const, ty: Ty, span: Span) -> Result<String> {
        let value: Value = match (ty, k) {
            (Ty::Text, Const::Str(s)) => Value::Text(s.clone()),
            (Ty::Code(norm), Const::Str(s)) => Value::Text(self.normalize(norm, s, span)?),
            (Ty::Stage, Const::Str(s)) => Value::Text(self.stage_name(s, span)?),
            (Ty::Number, Const::Num(n)) => number_value(*n),
            (Ty::Money, Const::Num(n)) => {
                let scaled = (n * 10_000.0).round();
                if !scaled.is_finite() || scaled.abs() > 9.0e18 {
                    return Err(self.err(span, "amount out of range"));
                }
                Value::Integer(scaled as i64)
            }
            (Ty::Bool, Const::Bool(b)) => Value::Integer(i64::from(*b)),
            (Ty::Date, Const::Str(s)) => Value::Text(self.date(s, span)?.to_string()),
            (Ty::Date, Const::Date(d)) => Value::Text(d.to_string()),
            (Ty::Date, Const::Time(t)) => Value::Text(
                DateTime::from_timestamp_micros(*t)
                    .map(|d| d.date_naive().to_string())
                    .ok_or_else(|| self.err(span, "time out of range"))?,
            ),
            (Ty::Time, Const::Time(t)) => Value::Integer(*t),
            (Ty::Time, Const::Date(d)) => Value::Integer(midnight(*d)),
            (Ty::Time, Const::Str(s)) => Value::Integer(self.time(s, span)?),
            _ => return Err(self.mismatch(ty, k, span)),
        };
        Ok(self.param(value))
    }

    fn normalize(&self, norm: Norm, s: &str, span: Span) -> Result<String> {
        let result: std::result::Result<String, String> = match norm {
            Norm::Country => normalize::country(s).map_err(str::to_string),
            Norm::Locale => normalize::locale(s).map_err(str::to_string),
            Norm::Email => normalize::email(s).map_err(str::to_string),
            Norm::Currency => normalize::currency(s).map_err(str::to_string),
            Norm::CustomerKind => crate::model::customer::CustomerKind::parse(s)
                .map(|k| k.as_str().to_string())
                .map_err(|_| "is not a customer kind (person or organization)".to_string()),
            Norm::InteractionKind => crate::model::interaction::InteractionKind::parse(s)
                .map(|k| k.as_str().to_string())
                .map_err(|_| "is not an interaction kind".to_string()),
            Norm::Direction => crate::model::interaction::Direction::parse(s)
                .map(|d| d.as_str().to_string())
                .map_err(|_| "is not a direction (inbound or outbound)".to_string()),
        };
        let what = match norm {
            Norm::Country => "country",
            Norm::Locale => "locale",
            Norm::Email => "email",
            Norm::Currency => "currency",
            Norm::CustomerKind => "customer kind",
            Norm::InteractionKind => "interaction kind",
            Norm::Direction => "direction",
        };
        result.map_err(|reason| self.err(span, format!("invalid {what}: {reason}")))
    }

    fn stage_name(&self, s: &str, span: Span) -> Result<String> {
        let stage = s.trim().to_ascii_lowercase();
        normalize::attribute_key(&stage).map_err(|_| {
            self.err(
                span,
                "a lifecycle stage is a lower-case identifier such as mql",
            )
        })
    }

    fn date(&self, s: &str, span: Span) -> Result<NaiveDate> {
        normalize::date(s).map_err(|_| self.err(span, "expected a date written YYYY-MM-DD"))
    }

    fn time(&self, s: &str, span: Span) -> Result<i64> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
            return Ok(t.with_timezone(&Utc).timestamp_micros());
        }
        normalize::date(s).map(midnight).map_err(|_| {
            self.err(
                span,
                "expected a time: a date (YYYY-MM-DD) or an RFC 3339 timestamp",
            )
        })
    }

    /// `stage >= "mql"`: the stages that satisfy it, listed.
    fn stage_order(&mut self, sql: &str, op: CompareOp, k: &Const, span: Span) -> Result<String> {
        let Const::Str(s) = k else {
            return Err(self.mismatch(Ty::Stage, k, span));
        };
        let name = self.stage_name(s, span)?;
        // The order is the configured one, read when the expression is
        // compiled (every evaluation compiles).
        let config = crate::db::lifecycle::config(self.conn)?;
        let order: Vec<&str> = config.stages.iter().map(|st| st.name.as_str()).collect();
        let Some(at) = order.iter().position(|st| *st == name) else {
            return Err(self.err_hint(
                span,
                format!(
                    "'{name}' has no place in the order of lifecycle stages ({})",
                    order.join(", ")
                ),
                nearest(&name, &order),
            ));
        };
        let chosen: Vec<&str> = order
            .iter()
            .enumerate()
            .filter(|(i, _)| match op {
                CompareOp::Lt => *i < at,
                CompareOp::Le => *i <= at,
                CompareOp::Gt => *i > at,
                CompareOp::Ge => *i >= at,
                CompareOp::Eq | CompareOp::Ne => unreachable!("not an ordering"),
            })
            .map(|(_, st)| *st)
            .collect();
        if chosen.is_empty() {
            return Ok("0".into());
        }
        let list = chosen
            .into_iter()
            .map(|st| self.param(st.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(format!("({sql} IN ({list}))"))
    }

    /// Case-insensitive text equality: SQLite's `NOCASE` for ASCII values,
    /// Unicode case folding otherwise.
    fn text_equal(&mut self, sql: &str, sql_op: &str, s: &str) -> String {
        if s.is_ascii() {
            let v = self.param(s.to_string());
            format!("({sql} {sql_op} {v} COLLATE NOCASE)")
        } else {
            let v = self.param(fold(s));
            format!("(crm_fold({sql}) {sql_op} {v})")
        }
    }

    fn in_list(
        &mut self,
        operand: &Operand,
        values: &[Literal],
        negated: bool,
        span: Span,
    ) -> Result<String> {
        if values.is_empty() {
            return Err(self.err(span, "an 'in' list needs at least one value"));
        }
        let not = if negated { "NOT " } else { "" };
        let v = self.operand(operand)?;
        let consts: Vec<(Const, Span)> = values.iter().map(|l| (literal(l), span)).collect();
        match v {
            Val::AnyEmail => {
                let list = consts
                    .iter()
                    .map(|(k, s)| self.bind(k, Ty::Code(Norm::Email), *s))
                    .collect::<Result<Vec<_>>>()?
                    .join(", ");
                let any = self.member("customer_emails", &format!("email IN ({list})"))?;
                Ok(format!("{not}{any}"))
            }
            Val::Sql(sql, Ty::Text) => {
                let mut strings = Vec::new();
                for (k, s) in &consts {
                    match k {
                        Const::Str(v) => strings.push(v.clone()),
                        other => return Err(self.mismatch(Ty::Text, other, *s)),
                    }
                }
                if strings.iter().all(|s| s.is_ascii()) {
                    let list = strings
                        .into_iter()
                        .map(|s| self.param(s))
                        .collect::<Vec<_>>()
                        .join(", ");
                    Ok(format!("({sql} COLLATE NOCASE {not}IN ({list}))"))
                } else {
                    let list = strings
                        .iter()
                        .map(|s| self.param(fold(s)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    Ok(format!("(crm_fold({sql}) {not}IN ({list}))"))
                }
            }
            Val::Sql(_, Ty::List(_)) => Err(self.err(
                operand_span(operand),
                "a list can't be 'in' a list; test one value: \"value\" in list",
            )),
            Val::Sql(sql, ty) => {
                let list = consts
                    .iter()
                    .map(|(k, s)| self.bind(k, ty, *s))
                    .collect::<Result<Vec<_>>>()?
                    .join(", ");
                Ok(format!("({sql} {not}IN ({list}))"))
            }
            Val::Const(k, kspan) => {
                let ty = k.natural();
                let left = self.bind(&k, ty, kspan)?;
                let list = consts
                    .iter()
                    .map(|(k, s)| self.bind(k, ty, *s))
                    .collect::<Result<Vec<_>>>()?
                    .join(", ");
                Ok(format!("({left} {not}IN ({list}))"))
            }
        }
    }

    fn has(&mut self, list: &Field, value: &Literal, negated: bool, span: Span) -> Result<String> {
        let v = self.field(list)?;
        let Val::Sql(sql, Ty::List(kind)) = v else {
            return Err(self.err(
                list.span,
                format!(
                    "'{}' is not a list; use {} in (\"a\", \"b\") to test a value",
                    list.name(),
                    list.name()
                ),
            ));
        };
        let Literal::String(s) = value else {
            return Err(self.err(span, "expected text before 'in'"));
        };
        let found = match kind {
            ListKind::Tags => {
                let tag = normalize::tag(s)
                    .map_err(|r| self.err(span, format!("not a valid tag: {r}")))?;
                let p = self.param(tag);
                self.member("customer_tags", &format!("tag = {p}"))?
            }
            ListKind::Emails => {
                let email = self.normalize(Norm::Email, s, span)?;
                let p = self.param(email);
                self.member("customer_emails", &format!("email = {p}"))?
            }
            ListKind::Phones => {
                let phone = normalize::phone(s, None)
                    .map_err(|r| self.err(span, format!("not a valid phone number: {r}")))?;
                let p = self.param(phone);
                format!("EXISTS (SELECT 1 FROM json_each({sql}) WHERE value = {p})")
            }
        };
        Ok(if negated {
            format!("(NOT {found})")
        } else {
            found
        })
    }

    fn text_test(
        &mut self,
        v: Val,
        op: TextOp,
        pattern: &str,
        operand_span: Span,
    ) -> Result<String> {
        let (sql, is_email) = match v {
            Val::AnyEmail => ("email".to_string(), true),
            Val::Sql(sql, ty) if ty.is_text() => (sql, false),
            other => {
                return Err(self.err(
                    operand_span,
                    format!(
                        "'contains', 'starts with' and 'ends with' apply to text, not to {}",
                        describe_val(&other)
                    ),
                ));
            }
        };
        let test = if pattern.is_ascii() {
            let escaped: String = pattern
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let like = match op {
                TextOp::Contains => format!("%{escaped}%"),
                TextOp::StartsWith => format!("{escaped}%"),
                TextOp::EndsWith => format!("%{escaped}"),
            };
            let p = self.param(like);
            format!("({sql} LIKE {p} ESCAPE '\\')")
        } else {
            let which = self.param(
                match op {
                    TextOp::Contains => "contains",
                    TextOp::StartsWith => "starts",
                    TextOp::EndsWith => "ends",
                }
                .to_string(),
            );
            let p = self.param(fold(pattern));
            format!("crm_text_match({sql}, {which}, {p})")
        };
        if is_email {
            self.member("customer_emails", &test)
        } else {
            Ok(test)
        }
    }

    fn within(&mut self, operand: &Operand, window: Window) -> Result<String> {
        let span = operand_span(operand);
        let is_birth_date = matches!(operand, Operand::Field(f) if f.path == ["birth_date"]);
        let v = self.operand(operand)?;
        let len = window.length.micros();
        let (lo, hi) = match window.direction {
            Direction::Past => (self.now.saturating_sub(len), self.now),
            Direction::Future => (self.now, self.now.saturating_add(len)),
        };
        match v {
            Val::Sql(sql, Ty::Time) => {
                let (lo, hi) = (self.param(lo), self.param(hi));
                Ok(format!("({sql} BETWEEN {lo} AND {hi})"))
            }
            Val::Sql(sql, Ty::Date) if is_birth_date => {
                // Days from today to the birthday of this year or the next
                // (for the past: from the last birthday to today).
                let days = len / DAY_MICROS;
                let today = self.param(self.today.to_string());
                let n = self.param(days);
                let this_year = format!("(strftime('%Y', {today}) || substr({sql}, 5))");
                Ok(match window.direction {
                    Direction::Future => format!(
                        "((julianday(CASE WHEN {this_year} >= {today} THEN {this_year} \
                         ELSE (strftime('%Y', {today}) + 1) || substr({sql}, 5) END) - julianday({today})) \
                         BETWEEN 0 AND {n})"
                    ),
                    Direction::Past => format!(
                        "((julianday({today}) - julianday(CASE WHEN {this_year} <= {today} THEN {this_year} \
                         ELSE (strftime('%Y', {today}) - 1) || substr({sql}, 5) END)) \
                         BETWEEN 0 AND {n})"
                    ),
                })
            }
            Val::Sql(sql, Ty::Date) => {
                let to_date = |t: i64| {
                    DateTime::from_timestamp_micros(t)
                        .map(|d| d.date_naive().to_string())
                        .unwrap_or_default()
                };
                let (lo, hi) = (self.param(to_date(lo)), self.param(to_date(hi)));
                Ok(format!("({sql} BETWEEN {lo} AND {hi})"))
            }
            other => Err(self.err(
                span,
                format!(
                    "'within' applies to dates and times, not to {}",
                    describe_val(&other)
                ),
            )),
        }
    }

    fn consented(&mut self, purpose: &str, channel: Option<&str>, span: Span) -> Result<String> {
        if self.scope == Scope::Interaction {
            return Err(self.err(span, "consented() is not available inside an aggregate"));
        }
        let ident = |s: &str| {
            crate::model::consent::identifier("purpose", s).map_err(|_| {
                self.err(
                    span,
                    "a consent purpose or channel is a lower-case identifier such as email_marketing",
                )
            })
        };
        let purpose = ident(purpose)?;
        let channel = channel.map(ident).transpose()?;
        let p = self.param(purpose);
        let subject = format!("{}.rowid", self.alias());
        let Some(channel) = channel else {
            return self.member(
                "consent_current",
                &format!("purpose = {p} AND channel = '' AND status = 'granted'"),
            );
        };
        let ch = self.param(channel);
        // The latest answer among the channel's own and the every-channel one.
        let latest = format!(
            "NOT EXISTS (SELECT 1 FROM consent_current l WHERE l.customer_rowid = k.customer_rowid \
             AND l.purpose = k.purpose AND l.channel IN ('', {ch}) AND (l.recorded_at > k.recorded_at \
             OR (l.recorded_at = k.recorded_at AND l.consent_rowid > k.consent_rowid)))"
        );
        Ok(match self.mode {
            Mode::Set => format!(
                "{subject} IN (SELECT k.customer_rowid FROM consent_current k WHERE k.purpose = {p} \
                 AND k.channel IN ('', {ch}) AND k.status = 'granted' AND {latest})"
            ),
            Mode::Row => format!(
                "EXISTS (SELECT 1 FROM consent_current k WHERE k.customer_rowid = {subject} AND k.purpose = {p} \
                 AND k.channel IN ('', {ch}) AND k.status = 'granted' AND {latest})"
            ),
        })
    }

    fn in_segment(&mut self, name: &str, span: Span) -> Result<String> {
        if self.scope != Scope::Customer {
            return Err(self.err(span, "in_segment() applies to the customer"));
        }
        let found: Option<(i64, String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT rowid, kind, expression FROM segments WHERE name = ?")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some((rowid, kind, expression)) = found else {
            let names: Vec<String> = self
                .conn
                .prepare_cached("SELECT name FROM segments ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            return Err(self.err_hint(
                span,
                format!("unknown segment '{name}'"),
                nearest(name, &refs),
            ));
        };
        if self.segment_stack.len() == self.direct_depth {
            self.direct_segments.push(rowid);
        }
        if self.segment_stack.iter().any(|s| s == name) {
            let mut cycle = self.segment_stack.clone();
            cycle.push(name.to_string());
            return Err(self.err(
                span,
                format!(
                    "segments refer to each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
        }
        match (kind.as_str(), expression) {
            ("dynamic", Some(text)) => {
                let expr = super::parse(&text)?;
                let outer_text = std::mem::replace(&mut self.text, text);
                self.segment_stack.push(name.to_string());
                let out = self.predicate(&expr);
                self.segment_stack.pop();
                self.text = outer_text;
                out.map_err(|e| match e {
                    Error::Parse { message, .. } if !message.contains("cycle") => self.err(
                        span,
                        format!("segment '{name}' no longer fits the schema: {message}"),
                    ),
                    Error::Parse { message, .. } => self.err(span, message),
                    other => other,
                })
            }
            _ => {
                let p = self.param(rowid);
                self.member("segment_members", &format!("segment_rowid = {p}"))
            }
        }
    }

    // ----- operands -------------------------------------------------------

    fn operand(&mut self, o: &Operand) -> Result<Val> {
        match o {
            Operand::Field(f) => self.field(f),
            Operand::Literal { value: l, span } => {
                if let Literal::Number(n) = l {
                    if !n.is_finite() {
                        return Err(self.err(*span, "a number must be finite"));
                    }
                }
                Ok(Val::Const(literal(l), *span))
            }
            Operand::Now(offset) => Ok(Val::Const(
                Const::Time(self.now.saturating_add(offset_micros(*offset))),
                Span::default(),
            )),
            Operand::Today(offset) => {
                let t = midnight(self.today).saturating_add(offset_micros(*offset));
                let d = DateTime::from_timestamp_micros(t)
                    .map(|d| d.date_naive())
                    .unwrap_or(self.today);
                Ok(Val::Const(Const::Date(d), Span::default()))
            }
            Operand::DaysSince { of: inner, span } => {
                let now = self.now;
                match self.operand(inner)? {
                    Val::Sql(sql, Ty::Time) => {
                        let n = self.param(now);
                        Ok(Val::Sql(
                            format!("(({n} - ({sql})) / {DAY_MICROS})"),
                            Ty::Number,
                        ))
                    }
                    Val::Sql(sql, Ty::Date) => {
                        let t = self.param(self.today.to_string());
                        Ok(Val::Sql(
                            format!("CAST(julianday({t}) - julianday({sql}) AS INTEGER)"),
                            Ty::Number,
                        ))
                    }
                    Val::Const(k, kspan) => {
                        let t = self.bind(&k, Ty::Time, kspan)?;
                        let n = self.param(now);
                        Ok(Val::Sql(
                            format!("(({n} - {t}) / {DAY_MICROS})"),
                            Ty::Number,
                        ))
                    }
                    other => Err(self.err(
                        *span,
                        format!(
                            "days_since() takes a date or a time, not {}",
                            describe_val(&other)
                        ),
                    )),
                }
            }
            Operand::Aggregate(agg) => self.aggregate_value(AggRef::Aggregate((**agg).clone())),
            Operand::Event {
                which,
                source,
                span,
            } => self.aggregate_value(AggRef::Event(*which, source.clone(), *span)),
        }
    }

    fn field(&mut self, f: &Field) -> Result<Val> {
        let a = self.alias();
        let path: Vec<&str> = f.path.iter().map(String::as_str).collect();
        if self.scope == Scope::Interaction {
            if let [name] = path.as_slice() {
                if let Some((_, col, ty)) = INTERACTION_FIELDS.iter().find(|(n, ..)| n == name) {
                    if *ty == Ty::Money {
                        let factor = self.factor("i.currency")?;
                        return Ok(Val::Sql(format!("(i.amount_minor * {factor})"), Ty::Money));
                    }
                    return Ok(Val::Sql(format!("i.{col}"), *ty));
                }
            }
            let names: Vec<&str> = INTERACTION_FIELDS.iter().map(|(n, ..)| *n).collect();
            return Err(self.err_hint(
                f.span,
                format!(
                    "unknown field '{}' of an interaction (fields: {})",
                    f.name(),
                    names.join(", ")
                ),
                nearest(&f.name(), &names),
            ));
        }
        match path.as_slice() {
            ["attr", key] => self.attribute(key, f.span),
            ["attr"] | ["attributes"] => {
                Err(self.err(f.span, "name the attribute after 'attr.', e.g. attr.plan"))
            }
            ["attr", ..] => Err(self.err(f.span, "an attribute name has no dots")),
            ["organization", ..] => Err(self.err(
                f.span,
                "organization fields are one level deep, e.g. organization.country",
            )),
            ["rfm", part] => match SCORE_FIELDS.iter().find(|(n, ..)| *n == f.name()) {
                Some((_, col, ty)) => Ok(self.score(col, *ty)),
                None => Err(self.err_hint(
                    f.span,
                    format!(
                        "unknown RFM field '{part}' (fields: rfm.r, rfm.f, rfm.m, rfm.segment)"
                    ),
                    nearest(&f.name(), &["rfm.r", "rfm.f", "rfm.m", "rfm.segment"]),
                )),
            },
            ["rfm"] => Err(self.err(
                f.span,
                "name the RFM score: rfm.r, rfm.f, rfm.m or rfm.segment",
            )),
            [name] if SCORE_FIELDS.iter().any(|(n, ..)| n == name) => {
                let (_, col, ty) = SCORE_FIELDS
                    .iter()
                    .find(|(n, ..)| n == name)
                    .expect("found");
                Ok(self.score(col, *ty))
            }
            [name] => {
                if let Some((_, col, ty)) = CUSTOMER_FIELDS.iter().find(|(n, ..)| n == name) {
                    if *name == "email" {
                        return if self.scope == Scope::Customer {
                            Ok(Val::AnyEmail)
                        } else {
                            Err(self.err(f.span, "use \"x\" in organization.emails"))
                        };
                    }
                    return Ok(Val::Sql(format!("{a}.{col}"), *ty));
                }
                let mut names: Vec<&str> = CUSTOMER_FIELDS.iter().map(|(n, ..)| *n).collect();
                names.extend(["attr", "organization"]);
                names.extend(SCORE_FIELDS.iter().map(|(n, ..)| *n));
                Err(self.err_hint(
                    f.span,
                    format!("unknown field '{name}'"),
                    nearest(name, &names),
                ))
            }
            _ => Err(self.err(f.span, format!("unknown field '{}'", f.name()))),
        }
    }

    /// A stored analytics score of the customer (NULL when it has none).
    fn score(&self, column: &str, ty: Ty) -> Val {
        Val::Sql(
            format!(
                "(SELECT s.{column} FROM customer_scores s WHERE s.customer_rowid = {}.rowid)",
                self.alias()
            ),
            ty,
        )
    }

    fn attribute(&mut self, key: &str, span: Span) -> Result<Val> {
        if self.attributes.is_none() {
            let defs = crate::db::customers::attribute_definitions(self.conn)?;
            self.attributes = Some(defs.into_iter().collect());
        }
        let defs = self.attributes.as_ref().expect("loaded above");
        let Some(ty) = defs.get(key).copied() else {
            let names: Vec<&str> = defs.keys().map(String::as_str).collect();
            let hint = nearest(key, &names).map(|n| format!("attr.{n}"));
            return Err(self.err_hint(span, format!("unknown attribute '{key}'"), hint.as_deref()));
        };
        // The key is a validated schema name ([a-z_][a-z0-9_]*), never a
        // value: it is written into the SQL like a column name, so that an
        // expression index on it can serve the query.
        let key = normalize::attribute_key(key).map_err(|r| self.err(span, r))?;
        let sql = format!("json_extract({}.attributes, '$.{key}')", self.alias());
        Ok(Val::Sql(
            sql,
            match ty {
                AttributeType::Text => Ty::Text,
                AttributeType::Number => Ty::Number,
                AttributeType::Bool => Ty::Bool,
                AttributeType::Date => Ty::Date,
            },
        ))
    }

    /// SQL scaling an amount in minor units of the currency in `column` to
    /// 1/10 000ths of a major unit.
    fn factor(&mut self, column: &str) -> Result<String> {
        if self.factors.is_none() {
            let codes: Vec<String> = self
                .conn
                .prepare_cached("SELECT code FROM currencies_used ORDER BY code")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut factors = Vec::new();
            for code in codes {
                let exponent = normalize::currency_exponent(&code).unwrap_or(2).min(4);
                if exponent != 2 {
                    factors.push((code, 10_i64.pow(4 - exponent)));
                }
            }
            self.factors = Some(factors);
        }
        let factors = self.factors.clone().expect("loaded above");
        if factors.is_empty() {
            return Ok("100".into());
        }
        let mut sql = format!("CASE {column}");
        for (code, factor) in factors {
            let p = self.param(code);
            sql.push_str(&format!(" WHEN {p} THEN {factor}"));
        }
        sql.push_str(" ELSE 100 END");
        Ok(sql)
    }

    // ----- aggregates -----------------------------------------------------

    fn aggregate_value(&mut self, agg: AggRef) -> Result<Val> {
        if self.scope != Scope::Customer {
            return Err(self.err(
                agg.span(),
                "aggregates over interactions apply to the customer, not inside another aggregate",
            ));
        }
        let ty = agg.ty();
        match self.group.clone() {
            Some(Group::Over(sql)) => Ok(Val::Sql(sql, ty)),
            Some(Group::Empty) => Ok(Val::Sql(
                if agg.zero_when_empty() { "0" } else { "NULL" }.into(),
                ty,
            )),
            None => {
                let source = self.agg_source_correlated(&agg)?;
                Ok(Val::Sql(source, ty))
            }
        }
    }

    /// For set mode: the table and filters of the aggregate's rows
    /// (`from_where`, ready for `GROUP BY customer_rowid`) and the aggregate
    /// expression over them.
    fn agg_source(&mut self, agg: &AggRef) -> Result<AggSource> {
        self.check_aggregate(agg)?;
        if agg.uses_totals() {
            let (filter, expr) = self.totals_parts(agg)?;
            Ok(AggSource {
                from_where: format!("interaction_stats s WHERE {filter}"),
                group_expr: expr,
            })
        } else {
            let (filter, expr) = self.rows_parts(agg)?;
            Ok(AggSource {
                from_where: format!("interactions i WHERE {filter}"),
                group_expr: expr,
            })
        }
    }

    /// For row mode (and values compared with non-constants): a correlated
    /// subquery over the customer's own rows.
    fn agg_source_correlated(&mut self, agg: &AggRef) -> Result<String> {
        self.check_aggregate(agg)?;
        let (table, filter, expr) = if agg.uses_totals() {
            let (f, e) = self.totals_parts(agg)?;
            ("interaction_stats s", f, e)
        } else {
            let (f, e) = self.rows_parts(agg)?;
            ("interactions i", f, e)
        };
        let value =
            format!("(SELECT {expr} FROM {table} WHERE customer_rowid = c.rowid AND {filter})");
        Ok(if agg.zero_when_empty() {
            format!("coalesce({value}, 0)")
        } else {
            value
        })
    }

    fn check_aggregate(&self, agg: &AggRef) -> Result<()> {
        if let AggRef::Aggregate(a) = agg {
            match (a.function, a.measure) {
                (AggregateFn::Count, Some(_)) => {
                    return Err(self.err(a.span, "count() counts interactions; drop the '.field'"));
                }
                (AggregateFn::Count, None) => {}
                (_, None) => {
                    return Err(self.err(
                        a.span,
                        format!(
                            "{}() needs a field, e.g. {}(purchases.amount)",
                            a.function.as_str(),
                            a.function.as_str()
                        ),
                    ));
                }
                _ => {}
            }
        }
        if let Some(kind) = agg.kind() {
            if crate::model::interaction::InteractionKind::parse(kind).is_err() {
                return Err(self.err(agg.span(), format!("unknown interaction kind '{kind}'")));
            }
        }
        Ok(())
    }

    /// Filter and aggregate over `interaction_stats s`.
    fn totals_parts(&mut self, agg: &AggRef) -> Result<(String, String)> {
        let filter = match agg.kind() {
            Some(kind) => {
                let p = self.param(kind.to_string());
                format!("s.kind = {p}")
            }
            None => "1".to_string(),
        };
        let expr = match agg {
            AggRef::Event(Which::First, ..) => "min(s.first_at)".to_string(),
            AggRef::Event(Which::Last, ..) => "max(s.last_at)".to_string(),
            AggRef::Aggregate(a) => {
                let (sum, n) = match a.measure {
                    None => ("s.n".to_string(), String::new()),
                    Some(Measure::Amount) => (
                        format!("s.amount_minor * {}", self.factor("s.currency")?),
                        "s.amount_n".into(),
                    ),
                    Some(Measure::Quantity) => ("s.quantity".into(), "s.quantity_n".into()),
                    Some(Measure::Score) => ("s.score".into(), "s.score_n".into()),
                };
                match a.function {
                    AggregateFn::Count | AggregateFn::Sum => format!("coalesce(sum({sum}), 0)"),
                    AggregateFn::Avg => format!("(sum({sum}) * 1.0 / nullif(sum({n}), 0))"),
                    AggregateFn::Min | AggregateFn::Max => unreachable!("min/max read the rows"),
                }
            }
        };
        Ok((filter, expr))
    }

    /// Filter and aggregate over `interactions i`.
    fn rows_parts(&mut self, agg: &AggRef) -> Result<(String, String)> {
        let AggRef::Aggregate(a) = agg else {
            unreachable!("events read the totals")
        };
        let mut filters = Vec::new();
        if let Some(kind) = agg.kind() {
            let p = self.param(kind.to_string());
            filters.push(format!("i.kind = {p}"));
        }
        if let Some(w) = a.window {
            let len = w.length.micros();
            let (lo, hi) = match w.direction {
                Direction::Past => (self.now.saturating_sub(len), self.now),
                Direction::Future => (self.now, self.now.saturating_add(len)),
            };
            let (lo, hi) = (self.param(lo), self.param(hi));
            filters.push(format!("i.occurred_at BETWEEN {lo} AND {hi}"));
        }
        if let Some(cond) = &a.condition {
            let saved_scope = std::mem::replace(&mut self.scope, Scope::Interaction);
            let saved_group = self.group.take();
            let sql = self.predicate(cond);
            self.scope = saved_scope;
            self.group = saved_group;
            filters.push(sql?);
        }
        if filters.is_empty() {
            filters.push("1".into());
        }
        let measure = match a.measure {
            None => String::new(),
            Some(Measure::Amount) => {
                format!("i.amount_minor * {}", self.factor("i.currency")?)
            }
            Some(Measure::Quantity) => "i.quantity".into(),
            Some(Measure::Score) => "i.score".into(),
        };
        let expr = match a.function {
            AggregateFn::Count => "count(*)".to_string(),
            AggregateFn::Sum => format!("coalesce(sum({measure}), 0)"),
            AggregateFn::Avg => format!("avg({measure})"),
            AggregateFn::Min => format!("min({measure})"),
            AggregateFn::Max => format!("max({measure})"),
        };
        Ok((filters.join(" AND "), expr))
    }
}

struct AggSource {
    from_where: String,
    group_expr: String,
}

/// An aggregate or an event (`last purchase`).
#[derive(Clone, Debug)]
enum AggRef {
    Aggregate(Aggregate),
    Event(Which, Source, Span),
}

impl AggRef {
    fn span(&self) -> Span {
        match self {
            AggRef::Aggregate(a) => a.span,
            AggRef::Event(_, _, s) => *s,
        }
    }

    fn kind(&self) -> Option<&str> {
        match self {
            AggRef::Aggregate(Aggregate { source, .. }) | AggRef::Event(_, source, _) => {
                match source {
                    Source::All => None,
                    Source::Kind(k) => Some(k),
                }
            }
        }
    }

    fn ty(&self) -> Ty {
        match self {
            AggRef::Event(..) => Ty::Time,
            AggRef::Aggregate(a) => match (a.function, a.measure) {
                (AggregateFn::Count, _) => Ty::Number,
                (_, Some(Measure::Amount)) => Ty::Money,
                _ => Ty::Number,
            },
        }
    }

    fn zero_when_empty(&self) -> bool {
        matches!(
            self,
            AggRef::Aggregate(Aggregate {
                function: AggregateFn::Count | AggregateFn::Sum,
                ..
            })
        )
    }

    /// Whether the per-customer totals answer it (no window, no condition,
    /// not a min / max).
    fn uses_totals(&self) -> bool {
        match self {
            AggRef::Event(..) => true,
            AggRef::Aggregate(a) => {
                a.window.is_none()
                    && a.condition.is_none()
                    && !matches!(a.function, AggregateFn::Min | AggregateFn::Max)
            }
        }
    }
}

// ----- tree helpers ---------------------------------------------------------

/// `parts` joined by `glue` as a balanced tree of parentheses: SQLite nests
/// `a OR b OR c …` one level per term and refuses more than 1 000 levels,
/// while a balanced tree of 10 000 terms is 14 deep.
fn balanced(parts: &[String], glue: &str) -> String {
    match parts {
        [one] => one.clone(),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            format!("({}{glue}{})", balanced(left, glue), balanced(right, glue))
        }
    }
}

fn operands(e: &Expr) -> Vec<&Operand> {
    match e {
        Expr::Compare { left, right, .. } => vec![left, right],
        Expr::InList { operand, .. }
        | Expr::Text { operand, .. }
        | Expr::IsNull { operand, .. }
        | Expr::IsEmpty { operand, .. }
        | Expr::Within { operand, .. }
        | Expr::Truth(operand) => vec![operand],
        _ => vec![],
    }
}

/// The customer-level fields a leaf predicate reads (not those inside an
/// aggregate's `where`).
fn collect_fields<'a>(e: &'a Expr, out: &mut Vec<&'a Field>) {
    if let Expr::Has { list, .. } = e {
        out.push(list);
    }
    for o in operands(e) {
        collect_operand_fields(o, out);
    }
}

fn collect_operand_fields<'a>(o: &'a Operand, out: &mut Vec<&'a Field>) {
    match o {
        Operand::Field(f) => out.push(f),
        Operand::DaysSince { of: inner, .. } => collect_operand_fields(inner, out),
        _ => {}
    }
}

fn is_org_field(f: &Field) -> bool {
    f.path.len() > 1 && f.path[0] == "organization"
}

fn has_aggregate(e: &Expr) -> bool {
    count_aggregates(e) > 0
}

fn count_aggregates(e: &Expr) -> usize {
    fn in_operand(o: &Operand) -> usize {
        match o {
            Operand::Aggregate(_) | Operand::Event { .. } => 1,
            Operand::DaysSince { of: inner, .. } => in_operand(inner),
            _ => 0,
        }
    }
    operands(e).into_iter().map(in_operand).sum()
}

/// The one aggregate or event of a leaf predicate, if it has exactly one.
fn single_aggregate(e: &Expr) -> Option<AggRef> {
    fn find(o: &Operand) -> Option<AggRef> {
        match o {
            Operand::Aggregate(a) => Some(AggRef::Aggregate((**a).clone())),
            Operand::Event {
                which,
                source,
                span,
            } => Some(AggRef::Event(*which, source.clone(), *span)),
            Operand::DaysSince { of: inner, .. } => find(inner),
            _ => None,
        }
    }
    if count_aggregates(e) != 1 {
        return None;
    }
    operands(e).into_iter().find_map(find)
}

/// The predicate with `organization.` taken off its field names.
fn strip_org(e: &Expr) -> Expr {
    fn field(f: &Field) -> Field {
        Field {
            path: if is_org_field(f) {
                f.path[1..].to_vec()
            } else {
                f.path.clone()
            },
            span: f.span,
        }
    }
    fn operand(o: &Operand) -> Operand {
        match o {
            Operand::Field(f) => Operand::Field(field(f)),
            Operand::DaysSince { of: inner, span: s } => Operand::DaysSince {
                of: Box::new(operand(inner)),
                span: *s,
            },
            other => other.clone(),
        }
    }
    match e {
        Expr::Compare { left, op, right } => Expr::Compare {
            left: operand(left),
            op: *op,
            right: operand(right),
        },
        Expr::InList {
            operand: o,
            values,
            negated,
            span,
        } => Expr::InList {
            operand: operand(o),
            values: values.clone(),
            negated: *negated,
            span: *span,
        },
        Expr::Has {
            list,
            value,
            negated,
            span,
        } => Expr::Has {
            list: field(list),
            value: value.clone(),
            negated: *negated,
            span: *span,
        },
        Expr::Text {
            operand: o,
            op,
            pattern,
            span,
        } => Expr::Text {
            operand: operand(o),
            op: *op,
            pattern: pattern.clone(),
            span: *span,
        },
        Expr::IsNull {
            operand: o,
            negated,
        } => Expr::IsNull {
            operand: operand(o),
            negated: *negated,
        },
        Expr::IsEmpty {
            operand: o,
            negated,
        } => Expr::IsEmpty {
            operand: operand(o),
            negated: *negated,
        },
        Expr::Within { operand: o, window } => Expr::Within {
            operand: operand(o),
            window: *window,
        },
        Expr::Truth(o) => Expr::Truth(operand(o)),
        other => other.clone(),
    }
}

fn operand_span(o: &Operand) -> Span {
    match o {
        Operand::Field(f) => f.span,
        Operand::Literal { span: s, .. } | Operand::DaysSince { span: s, .. } => *s,
        Operand::Aggregate(a) => a.span,
        Operand::Event { span, .. } => *span,
        Operand::Now(_) | Operand::Today(_) => Span::default(),
    }
}

fn literal(l: &Literal) -> Const {
    match l {
        Literal::String(s) => Const::Str(s.clone()),
        Literal::Number(n) => Const::Num(*n),
        Literal::Bool(b) => Const::Bool(*b),
    }
}

fn describe_val(v: &Val) -> String {
    match v {
        Val::Sql(_, ty) => ty.describe().to_string(),
        Val::Const(k, _) => k.describe().to_string(),
        Val::AnyEmail => "an email".to_string(),
    }
}

fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

fn flip_sql(op: &'static str) -> &'static str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        other => other,
    }
}

fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::Integer(n as i64)
    } else {
        Value::Real(n)
    }
}

fn offset_micros(offset: Option<Offset>) -> i64 {
    offset.map_or(0, |o| {
        let m = o.length.micros();
        if o.negative { -m } else { m }
    })
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

fn date_to_micros_sql(sql: &str) -> String {
    format!("CAST((julianday({sql}) - 2440587.5) * {DAY_MICROS} AS INTEGER)")
}

/// Unicode case folding as the `crm_fold` SQL function does it.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Registers the SQL functions compiled expressions use on a connection.
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("crm_fold", 1, flags, |ctx| {
        Ok(ctx.get::<Option<String>>(0)?.map(|s| fold(&s)))
    })?;
    conn.create_scalar_function("crm_text_match", 3, flags, |ctx| {
        let Some(text) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let op: String = ctx.get(1)?;
        let pattern: String = ctx.get(2)?;
        let text = fold(&text);
        Ok(Some(match op.as_str() {
            "starts" => text.starts_with(&pattern),
            "ends" => text.ends_with(&pattern),
            _ => text.contains(&pattern),
        }))
    })?;
    Ok(())
}
