//! Lifecycle storage: the configuration (settings key `lifecycle`), stage
//! checks on customer writes, and the `stage_transitions` table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rusqlite::{Connection, OptionalExtension, params};

use super::{from_micros, to_micros};
use crate::error::{Error, Result};
use crate::lifecycle::{LifecycleConfig, StageTransition, TransitionCause};
use crate::model::change::ChangeContext;

const SETTINGS_KEY: &str = "lifecycle";

thread_local! {
    /// The last configuration parsed on this thread with its stored text:
    /// customer writes check every row against the configuration, and
    /// re-parsing its JSON each time would slow imports. The stored text is
    /// read every time (one indexed lookup), so a change made by another
    /// connection or process is seen at once.
    static PARSED: RefCell<Option<(Option<String>, Rc<LifecycleConfig>)>> =
        const { RefCell::new(None) };
}

/// The configuration in force, as stored (the default when none is).
pub(crate) fn config(conn: &Connection) -> Result<Rc<LifecycleConfig>> {
    let mut stmt = conn.prepare_cached("SELECT value FROM settings WHERE key = ?")?;
    // Compare the stored text with the cached one without copying it.
    let cached = stmt
        .query_row([SETTINGS_KEY], |r| {
            let raw = r.get_ref(0)?.as_str()?;
            Ok(PARSED.with(|p| match &*p.borrow() {
                Some((Some(text), config)) if text == raw => Ok(config.clone()),
                _ => Err(raw.to_string()),
            }))
        })
        .optional()?;
    let raw = match cached {
        Some(Ok(config)) => return Ok(config),
        Some(Err(raw)) => Some(raw),
        None => {
            if let Some(config) = PARSED.with(|p| match &*p.borrow() {
                Some((None, config)) => Some(config.clone()),
                _ => None,
            }) {
                return Ok(config);
            }
            None
        }
    };
    let config = Rc::new(match &raw {
        Some(text) => super::from_json::<LifecycleConfig>(text, "settings.lifecycle")?,
        None => LifecycleConfig::default(),
    });
    PARSED.with(|p| *p.borrow_mut() = Some((raw, config.clone())));
    Ok(config)
}

pub(crate) fn save_config(conn: &Connection, config: &LifecycleConfig) -> Result<()> {
    let text = serde_json::to_string(config).map_err(|e| Error::Storage(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![SETTINGS_KEY, text])?;
    Ok(())
}

/// For each of `stages` that customers are in, the stage and how many, most
/// first.
pub(crate) fn customers_in(conn: &Connection, stages: &[&str]) -> Result<Vec<(String, u64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT count(*) FROM customers WHERE lifecycle_stage = ?")?;
    let mut out = Vec::new();
    for stage in stages {
        let n: i64 = stmt.query_row([stage], |r| r.get(0))?;
        if n > 0 {
            out.push((stage.to_string(), n as u64));
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// The stage a customer write stores: `stage` checked against the
/// configuration for a move from `from` (`None`: a new customer). An empty
/// `stage` (none given) is the configured default.
pub(crate) fn checked_stage(
    conn: &Connection,
    from: Option<&str>,
    stage: &mut String,
) -> Result<()> {
    let config = config(conn)?;
    if stage.is_empty() {
        stage.clone_from(&config.default_stage);
    }
    config.check_move(from, stage)
}

/// The stored stage of a customer.
pub(crate) fn current_stage(conn: &Connection, customer_rowid: i64) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT lifecycle_stage FROM customers WHERE rowid = ?")?
        .query_row([customer_rowid], |r| r.get(0))?)
}

/// Records one transition; the cause follows from `ctx`.
pub(crate) fn record(
    conn: &Connection,
    ctx: &ChangeContext,
    customer_rowid: i64,
    from: Option<&str>,
    to: &str,
    at: chrono::DateTime<chrono::Utc>,
    note: Option<&str>,
) -> Result<()> {
    let cause = TransitionCause::of(ctx);
    conn.prepare_cached(
        "INSERT INTO stage_transitions (customer_rowid, from_stage, to_stage, at, cause, rule, note) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        customer_rowid,
        from,
        to,
        to_micros(at),
        cause.as_str(),
        ctx.rule.as_deref().filter(|_| cause == TransitionCause::Rule),
        note
    ])?;
    Ok(())
}

/// Records the initial stage of every customer from `first_rowid` on: the
/// end of a bulk insert.
pub(crate) fn record_created_from(
    conn: &Connection,
    ctx: &ChangeContext,
    first_rowid: i64,
) -> Result<()> {
    let cause = TransitionCause::of(ctx);
    conn.prepare_cached(
        "INSERT INTO stage_transitions (customer_rowid, from_stage, to_stage, at, cause, rule) \
         SELECT rowid, NULL, lifecycle_stage, created_at, ?, ? FROM customers WHERE rowid >= ? ORDER BY rowid",
    )?
    .execute(params![
        cause.as_str(),
        ctx.rule.as_deref().filter(|_| cause == TransitionCause::Rule),
        first_rowid
    ])?;
    Ok(())
}

pub(crate) fn history(conn: &Connection, customer_rowid: i64) -> Result<Vec<StageTransition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT from_stage, to_stage, at, cause, rule, note FROM stage_transitions \
         WHERE customer_rowid = ? ORDER BY at, rowid",
    )?;
    let mut rows = stmt.query([customer_rowid])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let cause: String = r.get(3)?;
        out.push(StageTransition {
            from: r.get(0)?,
            to: r.get(1)?,
            at: from_micros(r.get(2)?)?,
            cause: TransitionCause::parse(&cause)
                .ok_or_else(|| Error::Storage("unknown transition cause".into()))?,
            rule: r.get(4)?,
            note: r.get(5)?,
        });
    }
    Ok(out)
}

/// Customers per stage at the instant `at` (micros): today's counts with
/// every transition made after `at` undone. Each customer's stage is the
/// destination of their latest transition, so undoing one moves a customer
/// from its `to` back to its `from` (out of the count for a creation). The
/// work is proportional to the transitions after `at`, read through the
/// `stage_transitions_at` index, plus one pass over the stage index.
pub(crate) fn counts_at(conn: &Connection, at: i64) -> Result<HashMap<String, u64>> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT lifecycle_stage, count(*) FROM customers GROUP BY lifecycle_stage",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        counts.insert(r.get(0)?, r.get(1)?);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT from_stage, to_stage, count(*) FROM stage_transitions WHERE at > ? \
         GROUP BY from_stage, to_stage",
    )?;
    let mut rows = stmt.query([at])?;
    while let Some(r) = rows.next()? {
        let (from, to, n): (Option<String>, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        *counts.entry(to).or_default() -= n;
        if let Some(from) = from {
            *counts.entry(from).or_default() += n;
        }
    }
    Ok(counts
        .into_iter()
        .map(|(stage, n)| (stage, n.max(0) as u64))
        .collect())
}

/// For each position `i` of `stages` (the ordered stages) that someone
/// entered in `[since, until)`: how many customers entered it, and how many
/// of them later (still before `until`) entered a stage after it.
///
/// One pass over the period's transitions (found through the
/// `stage_transitions_at` index), sorted by customer; memory holds one
/// customer's moves at a time.
pub(crate) fn funnel(
    conn: &Connection,
    stages: &[&str],
    since: i64,
    until: i64,
) -> Result<HashMap<usize, (u64, u64)>> {
    let pos: HashMap<&str, usize> = stages.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut out: HashMap<usize, (u64, u64)> = HashMap::new();
    // The ordered stages one customer entered in the period, in order.
    let mut moves: Vec<usize> = Vec::new();
    let mut tally = |moves: &mut Vec<usize>| {
        // Walking back, `later` is the furthest stage entered after a move.
        let mut later: Option<usize> = None;
        let mut advanced = vec![None::<bool>; stages.len()];
        for &p in moves.iter().rev() {
            // Overwritten until the first entry into `p` is reached.
            advanced[p] = Some(later.is_some_and(|l| l > p));
            later = later.max(Some(p));
        }
        for (p, a) in advanced.into_iter().enumerate() {
            if let Some(a) = a {
                let e = out.entry(p).or_default();
                e.0 += 1;
                e.1 += u64::from(a);
            }
        }
        moves.clear();
    };
    let mut stmt = conn.prepare_cached(
        "SELECT customer_rowid, to_stage FROM stage_transitions \
         WHERE at >= ? AND at < ? ORDER BY customer_rowid, at, rowid",
    )?;
    let mut rows = stmt.query(params![since, until])?;
    let mut current: Option<i64> = None;
    while let Some(r) = rows.next()? {
        let customer: i64 = r.get(0)?;
        if current != Some(customer) {
            tally(&mut moves);
            current = Some(customer);
        }
        let stage: String = r.get(1)?;
        if let Some(p) = pos.get(stage.as_str()) {
            moves.push(*p);
        }
    }
    tally(&mut moves);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_stored_before_transitions_were_recorded_get_an_upgrade_transition() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", 0x4352_4d31)
            .unwrap();
        // A stage of the days when any name went: not configured now.
        conn.execute_batch(
            "INSERT INTO customers (id, kind, name, lifecycle_stage, created_at, updated_at)
             VALUES (x'0190b8b1c2d37e4f8a9b0c1d2e3f4051', 'person', 'Ana Novak', 'prospect', 7, 7);",
        )
        .unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let history = history(&conn, 1).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].from, None);
        assert_eq!(history[0].to, "prospect");
        assert_eq!(history[0].cause, TransitionCause::Upgrade);
        assert_eq!(to_micros(history[0].at), 7);
        // Leaving a stage no longer configured is allowed; entering one is not.
        let config = config(&conn).unwrap();
        assert!(config.check_move(Some("prospect"), "customer").is_ok());
        assert!(config.check_move(Some("customer"), "prospect").is_err());
        assert_eq!(counts_at(&conn, 7).unwrap().get("prospect"), Some(&1));
        assert_eq!(counts_at(&conn, 6).unwrap().get("prospect"), Some(&0));
    }
}
