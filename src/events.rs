//! Use cases: apply one event (a call report, an inbound text, a delivery receipt, a staff action) as one
//! store transaction that records it, decides with `policy`, and enqueues the jobs it causes (texts, follow-ups,
//! alerts). Every function here runs inside [`Store::write`](crate::store::Store::write); none does network I/O.
//! The scheduler's side of the outbox is in `outbox`. Depends on store, policy, script, model and config.

use crate::clock::Millis;
use crate::config::BusinessConfig;
use crate::model::{
    status, AnsweredBy, CallEnd, CallOutcome, CallReport, CallReportKind, CallerId,
    DeliveryReceipt, Direction, FailReason, Failure, InboundText, Job, MissReason, OptOutKind,
    PhoneNumber, Purpose, SuppressReason,
};
use crate::outbound;
use crate::policy::{self, Keyword, StatusFacts};
use crate::script;
use crate::store::contacts::Contact;
use crate::store::jobs::NewJob;
use crate::store::{self, calls, contacts, jobs, messages, Conn, Result};

/// Why a use case did not happen. A refusal is the caller's to fix (an HTTP 4xx; a provider must not retry
/// it); only a store that cannot be used is worth retrying (503).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not valid (a malformed number, an empty reply).
    #[error("{0}")]
    Invalid(String),
    /// The request is valid but refused by a rule (the contact opted out).
    #[error("{0}")]
    Refused(String),
    /// The store failed or has no such row.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Shorthand for use cases that can refuse.
pub type Refusable<T> = std::result::Result<T, Error>;

/// Attempts a send gets before it is marked failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// The business an event is for, and how to reach it.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The business.
    pub biz: &'a BusinessConfig,
    /// The provider account the event came through (the one that reports its calls, for call events).
    pub provider: &'a str,
    /// The provider account that sends its texts.
    pub texts: &'a str,
    /// The public base URL, for links in alerts.
    pub public_url: &'a str,
    /// The texting account's route answers STOP itself (a carrier's A2P route does; a phone's SIM does not,
    /// so then the one confirmation is ours to send).
    pub carrier_confirms_stop: bool,
}

impl<'a> Env<'a> {
    /// A business's accounts as the config names them.
    pub fn of(
        config: &'a crate::config::Config,
        biz: &'a BusinessConfig,
        public_url: &'a str,
    ) -> Self {
        Self {
            biz,
            provider: config.provider_name(biz),
            texts: config.sms_provider_name(biz),
            public_url,
            carrier_confirms_stop: config
                .providers
                .get(config.sms_provider_name(biz))
                .is_none_or(|p| p.caps.confirms_stop),
        }
    }
}

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

fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Records an idempotency token inside the event's transaction; true when the event was seen before.
pub fn seen_token(c: &Conn<'_>, token: Option<&str>, now: Millis) -> Result<bool> {
    match token {
        Some(t) if !t.is_empty() => Ok(!jobs::remember_token(c, t, now)?),
        _ => Ok(false),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Calls

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
    env: &Env<'_>,
    report: &CallReport,
    now: Millis,
) -> Result<(Answer, Applied)> {
    let dial = !env.biz.forward_to.is_empty();
    let (call, new) = record_call(c, env, report, dial, now)?;
    if dial {
        return Ok((Answer::Dial, Applied::due(None)));
    }
    if !new {
        return Ok((Answer::Missed, Applied::duplicate()));
    }
    let due = apply_outcome(
        c,
        env,
        &call,
        CallOutcome::Missed(MissReason::NoForwardTo),
        None,
        policy::CallerLeg::Started,
        now,
    )?;
    Ok((Answer::Missed, Applied::due(due)))
}

/// Applies a dial action, status callback or recording report.
pub fn call_report(
    c: &Conn<'_>,
    env: &Env<'_>,
    report: &CallReport,
    now: Millis,
) -> Result<Applied> {
    if report.direction == Direction::Outbound {
        return outbound_call(c, env, report, now);
    }
    let (call, _) = record_call(c, env, report, false, now)?;
    let key = match &report.kind {
        CallReportKind::Incoming => return Ok(Applied::due(None)),
        CallReportKind::DialEnded { leg_id, .. } => {
            format!("dial:{}", leg_id.as_deref().unwrap_or("-"))
        }
        CallReportKind::Status { end, .. } => format!("status:{}", end.as_str()),
        CallReportKind::Recording { url } => format!("recording:{url}"),
        CallReportKind::Ended { .. } => "ended".to_string(),
    };
    if !calls::add_report(c, call.id, &key, now)? {
        return Ok(Applied::duplicate());
    }
    if let Some(by) = report.answered_by.as_str() {
        calls::set_answered_by(c, call.id, by, now)?;
    }
    let machine = report.answered_by == AnsweredBy::Machine;
    let biz = env.biz;
    let (mut outcome, duration, leg) = match &report.kind {
        CallReportKind::DialEnded { end, talk_secs, .. } => {
            calls::set_dial_reported(c, call.id, end.as_str(), now)?;
            let mut outcome = policy::dial_outcome(*end, *talk_secs, biz.short_call.secs());
            if outcome == CallOutcome::Answered && biz.call_screening && !call.screened_in {
                // Answered, but nobody pressed 1: a voicemail box or an IVR took the call.
                outcome = CallOutcome::Missed(MissReason::NotAccepted);
            }
            (outcome, *talk_secs, policy::CallerLeg::DialAction)
        }
        CallReportKind::Status { end, duration_secs } => {
            let facts = StatusFacts {
                dialed_by_us: call.dialed,
                dial_reported: call.dial_reported,
                ring_timeout_secs: biz.ring_timeout.secs(),
                short_call_secs: biz.short_call.secs(),
            };
            (
                policy::status_outcome(*end, *duration_secs, facts),
                *duration_secs,
                policy::CallerLeg::Status {
                    call_duration_secs: *duration_secs,
                },
            )
        }
        CallReportKind::Recording { url } => {
            calls::set_recording(c, call.id, url, now)?;
            (CallOutcome::Undecided, None, policy::CallerLeg::Started)
        }
        CallReportKind::Ended {
            end,
            talk_secs,
            caller_secs,
        } => (
            policy::ended_outcome(*end, *talk_secs, biz.short_call.secs()),
            *talk_secs,
            policy::CallerLeg::Status {
                call_duration_secs: *caller_secs,
            },
        ),
        CallReportKind::Incoming => (CallOutcome::Undecided, None, policy::CallerLeg::Started),
    };
    if machine
        && matches!(
            outcome,
            CallOutcome::Answered | CallOutcome::Missed(MissReason::NotAccepted)
        )
    {
        outcome = CallOutcome::Missed(MissReason::Voicemail);
    }
    let due = apply_outcome(c, env, &call, outcome, duration, leg, now)?;
    Ok(Applied::due(due))
}

/// Whether a call ended up missed: the dial action's answer (greeting and voicemail, or hang up) follows
/// the outcome recorded for the call, so screening, machine detection and short calls are decided once.
pub fn call_missed(c: &Conn<'_>, provider: &str, call_sid: &str) -> Result<bool> {
    Ok(calls::by_sid(c, provider, call_sid)?.is_some_and(|call| call.state == "missed"))
}

/// Staff pressed 1 on a screened call: it counts as answered by a person.
pub fn screened_in(c: &Conn<'_>, env: &Env<'_>, call_sid: &str, now: Millis) -> Result<()> {
    if let Some(call) = calls::by_sid(c, env.provider, call_sid)? {
        calls::set_screened_in(c, call.id, now)?;
    }
    Ok(())
}

/// The business called a contact back (seen on the status callback of an outbound call): the pending
/// text-back is called off, and once they talked, so are follow-ups.
fn outbound_call(c: &Conn<'_>, env: &Env<'_>, report: &CallReport, now: Millis) -> Result<Applied> {
    let Some(contact) = contacts::find(c, &env.biz.id, report.to.trim())? else {
        return Ok(Applied::due(None));
    };
    let (end, duration_secs) = match report.kind {
        CallReportKind::Status { end, duration_secs } => (end, duration_secs),
        CallReportKind::Ended {
            end,
            talk_secs,
            caller_secs,
        } => (end, talk_secs.or(caller_secs)),
        _ => return Ok(Applied::due(None)),
    };
    // Ringing or talking: the business is calling them back.
    if matches!(end, CallEnd::Ongoing | CallEnd::Completed) {
        cancel_text_backs(
            c,
            Some(env.biz),
            contact.id,
            SuppressReason::CalledBack,
            now,
        )?;
    }
    if end == CallEnd::Completed && duration_secs.is_some_and(|d| d >= env.biz.short_call.secs()) {
        reached(c, env.biz, contact.id, now)?;
    }
    Ok(Applied::due(None))
}

/// Records the call a report is about unless it is known; returns it and whether it is new.
fn record_call(
    c: &Conn<'_>,
    env: &Env<'_>,
    report: &CallReport,
    dialed: bool,
    now: Millis,
) -> Result<(calls::Call, bool)> {
    calls::insert_or_get(
        c,
        &calls::NewCall {
            business_id: &env.biz.id,
            provider: env.provider,
            call_sid: &report.call_sid,
            from_raw: &report.from,
            to_number: &report.to,
            dialed,
            direction: Some(report.direction.as_str()),
            stir_verstat: report.caller_id.as_str(),
        },
        now,
    )
}

fn text_back_key(biz: &BusinessConfig, call_sid: &str) -> String {
    format!("textback:{}:{call_sid}", biz.id)
}

/// Calls off a contact's pending text-backs.
fn cancel_text_backs(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    contact_id: i64,
    reason: SuppressReason,
    now: Millis,
) -> Result<()> {
    for job in jobs::cancel_for_contact(c, contact_id, "text_back", reason.as_str(), now)? {
        if let Job::TextBack { call_id } = job.job {
            calls::set_textback(c, call_id, "cancelled", Some(reason.as_str()), now)?;
        }
        if let Some(m) = job.message_id {
            messages::set_status(c, m, status::CANCELLED, None, Some(reason.as_str()), now)?;
        }
        emit_suppressed(
            c,
            biz,
            contact_id,
            Purpose::TextBack.as_str(),
            job.message_id,
            reason.as_str(),
            now,
        )?;
    }
    Ok(())
}

/// Calls off a contact's pending follow-ups.
fn cancel_follow_ups(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    contact_id: i64,
    reason: SuppressReason,
    now: Millis,
) -> Result<()> {
    for job in jobs::cancel_for_contact(c, contact_id, "follow_up", reason.as_str(), now)? {
        if let Some(m) = job.message_id {
            messages::set_status(c, m, status::CANCELLED, None, Some(reason.as_str()), now)?;
        }
        emit_suppressed(
            c,
            biz,
            contact_id,
            Purpose::FollowUp.as_str(),
            job.message_id,
            reason.as_str(),
            now,
        )?;
    }
    Ok(())
}

/// The business reached the contact by phone: no more automatic texts in this sequence.
fn reached(c: &Conn<'_>, biz: &BusinessConfig, contact_id: i64, now: Millis) -> Result<()> {
    contacts::note_reached(c, contact_id, now)?;
    cancel_text_backs(c, Some(biz), contact_id, SuppressReason::Answered, now)?;
    cancel_follow_ups(c, Some(biz), contact_id, SuppressReason::Answered, now)
}

fn apply_outcome(
    c: &Conn<'_>,
    env: &Env<'_>,
    call: &calls::Call,
    outcome: CallOutcome,
    duration: Option<u64>,
    leg: policy::CallerLeg,
    now: Millis,
) -> Result<Option<Millis>> {
    match outcome {
        CallOutcome::Undecided => Ok(None),
        CallOutcome::Answered => {
            if call.state != "answered" {
                calls::set_outcome(c, call.id, "answered", None, duration, now)?;
                let key = text_back_key(env.biz, &call.call_sid);
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
                // The caller called again and got through: earlier calls need no text either.
                if let Ok(n) = PhoneNumber::parse(&call.from_raw) {
                    if let Some(contact) = contacts::find(c, &env.biz.id, n.as_str())? {
                        reached(c, env.biz, contact.id, now)?;
                    }
                }
            }
            Ok(None)
        }
        CallOutcome::Missed(reason) => {
            if call.state != "ringing" {
                return Ok(None);
            }
            calls::set_outcome(c, call.id, "missed", Some(reason.as_str()), duration, now)?;
            let caller_ms = policy::caller_time_ms(leg, call.started_at, now);
            let due = schedule_text_back(c, env, call, caller_ms, now)?;
            Ok(earliest(
                due,
                emit_missed(c, env.biz, call.id, reason.as_str(), now)?,
            ))
        }
    }
}

/// The rules of a business as the text-back decision reads them.
pub fn text_back_rules<'a>(
    biz: &'a BusinessConfig,
    allowed: &'a [String],
) -> policy::TextBackRules<'a> {
    policy::TextBackRules {
        deny: &biz.deny,
        allowed_countries: allowed,
        skip_unverified_callers: biz.skip_unverified_callers,
        skip_instant_hangups: biz.skip_instant_hangups,
        delay_ms: biz.text_delay.millis(),
        repeat_window_ms: biz.repeat_window.millis(),
        quiet: biz.quiet(),
        quiet_policy: biz.quiet_hours_policy,
        max_deferral_ms: biz.max_deferral.millis(),
        daily_cap: biz.daily_cap,
    }
}

/// `call.missed`, with what became of the text-back.
fn emit_missed(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    call_id: i64,
    reason: &str,
    now: Millis,
) -> Result<Option<Millis>> {
    if biz.webhooks.is_empty() {
        return Ok(None);
    }
    let call = calls::get(c, call_id)?;
    let contact = match call.contact_id {
        Some(id) => Some(contacts::get(c, id)?),
        None => None,
    };
    let data = serde_json::json!({
        "call_id": call.call_sid,
        "provider": call.provider,
        "from": call.from_raw,
        "to": call.to_number,
        "reason": reason,
        "started_at": crate::clock::format_rfc3339(call.started_at),
        "text_back": call.textback,
        "text_back_reason": call.textback_reason,
        "voicemail_url": call.recording_url,
    });
    emit(
        c,
        biz,
        contact.as_ref(),
        outbound::Kind::CallMissed,
        data,
        now,
    )
}

fn schedule_text_back(
    c: &Conn<'_>,
    env: &Env<'_>,
    call: &calls::Call,
    duration_ms: Option<Millis>,
    now: Millis,
) -> Result<Option<Millis>> {
    let biz = env.biz;
    let caller = match policy::textable_caller(&call.from_raw, &biz.numbers(), &biz.staff_numbers())
    {
        Ok(n) => n,
        Err(reason) => {
            calls::set_textback(c, call.id, "suppressed", Some(reason.as_str()), now)?;
            return Ok(None);
        }
    };
    let (contact_id, new_number) = contacts::upsert(c, &biz.id, caller.as_str(), now)?;
    calls::set_contact(c, call.id, contact_id)?;
    let facts = if new_number {
        contacts::facts_of_new(c, caller.as_str(), now)?
    } else {
        contacts::facts(c, contact_id, None, now)?
    };
    let allowed = biz.allowed_countries();
    let rules = text_back_rules(biz, &allowed);
    let call_facts = policy::CallFacts {
        caller_id_failed: call.stir_verstat.as_deref() == CallerId::Failed.as_str(),
        duration_ms,
    };
    match policy::schedule_text_back(&caller, facts, call_facts, &rules, now) {
        Err(reason) => {
            calls::set_textback(c, call.id, "suppressed", Some(reason.as_str()), now)?;
            emit_suppressed(
                c,
                Some(biz),
                contact_id,
                Purpose::TextBack.as_str(),
                None,
                reason.as_str(),
                now,
            )?;
            if reason == SuppressReason::Landline {
                let contact = contacts::get(c, contact_id)?;
                return alert(c, env, &contact, &Alert::Callback, now);
            }
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

// ---------------------------------------------------------------------------------------------------------
// Texts

/// The answer to HELP: who is texting, and how to stop it.
pub fn help_text(biz: &BusinessConfig) -> String {
    format!(
        "{}: this is our text line. Reply with what you need and our team will answer here. \
         Reply STOP to opt out, START to opt back in.",
        biz.name
    )
}

/// The one confirmation of a plain-language opt-out (carriers confirm their own keywords).
pub fn opt_out_confirmation(biz: &BusinessConfig) -> String {
    format!(
        "{}: you're unsubscribed and won't get more texts from us. Reply START if you change your mind.",
        biz.name
    )
}

/// Records an inbound text; acts on opt-out, opt-in and help keywords and on the business's keyword rules;
/// alerts staff.
pub fn inbound_text(
    c: &Conn<'_>,
    env: &Env<'_>,
    text: &InboundText,
    now: Millis,
) -> Result<(Keyword, Applied)> {
    let biz = env.biz;
    let sender = PhoneNumber::parse(&text.from).ok();
    let contact_id = match &sender {
        Some(n) => Some(contacts::upsert(c, &biz.id, n.as_str(), now)?.0),
        None => None,
    };
    let Some(message_id) = messages::insert(
        c,
        &messages::NewMessage {
            business_id: &biz.id,
            contact_id,
            call_id: None,
            direction: "in",
            purpose: "inbound",
            provider: env.provider,
            provider_sid: Some(&text.message_sid),
            from_number: &text.from,
            to_number: &text.to,
            body: &text.body,
            segments: script::segments(&text.body).count,
            status: status::RECEIVED,
        },
        now,
    )?
    else {
        return Ok((Keyword::None, Applied::duplicate()));
    };
    // The provider's own opt-out handling has already acted on its (possibly localized) keywords.
    let keyword = match text.opt_out {
        Some(OptOutKind::Stop) => Keyword::OptOut,
        Some(OptOutKind::Start) => Keyword::OptIn,
        Some(OptOutKind::Help) => Keyword::Help,
        None => policy::keyword(&text.body),
    };
    let Some(contact_id) = contact_id else {
        return Ok((keyword, Applied::due(None)));
    };
    // Before anything it causes: a receiver sees the STOP text, then the opt-out.
    let received = emit_about(
        c,
        Some(biz),
        contact_id,
        outbound::Kind::ReplyReceived,
        serde_json::json!({
            "message_id": message_id,
            "provider": env.provider,
            "provider_id": text.message_sid,
            "from": text.from,
            "to": text.to,
            "body": text.body,
        }),
        now,
    )?;
    let source = format!("keyword:{}", text.body.trim());
    let due = match keyword {
        Keyword::OptOut if env.carrier_confirms_stop => {
            opt_out(
                c,
                Some(biz),
                contact_id,
                &source,
                Some(&text.message_sid),
                now,
            )?;
            None
        }
        Keyword::OptOut | Keyword::PlainOptOut => {
            let source = if keyword == Keyword::OptOut {
                source
            } else {
                format!("message:{}", text.body.trim())
            };
            if opt_out(
                c,
                Some(biz),
                contact_id,
                &source,
                Some(&text.message_sid),
                now,
            )? {
                Some(queue_message(
                    c,
                    env,
                    Some(contact_id),
                    &text.from,
                    &opt_out_confirmation(biz),
                    Purpose::Confirmation,
                    now,
                    now,
                )?)
            } else {
                None
            }
        }
        Keyword::OptIn => {
            if contacts::set_consent(c, contact_id, false, &source, Some(&text.message_sid), now)? {
                emit_about(
                    c,
                    Some(biz),
                    contact_id,
                    outbound::Kind::ContactOptedIn,
                    serde_json::json!({ "source": source }),
                    now,
                )?;
            }
            None
        }
        Keyword::Help => Some(queue_message(
            c,
            env,
            Some(contact_id),
            &text.from,
            &help_text(biz),
            Purpose::Help,
            now,
            now,
        )?),
        Keyword::None => reply(c, env, contact_id, message_id, &text.body, now)?,
    };
    Ok((keyword, Applied::due(earliest(due, received))))
}

/// An ordinary reply: the conversation moves to replied, follow-ups stop, keyword rules act, staff hear of it.
fn reply(
    c: &Conn<'_>,
    env: &Env<'_>,
    contact_id: i64,
    message_id: i64,
    body: &str,
    now: Millis,
) -> Result<Option<Millis>> {
    let biz = env.biz;
    contacts::note_inbound(c, contact_id, now)?;
    cancel_follow_ups(c, Some(biz), contact_id, SuppressReason::Replied, now)?;
    let rule = policy::match_rule(body, biz.keywords.iter().map(|k| k.words.as_slice()))
        .map(|i| &biz.keywords[i]);
    let mut due = None;
    let mut urgent = false;
    if let Some(rule) = rule {
        messages::set_keyword(c, message_id, &rule.words[0], now)?;
        urgent = rule.urgent;
        if urgent {
            contacts::set_urgent(c, contact_id, true, now)?;
            emit_about(
                c,
                Some(biz),
                contact_id,
                outbound::Kind::ConversationUrgent,
                serde_json::json!({ "message_id": message_id, "keyword": rule.words[0], "body": body }),
                now,
            )?;
        }
    }
    let contact = contacts::get(c, contact_id)?;
    // Staff hear first: an emergency alert must not queue behind the auto-reply on the same number.
    let kind = if urgent {
        Alert::Urgent(body)
    } else {
        Alert::Reply(body)
    };
    due = earliest(due, alert(c, env, &contact, &kind, now)?);
    if let Some(reply) = rule.and_then(|r| r.reply.as_deref()) {
        let facts = contacts::conversation(c, contact_id, now, now)?;
        let automation = automation_rules(biz);
        let text = match script::render(reply, &biz.script_fields()) {
            Ok(text) => text,
            Err(e) => {
                // The reply is an automatic extra: the inbound text is stored and staff are alerted anyway,
                // and the conversation shows why no reply went.
                record_unsent(
                    c,
                    env,
                    contact_id,
                    &contact.phone,
                    reply,
                    Purpose::Keyword,
                    NotSent::Failed(&e.to_string()),
                    now,
                )?;
                return Ok(due);
            }
        };
        match policy::auto_reply(facts, &automation, now) {
            Ok(()) => {
                let at = queue_message(
                    c,
                    env,
                    Some(contact_id),
                    &contact.phone,
                    &text,
                    Purpose::Keyword,
                    now,
                    now,
                )?;
                due = earliest(due, Some(at));
            }
            Err(reason) => record_unsent(
                c,
                env,
                contact_id,
                &contact.phone,
                &text,
                Purpose::Keyword,
                NotSent::Suppressed(reason),
                now,
            )?,
        }
    }
    Ok(due)
}

/// An outgoing message row from the business's own number, not tied to a call.
fn outgoing<'a>(
    env: &Env<'a>,
    contact_id: Option<i64>,
    to: &'a str,
    body: &'a str,
    purpose: Purpose,
    status: &'a str,
) -> messages::NewMessage<'a> {
    messages::NewMessage {
        business_id: &env.biz.id,
        contact_id,
        call_id: None,
        direction: "out",
        purpose: purpose.as_str(),
        provider: env.texts,
        provider_sid: None,
        from_number: env.biz.sender(),
        to_number: to,
        body,
        segments: script::segments(body).count,
        status,
    }
}

/// Why an automatic text is not sent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NotSent<'a> {
    /// Decided against (shown as cancelled with the reason).
    Suppressed(SuppressReason),
    /// It could not be written (its template failed): shown as failed with the error.
    Failed(&'a str),
}

/// Records an automatic text that will not be sent, with why, so the conversation shows it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_unsent(
    c: &Conn<'_>,
    env: &Env<'_>,
    contact_id: i64,
    to: &str,
    body: &str,
    purpose: Purpose,
    why: NotSent<'_>,
    now: Millis,
) -> Result<()> {
    let (state, why) = match why {
        NotSent::Suppressed(reason) => (status::CANCELLED, reason.as_str()),
        NotSent::Failed(error) => (status::FAILED, error),
    };
    let row = outgoing(env, Some(contact_id), to, body, purpose, state);
    let id = messages::insert(c, &row, now)?;
    if let Some(id) = id {
        messages::set_status(c, id, state, None, Some(why), now)?;
    }
    emit_suppressed(c, Some(env.biz), contact_id, purpose.as_str(), id, why, now)?;
    Ok(())
}

/// The rules for automatic texts after the first.
pub fn automation_rules(biz: &BusinessConfig) -> policy::AutomationRules {
    policy::AutomationRules {
        human_hold_ms: biz.human_hold.millis(),
        quiet: biz.quiet(),
        max_deferral_ms: biz.max_deferral.millis(),
        daily_cap: biz.daily_cap,
    }
}

/// Opts a contact out and calls off everything pending for them that may not go to an opted-out contact.
/// Returns false when they already were opted out.
pub(crate) fn opt_out(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    contact_id: i64,
    source: &str,
    detail: Option<&str>,
    now: Millis,
) -> Result<bool> {
    if !contacts::set_consent(c, contact_id, true, source, detail, now)? {
        return Ok(false);
    }
    emit_about(
        c,
        biz,
        contact_id,
        outbound::Kind::ContactOptedOut,
        serde_json::json!({ "source": source }),
        now,
    )?;
    let reason = SuppressReason::OptedOut;
    cancel_text_backs(c, biz, contact_id, reason, now)?;
    cancel_follow_ups(c, biz, contact_id, reason, now)?;
    for job in jobs::pending_for_contact(c, contact_id)? {
        if let Job::SendMessage { message_id } = job.job {
            let m = messages::get(c, message_id)?;
            if !Purpose::parse(&m.purpose).is_some_and(Purpose::allowed_after_opt_out) {
                jobs::finish(c, job.id, "cancelled", Some(reason.as_str()), now)?;
                messages::set_status(
                    c,
                    message_id,
                    status::CANCELLED,
                    None,
                    Some(reason.as_str()),
                    now,
                )?;
                emit_suppressed(
                    c,
                    biz,
                    contact_id,
                    &m.purpose,
                    Some(message_id),
                    reason.as_str(),
                    now,
                )?;
            }
        }
    }
    Ok(true)
}

/// Creates an outgoing message and the job that sends it at `due`; returns `due`. The purpose decides
/// whether it may go to an opted-out contact.
#[allow(clippy::too_many_arguments)]
pub fn queue_message(
    c: &Conn<'_>,
    env: &Env<'_>,
    contact_id: Option<i64>,
    to: &str,
    body: &str,
    purpose: Purpose,
    due: Millis,
    now: Millis,
) -> Result<Millis> {
    enqueue_message(c, env, contact_id, to, body, purpose, due, now)?;
    Ok(due)
}

/// [`queue_message`], returning the message's id.
#[allow(clippy::too_many_arguments)]
pub fn enqueue_message(
    c: &Conn<'_>,
    env: &Env<'_>,
    contact_id: Option<i64>,
    to: &str,
    body: &str,
    purpose: Purpose,
    due: Millis,
    now: Millis,
) -> Result<i64> {
    let id = messages::insert(
        c,
        &outgoing(env, contact_id, to, body, purpose, "scheduled"),
        now,
    )?
    .ok_or_else(|| store::Error::Conflict("could not record the message".into()))?;
    jobs::enqueue(
        c,
        &NewJob {
            job: Job::SendMessage { message_id: id },
            dedupe_key: None,
            contact_id,
            message_id: Some(id),
            run_at: due,
            max_attempts: MAX_ATTEMPTS,
        },
        now,
    )?;
    Ok(id)
}

/// Applies a delivery receipt: a provider-side opt-out (a failure of reason `OptedOut`) opts the contact out here too, and a
/// landline error marks the number so it is never texted again.
pub fn delivery_receipt(
    c: &Conn<'_>,
    env: &Env<'_>,
    receipt: &DeliveryReceipt,
    now: Millis,
) -> Result<Applied> {
    let provider = env.provider;
    let code = receipt.failure.as_ref().and_then(|f| f.code.as_deref());
    let Some(m) = messages::apply_receipt(
        c,
        provider,
        &receipt.message_sid,
        &receipt.status,
        code,
        now,
    )?
    else {
        return Ok(Applied::duplicate());
    };
    let biz = Some(env.biz).filter(|b| b.id == m.business_id);
    if let Some(failure) = &receipt.failure {
        provider_error(c, biz, &m, failure, now)?;
    }
    let mut due = None;
    if m.status == "delivered" && receipt.status == "delivered" {
        due = emit_text(c, biz, &m, outbound::Kind::TextDelivered, now)?;
    }
    // Staff hear of a failure once: when this receipt is the one that made the message failed.
    if matches!(m.status.as_str(), "failed" | "undelivered")
        && m.status == receipt.status
        && m.direction == "out"
    {
        let why = m
            .error_message
            .clone()
            .or_else(|| m.error_code.as_ref().map(|code| format!("error {code}")))
            .unwrap_or_else(|| format!("the carrier reported it {}", m.status));
        due = earliest(due, text_failed(c, biz, &m, &why, now)?);
    }
    Ok(Applied::due(due))
}

/// What a provider's refusal teaches about the recipient: an opt-out at the provider opts them out here
/// too; a number that cannot take texts is marked so it is never tried again.
pub(crate) fn provider_error(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    m: &messages::Message,
    failure: &Failure,
    now: Millis,
) -> Result<()> {
    if m.direction != "out" {
        return Ok(());
    }
    let code = failure.code.as_deref().unwrap_or("-");
    match failure.reason {
        FailReason::OptedOut => {
            if let Some(contact) = m.contact_id {
                opt_out(
                    c,
                    biz,
                    contact,
                    &format!("provider:{code}"),
                    Some(m.provider_sid.as_deref().unwrap_or("")),
                    now,
                )?;
            }
        }
        FailReason::NotMobile => {
            contacts::set_line_type(c, &m.to_number, "landline", &format!("error:{code}"), now)?;
        }
        FailReason::InvalidNumber | FailReason::Blocked | FailReason::Other => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Alerts

/// What staff are alerted about.
#[derive(Debug, Clone, Copy)]
pub enum Alert<'a> {
    /// A reply came in.
    Reply(&'a str),
    /// An urgent reply (a keyword rule marked it): on-call people, now, quiet hours or not.
    Urgent(&'a str),
    /// A missed caller cannot be texted (landline): call them back.
    Callback,
}

/// The conversation's page in the admin UI.
pub fn conversation_link(public_url: &str, contact_id: i64) -> String {
    format!("{public_url}/conversations/{contact_id}")
}

/// Enqueues alerts to the notify list (SMS, after each person's quiet hours unless urgent), to the alert
/// webhook, and for emergencies phone calls to on-call people. Without a notify list, the `forward_to`
/// phones are alerted. Returns the earliest due time.
pub(crate) fn alert(
    c: &Conn<'_>,
    env: &Env<'_>,
    contact: &Contact,
    kind: &Alert<'_>,
    now: Millis,
) -> Result<Option<Millis>> {
    let biz = env.biz;
    let link = conversation_link(env.public_url, contact.id);
    let phone = &contact.phone;
    let (text, body, urgent) = match kind {
        Alert::Reply(body) => (format!("{}: reply from {phone}: \"{}\" {link}", biz.name, excerpt(body)), Some(*body), false),
        Alert::Urgent(body) => (
            format!("URGENT {}: {phone} texted \"{}\" - call them now: {link}", biz.name, excerpt(body)),
            Some(*body),
            true,
        ),
        Alert::Callback => (
            format!("{}: missed call from {phone}, a landline we can't text. Please call them back. {link}", biz.name),
            None,
            false,
        ),
    };
    let mut due = None;
    let people: Vec<(String, Millis, bool)> = if biz.notify.is_empty() {
        biz.forward_to
            .iter()
            .map(|n| (n.clone(), now, true))
            .collect()
    } else {
        biz.notify
            .iter()
            .filter_map(|p| {
                let sms = p.sms.clone()?;
                // Urgent alerts go at once to everyone on the list; on-call people are also phoned.
                let at = policy::alert_due(urgent, &biz.person_quiet(p), now);
                Some((sms, at, p.on_call))
            })
            .collect()
    };
    for (sms, at, on_call) in &people {
        due = earliest(
            due,
            Some(queue_message(
                c,
                env,
                None,
                sms,
                &text,
                Purpose::Alert,
                *at,
                now,
            )?),
        );
        if urgent && *on_call && biz.call_on_emergency {
            let say = format!(
                "Urgent message for {}. The customer at {} texted: {}. Check your texts for the details.",
                biz.name,
                spoken_number(phone),
                excerpt(body.unwrap_or_default())
            );
            enqueue_job(
                c,
                Job::AlertCall {
                    business_id: biz.id.clone(),
                    to: sms.clone(),
                    say,
                },
                now,
                now,
            )?;
            due = earliest(due, Some(now));
        }
    }
    for person in &biz.notify {
        let Some(addr) = &person.email else { continue };
        // The same rule as texts: each person's quiet hours, unless urgent.
        let at = policy::alert_due(urgent, &biz.person_quiet(person), now);
        let subject = match kind {
            Alert::Reply(_) => format!(
                "{}: reply from {}",
                biz.name,
                crate::display::phone(phone, biz.sender())
            ),
            Alert::Urgent(_) => format!(
                "URGENT {}: {} needs a call now",
                biz.name,
                crate::display::phone(phone, biz.sender())
            ),
            Alert::Callback => format!(
                "{}: call back {}",
                biz.name,
                crate::display::phone(phone, biz.sender())
            ),
        };
        jobs::enqueue(
            c,
            &NewJob {
                job: Job::Email(crate::email::Email::new(
                    addr,
                    &subject,
                    format!("{text}\n"),
                    None,
                )),
                dedupe_key: None,
                contact_id: Some(contact.id),
                message_id: None,
                run_at: at,
                max_attempts: MAX_ATTEMPTS,
            },
            now,
        )?;
        due = earliest(due, Some(at));
    }
    let who = contact
        .name
        .clone()
        .unwrap_or_else(|| crate::display::phone(phone, biz.sender()));
    let note = match kind {
        Alert::Reply(body) => (format!("{who} replied"), excerpt(body), false),
        Alert::Urgent(body) => (format!("URGENT: {who}"), excerpt(body), true),
        Alert::Callback => (
            format!("Call back {who}"),
            "A missed call from a landline: it cannot be texted.".to_string(),
            false,
        ),
    };
    let (title, text_line, urgent_note) = note;
    due = earliest(
        due,
        notify_staff(
            c,
            &biz.id,
            &crate::push::Notification {
                title: format!("{title} · {}", biz.name),
                body: text_line,
                url: format!("/conversations/{}", contact.id),
                tag: format!("conversation-{}", contact.id),
                urgent: urgent_note,
            },
            now,
        )?,
    );
    if biz.alert_webhook.is_some() {
        let job = Job::AlertWebhook {
            business_id: biz.id.clone(),
            text,
            phone: phone.clone(),
            body: body.map(str::to_string),
            link,
            urgent,
        };
        enqueue_job(c, job, now, now)?;
        due = earliest(due, Some(now));
    }
    Ok(due)
}

/// Queues a push notification to every browser of the users owners allowed notifications who may see the
/// business. Sent at once, quiet hours or not: each phone's own settings decide whether it rings.
pub(crate) fn notify_staff(
    c: &Conn<'_>,
    business_id: &str,
    note: &crate::push::Notification,
    now: Millis,
) -> Result<Option<Millis>> {
    let mut due = None;
    let mut may_see: std::collections::HashMap<i64, bool> = std::collections::HashMap::new();
    for sub in store::push::of_allowed_users(c)? {
        let sees = match may_see.get(&sub.user_id) {
            Some(sees) => *sees,
            None => {
                let sees =
                    store::users::get(c, sub.user_id)?.is_some_and(|u| u.can_see(business_id));
                may_see.insert(sub.user_id, sees);
                sees
            }
        };
        if sees {
            queue_push(c, sub.id, note, now)?;
            due = Some(now);
        }
    }
    Ok(due)
}

/// Queues a push notification to every browser of the owners allowed notifications (appliance-wide
/// trouble, such as a failed backup).
pub fn notify_owners(
    c: &Conn<'_>,
    note: &crate::push::Notification,
    now: Millis,
) -> Result<Option<Millis>> {
    let mut due = None;
    for sub in store::push::of_allowed_users(c)? {
        if store::users::get(c, sub.user_id)?.is_some_and(|u| u.role == "owner") {
            queue_push(c, sub.id, note, now)?;
            due = Some(now);
        }
    }
    Ok(due)
}

/// Queues one notification to one subscribed browser, due now.
pub fn queue_push(
    c: &Conn<'_>,
    subscription_id: i64,
    note: &crate::push::Notification,
    now: Millis,
) -> Result<()> {
    enqueue_job(
        c,
        Job::Push {
            subscription_id,
            note: note.clone(),
        },
        now,
        now,
    )
}

/// Tells staff that a text to a contact failed for good (a push notification; texting staff about it would
/// be noise). Alerts to staff and test texts are not reported.
pub(crate) fn text_failed(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    m: &messages::Message,
    why: &str,
    now: Millis,
) -> Result<Option<Millis>> {
    let mut failed = m.clone();
    failed.error_message = Some(why.to_string());
    let emitted = emit_text(c, biz, &failed, outbound::Kind::TextFailed, now)?;
    let Some(contact_id) = m.contact_id else {
        return Ok(None);
    };
    if matches!(
        Purpose::parse(&m.purpose),
        Some(Purpose::Alert | Purpose::Test) | None
    ) {
        return Ok(None);
    }
    let contact = contacts::get(c, contact_id)?;
    let who = contact
        .name
        .clone()
        .unwrap_or_else(|| crate::display::phone(&contact.phone, &m.from_number));
    let pushed = notify_staff(
        c,
        &m.business_id,
        &crate::push::Notification {
            title: format!("Text to {who} failed"),
            body: excerpt(why),
            url: format!("/conversations/{contact_id}"),
            tag: format!("failed-{}", m.id),
            urgent: false,
        },
        now,
    )?;
    Ok(earliest(pushed, emitted))
}

fn enqueue_job(c: &Conn<'_>, job: Job, due: Millis, now: Millis) -> Result<()> {
    jobs::enqueue(
        c,
        &NewJob {
            job,
            dedupe_key: None,
            contact_id: None,
            message_id: None,
            run_at: due,
            max_attempts: MAX_ATTEMPTS,
        },
        now,
    )?;
    Ok(())
}

fn excerpt(body: &str) -> String {
    let short: String = body.trim().chars().take(120).collect();
    if short.len() < body.trim().len() {
        format!("{short}...")
    } else {
        short
    }
}

/// A number read digit by digit, so text-to-speech does not say "sixteen billion".
fn spoken_number(phone: &str) -> String {
    phone
        .trim_start_matches('+')
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------------------
// Outbound events

/// Records an outbound event and queues its delivery to each of the business's endpoints that take its type,
/// in the transaction of the change it reports: it is never lost, and never sent for a change rolled back.
/// Returns when the deliveries are due.
pub(crate) fn emit(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    contact: Option<&Contact>,
    kind: outbound::Kind,
    data: serde_json::Value,
    now: Millis,
) -> Result<Option<Millis>> {
    let endpoints: Vec<&str> = biz
        .webhooks
        .iter()
        .filter(|w| w.wants(kind.as_str()))
        .map(|w| w.url.as_str())
        .collect();
    if endpoints.is_empty() {
        return Ok(None);
    }
    emit_to(c, biz, contact, kind, data, &endpoints, now)
}

/// [`emit`] to the endpoints given (a test event goes to one).
pub fn emit_to(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    contact: Option<&Contact>,
    kind: outbound::Kind,
    data: serde_json::Value,
    endpoints: &[&str],
    now: Millis,
) -> Result<Option<Millis>> {
    let uid = outbound::new_uid();
    let subject = contact.map(|k| outbound::Subject {
        id: k.id,
        phone: k.phone.clone(),
        name: k.name.clone(),
    });
    let body = outbound::document(
        &uid,
        kind,
        now,
        (&biz.id, &biz.name),
        subject.as_ref(),
        data,
    );
    let event_id = store::outbound::insert_event(
        c,
        &store::outbound::NewEvent {
            uid: &uid,
            business_id: &biz.id,
            kind: kind.as_str(),
            contact_id: contact.map(|k| k.id),
            body: &body,
        },
        now,
    )?;
    let mut due = None;
    for url in endpoints {
        let paused = store::outbound::paused(c, &biz.id, url)?
            .map(|_| "not sent: the endpoint is paused since it answered 410 Gone; resume it on the Integrations page");
        let id = store::outbound::insert_delivery(
            c,
            event_id,
            &biz.id,
            url,
            contact.map(|k| k.id),
            paused,
            now,
        )?;
        if paused.is_none() {
            jobs::enqueue(
                c,
                &NewJob {
                    job: Job::Deliver { delivery_id: id },
                    dedupe_key: None,
                    contact_id: contact.map(|k| k.id),
                    message_id: None,
                    run_at: now,
                    max_attempts: DELIVERY_ATTEMPTS,
                },
                now,
            )?;
            due = Some(now);
        }
    }
    Ok(due)
}

/// Attempts a delivery may take; in practice the 24-hour limit ends retries first.
pub const DELIVERY_ATTEMPTS: u32 = 1_000;

/// [`emit`] about a contact by row id.
pub(crate) fn emit_about(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    contact_id: i64,
    kind: outbound::Kind,
    data: serde_json::Value,
    now: Millis,
) -> Result<Option<Millis>> {
    let Some(biz) = biz.filter(|b| !b.webhooks.is_empty()) else {
        return Ok(None);
    };
    let contact = contacts::get(c, contact_id)?;
    if contact.business_id != biz.id {
        return Ok(None);
    }
    emit(c, biz, Some(&contact), kind, data, now)
}

/// `text.suppressed`: an automatic text that will not go, and why.
pub(crate) fn emit_suppressed(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    contact_id: i64,
    purpose: &str,
    message_id: Option<i64>,
    reason: &str,
    now: Millis,
) -> Result<Option<Millis>> {
    emit_about(
        c,
        biz,
        contact_id,
        outbound::Kind::TextSuppressed,
        serde_json::json!({ "purpose": purpose, "message_id": message_id, "reason": reason }),
        now,
    )
}

/// The fields of an event about one of our texts.
pub(crate) fn text_data(m: &messages::Message) -> serde_json::Value {
    serde_json::json!({
        "message_id": m.id,
        "purpose": m.purpose,
        "provider": m.provider,
        "provider_id": m.provider_sid,
        "from": m.from_number,
        "to": m.to_number,
        "body": m.body,
        "status": m.status,
        "error_code": m.error_code,
        "error": m.error_message,
    })
}

/// Whether events about this text go out: texts to contacts, not staff alerts or test texts.
fn reportable(m: &messages::Message) -> bool {
    m.contact_id.is_some()
        && !matches!(
            Purpose::parse(&m.purpose),
            Some(Purpose::Alert | Purpose::Test) | None
        )
}

/// `text.sent`, `text.delivered` or `text.failed` about one of our texts.
pub(crate) fn emit_text(
    c: &Conn<'_>,
    biz: Option<&BusinessConfig>,
    m: &messages::Message,
    kind: outbound::Kind,
    now: Millis,
) -> Result<Option<Millis>> {
    match m.contact_id.filter(|_| reportable(m)) {
        Some(contact) => emit_about(c, biz, contact, kind, text_data(m), now),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Bookings

/// What a booking tool's report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingResult {
    /// The contact's conversation is booked.
    Booked,
    /// Recorded, but no contact has its number or email ("booked, not from a text-back").
    Unmatched,
    /// The booking was cancelled; its conversation no longer counts as booked.
    Cancelled,
    /// Reported before: nothing changed.
    Duplicate,
}

impl BookingResult {
    /// The word the hook answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Unmatched => "unmatched",
            Self::Cancelled => "cancelled",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The contact a booking is for: by number (read in the business's country), else by email.
fn booking_contact(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<Option<Contact>> {
    if let Some(number) = phone {
        if let Some(found) = contacts::find(c, &biz.id, number)? {
            return Ok(Some(found));
        }
    }
    match email {
        Some(e) => contacts::find_by_email(c, &biz.id, e),
        None => Ok(None),
    }
}

/// Stores a reported booking in `state`, with its number in E.164 when it could be read.
fn record_booking(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    b: &crate::bookings::Booking,
    contact_id: Option<i64>,
    phone: Option<&str>,
    state: &str,
    now: Millis,
) -> Result<()> {
    store::bookings::insert(
        c,
        &store::bookings::NewBooking {
            business_id: &biz.id,
            source: b.source.as_str(),
            external_id: &b.external_id,
            contact_id,
            phone: phone.or(b.phone.as_deref()),
            email: b.email.as_deref(),
            name: b.name.as_deref(),
            title: b.title.as_deref(),
            value_cents: b.value_cents,
            starts_at: b.starts_at,
            state,
        },
        now,
    )?;
    Ok(())
}

/// Applies a booking tool's report: a booking marks its contact's conversation booked (its value, else the
/// average ticket in reports), stops follow-ups and tells receivers; a cancellation reverses that. The same
/// booking reported twice counts once; one that matches no contact is kept, and shown as booked elsewhere.
pub fn booking(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    b: &crate::bookings::Booking,
    now: Millis,
) -> Result<BookingResult> {
    use crate::bookings::Change;
    let source = b.source.as_str();
    let phone = b
        .phone
        .as_deref()
        .and_then(|p| crate::country::normalize(p, biz.sender()));
    let existing = store::bookings::find(c, &biz.id, source, &b.external_id)?;
    match b.change {
        Change::Booked => {
            if existing.is_some() {
                return Ok(BookingResult::Duplicate);
            }
            let contact = booking_contact(c, biz, phone.as_deref(), b.email.as_deref())?;
            let contact_id = contact.as_ref().map(|k| k.id);
            record_booking(c, biz, b, contact_id, phone.as_deref(), "booked", now)?;
            if let Some(old) = &b.replaces {
                if let Some(prev) = store::bookings::find(c, &biz.id, source, old)? {
                    store::bookings::set_state(c, prev.id, "rescheduled", now)?;
                }
            }
            let Some(contact) = contact else {
                return Ok(BookingResult::Unmatched);
            };
            if let Some(e) = &b.email {
                contacts::note_email(c, contact.id, e, now)?;
            }
            let via = BookedVia {
                source: source.to_string(),
                external_id: b.external_id.clone(),
                starts_at: b.starts_at,
            };
            book(c, biz, &contact, b.value_cents, Some(&via), now)?;
            Ok(BookingResult::Booked)
        }
        Change::Cancelled { rescheduled } => {
            let Some(found) = existing else {
                // A cancellation of a booking never reported: kept, so a late "created" counts once.
                let state = if rescheduled {
                    "rescheduled"
                } else {
                    "cancelled"
                };
                record_booking(c, biz, b, None, phone.as_deref(), state, now)?;
                return Ok(BookingResult::Duplicate);
            };
            if found.state != "booked" {
                return Ok(BookingResult::Duplicate);
            }
            store::bookings::set_state(
                c,
                found.id,
                if rescheduled {
                    "rescheduled"
                } else {
                    "cancelled"
                },
                now,
            )?;
            // A reschedule's new booking keeps the conversation booked.
            if let (false, Some(contact_id)) = (rescheduled, found.contact_id) {
                if store::bookings::standing(c, contact_id)? == 0 {
                    contacts::unbook(c, contact_id, now)?;
                    emit_about(
                        c,
                        Some(biz),
                        contact_id,
                        outbound::Kind::ConversationUnbooked,
                        serde_json::json!({ "source": source, "booking_id": b.external_id }),
                        now,
                    )?;
                }
            }
            Ok(BookingResult::Cancelled)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Staff actions

fn invalid(what: impl Into<String>) -> Error {
    Error::Invalid(what.into())
}

fn contact_by_phone(c: &Conn<'_>, biz: &BusinessConfig, phone: &str) -> Refusable<Contact> {
    let number = PhoneNumber::parse(phone).map_err(|e| invalid(e.to_string()))?;
    contacts::find(c, &biz.id, number.as_str())?
        .ok_or_else(|| Error::Refused(format!("{number} is not a contact of {}", biz.id)))
}

/// Records a booking (and its value in cents): the conversation counts as recovered, follow-ups stop.
pub fn mark_booked(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    phone: &str,
    value_cents: Option<i64>,
    now: Millis,
) -> Refusable<i64> {
    let contact = contact_by_phone(c, biz, phone)?;
    book(c, biz, &contact, value_cents, None, now)?;
    Ok(contact.id)
}

/// Where a booking came from, for `conversation.booked`.
#[derive(Debug, Clone)]
pub struct BookedVia {
    /// `calcom`, `calendly` or `generic`.
    pub source: String,
    /// The booking tool's id for it.
    pub external_id: String,
    /// When the appointment starts.
    pub starts_at: Option<Millis>,
}

/// The conversation is booked: it counts as recovered, follow-ups stop, receivers hear of it.
pub(crate) fn book(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    contact: &Contact,
    value_cents: Option<i64>,
    via: Option<&BookedVia>,
    now: Millis,
) -> Result<Option<Millis>> {
    contacts::mark_booked(c, contact.id, value_cents, now)?;
    cancel_follow_ups(c, Some(biz), contact.id, SuppressReason::Booked, now)?;
    let data = serde_json::json!({
        "value_cents": value_cents,
        "source": via.map_or("staff", |v| v.source.as_str()),
        "booking_id": via.map(|v| v.external_id.clone()),
        "starts_at": via.and_then(|v| v.starts_at).map(crate::clock::format_rfc3339),
    });
    // The event names the contact (id, number, name), which booking does not change: no second read.
    emit(
        c,
        biz,
        Some(contact),
        outbound::Kind::ConversationBooked,
        data,
        now,
    )
}

/// Marks a conversation lost: follow-ups stop.
pub fn mark_lost(c: &Conn<'_>, biz: &BusinessConfig, phone: &str, now: Millis) -> Refusable<i64> {
    let contact = contact_by_phone(c, biz, phone)?;
    contacts::set_state(c, contact.id, "lost", now)?;
    cancel_follow_ups(c, Some(biz), contact.id, SuppressReason::Lost, now)?;
    emit(
        c,
        biz,
        Some(&contact),
        outbound::Kind::ConversationLost,
        serde_json::json!({}),
        now,
    )?;
    Ok(contact.id)
}

/// Blocks or unblocks a number: a blocked contact is never texted.
pub fn set_blocked(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    phone: &str,
    blocked: bool,
    now: Millis,
) -> Refusable<i64> {
    let number = PhoneNumber::parse(phone).map_err(|e| invalid(e.to_string()))?;
    let (id, _) = contacts::upsert(c, &biz.id, number.as_str(), now)?;
    contacts::set_blocked(c, id, blocked, now)?;
    if blocked {
        cancel_text_backs(c, Some(biz), id, SuppressReason::Blocked, now)?;
        cancel_follow_ups(c, Some(biz), id, SuppressReason::Blocked, now)?;
    }
    Ok(id)
}

/// Staff called off a contact's pending follow-ups.
pub fn cancel_follow_ups_by_staff(c: &Conn<'_>, contact_id: i64, now: Millis) -> Result<()> {
    for job in jobs::cancel_for_contact(c, contact_id, "follow_up", "cancelled by staff", now)? {
        if let Some(m) = job.message_id {
            messages::set_status(
                c,
                m,
                status::CANCELLED,
                None,
                Some("cancelled by staff"),
                now,
            )?;
        }
    }
    Ok(())
}

/// Sends a reply written by staff. Refused for opted-out contacts. Automation goes quiet for `human_hold`.
pub fn staff_reply(
    c: &Conn<'_>,
    env: &Env<'_>,
    phone: &str,
    body: &str,
    now: Millis,
) -> Refusable<Millis> {
    let number = PhoneNumber::parse(phone).map_err(|e| invalid(e.to_string()))?;
    if body.trim().is_empty() {
        return Err(invalid("the reply is empty"));
    }
    let (id, _) = contacts::upsert(c, &env.biz.id, number.as_str(), now)?;
    let contact = contacts::get(c, id)?;
    if contact.opted_out_at.is_some() {
        return Err(Error::Refused(format!(
            "{number} opted out; they must text START before you can text them"
        )));
    }
    contacts::note_staff_reply(c, id, now)?;
    Ok(queue_message(
        c,
        env,
        Some(id),
        number.as_str(),
        body.trim(),
        Purpose::Reply,
        now,
        now,
    )?)
}
