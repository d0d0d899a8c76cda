//! SQL for signed outbound events: the events (each once, with its body), their deliveries to each
//! endpoint, and endpoints paused by a 410.

use super::{optional, Conn, Result};
use rusqlite::{params, Row};

/// A delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// The event's row.
    pub event_id: i64,
    /// The event's public id (`evt_…`).
    pub event_uid: String,
    /// The event's type.
    pub event_type: String,
    /// The business.
    pub business_id: String,
    /// The endpoint's URL.
    pub endpoint: String,
    /// Deliveries to one endpoint with the same key go in order.
    pub ordering_key: Option<i64>,
    /// pending, delivered, failed or skipped.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// The endpoint's last HTTP status.
    pub response_code: Option<u16>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_at: Option<i64>,
    /// When the event happened.
    pub created_at: i64,
    /// Its last change.
    pub updated_at: i64,
}

const COLUMNS: &str =
    "d.id, d.event_id, e.uid, e.type, d.business_id, d.endpoint, d.ordering_key, \
    d.state, d.attempts, d.response_code, d.last_error, d.next_at, d.created_at, d.updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        event_id: r.get(1)?,
        event_uid: r.get(2)?,
        event_type: r.get(3)?,
        business_id: r.get(4)?,
        endpoint: r.get(5)?,
        ordering_key: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        response_code: r.get(9)?,
        last_error: r.get(10)?,
        next_at: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// An event to record.
pub struct NewEvent<'a> {
    /// Its public id.
    pub uid: &'a str,
    /// The business.
    pub business_id: &'a str,
    /// Its type.
    pub kind: &'a str,
    /// The contact it is about.
    pub contact_id: Option<i64>,
    /// The JSON every endpoint receives.
    pub body: &'a str,
}

/// Records an event; returns its row id.
pub fn insert_event(c: &Conn<'_>, e: &NewEvent<'_>, now: i64) -> Result<i64> {
    c.0.prepare_cached(
        "INSERT INTO outbound_events (uid, business_id, type, contact_id, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.uid,
        e.business_id,
        e.kind,
        e.contact_id,
        e.body,
        now
    ])?;
    Ok(c.0.last_insert_rowid())
}

/// Adds a delivery of an event to an endpoint (`skipped` with a reason when the endpoint is paused).
pub fn insert_delivery(
    c: &Conn<'_>,
    event_id: i64,
    business_id: &str,
    endpoint: &str,
    ordering_key: Option<i64>,
    skipped: Option<&str>,
    now: i64,
) -> Result<i64> {
    c.0.prepare_cached(
        "INSERT INTO deliveries (event_id, business_id, endpoint, ordering_key, state, last_error, next_at,
                                 created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)",
    )?
    .execute(params![
        event_id,
        business_id,
        endpoint,
        ordering_key,
        if skipped.is_some() {
            "skipped"
        } else {
            "pending"
        },
        skipped,
        now
    ])?;
    Ok(c.0.last_insert_rowid())
}

/// A delivery, with its event.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Option<Delivery>> {
    optional(
        c.0.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deliveries d JOIN outbound_events e ON e.id = d.event_id WHERE d.id = ?1"
        ))?
        .query_row([id], from_row),
    )
}

/// The JSON body of a delivery's event.
pub fn body(c: &Conn<'_>, event_id: i64) -> Result<String> {
    Ok(c.0
        .prepare_cached("SELECT body FROM outbound_events WHERE id = ?1")?
        .query_row([event_id], |r| r.get(0))?)
}

/// When the earliest pending delivery before `d` to the same endpoint and about the same contact is next due
/// (`d` waits for it: a receiver sees a contact's events in order), if there is one.
pub fn waiting_behind(c: &Conn<'_>, d: &Delivery) -> Result<Option<i64>> {
    let Some(key) = d.ordering_key else {
        return Ok(None);
    };
    optional(
        c.0.prepare_cached(
            "SELECT coalesce(next_at, 0) FROM deliveries
             WHERE endpoint = ?1 AND business_id = ?2 AND ordering_key = ?3 AND state = 'pending' AND id < ?4
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![d.endpoint, d.business_id, key, d.id], |r| r.get(0)),
    )
}

/// Records an attempt's outcome: `state` (pending while it is retried), the HTTP status, the error and the
/// next attempt's time.
pub fn record(
    c: &Conn<'_>,
    id: i64,
    state: &str,
    response_code: Option<u16>,
    error: Option<&str>,
    next_at: Option<i64>,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE deliveries SET state = ?2, attempts = attempts + 1, response_code = ?3, last_error = ?4,
                next_at = ?5, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![id, state, response_code, error, next_at, now])?;
    Ok(())
}

/// Ends a delivery without an attempt (its endpoint left the config, or was paused).
pub fn abandon(c: &Conn<'_>, id: i64, state: &str, why: &str, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE deliveries SET state = ?2, last_error = ?3, next_at = NULL, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, state, why, now])?;
    Ok(())
}

/// Moves a waiting delivery's due time.
pub fn set_next(c: &Conn<'_>, id: i64, next_at: i64, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE deliveries SET next_at = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, next_at, now])?;
    Ok(())
}

/// The latest deliveries to an endpoint, newest first.
pub fn recent(
    c: &Conn<'_>,
    business_id: &str,
    endpoint: &str,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries d JOIN outbound_events e ON e.id = d.event_id
         WHERE d.business_id = ?1 AND d.endpoint = ?2 ORDER BY d.id DESC LIMIT ?3"
    ))?;
    let rows = st.query_map(
        params![
            business_id,
            endpoint,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Why an endpoint is paused, if it is.
pub fn paused(c: &Conn<'_>, business_id: &str, endpoint: &str) -> Result<Option<String>> {
    optional(
        c.0.prepare_cached(
            "SELECT reason FROM endpoint_pauses WHERE business_id = ?1 AND endpoint = ?2",
        )?
        .query_row(params![business_id, endpoint], |r| r.get(0)),
    )
}

/// Pauses an endpoint.
pub fn pause(
    c: &Conn<'_>,
    business_id: &str,
    endpoint: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "INSERT INTO endpoint_pauses (business_id, endpoint, paused_at, reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (business_id, endpoint) DO UPDATE SET paused_at = ?3, reason = ?4",
    )?
    .execute(params![business_id, endpoint, now, reason])?;
    Ok(())
}

/// Resumes a paused endpoint; true when it was paused.
pub fn resume(c: &Conn<'_>, business_id: &str, endpoint: &str) -> Result<bool> {
    Ok(c.0
        .prepare_cached("DELETE FROM endpoint_pauses WHERE business_id = ?1 AND endpoint = ?2")?
        .execute(params![business_id, endpoint])?
        > 0)
}

/// How an endpoint is doing, for `status` and the admin page.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// Deliveries waiting, retries included.
    pub pending: i64,
    /// Of those, ones that failed at least once.
    pub retrying: i64,
    /// Deliveries that failed for good in the last day.
    pub failed_recently: i64,
    /// Why it is paused, if it is.
    pub paused: Option<String>,
}

impl Health {
    /// Whether an operator should look at it.
    pub fn failing(&self) -> bool {
        self.retrying > 0 || self.failed_recently > 0 || self.paused.is_some()
    }
}

/// How an endpoint is doing; failures count from `since`.
pub fn health(c: &Conn<'_>, business_id: &str, endpoint: &str, since: i64) -> Result<Health> {
    let (pending, retrying, failed_recently) = c.0.prepare_cached(
        "SELECT coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'pending' AND attempts > 0), 0),
                coalesce(sum(state = 'failed' AND updated_at >= ?3), 0)
         FROM deliveries WHERE business_id = ?1 AND endpoint = ?2",
    )?
    .query_row(params![business_id, endpoint, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(Health {
        pending,
        retrying,
        failed_recently,
        paused: paused(c, business_id, endpoint)?,
    })
}

/// Every endpoint that has deliveries, as (business, URL).
pub fn endpoints(c: &Conn<'_>) -> Result<Vec<(String, String)>> {
    let mut st =
        c.0.prepare_cached("SELECT DISTINCT business_id, endpoint FROM deliveries ORDER BY 1, 2")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops events (and their deliveries) older than `before` whose deliveries are all finished.
pub fn prune(c: &Conn<'_>, before: i64) -> Result<usize> {
    Ok(c.0.prepare_cached(
        "DELETE FROM outbound_events WHERE created_at < ?1
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = outbound_events.id AND d.state = 'pending')",
    )?
    .execute([before])?)
}
