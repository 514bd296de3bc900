//! Tables derived from the stored rows, kept up to date in the transaction of
//! every write: they answer filter expressions without scanning JSON or the
//! whole interaction table. See migration 0003.

use rusqlite::{Connection, params};

use crate::error::Result;

/// Replaces the tag rows of a customer.
pub(crate) fn set_tags(
    conn: &Connection,
    customer_rowid: i64,
    tags: &[String],
    fresh: bool,
) -> Result<()> {
    if !fresh {
        conn.prepare_cached("DELETE FROM customer_tags WHERE customer_rowid = ?")?
            .execute([customer_rowid])?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO customer_tags (tag, customer_rowid) VALUES (?, ?)",
    )?;
    for tag in tags {
        insert.execute(params![tag, customer_rowid])?;
    }
    Ok(())
}

const STATS_UPSERT: &str = "ON CONFLICT (kind, customer_rowid, currency) DO UPDATE SET \
    n = n + excluded.n, amount_minor = amount_minor + excluded.amount_minor, \
    amount_n = amount_n + excluded.amount_n, quantity = quantity + excluded.quantity, \
    quantity_n = quantity_n + excluded.quantity_n, score = score + excluded.score, \
    score_n = score_n + excluded.score_n, first_at = min(first_at, excluded.first_at), \
    last_at = max(last_at, excluded.last_at)";

/// Adds one interaction to its customer's totals.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_interaction(
    conn: &Connection,
    customer_rowid: i64,
    kind: &str,
    currency: Option<&str>,
    amount_minor: Option<i64>,
    quantity: Option<i64>,
    score: Option<i64>,
    occurred_at: i64,
) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO interaction_stats VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) {STATS_UPSERT}"
    ))?
    .execute(params![
        kind,
        customer_rowid,
        currency.unwrap_or(""),
        amount_minor.unwrap_or(0),
        i64::from(amount_minor.is_some()),
        quantity.unwrap_or(0),
        i64::from(quantity.is_some()),
        score.unwrap_or(0),
        i64::from(score.is_some()),
        occurred_at,
    ])?;
    if let Some(code) = currency {
        conn.prepare_cached("INSERT OR IGNORE INTO currencies_used (code) VALUES (?)")?
            .execute([code])?;
    }
    Ok(())
}

/// Adds every interaction from `first_rowid` on to the totals, in one pass.
pub(crate) fn add_interactions_from(conn: &Connection, first_rowid: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO interaction_stats \
         SELECT kind, customer_rowid, coalesce(currency, ''), count(*), \
                coalesce(sum(amount_minor), 0), count(amount_minor), \
                coalesce(sum(quantity), 0), count(quantity), \
                coalesce(sum(score), 0), count(score), min(occurred_at), max(occurred_at) \
         FROM interactions WHERE rowid >= ? \
         GROUP BY kind, customer_rowid, coalesce(currency, '') {STATS_UPSERT}"
    ))?
    .execute([first_rowid])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO currencies_used (code) \
         SELECT DISTINCT currency FROM interactions WHERE rowid >= ? AND currency IS NOT NULL",
    )?
    .execute([first_rowid])?;
    Ok(())
}

/// Makes a newly recorded consent answer the current one for its purpose and
/// channel, unless a later-dated answer is already there.
pub(crate) fn record_consent(
    conn: &Connection,
    customer_rowid: i64,
    purpose: &str,
    channel: Option<&str>,
    status: &str,
    recorded_at: i64,
    consent_rowid: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO consent_current (purpose, channel, customer_rowid, status, recorded_at, consent_rowid) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (purpose, channel, customer_rowid) DO UPDATE SET \
         status = excluded.status, recorded_at = excluded.recorded_at, consent_rowid = excluded.consent_rowid \
         WHERE excluded.recorded_at > recorded_at \
            OR (excluded.recorded_at = recorded_at AND excluded.consent_rowid > consent_rowid)",
    )?
    .execute(params![
        purpose,
        channel.unwrap_or(""),
        customer_rowid,
        status,
        recorded_at,
        consent_rowid
    ])?;
    Ok(())
}
