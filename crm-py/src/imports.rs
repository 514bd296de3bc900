//! Plumbing between Python and the core's bulk imports: record sources that
//! pull from a Python iterable, file readers, the progress callback, and
//! stopping an import when Python code fails.
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

use crm_core::import::ImportProgress;
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use serde_json::{Map, Value};

use crate::convert;
use crate::errors::to_py_err;

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
