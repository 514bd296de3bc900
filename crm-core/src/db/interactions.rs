//! Interaction rows: the timeline.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::{changes, customers, derived, from_micros, search, to_micros};
use crate::error::{Error, Result};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::ids::{CustomerId, InteractionId};
use crate::model::interaction::{
    CustomerRef, Direction, Interaction, InteractionKind, ValidInteraction,
};
use crate::model::normalize;

macro_rules! interaction_columns {
    ($customer_id:literal) => {
        concat!(
            "i.rowid AS rowid, i.id, ",
            $customer_id,
            " AS customer_id, i.kind, i.channel, i.direction, i.occurred_at, i.subject, i.body, \
             i.amount_minor, i.currency, i.product, i.quantity, i.score, i.metadata, i.created_at"
        )
    };
}

pub(crate) const COLUMNS: &str =
    interaction_columns!("(SELECT c.id FROM customers c WHERE c.rowid = i.customer_rowid)");
/// For a timeline, whose customer is known: the id is bound as `?6`.
const TIMELINE_COLUMNS: &str = interaction_columns!("?6");

pub(crate) fn from_row(row: &Row<'_>) -> Result<Interaction> {
    let id: Vec<u8> = row.get("id")?;
    let customer: Vec<u8> = row.get("customer_id")?;
    let kind: String = row.get("kind")?;
    let direction: Option<String> = row.get("direction")?;
    let metadata: Option<String> = row.get("metadata")?;
    Ok(Interaction {
        id: InteractionId::from_slice(&id)?,
        customer_id: CustomerId::from_slice(&customer)?,
        kind: InteractionKind::parse(&kind)
            .map_err(|_| Error::Storage("unknown interaction kind".into()))?,
        channel: row.get("channel")?,
        direction: direction
            .map(|d| Direction::parse(&d))
            .transpose()
            .map_err(|_| Error::Storage("unknown direction".into()))?,
        occurred_at: from_micros(row.get("occurred_at")?)?,
        subject: row.get("subject")?,
        body: row.get("body")?,
        amount_minor: row.get("amount_minor")?,
        currency: row.get("currency")?,
        product: row.get("product")?,
        quantity: row.get("quantity")?,
        score: row.get("score")?,
        metadata: metadata
            .map(|m| super::from_json(&m, "metadata"))
            .transpose()?,
        created_at: from_micros(row.get("created_at")?)?,
    })
}

/// Finds the customer an interaction names: `(rowid, id)`.
pub(crate) fn resolve_customer(
    conn: &Connection,
    customer: &CustomerRef,
) -> Result<(i64, CustomerId)> {
    let found = match customer {
        CustomerRef::Id(id) => customers::rowid_of(conn, *id)?.map(|r| (r, *id)),
        CustomerRef::ExternalId(ext) => customers::rowid_by_external_id(conn, ext.trim())?,
        CustomerRef::Email(email) => {
            let email =
                normalize::email(email).map_err(|r| Error::validation("customer_email", r))?;
            customers::rowid_by_email(conn, &email)?
        }
    };
    found.ok_or(Error::NotFound { entity: "customer" })
}

pub(crate) fn insert(
    conn: &Connection,
    ctx: &ChangeContext,
    customer_rowid: i64,
    v: &ValidInteraction,
    id: InteractionId,
    now: DateTime<Utc>,
    deferred: bool,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO interactions (id, customer_rowid, kind, channel, direction, occurred_at, subject, body, \
         amount_minor, currency, product, quantity, score, metadata, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &id.as_bytes()[..],
        customer_rowid,
        v.kind.as_str(),
        v.channel,
        v.direction.map(Direction::as_str),
        to_micros(v.occurred_at),
        v.subject,
        v.body,
        v.amount_minor,
        v.currency,
        v.product,
        v.quantity,
        v.score,
        v.metadata,
        to_micros(now),
    ])?;
    let rowid = conn.last_insert_rowid();
    if !deferred {
        derived::add_interaction(
            conn,
            customer_rowid,
            v.kind.as_str(),
            v.currency.as_deref(),
            v.amount_minor,
            v.quantity,
            v.score.map(i64::from),
            to_micros(v.occurred_at),
        )?;
        changes::append(
            conn,
            ctx,
            now,
            EntityKind::Interaction,
            id.as_bytes(),
            ChangeOp::Created,
            &[],
        )?;
        if let Some(subject) = &v.subject {
            search::index_interaction(conn, rowid, subject)?;
        }
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: InteractionId) -> Result<Option<Interaction>> {
    let sql = format!("SELECT {COLUMNS} FROM interactions i WHERE i.id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([&id.as_bytes()[..]])?;
    rows.next()?.map(from_row).transpose()
}

/// A customer's interactions, newest first, strictly before `before`
/// (`(occurred_at micros, rowid)`).
pub(crate) fn timeline(
    conn: &Connection,
    customer_rowid: i64,
    customer_id: CustomerId,
    before: Option<(i64, i64)>,
    kind: Option<&InteractionKind>,
    limit: u32,
) -> Result<Vec<((i64, i64), Interaction)>> {
    let mut sql =
        format!("SELECT {TIMELINE_COLUMNS} FROM interactions i WHERE i.customer_rowid = ?1");
    if before.is_some() {
        sql.push_str(" AND (i.occurred_at, i.rowid) < (?2, ?3)");
    }
    if kind.is_some() {
        sql.push_str(" AND i.kind = ?4");
    }
    sql.push_str(" ORDER BY i.occurred_at DESC, i.rowid DESC LIMIT ?5");
    let (t, r) = before.unwrap_or((0, 0));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        customer_rowid,
        t,
        r,
        kind.map(InteractionKind::as_str),
        limit,
        &customer_id.as_bytes()[..]
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get("rowid")?;
        let i = from_row(row)?;
        out.push(((to_micros(i.occurred_at), rowid), i));
    }
    Ok(out)
}

pub(crate) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM interactions", [], |r| r.get(0))?;
    Ok(n as u64)
}
