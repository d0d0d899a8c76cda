//! The scheduler's side of the outbox, inside transactions: turn a claimed job into work (taking the
//! send-time decision again and readying the message in state `sending`), and record how the work ended
//! (which may enqueue the next follow-up or an alert). No network I/O. Depends on store, policy, script,
//! events, model and config.

use crate::clock::Millis;
use crate::config::{BusinessConfig, Config, WebhookFormat};
use crate::events::{self, Alert, Env};
use crate::model::{status, Job, Purpose, SuppressReason};
use crate::policy::{self, ScriptChoice, Verdict};
use crate::providers::{Accepted, OutgoingSms};
use crate::script;
use crate::store::jobs::{JobRow, NewJob};
use crate::store::{calls, contacts, jobs, messages, outbound, Conn, Error, Result};

/// A text ready for the provider.
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
    /// The business sending it.
    pub business_id: String,
    /// The provider account name.
    pub provider: String,
    /// What to send.
    pub sms: OutgoingSms,
    /// When the message was readied for this attempt; a reconciliation looks for sends from then on.
    pub prepared_at: Millis,
    /// When the job was due (for the lateness metric).
    pub due_at: Millis,
    /// Look the recipient's line type up first (and do not text a landline).
    pub lookup: bool,
}

/// An alert to POST to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Where.
    pub url: String,
    /// In which shape.
    pub format: WebhookFormat,
    /// The business's name.
    pub business: String,
    /// The alert as one line.
    pub text: String,
    /// The contact's number.
    pub phone: String,
    /// What they wrote.
    pub body: Option<String>,
    /// The conversation's page.
    pub link: String,
    /// Urgent.
    pub urgent: bool,
}

/// A phone call that reads someone an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The provider account name.
    pub provider: String,
    /// The business number calling.
    pub from: String,
    /// Who to call.
    pub to: String,
    /// What to say.
    pub say: String,
}

/// Work the scheduler hands to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Send a text.
    Sms(Send),
    /// Ask the provider whether a text whose send was unclear went out; resend it only if it certainly did not.
    Verify(Send),
    /// POST an alert.
    Post(Post),
    /// Place an alert call.
    Call(Call),
    /// Notify a staff user's browser.
    Push(Push),
    /// Deliver a signed event to an endpoint.
    Event(crate::outbound::Delivery),
    /// Send an email.
    Email(Mail),
    /// Back the database up.
    Backup {
        /// The job.
        job_id: i64,
        /// Its attempt number.
        attempt: u32,
    },
}

/// An email ready for the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The email.
    pub email: crate::email::Email,
}

/// A notification for one subscribed browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Where, and the browser's keys.
    pub subscription: crate::store::push::Subscription,
    /// The operator contact the push service is given.
    pub contact: String,
    /// What the phone shows.
    pub note: crate::push::Notification,
}

fn env<'a>(config: &'a Config, biz: &'a BusinessConfig, public_url: &'a str) -> Env<'a> {
    Env::of(config, biz, public_url)
}

fn fail(c: &Conn<'_>, job: &JobRow, why: &str, now: Millis) -> Result<Option<Work>> {
    jobs::finish(c, job.id, "failed", Some(why), now)?;
    Ok(None)
}

/// Takes the send-time decision for a claimed job and readies its work. `None` when the job was called off
/// (opt-out during the delay, answered call, reply), postponed (quiet hours, staff in the conversation), or
/// cannot be done (recorded as failed).
pub fn prepare(
    c: &Conn<'_>,
    config: &Config,
    public_url: &str,
    job: &JobRow,
    now: Millis,
) -> Result<Option<Work>> {
    // A text that may already have gone out is checked with the provider first, whatever has happened since
    // (an opt-out must not turn a delivered text into a "cancelled" one); the decisions come after.
    if let Some(id) = job.message_id {
        let m = messages::get(c, id)?;
        if m.status == status::CHECKING {
            return Ok(Some(Work::Verify(send_of(job, &m, false))));
        }
    }
    match &job.job {
        Job::TextBack { call_id } => text_back(c, config, public_url, job, *call_id, now),
        Job::SendMessage { message_id } => message(c, config, job, *message_id, now),
        Job::FollowUp {
            contact_id,
            step,
            due_at,
        } => follow_up(c, config, job, *contact_id, *step, *due_at, now),
        Job::AlertWebhook {
            business_id,
            text,
            phone,
            body,
            link,
            urgent,
        } => {
            let Some(biz) = config.business(business_id) else {
                return fail(c, job, "the business is no longer configured", now);
            };
            let Some(hook) = &biz.alert_webhook else {
                return fail(c, job, "the business no longer has an alert_webhook", now);
            };
            Ok(Some(Work::Post(Post {
                job_id: job.id,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                url: hook.url.clone(),
                format: hook.format,
                business: biz.name.clone(),
                text: text.clone(),
                phone: phone.clone(),
                body: body.clone(),
                link: link.clone(),
                urgent: *urgent,
            })))
        }
        Job::Push {
            subscription_id,
            note,
        } => {
            let Some(contact) = config.push.contact.clone() else {
                jobs::finish(
                    c,
                    job.id,
                    "cancelled",
                    Some("push notifications are off ([push] contact is not set)"),
                    now,
                )?;
                return Ok(None);
            };
            let Some(subscription) = crate::store::push::get(c, *subscription_id)? else {
                jobs::finish(
                    c,
                    job.id,
                    "cancelled",
                    Some("the browser unsubscribed, or its user no longer gets notifications"),
                    now,
                )?;
                return Ok(None);
            };
            Ok(Some(Work::Push(Push {
                job_id: job.id,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                subscription,
                contact,
                note: note.clone(),
            })))
        }
        Job::Deliver { delivery_id } => delivery(c, config, job, *delivery_id, now),
        Job::Email(email) => {
            if config.email.is_none() {
                return fail(c, job, "email is not configured ([email] is missing)", now);
            }
            Ok(Some(Work::Email(Mail {
                job_id: job.id,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                email: email.clone(),
            })))
        }
        Job::Backup { .. } => {
            if config.backup.is_none() {
                jobs::finish(c, job.id, "cancelled", Some("[backup] was removed"), now)?;
                return Ok(None);
            }
            Ok(Some(Work::Backup {
                job_id: job.id,
                attempt: job.attempts,
            }))
        }
        Job::Digest { business_id, at } => {
            crate::digest::run(c, config, public_url, job, business_id, *at, now)?;
            Ok(None)
        }
        Job::AlertCall {
            business_id,
            to,
            say,
        } => {
            let Some(biz) = config.business(business_id) else {
                return fail(c, job, "the business is no longer configured", now);
            };
            // The account that reports its calls, or else the one that texts, if it can phone people.
            let caller = [config.provider_name(biz), config.sms_provider_name(biz)]
                .into_iter()
                .find(|name| {
                    config
                        .providers
                        .get(*name)
                        .is_some_and(|p| p.caps.places_calls)
                });
            let Some(provider) = caller else {
                return fail(
                    c,
                    job,
                    "none of this business's provider accounts can place calls; staff were texted",
                    now,
                );
            };
            Ok(Some(Work::Call(Call {
                job_id: job.id,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                provider: provider.to_string(),
                from: biz.sender().to_string(),
                to: to.clone(),
                say: say.clone(),
            })))
        }
    }
}

/// Readies one delivery of a signed event: not while an earlier one about the same contact to the same
/// endpoint is still pending (receivers see a contact's events in order), not to a paused endpoint, and not
/// to an endpoint taken out of the config.
fn delivery(
    c: &Conn<'_>,
    config: &Config,
    job: &JobRow,
    delivery_id: i64,
    now: Millis,
) -> Result<Option<Work>> {
    let Some(d) = outbound::get(c, delivery_id)? else {
        jobs::finish(c, job.id, "cancelled", Some("the event was erased"), now)?;
        return Ok(None);
    };
    if d.state != "pending" {
        jobs::finish(
            c,
            job.id,
            "cancelled",
            Some("the delivery already ended"),
            now,
        )?;
        return Ok(None);
    }
    let endpoint = config
        .business(&d.business_id)
        .and_then(|b| b.webhooks.iter().find(|w| w.url == d.endpoint));
    let Some(endpoint) = endpoint else {
        let why = "the endpoint is no longer in the configuration";
        outbound::abandon(c, d.id, "failed", why, now)?;
        return fail(c, job, why, now);
    };
    if outbound::paused(c, &d.business_id, &d.endpoint)?.is_some() {
        let why = "not sent: the endpoint is paused since it answered 410 Gone";
        outbound::abandon(c, d.id, "skipped", why, now)?;
        jobs::finish(c, job.id, "cancelled", Some(why), now)?;
        return Ok(None);
    }
    if let Some(ahead) = outbound::waiting_behind(c, &d)? {
        // Just after the one ahead is due, so a retry of it goes first.
        let at = ahead.max(now) + 50;
        outbound::set_next(c, d.id, at, now)?;
        jobs::postpone(c, job.id, at, now)?;
        return Ok(None);
    }
    Ok(Some(Work::Event(crate::outbound::Delivery {
        job_id: job.id,
        attempt: job.attempts,
        delivery_id: d.id,
        business_id: d.business_id.clone(),
        url: d.endpoint.clone(),
        secret: endpoint.secret.clone(),
        event_uid: d.event_uid.clone(),
        event_type: d.event_type.clone(),
        body: outbound::body(c, d.event_id)?,
        created_at: d.created_at,
        backoff: endpoint.retry_backoff.millis(),
    })))
}

/// How a delivery attempt ended, as the scheduler classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The endpoint took it.
    Ok(u16),
    /// Try again at `at`.
    Retry {
        /// The HTTP status, if any.
        code: Option<u16>,
        /// What failed.
        message: String,
        /// When.
        at: Millis,
    },
    /// It ended without delivery: refused, gone (the endpoint is paused) or out of time.
    Failed {
        /// The HTTP status, if any.
        code: Option<u16>,
        /// Why.
        message: String,
        /// The endpoint answered 410 Gone: pause it.
        gone: bool,
    },
}

/// Records a delivery attempt on the delivery, its job and, after a 410, the endpoint.
pub fn record_delivery(
    c: &Conn<'_>,
    d: &crate::outbound::Delivery,
    result: &Delivered,
    now: Millis,
) -> Result<()> {
    match result {
        Delivered::Ok(code) => {
            outbound::record(c, d.delivery_id, "delivered", Some(*code), None, None, now)?;
            jobs::finish(c, d.job_id, "done", None, now)
        }
        Delivered::Retry { code, message, at } => {
            outbound::record(
                c,
                d.delivery_id,
                "pending",
                *code,
                Some(message),
                Some(*at),
                now,
            )?;
            jobs::retry_at(c, d.job_id, *at, message, now)
        }
        Delivered::Failed {
            code,
            message,
            gone,
        } => {
            if *gone {
                outbound::pause(c, &d.business_id, &d.url, message, now)?;
            }
            outbound::record(c, d.delivery_id, "failed", *code, Some(message), None, now)?;
            jobs::finish(c, d.job_id, "failed", Some(message), now)
        }
    }
}

fn suppress_text_back(
    c: &Conn<'_>,
    biz: &BusinessConfig,
    job: &JobRow,
    call_id: i64,
    contact_id: i64,
    reason: SuppressReason,
    now: Millis,
) -> Result<()> {
    jobs::finish(c, job.id, "cancelled", Some(reason.as_str()), now)?;
    calls::set_textback(c, call_id, "suppressed", Some(reason.as_str()), now)?;
    if let Some(m) = job.message_id {
        messages::set_status(c, m, status::CANCELLED, None, Some(reason.as_str()), now)?;
    }
    events::emit_suppressed(
        c,
        Some(biz),
        contact_id,
        Purpose::TextBack.as_str(),
        job.message_id,
        reason.as_str(),
        now,
    )?;
    Ok(())
}

fn text_back(
    c: &Conn<'_>,
    config: &Config,
    public_url: &str,
    job: &JobRow,
    call_id: i64,
    now: Millis,
) -> Result<Option<Work>> {
    let call = calls::get(c, call_id)?;
    let Some(biz) = config.business(&call.business_id) else {
        let why = format!("business {:?} is no longer configured", call.business_id);
        calls::set_textback(c, call.id, "failed", Some(&why), now)?;
        return fail(c, job, &why, now);
    };
    let Some(contact_id) = call.contact_id else {
        return fail(c, job, "the call has no contact", now);
    };
    let verdict = if call.state == "answered" {
        Err(SuppressReason::Answered)
    } else {
        let facts = contacts::facts(c, contact_id, job.message_id, now)?;
        policy::confirm_text_back(facts, now, biz.repeat_window.millis())
    };
    if let Err(reason) = verdict {
        suppress_text_back(c, biz, job, call.id, contact_id, reason, now)?;
        if reason == SuppressReason::Landline {
            let contact = contacts::get(c, contact_id)?;
            events::alert(
                c,
                &env(config, biz, public_url),
                &contact,
                &Alert::Callback,
                now,
            )?;
        }
        return Ok(None);
    }
    let contact = contacts::get(c, contact_id)?;
    let message_id = match job.message_id {
        Some(id) => {
            messages::mark_sending(c, id, now)?;
            id
        }
        None => {
            let (open, quiet) = (
                biz.schedule().is_open(call.started_at),
                biz.quiet().contains(now),
            );
            let choice = policy::choose_script(
                open,
                quiet,
                contacts::returning(c, contact_id, call.started_at)?,
                biz.returning_script.is_some(),
            );
            let why = choice.describe(open, quiet);
            let chosen = match choice {
                ScriptChoice::Normal => &biz.script,
                ScriptChoice::AfterHours => &biz.after_hours_script,
                ScriptChoice::Returning => biz.returning_script.as_ref().unwrap_or(&biz.script),
            };
            let body = match script::render(chosen, &biz.script_fields()) {
                Ok(b) => script::with_opt_out(&b),
                Err(e) => {
                    let why = e.to_string();
                    calls::set_textback(c, call.id, "failed", Some(&why), now)?;
                    return fail(c, job, &why, now);
                }
            };
            // Texted through the business's texting account: from the number called when that account
            // also reported the call, else from the business's first number.
            let texts = config.sms_provider_name(biz);
            let from = if texts == call.provider {
                call.to_number.as_str()
            } else {
                biz.sender()
            };
            let id = new_message(
                c,
                job,
                biz,
                Some(call.id),
                texts,
                from,
                &contact,
                &body,
                Purpose::TextBack,
                now,
            )?;
            messages::set_script(c, id, &why)?;
            tracing::info!(call = call.id, message_id = id, script = %why, "text-back composed");
            id
        }
    };
    let m = messages::get(c, message_id)?;
    let lookup = config
        .providers
        .get(&m.provider)
        .is_some_and(|p| p.caps.line_type_lookup)
        && contacts::line_type(c, &contact.phone, now)?.is_none();
    Ok(Some(Work::Sms(send_of(job, &m, lookup))))
}

#[allow(clippy::too_many_arguments)]
fn new_message(
    c: &Conn<'_>,
    job: &JobRow,
    biz: &BusinessConfig,
    call_id: Option<i64>,
    provider: &str,
    from: &str,
    contact: &contacts::Contact,
    body: &str,
    purpose: Purpose,
    now: Millis,
) -> Result<i64> {
    let id = messages::insert(
        c,
        &messages::NewMessage {
            business_id: &biz.id,
            contact_id: Some(contact.id),
            call_id,
            direction: "out",
            purpose: purpose.as_str(),
            provider,
            provider_sid: None,
            from_number: from,
            to_number: &contact.phone,
            body,
            segments: script::segments(body).count,
            status: status::SENDING,
        },
        now,
    )?
    .ok_or_else(|| Error::Conflict("could not record the message".into()))?;
    jobs::set_message(c, job.id, id)?;
    Ok(id)
}

fn follow_up(
    c: &Conn<'_>,
    config: &Config,
    job: &JobRow,
    contact_id: i64,
    step: usize,
    due_at: Millis,
    now: Millis,
) -> Result<Option<Work>> {
    let contact = contacts::get(c, contact_id)?;
    let Some(biz) = config.business(&contact.business_id) else {
        return fail(c, job, "the business is no longer configured", now);
    };
    let Some(plan) = biz.follow_ups.get(step) else {
        jobs::finish(
            c,
            job.id,
            "cancelled",
            Some("the follow-up was removed from the config"),
            now,
        )?;
        return Ok(None);
    };
    let facts = contacts::conversation(c, contact_id, job.created_at, now)?;
    match policy::follow_up(facts, &events::automation_rules(biz), due_at, now) {
        Verdict::Drop(reason) => {
            jobs::finish(c, job.id, "cancelled", Some(reason.as_str()), now)?;
            match job.message_id {
                Some(m) => {
                    messages::set_status(
                        c,
                        m,
                        status::CANCELLED,
                        None,
                        Some(reason.as_str()),
                        now,
                    )?;
                    events::emit_suppressed(
                        c,
                        Some(biz),
                        contact_id,
                        Purpose::FollowUp.as_str(),
                        Some(m),
                        reason.as_str(),
                        now,
                    )?;
                }
                None => {
                    let body =
                        script::render(&plan.script, &biz.script_fields()).unwrap_or_default();
                    let env = Env::of(config, biz, "");
                    events::record_unsent(
                        c,
                        &env,
                        contact_id,
                        &contact.phone,
                        &body,
                        Purpose::FollowUp,
                        events::NotSent::Suppressed(reason),
                        now,
                    )?;
                }
            }
            Ok(None)
        }
        Verdict::Wait(at) => {
            jobs::postpone(c, job.id, at, now)?;
            Ok(None)
        }
        Verdict::Send => {
            let message_id = match job.message_id {
                Some(id) => {
                    messages::mark_sending(c, id, now)?;
                    id
                }
                None => {
                    let body = match script::render(&plan.script, &biz.script_fields()) {
                        Ok(b) => b,
                        Err(e) => return fail(c, job, &e.to_string(), now),
                    };
                    let provider = config.sms_provider_name(biz);
                    new_message(
                        c,
                        job,
                        biz,
                        None,
                        provider,
                        biz.sender(),
                        &contact,
                        &body,
                        Purpose::FollowUp,
                        now,
                    )?
                }
            };
            let m = messages::get(c, message_id)?;
            Ok(Some(Work::Sms(send_of(job, &m, false))))
        }
    }
}

fn message(
    c: &Conn<'_>,
    config: &Config,
    job: &JobRow,
    message_id: i64,
    now: Millis,
) -> Result<Option<Work>> {
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
        if let Some(contact) = m.contact_id {
            let biz = config.business(&m.business_id);
            events::emit_suppressed(c, biz, contact, &m.purpose, Some(message_id), reason, now)?;
        }
        return Ok(None);
    }
    messages::mark_sending(c, message_id, now)?;
    let m = messages::get(c, message_id)?;
    Ok(Some(Work::Sms(send_of(job, &m, false))))
}

/// A text's id for providers that take one: its row and the moment it was created, so a database restored
/// from a backup (whose row ids are handed out again) never reuses one the phone has seen.
pub fn sms_key(m: &messages::Message) -> String {
    format!("textback-{}-{}", m.id, m.created_at)
}

fn send_of(job: &JobRow, m: &messages::Message, lookup: bool) -> Send {
    Send {
        job_id: job.id,
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        message_id: m.id,
        business_id: m.business_id.clone(),
        provider: m.provider.clone(),
        sms: OutgoingSms {
            from: m.from_number.clone(),
            to: m.to_number.clone(),
            body: m.body.clone(),
            key: sms_key(m),
        },
        // The lookup window of a reconciliation starts with the attempt, not the row's latest change.
        prepared_at: m.send_started_at.unwrap_or(m.updated_at),
        due_at: job.run_at,
        lookup,
    }
}

/// Puts a readied text back in the queue until `at` (the sending number's rate limit).
pub fn hold_until(c: &Conn<'_>, send: &Send, at: Millis, now: Millis) -> Result<()> {
    messages::set_status(c, send.message_id, "scheduled", None, None, now)?;
    jobs::postpone(c, send.job_id, at, now)
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
        /// What the refusal means, and the provider's code.
        failure: crate::model::Failure,
        /// Provider message.
        message: String,
    },
    /// Not sent, by decision (a line-type lookup found a landline).
    Suppressed(SuppressReason),
    /// The provider may have taken it: ask it at `at`, and resend only if it certainly did not.
    Check {
        /// What made the outcome unclear.
        message: String,
        /// When to ask.
        at: Millis,
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

/// Records how a text ended, on the message, the job, the call and the conversation; schedules the next
/// follow-up after a text-back or follow-up went out.
pub fn record_send(
    c: &Conn<'_>,
    config: &Config,
    public_url: &str,
    send: &Send,
    outcome: &Outcome,
    now: Millis,
) -> Result<()> {
    let m = messages::get(c, send.message_id)?;
    let purpose = Purpose::parse(&m.purpose);
    let call_id = m.call_id.filter(|_| purpose == Some(Purpose::TextBack));
    let set_call = |state: &str, why: Option<&str>| -> Result<()> {
        match call_id {
            Some(id) => calls::set_textback(c, id, state, why, now),
            None => Ok(()),
        }
    };
    let biz = config.business(&m.business_id);
    match outcome {
        Outcome::Accepted { accepted, sent_at } => {
            messages::set_accepted(c, m.id, &accepted.sid, &accepted.status, *sent_at, now)?;
            jobs::finish(c, send.job_id, "done", None, now)?;
            set_call("sent", None)?;
            if biz.is_some_and(|b| !b.webhooks.is_empty()) {
                let sent = messages::get(c, m.id)?;
                events::emit_text(c, biz, &sent, crate::outbound::Kind::TextSent, now)?;
            }
            if let (Some(contact), Some(biz)) = (m.contact_id, biz) {
                let next = match (purpose, jobs::get(c, send.job_id)?.job) {
                    (Some(Purpose::TextBack), _) => {
                        contacts::note_texted(c, contact, now)?;
                        Some(0)
                    }
                    (Some(Purpose::FollowUp), Job::FollowUp { step, .. }) => Some(step + 1),
                    _ => None,
                };
                if let Some(plan) =
                    next.and_then(|step| biz.follow_ups.get(step).map(|p| (step, p)))
                {
                    let (step, plan) = plan;
                    let due_at = sent_at + plan.after.millis();
                    jobs::enqueue(
                        c,
                        &NewJob {
                            job: Job::FollowUp {
                                contact_id: contact,
                                step,
                                due_at,
                            },
                            dedupe_key: Some(&format!("followup:{}:{step}", m.id)),
                            contact_id: Some(contact),
                            message_id: None,
                            run_at: due_at,
                            max_attempts: events::MAX_ATTEMPTS,
                        },
                        now,
                    )?;
                }
            }
        }
        Outcome::Rejected { failure, message } => {
            let code = failure.code.as_deref();
            messages::set_status(c, m.id, status::FAILED, code, Some(message), now)?;
            jobs::finish(c, send.job_id, "failed", Some(message), now)?;
            set_call("failed", Some(message))?;
            events::provider_error(c, biz, &m, failure, now)?;
            events::text_failed(c, biz, &m, message, now)?;
        }
        Outcome::Suppressed(reason) => {
            messages::set_status(c, m.id, status::CANCELLED, None, Some(reason.as_str()), now)?;
            jobs::finish(c, send.job_id, "cancelled", Some(reason.as_str()), now)?;
            set_call("suppressed", Some(reason.as_str()))?;
            if let Some(contact) = m.contact_id {
                let purpose = m.purpose.as_str();
                events::emit_suppressed(
                    c,
                    biz,
                    contact,
                    purpose,
                    Some(m.id),
                    reason.as_str(),
                    now,
                )?;
            }
            if let (SuppressReason::Landline, Some(contact), Some(biz)) =
                (reason, m.contact_id, biz)
            {
                let contact = contacts::get(c, contact)?;
                events::alert(
                    c,
                    &env(config, biz, public_url),
                    &contact,
                    &Alert::Callback,
                    now,
                )?;
            }
        }
        Outcome::Retry { message, at } => {
            messages::set_status(c, m.id, status::RETRYING, None, Some(message), now)?;
            jobs::retry_at(c, send.job_id, *at, message, now)?;
        }
        Outcome::Check { message, at } => {
            let why = format!(
                "{message}; the provider may have it: checking at {} before anything is resent",
                crate::clock::format_utc(*at)
            );
            messages::set_status(c, m.id, status::CHECKING, None, Some(&why), now)?;
            jobs::retry_at(c, send.job_id, *at, &why, now)?;
        }
        Outcome::GaveUp { message } => {
            messages::set_status(c, m.id, status::FAILED, None, Some(message), now)?;
            jobs::finish(c, send.job_id, "failed", Some(message), now)?;
            set_call("failed", Some(message))?;
            events::text_failed(c, biz, &m, message, now)?;
        }
        Outcome::Unknown { message } => {
            messages::set_status(c, m.id, status::UNKNOWN, None, Some(message), now)?;
            jobs::finish(c, send.job_id, "unknown", Some(message), now)?;
        }
    }
    Ok(())
}

/// Records how an alert POST or call ended.
pub fn record_job(c: &Conn<'_>, job_id: i64, outcome: &Outcome, now: Millis) -> Result<()> {
    match outcome {
        Outcome::Accepted { .. } => jobs::finish(c, job_id, "done", None, now),
        Outcome::Retry { message, at } | Outcome::Check { message, at } => {
            jobs::retry_at(c, job_id, *at, message, now)
        }
        Outcome::Rejected { message, .. }
        | Outcome::GaveUp { message }
        | Outcome::Unknown { message } => jobs::finish(c, job_id, "failed", Some(message), now),
        Outcome::Suppressed(reason) => {
            jobs::finish(c, job_id, "cancelled", Some(reason.as_str()), now)
        }
    }
}

/// Caches a looked-up line type.
pub fn record_line_type(c: &Conn<'_>, phone: &str, line_type: &str, now: Millis) -> Result<()> {
    contacts::set_line_type(c, phone, line_type, "lookup", now)
}

/// Puts back jobs interrupted while running (by a crash, or a worker whose lease ran out; all running jobs
/// when `all`, at start-up). A text that got as far as the provider may have gone out: it is checked with
/// the provider once the provider has had `settle_ms` since the send to show it, and resent only if it
/// certainly did not go. Anything else never started, and is due again now. Returns how many were put back.
pub fn recover_interrupted(c: &Conn<'_>, config: &Config, now: Millis, all: bool) -> Result<usize> {
    let list = jobs::interrupted(c, now, all)?;
    for job in &list {
        let sending = match job.message_id {
            Some(id) => Some(messages::get(c, id)?).filter(|m| m.status == status::SENDING),
            None => None,
        };
        match sending {
            Some(m) => {
                let settle = config
                    .providers
                    .get(&m.provider)
                    .map_or(0, |p| p.settle_time().millis());
                let started = m.send_started_at.unwrap_or(m.updated_at);
                let at = now.max(started + settle);
                let why = format!(
                    "interrupted while sending; the provider may have it: checking at {} before anything is resent",
                    crate::clock::format_utc(at)
                );
                messages::set_status(c, m.id, status::CHECKING, None, Some(&why), now)?;
                jobs::retry_at(c, job.id, at, &why, now)?;
            }
            None => jobs::retry_at(c, job.id, now, "interrupted before sending", now)?,
        }
    }
    Ok(list.len())
}
