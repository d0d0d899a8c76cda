//! Pure decisions: is this call missed, may this caller be texted and when, what does an inbound text mean,
//! how long to wait before retrying a send. No I/O; the current time is an argument. Depends on model.

use crate::clock::Millis;
use crate::model::{CallOutcome, MissReason, PhoneNumber, SuppressReason};

/// The placeholder Twilio puts in `From` for a withheld caller ID ("ANONYMOUS" on a keypad).
const ANONYMOUS_PLACEHOLDER: &str = "+266696687";

/// Decides whether the caller's `From` is a number we may text. Withheld, anonymous, SIP and client
/// identities, short codes, the business's own numbers and its staff (`forward_to`) numbers are not.
pub fn textable_caller(
    from: &str,
    own_numbers: &[PhoneNumber],
    staff_numbers: &[PhoneNumber],
) -> Result<PhoneNumber, SuppressReason> {
    let from = from.trim();
    if from == ANONYMOUS_PLACEHOLDER {
        return Err(SuppressReason::NoCallerId);
    }
    let number = PhoneNumber::parse(from).map_err(|_| SuppressReason::NoCallerId)?;
    if own_numbers.contains(&number) {
        return Err(SuppressReason::OwnNumber);
    }
    if staff_numbers.contains(&number) {
        return Err(SuppressReason::StaffNumber);
    }
    Ok(number)
}

/// What a `<Dial action>` report means: `DialCallStatus` and, when the forwarded leg was answered,
/// `DialCallDuration` in seconds. An answer shorter than `short_call_secs` is a hang-up or a voicemail.
pub fn dial_outcome(
    dial_status: &str,
    duration_secs: Option<u64>,
    short_call_secs: u64,
) -> CallOutcome {
    match dial_status {
        "no-answer" => CallOutcome::Missed(MissReason::NoAnswer),
        "busy" => CallOutcome::Missed(MissReason::Busy),
        "failed" => CallOutcome::Missed(MissReason::Failed),
        "canceled" => CallOutcome::Missed(MissReason::Canceled),
        "completed" | "answered" => match duration_secs {
            Some(d) if d >= short_call_secs => CallOutcome::Answered,
            _ => CallOutcome::Missed(MissReason::ShortCall),
        },
        _ => CallOutcome::Undecided,
    }
}

/// What we know about a call when its status callback arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFacts {
    /// Our voice webhook answered this call with a `<Dial>` (the call row exists).
    pub dialed_by_us: bool,
    /// The `<Dial action>` report has already been applied.
    pub dial_reported: bool,
    /// How long forwarded calls ring, in seconds.
    pub ring_timeout_secs: u64,
    /// Answered calls shorter than this count as missed, in seconds.
    pub short_call_secs: u64,
}

/// Seconds Twilio may add on top of a dial timeout (its documented buffer for some call flows).
const RING_BUFFER_SECS: u64 = 5;

/// What a call status callback (`CallStatus`, `CallDuration`) means. It is the backstop for a dial action
/// that never came (the caller hung up while it rang) and the only signal for numbers forwarded elsewhere.
pub fn status_outcome(
    call_status: &str,
    duration_secs: Option<u64>,
    f: StatusFacts,
) -> CallOutcome {
    match call_status {
        "no-answer" => CallOutcome::Missed(MissReason::NoAnswer),
        "busy" => CallOutcome::Missed(MissReason::Busy),
        "failed" => CallOutcome::Missed(MissReason::Failed),
        "canceled" => CallOutcome::Missed(MissReason::Canceled),
        "completed" if f.dial_reported => CallOutcome::Undecided,
        "completed" if f.dialed_by_us => {
            // Our <Dial> never reported back. A call that ended within the ring time ended while it rang;
            // a longer one was most likely answered (a voicemail we record always comes after a dial report).
            match duration_secs {
                Some(d) if d > f.ring_timeout_secs + RING_BUFFER_SECS => CallOutcome::Answered,
                _ => CallOutcome::Missed(MissReason::HungUpWhileRinging),
            }
        }
        "completed" => match duration_secs {
            Some(d) if d >= f.short_call_secs => CallOutcome::Answered,
            _ => CallOutcome::Missed(MissReason::ShortCall),
        },
        _ => CallOutcome::Undecided,
    }
}

/// What is known about a caller when a missed call is recorded or its text is about to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContactFacts {
    /// The contact opted out of this business.
    pub opted_out: bool,
    /// When the contact last got a text-back (sent, or under way), if ever.
    pub last_text_back_at: Option<Millis>,
    /// Another text-back to this contact is already scheduled.
    pub text_back_pending: bool,
}

/// Whether to schedule a text-back for a missed call, and for when.
pub fn schedule_text_back(
    facts: ContactFacts,
    now: Millis,
    delay_ms: Millis,
    repeat_window_ms: Millis,
) -> Result<Millis, SuppressReason> {
    if facts.opted_out {
        return Err(SuppressReason::OptedOut);
    }
    if facts.text_back_pending {
        return Err(SuppressReason::AlreadyScheduled);
    }
    if within(facts.last_text_back_at, now, repeat_window_ms) {
        return Err(SuppressReason::RepeatWindow);
    }
    Ok(now + delay_ms)
}

/// The decision taken again when a scheduled text-back is about to leave: an opt-out or another text-back
/// that arrived during the delay calls it off.
pub fn confirm_text_back(
    facts: ContactFacts,
    now: Millis,
    repeat_window_ms: Millis,
) -> Result<(), SuppressReason> {
    if facts.opted_out {
        return Err(SuppressReason::OptedOut);
    }
    if within(facts.last_text_back_at, now, repeat_window_ms) {
        return Err(SuppressReason::RepeatWindow);
    }
    Ok(())
}

fn within(at: Option<Millis>, now: Millis, window_ms: Millis) -> bool {
    at.is_some_and(|t| now - t < window_ms)
}

/// What an inbound text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop texting me.
    OptOut,
    /// Start texting me again.
    OptIn,
    /// Who are you and how do I stop this.
    Help,
    /// An ordinary reply.
    None,
}

/// Classifies an inbound text by the carrier keywords, ignoring case, surrounding spaces and punctuation.
pub fn keyword(body: &str) -> Keyword {
    let normal = normalize(body);
    match normal.as_str() {
        "STOP" | "STOPALL" | "STOP ALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE"
        | "OPTOUT" | "OPT OUT" => Keyword::OptOut,
        "START" | "UNSTOP" | "YES" => Keyword::OptIn,
        "HELP" | "INFO" => Keyword::Help,
        _ => Keyword::None,
    }
}

/// Upper-cases, turns punctuation into spaces and collapses whitespace.
fn normalize(body: &str) -> String {
    let cleaned: String = body
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// How long to wait before attempt `attempt + 1` after a transient failure: exponential from 5 s, capped at
/// 15 min, with up to 20 % jitter (`jitter` in 0..1), and never sooner than the provider's Retry-After.
pub fn retry_delay_ms(attempt: u32, retry_after_ms: Option<Millis>, jitter: f64) -> Millis {
    let base: Millis = 5_000;
    let cap: Millis = 15 * 60_000;
    let exp = base
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let jittered = exp + (exp as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as Millis;
    jittered.max(retry_after_ms.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn who_can_be_texted() {
        let own = [n("+16025550100")];
        let staff = [n("+16025550199")];
        let cases: &[(&str, Result<&str, SuppressReason>)] = &[
            ("+14805550111", Ok("+14805550111")),
            (" +14805550111", Ok("+14805550111")),
            ("+266696687", Err(SuppressReason::NoCallerId)),
            ("anonymous", Err(SuppressReason::NoCallerId)),
            ("Anonymous", Err(SuppressReason::NoCallerId)),
            ("restricted", Err(SuppressReason::NoCallerId)),
            ("unknown", Err(SuppressReason::NoCallerId)),
            ("", Err(SuppressReason::NoCallerId)),
            ("client:alice", Err(SuppressReason::NoCallerId)),
            ("sip:bob@example.com", Err(SuppressReason::NoCallerId)),
            ("12345", Err(SuppressReason::NoCallerId)),
            ("+1234", Err(SuppressReason::NoCallerId)),
            ("+16025550100", Err(SuppressReason::OwnNumber)),
            ("+16025550199", Err(SuppressReason::StaffNumber)),
        ];
        for (from, want) in cases {
            let got = textable_caller(from, &own, &staff);
            assert_eq!(got, want.map(n), "{from:?}");
        }
    }

    #[test]
    fn dial_reports() {
        use CallOutcome::*;
        use MissReason::*;
        let cases: &[(&str, Option<u64>, CallOutcome)] = &[
            ("no-answer", None, Missed(NoAnswer)),
            ("busy", None, Missed(Busy)),
            ("failed", None, Missed(Failed)),
            ("canceled", None, Missed(Canceled)),
            ("completed", Some(4), Missed(ShortCall)),
            ("completed", Some(5), Answered),
            ("completed", Some(300), Answered),
            ("completed", None, Missed(ShortCall)),
            ("answered", Some(60), Answered),
            ("in-progress", None, Undecided),
            ("", None, Undecided),
        ];
        for (status, dur, want) in cases {
            assert_eq!(dial_outcome(status, *dur, 5), *want, "{status} {dur:?}");
        }
    }

    #[test]
    fn status_reports() {
        use CallOutcome::*;
        use MissReason::*;
        let ours = StatusFacts {
            dialed_by_us: true,
            dial_reported: false,
            ring_timeout_secs: 20,
            short_call_secs: 5,
        };
        let reported = StatusFacts {
            dial_reported: true,
            ..ours
        };
        let elsewhere = StatusFacts {
            dialed_by_us: false,
            ..ours
        };
        let cases: &[(&str, Option<u64>, StatusFacts, CallOutcome)] = &[
            ("no-answer", None, elsewhere, Missed(NoAnswer)),
            ("busy", None, elsewhere, Missed(Busy)),
            ("failed", None, ours, Missed(Failed)),
            ("canceled", None, ours, Missed(Canceled)),
            ("completed", Some(8), ours, Missed(HungUpWhileRinging)),
            ("completed", Some(25), ours, Missed(HungUpWhileRinging)),
            ("completed", Some(26), ours, Answered),
            ("completed", Some(8), reported, Undecided),
            ("completed", Some(3), elsewhere, Missed(ShortCall)),
            ("completed", Some(90), elsewhere, Answered),
            ("ringing", None, ours, Undecided),
            ("in-progress", None, ours, Undecided),
            ("queued", None, ours, Undecided),
        ];
        for (status, dur, facts, want) in cases {
            assert_eq!(
                status_outcome(status, *dur, *facts),
                *want,
                "{status} {dur:?} {facts:?}"
            );
        }
    }

    #[test]
    fn scheduling_and_confirming_text_backs() {
        let day = 24 * 3_600_000;
        let now = 1_000 * day;
        let fresh = ContactFacts::default();
        let cases: &[(ContactFacts, Result<Millis, SuppressReason>)] = &[
            (fresh, Ok(now + 20_000)),
            (
                ContactFacts {
                    opted_out: true,
                    ..fresh
                },
                Err(SuppressReason::OptedOut),
            ),
            (
                ContactFacts {
                    text_back_pending: true,
                    ..fresh
                },
                Err(SuppressReason::AlreadyScheduled),
            ),
            (
                ContactFacts {
                    last_text_back_at: Some(now - day + 1),
                    ..fresh
                },
                Err(SuppressReason::RepeatWindow),
            ),
            (
                ContactFacts {
                    last_text_back_at: Some(now - day),
                    ..fresh
                },
                Ok(now + 20_000),
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(
                schedule_text_back(*facts, now, 20_000, day),
                *want,
                "{facts:?}"
            );
        }
        assert_eq!(confirm_text_back(fresh, now, day), Ok(()));
        assert_eq!(
            confirm_text_back(
                ContactFacts {
                    opted_out: true,
                    ..fresh
                },
                now,
                day
            ),
            Err(SuppressReason::OptedOut)
        );
        assert_eq!(
            confirm_text_back(
                ContactFacts {
                    last_text_back_at: Some(now - 5),
                    ..fresh
                },
                now,
                day
            ),
            Err(SuppressReason::RepeatWindow)
        );
    }

    #[test]
    fn keywords() {
        let cases: &[(&str, Keyword)] = &[
            ("STOP", Keyword::OptOut),
            ("stop", Keyword::OptOut),
            ("Stop.", Keyword::OptOut),
            ("  STOP  ", Keyword::OptOut),
            ("stop!!", Keyword::OptOut),
            ("StopAll", Keyword::OptOut),
            ("stop all", Keyword::OptOut),
            ("UNSUBSCRIBE", Keyword::OptOut),
            ("cancel", Keyword::OptOut),
            ("End", Keyword::OptOut),
            ("quit", Keyword::OptOut),
            ("revoke", Keyword::OptOut),
            ("optout", Keyword::OptOut),
            ("opt out", Keyword::OptOut),
            ("Opt-Out", Keyword::OptOut),
            ("START", Keyword::OptIn),
            ("unstop", Keyword::OptIn),
            ("Yes", Keyword::OptIn),
            ("HELP", Keyword::Help),
            ("help?", Keyword::Help),
            ("info", Keyword::Help),
            ("stop by tomorrow at 9?", Keyword::None),
            ("my furnace stopped", Keyword::None),
            ("yes please, 3pm works", Keyword::None),
            ("", Keyword::None),
        ];
        for (body, want) in cases {
            assert_eq!(keyword(body), *want, "{body:?}");
        }
    }

    #[test]
    fn retry_backoff() {
        let cases: &[(u32, Option<Millis>, f64, Millis)] = &[
            (1, None, 0.0, 5_000),
            (2, None, 0.0, 10_000),
            (3, None, 0.0, 20_000),
            (1, None, 1.0, 6_000),
            (1, Some(30_000), 0.0, 30_000),
            (20, None, 0.0, 900_000),
            (20, None, 1.0, 1_080_000),
        ];
        for (attempt, after, jitter, want) in cases {
            assert_eq!(
                retry_delay_ms(*attempt, *after, *jitter),
                *want,
                "{attempt}"
            );
        }
    }
}
