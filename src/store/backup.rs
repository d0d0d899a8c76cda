//! SQL for backups: a consistent copy of a live database (`VACUUM INTO`, one read transaction, so the
//! writer keeps committing meanwhile and the copy never restarts), and the checks a copy must pass before
//! it is trusted (schema version, `PRAGMA integrity_check`).

use super::{migrations, Error, Result};
use std::path::Path;

/// Writes a compacted, consistent copy of the database at `db` to `dest`, which must not exist.
pub fn vacuum_into(db: &Path, dest: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let dest = dest
        .to_str()
        .ok_or_else(|| Error::Io(format!("{} is not a UTF-8 path", dest.display())))?;
    conn.execute("VACUUM INTO ?1", [dest])?;
    Ok(())
}

/// What a database file holds, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The newest schema version this binary knows.
    pub known_version: i64,
    /// `PRAGMA integrity_check`'s first answer: "ok" for a sound file.
    pub integrity: String,
    /// Contacts in it, for the operator's reassurance.
    pub contacts: i64,
}

impl Inspection {
    /// Whether it can be used by this binary.
    pub fn usable(&self) -> Result<()> {
        if self.integrity != "ok" {
            return Err(Error::Io(format!(
                "the file fails SQLite's integrity check: {}",
                self.integrity
            )));
        }
        if self.schema_version == 0 {
            return Err(Error::Io("the file is not a textback database".into()));
        }
        if self.schema_version > self.known_version {
            return Err(Error::Io(format!(
                "the file has schema version {}, newer than this textback knows ({}): run the newer textback",
                self.schema_version, self.known_version
            )));
        }
        Ok(())
    }
}

/// Opens a database file read-only and checks it.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| Error::Io(format!("the file is not a readable SQLite database: {e}")))?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let contacts = if schema_version > 0 {
        conn.query_row("SELECT COUNT(*) FROM contacts", [], |r| r.get(0))
            .unwrap_or(0)
    } else {
        0
    };
    Ok(Inspection {
        schema_version,
        known_version: migrations::known(),
        integrity,
        contacts,
    })
}
