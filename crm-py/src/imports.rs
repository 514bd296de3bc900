//! Plumbing between Python and the core's bulk imports: record sources that
//! pull from a Python iterable, DataFrames and Arrow data as record batches,
//! file readers, the progress callback, and stopping an import when Python
//! code fails.
//!
//! The core runs an import in one write transaction. Python code runs inside
//! it in two places: the iterable of records (pulled in batches) and the
//! progress callback. When either raises, or Ctrl-C arrives, the import must
//! stop, be rolled back, and the exception must propagate.
//!
//! The core offers no way to stop an import from a callback, so the binding
//! unwinds out of it ([`cancel`]: a `resume_unwind`, which doesn't run the
//! panic hook) and catches that unwind around the core call
//! ([`catch_cancel`]). Unwinding drops the core's write transaction, which
//! rolls it back; the core's locks are written to survive a panic inside a
//! transaction. Only Rust frames are unwound, never C or Python ones. The
//! import runs on a thread of its own ([`crate`]'s `Crm::import`), so
//! nothing thread-local to the core outlives it. A fallible progress
//! callback in the core would make all this unnecessary.
//!
//! The core calls the progress callback every `progress_every` rows inside
//! the transaction and once more after the commit. The binding asks for a
//! call after every row (cheap: no Python unless it is due) so that it can
//! tell the last call, the one that repeats the final count, from the
//! others: an exception raised there can't undo the committed import; it
//! propagates with a note saying so.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use crm_core::import::{ColumnMapping, ImportProgress};
use pyo3::exceptions::PyImportError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator};
use pyo3_arrow::input::AnyRecordBatch;
use serde_json::{Map, Value};

use crate::convert;
use crate::errors::{invalid, to_py_err};

/// How many records are converted per acquisition of the GIL.
const BATCH: usize = 256;

/// The payload of the unwind that stops an import.
struct Cancelled;

/// Stops the running import: unwinds to [`catch_cancel`].
fn cancel() -> ! {
    std::panic::resume_unwind(Box::new(Cancelled))
}

/// Runs `import`; `None` if it was stopped by [`cancel`]. Real panics keep
/// unwinding (pyo3 turns them into `PanicException`).
pub fn catch_cancel<T>(import: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(import)) {
        Ok(value) => Some(value),
        Err(payload) if payload.is::<Cancelled>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// The first Python error raised while an import runs.
#[derive(Default)]
pub struct Failure {
    set: AtomicBool,
    error: Mutex<Option<PyErr>>,
}

impl Failure {
    /// Remembers `err` unless an earlier error is already remembered.
    pub fn set(&self, err: PyErr) {
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(err);
            self.set.store(true, Ordering::Release);
        }
    }

    /// Whether an error was remembered (cheap: checked after every row).
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// The remembered error, if any.
    pub fn take(&self) -> Option<PyErr> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The progress callback given to the core, which calls it after every row
/// (see the module docs). It calls Python every `every` rows and at the end,
/// and stops the import once a Python error is remembered.
pub fn progress_fn(
    callback: Option<Py<PyAny>>,
    every: u64,
    failure: Arc<Failure>,
) -> impl FnMut(&ImportProgress) + Send {
    let every = every.max(1);
    let mut last_rows = None;
    move |p: &ImportProgress| {
        // Inside the transaction `rows` grows by one per call; the call after
        // the commit repeats the last count (or is the only one, for 0 rows).
        let after_commit = p.rows == 0 || last_rows == Some(p.rows);
        last_rows = Some(p.rows);
        if failure.is_set() {
            if after_commit {
                return;
            }
            cancel();
        }
        let Some(callback) = &callback else { return };
        if !after_commit && p.rows % every != 0 {
            return;
        }
        let result = Python::attach(|py| {
            convert::progress(py, p).and_then(|d| callback.bind(py).call1((d,)).map(drop))
        });
        if let Err(e) = result {
            failure.set(e);
            if !after_commit {
                cancel();
            }
        }
    }
}

/// The records of a Python iterable, converted in batches.
pub struct RecordSource {
    iterator: Py<PyIterator>,
    failure: Arc<Failure>,
    buffer: VecDeque<Map<String, Value>>,
    row: u64,
    exhausted: bool,
}

impl RecordSource {
    /// A source over `iterator`, reporting errors to `failure`.
    pub fn new(iterator: Py<PyIterator>, failure: Arc<Failure>) -> Self {
        RecordSource {
            iterator,
            failure,
            buffer: VecDeque::with_capacity(BATCH),
            row: 0,
            exhausted: false,
        }
    }

    fn fill(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut iterator = self.iterator.bind(py).clone();
        for _ in 0..BATCH {
            let Some(item) = iterator.next() else {
                self.exhausted = true;
                return Ok(());
            };
            self.row += 1;
            match convert::record(&item?) {
                Ok(record) => self.buffer.push_back(record),
                // A value Python can't express as JSON (bytes, NaN, an object)
                // is a programming error: it stops the import in every mode,
                // naming the row and field.
                Err((field, reason)) => {
                    return Err(to_py_err(crm_core::Error::InvalidRow {
                        row: self.row,
                        field,
                        reason,
                    }));
                }
            }
        }
        Ok(())
    }
}

impl Iterator for RecordSource {
    type Item = Map<String, Value>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failure.is_set() {
            cancel();
        }
        if self.buffer.is_empty() && !self.exhausted {
            if let Err(e) = Python::attach(|py| self.fill(py)) {
                self.failure.set(e);
                cancel();
            }
        }
        self.buffer.pop_front()
    }
}

/// A file reader that stops the import once a Python error is remembered
/// (Ctrl-C, seen by the waiting thread).
pub struct FileSource<R> {
    inner: R,
    failure: Arc<Failure>,
}

impl<R> FileSource<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, failure: Arc<Failure>) -> Self {
        FileSource { inner, failure }
    }
}

impl<R: Read> Read for FileSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_set() {
            cancel();
        }
        self.inner.read(buf)
    }
}

/// A DataFrame or Arrow object (anything with `__arrow_c_stream__` or
/// `__arrow_c_array__`: pandas and polars DataFrames, pyarrow tables, record
/// batches and readers, DuckDB results) as record batches; `None` for
/// anything else (an iterable of dicts).
///
/// A polars `LazyFrame` is collected first. A pandas DataFrame of a pandas
/// without the Arrow PyCapsule interface is converted by pyarrow.
pub fn arrow_batches(
    records: &Bound<'_, PyAny>,
) -> PyResult<Option<Box<dyn RecordBatchReader + Send>>> {
    let py = records.py();
    let mut records = records.clone();
    if is_instance(&records, "polars", "LazyFrame")? {
        records = records.call_method0(intern!(py, "collect"))?;
    }
    let arrow = |o: &Bound<'_, PyAny>| -> PyResult<bool> {
        Ok(o.hasattr(intern!(py, "__arrow_c_stream__"))?
            || o.hasattr(intern!(py, "__arrow_c_array__"))?)
    };
    if !arrow(&records)? {
        if !is_instance(&records, "pandas", "DataFrame")? {
            return Ok(None);
        }
        let pyarrow = py.import("pyarrow").map_err(|e| {
            let err = PyImportError::new_err(
                "importing a pandas DataFrame needs pyarrow (pip install pyarrow)",
            );
            err.set_cause(py, Some(e));
            err
        })?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("preserve_index", false)?;
        records = pyarrow
            .getattr(intern!(py, "Table"))?
            .call_method("from_pandas", (records,), Some(&kwargs))
            .map_err(|e| unreadable(py, e))?;
    }
    // Reading the capsule converts the data (pandas to Arrow): errors there
    // name the column that could not be converted.
    let batches: AnyRecordBatch = records.extract().map_err(|e| unreadable(py, e))?;
    batches.into_reader().map(Some)
}

/// An error converting `records` to Arrow, as a validation error of
/// `records` caused by the original.
fn unreadable(py: Python<'_>, e: PyErr) -> PyErr {
    let err = invalid(
        "records",
        format!("can't be read as Arrow data: {}", e.value(py)),
    );
    err.set_cause(py, Some(e));
    err
}

/// Whether `obj` is a `module.class`, without importing `module`.
fn is_instance(obj: &Bound<'_, PyAny>, module: &str, class: &str) -> PyResult<bool> {
    let py = obj.py();
    let modules = py
        .import(intern!(py, "sys"))?
        .getattr(intern!(py, "modules"))?;
    let module = modules.call_method1(intern!(py, "get"), (module,))?;
    if module.is_none() {
        return Ok(false);
    }
    match module.getattr(class) {
        Ok(class) => obj.is_instance(&class),
        Err(_) => Ok(false),
    }
}

/// Ignores the columns pyarrow makes of a pandas index
/// (`__index_level_0__`, ...): a conversion artefact, not data. A column
/// mapped to a field is left alone.
pub fn ignore_index_columns(schema: &SchemaRef, mapping: &mut ColumnMapping) {
    for field in schema.fields() {
        let name = field.name();
        let index = name
            .strip_prefix("__index_level_")
            .and_then(|rest| rest.strip_suffix("__"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if index && !mapping.columns.values().any(|c| c == name) && !mapping.ignore.contains(name) {
            mapping.ignore.push(name.clone());
        }
    }
}

/// Record batches read on the import's thread, which stop the import once
/// a Python error is remembered (Ctrl-C, seen by the waiting thread).
/// Producers that run Python code (a pyarrow reader over a generator) take
/// the GIL themselves.
pub struct BatchSource {
    inner: Box<dyn RecordBatchReader + Send>,
    failure: Arc<Failure>,
}

impl BatchSource {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn RecordBatchReader + Send>, failure: Arc<Failure>) -> Self {
        BatchSource { inner, failure }
    }
}

impl Iterator for BatchSource {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failure.is_set() {
            cancel();
        }
        self.inner.next()
    }
}

impl RecordBatchReader for BatchSource {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// The `progress` argument of an import: `None`/`False` (quiet), a
/// callable (called with `{"rows", "applied", "rejected"}`), or `True` (a
/// tqdm bar, drawn by `crm._progress.ProgressBar`).
pub struct Progress<'a, 'py> {
    arg: Option<&'a Bound<'py, PyAny>>,
    /// What is imported ("customers"), the bar's label.
    what: &'static str,
    /// The rows to come, when the source knows (a DataFrame, a list).
    total: Option<usize>,
}

impl<'a, 'py> Progress<'a, 'py> {
    /// The argument as given.
    pub fn new(arg: Option<&'a Bound<'py, PyAny>>, what: &'static str) -> Self {
        Progress {
            arg,
            what,
            total: None,
        }
    }

    /// Takes the bar's total from `source`'s length, if it has one.
    pub fn total(mut self, source: &Bound<'py, PyAny>) -> Self {
        self.total = source.len().ok();
        self
    }

    /// The progress bar to draw, for `progress=True`.
    pub fn bar(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.arg {
            Some(arg) if arg.is_instance_of::<pyo3::types::PyBool>() && arg.is_truthy()? => py
                .import(pyo3::intern!(py, "crm._progress"))?
                .getattr(pyo3::intern!(py, "ProgressBar"))?
                .call1((self.total, self.what))
                .map(Some),
            _ => Ok(None),
        }
    }

    /// The callable to call: the bar, the caller's callable, or none.
    pub fn callback(&self, bar: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(bar) = bar {
            return Ok(Some(bar.clone().unbind()));
        }
        match self.arg {
            Some(arg) if arg.is_none() || arg.is_instance_of::<pyo3::types::PyBool>() => Ok(None),
            Some(arg) if arg.is_callable() => Ok(Some(arg.clone().unbind())),
            Some(_) => Err(crate::errors::invalid(
                "progress",
                "must be True, False, None or a callable",
            )),
            None => Ok(None),
        }
    }
}
