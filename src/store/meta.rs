//! SQL for the `meta` table: small named values the installation keeps (the simulator's signing key).

use super::{optional, Conn, Result};
use rusqlite::params;

/// The value stored under `key`, if any.
pub fn get(c: &Conn<'_>, key: &str) -> Result<Option<String>> {
    optional(
        c.0.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0)),
    )
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(c: &Conn<'_>, key: &str, value: &str) -> Result<()> {
    c.0.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// The value under `key`, storing `value` first when there is none; returns what is stored.
pub fn get_or_insert(c: &Conn<'_>, key: &str, value: &str) -> Result<String> {
    c.0.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![key, value])?;
    Ok(c.0
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))?)
}

/// Removes `key`.
pub fn delete(c: &Conn<'_>, key: &str) -> Result<()> {
    c.0.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}
