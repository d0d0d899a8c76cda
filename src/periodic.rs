//! Periodic jobs (each business's digest, scheduled backups) kept in step with their schedules: a queued
//! run the schedule no longer fires at (the file changed) is called off, and the next run is queued when
//! none is. Runs inside a store transaction. Depends on store, cron and clock.

use crate::clock::Millis;
use crate::cron::Cron;
use crate::store::{jobs, Conn, Result};

/// A queued run of one periodic job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// Its job's row.
    pub job_id: i64,
    /// When it is due.
    pub at: Millis,
    /// It is being done now (it stays, whatever the schedule says).
    pub running: bool,
}

/// Keeps one periodic job's `queued` runs in step with `schedule` in `tz` (`None`: no longer scheduled),
/// calling `queue` with the next time when nothing is queued. `what` names the job in the reason a run is
/// called off.
pub fn keep_in_step(
    c: &Conn<'_>,
    queued: &[Queued],
    schedule: Option<&Cron>,
    tz: crate::zone::Tz,
    what: &str,
    now: Millis,
    queue: impl FnOnce(Millis) -> Result<()>,
) -> Result<()> {
    let mut have = false;
    for run in queued {
        if run.running || schedule.is_some_and(|s| s.fires_at(tz, run.at)) {
            have = true;
        } else {
            let why = format!("the {what} schedule changed");
            jobs::finish(c, run.job_id, "cancelled", Some(&why), now)?;
        }
    }
    match schedule
        .filter(|_| !have)
        .and_then(|s| s.next_after(tz, now))
    {
        Some(at) => queue(at),
        None => Ok(()),
    }
}
