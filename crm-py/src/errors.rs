//! The exception hierarchy and the one conversion from [`crm_core::Error`].
//!
//! Every error the binding raises goes through [`to_py_err`], including the
//! ones the binding itself detects (a wrong Python type is a
//! [`crm_core::Error::Validation`] first), so Python sees exactly the
//! hierarchy documented in `_crm.pyi` and nothing else. Messages name fields
//! and Python types, never the rejected values (they may be personal data).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

create_exception!(
    crm,
    CrmError,
    PyException,
    "Base class of every error raised by crm."
);
create_exception!(
    crm,
    NotFoundError,
    CrmError,
    "The customer, interaction or other entity does not exist. `entity` names its kind."
);
create_exception!(
    crm,
    ValidationError,
    CrmError,
    "Input was rejected. `field` names what was wrong, `reason` says why; `row` is the 1-based row of an import, else None."
);
create_exception!(
    crm,
    ParseError,
    ValidationError,
    "A filter expression is malformed or does not fit the schema; nothing ran. `line` and `column` (1-based, columns in characters; both 0 for a syntax tree given as a dict) point at the offending token, `message` says what was wrong, `suggestion` is the nearest valid name or None. As a ValidationError, its `field` is \"filter\" and its `reason` the message."
);
create_exception!(
    crm,
    ConflictError,
    CrmError,
    "The change would break a uniqueness rule (an email or external id already used). `field` and `reason` say which."
);
create_exception!(
    crm,
    IncompatibleDatabaseError,
    CrmError,
    "The file was written by a newer version (schema `found` > `supported`); it was left untouched."
);
create_exception!(
    crm,
    CorruptDatabaseError,
    CrmError,
    "The file is not a CRM database or is damaged."
);
create_exception!(
    crm,
    BusyError,
    CrmError,
    "The database is locked (by another process beyond the busy timeout, or by an import running on this thread)."
);
create_exception!(crm, ClosedError, CrmError, "The handle was closed.");
create_exception!(
    crm,
    RuleError,
    CrmError,
    "A rule could not run: its host event handler failed or raised, or its actions cascaded too deep or in a cycle. `rule` names it, `reason` says what went wrong; the write that triggered it was rolled back whole."
);
create_exception!(
    crm,
    StorageError,
    CrmError,
    "Any other storage or file I/O failure."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for class in [
        py.get_type::<CrmError>(),
        py.get_type::<NotFoundError>(),
        py.get_type::<ValidationError>(),
        py.get_type::<ParseError>(),
        py.get_type::<ConflictError>(),
        py.get_type::<IncompatibleDatabaseError>(),
        py.get_type::<CorruptDatabaseError>(),
        py.get_type::<BusyError>(),
        py.get_type::<ClosedError>(),
        py.get_type::<RuleError>(),
        py.get_type::<StorageError>(),
    ] {
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The one conversion from a core error to a Python exception.
pub fn to_py_err(err: crm_core::Error) -> PyErr {
    use crm_core::Error as E;
    Python::attach(|py| {
        let message = err.to_string();
        let none = || py.None().into_bound(py);
        let text = |s: &str| PyString::new(py, s).into_any();
        let int = |n: u64| PyInt::new(py, n).into_any();
        match err {
            E::NotFound { entity } => with(
                py,
                NotFoundError::new_err(message),
                [("entity", text(entity))],
            ),
            E::Validation { field, reason } => with(
                py,
                ValidationError::new_err(message),
                [
                    ("field", text(&field)),
                    ("reason", text(&reason)),
                    ("row", none()),
                ],
            ),
            E::InvalidRow { row, field, reason } => with(
                py,
                ValidationError::new_err(message),
                [
                    ("field", text(&field)),
                    ("reason", text(&reason)),
                    ("row", int(row)),
                ],
            ),
            E::Parse {
                line,
                column,
                message: what,
                suggestion,
            } => with(
                py,
                ParseError::new_err(message),
                [
                    ("field", text("filter")),
                    ("reason", text(&what)),
                    ("row", none()),
                    ("line", int(line.into())),
                    ("column", int(column.into())),
                    ("message", text(&what)),
                    ("suggestion", suggestion.as_deref().map_or_else(none, text)),
                ],
            ),
            E::Conflict { field, reason } => with(
                py,
                ConflictError::new_err(message),
                [("field", text(&field)), ("reason", text(&reason))],
            ),
            E::IncompatibleDatabase { found, supported } => with(
                py,
                IncompatibleDatabaseError::new_err(message),
                [
                    ("found", int(found.into())),
                    ("supported", int(supported.into())),
                ],
            ),
            E::Corrupt => CorruptDatabaseError::new_err(message),
            E::Busy => BusyError::new_err(message),
            E::Closed => ClosedError::new_err(message),
            E::Rule { rule, reason } => with(
                py,
                RuleError::new_err(message),
                [("rule", text(&rule)), ("reason", text(&reason))],
            ),
            E::Io(_) | E::Storage(_) => StorageError::new_err(message),
            // `Error` is non-exhaustive: a variant added later is still a CrmError.
            _ => CrmError::new_err(message),
        }
    })
}

/// `exception` with `attributes` set on its instance.
fn with<const N: usize>(
    py: Python<'_>,
    exception: PyErr,
    attributes: [(&str, Bound<'_, PyAny>); N],
) -> PyErr {
    let value = exception.value(py);
    for (name, attribute) in attributes {
        if let Err(e) = value.setattr(name, attribute) {
            return e;
        }
    }
    exception
}

/// A validation error detected by the binding (a wrong Python type), raised
/// through the same conversion as the core's own.
pub fn invalid(field: impl std::fmt::Display, reason: impl std::fmt::Display) -> PyErr {
    to_py_err(crm_core::Error::validation(field, reason))
}

/// `?`-friendly conversion of core results.
pub trait OrRaise<T> {
    /// The value, or the core error as a Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for crm_core::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
