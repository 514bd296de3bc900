//! Reading tables as Arrow record batches.
//!
//! A read is planned on a connection (the filter and segment compiled, the
//! attribute columns looked up), then one SQL statement is stepped and its
//! rows are decoded straight from SQLite's values into Arrow builders.
//!
//! For a file database a producer thread runs the whole read inside one read
//! transaction (one consistent snapshot) and hands batches to the
//! [`TableReader`] through a bounded channel, so decoding overlaps with the
//! consumer while memory stays bounded. A large interactions or consent
//! table is read by two such threads, each in its own read transaction,
//! taking alternate chunks of the rowid range; the reader hands their
//! batches on in storage order. Their snapshots are checked to be the same
//! one (the same head of the change log), else one thread reads it all.
//! An in-memory database has a single
//! connection, shared with writers: holding it across batches would block a
//! consumer that writes between batches, so it is read one batch at a time
//! (keyset pagination on the rowid), each batch in a read of its own.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db::{self, Database};
use crate::error::{Error, Result};
use crate::filter::compile::{self, Mode};
use crate::filter::{self, Expr, Span};
use crate::model::customer::AttributeType;
use crate::model::normalize;
use crate::segment::FilterRef;

/// A table of the CRM, as [`Crm::read_table`] reads it.
///
/// Every table is read in storage order (the order rows were written; for
/// scores, the customers' order). Times are
/// `Timestamp(Microsecond, "UTC")`; ids are `Utf8` in the canonical
/// hyphenated form the rest of the API prints; low-cardinality text is
/// `Dictionary(Int32, Utf8)` (categoricals in pandas and polars). A column is
/// null where the value is absent; columns marked *required* never are.
///
/// **customers**: `id` (required), `kind` (dict, required: `person` or
/// `organization`), `external_id`, `name` (required), `first_name`,
/// `last_name`, `organization_id`, `emails`, `phones` (`List<Utf8>`,
/// required, normalized forms), `addresses` (`Utf8`, a JSON array of
/// address objects, required), `birth_date` (`Date32`), `locale`, `country`
/// (dict), `tags` (`List<Utf8>`, required), `lifecycle_stage` (dict,
/// required), `owner`, `source` (dict), then one column `attr.<key>` per
/// attribute definition in key order, typed by its
/// [`AttributeType`](crate::AttributeType) (text `Utf8`, number `Float64`,
/// bool `Boolean`, date `Date32`; null where a customer has no value), then
/// `created_at` and `updated_at` (required).
///
/// **interactions**: `id`, `customer_id` (required), `kind` (dict,
/// required), `channel`, `direction` (dict), `occurred_at` (required),
/// `subject`, `body`, `amount` (`Float64`: `amount_minor` scaled to major
/// units by the currency's exponent, for analysis; `amount_minor` is the
/// exact value), `amount_minor` (`Int64`), `currency`, `product` (dict),
/// `quantity` (`Int64`), `score` (`Int32`), `metadata` (`Utf8`, a JSON
/// object), `created_at` (required).
///
/// **consent**: `id`, `customer_id` (required), `purpose` (dict, required),
/// `channel` (dict; null means every channel), `status` (dict, required),
/// `legal_basis` (dict), `source`, `proof`, `recorded_at` (required).
///
/// **scores** (the latest [`Crm::compute_scores`](crate::Crm::compute_scores)
/// run; empty when scores were never computed): `customer_id`, `frequency`,
/// `recency`, `t`, `monetary_value` (`Float64`), `total_minor` (`Int64`),
/// `rfm_r`, `rfm_f`, `rfm_m` (`UInt8`), `rfm_segment` (dict), `p_alive`,
/// `expected_purchases`, `expected_value`, `clv` (`Float64`); all required.
///
/// **stage_transitions** (every lifecycle transition, see
/// [`crate::lifecycle`]): `customer_id` (required), `from_stage` (dict; null
/// for the stage a customer was created in), `to_stage` (dict, required),
/// `at` (required), `cause` (dict, required: `manual`, `import`, `rule` or
/// `upgrade`), `rule` (dict), `note`.
///
/// **deals** (see [`crate::deals`]): `id` (required), `pipeline` (dict,
/// required), `title` (required), `stage` (dict, required), `status` (dict,
/// required: `open`, `won` or `lost`), `value_minor` (`Int64`, required),
/// `currency` (dict, required), `probability` (`UInt8`, required: the
/// effective one), `probability_override` (`UInt8`), `owner` (dict),
/// `expected_close` (`Date32`), `customer_id`, `organization_id`,
/// `close_reason`, `closed_at`, `created_at`, `updated_at` (required). A
/// customer filter keeps the deals whose `customer_id` matches; `since` and
/// `until` bound `created_at`.
///
/// **tasks**: `id` (required), `title` (required), `notes`, `owner` (dict),
/// `due_at`, `priority` (dict, required), `status` (dict, required: `open`,
/// `done` or `cancelled`), `customer_id`, `deal_id`, `rule` (dict),
/// `created_at`, `updated_at` (required), `completed_at`. A customer filter
/// keeps the tasks whose `customer_id` matches; `since` and `until` bound
/// `created_at`.
///
/// ```
/// use crm_core::arrow::Table;
/// let t: Table = "scores".parse()?;
/// assert_eq!(t, Table::CustomerScores);
/// assert_eq!(t.to_string(), "scores");
/// assert!("orders".parse::<Table>().is_err());
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// People and organizations.
    Customers,
    /// The interactions of every customer's timeline.
    Interactions,
    /// The consent ledger.
    Consent,
    /// The stored analytics scores, one row per scored customer.
    #[serde(rename = "scores", alias = "customer_scores")]
    CustomerScores,
    /// Every lifecycle stage transition of every customer.
    StageTransitions,
    /// Every deal of every pipeline.
    Deals,
    /// Every task.
    Tasks,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 7] = [
        Table::Customers,
        Table::Interactions,
        Table::Consent,
        Table::CustomerScores,
        Table::StageTransitions,
        Table::Deals,
        Table::Tasks,
    ];

    /// Its name: `customers`, `interactions`, `consent`, `scores`,
    /// `stage_transitions`, `deals` or `tasks`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::Interactions => "interactions",
            Table::Consent => "consent",
            Table::CustomerScores => "scores",
            Table::StageTransitions => "stage_transitions",
            Table::Deals => "deals",
            Table::Tasks => "tasks",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = Error;

    /// A table by name (`customer_scores` is also accepted for `scores`).
    fn from_str(s: &str) -> Result<Table> {
        match s.trim() {
            "customers" => Ok(Table::Customers),
            "interactions" => Ok(Table::Interactions),
            "consent" => Ok(Table::Consent),
            "scores" | "customer_scores" => Ok(Table::CustomerScores),
            "stage_transitions" => Ok(Table::StageTransitions),
            "deals" => Ok(Table::Deals),
            "tasks" => Ok(Table::Tasks),
            _ => Err(Error::validation(
                "table",
                "must be customers, interactions, consent, scores, stage_transitions, deals or tasks",
            )),
        }
    }
}

/// Which rows of a table [`Crm::read_table`] reads, and in batches of how
/// many.
///
/// ```
/// use crm_core::arrow::ReadOptions;
/// let options = ReadOptions {
///     filter: Some(r#""vip" in tags"#.into()),
///     batch_size: 10_000,
///     ..Default::default()
/// };
/// assert!(options.segment.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct ReadOptions<'a> {
    /// Rows per batch, at most (the last batch, and in a read split between
    /// threads any batch, may be shorter); default 65,536. Zero is a
    /// validation error.
    pub batch_size: usize,
    /// Only the customers matching this filter expression; for the other
    /// tables, only the rows whose customer matches.
    pub filter: Option<FilterRef<'a>>,
    /// Only the members of this segment (static or dynamic; a dynamic one is
    /// evaluated at the start of the read), like `filter`; both may be given
    /// (both must hold). An unknown segment is [`Error::NotFound`].
    pub segment: Option<&'a str>,
    /// Interactions that occurred at or after this time, consent recorded at
    /// or after it, stage transitions made at or after it. A validation
    /// error for customers and scores.
    pub since: Option<DateTime<Utc>>,
    /// Interactions that occurred before this time, consent recorded before
    /// it, stage transitions made before it. A validation error for
    /// customers and scores.
    pub until: Option<DateTime<Utc>>,
}

/// The default batch size.
const DEFAULT_BATCH_SIZE: usize = 65_536;

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            filter: None,
            segment: None,
            since: None,
            until: None,
        }
    }
}

/// The options of a read, owned, so that a producer thread can take them.
#[derive(Clone)]
struct Request {
    table: Table,
    batch_size: usize,
    /// The parsed filter and the text its errors point into.
    filter: Option<(Expr, String)>,
    segment: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Request {
    /// Checks what can be checked without the database.
    fn new(table: Table, options: &ReadOptions<'_>) -> Result<Request> {
        if options.batch_size == 0 {
            return Err(Error::validation("batch_size", "must be at least 1"));
        }
        if matches!(table, Table::Customers | Table::CustomerScores) {
            for (field, given) in [
                ("since", options.since.is_some()),
                ("until", options.until.is_some()),
            ] {
                if given {
                    return Err(Error::validation(
                        field,
                        format!(
                            "applies to interactions, consent, stage transitions, deals and tasks, not to {table}"
                        ),
                    ));
                }
            }
        }
        let filter = match options.filter {
            None => None,
            Some(FilterRef::Text(text)) => Some((filter::parse(text)?, text.to_string())),
            Some(FilterRef::Expr(expr)) => Some((expr.clone(), String::new())),
        };
        Ok(Request {
            table,
            batch_size: options.batch_size,
            filter,
            segment: options.segment.map(str::to_string),
            since: options.since.map(db::to_micros),
            until: options.until.map(db::to_micros),
        })
    }
}

impl Crm {
    /// Reads a table as a stream of Arrow record batches; see [`Table`] for
    /// the columns and [`ReadOptions`] for which rows.
    ///
    /// Errors in the options (a malformed filter, an unknown segment, a zero
    /// batch size) are returned here, before any batch. A read always yields
    /// at least one batch: an empty result is a single batch of zero rows
    /// with the full schema.
    ///
    /// A file database is read in one consistent snapshot by a thread of its
    /// own, a couple of batches ahead of the consumer (by two threads for
    /// interactions or consent spanning 262,144 rows or more; batches then
    /// hold at most `batch_size` rows); dropping the reader stops it. An
    /// in-memory database is read one batch at a time, each batch a snapshot
    /// of its own (writes between batches may show in later batches), so
    /// that the consumer can write between batches.
    /// A failure while reading (a damaged file) is the next item, an
    /// [`ArrowError::ExternalError`] holding the [`Error`].
    ///
    /// ```
    /// use arrow_array::{Array, StringArray};
    /// use crm_core::arrow::{ReadOptions, Table};
    /// use crm_core::{Crm, NewCustomer};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// for (name, tags) in [("Ana", vec!["vip".to_string()]), ("Bo", vec![])] {
    ///     crm.create_customer(NewCustomer { name: Some(name.into()), tags, ..Default::default() })?;
    /// }
    /// let options = ReadOptions { filter: Some(r#""vip" in tags"#.into()), ..Default::default() };
    /// let batches: Vec<_> = crm
    ///     .read_table(Table::Customers, &options)?
    ///     .collect::<Result<_, _>>()
    ///     .expect("the read succeeds");
    /// assert_eq!(batches.len(), 1);
    /// let names = batches[0].column_by_name("name").unwrap();
    /// let names = names.as_any().downcast_ref::<StringArray>().unwrap();
    /// assert_eq!(names.value(0), "Ana");
    /// assert_eq!(names.len(), 1);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn read_table(&self, table: Table, options: &ReadOptions<'_>) -> Result<TableReader> {
        let request = Request::new(table, options)?;
        // An in-memory database is planned here; a file one by its producer,
        // in the snapshot it reads.
        let planned = self.db.read(|conn| {
            let in_memory = conn.path().is_none_or(str::is_empty);
            in_memory.then(|| Plan::new(conn, &request)).transpose()
        })?;
        if let Some(plan) = planned {
            return Ok(TableReader {
                schema: plan.schema.clone(),
                source: Source::Pages {
                    db: self.db.clone(),
                    plan: Box::new(plan),
                    after: i64::MIN,
                    pending: std::collections::VecDeque::new(),
                    done: false,
                },
            });
        }
        let request = match self.read_in_parallel(request, PARALLEL_MIN_ROWIDS)? {
            Ok(reader) => return Ok(reader),
            Err(request) => request,
        };
        let (tx, rx) = sync_channel::<Message>(2);
        let db = self.db.clone();
        let thread = std::thread::Builder::new()
            .name("crm-read-table".into())
            .spawn(move || produce(&db, &request, &tx))
            .map_err(|e| Error::Io(e.to_string()))?;
        let stream = Stream {
            rx: Some(rx),
            thread: Some(thread),
            done: false,
        };
        match stream.rx.as_ref().map(Receiver::recv) {
            Some(Ok(Message::Ready(schema))) => Ok(TableReader {
                schema,
                source: Source::Stream(stream),
            }),
            Some(Ok(Message::Failed(e))) => Err(e),
            _ => Err(Error::Storage(
                "the table reader stopped unexpectedly".into(),
            )),
        }
    }
}

impl Crm {
    /// The schema a [`Crm::read_table`] with these options would have now,
    /// after the same checks of the options, without reading any row.
    ///
    /// ```
    /// use crm_core::arrow::{ReadOptions, Table};
    /// use crm_core::{AttributeType, Crm};
    /// let crm = Crm::open_in_memory()?;
    /// crm.define_attribute("plan", AttributeType::Text)?;
    /// let schema = crm.table_schema(Table::Customers, &ReadOptions::default())?;
    /// assert!(schema.field_with_name("attr.plan").is_ok());
    /// let bad = ReadOptions { segment: Some("nope"), ..Default::default() };
    /// assert!(crm.table_schema(Table::Customers, &bad).is_err());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn table_schema(&self, table: Table, options: &ReadOptions<'_>) -> Result<SchemaRef> {
        let request = Request::new(table, options)?;
        self.db
            .read(|conn| Plan::new(conn, &request).map(|plan| plan.schema))
    }
}

/// What the producer thread sends: the schema once the read is planned,
/// then batches, or the error that ended it.
enum Message {
    Ready(SchemaRef),
    Batch(RecordBatch),
    Failed(Error),
}

/// The producer thread: plans and runs the whole read in one read
/// transaction. It stops when the reader is dropped (a send fails).
fn produce(db: &Database, request: &Request, tx: &SyncSender<Message>) {
    let outcome = db.read(|conn| {
        let plan = Plan::new(conn, request)?;
        if tx.send(Message::Ready(plan.schema.clone())).is_err() {
            return Ok(());
        }
        plan.run(conn, (i64::MIN, i64::MAX), None, |batch| {
            tx.send(Message::Batch(batch)).is_ok()
        })?;
        Ok(())
    });
    if let Err(e) = outcome {
        let _ = tx.send(Message::Failed(e));
    }
}

/// A read of a file database is split between this many threads when it
/// is large.
const PARALLEL_READERS: usize = 2;

/// A read is split when its table spans at least this many rowids.
const PARALLEL_MIN_ROWIDS: i64 = 1 << 18;

/// What a thread of a split read sends: the schema and the head of the
/// change log in its snapshot, then each of its chunks' batches followed by
/// `ChunkDone`, or the error that ended it.
enum Part {
    Ready { schema: SchemaRef, seq: i64 },
    Batch(RecordBatch),
    ChunkDone,
    Failed(Error),
}

impl Crm {
    /// A large interactions or consent table of a file database is read by
    /// [`PARALLEL_READERS`] threads, each in a read transaction of its own:
    /// the rowid range is cut into chunks of a batch's size, dealt to the
    /// threads in turn, and handed on in order, so the batches come in
    /// storage order and memory stays bounded.
    ///
    /// The threads' snapshots are one snapshot when they start at the same
    /// head of the change log (every write to these tables, and to the
    /// customers they belong to, appends to it) with the same schema;
    /// otherwise (a write committed between their starts) the read falls
    /// back to one thread and `Err` gives the request back.
    fn read_in_parallel(
        &self,
        request: Request,
        min_rowids: i64,
    ) -> Result<std::result::Result<TableReader, Request>> {
        let table = match request.table {
            Table::Interactions => "interactions",
            Table::Consent => "consents",
            Table::StageTransitions => "stage_transitions",
            Table::Customers | Table::CustomerScores | Table::Deals | Table::Tasks => {
                return Ok(Err(request));
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(PARALLEL_READERS);
        let (first, last) = self.db.read(|conn| rowid_range(conn, table))?;
        if threads < 2 || last.saturating_sub(first) < min_rowids {
            return Ok(Err(request));
        }
        let shared = Arc::new(request);
        let mut parts = Vec::with_capacity(threads);
        for thread in 0..threads {
            let (tx, rx) = sync_channel::<Part>(2);
            let (db, request) = (self.db.clone(), shared.clone());
            let handle = std::thread::Builder::new()
                .name("crm-read-table".into())
                .spawn(move || produce_part(&db, &request, table, (thread, threads), &tx))
                .map_err(|e| Error::Io(e.to_string()))?;
            parts.push(PartStream {
                rx: Some(rx),
                thread: Some(handle),
            });
        }
        let mut started: Option<(SchemaRef, i64)> = None;
        for part in &parts {
            match part.rx.as_ref().map(Receiver::recv) {
                Some(Ok(Part::Ready { schema, seq })) => match &started {
                    Some((s, q)) if *s != schema || *q != seq => {
                        drop(parts);
                        return Ok(Err(Arc::unwrap_or_clone(shared)));
                    }
                    Some(_) => {}
                    None => started = Some((schema, seq)),
                },
                Some(Ok(Part::Failed(e))) => return Err(e),
                _ => {
                    return Err(Error::Storage(
                        "the table reader stopped unexpectedly".into(),
                    ));
                }
            }
        }
        let Some((schema, _)) = started else {
            return Ok(Err(Arc::unwrap_or_clone(shared)));
        };
        Ok(Ok(TableReader {
            schema,
            source: Source::Parallel {
                parts,
                chunk: 0,
                yielded: false,
                done: false,
            },
        }))
    }
}

/// The smallest and largest rowid of `table` (0 and 0 when empty).
fn rowid_range(conn: &Connection, table: &str) -> Result<(i64, i64)> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT coalesce(min(rowid), 0), coalesce(max(rowid), 0) FROM {table}"
        ))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Thread `thread` of `threads` of a split read: plans the read in its own
/// snapshot, then reads chunks `thread`, `thread + threads`, … of the rowid
/// range. It stops when the reader is dropped (a send fails).
fn produce_part(
    db: &Database,
    request: &Request,
    table: &str,
    (thread, threads): (usize, usize),
    tx: &SyncSender<Part>,
) {
    let outcome = db.read(|conn| {
        // The first read fixes the snapshot; the change log's head names it.
        let seq: i64 = conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
            .query_row([], |r| r.get(0))?;
        let plan = Plan::new(conn, request)?;
        let schema = plan.schema.clone();
        if tx.send(Part::Ready { schema, seq }).is_err() {
            return Ok(());
        }
        let (first, last) = rowid_range(conn, table)?;
        let width = i64::try_from(plan.batch_size).unwrap_or(i64::MAX);
        let stride = width.saturating_mul(threads as i64);
        let mut lo = first.saturating_add(width.saturating_mul(thread as i64));
        while lo <= last {
            let mut open = true;
            plan.run(conn, (lo - 1, lo.saturating_add(width)), None, |batch| {
                // A chunk without rows sends nothing; the reader makes the
                // one empty batch of an empty read.
                open = batch.num_rows() == 0 || tx.send(Part::Batch(batch)).is_ok();
                open
            })?;
            if !open || tx.send(Part::ChunkDone).is_err() {
                return Ok(());
            }
            lo = lo.saturating_add(stride);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        let _ = tx.send(Part::Failed(e));
    }
}

/// One thread of a split read.
struct PartStream {
    rx: Option<Receiver<Part>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for PartStream {
    /// As [`Stream`]'s: stops the thread and waits for it.
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The batches of one read, as an Arrow [`RecordBatchReader`]: an iterator
/// of `Result<RecordBatch, ArrowError>` with a fixed [`schema`].
///
/// `Send` and `'static`: hand it to another thread, or box it as a
/// `dyn RecordBatchReader + Send`. See [`Crm::read_table`].
///
/// ```
/// use arrow_array::RecordBatchReader;
/// use crm_core::arrow::{ReadOptions, Table};
/// let crm = crm_core::Crm::open_in_memory()?;
/// let reader = crm.read_table(Table::Consent, &ReadOptions::default())?;
/// assert_eq!(reader.schema().field(0).name(), "id");
/// let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
/// assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
/// # Ok::<(), crm_core::Error>(())
/// ```
///
/// [`schema`]: RecordBatchReader::schema
pub struct TableReader {
    schema: SchemaRef,
    source: Source,
}

impl fmt::Debug for TableReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableReader")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

enum Source {
    /// A file database: batches from the producer thread.
    Stream(Stream),
    /// A large read of a file database: batches from several threads,
    /// chunk `chunk` from thread `chunk % threads`.
    Parallel {
        parts: Vec<PartStream>,
        chunk: usize,
        /// Whether a batch was handed out (an empty read yields one).
        yielded: bool,
        done: bool,
    },
    /// An in-memory database: one read per batch.
    Pages {
        db: Arc<Database>,
        plan: Box<Plan>,
        /// The rowid of the last row read.
        after: i64,
        /// Batches read and not yet yielded (a page is one batch unless its
        /// text is too large for one).
        pending: std::collections::VecDeque<RecordBatch>,
        done: bool,
    },
}

struct Stream {
    rx: Option<Receiver<Message>>,
    thread: Option<JoinHandle<()>>,
    done: bool,
}

impl Drop for Stream {
    /// Stops the producer: its next send fails. Waits for it to end (at most
    /// the rest of the batch it is decoding), so that its connection is back
    /// in the pool when the reader is gone.
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn external(e: Error) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

impl Iterator for TableReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Stream(stream) => {
                if stream.done {
                    return None;
                }
                let message = stream.rx.as_ref().map(Receiver::recv);
                match message {
                    Some(Ok(Message::Batch(batch))) => Some(Ok(batch)),
                    Some(Ok(Message::Failed(e))) => {
                        stream.done = true;
                        Some(Err(external(e)))
                    }
                    Some(Ok(Message::Ready(_))) => {
                        stream.done = true;
                        Some(Err(external(Error::Storage(
                            "the table reader got an unexpected message".into(),
                        ))))
                    }
                    // The producer finished.
                    Some(Err(_)) | None => {
                        stream.done = true;
                        None
                    }
                }
            }
            Source::Parallel {
                parts,
                chunk,
                yielded,
                done,
            } => loop {
                if *done {
                    return None;
                }
                let part = &parts[*chunk % parts.len()];
                match part.rx.as_ref().map(Receiver::recv) {
                    Some(Ok(Part::Batch(batch))) => {
                        *yielded = true;
                        return Some(Ok(batch));
                    }
                    Some(Ok(Part::ChunkDone)) => *chunk += 1,
                    Some(Ok(Part::Failed(e))) => {
                        *done = true;
                        return Some(Err(external(e)));
                    }
                    Some(Ok(Part::Ready { .. })) => {
                        *done = true;
                        return Some(Err(external(Error::Storage(
                            "the table reader got an unexpected message".into(),
                        ))));
                    }
                    // The thread of this chunk finished: there is no such
                    // chunk, so every chunk was read.
                    Some(Err(_)) | None => {
                        *done = true;
                        if !*yielded {
                            *yielded = true;
                            return Some(Ok(RecordBatch::new_empty(self.schema.clone())));
                        }
                        return None;
                    }
                }
            },
            Source::Pages {
                db,
                plan,
                after,
                pending,
                done,
            } => {
                if pending.is_empty() && !*done {
                    let limit = plan.batch_size;
                    let first = *after == i64::MIN;
                    let page = db.read(|conn| {
                        let mut rows = 0;
                        let last = plan.run(conn, (*after, i64::MAX), Some(limit), |batch| {
                            rows += batch.num_rows();
                            pending.push_back(batch);
                            true
                        })?;
                        Ok((rows, last))
                    });
                    match page {
                        Err(e) => {
                            *done = true;
                            pending.clear();
                            return Some(Err(external(e)));
                        }
                        Ok((rows, last)) => {
                            *done = rows < limit;
                            *after = last;
                            // Only the first page of an empty read keeps its
                            // empty batch.
                            if rows == 0 && !first {
                                pending.clear();
                            }
                        }
                    }
                }
                pending.pop_front().map(Ok)
            }
        }
    }
}

impl RecordBatchReader for TableReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

// ----- planning ---------------------------------------------------------------

/// How one Arrow column is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A 16-byte id blob as hyphenated text.
    Id,
    Text,
    Dict,
    /// A JSON array of strings.
    List,
    /// `YYYY-MM-DD` text.
    Date,
    /// Integer microseconds.
    Time,
    Int64,
    Int32,
    UInt8,
    Float64,
    Bool,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Id | Kind::Text => DataType::Utf8,
            Kind::Dict => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            Kind::List => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Int64 => DataType::Int64,
            Kind::Int32 => DataType::Int32,
            Kind::UInt8 => DataType::UInt8,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
        }
    }
}

/// What to do with one SQL result column (after the leading rowid).
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Decode into Arrow column `n`.
    Column(usize),
    /// The attributes JSON object, into the `attr.*` columns.
    Attributes,
    /// `amount_minor`, into Arrow column `n`; kept for [`Step::Currency`].
    Minor(usize),
    /// The currency, into Arrow column `column`; with the `amount_minor`
    /// before it, the amount in major units into Arrow column `amount`.
    Currency { column: usize, amount: usize },
    /// A customer's rowid, into Arrow column `n` as the customer's id (see
    /// [`CustomerIds`]).
    CustomerId(usize),
}

/// The ids of all customers by rowid, for a read of a whole table that is
/// much larger than the customers table: one scan of the customers then
/// replaces a lookup per row. Filled by the first batch; a customer created
/// since (an in-memory database is read batch by batch) is looked up.
#[derive(Default)]
struct CustomerIds(std::sync::OnceLock<Vec<[u8; 16]>>);

/// How many times more rows than customers a table must have for a read of
/// all of it to load the customers' ids first.
const CUSTOMER_IDS_FACTOR: i64 = 4;

impl CustomerIds {
    /// Whether reading `table` whole is worth loading the ids.
    fn worth_it(conn: &Connection, table: &str) -> Result<bool> {
        let max = |t: &str| -> Result<i64> {
            Ok(conn
                .prepare_cached(&format!("SELECT coalesce(max(rowid), 0) FROM {t}"))?
                .query_row([], |r| r.get(0))?)
        };
        let customers = max("customers")?;
        Ok(customers > 0 && max(table)? >= customers.saturating_mul(CUSTOMER_IDS_FACTOR))
    }

    fn load(conn: &Connection) -> Result<Vec<[u8; 16]>> {
        let mut out = Vec::new();
        let mut stmt = conn.prepare_cached("SELECT rowid, id FROM customers ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let rowid = usize::try_from(row.get::<_, i64>(0)?)
                .map_err(|_| Error::Storage("negative customer rowid".into()))?;
            let ValueRef::Blob(id) = row.get_ref(1)? else {
                return Err(Error::Storage("malformed customer id".into()));
            };
            let id: [u8; 16] = id
                .try_into()
                .map_err(|_| Error::Storage("malformed customer id".into()))?;
            if out.len() <= rowid {
                out.resize(rowid + 1, [0; 16]);
            }
            out[rowid] = id;
        }
        Ok(out)
    }

    /// The id of customer `rowid` (all zeros: not loaded).
    fn get(&self, conn: &Connection, rowid: i64) -> Result<[u8; 16]> {
        let ids = match self.0.get() {
            Some(ids) => ids,
            None => {
                let _ = self.0.set(CustomerIds::load(conn)?);
                self.0.get().map_or(&[][..], Vec::as_slice)
            }
        };
        match usize::try_from(rowid).ok().and_then(|r| ids.get(r)) {
            Some(id) if *id != [0; 16] => Ok(*id),
            _ => {
                let id: Vec<u8> = conn
                    .prepare_cached("SELECT id FROM customers WHERE rowid = ?")?
                    .query_row([rowid], |r| r.get(0))?;
                id.try_into()
                    .map_err(|_| Error::Storage("malformed customer id".into()))
            }
        }
    }
}

/// A planned read: its statement, parameters and how rows become columns.
struct Plan {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    /// Per SQL column from index 1 on.
    steps: Vec<Step>,
    /// The names of the SQL columns, for errors.
    sql_names: Vec<&'static str>,
    /// The attribute columns: key → Arrow column.
    attributes: HashMap<String, usize>,
    /// The Arrow columns of the attributes, in order.
    attribute_columns: Vec<usize>,
    /// The statement without `LIMIT`; the rowid bounds are parameters
    /// `after_param` and `before_param` (1-based; both exclusive).
    sql: String,
    params: Vec<Value>,
    after_param: usize,
    before_param: usize,
    batch_size: usize,
    customer_ids: CustomerIds,
}

/// The columns of each table: (Arrow name, SQL expression, kind, nullable).
type ColumnDef = (&'static str, &'static str, Kind, bool);

const CUSTOMERS_HEAD: &[ColumnDef] = &[
    ("id", "c.id", Kind::Id, false),
    ("kind", "c.kind", Kind::Dict, false),
    ("external_id", "c.external_id", Kind::Text, true),
    ("name", "c.name", Kind::Text, false),
    ("first_name", "c.first_name", Kind::Text, true),
    ("last_name", "c.last_name", Kind::Text, true),
    (
        "organization_id",
        "(SELECT o.id FROM customers o WHERE o.rowid = c.organization_rowid)",
        Kind::Id,
        true,
    ),
    ("emails", "c.emails", Kind::List, false),
    ("phones", "c.phones", Kind::List, false),
    ("addresses", "c.addresses", Kind::Text, false),
    ("birth_date", "c.birth_date", Kind::Date, true),
    ("locale", "c.locale", Kind::Dict, true),
    ("country", "c.country", Kind::Dict, true),
    ("tags", "c.tags", Kind::List, false),
    ("lifecycle_stage", "c.lifecycle_stage", Kind::Dict, false),
    ("owner", "c.owner", Kind::Dict, true),
    ("source", "c.source", Kind::Dict, true),
];

const CUSTOMERS_TAIL: &[ColumnDef] = &[
    ("created_at", "c.created_at", Kind::Time, false),
    ("updated_at", "c.updated_at", Kind::Time, false),
];

const INTERACTIONS: &[ColumnDef] = &[
    ("id", "i.id", Kind::Id, false),
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = i.customer_rowid)",
        Kind::Id,
        false,
    ),
    ("kind", "i.kind", Kind::Dict, false),
    ("channel", "i.channel", Kind::Dict, true),
    ("direction", "i.direction", Kind::Dict, true),
    ("occurred_at", "i.occurred_at", Kind::Time, false),
    ("subject", "i.subject", Kind::Text, true),
    ("body", "i.body", Kind::Text, true),
    // Computed from amount_minor and currency (see `Step::Currency`).
    ("amount", "", Kind::Float64, true),
    ("amount_minor", "i.amount_minor", Kind::Int64, true),
    ("currency", "i.currency", Kind::Dict, true),
    ("product", "i.product", Kind::Dict, true),
    ("quantity", "i.quantity", Kind::Int64, true),
    ("score", "i.score", Kind::Int32, true),
    ("metadata", "i.metadata", Kind::Text, true),
    ("created_at", "i.created_at", Kind::Time, false),
];

const CONSENT: &[ColumnDef] = &[
    ("id", "k.id", Kind::Id, false),
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = k.customer_rowid)",
        Kind::Id,
        false,
    ),
    ("purpose", "k.purpose", Kind::Dict, false),
    ("channel", "k.channel", Kind::Dict, true),
    ("status", "k.status", Kind::Dict, false),
    ("legal_basis", "k.legal_basis", Kind::Dict, true),
    ("source", "k.source", Kind::Text, true),
    ("proof", "k.proof", Kind::Text, true),
    ("recorded_at", "k.recorded_at", Kind::Time, false),
];

const SCORES: &[ColumnDef] = &[
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = s.customer_rowid)",
        Kind::Id,
        false,
    ),
    ("frequency", "s.frequency", Kind::Float64, false),
    ("recency", "s.recency", Kind::Float64, false),
    ("t", "s.t", Kind::Float64, false),
    ("monetary_value", "s.monetary_value", Kind::Float64, false),
    ("total_minor", "s.total_minor", Kind::Int64, false),
    ("rfm_r", "s.rfm_r", Kind::UInt8, false),
    ("rfm_f", "s.rfm_f", Kind::UInt8, false),
    ("rfm_m", "s.rfm_m", Kind::UInt8, false),
    ("rfm_segment", "s.rfm_segment", Kind::Dict, false),
    ("p_alive", "s.p_alive", Kind::Float64, false),
    (
        "expected_purchases",
        "s.expected_purchases",
        Kind::Float64,
        false,
    ),
    ("expected_value", "s.expected_value", Kind::Float64, false),
    ("clv", "s.clv", Kind::Float64, false),
];

const STAGE_TRANSITIONS: &[ColumnDef] = &[
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = t.customer_rowid)",
        Kind::Id,
        false,
    ),
    ("from_stage", "t.from_stage", Kind::Dict, true),
    ("to_stage", "t.to_stage", Kind::Dict, false),
    ("at", "t.at", Kind::Time, false),
    ("cause", "t.cause", Kind::Dict, false),
    ("rule", "t.rule", Kind::Dict, true),
    ("note", "t.note", Kind::Text, true),
];

const DEALS: &[ColumnDef] = &[
    ("id", "d.id", Kind::Id, false),
    (
        "pipeline",
        "(SELECT p.name FROM pipelines p WHERE p.rowid = d.pipeline_rowid)",
        Kind::Dict,
        false,
    ),
    ("title", "d.title", Kind::Text, false),
    ("stage", "d.stage", Kind::Dict, false),
    ("status", "d.status", Kind::Dict, false),
    ("value_minor", "d.value_minor", Kind::Int64, false),
    ("currency", "d.currency", Kind::Dict, false),
    (
        "probability",
        "CASE d.status WHEN 'won' THEN 100 WHEN 'lost' THEN 0 ELSE coalesce(d.probability, \
         (SELECT json_extract(s.value, '$.probability') FROM pipelines p, json_each(p.stages) s \
          WHERE p.rowid = d.pipeline_rowid AND json_extract(s.value, '$.name') = d.stage), 0) END",
        Kind::UInt8,
        false,
    ),
    ("probability_override", "d.probability", Kind::UInt8, true),
    ("owner", "d.owner", Kind::Dict, true),
    ("expected_close", "d.expected_close", Kind::Date, true),
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = d.customer_rowid)",
        Kind::Id,
        true,
    ),
    (
        "organization_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = d.organization_rowid)",
        Kind::Id,
        true,
    ),
    ("close_reason", "d.close_reason", Kind::Text, true),
    ("closed_at", "d.closed_at", Kind::Time, true),
    ("created_at", "d.created_at", Kind::Time, false),
    ("updated_at", "d.updated_at", Kind::Time, false),
];

const TASKS: &[ColumnDef] = &[
    ("id", "tk.id", Kind::Id, false),
    ("title", "tk.title", Kind::Text, false),
    ("notes", "tk.notes", Kind::Text, true),
    ("owner", "tk.owner", Kind::Dict, true),
    ("due_at", "tk.due_at", Kind::Time, true),
    ("priority", "tk.priority", Kind::Dict, false),
    ("status", "tk.status", Kind::Dict, false),
    (
        "customer_id",
        "(SELECT c.id FROM customers c WHERE c.rowid = tk.customer_rowid)",
        Kind::Id,
        true,
    ),
    (
        "deal_id",
        "(SELECT d.id FROM deals d WHERE d.rowid = tk.deal_rowid)",
        Kind::Id,
        true,
    ),
    ("rule", "tk.rule", Kind::Dict, true),
    ("created_at", "tk.created_at", Kind::Time, false),
    ("updated_at", "tk.updated_at", Kind::Time, false),
    ("completed_at", "tk.completed_at", Kind::Time, true),
];

/// Adds a parameter; returns its placeholder.
fn param(params: &mut Vec<Value>, v: impl Into<Value>) -> String {
    params.push(v.into());
    format!("?{}", params.len())
}

impl Plan {
    fn new(conn: &Connection, request: &Request) -> Result<Plan> {
        let mut params = Vec::new();
        let who = customer_condition(conn, request, &mut params)?;
        let (table, alias, time_column, customer_column) = match request.table {
            Table::Customers => ("customers", "c", None, "c.rowid"),
            Table::Interactions => (
                "interactions",
                "i",
                Some("i.occurred_at"),
                "i.customer_rowid",
            ),
            Table::Consent => ("consents", "k", Some("k.recorded_at"), "k.customer_rowid"),
            Table::CustomerScores => ("customer_scores", "s", None, "s.customer_rowid"),
            Table::StageTransitions => ("stage_transitions", "t", Some("t.at"), "t.customer_rowid"),
            Table::Deals => ("deals", "d", Some("d.created_at"), "d.customer_rowid"),
            Table::Tasks => ("tasks", "tk", Some("tk.created_at"), "tk.customer_rowid"),
        };
        let mut conditions = Vec::new();
        if let Some(cond) = who {
            conditions.push(if request.table == Table::Customers {
                format!("({cond})")
            } else {
                format!("{customer_column} IN (SELECT c.rowid FROM customers c WHERE {cond})")
            });
        }
        if let Some(column) = time_column {
            if let Some(since) = request.since {
                conditions.push(format!("{column} >= {}", param(&mut params, since)));
            }
            if let Some(until) = request.until {
                conditions.push(format!("{column} < {}", param(&mut params, until)));
            }
        }
        // Every row of the table: no condition but the rowid bounds.
        let whole = conditions.is_empty();
        let rowid = format!("{alias}.rowid");
        let after = param(&mut params, i64::MIN);
        let after_param = params.len();
        conditions.push(format!("{rowid} > {after}"));
        let before = param(&mut params, i64::MAX);
        let before_param = params.len();
        conditions.push(format!("{rowid} < {before}"));

        let mut defs: Vec<ColumnDef> = Vec::new();
        let mut attribute_defs = Vec::new();
        match request.table {
            Table::Customers => {
                defs.extend_from_slice(CUSTOMERS_HEAD);
                attribute_defs = db::customers::attribute_definitions(conn)?;
                defs.extend_from_slice(CUSTOMERS_TAIL);
            }
            Table::Interactions => defs.extend_from_slice(INTERACTIONS),
            Table::Consent => defs.extend_from_slice(CONSENT),
            Table::CustomerScores => defs.extend_from_slice(SCORES),
            Table::StageTransitions => defs.extend_from_slice(STAGE_TRANSITIONS),
            Table::Deals => defs.extend_from_slice(DEALS),
            Table::Tasks => defs.extend_from_slice(TASKS),
        }

        let mut fields = Vec::new();
        let mut kinds = Vec::new();
        let mut steps = Vec::new();
        let mut sql_names = Vec::new();
        let mut select = vec![rowid.clone()];
        let mut attributes = HashMap::new();
        let mut attribute_columns = Vec::new();
        // A whole table much larger than the customers: their ids are looked
        // up in memory rather than by a subquery per row.
        let mut amount = None;
        let dense_ids =
            request.table != Table::Customers && whole && CustomerIds::worth_it(conn, table)?;
        let mut add = |name: String, kind: Kind, nullable: bool, fields: &mut Vec<Field>| {
            fields.push(Field::new(name, kind.data_type(), nullable));
            kinds.push(kind);
            kinds.len() - 1
        };
        for (i, (name, expr, kind, nullable)) in defs.iter().enumerate() {
            if request.table == Table::Customers && i == CUSTOMERS_HEAD.len() {
                // The attribute columns, before the times.
                for (key, ty) in &attribute_defs {
                    let kind = match ty {
                        AttributeType::Text => Kind::Text,
                        AttributeType::Number => Kind::Float64,
                        AttributeType::Bool => Kind::Bool,
                        AttributeType::Date => Kind::Date,
                    };
                    let n = add(format!("attr.{key}"), kind, true, &mut fields);
                    attributes.insert(key.clone(), n);
                    attribute_columns.push(n);
                }
                select.push("c.attributes".into());
                sql_names.push("attributes");
                steps.push(Step::Attributes);
            }
            let n = add((*name).to_string(), *kind, *nullable, &mut fields);
            let step = match *name {
                "amount" => {
                    amount = Some(n);
                    continue;
                }
                "customer_id" if dense_ids && !nullable => {
                    select.push(customer_column.to_string());
                    Step::CustomerId(n)
                }
                "amount_minor" => Step::Minor(n),
                "currency" if amount.is_some() => Step::Currency {
                    column: n,
                    amount: amount.unwrap_or_default(),
                },
                _ => Step::Column(n),
            };
            if !matches!(step, Step::CustomerId(_)) {
                select.push((*expr).to_string());
            }
            sql_names.push(*name);
            steps.push(step);
        }
        let sql = format!(
            "SELECT {} FROM {table} {alias} WHERE {} ORDER BY {rowid}",
            select.join(", "),
            conditions.join(" AND ")
        );
        Ok(Plan {
            schema: Arc::new(Schema::new(fields)),
            kinds,
            steps,
            sql_names,
            attributes,
            attribute_columns,
            sql,
            params,
            after_param,
            before_param,
            batch_size: request.batch_size,
            customer_ids: CustomerIds::default(),
        })
    }

    /// Reads the rows with a rowid between `after` and `before` (both
    /// exclusive; at most `limit` of them), calling `sink` with each batch
    /// until it returns `false`; returns the rowid of the last row read.
    /// Yields one empty batch when there are no rows.
    fn run(
        &self,
        conn: &Connection,
        (after, before): (i64, i64),
        limit: Option<usize>,
        mut sink: impl FnMut(RecordBatch) -> bool,
    ) -> Result<i64> {
        let mut params = self.params.clone();
        params[self.after_param - 1] = Value::Integer(after);
        params[self.before_param - 1] = Value::Integer(before);
        let mut stmt = match limit {
            Some(n) => conn.prepare_cached(&format!("{} LIMIT {n}", self.sql))?,
            None => conn.prepare_cached(&self.sql)?,
        };
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let capacity = self.batch_size.min(DEFAULT_BATCH_SIZE);
        let mut builders = self.builders(capacity);
        let mut in_batch = 0;
        let mut text_bytes = 0;
        let mut last = after;
        let mut sent = false;
        let mut currencies = Scales::default();
        // Only a read by pages needs to know where it stopped.
        let track = limit.is_some();
        while let Some(row) = rows.next()? {
            let mut minor = ValueRef::Null;
            if track {
                last = row.get_ref(0)?.as_i64().map_err(rusqlite::Error::from)?;
            }
            for (i, step) in self.steps.iter().enumerate() {
                let value = row.get_ref(i + 1)?;
                let res = match *step {
                    Step::Column(n) => builders[n].append(value, &mut text_bytes),
                    Step::Attributes => self.append_attributes(&mut builders, value, in_batch),
                    Step::Minor(n) => {
                        minor = value;
                        builders[n].append(value, &mut text_bytes)
                    }
                    Step::Currency { column, amount } => {
                        append_amount(&mut builders[amount], minor, value, &mut currencies)
                            .and_then(|()| builders[column].append(value, &mut text_bytes))
                    }
                    Step::CustomerId(n) => {
                        let rowid = value.as_i64().map_err(rusqlite::Error::from)?;
                        let id = self.customer_ids.get(conn, rowid)?;
                        builders[n].append_id(&id, &mut text_bytes)
                    }
                };
                res.map_err(|e| {
                    Error::Storage(format!("column {} of the database: {e}", self.sql_names[i]))
                })?;
            }
            in_batch += 1;
            // Text offsets are 32-bit: a batch holds less than 2 GiB of text.
            if in_batch == self.batch_size || text_bytes > (1 << 30) {
                let batch = self.finish(&mut builders, capacity)?;
                sent = true;
                if !sink(batch) {
                    return Ok(last);
                }
                in_batch = 0;
                text_bytes = 0;
            }
        }
        if in_batch > 0 || !sent {
            let batch = self.finish(&mut builders, capacity)?;
            sink(batch);
        }
        Ok(last)
    }

    fn builders(&self, capacity: usize) -> Vec<Builder> {
        self.kinds
            .iter()
            .map(|k| Builder::new(*k, capacity))
            .collect()
    }

    /// The batch of what the builders hold; they start afresh.
    fn finish(&self, builders: &mut [Builder], capacity: usize) -> Result<RecordBatch> {
        let bad = |e: ArrowError| Error::Storage(format!("unexpected values in the database: {e}"));
        let columns = builders
            .iter_mut()
            .zip(&self.kinds)
            .map(|(b, k)| std::mem::replace(b, Builder::new(*k, capacity)).finish())
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()
            .map_err(bad)?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(bad)
    }

    /// Appends a row's attributes (a JSON object) to the `attr.*` columns;
    /// `row` is the row's index in the batch.
    fn append_attributes(
        &self,
        builders: &mut [Builder],
        value: ValueRef<'_>,
        row: usize,
    ) -> std::result::Result<(), String> {
        let text = value_text(value)?.ok_or("missing attributes")?;
        let mut de = serde_json::Deserializer::from_str(text);
        AttributesSeed {
            plan: self,
            builders: &mut *builders,
            row,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("malformed attributes ({e})"))?;
        for n in &self.attribute_columns {
            if builders[*n].len() == row {
                builders[*n].append_null();
            }
        }
        Ok(())
    }
}

/// The condition on `customers c` of the filter and segment, with their
/// parameters added to `params` (which must be empty: the compiled SQL
/// numbers its parameters from 1).
fn customer_condition(
    conn: &Connection,
    request: &Request,
    params: &mut Vec<Value>,
) -> Result<Option<String>> {
    if let Some(name) = &request.segment {
        // An unknown segment is "not found", not a filter error.
        db::segments::require(conn, name)?;
    }
    let in_segment = request.segment.as_ref().map(|name| Expr::InSegment {
        name: name.clone(),
        span: Span::default(),
    });
    let (expr, text) = match (&request.filter, in_segment) {
        (None, None) => return Ok(None),
        (Some((expr, text)), None) => (expr.clone(), text.as_str()),
        (None, Some(seg)) => (seg, ""),
        (Some((expr, text)), Some(seg)) => (Expr::And(vec![expr.clone(), seg]), text.as_str()),
    };
    let compiled = compile::compile(conn, text, &expr, Mode::Set, Crm::now(), None)?;
    *params = compiled.params;
    Ok(Some(compiled.sql))
}

// ----- decoding ----------------------------------------------------------------

/// One column's builder.
enum Builder {
    Text(StringBuilder),
    Dict(DictBuilder),
    List(ListBuilder<StringBuilder>),
    Date(Date32Builder),
    Time(TimestampMicrosecondBuilder),
    Int64(Int64Builder),
    Int32(Int32Builder),
    UInt8(UInt8Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    /// Ids are text built from blobs.
    Id(StringBuilder),
}

/// The text of a value, `None` for NULL.
fn value_text(value: ValueRef<'_>) -> std::result::Result<Option<&str>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|_| "text is not UTF-8".to_string()),
        _ => Err("expected text".into()),
    }
}

fn value_int(value: ValueRef<'_>) -> std::result::Result<Option<i64>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(i)),
        _ => Err("expected an integer".into()),
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date32(text: &str) -> std::result::Result<i32, String> {
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "malformed date")?;
    Ok(d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
}

/// `NaiveDate::from_ymd(1970, 1, 1).num_days_from_ce()`.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl Builder {
    fn new(kind: Kind, capacity: usize) -> Builder {
        // Short text: ids are 36 bytes, other text a guess that saves most
        // reallocations.
        match kind {
            Kind::Id => Builder::Id(StringBuilder::with_capacity(capacity, capacity * 36)),
            Kind::Text => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Dict => Builder::Dict(DictBuilder::new(capacity)),
            Kind::List => Builder::List(ListBuilder::with_capacity(
                StringBuilder::with_capacity(capacity, capacity * 16),
                capacity,
            )),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Time => Builder::Time(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Kind::Int64 => Builder::Int64(Int64Builder::with_capacity(capacity)),
            Kind::Int32 => Builder::Int32(Int32Builder::with_capacity(capacity)),
            Kind::UInt8 => Builder::UInt8(UInt8Builder::with_capacity(capacity)),
            Kind::Float64 => Builder::Float64(Float64Builder::with_capacity(capacity)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Text(b) | Builder::Id(b) => b.len(),
            Builder::Dict(b) => b.keys.len(),
            Builder::List(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::Int64(b) => b.len(),
            Builder::Int32(b) => b.len(),
            Builder::UInt8(b) => b.len(),
            Builder::Float64(b) => b.len(),
            Builder::Bool(b) => b.len(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Text(b) | Builder::Id(b) => b.append_null(),
            Builder::Dict(b) => b.keys.append_null(),
            Builder::List(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::UInt8(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
        }
    }

    /// Appends a 16-byte id as its hyphenated text.
    fn append_id(
        &mut self,
        bytes: &[u8],
        text_bytes: &mut usize,
    ) -> std::result::Result<(), String> {
        let Builder::Id(b) = self else {
            return Err("not an id column".into());
        };
        let id = uuid::Uuid::from_slice(bytes).map_err(|_| "malformed id")?;
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        b.append_value(id.hyphenated().encode_lower(&mut buf));
        *text_bytes += buf.len();
        Ok(())
    }

    /// Appends a stored value; `text_bytes` counts the text appended.
    /// Inlined into the row loop, so that the value is read in place.
    #[inline(always)]
    fn append(
        &mut self,
        value: ValueRef<'_>,
        text_bytes: &mut usize,
    ) -> std::result::Result<(), String> {
        if let ValueRef::Null = value {
            self.append_null();
            return Ok(());
        }
        match self {
            Builder::Id(_) => {
                let ValueRef::Blob(bytes) = value else {
                    return Err("expected an id".into());
                };
                return self.append_id(bytes, text_bytes);
            }
            Builder::Text(b) => {
                let text = value_text(value)?.unwrap_or_default();
                *text_bytes += text.len();
                b.append_value(text);
            }
            Builder::Dict(b) => {
                let ValueRef::Text(bytes) = value else {
                    return Err("expected text".into());
                };
                b.append(bytes)?;
            }
            Builder::List(b) => {
                let text = value_text(value)?.unwrap_or_default();
                *text_bytes += text.len();
                let mut de = serde_json::Deserializer::from_str(text);
                StringsSeed(b.values())
                    .deserialize(&mut de)
                    .and_then(|()| de.end())
                    .map_err(|e| format!("malformed list ({e})"))?;
                b.append(true);
            }
            Builder::Date(b) => {
                let text = value_text(value)?.unwrap_or_default();
                b.append_value(date32(text)?);
            }
            Builder::Time(b) => b.append_option(value_int(value)?),
            Builder::Int64(b) => b.append_option(value_int(value)?),
            Builder::Int32(b) => {
                let v = value_int(value)?
                    .map(i32::try_from)
                    .transpose()
                    .map_err(|_| "integer out of range")?;
                b.append_option(v);
            }
            Builder::UInt8(b) => {
                let v = value_int(value)?
                    .map(u8::try_from)
                    .transpose()
                    .map_err(|_| "integer out of range")?;
                b.append_option(v);
            }
            Builder::Float64(b) => match value {
                ValueRef::Real(f) => b.append_value(f),
                ValueRef::Integer(i) => b.append_value(i as f64),
                _ => return Err("expected a number".into()),
            },
            Builder::Bool(b) => b.append_option(value_int(value)?.map(|i| i != 0)),
        }
        Ok(())
    }

    fn finish(self) -> std::result::Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Text(mut b) | Builder::Id(mut b) => Arc::new(b.finish()),
            Builder::Dict(b) => b.finish()?,
            Builder::List(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::Int64(mut b) => Arc::new(b.finish()),
            Builder::Int32(mut b) => Arc::new(b.finish()),
            Builder::UInt8(mut b) => Arc::new(b.finish()),
            Builder::Float64(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
        })
    }
}

/// A `Dictionary(Int32, Utf8)` column. Most such columns hold a handful of
/// distinct values, so a value is looked for among the values seen by a
/// linear scan (starting with the last one found), and hashed only once
/// there are many; text is checked to be UTF-8 once per distinct value.
struct DictBuilder {
    keys: Int32Builder,
    values: StringBuilder,
    /// The distinct values in key order, while there are few.
    few: Vec<Box<[u8]>>,
    /// Value → key, once there are many.
    many: HashMap<Box<[u8]>, i32>,
    last: usize,
}

/// Distinct values a dictionary column scans linearly.
const FEW_VALUES: usize = 16;

impl DictBuilder {
    fn new(capacity: usize) -> DictBuilder {
        DictBuilder {
            keys: Int32Builder::with_capacity(capacity),
            values: StringBuilder::new(),
            few: Vec::new(),
            many: HashMap::new(),
            last: 0,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        if self.many.is_empty() {
            if self.few.get(self.last).is_some_and(|v| **v == *bytes) {
                self.keys.append_value(self.last as i32);
                return Ok(());
            }
            if let Some(i) = self.few.iter().position(|v| **v == *bytes) {
                self.last = i;
                self.keys.append_value(i as i32);
                return Ok(());
            }
        } else if let Some(key) = self.many.get(bytes) {
            self.keys.append_value(*key);
            return Ok(());
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "text is not UTF-8")?;
        let key = i32::try_from(self.values.len()).map_err(|_| "too many distinct values")?;
        self.values.append_value(text);
        if self.many.is_empty() && self.few.len() < FEW_VALUES {
            self.few.push(bytes.into());
            self.last = self.few.len() - 1;
        } else {
            if self.many.is_empty() {
                for (i, v) in self.few.drain(..).enumerate() {
                    self.many.insert(v, i as i32);
                }
            }
            self.many.insert(bytes.into(), key);
        }
        self.keys.append_value(key);
        Ok(())
    }

    fn finish(mut self) -> std::result::Result<ArrayRef, ArrowError> {
        let keys = self.keys.finish();
        let values = Arc::new(self.values.finish());
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            keys, values,
        )?))
    }
}

/// The scale (10^exponent) of each currency met, looked up once.
#[derive(Default)]
struct Scales(Vec<(String, f64)>);

impl Scales {
    fn of(&mut self, currency: &str) -> f64 {
        if let Some((_, s)) = self.0.iter().find(|(c, _)| c == currency) {
            return *s;
        }
        let exponent = normalize::currency_exponent(currency).unwrap_or(2);
        let scale = 10f64.powi(exponent as i32);
        self.0.push((currency.to_string(), scale));
        scale
    }
}

/// Appends `minor` in major units of `currency` (null without an amount; an
/// amount without a currency is taken as is).
fn append_amount(
    builder: &mut Builder,
    minor: ValueRef<'_>,
    currency: ValueRef<'_>,
    scales: &mut Scales,
) -> std::result::Result<(), String> {
    let Builder::Float64(b) = builder else {
        return Err("amount column is not Float64".into());
    };
    match value_int(minor)? {
        None => b.append_null(),
        Some(m) => {
            let scale = match value_text(currency)? {
                Some(c) => scales.of(c),
                None => 1.0,
            };
            b.append_value(m as f64 / scale);
        }
    }
    Ok(())
}

/// A JSON array of strings, appended to a string builder.
struct StringsSeed<'a>(&'a mut StringBuilder);

impl<'de> DeserializeSeed<'de> for StringsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StringsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(StringSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

struct StringSeed<'a>(&'a mut StringBuilder);

impl<'de> DeserializeSeed<'de> for StringSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StringSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        self.0.append_value(v);
        Ok(())
    }
}

/// The attributes JSON object of one row, appended to the `attr.*` columns.
struct AttributesSeed<'a> {
    plan: &'a Plan,
    builders: &'a mut [Builder],
    row: usize,
}

impl<'de> DeserializeSeed<'de> for AttributesSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(column) = map.next_key_seed(KeySeed(&self.plan.attributes))? {
            match column {
                // A key without a definition has no column.
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(n) => {
                    let builder = &mut self.builders[n];
                    if builder.len() != self.row {
                        return Err(de::Error::custom("an attribute appears twice"));
                    }
                    map.next_value_seed(AttributeSeed(builder))?;
                }
            }
        }
        Ok(())
    }
}

/// An attribute key: its column, if it has one.
struct KeySeed<'a>(&'a HashMap<String, usize>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Option<usize>, E> {
        Ok(self.0.get(v).copied())
    }
}

/// One attribute's stored value (a JSON scalar, or `{"date": "…"}` for a
/// date), appended to its column, which has the attribute's type.
struct AttributeSeed<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for AttributeSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn mismatch<E: de::Error>() -> E {
    E::custom("an attribute value does not have its definition's type")
}

impl<'de> Visitor<'de> for AttributeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<(), E> {
        match self.0 {
            Builder::Bool(b) => b.append_value(v),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        match self.0 {
            Builder::Float64(b) => b.append_value(v),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        match self.0 {
            Builder::Text(b) => b.append_value(v),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        self.0.append_null();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut date = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'_, str>>()? {
            if key == "date" {
                date = Some(map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        match (self.0, date) {
            (Builder::Date(b), Some(d)) => {
                b.append_value(date32(&d).map_err(<A::Error as de::Error>::custom)?)
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InteractionKind, NewCustomer, NewInteraction};
    use arrow_array::Array;

    /// A file CRM with `customers` customers and, for each, `each`
    /// purchases of increasing amounts, logged customer by customer.
    fn store(dir: &tempfile::TempDir, customers: usize, each: i64) -> Crm {
        let crm = Crm::open(dir.path().join("crm.db")).unwrap();
        let ids: Vec<_> = (0..customers)
            .map(|i| {
                crm.create_customer(NewCustomer {
                    name: Some(format!("Customer {i}")),
                    ..Default::default()
                })
                .unwrap()
                .id
            })
            .collect();
        let log = ids.iter().enumerate().flat_map(|(c, id)| {
            (0..each).map(move |k| NewInteraction {
                amount_minor: Some(c as i64 * 1_000 + k),
                currency: Some("EUR".into()),
                ..NewInteraction::new(*id, InteractionKind::Purchase)
            })
        });
        crm.import_interactions(log, &Default::default(), None)
            .unwrap();
        crm
    }

    fn request(batch_size: usize, filter: Option<&str>) -> Request {
        let options = ReadOptions {
            batch_size,
            filter: filter.map(FilterRef::Text),
            ..ReadOptions::default()
        };
        Request::new(Table::Interactions, &options).unwrap()
    }

    /// The `amount_minor` column of every batch, and the batch sizes.
    fn amounts(reader: TableReader) -> (Vec<Option<i64>>, Vec<usize>) {
        let (mut values, mut sizes) = (Vec::new(), Vec::new());
        for batch in reader {
            let batch = batch.unwrap();
            sizes.push(batch.num_rows());
            let column = batch.column_by_name("amount_minor").unwrap();
            let column = column
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            values.extend((0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i))));
        }
        (values, sizes)
    }

    fn parallel(crm: &Crm, request: Request) -> TableReader {
        match crm.read_in_parallel(request, 0).unwrap() {
            Ok(reader) => {
                assert!(matches!(reader.source, Source::Parallel { .. }));
                reader
            }
            Err(_) => panic!("the read was not split"),
        }
    }

    #[test]
    fn a_split_read_gives_the_rows_of_one_thread_in_storage_order() {
        let dir = tempfile::tempdir().unwrap();
        let crm = store(&dir, 40, 25);
        let single = crm
            .read_table(
                Table::Interactions,
                &ReadOptions {
                    batch_size: 64,
                    ..Default::default()
                },
            )
            .unwrap();
        let (expected, _) = amounts(single);
        assert_eq!(expected.len(), 1_000);
        let (got, sizes) = amounts(parallel(&crm, request(64, None)));
        assert_eq!(got, expected);
        assert!(sizes.iter().all(|&n| (1..=64).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn a_split_read_with_a_filter_skips_chunks_without_rows() {
        let dir = tempfile::tempdir().unwrap();
        let crm = store(&dir, 40, 25);
        // Customers 10 and 30 only: most chunks are empty.
        let filter = r#"name in ("Customer 10", "Customer 30")"#;
        let (got, _) = amounts(parallel(&crm, request(7, Some(filter))));
        let expected: Vec<_> = [10_i64, 30]
            .iter()
            .flat_map(|c| (0..25).map(move |k| Some(c * 1_000 + k)))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_split_read_that_matches_nothing_yields_one_empty_batch() {
        let dir = tempfile::tempdir().unwrap();
        let crm = store(&dir, 10, 10);
        let (got, sizes) = amounts(parallel(&crm, request(8, Some(r#"name = "nobody""#))));
        assert!(got.is_empty());
        assert_eq!(sizes, vec![0]);
    }

    #[test]
    fn dropping_a_split_read_midway_stops_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        let crm = store(&dir, 20, 20);
        let mut reader = parallel(&crm, request(5, None));
        assert_eq!(reader.next().unwrap().unwrap().num_rows(), 5);
        drop(reader);
        // The connections are back: a write and a read go through.
        crm.create_customer(NewCustomer {
            name: Some("After".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(crm.count_customers().unwrap(), 21);
    }

    #[test]
    fn small_tables_are_read_by_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let crm = store(&dir, 5, 5);
        let reader = crm
            .read_table(Table::Interactions, &ReadOptions::default())
            .unwrap();
        assert!(matches!(reader.source, Source::Stream(_)));
    }
}
