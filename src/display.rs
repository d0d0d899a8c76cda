//! How the admin UI writes times, numbers and states for people: in the business's time zone, relative when
//! recent; numbers in their national format where the business is; states in words. Machine fields (the
//! JSON API, `textback status`) keep UTC and E.164. Pure.

use crate::clock::Millis;
use crate::zone::Tz;
use chrono::Datelike;

/// When something happened, as a list shows it: "now", "5 min", "14:05" today, "Yesterday 16:05", "Mon
/// 09:12" this week, "Nov 3" this year, "Nov 3, 2025" before.
pub fn when(at: Millis, now: Millis, tz: Tz) -> String {
    let (Some(t), Some(n)) = (tz.local_checked(at), tz.local_checked(now)) else {
        return crate::clock::format_utc(at);
    };
    let ago = now - at;
    if (0..60_000).contains(&ago) {
        return "now".into();
    }
    if (0..3_600_000).contains(&ago) {
        return format!("{} min", ago / 60_000);
    }
    let days = (n.date() - t.date()).num_days();
    match days {
        0 => t.format("%H:%M").to_string(),
        1 => t.format("Yesterday %H:%M").to_string(),
        2..=6 => t.format("%a %H:%M").to_string(),
        _ if t.year() == n.year() => t.format("%b %-d").to_string(),
        _ => t.format("%b %-d, %Y").to_string(),
    }
}

/// The time of day, for a message in a day's group: "14:05".
pub fn clock(at: Millis, tz: Tz) -> String {
    tz.local_checked(at).map_or_else(
        || crate::clock::format_utc(at),
        |t| t.format("%H:%M").to_string(),
    )
}

/// The heading of a day's messages: "Today", "Yesterday", "Monday, Nov 24", "Nov 3, 2025".
pub fn day(at: Millis, now: Millis, tz: Tz) -> String {
    let (Some(t), Some(n)) = (tz.local_checked(at), tz.local_checked(now)) else {
        return crate::clock::format_utc(at);
    };
    match (n.date() - t.date()).num_days() {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        2..=6 => t.format("%A").to_string(),
        _ if t.year() == n.year() => t.format("%A, %b %-d").to_string(),
        _ => t.format("%b %-d, %Y").to_string(),
    }
}

/// The full local time, for a tooltip: "2026-11-28 11:35 MST".
pub fn full(at: Millis, tz: Tz) -> String {
    tz.local_checked(at).map_or_else(
        || crate::clock::format_utc(at),
        |t| format!("{} {}", t.format("%Y-%m-%d %H:%M"), tz.abbreviation(at)),
    )
}

/// A phone number as people write it: `(480) 555-0201` for a North American number seen from a North
/// American business, `+44 207 183 8750` (the calling code apart, digits in threes) otherwise; anything that
/// is not E.164 (anonymous, a SIP address) as it came.
pub fn phone(number: &str, business_number: &str) -> String {
    let Some(digits) = number.strip_prefix('+') else {
        return number.to_string();
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() < 7 {
        return number.to_string();
    }
    let nanp = |n: &str| n.starts_with("+1") && n.len() == 12;
    if nanp(number) && nanp(business_number) {
        let d = &digits[1..];
        return format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..]);
    }
    let cc = crate::country::calling_code(number).unwrap_or("");
    let rest = &digits[cc.len()..];
    // Threes from the left; a last group of one or two joins the one before.
    let mut groups: Vec<String> = rest
        .as_bytes()
        .chunks(3)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if groups.len() > 1 && groups.last().is_some_and(|g| g.len() < 3) {
        if let Some(last) = groups.pop() {
            if let Some(prev) = groups.last_mut() {
                prev.push_str(&last);
            }
        }
    }
    if cc.is_empty() {
        format!("+{}", groups.join(" "))
    } else {
        format!("+{cc} {}", groups.join(" "))
    }
}

/// A conversation state in words.
pub fn state(state: &str) -> &'static str {
    match state {
        "new" => "new",
        "texted" => "texted",
        "replied" => "replied",
        "booked" => "booked",
        "lost" => "lost",
        "opted_out" => "opted out",
        _ => "other",
    }
}

/// A message's delivery state, as the mark on our bubble says it.
pub fn delivery(status: &str) -> &'static str {
    match status {
        "delivered" => "delivered",
        "read" => "read",
        "sent" | "queued" | "accepted" => "sent",
        "scheduled" | "sending" | "retrying" | "checking" => "sending",
        "failed" | "undelivered" => "not delivered",
        "unknown" => "unclear",
        "cancelled" => "not sent",
        _ => "",
    }
}

/// A text as HTML: escaped, with each http(s) address a link that opens apart and tells nothing of where
/// it came from. Nothing else becomes markup.
pub fn linkify(text: &str) -> String {
    let escape = |s: &str| minijinja::HtmlEscape(s).to_string();
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        out.push_str(&escape(&rest[..start]));
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        // Punctuation that ends a sentence is not part of the address.
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        let scheme_only = url == "https://" || url == "http://";
        if scheme_only {
            out.push_str(&escape(url));
        } else {
            let e = escape(url);
            out.push_str(&format!(
                "<a href=\"{e}\" rel=\"noopener noreferrer\" target=\"_blank\">{e}</a>"
            ));
        }
        rest = &tail[url.len()..];
    }
    out.push_str(&escape(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phx() -> Tz {
        crate::zone::named("America/Phoenix")
    }
    /// 2026-11-28 18:35:57 UTC, 11:35:57 in Phoenix (a Saturday).
    const NOW: Millis = 1_795_890_957_000;
    const MIN: Millis = 60_000;
    const HOUR: Millis = 60 * MIN;
    const DAY: Millis = 24 * HOUR;

    #[test]
    fn times_are_local_and_relative_when_recent() {
        let cases = [
            (NOW, "now"),
            (NOW - 30_000, "now"),
            (NOW - 2 * MIN, "2 min"),
            (NOW - 59 * MIN, "59 min"),
            (NOW - 2 * HOUR, "09:35"),
            (NOW - DAY + HOUR, "Yesterday 12:35"),
            (NOW - 3 * DAY, "Wed 11:35"),
            (NOW - 30 * DAY, "Oct 29"),
            (NOW - 400 * DAY, "Oct 24, 2025"),
        ];
        for (at, want) in cases {
            assert_eq!(when(at, NOW, phx()), want, "{}", NOW - at);
        }
        assert_eq!(clock(NOW, phx()), "11:35");
        assert_eq!(full(NOW, phx()), "2026-11-28 11:35 MST");
        assert_eq!(clock(NOW, crate::zone::UTC), "18:35");
    }

    #[test]
    fn days_are_named() {
        let cases = [
            (NOW, "Today"),
            (NOW - DAY, "Yesterday"),
            (NOW - 3 * DAY, "Wednesday"),
            (NOW - 30 * DAY, "Thursday, Oct 29"),
            (NOW - 400 * DAY, "Oct 24, 2025"),
        ];
        for (at, want) in cases {
            assert_eq!(day(at, NOW, phx()), want);
        }
    }

    #[test]
    fn numbers_are_written_as_people_write_them() {
        let us = "+16025550100";
        let cases = [
            ("+14805550201", us, "(480) 555-0201"),
            ("+442071838750", us, "+44 207 183 8750"),
            ("+14805550201", "+442071838750", "+1 480 555 0201"),
            ("+4930123456", us, "+49 301 23456"),
            ("anonymous", us, "anonymous"),
            ("sip:alice@example.com", us, "sip:alice@example.com"),
            ("+123", us, "+123"),
        ];
        for (n, biz, want) in cases {
            assert_eq!(phone(n, biz), want, "{n}");
        }
    }

    #[test]
    fn links_are_links_and_nothing_else_is_markup() {
        let cases = [
            ("Book at https://book.example.com/acme.", "Book at <a href=\"https:&#x2f;&#x2f;book.example.com&#x2f;acme\" rel=\"noopener noreferrer\" target=\"_blank\">https:&#x2f;&#x2f;book.example.com&#x2f;acme</a>."),
            ("<b>hi</b>", "&lt;b&gt;hi&lt;&#x2f;b&gt;"),
            ("javascript:alert(1)", "javascript:alert(1)"),
            ("see http://x.example/a?b=1&c=2 now", "see <a href=\"http:&#x2f;&#x2f;x.example&#x2f;a?b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\">http:&#x2f;&#x2f;x.example&#x2f;a?b=1&amp;c=2</a> now"),
            ("https://\"onmouseover=\"x", "https:&#x2f;&#x2f;&quot;onmouseover=&quot;x"),
            ("no links", "no links"),
        ];
        for (text, want) in cases {
            assert_eq!(linkify(text), want, "{text}");
        }
    }

    #[test]
    fn states_are_words() {
        assert_eq!(state("opted_out"), "opted out");
        assert_eq!(state("booked"), "booked");
        assert_eq!(delivery("undelivered"), "not delivered");
        assert_eq!(delivery("queued"), "sent");
    }
}
