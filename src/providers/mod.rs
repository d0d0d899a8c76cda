//! Telephony providers behind one small trait: send a text, find out whether an interrupted send went out,
//! and check a webhook's signature. Each provider's wire format lives in its own file. Synchronous (ureq).
//! Depends on model and config, never on the store.

pub mod android_gateway;
pub mod pbx;
pub mod simulator;
pub mod telnyx;
pub mod twilio;
mod twilio_setup;

use crate::clock::Millis;
use crate::config::{Config, KindRules, ProviderConfig};
use crate::model::{CallReport, DeliveryReceipt, InboundText};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A text to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    /// Sender: one of the business's numbers.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// The text.
    pub body: String,
    /// This text's id in this installation, the same on every attempt: a provider that takes a client's
    /// id for a message (the Android gateway) refuses a repeat instead of sending it twice.
    pub key: String,
}

/// The provider took the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's message id.
    pub sid: String,
    /// Its initial state (`queued`, `accepted`, `sent`).
    pub status: String,
}

/// Why a send did not go through; the class decides what the scheduler does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (invalid number, unsubscribed recipient): never retried.
    #[error("rejected by the provider ({failure:?}): {message}")]
    Rejected {
        /// What the refusal means, and the provider's code.
        failure: crate::model::Failure,
        /// The provider's message.
        message: String,
    },
    /// Certainly not accepted, and worth trying again (connection refused, 429, 5xx).
    #[error("temporary failure: {message}")]
    Retryable {
        /// What happened.
        message: String,
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The request may have been accepted (it timed out after it was sent): reconcile before resending.
    #[error("outcome unknown: {message}")]
    Ambiguous {
        /// What happened.
        message: String,
    },
}

impl SendError {
    /// A refusal for something this kind of account cannot do at all.
    pub fn unsupported(message: &str) -> Self {
        Self::Rejected {
            failure: crate::model::Failure {
                reason: crate::model::FailReason::Other,
                code: None,
            },
            message: message.to_string(),
        }
    }

    /// A failure to reach the API: before the request left (no DNS, refused connection) a resend cannot
    /// duplicate it; after (a timeout, a cut connection) it may have been taken, so it must be checked.
    pub fn transport(t: &ureq::Transport, what: &str) -> Self {
        let message = format!("{what}: {}", t.kind());
        match t.kind() {
            ureq::ErrorKind::Dns
            | ureq::ErrorKind::ConnectionFailed
            | ureq::ErrorKind::InvalidUrl => Self::Retryable {
                message,
                retry_after: None,
            },
            _ => Self::Ambiguous { message },
        }
    }
}

/// The HTTP client an account calls its API with: `send_timeout` per request, a short connect timeout.
pub fn agent(config: &ProviderConfig) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(config.send_timeout().0)
        .user_agent(concat!("textback/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How far a signed webhook's timestamp may be from our clock: five minutes either way.
pub const MAX_SKEW_SECS: u64 = 300;

/// Whether a webhook's `timestamp` (unix seconds, as sent) is within [`MAX_SKEW_SECS`] of `now`.
pub fn fresh(timestamp: &str, now: i64) -> bool {
    timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| now.abs_diff(t) <= MAX_SKEW_SECS)
}

/// The time now in unix seconds, for webhook timestamps.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What the providers that only want a 200 are told: `{"ok":true}`.
pub fn json_ok() -> Answer {
    Answer {
        content_type: "application/json",
        body: "{\"ok\":true}".into(),
    }
}

/// What the provider says about a send that may or may not have gone out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It went out; this is its id.
    Sent(Accepted),
    /// The provider has no such message: sending it now is not a duplicate.
    NotSent,
    /// The provider cannot tell.
    Unknown(String),
}

/// An inbound webhook as it arrived, for a provider to verify and read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The URL the provider called: the configured public URL plus the raw path and query.
    pub url: &'a str,
    /// The last segment of the path (`voice`, `sms`, `events`...): which of the provider's hooks it is.
    pub hook: &'a str,
    /// The decoded query parameters.
    pub query: &'a [(String, String)],
    /// The headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A header's value (the first, when repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's value.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body is form-encoded.
    pub fn is_form(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
    }

    /// Whether the body is JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"))
    }
}

/// What a webhook reports, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call is ringing at a business number and waits to be told what to do.
    Incoming(CallReport),
    /// News about a call: the forwarded leg ended, the call's status, a voicemail recorded.
    Call(CallReport),
    /// Someone answered a screened forwarded leg (or a machine did): they are to hear who calls.
    ScreenAnswered {
        /// The caller's call.
        call: String,
        /// A machine answered: it is hung up on, so the call counts as missed.
        machine: bool,
    },
    /// The key pressed after the screening prompt.
    ScreenKey {
        /// The caller's call.
        call: String,
        /// 1 was pressed: the person takes the call.
        accepted: bool,
    },
    /// An inbound text.
    Text(InboundText),
    /// A delivery receipt for a text we sent.
    Receipt(DeliveryReceipt),
    /// Something the provider tells that needs nothing done (an event type we do not use).
    Ignored,
}

/// Which business a webhook is for: by one of its numbers, or by its id (in a URL we built ourselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressed {
    /// A business number; failing that, `or` (the other end of a call placed from a business or staff
    /// phone).
    Number {
        /// The number, as the provider sent it.
        number: String,
        /// The number to try next.
        or: Option<String>,
    },
    /// A business id.
    Business(String),
    /// A call between two numbers, its direction unsaid: inbound when `to` is a business number, outbound
    /// when `from` is a business or staff number (the report's direction is set to match).
    Call {
        /// The calling number.
        from: String,
        /// The called number.
        to: String,
    },
    /// The business that uses the account the webhook came to (an account that serves one business, such
    /// as a phone on the desk); when several do, the one with this number.
    Account {
        /// The business number, when the webhook names it.
        number: Option<String>,
    },
    /// Nothing to find (an ignored event).
    Nobody,
}

/// A webhook read into the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What it reports.
    pub event: Event,
    /// Which business it is for.
    pub addressed: Addressed,
    /// A key the provider keeps the same across retries of this webhook, when it sends one.
    pub idempotency_key: Option<String>,
}

/// A webhook cannot be read: missing or malformed fields (a 400), or a body in the wrong format (a 415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Missing or malformed fields.
    #[error("{0}")]
    Malformed(String),
    /// The body is not in a format this hook takes.
    #[error("{0}")]
    Unsupported(String),
    /// The provider has no such hook.
    #[error("no such webhook: {0}")]
    NoSuchHook(String),
}

/// The answer to a webhook, in the domain's words; each provider writes it in its own format (TwiML, JSON,
/// an empty 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Received; nothing more to do.
    Ack,
    /// End the call.
    Hangup,
    /// Ring the business's phones; report back when that ends.
    Forward {
        /// The phones.
        numbers: &'a [String],
        /// How long they ring.
        ring_secs: u64,
        /// Screen the call (whoever answers must press 1): the business id and the caller's call id.
        screen: Option<(&'a str, &'a str)>,
        /// Ask the provider to detect answering machines.
        machine_detection: bool,
    },
    /// Nobody took the call: play the greeting and, when asked, record a voicemail.
    Missed {
        /// What the caller hears.
        greeting: &'a str,
        /// Record a voicemail after it.
        voicemail: bool,
    },
    /// Tell the person who answered a screened call who calls, and ask for 1.
    ScreenPrompt {
        /// The business's name.
        business_name: &'a str,
        /// The caller's number.
        caller: &'a str,
        /// The business id and the caller's call id, for the key's report.
        call: (&'a str, &'a str),
    },
}

/// Why a webhook is not taken from this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The body is not in the account's format (a 415).
    #[error("{0}")]
    Unsupported(&'static str),
    /// No valid proof that the account sent it (a 403).
    #[error("{0}")]
    Forbidden(&'static str),
}

/// A webhook's answer as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its content type.
    pub content_type: &'static str,
    /// Its body.
    pub body: String,
}

/// A URL an account's webhooks are to be sent to, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookUrl {
    /// What the provider calls it.
    pub what: &'static str,
    /// The URL.
    pub url: String,
}

/// Where to point an account's webhooks, for the admin UI's "connect your provider".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Connect {
    /// Where the URLs go, in the provider's own words.
    pub instructions: &'static str,
    /// The URLs.
    pub urls: Vec<HookUrl>,
}

/// `{hooks}/{hook}` for each `(what, hook)`.
pub fn hook_urls(hooks: &str, list: &[(&'static str, &str)]) -> Vec<HookUrl> {
    list.iter()
        .map(|(what, hook)| HookUrl {
            what,
            url: format!("{hooks}/{hook}"),
        })
        .collect()
}

/// A signed request as the account's provider would send it, to prove the round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Its content type.
    pub content_type: &'static str,
    /// Its body.
    pub body: String,
    /// Its headers, the signature among them.
    pub headers: Vec<(String, String)>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but something will bite.
    Warn,
    /// Broken: texts will not go or calls will not be seen.
    Fail,
}

/// One line of `textback doctor` and the Setup page: what was checked, how it stands, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// How it came out.
    pub level: Level,
    /// What was found.
    pub what: String,
    /// What to do about it, when anything.
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn ok(what: impl Into<String>) -> Self {
        Self {
            level: Level::Ok,
            what: what.into(),
            fix: None,
        }
    }
    /// A warning, with its fix.
    pub fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            level: Level::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
    /// A failure, with its fix.
    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            level: Level::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Which of a number's webhooks textback should receive: a PBX may take the calls while the number texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    /// Its calls.
    pub calls: bool,
    /// Its texts.
    pub texts: bool,
}

/// One setting of a number at the provider that `connect` changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The provider's id of what holds the setting: the number, or an application or profile it uses.
    pub target: String,
    /// The provider's name for it (`VoiceUrl`).
    pub field: &'static str,
    /// Its value now (empty when unset).
    pub now: String,
    /// What textback needs it to be.
    pub wanted: String,
}

/// What pointing a number at this server takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NumberPlan {
    /// The number.
    pub number: String,
    /// The provider's id for it.
    pub id: String,
    /// The settings to change (none: it already points here).
    pub changes: Vec<Change>,
    /// What would make the provider ignore those settings anyway, each with what to change; nothing is
    /// changed while any stands.
    pub blockers: Vec<String>,
}

/// Why a set-up step could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The provider refused (wrong credentials, a number not in the account): said in its words.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be reached or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
}

/// What an account can do to set a number up from here (Twilio's and SignalWire's REST APIs can).
pub trait NumberSetup {
    /// Checks the account's credentials; returns the provider's clock (its `Date` header) when it sent one.
    fn account(&self) -> Result<Option<std::time::SystemTime>, SetupError>;
    /// What pointing `number`'s webhooks (those in `wants`) at this server takes. `managed` is every number
    /// textback answers for: a change that would move any other number too is refused.
    fn plan(
        &self,
        number: &str,
        wants: Wants,
        managed: &[String],
    ) -> Result<NumberPlan, SetupError>;
    /// Makes a plan's changes. Refuses a plan with blockers.
    fn apply(&self, plan: &NumberPlan) -> Result<(), SetupError>;
    /// Whether `number` may text US mobiles (A2P 10DLC), as checks.
    fn a2p(&self, number: &str) -> Vec<Check>;
}

/// A provider account: its outgoing API and its inbound webhooks.
pub trait Provider: Send + Sync {
    /// Sends a text.
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError>;
    /// Asks whether `sms` was accepted at or after `since` (reconciling an interrupted send).
    fn find_sent(&self, sms: &OutgoingSms, since: Millis) -> Lookup;
    /// Checks that an inbound webhook comes from this account (its signature, or another proof) and is in
    /// the account's format.
    fn verify(&self, req: &Request<'_>) -> Result<(), Refused>;
    /// Reads an inbound webhook into the domain. Only called for a verified request.
    fn parse(&self, req: &Request<'_>) -> Result<Parsed, ParseError>;
    /// Writes the answer to a webhook in the provider's format.
    fn reply(&self, reply: &Reply<'_>) -> Answer;
    /// The line type of a number (`mobile`, `landline`, `fixedVoip`, …), when the account can look it up.
    fn line_type(&self, number: &str) -> Result<String, String>;
    /// Phones `to` from `from` and reads `say` aloud; returns the call's id.
    fn place_call(&self, from: &str, to: &str, say: &str) -> Result<String, SendError>;
    /// Where to point the account's webhooks.
    fn connect(&self) -> Connect;
    /// What one of the provider's error codes means, in a sentence, for the ones worth explaining.
    fn explain(&self, _code: &str) -> Option<&'static str> {
        None
    }
    /// Number set-up from here, when the account's API allows it.
    fn setup(&self) -> Option<&dyn NumberSetup> {
        None
    }
    /// A request to `url` that passes [`Provider::verify`] (`textback doctor`'s round trip through the public
    /// URL), when textback holds what signs this account's webhooks.
    fn probe(&self, _url: &str) -> Option<Probe> {
        None
    }
}

type Accounts = BTreeMap<String, Arc<dyn Provider>>;

/// The provider accounts by name: a shared handle (clones see the same accounts), replaced whole when the
/// configuration is (a settings save, SIGHUP).
#[derive(Clone, Default)]
pub struct Providers(Arc<std::sync::RwLock<Arc<Accounts>>>);

/// What the built-in simulator signs its webhooks with when its config sets no `auth_token`.
#[derive(Debug, Clone, Default)]
pub struct SimulatorToken(pub String);

impl Providers {
    /// Builds every provider account in the config.
    pub fn from_config(config: &Config, simulator: &SimulatorToken) -> Self {
        Self::from_map(build(config, simulator, |_| None))
    }

    /// A set of providers built elsewhere (tests).
    pub fn from_map(map: BTreeMap<String, Arc<dyn Provider>>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(map))))
    }

    fn accounts(&self) -> Arc<Accounts> {
        match self.0.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The provider account with this name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.accounts().get(name).cloned()
    }

    /// Every provider account.
    pub fn all(&self) -> Vec<(String, Arc<dyn Provider>)> {
        self.accounts()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Puts the accounts of `new` in force, keeping those whose settings did not change (a provider keeps
    /// what it knows, such as the simulator's sent texts); returns the names built anew.
    pub fn rebuild(&self, old: &Config, new: &Config, simulator: &SimulatorToken) -> Vec<String> {
        let current = self.accounts();
        let keep = |name: &str| {
            let same = old.providers.get(name) == new.providers.get(name)
                && old.server.public_base() == new.server.public_base();
            same.then(|| current.get(name).cloned()).flatten()
        };
        let mut rebuilt = Vec::new();
        let map = build(new, simulator, |name| {
            let kept = keep(name);
            if kept.is_none() {
                rebuilt.push(name.to_string());
            }
            kept
        });
        match self.0.write() {
            Ok(mut a) => *a = Arc::new(map),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(map),
        }
        rebuilt
    }
}

/// What building an account needs besides its settings.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The account's name: its webhooks come to `{public_url}/hooks/{name}/...`.
    pub name: &'a str,
    /// The configured public base URL.
    pub public_url: &'a str,
    /// What the simulator signs with when its config sets no key.
    pub simulator_token: &'a str,
}

/// A kind of provider account: its configuration rules and how to build one.
#[derive(Debug)]
pub struct Kind {
    /// What the configuration checks.
    pub rules: KindRules,
    /// Builds an account from settings that passed the rules.
    pub build: fn(&ProviderConfig, &Context<'_>) -> Arc<dyn Provider>,
}

/// Every kind of provider account: the registry. A new provider is one file in `providers/` and one line
/// here.
pub const KINDS: &[&Kind] = &[
    &twilio::TWILIO,
    &twilio::SIGNALWIRE,
    &telnyx::KIND,
    &pbx::KIND,
    &android_gateway::KIND,
    &simulator::KIND,
];

/// The kinds' configuration rules, for [`crate::config::parse`] and [`crate::config::load`].
pub fn rules() -> Vec<&'static KindRules> {
    KINDS.iter().map(|k| &k.rules).collect()
}

/// Builds the accounts of a config. `reuse` may hand back an existing account for a name.
fn build(
    config: &Config,
    simulator: &SimulatorToken,
    mut reuse: impl FnMut(&str) -> Option<Arc<dyn Provider>>,
) -> Accounts {
    let public = config.server.public_base();
    config
        .providers
        .iter()
        .filter_map(|(name, p)| {
            let provider = match reuse(name) {
                Some(kept) => kept,
                None => {
                    // Validation refused any other kind, so a config in force always finds its kind.
                    let kind = KINDS.iter().find(|k| k.rules.name == p.kind)?;
                    let ctx = Context {
                        name,
                        public_url: &public,
                        simulator_token: &simulator.0,
                    };
                    (kind.build)(p, &ctx)
                }
            };
            Some((name.clone(), provider))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        match crate::config::parse(text, Some(std::path::Path::new("t.toml")), &rules()) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn timestamps_are_fresh_within_five_minutes_whatever_is_sent() {
        let now = 1_700_000_000;
        let cases: &[(&str, bool)] = &[
            ("1700000000", true),
            (" 1700000300 ", true),
            ("1699999700", true),
            ("1700000301", false),
            ("1699999699", false),
            ("-9223372036854775808", false),
            ("9223372036854775807", false),
            ("", false),
            ("17e8", false),
        ];
        for (ts, want) in cases {
            assert_eq!(fresh(ts, now), *want, "{ts}");
        }
        assert!(!fresh("0", i64::MIN));
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.rules.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
    }

    const BIZ: &str = "[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\n";

    #[test]
    fn every_kind_of_account_has_a_minimal_valid_file() {
        let accounts = [
            "[providers.main]\nkind = \"signalwire\"\nspace = \"example\"\nproject_id = \"ea108133-d6b3-407c-9536-9fad8a1f1a82\"\napi_token = \"PT0123\"\nsigning_key = \"PSK_0123\"\n",
            "[providers.main]\nkind = \"telnyx\"\napi_key = \"KEY0123\"\npublic_key = \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n",
            "[providers.pbx]\nkind = \"pbx\"\ntoken = \"0123456789abcdef\"\n[providers.phone]\nkind = \"android-gateway\"\nurl = \"http://192.168.1.50:8080\"\nusername = \"sms\"\npassword = \"pw\"\nsigning_key = \"a-long-webhook-signing-key\"\n",
        ];
        let businesses = [
            BIZ.to_string(),
            BIZ.to_string(),
            format!("{BIZ}provider = \"pbx\"\nsms_provider = \"phone\"\n"),
        ];
        for (account, biz) in accounts.iter().zip(businesses) {
            let text = format!("[server]\npublic_url = \"https://t.example.com\"\n{account}{biz}");
            assert_eq!(errors_of(&text), Vec::<String>::new(), "{text}");
            // Twilio, SignalWire and Telnyx call back URLs we give them: the public URL must be said.
            let wants = errors_of(&format!("{account}{biz}"))
                .iter()
                .any(|e| e.starts_with("t.toml: server.public_url: is required with the"));
            assert_eq!(wants, !account.contains("pbx"), "{account}");
        }
    }

    #[test]
    fn each_kind_takes_only_its_own_settings() {
        let twilio = "[providers.main]\nkind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"x\"\n";
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{twilio}space = \"example\"\n{BIZ}"),
                "t.toml:5: providers.main.space: is not a setting of kind = \"twilio\" (its settings: account_sid, auth_token,",
            ),
            (
                format!("{twilio}auth_tokn = \"y\"\n{BIZ}"),
                "t.toml:5: providers.main.auth_tokn: is not a setting of kind = \"twilio\" (its settings: account_sid, auth_token, api_base, line_type_lookup, lookup_base, messaging_base, send_timeout, settle_time, retry_backoff); did you mean `auth_token`?",
            ),
            (
                format!("[providers.main]\nkind = \"simulator\"\nurl = \"http://x\"\n{BIZ}"),
                "t.toml:3: providers.main.url: is not a setting of kind = \"simulator\"",
            ),
            (
                format!("[providers.sw]\nkind = \"signalwire\"\nspace = \"example\"\nproject_id = \"ea108133-d6b3-407c-9536-9fad8a1f1a82\"\napi_token = \"t\"\n{BIZ}"),
                "t.toml:1: providers.sw.signing_key: is required for kind = \"signalwire\" (the project's Signing Key",
            ),
            (
                format!("[providers.sw]\nkind = \"signalwire\"\nspace = \"example.signalwire.com\"\nproject_id = \"ea108133-d6b3-407c-9536-9fad8a1f1a82\"\napi_token = \"t\"\nsigning_key = \"k\"\n{BIZ}"),
                "t.toml:3: providers.sw.space: \"example.signalwire.com\" is not a space name",
            ),
            (
                format!("[providers.sw]\nkind = \"signalwire\"\nspace = \"example\"\nproject_id = \"AC123\"\napi_token = \"t\"\nsigning_key = \"k\"\n{BIZ}"),
                "t.toml:4: providers.sw.project_id: \"AC123\" is not a Project ID (a UUID)",
            ),
            (
                format!("[providers.tx]\nkind = \"telnyx\"\napi_key = \"k\"\npublic_key = \"bm90IGEga2V5\"\n{BIZ}"),
                "t.toml:4: providers.tx.public_key: is not a base64 Ed25519 public key",
            ),
            (
                format!("[providers.tx]\nkind = \"telnyx\"\npublic_key = \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n{BIZ}"),
                "t.toml:1: providers.tx.api_key: is required for kind = \"telnyx\"",
            ),
            (
                format!("[providers.pbx]\nkind = \"pbx\"\ntoken = \"short\"\n{twilio}{BIZ}provider = \"pbx\"\nsms_provider = \"main\"\n"),
                "t.toml:3: providers.pbx.token: must be at least 16 characters",
            ),
            (
                format!("[providers.pbx]\nkind = \"pbx\"\n{twilio}{BIZ}provider = \"pbx\"\nsms_provider = \"main\"\n"),
                "t.toml:1: providers.pbx.token: a pbx account needs a token",
            ),
            (
                format!("[providers.pbx]\nkind = \"pbx\"\ntoken = \"0123456789abcdef\"\n{BIZ}"),
                "t.toml:4: business[0].provider: a pbx account reports calls but cannot text",
            ),
            (
                format!("[providers.phone]\nkind = \"android-gateway\"\nusername = \"sms\"\npassword = \"p\"\nsigning_key = \"k\"\n{BIZ}"),
                "t.toml:1: providers.phone.url: is required for kind = \"android-gateway\"",
            ),
            (
                format!("[providers.phone]\nkind = \"android-gateway\"\nurl = \"http://192.168.1.50:8080\"\nusername = \"sms\"\npassword = \"p\"\nsigning_key = \"k\"\n{BIZ}"),
                "t.toml:7: business[0].provider: an android-gateway account texts but cannot report calls",
            ),
            (
                format!("[providers.phone]\nkind = \"android-gateway\"\nurl = \"http://192.168.1.50:8080\"\nusername = \"sms\"\npassword = \"p\"\nsigning_key = \"nanoid08\"\n{twilio}{BIZ}provider = \"main\"\nsms_provider = \"phone\"\n"),
                "t.toml:6: providers.phone.signing_key: must be at least 16 characters",
            ),
            (
                format!("[providers.tx]\nkind = \"telnyx\"\napi_key = \"k\"\npublic_key = \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n{BIZ}call_screening = true\n"),
                "t.toml:9: business[0].call_screening: the telnyx account \"tx\" that reports this business's calls cannot screen forwarded calls",
            ),
            (
                format!("{twilio}{BIZ}sms_provider = \"phone\"\n"),
                "t.toml:9: business[0].sms_provider: no provider named \"phone\"",
            ),
        ];
        for (text, want) in &cases {
            let got = errors_of(text);
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "for {text:?}\nwanted an error starting with {want:?}\ngot {got:#?}"
            );
        }
    }
}
