//! The SQLite store: the only place with SQL. One writer thread owns the only write connection and commits
//! queued writes together (group commit), so `synchronous=FULL` still takes thousands of webhooks a second;
//! reads use a small r2d2 pool of read-only connections.
//!
//! A write is a closure over [`Conn`] that runs inside the batch's transaction, in its own savepoint: if it
//! fails, only its own changes are rolled back. Its caller hears back only after the batch has committed.
//! Depends on model.

pub mod backup;
pub mod bookings;
pub mod calls;
pub mod contacts;
pub mod jobs;
pub mod messages;
pub mod meta;
pub mod migrations;
pub mod outbound;
pub mod push;
pub mod reports;
pub mod retention;
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
    /// A row with the same unique key exists (a user name taken).
    #[error("{0}")]
    Conflict(String),
    /// The database file or its folder cannot be used.
    #[error("{0}")]
    Io(String),
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

/// A queued write: run inside the batch's transaction, or refused unrun when the batch cannot begin.
trait WriteJob: Send {
    /// Runs the write in its savepoint; says whether it succeeded and how to tell its caller once the batch
    /// has committed (or failed to).
    fn run(self: Box<Self>, conn: &Conn<'_>) -> (bool, Finish);
    /// Tells the caller the write never ran.
    fn abort(self: Box<Self>, error: Error);
}

struct Pending<F, R, E> {
    f: F,
    tx: tokio::sync::oneshot::Sender<std::result::Result<R, E>>,
}

impl<F, R, E> WriteJob for Pending<F, R, E>
where
    R: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&Conn<'_>) -> std::result::Result<R, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Conn<'_>) -> (bool, Finish) {
        let Self { f, tx } = *self;
        let result = f(conn);
        let ok = result.is_ok();
        let finish: Finish = Box::new(move |commit_error| {
            let _ = tx.send(match commit_error {
                None => result,
                Some(e) => Err(E::from(e)),
            });
        });
        (ok, finish)
    }

    fn abort(self: Box<Self>, error: Error) {
        let _ = self.tx.send(Err(E::from(error)));
    }
}

/// At most this many writes share one transaction; bounds the latency one batch adds.
const MAX_BATCH: usize = 512;

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<SqliteConnectionManager>,
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    writer_alive: Arc<AtomicBool>,
    /// Whether the latest batch failed to begin or commit: `/healthz` reports it until a batch commits.
    failing: Arc<AtomicBool>,
    path: PathBuf,
    /// Dropped with the store, which ends the checkpointer thread.
    _checkpoints: mpsc::Sender<()>,
}

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the WAL file from staying as large as its largest burst once it has been checkpointed.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Copies the WAL into the database (a PASSIVE checkpoint, which never blocks the writer) on its own
/// connection and thread, so that writing the database pages and their fsync never happen inside a commit,
/// where SQLite's automatic checkpoint would put them, stalling every webhook queued behind that commit.
fn checkpointer(path: &Path, busy: std::time::Duration, stop: mpsc::Receiver<()>) -> Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    configure(&conn, busy)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    std::thread::Builder::new()
        .name("db-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint skipped");
                }
            }
        })
        .map_err(|e| Error::Io(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// How long a write waits for a lock another process holds (the CLI, a backup) before it fails, unless
/// configured (`storage.busy_timeout`).
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a command at the terminal waits for the write lock. SQLite's lock is not fair: a waiting
/// process retries about every 100 ms, and a busy server releases the lock only between its commits, so a
/// few seconds' patience can miss every gap. A person at a terminal can wait longer than a webhook can.
pub const CLI_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn configure(conn: &rusqlite::Connection, busy: std::time::Duration) -> rusqlite::Result<()> {
    // FULL: a webhook we acknowledged survives a power cut. The busy timeout covers the CLI reading
    // while the server writes. 1 KiB pages (for a new database; an existing one keeps its size): a webhook
    // dirties a few leaf pages at random places in the unique indexes (call ids, numbers, tokens), and every
    // dirty page is appended whole to the WAL before the fsync. Smaller pages write a quarter of the bytes:
    // measured 7,800 -> 10,900 signed webhooks/s at saturation (2,048-byte pages: 9,950).
    conn.execute_batch(
        "PRAGMA page_size = 1024;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    // Each webhook runs a dozen or so distinct statements; rusqlite keeps 16 prepared by default, so the
    // least recently used were finalized and parsed again all the time.
    conn.set_prepared_statement_cache_capacity(256);
    conn.busy_timeout(busy)
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, BUSY_TIMEOUT)
    }

    /// [`Store::open`] for a command run at the terminal while the server may be busy.
    pub fn open_for_cli(path: &Path) -> Result<Self> {
        Self::open_with(path, CLI_BUSY_TIMEOUT)
    }

    /// [`Store::open`] with another busy timeout (the server's `storage.busy_timeout`, tests).
    pub fn open_with(path: &Path, busy: std::time::Duration) -> Result<Self> {
        Self::open_server(path, busy, true)
    }

    /// [`Store::open_with`], with the checkpoint thread or without it (Litestream checkpoints itself).
    pub fn open_server(path: &Path, busy: std::time::Duration, checkpoints: bool) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Io(format!("cannot create the folder {}: {e}", dir.display()))
                })?;
            }
        }
        let mut conn = rusqlite::Connection::open(path)?;
        configure(&conn, busy)?;
        migrations::apply(&mut conn, path)?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let (stop_checkpoints, stop) = mpsc::channel();
        if checkpoints {
            checkpointer(path, busy, stop)?;
        }

        let manager = SqliteConnectionManager::file(path).with_init(move |c| {
            configure(c, busy)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        // The pool's own thread only opens connections in the background and closes idle ones: one is
        // plenty (r2d2 starts three, each an idle stack).
        let pool = Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            .thread_pool(Arc::new(
                scheduled_thread_pool::ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("r2d2-worker-{}")
                    .build(),
            ))
            .build(manager)?;

        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        let alive = Arc::new(AtomicBool::new(true));
        let failing = Arc::new(AtomicBool::new(false));
        let (alive_writer, failing_writer) = (Arc::clone(&alive), Arc::clone(&failing));
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                run_writer(&conn, &rx, &failing_writer);
                alive_writer.store(false, Ordering::SeqCst);
            })
            .map_err(|e| Error::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writer: tx,
                writer_alive: alive,
                failing,
                path: path.to_path_buf(),
                _checkpoints: stop_checkpoints,
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
    /// committed. Blocks; call it from threads, not from async code (see [`Store::write_async`]). The
    /// closure's error type is the caller's (store errors convert into it), so a use case can refuse with
    /// its own error and still roll back only its own changes.
    pub fn write<R, E, F>(&self, f: F) -> std::result::Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Conn<'_>) -> std::result::Result<R, E> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.blocking_recv().map_err(|_| E::from(Error::WriterGone))?
    }

    /// [`Store::write`] for async callers: waits without holding a thread.
    pub async fn write_async<R, E, F>(&self, f: F) -> std::result::Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Conn<'_>) -> std::result::Result<R, E> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.await.map_err(|_| E::from(Error::WriterGone))?
    }

    #[allow(clippy::type_complexity)]
    fn submit<R, E, F>(
        &self,
        f: F,
    ) -> std::result::Result<tokio::sync::oneshot::Receiver<std::result::Result<R, E>>, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Conn<'_>) -> std::result::Result<R, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .writer
            .send(Box::new(Pending { f, tx }))
            .map_err(|_| E::from(Error::WriterGone))?;
        Ok(rx)
    }

    /// Runs `f` on a pooled read-only connection.
    pub fn read<R>(&self, f: impl FnOnce(&Conn<'_>) -> Result<R>) -> Result<R> {
        let conn = self.inner.pool.get()?;
        f(&Conn(&conn))
    }

    /// The database's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.0.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    /// Whether the latest write batch failed (it could not begin or commit); cleared by the next commit.
    pub fn failing(&self) -> bool {
        self.inner.failing.load(Ordering::SeqCst)
    }

    /// Whether the database answers, the writer thread runs and the latest write committed; for `/healthz`.
    pub fn healthy(&self) -> bool {
        self.inner.writer_alive.load(Ordering::SeqCst)
            && !self.failing()
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

fn run_writer(
    conn: &rusqlite::Connection,
    rx: &mpsc::Receiver<Box<dyn WriteJob>>,
    failing: &AtomicBool,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(conn, batch, failing);
    }
}

/// Runs one of the writer's own statements (begin, savepoints, commit), prepared once: they run for every
/// batch or write.
fn statement(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs a batch in one transaction and records in `failing` whether it committed, before its callers hear
/// back. A batch that cannot begin runs nothing: each of its writes is failed unrun, so no write is ever
/// applied statement by statement outside a transaction (which could store half an event).
fn run_batch(conn: &rusqlite::Connection, batch: Vec<Box<dyn WriteJob>>, failing: &AtomicBool) {
    let (started, size) = (std::time::Instant::now(), batch.len());
    if let Err(e) = statement(conn, "BEGIN IMMEDIATE") {
        crate::metrics::inc("textback_db_write_failures_total", &[]);
        failing.store(true, Ordering::SeqCst);
        tracing::error!(error = %e, writes = batch.len(), "cannot begin a write transaction; the writes are refused");
        for job in batch {
            job.abort(Error::Commit(e.to_string()));
        }
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = statement(conn, "SAVEPOINT w") {
            tracing::error!(error = %e, "cannot open a savepoint; the write is refused");
            job.abort(Error::Commit(e.to_string()));
            continue;
        }
        let (ok, finish) = job.run(&Conn(conn));
        let end = if ok {
            statement(conn, "RELEASE w")
        } else {
            statement(conn, "ROLLBACK TO w").and_then(|()| statement(conn, "RELEASE w"))
        };
        match end {
            Ok(()) => finishes.push(finish),
            Err(e) => {
                // The savepoint's state is unknown: roll the whole batch back rather than commit half a write.
                tracing::error!(error = %e, "savepoint failed; the batch is rolled back");
                let _ = conn.execute_batch("ROLLBACK");
                failing.store(true, Ordering::SeqCst);
                crate::metrics::inc("textback_db_write_failures_total", &[]);
                finish(Some(Error::Commit(e.to_string())));
                for f in finishes {
                    f(Some(Error::Commit(format!(
                        "rolled back with the batch: {e}"
                    ))));
                }
                for rest in jobs {
                    rest.abort(Error::Commit(format!(
                        "not run: the batch was rolled back: {e}"
                    )));
                }
                return;
            }
        }
    }
    match statement(conn, "COMMIT") {
        Ok(()) => {
            failing.store(false, Ordering::SeqCst);
            #[allow(clippy::cast_precision_loss)]
            crate::metrics::observe("textback_db_write_batch_size", &[], size as f64);
            crate::metrics::observe(
                "textback_db_commit_duration_seconds",
                &[],
                started.elapsed().as_secs_f64(),
            );
            finishes.into_iter().for_each(|f| f(None));
        }
        Err(e) => {
            crate::metrics::inc("textback_db_write_failures_total", &[]);
            tracing::error!(error = %e, "commit failed; the batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            failing.store(true, Ordering::SeqCst);
            for f in finishes {
                f(Some(Error::Commit(e.to_string())));
            }
        }
    }
}

/// Where a page of a list ends: the sort key of its last row, as a short opaque string for `?before=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<i64>);

impl Cursor {
    /// A cursor from sort-key values.
    pub fn new(values: Vec<i64>) -> Self {
        Self(values)
    }

    /// Parses a cursor of exactly `len` values; anything else is `None`.
    pub fn parse(s: &str, len: usize) -> Option<Self> {
        let values: Vec<i64> = s
            .split('.')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        (values.len() == len).then_some(Self(values))
    }

    /// The value at `i` (0 when out of range).
    pub fn at(&self, i: usize) -> i64 {
        self.0.get(i).copied().unwrap_or_default()
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(i64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// One page of a list, and where the next (older) page starts, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Pass it back as `before` for the next page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with one row more than `limit`) into a page, with the cursor of its last row.
    fn of(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(key) } else { None };
        Self { rows, next }
    }
}

/// A set of business ids as SQL reads it (`business_id IN (SELECT value FROM json_each(?))`): tenancy is
/// filtered in the query, before any LIMIT.
fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// One page of a list ordered newest first by (time, id). `sql` takes the businesses as ?1, one filter value
/// as ?2, the cursor as ?3 (set or NULL), ?4 and ?5, and the limit as ?6.
#[allow(clippy::too_many_arguments)]
fn time_page<T>(
    c: &Conn<'_>,
    sql: &str,
    businesses: &[String],
    filter: &dyn rusqlite::ToSql,
    before: Option<&Cursor>,
    limit: usize,
    from_row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    key: fn(&T) -> (i64, i64),
) -> Result<Page<T>> {
    let mut st = c.0.prepare_cached(sql)?;
    let at = |i: usize| before.map(|b| b.at(i));
    let rows = st.query_map(
        rusqlite::params![
            ids_json(businesses),
            filter,
            before.map(|_| 1),
            at(0),
            at(1),
            sql_limit(limit)
        ],
        from_row,
    )?;
    let rows: Vec<T> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(Page::of(rows, limit, |r| {
        let (t, id) = key(r);
        Cursor::new(vec![t, id])
    }))
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
    fn the_checkpointer_copies_the_wal_into_the_database_outside_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        fill(&store, 2000);
        // The commit only appended to the WAL; the pages reach the database file at the next checkpoint.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&path).unwrap().len() < before + 2_000_000 {
            assert!(std::time::Instant::now() < deadline, "never checkpointed");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Writes `n` rows of 1 KB in one transaction.
    fn fill(store: &Store, n: usize) {
        store
            .write(move |c| {
                for i in 0..n {
                    c.0.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        rusqlite::params![format!("k{i}"), "x".repeat(1000)],
                    )?;
                }
                Ok::<_, Error>(())
            })
            .unwrap();
    }

    #[test]
    fn without_checkpoints_the_wal_is_left_to_litestream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open_server(&path, BUSY_TIMEOUT, false).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        fill(&store, 500);
        // Two checkpoint periods: with the thread, the pages would be in the database file by now.
        std::thread::sleep(CHECKPOINT_EVERY * 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        let wal = dir.path().join("t.db-wal");
        assert!(std::fs::metadata(wal).unwrap().len() > 500_000);
    }

    #[test]
    fn a_failed_write_rolls_back_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let s1 = store.clone();
        let bad = std::thread::spawn(move || {
            s1.write(|c| {
                c.0.execute("INSERT INTO meta (key, value) VALUES ('bad', 'x')", [])?;
                Err::<(), _>(Error::Conflict("no".into()))
            })
        });
        store
            .write(|c| {
                c.0.execute("INSERT INTO meta (key, value) VALUES ('good', 'y')", [])?;
                Ok::<_, Error>(())
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
    fn a_batch_that_cannot_begin_runs_nothing_and_reports_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open_with(&path, std::time::Duration::from_millis(100)).unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let result = store.write(move |c| {
            r.store(true, Ordering::SeqCst);
            c.0.execute("INSERT INTO meta (key, value) VALUES ('half', 'x')", [])?;
            Ok::<_, Error>(())
        });
        assert!(matches!(result, Err(Error::Commit(_))), "{result:?}");
        assert!(
            !ran.load(Ordering::SeqCst),
            "a write ran outside a transaction"
        );
        assert!(store.failing());
        assert!(!store.healthy());
        other.execute_batch("ROLLBACK").unwrap();
        store
            .write(|c| {
                c.0.execute("INSERT INTO meta (key, value) VALUES ('after', 'y')", [])?;
                Ok::<_, Error>(())
            })
            .unwrap();
        assert!(!store.failing());
        assert!(store.healthy());
        let n: i64 = store
            .read(|c| {
                Ok(c.0.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 1);
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
                            Ok::<_, Error>(())
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
