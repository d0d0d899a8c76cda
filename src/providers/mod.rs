//! Telephony providers behind one small trait: send a text, find out whether an interrupted send went out,
//! and check a webhook's signature. Each provider's wire format lives in its own file. Synchronous (ureq).
//! Depends on model and config, never on the store.

pub mod android_gateway;
pub mod pbx;
pub mod simulator;
pub mod telnyx;
pub mod twilio;

use crate::clock::Millis;
use crate::config::{Config, ProviderKind};
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

/// Builds the accounts of a config: the only `match` on provider kinds. `reuse` may hand back an existing
/// account for a name.
fn build(
    config: &Config,
    simulator: &SimulatorToken,
    mut reuse: impl FnMut(&str) -> Option<Arc<dyn Provider>>,
) -> Accounts {
    let public = config.server.public_base();
    config
        .providers
        .iter()
        .map(|(name, p)| {
            let provider = reuse(name).unwrap_or_else(|| match p.kind {
                ProviderKind::Twilio => {
                    Arc::new(twilio::Twilio::new(p, &public)) as Arc<dyn Provider>
                }
                ProviderKind::Simulator => {
                    Arc::new(simulator::Simulator::new(p, &simulator.0, &public))
                }
                ProviderKind::Signalwire => Arc::new(twilio::Twilio::signalwire(p, &public, name)),
                ProviderKind::Telnyx => Arc::new(telnyx::Telnyx::new(p, &public, name)),
                ProviderKind::Pbx => Arc::new(pbx::Pbx::new(p, &public, name)),
                ProviderKind::AndroidGateway => {
                    Arc::new(android_gateway::AndroidGateway::new(p, &public, name))
                }
            });
            (name.clone(), provider)
        })
        .collect()
}
