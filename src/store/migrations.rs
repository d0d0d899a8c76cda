//! Numbered, append-only schema migrations, applied in order at start-up and recorded in
//! `PRAGMA user_version`. A database newer than this binary is refused.

use super::{Error, Result};
use std::path::Path;

/// Every migration, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_conversations.sql"),
    include_str!("migrations/0003_admin.sql"),
    include_str!("migrations/0004_hardening.sql"),
    include_str!("migrations/0005_first_run.sql"),
    include_str!("migrations/0006_push.sql"),
    include_str!("migrations/0007_integrations.sql"),
];

fn version(conn: &rusqlite::Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// The newest schema version this binary knows.
pub fn known() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Refuses a database whose schema is newer than this binary knows.
pub fn check_version(conn: &rusqlite::Connection, path: &Path) -> Result<i64> {
    let found = version(conn)?;
    if found > known() {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            known: known(),
        });
    }
    Ok(found)
}

/// Applies the migrations the database lacks, each in its own transaction.
pub fn apply(conn: &mut rusqlite::Connection, path: &Path) -> Result<()> {
    let mut current = check_version(conn, path)?;
    // For the upgrade test only: holds each migration's transaction open this long, so the test can kill
    // the process in the middle of one and check that the database kept its old version.
    let pause = std::env::var("TEXTBACK_TEST_MIGRATION_PAUSE_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok());
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let number = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if number <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", number)?;
        if let Some(ms) = pause {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        tx.commit()?;
        current = number;
        tracing::debug!(version = number, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_an_empty_database_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        apply(&mut conn, &path).unwrap();
        assert_eq!(version(&conn).unwrap(), known());
        apply(&mut conn, &path).unwrap();
        assert_eq!(version(&conn).unwrap(), known());
    }

    #[test]
    fn refuses_a_newer_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = apply(&mut conn, &path).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
