//! Domain types shared by every module: phone numbers, call outcomes, message states and job kinds.
//! Depends on nothing internal.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in E.164 form (`+` and 7 to 15 digits, no leading zero). Parsed once at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not an E.164 phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Empty input.
    #[error("the number is empty")]
    Empty,
    /// No leading `+`.
    #[error(
        "{0:?} is not in E.164 form: it must start with + and the country code, e.g. +16025550100"
    )]
    NoPlus(String),
    /// Something other than digits after the `+`.
    #[error("{0:?} is not in E.164 form: only digits may follow the +")]
    NotDigits(String),
    /// Too few or too many digits.
    #[error("{0:?} is not in E.164 form: it must have 7 to 15 digits after the +")]
    Length(String),
}

impl PhoneNumber {
    /// Parses a strict E.164 number.
    pub fn parse(s: &str) -> Result<Self, PhoneError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(PhoneError::Empty);
        }
        let Some(digits) = s.strip_prefix('+') else {
            return Err(PhoneError::NoPlus(s.to_string()));
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotDigits(s.to_string()));
        }
        if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneError::Length(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// The number as written, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with its middle hidden, for logs: `+1602•••0100`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Hides the middle of a phone number or any other identifier for logs.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 8 {
        return "•••".to_string();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}•••{tail}")
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

/// Why a call counts as missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissReason {
    /// Nobody picked up before the ring timeout.
    NoAnswer,
    /// The forwarded line was busy.
    Busy,
    /// The forwarded call could not be placed.
    Failed,
    /// The call was cancelled before it was answered (often: the caller hung up while it rang).
    Canceled,
    /// Answered, but shorter than `short_call`: a hang-up, or a voicemail that picked up.
    ShortCall,
    /// The caller hung up before the forwarded leg finished ringing.
    HungUpWhileRinging,
    /// The business has no `forward_to` number, so every call is missed.
    NoForwardTo,
    /// An answering machine or voicemail picked up the forwarded call.
    Voicemail,
    /// The forwarded call was answered but nobody pressed 1 to take it (call screening).
    NotAccepted,
}

impl MissReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no-answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::ShortCall => "short-call",
            Self::HungUpWhileRinging => "hung-up-while-ringing",
            Self::NoForwardTo => "no-forward-to",
            Self::Voicemail => "voicemail",
            Self::NotAccepted => "not-accepted",
        }
    }
}

/// What a call-ending report means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Nobody from the business spoke with the caller.
    Missed(MissReason),
    /// Someone answered and talked.
    Answered,
    /// Not over yet, or the report says nothing final; change nothing.
    Undecided,
}

/// Why a text-back was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressReason {
    /// The caller's number is withheld, anonymous or not a phone number.
    NoCallerId,
    /// The caller is one of the business's own numbers.
    OwnNumber,
    /// The caller is one of the numbers calls are forwarded to (staff).
    StaffNumber,
    /// The contact opted out.
    OptedOut,
    /// The caller already got a text-back within `repeat_window`.
    RepeatWindow,
    /// A text-back to this caller is already waiting to go out.
    AlreadyScheduled,
    /// The call turned out to be answered before the text left.
    Answered,
    /// The number matches the business's deny list.
    Denied,
    /// The number's country is not in `allowed_countries`.
    Country,
    /// The contact is blocked.
    Blocked,
    /// The number is a landline or pager.
    Landline,
    /// The carrier marked the caller ID as failing verification.
    Unverified,
    /// A hang-up within 2 s from a number never seen before.
    InstantHangup,
    /// Quiet hours, and the policy is to skip.
    QuietHours,
    /// It would leave later than `max_deferral` after what caused it.
    TooLate,
    /// The contact already got `daily_cap` automatic texts in 24 hours.
    DailyCap,
    /// The business called the contact back.
    CalledBack,
    /// The contact replied.
    Replied,
    /// The contact booked.
    Booked,
    /// The contact was marked lost.
    Lost,
    /// Staff are in the conversation (`human_hold`).
    HumanActive,
}

impl SuppressReason {
    /// Every reason, for reading a stored name back.
    const ALL: [Self; 21] = [
        Self::NoCallerId,
        Self::OwnNumber,
        Self::StaffNumber,
        Self::OptedOut,
        Self::RepeatWindow,
        Self::AlreadyScheduled,
        Self::Answered,
        Self::Denied,
        Self::Country,
        Self::Blocked,
        Self::Landline,
        Self::Unverified,
        Self::InstantHangup,
        Self::QuietHours,
        Self::TooLate,
        Self::DailyCap,
        Self::CalledBack,
        Self::Replied,
        Self::Booked,
        Self::Lost,
        Self::HumanActive,
    ];

    /// The reason a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What it means, in a sentence for people (the simulator, the conversation).
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoCallerId => "the caller's number is withheld or not a phone number",
            Self::OwnNumber => "the call came from one of the business's own numbers",
            Self::StaffNumber => "the call came from a staff phone",
            Self::OptedOut => "this number opted out",
            Self::RepeatWindow => "this caller already got a text-back within the repeat window",
            Self::AlreadyScheduled => "a text-back to this caller was already waiting",
            Self::Answered => "the call was answered after all",
            Self::Denied => "the number is on the business's deny list",
            Self::Country => "the number's country is not one the business texts",
            Self::Blocked => "staff blocked this number",
            Self::Landline => "the number is a landline (staff were asked to call back)",
            Self::Unverified => "the carrier could not verify the caller ID",
            Self::InstantHangup => "a new number hung up within 2 seconds (likely a robocall)",
            Self::QuietHours => "quiet hours, and the business skips texts then",
            Self::TooLate => "it would have gone out too long after the call",
            Self::DailyCap => "this contact already got the day's automatic texts",
            Self::CalledBack => "the business called them back",
            Self::Replied => "they replied",
            Self::Booked => "they booked",
            Self::Lost => "the conversation was marked lost",
            Self::HumanActive => "staff are in the conversation",
        }
    }

    /// The stored name, shown in `textback status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCallerId => "no-caller-id",
            Self::OwnNumber => "own-number",
            Self::StaffNumber => "staff-number",
            Self::OptedOut => "opted-out",
            Self::RepeatWindow => "repeat-window",
            Self::AlreadyScheduled => "already-scheduled",
            Self::Answered => "answered",
            Self::Denied => "denied",
            Self::Country => "country-not-allowed",
            Self::Blocked => "blocked",
            Self::Landline => "landline",
            Self::Unverified => "unverified-caller-id",
            Self::InstantHangup => "instant-hang-up",
            Self::QuietHours => "quiet-hours",
            Self::TooLate => "too-late",
            Self::DailyCap => "daily-cap",
            Self::CalledBack => "called-back",
            Self::Replied => "replied",
            Self::Booked => "booked",
            Self::Lost => "lost",
            Self::HumanActive => "staff-in-conversation",
        }
    }
}

#[cfg(test)]
mod suppress_tests {
    use super::SuppressReason;

    #[test]
    fn every_reason_reads_back_and_says_what_it_means() {
        for r in SuppressReason::ALL {
            assert_eq!(SuppressReason::parse(r.as_str()), Some(r));
            assert!(!r.describe().is_empty());
        }
        assert_eq!(SuppressReason::parse("nonsense"), None);
    }
}

/// A message's delivery state. Provider states only move forward; see [`status_rank`].
pub mod status {
    /// The message row exists and the provider is being called (or a crash left it so).
    pub const SENDING: &str = "sending";
    /// A send whose outcome was unclear (a timeout, a crash): the provider is asked whether it has the text
    /// once it has had time to show it, and only then is it sent again, if ever.
    pub const CHECKING: &str = "checking";
    /// The last attempt failed for a reason worth retrying; the job will try again.
    pub const RETRYING: &str = "retrying";
    /// The provider could not say whether an interrupted send went out; an operator must look.
    pub const UNKNOWN: &str = "unknown";
    /// The provider refused the message, or every retry failed.
    pub const FAILED: &str = "failed";
    /// The send was called off before it left (opt-out, answered call).
    pub const CANCELLED: &str = "cancelled";
    /// An inbound message.
    pub const RECEIVED: &str = "received";
}

/// Orders delivery states so that late or repeated receipts never move a message backwards.
pub fn status_rank(s: &str) -> u8 {
    match s {
        "sending" | "retrying" | "unknown" | "checking" => 0,
        "accepted" | "scheduled" | "queued" => 1,
        "sent" => 3,
        "delivered" | "undelivered" | "failed" | "canceled" | "cancelled" | "received" => 4,
        "read" => 5,
        _ => 1,
    }
}

/// What kind of outgoing message a row is; some kinds may be sent to opted-out contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The text sent after a missed call.
    TextBack,
    /// The answer to HELP or INFO; carriers require it even after an opt-out.
    Help,
    /// A reply written by staff.
    Reply,
    /// A follow-up to a text-back nobody answered.
    FollowUp,
    /// A keyword rule's automatic reply.
    Keyword,
    /// The one confirmation of an opt-out the provider did not confirm itself.
    Confirmation,
    /// An alert to staff.
    Alert,
    /// A test text to the operator's own phone (`send-test`, the Setup page).
    Test,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextBack => "textback",
            Self::Help => "help",
            Self::Reply => "reply",
            Self::FollowUp => "followup",
            Self::Keyword => "keyword",
            Self::Confirmation => "confirmation",
            Self::Alert => "alert",
            Self::Test => "test",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "textback" => Some(Self::TextBack),
            "help" => Some(Self::Help),
            "reply" => Some(Self::Reply),
            "followup" => Some(Self::FollowUp),
            "keyword" => Some(Self::Keyword),
            "confirmation" => Some(Self::Confirmation),
            "alert" => Some(Self::Alert),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
    /// Whether the message may go to a contact who opted out (CTIA: the HELP answer and the one opt-out
    /// confirmation may; alerts go to staff, not to the contact).
    pub fn allowed_after_opt_out(self) -> bool {
        matches!(
            self,
            Self::Help | Self::Confirmation | Self::Alert | Self::Test
        )
    }

    /// Whether it is an automatic text to a contact: counted by the daily cap.
    pub fn automatic(self) -> bool {
        matches!(self, Self::TextBack | Self::FollowUp | Self::Keyword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164_numbers() {
        let cases: &[(&str, bool)] = &[
            ("+16025550100", true),
            (" +16025550100 ", true),
            ("+4930123456", true),
            ("+1234567", true),
            ("+123456", false),
            ("+1234567890123456", false),
            ("16025550100", false),
            ("+1 602 555 0100", false),
            ("+0123456789", false),
            ("", false),
            ("anonymous", false),
            ("client:alice", false),
        ];
        for (input, ok) in cases {
            assert_eq!(PhoneNumber::parse(input).is_ok(), *ok, "{input:?}");
        }
    }

    #[test]
    fn masks_the_middle() {
        assert_eq!(mask("+16025550100"), "+1602•••0100");
        assert_eq!(mask("short"), "•••");
    }

    #[test]
    fn status_only_moves_forward() {
        assert!(status_rank("delivered") > status_rank("sent"));
        assert!(status_rank("sent") > status_rank("queued"));
        assert!(status_rank("queued") > status_rank("sending"));
    }
}

/// Work the scheduler does at a time; stored as JSON in the jobs table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Decide again and send the text-back for a missed call.
    TextBack {
        /// The call's row id.
        call_id: i64,
    },
    /// Send an outgoing message whose row and body already exist (HELP answers, staff replies, alerts).
    SendMessage {
        /// The message's row id.
        message_id: i64,
    },
    /// Send follow-up number `step` (0-based) to a contact who has not answered.
    FollowUp {
        /// The contact.
        contact_id: i64,
        /// Index into the business's `follow_ups`.
        step: usize,
        /// When it was first due; it is dropped if it would leave more than `max_deferral` after this.
        due_at: i64,
    },
    /// POST an alert to the business's alert webhook.
    AlertWebhook {
        /// The business.
        business_id: String,
        /// The alert, as one line of text.
        text: String,
        /// The contact's number.
        phone: String,
        /// What they wrote, if the alert is about a text.
        body: Option<String>,
        /// A link to the conversation.
        link: String,
        /// Whether it is urgent.
        urgent: bool,
    },
    /// Phone someone and read them an alert.
    AlertCall {
        /// The business whose number calls.
        business_id: String,
        /// Who to call.
        to: String,
        /// What to say.
        say: String,
    },
    /// Notify one browser a staff user subscribed (Web Push).
    Push {
        /// The subscription's row id (gone subscriptions are skipped).
        subscription_id: i64,
        /// What the phone shows.
        note: crate::push::Notification,
    },
    /// Deliver one signed event to one endpoint.
    Deliver {
        /// The delivery's row id.
        delivery_id: i64,
    },
    /// Send one email.
    Email(crate::email::Email),
    /// Back the database up into `[backup] dir`, due at `at`, and queue the next one.
    Backup {
        /// When this run was due.
        at: i64,
    },
    /// Write a business's daily digest, due at `at`, and queue the next one.
    Digest {
        /// The business.
        business_id: String,
        /// When this run was due (it must still be a time the business's schedule fires at).
        at: i64,
    },
}

impl Job {
    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TextBack { .. } => "text_back",
            Self::SendMessage { .. } => "send_message",
            Self::FollowUp { .. } => "follow_up",
            Self::AlertWebhook { .. } => "alert_webhook",
            Self::AlertCall { .. } => "alert_call",
            Self::Push { .. } => "push",
            Self::Deliver { .. } => "deliver",
            Self::Email(_) => "email",
            Self::Digest { .. } => "digest",
            Self::Backup { .. } => "backup",
        }
    }
}

/// Where a call, or the forwarded leg of one, stands or how it ended, in the domain's words. Each provider
/// maps its own statuses and causes into these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// Not over yet (queued, ringing, in progress): nothing final to decide.
    Ongoing,
    /// Answered, then ended.
    Completed,
    /// Nobody answered in time.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// It could not be connected.
    Failed,
    /// It was abandoned before anyone answered (often: the caller hung up while it rang).
    Canceled,
}

impl CallEnd {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ongoing => "ongoing",
            Self::Completed => "completed",
            Self::NoAnswer => "no-answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// A caller called the business.
    #[default]
    Inbound,
    /// The business (or a staff phone through it) called out.
    Outbound,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Who answered a forwarded call, when the provider detected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnsweredBy {
    /// Not detected (or not asked).
    #[default]
    Unknown,
    /// A person.
    Human,
    /// An answering machine, voicemail box or fax.
    Machine,
}

impl AnsweredBy {
    /// The stored name (`None` when unknown).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Unknown => None,
            Self::Human => Some("human"),
            Self::Machine => Some("machine"),
        }
    }
}

/// The carrier's verdict on the caller's number (SHAKEN/STIR), when it gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerId {
    /// No verdict.
    #[default]
    Unchecked,
    /// The number was verified.
    Verified,
    /// Verification failed: the number may be spoofed.
    Failed,
}

impl CallerId {
    /// The stored name (`None` when unchecked).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Unchecked => None,
            Self::Verified => Some("verified"),
            Self::Failed => Some("failed"),
        }
    }
}

/// What a provider's own opt-out handling read in an inbound text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutKind {
    /// Stop texting me.
    Stop,
    /// Start again.
    Start,
    /// Who are you and how do I stop this.
    Help,
}

/// Why a provider refused a text for good, in the domain's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The number is not a valid phone number.
    InvalidNumber,
    /// The number cannot receive texts (a landline, a pager, an unreachable carrier).
    NotMobile,
    /// The recipient opted out at the provider or carrier.
    OptedOut,
    /// The content or sender was blocked (spam filtering, an unregistered sender).
    Blocked,
    /// Anything else.
    Other,
}

/// A provider's refusal of a text: the domain reason and the provider's own code (shown to people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What it means.
    pub reason: FailReason,
    /// The provider's code, as it sent it (`21610`, `40300`).
    pub code: Option<String>,
}

/// A call webhook's news about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallReportKind {
    /// A call is ringing at a business number and wants instructions.
    Incoming,
    /// The forwarded leg ended.
    DialEnded {
        /// The forwarded leg's id, when present.
        leg_id: Option<String>,
        /// How it ended.
        end: CallEnd,
        /// How long it was answered, in seconds, when it was.
        talk_secs: Option<u64>,
    },
    /// The call's own status.
    Status {
        /// Where it stands.
        end: CallEnd,
        /// How long the caller's leg lasted, in seconds, when known.
        duration_secs: Option<u64>,
    },
    /// A voicemail recording is ready.
    Recording {
        /// Its https link.
        url: String,
    },
    /// The whole call ended, reported once by a system that does not ring the phones for us (a PBX, Telnyx
    /// Call Control): how it ended, how long it was answered, how long the caller was on the line.
    Ended {
        /// How it ended.
        end: CallEnd,
        /// How long it was answered, in seconds, when the report says.
        talk_secs: Option<u64>,
        /// How long the caller was on the line, in seconds, when the report says.
        caller_secs: Option<u64>,
    },
}

/// A call webhook, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// The provider's call id.
    pub call_sid: String,
    /// The caller as the provider reported it (may be withheld or not a number).
    pub from: String,
    /// The number called.
    pub to: String,
    /// Which way the call went.
    pub direction: Direction,
    /// The carrier's verdict on the caller ID.
    pub caller_id: CallerId,
    /// Who answered the forwarded leg, when detected.
    pub answered_by: AnsweredBy,
    /// What the report says.
    pub kind: CallReportKind,
}

/// An inbound text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundText {
    /// The provider's message id.
    pub message_sid: String,
    /// Sender.
    pub from: String,
    /// The business number it was sent to.
    pub to: String,
    /// The text.
    pub body: String,
    /// The provider's own reading of an opt-out keyword, when it has one (Twilio Advanced Opt-Out).
    pub opt_out: Option<OptOutKind>,
}

/// Where an outgoing text stands, in the domain's words: `queued`, `sent`, `delivered`, `undelivered`,
/// `failed`, `read` (see [`status_rank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The provider's message id.
    pub message_sid: String,
    /// The new state.
    pub status: String,
    /// Why it failed, when it did.
    pub failure: Option<Failure>,
}

/// What the first text-back does during quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuietPolicy {
    /// Send anyway: the caller called a minute ago.
    #[default]
    Send,
    /// Wait for the end of quiet hours.
    Defer,
    /// Do not send.
    Skip,
}
