//! Python callables as change listeners.
//!
//! The core calls a listener on the thread that wrote, right after the
//! commit, with no lock held. That thread is either a Python thread that
//! released the GIL for the write (every core call runs in `py.detach`) or an
//! import's own thread, which never had it; either way the listener attaches
//! to the interpreter itself, converts the batch and calls the callable.
//! Nothing the binding holds is locked while the callable runs, so it may
//! read and write the CRM, and other Python threads keep running.
//!
//! A callable that raises can't fail a write that is already committed: its
//! exception goes to `sys.unraisablehook` and the other listeners still run.
//! Once the interpreter is shutting down, listeners are silently skipped.

use std::cell::Cell;

use crm_core::{Change, ChangeListener};
use pyo3::intern;
use pyo3::prelude::*;

use crate::convert;

thread_local! {
    /// How many listener calls this thread is inside.
    static NOTIFYING: Cell<u32> = const { Cell::new(0) };
}

/// Whether the current thread is running a change listener. The core calls
/// listeners after the commit, with no lock held, so a listener may use the
/// database even on an import's thread (see `Handle::run`).
pub fn notifying() -> bool {
    NOTIFYING.with(|n| n.get() > 0)
}

/// Marks the current thread as running a listener until dropped.
struct Notifying;

impl Notifying {
    fn enter() -> Self {
        NOTIFYING.with(|n| n.set(n.get().saturating_add(1)));
        Notifying
    }
}

impl Drop for Notifying {
    fn drop(&mut self) {
        NOTIFYING.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// A Python callable told about committed changes, as a list of `Change`
/// dicts.
pub struct Listener {
    callback: Py<PyAny>,
}

impl Listener {
    /// A listener calling `callback` (checked to be callable by the caller).
    pub fn new(callback: Py<PyAny>) -> Self {
        Listener { callback }
    }
}

impl ChangeListener for Listener {
    fn on_changes(&self, changes: &[Change]) {
        let _notifying = Notifying::enter();
        // `None`: the interpreter is gone or going; there is no one to tell.
        let _ = Python::try_attach(|py| {
            let callback = self.callback.bind(py);
            let result = convert::list(py, changes, convert::change)
                .and_then(|batch| callback.call1((batch,)));
            if let Err(err) = result {
                // Best effort: the note only adds context to the report.
                let _ = err.value(py).call_method1(
                    intern!(py, "add_note"),
                    ("crm: raised by a change listener; the write was committed",),
                );
                err.write_unraisable(py, Some(callback));
            }
        });
    }
}
