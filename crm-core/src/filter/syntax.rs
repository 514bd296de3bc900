//! Lexer, parser and canonical printer of the filter language.
//!
//! The grammar is in the documentation of [`crate::filter`]. Text is cut into
//! tokens first; a lexical mistake (an unterminated string, `30m`) becomes an
//! error token that the parser reports when it reaches it, so the first
//! mistake in reading order is the one reported. The parser is a hand-written
//! recursive descent that counts its nesting and stops at [`MAX_DEPTH`], so
//! no input can overflow the stack.
//!
//! Decisions the grammar leaves open:
//!
//! - Reserved words (`and`, `or`, `not`, `in`, `is`, `null`, `empty`,
//!   `contains`, `starts`, `ends`, `with`, `within`, `where`, `true`,
//!   `false`, `now`, `today`) cannot start a name; after a `.` any identifier
//!   is a name part (`attr.where`).
//! - Any identifier followed by `(` is a function call. Function names
//!   without `(` are ordinary names (`count`, `days_since`, `in_segment`),
//!   except that `count purchases` is reported as a missing `(`.
//! - `first` / `last` followed by an identifier that is not a reserved word
//!   is an event, and the identifier must be a source (`last purchse` is an
//!   error with a suggestion); otherwise `first` / `last` are names.
//! - Inside an aggregate's `where`, outside parentheses, `within` ends the
//!   condition and starts the aggregate's window. A `within` test on an
//!   interaction field is written in parentheses there:
//!   `count(purchases where (occurred_at within 7d))`; the printer adds them.
//! - A raw line break inside a string ends it as unterminated; write `\n`.
//! - The canonical text escapes `"`, `\`, line feeds and tabs, and other
//!   control characters as `\u{…}`.
//! - The round trip `parse(&e.to_string()) == Ok(e)` holds for every tree
//!   the parser produces whose canonical text is within [`MAX_TEXT_LEN`]:
//!   canonical spacing can make a text close to the limit longer. The
//!   canonical text never nests deeper than the text it was parsed from.

use std::fmt::{self, Write as _};
use std::mem;

use super::ast::{
    Aggregate, AggregateFn, CompareOp, Direction, Duration, DurationUnit, Expr, Field, Literal,
    Measure, Offset, Operand, Source, Span, TextOp, Which, Window,
};
use super::{MAX_DEPTH, MAX_TEXT_LEN, error_at};
use crate::error::Error;
use crate::import::nearest;

/// Words that cannot start a name.
const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "is", "null", "empty", "contains", "starts", "ends", "with",
    "within", "where", "true", "false", "now", "today",
];

/// Every function name, for suggestions.
const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "days_since",
    "consented",
    "in_segment",
];

/// Interaction sources: plural, singular (the stored kind name, except for
/// `interactions`, which is every kind).
const SOURCES: &[(&str, &str)] = &[
    ("interactions", "interaction"),
    ("purchases", "purchase"),
    ("emails", "email"),
    ("calls", "call"),
    ("meetings", "meeting"),
    ("notes", "note"),
    ("tickets", "ticket"),
    ("web_visits", "web_visit"),
    ("social", "social"),
    ("survey_responses", "survey_response"),
];

/// Every spelling of a source, for suggestions.
const SOURCE_NAMES: &[&str] = &[
    "interactions",
    "purchases",
    "emails",
    "calls",
    "meetings",
    "notes",
    "tickets",
    "web_visits",
    "social",
    "survey_responses",
    "interaction",
    "purchase",
    "email",
    "call",
    "meeting",
    "note",
    "ticket",
    "web_visit",
    "survey_response",
];

const SOURCE_LIST: &str = "interactions, purchases, emails, calls, meetings, notes, tickets, \
                           web_visits, social or survey_responses";

const MEASURES: &[&str] = &["amount", "quantity", "score"];

/// Duration suffixes that mean months or years.
const MONTHS_YEARS: &[&str] = &[
    "m", "mo", "mon", "mos", "month", "months", "y", "yr", "yrs", "year", "years",
];

const COMPARE_OPS: &[(&str, CompareOp)] = &[
    ("=", CompareOp::Eq),
    ("==", CompareOp::Eq),
    ("!=", CompareOp::Ne),
    ("<>", CompareOp::Ne),
    ("<", CompareOp::Lt),
    ("<=", CompareOp::Le),
    (">", CompareOp::Gt),
    (">=", CompareOp::Ge),
];

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn source_named(word: &str) -> Option<Source> {
    let (plural, singular) = SOURCES
        .iter()
        .find(|(p, s)| p.eq_ignore_ascii_case(word) || s.eq_ignore_ascii_case(word))?;
    Some(if *plural == "interactions" {
        Source::All
    } else {
        Source::Kind((*singular).to_string())
    })
}

/// A source as written in an aggregate: `purchases`, `interactions`.
fn plural(source: &Source) -> &str {
    match source {
        Source::All => "interactions",
        Source::Kind(kind) => SOURCES
            .iter()
            .find(|(_, s)| s == kind)
            .map_or(kind.as_str(), |(p, _)| p),
    }
}

/// A source as written after `first` / `last`: `purchase`, `interaction`.
fn singular(source: &Source) -> &str {
    match source {
        Source::All => "interaction",
        Source::Kind(kind) => kind,
    }
}

/// `text`, cut to a length fit for an error message.
fn snippet(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

/// `'a', 'b' or 'c'`.
fn one_of(options: &[&str]) -> String {
    match options {
        [] => String::new(),
        [only] => (*only).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug)]
enum Tok {
    /// An identifier or keyword; its text is in the source.
    Ident,
    /// A string literal, unescaped.
    Str(String),
    /// A number literal (never negative: `-` is its own token).
    Number(f64),
    /// `30d`; the amount is not checked yet.
    Duration { amount: u64, unit: DurationUnit },
    /// An operator or punctuation.
    Punct(&'static str),
    /// A character that has no place in the language, with the keyword
    /// probably meant (`&&` → `and`).
    Unknown(Option<&'static str>),
    /// A lexical mistake: lexing stopped here.
    Error(String),
    /// The end of the text.
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    span: Span,
}

/// Cuts `text` into tokens, ending with [`Tok::End`]; stops after the
/// first [`Tok::Error`].
fn lex(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let lexed: Result<(Tok, usize), (String, Span)> = if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + 1;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            Ok((Tok::Ident, end))
        } else if c.is_ascii_digit() {
            lex_number(text, start)
        } else if c == '"' {
            lex_string(text, start)
        } else if c == '\'' {
            Err((
                "strings are written in double quotes, found a single-quoted string".to_string(),
                Span::new(start, start + 1),
            ))
        } else {
            Ok(lex_punct(text, start))
        };
        match lexed {
            Ok((tok, end)) => {
                tokens.push(Token {
                    tok,
                    span: Span::new(start, end),
                });
                i = end;
            }
            Err((message, span)) => {
                tokens.push(Token {
                    tok: Tok::Error(message),
                    span,
                });
                break;
            }
        }
    }
    let end = tokens.last().map_or(0, |t| t.span.end);
    tokens.push(Token {
        tok: Tok::End,
        span: Span::new(end, end),
    });
    tokens
}

fn lex_punct(text: &str, start: usize) -> (Tok, usize) {
    let two = match text.get(start..start + 2) {
        Some("==") => Some(Tok::Punct("==")),
        Some("!=") => Some(Tok::Punct("!=")),
        Some("<>") => Some(Tok::Punct("<>")),
        Some("<=") => Some(Tok::Punct("<=")),
        Some(">=") => Some(Tok::Punct(">=")),
        Some("&&") => Some(Tok::Unknown(Some("and"))),
        Some("||") => Some(Tok::Unknown(Some("or"))),
        _ => None,
    };
    if let Some(tok) = two {
        return (tok, start + 2);
    }
    let c = text[start..].chars().next().unwrap_or(' ');
    let tok = match c {
        '(' => Tok::Punct("("),
        ')' => Tok::Punct(")"),
        ',' => Tok::Punct(","),
        '.' => Tok::Punct("."),
        '+' => Tok::Punct("+"),
        '-' => Tok::Punct("-"),
        '=' => Tok::Punct("="),
        '<' => Tok::Punct("<"),
        '>' => Tok::Punct(">"),
        '!' => Tok::Unknown(Some("not")),
        '&' => Tok::Unknown(Some("and")),
        '|' => Tok::Unknown(Some("or")),
        _ => Tok::Unknown(None),
    };
    (tok, start + c.len_utf8())
}

/// A number (`42`, `1.5`) or a duration (`30d`) at `start`.
fn lex_number(text: &str, start: usize) -> Result<(Tok, usize), (String, Span)> {
    let bytes = text.as_bytes();
    let digits_end = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits_end(start);
    let mut num_end = int_end;
    if bytes.get(int_end) == Some(&b'.') && bytes.get(int_end + 1).is_some_and(u8::is_ascii_digit) {
        num_end = digits_end(int_end + 1);
    }
    let mut end = num_end;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    let lexeme = &text[start..end];
    let span = Span::new(start, end);
    if end == num_end {
        return match lexeme.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok((Tok::Number(value), end)),
            _ => Err((format!("number '{}' is too large", snippet(lexeme)), span)),
        };
    }
    let suffix = text[num_end..end].to_ascii_lowercase();
    let unit = match suffix.as_str() {
        "h" => Some(DurationUnit::Hours),
        "d" => Some(DurationUnit::Days),
        "w" => Some(DurationUnit::Weeks),
        _ => None,
    };
    match unit {
        Some(unit) if num_end == int_end => {
            let amount = text[start..int_end].parse::<u64>().unwrap_or(u64::MAX);
            Ok((Tok::Duration { amount, unit }, end))
        }
        Some(_) => Err((
            format!(
                "a duration is a whole number of hours, days or weeks, found '{}'",
                snippet(lexeme)
            ),
            span,
        )),
        None if MONTHS_YEARS.contains(&suffix.as_str()) => Err((
            format!(
                "months and years vary in length: use d or w (e.g. 30d, 52w), found '{}'",
                snippet(lexeme)
            ),
            span,
        )),
        None => Err((
            format!(
                "expected a number or a duration such as 30d, found '{}'",
                snippet(lexeme)
            ),
            span,
        )),
    }
}

/// A double-quoted string at `start`.
fn lex_string(text: &str, start: usize) -> Result<(Tok, usize), (String, Span)> {
    let unterminated = || {
        (
            "unterminated string: the closing '\"' is missing".to_string(),
            Span::new(start, start + 1),
        )
    };
    let bad_unicode = |at: usize, end: usize| {
        (
            "invalid escape: expected \\u{…} with 1 to 6 hex digits of a Unicode character"
                .to_string(),
            Span::new(at, end),
        )
    };
    let mut out = String::new();
    let mut chars = text[start + 1..]
        .char_indices()
        .map(|(i, c)| (start + 1 + i, c));
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(out), i + 1)),
            '\n' => return Err(unterminated()),
            '\\' => {
                let Some((j, escaped)) = chars.next() else {
                    return Err(unterminated());
                };
                match escaped {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '\n' => return Err(unterminated()),
                    'u' => {
                        if !matches!(chars.next(), Some((_, '{'))) {
                            return Err(bad_unicode(i, j + 1));
                        }
                        let mut value: u32 = 0;
                        let mut digits = 0;
                        loop {
                            match chars.next() {
                                Some((_, '}')) if (1..=6).contains(&digits) => break,
                                Some((_, h)) if h.is_ascii_hexdigit() && digits < 6 => {
                                    value = value * 16 + h.to_digit(16).unwrap_or(0);
                                    digits += 1;
                                }
                                Some((k, other)) => {
                                    return Err(bad_unicode(i, k + other.len_utf8()));
                                }
                                None => return Err(unterminated()),
                            }
                        }
                        match char::from_u32(value) {
                            Some(decoded) => out.push(decoded),
                            None => return Err(bad_unicode(i, j + 1)),
                        }
                    }
                    other => {
                        return Err((
                            format!(
                                "unknown escape '\\{other}' in a string: use \\\", \\\\, \\n, \\t or \\u{{…}}"
                            ),
                            Span::new(i, j + other.len_utf8()),
                        ));
                    }
                }
            }
            other => out.push(other),
        }
    }
    Err(unterminated())
}

// ---------------------------------------------------------------------------
// Parser

/// Parses `text` into a syntax tree; see [`crate::filter::parse`].
pub(crate) fn parse(text: &str) -> Result<Expr, Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(error_at(
            text,
            Span::new(MAX_TEXT_LEN, text.len()),
            format!(
                "expression is too long: {} bytes, at most {MAX_TEXT_LEN}",
                text.len()
            ),
            None,
        ));
    }
    if text.trim().is_empty() {
        return Err(Error::Parse {
            line: 1,
            column: 1,
            message: "empty expression".to_string(),
            suggestion: None,
        });
    }
    let mut parser = Parser {
        text,
        tokens: lex(text),
        pos: 0,
        depth: 0,
        in_where: false,
    };
    let expr = parser.parse_or()?;
    if !matches!(parser.peek().tok, Tok::End) {
        return Err(parser.fail(format!(
            "expected 'and', 'or' or the end, found {}",
            parser.found()
        )));
    }
    Ok(expr)
}

/// A function returning an operand.
#[derive(Clone, Copy)]
enum Call {
    Aggregate(AggregateFn),
    DaysSince,
}

/// A clause of an aggregate after its source and measure.
enum Clause {
    Window(Window),
    Where,
    /// The `)`, ending at this offset.
    Close(usize),
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    /// The current token; never past [`Tok::End`].
    pos: usize,
    /// Open parentheses, `not`s and calls around the current token.
    depth: usize,
    /// Parsing an aggregate's `where` outside parentheses: `within` ends it.
    in_where: bool,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn source_text(&self, token: &Token) -> &str {
        &self.text[token.span.start..token.span.end]
    }

    fn is_kw(&self, token: &Token, keyword: &str) -> bool {
        matches!(token.tok, Tok::Ident) && self.source_text(token).eq_ignore_ascii_case(keyword)
    }

    fn at_kw(&self, keyword: &str) -> bool {
        self.is_kw(self.peek(), keyword)
    }

    fn at_punct(&self, punct: &str) -> bool {
        matches!(self.peek().tok, Tok::Punct(p) if p == punct)
    }

    /// The current token starts a name (an identifier, not a reserved word).
    fn at_name(&self) -> bool {
        let token = self.peek();
        matches!(token.tok, Tok::Ident) && !is_reserved(self.source_text(token))
    }

    fn describe(&self, token: &Token) -> String {
        match token.tok {
            Tok::Str(_) => "a string".to_string(),
            Tok::End => "the end".to_string(),
            _ => format!("'{}'", snippet(self.source_text(token))),
        }
    }

    /// The current token, described for an error message.
    fn found(&self) -> String {
        self.describe(self.peek())
    }

    /// ` after 'x'`, naming the previous token (nothing at the start).
    fn after(&self) -> String {
        if self.pos == 0 {
            String::new()
        } else {
            format!(" after {}", self.describe(&self.tokens[self.pos - 1]))
        }
    }

    fn error(&self, span: Span, message: impl Into<String>, suggestion: Option<&str>) -> Error {
        error_at(self.text, span, message, suggestion)
    }

    /// An error at the current token; a lexical error there wins.
    fn fail(&self, message: String) -> Error {
        let token = self.peek();
        match &token.tok {
            Tok::Error(lexical) => self.error(token.span, lexical.clone(), None),
            Tok::Unknown(suggestion) => self.error(token.span, message, *suggestion),
            _ => self.error(token.span, message, None),
        }
    }

    /// `expected {what} after 'x', found 'y'` at the current token.
    fn expected(&self, what: &str) -> Error {
        self.fail(format!(
            "expected {what}{}, found {}",
            self.after(),
            self.found()
        ))
    }

    fn enter(&mut self, span: Span) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                span,
                format!(
                    "expression is nested too deeply: at most {MAX_DEPTH} levels of parentheses, \
                     'not' and function calls"
                ),
                None,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `or := and ("or" and)*`
    fn parse_or(&mut self) -> Result<Expr, Error> {
        let mut items = Vec::new();
        loop {
            items.push(self.parse_and()?);
            if !self.skip_kw("or") {
                return Ok(Self::joined(items, Expr::Or));
            }
        }
    }

    /// Passes over `keyword` if it is the current token.
    #[inline(never)]
    fn skip_kw(&mut self, keyword: &str) -> bool {
        let found = self.at_kw(keyword);
        if found {
            self.advance();
        }
        found
    }

    /// The only item, or all of them joined with `and` / `or`.
    #[inline(never)]
    fn joined(mut items: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
        if items.len() == 1 {
            items.swap_remove(0)
        } else {
            join(items)
        }
    }

    /// `and := unary ("and" unary)*`
    fn parse_and(&mut self) -> Result<Expr, Error> {
        let mut items = Vec::new();
        loop {
            items.push(self.parse_unary()?);
            if !self.skip_kw("and") {
                return Ok(Self::joined(items, Expr::And));
            }
        }
    }

    /// `unary := "not" unary | "(" expr ")" | predicate`
    fn parse_unary(&mut self) -> Result<Expr, Error> {
        if self.at_kw("not") {
            self.enter_at_current()?;
            let inner = self.parse_unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.at_punct("(") {
            self.enter_at_current()?;
            let in_where = mem::replace(&mut self.in_where, false);
            let inner = self.parse_or()?;
            self.close_group()?;
            self.in_where = in_where;
            self.leave();
            return Ok(inner);
        }
        self.parse_predicate()
    }

    // The functions that recurse (`parse_or` … `parse_aggregate`) keep
    // their frames small, leaving the rest to helpers that are not inlined:
    // in unoptimized builds every temporary of a function takes stack room.

    /// Passes over the current token, one level deeper.
    #[inline(never)]
    fn enter_at_current(&mut self) -> Result<(), Error> {
        let token = self.advance();
        self.enter(token.span)
    }

    /// The `)` closing a group.
    #[inline(never)]
    fn close_group(&mut self) -> Result<(), Error> {
        if !self.at_punct(")") {
            return Err(self.fail(format!(
                "expected 'and', 'or' or ')', found {}",
                self.found()
            )));
        }
        self.advance();
        Ok(())
    }

    fn parse_predicate(&mut self) -> Result<Expr, Error> {
        if let Some(call) = self.parse_condition_call()? {
            return Ok(call);
        }
        let left = self.parse_operand("a condition")?;
        if let Some(op) = self.compare_op() {
            let right = self.parse_operand("a value")?;
            return Ok(Expr::Compare { left, op, right });
        }
        self.parse_predicate_rest(left)
    }

    /// `consented(…)` or `in_segment(…)`, if the current token starts one.
    #[inline(never)]
    fn parse_condition_call(&mut self) -> Result<Option<Expr>, Error> {
        let token = self.peek();
        if matches!(token.tok, Tok::Ident) && matches!(self.peek_at(1).tok, Tok::Punct("(")) {
            let word = self.source_text(token);
            if word.eq_ignore_ascii_case("consented") {
                return self.parse_consented().map(Some);
            }
            if word.eq_ignore_ascii_case("in_segment") {
                return self.parse_in_segment().map(Some);
            }
        }
        Ok(None)
    }

    /// Passes over a comparison operator, if the current token is one.
    #[inline(never)]
    fn compare_op(&mut self) -> Option<CompareOp> {
        let Tok::Punct(p) = self.peek().tok else {
            return None;
        };
        let (_, op) = COMPARE_OPS.iter().find(|(s, _)| *s == p)?;
        self.advance();
        Some(*op)
    }

    /// The rest of a predicate after its operand, other than a comparison.
    #[inline(never)]
    fn parse_predicate_rest(&mut self, left: Operand) -> Result<Expr, Error> {
        if self.at_kw("not") {
            self.advance();
            if !self.at_kw("in") {
                return Err(self.expected("'in'"));
            }
            self.advance();
            return self.parse_in(left, true);
        }
        if self.at_kw("in") {
            self.advance();
            return self.parse_in(left, false);
        }
        if self.at_kw("contains") {
            self.advance();
            let (pattern, span) = self.parse_string()?;
            return Ok(Expr::Text {
                operand: left,
                op: TextOp::Contains,
                pattern,
                span,
            });
        }
        if self.at_kw("starts") || self.at_kw("ends") {
            let op = if self.at_kw("starts") {
                TextOp::StartsWith
            } else {
                TextOp::EndsWith
            };
            self.advance();
            if !self.at_kw("with") {
                return Err(self.expected("'with'"));
            }
            self.advance();
            let (pattern, span) = self.parse_string()?;
            return Ok(Expr::Text {
                operand: left,
                op,
                pattern,
                span,
            });
        }
        if self.at_kw("is") {
            self.advance();
            let negated = self.at_kw("not");
            if negated {
                self.advance();
            }
            if self.at_kw("null") {
                self.advance();
                return Ok(Expr::IsNull {
                    operand: left,
                    negated,
                });
            }
            if self.at_kw("empty") {
                self.advance();
                return Ok(Expr::IsEmpty {
                    operand: left,
                    negated,
                });
            }
            return Err(self.expected(if negated {
                "'null' or 'empty'"
            } else {
                "'not', 'null' or 'empty'"
            }));
        }
        if self.at_kw("within") && !self.in_where {
            self.advance();
            let window = self.parse_window()?;
            return Ok(Expr::Within {
                operand: left,
                window,
            });
        }
        Ok(Expr::Truth(left))
    }

    /// After `in` or `not in`: a list of literals, or a list field after a
    /// literal.
    fn parse_in(&mut self, left: Operand, negated: bool) -> Result<Expr, Error> {
        if self.at_punct("(") {
            let open = self.advance();
            let mut values = Vec::new();
            loop {
                values.push(self.parse_literal("a string, number, true or false")?.0);
                if self.at_punct(",") {
                    self.advance();
                } else if self.at_punct(")") {
                    let close = self.advance();
                    return Ok(Expr::InList {
                        operand: left,
                        values,
                        negated,
                        span: Span::new(open.span.start, close.span.end),
                    });
                } else {
                    return Err(self.expected("',' or ')'"));
                }
            }
        }
        match left {
            Operand::Literal { value, span } => {
                if !self.at_name() {
                    return Err(self.expected("'(' or a list field such as tags"));
                }
                let list = self.parse_name()?;
                Ok(Expr::Has {
                    list,
                    value,
                    negated,
                    span,
                })
            }
            _ => Err(self.expected("'('")),
        }
    }

    /// A string literal.
    fn parse_string(&mut self) -> Result<(String, Span), Error> {
        if let Tok::Str(value) = &self.peek().tok {
            let value = value.clone();
            let token = self.advance();
            return Ok((value, token.span));
        }
        Err(self.expected("a string"))
    }

    /// `string | number | "-" number | true | false`
    fn parse_literal(&mut self, what: &str) -> Result<(Literal, Span), Error> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Str(value) => {
                self.advance();
                Ok((Literal::String(value), token.span))
            }
            Tok::Number(value) => {
                self.advance();
                Ok((Literal::Number(value), token.span))
            }
            Tok::Punct("-") => {
                self.advance();
                if let Tok::Number(value) = self.peek().tok {
                    let number = self.advance();
                    return Ok((
                        Literal::Number(-value),
                        Span::new(token.span.start, number.span.end),
                    ));
                }
                Err(self.expected("a number"))
            }
            Tok::Ident if self.is_kw(&token, "true") || self.is_kw(&token, "false") => {
                self.advance();
                Ok((Literal::Bool(self.is_kw(&token, "true")), token.span))
            }
            _ => Err(self.expected(what)),
        }
    }

    /// `operand`; `what` names it in an error (`a value`).
    fn parse_operand(&mut self, what: &str) -> Result<Operand, Error> {
        match self.call_at_current() {
            Some(Call::Aggregate(function)) => self.parse_aggregate(function),
            Some(Call::DaysSince) => self.parse_days_since(),
            None => self.parse_simple_operand(what),
        }
    }

    /// The operand function called at the current token, if any.
    #[inline(never)]
    fn call_at_current(&self) -> Option<Call> {
        let token = self.peek();
        if !matches!(token.tok, Tok::Ident) || !matches!(self.peek_at(1).tok, Tok::Punct("(")) {
            return None;
        }
        match self.source_text(token).to_ascii_lowercase().as_str() {
            "count" => Some(Call::Aggregate(AggregateFn::Count)),
            "sum" => Some(Call::Aggregate(AggregateFn::Sum)),
            "avg" => Some(Call::Aggregate(AggregateFn::Avg)),
            "min" => Some(Call::Aggregate(AggregateFn::Min)),
            "max" => Some(Call::Aggregate(AggregateFn::Max)),
            "days_since" => Some(Call::DaysSince),
            _ => None,
        }
    }

    /// An operand that is not an aggregate or `days_since`.
    #[inline(never)]
    fn parse_simple_operand(&mut self, what: &str) -> Result<Operand, Error> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Str(_) | Tok::Number(_) | Tok::Punct("-") => {
                let (literal, span) = self.parse_literal(what)?;
                return Ok(Operand::Literal {
                    value: literal,
                    span,
                });
            }
            Tok::Ident => {}
            _ => return Err(self.expected(what)),
        }
        let word = self.source_text(&token).to_ascii_lowercase();
        match word.as_str() {
            "true" | "false" => {
                let (literal, span) = self.parse_literal(what)?;
                return Ok(Operand::Literal {
                    value: literal,
                    span,
                });
            }
            "now" | "today" => {
                self.advance();
                let offset = self.parse_offset()?;
                return Ok(if word == "now" {
                    Operand::Now(offset)
                } else {
                    Operand::Today(offset)
                });
            }
            _ if is_reserved(&word) => return Err(self.expected(what)),
            _ => {}
        }
        let next = self.peek_at(1).clone();
        if matches!(next.tok, Tok::Punct("(")) && (word == "consented" || word == "in_segment") {
            return Err(self.expected(what));
        }
        let next_is_name = matches!(next.tok, Tok::Ident) && !is_reserved(self.source_text(&next));
        if next_is_name && (word == "first" || word == "last") {
            self.advance();
            let (source, span) = self.parse_source()?;
            return Ok(Operand::Event {
                which: if word == "first" {
                    Which::First
                } else {
                    Which::Last
                },
                source,
                span: Span::new(token.span.start, span.end),
            });
        }
        if next_is_name
            && FUNCTIONS[..6].contains(&word.as_str())
            && source_named(self.source_text(&next)).is_some()
        {
            self.advance();
            return Err(self.expected("'('"));
        }
        Ok(Operand::Field(self.parse_name()?))
    }

    /// `name := ident ("." ident)*`, at a token for which
    /// [`Parser::at_name`] holds.
    fn parse_name(&mut self) -> Result<Field, Error> {
        let first = self.advance();
        let mut path = vec![self.source_text(&first).to_string()];
        let mut end = first.span.end;
        while self.at_punct(".") {
            self.advance();
            if !matches!(self.peek().tok, Tok::Ident) {
                return Err(self.expected("a name"));
            }
            let part = self.advance();
            path.push(self.source_text(&part).to_string());
            end = part.span.end;
        }
        let span = Span::new(first.span.start, end);
        if self.at_punct("(") {
            let name = path.join(".");
            return Err(self.error(
                span,
                format!("unknown function '{}'", snippet(&name)),
                nearest(&name, FUNCTIONS),
            ));
        }
        Ok(Field { path, span })
    }

    /// `[("+" | "-") duration]` after `now` or `today`.
    fn parse_offset(&mut self) -> Result<Option<Offset>, Error> {
        let negative = if self.at_punct("-") {
            true
        } else if self.at_punct("+") {
            false
        } else {
            return Ok(None);
        };
        self.advance();
        let length = self.parse_duration("an offset")?;
        Ok(Some(Offset { negative, length }))
    }

    /// `["last" | "next"] duration` after `within`.
    fn parse_window(&mut self) -> Result<Window, Error> {
        let direction = if self.at_kw("next") {
            self.advance();
            Direction::Future
        } else {
            if self.at_kw("last") {
                self.advance();
            }
            Direction::Past
        };
        let length = self.parse_duration("a window")?;
        Ok(Window { direction, length })
    }

    /// A duration; `what` (`a window`, `an offset`) names its use in errors.
    fn parse_duration(&mut self, what: &str) -> Result<Duration, Error> {
        let token = self.peek().clone();
        let not_positive = || format!("{what} must be a positive length of time, e.g. 30d");
        match token.tok {
            Tok::Duration { amount: 0, .. } => Err(self.error(token.span, not_positive(), None)),
            Tok::Duration { amount, unit } => {
                let Some(amount) = u32::try_from(amount)
                    .ok()
                    .filter(|a| *a <= Duration::MAX_AMOUNT)
                else {
                    return Err(self.error(
                        token.span,
                        format!(
                            "'{}' is too long: a duration is at most {} hours, days or weeks",
                            snippet(self.source_text(&token)),
                            Duration::MAX_AMOUNT
                        ),
                        None,
                    ));
                };
                self.advance();
                Ok(Duration { amount, unit })
            }
            Tok::Punct("-") if what == "a window" => {
                Err(self.error(token.span, not_positive(), None))
            }
            _ => Err(self.expected("a duration such as 30d")),
        }
    }

    /// An interaction source, plural or singular.
    fn parse_source(&mut self) -> Result<(Source, Span), Error> {
        if !self.at_name() {
            return Err(self.expected("an interaction source such as purchases"));
        }
        let token = self.peek().clone();
        let word = self.source_text(&token);
        match source_named(word) {
            Some(source) => {
                self.advance();
                Ok((source, token.span))
            }
            None => Err(self.error(
                token.span,
                format!("unknown source '{}', expected {SOURCE_LIST}", snippet(word)),
                nearest(word, SOURCE_NAMES),
            )),
        }
    }

    /// `function "(" source ["." measure] [window] ["where" expr] [window] ")"`
    /// at the function's name.
    fn parse_aggregate(&mut self, function: AggregateFn) -> Result<Operand, Error> {
        let (start, source, measure) = self.parse_aggregate_head(function)?;
        let mut window = None;
        let mut condition = None;
        let mut after_condition = false;
        loop {
            match self.aggregate_clause(window.is_none(), condition.is_none(), after_condition)? {
                Clause::Close(end) => {
                    self.leave();
                    return Ok(Operand::Aggregate(Box::new(Aggregate {
                        function,
                        source,
                        measure,
                        window,
                        condition,
                        span: Span::new(start, end),
                    })));
                }
                Clause::Window(found) => {
                    window = Some(found);
                    after_condition = false;
                }
                Clause::Where => {
                    let in_where = mem::replace(&mut self.in_where, true);
                    condition = Some(Box::new(self.parse_or()?));
                    self.in_where = in_where;
                    after_condition = true;
                }
            }
        }
    }

    /// `function "(" source ["." measure]`: where the aggregate starts, its
    /// source and measure.
    #[inline(never)]
    fn parse_aggregate_head(
        &mut self,
        function: AggregateFn,
    ) -> Result<(usize, Source, Option<Measure>), Error> {
        let name = self.advance();
        self.enter(name.span)?;
        self.advance(); // (
        let (source, _) = self.parse_source()?;
        if !self.at_punct(".") {
            if function != AggregateFn::Count {
                return Err(self.fail(format!(
                    "{} needs a measure: expected '.amount', '.quantity' or '.score'{}, found {}",
                    function.as_str(),
                    self.after(),
                    self.found()
                )));
            }
            return Ok((name.span.start, source, None));
        }
        let dot = self.advance();
        if !matches!(self.peek().tok, Tok::Ident) {
            return Err(self.expected("amount, quantity or score"));
        }
        let token = self.peek().clone();
        let word = self.source_text(&token);
        let measure = match word.to_ascii_lowercase().as_str() {
            "amount" => Measure::Amount,
            "quantity" => Measure::Quantity,
            "score" => Measure::Score,
            _ => {
                return Err(self.error(
                    token.span,
                    format!(
                        "unknown measure '{}', expected amount, quantity or score",
                        snippet(word)
                    ),
                    nearest(word, MEASURES),
                ));
            }
        };
        if function == AggregateFn::Count {
            return Err(self.error(
                dot.span,
                format!(
                    "count takes no measure, found '.{}': use sum, avg, min or max for it",
                    measure.as_str()
                ),
                None,
            ));
        }
        self.advance();
        Ok((name.span.start, source, Some(measure)))
    }

    /// The next clause of an aggregate: its window, `where` (passed over),
    /// or the closing `)`.
    #[inline(never)]
    fn aggregate_clause(
        &mut self,
        window_open: bool,
        condition_open: bool,
        after_condition: bool,
    ) -> Result<Clause, Error> {
        if self.at_punct(")") {
            return Ok(Clause::Close(self.advance().span.end));
        }
        if self.at_kw("within") && window_open {
            self.advance();
            return Ok(Clause::Window(self.parse_window()?));
        }
        if self.at_kw("where") && condition_open {
            self.advance();
            return Ok(Clause::Where);
        }
        let mut options = Vec::new();
        if after_condition {
            options.extend(["'and'", "'or'"]);
        }
        if window_open {
            options.push("'within'");
        }
        if condition_open {
            options.push("'where'");
        }
        options.push("')'");
        let mut message = format!(
            "expected {}{}, found {}",
            one_of(&options),
            self.after(),
            self.found()
        );
        if after_condition && self.at_kw("within") {
            message.push_str(
                "; the aggregate already has a window, so put a 'within' test of its \
                 condition in parentheses",
            );
        }
        Err(self.fail(message))
    }

    /// `"days_since" "(" operand ")"` at the function's name.
    fn parse_days_since(&mut self) -> Result<Operand, Error> {
        let start = self.peek().span.start;
        self.enter_at_current()?;
        self.advance(); // (
        let operand = self.parse_operand("a date or time")?;
        let end = self.close_call()?;
        self.leave();
        Ok(Operand::DaysSince {
            of: Box::new(operand),
            span: Span::new(start, end),
        })
    }

    /// The `)` closing a call; where it ends.
    #[inline(never)]
    fn close_call(&mut self) -> Result<usize, Error> {
        if !self.at_punct(")") {
            return Err(self.expected("')'"));
        }
        Ok(self.advance().span.end)
    }

    /// `"consented" "(" string ["," string] ")"` at the function's name.
    fn parse_consented(&mut self) -> Result<Expr, Error> {
        let name = self.advance();
        self.enter(name.span)?;
        self.advance(); // (
        let (purpose, _) = self.parse_string()?;
        let mut channel = None;
        if self.at_punct(",") {
            self.advance();
            channel = Some(self.parse_string()?.0);
            if !self.at_punct(")") {
                return Err(self.expected("')'"));
            }
        } else if !self.at_punct(")") {
            return Err(self.expected("',' or ')'"));
        }
        let close = self.advance();
        self.leave();
        Ok(Expr::Consented {
            purpose,
            channel,
            span: Span::new(name.span.start, close.span.end),
        })
    }

    /// `"in_segment" "(" string ")"` at the function's name.
    fn parse_in_segment(&mut self) -> Result<Expr, Error> {
        let name = self.advance();
        self.enter(name.span)?;
        self.advance(); // (
        let (segment, _) = self.parse_string()?;
        if !self.at_punct(")") {
            return Err(self.expected("')'"));
        }
        let close = self.advance();
        self.leave();
        Ok(Expr::InSegment {
            name: segment,
            span: Span::new(name.span.start, close.span.end),
        })
    }
}

// ---------------------------------------------------------------------------
// Canonical printer

/// The canonical text: lower-case keywords, single spaces, parentheses only
/// where the tree needs them. It parses back to an equal tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, false)
    }
}

/// Writes `expr`; `in_where`: inside an aggregate's `where`, outside
/// parentheses, where a `within` test must be parenthesized.
fn write_expr(f: &mut fmt::Formatter<'_>, expr: &Expr, in_where: bool) -> fmt::Result {
    match expr {
        Expr::And(items) => write_items(f, items, " and ", in_where, |item| {
            matches!(item, Expr::And(_) | Expr::Or(_))
        }),
        Expr::Or(items) => write_items(f, items, " or ", in_where, |item| {
            matches!(item, Expr::Or(_))
        }),
        Expr::Not(inner) => {
            f.write_str("not ")?;
            write_child(
                f,
                inner,
                matches!(**inner, Expr::And(_) | Expr::Or(_)),
                in_where,
            )
        }
        Expr::Within { .. } if in_where => write_child(f, expr, true, in_where),
        Expr::Within { operand, window } => write!(f, "{operand} {window}"),
        Expr::Compare { left, op, right } => write!(f, "{left} {op} {right}"),
        Expr::InList {
            operand,
            values,
            negated,
            ..
        } => {
            write!(f, "{operand} {}in (", if *negated { "not " } else { "" })?;
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{value}")?;
            }
            f.write_str(")")
        }
        Expr::Has {
            list,
            value,
            negated,
            ..
        } => write!(f, "{value} {}in {list}", if *negated { "not " } else { "" }),
        Expr::Text {
            operand,
            op,
            pattern,
            ..
        } => {
            write!(f, "{operand} {op} ")?;
            write_string(f, pattern)
        }
        Expr::IsNull { operand, negated } => {
            write!(f, "{operand} is {}null", if *negated { "not " } else { "" })
        }
        Expr::IsEmpty { operand, negated } => {
            write!(
                f,
                "{operand} is {}empty",
                if *negated { "not " } else { "" }
            )
        }
        Expr::Consented {
            purpose, channel, ..
        } => {
            f.write_str("consented(")?;
            write_string(f, purpose)?;
            if let Some(channel) = channel {
                f.write_str(", ")?;
                write_string(f, channel)?;
            }
            f.write_str(")")
        }
        Expr::InSegment { name, .. } => {
            f.write_str("in_segment(")?;
            write_string(f, name)?;
            f.write_str(")")
        }
        Expr::Truth(operand) => write!(f, "{operand}"),
    }
}

fn write_items(
    f: &mut fmt::Formatter<'_>,
    items: &[Expr],
    separator: &str,
    in_where: bool,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write_child(f, item, needs_parens(item), in_where)?;
    }
    Ok(())
}

fn write_child(
    f: &mut fmt::Formatter<'_>,
    expr: &Expr,
    parens: bool,
    in_where: bool,
) -> fmt::Result {
    if parens {
        f.write_str("(")?;
        write_expr(f, expr, false)?;
        f.write_str(")")
    } else {
        write_expr(f, expr, in_where)
    }
}

/// `"text"` with `"`, `\`, line feeds, tabs and control characters escaped.
fn write_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// `=`, `!=`, `<`, `<=`, `>`, `>=`.
impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        })
    }
}

/// `contains`, `starts with`, `ends with`.
impl fmt::Display for TextOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextOp::Contains => "contains",
            TextOp::StartsWith => "starts with",
            TextOp::EndsWith => "ends with",
        })
    }
}

/// A string in double quotes with escapes, a number in its shortest form
/// that reads back as the same `f64` (`0.1`, `-3`), `true` or `false`.
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(text) => write_string(f, text),
            Literal::Number(number) => write!(f, "{number}"),
            Literal::Bool(value) => write!(f, "{value}"),
        }
    }
}

/// The dotted name, e.g. `attr.plan`.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// `12h`, `30d`, `2w`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        };
        write!(f, "{}{unit}", self.amount)
    }
}

/// `within 30d` (past) or `within next 14d` (future).
impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::Past => write!(f, "within {}", self.length),
            Direction::Future => write!(f, "within next {}", self.length),
        }
    }
}

/// `+ 14d` or `- 30d`, as written after `now` or `today`.
impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { '-' } else { '+' };
        write!(f, "{sign} {}", self.length)
    }
}

/// `count(purchases within 90d where direction = "inbound")`: the source in
/// the plural, the window before the condition.
impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}", self.function.as_str(), plural(&self.source))?;
        if let Some(measure) = self.measure {
            write!(f, ".{}", measure.as_str())?;
        }
        if let Some(window) = &self.window {
            write!(f, " {window}")?;
        }
        if let Some(condition) = &self.condition {
            f.write_str(" where ")?;
            write_expr(f, condition, true)?;
        }
        f.write_str(")")
    }
}

/// A value as written: `attr.plan`, `"SI"`, `count(purchases)`,
/// `last purchase`, `days_since(created_at)`, `now - 30d`.
impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field(field) => write!(f, "{field}"),
            Operand::Literal { value: literal, .. } => write!(f, "{literal}"),
            Operand::Aggregate(aggregate) => write!(f, "{aggregate}"),
            Operand::Event { which, source, .. } => {
                let which = match which {
                    Which::First => "first",
                    Which::Last => "last",
                };
                write!(f, "{which} {}", singular(source))
            }
            Operand::DaysSince { of: operand, .. } => write!(f, "days_since({operand})"),
            Operand::Now(offset) | Operand::Today(offset) => {
                f.write_str(if matches!(self, Operand::Now(_)) {
                    "now"
                } else {
                    "today"
                })?;
                match offset {
                    Some(offset) => write!(f, " {offset}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Expr {
        match parse(text) {
            Ok(expr) => expr,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    /// (line, column, message, suggestion) of the error for `text`.
    fn err(text: &str) -> (u32, u32, String, Option<String>) {
        match parse(text) {
            Ok(expr) => panic!("{text:?} should not parse, got {expr:?}"),
            Err(Error::Parse {
                line,
                column,
                message,
                suggestion,
            }) => (line, column, message, suggestion),
            Err(other) => panic!("{text:?}: not a parse error: {other}"),
        }
    }

    fn assert_err(text: &str, line: u32, column: u32, message: &str) {
        let (l, c, m, _) = err(text);
        assert_eq!((l, c, m.as_str()), (line, column, message), "for {text:?}");
    }

    fn canonical(text: &str) -> String {
        ok(text).to_string()
    }

    fn field(name: &str) -> Operand {
        Operand::Field(Field {
            path: name.split('.').map(str::to_string).collect(),
            span: Span::default(),
        })
    }

    fn string(text: &str) -> Operand {
        Operand::Literal {
            value: Literal::String(text.to_string()),
            span: Span::default(),
        }
    }

    fn number(value: f64) -> Operand {
        Operand::Literal {
            value: Literal::Number(value),
            span: Span::default(),
        }
    }

    fn eq(left: Operand, right: Operand) -> Expr {
        Expr::Compare {
            left,
            op: CompareOp::Eq,
            right,
        }
    }

    fn truth(name: &str) -> Expr {
        Expr::Truth(field(name))
    }

    fn days(amount: u32) -> Duration {
        Duration {
            amount,
            unit: DurationUnit::Days,
        }
    }

    fn aggregate(expr: &Expr) -> &Aggregate {
        match expr {
            Expr::Compare {
                left: Operand::Aggregate(a),
                ..
            } => a,
            other => panic!("not a comparison of an aggregate: {other:?}"),
        }
    }

    // --- grammar forms -----------------------------------------------------

    #[test]
    fn every_comparison_operator_parses_and_prints_canonically() {
        for (written, op, printed) in [
            ("=", CompareOp::Eq, "="),
            ("==", CompareOp::Eq, "="),
            ("!=", CompareOp::Ne, "!="),
            ("<>", CompareOp::Ne, "!="),
            ("<", CompareOp::Lt, "<"),
            ("<=", CompareOp::Le, "<="),
            (">", CompareOp::Gt, ">"),
            (">=", CompareOp::Ge, ">="),
        ] {
            let expr = ok(&format!("score{written}5"));
            assert_eq!(
                expr,
                Expr::Compare {
                    left: field("score"),
                    op,
                    right: number(5.0)
                }
            );
            assert_eq!(expr.to_string(), format!("score {printed} 5"));
        }
    }

    #[test]
    fn keywords_ignore_case_but_names_keep_it() {
        let expr = ok(r#"NOT Country = "SI" AnD "vip" IN Tags OR x Is NoT NuLl"#);
        assert_eq!(
            expr.to_string(),
            r#"not Country = "SI" and "vip" in Tags or x is not null"#
        );
        assert_ne!(ok("Country = 1"), ok("country = 1"));
        assert_eq!(
            ok("x = TRUE"),
            eq(
                field("x"),
                Operand::Literal {
                    value: Literal::Bool(true),
                    span: Span::default()
                }
            )
        );
        assert_eq!(ok("COUNT(Purchases) > 1"), ok("count(purchases) > 1"));
        assert_eq!(ok("x WITHIN NEXT 3D"), ok("x within next 3d"));
    }

    #[test]
    fn dotted_names_become_field_paths() {
        assert_eq!(
            ok(r#"organization.country = "SI""#),
            eq(field("organization.country"), string("SI"))
        );
        assert_eq!(ok("attr . plan_2"), truth("attr.plan_2"));
        // After a dot any identifier is a name part, keywords too.
        assert_eq!(ok("attr.where"), truth("attr.where"));
        assert_eq!(ok("_x.Y9"), truth("_x.Y9"));
    }

    #[test]
    fn and_or_sequences_are_flat_and_parenthesized_groups_stay_nested() {
        assert_eq!(
            ok("a and b and c"),
            Expr::And(vec![truth("a"), truth("b"), truth("c")])
        );
        assert_eq!(
            ok("a or b or c"),
            Expr::Or(vec![truth("a"), truth("b"), truth("c")])
        );
        assert_eq!(
            ok("a and (b and c)"),
            Expr::And(vec![truth("a"), Expr::And(vec![truth("b"), truth("c")])])
        );
        assert_eq!(ok("((a))"), truth("a"));
        assert_eq!(canonical("a and (b and c)"), "a and (b and c)");
        assert_eq!(canonical("(a or b) or c"), "(a or b) or c");
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        assert_eq!(
            ok("a or b and c"),
            Expr::Or(vec![truth("a"), Expr::And(vec![truth("b"), truth("c")])])
        );
        assert_eq!(
            ok("not a and b"),
            Expr::And(vec![Expr::Not(Box::new(truth("a"))), truth("b")])
        );
        assert_eq!(
            ok("not not a"),
            Expr::Not(Box::new(Expr::Not(Box::new(truth("a")))))
        );
        assert_eq!(canonical("a or (b and c)"), "a or b and c");
        assert_eq!(canonical("(a or b) and c"), "(a or b) and c");
        assert_eq!(canonical("not (a or b)"), "not (a or b)");
        assert_eq!(canonical("not (a = 1)"), "not a = 1");
    }

    #[test]
    fn in_lists_take_literals_and_may_be_negated() {
        assert_eq!(
            ok(r#"stage in ("lead", 2, -1.5, true)"#),
            Expr::InList {
                operand: field("stage"),
                values: vec![
                    Literal::String("lead".into()),
                    Literal::Number(2.0),
                    Literal::Number(-1.5),
                    Literal::Bool(true)
                ],
                negated: false,
                span: Span::default(),
            }
        );
        let negated = ok(r#"country not in ("SI")"#);
        assert!(
            matches!(negated, Expr::InList { negated: true, ref values, .. } if values.len() == 1)
        );
        assert_eq!(negated.to_string(), r#"country not in ("SI")"#);
        assert_eq!(canonical(r#"x in("a","b")"#), r#"x in ("a", "b")"#);
    }

    #[test]
    fn a_literal_in_a_name_is_list_membership() {
        assert_eq!(
            ok(r#""vip" in tags"#),
            Expr::Has {
                list: Field {
                    path: vec!["tags".into()],
                    span: Span::default()
                },
                value: Literal::String("vip".into()),
                negated: false,
                span: Span::default(),
            }
        );
        let negated = ok(r#""vip" NOT IN tags"#);
        assert!(matches!(negated, Expr::Has { negated: true, .. }));
        assert_eq!(negated.to_string(), r#""vip" not in tags"#);
        assert_eq!(canonical("-3 in attr.scores"), "-3 in attr.scores");
    }

    #[test]
    fn text_tests_take_a_string() {
        for (text, op) in [
            (r#"name contains "ov""#, TextOp::Contains),
            (r#"name starts with "An""#, TextOp::StartsWith),
            (r#"name ends with "ak""#, TextOp::EndsWith),
        ] {
            let expr = ok(text);
            assert!(matches!(expr, Expr::Text { op: o, .. } if o == op));
            assert_eq!(expr.to_string(), text);
        }
        assert_eq!(
            canonical(r#"name STARTS   WITH "x""#),
            r#"name starts with "x""#
        );
    }

    #[test]
    fn is_null_and_is_empty_with_their_negations() {
        assert_eq!(
            ok("phone is null"),
            Expr::IsNull {
                operand: field("phone"),
                negated: false
            }
        );
        assert_eq!(
            ok("phone is not null"),
            Expr::IsNull {
                operand: field("phone"),
                negated: true
            }
        );
        assert_eq!(
            ok("tags is empty"),
            Expr::IsEmpty {
                operand: field("tags"),
                negated: false
            }
        );
        assert_eq!(canonical("tags IS NOT EMPTY"), "tags is not empty");
    }

    #[test]
    fn within_windows_are_past_or_future() {
        let past = Expr::Within {
            operand: field("created_at"),
            window: Window {
                direction: Direction::Past,
                length: days(30),
            },
        };
        assert_eq!(ok("created_at within 30d"), past);
        assert_eq!(ok("created_at within last 30d"), past);
        assert_eq!(
            canonical("created_at within last 30d"),
            "created_at within 30d"
        );
        assert_eq!(
            ok("birth_date within next 14d"),
            Expr::Within {
                operand: field("birth_date"),
                window: Window {
                    direction: Direction::Future,
                    length: days(14),
                },
            }
        );
        assert_eq!(canonical("x within next 14d"), "x within next 14d");
        assert_eq!(canonical("x within 12h"), "x within 12h");
        assert_eq!(canonical("x within 2W"), "x within 2w");
        assert_eq!(canonical("x within 100000w"), "x within 100000w");
    }

    #[test]
    fn consented_and_in_segment_are_calls() {
        assert_eq!(
            ok(r#"consented("email_marketing")"#),
            Expr::Consented {
                purpose: "email_marketing".into(),
                channel: None,
                span: Span::default()
            }
        );
        assert_eq!(
            ok(r#"Consented( "newsletter" , "email" )"#),
            Expr::Consented {
                purpose: "newsletter".into(),
                channel: Some("email".into()),
                span: Span::default()
            }
        );
        assert_eq!(
            canonical(r#"consented("newsletter","email")"#),
            r#"consented("newsletter", "email")"#
        );
        assert_eq!(
            ok(r#"in_segment("churn-risk")"#),
            Expr::InSegment {
                name: "churn-risk".into(),
                span: Span::default()
            }
        );
        assert_eq!(
            canonical(r#"not IN_SEGMENT("a") and consented("b")"#),
            r#"not in_segment("a") and consented("b")"#
        );
    }

    #[test]
    fn function_names_without_parentheses_are_names() {
        assert_eq!(ok("in_segment = 1"), eq(field("in_segment"), number(1.0)));
        assert_eq!(ok("days_since"), truth("days_since"));
        assert_eq!(
            ok("count > 2"),
            Expr::Compare {
                left: field("count"),
                op: CompareOp::Gt,
                right: number(2.0)
            }
        );
        assert_eq!(ok("consented"), truth("consented"));
        assert_eq!(ok("last = 1"), eq(field("last"), number(1.0)));
        assert_eq!(
            ok("first is null"),
            Expr::IsNull {
                operand: field("first"),
                negated: false
            }
        );
        assert_eq!(ok("first.name"), truth("first.name"));
    }

    #[test]
    fn aggregates_take_a_source_measure_window_and_condition() {
        let expr = ok(r#"count(purchases within 90d where direction = "inbound") >= 3"#);
        let a = aggregate(&expr);
        assert_eq!(a.function, AggregateFn::Count);
        assert_eq!(a.source, Source::Kind("purchase".into()));
        assert_eq!(a.measure, None);
        assert_eq!(
            a.window,
            Some(Window {
                direction: Direction::Past,
                length: days(90)
            })
        );
        assert_eq!(
            a.condition.as_deref(),
            Some(&eq(field("direction"), string("inbound")))
        );
        // The window may come after the condition; canonical text puts it first.
        let swapped = ok(r#"count(purchases where direction = "inbound" within 90d) >= 3"#);
        assert_eq!(swapped, expr);
        assert_eq!(
            swapped.to_string(),
            r#"count(purchases within 90d where direction = "inbound") >= 3"#
        );
        for (function, f) in [
            ("sum", AggregateFn::Sum),
            ("avg", AggregateFn::Avg),
            ("min", AggregateFn::Min),
            ("max", AggregateFn::Max),
        ] {
            let expr = ok(&format!("{function}(purchases.amount) > 10"));
            assert_eq!(aggregate(&expr).function, f);
            assert_eq!(aggregate(&expr).measure, Some(Measure::Amount));
        }
        let scored = ok("avg(survey_response.Score within next 2w) < 3");
        assert_eq!(aggregate(&scored).measure, Some(Measure::Score));
        assert_eq!(
            scored.to_string(),
            "avg(survey_responses.score within next 2w) < 3"
        );
        let quantity = ok("sum(purchases.quantity where amount > 0 or x) = 0");
        assert_eq!(aggregate(&quantity).measure, Some(Measure::Quantity));
        assert!(matches!(
            aggregate(&quantity).condition.as_deref(),
            Some(Expr::Or(_))
        ));
    }

    #[test]
    fn every_source_name_maps_to_its_stored_kind() {
        for (plural, singular) in SOURCES {
            let expected = if *plural == "interactions" {
                Source::All
            } else {
                Source::Kind((*singular).to_string())
            };
            for written in [plural, singular] {
                let expr = ok(&format!("count({written}) > 0"));
                assert_eq!(aggregate(&expr).source, expected);
                assert_eq!(expr.to_string(), format!("count({plural}) > 0"));
                let event = ok(&format!("first {written}"));
                assert_eq!(
                    event,
                    Expr::Truth(Operand::Event {
                        which: Which::First,
                        source: expected.clone(),
                        span: Span::default()
                    })
                );
                assert_eq!(event.to_string(), format!("first {singular}"));
            }
        }
    }

    #[test]
    fn first_and_last_with_a_source_are_events() {
        assert_eq!(
            ok("last purchase < now - 30d"),
            Expr::Compare {
                left: Operand::Event {
                    which: Which::Last,
                    source: Source::Kind("purchase".into()),
                    span: Span::default()
                },
                op: CompareOp::Lt,
                right: Operand::Now(Some(Offset {
                    negative: true,
                    length: days(30)
                })),
            }
        );
        assert_eq!(
            canonical("LAST Purchases within 7d"),
            "last purchase within 7d"
        );
        assert_eq!(
            canonical("first interactions is null"),
            "first interaction is null"
        );
    }

    #[test]
    fn days_since_takes_any_operand() {
        assert_eq!(
            ok("days_since(created_at) > 30"),
            Expr::Compare {
                left: Operand::DaysSince {
                    of: Box::new(field("created_at")),
                    span: Span::default()
                },
                op: CompareOp::Gt,
                right: number(30.0),
            }
        );
        assert_eq!(
            canonical("DAYS_SINCE( last call ) >= 7"),
            "days_since(last call) >= 7"
        );
        assert_eq!(
            canonical("days_since(days_since(max(purchases.amount)))"),
            "days_since(days_since(max(purchases.amount)))"
        );
    }

    #[test]
    fn now_and_today_take_optional_offsets() {
        assert_eq!(
            ok("x < now"),
            Expr::Compare {
                left: field("x"),
                op: CompareOp::Lt,
                right: Operand::Now(None)
            }
        );
        assert_eq!(
            ok("x < TODAY+2w"),
            Expr::Compare {
                left: field("x"),
                op: CompareOp::Lt,
                right: Operand::Today(Some(Offset {
                    negative: false,
                    length: Duration {
                        amount: 2,
                        unit: DurationUnit::Weeks
                    }
                }))
            }
        );
        assert_eq!(canonical("x > now-12h"), "x > now - 12h");
        assert_eq!(canonical("today + 1d = x"), "today + 1d = x");
    }

    #[test]
    fn numbers_are_integers_or_decimals_with_an_optional_minus() {
        assert_eq!(ok("x = 42"), eq(field("x"), number(42.0)));
        assert_eq!(ok("x = 0.25"), eq(field("x"), number(0.25)));
        assert_eq!(ok("x = -0.25"), eq(field("x"), number(-0.25)));
        assert_eq!(ok("x = - 7"), eq(field("x"), number(-7.0)));
        assert_eq!(ok("x = 007"), eq(field("x"), number(7.0)));
        assert_eq!(canonical("x = 1.50"), "x = 1.5");
        assert_eq!(canonical("x=-3"), "x = -3");
    }

    #[test]
    fn numbers_print_in_the_shortest_form_that_reads_back_exactly() {
        for value in [
            0.1,
            -0.1,
            1.0 / 3.0,
            -2.5e-8,
            1e300,
            -1.7976931348623157e308,
            5e-324,
            f64::MIN_POSITIVE,
            123_456_789.123_456_79,
            -0.0,
        ] {
            let expr = eq(field("x"), number(value));
            let text = expr.to_string();
            assert_eq!(text, format!("x = {value}"));
            match ok(&text) {
                Expr::Compare {
                    right:
                        Operand::Literal {
                            value: Literal::Number(read),
                            ..
                        },
                    ..
                } => assert_eq!(read.to_bits(), value.to_bits(), "{text}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn strings_take_escapes_and_print_them_back() {
        assert_eq!(
            ok(r#"x = "a\"b\\c\nd\te\u{1F600}\u{e9}""#),
            eq(field("x"), string("a\"b\\c\nd\te😀é"))
        );
        assert_eq!(
            eq(field("x"), string("q\"b\\n\nt\tc\u{0}\r€")).to_string(),
            r#"x = "q\"b\\n\nt\tc\u{0}\u{d}€""#
        );
        assert_eq!(ok(r#"x = """#), eq(field("x"), string("")));
        assert_eq!(
            ok("x = \"raw\u{1}\r\""),
            eq(field("x"), string("raw\u{1}\r"))
        );
    }

    #[test]
    fn a_bare_operand_is_a_truth_test() {
        assert_eq!(ok("attr.newsletter"), truth("attr.newsletter"));
        assert_eq!(
            ok("true"),
            Expr::Truth(Operand::Literal {
                value: Literal::Bool(true),
                span: Span::default()
            })
        );
        assert_eq!(
            ok("false or x"),
            Expr::Or(vec![
                Expr::Truth(Operand::Literal {
                    value: Literal::Bool(false),
                    span: Span::default()
                }),
                truth("x")
            ])
        );
        assert_eq!(canonical("(last email)"), "last email");
    }

    #[test]
    fn whitespace_and_line_breaks_separate_tokens() {
        assert_eq!(
            ok("country\n=\t\"SI\"\r\n  and\u{a0}x"),
            Expr::And(vec![eq(field("country"), string("SI")), truth("x")])
        );
    }

    #[test]
    fn within_ends_a_where_condition_unless_in_parentheses() {
        let expr = ok("count(emails where opened within 7d) > 0");
        let a = aggregate(&expr);
        assert_eq!(a.condition.as_deref(), Some(&truth("opened")));
        assert!(a.window.is_some());

        let expr = ok("count(emails where (occurred_at within 7d)) > 0");
        let a = aggregate(&expr);
        assert!(a.window.is_none());
        assert!(matches!(a.condition.as_deref(), Some(Expr::Within { .. })));
        assert_eq!(
            expr.to_string(),
            "count(emails where (occurred_at within 7d)) > 0"
        );

        // The printer puts parentheses around each bare within test only.
        let expr =
            ok("count(calls within 30d where (a within 1d and b = 1 or not (c within 2d))) > 0");
        assert_eq!(
            expr.to_string(),
            "count(calls within 30d where (a within 1d) and b = 1 or not (c within 2d)) > 0"
        );
        assert_eq!(ok(&expr.to_string()), expr);
        // Inside parentheses of the condition, within is a test again.
        assert_eq!(
            canonical("count(calls where (a or b within 1d)) > 0"),
            "count(calls where a or (b within 1d)) > 0"
        );
    }

    #[test]
    fn aggregates_nest_inside_conditions() {
        let text = "count(interactions within 30d where sum(purchases.amount within 7d where currency = \"EUR\") > 10 and kind = \"call\") > 1";
        assert_eq!(canonical(text), text);
        let text = "count(purchases where count(emails where (x within 1d)) > 0) = 0";
        assert_eq!(canonical(text), text);
    }

    #[test]
    fn the_module_example_parses() {
        let expr = ok(r#"stage = "customer" and "vip" in tags"#);
        assert!(matches!(expr, Expr::And(ref parts) if parts.len() == 2));
        assert_eq!(ok(&expr.to_string()), expr);
        assert_eq!(
            canonical(r#"country = "SI" and "vip" in tags"#),
            r#"country = "SI" and "vip" in tags"#
        );
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let text = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(ok(&text), truth("x"));
        let text = format!("{}x", "not ".repeat(MAX_DEPTH));
        let expr = ok(&text);
        assert_eq!(expr.to_string(), text);
        let mut text = "x".to_string();
        for _ in 0..MAX_DEPTH {
            text = format!("days_since({text})");
        }
        assert_eq!(canonical(&text), text);
    }

    #[test]
    fn a_parsed_tree_survives_a_json_round_trip() {
        let expr = ok(
            r#"sum(purchases.amount within 90d where direction = "inbound") >= 3 and (country not in ("SI", "HR") or last call < today - 1w) and not consented("x", "email") and days_since(created_at) > -1.5 and "vip" in tags"#,
        );
        let json = serde_json::to_string(&expr).expect("serialize");
        let back: Expr = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, expr);
        assert_eq!(back.to_string(), expr.to_string());
    }

    // --- errors --------------------------------------------------------------

    #[test]
    fn empty_or_blank_text_is_an_empty_expression() {
        assert_err("", 1, 1, "empty expression");
        assert_err(" \n\t ", 1, 1, "empty expression");
    }

    #[test]
    fn text_over_the_length_limit_is_rejected() {
        let (line, column, message, _) = err(&"x".repeat(MAX_TEXT_LEN + 1));
        assert_eq!(
            (line, column),
            (1, u32::try_from(MAX_TEXT_LEN).unwrap() + 1)
        );
        assert!(message.starts_with("expression is too long"), "{message}");
        assert!(parse(&format!("{}1", " ".repeat(MAX_TEXT_LEN - 1))).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for text in [
            "(".repeat(100_000),
            "not ".repeat(100_000),
            "(".repeat(MAX_TEXT_LEN),
            "not ".repeat(MAX_TEXT_LEN / 4),
            format!(
                "{}x{}",
                "(".repeat(MAX_DEPTH + 1),
                ")".repeat(MAX_DEPTH + 1)
            ),
            "count(purchases where ".repeat(2_000),
            "days_since(".repeat(10_000),
            "x = -".repeat(10_000),
        ] {
            assert!(parse(&text).is_err());
        }
        let (line, column, message, _) = err(&"(".repeat(10_000));
        assert_eq!((line, column), (1, u32::try_from(MAX_DEPTH).unwrap() + 1));
        assert!(
            message.starts_with("expression is nested too deeply"),
            "{message}"
        );
        let (_, column, message, _) = err(&"not ".repeat(16_000));
        assert_eq!(column, u32::try_from(MAX_DEPTH * 4).unwrap() + 1);
        assert!(
            message.starts_with("expression is nested too deeply"),
            "{message}"
        );
        let (_, _, message, _) = err(&"count(purchases where ".repeat(2_000));
        assert!(
            message.starts_with("expression is nested too deeply"),
            "{message}"
        );
    }

    #[test]
    fn trailing_tokens_are_reported() {
        assert_err(
            r#"country = "SI" "HR""#,
            1,
            16,
            "expected 'and', 'or' or the end, found a string",
        );
        assert_err(
            "a = 1 b",
            1,
            7,
            "expected 'and', 'or' or the end, found 'b'",
        );
        assert_err("a = 1)", 1, 6, "expected 'and', 'or' or the end, found ')'");
        assert_err(
            "a = b = c",
            1,
            7,
            "expected 'and', 'or' or the end, found '='",
        );
    }

    #[test]
    fn a_missing_value_names_what_came_before() {
        assert_err("(x = )", 1, 6, "expected a value after '=', found ')'");
        assert_err("x >=", 1, 5, "expected a value after '>=', found the end");
        assert_err("x = and", 1, 5, "expected a value after '=', found 'and'");
        assert_err("x = 30d", 1, 5, "expected a value after '=', found '30d'");
        assert_err("x = -y", 1, 6, "expected a number after '-', found 'y'");
        assert_err(
            r#"x = consented("a")"#,
            1,
            5,
            "expected a value after '=', found 'consented'",
        );
    }

    #[test]
    fn a_missing_condition_is_reported() {
        assert_err("()", 1, 2, "expected a condition after '(', found ')'");
        assert_err(
            "a and",
            1,
            6,
            "expected a condition after 'and', found the end",
        );
        assert_err(
            "a or\n",
            1,
            5,
            "expected a condition after 'or', found the end",
        );
        assert_err("= 1", 1, 1, "expected a condition, found '='");
        assert_err(
            "not",
            1,
            4,
            "expected a condition after 'not', found the end",
        );
        assert_err(
            "x and null",
            1,
            7,
            "expected a condition after 'and', found 'null'",
        );
    }

    #[test]
    fn an_unclosed_parenthesis_is_reported() {
        assert_err("(a = 1", 1, 7, "expected 'and', 'or' or ')', found the end");
        assert_err("(a b)", 1, 4, "expected 'and', 'or' or ')', found 'b'");
    }

    #[test]
    fn errors_on_later_lines_report_their_line_and_column() {
        let text = "country = \"SI\"\n  and stage = \n  )";
        assert_err(text, 3, 3, "expected a value after '=', found ')'");
        let text = "a = 1 and\n\n   cnt(purchases) > 1";
        let (line, column, message, suggestion) = err(text);
        assert_eq!((line, column), (3, 4));
        assert_eq!(message, "unknown function 'cnt'");
        assert_eq!(suggestion.as_deref(), Some("count"));
        let error = parse(text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 3, column 4: unknown function 'cnt' (did you mean 'count'?)"
        );
        // Columns count characters, not bytes.
        assert_err(
            "naziv = \"čšž\" čč",
            1,
            15,
            "expected 'and', 'or' or the end, found 'č'",
        );
    }

    #[test]
    fn unknown_functions_are_named_with_a_suggestion() {
        let (line, column, message, suggestion) = err("x and summ(purchases.amount) > 1");
        assert_eq!(
            (line, column, message.as_str()),
            (1, 7, "unknown function 'summ'")
        );
        assert_eq!(suggestion.as_deref(), Some("sum"));
        let (_, _, message, suggestion) = err("in_segmnt(\"a\")");
        assert_eq!(message, "unknown function 'in_segmnt'");
        assert_eq!(suggestion.as_deref(), Some("in_segment"));
        let (_, _, message, suggestion) = err("attr.plan(1)");
        assert_eq!(message, "unknown function 'attr.plan'");
        assert_eq!(suggestion, None);
        assert_err(
            "count purchases > 1",
            1,
            7,
            "expected '(' after 'count', found 'purchases'",
        );
    }

    #[test]
    fn unknown_sources_and_measures_are_named_with_a_suggestion() {
        let (line, column, message, suggestion) = err("count(purchses) > 1");
        assert_eq!((line, column), (1, 7));
        assert_eq!(
            message,
            format!("unknown source 'purchses', expected {SOURCE_LIST}")
        );
        assert_eq!(suggestion.as_deref(), Some("purchases"));
        let (_, column, message, suggestion) = err("last meetng < now");
        assert_eq!(column, 6);
        assert!(message.starts_with("unknown source 'meetng'"), "{message}");
        assert_eq!(suggestion.as_deref(), Some("meeting"));
        let (_, column, message, suggestion) = err("sum(purchases.amout) > 1");
        assert_eq!(column, 15);
        assert_eq!(
            message,
            "unknown measure 'amout', expected amount, quantity or score"
        );
        assert_eq!(suggestion.as_deref(), Some("amount"));
        assert_err(
            "count() > 1",
            1,
            7,
            "expected an interaction source such as purchases after '(', found ')'",
        );
        assert_err(
            "sum(purchases.) > 1",
            1,
            15,
            "expected amount, quantity or score after '.', found ')'",
        );
    }

    #[test]
    fn count_takes_no_measure_and_the_others_need_one() {
        assert_err(
            "count(purchases.amount) > 1",
            1,
            16,
            "count takes no measure, found '.amount': use sum, avg, min or max for it",
        );
        assert_err(
            "avg(purchases within 7d) > 1",
            1,
            15,
            "avg needs a measure: expected '.amount', '.quantity' or '.score' after 'purchases', found 'within'",
        );
        assert_err(
            "max(calls)",
            1,
            10,
            "max needs a measure: expected '.amount', '.quantity' or '.score' after 'calls', found ')'",
        );
    }

    #[test]
    fn aggregate_clauses_are_checked() {
        assert_err(
            "count(purchases x) > 1",
            1,
            17,
            "expected 'within', 'where' or ')' after 'purchases', found 'x'",
        );
        assert_err(
            "count(purchases where a = 1 b) > 1",
            1,
            29,
            "expected 'and', 'or', 'within' or ')' after '1', found 'b'",
        );
        assert_err(
            "count(purchases within 1d within 2d)",
            1,
            27,
            "expected 'where' or ')' after '1d', found 'within'",
        );
        assert_err(
            "count(purchases within 1d where x within 2d)",
            1,
            35,
            "expected 'and', 'or' or ')' after 'x', found 'within'; the aggregate already has a \
             window, so put a 'within' test of its condition in parentheses",
        );
        assert_err(
            "count(purchases where)",
            1,
            22,
            "expected a condition after 'where', found ')'",
        );
        assert_err(
            "count(purchases",
            1,
            16,
            "expected 'within', 'where' or ')' after 'purchases', found the end",
        );
    }

    #[test]
    fn windows_must_be_positive_durations() {
        let message = "a window must be a positive length of time, e.g. 30d";
        assert_err("x within -5d", 1, 10, message);
        assert_err("x within 0d", 1, 10, message);
        assert_err("count(calls within last 0w) > 1", 1, 25, message);
        assert_err(
            "x within 30",
            1,
            10,
            "expected a duration such as 30d after 'within', found '30'",
        );
        assert_err(
            "x within next",
            1,
            14,
            "expected a duration such as 30d after 'next', found the end",
        );
        assert_err(
            "x < now - 0d",
            1,
            11,
            "an offset must be a positive length of time, e.g. 30d",
        );
        assert_err(
            "x < now + x",
            1,
            11,
            "expected a duration such as 30d after '+', found 'x'",
        );
        assert_err(
            "x within 100001d",
            1,
            10,
            "'100001d' is too long: a duration is at most 100000 hours, days or weeks",
        );
        assert_err(
            "x within 99999999999999999999999d",
            1,
            10,
            "'99999999999999999999999d' is too long: a duration is at most 100000 hours, days or weeks",
        );
    }

    #[test]
    fn months_and_years_are_refused() {
        for (text, found) in [
            ("x within 3m", "3m"),
            ("x within 2mo", "2mo"),
            ("x within 1y", "1y"),
            ("x < now - 2Years", "2Years"),
        ] {
            let (_, _, message, _) = err(text);
            assert_eq!(
                message,
                format!(
                    "months and years vary in length: use d or w (e.g. 30d, 52w), found '{found}'"
                )
            );
        }
        assert_err(
            "x within 1.5d",
            1,
            10,
            "a duration is a whole number of hours, days or weeks, found '1.5d'",
        );
        assert_err(
            "x = 1e5",
            1,
            5,
            "expected a number or a duration such as 30d, found '1e5'",
        );
    }

    #[test]
    fn numbers_must_be_finite() {
        let text = format!("x = {}", "9".repeat(400));
        let (_, column, message, _) = err(&text);
        assert_eq!(column, 5);
        assert!(message.starts_with("number '999"), "{message}");
        assert!(message.ends_with("…' is too large"), "{message}");
    }

    #[test]
    fn string_mistakes_are_reported_where_they_are() {
        assert_err(
            "x = 1 and\ny = 'SI'",
            2,
            5,
            "strings are written in double quotes, found a single-quoted string",
        );
        assert_err(
            "a = 1 and\n  name = \"Ana",
            2,
            10,
            "unterminated string: the closing '\"' is missing",
        );
        assert_err(
            "name = \"Ana\nand x",
            1,
            8,
            "unterminated string: the closing '\"' is missing",
        );
        assert_err(
            "name = \"a\\",
            1,
            8,
            "unterminated string: the closing '\"' is missing",
        );
        assert_err(
            r#"name = "a\qb""#,
            1,
            10,
            r#"unknown escape '\q' in a string: use \", \\, \n, \t or \u{…}"#,
        );
        let bad = "invalid escape: expected \\u{…} with 1 to 6 hex digits of a Unicode character";
        assert_err(r#"x = "\u{}""#, 1, 6, bad);
        assert_err(r#"x = "\u{D800}""#, 1, 6, bad);
        assert_err(r#"x = "\u{1234567}""#, 1, 6, bad);
        assert_err(r#"x = "\u0041""#, 1, 6, bad);
        assert_err(
            r#"x contains 5"#,
            1,
            12,
            "expected a string after 'contains', found '5'",
        );
        // The first mistake in reading order is reported.
        assert_err("x = = 'a'", 1, 5, "expected a value after '=', found '='");
    }

    #[test]
    fn stray_characters_are_reported_with_the_keyword_meant() {
        let (line, column, message, suggestion) = err("a && b");
        assert_eq!((line, column), (1, 3));
        assert_eq!(message, "expected 'and', 'or' or the end, found '&&'");
        assert_eq!(suggestion.as_deref(), Some("and"));
        let (_, _, _, suggestion) = err("a || b");
        assert_eq!(suggestion.as_deref(), Some("or"));
        let (_, _, message, suggestion) = err("!a");
        assert_eq!(message, "expected a condition, found '!'");
        assert_eq!(suggestion.as_deref(), Some("not"));
        let (_, column, message, suggestion) = err("x = #");
        assert_eq!(column, 5);
        assert_eq!(message, "expected a value after '=', found '#'");
        assert_eq!(suggestion, None);
        assert_err(
            "prénom = 1",
            1,
            3,
            "expected 'and', 'or' or the end, found 'é'",
        );
    }

    #[test]
    fn predicate_operators_require_their_parts() {
        assert_err("x in tags", 1, 6, "expected '(' after 'in', found 'tags'");
        assert_err(
            r#""vip" in 5"#,
            1,
            10,
            "expected '(' or a list field such as tags after 'in', found '5'",
        );
        assert_err(
            "x in ()",
            1,
            7,
            "expected a string, number, true or false after '(', found ')'",
        );
        assert_err(
            r#"x in ("a",)"#,
            1,
            11,
            "expected a string, number, true or false after ',', found ')'",
        );
        assert_err(
            r#"x in ("a" "b")"#,
            1,
            11,
            "expected ',' or ')' after a string, found a string",
        );
        assert_err(
            "x in (y)",
            1,
            7,
            "expected a string, number, true or false after '(', found 'y'",
        );
        assert_err("x not = 1", 1, 7, "expected 'in' after 'not', found '='");
        assert_err(
            "x is 1",
            1,
            6,
            "expected 'not', 'null' or 'empty' after 'is', found '1'",
        );
        assert_err(
            "x is not",
            1,
            9,
            "expected 'null' or 'empty' after 'not', found the end",
        );
        assert_err(
            r#"x starts "a""#,
            1,
            10,
            "expected 'with' after 'starts', found a string",
        );
        assert_err(
            r#"x ends with y"#,
            1,
            13,
            "expected a string after 'with', found 'y'",
        );
        assert_err(
            "consented()",
            1,
            11,
            "expected a string after '(', found ')'",
        );
        assert_err(
            r#"consented("a" "b")"#,
            1,
            15,
            "expected ',' or ')' after a string, found a string",
        );
        assert_err(
            r#"consented("a", "b", "c")"#,
            1,
            19,
            "expected ')' after a string, found ','",
        );
        assert_err(
            r#"in_segment("a", "b")"#,
            1,
            15,
            "expected ')' after a string, found ','",
        );
        assert_err(
            "days_since(x",
            1,
            13,
            "expected ')' after 'x', found the end",
        );
        assert_err("attr.", 1, 6, "expected a name after '.', found the end");
    }

    #[test]
    fn parse_errors_display_their_position() {
        let error = parse("x = ").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1, column 4: expected a value after '=', found the end"
        );
    }

    // --- properties ------------------------------------------------------------

    fn arb_name_part() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,7}"
    }

    fn arb_field() -> impl Strategy<Value = Field> {
        (
            arb_name_part().prop_filter("not a reserved word", |s| !is_reserved(s)),
            prop::collection::vec(arb_name_part(), 0..3),
        )
            .prop_map(|(first, rest)| Field {
                path: std::iter::once(first).chain(rest).collect(),
                span: Span::default(),
            })
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z \"\\\\\n\t\r\u{0}é€😀{}]{0,8}",]
    }

    fn arb_number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |n| n.is_finite()),
            (-1000i32..1000).prop_map(f64::from),
            (-1000i32..1000).prop_map(|n| f64::from(n) / 100.0),
        ]
    }

    fn arb_literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            arb_text().prop_map(Literal::String),
            arb_number().prop_map(Literal::Number),
            any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn arb_duration() -> impl Strategy<Value = Duration> {
        (
            1..=Duration::MAX_AMOUNT,
            prop_oneof![
                Just(DurationUnit::Hours),
                Just(DurationUnit::Days),
                Just(DurationUnit::Weeks)
            ],
        )
            .prop_map(|(amount, unit)| Duration { amount, unit })
    }

    fn arb_window() -> impl Strategy<Value = Window> {
        (any::<bool>(), arb_duration()).prop_map(|(future, length)| Window {
            direction: if future {
                Direction::Future
            } else {
                Direction::Past
            },
            length,
        })
    }

    fn arb_offset() -> impl Strategy<Value = Option<Offset>> {
        prop::option::of(
            (any::<bool>(), arb_duration())
                .prop_map(|(negative, length)| Offset { negative, length }),
        )
    }

    fn arb_source() -> impl Strategy<Value = Source> {
        prop::sample::select(SOURCES.to_vec()).prop_map(|(plural, singular)| {
            if plural == "interactions" {
                Source::All
            } else {
                Source::Kind(singular.to_string())
            }
        })
    }

    fn arb_leaf_operand() -> BoxedStrategy<Operand> {
        let simple = prop_oneof![
            3 => arb_field().prop_map(Operand::Field),
            3 => arb_literal().prop_map(|l| Operand::Literal { value: l, span: Span::default() }),
            1 => (any::<bool>(), arb_source()).prop_map(|(first, source)| Operand::Event {
                which: if first { Which::First } else { Which::Last },
                source,
                span: Span::default(),
            }),
            1 => arb_offset().prop_map(Operand::Now),
            1 => arb_offset().prop_map(Operand::Today),
        ];
        simple
            .prop_recursive(2, 4, 1, |inner| {
                inner.prop_map(|o| Operand::DaysSince {
                    of: Box::new(o),
                    span: Span::default(),
                })
            })
            .boxed()
    }

    fn arb_aggregate(condition: BoxedStrategy<Expr>) -> impl Strategy<Value = Aggregate> {
        (
            prop_oneof![
                Just(AggregateFn::Count),
                Just(AggregateFn::Sum),
                Just(AggregateFn::Avg),
                Just(AggregateFn::Min),
                Just(AggregateFn::Max)
            ],
            arb_source(),
            prop_oneof![
                Just(Measure::Amount),
                Just(Measure::Quantity),
                Just(Measure::Score)
            ],
            prop::option::of(arb_window()),
            prop::option::of(condition),
        )
            .prop_map(|(function, source, measure, window, condition)| Aggregate {
                function,
                source,
                measure: (function != AggregateFn::Count).then_some(measure),
                window,
                condition: condition.map(Box::new),
                span: Span::default(),
            })
    }

    fn arb_predicate(operand: BoxedStrategy<Operand>) -> BoxedStrategy<Expr> {
        let compare_op = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge)
        ];
        let text_op = prop_oneof![
            Just(TextOp::Contains),
            Just(TextOp::StartsWith),
            Just(TextOp::EndsWith)
        ];
        prop_oneof![
            3 => (operand.clone(), compare_op, operand.clone())
                .prop_map(|(left, op, right)| Expr::Compare { left, op, right }),
            1 => (operand.clone(), prop::collection::vec(arb_literal(), 1..4), any::<bool>())
                .prop_map(|(operand, values, negated)| Expr::InList {
                    operand,
                    values,
                    negated,
                    span: Span::default()
                }),
            1 => (arb_field(), arb_literal(), any::<bool>()).prop_map(|(list, value, negated)| {
                Expr::Has { list, value, negated, span: Span::default() }
            }),
            1 => (operand.clone(), text_op, arb_text()).prop_map(|(operand, op, pattern)| {
                Expr::Text { operand, op, pattern, span: Span::default() }
            }),
            1 => (operand.clone(), any::<bool>(), any::<bool>()).prop_map(
                |(operand, negated, empty)| if empty {
                    Expr::IsEmpty { operand, negated }
                } else {
                    Expr::IsNull { operand, negated }
                }
            ),
            2 => (operand.clone(), arb_window())
                .prop_map(|(operand, window)| Expr::Within { operand, window }),
            1 => (arb_text(), prop::option::of(arb_text())).prop_map(|(purpose, channel)| {
                Expr::Consented { purpose, channel, span: Span::default() }
            }),
            1 => arb_text().prop_map(|name| Expr::InSegment { name, span: Span::default() }),
            2 => operand.prop_map(Expr::Truth),
        ]
        .boxed()
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        arb_predicate(arb_leaf_operand()).prop_recursive(5, 48, 4, |inner| {
            let operand = prop_oneof![
                2 => arb_leaf_operand(),
                1 => arb_aggregate(inner.clone())
                    .prop_map(|a| Operand::Aggregate(Box::new(a))),
                1 => arb_aggregate(inner.clone()).prop_map(|a| Operand::DaysSince { of: Box::new(Operand::Aggregate(Box::new(a))), span: Span::default() }),
            ]
            .boxed();
            prop_oneof![
                2 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                2 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                1 => inner.prop_map(|e| Expr::Not(Box::new(e))),
                2 => arb_predicate(operand),
            ]
        })
    }

    /// Texts made of the language's own words, to reach deep into the parser.
    fn arb_token_soup() -> impl Strategy<Value = String> {
        const WORDS: &[&str] = &[
            "(",
            ")",
            "(",
            ")",
            ",",
            ".",
            "=",
            "!=",
            "<>",
            "<",
            ">=",
            "-",
            "+",
            "and",
            "or",
            "not",
            "not",
            "in",
            "is",
            "null",
            "empty",
            "contains",
            "starts with",
            "ends",
            "with",
            "within",
            "last",
            "next",
            "first",
            "where",
            "true",
            "false",
            "now",
            "today",
            "x",
            "attr.plan",
            "tags",
            "count(",
            "sum(",
            "avg(",
            "days_since(",
            "consented(",
            "in_segment(",
            "purchases",
            "purchase",
            "call",
            ".amount",
            ".score",
            "\"a\"",
            "\"\\u{e9}\\\"\"",
            "5",
            "-1.5",
            "0",
            "30d",
            "12h",
            "0d",
            "3mo",
            "'x'",
            "\"open",
            "&&",
            "#",
            "\n",
        ];
        prop::collection::vec(prop::sample::select(WORDS), 0..24).prop_map(|words| words.join(" "))
    }

    #[test]
    fn printed_trees_parse_back_to_the_same_tree() {
        // Generating nested trees takes more stack than a test thread has
        // in unoptimized builds; the parser itself does not need it.
        let run = || {
            let mut runner =
                proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
            let result = runner.run(&arb_expr(), |expr| {
                let text = expr.to_string();
                let parsed = parse(&text);
                prop_assert!(parsed.is_ok(), "{text:?}: {:?}", parsed.err());
                let parsed = parsed.unwrap();
                prop_assert_eq!(&parsed, &expr, "{}", text);
                prop_assert_eq!(parsed.to_string(), text);
                Ok(())
            });
            if let Err(failure) = result {
                panic!("{failure}");
            }
        };
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(run)
            .expect("spawn")
            .join()
            .expect("the round trip holds");
    }

    #[test]
    fn the_deepest_accepted_nesting_parses_on_a_default_thread_stack() {
        let mut text = "x".to_string();
        for i in 0..MAX_DEPTH {
            text = if i % 2 == 0 {
                format!("count(purchases where {text} or y) > 0")
            } else {
                format!("days_since(last call) > 1 and sum(calls.score where ({text})) > 0")
            };
        }
        // The parentheses around the inner condition count too.
        assert!(parse(&text).is_err());
        let mut text = "x".to_string();
        for _ in 0..MAX_DEPTH {
            text = format!("count(purchases where {text} or y) > 0");
        }
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let expr = parse(&text).expect("parses");
                assert_eq!(expr.to_string(), text);
                assert_eq!(parse(&expr.to_string()).expect("parses again"), expr);
            })
            .expect("spawn");
        worker.join().expect("no stack overflow");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            if let Ok(expr) = parse(&text) {
                prop_assert_eq!(parse(&expr.to_string()).ok(), Some(expr));
            }
        }

        #[test]
        fn texts_of_language_words_never_panic_and_round_trip(text in arb_token_soup()) {
            match parse(&text) {
                Ok(expr) => {
                    let printed = expr.to_string();
                    let again = parse(&printed);
                    prop_assert!(again.is_ok(), "{text:?} printed as {printed:?}: {:?}", again.err());
                    prop_assert_eq!(again.unwrap(), expr);
                }
                Err(Error::Parse { line, column, message, .. }) => {
                    prop_assert!(line >= 1 && column >= 1);
                    prop_assert!(!message.is_empty());
                }
                Err(other) => prop_assert!(false, "not a parse error: {other}"),
            }
        }
    }
}
