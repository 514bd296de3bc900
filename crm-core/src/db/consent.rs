//! The consent ledger's rows.

use rusqlite::{Connection, Row, params};

use super::{changes, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::consent::{ConsentRecord, ConsentStatus, LegalBasis};
use crate::model::ids::{ConsentId, CustomerId};

const COLUMNS: &str = "k.id, (SELECT c.id FROM customers c WHERE c.rowid = k.customer_rowid) AS customer_id, \
    k.purpose, k.channel, k.status, k.legal_basis, k.source, k.proof, k.recorded_at";

fn from_row(row: &Row<'_>) -> Result<ConsentRecord> {
    let id: Vec<u8> = row.get("id")?;
    let customer: Vec<u8> = row.get("customer_id")?;
    let status: String = row.get("status")?;
    let basis: Option<String> = row.get("legal_basis")?;
    Ok(ConsentRecord {
        id: ConsentId::from_slice(&id)?,
        customer_id: CustomerId::from_slice(&customer)?,
        purpose: row.get("purpose")?,
        channel: row.get("channel")?,
        status: ConsentStatus::parse(&status)
            .map_err(|_| Error::Storage("unknown consent status".into()))?,
        legal_basis: basis
            .map(|b| LegalBasis::parse(&b))
            .transpose()
            .map_err(|_| Error::Storage("unknown legal basis".into()))?,
        source: row.get("source")?,
        proof: row.get("proof")?,
        recorded_at: from_micros(row.get("recorded_at")?)?,
    })
}

pub(crate) fn insert(
    conn: &Connection,
    ctx: &ChangeContext,
    customer_rowid: i64,
    r: &ConsentRecord,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO consents (id, customer_rowid, purpose, channel, status, legal_basis, source, proof, recorded_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &r.id.as_bytes()[..],
        customer_rowid,
        r.purpose,
        r.channel,
        r.status.as_str(),
        r.legal_basis.map(LegalBasis::as_str),
        r.source,
        r.proof,
        to_micros(r.recorded_at),
    ])?;
    super::derived::record_consent(
        conn,
        customer_rowid,
        &r.purpose,
        r.channel.as_deref(),
        r.status.as_str(),
        to_micros(r.recorded_at),
        conn.last_insert_rowid(),
    )?;
    changes::append(
        conn,
        ctx,
        r.recorded_at,
        EntityKind::Consent,
        r.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(())
}

/// The record that answers for `purpose` on `channel`: the most recent one for
/// that channel or for every channel. With `channel = None`, only records that
/// cover every channel answer.
pub(crate) fn current(
    conn: &Connection,
    customer_rowid: i64,
    purpose: &str,
    channel: Option<&str>,
) -> Result<Option<ConsentRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM consents k WHERE k.customer_rowid = ?1 AND k.purpose = ?2 \
         AND (k.channel IS NULL OR k.channel = ?3) ORDER BY k.recorded_at DESC, k.rowid DESC LIMIT 1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![customer_rowid, purpose, channel])?;
    rows.next()?.map(from_row).transpose()
}

pub(crate) fn history(
    conn: &Connection,
    customer_rowid: i64,
    purpose: Option<&str>,
) -> Result<Vec<ConsentRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM consents k WHERE k.customer_rowid = ?1 AND (?2 IS NULL OR k.purpose = ?2) \
         ORDER BY k.recorded_at DESC, k.rowid DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![customer_rowid, purpose])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}
