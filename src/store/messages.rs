//! SQL for messages (in and out) and their delivery receipts.

use super::{optional, Conn, Result};
use crate::model::status_rank;
use rusqlite::{params, Row};

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Row id.
    pub id: i64,
    /// The business.
    pub business_id: String,
    /// The contact.
    pub contact_id: Option<i64>,
    /// The call it answers, for text-backs.
    pub call_id: Option<i64>,
    /// `in` or `out`.
    pub direction: String,
    /// textback, help, reply, inbound.
    pub purpose: String,
    /// Provider account name.
    pub provider: String,
    /// The provider's message id, once known.
    pub provider_sid: Option<String>,
    /// Sender.
    pub from_number: String,
    /// Recipient.
    pub to_number: String,
    /// Text.
    pub body: String,
    /// Delivery state.
    pub status: String,
    /// Provider error code of a failure, as the provider wrote it.
    pub error_code: Option<String>,
    /// Provider error message of a failure.
    pub error_message: Option<String>,
    /// Row created.
    pub created_at: i64,
    /// Handed to the provider.
    pub sent_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
    /// The keyword rule an inbound text matched.
    pub keyword: Option<String>,
    /// When the current attempt to send it began.
    pub send_started_at: Option<i64>,
    /// Which script composed it and why, for automatic texts.
    pub script: Option<String>,
}

const COLUMNS: &str = "id, business_id, contact_id, call_id, direction, purpose, provider, provider_sid, \
    from_number, to_number, body, status, error_code, error_message, created_at, sent_at, updated_at, keyword, \
    send_started_at, script";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        business_id: r.get(1)?,
        contact_id: r.get(2)?,
        call_id: r.get(3)?,
        direction: r.get(4)?,
        purpose: r.get(5)?,
        provider: r.get(6)?,
        provider_sid: r.get(7)?,
        from_number: r.get(8)?,
        to_number: r.get(9)?,
        body: r.get(10)?,
        status: r.get(11)?,
        error_code: code_of(r.get(12)?),
        error_message: r.get(13)?,
        created_at: r.get(14)?,
        sent_at: r.get(15)?,
        updated_at: r.get(16)?,
        keyword: r.get(17)?,
        send_started_at: r.get(18)?,
        script: r.get(19)?,
    })
}

/// A stored error code as text: older rows hold numbers (Twilio's codes), newer ones any provider's code.
fn code_of(v: rusqlite::types::Value) -> Option<String> {
    match v {
        rusqlite::types::Value::Integer(n) => Some(n.to_string()),
        rusqlite::types::Value::Text(t) => Some(t),
        _ => None,
    }
}

/// A message to record.
pub struct NewMessage<'a> {
    /// The business.
    pub business_id: &'a str,
    /// The contact.
    pub contact_id: Option<i64>,
    /// The call a text-back answers.
    pub call_id: Option<i64>,
    /// `in` or `out`.
    pub direction: &'a str,
    /// textback, help, reply, inbound.
    pub purpose: &'a str,
    /// Provider account name.
    pub provider: &'a str,
    /// The provider's id (inbound messages have one from the start).
    pub provider_sid: Option<&'a str>,
    /// Sender.
    pub from_number: &'a str,
    /// Recipient.
    pub to_number: &'a str,
    /// Text.
    pub body: &'a str,
    /// Billable segments.
    pub segments: usize,
    /// Initial state.
    pub status: &'a str,
}

/// Records a message; returns `None` if a message with the same provider id exists (a redelivered webhook).
pub fn insert(c: &Conn<'_>, m: &NewMessage<'_>, now: i64) -> Result<Option<i64>> {
    let n = c.0.prepare_cached(
        "INSERT INTO messages (business_id, contact_id, call_id, direction, purpose, provider, provider_sid,
                               from_number, to_number, body, segments, status, created_at, updated_at,
                               send_started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13,
                 CASE WHEN ?12 = 'sending' THEN ?13 END)
         ON CONFLICT (provider, provider_sid) DO NOTHING",
    )?
    .execute(params![
        m.business_id,
        m.contact_id,
        m.call_id,
        m.direction,
        m.purpose,
        m.provider,
        m.provider_sid,
        m.from_number,
        m.to_number,
        m.body,
        i64::try_from(m.segments).unwrap_or(1),
        m.status,
        now
    ])?;
    Ok((n == 1).then(|| c.0.last_insert_rowid()))
}

/// The message with this id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Message> {
    optional(
        c.0.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?
            .query_row([id], from_row),
    )?
    .ok_or(super::Error::NotFound)
}

/// Records which script composed a message and why.
pub fn set_script(c: &Conn<'_>, id: i64, script: &str) -> Result<()> {
    c.0.prepare_cached("UPDATE messages SET script = ?2 WHERE id = ?1")?
        .execute(params![id, script])?;
    Ok(())
}

/// Sets a message's own state (sending, retrying, failed, cancelled, unknown) and error.
pub fn set_status(
    c: &Conn<'_>,
    id: i64,
    status: &str,
    error_code: Option<&str>,
    error_message: Option<&str>,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE messages SET status = ?2, error_code = ?3, error_message = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, status, error_code, error_message, now])?;
    Ok(())
}

/// Readies a message for a send attempt starting now: state `sending`, the attempt's start recorded.
pub fn mark_sending(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE messages SET status = 'sending', error_code = NULL, error_message = NULL, send_started_at = ?2,
                updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Records the keyword rule an inbound text matched.
pub fn set_keyword(c: &Conn<'_>, id: i64, keyword: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE messages SET keyword = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, keyword, now])?;
    Ok(())
}

/// Records the provider's acceptance of a message: its id, state and when it was handed over.
pub fn set_accepted(
    c: &Conn<'_>,
    id: i64,
    sid: &str,
    status: &str,
    sent_at: i64,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE messages SET provider_sid = ?2, status = ?3, sent_at = ?4, error_code = NULL,
                error_message = NULL, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, sid, status, sent_at, now])?;
    Ok(())
}

/// Applies a delivery receipt once per (message id, status), moving the state only forward. Returns the
/// message it applied to, or `None` for a repeated receipt or an unknown message.
pub fn apply_receipt(
    c: &Conn<'_>,
    provider: &str,
    sid: &str,
    status: &str,
    error_code: Option<&str>,
    now: i64,
) -> Result<Option<Message>> {
    let fresh = c.0.prepare_cached(
        "INSERT INTO delivery_receipts (provider, message_sid, status, error_code, at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![provider, sid, status, error_code, now])?;
    if fresh == 0 {
        return Ok(None);
    }
    let Some(m) = optional(
        c.0.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages WHERE provider = ?1 AND provider_sid = ?2"
        ))?
        .query_row(params![provider, sid], from_row),
    )?
    else {
        return Ok(None);
    };
    if status_rank(status) > status_rank(&m.status) {
        c.0.prepare_cached(
            "UPDATE messages SET status = ?2, error_code = COALESCE(?3, error_code), updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![m.id, status, error_code, now])?;
    } else if error_code.is_some() && m.error_code.is_none() {
        set_status(c, m.id, &m.status, error_code, None, now)?;
    }
    Ok(Some(get(c, m.id)?))
}

/// Counts of outgoing messages by state.
pub fn outgoing_counts(c: &Conn<'_>) -> Result<Vec<(String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT status, COUNT(*) FROM messages WHERE direction = 'out' GROUP BY status ORDER BY status",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest messages, newest first; `statuses` limits them to those states when not empty.
pub fn recent(c: &Conn<'_>, statuses: &[&str], limit: usize) -> Result<Vec<Message>> {
    let filter = if statuses.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "")))
            .collect();
        format!("WHERE status IN ({})", list.join(", "))
    };
    let mut st = c.0.prepare(&format!(
        "SELECT {COLUMNS} FROM messages {filter} ORDER BY created_at DESC, id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A contact's messages, oldest first.
pub fn for_contact(c: &Conn<'_>, contact_id: i64) -> Result<Vec<Message>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE contact_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([contact_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
