//! Segments and the queries of compiled filter expressions.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{changes, customers, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::filter::compile::{Compiled, Shape};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::customer::Customer;
use crate::model::ids::{CustomerId, SegmentId};
use crate::segment::{Segment, SegmentKind};

const COLUMNS: &str =
    "rowid, id, name, description, kind, expression, created_at, updated_at, evaluated_at";

fn from_row(row: &Row<'_>) -> Result<(i64, Segment)> {
    let id: Vec<u8> = row.get("id")?;
    let kind: String = row.get("kind")?;
    let evaluated: Option<i64> = row.get("evaluated_at")?;
    Ok((
        row.get("rowid")?,
        Segment {
            id: SegmentId::from_slice(&id)?,
            name: row.get("name")?,
            description: row.get("description")?,
            kind: if kind == "static" {
                SegmentKind::Static
            } else {
                SegmentKind::Dynamic
            },
            filter: row.get("expression")?,
            created_at: from_micros(row.get("created_at")?)?,
            updated_at: from_micros(row.get("updated_at")?)?,
            evaluated_at: evaluated.map(from_micros).transpose()?,
        },
    ))
}

/// A segment and its rowid, by name.
pub(crate) fn by_name(conn: &Connection, name: &str) -> Result<Option<(i64, Segment)>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM segments WHERE name = ?"))?
        .query_row([name], |r| Ok(from_row(r)))
        .optional()?
        .transpose()
}

/// A segment by name, or [`Error::NotFound`].
pub(crate) fn require(conn: &Connection, name: &str) -> Result<(i64, Segment)> {
    by_name(conn, name)?.ok_or(Error::NotFound { entity: "segment" })
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Segment>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM segments ORDER BY name"))?;
    let rows = stmt.query_map([], |r| Ok(from_row(r)))?;
    rows.map(|r| r?.map(|(_, s)| s)).collect()
}

pub(crate) fn insert(conn: &Connection, ctx: &ChangeContext, s: &Segment) -> Result<i64> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO segments (id, name, description, kind, expression, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![
            &s.id.as_bytes()[..],
            s.name,
            s.description,
            s.kind.as_str(),
            s.filter,
            to_micros(s.created_at),
            to_micros(s.updated_at),
        ])?;
    if inserted == 0 {
        return Err(Error::conflict("name", "another segment has this name"));
    }
    let rowid = conn.last_insert_rowid();
    changes::append(
        conn,
        ctx,
        s.created_at,
        EntityKind::Segment,
        s.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(rowid)
}

/// Writes a segment's name, description and expression.
pub(crate) fn update(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    s: &Segment,
    changed: &[&str],
) -> Result<()> {
    let clash: Option<i64> = conn
        .prepare_cached("SELECT rowid FROM segments WHERE name = ? AND rowid != ?")?
        .query_row(params![s.name, rowid], |r| r.get(0))
        .optional()?;
    if clash.is_some() {
        return Err(Error::conflict("name", "another segment has this name"));
    }
    conn.prepare_cached(
        "UPDATE segments SET name = ?, description = ?, expression = ?, updated_at = ? WHERE rowid = ?",
    )?
    .execute(params![
        s.name,
        s.description,
        s.filter,
        to_micros(s.updated_at),
        rowid
    ])?;
    changes::append(
        conn,
        ctx,
        s.updated_at,
        EntityKind::Segment,
        s.id.as_bytes(),
        ChangeOp::Updated,
        changed,
    )
}

pub(crate) fn delete(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    s: &Segment,
    now: DateTime<Utc>,
) -> Result<()> {
    let users = dependents(conn, rowid)?;
    if !users.is_empty() {
        let names: Vec<String> = users.into_iter().map(|(_, s)| s.name).collect();
        return Err(Error::conflict(
            "segment",
            format!(
                "used by in_segment() in: {}; change those first",
                names.join(", ")
            ),
        ));
    }
    conn.prepare_cached("DELETE FROM segments WHERE rowid = ?")?
        .execute([rowid])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Segment,
        s.id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )
}

/// The segments whose expressions name segment `rowid`.
pub(crate) fn dependents(conn: &Connection, rowid: i64) -> Result<Vec<(i64, Segment)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM segments WHERE rowid IN \
         (SELECT segment_rowid FROM segment_dependencies WHERE uses_rowid = ?) ORDER BY name"
    ))?;
    let rows = stmt.query_map([rowid], |r| Ok(from_row(r)))?;
    rows.map(|r| r?).collect()
}

pub(crate) fn set_dependencies(conn: &Connection, rowid: i64, uses: &[i64]) -> Result<()> {
    conn.prepare_cached("DELETE FROM segment_dependencies WHERE segment_rowid = ?")?
        .execute([rowid])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO segment_dependencies (segment_rowid, uses_rowid) VALUES (?, ?)",
    )?;
    for u in uses {
        insert.execute(params![rowid, u])?;
    }
    Ok(())
}

// ----- static membership ----------------------------------------------------

fn log_membership(
    conn: &Connection,
    ctx: &ChangeContext,
    now: DateTime<Utc>,
    customer: CustomerId,
    op: ChangeOp,
    segment: &str,
) -> Result<()> {
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::SegmentMember,
        customer.as_bytes(),
        op,
        &[segment],
    )
}

/// Adds customers to a segment's member table; returns how many were not
/// members yet. Unknown customers fail the whole call.
pub(crate) fn add_members(
    conn: &Connection,
    ctx: &ChangeContext,
    segment_rowid: i64,
    segment: &str,
    ids: &[CustomerId],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut added = 0;
    for id in ids {
        let rowid =
            customers::rowid_of(conn, *id)?.ok_or(Error::NotFound { entity: "customer" })?;
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO segment_members (segment_rowid, customer_rowid, added_at) VALUES (?, ?, ?)",
            )?
            .execute(params![segment_rowid, rowid, to_micros(now)])?;
        if n > 0 {
            added += 1;
            log_membership(conn, ctx, now, *id, ChangeOp::Created, segment)?;
        }
    }
    Ok(added)
}

/// Removes customers from a segment's member table; returns how many were
/// members.
pub(crate) fn remove_members(
    conn: &Connection,
    ctx: &ChangeContext,
    segment_rowid: i64,
    segment: &str,
    ids: &[CustomerId],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut removed = 0;
    for id in ids {
        let Some(rowid) = customers::rowid_of(conn, *id)? else {
            return Err(Error::NotFound { entity: "customer" });
        };
        let n = conn
            .prepare_cached(
                "DELETE FROM segment_members WHERE segment_rowid = ? AND customer_rowid = ?",
            )?
            .execute(params![segment_rowid, rowid])?;
        if n > 0 {
            removed += 1;
            log_membership(conn, ctx, now, *id, ChangeOp::Deleted, segment)?;
        }
    }
    Ok(removed)
}

// ----- evaluating filters ---------------------------------------------------

/// The `WHERE` of a segment: its compiled expression, or its member table.
pub(crate) enum Membership {
    Filter(Compiled),
    Members(i64),
}

impl Membership {
    fn condition(&self) -> (String, Vec<rusqlite::types::Value>) {
        match self {
            Membership::Filter(c) => (c.sql.clone(), c.params.clone()),
            Membership::Members(rowid) => (
                "c.rowid IN (SELECT customer_rowid FROM segment_members WHERE segment_rowid = ?1)"
                    .to_string(),
                vec![(*rowid).into()],
            ),
        }
    }
}

/// The query that counts a filter's customers: a membership subquery is
/// counted on its own, without visiting the customers.
fn count_sql(c: &Compiled) -> String {
    match &c.shape {
        Shape::Member(subquery) => format!("SELECT count(*) FROM ({subquery})"),
        Shape::NotMember(subquery) => {
            format!("SELECT (SELECT count(*) FROM customers) - (SELECT count(*) FROM ({subquery}))")
        }
        Shape::Other => format!("SELECT count(*) FROM customers c WHERE {}", c.sql),
    }
}

pub(crate) fn count(conn: &Connection, m: &Membership) -> Result<u64> {
    let (sql, params) = match m {
        Membership::Filter(c) => (count_sql(c), c.params.clone()),
        Membership::Members(rowid) => (
            "SELECT count(*) FROM segment_members WHERE segment_rowid = ?1".to_string(),
            vec![(*rowid).into()],
        ),
    };
    let n: i64 = conn
        .prepare(&sql)?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    Ok(n as u64)
}

/// Matching customers after rowid `after`, in rowid (creation) order.
pub(crate) fn page(
    conn: &Connection,
    m: &Membership,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, Customer)>> {
    let (cond, mut params) = m.condition();
    params.push(after.into());
    let n = params.len();
    let sql = format!(
        "SELECT {} FROM customers c WHERE ({cond}) AND c.rowid > ?{n} ORDER BY c.rowid LIMIT {limit}",
        customers::COLUMNS
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((row.get("rowid")?, customers::from_row(row)?));
    }
    Ok(out)
}

/// Whether customer `rowid` matches (`m` compiled in row mode).
pub(crate) fn contains(conn: &Connection, m: &Membership, rowid: i64) -> Result<bool> {
    let (cond, mut params) = m.condition();
    params.push(rowid.into());
    let n = params.len();
    let sql =
        format!("SELECT EXISTS (SELECT 1 FROM customers c WHERE c.rowid = ?{n} AND ({cond}))");
    Ok(conn
        .prepare(&sql)?
        .query_row(params_from_iter(params), |r| r.get(0))?)
}

/// The count query of a filter and SQLite's plan for it.
pub(crate) fn explain(conn: &Connection, c: &Compiled) -> Result<(String, Vec<String>)> {
    let sql = count_sql(c);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let mut rows = stmt.query(params_from_iter(c.params.iter()))?;
    let mut plan = Vec::new();
    let mut depth: Vec<(i64, usize)> = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let parent: i64 = row.get(1)?;
        let detail: String = row.get(3)?;
        while depth.last().is_some_and(|(p, _)| *p != parent) {
            depth.pop();
        }
        let indent = depth.last().map_or(0, |(_, d)| d + 1);
        plan.push(format!("{}{detail}", "  ".repeat(indent)));
        depth.push((id, indent));
    }
    Ok((sql, plan))
}

/// Counts of a materialization.
pub(crate) struct Materialized {
    pub members: u64,
    pub entered: u64,
    pub left: u64,
    /// With `collect`: who entered and who left, by rowid.
    pub entered_rowids: Vec<i64>,
    pub left_rowids: Vec<i64>,
}

/// Stores the current membership of a dynamic segment and logs who entered
/// and who left since the last time.
pub(crate) fn materialize(
    conn: &Connection,
    ctx: &ChangeContext,
    segment_rowid: i64,
    segment: &str,
    filter: &Compiled,
    now: DateTime<Utc>,
    collect: bool,
) -> Result<Materialized> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS segment_eval (customer_rowid INTEGER PRIMARY KEY); \
         DELETE FROM temp.segment_eval;",
    )?;
    conn.prepare(&format!(
        "INSERT INTO temp.segment_eval SELECT c.rowid FROM customers c WHERE {}",
        filter.sql
    ))?
    .execute(params_from_iter(filter.params.iter()))?;
    let fields = serde_json::to_string(&[segment]).map_err(|e| Error::Storage(e.to_string()))?;
    let at = to_micros(now);
    let (mut entered_rowids, mut left_rowids) = (Vec::new(), Vec::new());
    if collect {
        entered_rowids = conn
            .prepare_cached(
                "SELECT customer_rowid FROM temp.segment_eval WHERE customer_rowid NOT IN \
                 (SELECT customer_rowid FROM segment_members WHERE segment_rowid = ?1) ORDER BY customer_rowid",
            )?
            .query_map([segment_rowid], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        left_rowids = conn
            .prepare_cached(
                "SELECT customer_rowid FROM segment_members WHERE segment_rowid = ?1 AND customer_rowid \
                 NOT IN (SELECT customer_rowid FROM temp.segment_eval) ORDER BY customer_rowid",
            )?
            .query_map([segment_rowid], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
    let entered = conn
        .prepare_cached(
            "INSERT INTO changes (at, entity, entity_id, op, fields, actor, source, rule) \
             SELECT ?1, 'segment_member', c.id, 'created', ?2, ?3, ?4, ?6 \
             FROM temp.segment_eval e JOIN customers c ON c.rowid = e.customer_rowid \
             WHERE e.customer_rowid NOT IN (SELECT customer_rowid FROM segment_members WHERE segment_rowid = ?5) \
             ORDER BY e.customer_rowid",
        )?
        .execute(params![at, fields, ctx.actor, ctx.source, segment_rowid, ctx.rule])?;
    let left = conn
        .prepare_cached(
            "INSERT INTO changes (at, entity, entity_id, op, fields, actor, source, rule) \
             SELECT ?1, 'segment_member', c.id, 'deleted', ?2, ?3, ?4, ?6 \
             FROM segment_members m JOIN customers c ON c.rowid = m.customer_rowid \
             WHERE m.segment_rowid = ?5 AND m.customer_rowid NOT IN (SELECT customer_rowid FROM temp.segment_eval) \
             ORDER BY m.customer_rowid",
        )?
        .execute(params![at, fields, ctx.actor, ctx.source, segment_rowid, ctx.rule])?;
    conn.prepare_cached(
        "DELETE FROM segment_members WHERE segment_rowid = ?1 \
         AND customer_rowid NOT IN (SELECT customer_rowid FROM temp.segment_eval)",
    )?
    .execute([segment_rowid])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO segment_members (segment_rowid, customer_rowid, added_at) \
         SELECT ?1, customer_rowid, ?2 FROM temp.segment_eval",
    )?
    .execute(params![segment_rowid, at])?;
    conn.prepare_cached("UPDATE segments SET evaluated_at = ? WHERE rowid = ?")?
        .execute(params![at, segment_rowid])?;
    let members: i64 = conn
        .prepare_cached("SELECT count(*) FROM temp.segment_eval")?
        .query_row([], |r| r.get(0))?;
    conn.execute_batch("DELETE FROM temp.segment_eval")?;
    Ok(Materialized {
        members: members as u64,
        entered: entered as u64,
        left: left as u64,
        entered_rowids,
        left_rowids,
    })
}
