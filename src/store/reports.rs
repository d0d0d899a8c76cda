//! SQL for the dashboard's figures: missed calls with what became of them, and SMS segments sent.

use super::{Conn, Result};

/// A missed inbound call and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The business.
    pub business_id: String,
    /// When it came in.
    pub started_at: i64,
    /// scheduled, sent, suppressed, cancelled, failed.
    pub textback: Option<String>,
    /// The contact.
    pub contact_id: Option<i64>,
    /// The text-back's delivery state.
    pub textback_status: Option<String>,
    /// The contact texted after the call.
    pub replied: bool,
    /// The contact booked after the call (and was not marked lost since).
    pub booked: bool,
    /// The booking's value in cents.
    pub booked_value_cents: Option<i64>,
}

/// Missed inbound calls since `since`.
pub fn missed_calls(c: &Conn<'_>, since: i64) -> Result<Vec<CallRow>> {
    let mut st = c.0.prepare_cached(
        "SELECT c.business_id, c.started_at, c.textback, c.contact_id,
                (SELECT m.status FROM messages m WHERE m.call_id = c.id AND m.purpose = 'textback'
                 ORDER BY m.id DESC LIMIT 1),
                EXISTS (SELECT 1 FROM messages i WHERE i.contact_id = c.contact_id AND i.direction = 'in'
                        AND i.created_at >= c.started_at),
                COALESCE((SELECT k.booked_at >= c.started_at AND k.state <> 'lost'
                          FROM contacts k WHERE k.id = c.contact_id), 0),
                (SELECT k.booked_value_cents FROM contacts k WHERE k.id = c.contact_id)
         FROM calls c
         WHERE c.state = 'missed' AND c.started_at >= ?1 AND (c.direction IS NULL OR c.direction = 'inbound')
         ORDER BY c.started_at",
    )?;
    let rows = st.query_map([since], |r| {
        Ok(CallRow {
            business_id: r.get(0)?,
            started_at: r.get(1)?,
            textback: r.get(2)?,
            contact_id: r.get(3)?,
            textback_status: r.get(4)?,
            replied: r.get(5)?,
            booked: r.get(6)?,
            booked_value_cents: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// SMS segments sent per business since `since` (what the provider bills).
pub fn segments_sent(c: &Conn<'_>, since: i64) -> Result<Vec<(String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT business_id, COALESCE(SUM(segments), 0) FROM messages
         WHERE direction = 'out' AND provider_sid IS NOT NULL AND created_at >= ?1 GROUP BY business_id",
    )?;
    let rows = st.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What needs someone's attention in some businesses: conversations waiting for a reply, urgent ones, and
/// texts to contacts that failed since `since`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attention {
    /// Contacts waiting for an answer.
    pub needs_reply: i64,
    /// Contacts marked urgent.
    pub urgent: i64,
    /// Texts to contacts that failed.
    pub failed: i64,
}

/// Counts what needs attention.
pub fn attention(c: &Conn<'_>, businesses: &[String], since: i64) -> Result<Attention> {
    let ids = super::ids_json(businesses);
    let (needs_reply, urgent) =
        c.0.prepare_cached(
            "SELECT COALESCE(SUM(needs_reply), 0), COALESCE(SUM(urgent), 0) FROM contacts
         WHERE business_id IN (SELECT value FROM json_each(?1))",
        )?
        .query_row([&ids], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let failed =
        c.0.prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND contact_id IS NOT NULL
           AND status IN ('failed', 'undelivered') AND purpose NOT IN ('alert', 'test')
           AND updated_at >= ?2 AND business_id IN (SELECT value FROM json_each(?1))",
        )?
        .query_row(rusqlite::params![&ids, since], |r| r.get(0))?;
    Ok(Attention {
        needs_reply,
        urgent,
        failed,
    })
}

/// One business's day, for the daily digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Day {
    /// Missed inbound calls.
    pub missed_calls: i64,
    /// Texts that went to contacts.
    pub texts_sent: i64,
    /// Texts contacts sent.
    pub replies: i64,
    /// Conversations booked, with their value in cents (those with none entered count `None`).
    pub booked: Vec<Option<i64>>,
    /// Bookings from booking tools that matched no contact.
    pub booked_elsewhere: i64,
    /// Texts to contacts that failed: (to, why).
    pub failed: Vec<(String, String)>,
    /// Conversations waiting for a reply now: (name or number).
    pub waiting: Vec<String>,
    /// Event deliveries that failed for good.
    pub failed_deliveries: i64,
}

/// What happened to a business in `[from, to)`, and what is waiting now.
pub fn day(c: &Conn<'_>, business_id: &str, from: i64, to: i64) -> Result<Day> {
    let count = |sql: &str| -> Result<i64> {
        Ok(c.0
            .prepare_cached(sql)?
            .query_row(rusqlite::params![business_id, from, to], |r| r.get(0))?)
    };
    let missed_calls = count(
        "SELECT COUNT(*) FROM calls WHERE business_id = ?1 AND state = 'missed'
         AND (direction IS NULL OR direction = 'inbound') AND started_at >= ?2 AND started_at < ?3",
    )?;
    let texts_sent = count(
        "SELECT COUNT(*) FROM messages WHERE business_id = ?1 AND direction = 'out' AND contact_id IS NOT NULL
         AND purpose NOT IN ('alert', 'test') AND provider_sid IS NOT NULL AND sent_at >= ?2 AND sent_at < ?3",
    )?;
    let replies = count(
        "SELECT COUNT(*) FROM messages WHERE business_id = ?1 AND direction = 'in'
         AND created_at >= ?2 AND created_at < ?3",
    )?;
    let booked_elsewhere = count(
        "SELECT COUNT(*) FROM bookings WHERE business_id = ?1 AND contact_id IS NULL AND state = 'booked'
         AND created_at >= ?2 AND created_at < ?3",
    )?;
    let failed_deliveries = count(
        "SELECT COUNT(*) FROM deliveries WHERE business_id = ?1 AND state = 'failed'
         AND updated_at >= ?2 AND updated_at < ?3",
    )?;
    let mut st = c.0.prepare_cached(
        "SELECT booked_value_cents FROM contacts WHERE business_id = ?1 AND state = 'booked'
         AND booked_at >= ?2 AND booked_at < ?3",
    )?;
    let booked = st
        .query_map(rusqlite::params![business_id, from, to], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = c.0.prepare_cached(
        "SELECT to_number, COALESCE(error_message, error_code, status) FROM messages
         WHERE business_id = ?1 AND direction = 'out' AND contact_id IS NOT NULL
         AND status IN ('failed', 'undelivered') AND purpose NOT IN ('alert', 'test')
         AND updated_at >= ?2 AND updated_at < ?3 ORDER BY updated_at LIMIT 20",
    )?;
    let failed = st
        .query_map(rusqlite::params![business_id, from, to], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = c.0.prepare_cached(
        "SELECT COALESCE(name, phone) FROM contacts WHERE business_id = ?1 AND needs_reply = 1
         ORDER BY last_inbound_at LIMIT 20",
    )?;
    let waiting = st
        .query_map([business_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Day {
        missed_calls,
        texts_sent,
        replies,
        booked,
        booked_elsewhere,
        failed,
        waiting,
        failed_deliveries,
    })
}

/// What `/metrics` reads from the database at each scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operational {
    /// Pending jobs by kind.
    pub pending: Vec<(String, i64)>,
    /// Outgoing texts to contacts by status.
    pub texts: Vec<(String, i64)>,
    /// Calls not texted back, by reason.
    pub suppressed: Vec<(String, i64)>,
    /// Endpoints paused, or with failures in the last day.
    pub failing_endpoints: i64,
    /// The latest call or inbound text, unix milliseconds (0 for none).
    pub last_webhook: i64,
}

/// The figures `/metrics` reads.
pub fn operational(c: &Conn<'_>) -> Result<Operational> {
    let pairs = |sql: &str| -> Result<Vec<(String, i64)>> {
        let mut st = c.0.prepare_cached(sql)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let one =
        |sql: &str| -> Result<i64> { Ok(c.0.prepare_cached(sql)?.query_row([], |r| r.get(0))?) };
    Ok(Operational {
        pending: pairs("SELECT kind, COUNT(*) FROM jobs WHERE state = 'pending' GROUP BY kind ORDER BY kind")?,
        texts: pairs(
            "SELECT status, COUNT(*) FROM messages WHERE direction = 'out' AND contact_id IS NOT NULL
             GROUP BY status ORDER BY status",
        )?,
        suppressed: pairs(
            "SELECT COALESCE(textback_reason, 'unknown'), COUNT(*) FROM calls
             WHERE textback IN ('suppressed', 'cancelled') GROUP BY 1 ORDER BY 1",
        )?,
        failing_endpoints: one(
            "SELECT COUNT(*) FROM (SELECT business_id, endpoint FROM endpoint_pauses
               UNION SELECT business_id, endpoint FROM deliveries
               WHERE (state = 'failed' AND updated_at > (strftime('%s', 'now') - 86400) * 1000)
                  OR (state = 'pending' AND attempts > 0))",
        )?,
        last_webhook: one(
            "SELECT MAX(COALESCE((SELECT MAX(started_at) FROM calls), 0),
                        COALESCE((SELECT MAX(created_at) FROM messages WHERE direction = 'in'), 0))",
        )?,
    })
}
