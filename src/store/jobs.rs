//! SQL for the jobs table: the durable outbox the scheduler works through.

use super::{optional, Conn, Result};
use crate::model::Job;
use rusqlite::{params, Row};

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// What to do.
    pub job: Job,
    /// The contact it concerns.
    pub contact_id: Option<i64>,
    /// The outgoing message it owns, once created.
    pub message_id: Option<i64>,
    /// When it is due.
    pub run_at: i64,
    /// pending, running, done, failed, cancelled, unknown.
    pub state: String,
    /// Attempts so far, this one included once claimed.
    pub attempts: u32,
    /// Attempts allowed before it fails for good.
    pub max_attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: i64,
    /// Its last change (when it finished, for a finished job).
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, payload, contact_id, message_id, run_at, state, attempts, max_attempts, last_error, \
    created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let payload: String = r.get(1)?;
    let job = serde_json::from_str(&payload).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(JobRow {
        id: r.get(0)?,
        job,
        contact_id: r.get(2)?,
        message_id: r.get(3)?,
        run_at: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        max_attempts: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// A job to add.
pub struct NewJob<'a> {
    /// What to do.
    pub job: Job,
    /// Makes the job unique per kind: a second enqueue with the same key changes nothing.
    pub dedupe_key: Option<&'a str>,
    /// The contact it concerns (so an opt-out can cancel it).
    pub contact_id: Option<i64>,
    /// The message it sends, when the row already exists.
    pub message_id: Option<i64>,
    /// When it is due.
    pub run_at: i64,
    /// Attempts allowed.
    pub max_attempts: u32,
}

/// Adds a job; returns its id, or `None` when a job with the same kind and dedupe key exists.
pub fn enqueue(c: &Conn<'_>, j: &NewJob<'_>, now: i64) -> Result<Option<i64>> {
    let payload = serde_json::to_string(&j.job)?;
    let n = c.0.prepare_cached(
        "INSERT INTO jobs (kind, payload, dedupe_key, contact_id, message_id, run_at, max_attempts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (kind, dedupe_key) DO NOTHING",
    )?
    .execute(params![
        j.job.kind(),
        payload,
        j.dedupe_key,
        j.contact_id,
        j.message_id,
        j.run_at,
        j.max_attempts,
        now
    ])?;
    Ok((n == 1).then(|| c.0.last_insert_rowid()))
}

/// Claims up to `limit` due jobs: marks them running with a lease, and counts the attempt. The claim is
/// committed before anything is sent, so a crash leaves them visibly interrupted rather than lost.
pub fn claim_due(c: &Conn<'_>, now: i64, limit: usize, lease_ms: i64) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = ?2, updated_at = ?1
         WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND run_at <= ?1 ORDER BY run_at, id LIMIT ?3)
         RETURNING {COLUMNS}"
    ))?;
    let rows = st.query_map(
        params![
            now,
            now + lease_ms,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        from_row,
    )?;
    let mut jobs: Vec<JobRow> = rows.collect::<rusqlite::Result<_>>()?;
    jobs.sort_by_key(|j| (j.run_at, j.id));
    Ok(jobs)
}

/// Running jobs whose lease ran out (all running jobs when `all`, as at start-up): sends interrupted by a
/// crash or a stuck worker, to be reconciled.
pub fn interrupted(c: &Conn<'_>, now: i64, all: bool) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE state = 'running' AND locked_until < ?1"
    ))?;
    let until = if all { i64::MAX } else { now };
    let rows = st.query_map([until], from_row)?;
    let mut jobs: Vec<JobRow> = rows.collect::<rusqlite::Result<_>>()?;
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// A worker starts a claimed job: its lease is renewed from now, and only if the job is still running
/// under the same claim (`attempts`). False when lease recovery has taken it back meanwhile, in which case
/// the worker must not do it.
pub fn start(c: &Conn<'_>, id: i64, attempts: u32, until: i64, now: i64) -> Result<bool> {
    Ok(c.0
        .prepare_cached(
            "UPDATE jobs SET locked_until = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?
        .execute(params![id, attempts, until, now])?
        == 1)
}

/// The earliest due time of a pending job.
pub fn next_due(c: &Conn<'_>) -> Result<Option<i64>> {
    Ok(c.0
        .prepare_cached("SELECT MIN(run_at) FROM jobs WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?)
}

/// The job with this id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<JobRow> {
    optional(
        c.0.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?
            .query_row([id], from_row),
    )?
    .ok_or(super::Error::NotFound)
}

/// Ends a job: done, failed, cancelled or unknown.
pub fn finish(c: &Conn<'_>, id: i64, state: &str, error: Option<&str>, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE jobs SET state = ?2, last_error = COALESCE(?3, last_error), locked_until = NULL, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, state, error, now])?;
    Ok(())
}

/// Puts a job back to pending, due at `run_at`.
pub fn retry_at(c: &Conn<'_>, id: i64, run_at: i64, error: &str, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE jobs SET state = 'pending', run_at = ?2, last_error = ?3, locked_until = NULL, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, run_at, error, now])?;
    Ok(())
}

/// Records the message a job owns.
pub fn set_message(c: &Conn<'_>, id: i64, message_id: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE jobs SET message_id = ?2 WHERE id = ?1")?
        .execute(params![id, message_id])?;
    Ok(())
}

/// A job whose text may already have gone out (its message is being checked with the provider) is never
/// called off: the check decides, and only a text that certainly did not go is then decided again.
const NOT_CHECKING: &str = "(message_id IS NULL OR NOT EXISTS
    (SELECT 1 FROM messages m WHERE m.id = jobs.message_id AND m.status = 'checking'))";

/// Cancels a pending job by kind and dedupe key; returns whether one was cancelled.
pub fn cancel_by_key(
    c: &Conn<'_>,
    kind: &str,
    dedupe_key: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let n =
        c.0.prepare_cached(&format!(
            "UPDATE jobs SET state = 'cancelled', last_error = ?3, updated_at = ?4
             WHERE kind = ?1 AND dedupe_key = ?2 AND state = 'pending' AND {NOT_CHECKING}"
        ))?
        .execute(params![kind, dedupe_key, reason, now])?;
    Ok(n > 0)
}

/// Cancels a contact's pending jobs of one kind; returns the cancelled jobs.
pub fn cancel_for_contact(
    c: &Conn<'_>,
    contact_id: i64,
    kind: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "UPDATE jobs SET state = 'cancelled', last_error = ?3, updated_at = ?4
         WHERE contact_id = ?1 AND kind = ?2 AND state = 'pending' AND {NOT_CHECKING}
         RETURNING {COLUMNS}"
    ))?;
    let rows = st.query_map(params![contact_id, kind, reason, now], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Puts a claimed job back, due at `run_at`, without counting the attempt (it was not tried: rate limit,
/// quiet hours, staff in the conversation).
pub fn postpone(c: &Conn<'_>, id: i64, run_at: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE jobs SET state = 'pending', run_at = ?2, attempts = MAX(attempts - 1, 0), locked_until = NULL,
                updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, run_at, now])?;
    Ok(())
}

/// Pending jobs for a contact (so an opt-out can cancel them); those being checked with the provider are
/// left out (see `NOT_CHECKING`).
pub fn pending_for_contact(c: &Conn<'_>, contact_id: i64) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE contact_id = ?1 AND state = 'pending' AND {NOT_CHECKING} ORDER BY id"
    ))?;
    let rows = st.query_map([contact_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Pending jobs of one kind.
pub fn pending_of_kind(c: &Conn<'_>, kind: &str) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND state IN ('pending', 'running') ORDER BY id"
    ))?;
    let rows = st.query_map([kind], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Failed jobs of one kind finished since `since`.
pub fn failed_since(c: &Conn<'_>, kind: &str, since: i64, limit: usize) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND state IN ('failed', 'unknown') AND updated_at >= ?2
         ORDER BY updated_at DESC LIMIT ?3"
    ))?;
    let rows = st.query_map(
        rusqlite::params![kind, since, i64::try_from(limit).unwrap_or(i64::MAX)],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts of jobs by state.
pub fn counts(c: &Conn<'_>) -> Result<Vec<(String, i64)>> {
    let mut st =
        c.0.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest jobs of a kind that were called off, newest first (their `last_error` says why).
pub fn recent_cancelled(c: &Conn<'_>, kind: &str, limit: usize) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND state = 'cancelled' ORDER BY updated_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(
        params![kind, i64::try_from(limit).unwrap_or(i64::MAX)],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The next pending jobs, soonest first.
pub fn upcoming(c: &Conn<'_>, limit: usize) -> Result<Vec<JobRow>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE state = 'pending' ORDER BY run_at, id LIMIT ?1"
    ))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records an idempotency token; false if it was seen before.
pub fn remember_token(c: &Conn<'_>, token: &str, now: i64) -> Result<bool> {
    let n =
        c.0.prepare_cached(
            "INSERT INTO webhook_tokens (token, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![token, now])?;
    Ok(n == 1)
}

/// Deletes idempotency tokens and finished jobs older than `before`; returns how many rows went. The
/// messages and calls they produced stay: they are the history.
pub fn prune(c: &Conn<'_>, before: i64) -> Result<usize> {
    let tokens =
        c.0.prepare_cached("DELETE FROM webhook_tokens WHERE at < ?1")?
            .execute([before])?;
    let jobs =
        c.0.prepare_cached(
            "DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND updated_at < ?1",
        )?
        .execute([before])?;
    Ok(tokens + jobs)
}
