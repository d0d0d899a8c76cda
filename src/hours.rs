//! Local time rules, pure: weekly opening hours with several periods a day and closure dates, and daily
//! windows such as quiet hours, evaluated in a business's time zone across DST changes.
//! Depends on nothing internal.

use crate::clock::Millis;
use crate::zone::Tz;
use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::collections::BTreeSet;

/// A span of the day in minutes since midnight, `start` inclusive, `end` exclusive (`end` may be 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Minutes since midnight.
    pub start: u32,
    /// Minutes since midnight; 1440 is the end of the day.
    pub end: u32,
}

/// Parses `"HH:MM-HH:MM"`. `24:00` is allowed as an end. A span whose end is before its start wraps midnight
/// (only meaningful for daily windows).
pub fn parse_span(s: &str) -> Result<Span, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not a time span like \"08:00-17:00\""))?;
    let start = parse_clock(a.trim())
        .ok_or_else(|| format!("{:?} is not a time like \"08:00\"", a.trim()))?;
    let end = parse_clock(b.trim())
        .ok_or_else(|| format!("{:?} is not a time like \"17:00\"", b.trim()))?;
    if start >= 1440 {
        return Err(format!("{s:?} starts at 24:00"));
    }
    Ok(Span { start, end })
}

fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

/// Parses a closure date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date like \"2026-12-25\""))
}

fn minute_of_day(t: NaiveDateTime) -> u32 {
    t.hour() * 60 + t.minute()
}

/// Weekly opening hours in a time zone, with closure dates.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The business's time zone.
    pub tz: Tz,
    /// Periods per weekday, Monday first.
    pub days: [Vec<Span>; 7],
    /// Whole days closed (holidays).
    pub closed: BTreeSet<NaiveDate>,
}

impl Schedule {
    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: Millis) -> bool {
        let t = self.tz.local(at);
        if self.closed.contains(&t.date()) {
            return false;
        }
        let minute = minute_of_day(t);
        let day = t.weekday().num_days_from_monday() as usize;
        self.days[day]
            .iter()
            .any(|p| p.start <= minute && minute < p.end)
    }
}

/// A daily window in a time zone, such as quiet hours `21:00-08:00`; `None` span means never.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The time zone it is read in.
    pub tz: Tz,
    /// The span, or none for "never".
    pub span: Option<Span>,
}

impl Window {
    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: Millis) -> bool {
        let Some(s) = self.span else { return false };
        let m = minute_of_day(self.tz.local(at));
        if s.start <= s.end {
            s.start <= m && m < s.end
        } else {
            m >= s.start || m < s.end
        }
    }

    /// The first instant at or after `at` that is outside the window.
    pub fn next_outside(&self, at: Millis) -> Millis {
        let Some(s) = self.span else { return at };
        if !self.contains(at) {
            return at;
        }
        let t = self.tz.local(at);
        let mut date = t.date();
        if s.start > s.end && minute_of_day(t) >= s.start {
            date = date.succ_opt().unwrap_or(date);
        }
        let end = if s.end >= 1440 {
            date.succ_opt().unwrap_or(date).and_time(NaiveTime::MIN)
        } else {
            date.and_time(
                NaiveTime::from_hms_opt(s.end / 60, s.end % 60, 0).unwrap_or(NaiveTime::MIN),
            )
        };
        let found = instant_of(self.tz, end);
        // The window's end can fall before `at` only if a whole-day window has no outside (start == end).
        found.max(at)
    }
}

/// The instant of a local time: the earlier one when it repeats (DST ends), the first valid one after it when
/// it does not exist (DST begins).
pub fn instant_of(tz: Tz, local_time: NaiveDateTime) -> Millis {
    let mut t = local_time;
    for _ in 0..=180 {
        match tz.instants(t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x,
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    local_time.and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, s: &str) -> Millis {
        instant_of(
            tz,
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
        )
    }

    fn utc(s: &str) -> Millis {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn parses_spans() {
        let cases: &[(&str, Option<(u32, u32)>)] = &[
            ("08:00-17:00", Some((480, 1020))),
            ("21:00-08:00", Some((1260, 480))),
            ("00:00-24:00", Some((0, 1440))),
            (" 09:30 - 12:15 ", Some((570, 735))),
            ("8:00-17:00", None),
            ("08:00", None),
            ("25:00-26:00", None),
            ("24:00-08:00", None),
            ("08:60-09:00", None),
        ];
        for (s, want) in cases {
            let got = parse_span(s).ok().map(|p| (p.start, p.end));
            assert_eq!(got, *want, "{s}");
        }
    }

    fn hvac() -> Schedule {
        let weekday = vec![
            parse_span("08:00-12:00").unwrap(),
            parse_span("13:00-17:00").unwrap(),
        ];
        Schedule {
            tz: crate::zone::named("America/Phoenix"),
            days: [
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday,
                vec![parse_span("09:00-13:00").unwrap()],
                vec![],
            ],
            closed: [parse_date("2026-12-25").unwrap()].into_iter().collect(),
        }
    }

    #[test]
    fn opening_hours_with_split_shifts_weekends_and_holidays() {
        let tz = crate::zone::named("America/Phoenix");
        let s = hvac();
        let cases: &[(&str, bool)] = &[
            ("2026-11-30 07:59", false), // Monday, before opening
            ("2026-11-30 08:00", true),
            ("2026-11-30 11:59", true),
            ("2026-11-30 12:30", false), // lunch
            ("2026-11-30 13:00", true),
            ("2026-11-30 17:00", false),
            ("2026-12-05 10:00", true),  // Saturday morning
            ("2026-12-05 14:00", false), // Saturday afternoon
            ("2026-12-06 10:00", false), // Sunday
            ("2026-12-25 10:00", false), // Christmas, a Friday
            ("2026-12-24 10:00", true),
        ];
        for (local_time, open) in cases {
            assert_eq!(s.is_open(at(tz, local_time)), *open, "{local_time}");
        }
    }

    #[test]
    fn quiet_windows_wrap_midnight() {
        let tz = crate::zone::named("America/Phoenix");
        let w = Window {
            tz,
            span: Some(parse_span("21:00-08:00").unwrap()),
        };
        let cases: &[(&str, bool, &str)] = &[
            ("2026-11-30 20:59", false, "2026-11-30 20:59"),
            ("2026-11-30 21:00", true, "2026-12-01 08:00"),
            ("2026-11-30 23:30", true, "2026-12-01 08:00"),
            ("2026-12-01 03:00", true, "2026-12-01 08:00"),
            ("2026-12-01 08:00", false, "2026-12-01 08:00"),
        ];
        for (t, quiet, next) in cases {
            assert_eq!(w.contains(at(tz, t)), *quiet, "{t}");
            assert_eq!(w.next_outside(at(tz, t)), at(tz, next), "{t}");
        }
        let never = Window { tz, span: None };
        assert!(!never.contains(at(tz, "2026-12-01 03:00")));
    }

    #[test]
    fn dst_edges() {
        let ny = crate::zone::named("America/New_York");
        let quiet = Window {
            tz: ny,
            span: Some(parse_span("21:00-08:00").unwrap()),
        };
        // The night DST begins: 08:00 next morning is EDT (UTC-4), not EST.
        assert_eq!(
            quiet.next_outside(at(ny, "2026-03-07 22:00")),
            utc("2026-03-08 12:00")
        );
        // The night DST ends: 08:00 is EST (UTC-5).
        assert_eq!(
            quiet.next_outside(at(ny, "2026-10-31 22:00")),
            utc("2026-11-01 13:00")
        );
        // A window ending in the skipped hour ends when the clock jumps to 03:00.
        let gap = Window {
            tz: ny,
            span: Some(parse_span("01:00-02:30").unwrap()),
        };
        assert_eq!(
            gap.next_outside(utc("2026-03-08 06:30")),
            utc("2026-03-08 07:00")
        );
        // A window ending in the repeated hour ends the first time 01:30 comes round (EDT).
        let repeat = Window {
            tz: ny,
            span: Some(parse_span("00:00-01:30").unwrap()),
        };
        assert_eq!(
            repeat.next_outside(utc("2026-11-01 04:45")),
            utc("2026-11-01 05:30")
        );
        // Opening hours follow the local clock on both sides of the change.
        let mut days: [Vec<Span>; 7] = Default::default();
        days[6] = vec![parse_span("08:00-17:00").unwrap()];
        let sunday = Schedule {
            tz: ny,
            days,
            closed: BTreeSet::new(),
        };
        assert!(sunday.is_open(utc("2026-03-08 12:30"))); // 08:30 EDT
        assert!(!sunday.is_open(utc("2026-03-08 11:30"))); // 07:30 EDT
        assert!(sunday.is_open(utc("2026-11-01 13:30"))); // 08:30 EST
        assert!(!sunday.is_open(utc("2026-11-01 12:30"))); // 07:30 EST
    }
}
