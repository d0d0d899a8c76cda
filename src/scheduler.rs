//! The durable job runner. One thread sleeps until the earliest due job (woken early when a webhook enqueues
//! one), claims due jobs in a transaction that also takes the send-time decision and readies each message in
//! state `sending`, and hands them to a small pool of workers that call the provider and record the outcome.
//!
//! Nothing is sent twice by a retry: a send interrupted by a crash, or whose outcome the provider left
//! unclear, is reconciled by asking the provider before anything is resent.
//! Depends on store, providers, policy, events and clock.

use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::events::{self, Outcome, Send};
use crate::policy;
use crate::providers::{Lookup, Providers, SendError};
use crate::store::{jobs, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Jobs claimed per transaction.
const BATCH: usize = 64;
/// How long a claimed job may stay running before it counts as interrupted.
const LEASE_MS: Millis = 5 * 60_000;
/// The longest the scheduler sleeps with nothing due, so its heartbeat stays fresh.
const MAX_IDLE_MS: Millis = 10_000;
/// How often running jobs are checked for an expired lease.
const LEASE_CHECK_MS: Millis = 60_000;

/// What the scheduler works with.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub store: Store,
    /// Provider accounts by name.
    pub providers: Providers,
    /// The configuration (businesses and their scripts).
    pub config: Arc<Config>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

enum Signal {
    Wake,
    Shutdown,
}

/// Controls a running scheduler.
pub struct Handle {
    signals: Mutex<mpsc::Sender<Signal>>,
    heartbeat: Arc<AtomicI64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Handle {
    /// Tells the scheduler a job was added, so a due time sooner than its sleep is not missed.
    pub fn wake(&self) {
        if let Ok(tx) = self.signals.lock() {
            let _ = tx.send(Signal::Wake);
        }
    }

    /// When the scheduler loop last ran.
    pub fn heartbeat(&self) -> Millis {
        self.heartbeat.load(Ordering::SeqCst)
    }

    /// Whether the loop ran recently enough (for `/healthz`).
    pub fn alive(&self, now: Millis) -> bool {
        now - self.heartbeat() < 6 * MAX_IDLE_MS
    }

    /// Stops claiming, lets the workers finish what they hold, and waits for the threads.
    pub fn shutdown(&self) {
        if let Ok(tx) = self.signals.lock() {
            let _ = tx.send(Signal::Shutdown);
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the scheduler thread and `workers` send workers.
pub fn spawn(deps: Deps, workers: usize) -> std::io::Result<Handle> {
    let (tx, rx) = mpsc::channel();
    let heartbeat = Arc::new(AtomicI64::new(deps.clock.now()));
    let beat = Arc::clone(&heartbeat);
    let thread = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || run(&deps, &rx, &beat, workers.max(1)))?;
    Ok(Handle {
        signals: Mutex::new(tx),
        heartbeat,
        thread: Mutex::new(Some(thread)),
    })
}

fn run(deps: &Deps, signals: &mpsc::Receiver<Signal>, heartbeat: &AtomicI64, workers: usize) {
    let (work_tx, work_rx) = mpsc::sync_channel::<Send>(BATCH);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let pool: Vec<JoinHandle<()>> = (0..workers)
        .filter_map(|i| {
            let deps = deps.clone();
            let rx = Arc::clone(&work_rx);
            std::thread::Builder::new()
                .name(format!("sender-{i}"))
                .spawn(move || worker(&deps, &rx))
                .ok()
        })
        .collect();

    recover(deps, true);
    let mut last_lease_check = deps.clock.now();
    loop {
        let now = deps.clock.now();
        heartbeat.store(now, Ordering::SeqCst);
        if now - last_lease_check >= LEASE_CHECK_MS {
            recover(deps, false);
            last_lease_check = now;
        }
        let claimed = match claim(deps, now, BATCH) {
            Ok(sends) => sends,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim due jobs");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH;
        for send in claimed {
            if work_tx.send(send).is_err() {
                break;
            }
        }
        let wait = if full {
            0
        } else {
            match deps.store.read(jobs::next_due) {
                Ok(Some(due)) => (due - deps.clock.now()).clamp(0, MAX_IDLE_MS),
                Ok(None) => MAX_IDLE_MS,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the next due job");
                    1_000
                }
            }
        };
        match signals.recv_timeout(Duration::from_millis(u64::try_from(wait).unwrap_or(0))) {
            Ok(Signal::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Signal::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    drop(work_tx);
    for t in pool {
        let _ = t.join();
    }
}

fn worker(deps: &Deps, rx: &Mutex<mpsc::Receiver<Send>>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match next {
            Ok(send) => deliver(deps, &send),
            Err(_) => return,
        }
    }
}

/// Claims up to `limit` due jobs and readies their messages, in one transaction.
pub fn claim(deps: &Deps, now: Millis, limit: usize) -> crate::store::Result<Vec<Send>> {
    let config = Arc::clone(&deps.config);
    deps.store.write(move |c| {
        let mut sends = Vec::new();
        for job in jobs::claim_due(c, now, limit, LEASE_MS)? {
            if let Some(send) = events::prepare_send(c, &config, &job, now)? {
                sends.push(send);
            }
        }
        Ok(sends)
    })
}

/// Calls the provider for one readied send and records the outcome.
pub fn deliver(deps: &Deps, send: &Send) {
    let span = tracing::info_span!(
        "send",
        job = send.job_id,
        message = send.message_id,
        attempt = send.attempt
    );
    let _enter = span.enter();
    let sent_at = deps.clock.now();
    let outcome = match deps.providers.get(&send.provider) {
        None => Outcome::GaveUp {
            message: format!("provider {:?} is no longer configured", send.provider),
        },
        Some(provider) => {
            match provider.send_sms(&send.sms) {
                Ok(accepted) => Outcome::Accepted { accepted, sent_at },
                Err(SendError::Rejected { code, message }) => Outcome::Rejected { code, message },
                Err(SendError::Retryable {
                    message,
                    retry_after,
                }) => retry(send, message, retry_after, deps.clock.now()),
                Err(SendError::Ambiguous { message }) => {
                    match provider.find_sent(&send.sms, send.prepared_at) {
                    Lookup::Sent(accepted) => Outcome::Accepted { accepted, sent_at },
                    Lookup::NotSent => retry(send, message, None, deps.clock.now()),
                    Lookup::Unknown(why) => Outcome::Unknown {
                        message: format!("{message}; and the provider could not say whether it was sent: {why}"),
                    },
                }
                }
            }
        }
    };
    match &outcome {
        Outcome::Accepted { accepted, .. } => {
            tracing::info!(sid = %accepted.sid, "text accepted by the provider")
        }
        Outcome::Retry { message, .. } => tracing::warn!(%message, "send failed; will retry"),
        other => tracing::warn!(outcome = ?other, "send did not go through"),
    }
    record(deps, send, &outcome);
}

fn retry(send: &Send, message: String, retry_after: Option<Duration>, now: Millis) -> Outcome {
    if send.attempt >= send.max_attempts {
        return Outcome::GaveUp {
            message: format!("{message} (gave up after {} attempts)", send.attempt),
        };
    }
    let after = retry_after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Outcome::Retry {
        message,
        at: now + policy::retry_delay_ms(send.attempt, after, fastrand::f64()),
    }
}

fn record(deps: &Deps, send: &Send, outcome: &Outcome) {
    let now = deps.clock.now();
    let (s, o) = (send.clone(), outcome.clone());
    if let Err(e) = deps
        .store
        .write(move |c| events::record_outcome(c, &s, &o, now))
    {
        // The job stays running; lease recovery reconciles it with the provider.
        tracing::error!(error = %e, "cannot record a send's outcome");
    }
}

/// Reconciles sends that were under way when the process stopped (`all`, at start-up) or whose lease ran
/// out: asks the provider whether each went out, and only resends what certainly did not.
pub fn recover(deps: &Deps, all: bool) {
    let now = deps.clock.now();
    let interrupted = match deps
        .store
        .write(move |c| events::interrupted_sends(c, now, all, LEASE_MS))
    {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "cannot look for interrupted sends");
            return;
        }
    };
    for (job, send) in interrupted {
        let Some(send) = send else {
            let id = job.id;
            let _ = deps
                .store
                .write(move |c| events::requeue(c, id, "interrupted before sending", now));
            continue;
        };
        let lookup = match deps.providers.get(&send.provider) {
            Some(p) => p.find_sent(&send.sms, send.prepared_at),
            None => Lookup::Unknown(format!(
                "provider {:?} is no longer configured",
                send.provider
            )),
        };
        tracing::info!(job = job.id, ?lookup, "reconciled an interrupted send");
        match lookup {
            Lookup::Sent(accepted) => record(
                deps,
                &send,
                &Outcome::Accepted {
                    accepted,
                    sent_at: send.prepared_at,
                },
            ),
            Lookup::NotSent => {
                let id = job.id;
                let _ = deps.store.write(move |c| {
                    events::requeue(c, id, "interrupted; the provider has no record of it", now)
                });
            }
            Lookup::Unknown(why) => record(
                deps,
                &send,
                &Outcome::Unknown {
                    message: format!(
                        "interrupted, and the provider could not say whether it was sent: {why}"
                    ),
                },
            ),
        }
    }
}

/// Claims and sends everything due at `now` on the calling thread; returns how many sends were attempted.
/// Tests drive the scheduler with this and a manual clock.
pub fn run_due(deps: &Deps, now: Millis) -> crate::store::Result<usize> {
    let mut total = 0;
    loop {
        let sends = claim(deps, now, BATCH)?;
        let n = sends.len();
        for s in &sends {
            deliver(deps, s);
        }
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::events;
    use crate::model::{CallReport, CallReportKind};
    use crate::providers::{Accepted, OutgoingSms, Provider, SignedRequest};
    use std::collections::{BTreeMap, VecDeque};

    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<OutgoingSms>>,
        failures: Mutex<VecDeque<SendError>>,
    }

    impl Provider for Recorder {
        fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError> {
            if let Some(e) = self.failures.lock().unwrap().pop_front() {
                return Err(e);
            }
            self.sent.lock().unwrap().push(sms.clone());
            Ok(Accepted {
                sid: format!("SM{}", self.sent.lock().unwrap().len()),
                status: "queued".into(),
            })
        }
        fn find_sent(&self, sms: &OutgoingSms, _since: Millis) -> Lookup {
            if self.sent.lock().unwrap().contains(sms) {
                Lookup::Sent(Accepted {
                    sid: "SMfound".into(),
                    status: "sent".into(),
                })
            } else {
                Lookup::NotSent
            }
        }
        fn verify(&self, _: &SignedRequest<'_>) -> bool {
            true
        }
    }

    const T0: Millis = 1_790_000_000_000;

    fn setup() -> (tempfile::TempDir, Deps, Arc<Recorder>, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let recorder = Arc::new(Recorder::default());
        let mut map: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        map.insert(
            "simulator".into(),
            Arc::clone(&recorder) as Arc<dyn Provider>,
        );
        let clock = Arc::new(ManualClock::new(T0));
        let deps = Deps {
            store,
            providers: Providers::from_map(map),
            config: Arc::new(Config::default()),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
        };
        (dir, deps, recorder, clock)
    }

    fn missed_call(deps: &Deps, sid: &str, from: &str, at: Millis) {
        let config = Arc::clone(&deps.config);
        let report = CallReport {
            call_sid: sid.into(),
            from: from.into(),
            to: "+16025550100".into(),
            direction: Some("inbound".into()),
            kind: CallReportKind::Status {
                call_status: "no-answer".into(),
                duration_secs: None,
            },
        };
        deps.store
            .write(move |c| events::call_report(c, &config.businesses[0], "simulator", &report, at))
            .unwrap();
    }

    #[test]
    fn sends_at_the_due_time_and_only_once() {
        let (_dir, deps, recorder, _) = setup();
        missed_call(&deps, "CA1", "+14805550111", T0);
        assert_eq!(run_due(&deps, T0 + 19_999).unwrap(), 0);
        assert!(recorder.sent.lock().unwrap().is_empty());
        assert_eq!(run_due(&deps, T0 + 20_000).unwrap(), 1);
        assert_eq!(run_due(&deps, T0 + 20_000).unwrap(), 0);
        assert_eq!(run_due(&deps, T0 + 99_000).unwrap(), 0);
        let sent = recorder.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "+14805550111");
        assert_eq!(sent[0].from, "+16025550100");
    }

    #[test]
    fn transient_failures_back_off_then_send_once() {
        let (_dir, deps, recorder, clock) = setup();
        recorder.failures.lock().unwrap().extend([
            SendError::Retryable {
                message: "HTTP 503".into(),
                retry_after: None,
            },
            SendError::Retryable {
                message: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(60)),
            },
        ]);
        missed_call(&deps, "CA2", "+14805550112", T0);
        let due = T0 + 20_000;
        clock.set(due);
        run_due(&deps, due).unwrap();
        // First retry after 5-6 s.
        assert_eq!(run_due(&deps, due + 4_999).unwrap(), 0);
        clock.set(due + 6_000);
        assert_eq!(run_due(&deps, due + 6_000).unwrap(), 1);
        // Second retry honours Retry-After: 60 s.
        clock.set(due + 6_000 + 59_000);
        assert_eq!(run_due(&deps, due + 6_000 + 59_000).unwrap(), 0);
        assert_eq!(run_due(&deps, due + 6_000 + 60_000).unwrap(), 1);
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
        let attempts: i64 = deps
            .store
            .read(|c| Ok(jobs::get(c, 1)?.attempts.into()))
            .unwrap();
        assert_eq!(attempts, 3);
    }

    #[test]
    fn an_interrupted_send_that_went_out_is_recorded_not_resent() {
        let (_dir, deps, recorder, clock) = setup();
        missed_call(&deps, "CA3", "+14805550113", T0);
        let due = T0 + 20_000;
        // Claimed (message in state `sending`), then the provider took it, then the process died.
        let sends = claim(&deps, due, 10).unwrap();
        assert_eq!(sends.len(), 1);
        recorder.sent.lock().unwrap().push(sends[0].sms.clone());
        clock.set(due + 1_000);
        recover(&deps, true);
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
        let (state, sid) = deps
            .store
            .read(|c| {
                let j = jobs::get(c, 1)?;
                let m = crate::store::messages::get(c, j.message_id.unwrap())?;
                Ok((j.state, m.provider_sid))
            })
            .unwrap();
        assert_eq!(state, "done");
        assert_eq!(sid.as_deref(), Some("SMfound"));
    }
}
