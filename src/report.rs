//! Figures for people: what `textback status` prints (pending, sent, failed and suppressed texts, read from
//! the database), and the dashboard's funnel, money and chart data (pure aggregation over store rows).

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
    /// Latest follow-ups called off before they were written (a reply, a booking, an opt-out, a call back),
    /// with the contact's number.
    pub called_off: Vec<(jobs::JobRow, Option<String>)>,
    /// Each outbound event endpoint that has had deliveries: (business, URL, how it is doing).
    pub endpoints: Vec<(String, String, crate::store::outbound::Health)>,
    /// Emails that failed, or whose outcome is unclear, in the last 7 days.
    pub failed_emails: Vec<jobs::JobRow>,
    /// The last good scheduled backup (when, where) and a failure since.
    pub backup: crate::backup::Last,
}

/// Reads the status figures.
pub fn read(c: &Conn<'_>, limit: usize) -> Result<Status> {
    read_at(
        c,
        limit,
        crate::clock::to_millis(std::time::SystemTime::now()),
    )
}

/// [`read`] as of `now`.
pub fn read_at(c: &Conn<'_>, limit: usize, now: Millis) -> Result<Status> {
    let day = 24 * 3_600_000;
    let mut endpoints = Vec::new();
    for (business, url) in crate::store::outbound::endpoints(c)? {
        let health = crate::store::outbound::health(c, &business, &url, now - day)?;
        endpoints.push((business, url, health));
    }
    let failed_emails = jobs::failed_since(c, "email", now - 7 * day, limit)?;
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
        backup: crate::backup::last(c)?,
        endpoints,
        failed_emails,
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
            &[
                status::FAILED,
                status::UNKNOWN,
                status::RETRYING,
                status::CHECKING,
            ],
            limit,
        )?,
        suppressed: calls::recent_suppressed(c, limit)?,
        unsent: messages::recent(c, &[status::CANCELLED], 4 * limit)?
            .into_iter()
            .filter(|m| m.purpose != "textback")
            .take(limit)
            .collect(),
        called_off: jobs::recent_cancelled(c, "follow_up", limit)?
            .into_iter()
            .filter(|j| j.message_id.is_none())
            .map(|j| {
                let phone = j
                    .contact_id
                    .and_then(|id| contacts::get(c, id).ok())
                    .map(|k| k.phone);
                (j, phone)
            })
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
    // Only what has something to say is shown.
    if pending > 0 || !s.upcoming.is_empty() {
        let _ = writeln!(out, "Pending texts: {pending}");
    }
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
    if sent > 0 || !s.sent.is_empty() {
        let _ = writeln!(
            out,
            "Sent texts: {sent}{}",
            breakdown(&s.messages, &sent_keys[..5])
        );
    }
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
    let checking = count(&s.messages, status::CHECKING);
    let mut notes = Vec::new();
    if unknown > 0 {
        notes.push(format!("{unknown} whose outcome the provider could not confirm: check them in the provider's console"));
    }
    if checking > 0 {
        notes.push(format!(
            "{checking} being checked with the provider before anything is resent"
        ));
    }
    if failed > 0 || !notes.is_empty() || !s.failed.is_empty() {
        let _ = writeln!(
            out,
            "Failed texts: {failed}{}",
            if notes.is_empty() {
                String::new()
            } else {
                format!(" (and {})", notes.join("; "))
            }
        );
    }
    for m in &s.failed {
        let _ = writeln!(
            out,
            "  {}  to {}  {:<10} {}{}",
            format_utc(m.updated_at),
            m.to_number,
            m.status,
            m.error_code
                .as_ref()
                .map(|c| format!("error {c}: "))
                .unwrap_or_default(),
            m.error_message.as_deref().unwrap_or("")
        );
    }
    let suppressed =
        count(&s.calls, "text-backs suppressed") + count(&s.calls, "text-backs cancelled");
    if suppressed > 0 || !s.suppressed.is_empty() {
        let _ = writeln!(out, "Calls not texted: {suppressed}");
    }
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
    let mut lines: Vec<(Millis, String)> = s
        .unsent
        .iter()
        .map(|m| {
            (
                m.updated_at,
                format!(
                    "  {}  {:<9} to {}  ({})",
                    format_utc(m.updated_at),
                    m.purpose,
                    m.to_number,
                    m.error_message.as_deref().unwrap_or("-")
                ),
            )
        })
        .chain(s.called_off.iter().map(|(j, phone)| {
            (
                j.updated_at,
                format!(
                    "  {}  {:<9} to {}  ({})",
                    format_utc(j.updated_at),
                    "followup",
                    phone.as_deref().unwrap_or("?"),
                    j.last_error.as_deref().unwrap_or("-")
                ),
            )
        }))
        .collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.0));
    if !lines.is_empty() {
        let _ = writeln!(out, "Other automatic texts not sent (latest):");
    }
    for (_, line) in lines {
        let _ = writeln!(out, "{line}");
    }
    let calls = [
        count(&s.calls, "calls missed"),
        count(&s.calls, "calls answered"),
        count(&s.calls, "calls ringing"),
    ];
    if calls.iter().any(|n| *n > 0) {
        let _ = writeln!(
            out,
            "Calls: missed {}, answered {}, ringing {}",
            calls[0], calls[1], calls[2]
        );
    }
    let conv = &s.conversations;
    let cents = count(conv, "booked cents");
    if conv.iter().any(|(_, n)| *n > 0) {
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
    }
    if s.opted_out > 0 {
        let _ = writeln!(out, "Opted-out contacts: {}", s.opted_out);
    }
    let failing: Vec<_> = s.endpoints.iter().filter(|(_, _, h)| h.failing()).collect();
    if !s.endpoints.is_empty() {
        let _ = writeln!(
            out,
            "Outbound event endpoints: {} failing of {}",
            failing.len(),
            s.endpoints.len()
        );
    }
    for (business, url, h) in failing {
        let what = match &h.paused {
            Some(why) => format!("paused: {why}"),
            None => format!(
                "{} being retried, {} failed in the last 24 hours",
                h.retrying, h.failed_recently
            ),
        };
        let _ = writeln!(out, "  {business}  {url}  {what}");
    }
    if let Some((at, path)) = &s.backup.ok {
        let _ = writeln!(out, "Last backup: {} ({path})", format_utc(*at));
    }
    if let Some((at, why)) = &s.backup.failed {
        let _ = writeln!(out, "Backup FAILED at {}: {why}", format_utc(*at));
    }
    if !s.failed_emails.is_empty() {
        let _ = writeln!(
            out,
            "Emails not sent (last 7 days): {}",
            s.failed_emails.len()
        );
    }
    for j in &s.failed_emails {
        if let crate::model::Job::Email(e) = &j.job {
            let _ = writeln!(
                out,
                "  {}  to {}  {}",
                format_utc(j.updated_at),
                e.to,
                j.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    if out.is_empty() {
        out.push_str("Nothing has happened yet: no calls and no texts.\n");
    }
    out
}

/// The dashboard's funnel over missed calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Funnel {
    /// Missed calls that could be texted (suppressed ones are left out).
    pub missed: u32,
    /// Of which texted.
    pub texted: u32,
    /// Of which delivered.
    pub delivered: u32,
    /// Of which the caller replied.
    pub replied: u32,
    /// Of which the caller booked.
    pub booked: u32,
    /// Missed calls not texted on purpose (opted out, landline, staff...), shown apart.
    pub suppressed: u32,
}

/// Money, in cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Money {
    /// Booked values, or bookings times the average ticket where no value was entered.
    pub recovered_cents: i64,
    /// SMS segments sent.
    pub segments: i64,
    /// Segments times the price per segment, in hundredths of a cent.
    pub spend_centicents: i64,
}

/// What a business's figures are weighed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// The value of a booking with no value entered, in cents.
    pub average_ticket_cents: i64,
    /// The price of one SMS segment, in hundredths of a cent.
    pub segment_centicents: i64,
}

/// A business's prices from its config (nothing, for a business no longer configured).
pub fn prices_of(biz: Option<&crate::config::BusinessConfig>) -> Prices {
    #[allow(clippy::cast_possible_truncation)]
    let scaled = |amount: f64, per_dollar: f64| (amount * per_dollar).round() as i64;
    Prices {
        average_ticket_cents: biz.map_or(0, |b| scaled(b.average_ticket, 100.0)),
        segment_centicents: biz.map_or(0, |b| scaled(b.sms_price, 10_000.0)),
    }
}

/// The dashboard's figures for a set of businesses over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// The funnel.
    pub funnel: Funnel,
    /// The money.
    pub money: Money,
    /// Missed and recovered calls per local day, oldest first.
    pub daily: Vec<crate::charts::Day>,
    /// Missed calls by local weekday (Monday first) and hour.
    pub heat: [[u32; 24]; 7],
}

/// Aggregates missed-call rows and segment counts into the dashboard, by local day in `tz`.
pub fn dashboard(
    rows: &[crate::store::reports::CallRow],
    segments: &[(String, i64)],
    prices: impl Fn(&str) -> Prices,
    tz: crate::zone::Tz,
    days: u32,
    now: Millis,
) -> Dashboard {
    use chrono::{Datelike, Timelike};
    let mut funnel = Funnel::default();
    let mut heat = [[0u32; 24]; 7];
    let today = tz.local(now).date();
    let first = today - chrono::Days::new(u64::from(days.saturating_sub(1)));
    let mut daily: Vec<crate::charts::Day> = (0..days)
        .map(|i| crate::charts::Day {
            label: (first + chrono::Days::new(u64::from(i)))
                .format("%m-%d")
                .to_string(),
            missed: 0,
            recovered: 0,
        })
        .collect();
    let mut booked_contacts = std::collections::BTreeMap::new();
    for r in rows {
        if r.textback.as_deref() == Some("suppressed") {
            funnel.suppressed += 1;
            continue;
        }
        funnel.missed += 1;
        let texted = r.textback.as_deref() == Some("sent");
        funnel.texted += u32::from(texted);
        funnel.delivered +=
            u32::from(texted && matches!(r.textback_status.as_deref(), Some("delivered" | "read")));
        funnel.replied += u32::from(texted && r.replied);
        funnel.booked += u32::from(r.booked);
        if let (true, Some(contact)) = (r.booked, r.contact_id) {
            let value = r
                .booked_value_cents
                .unwrap_or(prices(&r.business_id).average_ticket_cents);
            booked_contacts.insert(contact, value);
        }
        let local = tz.local(r.started_at);
        heat[local.weekday().num_days_from_monday() as usize][local.hour() as usize] += 1;
        let index = (local.date() - first).num_days();
        if let Some(day) = usize::try_from(index).ok().and_then(|i| daily.get_mut(i)) {
            day.missed += 1;
            day.recovered += u32::from(r.booked);
        }
    }
    let segments_total: i64 = segments.iter().map(|(_, n)| n).sum();
    let spend = segments
        .iter()
        .map(|(b, n)| n * prices(b).segment_centicents)
        .sum();
    Dashboard {
        funnel,
        money: Money {
            recovered_cents: booked_contacts.values().sum(),
            segments: segments_total,
            spend_centicents: spend,
        },
        daily,
        heat,
    }
}

/// Formats cents as dollars: `$1,234.50`.
pub fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("${grouped}.{:02}", (cents % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reports::CallRow;

    fn row(
        at: Millis,
        textback: &str,
        status: Option<&str>,
        replied: bool,
        booked: bool,
        value: Option<i64>,
        contact: i64,
    ) -> CallRow {
        CallRow {
            business_id: "acme".into(),
            started_at: at,
            textback: Some(textback.into()),
            contact_id: Some(contact),
            textback_status: status.map(str::to_string),
            replied,
            booked,
            booked_value_cents: value,
        }
    }

    #[test]
    fn the_funnel_leaves_suppressed_calls_out_and_values_bookings() {
        // 2026-11-30 (a Monday) 16:30 UTC = 09:30 in Phoenix.
        let monday = 1_796_056_200_000;
        let rows = vec![
            row(
                monday,
                "sent",
                Some("delivered"),
                true,
                true,
                Some(38_500),
                1,
            ),
            row(
                monday + 60_000,
                "sent",
                Some("delivered"),
                true,
                true,
                None,
                2,
            ),
            row(
                monday + 120_000,
                "sent",
                Some("sent"),
                false,
                false,
                None,
                3,
            ),
            row(monday + 180_000, "suppressed", None, false, false, None, 4),
            row(monday + 240_000, "cancelled", None, false, false, None, 5),
        ];
        let prices = |_: &str| Prices {
            average_ticket_cents: 25_000,
            segment_centicents: 83,
        };
        let d = dashboard(
            &rows,
            &[("acme".into(), 10)],
            prices,
            crate::zone::named("America/Phoenix"),
            7,
            monday + 3_600_000,
        );
        assert_eq!(
            d.funnel,
            Funnel {
                missed: 4,
                texted: 3,
                delivered: 2,
                replied: 2,
                booked: 2,
                suppressed: 1
            }
        );
        assert_eq!(d.money.recovered_cents, 38_500 + 25_000);
        assert_eq!(d.money.spend_centicents, 830);
        assert_eq!(d.heat[0][9], 4);
        assert_eq!(d.daily.len(), 7);
        assert_eq!(d.daily[6].label, "11-30");
        assert_eq!((d.daily[6].missed, d.daily[6].recovered), (4, 2));
    }

    #[test]
    fn status_shows_only_sections_with_something_in_them() {
        assert_eq!(
            render(&Status::default(), 0),
            "Nothing has happened yet: no calls and no texts.\n"
        );
        let s = Status {
            opted_out: 2,
            calls: vec![("calls missed".into(), 1)],
            ..Status::default()
        };
        assert_eq!(
            render(&s, 0),
            "Calls: missed 1, answered 0, ringing 0\nOpted-out contacts: 2\n"
        );
    }

    #[test]
    fn money_reads_like_money() {
        let cases = [
            (0, "$0.00"),
            (38_550, "$385.50"),
            (123_456_789, "$1,234,567.89"),
            (5, "$0.05"),
        ];
        for (cents, want) in cases {
            assert_eq!(dollars(cents), want);
        }
    }
}
