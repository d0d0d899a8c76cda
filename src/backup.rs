//! Backups and restore of the database file: a consistent online copy (`VACUUM INTO`) written under a
//! temporary name, made private (0600), synced, integrity-checked and only then renamed into place; old
//! scheduled copies rotated after a good new one; and a restore that refuses while a server holds the
//! database, checks the file, and keeps the current database aside so it can be undone.
//! Depends on store and clock.

use crate::clock::Millis;
use crate::store::backup::{self as sql, Inspection};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The database or the copy is not usable.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// A server is running on the database.
    #[error("a textback server is running on {0}: stop it first (systemctl stop textback), then restore")]
    Running(String),
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// A finished backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What the check found.
    pub inspection: Inspection,
}

/// The file name of a backup made at `now`: sortable, so the oldest is first.
pub fn file_name(now: Millis) -> String {
    let t = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    format!("textback-{}.db", t.format("%Y%m%dT%H%M%S%.3fZ"))
}

fn sync_dir(dir: &Path) {
    // Makes the rename itself durable; a filesystem that cannot sync a folder still has the file.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Copies the database at `db` to `dest` (a file that must not exist yet, or a folder to put
/// `textback-<time>.db` in), while a server may be writing to it.
pub fn backup(db: &Path, dest: &Path, now: Millis) -> Result<Done, Error> {
    if !db.exists() {
        return Err(Error::Io(format!(
            "there is no database at {}",
            db.display()
        )));
    }
    let dest = if dest.is_dir() {
        dest.join(file_name(now))
    } else {
        dest.to_path_buf()
    };
    if dest.exists() {
        return Err(Error::Io(format!(
            "{} exists already; backups never overwrite a file",
            dest.display()
        )));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("create the folder", dir, &e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "textback.db".into());
    let partial = dir.join(format!(".{name}.partial"));
    let _ = std::fs::remove_file(&partial);
    // Private before it holds anything: the copy has every conversation and consent record.
    File::create(&partial).map_err(|e| io("create", &partial, &e))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("restrict", &partial, &e))?;
    let result = copy_and_check(db, &partial);
    let inspection = match result {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &dest).map_err(|e| io("rename the copy to", &dest, &e))?;
    sync_dir(dir);
    let bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    Ok(Done {
        path: dest,
        bytes,
        inspection,
    })
}

fn copy_and_check(db: &Path, partial: &Path) -> Result<Inspection, Error> {
    sql::vacuum_into(db, partial)?;
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("sync", partial, &e))?;
    let inspection = sql::inspect(partial)?;
    inspection.usable()?;
    Ok(inspection)
}

/// Removes the oldest `textback-*.db` backups in `dir` beyond the newest `keep`; returns what it removed.
pub fn rotate(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, Error> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io("read the folder", dir, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("textback-") && n.ends_with(".db"))
        })
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = found.into_iter().take(excess).collect();
    for p in &removed {
        std::fs::remove_file(p).map_err(|e| io("remove", p, &e))?;
    }
    Ok(removed)
}

/// The lock file a running server holds next to its database.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the database's lock for as long as the returned file is open: a server holds it while it runs,
/// `restore` takes it to be sure none does. `None` when another process holds it.
pub fn lock(db: &Path) -> Result<Option<File>, Error> {
    let path = lock_path(db);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder", dir, &e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("open", &path, &e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(Error::Io(format!("cannot lock {}: {e}", path.display()))),
    }
}

/// A finished restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// What the restored file held.
    pub inspection: Inspection,
    /// Where the database that was replaced now is (with its `-wal` and `-shm`), if there was one.
    pub aside: Option<PathBuf>,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Puts the backup `from` in place of the database at `db`, which no server may be running on. The current
/// database is kept aside as `<db>.before-restore-<time>`.
pub fn restore(db: &Path, from: &Path, now: Millis) -> Result<Restored, Error> {
    let Some(_lock) = lock(db)? else {
        return Err(Error::Running(db.display().to_string()));
    };
    if !from.is_file() {
        return Err(Error::Io(format!("there is no file at {}", from.display())));
    }
    let inspection = sql::inspect(from)?;
    inspection.usable()?;
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let incoming = dir.join(".textback-restore.partial");
    std::fs::copy(from, &incoming).map_err(|e| io("copy the backup to", &incoming, &e))?;
    std::fs::set_permissions(&incoming, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("restrict", &incoming, &e))?;
    File::open(&incoming)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("sync", &incoming, &e))?;
    let stamp = file_name(now)
        .trim_start_matches("textback-")
        .trim_end_matches(".db")
        .to_string();
    let aside = if db.exists() {
        let aside = with_suffix(db, &format!(".before-restore-{stamp}"));
        // The write-ahead log holds committed data too (after a crash): it goes aside with its database.
        for suffix in ["-wal", "-shm"] {
            let side = with_suffix(db, suffix);
            if side.exists() {
                std::fs::rename(&side, with_suffix(&aside, suffix))
                    .map_err(|e| io("move aside", &side, &e))?;
            }
        }
        std::fs::rename(db, &aside).map_err(|e| io("move aside", db, &e))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, db).map_err(|e| io("put the backup in place as", db, &e))?;
    sync_dir(dir);
    Ok(Restored { inspection, aside })
}

// ---------------------------------------------------------------------------------------------------------
// Scheduled backups

/// Where the last scheduled backup's outcome is kept (`meta`), for `status`, `doctor` and the next run.
pub const LAST_OK: &str = "backup.last_ok";
/// The last scheduled backup's failure, cleared by the next good one.
pub const LAST_ERROR: &str = "backup.last_error";

/// Queues the next scheduled backup when none is queued, and calls off queued runs the schedule no longer
/// has. The scheduler calls it every minute.
pub fn ensure(
    c: &crate::store::Conn<'_>,
    config: &crate::config::Config,
    now: Millis,
) -> crate::store::Result<()> {
    use crate::model::Job;
    use crate::store::jobs;
    let schedule = config
        .backup
        .as_ref()
        .and_then(|b| crate::cron::Cron::parse(&b.schedule).ok());
    let runs: Vec<crate::periodic::Queued> = jobs::pending_of_kind(c, "backup")?
        .iter()
        .filter_map(|job| match job.job {
            Job::Backup { at } => Some(crate::periodic::Queued {
                job_id: job.id,
                at,
                running: job.state == "running",
            }),
            _ => None,
        })
        .collect();
    let queue = |at| {
        jobs::enqueue(
            c,
            &jobs::NewJob {
                job: Job::Backup { at },
                dedupe_key: Some(&format!("backup:{at}")),
                contact_id: None,
                message_id: None,
                run_at: at,
                max_attempts: 1,
            },
            now,
        )
        .map(|_| ())
    };
    crate::periodic::keep_in_step(
        c,
        &runs,
        schedule.as_ref(),
        config.backup_tz(),
        "backup",
        now,
        queue,
    )
}

/// Runs one scheduled backup into `[backup] dir` and rotates old ones; returns what to record.
pub fn scheduled(
    config: &crate::config::BackupConfig,
    db: &Path,
    now: Millis,
) -> Result<(Done, Vec<PathBuf>), Error> {
    let dir = config.dir_for(db);
    std::fs::create_dir_all(&dir).map_err(|e| io("create the folder", &dir, &e))?;
    let done = backup(db, &dir, now)?;
    let removed = rotate(&dir, config.keep)?;
    Ok((done, removed))
}

/// Records how a scheduled backup went, and tells owners when it failed; queues the next run.
pub fn record(
    c: &crate::store::Conn<'_>,
    config: &crate::config::Config,
    job_id: i64,
    outcome: &Result<(Done, Vec<PathBuf>), String>,
    now: Millis,
) -> crate::store::Result<()> {
    use crate::store::{jobs, meta};
    match outcome {
        Ok((done, _)) => {
            let line = serde_json::json!({
                "at": now,
                "path": done.path.display().to_string(),
                "bytes": done.bytes,
            });
            meta::set(c, LAST_OK, &line.to_string())?;
            meta::delete(c, LAST_ERROR)?;
            jobs::finish(c, job_id, "done", None, now)?;
        }
        Err(why) => {
            let line = serde_json::json!({ "at": now, "error": why });
            meta::set(c, LAST_ERROR, &line.to_string())?;
            jobs::finish(c, job_id, "failed", Some(why), now)?;
            crate::events::notify_owners(
                c,
                &crate::push::Notification {
                    title: "Backup failed".into(),
                    body: why.chars().take(160).collect(),
                    url: "/setup".into(),
                    tag: "backup-failed".into(),
                    urgent: false,
                },
                now,
            )?;
        }
    }
    ensure(c, config, now)
}

/// The last good scheduled backup (when, its file) and the failure since (when, why), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Last {
    /// When the last good one was written, and where.
    pub ok: Option<(Millis, String)>,
    /// When a later one failed, and why.
    pub failed: Option<(Millis, String)>,
}

/// The last scheduled backup's outcome, as `status` and `doctor` say it.
pub fn last(c: &crate::store::Conn<'_>) -> crate::store::Result<Last> {
    let read = |key: &str| -> crate::store::Result<Option<serde_json::Value>> {
        Ok(crate::store::meta::get(c, key)?.and_then(|v| serde_json::from_str(&v).ok()))
    };
    let ok = read(LAST_OK)?.map(|v| {
        (
            v["at"].as_i64().unwrap_or(0),
            v["path"].as_str().unwrap_or("").to_string(),
        )
    });
    let failed = read(LAST_ERROR)?.map(|v| {
        (
            v["at"].as_i64().unwrap_or(0),
            v["error"].as_str().unwrap_or("").to_string(),
        )
    });
    Ok(Last { ok, failed })
}

#[cfg(test)]
mod tests {
    #[test]
    fn backup_names_sort_by_time() {
        let a = super::file_name(1_800_000_000_000);
        let b = super::file_name(1_800_000_000_001);
        assert_eq!(a, "textback-20270115T080000.000Z.db");
        assert!(a < b);
    }
}
