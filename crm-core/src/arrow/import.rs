//! Importing customers and interactions from Arrow record batches.
//!
//! Each row's cells become the same record of field → JSON value that the
//! record, CSV and NDJSON imports read, so every field is validated by the
//! same code. The conversion runs on the import's validation thread: a row
//! travels as its batch (shared) and its index.
//!
//! How cells become values:
//!
//! * null cells (and columns of the Null type) are absent fields, like empty
//!   CSV cells;
//! * text (`Utf8`, `LargeUtf8`, `Utf8View`, dictionaries of them) is text;
//!   binary columns are read as UTF-8 text (other bytes are a row error);
//! * integers, floats and booleans are numbers and booleans; NaN and ±inf
//!   are a row error (never "missing"); a float `amount` is read as its
//!   shortest round-trip decimal text (`12.99` is "12.99"), so an amount
//!   that can't be exact in its currency is refused, never rounded;
//! * decimals are exact decimal text for `amount`, numbers elsewhere;
//! * dates are `YYYY-MM-DD`; timestamps are instants (a timestamp without a
//!   time zone is taken as UTC); for `birth_date` and `attr.KEY` columns a
//!   time-zone-less timestamp at midnight is a date;
//! * lists are lists (`tags`, `emails`, `phones`).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::import::{
    ColumnMapping, FieldResult, ImportOptions, ImportReport, NumberedRow, ProgressFn, Target,
    customer_from_record, interaction_from_record, resolve_columns,
};

impl Crm {
    /// Imports customers from Arrow record batches (a DataFrame's columns).
    ///
    /// Columns are named like fields ([`CUSTOMER_FIELDS`](crate::import::CUSTOMER_FIELDS)
    /// and `attr.KEY`) or mapped to them by `mapping`; an unknown column is
    /// an error before anything is read. Everything else is as in
    /// [`Crm::import_customers_csv`]: one transaction, the mode, upsert and
    /// progress of `options`, the same validation. Rows are numbered from 1
    /// across all batches: row N is a DataFrame's N-th row (`df.iloc[N-1]`).
    /// The [module docs](crate::arrow) say how each Arrow type is read; a
    /// cell that can't be read (NaN, bytes that aren't UTF-8) is a row error
    /// naming its column.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use crm_core::arrow::arrow_array::{
    ///     ArrayRef, Float64Array, RecordBatch, RecordBatchIterator, StringArray,
    /// };
    /// use crm_core::import::{ColumnMapping, ImportOptions};
    /// use crm_core::Crm;
    ///
    /// let crm = Crm::open_in_memory()?;
    /// let batch = RecordBatch::try_from_iter([
    ///     ("name", Arc::new(StringArray::from(vec!["Ana Novak", "Bo Li"])) as ArrayRef),
    ///     ("E-mail", Arc::new(StringArray::from(vec![Some("ana@example.com"), None]))),
    ///     ("attr.ltv", Arc::new(Float64Array::from(vec![120.5, 80.0]))),
    /// ])
    /// .map_err(|e| crm_core::Error::Io(e.to_string()))?;
    /// let schema = batch.schema();
    /// let batches = RecordBatchIterator::new([Ok(batch)], schema);
    /// let mapping = ColumnMapping::default().map("email", "E-mail");
    /// let report =
    ///     crm.import_customers_arrow(batches, &mapping, &ImportOptions::default(), None)?;
    /// assert_eq!(report.inserted, 2);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn import_customers_arrow(
        &self,
        batches: impl RecordBatchReader,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = arrow_rows(batches, mapping, Target::Customers)?;
        self.import_customer_rows(
            rows,
            |row| customer_from_record(&row.record()?),
            options,
            progress,
        )
    }

    /// Imports interactions from Arrow record batches (a DataFrame's columns).
    ///
    /// Columns are named like fields ([`INTERACTION_FIELDS`](crate::import::INTERACTION_FIELDS))
    /// or mapped to them by `mapping`; everything else is as in
    /// [`Crm::import_customers_arrow`]. `amount` is in major units: as
    /// decimals it is exact, as floats it is read as the shortest decimal
    /// text that round-trips (`12.99`), and refused when that has more
    /// decimals than the currency allows.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use crm_core::arrow::arrow_array::{
    ///     ArrayRef, Float64Array, RecordBatch, RecordBatchIterator, StringArray,
    ///     TimestampMicrosecondArray,
    /// };
    /// use crm_core::import::{ColumnMapping, ImportOptions};
    /// use crm_core::{Crm, NewCustomer, TimelineQuery};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// let ana = crm.create_customer(NewCustomer {
    ///     name: Some("Ana Novak".into()),
    ///     emails: vec!["ana@example.com".into()],
    ///     ..Default::default()
    /// })?;
    /// let batch = RecordBatch::try_from_iter([
    ///     ("customer_email", Arc::new(StringArray::from(vec!["ana@example.com"])) as ArrayRef),
    ///     ("kind", Arc::new(StringArray::from(vec!["purchase"]))),
    ///     ("amount", Arc::new(Float64Array::from(vec![12.99]))),
    ///     ("currency", Arc::new(StringArray::from(vec!["EUR"]))),
    ///     // 2024-05-01T10:00:00Z; no time zone: read as UTC.
    ///     ("occurred_at", Arc::new(TimestampMicrosecondArray::from(vec![1_714_557_600_000_000]))),
    /// ])
    /// .map_err(|e| crm_core::Error::Io(e.to_string()))?;
    /// let schema = batch.schema();
    /// let batches = RecordBatchIterator::new([Ok(batch)], schema);
    /// let options = ImportOptions::default();
    /// crm.import_interactions_arrow(batches, &ColumnMapping::default(), &options, None)?;
    /// let timeline = crm.timeline(ana.id, &TimelineQuery::default())?;
    /// assert_eq!(timeline.items[0].amount_minor, Some(1299));
    /// assert_eq!(timeline.items[0].occurred_at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn import_interactions_arrow(
        &self,
        batches: impl RecordBatchReader,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        let rows = arrow_rows(batches, mapping, Target::Interactions)?;
        self.import_interaction_rows(
            rows,
            |row| interaction_from_record(&row.record()?),
            options,
            progress,
        )
    }
}

/// How a column's cells are read, beyond their Arrow type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A plain field.
    Plain,
    /// `amount`: floats and decimals as exact decimal text.
    Amount,
    /// `birth_date`: a time-zone-less midnight is a date.
    Date,
    /// An `attr.KEY` column: dates (and time-zone-less midnights) become
    /// date attributes.
    Attribute,
}

/// A column that feeds a field.
struct Column {
    /// Its position in the batches.
    index: usize,
    /// Its name in the batches (errors name it).
    name: String,
    /// The field it feeds.
    field: String,
    /// How its cells are read.
    reading: Reading,
    /// Its type once dictionaries are unpacked (batches are cast to it when
    /// it differs).
    plain: DataType,
}

/// One batch's columns, shared by its rows.
struct Cells {
    columns: Arc<[Column]>,
    arrays: Vec<ArrayRef>,
}

/// A row in flight: its batch and index.
struct ArrowRow {
    cells: Arc<Cells>,
    index: usize,
}

impl ArrowRow {
    /// The row as a record of field → value; a cell that can't be read is
    /// an error naming its column.
    fn record(&self) -> FieldResult<Map<String, Value>> {
        let mut record = Map::new();
        for (column, array) in self.cells.columns.iter().zip(&self.cells.arrays) {
            match cell(array.as_ref(), self.index, column.reading) {
                Ok(Some(value)) => {
                    record.insert(column.field.clone(), value);
                }
                Ok(None) => {}
                Err(reason) => return Err((column.name.clone(), reason)),
            }
        }
        Ok(record)
    }
}

/// Numbers the rows of `batches` from 1, after checking the schema: every
/// column must map to a field (or be ignored) and have a type that can be
/// read.
fn arrow_rows<R: RecordBatchReader>(
    batches: R,
    mapping: &ColumnMapping,
    target: Target,
) -> Result<impl Iterator<Item = Result<NumberedRow<ArrowRow>>>> {
    let schema = batches.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let fields = resolve_columns(&names, mapping, target)?;
    let mut columns = Vec::new();
    for (index, (arrow_field, field)) in schema.fields().iter().zip(fields).enumerate() {
        let Some(field) = field else { continue };
        let plain = plain_type(arrow_field.data_type());
        if let Err(reason) = check_type(&plain) {
            return Err(Error::validation(arrow_field.name(), reason));
        }
        let reading = match field.as_str() {
            "amount" => Reading::Amount,
            "birth_date" => Reading::Date,
            f if f.starts_with("attr.") => Reading::Attribute,
            _ => Reading::Plain,
        };
        columns.push(Column {
            index,
            name: arrow_field.name().clone(),
            field,
            reading,
            plain,
        });
    }
    let columns: Arc<[Column]> = columns.into();
    let mut batches = batches;
    let mut current: Option<(Arc<Cells>, usize)> = None;
    let mut row = 0_u64;
    Ok(std::iter::from_fn(move || {
        loop {
            if let Some((cells, index)) = &mut current {
                if *index < cells_len(cells) {
                    let item = ArrowRow {
                        cells: cells.clone(),
                        index: *index,
                    };
                    *index += 1;
                    row += 1;
                    return Some(Ok((row, Ok(item))));
                }
                current = None;
            }
            let batch = match batches.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(super::from_arrow(e))),
            };
            match prepare(&batch, &names, &columns) {
                Ok(cells) => current = Some((Arc::new(cells), 0)),
                Err(e) => return Some(Err(e)),
            }
        }
    }))
}

/// The number of rows of a batch's cells (a batch with no used columns still
/// has rows).
fn cells_len(cells: &Cells) -> usize {
    cells.arrays.first().map_or(0, |a| a.len())
}

/// A batch's used columns, dictionaries unpacked.
fn prepare(batch: &RecordBatch, names: &[String], columns: &Arc<[Column]>) -> Result<Cells> {
    let schema = batch.schema();
    let same = schema.fields().len() == names.len()
        && schema
            .fields()
            .iter()
            .zip(names)
            .all(|(f, n)| f.name() == n);
    if !same {
        return Err(Error::validation(
            "batches",
            "a record batch has other columns than the first",
        ));
    }
    let mut arrays = Vec::with_capacity(columns.len() + 1);
    for column in columns.iter() {
        let array = batch.column(column.index);
        if *array.data_type() == column.plain {
            arrays.push(array.clone());
        } else {
            let cast = arrow_cast::cast(array.as_ref(), &column.plain)
                .map_err(|e| Error::validation(&column.name, format!("can't be read: {e}")))?;
            arrays.push(cast);
        }
    }
    if arrays.is_empty() {
        // Rows with no used columns are still rows (each is read as an empty
        // record): keep the row count.
        arrays.push(Arc::new(arrow_array::NullArray::new(batch.num_rows())));
    }
    Ok(Cells {
        columns: columns.clone(),
        arrays,
    })
}

/// The type with dictionaries (also inside lists) replaced by their values.
fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::List(item) => DataType::List(plain_field(item)),
        DataType::LargeList(item) => DataType::LargeList(plain_field(item)),
        DataType::FixedSizeList(item, n) => DataType::FixedSizeList(plain_field(item), *n),
        other => other.clone(),
    }
}

fn plain_field(field: &Arc<Field>) -> Arc<Field> {
    let plain = plain_type(field.data_type());
    if plain == *field.data_type() {
        field.clone()
    } else {
        Arc::new(field.as_ref().clone().with_data_type(plain))
    }
}

/// Whether cells of this (plain) type can be read.
fn check_type(data_type: &DataType) -> std::result::Result<(), String> {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            if is_scalar(item.data_type()) {
                Ok(())
            } else {
                Err(format!(
                    "is a list of {}; only lists of text, numbers or booleans can be imported",
                    item.data_type()
                ))
            }
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            Err("holds times of day without a date; give timestamps, dates or text instead".into())
        }
        t if is_scalar(t) => Ok(()),
        t => Err(format!(
            "has type {t}, which can't be imported; give text, numbers, booleans, dates, \
             timestamps or lists of text"
        )),
    }
}

fn is_scalar(data_type: &DataType) -> bool {
    use DataType as D;
    matches!(
        data_type,
        D::Null
            | D::Boolean
            | D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::UInt8
            | D::UInt16
            | D::UInt32
            | D::UInt64
            | D::Float16
            | D::Float32
            | D::Float64
            | D::Decimal32(..)
            | D::Decimal64(..)
            | D::Decimal128(..)
            | D::Decimal256(..)
            | D::Utf8
            | D::LargeUtf8
            | D::Utf8View
            | D::Binary
            | D::LargeBinary
            | D::BinaryView
            | D::FixedSizeBinary(_)
            | D::Date32
            | D::Date64
            | D::Timestamp(..)
    )
}

/// Reads cell `i` of `array` (a type [`check_type`] accepts): `None` when
/// null, else its value; `Err` says why it can't be read.
fn cell(
    array: &dyn Array,
    i: usize,
    reading: Reading,
) -> std::result::Result<Option<Value>, String> {
    use DataType as D;
    let data_type = array.data_type();
    if *data_type == D::Null || array.is_null(i) {
        return Ok(None);
    }
    let value = match data_type {
        D::Utf8 => text(array.as_string::<i32>().value(i)),
        D::LargeUtf8 => text(array.as_string::<i64>().value(i)),
        D::Utf8View => text(array.as_string_view().value(i)),
        D::Binary => bytes(array.as_binary::<i32>().value(i))?,
        D::LargeBinary => bytes(array.as_binary::<i64>().value(i))?,
        D::BinaryView => bytes(array.as_binary_view().value(i))?,
        D::FixedSizeBinary(_) => bytes(array.as_fixed_size_binary().value(i))?,
        D::Boolean => Value::Bool(array.as_boolean().value(i)),
        D::Int8 => Value::from(array.as_primitive::<Int8Type>().value(i)),
        D::Int16 => Value::from(array.as_primitive::<Int16Type>().value(i)),
        D::Int32 => Value::from(array.as_primitive::<Int32Type>().value(i)),
        D::Int64 => Value::from(array.as_primitive::<Int64Type>().value(i)),
        D::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(i)),
        D::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(i)),
        D::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(i)),
        D::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(i)),
        // A narrower float reads as the decimal it prints as (0.1f32 is 0.1).
        D::Float16 => {
            let v = array.as_primitive::<Float16Type>().value(i);
            float(v.to_f64(), &v.to_string(), reading)?
        }
        D::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(i);
            float(f64::from(v), &v.to_string(), reading)?
        }
        D::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(i);
            float(v, &v.to_string(), reading)?
        }
        D::Decimal32(..) => decimal(
            &array.as_primitive::<Decimal32Type>().value_as_string(i),
            reading,
        ),
        D::Decimal64(..) => decimal(
            &array.as_primitive::<Decimal64Type>().value_as_string(i),
            reading,
        ),
        D::Decimal128(..) => decimal(
            &array.as_primitive::<Decimal128Type>().value_as_string(i),
            reading,
        ),
        D::Decimal256(..) => decimal(
            &array.as_primitive::<Decimal256Type>().value_as_string(i),
            reading,
        ),
        D::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(i);
            date(days_to_date(i64::from(days))?, reading)
        }
        D::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(i);
            date(days_to_date(ms.div_euclid(86_400_000))?, reading)
        }
        D::Timestamp(unit, zone) => {
            let (secs, nanos) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(i), 0_i64),
                TimeUnit::Millisecond => {
                    let v = array.as_primitive::<TimestampMillisecondType>().value(i);
                    (v.div_euclid(1_000), v.rem_euclid(1_000) * 1_000_000)
                }
                TimeUnit::Microsecond => {
                    let v = array.as_primitive::<TimestampMicrosecondType>().value(i);
                    (v.div_euclid(1_000_000), v.rem_euclid(1_000_000) * 1_000)
                }
                TimeUnit::Nanosecond => {
                    let v = array.as_primitive::<TimestampNanosecondType>().value(i);
                    (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000))
                }
            };
            let time = u32::try_from(nanos)
                .ok()
                .and_then(|n| DateTime::<Utc>::from_timestamp(secs, n))
                .ok_or("is a timestamp out of range")?;
            timestamp(time, zone.is_none(), reading)
        }
        D::List(_) => list(array.as_list::<i32>().value(i).as_ref())?,
        D::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref())?,
        D::FixedSizeList(..) => list(array.as_fixed_size_list().value(i).as_ref())?,
        other => return Err(format!("has type {other}, which can't be imported")),
    };
    Ok(Some(value))
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn bytes(b: &[u8]) -> std::result::Result<Value, String> {
    std::str::from_utf8(b)
        .map(text)
        .map_err(|_| "is not valid UTF-8".to_string())
}

/// A float: NaN and ±inf are errors; an amount is its decimal text; a whole
/// number is an integer (a pandas integer column with gaps is floats).
fn float(v: f64, shown: &str, reading: Reading) -> std::result::Result<Value, String> {
    if !v.is_finite() {
        return Err(format!("must be a finite number (got {v})"));
    }
    if reading == Reading::Amount {
        return Ok(Value::String(shown.to_string()));
    }
    // Parsing the printed decimal undoes the widening of a narrower float.
    let v: f64 = shown.parse().unwrap_or(v);
    Ok(number(v))
}

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// A decimal: exact text for an amount, else a number.
fn decimal(shown: &str, reading: Reading) -> Value {
    if reading == Reading::Amount {
        return Value::String(shown.to_string());
    }
    match shown.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => shown
            .parse::<f64>()
            .map(number)
            .unwrap_or_else(|_| Value::String(shown.to_string())),
    }
}

fn days_to_date(days: i64) -> std::result::Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::try_days(days)?))
        .ok_or_else(|| "is a date out of range".to_string())
}

/// A date: `YYYY-MM-DD`, or a date attribute.
fn date(d: NaiveDate, reading: Reading) -> Value {
    let shown = d.format("%Y-%m-%d").to_string();
    if reading == Reading::Attribute {
        let mut object = Map::new();
        object.insert("date".into(), Value::String(shown));
        Value::Object(object)
    } else {
        Value::String(shown)
    }
}

/// A timestamp: RFC 3339 in UTC; a time-zone-less midnight is a date where a
/// date is wanted.
fn timestamp(time: DateTime<Utc>, naive: bool, reading: Reading) -> Value {
    let wants_date = matches!(reading, Reading::Date | Reading::Attribute);
    if wants_date && naive && time.time() == chrono::NaiveTime::MIN {
        return date(time.date_naive(), reading);
    }
    Value::String(time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A list's values (nulls left out).
fn list(values: &dyn Array) -> std::result::Result<Value, String> {
    let mut items = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        if let Some(v) = cell(values, i, Reading::Plain)? {
            items.push(v);
        }
    }
    Ok(Value::Array(items))
}
