//! Rules, their versions, matches and effects; assignment teams.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{changes, from_json, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::filter::compile::Compiled;
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::ids::RuleId;
use crate::rules::{Definition, Rule, RuleEffect, Team, TeamMember};

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Storage(e.to_string()))
}

/// A number that changes whenever a rule does: what the loaded rules are
/// cached by.
pub(crate) fn generation(conn: &Connection) -> Result<i64> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = 'rules_generation'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn bump_generation(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES ('rules_generation', '1') \
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    )?
    .execute([])?;
    Ok(())
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<(i64, Rule)> {
    let id: Vec<u8> = row.get("id")?;
    let def: Definition = from_json(&row.get::<_, String>("definition")?, "rules.definition")?;
    Ok((
        row.get("rowid")?,
        Rule {
            id: RuleId::from_slice(&id)?,
            name: row.get("name")?,
            description: def.description,
            trigger: def.trigger,
            condition: def.condition,
            actions: def.actions,
            enabled: row.get("enabled")?,
            version: row.get("version")?,
            created_at: from_micros(row.get("created_at")?)?,
            updated_at: from_micros(row.get("updated_at")?)?,
        },
    ))
}

fn definition(rule: &Rule) -> Definition {
    Definition {
        description: rule.description.clone(),
        trigger: rule.trigger.clone(),
        condition: rule.condition.clone(),
        actions: rule.actions.clone(),
    }
}

pub(crate) fn by_name(conn: &Connection, name: &str) -> Result<Option<(i64, Rule)>> {
    let mut stmt = conn.prepare_cached("SELECT rowid, * FROM rules WHERE name = ?")?;
    let mut rows = stmt.query([name.trim()])?;
    match rows.next()? {
        Some(row) => Ok(Some(from_row(row)?)),
        None => Ok(None),
    }
}

pub(crate) fn require(conn: &Connection, name: &str) -> Result<(i64, Rule)> {
    by_name(conn, name)?.ok_or(Error::NotFound { entity: "rule" })
}

pub(crate) fn rowid_of(conn: &Connection, name: &str) -> Result<i64> {
    Ok(require(conn, name)?.0)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Rule>> {
    let mut stmt = conn.prepare_cached("SELECT rowid, * FROM rules ORDER BY name")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?.1);
    }
    Ok(out)
}

fn add_version(conn: &Connection, rowid: i64, rule: &Rule) -> Result<()> {
    let mut def =
        serde_json::to_value(definition(rule)).map_err(|e| Error::Storage(e.to_string()))?;
    def["enabled"] = rule.enabled.into();
    conn.prepare_cached(
        "INSERT INTO rule_versions (rule_rowid, version, definition, at) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![
        rowid,
        rule.version,
        def.to_string(),
        to_micros(rule.updated_at)
    ])?;
    Ok(())
}

pub(crate) fn insert(conn: &Connection, ctx: &ChangeContext, rule: &Rule) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rules (id, name, version, enabled, definition, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &rule.id.as_bytes()[..],
        rule.name,
        rule.version,
        rule.enabled,
        json(&definition(rule))?,
        to_micros(rule.created_at),
        to_micros(rule.updated_at)
    ])?;
    let rowid = conn.last_insert_rowid();
    add_version(conn, rowid, rule)?;
    bump_generation(conn)?;
    changes::append(
        conn,
        ctx,
        rule.created_at,
        EntityKind::Rule,
        rule.id.as_bytes(),
        ChangeOp::Created,
        &[],
    )?;
    Ok(rowid)
}

pub(crate) fn update(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    rule: &Rule,
    fields: &[&str],
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE rules SET version = ?, enabled = ?, definition = ?, updated_at = ? WHERE rowid = ?",
    )?
    .execute(params![
        rule.version,
        rule.enabled,
        json(&definition(rule))?,
        to_micros(rule.updated_at),
        rowid
    ])?;
    add_version(conn, rowid, rule)?;
    // A new definition may have a new condition: what the sweep remembered
    // matching no longer means the same.
    if fields.contains(&"definition") {
        conn.prepare_cached("DELETE FROM rule_matches WHERE rule_rowid = ?")?
            .execute([rowid])?;
    }
    bump_generation(conn)?;
    changes::append(
        conn,
        ctx,
        rule.updated_at,
        EntityKind::Rule,
        rule.id.as_bytes(),
        ChangeOp::Updated,
        fields,
    )
}

pub(crate) fn versions(conn: &Connection, rowid: i64, current: &Rule) -> Result<Vec<Rule>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, definition, at FROM rule_versions WHERE rule_rowid = ? ORDER BY version",
    )?;
    let mut rows = stmt.query([rowid])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let text: String = row.get(1)?;
        let value: serde_json::Value = from_json(&text, "rule_versions.definition")?;
        let enabled = value
            .get("enabled")
            .and_then(|e| e.as_bool())
            .unwrap_or(true);
        let def: Definition = serde_json::from_value(value).map_err(|_| {
            Error::Storage("malformed JSON in column rule_versions.definition".into())
        })?;
        out.push(Rule {
            description: def.description,
            trigger: def.trigger,
            condition: def.condition,
            actions: def.actions,
            enabled,
            version: row.get(0)?,
            updated_at: from_micros(row.get(2)?)?,
            ..current.clone()
        });
    }
    Ok(out)
}

pub(crate) fn delete(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM rules WHERE rowid = ?")?
        .execute([rowid])?;
    bump_generation(conn)?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Rule,
        rule.id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )
}

/// The names of a pipeline's stages, if it exists.
pub(crate) fn pipeline_stages(conn: &Connection, name: &str) -> Result<Option<Vec<String>>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT stages FROM pipelines WHERE name = ?")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let Some(text) = text else { return Ok(None) };
    let stages: Vec<serde_json::Value> = from_json(&text, "pipelines.stages")?;
    Ok(Some(
        stages
            .iter()
            .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect(),
    ))
}

/// The name of a deal's pipeline.
pub(crate) fn deal_pipeline(conn: &Connection, deal_rowid: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT p.name FROM deals d JOIN pipelines p ON p.rowid = d.pipeline_rowid WHERE d.rowid = ?",
        )?
        .query_row([deal_rowid], |r| r.get(0))
        .optional()?)
}

/// The open deals of a pipeline (any, without one), in one stage (any,
/// without one), by rowid.
pub(crate) fn open_deals(
    conn: &Connection,
    pipeline: Option<&str>,
    stage: Option<&str>,
) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT d.rowid FROM deals d JOIN pipelines p ON p.rowid = d.pipeline_rowid \
             WHERE d.status = 'open' AND (?1 IS NULL OR p.name = ?1) AND (?2 IS NULL OR d.stage = ?2) \
             ORDER BY d.rowid",
        )?
        .query_map(params![pipeline, stage], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Whether the customer matches a condition compiled in row mode.
pub(crate) fn matches(conn: &Connection, c: &Compiled, rowid: i64) -> Result<bool> {
    let n = c.params.len() + 1;
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM customers c WHERE c.rowid = ?{n} AND ({}))",
        c.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let params = c
        .params
        .iter()
        .cloned()
        .chain(std::iter::once(rowid.into()));
    Ok(stmt.query_row(params_from_iter(params), |r| r.get(0))?)
}

/// How many customers match (all of them without a condition), and the
/// rowids of the first `limit`.
pub(crate) fn matching(
    conn: &Connection,
    c: Option<&Compiled>,
    limit: u32,
) -> Result<(u64, Vec<i64>)> {
    let (cond, params) = match c {
        Some(c) => (c.sql.clone(), c.params.clone()),
        None => ("1".to_string(), Vec::new()),
    };
    let count: i64 = conn
        .prepare(&format!("SELECT count(*) FROM customers c WHERE {cond}"))?
        .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
    let n = params.len() + 1;
    let mut stmt = conn.prepare(&format!(
        "SELECT c.rowid FROM customers c WHERE {cond} ORDER BY c.rowid LIMIT ?{n}"
    ))?;
    let first = stmt
        .query_map(
            params_from_iter(
                params
                    .iter()
                    .cloned()
                    .chain(std::iter::once(i64::from(limit).into())),
            ),
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok((count as u64, first))
}

/// Stores who a scheduled rule's condition holds for now; returns how many
/// and the rowids of those it did not hold for at the previous sweep, in
/// rowid order.
pub(crate) fn refresh_matches(
    conn: &Connection,
    rule_rowid: i64,
    c: Option<&Compiled>,
) -> Result<(u64, Vec<i64>)> {
    let (cond, params) = match c {
        Some(c) => (c.sql.clone(), c.params.clone()),
        None => ("1".to_string(), Vec::new()),
    };
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS rule_eval (customer_rowid INTEGER PRIMARY KEY); \
         DELETE FROM temp.rule_eval;",
    )?;
    let matching = conn
        .prepare(&format!(
            "INSERT INTO temp.rule_eval SELECT c.rowid FROM customers c WHERE {cond} ORDER BY c.rowid"
        ))?
        .execute(params_from_iter(params.iter()))?;
    conn.prepare_cached(
        "DELETE FROM rule_matches WHERE rule_rowid = ?1 \
         AND customer_rowid NOT IN (SELECT customer_rowid FROM temp.rule_eval)",
    )?
    .execute([rule_rowid])?;
    // Who is new, and remembering them, in one pass over the matches.
    let mut new = conn
        .prepare_cached(
            "INSERT INTO rule_matches (rule_rowid, customer_rowid) \
             SELECT ?1, e.customer_rowid FROM temp.rule_eval e WHERE NOT EXISTS \
             (SELECT 1 FROM rule_matches m WHERE m.rule_rowid = ?1 AND m.customer_rowid = e.customer_rowid) \
             RETURNING customer_rowid",
        )?
        .query_map([rule_rowid], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    new.sort_unstable();
    conn.execute_batch("DELETE FROM temp.rule_eval")?;
    Ok((matching as u64, new))
}

pub(crate) fn record_effect(conn: &Connection, e: &RuleEffect, entity_id: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rule_effects (at, rule, rule_version, entity, entity_id, action, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        to_micros(e.at),
        e.rule,
        e.rule_version,
        e.entity.as_str(),
        entity_id,
        e.action,
        e.detail
    ])?;
    Ok(())
}

pub(crate) fn effects(
    conn: &Connection,
    rule: Option<&str>,
    entity_id: Option<&[u8; 16]>,
    limit: u32,
) -> Result<Vec<RuleEffect>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM rule_effects WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR entity_id = ?2) \
         ORDER BY rowid DESC LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![
        rule.map(str::trim),
        entity_id.map(|b| &b[..]),
        limit
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let entity: String = row.get("entity")?;
        let id: Vec<u8> = row.get("entity_id")?;
        out.push(RuleEffect {
            rule: row.get("rule")?,
            rule_version: row.get("rule_version")?,
            at: from_micros(row.get("at")?)?,
            entity: EntityKind::parse(&entity)
                .ok_or_else(|| Error::Storage("unknown entity in rule_effects".into()))?,
            entity_id: uuid::Uuid::from_slice(&id)
                .map_err(|_| Error::Storage("malformed id in rule_effects".into()))?
                .hyphenated()
                .to_string(),
            action: row.get("action")?,
            detail: row.get("detail")?,
        });
    }
    Ok(out)
}

// ----- teams ------------------------------------------------------------------

/// A stable id for a team in the change log (teams are keyed by name).
fn team_id(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (half, seed) in [
        (0usize, 0xcbf2_9ce4_8422_2325u64),
        (8, 0x8422_2325_cbf2_9ce4),
    ] {
        let mut h = seed;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out[half..half + 8].copy_from_slice(&h.to_be_bytes());
    }
    out
}

pub(crate) fn team(conn: &Connection, name: &str) -> Result<Option<Team>> {
    let members: Option<String> = conn
        .prepare_cached("SELECT members FROM teams WHERE name = ?")?
        .query_row([name.trim()], |r| r.get(0))
        .optional()?;
    members
        .map(|m| {
            Ok(Team {
                name: name.trim().to_string(),
                members: from_json::<Vec<TeamMember>>(&m, "teams.members")?,
            })
        })
        .transpose()
}

pub(crate) fn require_team(conn: &Connection, name: &str) -> Result<Team> {
    team(conn, name)?.ok_or(Error::NotFound { entity: "team" })
}

pub(crate) fn teams(conn: &Connection) -> Result<Vec<Team>> {
    let mut stmt = conn.prepare_cached("SELECT name, members FROM teams ORDER BY name")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(Team {
            name: row.get(0)?,
            members: from_json(&row.get::<_, String>(1)?, "teams.members")?,
        });
    }
    Ok(out)
}

pub(crate) fn put_team(
    conn: &Connection,
    ctx: &ChangeContext,
    team: &Team,
    now: DateTime<Utc>,
) -> Result<()> {
    let existed = self::team(conn, &team.name)?.is_some();
    conn.prepare_cached(
        "INSERT INTO teams (name, members, last_assigned, updated_at) VALUES (?1, ?2, NULL, ?3) \
         ON CONFLICT (name) DO UPDATE SET members = ?2, updated_at = ?3",
    )?
    .execute(params![team.name, json(&team.members)?, to_micros(now)])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Team,
        &team_id(&team.name),
        if existed {
            ChangeOp::Updated
        } else {
            ChangeOp::Created
        },
        if existed { &["members"] } else { &[] },
    )
}

pub(crate) fn delete_team(
    conn: &Connection,
    ctx: &ChangeContext,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM teams WHERE name = ?")?
        .execute([name])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Team,
        &team_id(name),
        ChangeOp::Deleted,
        &[],
    )
}

pub(crate) fn last_assigned(conn: &Connection, team: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT last_assigned FROM teams WHERE name = ?")?
        .query_row([team], |r| r.get(0))
        .optional()?
        .flatten())
}

pub(crate) fn set_last_assigned(conn: &Connection, team: &str, member: &str) -> Result<()> {
    conn.prepare_cached("UPDATE teams SET last_assigned = ? WHERE name = ?")?
        .execute(params![member, team])?;
    Ok(())
}
