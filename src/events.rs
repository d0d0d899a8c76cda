//! Use cases: apply one event (a call report, an inbound text, a delivery receipt, a send's outcome) as one
//! store transaction that records it, decides with `policy`, and enqueues the jobs it causes. Every function
//! here runs inside [`Store::write`](crate::store::Store::write); none does network I/O.
//! Depends on store, policy, script, model and config.

use crate::clock::Millis;
use crate::config::{BusinessConfig, Config};
use crate::model::{
    status, CallOutcome, CallReport, CallReportKind, DeliveryReceipt, InboundText, Job,
    PhoneNumber, Purpose, SuppressReason,
};
use crate::policy::{self, Keyword, StatusFacts};
use crate::providers::{Accepted, OutgoingSms};
use crate::script;
use crate::store::jobs::{JobRow, NewJob};
use crate::store::{calls, contacts, jobs, messages, Conn, Error, Result};

/// Attempts a send gets before it is marked failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// What applying an event changed that the caller must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The event was a repeat of one already applied; nothing changed.
    pub duplicate: bool,
    /// A job was enqueued, due at this time: wake the scheduler.
    pub due: Option<Millis>,
}

impl Applied {
    fn duplicate() -> Self {
        Self {
            duplicate: true,
            due: None,
        }
    }
    fn due(due: Option<Millis>) -> Self {
        Self {
            duplicate: false,
            due,
        }
    }
}

/// Records an idempotency token inside the event's transaction; true when the event was seen before.
pub fn seen_token(c: &Conn<'_>, token: Option<&str>, now: Millis) -> Result<bool> {
    match token {
        Some(t) if !t.is_empty() => Ok(!jobs::remember_token(c, t, now)?),
        _ => Ok(false),
    }
}

/// How the voice webhook should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Ring the business's `forward_to` numbers.
    Dial,
    /// Nobody to ring: the call is missed at once.
    Missed,
}

/// A call is ringing at a business number: record it, and decide how to answer.
pub fn incoming_call(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    provider: &str,
    report: &CallReport,
    now: Millis,
) -> Result<(Answer, Applied)> {
    let dial = !biz.forward_to.is_empty();
    let (call, new) = record_call(c, biz, provider, report, dial, now)?;
    if dial {
        return Ok((Answer::Dial, Applied::due(None)));
    }
    if !new {
        return Ok((Answer::Missed, Applied::duplicate()));
    }
    let due = apply_outcome(
        c,
        biz,
        &call,
        CallOutcome::Missed(crate::model::MissReason::NoForwardTo),
        None,
        now,
    )?;
    Ok((Answer::Missed, Applied::due(due)))
}

/// Applies a dial action, status callback or recording report.
pub fn call_report(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    provider: &str,
    report: &CallReport,
    now: Millis,
) -> Result<(CallOutcome, Applied)> {
    if report
        .direction
        .as_deref()
        .is_some_and(|d| d.starts_with("outbound"))
    {
        // Outbound legs are the business calling out, never a missed inbound call.
        return Ok((CallOutcome::Undecided, Applied::due(None)));
    }
    let (call, _) = record_call(c, biz, provider, report, false, now)?;
    let key = match &report.kind {
        CallReportKind::Incoming => return Ok((CallOutcome::Undecided, Applied::due(None))),
        CallReportKind::DialEnded { dial_call_sid, .. } => {
            format!("dial:{}", dial_call_sid.as_deref().unwrap_or("-"))
        }
        CallReportKind::Status { call_status, .. } => format!("status:{call_status}"),
        CallReportKind::Recording { url } => format!("recording:{url}"),
    };
    if !calls::add_report(c, call.id, &key, now)? {
        return Ok((CallOutcome::Undecided, Applied::duplicate()));
    }
    let (outcome, duration) = match &report.kind {
        CallReportKind::DialEnded {
            dial_status,
            duration_secs,
            ..
        } => {
            calls::set_dial_reported(c, call.id, dial_status, now)?;
            let outcome = policy::dial_outcome(dial_status, *duration_secs, biz.short_call.secs());
            (outcome, *duration_secs)
        }
        CallReportKind::Status {
            call_status,
            duration_secs,
        } => {
            let facts = StatusFacts {
                dialed_by_us: call.dialed,
                dial_reported: call.dial_reported,
                ring_timeout_secs: biz.ring_timeout.secs(),
                short_call_secs: biz.short_call.secs(),
            };
            (
                policy::status_outcome(call_status, *duration_secs, facts),
                *duration_secs,
            )
        }
        CallReportKind::Recording { url } => {
            calls::set_recording(c, call.id, url, now)?;
            (CallOutcome::Undecided, None)
        }
        CallReportKind::Incoming => (CallOutcome::Undecided, None),
    };
    let due = apply_outcome(c, biz, &call, outcome, duration, now)?;
    Ok((outcome, Applied::due(due)))
}

/// Records the call a report is about unless it is known; returns it and whether it is new.
fn record_call(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    provider: &str,
    report: &CallReport,
    dialed: bool,
    now: Millis,
) -> Result<(calls::Call, bool)> {
    calls::insert_or_get(
        c,
        &calls::NewCall {
            business_id: &biz.id,
            provider,
            call_sid: &report.call_sid,
            from_raw: &report.from,
            to_number: &report.to,
            dialed,
        },
        now,
    )
}

fn text_back_key(biz: &BusinessConfig, call_sid: &str) -> String {
    format!("textback:{}:{call_sid}", biz.id)
}

fn apply_outcome(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    call: &calls::Call,
    outcome: CallOutcome,
    duration: Option<u64>,
    now: Millis,
) -> Result<Option<Millis>> {
    match outcome {
        CallOutcome::Undecided => Ok(None),
        CallOutcome::Answered => {
            if call.state != "answered" {
                calls::set_outcome(c, call.id, "answered", None, duration, now)?;
                let key = text_back_key(biz, &call.call_sid);
                if jobs::cancel_by_key(
                    c,
                    "text_back",
                    &key,
                    SuppressReason::Answered.as_str(),
                    now,
                )? {
                    calls::set_textback(
                        c,
                        call.id,
                        "cancelled",
                        Some(SuppressReason::Answered.as_str()),
                        now,
                    )?;
                }
            }
            Ok(None)
        }
        CallOutcome::Missed(reason) => {
            if call.state != "ringing" {
                return Ok(None);
            }
            calls::set_outcome(c, call.id, "missed", Some(reason.as_str()), duration, now)?;
            schedule_text_back(c, biz, call, now)
        }
    }
}

fn schedule_text_back(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    call: &calls::Call,
    now: Millis,
) -> Result<Option<Millis>> {
    let caller = match policy::textable_caller(&call.from_raw, &biz.numbers(), &biz.forward_to()) {
        Ok(n) => n,
        Err(reason) => {
            calls::set_textback(c, call.id, "suppressed", Some(reason.as_str()), now)?;
            return Ok(None);
        }
    };
    let contact_id = contacts::upsert(c, &biz.id, caller.as_str(), now)?;
    calls::set_contact(c, call.id, contact_id)?;
    let facts = contacts::facts(c, contact_id, None)?;
    match policy::schedule_text_back(
        facts,
        now,
        biz.text_delay.millis(),
        biz.repeat_window.millis(),
    ) {
        Err(reason) => {
            calls::set_textback(c, call.id, "suppressed", Some(reason.as_str()), now)?;
            Ok(None)
        }
        Ok(due) => {
            let key = text_back_key(biz, &call.call_sid);
            let job = NewJob {
                job: Job::TextBack { call_id: call.id },
                dedupe_key: Some(&key),
                contact_id: Some(contact_id),
                message_id: None,
                run_at: due,
                max_attempts: MAX_ATTEMPTS,
            };
            if jobs::enqueue(c, &job, now)?.is_none() {
                return Ok(None);
            }
            calls::set_textback(c, call.id, "scheduled", None, now)?;
            Ok(Some(due))
        }
    }
}

/// The answer to HELP: who is texting, and how to stop it.
pub fn help_text(biz: &BusinessConfig) -> String {
    format!(
        "{}: this is our text line. Reply with what you need and our team will answer here. \
         Reply STOP to opt out, START to opt back in.",
        biz.name
    )
}

/// Records an inbound text, and acts on opt-out, opt-in and help keywords.
pub fn inbound_text(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    provider: &str,
    text: &InboundText,
    now: Millis,
) -> Result<(Keyword, Applied)> {
    let sender = PhoneNumber::parse(&text.from).ok();
    let contact_id = match &sender {
        Some(n) => Some(contacts::upsert(c, &biz.id, n.as_str(), now)?),
        None => None,
    };
    let inserted = messages::insert(
        c,
        &messages::NewMessage {
            business_id: &biz.id,
            contact_id,
            call_id: None,
            direction: "in",
            purpose: "inbound",
            provider,
            provider_sid: Some(&text.message_sid),
            from_number: &text.from,
            to_number: &text.to,
            body: &text.body,
            segments: script::segments(&text.body).count,
            status: status::RECEIVED,
        },
        now,
    )?;
    if inserted.is_none() {
        return Ok((Keyword::None, Applied::duplicate()));
    }
    let keyword = policy::keyword(&text.body);
    let Some(contact_id) = contact_id else {
        return Ok((keyword, Applied::due(None)));
    };
    let source = format!("keyword:{}", text.body.trim());
    let due = match keyword {
        Keyword::OptOut => {
            opt_out(c, contact_id, &source, Some(&text.message_sid), now)?;
            None
        }
        Keyword::OptIn => {
            contacts::set_consent(c, contact_id, false, &source, Some(&text.message_sid), now)?;
            None
        }
        Keyword::Help => Some(queue_message(
            c,
            biz,
            provider,
            contact_id,
            &text.from,
            &help_text(biz),
            Purpose::Help,
            now,
        )?),
        Keyword::None => None,
    };
    Ok((keyword, Applied::due(due)))
}

/// Opts a contact out and calls off everything pending for them that may not go to an opted-out contact.
fn opt_out(
    c: &Conn<'_>,
    contact_id: i64,
    source: &str,
    detail: Option<&str>,
    now: Millis,
) -> Result<()> {
    if !contacts::set_consent(c, contact_id, true, source, detail, now)? {
        return Ok(());
    }
    let reason = SuppressReason::OptedOut.as_str();
    for job in jobs::pending_for_contact(c, contact_id)? {
        match job.job {
            Job::TextBack { call_id } => {
                jobs::finish(c, job.id, "cancelled", Some(reason), now)?;
                calls::set_textback(c, call_id, "cancelled", Some(reason), now)?;
                if let Some(m) = job.message_id {
                    messages::set_status(c, m, status::CANCELLED, None, Some(reason), now)?;
                }
            }
            Job::SendMessage { message_id } => {
                let m = messages::get(c, message_id)?;
                if !Purpose::parse(&m.purpose).is_some_and(Purpose::allowed_after_opt_out) {
                    jobs::finish(c, job.id, "cancelled", Some(reason), now)?;
                    messages::set_status(
                        c,
                        message_id,
                        status::CANCELLED,
                        None,
                        Some(reason),
                        now,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Creates an outgoing message and the job that sends it now; returns when it is due.
#[allow(clippy::too_many_arguments)]
fn queue_message(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    provider: &str,
    contact_id: i64,
    to: &str,
    body: &str,
    purpose: Purpose,
    now: Millis,
) -> Result<Millis> {
    let id = messages::insert(
        c,
        &messages::NewMessage {
            business_id: &biz.id,
            contact_id: Some(contact_id),
            call_id: None,
            direction: "out",
            purpose: purpose.as_str(),
            provider,
            provider_sid: None,
            from_number: biz.sender(),
            to_number: to,
            body,
            segments: script::segments(body).count,
            status: "scheduled",
        },
        now,
    )?
    .ok_or_else(|| Error::Refused("could not record the message".into()))?;
    jobs::enqueue(
        c,
        &NewJob {
            job: Job::SendMessage { message_id: id },
            dedupe_key: None,
            contact_id: Some(contact_id),
            message_id: Some(id),
            run_at: now,
            max_attempts: MAX_ATTEMPTS,
        },
        now,
    )?;
    Ok(now)
}

/// Applies a delivery receipt; a provider-side opt-out (Twilio 21610) opts the contact out here too.
pub fn delivery_receipt(
    c: &Conn<'_>,
    provider: &str,
    receipt: &DeliveryReceipt,
    now: Millis,
) -> Result<Applied> {
    let Some(m) = messages::apply_receipt(
        c,
        provider,
        &receipt.message_sid,
        &receipt.status,
        receipt.error_code,
        now,
    )?
    else {
        return Ok(Applied::duplicate());
    };
    if let (Some(code), Some(contact)) = (receipt.error_code, m.contact_id) {
        if is_unsubscribed(code) {
            opt_out(
                c,
                contact,
                &format!("provider:{code}"),
                Some(&receipt.message_sid),
                now,
            )?;
        }
    }
    Ok(Applied::due(None))
}

/// Twilio's "attempt to send to unsubscribed recipient".
fn is_unsubscribed(code: i64) -> bool {
    code == 21610
}

// ---------------------------------------------------------------------------------------------------------
// The scheduler's side

/// A claimed job ready for the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The message row, in state `sending`.
    pub message_id: i64,
    /// The provider account name.
    pub provider: String,
    /// What to send.
    pub sms: OutgoingSms,
    /// When the message was readied for this attempt; a reconciliation looks for sends from then on.
    pub prepared_at: Millis,
}

/// Takes the send-time decision for a claimed job and readies its message. `None` when the job was called
/// off (opt-out during the delay, answered call, repeat window) or cannot be sent (recorded as failed).
pub fn prepare_send(
    c: &Conn<'_>,
    config: &Config,
    job: &JobRow,
    now: Millis,
) -> Result<Option<Send>> {
    match job.job {
        Job::TextBack { call_id } => prepare_text_back(c, config, job, call_id, now),
        Job::SendMessage { message_id } => prepare_message(c, job, message_id, now),
    }
}

fn prepare_text_back(
    c: &Conn<'_>,
    config: &Config,
    job: &JobRow,
    call_id: i64,
    now: Millis,
) -> Result<Option<Send>> {
    let call = calls::get(c, call_id)?;
    let Some(biz) = config.business(&call.business_id) else {
        let why = format!("business {:?} is no longer configured", call.business_id);
        jobs::finish(c, job.id, "failed", Some(&why), now)?;
        calls::set_textback(c, call.id, "failed", Some(&why), now)?;
        return Ok(None);
    };
    let Some(contact_id) = call.contact_id else {
        jobs::finish(c, job.id, "failed", Some("the call has no contact"), now)?;
        return Ok(None);
    };
    let verdict = if call.state == "answered" {
        Err(SuppressReason::Answered)
    } else {
        let facts = contacts::facts(c, contact_id, job.message_id)?;
        policy::confirm_text_back(facts, now, biz.repeat_window.millis())
    };
    if let Err(reason) = verdict {
        jobs::finish(c, job.id, "cancelled", Some(reason.as_str()), now)?;
        calls::set_textback(c, call.id, "suppressed", Some(reason.as_str()), now)?;
        if let Some(m) = job.message_id {
            messages::set_status(c, m, status::CANCELLED, None, Some(reason.as_str()), now)?;
        }
        return Ok(None);
    }
    let contact = contacts::get(c, contact_id)?;
    let message_id = match job.message_id {
        Some(id) => {
            messages::set_status(c, id, status::SENDING, None, None, now)?;
            id
        }
        None => {
            let body = match script::render(&biz.script, &biz.script_fields()) {
                Ok(b) => script::with_opt_out(&b),
                Err(e) => {
                    let why = e.to_string();
                    jobs::finish(c, job.id, "failed", Some(&why), now)?;
                    calls::set_textback(c, call.id, "failed", Some(&why), now)?;
                    return Ok(None);
                }
            };
            let id = messages::insert(
                c,
                &messages::NewMessage {
                    business_id: &biz.id,
                    contact_id: Some(contact_id),
                    call_id: Some(call.id),
                    direction: "out",
                    purpose: Purpose::TextBack.as_str(),
                    provider: &call.provider,
                    provider_sid: None,
                    from_number: &call.to_number,
                    to_number: &contact.phone,
                    body: &body,
                    segments: script::segments(&body).count,
                    status: status::SENDING,
                },
                now,
            )?
            .ok_or_else(|| Error::Refused("could not record the text-back".into()))?;
            jobs::set_message(c, job.id, id)?;
            id
        }
    };
    let m = messages::get(c, message_id)?;
    Ok(Some(send_of(job, &m)))
}

fn prepare_message(
    c: &Conn<'_>,
    job: &JobRow,
    message_id: i64,
    now: Millis,
) -> Result<Option<Send>> {
    let m = messages::get(c, message_id)?;
    let purpose = Purpose::parse(&m.purpose);
    let opted_out = match m.contact_id {
        Some(id) => contacts::get(c, id)?.opted_out_at.is_some(),
        None => false,
    };
    if opted_out && !purpose.is_some_and(Purpose::allowed_after_opt_out) {
        let reason = SuppressReason::OptedOut.as_str();
        jobs::finish(c, job.id, "cancelled", Some(reason), now)?;
        messages::set_status(c, message_id, status::CANCELLED, None, Some(reason), now)?;
        return Ok(None);
    }
    messages::set_status(c, message_id, status::SENDING, None, None, now)?;
    Ok(Some(send_of(job, &m)))
}

fn send_of(job: &JobRow, m: &messages::Message) -> Send {
    Send {
        job_id: job.id,
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        message_id: m.id,
        provider: m.provider.clone(),
        sms: OutgoingSms {
            from: m.from_number.clone(),
            to: m.to_number.clone(),
            body: m.body.clone(),
        },
        prepared_at: m.updated_at,
    }
}

/// How a send ended, as the scheduler classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it (at `sent_at`).
    Accepted {
        /// Its id and initial state.
        accepted: Accepted,
        /// When it was handed over.
        sent_at: Millis,
    },
    /// Refused for good.
    Rejected {
        /// Provider error code.
        code: Option<i64>,
        /// Provider message.
        message: String,
    },
    /// Try again at `at`.
    Retry {
        /// What failed.
        message: String,
        /// When to try again.
        at: Millis,
    },
    /// Transient failures used up every attempt.
    GaveUp {
        /// The last failure.
        message: String,
    },
    /// Nobody can tell whether it went out; an operator must look.
    Unknown {
        /// Why.
        message: String,
    },
}

/// Records how a send ended, on the message, the job and the call.
pub fn record_outcome(c: &Conn<'_>, send: &Send, outcome: &Outcome, now: Millis) -> Result<()> {
    let m = messages::get(c, send.message_id)?;
    let call_id = m
        .call_id
        .filter(|_| m.purpose == Purpose::TextBack.as_str());
    let set_call = |state: &str, why: Option<&str>| -> Result<()> {
        match call_id {
            Some(id) => calls::set_textback(c, id, state, why, now),
            None => Ok(()),
        }
    };
    match outcome {
        Outcome::Accepted { accepted, sent_at } => {
            messages::set_accepted(c, m.id, &accepted.sid, &accepted.status, *sent_at, now)?;
            jobs::finish(c, send.job_id, "done", None, now)?;
            set_call("sent", None)?;
        }
        Outcome::Rejected { code, message } => {
            messages::set_status(c, m.id, status::FAILED, *code, Some(message), now)?;
            jobs::finish(c, send.job_id, "failed", Some(message), now)?;
            set_call("failed", Some(message))?;
            if let (Some(code), Some(contact)) = (code, m.contact_id) {
                if is_unsubscribed(*code) {
                    opt_out(c, contact, &format!("provider:{code}"), None, now)?;
                }
            }
        }
        Outcome::Retry { message, at } => {
            messages::set_status(c, m.id, status::RETRYING, None, Some(message), now)?;
            jobs::retry_at(c, send.job_id, *at, message, now)?;
        }
        Outcome::GaveUp { message } => {
            messages::set_status(c, m.id, status::FAILED, None, Some(message), now)?;
            jobs::finish(c, send.job_id, "failed", Some(message), now)?;
            set_call("failed", Some(message))?;
        }
        Outcome::Unknown { message } => {
            messages::set_status(c, m.id, status::UNKNOWN, None, Some(message), now)?;
            jobs::finish(c, send.job_id, "unknown", Some(message), now)?;
        }
    }
    Ok(())
}

/// An interrupted send to reconcile: the job and, if it got that far, its message.
pub fn interrupted_sends(
    c: &Conn<'_>,
    now: Millis,
    all: bool,
    lease_ms: Millis,
) -> Result<Vec<(JobRow, Option<Send>)>> {
    let mut out = Vec::new();
    for job in jobs::interrupted(c, now, all)? {
        jobs::relock(c, job.id, now + lease_ms, now)?;
        let send = match job.message_id {
            Some(id) => {
                let m = messages::get(c, id)?;
                (m.status == status::SENDING).then(|| send_of(&job, &m))
            }
            None => None,
        };
        out.push((job, send));
    }
    Ok(out)
}

/// Puts an interrupted job whose message certainly did not go out back in the queue, due now.
pub fn requeue(c: &Conn<'_>, job_id: i64, why: &str, now: Millis) -> Result<()> {
    jobs::retry_at(c, job_id, now, why, now)
}
