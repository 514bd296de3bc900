//! Tables as Arrow IPC files for Kotlin and Swift: crm-core's `arrow`
//! module, as methods of `Crm`.
//!
//! A table (customers, interactions, consent, scores) is written to an
//! Arrow IPC file (Feather v2) that Arrow Java, DuckDB, pandas or polars
//! read; customers and interactions are imported from such a file (or an
//! Arrow IPC stream). Only conversions live here: the schemas, the checks
//! and every error with its field name are crm-core's.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::SystemTime;

use crm_core::FilterRef;
use crm_core::arrow::{ReadOptions as CoreReadOptions, Table as CoreTable};

use crate::error::{CrmError, guard};
use crate::records::{ColumnMapping, ImportOptions, ImportReport, time_in};
use crate::{Crm, ImportProgressListener, open_file, with_listener};

/// A table of the CRM, as `Crm.export_table` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Table {
    /// One row per customer.
    Customers,
    /// One row per interaction.
    Interactions,
    /// The consent ledger: one row per answer.
    Consent,
    /// The scores of the last `Crm.compute_scores`: one row per scored
    /// customer.
    Scores,
    /// Every lifecycle stage transition of every customer.
    StageTransitions,
    /// Every deal of every pipeline.
    Deals,
    /// Every task.
    Tasks,
}

impl From<Table> for CoreTable {
    fn from(t: Table) -> Self {
        match t {
            Table::Customers => CoreTable::Customers,
            Table::Interactions => CoreTable::Interactions,
            Table::Consent => CoreTable::Consent,
            Table::Scores => CoreTable::CustomerScores,
            Table::StageTransitions => CoreTable::StageTransitions,
            Table::Deals => CoreTable::Deals,
            Table::Tasks => CoreTable::Tasks,
        }
    }
}

/// Which rows of a table to write. `None` means no restriction.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct TableOptions {
    /// Only the rows of customers matching this filter-language expression.
    #[uniffi(default)]
    pub filter: Option<String>,
    /// Only the rows of this segment's members.
    #[uniffi(default)]
    pub segment: Option<String>,
    /// Interactions, consent, stage transitions, deals and tasks (by
    /// creation) only: from this time on (inclusive).
    #[uniffi(default)]
    pub since: Option<SystemTime>,
    /// Interactions, consent, stage transitions, deals and tasks only:
    /// before this time.
    #[uniffi(default)]
    pub until: Option<SystemTime>,
    /// Rows per Arrow record batch (default 65,536).
    #[uniffi(default)]
    pub batch_size: Option<u32>,
}

#[uniffi::export]
impl Crm {
    /// Writes a table to an Arrow IPC file at `path` (created or
    /// truncated); returns the number of rows.
    #[uniffi::method(default(options))]
    pub fn export_table(
        &self,
        table: Table,
        path: String,
        options: TableOptions,
    ) -> Result<u64, CrmError> {
        guard(|| {
            let mut core = CoreReadOptions {
                filter: options.filter.as_deref().map(FilterRef::Text),
                segment: options.segment.as_deref(),
                since: options.since.map(|t| time_in("since", t)).transpose()?,
                until: options.until.map(|t| time_in("until", t)).transpose()?,
                ..CoreReadOptions::default()
            };
            if let Some(size) = options.batch_size {
                core.batch_size = size as usize;
            }
            let file = BufWriter::new(File::create(&path)?);
            Ok(self.inner.export_table(table.into(), &core, file)?)
        })
    }

    /// Imports customers from an Arrow IPC file (or stream) with one column
    /// per field, as `export_table(Table.CUSTOMERS, …)` writes them.
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_customers_arrow(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = open_file(&path)?;
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner.import_customers_ipc(file, &mapping, &options, p)
            })?
            .into())
        })
    }

    /// Imports interactions from an Arrow IPC file (or stream) with one
    /// column per field.
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_interactions_arrow(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = open_file(&path)?;
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner
                    .import_interactions_ipc(file, &mapping, &options, p)
            })?
            .into())
        })
    }
}
