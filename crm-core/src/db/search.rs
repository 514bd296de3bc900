//! Full-text search (FTS5) over customers and interaction subjects.

use rusqlite::{Connection, params};

use super::customers;
use crate::error::{Error, Result};
use crate::model::customer::Customer;
use crate::model::ids::InteractionId;

/// Turns what a user typed into a safe FTS5 query: every word is quoted (so
/// FTS syntax in the input is just text), all words must match, and the last
/// one matches as a prefix (search as you type).
pub(crate) fn fts_query(input: &str) -> Result<String> {
    let words: Vec<&str> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(32)
        .collect();
    if words.is_empty() {
        return Err(Error::validation("query", "has no words to search for"));
    }
    let last = words.len() - 1;
    Ok(words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                format!("\"{w}\"*")
            } else {
                format!("\"{w}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(" "))
}

/// Customers matching on their own fields, best first (BM25, the name
/// weighing most).
pub(crate) fn customers(
    conn: &Connection,
    query: &str,
    limit: u32,
) -> Result<Vec<(f64, Customer)>> {
    let sql = format!(
        "SELECT {cols}, customer_search.rank AS rank \
         FROM customer_search JOIN customers c ON c.rowid = customer_search.rowid \
         WHERE customer_search MATCH ?1 ORDER BY customer_search.rank LIMIT ?2",
        cols = customers::COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![query, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rank: f64 = row.get("rank")?;
        out.push((-rank, customers::from_row(row)?));
    }
    Ok(out)
}

/// Interactions whose subject matches, most recently logged first:
/// `(score, customer rowid, interaction id, subject)`.
///
/// Not ranked by relevance: subjects repeat (templates, replies), so a
/// common word matches a large share of millions of interactions, and ranking
/// them all would cost hundreds of milliseconds; FTS5 walks its index in
/// rowid order and stops at the limit.
pub(crate) fn interactions(
    conn: &Connection,
    query: &str,
    limit: u32,
) -> Result<Vec<(f64, i64, InteractionId, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT interaction_search.rank, i.customer_rowid, i.id, i.subject \
         FROM interaction_search JOIN interactions i ON i.rowid = interaction_search.rowid \
         WHERE interaction_search MATCH ?1 ORDER BY interaction_search.rowid DESC LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![query, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rank: f64 = row.get(0)?;
        let id: Vec<u8> = row.get(2)?;
        out.push((
            -rank,
            row.get(1)?,
            InteractionId::from_slice(&id)?,
            row.get(3)?,
        ));
    }
    Ok(out)
}

const CUSTOMER_DOCUMENT: &str = "SELECT c.rowid, c.name, c.emails, c.phones, \
    (SELECT o.name FROM customers o WHERE o.rowid = c.organization_rowid) FROM customers c";

/// (Re)indexes one customer.
pub(crate) fn index_customer(conn: &Connection, rowid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM customer_search WHERE rowid = ?")?
        .execute([rowid])?;
    conn.prepare_cached(&format!(
        "INSERT INTO customer_search (rowid, name, emails, phones, organization) {CUSTOMER_DOCUMENT} WHERE c.rowid = ?"
    ))?
    .execute([rowid])?;
    Ok(())
}

/// Gives the people of organization `org_rowid` its current name in the
/// index (after the organization was renamed).
pub(crate) fn reindex_members(conn: &Connection, org_rowid: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE customer_search SET organization = (SELECT name FROM customers WHERE rowid = ?1) \
         WHERE rowid IN (SELECT rowid FROM customers WHERE organization_rowid = ?1)",
    )?
    .execute([org_rowid])?;
    Ok(())
}

/// Indexes every customer with a rowid of at least `first_rowid` (the rows a
/// bulk import added), in one statement.
pub(crate) fn index_customers_from(conn: &Connection, first_rowid: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO customer_search (rowid, name, emails, phones, organization) {CUSTOMER_DOCUMENT} WHERE c.rowid >= ?"
    ))?
    .execute([first_rowid])?;
    Ok(())
}

/// Removes a customer and their interactions from the index (before the
/// customer is deleted); their people no longer show the organization.
pub(crate) fn unindex_customer(conn: &Connection, rowid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM customer_search WHERE rowid = ?")?
        .execute([rowid])?;
    conn.prepare_cached(
        "DELETE FROM interaction_search WHERE rowid IN \
         (SELECT rowid FROM interactions WHERE customer_rowid = ? AND subject IS NOT NULL)",
    )?
    .execute([rowid])?;
    conn.prepare_cached(
        "UPDATE customer_search SET organization = NULL \
         WHERE rowid IN (SELECT rowid FROM customers WHERE organization_rowid = ?)",
    )?
    .execute([rowid])?;
    Ok(())
}

/// Indexes one interaction's subject.
pub(crate) fn index_interaction(conn: &Connection, rowid: i64, subject: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO interaction_search (rowid, subject) VALUES (?, ?)")?
        .execute(params![rowid, subject])?;
    Ok(())
}

/// Indexes the subjects of every interaction with a rowid of at least
/// `first_rowid`, in one statement.
pub(crate) fn index_interactions_from(conn: &Connection, first_rowid: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO interaction_search (rowid, subject) \
         SELECT rowid, subject FROM interactions WHERE rowid >= ? AND subject IS NOT NULL",
    )?
    .execute([first_rowid])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fts_syntax_in_input_is_plain_text() {
        assert_eq!(
            fts_query("ana NOT novak").unwrap(),
            "\"ana\" \"NOT\" \"novak\"*"
        );
        assert_eq!(fts_query("\"ana*").unwrap(), "\"ana\"*");
        assert!(fts_query("  ** ").is_err());
    }

    proptest! {
        #[test]
        fn any_input_gives_a_query_fts5_accepts(input in "\\PC{0,60}") {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE VIRTUAL TABLE t USING fts5(x)").unwrap();
            if let Ok(q) = fts_query(&input) {
                let r: rusqlite::Result<i64> = conn.query_row("SELECT count(*) FROM t WHERE t MATCH ?", [q], |r| r.get(0));
                prop_assert!(r.is_ok());
            }
        }
    }
}
