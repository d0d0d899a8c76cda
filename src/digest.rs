//! The daily digest: at each business's `digest` time (a cron expression in its time zone), yesterday's
//! missed calls, texts, replies, bookings and recovered revenue, what failed and who is waiting for a reply,
//! emailed to the notify list in plain text and HTML. Each run is a durable job that queues the emails and
//! the next run in one transaction. Depends on store, config, cron, email and report.

use crate::clock::Millis;
use crate::config::{BusinessConfig, Config};
use crate::email::Email;
use crate::model::Job;
use crate::periodic::{keep_in_step, Queued};
use crate::store::jobs::{JobRow, NewJob};
use crate::store::reports::Day;
use crate::store::{jobs, reports, Conn, Result};
use chrono::Duration;

/// Queues each business's next digest when none is queued, and calls off queued runs its schedule no
/// longer has (the file changed). Cheap; the scheduler calls it every minute.
pub fn ensure(c: &Conn<'_>, config: &Config, now: Millis) -> Result<()> {
    let queued = jobs::pending_of_kind(c, "digest")?;
    for biz in &config.businesses {
        let schedule = biz
            .digest
            .as_deref()
            .and_then(|d| crate::cron::Cron::parse(d).ok());
        let runs: Vec<Queued> = queued
            .iter()
            .filter_map(|job| match &job.job {
                Job::Digest { business_id, at } if business_id == &biz.id => Some(Queued {
                    job_id: job.id,
                    at: *at,
                    running: job.state == "running",
                }),
                _ => None,
            })
            .collect();
        keep_in_step(c, &runs, schedule.as_ref(), biz.tz(), "digest", now, |at| {
            queue(c, &biz.id, at, now)
        })?;
    }
    Ok(())
}

fn queue(c: &Conn<'_>, business_id: &str, at: Millis, now: Millis) -> Result<()> {
    jobs::enqueue(
        c,
        &NewJob {
            job: Job::Digest {
                business_id: business_id.to_string(),
                at,
            },
            dedupe_key: Some(&format!("digest:{business_id}:{at}")),
            contact_id: None,
            message_id: None,
            run_at: at,
            max_attempts: 1,
        },
        now,
    )?;
    Ok(())
}

/// The local day before the one `at` falls on, as `[start, end)` instants, and its date.
pub fn yesterday(tz: crate::zone::Tz, at: Millis) -> (Millis, Millis, chrono::NaiveDate) {
    let today = tz.local(at).date();
    let day = today - Duration::days(1);
    let start = |d: chrono::NaiveDate| {
        crate::hours::instant_of(tz, d.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    (start(day), start(today), day)
}

/// Writes a digest run's emails and queues the next run.
pub fn run(
    c: &Conn<'_>,
    config: &Config,
    public_url: &str,
    job: &JobRow,
    business_id: &str,
    at: Millis,
    now: Millis,
) -> Result<()> {
    let Some(biz) = config.business(business_id) else {
        return jobs::finish(
            c,
            job.id,
            "cancelled",
            Some("the business is no longer configured"),
            now,
        );
    };
    let Some(schedule) = biz
        .digest
        .as_deref()
        .and_then(|d| crate::cron::Cron::parse(d).ok())
    else {
        return jobs::finish(
            c,
            job.id,
            "cancelled",
            Some("the business has no digest any more"),
            now,
        );
    };
    if !schedule.fires_at(biz.tz(), at) {
        jobs::finish(
            c,
            job.id,
            "cancelled",
            Some("the digest schedule changed"),
            now,
        )?;
        return ensure(c, config, now);
    }
    let (from, to, date) = yesterday(biz.tz(), at);
    let figures = reports::day(c, &biz.id, from, to)?;
    let (subject, text, html) = render(
        biz,
        &date.format("%A %-d %B %Y").to_string(),
        &figures,
        public_url,
    );
    for person in &biz.notify {
        let Some(addr) = &person.email else { continue };
        jobs::enqueue(
            c,
            &NewJob {
                job: Job::Email(Email::new(addr, &subject, text.clone(), Some(html.clone()))),
                dedupe_key: Some(&format!("digest:{}:{at}:{}", biz.id, addr.trim())),
                contact_id: None,
                message_id: None,
                run_at: now,
                max_attempts: crate::events::MAX_ATTEMPTS,
            },
            now,
        )?;
    }
    jobs::finish(c, job.id, "done", None, now)?;
    if let Some(next) = schedule.next_after(biz.tz(), at.max(now)) {
        queue(c, &biz.id, next, now)?;
    }
    Ok(())
}

fn money(cents: i64) -> String {
    crate::report::dollars(cents)
}

/// The digest's subject, plain text and HTML (every value escaped).
pub fn render(
    biz: &BusinessConfig,
    date: &str,
    day: &Day,
    public_url: &str,
) -> (String, String, String) {
    #[allow(clippy::cast_possible_truncation)]
    let average = (biz.average_ticket * 100.0).round() as i64;
    let revenue: i64 = day.booked.iter().map(|v| v.unwrap_or(average)).sum();
    let subject = format!(
        "{}: {} missed call{}, {} booked, {} recovered ({date})",
        biz.name,
        day.missed_calls,
        if day.missed_calls == 1 { "" } else { "s" },
        day.booked.len(),
        money(revenue)
    );
    let inbox = format!("{public_url}/");
    let lines: Vec<(String, String)> = vec![
        ("Missed calls".into(), day.missed_calls.to_string()),
        ("Texts sent".into(), day.texts_sent.to_string()),
        ("Replies".into(), day.replies.to_string()),
        ("Booked".into(), day.booked.len().to_string()),
        ("Recovered revenue".into(), money(revenue)),
        (
            "Booked, not from a text-back".into(),
            day.booked_elsewhere.to_string(),
        ),
    ];
    let mut text = format!("{} - {date}\n\n", biz.name);
    for (k, v) in &lines {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{} &middot; {}</h2><table>",
        esc(&biz.name),
        esc(date)
    );
    for (k, v) in &lines {
        html.push_str(&format!(
            "<tr><td>{}</td><td><b>{}</b></td></tr>",
            esc(k),
            esc(v)
        ));
    }
    html.push_str("</table>");
    let mut section = |title: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        text.push_str(&format!("\n{title}:\n"));
        html.push_str(&format!("<h3>{}</h3><ul>", esc(title)));
        for item in items {
            text.push_str(&format!("  - {item}\n"));
            html.push_str(&format!("<li>{}</li>", esc(item)));
        }
        html.push_str("</ul>");
    };
    let failed: Vec<String> = day
        .failed
        .iter()
        .map(|(to, why)| format!("{}: {why}", crate::display::phone(to, biz.sender())))
        .collect();
    section("Texts that failed", &failed);
    if day.failed_deliveries > 0 {
        section(
            "Integrations",
            &[format!(
                "{} event deliveries failed: see Settings, Integrations",
                day.failed_deliveries
            )],
        );
    }
    let waiting: Vec<String> = day
        .waiting
        .iter()
        .map(|w| {
            if w.starts_with('+') {
                crate::display::phone(w, biz.sender())
            } else {
                w.clone()
            }
        })
        .collect();
    section("Waiting for a reply", &waiting);
    text.push_str(&format!("\nOpen the inbox: {inbox}\n"));
    html.push_str(&format!(
        "<p><a href=\"{}\">Open the inbox</a></p></body></html>",
        esc(&inbox)
    ));
    (subject, text, html)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yesterday_is_the_local_day_before_even_across_daylight_saving() {
        let tz: crate::zone::Tz = "America/New_York".parse().unwrap();
        // (run at, local day reported, its length in hours)
        let cases: &[(&str, &str, i64)] = &[
            ("2026-03-09T11:00:00Z", "2026-03-08", 23),
            ("2026-11-02T12:00:00Z", "2026-11-01", 25),
            ("2026-06-02T11:00:00Z", "2026-06-01", 24),
        ];
        for (at, want, hours) in cases {
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_millis();
            let (from, to, day) = yesterday(tz, at);
            assert_eq!(day.to_string(), *want, "{at}");
            assert_eq!((to - from) / 3_600_000, *hours, "{at}");
        }
    }

    #[test]
    fn the_digest_escapes_what_staff_and_callers_wrote() {
        let mut biz = crate::config::Config::default().businesses[0].clone();
        biz.name = "<b>Acme & Co".into();
        let biz = &biz;
        let day = Day {
            missed_calls: 3,
            booked: vec![Some(38_500), None],
            waiting: vec!["<script>x</script>".into()],
            ..Day::default()
        };
        let (subject, text, html) =
            render(biz, "Sunday 1 November 2026", &day, "https://t.example");
        assert!(subject.contains("3 missed calls, 2 booked"), "{subject}");
        assert!(text.contains("<script>x</script>"), "{text}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("https://t.example/"), "{html}");
        assert!(
            html.contains("&lt;b&gt;Acme &amp; Co") && !html.contains("<b>Acme"),
            "{html}"
        );
    }
}
