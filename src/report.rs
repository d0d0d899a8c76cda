//! What `textback status` prints: pending, sent, failed and suppressed texts, with the latest few of each,
//! read from the database. How an operator on a headless box sees that it works.

use crate::clock::{format_utc, Millis};
use crate::model::status;
use crate::store::{calls, contacts, jobs, messages, Conn, Result};
use std::fmt::Write;

/// Figures and latest rows, as read from the store.
#[derive(Debug, Default)]
pub struct Status {
    /// Jobs by state.
    pub jobs: Vec<(String, i64)>,
    /// Outgoing messages by state.
    pub messages: Vec<(String, i64)>,
    /// Calls by state and text-backs by outcome.
    pub calls: Vec<(String, i64)>,
    /// Opted-out contacts.
    pub opted_out: i64,
    /// Conversations by state and flags.
    pub conversations: Vec<(String, i64)>,
    /// Next pending jobs with their recipient.
    pub upcoming: Vec<(jobs::JobRow, Option<String>)>,
    /// Latest outgoing messages that went out.
    pub sent: Vec<messages::Message>,
    /// Latest failed or unknown messages.
    pub failed: Vec<messages::Message>,
    /// Latest suppressed or cancelled text-backs.
    pub suppressed: Vec<calls::Call>,
    /// Latest other texts called off or decided against (follow-ups, keyword replies, staff replies).
    pub unsent: Vec<messages::Message>,
}

/// Reads the status figures.
pub fn read(c: &Conn<'_>, limit: usize) -> Result<Status> {
    let mut upcoming = Vec::new();
    for job in jobs::upcoming(c, limit)? {
        let phone = match job.contact_id {
            Some(id) => Some(contacts::get(c, id)?.phone),
            None => None,
        };
        upcoming.push((job, phone));
    }
    let sent_states = ["queued", "accepted", "sending", "sent", "delivered", "read"];
    Ok(Status {
        jobs: jobs::counts(c)?,
        messages: messages::outgoing_counts(c)?,
        calls: calls::counts(c)?,
        opted_out: contacts::count_opted_out(c)?,
        conversations: contacts::conversation_counts(c)?,
        upcoming,
        sent: messages::recent(c, &sent_states, limit)?
            .into_iter()
            .filter(|m| m.direction == "out" && m.provider_sid.is_some())
            .collect(),
        failed: messages::recent(
            c,
            &[status::FAILED, status::UNKNOWN, status::RETRYING],
            limit,
        )?,
        suppressed: calls::recent_suppressed(c, limit)?,
        unsent: messages::recent(c, &[status::CANCELLED], 4 * limit)?
            .into_iter()
            .filter(|m| m.purpose != "textback")
            .take(limit)
            .collect(),
    })
}

fn count(list: &[(String, i64)], key: &str) -> i64 {
    list.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

fn sum(list: &[(String, i64)], keys: &[&str]) -> i64 {
    keys.iter().map(|k| count(list, k)).sum()
}

fn breakdown(list: &[(String, i64)], keys: &[&str]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            let n = count(list, k);
            (n > 0).then(|| format!("{k} {n}"))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn excerpt(body: &str) -> String {
    let short: String = body.chars().take(60).collect();
    if short.len() < body.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn relative(at: Millis, now: Millis) -> String {
    let secs = (at - now) / 1000;
    if secs >= 0 {
        format!("in {secs}s")
    } else {
        format!("{}s overdue", -secs)
    }
}

/// Renders the status for a terminal.
pub fn render(s: &Status, now: Millis) -> String {
    let mut out = String::new();
    let sent_keys = ["delivered", "read", "sent", "queued", "accepted", "sending"];
    let pending = count(&s.jobs, "pending") + count(&s.jobs, "running");
    let _ = writeln!(out, "Pending texts: {pending}");
    for (job, phone) in &s.upcoming {
        let _ = writeln!(
            out,
            "  due {} ({})  {:<12} to {}  attempt {}{}",
            format_utc(job.run_at),
            relative(job.run_at, now),
            job.job.kind(),
            phone.as_deref().unwrap_or("?"),
            job.attempts + 1,
            job.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
    let sent = sum(&s.messages, &sent_keys) - count(&s.messages, "sending");
    let _ = writeln!(
        out,
        "Sent texts: {sent}{}",
        breakdown(&s.messages, &sent_keys[..5])
    );
    for m in &s.sent {
        let _ = writeln!(
            out,
            "  {}  {} -> {}  {:<10} \"{}\"",
            format_utc(m.sent_at.unwrap_or(m.created_at)),
            m.from_number,
            m.to_number,
            m.status,
            excerpt(&m.body)
        );
    }
    let failed = sum(&s.messages, &["failed", "undelivered"]);
    let unknown = count(&s.messages, status::UNKNOWN);
    let _ = writeln!(
        out,
        "Failed texts: {failed}{}",
        if unknown > 0 {
            format!(" (and {unknown} whose outcome the provider could not confirm: check them in the provider's console)")
        } else {
            String::new()
        }
    );
    for m in &s.failed {
        let _ = writeln!(
            out,
            "  {}  to {}  {:<10} {}{}",
            format_utc(m.updated_at),
            m.to_number,
            m.status,
            m.error_code
                .map(|c| format!("error {c}: "))
                .unwrap_or_default(),
            m.error_message.as_deref().unwrap_or("")
        );
    }
    let suppressed =
        count(&s.calls, "text-backs suppressed") + count(&s.calls, "text-backs cancelled");
    let _ = writeln!(out, "Calls not texted: {suppressed}");
    for c in &s.suppressed {
        let _ = writeln!(
            out,
            "  {}  call from {}  {} ({})",
            format_utc(c.started_at),
            c.from_raw,
            c.textback.as_deref().unwrap_or("-"),
            c.textback_reason.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(out, "Other automatic texts not sent (latest):");
    for m in &s.unsent {
        let _ = writeln!(
            out,
            "  {}  {:<9} to {}  ({})",
            format_utc(m.updated_at),
            m.purpose,
            m.to_number,
            m.error_message.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        out,
        "Calls: missed {}, answered {}, ringing {}",
        count(&s.calls, "calls missed"),
        count(&s.calls, "calls answered"),
        count(&s.calls, "calls ringing")
    );
    let conv = &s.conversations;
    let cents = count(conv, "booked cents");
    let _ = writeln!(
        out,
        "Conversations: texted {}, replied {}, booked {} (worth {}.{:02}), lost {}; urgent {}, needing a reply {}",
        count(conv, "texted"),
        count(conv, "replied"),
        count(conv, "booked"),
        cents / 100,
        cents % 100,
        count(conv, "lost"),
        count(conv, "urgent"),
        count(conv, "needs reply")
    );
    let _ = writeln!(out, "Opted-out contacts: {}", s.opted_out);
    out
}
