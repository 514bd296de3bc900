//! Streamed export of customers and interactions to CSV or NDJSON.
//!
//! Rows are written as they are read, so memory stays flat whatever the size
//! of the database. The CSV of customers imports back with
//! [`Crm::import_customers_csv`] unchanged (`id`, `created_at` and
//! `updated_at` columns are ignored on import).
//!
//! ```
//! use crm_core::{Crm, NewCustomer, export::ExportFormat};
//! let crm = Crm::open_in_memory()?;
//! crm.create_customer(NewCustomer { name: Some("Acme d.o.o.".into()), ..Default::default() })?;
//! let mut out = Vec::new();
//! assert_eq!(crm.export_customers(&mut out, ExportFormat::Csv)?, 1);
//! assert!(String::from_utf8(out).unwrap().lines().nth(1).unwrap().contains("Acme d.o.o."));
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db;
use crate::error::{Error, Result};
use crate::model::customer::Customer;
use crate::model::interaction::Interaction;

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// Comma-separated values with a header row; lists joined with `;`,
    /// addresses, attributes and metadata as JSON text.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// The CSV columns of a customer export.
pub const CUSTOMER_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "external_id",
    "name",
    "first_name",
    "last_name",
    "organization_id",
    "organization_external_id",
    "emails",
    "phones",
    "addresses",
    "birth_date",
    "locale",
    "country",
    "tags",
    "attributes",
    "lifecycle_stage",
    "owner",
    "source",
    "created_at",
    "updated_at",
];

/// The CSV columns of an interaction export.
pub const INTERACTION_COLUMNS: &[&str] = &[
    "id",
    "customer_id",
    "kind",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "body",
    "amount_minor",
    "currency",
    "product",
    "quantity",
    "score",
    "metadata",
    "created_at",
];

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

/// A customer as exported: with the external id of their organization, so
/// that an import into another CRM (where ids differ) can link them again.
#[derive(Serialize)]
struct ExportedCustomer {
    #[serde(flatten)]
    customer: Customer,
    organization_external_id: Option<String>,
}

fn exported_customer(row: &rusqlite::Row<'_>) -> Result<ExportedCustomer> {
    Ok(ExportedCustomer {
        customer: db::customers::from_row(row)?,
        organization_external_id: row.get("organization_external_id")?,
    })
}

fn customer_csv_row(e: &ExportedCustomer) -> Result<Vec<String>> {
    let c = &e.customer;
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    Ok(vec![
        c.id.to_string(),
        c.kind.as_str().to_string(),
        opt(&c.external_id),
        c.name.clone(),
        opt(&c.first_name),
        opt(&c.last_name),
        c.organization_id.map(|o| o.to_string()).unwrap_or_default(),
        opt(&e.organization_external_id),
        c.emails.join(";"),
        c.phones.join(";"),
        if c.addresses.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&c.addresses).map_err(io)?
        },
        c.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        opt(&c.locale),
        opt(&c.country),
        c.tags.join(";"),
        if c.attributes.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&c.attributes).map_err(io)?
        },
        c.lifecycle_stage.clone(),
        opt(&c.owner),
        opt(&c.source),
        c.created_at.to_rfc3339(),
        c.updated_at.to_rfc3339(),
    ])
}

fn interaction_csv_row(i: &Interaction) -> Result<Vec<String>> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let num = |o: Option<i64>| o.map(|n| n.to_string()).unwrap_or_default();
    Ok(vec![
        i.id.to_string(),
        i.customer_id.to_string(),
        i.kind.as_str().to_string(),
        opt(&i.channel),
        i.direction
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        i.occurred_at.to_rfc3339(),
        opt(&i.subject),
        opt(&i.body),
        num(i.amount_minor),
        opt(&i.currency),
        opt(&i.product),
        num(i.quantity),
        num(i.score.map(i64::from)),
        i.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        i.created_at.to_rfc3339(),
    ])
}

/// Streams every row of `sql` through `to_row` into `out`.
fn stream<W: Write, T: Serialize>(
    conn: &rusqlite::Connection,
    sql: &str,
    mut out: W,
    format: ExportFormat,
    columns: &[&str],
    from_row: fn(&rusqlite::Row<'_>) -> Result<T>,
    to_csv: fn(&T) -> Result<Vec<String>>,
) -> Result<u64> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut count = 0;
    match format {
        ExportFormat::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(columns).map_err(io)?;
            while let Some(row) = rows.next()? {
                csv.write_record(to_csv(&from_row(row)?)?).map_err(io)?;
                count += 1;
            }
            csv.flush()?;
        }
        ExportFormat::Ndjson => {
            let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut out);
            while let Some(row) = rows.next()? {
                serde_json::to_writer(&mut buffered, &from_row(row)?).map_err(io)?;
                buffered.write_all(b"\n")?;
                count += 1;
            }
            buffered.flush()?;
        }
    }
    Ok(count)
}

impl Crm {
    /// Writes every customer, in creation order; returns how many. Each row
    /// also carries `organization_external_id`, which an import prefers to
    /// `organization_id`: a copy in another CRM links people to their
    /// organizations again (organizations come first, having been created
    /// first).
    pub fn export_customers<W: Write>(&self, out: W, format: ExportFormat) -> Result<u64> {
        let sql = format!(
            "SELECT {}, (SELECT o.external_id FROM customers o WHERE o.rowid = c.organization_rowid) \
             AS organization_external_id FROM customers c ORDER BY c.rowid",
            db::customers::COLUMNS
        );
        self.db.read(|conn| {
            stream(
                conn,
                &sql,
                out,
                format,
                CUSTOMER_COLUMNS,
                exported_customer,
                customer_csv_row,
            )
        })
    }

    /// Writes every interaction, in the order they were logged; returns how
    /// many.
    pub fn export_interactions<W: Write>(&self, out: W, format: ExportFormat) -> Result<u64> {
        let sql = format!(
            "SELECT {} FROM interactions i ORDER BY i.rowid",
            db::interactions::COLUMNS
        );
        self.db.read(|conn| {
            stream(
                conn,
                &sql,
                out,
                format,
                INTERACTION_COLUMNS,
                db::interactions::from_row,
                interaction_csv_row,
            )
        })
    }
}
