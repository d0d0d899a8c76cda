//! Periodic schedules ("0 7 * * *") evaluated in a business's local time.
//!
//! A 5-field POSIX cron expression (minute hour day-of-month month day-of-week; day-of-week 0-6 = Sun-Sat,
//! 7 = Sun, names like MON allowed) is due at every local wall-clock time it matches. croner's nicknames
//! (`@daily`, `@hourly`, ...) and extensions (`L`, `W`, `#`) are accepted as croner reads them; a time zone is
//! never part of the expression.
//!
//! `croner` is used only to parse the expression and to list matching *wall-clock* times: it is evaluated over
//! `chrono::Utc` datetimes that stand for naive local times, so its own DST handling never applies. Each
//! wall-clock time is then mapped to an instant with [`crate::hours::instant_of`], so the whole project follows
//! one DST rule: a local time that does not exist (DST begins) runs at the first valid time after it, a local
//! time that repeats (DST ends) runs once, at its first occurrence. Two wall-clock times that map to the same
//! instant (02:00 and 02:30 both become 03:00 on spring-forward day) make one run. (The `cron` crate was not
//! used: it needs 6 fields with Quartz day numbers, and it gets fall-back wrong.)

use std::fmt;

use crate::zone::Tz;
use chrono::{Duration, NaiveDateTime, Timelike};
use croner::parser::{CronParser, Seconds, Year};

use crate::clock::Millis;
use crate::hours::instant_of;

/// How far ahead a schedule is searched. Every 5-field expression that fires at all fires within a year,
/// except February 29th (every 4 years, 8 across a skipped century leap day).
const HORIZON_DAYS: i64 = 5 * 366;

/// How many matching wall-clock times one search looks at. A candidate is skipped only when its instant is not
/// after the start: in a repeated hour (at most 60 of them) or in a gap (1440 when a whole day was skipped, as in
/// Samoa in 2011), so this covers any real transition and still bounds the work.
const MAX_CANDIDATES: usize = 5000;

/// A fixed instant (2024-01-01T00:00:00Z) from which `parse` checks that an expression fires at all; fixed so
/// that parsing does not depend on the clock.
const PARSE_CHECK_FROM: Millis = 1_704_067_200_000;

/// A parsed 5-field cron expression.
#[derive(Clone)]
pub struct Cron {
    text: String,
    pattern: croner::Cron,
}

impl Cron {
    /// Parses a 5-field expression. The error is a short sentence for a config error message. Refuses seconds
    /// (6 fields), anything croner rejects, and an expression that never fires within about 5 years
    /// (e.g. `0 0 30 2 *`).
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let refuse = |reason: String| {
            format!(
                "`{expr}` is not a cron expression like \"0 7 * * *\" \
                 (minute hour day-of-month month day-of-week): {reason}"
            )
        };
        let text = expr.trim();
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && fields != 5 {
            let reason = match fields {
                1 => "it has 1 field, not 5".to_string(),
                6 => "it has 6 fields, not 5 (seconds are not supported)".to_string(),
                n => format!("it has {n} fields, not 5"),
            };
            return Err(refuse(reason));
        }
        let pattern = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| refuse(e.to_string()))?;
        let cron = Cron {
            text: text.to_string(),
            pattern,
        };
        if cron
            .next_after(crate::zone::UTC, PARSE_CHECK_FROM)
            .is_none()
        {
            return Err(format!(
                "`{text}` never fires (no matching time within 5 years)"
            ));
        }
        Ok(cron)
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first instant strictly after `after` at which the schedule is due in `tz`, or None if none within
    /// about 5 years.
    pub fn next_after(&self, tz: Tz, after: Millis) -> Option<Millis> {
        let start = tz.local_checked(after)?;
        // Whole seconds, so croner's "strictly after" steps from a clean second.
        let start = start.with_nanosecond(0)?;
        let horizon = start
            .checked_add_signed(Duration::days(HORIZON_DAYS))
            .unwrap_or(NaiveDateTime::MAX);
        // instant_of never decreases as the wall clock advances, and the wall clock of `after` maps to `after`
        // or earlier, so no wall-clock time at or before `start` can map after `after`.
        let mut cursor = start.and_utc();
        for _ in 0..MAX_CANDIDATES {
            let found = self.pattern.find_next_occurrence(&cursor, false).ok()?;
            let local = found.naive_utc();
            if local > horizon {
                return None;
            }
            let at = instant_of(tz, local);
            // Skipped: the first pass of a repeated hour already ran this wall-clock time, or a nonexistent time
            // mapped onto a run already made.
            if at > after {
                return Some(at);
            }
            cursor = found;
        }
        None
    }

    /// Whether `at` is an instant this schedule produces in `tz`; used to drop a queued run whose schedule
    /// changed.
    pub fn fires_at(&self, tz: Tz, at: Millis) -> bool {
        self.next_after(tz, at.saturating_sub(1)) == Some(at)
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cron").field(&self.text).finish()
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn ny() -> Tz {
        crate::zone::named("America/New_York")
    }
    fn berlin() -> Tz {
        crate::zone::named("Europe/Berlin")
    }
    fn phoenix() -> Tz {
        crate::zone::named("America/Phoenix")
    }

    /// An instant from a wall-clock time and an explicit UTC offset in hours, e.g. ("2026-03-08 03:00", -4).
    fn at(local: &str, offset_hours: i32) -> Millis {
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        let offset = chrono::FixedOffset::east_opt(offset_hours * 3600).unwrap();
        offset
            .from_local_datetime(&naive)
            .single()
            .unwrap()
            .timestamp_millis()
    }

    fn show(tz: Tz, ms: Millis) -> String {
        format!(
            "{} {}",
            tz.local(ms).format("%Y-%m-%d %H:%M"),
            tz.abbreviation(ms)
        )
    }

    /// The first `n` runs strictly after `from`.
    fn runs(expr: &str, tz: Tz, from: Millis, n: usize) -> Vec<String> {
        let cron = Cron::parse(expr).unwrap();
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = cron.next_after(tz, t).unwrap();
            out.push(show(tz, t));
        }
        out
    }

    #[test]
    fn runs_across_dst_and_ordinary_days() {
        struct Case {
            what: &'static str,
            expr: &'static str,
            tz: Tz,
            from: Millis,
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                what: "ordinary days at 07:00 local",
                expr: "0 7 * * *",
                tz: ny(),
                from: at("2026-06-01 12:00", -4),
                want: &["2026-06-02 07:00 EDT", "2026-06-03 07:00 EDT"],
            },
            Case {
                what: "07:00 in winter is EST",
                expr: "0 7 * * *",
                tz: ny(),
                from: at("2026-01-05 06:59", -5),
                want: &["2026-01-05 07:00 EST", "2026-01-06 07:00 EST"],
            },
            Case {
                what: "02:30 does not exist on spring-forward day: once at 03:00, then 02:30 again",
                expr: "30 2 * * *",
                tz: ny(),
                from: at("2026-03-07 03:00", -5),
                want: &[
                    "2026-03-08 03:00 EDT",
                    "2026-03-09 02:30 EDT",
                    "2026-03-10 02:30 EDT",
                ],
            },
            Case {
                what: "01:30 repeats on fall-back day: once, at the first 01:30",
                expr: "30 1 * * *",
                tz: ny(),
                from: at("2026-10-31 02:00", -4),
                want: &[
                    "2026-11-01 01:30 EDT",
                    "2026-11-02 01:30 EST",
                    "2026-11-03 01:30 EST",
                ],
            },
            Case {
                what: "every 30 min across spring-forward: 02:00 and 02:30 collapse into one 03:00 run",
                expr: "*/30 * * * *",
                tz: ny(),
                from: at("2026-03-08 01:00", -5),
                want: &[
                    "2026-03-08 01:30 EST",
                    "2026-03-08 03:00 EDT",
                    "2026-03-08 03:30 EDT",
                    "2026-03-08 04:00 EDT",
                ],
            },
            Case {
                what: "every 30 min across fall-back: the repeated hour runs once",
                expr: "*/30 * * * *",
                tz: ny(),
                from: at("2026-11-01 00:00", -4),
                want: &[
                    "2026-11-01 00:30 EDT",
                    "2026-11-01 01:00 EDT",
                    "2026-11-01 01:30 EDT",
                    "2026-11-01 02:00 EST",
                    "2026-11-01 02:30 EST",
                ],
            },
            Case {
                what: "from inside the second pass of the repeated hour: next is 02:00 EST",
                expr: "*/30 * * * *",
                tz: ny(),
                from: at("2026-11-01 01:10", -5),
                want: &["2026-11-01 02:00 EST"],
            },
            Case {
                what: "weekdays only: Friday, then Monday",
                expr: "0 8 * * 1-5",
                tz: ny(),
                from: at("2026-06-05 07:00", -4),
                want: &["2026-06-05 08:00 EDT", "2026-06-08 08:00 EDT"],
            },
            Case {
                what: "weekday names",
                expr: "0 8 * * MON-FRI",
                tz: ny(),
                from: at("2026-06-05 09:00", -4),
                want: &["2026-06-08 08:00 EDT"],
            },
            Case {
                what: "dow 0 is Sunday",
                expr: "0 9 * * 0",
                tz: ny(),
                from: at("2026-06-01 00:00", -4),
                want: &["2026-06-07 09:00 EDT", "2026-06-14 09:00 EDT"],
            },
            Case {
                what: "dow 7 is Sunday",
                expr: "0 9 * * 7",
                tz: ny(),
                from: at("2026-06-01 00:00", -4),
                want: &["2026-06-07 09:00 EDT", "2026-06-14 09:00 EDT"],
            },
            Case {
                what: "dow SUN",
                expr: "0 9 * * SUN",
                tz: ny(),
                from: at("2026-06-01 00:00", -4),
                want: &["2026-06-07 09:00 EDT"],
            },
            Case {
                what: "@daily is midnight local",
                expr: "@daily",
                tz: ny(),
                from: at("2026-06-01 12:00", -4),
                want: &["2026-06-02 00:00 EDT", "2026-06-03 00:00 EDT"],
            },
            Case {
                what: "Berlin spring-forward (02:00 -> 03:00): 02:30 runs at 03:00",
                expr: "30 2 * * *",
                tz: berlin(),
                from: at("2026-03-28 12:00", 1),
                want: &[
                    "2026-03-29 03:00 CEST",
                    "2026-03-30 02:30 CEST",
                ],
            },
            Case {
                what: "Berlin fall-back (03:00 -> 02:00): 02:30 runs once, summer time",
                expr: "30 2 * * *",
                tz: berlin(),
                from: at("2026-10-24 12:00", 2),
                want: &["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"],
            },
            Case {
                what: "Berlin fall-back, every 15 minutes through the repeated hour",
                expr: "*/15 2-3 * * *",
                tz: berlin(),
                from: at("2026-10-25 02:20", 2),
                want: &[
                    "2026-10-25 02:30 CEST",
                    "2026-10-25 02:45 CEST",
                    "2026-10-25 03:00 CET",
                    "2026-10-25 03:15 CET",
                ],
            },
            Case {
                what: "Phoenix has no DST: 02:30 every day, MST",
                expr: "30 2 * * *",
                tz: phoenix(),
                from: at("2026-03-07 12:00", -7),
                want: &[
                    "2026-03-08 02:30 MST",
                    "2026-03-09 02:30 MST",
                ],
            },
            Case {
                what: "Phoenix fall-back day is ordinary",
                expr: "30 1 * * *",
                tz: phoenix(),
                from: at("2026-10-31 12:00", -7),
                want: &["2026-11-01 01:30 MST", "2026-11-02 01:30 MST"],
            },
            Case {
                what: "leap day only",
                expr: "0 0 29 2 *",
                tz: ny(),
                from: at("2026-01-01 00:00", -5),
                want: &["2028-02-29 00:00 EST"],
            },
        ];
        for c in &cases {
            let got = runs(c.expr, c.tz, c.from, c.want.len());
            assert_eq!(got, c.want, "{}: `{}`", c.what, c.expr);
        }
    }

    #[test]
    fn next_after_is_strictly_after() {
        let cron = Cron::parse("0 7 * * *").unwrap();
        let seven = at("2026-06-02 07:00", -4);
        let cases = [
            (seven - 1, Some(seven)),
            (seven, Some(at("2026-06-03 07:00", -4))),
            (seven + 1, Some(at("2026-06-03 07:00", -4))),
            (seven - 500, Some(seven)),
            (seven - 60_000, Some(seven)),
        ];
        for (from, want) in cases {
            assert_eq!(
                cron.next_after(ny(), from),
                want,
                "from {}",
                show(ny(), from)
            );
        }
    }

    #[test]
    fn fires_at_only_produced_instants() {
        let cases = [
            ("30 2 * * *", at("2026-03-08 03:00", -4), true),
            ("30 2 * * *", at("2026-03-08 03:30", -4), false),
            ("30 2 * * *", at("2026-03-09 02:30", -4), true),
            ("30 1 * * *", at("2026-11-01 01:30", -4), true),
            ("30 1 * * *", at("2026-11-01 01:30", -5), false),
            ("0 7 * * *", at("2026-06-02 07:00", -4), true),
            ("0 7 * * *", at("2026-06-02 07:00", -4) + 1, false),
            ("0 8 * * 1-5", at("2026-06-06 08:00", -4), false),
            ("*/30 * * * *", at("2026-03-08 03:00", -4), true),
            ("*/30 * * * *", at("2026-11-01 01:00", -5), false),
        ];
        for (expr, when, want) in cases {
            let cron = Cron::parse(expr).unwrap();
            assert_eq!(
                cron.fires_at(ny(), when),
                want,
                "`{expr}` at {}",
                show(ny(), when)
            );
        }
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        let cases = [
            ("", "0 fields"),
            ("   ", "0 fields"),
            ("0 7 * *", "4 fields"),
            ("0 0 7 * * *", "seconds are not supported"),
            ("0 0 7 * * * 2026", "7 fields"),
            ("61 * * * *", "not a cron expression"),
            ("0 24 * * *", "not a cron expression"),
            ("0 7 * * 8", "not a cron expression"),
            ("x", "1 field,"),
            ("x * * * *", "not a cron expression"),
            ("@sometimes", "not a cron expression"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4 *", "never fires"),
        ];
        for (expr, want) in cases {
            let err = Cron::parse(expr).unwrap_err();
            assert!(err.contains(want), "`{expr}`: {err}");
            assert!(err.contains(expr.trim()), "`{expr}`: {err}");
        }
    }

    #[test]
    fn good_expressions_parse_and_keep_their_text() {
        let cases = [
            "0 7 * * *",
            "30 2 * * 1-5",
            "*/15 9-17 * * MON-FRI",
            "0 0 1 JAN *",
            "0 12 1,15 * *",
            "@daily",
            "@hourly",
            "@weekly",
        ];
        for expr in cases {
            let cron = Cron::parse(expr).unwrap_or_else(|e| panic!("`{expr}`: {e}"));
            assert_eq!(cron.as_str(), expr);
            assert_eq!(format!("{cron:?}"), format!("Cron({expr:?})"));
            assert_eq!(cron, Cron::parse(expr).unwrap());
        }
        assert_ne!(
            Cron::parse("0 7 * * *").unwrap(),
            Cron::parse("0 8 * * *").unwrap()
        );
    }

    #[test]
    fn searches_terminate_quickly_at_the_extremes() {
        // Far past and far future, and a time zone whose day was skipped (Samoa, 2011-12-30).
        let cron = Cron::parse("* * * * *").unwrap();
        let apia: Tz = crate::zone::named("Pacific/Apia");
        let cases = [
            (crate::zone::UTC, i64::MIN),
            (crate::zone::UTC, i64::MAX),
            (crate::zone::UTC, -62_135_596_800_000),
            (
                crate::zone::UTC,
                DateTime::<Utc>::MAX_UTC.timestamp_millis(),
            ),
            (
                crate::zone::UTC,
                DateTime::<Utc>::MIN_UTC.timestamp_millis(),
            ),
            (ny(), 4_102_444_800_000 * 10),
            (apia, at("2011-12-29 23:58", -10)),
        ];
        for (tz, from) in cases {
            let started = std::time::Instant::now();
            let _ = cron.next_after(tz, from);
            assert!(started.elapsed().as_secs() < 2, "{tz} from {from}");
        }
        let next = cron.next_after(apia, at("2011-12-29 23:58", -10)).unwrap();
        assert_eq!(show(apia, next), "2011-12-29 23:59 -10");
        let after_gap = cron.next_after(apia, next).unwrap();
        assert!(after_gap > next, "{}", show(apia, after_gap));
    }
}
