//! Where "now" comes from. Code that decides takes `now` as an argument; code whose time advances on its own
//! (the scheduler) holds a `Clock`, so tests can replace the system clock with a manual one.
//! Depends on nothing internal.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC. Every instant the appliance stores is one of these.
pub type Millis = i64;

/// A wall-clock instant as unix milliseconds.
pub fn to_millis(t: SystemTime) -> Millis {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant in unix milliseconds.
    fn now(&self) -> Millis;
    /// Lets `ms` pass (a manual clock just moves on).
    fn wait(&self, ms: Millis);
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        to_millis(SystemTime::now())
    }
    fn wait(&self, ms: Millis) {
        std::thread::sleep(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or_default(),
        ));
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Millis) -> Self {
        Self(AtomicI64::new(at))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: Millis) {
        self.0.store(at, Ordering::SeqCst);
    }
    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
    fn wait(&self, ms: Millis) {
        self.advance(ms.max(0));
    }
}

/// Formats an instant as RFC 3339 UTC with seconds, for people reading the CLI.
pub fn format_utc(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// Formats an instant as RFC 3339 UTC with milliseconds (`2026-11-29T01:02:03.456Z`), for machines.
pub fn format_rfc3339(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| at.to_string())
}
