//! Appending to and reading the change log.

use rusqlite::{Connection, params};

use super::{from_micros, to_micros};
use crate::error::{Error, Result};
use crate::model::change::{Change, ChangeContext, ChangeOp, EntityKind};
use chrono::{DateTime, Utc};

pub(crate) fn append(
    conn: &Connection,
    ctx: &ChangeContext,
    at: DateTime<Utc>,
    entity: EntityKind,
    entity_id: &[u8; 16],
    op: ChangeOp,
    fields: &[&str],
) -> Result<()> {
    let fields = if fields.is_empty() {
        None
    } else {
        Some(serde_json::to_string(fields).map_err(|e| Error::Storage(e.to_string()))?)
    };
    conn.prepare_cached(
        "INSERT INTO changes (at, entity, entity_id, op, fields, actor, source, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        to_micros(at),
        entity.as_str(),
        &entity_id[..],
        op.as_str(),
        fields,
        ctx.actor,
        ctx.source,
        ctx.rule
    ])?;
    Ok(())
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<Change> {
    let entity: String = row.get("entity")?;
    let op: String = row.get("op")?;
    let id: Vec<u8> = row.get("entity_id")?;
    let id = uuid::Uuid::from_slice(&id)
        .map_err(|_| Error::Storage("malformed id in the change log".into()))?;
    let fields: Option<String> = row.get("fields")?;
    Ok(Change {
        seq: row.get("seq")?,
        at: from_micros(row.get("at")?)?,
        entity: EntityKind::parse(&entity)
            .ok_or_else(|| Error::Storage("unknown entity in the change log".into()))?,
        entity_id: id.hyphenated().to_string(),
        op: ChangeOp::parse(&op)
            .ok_or_else(|| Error::Storage("unknown op in the change log".into()))?,
        fields: match fields {
            Some(f) => super::from_json(&f, "changes.fields")?,
            None => Vec::new(),
        },
        actor: row.get("actor")?,
        source: row.get("source")?,
        rule: row.get("rule")?,
    })
}

pub(crate) fn since(conn: &Connection, after_seq: i64, limit: u32) -> Result<Vec<Change>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")?;
    let mut rows = stmt.query(params![after_seq, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn for_entity(conn: &Connection, entity_id: &[u8; 16]) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM changes WHERE entity_id = ? ORDER BY seq")?;
    let mut rows = stmt.query([&entity_id[..]])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}
