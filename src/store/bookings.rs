//! SQL for bookings reported by booking tools (Cal.com, Calendly, the generic endpoint).

use super::{optional, Conn, Result};
use rusqlite::{params, Row};

/// A stored booking.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Booking {
    /// Row id.
    pub id: i64,
    /// The business.
    pub business_id: String,
    /// `calcom`, `calendly` or `generic`.
    pub source: String,
    /// The tool's id for it.
    pub external_id: String,
    /// The contact it matched, if any.
    pub contact_id: Option<i64>,
    /// The number it carried (E.164 when it could be read).
    pub phone: Option<String>,
    /// The email it carried.
    pub email: Option<String>,
    /// The name it carried.
    pub name: Option<String>,
    /// The event type or title.
    pub title: Option<String>,
    /// What it is worth, in cents, when the tool said.
    pub value_cents: Option<i64>,
    /// When the appointment starts.
    pub starts_at: Option<i64>,
    /// booked, cancelled or rescheduled.
    pub state: String,
    /// First reported.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, business_id, source, external_id, contact_id, phone, email, name, title, \
    value_cents, starts_at, state, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Booking> {
    Ok(Booking {
        id: r.get(0)?,
        business_id: r.get(1)?,
        source: r.get(2)?,
        external_id: r.get(3)?,
        contact_id: r.get(4)?,
        phone: r.get(5)?,
        email: r.get(6)?,
        name: r.get(7)?,
        title: r.get(8)?,
        value_cents: r.get(9)?,
        starts_at: r.get(10)?,
        state: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// A booking to record.
pub struct NewBooking<'a> {
    /// The business.
    pub business_id: &'a str,
    /// `calcom`, `calendly` or `generic`.
    pub source: &'a str,
    /// The tool's id for it.
    pub external_id: &'a str,
    /// The contact it matched.
    pub contact_id: Option<i64>,
    /// Its number.
    pub phone: Option<&'a str>,
    /// Its email.
    pub email: Option<&'a str>,
    /// Its name.
    pub name: Option<&'a str>,
    /// Its title.
    pub title: Option<&'a str>,
    /// Its value in cents.
    pub value_cents: Option<i64>,
    /// When it starts.
    pub starts_at: Option<i64>,
    /// booked or cancelled.
    pub state: &'a str,
}

/// Records a booking; `None` when the tool reported it before (the same booking delivered twice).
pub fn insert(c: &Conn<'_>, b: &NewBooking<'_>, now: i64) -> Result<Option<i64>> {
    let n = c.0.prepare_cached(
        "INSERT INTO bookings (business_id, source, external_id, contact_id, phone, email, name, title,
                               value_cents, starts_at, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
         ON CONFLICT (business_id, source, external_id) DO NOTHING",
    )?
    .execute(params![
        b.business_id,
        b.source,
        b.external_id,
        b.contact_id,
        b.phone,
        b.email,
        b.name,
        b.title,
        b.value_cents,
        b.starts_at,
        b.state,
        now
    ])?;
    Ok((n == 1).then(|| c.0.last_insert_rowid()))
}

/// A booking by the tool's id.
pub fn find(
    c: &Conn<'_>,
    business_id: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Booking>> {
    optional(
        c.0.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM bookings WHERE business_id = ?1 AND source = ?2 AND external_id = ?3"
        ))?
        .query_row(params![business_id, source, external_id], from_row),
    )
}

/// Changes a booking's state.
pub fn set_state(c: &Conn<'_>, id: i64, state: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE bookings SET state = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, state, now])?;
    Ok(())
}

/// How many of a contact's bookings still stand.
pub fn standing(c: &Conn<'_>, contact_id: i64) -> Result<i64> {
    Ok(c.0
        .prepare_cached("SELECT COUNT(*) FROM bookings WHERE contact_id = ?1 AND state = 'booked'")?
        .query_row([contact_id], |r| r.get(0))?)
}

/// A contact's bookings, oldest first.
pub fn of_contact(c: &Conn<'_>, contact_id: i64) -> Result<Vec<Booking>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE contact_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([contact_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest bookings of some businesses, newest first.
pub fn recent(c: &Conn<'_>, businesses: &[String], limit: usize) -> Result<Vec<Booking>> {
    let mut st = c.0.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE business_id IN (SELECT value FROM json_each(?1))
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(
        params![
            super::ids_json(businesses),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
