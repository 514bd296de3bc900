//! Bulk import of customers and interactions: from Rust values, CSV and
//! NDJSON, or any source of JSON-like records (the Python binding feeds dicts
//! through the same path).
//!
//! An import runs in one transaction. In [`ImportMode::AllOrNothing`] the
//! first bad row stops it and nothing is written ([`Error::InvalidRow`] names
//! the row, field and reason). In [`ImportMode::SkipInvalid`] each bad row is
//! reported in the [`ImportReport`] and every good row is applied; each row is
//! applied whole or not at all. A storage failure rolls back the whole import
//! in both modes.
//!
//! ```
//! use crm_core::{Crm, import::{ColumnMapping, ImportMode, ImportOptions}};
//! let crm = Crm::open_in_memory()?;
//! let csv = "name,email,tags\nAna Novak,ana@example.com,vip;newsletter\nBad Row,not-an-email,\n";
//! let options = ImportOptions { mode: ImportMode::SkipInvalid, ..Default::default() };
//! let report = crm.import_customers_csv(csv.as_bytes(), &ColumnMapping::default(), &options, None)?;
//! assert_eq!(report.inserted, 1);
//! assert_eq!(report.errors[0].row, 2);
//! assert_eq!(report.errors[0].field, "emails[0]");
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::crm::{Crm, upsert_tracked};
use crate::db::{self, Bulk};
use crate::error::{Error, Result};
use crate::model::change::EntityKind;
use crate::model::customer::{Address, AttributeValue, Customer, CustomerKind, NewCustomer};
use crate::model::ids::{CustomerId, InteractionId};
use crate::model::interaction::{CustomerRef, Direction, InteractionKind, NewInteraction};
use crate::model::normalize;

/// What to do with bad rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// The first bad row aborts the import; nothing is written.
    #[default]
    AllOrNothing,
    /// Bad rows are reported and skipped; good rows are applied.
    SkipInvalid,
}

/// How to import.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportOptions {
    /// What to do with bad rows.
    pub mode: ImportMode,
    /// Customers only: update the customer a row matches (by external id,
    /// else email) instead of rejecting it as a conflict.
    pub upsert: bool,
    /// At most this many row errors are kept in the report (all are counted).
    pub max_errors: usize,
    /// The progress callback is called every this many rows (and at the end).
    pub progress_every: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::AllOrNothing,
            upsert: false,
            max_errors: 1_000,
            progress_every: 10_000,
        }
    }
}

/// A rejected row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// 1-based row number (CSV: data rows after the header; NDJSON: lines).
    pub row: u64,
    /// The field or column that was wrong (empty when the whole row was).
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

/// How far an import has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// Rows read so far.
    pub rows: u64,
    /// Rows applied so far.
    pub applied: u64,
    /// Rows rejected so far.
    pub rejected: u64,
}

/// The outcome of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Rows read.
    pub rows: u64,
    /// New records created.
    pub inserted: u64,
    /// Existing customers updated (upsert only).
    pub updated: u64,
    /// Rows rejected (may exceed `errors.len()`).
    pub rejected: u64,
    /// The first [`ImportOptions::max_errors`] rejected rows.
    pub errors: Vec<RowError>,
}

/// A progress callback.
pub type ProgressFn<'a> = &'a mut dyn FnMut(&ImportProgress);

/// Maps fields to the columns (CSV headers, NDJSON keys) that hold them.
///
/// Columns named like a field need no mapping. `attr.KEY` columns become
/// custom attributes. Unknown columns are an error (a misspelled column
/// would otherwise be silently lost) unless listed in `ignore`. The
/// read-only columns of an export (`id`, `created_at`, `updated_at`) are
/// always ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnMapping {
    /// field → column.
    pub columns: BTreeMap<String, String>,
    /// Columns to skip.
    pub ignore: Vec<String>,
}

impl ColumnMapping {
    /// Adds `field ← column`.
    pub fn map(mut self, field: &str, column: &str) -> Self {
        self.columns.insert(field.to_string(), column.to_string());
        self
    }
}

/// The fields a customer row may have.
pub const CUSTOMER_FIELDS: &[&str] = &[
    "kind",
    "external_id",
    "name",
    "first_name",
    "last_name",
    "organization_id",
    "organization_external_id",
    "emails",
    "email",
    "phones",
    "phone",
    "addresses",
    "birth_date",
    "locale",
    "country",
    "tags",
    "attributes",
    "lifecycle_stage",
    "owner",
    "source",
];

/// The fields an interaction row may have (exactly one of `customer_id`,
/// `customer_external_id`, `customer_email`).
pub const INTERACTION_FIELDS: &[&str] = &[
    "customer_id",
    "customer_external_id",
    "customer_email",
    "kind",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "body",
    "amount",
    "amount_minor",
    "currency",
    "product",
    "quantity",
    "score",
    "metadata",
];

const EXPORT_ONLY: &[&str] = &["id", "created_at", "updated_at"];

/// Which record type a column list is for.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    Customers,
    Interactions,
}

impl Target {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Target::Customers => CUSTOMER_FIELDS,
            Target::Interactions => INTERACTION_FIELDS,
        }
    }
}

/// Resolves each source column to a field name (`None`: skip the column).
pub(crate) fn resolve_columns(
    columns: &[String],
    mapping: &ColumnMapping,
    target: Target,
) -> Result<Vec<Option<String>>> {
    for field in mapping.columns.keys() {
        let known = target.fields().contains(&field.as_str())
            || (matches!(target, Target::Customers) && field.starts_with("attr."));
        if !known {
            let hint = did_you_mean(field, target.fields());
            return Err(Error::validation(
                format!("mapping.{field}"),
                format!("unknown field{hint}"),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    columns
        .iter()
        .map(|col| {
            let field = if let Some((field, _)) = mapping.columns.iter().find(|(_, c)| *c == col) {
                Some(field.clone())
            } else if mapping.ignore.contains(col) || EXPORT_ONLY.contains(&col.as_str()) {
                None
            } else if target.fields().contains(&col.as_str())
                || (matches!(target, Target::Customers) && col.starts_with("attr."))
            {
                Some(col.clone())
            } else {
                let hint = did_you_mean(col, target.fields());
                return Err(Error::validation(
                    col,
                    format!("unknown column{hint}; map it to a field or list it in ignore"),
                ));
            };
            if let Some(f) = &field {
                if !seen.insert(f.clone()) {
                    return Err(Error::validation(col, "a second column for the same field"));
                }
            }
            Ok(field)
        })
        .collect()
}

/// " (did you mean 'x'?)" with the nearest of `names`, or nothing.
pub(crate) fn did_you_mean(word: &str, names: &[&str]) -> String {
    nearest(word, names)
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default()
}

/// The closest name within edit distance 2, for "did you mean" hints.
pub(crate) fn nearest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let word = word.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (distance(&word, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

// ----- reading fields of a record -----------------------------------------

pub(crate) type FieldResult<T> = std::result::Result<T, (String, String)>;

fn bad<T>(field: &str, reason: impl Into<String>) -> FieldResult<T> {
    Err((field.to_string(), reason.into()))
}

fn text(record: &Map<String, Value>, field: &str) -> FieldResult<Option<String>> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => bad(field, "must be text"),
    }
}

fn list(record: &Map<String, Value>, field: &str) -> FieldResult<Vec<String>> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split([';', '|'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => bad(field, "must be a list of text"),
            })
            .collect(),
        Some(_) => bad(field, "must be text or a list of text"),
    }
}

fn integer(record: &Map<String, Value>, field: &str) -> FieldResult<Option<i64>> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => bad(field, "must be a whole number"),
            },
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .or_else(|_| bad(field, "must be a whole number")),
        Some(_) => bad(field, "must be a whole number"),
    }
}

fn json_field(record: &Map<String, Value>, field: &str) -> FieldResult<Option<Value>> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .or_else(|_| bad(field, "must be valid JSON")),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn date(record: &Map<String, Value>, field: &str) -> FieldResult<Option<NaiveDate>> {
    match text(record, field)? {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Some)
            .or_else(|_| bad(field, "must be a date (YYYY-MM-DD)")),
    }
}

/// Reads a time: RFC 3339 (`2024-05-01T10:00:00Z`), a naive date-time taken
/// as UTC (`2024-05-01 10:00:00`), or a date (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn customer_id(field: &str, s: &str) -> FieldResult<CustomerId> {
    s.parse()
        .or_else(|_| bad(field, "not a valid id (expected a UUID)"))
}

/// A customer row before database lookups: the customer and, if the row names
/// its organization by external id, that id.
pub(crate) struct CustomerRow {
    pub customer: NewCustomer,
    pub organization_external_id: Option<String>,
}

/// Reads a customer from a record of field → value.
pub(crate) fn customer_from_record(record: &Map<String, Value>) -> FieldResult<CustomerRow> {
    let mut emails = list(record, "emails")?;
    emails.extend(text(record, "email")?);
    let mut phones = list(record, "phones")?;
    phones.extend(text(record, "phone")?);
    let mut attributes = BTreeMap::new();
    if let Some(v) = json_field(record, "attributes")? {
        attributes = serde_json::from_value(v).or_else(|_| {
            bad(
                "attributes",
                "must be an object of text, numbers, booleans and dates",
            )
        })?;
    }
    for (key, value) in record.iter().filter(|(k, _)| k.starts_with("attr.")) {
        let name = &key["attr.".len()..];
        let v = match value {
            Value::Null => continue,
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(s) => AttributeValue::Text(s.clone()),
            Value::Number(n) => AttributeValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Object(_) => serde_json::from_value(value.clone())
                .or_else(|_| bad(key, "must be text, a number, a boolean or a date"))?,
            Value::Array(_) => return bad(key, "must be text, a number, a boolean or a date"),
        };
        attributes.insert(name.to_string(), v);
    }
    let addresses: Vec<Address> = match json_field(record, "addresses")? {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v)
            .or_else(|_| bad("addresses", "must be a list of address objects"))?,
    };
    Ok(CustomerRow {
        customer: NewCustomer {
            kind: match text(record, "kind")? {
                Some(k) => CustomerKind::parse(&k)
                    .or_else(|_| bad("kind", "must be 'person' or 'organization'"))?,
                None => CustomerKind::Person,
            },
            external_id: text(record, "external_id")?,
            name: text(record, "name")?,
            first_name: text(record, "first_name")?,
            last_name: text(record, "last_name")?,
            // An external id names the organization in any CRM; an id only in
            // the one it came from, so the external id wins when both are given.
            organization_id: match text(record, "organization_external_id")? {
                Some(_) => None,
                None => text(record, "organization_id")?
                    .map(|s| customer_id("organization_id", &s))
                    .transpose()?,
            },
            emails,
            phones,
            addresses,
            birth_date: date(record, "birth_date")?,
            locale: text(record, "locale")?,
            country: text(record, "country")?,
            tags: list(record, "tags")?,
            attributes,
            lifecycle_stage: text(record, "lifecycle_stage")?,
            owner: text(record, "owner")?,
            source: text(record, "source")?,
        },
        organization_external_id: text(record, "organization_external_id")?,
    })
}

/// Reads an interaction from a record of field → value.
pub(crate) fn interaction_from_record(record: &Map<String, Value>) -> FieldResult<NewInteraction> {
    let refs = [
        text(record, "customer_id")?.map(|s| customer_id("customer_id", &s).map(CustomerRef::Id)),
        text(record, "customer_external_id")?.map(|s| Ok(CustomerRef::ExternalId(s))),
        text(record, "customer_email")?.map(|s| Ok(CustomerRef::Email(s))),
    ];
    let mut given = refs.into_iter().flatten();
    let customer = match (given.next(), given.next()) {
        (Some(r), None) => r?,
        (None, _) => {
            return bad(
                "customer_id",
                "missing (give customer_id, customer_external_id or customer_email)",
            );
        }
        (Some(_), Some(_)) => {
            return bad(
                "customer_id",
                "give only one of customer_id, customer_external_id, customer_email",
            );
        }
    };
    let kind = match text(record, "kind")? {
        Some(k) => InteractionKind::parse(&k).or_else(|e| match e {
            Error::Validation { reason, .. } => bad("kind", reason),
            _ => bad("kind", "is invalid"),
        })?,
        None => return bad("kind", "is required"),
    };
    let currency = text(record, "currency")?;
    let amount_minor = match (integer(record, "amount_minor")?, text(record, "amount")?) {
        (Some(m), _) => Some(m),
        (None, None) => None,
        (None, Some(a)) => {
            let Some(cur) = &currency else {
                return bad("currency", "is required when an amount is given");
            };
            Some(normalize::amount_to_minor(&a, cur).or_else(|r| bad("amount", r))?)
        }
    };
    let occurred_at = match text(record, "occurred_at")? {
        Some(s) => Some(parse_time(&s).ok_or_else(|| {
            (
                "occurred_at".to_string(),
                "must be a time (RFC 3339 or YYYY-MM-DD)".to_string(),
            )
        })?),
        None => None,
    };
    let score = integer(record, "score")?
        .map(|s| i32::try_from(s).or_else(|_| bad("score", "must be between 0 and 10")))
        .transpose()?;
    Ok(NewInteraction {
        customer,
        kind,
        channel: text(record, "channel")?,
        direction: text(record, "direction")?
            .map(|d| {
                Direction::parse(&d)
                    .or_else(|_| bad("direction", "must be 'inbound' or 'outbound'"))
            })
            .transpose()?,
        occurred_at,
        subject: text(record, "subject")?,
        body: text(record, "body")?,
        amount_minor,
        currency,
        product: text(record, "product")?,
        quantity: integer(record, "quantity")?,
        score,
        metadata: json_field(record, "metadata")?,
    })
}

// ----- sources --------------------------------------------------------------

/// Numbers records from 1; a record with a key that is no field is a row
/// error naming the key.
fn numbered_records(
    records: impl IntoIterator<Item = Map<String, Value>>,
    target: Target,
) -> impl Iterator<Item = Result<NumberedRecord>> {
    let mapping = ColumnMapping::default();
    records.into_iter().zip(1..).map(move |(record, row)| {
        let keys: Vec<String> = record.keys().cloned().collect();
        match resolve_columns(&keys, &mapping, target) {
            Ok(_) => Ok((row, Ok(record))),
            Err(Error::Validation { field, reason }) => Ok((row, Err((field, reason)))),
            Err(other) => Err(other),
        }
    })
}

/// A numbered record or a row-level error.
pub(crate) type NumberedRecord = NumberedRow<Map<String, Value>>;

/// Reads CSV into records keyed by field.
fn csv_records<R: Read>(
    reader: R,
    mapping: &ColumnMapping,
    target: Target,
) -> Result<impl Iterator<Item = Result<NumberedRecord>>> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = csv
        .byte_headers()
        .map_err(|e| Error::validation("header", csv_reason(&e)))?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            std::str::from_utf8(h)
                .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
                .map_err(|_| Error::validation(format!("header[{i}]"), "is not valid UTF-8"))
        })
        .collect::<Result<_>>()?;
    let fields = resolve_columns(&headers, mapping, target)?;
    let mut row = 0_u64;
    let mut record = csv::ByteRecord::new();
    Ok(std::iter::from_fn(move || {
        row += 1;
        match csv.read_byte_record(&mut record) {
            Ok(false) => None,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                Some(Err(Error::Io(csv_reason(&e))))
            }
            Err(e) => Some(Ok((row, Err((String::new(), csv_reason(&e)))))),
            Ok(true) => {
                if record.len() != headers.len() {
                    let reason = format!(
                        "has {} fields but the header has {}",
                        record.len(),
                        headers.len()
                    );
                    return Some(Ok((row, Err((String::new(), reason)))));
                }
                let mut map = Map::new();
                for (i, cell) in record.iter().enumerate() {
                    let Some(field) = &fields[i] else { continue };
                    match std::str::from_utf8(cell) {
                        Ok("") => {}
                        Ok(s) => {
                            map.insert(field.clone(), Value::String(s.to_string()));
                        }
                        Err(_) => {
                            return Some(Ok((
                                row,
                                Err((headers[i].clone(), "is not valid UTF-8".into())),
                            )));
                        }
                    }
                }
                Some(Ok((row, Ok(map))))
            }
        }
    }))
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.kind().to_string(),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".into(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("has {len} fields but the header has {expected_len}")
        }
        _ => "is not well-formed CSV".into(),
    }
}

/// Reads NDJSON (one JSON object per line; blank lines are skipped) into
/// records keyed by field.
fn ndjson_records<R: BufRead>(
    reader: R,
    mapping: &ColumnMapping,
    target: Target,
) -> impl Iterator<Item = Result<NumberedRecord>> {
    let mut lines = reader.split(b'\n');
    let mut row = 0_u64;
    let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mapping = mapping.clone();
    std::iter::from_fn(move || {
        loop {
            let line = match lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(Error::from(e))),
            };
            row += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let object: Map<String, Value> = match std::str::from_utf8(&line) {
                Err(_) => {
                    return Some(Ok((row, Err((String::new(), "is not valid UTF-8".into())))));
                }
                Ok(text) => match serde_json::from_str(text) {
                    Ok(o) => o,
                    Err(_) => {
                        return Some(Ok((
                            row,
                            Err((String::new(), "is not a JSON object".into())),
                        )));
                    }
                },
            };
            let mut map = Map::new();
            for (key, value) in object {
                let field = match resolved.get(&key) {
                    Some(f) => f.clone(),
                    None => match resolve_columns(std::slice::from_ref(&key), &mapping, target) {
                        Ok(mut f) => {
                            let f = f.pop().flatten();
                            resolved.insert(key.clone(), f.clone());
                            f
                        }
                        Err(Error::Validation { field, reason }) => {
                            return Some(Ok((row, Err((field, reason)))));
                        }
                        Err(e) => return Some(Err(e)),
                    },
                };
                if let Some(f) = field {
                    map.insert(f, value);
                }
            }
            return Some(Ok((row, Ok(map))));
        }
    })
}

// ----- the driver -------------------------------------------------------------

enum Applied {
    Inserted,
    Updated,
}

/// Rows travel between the reading thread and the validating thread in
/// batches of this many.
const BATCH: usize = 512;

fn worker_failed() -> Error {
    Error::Storage("the import's validation thread stopped".into())
}

/// Runs an import in one transaction, as a two-stage pipeline: the calling
/// thread reads rows and writes them to SQLite while a second thread
/// validates and normalizes the next batch (phone numbers, emails, amounts:
/// the CPU-heavy part), so a two-core machine does both at once. Search
/// indexing of new rows is deferred to one pass at the end.
#[allow(clippy::too_many_arguments)]
fn run<T: Send, P: Send>(
    crm: &Crm,
    records: impl Iterator<Item = Result<NumberedRow<T>>>,
    options: &ImportOptions,
    mut progress: Option<ProgressFn<'_>>,
    entity: EntityKind,
    bulk: bool,
    prepare: impl Fn(T) -> Result<P> + Sync,
    mut apply: impl FnMut(&rusqlite::Connection, &mut Option<Bulk>, P) -> Result<Applied>,
) -> Result<ImportReport> {
    let every = options.progress_every.max(1);
    let skip = options.mode == ImportMode::SkipInvalid;
    let report = crm.db.write(|tx| {
        let first_new_rowid = db::next_rowid(tx, entity)?;
        let mut state = bulk.then(Bulk::default);
        let mut report = ImportReport::default();
        std::thread::scope(|scope| -> Result<()> {
            let (to_worker, worker_in) = std::sync::mpsc::sync_channel::<Vec<NumberedRow<T>>>(2);
            let (worker_out, from_worker) =
                std::sync::mpsc::sync_channel::<Vec<(u64, Result<P>)>>(2);
            let prepare = &prepare;
            scope.spawn(move || {
                for batch in worker_in {
                    let prepared = batch
                        .into_iter()
                        .map(|(row, parsed)| {
                            let result = parsed
                                .map_err(|(field, reason)| Error::Validation { field, reason })
                                .and_then(|value| {
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        prepare(value)
                                    }))
                                    .unwrap_or_else(|_| {
                                        Err(Error::Storage(
                                            "internal error while validating a row".into(),
                                        ))
                                    })
                                });
                            (row, result)
                        })
                        .collect();
                    if worker_out.send(prepared).is_err() {
                        break;
                    }
                }
            });
            let mut records = records;
            let (mut in_flight, mut exhausted) = (0_usize, false);
            loop {
                while !exhausted && in_flight < 2 {
                    let mut batch = Vec::with_capacity(BATCH);
                    for item in records.by_ref() {
                        batch.push(item?);
                        if batch.len() == BATCH {
                            break;
                        }
                    }
                    exhausted = batch.len() < BATCH;
                    if batch.is_empty() {
                        break;
                    }
                    to_worker.send(batch).map_err(|_| worker_failed())?;
                    in_flight += 1;
                }
                if in_flight == 0 {
                    return Ok(());
                }
                let batch = from_worker.recv().map_err(|_| worker_failed())?;
                in_flight -= 1;
                for (row, prepared) in batch {
                    report.rows += 1;
                    let outcome = match prepared {
                        Err(e) => Err(e),
                        Ok(value) if skip => {
                            // A savepoint per row: a rejected row leaves nothing
                            // behind (not even an attribute definition it made).
                            tx.prepare_cached("SAVEPOINT import_row")?.execute([])?;
                            let result = apply(tx, &mut state, value);
                            if result.is_err() {
                                tx.prepare_cached("ROLLBACK TO import_row")?.execute([])?;
                                if let Some(b) = state.as_mut() {
                                    b.row_rolled_back();
                                }
                            }
                            tx.prepare_cached("RELEASE import_row")?.execute([])?;
                            result
                        }
                        Ok(value) => apply(tx, &mut state, value),
                    };
                    match outcome {
                        Ok(Applied::Inserted) => report.inserted += 1,
                        Ok(Applied::Updated) => report.updated += 1,
                        Err(e) => {
                            let (field, reason) = match e {
                                Error::Validation { field, reason }
                                | Error::Conflict { field, reason } => (field, reason),
                                Error::NotFound { entity } => {
                                    ("customer".to_string(), format!("{entity} not found"))
                                }
                                other => return Err(other),
                            };
                            if !skip {
                                return Err(Error::InvalidRow { row, field, reason });
                            }
                            report.rejected += 1;
                            if report.errors.len() < options.max_errors {
                                report.errors.push(RowError { row, field, reason });
                            }
                        }
                    }
                    if report.rows % every == 0 {
                        if let Some(p) = progress.as_mut() {
                            p(&ImportProgress {
                                rows: report.rows,
                                applied: report.inserted + report.updated,
                                rejected: report.rejected,
                            });
                        }
                    }
                }
            }
        })?;
        if bulk {
            db::finish_bulk(tx, &crm.context, entity, first_new_rowid)?;
        }
        Ok(report)
    })?;
    if let Some(p) = progress.as_mut() {
        p(&ImportProgress {
            rows: report.rows,
            applied: report.inserted + report.updated,
            rejected: report.rejected,
        });
    }
    Ok(report)
}

/// A customer row after validation, ready for the database.
pub(crate) enum PreparedCustomer {
    Insert(Box<Customer>, Option<String>),
    Upsert(Box<CustomerRow>),
}

/// A numbered row: the parsed value or the field and reason it was rejected.
pub(crate) type NumberedRow<T> = (u64, std::result::Result<T, (String, String)>);

impl Crm {
    fn prepare_customer(&self, row: CustomerRow, upsert_rows: bool) -> Result<PreparedCustomer> {
        if row.organization_external_id.is_some() && row.customer.kind == CustomerKind::Organization
        {
            return Err(Error::validation(
                "organization_external_id",
                "an organization can't belong to an organization",
            ));
        }
        if upsert_rows {
            return Ok(PreparedCustomer::Upsert(Box::new(row)));
        }
        let customer = self.normalizer.new_customer(&row.customer, Crm::now())?;
        Ok(PreparedCustomer::Insert(
            Box::new(customer),
            row.organization_external_id,
        ))
    }

    fn apply_customer(
        &self,
        tx: &rusqlite::Connection,
        bulk: Option<&mut Bulk>,
        prepared: PreparedCustomer,
    ) -> Result<Applied> {
        let organization = |ext: &str| -> Result<CustomerId> {
            db::customers::rowid_by_external_id(tx, ext.trim())?
                .map(|(_, id)| id)
                .ok_or_else(|| {
                    Error::validation(
                        "organization_external_id",
                        "no customer has this external id",
                    )
                })
        };
        match prepared {
            PreparedCustomer::Insert(mut customer, organization_external_id) => {
                if let Some(ext) = organization_external_id {
                    customer.organization_id = Some(organization(&ext)?);
                }
                let bulk_insert = bulk.is_some();
                let rowid = db::customers::insert(tx, &self.context, &mut customer, bulk)?;
                if !bulk_insert {
                    crate::rules::fire(self, tx, crate::rules::Event::CustomerCreated { rowid })?;
                }
                Ok(Applied::Inserted)
            }
            PreparedCustomer::Upsert(row) => {
                let mut new = row.customer;
                if let Some(ext) = row.organization_external_id {
                    new.organization_id = Some(organization(&ext)?);
                }
                let (done, rowid, changed) =
                    upsert_tracked(tx, &self.normalizer, &self.context, &new)?;
                if done.created {
                    crate::rules::fire(self, tx, crate::rules::Event::CustomerCreated { rowid })?;
                } else if !changed.is_empty() {
                    let fields = changed.iter().map(|f| f.to_string()).collect();
                    crate::rules::fire(
                        self,
                        tx,
                        crate::rules::Event::CustomerUpdated { rowid, fields },
                    )?;
                }
                Ok(if done.created {
                    Applied::Inserted
                } else {
                    Applied::Updated
                })
            }
        }
    }

    pub(crate) fn import_customer_rows<T: Send>(
        &self,
        rows: impl Iterator<Item = Result<NumberedRow<T>>>,
        to_row: impl Fn(T) -> FieldResult<CustomerRow> + Sync,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        // Changes made by an import say so (lifecycle transitions record it
        // as their cause).
        let importer = Crm {
            context: crate::model::change::ChangeContext {
                importing: true,
                ..self.context.clone()
            },
            ..self.clone()
        };
        // Rules that react to new customers see each row as it is written,
        // logged and indexed; without any, rows are written in bulk.
        let rules = self
            .db
            .read(|conn| crate::rules::engine::wants_created_customers(self, conn))?;
        run(
            &importer,
            rows,
            options,
            progress,
            EntityKind::Customer,
            // Upserts may touch a row twice in one import, so they log and
            // index each change as it happens.
            !options.upsert && !rules,
            |value| {
                let row =
                    to_row(value).map_err(|(field, reason)| Error::Validation { field, reason })?;
                importer.prepare_customer(row, options.upsert)
            },
            |tx, bulk, prepared| importer.apply_customer(tx, bulk.as_mut(), prepared),
        )
    }

    pub(crate) fn import_interaction_rows<T: Send>(
        &self,
        rows: impl Iterator<Item = Result<NumberedRow<T>>>,
        to_new: impl Fn(T) -> FieldResult<NewInteraction> + Sync,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        // Rules that react to interactions see each row as it is written
        // (with the customer's totals up to date); without any, rows are
        // written in bulk.
        let rules = self
            .db
            .read(|conn| crate::rules::engine::wants_interactions(self, conn))?;
        run(
            self,
            rows,
            options,
            progress,
            EntityKind::Interaction,
            !rules,
            |value| {
                let new =
                    to_new(value).map_err(|(field, reason)| Error::Validation { field, reason })?;
                let valid = new.validate(Crm::now())?;
                let customer = match new.customer {
                    CustomerRef::Email(e) => CustomerRef::Email(
                        normalize::email(&e).map_err(|r| Error::validation("customer_email", r))?,
                    ),
                    other => other,
                };
                Ok((customer, valid))
            },
            {
                // Exports and event logs list a customer's interactions
                // together: remember the last customer looked up.
                let mut last: Option<(CustomerRef, i64)> = None;
                move |tx, bulk, (customer, valid)| {
                    let rowid = match &last {
                        Some((seen, rowid)) if *seen == customer => *rowid,
                        _ => {
                            let (rowid, _) = db::interactions::resolve_customer(tx, &customer)?;
                            last = Some((customer, rowid));
                            rowid
                        }
                    };
                    db::interactions::insert(
                        tx,
                        &self.context,
                        rowid,
                        &valid,
                        InteractionId::new(),
                        Crm::now(),
                        bulk.is_some(),
                    )?;
                    if bulk.is_none() {
                        crate::rules::fire(
                            self,
                            tx,
                            crate::rules::Event::InteractionLogged {
                                customer_rowid: rowid,
                                kind: valid.kind.clone(),
                            },
                        )?;
                    }
                    Ok(Applied::Inserted)
                }
            },
        )
    }

    /// Imports customers given as values; rows are numbered from 1.
    pub fn import_customers(
        &self,
        customers: impl IntoIterator<Item = NewCustomer>,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = customers
            .into_iter()
            .zip(1..)
            .map(|(customer, row)| Ok((row, Ok(customer))));
        self.import_customer_rows(
            rows,
            |customer| {
                Ok(CustomerRow {
                    customer,
                    organization_external_id: None,
                })
            },
            options,
            progress,
        )
    }

    /// Imports customers from records of field → JSON value (the fields of
    /// [`CUSTOMER_FIELDS`] and `attr.KEY`); rows are numbered from 1.
    pub fn import_customer_records(
        &self,
        records: impl IntoIterator<Item = Map<String, Value>>,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = numbered_records(records, Target::Customers);
        self.import_customer_rows(
            rows,
            |record| customer_from_record(&record),
            options,
            progress,
        )
    }

    /// Imports customers from CSV with a header row.
    pub fn import_customers_csv<R: Read>(
        &self,
        reader: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = csv_records(reader, mapping, Target::Customers)?;
        self.import_customer_rows(
            rows,
            |record| customer_from_record(&record),
            options,
            progress,
        )
    }

    /// Imports customers from NDJSON (one object per line).
    pub fn import_customers_ndjson<R: BufRead>(
        &self,
        reader: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = ndjson_records(reader, mapping, Target::Customers);
        self.import_customer_rows(
            rows,
            |record| customer_from_record(&record),
            options,
            progress,
        )
    }

    /// Imports interactions given as values.
    pub fn import_interactions(
        &self,
        interactions: impl IntoIterator<Item = NewInteraction>,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = interactions
            .into_iter()
            .zip(1..)
            .map(|(i, row)| Ok((row, Ok(i))));
        self.import_interaction_rows(rows, Ok, options, progress)
    }

    /// Imports interactions from records of field → JSON value
    /// ([`INTERACTION_FIELDS`]).
    pub fn import_interaction_records(
        &self,
        records: impl IntoIterator<Item = Map<String, Value>>,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = numbered_records(records, Target::Interactions);
        self.import_interaction_rows(
            rows,
            |record| interaction_from_record(&record),
            options,
            progress,
        )
    }

    /// Imports interactions from CSV with a header row.
    pub fn import_interactions_csv<R: Read>(
        &self,
        reader: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = csv_records(reader, mapping, Target::Interactions)?;
        self.import_interaction_rows(
            rows,
            |record| interaction_from_record(&record),
            options,
            progress,
        )
    }

    /// Imports interactions from NDJSON (one object per line).
    pub fn import_interactions_ndjson<R: BufRead>(
        &self,
        reader: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = ndjson_records(reader, mapping, Target::Interactions);
        self.import_interaction_rows(
            rows,
            |record| interaction_from_record(&record),
            options,
            progress,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_columns_are_named_with_a_suggestion() {
        let err = resolve_columns(
            &["nmae".into()],
            &ColumnMapping::default(),
            Target::Customers,
        )
        .unwrap_err();
        assert!(err.to_string().contains("did you mean 'name'"), "{err}");
    }

    #[test]
    fn time_formats() {
        assert!(parse_time("2024-05-01T10:00:00+02:00").is_some());
        assert!(parse_time("2024-05-01 10:00:00").is_some());
        assert!(parse_time("2024-05-01").is_some());
        assert!(parse_time("01/05/2024").is_none());
    }
}
