//! The `crm._crm` extension module: a thin pyo3 wrapper over `crm-core`.
//!
//! It converts and nothing else: every rule, check and query is the core's.
//! Each call into the core releases the GIL (`py.detach`), so other Python
//! threads run while the database works; a `Crm` is `frozen` and holds a
//! `crm_core::Crm`, which is `Send + Sync`, so one handle serves many threads.
//!
//! * `errors.rs`: the exception hierarchy and the one conversion from
//!   `crm_core::Error`;
//! * `convert.rs`: Python values to core types and back (filters: a `str`
//!   in the filter language or a dict holding its syntax tree);
//! * `imports.rs`: Python record sources, progress callbacks, cancellation;
//! * `insights.rs`: analytics over the store (scores, satisfaction, cohorts)
//!   in and out;
//! * `deals.rs`: pipelines, deals, the forecast and tasks;
//! * `lifecycle.rs`: lifecycle stages, their transitions and funnel;
//! * `listeners.rs`: Python callables as change listeners.

mod analytics;
mod convert;
mod deals;
mod errors;
mod imports;
mod insights;
mod lifecycle;
mod listeners;
mod rules;
mod tables;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;

use crm_core::export::ExportFormat;
use crm_core::import::{ColumnMapping, ImportOptions, ImportProgress, ImportReport};
use crm_core::{
    AttributeType, Customer, CustomerId, CustomerSort, Interaction, InteractionId, InteractionKind,
    ListCustomers, ListenerId, MembersQuery, NewConsent, NewSegment, OpenOptions, SegmentPatch,
    TimelineQuery,
};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyIterator, PyList, PyString};

use crate::errors::{OrRaise, invalid, to_py_err};
use crate::imports::{BatchSource, Failure, FileSource, Progress, RecordSource};

/// State shared by a handle and the handles made from it by `with_actor`.
struct Shared {
    /// For `repr`.
    in_memory: bool,
    /// Threads running an import on this database right now.
    importing: Mutex<Vec<ThreadId>>,
    /// The change listeners registered through these handles. `close`
    /// unregisters them: a callable that refers to its handle would
    /// otherwise keep it (and the database) alive in a cycle through Rust
    /// that Python's garbage collector can't see.
    listeners: Mutex<Vec<ListenerId>>,
}

/// Marks the current thread as importing until dropped.
struct ImportGuard<'a>(&'a Shared);

impl<'a> ImportGuard<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared
            .importing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(std::thread::current().id());
        ImportGuard(shared)
    }
}

impl Drop for ImportGuard<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut threads = self
            .0
            .importing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = threads.iter().position(|t| *t == me) {
            threads.swap_remove(i);
        }
    }
}

/// The core handle with the binding's per-database state.
#[derive(Clone)]
struct Handle {
    inner: crm_core::Crm,
    shared: Arc<Shared>,
}

/// A handle on one CRM database. Use it from any number of threads; close it
/// with `close()` or a `with` block.
#[pyclass(module = "crm", name = "Crm", frozen)]
struct Crm(Handle);

impl std::ops::Deref for Crm {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.0
    }
}

impl Handle {
    /// Runs `f` on the core with the GIL released.
    ///
    /// An import holds the database's write lock while it calls back into
    /// Python (the record iterable, the progress callback), and every core
    /// call takes that lock, if only briefly. A call from there on the same
    /// database would wait for itself forever, so it fails with `BusyError`.
    /// Change listeners are the exception: the core calls them on the
    /// import's thread too, but after the commit, with no lock held.
    fn run<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&crm_core::Crm) -> crm_core::Result<T> + Send,
    {
        let me = std::thread::current().id();
        if !listeners::notifying()
            && self
                .shared
                .importing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&me)
        {
            return Err(to_py_err(crm_core::Error::Busy));
        }
        let inner = &self.inner;
        py.detach(move || f(inner)).or_raise()
    }

    /// Runs an import: `job` gets the core handle, the options and the
    /// progress callback. It runs on a thread of its own (see `imports.rs`)
    /// while this one waits with the GIL released, watching for Ctrl-C.
    fn import<'py, J>(
        &self,
        py: Python<'py>,
        options: ImportOptions,
        progress: Progress<'_, 'py>,
        failure: Arc<Failure>,
        job: J,
    ) -> PyResult<Bound<'py, PyDict>>
    where
        J: FnOnce(
                &crm_core::Crm,
                &ImportOptions,
                &mut dyn FnMut(&ImportProgress),
            ) -> crm_core::Result<ImportReport>
            + Send,
    {
        let bar = progress.bar(py)?;
        let result = self.import_with(py, options, progress.callback(bar.as_ref())?, failure, job);
        if let Some(bar) = bar {
            bar.call_method0(pyo3::intern!(py, "close"))?;
        }
        result
    }

    fn import_with<'py, J>(
        &self,
        py: Python<'py>,
        options: ImportOptions,
        callback: Option<Py<PyAny>>,
        failure: Arc<Failure>,
        job: J,
    ) -> PyResult<Bound<'py, PyDict>>
    where
        J: FnOnce(
                &crm_core::Crm,
                &ImportOptions,
                &mut dyn FnMut(&ImportProgress),
            ) -> crm_core::Result<ImportReport>
            + Send,
    {
        // The core calls back after every row; Python hears every
        // `progress_every` rows.
        let every = options.progress_every;
        let options = ImportOptions {
            progress_every: 1,
            ..options
        };
        let (inner, shared) = (&self.inner, &*self.shared);
        let (worker_failure, waiter_failure) = (failure.clone(), &*failure);
        let outcome = py.detach(move || {
            std::thread::scope(|scope| {
                let (done, finished) = std::sync::mpsc::channel::<()>();
                let worker = std::thread::Builder::new()
                    .name("crm-import".into())
                    // Python code (the callback, the records) runs here too.
                    .stack_size(16 << 20)
                    .spawn_scoped(scope, move || {
                        let _done = done;
                        let _importing = ImportGuard::enter(shared);
                        let mut progress = imports::progress_fn(callback, every, worker_failure);
                        imports::catch_cancel(|| job(inner, &options, &mut progress))
                    });
                let worker = match worker {
                    Ok(w) => w,
                    Err(e) => return Some(Err(crm_core::Error::Io(e.to_string()))),
                };
                // Signal handlers run on the main thread only: poll for Ctrl-C
                // and let the import stop at its next row.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    finished.recv_timeout(std::time::Duration::from_millis(50))
                {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        waiter_failure.set(e);
                    }
                }
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        });
        // A Python error (from the callback, the records, or Ctrl-C) wins over
        // what the core reported, with a note saying what became of the rows.
        if let Some(err) = failure.take() {
            let note = match &outcome {
                Some(Ok(report)) => format!(
                    "crm: this exception was raised after the import had been committed \
                     ({} inserted, {} updated, {} rejected)",
                    report.inserted, report.updated, report.rejected
                ),
                _ => {
                    "crm: the import was stopped and rolled back; nothing was imported".to_string()
                }
            };
            err.value(py)
                .call_method1(pyo3::intern!(py, "add_note"), (note,))?;
            return Err(err);
        }
        match outcome {
            Some(result) => convert::report(py, &result.or_raise()?),
            None => Err(to_py_err(crm_core::Error::Storage(
                "the import was stopped".into(),
            ))),
        }
    }
}

impl Crm {
    fn handle(&self, inner: crm_core::Crm) -> Crm {
        Crm(Handle {
            inner,
            shared: self.shared.clone(),
        })
    }

    fn pages(&self, pages: Pages) -> PageIterator {
        PageIterator {
            handle: self.0.clone(),
            state: Mutex::new(PageState {
                pages,
                buffer: VecDeque::new(),
                done: false,
            }),
        }
    }
}

/// Reads an optional argument, `default` when absent or `None`.
fn arg<'py, T>(
    obj: Option<&Bound<'py, PyAny>>,
    default: T,
    read: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<T> {
    match obj {
        Some(o) if !o.is_none() => read(o),
        _ => Ok(default),
    }
}

/// An optional argument whose absence differs from `None` (`None` clears).
enum Given<'py> {
    Absent,
    Value(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Given<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Given::Value(obj.to_owned()))
    }
}

/// A filesystem path from `str` or `os.PathLike`.
fn path(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<PathBuf> {
    if obj.is_instance_of::<PyString>() {
        return convert::string(obj, field).map(PathBuf::from);
    }
    obj.extract::<PathBuf>()
        .map_err(|_| invalid(field, "must be a str or os.PathLike"))
}

/// A dict of keyword arguments merged over an optional positional mapping.
fn merged<'py>(
    py: Python<'py>,
    positional: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
    field: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    if let Some(p) = positional.filter(|p| !p.is_none()) {
        let mapping = p
            .cast::<pyo3::types::PyMapping>()
            .map_err(|_| invalid(field, "must be a dict"))?;
        out.update(mapping)?;
    }
    if let Some(k) = kwargs {
        out.update(k.as_mapping())?;
    }
    Ok(out)
}

struct ImportArgs<'py> {
    mode: Option<&'py Bound<'py, PyAny>>,
    upsert: Option<&'py Bound<'py, PyAny>>,
    max_errors: Option<&'py Bound<'py, PyAny>>,
    progress_every: Option<&'py Bound<'py, PyAny>>,
}

impl ImportArgs<'_> {
    fn options(&self) -> PyResult<ImportOptions> {
        let defaults = ImportOptions::default();
        Ok(ImportOptions {
            mode: arg(self.mode, defaults.mode, |o| convert::enum_value(o, "mode"))?,
            upsert: arg(self.upsert, defaults.upsert, |o| {
                convert::boolean(o, "upsert")
            })?,
            max_errors: arg(self.max_errors, defaults.max_errors, |o| {
                convert::integer(o, "max_errors")
            })?,
            progress_every: arg(self.progress_every, defaults.progress_every, |o| {
                convert::integer(o, "progress_every")
            })?,
        })
    }
}

fn column_mapping(
    mapping: Option<&Bound<'_, PyAny>>,
    ignore: Option<&Bound<'_, PyAny>>,
) -> PyResult<ColumnMapping> {
    let mut out = ColumnMapping::default();
    if let Some(m) = mapping.filter(|m| !m.is_none()) {
        let dict = m
            .cast::<PyDict>()
            .map_err(|_| invalid("mapping", "must be a dict of field to column"))?;
        for (field, column) in dict.iter() {
            let field = convert::string(&field, "mapping")?;
            let column = convert::string(&column, &format!("mapping.{field}"))?;
            out.columns.insert(field, column);
        }
    }
    if let Some(i) = ignore.filter(|i| !i.is_none()) {
        out.ignore = convert::string_list(i, "ignore")?;
    }
    Ok(out)
}

fn open_file(path: &std::path::Path) -> crm_core::Result<File> {
    File::open(path).map_err(|e| crm_core::Error::Io(e.to_string()))
}

/// Writes an export to `path`; a failed export leaves no partial file.
fn export_to(
    path: &std::path::Path,
    write: impl FnOnce(&mut BufWriter<File>) -> crm_core::Result<u64>,
) -> crm_core::Result<u64> {
    let file = File::create(path).map_err(|e| crm_core::Error::Io(e.to_string()))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let result = write(&mut out).and_then(|n| {
        out.flush()
            .map(|_| n)
            .map_err(|e| crm_core::Error::Io(e.to_string()))
    });
    if result.is_err() {
        drop(out);
        let _ = std::fs::remove_file(path);
    }
    result
}

#[pymethods]
impl Crm {
    #[new]
    #[pyo3(
        signature = (path = None, *, default_region = None, busy_timeout_ms = None),
        text_signature = "(path=':memory:', *, default_region=None, busy_timeout_ms=5000)"
    )]
    fn new(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        default_region: Option<&Bound<'_, PyAny>>,
        busy_timeout_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Crm> {
        let path = arg(path, None, |p| self::path(p, "path").map(Some))?
            .filter(|p| p.as_os_str() != ":memory:");
        let options = OpenOptions {
            default_region: arg(default_region, None, |r| {
                convert::opt_string(r, "default_region")
            })?,
            busy_timeout_ms: arg(
                busy_timeout_ms,
                OpenOptions::default().busy_timeout_ms,
                |b| convert::integer(b, "busy_timeout_ms"),
            )?,
        };
        let in_memory = path.is_none();
        let inner = py
            .detach(move || crm_core::Crm::open_with(path.as_deref(), options))
            .or_raise()?;
        Ok(Crm(Handle {
            inner,
            shared: Arc::new(Shared {
                in_memory,
                importing: Mutex::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
            }),
        }))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<crm.Crm {}>",
            if self.shared.in_memory {
                "in memory"
            } else {
                "file"
            }
        )
    }

    /// Closes the database for this handle and every handle made from it,
    /// and unregisters their change listeners; later calls raise
    /// ClosedError. Closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let shared = &*self.shared;
        self.run(py, move |c| {
            let closed = c.close();
            let ids = std::mem::take(
                &mut *shared
                    .listeners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            for id in ids {
                c.remove_change_listener(id);
            }
            closed
        })
    }

    /// A handle on the same database whose changes are logged as made by
    /// `actor` through `source`.
    #[pyo3(signature = (actor, source = None))]
    fn with_actor(
        &self,
        actor: &Bound<'_, PyAny>,
        source: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Crm> {
        let actor = convert::string(actor, "actor")?;
        let source = arg(source, None, |s| convert::opt_string(s, "source"))?;
        Ok(self.handle(self.inner.with_actor(actor, source.as_deref())))
    }

    // ----- customers ---------------------------------------------------------

    /// Validates, normalizes and stores a new customer, given as a dict
    /// and/or keyword arguments; returns it as stored.
    #[pyo3(signature = (customer = None, /, **fields))]
    fn create_customer<'py>(
        &self,
        py: Python<'py>,
        customer: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = convert::new_customer(merged(py, customer, fields, "customer")?.as_any())?;
        let stored = self.run(py, move |c| c.create_customer(new))?;
        convert::customer(py, &stored)
    }

    /// The customer with `id`; NotFoundError if there is none.
    fn get_customer<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: CustomerId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.get_customer(id))?;
        convert::customer(py, &found)
    }

    /// The customer with this external id, or None.
    fn find_customer_by_external_id<'py>(
        &self,
        py: Python<'py>,
        external_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let external_id = convert::string(external_id, "external_id")?;
        let found = self.run(py, move |c| c.find_customer_by_external_id(&external_id))?;
        found.map(|f| convert::customer(py, &f)).transpose()
    }

    /// The customer who has this email (compared normalized), or None.
    fn find_customer_by_email<'py>(
        &self,
        py: Python<'py>,
        email: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let email = convert::string(email, "email")?;
        let found = self.run(py, move |c| c.find_customer_by_email(&email))?;
        found.map(|f| convert::customer(py, &f)).transpose()
    }

    /// Applies a partial update; a field given as None is cleared.
    /// `set_attributes` (a dict; None values remove) and `remove_attributes`
    /// (a list of keys) change custom attributes. Returns the stored customer.
    #[pyo3(signature = (id, changes = None, /, **fields))]
    fn update_customer<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        changes: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: CustomerId = convert::id(id, "id")?;
        let patch = convert::customer_patch(merged(py, changes, fields, "changes")?.as_any())?;
        let stored = self.run(py, move |c| c.update_customer(id, &patch))?;
        convert::customer(py, &stored)
    }

    /// Deletes a customer with their interactions and consent records.
    fn delete_customer(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id: CustomerId = convert::id(id, "id")?;
        self.run(py, move |c| c.delete_customer(id))
    }

    /// Creates the customer, or updates the one it matches (by external id,
    /// else email). Returns {"customer": ..., "created": bool}.
    #[pyo3(signature = (customer = None, /, **fields))]
    fn upsert_customer<'py>(
        &self,
        py: Python<'py>,
        customer: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = convert::new_customer(merged(py, customer, fields, "customer")?.as_any())?;
        let done = self.run(py, move |c| c.upsert_customer(new))?;
        convert::upserted(py, &done)
    }

    /// One page of customers: {"items": [...], "next_cursor": str | None}.
    #[pyo3(
        signature = (sort = None, descending = None, limit = None, cursor = None),
        text_signature = "($self, sort='created_at', descending=False, limit=50, cursor=None)"
    )]
    fn list_customers<'py>(
        &self,
        py: Python<'py>,
        sort: Option<&Bound<'py, PyAny>>,
        descending: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = list_query(sort, descending, limit, cursor, 50)?;
        let page = self.run(py, move |c| c.list_customers(&query))?;
        convert::page(py, &page, convert::customer)
    }

    /// One page of customers as small list rows ("cards": id, kind, name,
    /// first email and phone, lifecycle stage, owner, tags and the latest
    /// interaction): {"items": [...], "next_cursor": str | None}.
    #[pyo3(
        signature = (*, sort = None, descending = None, limit = None, cursor = None),
        text_signature = "($self, *, sort='created_at', descending=False, limit=50, cursor=None)"
    )]
    fn list_customer_cards<'py>(
        &self,
        py: Python<'py>,
        sort: Option<&Bound<'py, PyAny>>,
        descending: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = list_query(sort, descending, limit, cursor, 50)?;
        let page = self.run(py, move |c| c.list_customer_cards(&query))?;
        convert::page(py, &page, convert::customer_card)
    }

    /// Every customer, fetched a page at a time.
    #[pyo3(
        signature = (sort = None, descending = None, page_size = None),
        text_signature = "($self, sort='created_at', descending=False, page_size=500)"
    )]
    fn iter_customers(
        &self,
        sort: Option<&Bound<'_, PyAny>>,
        descending: Option<&Bound<'_, PyAny>>,
        page_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PageIterator> {
        let query = list_query(sort, descending, page_size, None, 500)?;
        Ok(self.pages(Pages::Customers(query)))
    }

    /// How many customers there are.
    fn count_customers(&self, py: Python<'_>) -> PyResult<u64> {
        self.run(py, |c| c.count_customers())
    }

    /// Declares a custom attribute's type ("text", "number", "bool", "date").
    fn define_attribute(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        r#type: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let key = convert::string(key, "key")?;
        let ty = AttributeType::parse(&convert::string(r#type, "type")?).or_raise()?;
        self.run(py, move |c| c.define_attribute(&key, ty))
    }

    /// Every custom attribute as {"key", "type"}.
    fn attribute_definitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let defs = self.run(py, |c| c.attribute_definitions())?;
        convert::list(py, &defs, convert::attribute_definition)
    }

    // ----- interactions ------------------------------------------------------

    /// Logs an interaction. `customer` is an id, or a dict with one of "id",
    /// "external_id", "email".
    #[pyo3(signature = (customer, kind, **fields))]
    fn log_interaction<'py>(
        &self,
        py: Python<'py>,
        customer: &Bound<'py, PyAny>,
        kind: &Bound<'py, PyAny>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = convert::new_interaction(customer, kind, fields)?;
        let stored = self.run(py, move |c| c.log_interaction(new))?;
        convert::interaction(py, &stored)
    }

    /// The interaction with `id`; NotFoundError if there is none.
    fn get_interaction<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: InteractionId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.get_interaction(id))?;
        convert::interaction(py, &found)
    }

    /// A page of a customer's timeline, newest first.
    #[pyo3(
        signature = (customer_id, kind = None, limit = None, cursor = None),
        text_signature = "($self, customer_id, kind=None, limit=50, cursor=None)"
    )]
    fn timeline<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (id, query) = timeline_query(customer_id, kind, limit, cursor, 50)?;
        let page = self.run(py, move |c| c.timeline(id, &query))?;
        convert::page(py, &page, convert::interaction)
    }

    /// A customer's whole timeline, newest first, fetched a page at a time.
    #[pyo3(
        signature = (customer_id, kind = None, page_size = None),
        text_signature = "($self, customer_id, kind=None, page_size=500)"
    )]
    fn iter_timeline(
        &self,
        customer_id: &Bound<'_, PyAny>,
        kind: Option<&Bound<'_, PyAny>>,
        page_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PageIterator> {
        let (id, query) = timeline_query(customer_id, kind, page_size, None, 500)?;
        Ok(self.pages(Pages::Timeline(id, query)))
    }

    /// How many interactions there are.
    fn count_interactions(&self, py: Python<'_>) -> PyResult<u64> {
        self.run(py, |c| c.count_interactions())
    }

    // ----- consent -----------------------------------------------------------

    /// Appends a consent answer ("granted", "denied", "withdrawn") to the
    /// customer's ledger; `channel=None` covers every channel.
    #[pyo3(signature = (customer_id, purpose, status, *, channel = None, legal_basis = None, source = None, proof = None, recorded_at = None))]
    #[allow(clippy::too_many_arguments)]
    fn record_consent<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        purpose: &Bound<'py, PyAny>,
        status: &Bound<'py, PyAny>,
        channel: Option<&Bound<'py, PyAny>>,
        legal_basis: Option<&Bound<'py, PyAny>>,
        source: Option<&Bound<'py, PyAny>>,
        proof: Option<&Bound<'py, PyAny>>,
        recorded_at: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let new = NewConsent {
            purpose: convert::string(purpose, "purpose")?,
            channel: arg(channel, None, |o| convert::opt_string(o, "channel"))?,
            status: convert::consent_status(status)?,
            legal_basis: arg(legal_basis, None, convert::legal_basis)?,
            source: arg(source, None, |o| convert::opt_string(o, "source"))?,
            proof: arg(proof, None, |o| convert::opt_string(o, "proof"))?,
            recorded_at: arg(recorded_at, None, |o| convert::opt_time(o, "recorded_at"))?,
        };
        let record = self.run(py, move |c| c.record_consent(id, &new))?;
        convert::consent_record(py, &record)
    }

    /// The record that currently answers for `purpose` on `channel`, or None.
    #[pyo3(signature = (customer_id, purpose, channel = None))]
    fn consent<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        purpose: &Bound<'py, PyAny>,
        channel: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let purpose = convert::string(purpose, "purpose")?;
        let channel = arg(channel, None, |o| convert::opt_string(o, "channel"))?;
        let record = self.run(py, move |c| c.consent(id, &purpose, channel.as_deref()))?;
        record.map(|r| convert::consent_record(py, &r)).transpose()
    }

    /// Whether the customer's latest answer for `purpose` on `channel` is
    /// "granted" (no answer means no).
    #[pyo3(signature = (customer_id, purpose, channel = None))]
    fn has_consent(
        &self,
        py: Python<'_>,
        customer_id: &Bound<'_, PyAny>,
        purpose: &Bound<'_, PyAny>,
        channel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let purpose = convert::string(purpose, "purpose")?;
        let channel = arg(channel, None, |o| convert::opt_string(o, "channel"))?;
        self.run(py, move |c| c.has_consent(id, &purpose, channel.as_deref()))
    }

    /// The customer's consent ledger, newest first, for one purpose or all.
    #[pyo3(signature = (customer_id, purpose = None))]
    fn consent_history<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        purpose: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let purpose = arg(purpose, None, |o| convert::opt_string(o, "purpose"))?;
        let records = self.run(py, move |c| c.consent_history(id, purpose.as_deref()))?;
        convert::list(py, &records, convert::consent_record)
    }

    // ----- search and change log ---------------------------------------------

    /// Full-text search over names, emails, phones and interaction subjects.
    #[pyo3(signature = (query, limit = None), text_signature = "($self, query, limit=20)")]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let query = convert::string(query, "query")?;
        let limit = arg(limit, 20, |o| convert::limit(o, "limit"))?;
        let hits = self.run(py, move |c| c.search(&query, limit))?;
        convert::list(py, &hits, convert::search_hit)
    }

    /// Change-log entries after sequence number `after_seq`, oldest first.
    #[pyo3(signature = (after_seq = None, limit = None), text_signature = "($self, after_seq=0, limit=1000)")]
    fn changes_since<'py>(
        &self,
        py: Python<'py>,
        after_seq: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let after: i64 = arg(after_seq, 0, |o| convert::integer(o, "after_seq"))?;
        let limit = arg(limit, 1000, |o| convert::limit(o, "limit"))?;
        let changes = self.run(py, move |c| c.changes_since(after, limit))?;
        convert::list(py, &changes, convert::change)
    }

    /// Every change-log entry of one customer, oldest first.
    fn customer_history<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id: CustomerId = convert::id(id, "id")?;
        let changes = self.run(py, move |c| c.customer_history(id))?;
        convert::list(py, &changes, convert::change)
    }

    /// Calls `callback` with a list of change-log entries (the dicts of
    /// `changes_since`) after every committed write to this database,
    /// through any handle; returns the id that `remove_change_listener`
    /// takes. It runs on the thread that wrote (an import's own thread for
    /// imports), right after the commit, in batches of at most 1000 entries,
    /// and may read and write the CRM. An exception it raises goes to
    /// `sys.unraisablehook`; the write stands and other listeners still run.
    /// `close` unregisters every listener.
    fn add_change_listener(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<u64> {
        if !callback.is_callable() {
            return Err(invalid("callback", "must be callable"));
        }
        let listener = Arc::new(listeners::Listener::new(callback.clone().unbind()));
        let inner = &self.inner;
        let id = py.detach(move || inner.add_change_listener(listener));
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
        Ok(id.0)
    }

    /// Unregisters a change listener; returns whether it was registered. A
    /// batch being delivered on another thread may still reach it.
    fn remove_change_listener(
        &self,
        py: Python<'_>,
        listener_id: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let id = ListenerId(convert::integer(listener_id, "listener_id")?);
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|l| *l != id);
        let inner = &self.inner;
        Ok(py.detach(move || inner.remove_change_listener(id)))
    }

    // ----- filters -------------------------------------------------------------

    /// Checks a filter (text in the filter language, or its syntax tree as a
    /// dict) against this database's fields, attributes and segments; returns
    /// its canonical text. ParseError says what is wrong and where.
    fn check_filter(&self, py: Python<'_>, filter: &Bound<'_, PyAny>) -> PyResult<String> {
        let filter = convert::filter(filter, "filter")?;
        self.run(py, move |c| c.check_filter(filter.as_ref()))
    }

    /// How many customers match a filter.
    fn count_matching(&self, py: Python<'_>, filter: &Bound<'_, PyAny>) -> PyResult<u64> {
        let filter = convert::filter(filter, "filter")?;
        self.run(py, move |c| c.count_matching(filter.as_ref()))
    }

    /// One page of the customers who match a filter, in creation order:
    /// {"items": [...], "next_cursor": str | None}.
    #[pyo3(
        signature = (filter, *, limit = None, cursor = None),
        text_signature = "($self, filter, *, limit=100, cursor=None)"
    )]
    fn find_matching<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let filter = convert::filter(filter, "filter")?;
        let query = members_query(limit, cursor, 100)?;
        let page = self.run(py, move |c| c.find_matching(filter.as_ref(), &query))?;
        convert::page(py, &page, convert::customer)
    }

    /// Whether one customer matches a filter (reads only that customer).
    fn customer_matches(
        &self,
        py: Python<'_>,
        customer_id: &Bound<'_, PyAny>,
        filter: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let filter = convert::filter(filter, "filter")?;
        self.run(py, move |c| c.customer_matches(id, filter.as_ref()))
    }

    /// The SQL a filter runs as, its parameters and SQLite's query plan.
    fn explain(&self, py: Python<'_>, filter: &Bound<'_, PyAny>) -> PyResult<Explain> {
        let filter = convert::filter(filter, "filter")?;
        let crm_core::Explain {
            canonical,
            sql,
            params,
            plan,
        } = self.run(py, move |c| c.explain(filter.as_ref()))?;
        Ok(Explain {
            canonical,
            sql,
            params,
            plan,
        })
    }

    // ----- segments ------------------------------------------------------------

    /// Creates a segment: dynamic (whoever matches `filter`, which may use
    /// other segments with in_segment("name")) or, without a filter, static
    /// (customers are added with add_to_segment).
    #[pyo3(signature = (name, *, filter = None, description = None))]
    fn create_segment<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        filter: Option<&Bound<'py, PyAny>>,
        description: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = NewSegment {
            name: convert::string(name, "name")?,
            description: arg(description, None, |o| convert::opt_string(o, "description"))?,
            filter: arg(filter, None, |o| {
                convert::filter(o, "filter").map(|f| Some(f.into_text()))
            })?,
        };
        // Fails to compile when the core adds a field, so it can't be forgotten here.
        let NewSegment {
            name: _,
            description: _,
            filter: _,
        } = &new;
        let stored = self.run(py, move |c| c.create_segment(&new))?;
        convert::segment(py, &stored)
    }

    /// The segment called `name`; NotFoundError if there is none.
    fn segment<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let found = self.run(py, move |c| c.segment(&name))?;
        convert::segment(py, &found)
    }

    /// Every segment, by name.
    fn segments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let all = self.run(py, |c| c.segments())?;
        convert::list(py, &all, convert::segment)
    }

    /// Renames a segment; the filters of segments that use it follow.
    fn rename_segment<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        new_name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let new_name = convert::string(new_name, "new_name")?;
        let stored = self.run(py, move |c| c.rename_segment(&name, &new_name))?;
        convert::segment(py, &stored)
    }

    /// Changes a segment's filter (dynamic segments only; None leaves it)
    /// or description (None clears it; leaving it out leaves it).
    #[pyo3(
        signature = (name, *, filter = None, description = Given::Absent),
        text_signature = "($self, name, *, filter=None, description=...)"
    )]
    fn update_segment<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        filter: Option<&Bound<'py, PyAny>>,
        description: Given<'py>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let patch = SegmentPatch {
            description: match description {
                Given::Absent => None,
                Given::Value(d) => Some(convert::opt_string(&d, "description")?),
            },
            filter: arg(filter, None, |o| {
                convert::filter(o, "filter").map(|f| Some(f.into_text()))
            })?,
        };
        let SegmentPatch {
            description: _,
            filter: _,
        } = &patch;
        let stored = self.run(py, move |c| c.update_segment(&name, &patch))?;
        convert::segment(py, &stored)
    }

    /// Deletes a segment; ConflictError if other segments use it.
    fn delete_segment(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = convert::string(name, "name")?;
        self.run(py, move |c| c.delete_segment(&name))
    }

    /// Adds customers (a list of ids) to a static segment; returns how many
    /// were not members yet. An unknown id adds no one.
    fn add_to_segment(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        customer_ids: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let name = convert::string(name, "name")?;
        let ids: Vec<CustomerId> = convert::id_list(customer_ids, "customer_ids")?;
        self.run(py, move |c| c.add_to_segment(&name, &ids))
    }

    /// Removes customers (a list of ids) from a static segment; returns how
    /// many were members.
    fn remove_from_segment(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        customer_ids: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let name = convert::string(name, "name")?;
        let ids: Vec<CustomerId> = convert::id_list(customer_ids, "customer_ids")?;
        self.run(py, move |c| c.remove_from_segment(&name, &ids))
    }

    /// How many members a segment has now (a dynamic one is evaluated).
    fn segment_count(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u64> {
        let name = convert::string(name, "name")?;
        self.run(py, move |c| c.segment_count(&name))
    }

    /// One page of a segment's members, in creation order:
    /// {"items": [...], "next_cursor": str | None}.
    #[pyo3(
        signature = (name, *, limit = None, cursor = None),
        text_signature = "($self, name, *, limit=100, cursor=None)"
    )]
    fn segment_members<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let query = members_query(limit, cursor, 100)?;
        let page = self.run(py, move |c| c.segment_members(&name, &query))?;
        convert::page(py, &page, convert::customer)
    }

    /// Every member of a segment, in creation order, fetched `batch_size` at
    /// a time as the iterator advances.
    #[pyo3(
        signature = (name, *, batch_size = None),
        text_signature = "($self, name, *, batch_size=1000)"
    )]
    fn iter_segment_members(
        &self,
        name: &Bound<'_, PyAny>,
        batch_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PageIterator> {
        let name = convert::string(name, "name")?;
        let query = MembersQuery {
            limit: arg(batch_size, 1000, |o| convert::limit(o, "batch_size"))?,
            cursor: None,
        };
        Ok(self.pages(Pages::Segment(name, query)))
    }

    /// Whether a customer is a member of a segment now (reads only that
    /// customer).
    fn segment_contains(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        customer_id: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let name = convert::string(name, "name")?;
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        self.run(py, move |c| c.segment_contains(&name, id))
    }

    /// Evaluates a dynamic segment and stores its membership; everyone who
    /// entered or left since the last time gets a "segment_member" entry in
    /// the change log. Returns {"members", "entered", "left"}.
    fn materialize_segment<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let report = self.run(py, move |c| c.materialize_segment(&name))?;
        convert::materialize_report(py, &report)
    }

    // ----- imports -----------------------------------------------------------

    /// Imports customers from a DataFrame (pandas, polars), an Arrow table,
    /// record batch or reader (anything with `__arrow_c_stream__`), or an
    /// iterable of dicts: the fields of a customer, plus "email", "phone",
    /// "organization_external_id" and "attr.KEY". For a DataFrame, `mapping`
    /// maps field → column and columns listed in `ignore` are skipped; row N
    /// of an error is the DataFrame's N-th row (`df.iloc[N-1]`).
    #[pyo3(
        signature = (records, *, mapping = None, ignore = None, mode = None, upsert = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, records, *, mapping=None, ignore=None, mode='all_or_nothing', upsert=False, max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_customers<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        upsert: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let options = ImportArgs {
            mode,
            upsert,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        match import_source(records, mapping, ignore, failure.clone())? {
            ImportSource::Records(source) => self.import(
                py,
                options,
                Progress::new(progress, "customers").total(records),
                failure,
                move |c, o, p| c.import_customer_records(source, o, Some(p)),
            ),
            ImportSource::Batches(batches, mapping) => self.import(
                py,
                options,
                Progress::new(progress, "customers").total(records),
                failure,
                move |c, o, p| c.import_customers_arrow(batches, &mapping, o, Some(p)),
            ),
        }
    }

    /// Imports customers from a CSV file with a header row. `mapping` maps
    /// field → column; columns listed in `ignore` are skipped.
    #[pyo3(
        signature = (path, *, mapping = None, ignore = None, mode = None, upsert = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, path, *, mapping=None, ignore=None, mode='all_or_nothing', upsert=False, max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_customers_csv<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        upsert: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let path = self::path(path, "path")?;
        let mapping = column_mapping(mapping, ignore)?;
        let options = ImportArgs {
            mode,
            upsert,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        let for_source = failure.clone();
        self.import(
            py,
            options,
            Progress::new(progress, "customers"),
            failure,
            move |c, o, p| {
                let file = FileSource::new(open_file(&path)?, for_source);
                c.import_customers_csv(file, &mapping, o, Some(p))
            },
        )
    }

    /// Imports customers from an NDJSON file (one JSON object per line).
    #[pyo3(
        signature = (path, *, mapping = None, ignore = None, mode = None, upsert = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, path, *, mapping=None, ignore=None, mode='all_or_nothing', upsert=False, max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_customers_ndjson<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        upsert: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let path = self::path(path, "path")?;
        let mapping = column_mapping(mapping, ignore)?;
        let options = ImportArgs {
            mode,
            upsert,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        let for_source = failure.clone();
        self.import(
            py,
            options,
            Progress::new(progress, "customers"),
            failure,
            move |c, o, p| {
                let file = FileSource::new(open_file(&path)?, for_source);
                c.import_customers_ndjson(
                    BufReader::with_capacity(1 << 16, file),
                    &mapping,
                    o,
                    Some(p),
                )
            },
        )
    }

    /// Imports interactions from a DataFrame, an Arrow table, record batch
    /// or reader, or an iterable of dicts (one of "customer_id",
    /// "customer_external_id", "customer_email"; "kind"; and the other
    /// interaction fields, or "amount" in major units with "currency").
    /// `mapping` and `ignore` are as for `import_customers`.
    #[pyo3(
        signature = (records, *, mapping = None, ignore = None, mode = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, records, *, mapping=None, ignore=None, mode='all_or_nothing', max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_interactions<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let options = ImportArgs {
            mode,
            upsert: None,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        match import_source(records, mapping, ignore, failure.clone())? {
            ImportSource::Records(source) => self.import(
                py,
                options,
                Progress::new(progress, "interactions").total(records),
                failure,
                move |c, o, p| c.import_interaction_records(source, o, Some(p)),
            ),
            ImportSource::Batches(batches, mapping) => self.import(
                py,
                options,
                Progress::new(progress, "interactions").total(records),
                failure,
                move |c, o, p| c.import_interactions_arrow(batches, &mapping, o, Some(p)),
            ),
        }
    }

    /// Imports interactions from a CSV file with a header row.
    #[pyo3(
        signature = (path, *, mapping = None, ignore = None, mode = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, path, *, mapping=None, ignore=None, mode='all_or_nothing', max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_interactions_csv<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let path = self::path(path, "path")?;
        let mapping = column_mapping(mapping, ignore)?;
        let options = ImportArgs {
            mode,
            upsert: None,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        let for_source = failure.clone();
        self.import(
            py,
            options,
            Progress::new(progress, "interactions"),
            failure,
            move |c, o, p| {
                let file = FileSource::new(open_file(&path)?, for_source);
                c.import_interactions_csv(file, &mapping, o, Some(p))
            },
        )
    }

    /// Imports interactions from an NDJSON file.
    #[pyo3(
        signature = (path, *, mapping = None, ignore = None, mode = None, max_errors = None, progress = None, progress_every = None),
        text_signature = "($self, path, *, mapping=None, ignore=None, mode='all_or_nothing', max_errors=1000, progress=None, progress_every=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn import_interactions_ndjson<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        mapping: Option<&Bound<'py, PyAny>>,
        ignore: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
        max_errors: Option<&Bound<'py, PyAny>>,
        progress: Option<&Bound<'py, PyAny>>,
        progress_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let path = self::path(path, "path")?;
        let mapping = column_mapping(mapping, ignore)?;
        let options = ImportArgs {
            mode,
            upsert: None,
            max_errors,
            progress_every,
        }
        .options()?;
        let failure = Arc::new(Failure::default());
        let for_source = failure.clone();
        self.import(
            py,
            options,
            Progress::new(progress, "interactions"),
            failure,
            move |c, o, p| {
                let file = FileSource::new(open_file(&path)?, for_source);
                c.import_interactions_ndjson(
                    BufReader::with_capacity(1 << 16, file),
                    &mapping,
                    o,
                    Some(p),
                )
            },
        )
    }

    // ----- exports -----------------------------------------------------------

    /// Writes every customer to `path` as "csv" or "ndjson"; returns how many.
    #[pyo3(signature = (path, format = None), text_signature = "($self, path, format='csv')")]
    fn export_customers(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        format: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let path = self::path(path, "path")?;
        let format = arg(format, ExportFormat::Csv, |o| {
            convert::enum_value(o, "format")
        })?;
        self.run(py, move |c| {
            export_to(&path, |out| c.export_customers(out, format))
        })
    }

    /// Writes every interaction to `path` as "csv" or "ndjson"; returns how
    /// many.
    #[pyo3(signature = (path, format = None), text_signature = "($self, path, format='csv')")]
    fn export_interactions(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        format: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let path = self::path(path, "path")?;
        let format = arg(format, ExportFormat::Csv, |o| {
            convert::enum_value(o, "format")
        })?;
        self.run(py, move |c| {
            export_to(&path, |out| c.export_interactions(out, format))
        })
    }

    // ----- tables as Arrow data -----------------------------------------------

    /// A table ("customers", "interactions", "consent", "scores",
    /// "stage_transitions", "deals" or "tasks") as
    /// Arrow data: a `crm.Table` to read with `to_pandas()`, `to_polars()`,
    /// `to_arrow()`, by iteration, or by any reader of the Arrow PyCapsule
    /// interface. `filter` (text or tree) and `segment` keep the rows of the
    /// matching customers; `since` (inclusive) and `until` (exclusive) bound
    /// interactions by `occurred_at`, consent by `recorded_at`, stage
    /// transitions by `at`, deals and tasks by `created_at`. Bad input
    /// raises here.
    #[pyo3(
        signature = (name, *, filter = None, segment = None, since = None, until = None, batch_size = None),
        text_signature = "($self, name, *, filter=None, segment=None, since=None, until=None, batch_size=65536)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn table(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        filter: Option<&Bound<'_, PyAny>>,
        segment: Option<&Bound<'_, PyAny>>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        batch_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<tables::Table> {
        tables::table(&self.0, py, name, filter, segment, since, until, batch_size)
    }

    // ----- analytics over the store --------------------------------------------

    /// Computes every customer's scores from the purchase log (RFM, the
    /// BG/NBD and Gamma-Gamma models, P(alive), expected purchases over
    /// `horizon_days`, expected value, CLV over `clv_months`), replaces the
    /// stored ones in one transaction and returns the run. The filter
    /// language then reads them: `p_alive < 0.3`, `rfm.segment =
    /// "champions"`, `clv > 100`. Customers without a purchase have none.
    /// `currency=None` is the one currency the purchases use (a
    /// ValidationError naming "currency" if they use several); `unit` is
    /// "days" or "weeks"; `observation_end=None` is now. A failed run
    /// (ValidationError naming the option, or "purchases" when there is
    /// nothing to fit) leaves the stored scores as they were.
    #[pyo3(
        signature = (*, kind = None, currency = None, unit = None, observation_end = None, horizon_days = None, clv_months = None, discount_rate = None, penalizer = None),
        text_signature = "($self, *, kind='purchase', currency=None, unit='days', observation_end=None, horizon_days=90, clv_months=12, discount_rate=0.01, penalizer=0.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn compute_scores<'py>(
        &self,
        py: Python<'py>,
        kind: Option<&Bound<'py, PyAny>>,
        currency: Option<&Bound<'py, PyAny>>,
        unit: Option<&Bound<'py, PyAny>>,
        observation_end: Option<&Bound<'py, PyAny>>,
        horizon_days: Option<&Bound<'py, PyAny>>,
        clv_months: Option<&Bound<'py, PyAny>>,
        discount_rate: Option<&Bound<'py, PyAny>>,
        penalizer: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let defaults = crm_core::ScoreOptions::default();
        let options = crm_core::ScoreOptions {
            kind: arg(kind, defaults.kind, |o| insights::kind(o, "kind"))?,
            currency: arg(currency, None, |o| convert::opt_string(o, "currency"))?,
            unit: arg(unit, defaults.unit, |o| convert::enum_value(o, "unit"))?,
            observation_end: arg(observation_end, None, |o| {
                convert::opt_time(o, "observation_end")
            })?,
            horizon_days: arg(horizon_days, defaults.horizon_days, |o| {
                convert::integer(o, "horizon_days")
            })?,
            clv_months: arg(clv_months, defaults.clv_months, |o| {
                convert::integer(o, "clv_months")
            })?,
            discount_rate: arg(discount_rate, defaults.discount_rate, |o| {
                insights::number(o, "discount_rate")
            })?,
            penalizer: arg(penalizer, defaults.penalizer, |o| {
                insights::number(o, "penalizer")
            })?,
        };
        let run = self.run(py, move |c| c.compute_scores(&options))?;
        insights::score_run(py, &run)
    }

    /// The latest `compute_scores` run (as it returned it), or None.
    fn score_run<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let run = self.run(py, |c| c.score_run())?;
        run.map(|r| insights::score_run(py, &r)).transpose()
    }

    /// A customer's stored scores, or None if they had no purchase at the
    /// latest `compute_scores` run (or there was none); NotFoundError if the
    /// customer doesn't exist. Times are in the run's unit, money in major
    /// units of its currency, except `total_minor`.
    fn customer_scores<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let id: CustomerId = convert::id(customer_id, "customer_id")?;
        let scores = self.run(py, move |c| c.customer_scores(id))?;
        scores
            .map(|s| insights::customer_scores(py, &s))
            .transpose()
    }

    /// NPS and CSAT of the survey answers (interactions of `kind` with a
    /// score 0-10), one dict per `period` ("day", "week", "month",
    /// "quarter", "year", or "all" for one group), oldest first; periods
    /// without answers are left out. Only answers with `subject`, from
    /// `since` (inclusive) until `until` (exclusive), and of the customers
    /// matching the filter `segment`, when given. CSAT counts scores of at
    /// least `satisfied_from` (0-10).
    #[pyo3(
        signature = (*, segment = None, kind = None, subject = None, since = None, until = None, period = None, satisfied_from = None),
        text_signature = "($self, *, segment=None, kind='survey_response', subject=None, since=None, until=None, period='month', satisfied_from=8)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn satisfaction<'py>(
        &self,
        py: Python<'py>,
        segment: Option<&Bound<'py, PyAny>>,
        kind: Option<&Bound<'py, PyAny>>,
        subject: Option<&Bound<'py, PyAny>>,
        since: Option<&Bound<'py, PyAny>>,
        until: Option<&Bound<'py, PyAny>>,
        period: Option<&Bound<'py, PyAny>>,
        satisfied_from: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let defaults = crm_core::SatisfactionQuery::default();
        let query = crm_core::SatisfactionQuery {
            kind: arg(kind, defaults.kind, |o| insights::kind(o, "kind"))?,
            subject: arg(subject, None, |o| convert::opt_string(o, "subject"))?,
            from: arg(since, None, |o| convert::opt_time(o, "since"))?,
            to: arg(until, None, |o| convert::opt_time(o, "until"))?,
            period: arg(period, defaults.period, |o| {
                convert::enum_value(o, "period")
            })?,
            satisfied_from: arg(satisfied_from, defaults.satisfied_from, |o| {
                convert::integer(o, "satisfied_from")
            })?,
        };
        let segment = arg(segment, None, |o| convert::filter(o, "segment").map(Some))?;
        let rows = self.run(py, move |c| {
            c.satisfaction(&query, segment.as_ref().map(convert::Filter::as_ref))
                .map_err(insights::in_range_terms)
        })?;
        convert::list(py, &rows, insights::satisfaction)
    }

    /// Retention by acquisition month (UTC) of the customers' purchases
    /// (interactions of `kind`), of the customers matching the filter
    /// `segment` only, when given; `observation_end=None` is now. The same
    /// `crm.analytics.Retention` as `crm.analytics.cohort_retention` gives
    /// for the same purchases.
    #[pyo3(
        signature = (*, segment = None, kind = None, observation_end = None),
        text_signature = "($self, *, segment=None, kind='purchase', observation_end=None)"
    )]
    fn cohort_retention(
        &self,
        py: Python<'_>,
        segment: Option<&Bound<'_, PyAny>>,
        kind: Option<&Bound<'_, PyAny>>,
        observation_end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<analytics::Retention> {
        let defaults = crm_core::CohortQuery::default();
        let query = crm_core::CohortQuery {
            kind: arg(kind, defaults.kind, |o| insights::kind(o, "kind"))?,
            observation_end: arg(observation_end, None, |o| {
                convert::opt_time(o, "observation_end")
            })?,
        };
        let segment = arg(segment, None, |o| convert::filter(o, "segment").map(Some))?;
        let retention = self.run(py, move |c| {
            c.cohort_retention(&query, segment.as_ref().map(convert::Filter::as_ref))
        })?;
        analytics::Retention::new(py, &retention)
    }
}

/// What an import reads: dicts, or the record batches of a DataFrame or
/// Arrow data with the mapping of their columns.
enum ImportSource {
    Records(RecordSource),
    Batches(BatchSource, ColumnMapping),
}

/// The source of `import_customers` / `import_interactions`: `mapping` and
/// `ignore` apply to DataFrames and Arrow data only.
fn import_source(
    records: &Bound<'_, PyAny>,
    mapping: Option<&Bound<'_, PyAny>>,
    ignore: Option<&Bound<'_, PyAny>>,
    failure: Arc<Failure>,
) -> PyResult<ImportSource> {
    let mut mapping = column_mapping(mapping, ignore)?;
    if let Some(batches) = imports::arrow_batches(records)? {
        imports::ignore_index_columns(&batches.schema(), &mut mapping);
        return Ok(ImportSource::Batches(
            BatchSource::new(batches, failure),
            mapping,
        ));
    }
    for (given, field) in [
        (!mapping.columns.is_empty(), "mapping"),
        (!mapping.ignore.is_empty(), "ignore"),
    ] {
        if given {
            return Err(invalid(
                field,
                "applies to DataFrames and Arrow data; dicts are keyed by field",
            ));
        }
    }
    let iterator = PyIterator::from_object(records).map_err(|_| {
        invalid(
            "records",
            "must be a DataFrame, Arrow data or an iterable of dicts",
        )
    })?;
    Ok(ImportSource::Records(RecordSource::new(
        iterator.unbind(),
        failure,
    )))
}

fn list_query(
    sort: Option<&Bound<'_, PyAny>>,
    descending: Option<&Bound<'_, PyAny>>,
    limit: Option<&Bound<'_, PyAny>>,
    cursor: Option<&Bound<'_, PyAny>>,
    default_limit: u32,
) -> PyResult<ListCustomers> {
    Ok(ListCustomers {
        sort: arg(sort, CustomerSort::default(), |o| {
            convert::enum_value(o, "sort")
        })?,
        descending: arg(descending, false, |o| convert::boolean(o, "descending"))?,
        limit: arg(limit, default_limit, |o| convert::limit(o, "limit"))?,
        cursor: arg(cursor, None, |o| convert::opt_string(o, "cursor"))?,
    })
}

fn members_query(
    limit: Option<&Bound<'_, PyAny>>,
    cursor: Option<&Bound<'_, PyAny>>,
    default_limit: u32,
) -> PyResult<MembersQuery> {
    Ok(MembersQuery {
        limit: arg(limit, default_limit, |o| convert::limit(o, "limit"))?,
        cursor: arg(cursor, None, |o| convert::opt_string(o, "cursor"))?,
    })
}

fn timeline_query(
    customer_id: &Bound<'_, PyAny>,
    kind: Option<&Bound<'_, PyAny>>,
    limit: Option<&Bound<'_, PyAny>>,
    cursor: Option<&Bound<'_, PyAny>>,
    default_limit: u32,
) -> PyResult<(CustomerId, TimelineQuery)> {
    let id: CustomerId = convert::id(customer_id, "customer_id")?;
    let query = TimelineQuery {
        kind: arg(kind, None, |o| {
            convert::opt_string(o, "kind")?
                .map(|k| InteractionKind::parse(&k))
                .transpose()
                .or_raise()
        })?,
        limit: arg(limit, default_limit, |o| convert::limit(o, "limit"))?,
        cursor: arg(cursor, None, |o| convert::opt_string(o, "cursor"))?,
    };
    Ok((id, query))
}

// ----- iterators over pages ---------------------------------------------------

/// What a [`PageIterator`] reads.
enum Pages {
    Customers(ListCustomers),
    Timeline(CustomerId, TimelineQuery),
    Segment(String, MembersQuery),
}

enum Item {
    Customer(Customer),
    Interaction(Interaction),
}

struct PageState {
    pages: Pages,
    buffer: VecDeque<Item>,
    done: bool,
}

/// Iterates over every item of a listing, one page request at a time.
#[pyclass(module = "crm", name = "_PageIterator", frozen)]
struct PageIterator {
    handle: Handle,
    state: Mutex<PageState>,
}

#[pymethods]
impl PageIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        // Two threads sharing an iterator take turns; waiting releases the GIL.
        let mut state = self
            .state
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner);
        if state.buffer.is_empty() && !state.done {
            let crm = &self.handle;
            match &mut state.pages {
                Pages::Customers(query) => {
                    let q = query.clone();
                    let page = crm.run(py, move |c| c.list_customers(&q))?;
                    query.cursor = page.next_cursor.clone();
                    state.done = page.next_cursor.is_none();
                    state
                        .buffer
                        .extend(page.items.into_iter().map(Item::Customer));
                }
                Pages::Timeline(id, query) => {
                    let (id, q) = (*id, query.clone());
                    let page = crm.run(py, move |c| c.timeline(id, &q))?;
                    query.cursor = page.next_cursor.clone();
                    state.done = page.next_cursor.is_none();
                    state
                        .buffer
                        .extend(page.items.into_iter().map(Item::Interaction));
                }
                Pages::Segment(name, query) => {
                    let (name, q) = (name.as_str(), query.clone());
                    let page = crm.run(py, move |c| c.segment_members(name, &q))?;
                    query.cursor = page.next_cursor.clone();
                    state.done = page.next_cursor.is_none();
                    state
                        .buffer
                        .extend(page.items.into_iter().map(Item::Customer));
                }
            }
        }
        match state.buffer.pop_front() {
            Some(Item::Customer(c)) => convert::customer(py, &c).map(Some),
            Some(Item::Interaction(i)) => convert::interaction(py, &i).map(Some),
            None => Ok(None),
        }
    }
}

/// What `Crm.explain` tells about a filter: its canonical text, the SQL it
/// runs as (values are parameters `?1`, `?2`, …), the parameters' values as
/// text, and SQLite's query plan, one step per line.
#[pyclass(module = "crm", name = "Explain", frozen, get_all)]
struct Explain {
    canonical: String,
    sql: String,
    params: Vec<String>,
    plan: Vec<String>,
}

#[pymethods]
impl Explain {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |v: Bound<'_, PyAny>| v.repr().map(|r| r.to_string());
        Ok(format!(
            "Explain(canonical={}, sql={}, params={}, plan={})",
            repr(PyString::new(py, &self.canonical).into_any())?,
            repr(PyString::new(py, &self.sql).into_any())?,
            repr(PyList::new(py, &self.params)?.into_any())?,
            repr(PyList::new(py, &self.plan)?.into_any())?,
        ))
    }

    /// The filter, its SQL, parameters and plan, one per section.
    fn __str__(&self) -> String {
        let mut out = format!("filter: {}\nsql: {}\nparams:", self.canonical, self.sql);
        for (i, p) in self.params.iter().enumerate() {
            out.push_str(&format!("\n  ?{} = {p}", i + 1));
        }
        out.push_str("\nplan:");
        for step in &self.plan {
            out.push_str(&format!("\n  {step}"));
        }
        out
    }
}

/// Parses text in the filter language into its syntax tree, as JSON-like
/// dicts and lists (the form every `filter` argument also accepts), without
/// checking names against a database; ParseError if it is malformed.
#[pyfunction]
fn parse_filter<'py>(py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let text = convert::string(text, "text")?;
    let expr = py
        .detach(move || crm_core::filter::parse(&text))
        .or_raise()?;
    convert::filter_tree(py, &expr)
}

/// The canonical text of a syntax tree (a dict from `parse_filter`).
#[pyfunction]
fn format_filter(ast: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(convert::tree(ast, "ast")?.to_string())
}

/// Opens a CRM: a file path (created if needed) or ":memory:".
#[pyfunction]
#[pyo3(
    signature = (path = None, *, default_region = None, busy_timeout_ms = None),
    text_signature = "(path=':memory:', *, default_region=None, busy_timeout_ms=5000)"
)]
fn open(
    py: Python<'_>,
    path: Option<&Bound<'_, PyAny>>,
    default_region: Option<&Bound<'_, PyAny>>,
    busy_timeout_ms: Option<&Bound<'_, PyAny>>,
) -> PyResult<Crm> {
    Crm::new(py, path, default_region, busy_timeout_ms)
}

/// The native part of the `crm` package; import `crm` instead.
#[pymodule]
fn _crm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Crm>()?;
    m.add_class::<Explain>()?;
    m.add_class::<tables::Table>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(parse_filter, m)?)?;
    m.add_function(wrap_pyfunction!(format_filter, m)?)?;
    errors::register(m)?;
    analytics::register(m)?;
    m.add("SCHEMA_VERSION", crm_core::SCHEMA_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
