//! The SQLite store: the only place with SQL. One writer thread owns the only write connection and commits
//! queued writes together (group commit), so `synchronous=FULL` still takes thousands of webhooks a second;
//! reads use a small r2d2 pool of read-only connections.
//!
//! A write is a closure over [`Conn`] that runs inside the batch's transaction, in its own savepoint: if it
//! fails, only its own changes are rolled back. Its caller hears back only after the batch has committed.
//! Depends on model.

pub mod calls;
pub mod contacts;
pub mod jobs;
pub mod messages;
mod migrations;
pub mod reports;
pub mod users;

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// Store errors the callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The request is refused by a rule checked inside the transaction.
    #[error("{0}")]
    Refused(String),
    /// The database file is from a newer textback.
    #[error("the database {path} has schema version {found}, but this textback knows only up to {known}; run the newer textback or restore a backup")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this binary knows.
        known: i64,
    },
    /// The writer thread has stopped (shutdown, or a fatal database error).
    #[error("the database writer has stopped")]
    WriterGone,
    /// The batch this write belonged to could not be committed.
    #[error("commit failed: {0}")]
    Commit(String),
    /// SQLite said no.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// No read connection could be had.
    #[error(transparent)]
    Pool(#[from] r2d2::Error),
    /// A stored JSON payload did not parse.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Shorthand for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection inside a write transaction or a read; the store modules' functions take it.
pub struct Conn<'a>(&'a rusqlite::Connection);

type Finish = Box<dyn FnOnce(Option<Error>) + Send>;
type WriteJob = Box<dyn FnOnce(&Conn<'_>) -> (bool, Finish) + Send>;

/// At most this many writes share one transaction; bounds the latency one batch adds.
const MAX_BATCH: usize = 512;

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<SqliteConnectionManager>,
    writer: mpsc::Sender<WriteJob>,
    writer_alive: Arc<AtomicBool>,
    path: PathBuf,
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // FULL: a webhook we acknowledged survives a power cut. The busy timeout covers the CLI reading
    // while the server writes.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;",
    )
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Refused(format!("cannot create the folder {}: {e}", dir.display()))
                })?;
            }
        }
        let mut conn = rusqlite::Connection::open(path)?;
        configure(&conn)?;
        migrations::apply(&mut conn, path)?;

        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        let pool = Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            .build(manager)?;

        let (tx, rx) = mpsc::channel::<WriteJob>();
        let alive = Arc::new(AtomicBool::new(true));
        let alive_writer = Arc::clone(&alive);
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                run_writer(&conn, &rx);
                alive_writer.store(false, Ordering::SeqCst);
            })
            .map_err(|e| Error::Refused(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writer: tx,
                writer_alive: alive,
                path: path.to_path_buf(),
            }),
        })
    }

    /// Opens an existing database for reading only (the CLI's `status`), without migrating or writing.
    pub fn open_read_only(path: &Path) -> Result<ReadOnly> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
        migrations::check_version(&conn, path)?;
        Ok(ReadOnly(conn))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` inside the next write transaction and returns its result once that transaction has
    /// committed. Blocks; call it from threads, not from async code (see [`Store::write_async`]).
    pub fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<R> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.blocking_recv().map_err(|_| Error::WriterGone)?
    }

    /// [`Store::write`] for async callers: waits without holding a thread.
    pub async fn write_async<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<R> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.await.map_err(|_| Error::WriterGone)?
    }

    fn submit<R, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<Result<R>>>
    where
        R: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    None => result,
                    Some(e) => Err(e),
                });
            });
            (ok, finish)
        });
        self.inner.writer.send(job).map_err(|_| Error::WriterGone)?;
        Ok(rx)
    }

    /// Runs `f` on a pooled read-only connection.
    pub fn read<R>(&self, f: impl FnOnce(&Conn<'_>) -> Result<R>) -> Result<R> {
        let conn = self.inner.pool.get()?;
        f(&Conn(&conn))
    }

    /// Whether the database answers and the writer thread runs; for `/healthz`.
    pub fn healthy(&self) -> bool {
        self.inner.writer_alive.load(Ordering::SeqCst)
            && self
                .read(|c| Ok(c.0.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
                .is_ok()
    }
}

/// A read-only connection for the CLI.
pub struct ReadOnly(rusqlite::Connection);

impl ReadOnly {
    /// Runs `f` on the connection.
    pub fn read<R>(&self, f: impl FnOnce(&Conn<'_>) -> Result<R>) -> Result<R> {
        f(&Conn(&self.0))
    }
}

fn run_writer(conn: &rusqlite::Connection, rx: &mpsc::Receiver<WriteJob>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(conn, batch);
    }
}

fn run_batch(conn: &rusqlite::Connection, batch: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin a write transaction");
        for job in batch {
            let (_, finish) = job(&Conn(conn));
            finish(Some(Error::Commit(e.to_string())));
        }
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = conn.execute_batch("SAVEPOINT w");
        let (ok, finish) = job(&Conn(conn));
        if savepoint.is_ok() {
            let end = if ok {
                "RELEASE w"
            } else {
                "ROLLBACK TO w; RELEASE w"
            };
            if let Err(e) = conn.execute_batch(end) {
                tracing::error!(error = %e, "savepoint failed");
            }
        }
        finishes.push(finish);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => finishes.into_iter().for_each(|f| f(None)),
        Err(e) => {
            tracing::error!(error = %e, "commit failed; the batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            for f in finishes {
                f(Some(Error::Commit(e.to_string())));
            }
        }
    }
}

/// Reads an optional single row.
fn optional<T>(r: rusqlite::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_rolls_back_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let s1 = store.clone();
        let bad = std::thread::spawn(move || {
            s1.write(|c| {
                c.0.execute("INSERT INTO meta (key, value) VALUES ('bad', 'x')", [])?;
                Err::<(), _>(Error::Refused("no".into()))
            })
        });
        store
            .write(|c| {
                c.0.execute("INSERT INTO meta (key, value) VALUES ('good', 'y')", [])?;
                Ok(())
            })
            .unwrap();
        assert!(bad.join().unwrap().is_err());
        let keys: Vec<String> = store
            .read(|c| {
                let mut st = c.0.prepare("SELECT key FROM meta ORDER BY key")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(keys, vec!["good".to_string()]);
    }

    #[test]
    fn many_concurrent_writes_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let s = store.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        s.write(move |c| {
                            c.0.execute(
                                "INSERT INTO meta (key, value) VALUES (?1, 'v')",
                                [format!("{t}-{i}")],
                            )?;
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let n: i64 = store
            .read(|c| {
                Ok(c.0.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 400);
        assert!(store.healthy());
    }
}
