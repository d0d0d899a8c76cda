//! SQL for contacts, their consent (opt-out) and the audit trail of consent changes.

use super::{optional, Conn, Result};
use crate::policy::ContactFacts;
use rusqlite::params;

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Row id.
    pub id: i64,
    /// The business whose contact this is.
    pub business_id: String,
    /// E.164 number.
    pub phone: String,
    /// When they opted out, if they did and have not opted back in.
    pub opted_out_at: Option<i64>,
}

/// Finds or creates the contact for a number at a business; returns its id.
pub fn upsert(c: &Conn<'_>, business_id: &str, phone: &str, now: i64) -> Result<i64> {
    c.0.prepare_cached(
        "INSERT INTO contacts (business_id, phone, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (business_id, phone) DO NOTHING",
    )?
    .execute(params![business_id, phone, now])?;
    Ok(c.0
        .prepare_cached("SELECT id FROM contacts WHERE business_id = ?1 AND phone = ?2")?
        .query_row(params![business_id, phone], |r| r.get(0))?)
}

/// The contact with this id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Contact> {
    optional(
        c.0.prepare_cached(
            "SELECT id, business_id, phone, opted_out_at FROM contacts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(Contact {
                id: r.get(0)?,
                business_id: r.get(1)?,
                phone: r.get(2)?,
                opted_out_at: r.get(3)?,
            })
        }),
    )?
    .ok_or(super::Error::NotFound)
}

/// The contact for a number at a business, if known.
pub fn find(c: &Conn<'_>, business_id: &str, phone: &str) -> Result<Option<Contact>> {
    let id: Option<i64> = optional(
        c.0.prepare_cached("SELECT id FROM contacts WHERE business_id = ?1 AND phone = ?2")?
            .query_row(params![business_id, phone], |r| r.get(0)),
    )?;
    id.map(|id| get(c, id)).transpose()
}

/// Records an opt-out (`opted_out = true`) or opt-in, with its source, in the audit trail.
/// Returns false when the contact was already in that state (nothing changes, nothing is logged).
pub fn set_consent(
    c: &Conn<'_>,
    id: i64,
    opted_out: bool,
    source: &str,
    detail: Option<&str>,
    now: i64,
) -> Result<bool> {
    let changed = if opted_out {
        c.0.prepare_cached(
            "UPDATE contacts SET opted_out_at = ?2, updated_at = ?2 WHERE id = ?1 AND opted_out_at IS NULL",
        )?
        .execute(params![id, now])?
    } else {
        c.0.prepare_cached(
            "UPDATE contacts SET opted_out_at = NULL, updated_at = ?2 WHERE id = ?1 AND opted_out_at IS NOT NULL",
        )?
        .execute(params![id, now])?
    };
    if changed == 0 {
        return Ok(false);
    }
    c.0.prepare_cached(
        "INSERT INTO consent_events (contact_id, change, source, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        if opted_out { "opt_out" } else { "opt_in" },
        source,
        detail,
        now
    ])?;
    Ok(true)
}

/// What the text-back decision needs to know about a contact. `exclude_message` leaves out the message a
/// retried send already owns.
pub fn facts(c: &Conn<'_>, id: i64, exclude_message: Option<i64>) -> Result<ContactFacts> {
    let contact = get(c, id)?;
    let last: Option<i64> =
        c.0.prepare_cached(
            "SELECT MAX(COALESCE(sent_at, created_at)) FROM messages
             WHERE contact_id = ?1 AND direction = 'out' AND purpose = 'textback'
               AND status NOT IN ('failed', 'cancelled') AND id IS NOT ?2",
        )?
        .query_row(params![id, exclude_message], |r| r.get(0))?;
    let pending: bool =
        c.0.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE contact_id = ?1 AND kind = 'text_back'
                            AND state IN ('pending', 'running'))",
        )?
        .query_row([id], |r| r.get(0))?;
    Ok(ContactFacts {
        opted_out: contact.opted_out_at.is_some(),
        last_text_back_at: last,
        text_back_pending: pending,
    })
}

/// How many contacts are opted out.
pub fn count_opted_out(c: &Conn<'_>) -> Result<i64> {
    Ok(c.0
        .prepare_cached("SELECT COUNT(*) FROM contacts WHERE opted_out_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?)
}

/// The consent changes of a contact, oldest first: (change, source, at).
pub fn consent_history(c: &Conn<'_>, id: i64) -> Result<Vec<(String, String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT change, source, at FROM consent_events WHERE contact_id = ?1 ORDER BY at, id",
    )?;
    let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
