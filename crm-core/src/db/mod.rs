//! Storage: the only place that knows SQL.
//!
//! One writer connection behind a mutex (SQLite allows one writer at a time
//! anyway) and, for file databases, a small pool of read-only connections so
//! that reads run beside a write under WAL.

pub(crate) mod changes;
pub(crate) mod consent;
pub(crate) mod customers;
pub(crate) mod deals;
pub(crate) mod derived;
pub(crate) mod interactions;
pub(crate) mod lifecycle;
pub(crate) mod rules;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod segments;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use crate::model::change::{ChangeListener, EntityKind};

const MAX_IDLE_READERS: usize = 4;

thread_local! {
    /// The databases this thread is inside a write transaction of.
    static WRITING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks this thread as writing to a database until dropped, so that even a
/// panic inside the transaction clears the mark.
struct Writing(usize);

impl Writing {
    fn enter(db: &Database) -> Writing {
        let me = db as *const Database as usize;
        WRITING.with(|w| w.borrow_mut().push(me));
        Writing(me)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.with(|w| w.borrow_mut().retain(|d| *d != self.0));
    }
}

/// State of a bulk insert: rows are written without their change-log entry
/// and search-index entry, which [`finish_bulk`] adds for all of them in one
/// pass; attribute types are looked up once per import.
#[derive(Default)]
pub(crate) struct Bulk {
    pub attribute_types: std::collections::HashMap<String, crate::model::customer::AttributeType>,
}

impl Bulk {
    /// A row was rolled back: definitions it added may be gone, so forget
    /// what was learnt (it is looked up again).
    pub fn row_rolled_back(&mut self) {
        self.attribute_types.clear();
    }
}

/// The table that holds entities of `kind`.
pub(crate) fn table_of(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Customer => "customers",
        EntityKind::Interaction => "interactions",
        EntityKind::Consent => "consents",
        EntityKind::Segment => "segments",
        EntityKind::SegmentMember => "segment_members",
        EntityKind::Pipeline => "pipelines",
        EntityKind::Deal => "deals",
        EntityKind::Task => "tasks",
        EntityKind::Rule => "rules",
        EntityKind::Team => "teams",
        EntityKind::Settings => "settings",
    }
}

/// The rowid the next row inserted into `kind`'s table will get: the rows a
/// bulk insert adds are those from it on.
pub(crate) fn next_rowid(conn: &Connection, kind: EntityKind) -> Result<i64> {
    let sql = format!("SELECT coalesce(max(rowid), 0) + 1 FROM {}", table_of(kind));
    Ok(conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?)
}

/// Adds the change-log entries (and, for customers and interactions, the
/// search-index entries) of every row of `entity`'s table from `first_rowid`
/// on.
pub(crate) fn finish_bulk(
    conn: &Connection,
    ctx: &crate::model::change::ChangeContext,
    entity: EntityKind,
    first_rowid: i64,
) -> Result<()> {
    let table = table_of(entity);
    conn.prepare_cached(&format!(
        "INSERT INTO changes (at, entity, entity_id, op, fields, actor, source, rule) \
         SELECT created_at, ?, id, 'created', NULL, ?, ?, ? FROM {table} WHERE rowid >= ? ORDER BY rowid"
    ))?
    .execute(rusqlite::params![entity.as_str(), ctx.actor, ctx.source, ctx.rule, first_rowid])?;
    match entity {
        EntityKind::Customer => {
            lifecycle::record_created_from(conn, ctx, first_rowid)?;
            search::index_customers_from(conn, first_rowid)
        }
        EntityKind::Interaction => {
            derived::add_interactions_from(conn, first_rowid)?;
            search::index_interactions_from(conn, first_rowid)
        }
        _ => Ok(()),
    }
}

pub(crate) struct Database {
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// Set by [`Database::close`]; read without taking the writer's lock, so
    /// that reads never wait for a write.
    closed: std::sync::atomic::AtomicBool,
    /// `None` for an in-memory database, which has a single connection.
    path: Option<PathBuf>,
    busy_timeout_ms: u32,
    /// Told about every committed write; see [`crate::ChangeListener`].
    listeners: std::sync::RwLock<Vec<(u64, Arc<dyn ChangeListener>)>>,
    next_listener: std::sync::atomic::AtomicU64,
}

/// Change-log entries a listener is given at a time.
const NOTIFY_BATCH: u32 = 1_000;

/// Locks a mutex, ignoring poisoning: a panic inside a transaction closure
/// dropped the transaction, which rolled it back, so the connection is sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Database {
    pub fn open(path: Option<&Path>, busy_timeout_ms: u32) -> Result<Self> {
        let mut conn = match path {
            Some(p) => Connection::open_with_flags(
                p,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            None => Connection::open_in_memory()?,
        };
        schema::configure(&conn, busy_timeout_ms, true)?;
        // Refuse newer or foreign files before switching the journal mode,
        // which would write to them.
        schema::migrate(&mut conn)?;
        if path.is_some() {
            schema::enable_wal(&conn)?;
        }
        Ok(Database {
            writer: Mutex::new(Some(conn)),
            readers: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            path: path.map(Path::to_path_buf),
            busy_timeout_ms,
            listeners: std::sync::RwLock::new(Vec::new()),
            next_listener: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Fails with [`Error::Busy`] instead of deadlocking when a callback
    /// that runs inside a write (an import's progress callback) calls back
    /// into the same database on the writer connection.
    fn refuse_reentry(&self) -> Result<()> {
        let me = self as *const Database as usize;
        if WRITING.with(|w| w.borrow().contains(&me)) {
            return Err(Error::Busy);
        }
        Ok(())
    }

    /// Runs `f` in an `IMMEDIATE` transaction that commits only if `f`
    /// returns `Ok`.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.refuse_reentry()?;
        let watched = !self.listeners().is_empty();
        let mut guard = lock(&self.writer);
        let conn = guard.as_mut().ok_or(Error::Closed)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last_seq = |tx: &Transaction<'_>| -> Result<i64> {
            Ok(tx
                .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
                .query_row([], |r| r.get(0))?)
        };
        let before = if watched { last_seq(&tx)? } else { 0 };
        let value = {
            let _writing = Writing::enter(self);
            f(&tx)?
        };
        let after = if watched { last_seq(&tx)? } else { 0 };
        tx.commit()?;
        drop(guard);
        if after > before {
            self.notify(before, after);
        }
        Ok(value)
    }

    /// Runs `f` in a transaction that is always rolled back: what a write
    /// would do, without doing it (dry runs). Listeners hear nothing.
    pub fn write_rolled_back<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.refuse_reentry()?;
        let mut guard = lock(&self.writer);
        let conn = guard.as_mut().ok_or(Error::Closed)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = {
            let _writing = Writing::enter(self);
            f(&tx)
        };
        tx.rollback()?;
        value
    }

    fn listeners(&self) -> std::sync::RwLockReadGuard<'_, Vec<(u64, Arc<dyn ChangeListener>)>> {
        self.listeners
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_listener(&self, listener: Arc<dyn ChangeListener>) -> u64 {
        let id = self
            .next_listener
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((id, listener));
        id
    }

    pub fn remove_listener(&self, id: u64) -> bool {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = listeners.len();
        listeners.retain(|(i, _)| *i != id);
        listeners.len() < before
    }

    /// Gives the listeners the change-log entries `(before, after]` of a
    /// committed write, in batches, with no lock held (they may use the
    /// database). A listener that panics is skipped; the write stands.
    fn notify(&self, before: i64, after: i64) {
        let mut seq = before;
        while seq < after {
            let Ok(batch) = self.read(|conn| changes::since(conn, seq, NOTIFY_BATCH)) else {
                return;
            };
            let batch: Vec<_> = batch.into_iter().take_while(|c| c.seq <= after).collect();
            let Some(last) = batch.last() else { return };
            seq = last.seq;
            let listeners: Vec<_> = self.listeners().iter().map(|(_, l)| l.clone()).collect();
            for listener in listeners {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    listener.on_changes(&batch)
                }));
            }
        }
    }

    /// Runs `f` on a read connection (a pooled read-only one for files, the
    /// single connection for memory).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let Some(path) = &self.path else {
            self.refuse_reentry()?;
            let guard = lock(&self.writer);
            let conn = guard.as_ref().ok_or(Error::Closed)?;
            return f(conn);
        };
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                schema::configure(&c, self.busy_timeout_ms, false)?;
                c
            }
        };
        // A read sees one consistent snapshot even across several statements.
        conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        let result = f(&conn);
        let _ = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        let mut readers = lock(&self.readers);
        if readers.len() < MAX_IDLE_READERS && !self.is_closed() {
            readers.push(conn);
        }
        result
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Closes every connection; later calls fail with [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        lock(&self.readers).clear();
        if let Some(conn) = lock(&self.writer).take() {
            conn.close().map_err(|(_, e)| Error::from(e))?;
        }
        Ok(())
    }
}

/// Microseconds since the Unix epoch: the stored form of a time.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    Utc.timestamp_micros(us)
        .single()
        .ok_or_else(|| Error::Storage("time out of range in the database".into()))
}

/// A JSON column decoded, or a storage error naming the column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|_| Error::Storage(format!("malformed JSON in column {column}")))
}
