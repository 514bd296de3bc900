//! The CRM's tables as Arrow record batches, and imports from them (the
//! `arrow` feature).
//!
//! [`Crm::read_table`](crate::Crm::read_table) streams a table (customers,
//! interactions, consent, customer scores) as batches of Arrow columns;
//! [`Crm::import_customers_arrow`](crate::Crm::import_customers_arrow) and
//! [`Crm::import_interactions_arrow`](crate::Crm::import_interactions_arrow)
//! import batches through the same validation as every other import;
//! [`Crm::export_table`](crate::Crm::export_table) and
//! [`Crm::import_customers_ipc`](crate::Crm::import_customers_ipc) do the
//! same through Arrow IPC files.
//!
//! The Arrow crates are re-exported so that callers use the same versions.

pub use arrow_array;
pub use arrow_schema;

mod import;
mod ipc;
mod read;

pub use read::{ReadOptions, Table, TableReader};

use crate::error::Error;

/// The library's error behind an Arrow one: the [`Error`] a [`TableReader`]
/// wrapped, an I/O failure, or else the Arrow error's text as an I/O error
/// (a batch source outside the library failed).
pub(crate) fn from_arrow(e: arrow_schema::ArrowError) -> Error {
    match e {
        arrow_schema::ArrowError::ExternalError(inner) => match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::Io(format!("reading record batches: {other}")),
        },
        arrow_schema::ArrowError::IoError(_, io) => Error::from(io),
        other => Error::Io(format!("reading record batches: {other}")),
    }
}
