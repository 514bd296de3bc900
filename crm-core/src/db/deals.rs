//! Pipelines, deals, their stage history, and tasks.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{changes, from_json, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::deal::{
    Deal, DealStageChange, DealStatus, Pipeline, PipelineStage, Priority, Task, TaskStatus,
};
use crate::model::ids::{CustomerId, DealId, PipelineId, TaskId};

// ===== pipelines ============================================================

const PIPELINE_COLUMNS: &str = "rowid, id, name, currency, stages, created_at, updated_at";

fn pipeline_from_row(row: &Row<'_>) -> Result<(i64, Pipeline)> {
    let id: Vec<u8> = row.get("id")?;
    let stages: String = row.get("stages")?;
    Ok((
        row.get("rowid")?,
        Pipeline {
            id: PipelineId::from_slice(&id)?,
            name: row.get("name")?,
            currency: row.get("currency")?,
            stages: from_json::<Vec<PipelineStage>>(&stages, "pipelines.stages")?,
            created_at: from_micros(row.get("created_at")?)?,
            updated_at: from_micros(row.get("updated_at")?)?,
        },
    ))
}

fn stages_json(p: &Pipeline) -> Result<String> {
    serde_json::to_string(&p.stages).map_err(|e| Error::Storage(e.to_string()))
}

/// A pipeline and its rowid, by name.
pub(crate) fn pipeline_by_name(conn: &Connection, name: &str) -> Result<Option<(i64, Pipeline)>> {
    conn.prepare_cached(&format!(
        "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE name = ?"
    ))?
    .query_row([name.trim()], |r| Ok(pipeline_from_row(r)))
    .optional()?
    .transpose()
}

/// A pipeline by name, or [`Error::NotFound`].
pub(crate) fn require_pipeline(conn: &Connection, name: &str) -> Result<(i64, Pipeline)> {
    pipeline_by_name(conn, name)?.ok_or(Error::NotFound { entity: "pipeline" })
}

pub(crate) fn pipeline_by_rowid(conn: &Connection, rowid: i64) -> Result<Pipeline> {
    conn.prepare_cached(&format!(
        "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE rowid = ?"
    ))?
    .query_row([rowid], |r| Ok(pipeline_from_row(r)))?
    .map(|(_, p)| p)
}

pub(crate) fn pipelines(conn: &Connection) -> Result<Vec<Pipeline>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PIPELINE_COLUMNS} FROM pipelines ORDER BY name"
    ))?;
    let rows = stmt.query_map([], |r| Ok(pipeline_from_row(r)))?;
    rows.map(|r| r?.map(|(_, p)| p)).collect()
}

pub(crate) fn insert_pipeline(conn: &Connection, ctx: &ChangeContext, p: &Pipeline) -> Result<i64> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO pipelines (id, name, currency, stages, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![
            &p.id.as_bytes()[..],
            p.name,
            p.currency,
            stages_json(p)?,
            to_micros(p.created_at),
            to_micros(p.updated_at),
        ])?;
    if inserted == 0 {
        return Err(Error::conflict("name", "another pipeline has this name"));
    }
    let rowid = conn.last_insert_rowid();
    changes::append(
        conn,
        ctx,
        p.created_at,
        EntityKind::Pipeline,
        p.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(rowid)
}

pub(crate) fn update_pipeline_stages(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    p: &Pipeline,
) -> Result<()> {
    conn.prepare_cached("UPDATE pipelines SET stages = ?, updated_at = ? WHERE rowid = ?")?
        .execute(params![stages_json(p)?, to_micros(p.updated_at), rowid])?;
    changes::append(
        conn,
        ctx,
        p.updated_at,
        EntityKind::Pipeline,
        p.id.as_bytes(),
        ChangeOp::Updated,
        &["stages"],
    )
}

/// How many deals each stage of a pipeline holds (stages without deals
/// left out).
pub(crate) fn deals_per_stage(
    conn: &Connection,
    pipeline_rowid: i64,
) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT stage, count(*) FROM deals WHERE pipeline_rowid = ? GROUP BY stage",
    )?;
    let rows = stmt.query_map([pipeline_rowid], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|r| Ok(r.map(|(s, n)| (s, n as u64))?)).collect()
}

pub(crate) fn delete_pipeline(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    p: &Pipeline,
    now: DateTime<Utc>,
) -> Result<()> {
    let deals: i64 = conn
        .prepare_cached("SELECT count(*) FROM deals WHERE pipeline_rowid = ?")?
        .query_row([rowid], |r| r.get(0))?;
    if deals > 0 {
        return Err(Error::conflict(
            "pipeline",
            format!(
                "pipeline '{}' has {deals} deal(s); delete or move them first",
                p.name
            ),
        ));
    }
    conn.prepare_cached("DELETE FROM pipelines WHERE rowid = ?")?
        .execute([rowid])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Pipeline,
        p.id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )
}

// ===== links ================================================================

/// The rowids of a deal's or task's customer and organization, checked:
/// both must exist, the organization must be one.
pub(crate) fn customer_links(
    conn: &Connection,
    customer: Option<CustomerId>,
    organization: Option<CustomerId>,
) -> Result<(Option<i64>, Option<i64>)> {
    let mut lookup = conn.prepare_cached("SELECT rowid, kind FROM customers WHERE id = ?")?;
    let customer_rowid = match customer {
        None => None,
        Some(id) => {
            let row: Option<(i64, String)> = lookup
                .query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Some(
                row.ok_or_else(|| Error::validation("customer_id", "no such customer"))?
                    .0,
            )
        }
    };
    let organization_rowid = match organization {
        None => None,
        Some(id) => {
            let row: Option<(i64, String)> = lookup
                .query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                None => return Err(Error::validation("organization_id", "no such organization")),
                Some((_, kind)) if kind != "organization" => {
                    return Err(Error::validation(
                        "organization_id",
                        "the customer is not an organization",
                    ));
                }
                Some((rowid, _)) => Some(rowid),
            }
        }
    };
    Ok((customer_rowid, organization_rowid))
}

// ===== deals ================================================================

const DEAL_COLUMNS: &str = "d.rowid AS rowid, d.id AS id, p.name AS pipeline, d.title AS title, \
    d.stage AS stage, d.value_minor AS value_minor, d.currency AS currency, \
    d.probability AS probability_override, \
    CASE d.status WHEN 'won' THEN 100 WHEN 'lost' THEN 0 ELSE coalesce(d.probability, \
      (SELECT json_extract(s.value, '$.probability') FROM json_each(p.stages) s \
       WHERE json_extract(s.value, '$.name') = d.stage), 0) END AS probability, \
    d.owner AS owner, d.expected_close AS expected_close, \
    (SELECT c.id FROM customers c WHERE c.rowid = d.customer_rowid) AS customer_id, \
    (SELECT o.id FROM customers o WHERE o.rowid = d.organization_rowid) AS organization_id, \
    d.customer_rowid AS customer_rowid, \
    d.status AS status, d.close_reason AS close_reason, d.closed_at AS closed_at, \
    d.created_at AS created_at, d.updated_at AS updated_at";

const DEAL_FROM: &str = "deals d JOIN pipelines p ON p.rowid = d.pipeline_rowid";

fn date(text: Option<String>) -> Result<Option<NaiveDate>> {
    text.map(|t| {
        NaiveDate::parse_from_str(&t, "%Y-%m-%d")
            .map_err(|_| Error::Storage("malformed date in deals.expected_close".into()))
    })
    .transpose()
}

fn percent(v: Option<i64>) -> Result<Option<u8>> {
    v.map(|p| u8::try_from(p).map_err(|_| Error::Storage("probability out of range".into())))
        .transpose()
}

/// A deal, its rowid and its customer's rowid.
fn deal_from_row(row: &Row<'_>) -> Result<(i64, Deal, Option<i64>)> {
    let id: Vec<u8> = row.get("id")?;
    let customer: Option<Vec<u8>> = row.get("customer_id")?;
    let organization: Option<Vec<u8>> = row.get("organization_id")?;
    let status: String = row.get("status")?;
    let closed_at: Option<i64> = row.get("closed_at")?;
    Ok((
        row.get("rowid")?,
        Deal {
            id: DealId::from_slice(&id)?,
            pipeline: row.get("pipeline")?,
            title: row.get("title")?,
            stage: row.get("stage")?,
            value_minor: row.get("value_minor")?,
            currency: row.get("currency")?,
            probability: percent(row.get("probability")?)?.unwrap_or(0),
            probability_override: percent(row.get("probability_override")?)?,
            owner: row.get("owner")?,
            expected_close: date(row.get("expected_close")?)?,
            customer_id: customer.map(|c| CustomerId::from_slice(&c)).transpose()?,
            organization_id: organization
                .map(|c| CustomerId::from_slice(&c))
                .transpose()?,
            status: DealStatus::parse(&status)?,
            close_reason: row.get("close_reason")?,
            closed_at: closed_at.map(from_micros).transpose()?,
            created_at: from_micros(row.get("created_at")?)?,
            updated_at: from_micros(row.get("updated_at")?)?,
        },
        row.get("customer_rowid")?,
    ))
}

pub(crate) fn deal_rowid(conn: &Connection, id: DealId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT rowid FROM deals WHERE id = ?")?
        .query_row([&id.as_bytes()[..]], |r| r.get(0))
        .optional()?)
}

/// A deal, its rowid and its pipeline's rowid, or [`Error::NotFound`].
pub(crate) fn require_deal(conn: &Connection, id: DealId) -> Result<(i64, Deal, i64)> {
    let rowid = deal_rowid(conn, id)?.ok_or(Error::NotFound { entity: "deal" })?;
    let (deal, _) = deal_by_rowid(conn, rowid)?.ok_or(Error::NotFound { entity: "deal" })?;
    let pipeline: i64 = conn
        .prepare_cached("SELECT pipeline_rowid FROM deals WHERE rowid = ?")?
        .query_row([rowid], |r| r.get(0))?;
    Ok((rowid, deal, pipeline))
}

/// A deal and its customer's rowid, by rowid.
pub(crate) fn deal_by_rowid(conn: &Connection, rowid: i64) -> Result<Option<(Deal, Option<i64>)>> {
    conn.prepare_cached(&format!(
        "SELECT {DEAL_COLUMNS} FROM {DEAL_FROM} WHERE d.rowid = ?"
    ))?
    .query_row([rowid], |r| Ok(deal_from_row(r)))
    .optional()?
    .transpose()
    .map(|o| o.map(|(_, d, c)| (d, c)))
}

/// Inserts a deal with its first stage-history row; returns its rowid.
pub(crate) fn insert_deal(
    conn: &Connection,
    ctx: &ChangeContext,
    pipeline_rowid: i64,
    d: &Deal,
    links: (Option<i64>, Option<i64>),
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO deals (id, pipeline_rowid, title, stage, value_minor, currency, probability, \
         owner, expected_close, customer_rowid, organization_rowid, status, close_reason, closed_at, \
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &d.id.as_bytes()[..],
        pipeline_rowid,
        d.title,
        d.stage,
        d.value_minor,
        d.currency,
        d.probability_override,
        d.owner,
        d.expected_close.map(|e| e.to_string()),
        links.0,
        links.1,
        d.status.as_str(),
        d.close_reason,
        d.closed_at.map(to_micros),
        to_micros(d.created_at),
        to_micros(d.updated_at),
    ])?;
    let rowid = conn.last_insert_rowid();
    add_history(
        conn,
        ctx,
        rowid,
        None,
        &d.stage,
        d.created_at,
        d.close_reason.as_deref(),
    )?;
    changes::append(
        conn,
        ctx,
        d.created_at,
        EntityKind::Deal,
        d.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(rowid)
}

/// Writes every field of a deal (links given as rowids) and logs `changed`.
pub(crate) fn update_deal(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    d: &Deal,
    links: (Option<i64>, Option<i64>),
    changed: &[&str],
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE deals SET title = ?, stage = ?, value_minor = ?, probability = ?, owner = ?, \
         expected_close = ?, customer_rowid = ?, organization_rowid = ?, status = ?, \
         close_reason = ?, closed_at = ?, updated_at = ? WHERE rowid = ?",
    )?
    .execute(params![
        d.title,
        d.stage,
        d.value_minor,
        d.probability_override,
        d.owner,
        d.expected_close.map(|e| e.to_string()),
        links.0,
        links.1,
        d.status.as_str(),
        d.close_reason,
        d.closed_at.map(to_micros),
        to_micros(d.updated_at),
        rowid,
    ])?;
    changes::append(
        conn,
        ctx,
        d.updated_at,
        EntityKind::Deal,
        d.id.as_bytes(),
        ChangeOp::Updated,
        changed,
    )
}

/// The stored customer and organization rowids of a deal.
pub(crate) fn deal_links(conn: &Connection, rowid: i64) -> Result<(Option<i64>, Option<i64>)> {
    Ok(conn
        .prepare_cached("SELECT customer_rowid, organization_rowid FROM deals WHERE rowid = ?")?
        .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

pub(crate) fn add_history(
    conn: &Connection,
    ctx: &ChangeContext,
    deal_rowid: i64,
    from: Option<&str>,
    to: &str,
    at: DateTime<Utc>,
    reason: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO deal_stage_history (deal_rowid, from_stage, to_stage, at, reason, rule) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        deal_rowid,
        from,
        to,
        to_micros(at),
        reason,
        ctx.rule
    ])?;
    Ok(())
}

pub(crate) fn history(conn: &Connection, deal_rowid: i64) -> Result<Vec<DealStageChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT from_stage, to_stage, at, reason, rule FROM deal_stage_history \
         WHERE deal_rowid = ? ORDER BY at, rowid",
    )?;
    let rows = stmt.query_map([deal_rowid], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get::<_, i64>(2)?,
            r.get(3)?,
            r.get(4)?,
        ))
    })?;
    rows.map(|r| {
        let (from, to, at, reason, rule) = r?;
        Ok(DealStageChange {
            from,
            to,
            at: from_micros(at)?,
            reason,
            rule,
        })
    })
    .collect()
}

/// Deletes a deal and its tasks, logging each.
pub(crate) fn delete_deal(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    id: DealId,
    now: DateTime<Utc>,
) -> Result<()> {
    let tasks: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT id FROM tasks WHERE deal_rowid = ? ORDER BY rowid")?
        .query_map([rowid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("DELETE FROM tasks WHERE deal_rowid = ?")?
        .execute([rowid])?;
    for t in tasks {
        let t = TaskId::from_slice(&t)?;
        changes::append(
            conn,
            ctx,
            now,
            EntityKind::Task,
            t.as_bytes(),
            ChangeOp::Deleted,
            &[],
        )?;
    }
    conn.prepare_cached("DELETE FROM deals WHERE rowid = ?")?
        .execute([rowid])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Deal,
        id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )
}

/// Filters of a deal listing, resolved to rowids.
pub(crate) struct DealFilter<'a> {
    pub pipeline_rowid: Option<i64>,
    pub stage: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub customer_rowid: Option<i64>,
    pub status: Option<DealStatus>,
}

/// Deals after rowid `after` that pass `f`, in rowid order.
pub(crate) fn deals_page(
    conn: &Connection,
    f: &DealFilter<'_>,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, Deal)>> {
    let mut sql = format!("SELECT {DEAL_COLUMNS} FROM {DEAL_FROM} WHERE d.rowid > ?");
    let mut values = vec![Value::Integer(after)];
    if let Some(p) = f.pipeline_rowid {
        sql.push_str(" AND d.pipeline_rowid = ?");
        values.push(Value::Integer(p));
    }
    if let Some(s) = f.stage {
        sql.push_str(" AND d.stage = ?");
        values.push(Value::Text(s.to_string()));
    }
    if let Some(o) = f.owner {
        sql.push_str(" AND d.owner = ?");
        values.push(Value::Text(o.to_string()));
    }
    if let Some(c) = f.customer_rowid {
        sql.push_str(" AND (d.customer_rowid = ? OR d.organization_rowid = ?)");
        values.push(Value::Integer(c));
        values.push(Value::Integer(c));
    }
    if let Some(s) = f.status {
        sql.push_str(" AND d.status = ?");
        values.push(Value::Text(s.as_str().to_string()));
    }
    sql.push_str(" ORDER BY d.rowid LIMIT ?");
    values.push(Value::Integer(i64::from(limit)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |r| Ok(deal_from_row(r)))?;
    rows.map(|r| r?.map(|(rowid, d, _)| (rowid, d))).collect()
}

/// One open stage's sums in a forecast: stage, deals, value, weighted value.
pub(crate) type StageSums = (String, u64, i64, i64);

/// Sums of the open deals of a pipeline per stage, each deal weighted by its
/// effective probability and rounded half up on its own.
pub(crate) fn forecast(
    conn: &Connection,
    pipeline_rowid: i64,
    owner: Option<&str>,
    close_from: Option<NaiveDate>,
    close_to: Option<NaiveDate>,
) -> Result<Vec<StageSums>> {
    let mut stmt = conn.prepare_cached(
        "WITH stage AS (SELECT json_extract(s.value, '$.name') AS name, \
                               json_extract(s.value, '$.probability') AS probability \
                        FROM pipelines p, json_each(p.stages) s WHERE p.rowid = ?1) \
         SELECT d.stage, count(*), sum(d.value_minor), \
                sum((d.value_minor * coalesce(d.probability, stage.probability) + 50) / 100) \
         FROM deals d JOIN stage ON stage.name = d.stage \
         WHERE d.pipeline_rowid = ?1 AND d.status = 'open' \
           AND (?2 IS NULL OR d.owner = ?2) \
           AND (?3 IS NULL OR d.expected_close >= ?3) \
           AND (?4 IS NULL OR d.expected_close <= ?4) \
         GROUP BY d.stage",
    )?;
    let rows = stmt.query_map(
        params![
            pipeline_rowid,
            owner,
            close_from.map(|d| d.to_string()),
            close_to.map(|d| d.to_string())
        ],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?)),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Open tasks plus open deals owned by `owner`.
pub(crate) fn open_work(conn: &Connection, owner: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM tasks WHERE owner = ?1 AND status = 'open') \
                  + (SELECT count(*) FROM deals WHERE owner = ?1 AND status = 'open')",
        )?
        .query_row([owner], |r| r.get(0))?;
    Ok(n as u64)
}

// ===== tasks ================================================================

const TASK_COLUMNS: &str = "t.rowid AS rowid, t.id AS id, t.title AS title, t.notes AS notes, \
    t.owner AS owner, t.due_at AS due_at, t.priority AS priority, t.status AS status, \
    (SELECT c.id FROM customers c WHERE c.rowid = t.customer_rowid) AS customer_id, \
    (SELECT d.id FROM deals d WHERE d.rowid = t.deal_rowid) AS deal_id, \
    t.rule AS rule, t.created_at AS created_at, t.updated_at AS updated_at, \
    t.completed_at AS completed_at";

fn task_from_row(row: &Row<'_>) -> Result<(i64, Task)> {
    let id: Vec<u8> = row.get("id")?;
    let customer: Option<Vec<u8>> = row.get("customer_id")?;
    let deal: Option<Vec<u8>> = row.get("deal_id")?;
    let due: Option<i64> = row.get("due_at")?;
    let completed: Option<i64> = row.get("completed_at")?;
    let priority: String = row.get("priority")?;
    let status: String = row.get("status")?;
    Ok((
        row.get("rowid")?,
        Task {
            id: TaskId::from_slice(&id)?,
            title: row.get("title")?,
            notes: row.get("notes")?,
            owner: row.get("owner")?,
            due_at: due.map(from_micros).transpose()?,
            priority: Priority::parse(&priority)?,
            status: TaskStatus::parse(&status)?,
            customer_id: customer.map(|c| CustomerId::from_slice(&c)).transpose()?,
            deal_id: deal.map(|d| DealId::from_slice(&d)).transpose()?,
            rule: row.get("rule")?,
            created_at: from_micros(row.get("created_at")?)?,
            updated_at: from_micros(row.get("updated_at")?)?,
            completed_at: completed.map(from_micros).transpose()?,
        },
    ))
}

/// The rowids of a task's customer and deal, checked.
pub(crate) fn task_links(
    conn: &Connection,
    customer: Option<CustomerId>,
    deal: Option<DealId>,
) -> Result<(Option<i64>, Option<i64>)> {
    let (customer_rowid, _) = customer_links(conn, customer, None)?;
    let deal_rowid = match deal {
        None => None,
        Some(id) => Some(
            deal_rowid(conn, id)?.ok_or_else(|| Error::validation("deal_id", "no such deal"))?,
        ),
    };
    Ok((customer_rowid, deal_rowid))
}

/// A task and its rowid, or [`Error::NotFound`].
pub(crate) fn require_task(conn: &Connection, id: TaskId) -> Result<(i64, Task)> {
    conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = ?"
    ))?
    .query_row([&id.as_bytes()[..]], |r| Ok(task_from_row(r)))
    .optional()?
    .transpose()?
    .ok_or(Error::NotFound { entity: "task" })
}

pub(crate) fn insert_task(
    conn: &Connection,
    ctx: &ChangeContext,
    t: &Task,
    links: (Option<i64>, Option<i64>),
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO tasks (id, title, notes, owner, due_at, priority, status, customer_rowid, \
         deal_rowid, rule, created_at, updated_at, completed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &t.id.as_bytes()[..],
        t.title,
        t.notes,
        t.owner,
        t.due_at.map(to_micros),
        t.priority.as_str(),
        t.status.as_str(),
        links.0,
        links.1,
        t.rule,
        to_micros(t.created_at),
        to_micros(t.updated_at),
        t.completed_at.map(to_micros),
    ])?;
    let rowid = conn.last_insert_rowid();
    changes::append(
        conn,
        ctx,
        t.created_at,
        EntityKind::Task,
        t.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(rowid)
}

/// Writes every field of a task except its links when `links` is `None`.
pub(crate) fn update_task(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    t: &Task,
    links: Option<(Option<i64>, Option<i64>)>,
    changed: &[&str],
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET title = ?, notes = ?, owner = ?, due_at = ?, priority = ?, status = ?, \
         updated_at = ?, completed_at = ? WHERE rowid = ?",
    )?
    .execute(params![
        t.title,
        t.notes,
        t.owner,
        t.due_at.map(to_micros),
        t.priority.as_str(),
        t.status.as_str(),
        to_micros(t.updated_at),
        t.completed_at.map(to_micros),
        rowid,
    ])?;
    if let Some((customer, deal)) = links {
        conn.prepare_cached("UPDATE tasks SET customer_rowid = ?, deal_rowid = ? WHERE rowid = ?")?
            .execute(params![customer, deal, rowid])?;
    }
    changes::append(
        conn,
        ctx,
        t.updated_at,
        EntityKind::Task,
        t.id.as_bytes(),
        ChangeOp::Updated,
        changed,
    )
}

/// Filters of a task listing, resolved to rowids.
pub(crate) struct TaskFilter<'a> {
    pub owner: Option<&'a str>,
    pub customer_rowid: Option<i64>,
    pub deal_rowid: Option<i64>,
    pub status: Option<TaskStatus>,
}

/// Tasks after rowid `after` that pass `f`, in rowid order.
pub(crate) fn tasks_page(
    conn: &Connection,
    f: &TaskFilter<'_>,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, Task)>> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.rowid > ?");
    let mut values = vec![Value::Integer(after)];
    if let Some(o) = f.owner {
        sql.push_str(" AND t.owner = ?");
        values.push(Value::Text(o.to_string()));
    }
    if let Some(c) = f.customer_rowid {
        sql.push_str(" AND t.customer_rowid = ?");
        values.push(Value::Integer(c));
    }
    if let Some(d) = f.deal_rowid {
        sql.push_str(" AND t.deal_rowid = ?");
        values.push(Value::Integer(d));
    }
    if let Some(s) = f.status {
        sql.push_str(" AND t.status = ?");
        values.push(Value::Text(s.as_str().to_string()));
    }
    sql.push_str(" ORDER BY t.rowid LIMIT ?");
    values.push(Value::Integer(i64::from(limit)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |r| Ok(task_from_row(r)))?;
    rows.map(|r| r?).collect()
}

/// Open tasks due before `now`, oldest due first, after the position
/// `(due_at, rowid)`; each with its position.
pub(crate) fn overdue(
    conn: &Connection,
    now: DateTime<Utc>,
    owner: Option<&str>,
    after: Option<(i64, i64)>,
    limit: u32,
) -> Result<Vec<((i64, i64), Task)>> {
    let (due, rowid) = after.unwrap_or((i64::MIN, 0));
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks t INDEXED BY tasks_open_due \
         WHERE t.status = 'open' AND t.due_at < ?1 AND t.due_at >= ?2 \
           AND (t.due_at > ?2 OR t.rowid > ?3) AND (?4 IS NULL OR t.owner = ?4) \
         ORDER BY t.due_at, t.rowid LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![to_micros(now), due, rowid, owner, i64::from(limit)],
        |r| Ok(task_from_row(r)),
    )?;
    rows.map(|r| {
        let (rowid, task) = r??;
        let due = task.due_at.map(to_micros).unwrap_or_default();
        Ok(((due, rowid), task))
    })
    .collect()
}

pub(crate) fn delete_task(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    t: &Task,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM tasks WHERE rowid = ?")?
        .execute([rowid])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Task,
        t.id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )
}
