//! SQL for contacts, their consent (opt-out) and the audit trail of consent changes.

use super::{optional, Conn, Cursor, Page, Result};
use crate::policy::{ContactFacts, ConversationFacts};
use rusqlite::params;

/// A stored contact and the state of their conversation.
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
    /// new, texted, replied, booked, lost or opted_out.
    pub state: String,
    /// Marked urgent by a keyword rule.
    pub urgent: bool,
    /// They wrote last and nobody has answered.
    pub needs_reply: bool,
    /// Blocked by staff: never texted.
    pub blocked_at: Option<i64>,
    /// When they booked.
    pub booked_at: Option<i64>,
    /// What the booking is worth, in cents.
    pub booked_value_cents: Option<i64>,
    /// Their last inbound text.
    pub last_inbound_at: Option<i64>,
    /// Staff's last reply by hand.
    pub last_staff_reply_at: Option<i64>,
    /// When the business last reached them by phone.
    pub reached_at: Option<i64>,
    /// First seen.
    pub created_at: i64,
    /// A name staff gave them.
    pub name: Option<String>,
    /// Something new since staff last looked.
    pub unread: bool,
    /// Staff's notes about them.
    pub notes: Option<String>,
    /// Comma-separated tags (staff, customer, …).
    pub tags: String,
    /// Their email, from a booking or staff (bookings without a phone are matched on it).
    pub email: Option<String>,
}

/// The columns `from_row` reads, as a literal (see `calls`).
macro_rules! columns {
    () => {
        "id, business_id, phone, opted_out_at, state, urgent, needs_reply, blocked_at, booked_at, \
    booked_value_cents, last_inbound_at, last_staff_reply_at, reached_at, created_at, name, unread, notes, tags, email"
    };
}
const COLUMNS: &str = columns!();

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: r.get(0)?,
        business_id: r.get(1)?,
        phone: r.get(2)?,
        opted_out_at: r.get(3)?,
        state: r.get(4)?,
        urgent: r.get(5)?,
        needs_reply: r.get(6)?,
        blocked_at: r.get(7)?,
        booked_at: r.get(8)?,
        booked_value_cents: r.get(9)?,
        last_inbound_at: r.get(10)?,
        last_staff_reply_at: r.get(11)?,
        reached_at: r.get(12)?,
        created_at: r.get(13)?,
        name: r.get(14)?,
        unread: r.get(15)?,
        notes: r.get(16)?,
        tags: r.get(17)?,
        email: r.get(18)?,
    })
}

/// Finds or creates the contact for a number at a business; returns its id and whether it is new.
pub fn upsert(c: &Conn<'_>, business_id: &str, phone: &str, now: i64) -> Result<(i64, bool)> {
    let created = c.0.prepare_cached(
        "INSERT INTO contacts (business_id, phone, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (business_id, phone) DO NOTHING",
    )?
    .execute(params![business_id, phone, now])?;
    if created == 1 {
        return Ok((c.0.last_insert_rowid(), true));
    }
    let id =
        c.0.prepare_cached("SELECT id FROM contacts WHERE business_id = ?1 AND phone = ?2")?
            .query_row(params![business_id, phone], |r| r.get(0))?;
    Ok((id, false))
}

/// The contact with this id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Contact> {
    optional(
        c.0.prepare_cached(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE id = ?1"
        ))?
        .query_row([id], from_row),
    )?
    .ok_or(super::Error::NotFound)
}

/// The contact for a number at a business, if known.
pub fn find(c: &Conn<'_>, business_id: &str, phone: &str) -> Result<Option<Contact>> {
    optional(
        c.0.prepare_cached(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE business_id = ?1 AND phone = ?2"
        ))?
        .query_row(params![business_id, phone], from_row),
    )
}

/// Sets the conversation state.
pub fn set_state(c: &Conn<'_>, id: i64, state: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET state = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, state, now])?;
    Ok(())
}

/// A text-back went out: a new conversation starts, unless they opted out.
pub fn note_texted(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET state = 'texted', updated_at = ?2 WHERE id = ?1 AND state <> 'opted_out'",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// They texted: they replied (unless booked, lost or opted out) and wait for an answer.
pub fn note_inbound(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET last_inbound_at = ?2, needs_reply = 1, unread = 1, updated_at = ?2,
                state = CASE WHEN state IN ('new', 'texted') THEN 'replied' ELSE state END
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Staff answered by hand.
pub fn note_staff_reply(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET last_staff_reply_at = ?2, needs_reply = 0, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// The business reached them by phone.
pub fn note_reached(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET reached_at = ?2, updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Marks the conversation urgent (or not).
pub fn set_urgent(c: &Conn<'_>, id: i64, urgent: bool, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET urgent = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, urgent, now])?;
    Ok(())
}

/// Blocks (or unblocks) a contact.
pub fn set_blocked(c: &Conn<'_>, id: i64, blocked: bool, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET blocked_at = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, blocked.then_some(now), now])?;
    Ok(())
}

/// Records a booking and what it is worth.
pub fn mark_booked(c: &Conn<'_>, id: i64, value_cents: Option<i64>, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET state = 'booked', booked_at = ?2, booked_value_cents = ?3, needs_reply = 0,
                updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now, value_cents])?;
    Ok(())
}

/// A booking that made the conversation booked was cancelled: it goes back to where it was (replied if
/// they ever wrote, else texted).
pub fn unbook(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET state = CASE WHEN last_inbound_at IS NOT NULL THEN 'replied' ELSE 'texted' END,
                booked_at = NULL, booked_value_cents = NULL, updated_at = ?2
         WHERE id = ?1 AND state = 'booked'",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// The contact with this email at a business (lower case), if exactly one has it.
pub fn find_by_email(c: &Conn<'_>, business_id: &str, email: &str) -> Result<Option<Contact>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE business_id = ?1 AND email = ?2 LIMIT 2"
    ))?;
    let found: Vec<Contact> = st
        .query_map(params![business_id, email.trim().to_lowercase()], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(match found.len() {
        1 => found.into_iter().next(),
        _ => None,
    })
}

/// Sets or clears a contact's email (lower case), as staff wrote it.
pub fn set_email(c: &Conn<'_>, id: i64, email: Option<&str>, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET email = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, email.map(|e| e.trim().to_lowercase()), now])?;
    Ok(())
}

/// Sets a contact's email (lower case) when it has none.
pub fn note_email(c: &Conn<'_>, id: i64, email: &str, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET email = ?2, updated_at = ?3 WHERE id = ?1 AND email IS NULL",
    )?
    .execute(params![id, email.trim().to_lowercase(), now])?;
    Ok(())
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
        "UPDATE contacts SET state = CASE WHEN ?2 THEN 'opted_out'
                                          WHEN state = 'opted_out' THEN 'replied' ELSE state END
         WHERE id = ?1",
    )?
    .execute(params![id, opted_out])?;
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

/// Line types are trusted this long (numbers get ported).
const LINE_TYPE_TTL_MS: i64 = 180 * 24 * 3_600_000;

/// The cached line type of a number, if checked within 180 days.
pub fn line_type(c: &Conn<'_>, phone: &str, now: i64) -> Result<Option<String>> {
    optional(
        c.0.prepare_cached(
            "SELECT line_type FROM line_types WHERE phone = ?1 AND checked_at > ?2",
        )?
        .query_row(params![phone, now - LINE_TYPE_TTL_MS], |r| r.get(0)),
    )
}

/// Caches a number's line type (`source`: `lookup`, or the error code that revealed it).
pub fn set_line_type(
    c: &Conn<'_>,
    phone: &str,
    line_type: &str,
    source: &str,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "INSERT INTO line_types (phone, line_type, source, checked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (phone) DO UPDATE SET line_type = ?2, source = ?3, checked_at = ?4",
    )?
    .execute(params![phone, line_type, source, now])?;
    Ok(())
}

/// Whether a line type can receive texts.
pub fn is_textable_line(line_type: &str) -> bool {
    !matches!(line_type, "landline" | "pager")
}

/// Automatic texts (text-backs, follow-ups, keyword replies) a contact got in the 24 hours before `now`.
pub fn automatic_today(c: &Conn<'_>, id: i64, now: i64) -> Result<u32> {
    Ok(c.0
        .prepare_cached(
            "SELECT COUNT(*) FROM messages
             WHERE contact_id = ?1 AND direction = 'out' AND purpose IN ('textback', 'followup', 'keyword')
               AND status NOT IN ('failed', 'cancelled') AND created_at > ?2",
        )?
        .query_row(params![id, now - 24 * 3_600_000], |r| r.get(0))?)
}

/// Whether the number's cached line type says it cannot take texts (a landline or pager).
fn known_landline(c: &Conn<'_>, phone: &str, now: i64) -> Result<bool> {
    Ok(line_type(c, phone, now)?.is_some_and(|t| !is_textable_line(&t)))
}

/// [`facts`] for a contact created in this transaction, which has no history yet: only the line type,
/// cached by number, can be known. Saves four queries on the busiest write, a new caller's missed call.
pub fn facts_of_new(c: &Conn<'_>, phone: &str, now: i64) -> Result<ContactFacts> {
    Ok(ContactFacts {
        opted_out: false,
        last_text_back_at: None,
        text_back_pending: false,
        blocked: false,
        new_number: true,
        landline: known_landline(c, phone, now)?,
        automatic_today: 0,
    })
}

/// What the text-back decision needs to know about a contact. `exclude_message` leaves out the message a
/// retried send already owns.
pub fn facts(
    c: &Conn<'_>,
    id: i64,
    exclude_message: Option<i64>,
    now: i64,
) -> Result<ContactFacts> {
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
    let landline = known_landline(c, &contact.phone, now)?;
    Ok(ContactFacts {
        opted_out: contact.opted_out_at.is_some(),
        last_text_back_at: last,
        text_back_pending: pending,
        blocked: contact.blocked_at.is_some(),
        new_number: false,
        landline,
        automatic_today: automatic_today(c, id, now)?,
    })
}

/// Where the conversation stands for automatic texts; `since` is when the current sequence began.
pub fn conversation(c: &Conn<'_>, id: i64, since: i64, now: i64) -> Result<ConversationFacts> {
    let contact = get(c, id)?;
    Ok(ConversationFacts {
        opted_out: contact.opted_out_at.is_some(),
        blocked: contact.blocked_at.is_some(),
        replied: contact.last_inbound_at.is_some_and(|t| t >= since),
        booked: contact.state == "booked",
        lost: contact.state == "lost",
        reached: contact.reached_at.is_some_and(|t| t >= since),
        last_staff_reply_at: contact.last_staff_reply_at,
        automatic_today: automatic_today(c, id, now)?,
    })
}

/// Whether the contact is returning: they texted or booked before `before`.
pub fn returning(c: &Conn<'_>, id: i64, before: i64) -> Result<bool> {
    let contact = get(c, id)?;
    Ok(contact.booked_at.is_some_and(|t| t < before)
        || contact.last_inbound_at.is_some_and(|t| t < before))
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

/// Conversations by state, plus the urgent, needs-reply and booked-value totals.
pub fn conversation_counts(c: &Conn<'_>) -> Result<Vec<(String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT state, COUNT(*) FROM contacts GROUP BY state
         UNION ALL SELECT 'urgent', COUNT(*) FROM contacts WHERE urgent = 1
         UNION ALL SELECT 'needs reply', COUNT(*) FROM contacts WHERE needs_reply = 1
         UNION ALL SELECT 'booked cents', COALESCE(SUM(booked_value_cents), 0) FROM contacts WHERE state = 'booked'",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A row of the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    /// The contact.
    pub id: i64,
    /// Its business.
    pub business_id: String,
    /// Number.
    pub phone: String,
    /// Name, if staff gave one.
    pub name: Option<String>,
    /// Conversation state.
    pub state: String,
    /// Urgent flag.
    pub urgent: bool,
    /// Waiting for an answer.
    pub needs_reply: bool,
    /// Something new since staff last looked.
    pub unread: bool,
    /// The latest message.
    pub last_body: Option<String>,
    /// The latest activity.
    pub last_at: i64,
    /// What the booked job is worth, when staff said.
    pub booked_value_cents: Option<i64>,
    /// The latest message is ours.
    pub last_from_us: bool,
}

/// Inbox filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxFilter {
    /// Every conversation.
    All,
    /// Waiting for an answer.
    NeedsReply,
    /// Marked urgent.
    Urgent,
    /// Booked.
    Booked,
    /// Opted out.
    OptedOut,
}

impl InboxFilter {
    /// The filter a URL names (`needs-reply`, `urgent`, `booked`, `opted-out`); anything else is all.
    pub fn parse(name: &str) -> Self {
        match name {
            "needs-reply" => Self::NeedsReply,
            "urgent" => Self::Urgent,
            "booked" => Self::Booked,
            "opted-out" => Self::OptedOut,
            _ => Self::All,
        }
    }
}

/// Conversations of some businesses, urgent and needs-reply first, then newest first; a page of `limit`
/// starting after `before`.
pub fn inbox(
    c: &Conn<'_>,
    businesses: &[String],
    filter: InboxFilter,
    before: Option<&Cursor>,
    limit: usize,
) -> Result<Page<InboxRow>> {
    let condition = match filter {
        InboxFilter::All => "1",
        InboxFilter::NeedsReply => "k.needs_reply = 1",
        InboxFilter::Urgent => "k.urgent = 1",
        InboxFilter::Booked => "k.state = 'booked'",
        InboxFilter::OptedOut => "k.opted_out_at IS NOT NULL",
    };
    let mut st = c.0.prepare_cached(&format!(
        "SELECT * FROM (
           SELECT k.id, k.business_id, k.phone, k.name, k.state, k.urgent, k.needs_reply, k.unread,
                  (SELECT m.body FROM messages m WHERE m.contact_id = k.id ORDER BY m.created_at DESC, m.id DESC LIMIT 1),
                  MAX(COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.contact_id = k.id), 0),
                      COALESCE((SELECT MAX(l.started_at) FROM calls l WHERE l.contact_id = k.id), 0)) AS last_at,
                  k.booked_value_cents,
                  (SELECT m.direction FROM messages m WHERE m.contact_id = k.id ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
           FROM contacts k
           WHERE k.business_id IN (SELECT value FROM json_each(?1)) AND {condition})
         WHERE last_at > 0 AND (?2 IS NULL OR (urgent, needs_reply, last_at, id) < (?3, ?4, ?5, ?6))
         ORDER BY urgent DESC, needs_reply DESC, last_at DESC, id DESC LIMIT ?7"
    ))?;
    let at = |i: usize| before.map(|b| b.at(i));
    let rows = st.query_map(
        params![
            super::ids_json(businesses),
            before.map(|_| 1),
            at(0),
            at(1),
            at(2),
            at(3),
            super::sql_limit(limit)
        ],
        |r| {
            Ok(InboxRow {
                id: r.get(0)?,
                business_id: r.get(1)?,
                phone: r.get(2)?,
                name: r.get(3)?,
                state: r.get(4)?,
                urgent: r.get(5)?,
                needs_reply: r.get(6)?,
                unread: r.get(7)?,
                last_body: r.get(8)?,
                last_at: r.get(9)?,
                booked_value_cents: r.get(10)?,
                last_from_us: r.get::<_, Option<String>>(11)?.as_deref() == Some("out"),
            })
        },
    )?;
    let rows: Vec<InboxRow> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(Page::of(rows, limit, |r| {
        Cursor::new(vec![
            i64::from(r.urgent),
            i64::from(r.needs_reply),
            r.last_at,
            r.id,
        ])
    }))
}

/// Staff opened the conversation.
pub fn mark_read(c: &Conn<'_>, id: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE contacts SET unread = 0 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Adds a note to the conversation.
pub fn add_note(c: &Conn<'_>, id: i64, author: &str, body: &str, now: i64) -> Result<()> {
    c.0.prepare_cached(
        "INSERT INTO notes (contact_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, author, body, now])?;
    Ok(())
}

/// The conversation's notes, oldest first: (author, body, at).
pub fn notes(c: &Conn<'_>, id: i64) -> Result<Vec<(String, String, i64)>> {
    let mut st = c.0.prepare_cached(
        "SELECT author, body, created_at FROM notes WHERE contact_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Contacts of some businesses whose number or name contains `q` (all when empty), newest first; a page of
/// `limit` starting after `before`.
pub fn search(
    c: &Conn<'_>,
    businesses: &[String],
    q: &str,
    before: Option<&Cursor>,
    limit: usize,
) -> Result<Page<Contact>> {
    let like = format!(
        "%{}%",
        q.trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    super::time_page(
        c,
        &format!(
            "SELECT {COLUMNS} FROM contacts
             WHERE business_id IN (SELECT value FROM json_each(?1))
               AND (phone LIKE ?2 ESCAPE '\\' OR COALESCE(name, '') LIKE ?2 ESCAPE '\\')
               AND (?3 IS NULL OR (created_at, id) < (?4, ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        ),
        businesses,
        &like,
        before,
        limit,
        from_row,
        |k| (k.created_at, k.id),
    )
}

/// Updates what staff know about a contact.
pub fn set_details(
    c: &Conn<'_>,
    id: i64,
    name: Option<&str>,
    notes: Option<&str>,
    tags: &str,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "UPDATE contacts SET name = ?2, notes = ?3, tags = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, name, notes, tags, now])?;
    Ok(())
}

/// Erases a contact and everything that names them: their messages, notes, consent trail, bookings, outbound
/// events and pending jobs go; their calls stay for the figures, with the number removed; staff alerts that quoted them go too.
pub fn erase(c: &Conn<'_>, id: i64) -> Result<()> {
    let contact = get(c, id)?;
    c.0.prepare_cached(
        "UPDATE calls SET from_raw = 'erased', recording_url = NULL WHERE contact_id = ?1",
    )?
    .execute([id])?;
    c.0.prepare_cached(
        "DELETE FROM jobs WHERE contact_id = ?1 AND state IN ('pending', 'running')",
    )?
    .execute([id])?;
    c.0.prepare_cached("DELETE FROM messages WHERE contact_id IS NULL AND instr(body, ?1) > 0")?
        .execute([&contact.phone])?;
    c.0.prepare_cached("DELETE FROM line_types WHERE phone = ?1")?
        .execute([&contact.phone])?;
    // Bookings and outbound events that name the number without being linked to the contact.
    c.0.prepare_cached("DELETE FROM bookings WHERE business_id = ?1 AND phone = ?2")?
        .execute([&contact.business_id, &contact.phone])?;
    c.0.prepare_cached(
        "DELETE FROM outbound_events WHERE business_id = ?1 AND instr(body, ?2) > 0",
    )?
    .execute([&contact.business_id, &contact.phone])?;
    c.0.prepare_cached("DELETE FROM contacts WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
