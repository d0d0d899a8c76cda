//! SQL for calls and their applied reports.

use super::{optional, Conn, Cursor, Page, Result};
use rusqlite::{params, Row};

/// A stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Row id.
    pub id: i64,
    /// The business it was for.
    pub business_id: String,
    /// The provider account name.
    pub provider: String,
    /// The provider's call id.
    pub call_sid: String,
    /// The contact, when the caller has a usable number.
    pub contact_id: Option<i64>,
    /// `From` as the provider sent it.
    pub from_raw: String,
    /// The business number called.
    pub to_number: String,
    /// Our voice webhook answered it with a `<Dial>`.
    pub dialed: bool,
    /// The `<Dial action>` report arrived.
    pub dial_reported: bool,
    /// ringing, missed or answered.
    pub state: String,
    /// Why it counts as missed.
    pub miss_reason: Option<String>,
    /// Seconds, when known.
    pub duration_secs: Option<i64>,
    /// Voicemail recording, when one was left.
    pub recording_url: Option<String>,
    /// What happened to its text-back.
    pub textback: Option<String>,
    /// Why, for suppressed or cancelled text-backs.
    pub textback_reason: Option<String>,
    /// When the call came in.
    pub started_at: i64,
    /// The carrier's caller-ID verdict.
    pub stir_verstat: Option<String>,
    /// Answering machine detection's verdict.
    pub answered_by: Option<String>,
    /// Staff pressed 1 to take it (call screening).
    pub screened_in: bool,
}

/// The columns `from_row` reads, as a literal so the queries on the webhook path are `concat!`ed once at
/// compile time instead of formatted (and hashed for the statement cache) on every call.
macro_rules! columns {
    () => {
        "id, business_id, provider, call_sid, contact_id, from_raw, to_number, dialed, \
    dial_reported, state, miss_reason, duration_secs, recording_url, textback, textback_reason, started_at, \
    stir_verstat, answered_by, screened_in"
    };
}
const COLUMNS: &str = columns!();

fn from_row(r: &Row<'_>) -> rusqlite::Result<Call> {
    Ok(Call {
        id: r.get(0)?,
        business_id: r.get(1)?,
        provider: r.get(2)?,
        call_sid: r.get(3)?,
        contact_id: r.get(4)?,
        from_raw: r.get(5)?,
        to_number: r.get(6)?,
        dialed: r.get(7)?,
        dial_reported: r.get(8)?,
        state: r.get(9)?,
        miss_reason: r.get(10)?,
        duration_secs: r.get(11)?,
        recording_url: r.get(12)?,
        textback: r.get(13)?,
        textback_reason: r.get(14)?,
        started_at: r.get(15)?,
        stir_verstat: r.get(16)?,
        answered_by: r.get(17)?,
        screened_in: r.get(18)?,
    })
}

/// A call to record.
pub struct NewCall<'a> {
    /// The business.
    pub business_id: &'a str,
    /// The provider account name.
    pub provider: &'a str,
    /// The provider's call id.
    pub call_sid: &'a str,
    /// `From` as sent.
    pub from_raw: &'a str,
    /// The number called.
    pub to_number: &'a str,
    /// Our answer to the incoming call rang the business's phones.
    pub dialed: bool,
    /// The call's direction, in the domain's words.
    pub direction: Option<&'a str>,
    /// The caller-ID check, in the domain's words (the column keeps its first name).
    pub stir_verstat: Option<&'a str>,
}

/// Records a call unless its call id is already known; returns the row and whether it is new.
pub fn insert_or_get(c: &Conn<'_>, call: &NewCall<'_>, now: i64) -> Result<(Call, bool)> {
    let inserted = c.0.prepare_cached(
        "INSERT INTO calls (business_id, provider, call_sid, from_raw, to_number, dialed, direction, stir_verstat,
                            state, started_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'ringing', ?9, ?9)
         ON CONFLICT (provider, call_sid) DO NOTHING",
    )?
    .execute(params![
        call.business_id,
        call.provider,
        call.call_sid,
        call.from_raw,
        call.to_number,
        call.dialed,
        call.direction,
        call.stir_verstat,
        now
    ])?;
    if inserted == 1 {
        return Ok((get(c, c.0.last_insert_rowid())?, true));
    }
    let row = by_sid(c, call.provider, call.call_sid)?.ok_or(super::Error::NotFound)?;
    Ok((row, false))
}

/// The call with this provider call id.
pub fn by_sid(c: &Conn<'_>, provider: &str, call_sid: &str) -> Result<Option<Call>> {
    optional(
        c.0.prepare_cached(concat!(
            "SELECT ",
            columns!(),
            " FROM calls WHERE provider = ?1 AND call_sid = ?2"
        ))?
        .query_row(params![provider, call_sid], from_row),
    )
}

/// The call with this row id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Call> {
    optional(
        c.0.prepare_cached(concat!("SELECT ", columns!(), " FROM calls WHERE id = ?1"))?
            .query_row([id], from_row),
    )?
    .ok_or(super::Error::NotFound)
}

/// Records that a report (`dial:<leg id>`, `status:<call end>`, `ended`) was applied; false if it already was.
pub fn add_report(c: &Conn<'_>, call_id: i64, key: &str, now: i64) -> Result<bool> {
    let n = c.0.prepare_cached(
        "INSERT INTO call_reports (call_id, key, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![call_id, key, now])?;
    Ok(n == 1)
}

/// Marks the dial action as reported.
pub fn set_dial_reported(c: &Conn<'_>, id: i64, dial_status: &str, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE calls SET dial_reported = 1, dial_status = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, dial_status, now])?;
    Ok(())
}

/// Records the outcome of a call.
pub fn set_outcome(
    c: &Conn<'_>,
    id: i64,
    state: &str,
    miss_reason: Option<&str>,
    duration_secs: Option<u64>,
    now: i64,
) -> Result<()> {
    let duration = duration_secs.and_then(|d| i64::try_from(d).ok());
    c.0.prepare_cached(
        "UPDATE calls SET state = ?2, miss_reason = ?3, duration_secs = COALESCE(?4, duration_secs),
                ended_at = ?5, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, state, miss_reason, duration, now])?;
    Ok(())
}

/// Links the call to its contact.
pub fn set_contact(c: &Conn<'_>, id: i64, contact_id: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE calls SET contact_id = ?2 WHERE id = ?1")?
        .execute(params![id, contact_id])?;
    Ok(())
}

/// Records what happened to the call's text-back, and why.
pub fn set_textback(
    c: &Conn<'_>,
    id: i64,
    textback: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE calls SET textback = ?2, textback_reason = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, textback, reason, now])?;
    Ok(())
}

/// Records answering machine detection's verdict.
pub fn set_answered_by(c: &Conn<'_>, id: i64, answered_by: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE calls SET answered_by = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, answered_by, now])?;
    Ok(())
}

/// Records that staff pressed 1 to take the call.
pub fn set_screened_in(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE calls SET screened_in = 1, updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Stores a voicemail recording link.
pub fn set_recording(c: &Conn<'_>, id: i64, url: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE calls SET recording_url = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, url, now])?;
    Ok(())
}

/// The latest calls whose text-back was suppressed or cancelled, newest first.
pub fn recent_suppressed(c: &Conn<'_>, limit: usize) -> Result<Vec<Call>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM calls WHERE textback IN ('suppressed', 'cancelled')
         ORDER BY started_at DESC, id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts of calls by state and of text-backs by outcome.
pub fn counts(c: &Conn<'_>) -> Result<Vec<(String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT 'calls ' || state, COUNT(*) FROM calls GROUP BY state
         UNION ALL
         SELECT 'text-backs ' || textback, COUNT(*) FROM calls WHERE textback IS NOT NULL GROUP BY textback",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A contact's calls, oldest first.
pub fn for_contact(c: &Conn<'_>, contact_id: i64) -> Result<Vec<Call>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM calls WHERE contact_id = ?1 ORDER BY started_at, id"
    ))?;
    let rows = st.query_map([contact_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Calls of some businesses since `since`, newest first; a page of `limit` starting after `before`.
pub fn since(
    c: &Conn<'_>,
    businesses: &[String],
    since: i64,
    before: Option<&Cursor>,
    limit: usize,
) -> Result<Page<Call>> {
    super::time_page(
        c,
        &format!(
            "SELECT {COLUMNS} FROM calls
             WHERE business_id IN (SELECT value FROM json_each(?1)) AND started_at >= ?2
               AND (?3 IS NULL OR (started_at, id) < (?4, ?5))
             ORDER BY started_at DESC, id DESC LIMIT ?6"
        ),
        businesses,
        &since,
        before,
        limit,
        from_row,
        |c| (c.started_at, c.id),
    )
}
