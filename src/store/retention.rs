//! SQL for retention and export: old message bodies redacted and old calls and receipts pruned, a batch
//! at a time (each batch its own short transaction, so webhooks are never held up), consent records kept;
//! and a business's data as JSON lines, written by SQLite's own `json_object`.

use super::{Conn, Result};
use rusqlite::params;

/// What a redacted message body reads.
pub const REDACTED: &str = "[removed: older than the retention period]";

/// Redacts up to `batch` message bodies written before `before`; returns how many.
pub fn redact_bodies(c: &Conn<'_>, before: i64, batch: usize) -> Result<usize> {
    Ok(c.0.prepare_cached(
        "UPDATE messages SET body = ?3 WHERE id IN
           (SELECT id FROM messages WHERE created_at < ?1 AND body <> ?3 ORDER BY created_at LIMIT ?2)",
    )?
    .execute(params![before, i64::try_from(batch).unwrap_or(i64::MAX), REDACTED])?)
}

/// Deletes up to `batch` calls (with their reports) that started before `before`, and delivery receipts
/// from before it; returns how many rows went. Contacts and their consent history stay.
pub fn prune_calls(c: &Conn<'_>, before: i64, batch: usize) -> Result<usize> {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let calls =
        c.0.prepare_cached(
            "DELETE FROM calls WHERE id IN
           (SELECT id FROM calls WHERE started_at < ?1 ORDER BY started_at LIMIT ?2)",
        )?
        .execute(params![before, limit])?;
    // WITHOUT ROWID: by key.
    let receipts =
        c.0.prepare_cached(
            "DELETE FROM delivery_receipts WHERE (provider, message_sid, status) IN
           (SELECT provider, message_sid, status FROM delivery_receipts WHERE at < ?1 LIMIT ?2)",
        )?
        .execute(params![before, limit])?;
    Ok(calls + receipts)
}

/// Every row of one business (or all) as JSON objects, one per line, oldest first within each kind:
/// contacts, their consent history, calls, messages, bookings. `f` gets each line.
pub fn export(
    c: &Conn<'_>,
    business: Option<&str>,
    f: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> Result<usize> {
    const QUERIES: [&str; 5] = [
        "SELECT json_object('kind', 'contact', 'id', id, 'business', business_id, 'phone', phone,
                'name', name, 'email', email, 'state', state, 'opted_out_at', opted_out_at, 'blocked_at', blocked_at,
                'booked_at', booked_at, 'booked_value_cents', booked_value_cents, 'tags', tags, 'notes', notes,
                'created_at', created_at)
         FROM contacts WHERE ?1 IS NULL OR business_id = ?1 ORDER BY id",
        "SELECT json_object('kind', 'consent', 'contact_id', e.contact_id, 'phone', k.phone, 'change', e.change,
                'source', e.source, 'detail', e.detail, 'at', e.at)
         FROM consent_events e JOIN contacts k ON k.id = e.contact_id
         WHERE ?1 IS NULL OR k.business_id = ?1 ORDER BY e.id",
        "SELECT json_object('kind', 'call', 'id', id, 'business', business_id, 'provider', provider,
                'call_id', call_sid, 'contact_id', contact_id, 'from', from_raw, 'to', to_number, 'state', state,
                'miss_reason', miss_reason, 'duration_secs', duration_secs, 'text_back', textback,
                'text_back_reason', textback_reason, 'started_at', started_at)
         FROM calls WHERE ?1 IS NULL OR business_id = ?1 ORDER BY id",
        "SELECT json_object('kind', 'message', 'id', id, 'business', business_id, 'contact_id', contact_id,
                'call_id', call_id, 'direction', direction, 'purpose', purpose, 'from', from_number,
                'to', to_number, 'body', body, 'status', status, 'error_code', error_code,
                'created_at', created_at, 'sent_at', sent_at)
         FROM messages WHERE ?1 IS NULL OR business_id = ?1 ORDER BY id",
        "SELECT json_object('kind', 'booking', 'id', id, 'business', business_id, 'source', source,
                'external_id', external_id, 'contact_id', contact_id, 'phone', phone, 'email', email,
                'name', name, 'title', title, 'value_cents', value_cents, 'starts_at', starts_at,
                'state', state, 'created_at', created_at)
         FROM bookings WHERE ?1 IS NULL OR business_id = ?1 ORDER BY id",
    ];
    let mut n = 0;
    for sql in QUERIES {
        let mut st = c.0.prepare(sql)?;
        let mut rows = st.query([business])?;
        while let Some(row) = rows.next()? {
            let line: String = row.get(0)?;
            f(&line).map_err(|e| super::Error::Io(format!("cannot write the export: {e}")))?;
            n += 1;
        }
    }
    Ok(n)
}
