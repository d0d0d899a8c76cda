//! Pure decisions: is this call missed, may this caller be texted and when, what does an inbound text mean,
//! how long to wait before retrying a send. No I/O; the current time is an argument. Depends on model.

use crate::clock::Millis;
use crate::hours::Window;
use crate::model::{CallEnd, CallOutcome, MissReason, PhoneNumber, QuietPolicy, SuppressReason};

/// Decides whether the caller's `From` is a number we may text. Withheld, anonymous, SIP and client
/// identities, short codes, the business's own numbers and its staff (`forward_to`) numbers are not.
pub fn textable_caller(
    from: &str,
    own_numbers: &[PhoneNumber],
    staff_numbers: &[PhoneNumber],
) -> Result<PhoneNumber, SuppressReason> {
    let from = from.trim();
    let number = PhoneNumber::parse(from).map_err(|_| SuppressReason::NoCallerId)?;
    if own_numbers.contains(&number) {
        return Err(SuppressReason::OwnNumber);
    }
    if staff_numbers.contains(&number) {
        return Err(SuppressReason::StaffNumber);
    }
    Ok(number)
}

/// What the end of the forwarded leg means: how it ended and, when it was answered, for how long. An answer
/// shorter than `short_call_secs` is a hang-up or a voicemail.
pub fn dial_outcome(end: CallEnd, talk_secs: Option<u64>, short_call_secs: u64) -> CallOutcome {
    match end {
        CallEnd::NoAnswer => CallOutcome::Missed(MissReason::NoAnswer),
        CallEnd::Busy => CallOutcome::Missed(MissReason::Busy),
        CallEnd::Failed => CallOutcome::Missed(MissReason::Failed),
        CallEnd::Canceled => CallOutcome::Missed(MissReason::Canceled),
        CallEnd::Completed => match talk_secs {
            Some(d) if d >= short_call_secs => CallOutcome::Answered,
            _ => CallOutcome::Missed(MissReason::ShortCall),
        },
        CallEnd::Ongoing => CallOutcome::Undecided,
    }
}

/// The report a call's outcome was decided on, as far as timing the caller goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerLeg {
    /// The voice webhook of a business with nobody to ring: the call has only begun.
    Started,
    /// The `<Dial action>`: it reports the forwarded leg (`DialCallDuration`), not the caller's.
    DialAction,
    /// The call status callback: `CallDuration` is the caller's own leg.
    Status {
        /// `CallDuration`, when sent.
        call_duration_secs: Option<u64>,
    },
}

/// How long the caller was on the line, to tell an instant hang-up (a robocall) from a caller who waited.
/// Measured on the caller's own leg: the forwarded leg's talk time is 0 or absent whenever nobody
/// answered, which would make every missed caller look like an instant hang-up. For a dial action that is
/// the time from the call's start (our voice webhook) to the dial action; `None` when unknown.
pub fn caller_time_ms(leg: CallerLeg, started_at: Millis, now: Millis) -> Option<Millis> {
    match leg {
        CallerLeg::Started => None,
        CallerLeg::DialAction => Some((now - started_at).max(0)),
        CallerLeg::Status {
            call_duration_secs: Some(secs),
        } => i64::try_from(secs).ok().map(|s| s.saturating_mul(1000)),
        CallerLeg::Status {
            call_duration_secs: None,
        } => Some((now - started_at).max(0)),
    }
}

/// What a system's final report of a call means when it rang the phones itself (a PBX, Telnyx Call
/// Control): it says whether someone answered, and maybe for how long. An answer shorter than
/// `short_call_secs` is a hang-up or a voicemail; an answer of unknown length is taken as an answer.
pub fn ended_outcome(end: CallEnd, talk_secs: Option<u64>, short_call_secs: u64) -> CallOutcome {
    match (end, talk_secs) {
        (CallEnd::Completed, None) => CallOutcome::Answered,
        _ => dial_outcome(end, talk_secs, short_call_secs),
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

/// What the call's own final status means. It is the backstop for a dial action that never came (the
/// caller hung up while it rang) and the only signal for numbers forwarded elsewhere.
pub fn status_outcome(end: CallEnd, duration_secs: Option<u64>, f: StatusFacts) -> CallOutcome {
    match end {
        CallEnd::NoAnswer => CallOutcome::Missed(MissReason::NoAnswer),
        CallEnd::Busy => CallOutcome::Missed(MissReason::Busy),
        CallEnd::Failed => CallOutcome::Missed(MissReason::Failed),
        CallEnd::Canceled => CallOutcome::Missed(MissReason::Canceled),
        CallEnd::Completed if f.dial_reported => CallOutcome::Undecided,
        CallEnd::Completed if f.dialed_by_us => {
            // Our <Dial> never reported back. A call that ended within the ring time ended while it rang;
            // a longer one was most likely answered (a voicemail we record always comes after a dial report).
            match duration_secs {
                Some(d) if d > f.ring_timeout_secs + RING_BUFFER_SECS => CallOutcome::Answered,
                _ => CallOutcome::Missed(MissReason::HungUpWhileRinging),
            }
        }
        CallEnd::Completed => match duration_secs {
            Some(d) if d >= f.short_call_secs => CallOutcome::Answered,
            _ => CallOutcome::Missed(MissReason::ShortCall),
        },
        CallEnd::Ongoing => CallOutcome::Undecided,
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
    /// Staff blocked the contact.
    pub blocked: bool,
    /// The number was never seen before this call.
    pub new_number: bool,
    /// The number is known to be a landline or pager.
    pub landline: bool,
    /// Automatic texts the contact got in the last 24 hours.
    pub automatic_today: u32,
}

/// What the text-back decision needs to know about the call itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallFacts {
    /// The carrier could not verify the caller's number (SHAKEN/STIR).
    pub caller_id_failed: bool,
    /// How long the call lasted, when known.
    pub duration_ms: Option<Millis>,
}

/// A business's rules for text-backs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBackRules<'a> {
    /// Numbers and prefixes never texted.
    pub deny: &'a [String],
    /// Countries that may be texted (`*` for any).
    pub allowed_countries: &'a [String],
    /// Skip callers whose caller ID failed verification.
    pub skip_unverified_callers: bool,
    /// Skip hang-ups under 2 s from new numbers.
    pub skip_instant_hangups: bool,
    /// Wait before texting.
    pub delay_ms: Millis,
    /// One text-back per caller per this.
    pub repeat_window_ms: Millis,
    /// Quiet hours.
    pub quiet: Window,
    /// What the first text-back does in quiet hours.
    pub quiet_policy: QuietPolicy,
    /// The latest a deferred text may leave, after the call.
    pub max_deferral_ms: Millis,
    /// Automatic texts per contact per 24 hours.
    pub daily_cap: u32,
}

/// Shorter hang-ups from unknown numbers look like robocalls.
const INSTANT_HANGUP_MS: Millis = 2_000;

/// Whether the number may be texted at all under the business's deny list and countries.
pub fn screen_number(
    number: &PhoneNumber,
    rules: &TextBackRules<'_>,
) -> Result<(), SuppressReason> {
    if rules
        .deny
        .iter()
        .any(|d| number.as_str().starts_with(d.trim()))
    {
        return Err(SuppressReason::Denied);
    }
    let any = rules.allowed_countries.iter().any(|c| c == "*");
    let country = crate::country::of(number.as_str());
    if !any && !country.is_some_and(|c| rules.allowed_countries.iter().any(|a| a == c)) {
        return Err(SuppressReason::Country);
    }
    Ok(())
}

/// Whether to schedule a text-back for a missed call at `now`, and for when.
pub fn schedule_text_back(
    number: &PhoneNumber,
    facts: ContactFacts,
    call: CallFacts,
    rules: &TextBackRules<'_>,
    now: Millis,
) -> Result<Millis, SuppressReason> {
    screen_number(number, rules)?;
    if facts.blocked {
        return Err(SuppressReason::Blocked);
    }
    if facts.opted_out {
        return Err(SuppressReason::OptedOut);
    }
    if rules.skip_unverified_callers && call.caller_id_failed {
        return Err(SuppressReason::Unverified);
    }
    if rules.skip_instant_hangups
        && facts.new_number
        && call.duration_ms.is_some_and(|d| d < INSTANT_HANGUP_MS)
    {
        return Err(SuppressReason::InstantHangup);
    }
    if facts.landline {
        return Err(SuppressReason::Landline);
    }
    if facts.text_back_pending {
        return Err(SuppressReason::AlreadyScheduled);
    }
    if within(facts.last_text_back_at, now, rules.repeat_window_ms) {
        return Err(SuppressReason::RepeatWindow);
    }
    if facts.automatic_today >= rules.daily_cap {
        return Err(SuppressReason::DailyCap);
    }
    let due = now + rules.delay_ms;
    if !rules.quiet.contains(due) {
        return Ok(due);
    }
    match rules.quiet_policy {
        QuietPolicy::Send => Ok(due),
        QuietPolicy::Skip => Err(SuppressReason::QuietHours),
        QuietPolicy::Defer => {
            let later = rules.quiet.next_outside(due);
            if later - now > rules.max_deferral_ms {
                Err(SuppressReason::TooLate)
            } else {
                Ok(later)
            }
        }
    }
}

/// The decision taken again when a scheduled text-back is about to leave: an opt-out, a block or another
/// text-back that arrived during the delay calls it off.
pub fn confirm_text_back(
    facts: ContactFacts,
    now: Millis,
    repeat_window_ms: Millis,
) -> Result<(), SuppressReason> {
    if facts.blocked {
        return Err(SuppressReason::Blocked);
    }
    if facts.opted_out {
        return Err(SuppressReason::OptedOut);
    }
    if facts.landline {
        return Err(SuppressReason::Landline);
    }
    if within(facts.last_text_back_at, now, repeat_window_ms) {
        return Err(SuppressReason::RepeatWindow);
    }
    Ok(())
}

fn within(at: Option<Millis>, now: Millis, window_ms: Millis) -> bool {
    at.is_some_and(|t| now - t < window_ms)
}

/// Which script a text-back uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptChoice {
    /// `script`.
    Normal,
    /// `after_hours_script`.
    AfterHours,
    /// `returning_script`.
    Returning,
}

impl ScriptChoice {
    /// The business setting that holds the script.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Normal => "script",
            Self::AfterHours => "after_hours_script",
            Self::Returning => "returning_script",
        }
    }

    /// Why it was chosen, given what [`choose_script`] was told.
    pub fn reason(self, open_at_call: bool, quiet_at_send: bool) -> &'static str {
        match self {
            Self::Returning => "they texted or booked before",
            Self::AfterHours if !open_at_call => "the business was closed when they called",
            Self::AfterHours if quiet_at_send => "it went out in quiet hours",
            Self::AfterHours | Self::Normal => "the business was open when they called",
        }
    }

    /// The setting and the reason, as the conversation, the simulator and the log show them.
    pub fn describe(self, open_at_call: bool, quiet_at_send: bool) -> String {
        format!(
            "{}: {}",
            self.setting(),
            self.reason(open_at_call, quiet_at_send)
        )
    }
}

/// Picks the script: returning contacts get their own (when configured), calls outside opening hours (or sent
/// in quiet hours) get the after-hours script.
pub fn choose_script(
    open_at_call: bool,
    quiet_at_send: bool,
    returning: bool,
    has_returning_script: bool,
) -> ScriptChoice {
    if returning && has_returning_script {
        ScriptChoice::Returning
    } else if !open_at_call || quiet_at_send {
        ScriptChoice::AfterHours
    } else {
        ScriptChoice::Normal
    }
}

/// Where a conversation stands, as far as automatic texts care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConversationFacts {
    /// opted out.
    pub opted_out: bool,
    /// blocked by staff.
    pub blocked: bool,
    /// The contact texted since the sequence began.
    pub replied: bool,
    /// Booked.
    pub booked: bool,
    /// Marked lost.
    pub lost: bool,
    /// Reached by phone since the sequence began.
    pub reached: bool,
    /// When staff last replied by hand.
    pub last_staff_reply_at: Option<Millis>,
    /// Automatic texts in the last 24 hours.
    pub automatic_today: u32,
}

/// A business's rules for automatic texts after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutomationRules {
    /// Quiet after a staff reply.
    pub human_hold_ms: Millis,
    /// Quiet hours.
    pub quiet: Window,
    /// Latest a deferred text may leave after it was due.
    pub max_deferral_ms: Millis,
    /// Automatic texts per contact per 24 hours.
    pub daily_cap: u32,
}

/// What to do with a follow-up that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it now.
    Send,
    /// Not yet: try again at this time.
    Wait(Millis),
    /// Never: this is why.
    Drop(SuppressReason),
}

/// Decides a due follow-up: stopped for good by a reply, a booking, an opt-out or a call; held while staff
/// are in the conversation and during quiet hours; dropped when that would make it too late.
pub fn follow_up(
    facts: ConversationFacts,
    rules: &AutomationRules,
    due_at: Millis,
    now: Millis,
) -> Verdict {
    let stopped = [
        (facts.opted_out, SuppressReason::OptedOut),
        (facts.blocked, SuppressReason::Blocked),
        (facts.booked, SuppressReason::Booked),
        (facts.lost, SuppressReason::Lost),
        (facts.replied, SuppressReason::Replied),
        (facts.reached, SuppressReason::Answered),
    ];
    if let Some((_, reason)) = stopped.iter().find(|(hit, _)| *hit) {
        return Verdict::Drop(*reason);
    }
    let mut at = now;
    if let Some(staff) = facts.last_staff_reply_at {
        at = at.max(staff + rules.human_hold_ms);
    }
    at = rules.quiet.next_outside(at);
    if at - due_at > rules.max_deferral_ms {
        return Verdict::Drop(SuppressReason::TooLate);
    }
    if at > now {
        return Verdict::Wait(at);
    }
    if facts.automatic_today >= rules.daily_cap {
        return Verdict::Drop(SuppressReason::DailyCap);
    }
    Verdict::Send
}

/// Whether a keyword rule may answer automatically now (an immediate answer, so quiet hours do not apply).
pub fn auto_reply(
    facts: ConversationFacts,
    rules: &AutomationRules,
    now: Millis,
) -> Result<(), SuppressReason> {
    if facts.opted_out {
        return Err(SuppressReason::OptedOut);
    }
    if facts.blocked {
        return Err(SuppressReason::Blocked);
    }
    if facts
        .last_staff_reply_at
        .is_some_and(|t| now - t < rules.human_hold_ms)
    {
        return Err(SuppressReason::HumanActive);
    }
    if facts.automatic_today >= rules.daily_cap {
        return Err(SuppressReason::DailyCap);
    }
    Ok(())
}

/// When an alert to a person goes out: at once when urgent, else after their own quiet hours.
pub fn alert_due(urgent: bool, person_quiet: &Window, now: Millis) -> Millis {
    if urgent {
        now
    } else {
        person_quiet.next_outside(now)
    }
}

/// What an inbound text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop texting me, as a carrier keyword (the provider confirms it itself).
    OptOut,
    /// Stop texting me, in plain language (FCC: any reasonable means); we confirm it.
    PlainOptOut,
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
        _ if plain_opt_out(&normal) => Keyword::PlainOptOut,
        _ => Keyword::None,
    }
}

/// Phrases a reasonable person uses to say "stop texting me". Matched as whole words.
const REVOCATIONS: &[&str] = &[
    "STOP TEXTING",
    "STOP MESSAGING",
    "STOP SENDING",
    "STOP CONTACTING",
    "STOP CALLING",
    "DONT TEXT",
    "DO NOT TEXT",
    "DONT MESSAGE",
    "DO NOT MESSAGE",
    "DONT CONTACT",
    "DO NOT CONTACT",
    "REMOVE ME",
    "TAKE ME OFF",
    "UNSUBSCRIBE ME",
    "OPT ME OUT",
    "NO MORE TEXTS",
    "NO MORE MESSAGES",
    "LEAVE ME ALONE",
    "WRONG NUMBER STOP",
];

/// Whole messages that are a bare "stop" said politely.
const POLITE_STOPS: &[&str] = &[
    "PLEASE STOP",
    "STOP PLEASE",
    "STOP IT",
    "STOP NOW",
    "STOP THANKS",
    "STOP THANK YOU",
];

fn plain_opt_out(normal: &str) -> bool {
    POLITE_STOPS.contains(&normal) || REVOCATIONS.iter().any(|p| contains_phrase(normal, p))
}

/// Whether `phrase` occurs in `text` as whole words (both already normalized).
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase} "))
}

/// The first keyword rule whose words or phrases occur in the text, as whole words, ignoring case and
/// punctuation.
pub fn match_rule<'a, I>(body: &str, rules: I) -> Option<usize>
where
    I: IntoIterator<Item = &'a [String]>,
{
    let normal = normalize(body);
    rules.into_iter().position(|words| {
        words
            .iter()
            .any(|w| !normalize(w).is_empty() && contains_phrase(&normal, &normalize(w)))
    })
}

/// Upper-cases, drops apostrophes, turns other punctuation into spaces and collapses whitespace.
fn normalize(body: &str) -> String {
    let cleaned: String = body
        .chars()
        .filter(|c| !matches!(c, '\'' | '’'))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// How long to wait before attempt `attempt + 1` after a transient failure: exponential from `base_ms` (the
/// provider's `retry_backoff`, 5 s by default), capped at 15 min, with up to 20 % jitter (`jitter` in 0..1),
/// and never sooner than the provider's Retry-After.
pub fn retry_delay_ms(
    attempt: u32,
    base_ms: Millis,
    retry_after_ms: Option<Millis>,
    jitter: f64,
) -> Millis {
    let base = base_ms.max(1);
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
    fn the_callers_time_is_measured_on_the_callers_leg() {
        let t0: Millis = 1_000_000;
        let cases: &[(CallerLeg, Millis, Option<Millis>)] = &[
            // Rang 20 s and nobody answered: DialCallDuration is 0 or absent, the caller waited 20 s.
            (CallerLeg::DialAction, t0 + 20_000, Some(20_000)),
            (CallerLeg::DialAction, t0 + 800, Some(800)),
            (
                CallerLeg::Status {
                    call_duration_secs: Some(1),
                },
                t0 + 30_000,
                Some(1_000),
            ),
            (
                CallerLeg::Status {
                    call_duration_secs: Some(25),
                },
                t0 + 30_000,
                Some(25_000),
            ),
            (
                CallerLeg::Status {
                    call_duration_secs: None,
                },
                t0 + 3_000,
                Some(3_000),
            ),
            (CallerLeg::Started, t0, None),
        ];
        for (leg, now, want) in cases {
            assert_eq!(caller_time_ms(*leg, t0, *now), *want, "{leg:?}");
        }
        // Only a caller who really hung up at once counts as an instant hang-up.
        let rules = TextBackRules {
            skip_instant_hangups: true,
            ..rules(None, QuietPolicy::Send)
        };
        let new = ContactFacts {
            new_number: true,
            ..ContactFacts::default()
        };
        let decide = |ms| {
            schedule_text_back(
                &n("+14805550111"),
                new,
                CallFacts {
                    caller_id_failed: false,
                    duration_ms: ms,
                },
                &rules,
                t0,
            )
        };
        assert!(decide(caller_time_ms(CallerLeg::DialAction, t0 - 20_000, t0)).is_ok());
        assert_eq!(
            decide(caller_time_ms(
                CallerLeg::Status {
                    call_duration_secs: Some(1)
                },
                t0 - 1_000,
                t0
            )),
            Err(SuppressReason::InstantHangup)
        );
        assert!(decide(caller_time_ms(CallerLeg::Started, t0, t0)).is_ok());
    }

    #[test]
    fn dial_reports() {
        use CallOutcome::*;
        use MissReason::*;
        let cases: &[(CallEnd, Option<u64>, CallOutcome)] = &[
            (CallEnd::NoAnswer, None, Missed(NoAnswer)),
            (CallEnd::Busy, None, Missed(Busy)),
            (CallEnd::Failed, None, Missed(Failed)),
            (CallEnd::Canceled, None, Missed(Canceled)),
            (CallEnd::Completed, Some(4), Missed(ShortCall)),
            (CallEnd::Completed, Some(5), Answered),
            (CallEnd::Completed, Some(300), Answered),
            (CallEnd::Completed, None, Missed(ShortCall)),
            (CallEnd::Ongoing, None, Undecided),
        ];
        for (end, dur, want) in cases {
            assert_eq!(dial_outcome(*end, *dur, 5), *want, "{end:?} {dur:?}");
        }
    }

    #[test]
    fn final_reports_from_systems_that_ring_the_phones_themselves() {
        use CallOutcome::*;
        use MissReason::*;
        let cases: &[(CallEnd, Option<u64>, CallOutcome)] = &[
            (CallEnd::Completed, None, Answered),
            (CallEnd::Completed, Some(30), Answered),
            (CallEnd::Completed, Some(2), Missed(ShortCall)),
            (CallEnd::NoAnswer, None, Missed(NoAnswer)),
            (CallEnd::Busy, None, Missed(Busy)),
            (CallEnd::Canceled, Some(0), Missed(Canceled)),
            (CallEnd::Failed, None, Missed(Failed)),
            (CallEnd::Ongoing, None, Undecided),
        ];
        for (end, talk, want) in cases {
            assert_eq!(ended_outcome(*end, *talk, 5), *want, "{end:?} {talk:?}");
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
        use CallEnd::{Completed, Ongoing};
        let cases: &[(CallEnd, Option<u64>, StatusFacts, CallOutcome)] = &[
            (CallEnd::NoAnswer, None, elsewhere, Missed(NoAnswer)),
            (CallEnd::Busy, None, elsewhere, Missed(Busy)),
            (CallEnd::Failed, None, ours, Missed(Failed)),
            (CallEnd::Canceled, None, ours, Missed(Canceled)),
            (Completed, Some(8), ours, Missed(HungUpWhileRinging)),
            (Completed, Some(25), ours, Missed(HungUpWhileRinging)),
            (Completed, Some(26), ours, Answered),
            (Completed, Some(8), reported, Undecided),
            (Completed, Some(3), elsewhere, Missed(ShortCall)),
            (Completed, Some(90), elsewhere, Answered),
            (Ongoing, None, ours, Undecided),
        ];
        for (end, dur, facts, want) in cases {
            assert_eq!(
                status_outcome(*end, *dur, *facts),
                *want,
                "{end:?} {dur:?} {facts:?}"
            );
        }
    }

    const DAY: Millis = 24 * 3_600_000;

    fn rules(quiet: Option<&str>, policy: QuietPolicy) -> TextBackRules<'static> {
        static US: [String; 0] = [];
        let _ = &US;
        TextBackRules {
            deny: Box::leak(Box::new(vec![
                "+1900".to_string(),
                "+14805550999".to_string(),
            ])),
            allowed_countries: Box::leak(Box::new(vec!["US".to_string()])),
            skip_unverified_callers: true,
            skip_instant_hangups: true,
            delay_ms: 20_000,
            repeat_window_ms: DAY,
            quiet: Window {
                tz: crate::zone::named("America/Phoenix"),
                span: quiet.map(|q| crate::hours::parse_span(q).unwrap()),
            },
            quiet_policy: policy,
            max_deferral_ms: 12 * 3_600_000,
            daily_cap: 3,
        }
    }

    /// 2026-12-01 10:00 in Phoenix (UTC-7, no DST).
    const MORNING: Millis = 1_796_144_400_000;
    /// 2026-12-01 22:00 in Phoenix.
    const NIGHT: Millis = MORNING + 12 * 3_600_000;

    #[test]
    fn scheduling_text_backs() {
        let caller = n("+14805550111");
        let fresh = ContactFacts::default();
        let plain = CallFacts::default();
        let day = rules(Some("21:00-08:00"), QuietPolicy::Send);
        type Case<'a> = (
            &'a str,
            PhoneNumber,
            ContactFacts,
            CallFacts,
            TextBackRules<'static>,
            Millis,
            Result<Millis, SuppressReason>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "fresh caller",
                caller.clone(),
                fresh,
                plain,
                day,
                MORNING,
                Ok(MORNING + 20_000),
            ),
            (
                "premium prefix",
                n("+19005550111"),
                fresh,
                plain,
                day,
                MORNING,
                Err(SuppressReason::Denied),
            ),
            (
                "denied number",
                n("+14805550999"),
                fresh,
                plain,
                day,
                MORNING,
                Err(SuppressReason::Denied),
            ),
            (
                "UK caller",
                n("+442071838750"),
                fresh,
                plain,
                day,
                MORNING,
                Err(SuppressReason::Country),
            ),
            (
                "Canadian caller",
                n("+14165550100"),
                fresh,
                plain,
                day,
                MORNING,
                Err(SuppressReason::Country),
            ),
            (
                "blocked",
                caller.clone(),
                ContactFacts {
                    blocked: true,
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::Blocked),
            ),
            (
                "opted out",
                caller.clone(),
                ContactFacts {
                    opted_out: true,
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::OptedOut),
            ),
            (
                "failed caller ID",
                caller.clone(),
                fresh,
                CallFacts {
                    caller_id_failed: true,
                    ..plain
                },
                day,
                MORNING,
                Err(SuppressReason::Unverified),
            ),
            (
                "verified caller ID",
                caller.clone(),
                fresh,
                CallFacts {
                    caller_id_failed: false,
                    ..plain
                },
                day,
                MORNING,
                Ok(MORNING + 20_000),
            ),
            (
                "instant hang-up, new number",
                caller.clone(),
                ContactFacts {
                    new_number: true,
                    ..fresh
                },
                CallFacts {
                    duration_ms: Some(1_500),
                    ..plain
                },
                day,
                MORNING,
                Err(SuppressReason::InstantHangup),
            ),
            (
                "instant hang-up, known number",
                caller.clone(),
                fresh,
                CallFacts {
                    duration_ms: Some(1_500),
                    ..plain
                },
                day,
                MORNING,
                Ok(MORNING + 20_000),
            ),
            (
                "landline",
                caller.clone(),
                ContactFacts {
                    landline: true,
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::Landline),
            ),
            (
                "already scheduled",
                caller.clone(),
                ContactFacts {
                    text_back_pending: true,
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::AlreadyScheduled),
            ),
            (
                "texted an hour ago",
                caller.clone(),
                ContactFacts {
                    last_text_back_at: Some(MORNING - 3_600_000),
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::RepeatWindow),
            ),
            (
                "texted a day ago",
                caller.clone(),
                ContactFacts {
                    last_text_back_at: Some(MORNING - DAY),
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Ok(MORNING + 20_000),
            ),
            (
                "daily cap",
                caller.clone(),
                ContactFacts {
                    automatic_today: 3,
                    ..fresh
                },
                plain,
                day,
                MORNING,
                Err(SuppressReason::DailyCap),
            ),
            (
                "quiet hours, send",
                caller.clone(),
                fresh,
                plain,
                day,
                NIGHT,
                Ok(NIGHT + 20_000),
            ),
            (
                "quiet hours, defer to 08:00",
                caller.clone(),
                fresh,
                plain,
                rules(Some("21:00-08:00"), QuietPolicy::Defer),
                NIGHT,
                Ok(NIGHT + 10 * 3_600_000),
            ),
            (
                "quiet hours, defer too long",
                caller.clone(),
                fresh,
                plain,
                rules(Some("21:00-12:00"), QuietPolicy::Defer),
                NIGHT,
                Err(SuppressReason::TooLate),
            ),
            (
                "quiet hours, skip",
                caller.clone(),
                fresh,
                plain,
                rules(Some("21:00-08:00"), QuietPolicy::Skip),
                NIGHT,
                Err(SuppressReason::QuietHours),
            ),
            (
                "no quiet hours",
                caller.clone(),
                fresh,
                plain,
                rules(None, QuietPolicy::Skip),
                NIGHT,
                Ok(NIGHT + 20_000),
            ),
        ];
        for (what, number, facts, call, rules, now, want) in cases {
            assert_eq!(
                schedule_text_back(&number, facts, call, &rules, now),
                want,
                "{what}"
            );
        }
        let any = TextBackRules {
            allowed_countries: Box::leak(Box::new(vec!["*".to_string()])),
            ..day
        };
        assert_eq!(screen_number(&n("+442071838750"), &any), Ok(()));
    }

    #[test]
    fn confirming_text_backs_at_send_time() {
        let fresh = ContactFacts::default();
        let cases: &[(ContactFacts, Result<(), SuppressReason>)] = &[
            (fresh, Ok(())),
            (
                ContactFacts {
                    opted_out: true,
                    ..fresh
                },
                Err(SuppressReason::OptedOut),
            ),
            (
                ContactFacts {
                    blocked: true,
                    ..fresh
                },
                Err(SuppressReason::Blocked),
            ),
            (
                ContactFacts {
                    landline: true,
                    ..fresh
                },
                Err(SuppressReason::Landline),
            ),
            (
                ContactFacts {
                    last_text_back_at: Some(MORNING - 5),
                    ..fresh
                },
                Err(SuppressReason::RepeatWindow),
            ),
            // A text-back pending is this one: it does not stop itself.
            (
                ContactFacts {
                    text_back_pending: true,
                    ..fresh
                },
                Ok(()),
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(confirm_text_back(*facts, MORNING, DAY), *want, "{facts:?}");
        }
    }

    #[test]
    fn choosing_scripts() {
        use ScriptChoice::*;
        let cases = [
            ((true, false, false, false), Normal),
            ((false, false, false, false), AfterHours),
            ((true, true, false, false), AfterHours),
            ((true, false, true, true), Returning),
            ((false, false, true, true), Returning),
            ((true, false, true, false), Normal),
        ];
        for ((open, quiet, returning, has), want) in cases {
            assert_eq!(
                choose_script(open, quiet, returning, has),
                want,
                "{open} {quiet} {returning} {has}"
            );
        }
    }

    #[test]
    fn scripts_say_why_they_were_chosen() {
        use ScriptChoice::*;
        let cases = [
            (
                Normal,
                true,
                false,
                "script: the business was open when they called",
            ),
            (
                AfterHours,
                false,
                false,
                "after_hours_script: the business was closed when they called",
            ),
            (
                AfterHours,
                true,
                true,
                "after_hours_script: it went out in quiet hours",
            ),
            (
                Returning,
                false,
                false,
                "returning_script: they texted or booked before",
            ),
        ];
        for (choice, open, quiet, want) in cases {
            assert_eq!(choice.describe(open, quiet), want);
        }
    }

    #[test]
    fn follow_up_verdicts() {
        let r = AutomationRules {
            human_hold_ms: 30 * 60_000,
            quiet: Window {
                tz: crate::zone::named("America/Phoenix"),
                span: Some(crate::hours::parse_span("21:00-08:00").unwrap()),
            },
            max_deferral_ms: 12 * 3_600_000,
            daily_cap: 3,
        };
        let f = ConversationFacts::default();
        let cases: &[(&str, ConversationFacts, Millis, Millis, Verdict)] = &[
            ("due, quiet afternoon", f, MORNING, MORNING, Verdict::Send),
            (
                "replied",
                ConversationFacts { replied: true, ..f },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::Replied),
            ),
            (
                "booked",
                ConversationFacts { booked: true, ..f },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::Booked),
            ),
            (
                "opted out",
                ConversationFacts {
                    opted_out: true,
                    ..f
                },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::OptedOut),
            ),
            (
                "reached by phone",
                ConversationFacts { reached: true, ..f },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::Answered),
            ),
            (
                "lost",
                ConversationFacts { lost: true, ..f },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::Lost),
            ),
            (
                "staff replied 10 min ago",
                ConversationFacts {
                    last_staff_reply_at: Some(MORNING - 600_000),
                    ..f
                },
                MORNING,
                MORNING,
                Verdict::Wait(MORNING + 20 * 60_000),
            ),
            (
                "staff replied an hour ago",
                ConversationFacts {
                    last_staff_reply_at: Some(MORNING - 3_600_000),
                    ..f
                },
                MORNING,
                MORNING,
                Verdict::Send,
            ),
            (
                "due at night",
                f,
                NIGHT,
                NIGHT,
                Verdict::Wait(NIGHT + 10 * 3_600_000),
            ),
            (
                "deferred too long",
                f,
                NIGHT - 3 * 3_600_000,
                NIGHT,
                Verdict::Drop(SuppressReason::TooLate),
            ),
            (
                "daily cap",
                ConversationFacts {
                    automatic_today: 3,
                    ..f
                },
                MORNING,
                MORNING,
                Verdict::Drop(SuppressReason::DailyCap),
            ),
        ];
        for (what, facts, due, now, want) in cases {
            assert_eq!(follow_up(*facts, &r, *due, *now), *want, "{what}");
        }
        // Keyword auto-replies are immediate answers: quiet hours do not hold them, staff do.
        assert_eq!(auto_reply(f, &r, NIGHT), Ok(()));
        assert_eq!(
            auto_reply(
                ConversationFacts {
                    last_staff_reply_at: Some(NIGHT - 60_000),
                    ..f
                },
                &r,
                NIGHT
            ),
            Err(SuppressReason::HumanActive)
        );
        assert_eq!(
            auto_reply(
                ConversationFacts {
                    automatic_today: 3,
                    ..f
                },
                &r,
                NIGHT
            ),
            Err(SuppressReason::DailyCap)
        );
        assert_eq!(alert_due(true, &r.quiet, NIGHT), NIGHT);
        assert_eq!(alert_due(false, &r.quiet, NIGHT), NIGHT + 10 * 3_600_000);
    }

    #[test]
    fn keyword_rules_match_whole_words() {
        let emergency = vec![
            "EMERGENCY".to_string(),
            "URGENT".to_string(),
            "911".to_string(),
        ];
        let book = vec!["BOOK".to_string(), "book online".to_string()];
        let rules = [emergency.as_slice(), book.as_slice()];
        let cases: &[(&str, Option<usize>)] = &[
            ("EMERGENCY", Some(0)),
            ("emergency!!", Some(0)),
            ("this is an emergency, water everywhere", Some(0)),
            ("Urgent: no heat", Some(0)),
            ("911", Some(0)),
            ("call me at 9115550100", None),
            ("book", Some(1)),
            ("Can I BOOK online?", Some(1)),
            ("bookkeeping question", None),
            ("hello", None),
        ];
        for (body, want) in cases {
            assert_eq!(match_rule(body, rules.iter().copied()), *want, "{body}");
        }
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
            ("please stop texting me", Keyword::PlainOptOut),
            ("Remove me from your list", Keyword::PlainOptOut),
            ("don't text me", Keyword::PlainOptOut),
            ("Don’t text me again.", Keyword::PlainOptOut),
            ("do not message this number", Keyword::PlainOptOut),
            ("Please stop", Keyword::PlainOptOut),
            ("no more texts thanks", Keyword::PlainOptOut),
            ("take me off your list", Keyword::PlainOptOut),
            ("can you stop by at 3?", Keyword::None),
            ("the leak won't stop", Keyword::None),
            ("please remove the old heater", Keyword::None),
        ];
        for (body, want) in cases {
            assert_eq!(keyword(body), *want, "{body:?}");
        }
    }

    #[test]
    fn retry_backoff() {
        let cases: &[(u32, Millis, Option<Millis>, f64, Millis)] = &[
            (1, 5_000, None, 0.0, 5_000),
            (2, 5_000, None, 0.0, 10_000),
            (3, 5_000, None, 0.0, 20_000),
            (1, 5_000, None, 1.0, 6_000),
            (1, 5_000, Some(30_000), 0.0, 30_000),
            (20, 5_000, None, 0.0, 900_000),
            (20, 5_000, None, 1.0, 1_080_000),
            (1, 200, None, 0.0, 200),
            (2, 200, Some(1_000), 0.0, 1_000),
            (3, 200, None, 0.0, 800),
        ];
        for (attempt, base, after, jitter, want) in cases {
            assert_eq!(
                retry_delay_ms(*attempt, *base, *after, *jitter),
                *want,
                "{attempt} {base}"
            );
        }
    }
}
