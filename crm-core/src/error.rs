//! The one error type of the crate.
//!
//! Messages never contain personal data: a bad email is reported as
//! "`emails[1]`: not a valid email address", never with the address itself,
//! so errors can be logged and shipped across bindings safely.

use std::fmt;

/// Everything that can go wrong, as variants a caller can match on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The entity does not exist (or no longer exists).
    #[error("{entity} not found")]
    NotFound {
        /// The kind of entity looked up, e.g. `customer`.
        entity: &'static str,
    },
    /// Input was rejected: `field` names what was wrong, `reason` says why.
    #[error("invalid {field}: {reason}")]
    Validation {
        /// The field (or column) that was wrong, e.g. `emails[0]`.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A row of a bulk import was rejected in all-or-nothing mode; nothing was
    /// imported.
    #[error("row {row}: invalid {field}: {reason}; nothing was imported")]
    InvalidRow {
        /// 1-based row number in the input (for CSV: data rows, header excluded).
        row: u64,
        /// The field (or column) that was wrong.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A filter expression is malformed or does not fit the schema; nothing
    /// ran. `line` and `column` are 1-based (columns count characters) and
    /// point at the offending token; both are 0 for an expression built in
    /// code rather than parsed from text.
    #[error("{}", parse_message(*line, *column, message, suggestion.as_deref()))]
    Parse {
        /// 1-based line of the offending token.
        line: u32,
        /// 1-based column (in characters) of the offending token.
        column: u32,
        /// What was wrong and what was expected.
        message: String,
        /// The nearest valid name, when a name was misspelled.
        suggestion: Option<String>,
    },
    /// The change would violate a uniqueness rule (an email or external id
    /// already used by another customer).
    #[error("conflict on {field}: {reason}")]
    Conflict {
        /// The field whose value is already taken.
        field: String,
        /// What conflicts.
        reason: String,
    },
    /// The database was written by a newer version of this library; it was
    /// left untouched.
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
    /// Another connection or process holds a lock on the database for longer
    /// than the busy timeout, or a callback running inside a write on this
    /// handle (an import's progress callback) tried to use it.
    #[error("the database is locked by another connection, process or running import")]
    Busy,
    /// The handle was closed with [`crate::Crm::close`].
    #[error("the CRM handle is closed")]
    Closed,
    /// Reading or writing a file or stream failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// A rule could not run: its host event handler failed or panicked, or
    /// its actions cascaded too deep or in a cycle. The write that triggered
    /// it was rolled back whole.
    #[error("rule '{rule}': {reason}; nothing was changed")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What went wrong.
        reason: String,
    },
    /// Any other storage failure.
    #[error("storage error: {0}")]
    Storage(String),
}

fn parse_message(line: u32, column: u32, message: &str, suggestion: Option<&str>) -> String {
    let mut out = if line == 0 {
        message.to_string()
    } else {
        format!("line {line}, column {column}: {message}")
    };
    if let Some(s) = suggestion {
        out.push_str(&format!(" (did you mean '{s}'?)"));
    }
    out
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Validation`] for `field` with `reason`.
    pub fn validation(field: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Error::Validation {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A [`Error::Conflict`] for `field` with `reason`.
    pub fn conflict(field: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Error::Conflict {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Error::Corrupt,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Busy,
                // Values are always bound parameters, so SQLite's message names
                // tables and columns but never a customer's data.
                _ => Error::Storage(err.to_string()),
            },
            rusqlite::Error::QueryReturnedNoRows => Error::Storage("no rows".into()),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err.kind().to_string())
    }
}
