//! The durable job runner. One thread sleeps until the earliest due job (woken early when a webhook enqueues
//! one), claims due jobs in a transaction that also takes the send-time decision and readies each message in
//! state `sending`, and hands the work to a small pool of workers that call the provider (or an alert
//! webhook) and record the outcome. Each sending number is paced to its business's `send_rate`: texts over
//! the rate wait in the queue, they are not dropped.
//!
//! Nothing is sent twice by a retry: a text interrupted by a crash, or whose outcome the provider left
//! unclear, is reconciled by asking the provider before anything is resent.
//! Depends on store, providers, policy, outbox and clock.

use crate::clock::{Clock, Millis};
use crate::model::SuppressReason;
use crate::outbox::{self, Outcome, Send, Work};
use crate::policy;
use crate::providers::{Lookup, Providers, SendError};
use crate::store::{contacts, jobs, Store};
use crate::webhook;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Jobs claimed per transaction.
const BATCH: usize = 64;
/// How long a claimed job may stay running before it counts as interrupted. A worker renews it when it
/// starts the work, and one piece of work takes at most two provider calls of at most `send_timeout`
/// (2 minutes at most) each, so a lease never runs out under a worker that is still at it.
const LEASE_MS: Millis = 5 * 60_000;
/// The longest the scheduler sleeps with nothing due: jobs the CLI adds are picked up within this.
const MAX_IDLE_MS: Millis = 2_000;
/// How often periodic work (digests) is checked for its next run.
const PERIODIC_CHECK_MS: Millis = 60_000;
/// How often running jobs are checked for an expired lease.
const LEASE_CHECK_MS: Millis = 60_000;
/// How often old idempotency tokens and finished jobs are pruned, and how old they must be.
const PRUNE_EVERY_MS: Millis = 3_600_000;
const PRUNE_AFTER_MS: Millis = 30 * 24 * 3_600_000;

/// What the scheduler works with.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub store: Store,
    /// Provider accounts by name.
    pub providers: Providers,
    /// The configuration (businesses and their scripts).
    pub config: crate::config::Shared,
    /// The public base URL, for links in alerts.
    pub public_url: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Next free send slot per sending number.
    pub pace: Arc<Mutex<HashMap<String, Millis>>>,
    /// When each sending number may next start a send to the provider.
    pub spacing: Arc<Mutex<HashMap<String, Millis>>>,
    /// HTTP client for alert webhooks and push notifications.
    pub http: Lazy,
    /// HTTP client for signed events: redirects are not followed (a signed body is for the URL configured).
    pub events_http: Lazy,
}

/// An HTTP client made on first use: making one sets up TLS (a root store, the crypto provider), which an
/// appliance that never posts anywhere should not pay for in memory.
#[derive(Clone)]
pub struct Lazy(Arc<std::sync::OnceLock<ureq::Agent>>, fn() -> ureq::Agent);

impl Lazy {
    /// A client that `make` builds when it is first needed.
    pub fn new(make: fn() -> ureq::Agent) -> Self {
        Self(Arc::default(), make)
    }

    /// The client.
    pub fn get(&self) -> &ureq::Agent {
        self.0.get_or_init(self.1)
    }
}

fn alert_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
}

fn event_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirects(0)
        .build()
}

impl Deps {
    /// Dependencies with an empty pace table and a default HTTP client.
    pub fn new(
        store: Store,
        providers: Providers,
        config: crate::config::Shared,
        public_url: String,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            providers,
            config,
            public_url,
            clock,
            pace: Arc::default(),
            spacing: Arc::default(),
            http: Lazy::new(alert_agent),
            events_http: Lazy::new(event_agent),
        }
    }
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
        now - self.heartbeat() < 30_000
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
    let (work_tx, work_rx) = mpsc::sync_channel::<Work>(BATCH);
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
    let mut last_prune = 0;
    let mut last_periodic = 0;
    loop {
        let now = deps.clock.now();
        heartbeat.store(now, Ordering::SeqCst);
        if now - last_lease_check >= LEASE_CHECK_MS {
            recover(deps, false);
            last_lease_check = now;
        }
        if now - last_periodic >= PERIODIC_CHECK_MS {
            periodic(deps, now);
            last_periodic = now;
        }
        if now - last_prune >= PRUNE_EVERY_MS {
            match deps.store.write(move |c| {
                let n = jobs::prune(c, now - PRUNE_AFTER_MS)?;
                Ok::<_, crate::store::Error>(
                    n + crate::store::outbound::prune(c, now - PRUNE_AFTER_MS)?,
                )
            }) {
                Ok(n) if n > 0 => {
                    tracing::info!(rows = n, "pruned old idempotency tokens and finished jobs")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune"),
            }
            let policy = deps.config.get().retention.clone();
            match crate::retention::apply(&deps.store, &policy, now, crate::retention::BATCH) {
                Ok(a) if a.redacted + a.pruned > 0 => tracing::info!(
                    redacted = a.redacted,
                    pruned = a.pruned,
                    "retention: old message bodies redacted, old calls and receipts deleted"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot apply the retention policy"),
            }
            last_prune = now;
        }
        let (claimed, work) = match claim(deps, now, BATCH) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim due jobs");
                (0, Vec::new())
            }
        };
        for w in work {
            if work_tx.send(w).is_err() {
                break;
            }
        }
        let wait = if claimed == BATCH {
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

fn worker(deps: &Deps, rx: &Mutex<mpsc::Receiver<Work>>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match next {
            Ok(work) => perform(deps, &work),
            Err(_) => return,
        }
    }
}

/// The time between two texts from one number at `rate` texts per second.
fn gap_ms(rate: f64) -> Millis {
    #[allow(clippy::cast_possible_truncation)]
    let gap = (1000.0 / rate.max(0.001)).ceil() as Millis;
    gap
}

/// Reserves a send slot for `from` at `rate` texts per second: `Ok` to send now, `Err(at)` to wait until `at`.
fn reserve(
    pace: &Mutex<HashMap<String, Millis>>,
    from: &str,
    rate: f64,
    now: Millis,
) -> Result<(), Millis> {
    let Ok(mut slots) = pace.lock() else {
        return Ok(());
    };
    let next = slots.get(from).copied().unwrap_or(now);
    if next > now {
        return Err(next);
    }
    let gap = gap_ms(rate);
    slots.insert(from.to_string(), now + gap);
    Ok(())
}

/// Waits until `from` may start its next send. Slots are reserved when texts are claimed, but a commit
/// delayed by a slow disk can make one send start late and the next one on time, closer together than
/// the number's rate allows; the provider counts when requests arrive, so spacing is kept here as well.
fn keep_spacing(deps: &Deps, from: &str, business_id: &str) {
    let rate = deps
        .config
        .get()
        .business(business_id)
        .map_or(1.0, |b| b.send_rate);
    let gap = gap_ms(rate);
    let now = deps.clock.now();
    let wait = {
        let Ok(mut next) = deps.spacing.lock() else {
            return;
        };
        let start = next.get(from).copied().unwrap_or(now).max(now);
        next.insert(from.to_string(), start + gap);
        start - now
    };
    if wait > 0 {
        // Only ever the jitter between claim and send; bounded so a very slow rate never holds a worker long.
        deps.clock.wait(wait.min(MAX_SPACING_WAIT_MS));
    }
}

/// The longest a worker waits for its number's turn before sending.
const MAX_SPACING_WAIT_MS: Millis = 10_000;

/// Claims up to `limit` due jobs and readies their work, in one transaction; texts over their number's send
/// rate go back to wait for their slot. Returns how many jobs were claimed and the work to do.
pub fn claim(deps: &Deps, now: Millis, limit: usize) -> crate::store::Result<(usize, Vec<Work>)> {
    let (config, pace, public) = (
        deps.config.get(),
        Arc::clone(&deps.pace),
        deps.public_url.clone(),
    );
    deps.store.write(move |c| {
        let claimed = jobs::claim_due(c, now, limit, LEASE_MS)?;
        let mut work = Vec::new();
        for job in &claimed {
            match outbox::prepare(c, &config, &public, job, now)? {
                Some(Work::Sms(send)) => {
                    let rate = config
                        .business(&send.business_id)
                        .map_or(1.0, |b| b.send_rate);
                    match reserve(&pace, &send.sms.from, rate, now) {
                        Ok(()) => work.push(Work::Sms(send)),
                        Err(at) => outbox::hold_until(c, &send, at, now)?,
                    }
                }
                Some(other) => work.push(other),
                None => {}
            }
        }
        Ok((claimed.len(), work))
    })
}

/// Does one piece of work and records how it ended. Work that waited in the queue past its lease, and was
/// taken back by lease recovery meanwhile, is dropped unstarted: only one worker ever acts on a claim.
pub fn perform(deps: &Deps, work: &Work) {
    let (job, attempt) = match work {
        Work::Sms(s) | Work::Verify(s) => (s.job_id, s.attempt),
        Work::Post(p) => (p.job_id, p.attempt),
        Work::Call(c) => (c.job_id, c.attempt),
        Work::Push(p) => (p.job_id, p.attempt),
        Work::Event(d) => (d.job_id, d.attempt),
        Work::Email(m) => (m.job_id, m.attempt),
        Work::Backup { job_id, attempt } => (*job_id, *attempt),
    };
    let now = deps.clock.now();
    match deps
        .store
        .write(move |c| jobs::start(c, job, attempt, now + LEASE_MS, now))
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                job,
                "work waited past its lease and was taken back; not doing it twice"
            );
            return;
        }
        Err(e) => {
            // Unstarted: lease recovery puts it back.
            tracing::error!(job, error = %e, "cannot start work");
            return;
        }
    }
    match work {
        Work::Sms(send) => deliver(deps, send),
        Work::Verify(send) => verify(deps, send),
        Work::Post(post) => {
            let outcome = match webhook::post(deps.http.get(), post) {
                Ok(()) => accepted("posted"),
                Err(e) => classify(
                    e,
                    post.attempt,
                    post.max_attempts,
                    DEFAULT_BACKOFF_MS,
                    deps.clock.now(),
                ),
            };
            log_outcome(&outcome, "alert webhook");
            record_job(deps, post.job_id, &outcome);
        }
        Work::Call(call) => {
            let outcome = match deps.providers.get(&call.provider) {
                None => Outcome::GaveUp {
                    message: format!("provider {:?} is no longer configured", call.provider),
                },
                Some(p) => match p.place_call(&call.from, &call.to, &call.say) {
                    Ok(sid) => accepted(&sid),
                    Err(e) => classify(
                        e,
                        call.attempt,
                        call.max_attempts,
                        backoff_ms(deps, &call.provider),
                        deps.clock.now(),
                    ),
                },
            };
            log_outcome(&outcome, "alert call");
            record_job(deps, call.job_id, &outcome);
        }
        Work::Push(push) => {
            let outcome = notify(deps, push);
            log_outcome(&outcome, "push notification");
            record_job(deps, push.job_id, &outcome);
        }
        Work::Event(d) => deliver_event(deps, d),
        Work::Backup { job_id, .. } => back_up(deps, *job_id),
        Work::Email(mail) => {
            let outcome = send_email(deps, mail);
            log_outcome(&outcome, "email");
            record_job(deps, mail.job_id, &outcome);
        }
    }
}

/// Runs a scheduled backup on this worker (the writer keeps committing meanwhile) and records it.
fn back_up(deps: &Deps, job_id: i64) {
    let config = deps.config.get();
    let Some(settings) = config.backup.clone() else {
        return;
    };
    let outcome = crate::backup::scheduled(&settings, deps.store.path(), deps.clock.now())
        .map_err(|e| e.to_string());
    match &outcome {
        Ok((done, removed)) => tracing::info!(
            path = %done.path.display(),
            bytes = done.bytes,
            removed = removed.len(),
            "backup written and checked"
        ),
        Err(why) => tracing::error!(error = %why, "backup failed"),
    }
    let now = deps.clock.now();
    if let Err(e) = deps
        .store
        .write(move |c| crate::backup::record(c, &config, job_id, &outcome, now))
    {
        tracing::error!(error = %e, "cannot record a backup");
    }
}

/// POSTs one signed event and records how it went.
fn deliver_event(deps: &Deps, d: &crate::outbound::Delivery) {
    use crate::outbound::Posted;
    let posted = crate::outbound::post(deps.events_http.get(), d, deps.clock.now() / 1000);
    let now = deps.clock.now();
    let result = match posted {
        Posted::Delivered(code) => outbox::Delivered::Ok(code),
        Posted::Gone => outbox::Delivered::Failed {
            code: Some(410),
            message: "the endpoint answered 410 Gone: it is paused until an owner resumes it"
                .into(),
            gone: true,
        },
        Posted::Refused { code, message } => outbox::Delivered::Failed {
            code: Some(code),
            message,
            gone: false,
        },
        Posted::Retry {
            code,
            message,
            retry_after,
        } => match crate::outbound::next_attempt(d, retry_after, fastrand::f64(), now) {
            Some(at) => outbox::Delivered::Retry { code, message, at },
            None => outbox::Delivered::Failed {
                code,
                message: format!("{message}; gave up 24 hours after the event"),
                gone: false,
            },
        },
    };
    let outcome = match &result {
        outbox::Delivered::Ok(_) => "delivered",
        outbox::Delivered::Retry { .. } => "retry",
        outbox::Delivered::Failed { gone: true, .. } => "gone",
        outbox::Delivered::Failed { .. } => "failed",
    };
    crate::metrics::inc("textback_event_deliveries_total", &[("outcome", outcome)]);
    tracing::info!(
        delivery = d.delivery_id,
        event = %d.event_uid,
        outcome = ?result,
        "event delivery"
    );
    let (d, r) = (d.clone(), result);
    if let Err(e) = deps
        .store
        .write(move |c| outbox::record_delivery(c, &d, &r, now))
    {
        tracing::error!(error = %e, "cannot record an event delivery");
    }
}

/// Sends one email. A message the server may have taken is not sent again: it is recorded as unknown.
fn send_email(deps: &Deps, mail: &outbox::Mail) -> Outcome {
    let config = deps.config.get();
    let Some(cfg) = config.email.as_ref() else {
        return Outcome::GaveUp {
            message: "email is not configured ([email] is missing)".into(),
        };
    };
    match crate::email::send(cfg, &mail.email) {
        crate::email::Sent::Accepted(answer) => accepted(&answer),
        crate::email::Sent::Retry(message) => retry(
            mail.attempt,
            mail.max_attempts,
            message,
            cfg.retry_backoff.millis(),
            None,
            deps.clock.now(),
        ),
        crate::email::Sent::Rejected(message) => Outcome::Rejected {
            failure: crate::model::Failure {
                reason: crate::model::FailReason::Other,
                code: None,
            },
            message,
        },
        crate::email::Sent::Unclear(message) => Outcome::Unknown { message },
    }
}

/// Sends one Web Push notification. A subscription the push service says is gone is deleted.
fn notify(deps: &Deps, p: &outbox::Push) -> Outcome {
    let rejected = |message: String| Outcome::Rejected {
        failure: crate::model::Failure {
            reason: crate::model::FailReason::Other,
            code: None,
        },
        message,
    };
    let key = deps
        .store
        .read(|c| crate::store::meta::get(c, crate::push::KEY_META));
    let Some(vapid) = key
        .ok()
        .flatten()
        .and_then(|k| crate::push::Vapid::from_stored(&k))
    else {
        return rejected("the appliance has no VAPID key yet".into());
    };
    let sub = &p.subscription;
    let sent = crate::push::check_endpoint(&sub.endpoint, &deps.config.get().push.services)
        .map_err(crate::push::Error::Rejected)
        .and_then(|endpoint| {
            let keys = crate::push::Keys::parse(&sub.p256dh, &sub.auth)
                .map_err(crate::push::Error::Rejected)?;
            crate::push::send(
                deps.http.get(),
                &vapid,
                &p.contact,
                &endpoint,
                &keys,
                &p.note,
                deps.clock.now() / 1000,
            )
        });
    let now = deps.clock.now();
    match sent {
        Ok(()) => {
            let id = sub.id;
            if let Err(e) = deps
                .store
                .write(move |c| crate::store::push::delivered(c, id, now))
            {
                tracing::warn!(error = %e, "cannot note a push delivery");
            }
            accepted("pushed")
        }
        Err(gone @ crate::push::Error::Gone(_)) => {
            let id = sub.id;
            if let Err(e) = deps.store.write(move |c| crate::store::push::remove(c, id)) {
                tracing::error!(error = %e, "cannot remove a gone push subscription");
            }
            tracing::info!(subscription = id, "push subscription gone; removed");
            rejected(gone.to_string())
        }
        Err(crate::push::Error::Retryable {
            message,
            retry_after,
        }) => classify(
            SendError::Retryable {
                message,
                retry_after,
            },
            p.attempt,
            p.max_attempts,
            DEFAULT_BACKOFF_MS,
            now,
        ),
        Err(crate::push::Error::Rejected(message)) => rejected(message),
    }
}

fn accepted(sid: &str) -> Outcome {
    Outcome::Accepted {
        accepted: crate::providers::Accepted {
            sid: sid.to_string(),
            status: "done".into(),
        },
        sent_at: 0,
    }
}

/// The first retry's wait for alert webhooks (they have no provider settings).
const DEFAULT_BACKOFF_MS: Millis = 5_000;

/// A provider's `retry_backoff`, in milliseconds.
fn backoff_ms(deps: &Deps, provider: &str) -> Millis {
    deps.config
        .get()
        .providers
        .get(provider)
        .map_or(DEFAULT_BACKOFF_MS, |p| p.retry_backoff().millis())
}

/// A provider's `settle_time`, in milliseconds.
fn settle_ms(deps: &Deps, provider: &str) -> Millis {
    deps.config
        .get()
        .providers
        .get(provider)
        .map_or(0, |p| p.settle_time().millis())
}

/// Maps a failure to what happens next: final, a retry with backoff, or giving up after the last attempt.
/// (Alerts are not texts to customers: an unclear one is retried, since an alert twice beats none.)
fn classify(
    e: SendError,
    attempt: u32,
    max_attempts: u32,
    backoff: Millis,
    now: Millis,
) -> Outcome {
    match e {
        SendError::Rejected { failure, message } => Outcome::Rejected { failure, message },
        SendError::Retryable {
            message,
            retry_after,
        } => retry(attempt, max_attempts, message, backoff, retry_after, now),
        SendError::Ambiguous { message } => {
            retry(attempt, max_attempts, message, backoff, None, now)
        }
    }
}

fn log_outcome(outcome: &Outcome, what: &str) {
    match outcome {
        Outcome::Accepted { accepted, .. } => tracing::info!(id = %accepted.sid, "{what} accepted"),
        Outcome::Retry { message, .. } => tracing::warn!(%message, "{what} failed; will retry"),
        other => tracing::warn!(outcome = ?other, "{what} did not go through"),
    }
}

/// Calls the provider for one readied text and records the outcome.
pub fn deliver(deps: &Deps, send: &Send) {
    let span = tracing::info_span!(
        "send",
        job = send.job_id,
        message_id = send.message_id,
        attempt = send.attempt
    );
    let _enter = span.enter();
    let outcome = match deps.providers.get(&send.provider) {
        None => Outcome::GaveUp {
            message: format!("provider {:?} is no longer configured", send.provider),
        },
        Some(provider) => {
            if send.lookup && !textable_line(deps, provider.as_ref(), &send.sms.to) {
                Outcome::Suppressed(SuppressReason::Landline)
            } else {
                keep_spacing(deps, &send.sms.from, &send.business_id);
                let sent_at = deps.clock.now();
                crate::metrics::observe_ms(
                    "textback_send_lateness_seconds",
                    &[],
                    sent_at - send.due_at,
                );
                let started = std::time::Instant::now();
                let result = provider.send_sms(&send.sms);
                let account = [("provider", send.provider.as_str())];
                crate::metrics::observe(
                    "textback_send_duration_seconds",
                    &account,
                    started.elapsed().as_secs_f64(),
                );
                let (outcome, class) = match &result {
                    Ok(_) => ("accepted", None),
                    Err(SendError::Rejected { .. }) => ("rejected", Some("rejected")),
                    Err(SendError::Retryable { .. }) => ("retry", Some("retryable")),
                    Err(SendError::Ambiguous { .. }) => ("unclear", Some("ambiguous")),
                };
                crate::metrics::inc(
                    "textback_sends_total",
                    &[("provider", send.provider.as_str()), ("outcome", outcome)],
                );
                if let Some(class) = class {
                    crate::metrics::inc(
                        "textback_provider_errors_total",
                        &[("provider", send.provider.as_str()), ("class", class)],
                    );
                }
                match result {
                    Ok(accepted) => Outcome::Accepted { accepted, sent_at },
                    // It may have been accepted: nothing is declared unsent until the provider has had time
                    // to show it (a slow accept must not become a second text).
                    Err(SendError::Ambiguous { message }) => Outcome::Check {
                        message,
                        at: deps.clock.now() + settle_ms(deps, &send.provider),
                    },
                    Err(e) => classify(
                        e,
                        send.attempt,
                        send.max_attempts,
                        backoff_ms(deps, &send.provider),
                        deps.clock.now(),
                    ),
                }
            }
        }
    };
    log_outcome(&outcome, "text");
    record(deps, send, &outcome);
}

/// Looks the number's line type up and caches it; a failed lookup lets the text go (the send will tell).
fn textable_line(deps: &Deps, provider: &dyn crate::providers::Provider, to: &str) -> bool {
    match provider.line_type(to) {
        Ok(kind) => {
            let (phone, k, now) = (to.to_string(), kind.clone(), deps.clock.now());
            if let Err(e) = deps
                .store
                .write(move |c| outbox::record_line_type(c, &phone, &k, now))
            {
                tracing::warn!(error = %e, "cannot cache a line type");
            }
            contacts::is_textable_line(&kind)
        }
        Err(why) => {
            tracing::warn!(%why, "line type lookup failed; sending anyway");
            true
        }
    }
}

/// Asks the provider whether a text whose send was unclear went out: recorded if it did, sent again (it is
/// due at once) if it certainly did not, asked again later if the provider cannot tell yet.
pub fn verify(deps: &Deps, send: &Send) {
    let now = deps.clock.now();
    let lookup = match deps.providers.get(&send.provider) {
        Some(p) => p.find_sent(&send.sms, send.prepared_at),
        None => Lookup::Unknown(format!(
            "provider {:?} is no longer configured",
            send.provider
        )),
    };
    tracing::info!(
        job = send.job_id,
        message_id = send.message_id,
        ?lookup,
        "checked an unclear send with the provider"
    );
    let outcome = match lookup {
        Lookup::Sent(accepted) => Outcome::Accepted {
            accepted,
            sent_at: send.prepared_at,
        },
        Lookup::NotSent => Outcome::Retry {
            message: "the provider has no record of it after the settle time; sending it again"
                .into(),
            at: now,
        },
        Lookup::Unknown(why) if send.attempt >= send.max_attempts => Outcome::Unknown {
            message: format!("the provider could not say whether it was sent: {why}"),
        },
        Lookup::Unknown(why) => Outcome::Check {
            message: format!("the provider could not say yet whether it was sent ({why})"),
            at: now
                + policy::retry_delay_ms(
                    send.attempt,
                    backoff_ms(deps, &send.provider),
                    None,
                    fastrand::f64(),
                ),
        },
    };
    record(deps, send, &outcome);
}

fn retry(
    attempt: u32,
    max_attempts: u32,
    message: String,
    backoff: Millis,
    retry_after: Option<Duration>,
    now: Millis,
) -> Outcome {
    if attempt >= max_attempts {
        return Outcome::GaveUp {
            message: format!("{message} (gave up after {attempt} attempts)"),
        };
    }
    let after = retry_after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Outcome::Retry {
        message,
        at: now + policy::retry_delay_ms(attempt, backoff, after, fastrand::f64()),
    }
}

fn record(deps: &Deps, send: &Send, outcome: &Outcome) {
    let now = deps.clock.now();
    let (s, o, config, public) = (
        send.clone(),
        outcome.clone(),
        deps.config.get(),
        deps.public_url.clone(),
    );
    if let Err(e) = deps
        .store
        .write(move |c| outbox::record_send(c, &config, &public, &s, &o, now))
    {
        // The job stays running; lease recovery reconciles it with the provider.
        tracing::error!(error = %e, "cannot record a send's outcome");
    }
}

fn record_job(deps: &Deps, job_id: i64, outcome: &Outcome) {
    let (o, now) = (outcome.clone(), deps.clock.now());
    if let Err(e) = deps
        .store
        .write(move |c| outbox::record_job(c, job_id, &o, now))
    {
        tracing::error!(error = %e, "cannot record a job's outcome");
    }
}

/// Puts back work that was under way when the process stopped (`all`, at start-up) or whose lease ran out. A
/// text that may have reached the provider is checked with it after its settle time (see [`verify`]),
/// never resent blindly; other work is due again at once. Alerts (webhooks, calls) cannot be asked about,
/// so they are sent again: an alert twice beats none.
pub fn recover(deps: &Deps, all: bool) {
    let (now, config) = (deps.clock.now(), deps.config.get());
    match deps
        .store
        .write(move |c| outbox::recover_interrupted(c, &config, now, all))
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "put back interrupted work"),
        Err(e) => tracing::error!(error = %e, "cannot look for interrupted sends"),
    }
}

/// Queues the next run of periodic work (each business's digest) that has none queued.
pub fn periodic(deps: &Deps, now: Millis) {
    let config = deps.config.get();
    // A digest or backup taken out of the file is called off when its queued run comes due.
    if config.businesses.iter().all(|b| b.digest.is_none()) && config.backup.is_none() {
        return;
    }
    if let Err(e) = deps.store.write(move |c| {
        crate::digest::ensure(c, &config, now)?;
        crate::backup::ensure(c, &config, now)
    }) {
        tracing::warn!(error = %e, "cannot queue periodic work");
    }
}

/// Claims and does everything due at `now` on the calling thread; returns how much work it handed out (a job
/// the claim settled itself, such as a digest run or a postponed text, is not counted).
/// Tests drive the scheduler with this and a manual clock.
pub fn run_due(deps: &Deps, now: Millis) -> crate::store::Result<usize> {
    let mut total = 0;
    loop {
        let (claimed, work) = claim(deps, now, BATCH)?;
        for w in &work {
            perform(deps, w);
        }
        total += work.len();
        if claimed < BATCH {
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
    use crate::providers::{
        Accepted, Answer, OutgoingSms, ParseError, Parsed, Provider, Refused, Reply, Request,
    };
    use std::collections::{BTreeMap, VecDeque};

    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<OutgoingSms>>,
        failures: Mutex<VecDeque<SendError>>,
        /// Lookups that answer "cannot tell" before the real answer.
        unsure: Mutex<usize>,
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
            let mut unsure = self.unsure.lock().unwrap();
            if *unsure > 0 {
                *unsure -= 1;
                return Lookup::Unknown("HTTP 503".into());
            }
            if self.sent.lock().unwrap().contains(sms) {
                Lookup::Sent(Accepted {
                    sid: "SMfound".into(),
                    status: "sent".into(),
                })
            } else {
                Lookup::NotSent
            }
        }
        fn verify(&self, _: &Request<'_>) -> Result<(), Refused> {
            Ok(())
        }
        fn parse(&self, req: &Request<'_>) -> Result<Parsed, ParseError> {
            Err(ParseError::NoSuchHook(req.hook.to_string()))
        }
        fn reply(&self, _: &Reply<'_>) -> Answer {
            Answer {
                content_type: "text/plain",
                body: String::new(),
            }
        }
        fn line_type(&self, _: &str) -> Result<String, String> {
            Ok("mobile".into())
        }
        fn place_call(&self, _: &str, _: &str, _: &str) -> Result<String, SendError> {
            Ok("CA1".into())
        }

        fn connect(&self) -> crate::providers::Connect {
            crate::providers::Connect {
                instructions: "",
                urls: vec![],
            }
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
        let mut config = crate::config::Config::default();
        // No quiet hours, no pacing: these tests are about timing and retries.
        config.businesses[0].quiet_hours = String::new();
        config.businesses[0].send_rate = 100.0;
        config.businesses[0].follow_ups.clear();
        let deps = Deps::new(
            store,
            Providers::from_map(map),
            crate::config::Shared::new(config),
            "http://127.0.0.1:8080".into(),
            Arc::clone(&clock) as Arc<dyn Clock>,
        );
        (dir, deps, recorder, clock)
    }

    fn missed_call(deps: &Deps, sid: &str, from: &str, at: Millis) {
        let config = deps.config.get();
        let report = CallReport {
            call_sid: sid.into(),
            from: from.into(),
            to: "+16025550100".into(),
            direction: crate::model::Direction::Inbound,
            caller_id: crate::model::CallerId::Unchecked,
            answered_by: crate::model::AnsweredBy::Unknown,
            kind: CallReportKind::Status {
                end: crate::model::CallEnd::NoAnswer,
                duration_secs: None,
            },
        };
        deps.store
            .write(move |c| {
                let env = events::Env::of(&config, &config.businesses[0], "http://127.0.0.1:8080");
                events::call_report(c, &env, &report, at)
            })
            .unwrap();
    }

    #[test]
    fn sends_from_one_number_start_a_rate_gap_apart_however_late_the_first_was() {
        let (_dir, deps, _recorder, clock) = setup();
        let rate = deps.config.get().businesses[0].send_rate;
        let id = deps.config.get().businesses[0].id.clone();
        let gap = gap_ms(rate);
        let cases: &[(&str, Millis, Millis)] = &[
            // (number, ms the clock moved on before the send, ms it waited for its turn)
            ("+16025550100", 0, 0),
            ("+16025550100", 0, gap),
            ("+16025550100", gap / 2, gap / 2),
            ("+16025550199", 0, 0),
            ("+16025550100", 2 * gap, 0),
        ];
        for (i, (from, before, want)) in cases.iter().enumerate() {
            clock.advance(*before);
            let start = clock.now();
            keep_spacing(&deps, from, &id);
            assert_eq!(clock.now() - start, *want, "case {i}");
        }
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
    fn a_follow_up_due_in_quiet_hours_waits_for_morning() {
        use crate::config::FollowUp;
        let (_dir, mut deps, recorder, clock) = setup();
        let mut config = (*deps.config.get()).clone();
        let biz = &mut config.businesses[0];
        biz.quiet_hours = "21:00-08:00".into();
        biz.max_deferral = crate::config::Dur(Duration::from_secs(12 * 3600));
        biz.follow_ups = vec![FollowUp {
            after: crate::config::Dur(Duration::from_secs(3600)),
            script: "Still there?".into(),
        }];
        deps.config = crate::config::Shared::new(config);
        // 19:30 in Phoenix: the text-back leaves 20 s later and its follow-up is due at 20:30:20, before quiet hours.
        let evening: Millis = 1_796_178_600_000; // 2026-12-02 02:30 UTC = 2026-12-01 19:30 Phoenix
        missed_call(&deps, "CA9", "+14805550119", evening);
        clock.set(evening + 20_000);
        assert_eq!(run_due(&deps, evening + 20_000).unwrap(), 1);
        // Due 20:30:20: sent.
        let due = evening + 20_000 + 3_600_000;
        assert_eq!(run_due(&deps, due).unwrap(), 1);
        assert_eq!(recorder.sent.lock().unwrap().len(), 2);

        // Now one whose follow-up falls due at night: it waits until 08:00.
        let late: Millis = evening + 3_700_000; // 20:31:40
        missed_call(&deps, "CA10", "+14805550120", late);
        assert_eq!(run_due(&deps, late + 20_000).unwrap(), 1);
        let night_due = late + 20_000 + 3_600_000; // 21:32
        assert_eq!(run_due(&deps, night_due).unwrap(), 0);
        let next: Millis = deps.store.read(jobs::next_due).unwrap().unwrap();
        assert_eq!(next, 1_796_223_600_000, "08:00 Phoenix on 2026-12-02");
        assert_eq!(run_due(&deps, next).unwrap(), 1);
        assert_eq!(recorder.sent.lock().unwrap().len(), 4);
    }

    #[test]
    fn an_unclear_send_is_checked_after_the_settle_time_and_resent_only_if_it_never_went() {
        for accepted_late in [true, false] {
            let (_dir, deps, recorder, clock) = setup();
            // The request times out; the provider took it (late) or lost it.
            recorder
                .failures
                .lock()
                .unwrap()
                .push_back(SendError::Ambiguous {
                    message: "timed out".into(),
                });
            missed_call(&deps, "CA4", "+14805550114", T0);
            let due = T0 + 20_000;
            clock.set(due);
            assert_eq!(run_due(&deps, due).unwrap(), 1);
            assert!(recorder.sent.lock().unwrap().is_empty());
            let status = |deps: &Deps| {
                deps.store
                    .read(|c| Ok(crate::store::messages::get(c, 1)?.status))
                    .unwrap()
            };
            assert_eq!(status(&deps), "checking");
            if accepted_late {
                let sms = OutgoingSms {
                    from: "+16025550100".into(),
                    to: "+14805550114".into(),
                    body: deps
                        .store
                        .read(|c| Ok(crate::store::messages::get(c, 1)?.body))
                        .unwrap(),
                    key: deps
                        .store
                        .read(|c| Ok(crate::outbox::sms_key(&crate::store::messages::get(c, 1)?)))
                        .unwrap(),
                };
                recorder.sent.lock().unwrap().push(sms);
            }
            // Nothing happens before the settle time (2 minutes by default)...
            clock.set(due + 119_000);
            assert_eq!(run_due(&deps, due + 119_000).unwrap(), 0);
            // ...then the provider is asked, and the text is resent only if it never went.
            clock.set(due + 120_000);
            run_due(&deps, due + 120_000).unwrap();
            run_due(&deps, due + 120_000).unwrap();
            assert_eq!(
                recorder.sent.lock().unwrap().len(),
                1,
                "late {accepted_late}"
            );
            let want = if accepted_late { "sent" } else { "queued" };
            assert_eq!(status(&deps), want, "late {accepted_late}");
        }
    }

    /// A text whose send timed out, parked for checking; returns its due time.
    fn unclear_send(deps: &Deps, recorder: &Recorder, clock: &ManualClock, from: &str) -> Millis {
        recorder
            .failures
            .lock()
            .unwrap()
            .push_back(SendError::Ambiguous {
                message: "timed out".into(),
            });
        missed_call(deps, &format!("CA-{from}"), from, T0);
        let due = T0 + 20_000;
        clock.set(due);
        assert_eq!(run_due(deps, due).unwrap(), 1);
        due
    }

    fn message_status(deps: &Deps) -> String {
        deps.store
            .read(|c| Ok(crate::store::messages::get(c, 1)?.status))
            .unwrap()
    }

    #[test]
    fn checks_look_from_when_the_send_began_however_often_they_repeat() {
        let (_dir, deps, recorder, clock) = setup();
        let due = unclear_send(&deps, &recorder, &clock, "+14805550115");
        // The provider cannot tell, twice; each check changes the row, never where the lookup starts.
        *recorder.unsure.lock().unwrap() = 2;
        let mut at = due + 120_000;
        for _ in 0..2 {
            clock.set(at);
            let (_, work) = claim(&deps, at, 10).unwrap();
            let [Work::Verify(send)] = work.as_slice() else {
                panic!("{work:?}")
            };
            assert_eq!(send.prepared_at, due, "the lookup window moved");
            perform(&deps, &work[0]);
            assert_eq!(message_status(&deps), "checking");
            at = deps.store.read(jobs::next_due).unwrap().unwrap();
        }
    }

    #[test]
    fn work_taken_back_by_lease_recovery_is_not_done_twice() {
        let (_dir, deps, recorder, clock) = setup();
        missed_call(&deps, "CA5", "+14805550116", T0);
        let due = T0 + 20_000;
        // Claimed, then stuck in the queue past its lease; recovery takes it back meanwhile.
        let (_, stale) = claim(&deps, due, 10).unwrap();
        clock.set(due + LEASE_MS + 1);
        recover(&deps, false);
        assert_eq!(message_status(&deps), "checking");
        perform(&deps, &stale[0]);
        assert!(
            recorder.sent.lock().unwrap().is_empty(),
            "the stale worker sent it"
        );
        // The recovered job checks, finds nothing, and sends it once.
        let settled = due + LEASE_MS + 1 + 120_000;
        clock.set(settled);
        run_due(&deps, settled).unwrap();
        run_due(&deps, settled).unwrap();
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_text_being_checked_is_not_called_off_by_an_opt_out() {
        let (_dir, deps, recorder, clock) = setup();
        let due = unclear_send(&deps, &recorder, &clock, "+14805550117");
        // It did go out (the provider was slow); then the caller texts STOP.
        let sms = OutgoingSms {
            from: "+16025550100".into(),
            to: "+14805550117".into(),
            body: deps
                .store
                .read(|c| Ok(crate::store::messages::get(c, 1)?.body))
                .unwrap(),
            key: deps
                .store
                .read(|c| Ok(crate::outbox::sms_key(&crate::store::messages::get(c, 1)?)))
                .unwrap(),
        };
        recorder.sent.lock().unwrap().push(sms);
        let config = deps.config.get();
        let stop = crate::model::InboundText {
            message_sid: "SMstop".into(),
            from: "+14805550117".into(),
            to: "+16025550100".into(),
            body: "STOP".into(),
            opt_out: None,
        };
        deps.store
            .write(move |c| {
                let env = events::Env::of(&config, &config.businesses[0], "http://127.0.0.1:8080");
                events::inbound_text(c, &env, &stop, due + 1_000)
            })
            .unwrap();
        assert_eq!(message_status(&deps), "checking");
        clock.set(due + 120_000);
        run_due(&deps, due + 120_000).unwrap();
        // The truth is recorded: it was sent (and nothing more goes to the opted-out caller).
        assert_eq!(message_status(&deps), "sent");
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_interrupted_send_that_went_out_is_recorded_not_resent() {
        let (_dir, deps, recorder, clock) = setup();
        missed_call(&deps, "CA3", "+14805550113", T0);
        let due = T0 + 20_000;
        // Claimed (message in state `sending`), then the provider took it, then the process died.
        let (_, work) = claim(&deps, due, 10).unwrap();
        let Work::Sms(send) = &work[0] else {
            panic!("{work:?}")
        };
        recorder.sent.lock().unwrap().push(send.sms.clone());
        clock.set(due + 1_000);
        recover(&deps, true);
        // Not asked before the provider has had its settle time to show the text.
        assert_eq!(run_due(&deps, due + 1_000).unwrap(), 0);
        let settled = send.prepared_at + 120_000;
        clock.set(settled);
        assert_eq!(run_due(&deps, settled).unwrap(), 1);
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
