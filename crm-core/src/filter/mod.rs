//! The filter language: one small language for segments, rule conditions and
//! ad-hoc queries.
//!
//! ```
//! use crm_core::{Crm, NewCustomer};
//!
//! let crm = Crm::open_in_memory()?;
//! crm.create_customer(NewCustomer {
//!     name: Some("Ana Novak".into()),
//!     country: Some("SI".into()),
//!     tags: vec!["vip".into()],
//!     ..Default::default()
//! })?;
//! assert_eq!(crm.count_matching(r#"country = "SI" and "vip" in tags"#)?, 1);
//! assert_eq!(crm.count_matching(r#"count(purchases within 90d) >= 3"#)?, 0);
//!
//! // Mistakes are reported with their position and the nearest valid name.
//! let err = crm.count_matching(r#"contry = "SI""#).unwrap_err();
//! assert_eq!(err.to_string(), "line 1, column 1: unknown field 'contry' (did you mean 'country'?)");
//! # Ok::<(), crm_core::Error>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr      := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" expr ")" | predicate
//! predicate := operand ("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") operand
//!            | operand ["not"] "in" "(" literal ("," literal)* ")"
//!            | literal ["not"] "in" name            -- "vip" in tags
//!            | operand ("contains" | "starts" "with" | "ends" "with") string
//!            | operand "is" ["not"] ("null" | "empty")
//!            | operand "within" ["last" | "next"] duration
//!            | "consented" "(" string ["," string] ")"
//!            | "in_segment" "(" string ")"
//!            | operand                               -- a boolean
//! operand   := name | literal | aggregate | event
//!            | "days_since" "(" operand ")"
//!            | ("now" | "today") [("+" | "-") duration]
//! aggregate := ("count" | "sum" | "avg" | "min" | "max")
//!              "(" source ["." measure] [window] ["where" expr] [window] ")"
//! window    := "within" ["last" | "next"] duration
//! event     := ("first" | "last") source
//! source    := "interactions" | "purchases" | "emails" | "calls" | "meetings"
//!            | "notes" | "tickets" | "web_visits" | "social" | "survey_responses"
//!              (singular forms accepted too)
//! measure   := "amount" | "quantity" | "score"
//! name      := ident ("." ident)*
//! literal   := string | number | "true" | "false"
//! duration  := digits ("h" | "d" | "w")       -- 12h, 30d, 2w
//! ```
//!
//! Keywords are case-insensitive; names are case-sensitive. Strings are in
//! double quotes with `\"`, `\\`, `\n`, `\t` and `\u{…}` escapes. An
//! aggregate's window may come before or after its `where`; the canonical
//! text puts it first.
//!
//! # Meaning
//!
//! - A predicate on a missing value — an unset field, no purchase yet, the
//!   average of nothing — is false, and `not` of it is true: logic is
//!   two-valued. `count` and `sum` of nothing are 0.
//! - Text comparisons ignore case. Values of normalized fields are normalized
//!   like stored ones: `country = "si"` finds `SI`, `"VIP" in tags` finds
//!   `vip`. Text is compared with `=`, `!=`, `in`, `contains`, `starts with`
//!   and `ends with`; `<` and `>` are for numbers, dates, times and stages.
//! - Dates are written as strings (`birth_date < "1990-01-01"`); times take
//!   a date or an RFC 3339 timestamp. `within 30d` means the last 30 days up
//!   to now, `within next 14d` the coming 14 days. A birth date is always in
//!   the past, so `birth_date within next 14d` asks whether the birthday
//!   falls in the next 14 days (and `birth_date within 7d` whether it fell
//!   in the last 7).
//! - `stage >= "mql"` compares lifecycle stages by their configured order
//!   (see [`crate::LifecycleConfig`]); off-track stages such as `churned`
//!   match no ordered comparison.
//! - The stored analytics scores of [`crate::Crm::compute_scores`] are
//!   fields: `p_alive`, `expected_purchases`, `expected_value`, `clv`,
//!   `rfm.r`, `rfm.f`, `rfm.m` (1–5) and `rfm.segment` (e.g.
//!   `"champions"`), as of the latest run. A customer without a purchase
//!   has none (see [`crate::insights`]).
//! - `amount` is in major units of the interaction's currency (`12.99`), so
//!   `sum(purchases.amount) > 500` adds amounts as they are, currency by
//!   currency unconverted: restrict with `where currency = "EUR"` when
//!   customers pay in several.

mod ast;
pub(crate) mod compile;
mod syntax;

pub use ast::*;

use crate::error::Error;

/// Parses `text` into a syntax tree, without checking names against a
/// schema (that happens when the expression is used on a [`crate::Crm`]).
///
/// ```
/// use crm_core::filter::{self, Expr};
///
/// let expr = filter::parse(r#"stage = "customer" and "vip" in tags"#)?;
/// assert!(matches!(expr, Expr::And(ref parts) if parts.len() == 2));
/// // Canonical text parses back to the same tree.
/// assert_eq!(filter::parse(&expr.to_string())?, expr);
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn parse(text: &str) -> Result<Expr, Error> {
    syntax::parse(text)
}

/// The longest expression text accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// The deepest nesting accepted (parentheses, `not`, aggregates).
pub const MAX_DEPTH: usize = 64;

/// An [`Error::Parse`] at `span` of `text`, with line and column computed from
/// the byte offset (`text` empty: an expression built in code, no position).
pub(crate) fn error_at(
    text: &str,
    span: Span,
    message: impl Into<String>,
    suggestion: Option<&str>,
) -> Error {
    let (line, column) = if text.is_empty() {
        (0, 0)
    } else {
        line_column(text, span.start)
    };
    Error::Parse {
        line,
        column,
        message: message.into(),
        suggestion: suggestion.map(str::to_string),
    }
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("čx", 2), (1, 2));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
