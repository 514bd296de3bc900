//! The one error type of the FFI, its single conversion from crm-core's
//! error, and the guard that keeps panics on the Rust side.
//!
//! Kotlin sees `CrmException` (a sealed class, one subclass per variant with
//! the fields below); Swift sees `CrmError` (an enum). Messages never carry
//! personal data: crm-core's messages name fields, never values, and a panic
//! is reported without its formatted payload.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crm_core::Error as CoreError;

/// Everything a call can fail with, as variants the caller can match on.
#[derive(Debug, PartialEq, thiserror::Error, uniffi::Error)]
pub enum CrmError {
    /// The entity does not exist (or no longer exists); `entity` is e.g.
    /// `customer` or `interaction`.
    #[error("{entity} not found")]
    NotFound {
        /// The kind of entity looked up.
        entity: String,
    },
    /// Input was rejected: `field` names what was wrong (e.g. `emails[0]`),
    /// `reason` says why.
    #[error("invalid {field}: {reason}")]
    Validation {
        /// The field that was wrong.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A row of an all-or-nothing import was rejected; nothing was imported.
    #[error("row {row}: invalid {field}: {reason}; nothing was imported")]
    InvalidRow {
        /// 1-based row number (CSV: data rows after the header; NDJSON and
        /// lists: lines / elements).
        row: u64,
        /// The field or column that was wrong (empty when the whole row was).
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A filter expression is malformed or does not fit the schema (an
    /// unknown field, a type mismatch, an unknown segment); nothing ran.
    /// `line` and `column` are 1-based (columns count characters) and point
    /// at the offending token; both are 0 when there is no text to point
    /// into. `reason` is crm-core's `message` (a Kotlin exception already
    /// has a `message`).
    #[error("{}", parse_display(*line, *column, reason, suggestion))]
    Parse {
        /// 1-based line of the offending token.
        line: u32,
        /// 1-based column (in characters) of the offending token.
        column: u32,
        /// What was wrong and what was expected.
        reason: String,
        /// The nearest valid name, when a name was misspelled.
        suggestion: Option<String>,
    },
    /// The change would break a uniqueness rule (an email or external id
    /// already used by another customer, an attribute defined with another
    /// type).
    #[error("conflict on {field}: {reason}")]
    Conflict {
        /// The field whose value is taken.
        field: String,
        /// What conflicts.
        reason: String,
    },
    /// The database file was written by a newer version of the library; it
    /// was left untouched.
    #[error("database schema version {found} is newer than the {supported} this library supports")]
    IncompatibleDatabase {
        /// The schema version found in the file.
        found: u32,
        /// The newest schema version this library knows.
        supported: u32,
    },
    /// The file is not a CRM database or is damaged.
    #[error("the database file is corrupt or not a database")]
    Corrupt,
    /// Another connection or process held a lock for longer than the busy
    /// timeout.
    #[error("the database is locked by another connection or process")]
    Busy,
    /// The handle was closed.
    #[error("the CRM handle is closed")]
    Closed,
    /// Reading or writing a file failed.
    #[error("i/o error: {message}")]
    Io {
        /// What failed (the kind of failure, never the path).
        message: String,
    },
    /// A rule could not run: its host event handler failed or threw, or its
    /// actions cascaded too deep or in a cycle. The write that triggered it
    /// was rolled back whole.
    #[error("rule '{rule}': {reason}; nothing was changed")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What went wrong.
        reason: String,
    },
    /// Any other storage failure.
    #[error("storage error: {message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// A bug: a panic inside the library, or an error kind this binding
    /// does not know yet. The library stays usable.
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

/// The single place where crm-core's errors become FFI errors.
impl From<CoreError> for CrmError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::NotFound { entity } => CrmError::NotFound {
                entity: entity.to_string(),
            },
            CoreError::Validation { field, reason } => CrmError::Validation { field, reason },
            CoreError::InvalidRow { row, field, reason } => {
                CrmError::InvalidRow { row, field, reason }
            }
            CoreError::Parse {
                line,
                column,
                message,
                suggestion,
            } => CrmError::Parse {
                line,
                column,
                reason: message,
                suggestion,
            },
            CoreError::Conflict { field, reason } => CrmError::Conflict { field, reason },
            CoreError::IncompatibleDatabase { found, supported } => {
                CrmError::IncompatibleDatabase { found, supported }
            }
            CoreError::Corrupt => CrmError::Corrupt,
            CoreError::Busy => CrmError::Busy,
            CoreError::Closed => CrmError::Closed,
            CoreError::Io(message) => CrmError::Io { message },
            CoreError::Storage(message) => CrmError::Storage { message },
            CoreError::Rule { rule, reason } => CrmError::Rule { rule, reason },
            // crm-core's error is non-exhaustive: a kind added there reaches
            // the host as Internal until this binding learns it.
            other => CrmError::Internal {
                message: other.to_string(),
            },
        }
    }
}

/// The text of a parse error, written by crm-core ("line 1, column 1: …
/// (did you mean '…'?)").
fn parse_display(line: u32, column: u32, reason: &str, suggestion: &Option<String>) -> String {
    CoreError::Parse {
        line,
        column,
        message: reason.to_string(),
        suggestion: suggestion.clone(),
    }
    .to_string()
}

impl From<std::io::Error> for CrmError {
    fn from(err: std::io::Error) -> Self {
        // crm-core's conversion keeps only the kind, never the path.
        CoreError::from(err).into()
    }
}

/// What a foreign callback (the import progress listener) that threw
/// becomes on the Rust side.
impl From<uniffi::UnexpectedUniFFICallbackError> for CrmError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CrmError::Internal {
            message: format!("a callback failed: {}", err.reason),
        }
    }
}

/// Runs the body of an exported function so that no panic crosses the FFI:
/// a panic becomes [`CrmError::Internal`].
///
/// Only a panic message that is a literal (`&'static str`) is kept: a
/// formatted one may carry the data that caused it, and error messages
/// never carry personal data. The connection a panic interrupted is sound:
/// crm-core's transactions roll back on unwind.
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T, CrmError>) -> Result<T, CrmError> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("details withheld");
        Err(CrmError::Internal {
            message: format!("panic in the CRM library ({detail})"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_keeps_its_kind_and_fields() {
        let cases = [
            (
                CoreError::NotFound { entity: "customer" },
                CrmError::NotFound {
                    entity: "customer".into(),
                },
            ),
            (
                CoreError::validation("emails[0]", "not a valid email address"),
                CrmError::Validation {
                    field: "emails[0]".into(),
                    reason: "not a valid email address".into(),
                },
            ),
            (
                CoreError::InvalidRow {
                    row: 2,
                    field: "name".into(),
                    reason: "is empty".into(),
                },
                CrmError::InvalidRow {
                    row: 2,
                    field: "name".into(),
                    reason: "is empty".into(),
                },
            ),
            (
                CoreError::conflict("emails", "taken"),
                CrmError::Conflict {
                    field: "emails".into(),
                    reason: "taken".into(),
                },
            ),
            (
                CoreError::IncompatibleDatabase {
                    found: 9,
                    supported: 1,
                },
                CrmError::IncompatibleDatabase {
                    found: 9,
                    supported: 1,
                },
            ),
            (
                CoreError::Parse {
                    line: 2,
                    column: 3,
                    message: "unknown field 'contry'".into(),
                    suggestion: Some("country".into()),
                },
                CrmError::Parse {
                    line: 2,
                    column: 3,
                    reason: "unknown field 'contry'".into(),
                    suggestion: Some("country".into()),
                },
            ),
            (CoreError::Corrupt, CrmError::Corrupt),
            (CoreError::Busy, CrmError::Busy),
            (CoreError::Closed, CrmError::Closed),
            (
                CoreError::Io("not found".into()),
                CrmError::Io {
                    message: "not found".into(),
                },
            ),
            (
                CoreError::Storage("disk I/O".into()),
                CrmError::Storage {
                    message: "disk I/O".into(),
                },
            ),
        ];
        for (core, ffi) in cases {
            assert_eq!(CrmError::from(core), ffi);
        }
    }

    #[test]
    fn a_parse_error_reads_like_cores() {
        let core = || CoreError::Parse {
            line: 1,
            column: 1,
            message: "unknown field 'contry'".into(),
            suggestion: Some("country".into()),
        };
        assert_eq!(CrmError::from(core()).to_string(), core().to_string());
    }

    #[test]
    fn io_errors_keep_the_kind_and_drop_the_path() {
        let err = std::fs::File::open("/no/such/dir/secret-customer-name.csv").unwrap_err();
        let CrmError::Io { message } = CrmError::from(err) else {
            panic!("not Io")
        };
        assert!(!message.contains("secret"), "{message}");
        assert!(!message.is_empty());
    }

    #[test]
    fn the_guard_passes_values_and_errors_through() {
        assert_eq!(guard(|| Ok(7)), Ok(7));
        assert_eq!(guard::<()>(|| Err(CrmError::Closed)), Err(CrmError::Closed));
    }

    #[test]
    fn the_guard_turns_a_panic_into_internal_and_keeps_only_literal_messages() {
        let err = guard::<()>(|| panic!("invariant broken")).unwrap_err();
        assert_eq!(
            err,
            CrmError::Internal {
                message: "panic in the CRM library (invariant broken)".into()
            }
        );
        let secret = String::from("ana@example.com");
        let err = guard::<()>(|| panic!("bad email {secret}")).unwrap_err();
        let CrmError::Internal { message } = err else {
            panic!("not Internal")
        };
        assert!(!message.contains("ana@"), "{message}");
    }

    #[test]
    fn a_throwing_callback_becomes_internal() {
        let err = CrmError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert!(matches!(err, CrmError::Internal { ref message } if message.contains("boom")));
    }
}
