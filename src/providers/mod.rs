//! Telephony providers behind one small trait: send a text, find out whether an interrupted send went out,
//! and check a webhook's signature. Each provider's wire format lives in its own file. Synchronous (ureq).
//! Depends on model and config, never on the store.

pub mod simulator;
pub mod twilio;

use crate::clock::Millis;
use crate::config::{Config, ProviderKind};
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

/// A webhook request as the signature check sees it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The URL the provider called: the configured public URL plus the raw path and query.
    pub url: &'a str,
    /// The decoded form parameters, in the order received.
    pub params: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
    /// The signature header, if any.
    pub signature: Option<&'a str>,
}

/// A provider account.
pub trait Provider: Send + Sync {
    /// Sends a text.
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError>;
    /// Asks whether `sms` was accepted at or after `since` (reconciling an interrupted send).
    fn find_sent(&self, sms: &OutgoingSms, since: Millis) -> Lookup;
    /// Checks a webhook's signature.
    fn verify(&self, req: &SignedRequest<'_>) -> bool;
    /// The line type of a number (`mobile`, `landline`, `fixedVoip`, …), when the account can look it up.
    fn line_type(&self, number: &str) -> Result<String, String>;
    /// Phones `to` from `from` and reads `say` aloud; returns the call's id.
    fn place_call(&self, from: &str, to: &str, say: &str) -> Result<String, SendError>;
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
                ProviderKind::Simulator => Arc::new(simulator::Simulator::new(p, &simulator.0)),
            });
            (name.clone(), provider)
        })
        .collect()
}
