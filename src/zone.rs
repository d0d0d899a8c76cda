//! Time zones by IANA name, from the tz database bundled in the binary: the two conversions the appliance
//! needs (an instant to a local wall-clock time, and back, across DST gaps and folds) and the abbreviation
//! people read ("MST"). Depends on nothing internal.
//!
//! The database is jiff's: zone files kept as bytes and parsed on first use of a name. A database compiled
//! into Rust statics (chrono-tz) holds ~40,000 pointers that the loader must relocate at every start,
//! about 1 MB of memory written before `main` and 1 MB of relocation table in the binary, for some 600
//! zones of which a box uses one or two.

use crate::clock::Millis;
use chrono::{Datelike, LocalResult, NaiveDateTime, Timelike};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::Timestamp;
use std::fmt;
use std::sync::Mutex;

/// A time zone: a copyable handle to a zone looked up once and kept for the life of the process (there
/// are some 600 names, so what is kept is bounded).
#[derive(Clone, Copy)]
pub struct Tz(&'static TimeZone);

static UTC_ZONE: TimeZone = TimeZone::UTC;

/// Coordinated Universal Time.
pub const UTC: Tz = Tz(&UTC_ZONE);

/// Zones looked up so far.
static KNOWN: Mutex<Vec<&'static TimeZone>> = Mutex::new(Vec::new());

impl std::str::FromStr for Tz {
    type Err = String;

    /// An IANA name such as `America/Phoenix` (letter case aside) or `UTC`.
    fn from_str(name: &str) -> Result<Tz, String> {
        let unknown = || format!("{name:?} is not an IANA time zone");
        let mut known = KNOWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = known
            .iter()
            .find(|z| z.iana_name().is_some_and(|n| n.eq_ignore_ascii_case(name)));
        if let Some(z) = found {
            return Ok(Tz(z));
        }
        // Only names the database holds get here, so `known` never outgrows it.
        let zone = TimeZone::get(name).map_err(|_| unknown())?;
        let zone: &'static TimeZone = Box::leak(Box::new(zone));
        known.push(zone);
        Ok(Tz(zone))
    }
}

/// The zone called `name`; for tests and constants known to be valid.
///
/// # Panics
/// When `name` is not in the database.
#[allow(clippy::expect_used)]
pub fn named(name: &str) -> Tz {
    name.parse().expect("a time zone in the database")
}

fn timestamp(at: Millis) -> Timestamp {
    Timestamp::from_millisecond(at).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `local` read as if it were UTC, in milliseconds.
fn as_utc_millis(local: NaiveDateTime) -> Millis {
    local.and_utc().timestamp_millis()
}

fn millis_at(local: NaiveDateTime, offset: Offset) -> Millis {
    as_utc_millis(local) - i64::from(offset.seconds()) * 1000
}

impl Tz {
    /// The IANA name, as the database spells it.
    pub fn name(self) -> &'static str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The wall-clock time in this zone at instant `at`; the epoch's for an instant beyond chrono's years.
    pub fn local(self, at: Millis) -> NaiveDateTime {
        self.local_checked(at).unwrap_or_else(|| self.local(0))
    }

    /// The wall-clock time in this zone at instant `at`, or `None` beyond chrono's years.
    pub fn local_checked(self, at: Millis) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp_millis(at)?;
        let offset = self.0.to_offset(timestamp(at));
        Some(utc.naive_utc() + chrono::Duration::seconds(i64::from(offset.seconds())))
    }

    /// The zone's abbreviation in force at `at`, such as "MST" or "CEST" (some zones only have "+03").
    pub fn abbreviation(self, at: Millis) -> String {
        self.0
            .to_offset_info(timestamp(at))
            .abbreviation()
            .to_string()
    }

    /// The instants a local wall-clock time names: one; two when clocks go back (earlier first); none in
    /// the hour skipped when they go forward.
    pub fn instants(self, local: NaiveDateTime) -> LocalResult<Millis> {
        let Some(civil) = civil(local) else {
            return LocalResult::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                LocalResult::Single(millis_at(local, offset))
            }
            AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(millis_at(local, before), millis_at(local, after))
            }
            AmbiguousOffset::Gap { .. } => LocalResult::None,
        }
    }
}

/// chrono's wall-clock time as jiff's; `None` outside jiff's years (-9999 to 9999).
fn civil(t: NaiveDateTime) -> Option<jiff::civil::DateTime> {
    let small = |v: u32| i8::try_from(v).ok();
    jiff::civil::DateTime::new(
        i16::try_from(t.year()).ok()?,
        small(t.month())?,
        small(t.day())?,
        small(t.hour())?,
        small(t.minute())?,
        small(t.second())?,
        i32::try_from(t.nanosecond()).ok()?,
    )
    .ok()
}

impl PartialEq for Tz {
    fn eq(&self, other: &Tz) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Tz {}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn millis(rfc3339: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn names_are_looked_up_once_and_unknown_ones_refused() {
        let a: Tz = "America/New_York".parse().unwrap();
        let b: Tz = "america/new_york".parse().unwrap();
        assert!(std::ptr::eq(a.0, b.0), "the second lookup reuses the first");
        assert_eq!(b.name(), "America/New_York");
        assert_eq!(named("UTC"), UTC);
        for bad in [
            "Mars/Olympus",
            "",
            "America/",
            "+05:00",
            "EST5EDT,M3.2.0,M11.1.0",
        ] {
            assert!(bad.parse::<Tz>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instants_and_wall_clock_times_across_dst() {
        let ny = named("America/New_York");
        // (local time, what it names) in 2026: DST begins Mar 8, ends Nov 1.
        let cases = [
            (
                "2026-01-15 09:00",
                LocalResult::Single(millis("2026-01-15T14:00:00Z")),
            ),
            (
                "2026-07-15 09:00",
                LocalResult::Single(millis("2026-07-15T13:00:00Z")),
            ),
            ("2026-03-08 02:30", LocalResult::None),
            (
                "2026-11-01 01:30",
                LocalResult::Ambiguous(
                    millis("2026-11-01T05:30:00Z"),
                    millis("2026-11-01T06:30:00Z"),
                ),
            ),
        ];
        for (local, want) in cases {
            assert_eq!(ny.instants(naive(local)), want, "{local}");
        }
        assert_eq!(
            ny.local(millis("2026-11-01T05:30:00Z")),
            naive("2026-11-01 01:30")
        );
        assert_eq!(
            ny.local(millis("2026-11-01T06:30:00Z")),
            naive("2026-11-01 01:30")
        );
        assert_eq!(ny.abbreviation(millis("2026-07-15T13:00:00Z")), "EDT");
        assert_eq!(ny.abbreviation(millis("2026-01-15T13:00:00Z")), "EST");
        // Far past the zone file's last transition, its rule still applies.
        assert_eq!(ny.abbreviation(millis("2090-07-15T13:00:00Z")), "EDT");
        let phoenix = named("America/Phoenix");
        assert_eq!(
            phoenix.local(millis("2026-07-15T19:00:00Z")),
            naive("2026-07-15 12:00")
        );
        assert_eq!(UTC.local(0), naive("1970-01-01 00:00"));
        // Beyond chrono's years there is no wall-clock time; `local` falls back to the epoch's.
        assert_eq!(ny.local_checked(i64::MAX), None);
        assert_eq!(ny.local(i64::MAX), ny.local(0));
        assert_eq!(UTC.abbreviation(0), "UTC");
    }
}
