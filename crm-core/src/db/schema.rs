//! Opening a database: per-connection pragmas, then create-or-upgrade.
//!
//! Migrations are numbered SQL files; migration `n` takes the schema from
//! version `n - 1` to `n`. All pending ones run in a single `IMMEDIATE`
//! transaction, so a failed upgrade leaves the file as it was. A file whose
//! version is newer than [`SCHEMA_VERSION`] is refused before anything is
//! written.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// The migrations, in order; index `i` holds migration `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_search.sql"),
    include_str!("migrations/0003_segments.sql"),
    include_str!("migrations/0004_analytics.sql"),
    include_str!("migrations/0005_workflow.sql"),
];

/// The schema version this library writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Marks a file as a CRM database (`PRAGMA application_id`), so that an
/// unrelated SQLite file is refused rather than written into.
const APPLICATION_ID: i32 = 0x4352_4d31; // "CRM1"

/// Pragmas for every connection; they are per connection, never part of a
/// migration.
pub(crate) fn configure(conn: &Connection, busy_timeout_ms: u32, writer: bool) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(busy_timeout_ms)))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache for the writer (bulk imports), 16 MiB for readers.
    conn.pragma_update(None, "cache_size", if writer { -65_536 } else { -16_384 })?;
    conn.set_prepared_statement_cache_capacity(128);
    crate::filter::compile::register_functions(conn)?;
    Ok(())
}

/// Switches a file database to WAL, so readers never block the writer.
pub(crate) fn enable_wal(conn: &Connection) -> Result<()> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(Error::Storage(format!(
            "could not enable WAL (journal mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).map_err(|_| Error::Corrupt)
}

/// Brings the schema to [`SCHEMA_VERSION`], or refuses a newer or foreign file.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    // Reading the header first turns "not a database" into Error::Corrupt
    // before any write is attempted.
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(Error::IncompatibleDatabase {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return check_application_id(conn);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between the read above and the lock.
    let found = user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(Error::IncompatibleDatabase {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 {
            // Some other application's database: never write into it.
            return Err(Error::Corrupt);
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    } else {
        check_application_id(&tx)?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn check_application_id(conn: &Connection) -> Result<()> {
    let id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if id == APPLICATION_ID {
        Ok(())
    } else {
        Err(Error::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn upgrading_a_frozen_v1_database_equals_a_fresh_one() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        old.execute_batch(
            "INSERT INTO customers (id, kind, name, lifecycle_stage, created_at, updated_at)
             VALUES (x'0190b8b1c2d37e4f8a9b0c1d2e3f4051', 'person', 'Ana Novak', 'lead', 0, 0);
             INSERT INTO interactions (id, customer_rowid, kind, occurred_at, subject, created_at)
             VALUES (x'0190b8b1c2d37e4f8a9b0c1d2e3f4052', 1, 'email', 0, 'Welcome aboard', 0);",
        )
        .unwrap();
        migrate(&mut old).unwrap();

        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();

        assert_eq!(schema_of(&old), schema_of(&fresh));
        assert_eq!(user_version(&old).unwrap(), SCHEMA_VERSION);
        // Rows from v1 are searchable after the upgrade.
        let hits: i64 = old
            .query_row(
                "SELECT count(*) FROM customer_search WHERE customer_search MATCH 'novak'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hits, 1);
        let hits: i64 = old
            .query_row(
                "SELECT count(*) FROM interaction_search WHERE interaction_search MATCH 'welcome'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hits, 1);
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, Error::IncompatibleDatabase { found, .. } if found == SCHEMA_VERSION + 1)
        );
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_foreign_database_is_refused_and_left_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(Error::Corrupt)));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let before = schema_of(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(before, schema_of(&conn));
    }
}
