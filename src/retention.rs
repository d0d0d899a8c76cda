//! The retention policy: message bodies older than `[retention] message_bodies` are redacted, calls and
//! delivery receipts older than `[retention] calls` deleted, a small batch per transaction so webhooks are
//! never held up behind it. Contacts and their consent records are kept: the audit trail of who agreed to be
//! texted must outlive the texts. Depends on store and config.

use crate::clock::Millis;
use crate::config::RetentionConfig;
use crate::store::{retention, Store};

/// Rows changed per transaction.
pub const BATCH: usize = 500;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Message bodies redacted.
    pub redacted: usize,
    /// Calls and receipts deleted.
    pub pruned: usize,
}

/// Applies the policy as of `now`, in batches of `batch`, until nothing more is due.
pub fn apply(
    store: &Store,
    policy: &RetentionConfig,
    now: Millis,
    batch: usize,
) -> crate::store::Result<Applied> {
    let mut done = Applied::default();
    let cutoff = |d: crate::config::Dur| now - d.millis();
    if let Some(before) = policy.message_bodies.map(cutoff) {
        loop {
            let n = store.write(move |c| retention::redact_bodies(c, before, batch))?;
            done.redacted += n;
            if n < batch {
                break;
            }
        }
    }
    if let Some(before) = policy.calls.map(cutoff) {
        loop {
            let n = store.write(move |c| retention::prune_calls(c, before, batch))?;
            done.pruned += n;
            if n < batch {
                break;
            }
        }
    }
    Ok(done)
}
