//! `textback simulate`: sends correctly signed, Twilio-shaped webhooks to a running server, exactly as Twilio
//! would for a missed call or an inbound text, so the whole path can be tried without a phone. The fields
//! are the simulator provider's (`providers::simulator::webhooks`); this file only signs and posts them.

use crate::config::{Config, Loaded};
use crate::model::PhoneNumber;
use crate::providers::simulator::webhooks;
use crate::providers::twilio;
use anyhow::{bail, Context};

/// A missed call to simulate.
#[derive(Debug, Clone)]
pub struct Call {
    /// The caller.
    pub from: String,
    /// The business number called; the first business's first number when `None`.
    pub to: Option<String>,
    /// How the forwarded leg ended: no-answer, busy, failed, canceled or completed.
    pub status: String,
    /// For `completed`: how long it was answered, in seconds.
    pub duration: Option<u64>,
}

/// An inbound text to simulate.
#[derive(Debug, Clone)]
pub struct Text {
    /// The sender.
    pub from: String,
    /// The business number texted; the first business's first number when `None`.
    pub to: Option<String>,
    /// The text.
    pub body: String,
}

struct Target<'a> {
    config: &'a Config,
    /// Where to send the requests.
    base: String,
    /// What the server signs against.
    public: String,
    token: String,
    account_sid: String,
    /// The account's webhook path, `/hooks/{account}/`.
    hooks: String,
    agent: ureq::Agent,
}

fn random_sid(prefix: &str) -> String {
    let mut s = prefix.to_string();
    for _ in 0..32 {
        s.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
    }
    s
}

impl<'a> Target<'a> {
    fn new(loaded: &'a Loaded, to: &str, url: Option<&str>) -> anyhow::Result<Self> {
        let config = &loaded.config;
        let Some(biz) = config.business_for_number(to) else {
            bail!("{to} is not a number of any business in the configuration");
        };
        let account = config.provider_name(biz);
        let provider = &config.providers[account];
        if !provider.caps.twilio_webhooks {
            bail!(
                "simulate plays Twilio's webhooks, and {to} is reported by the {} account {account:?}: send it a report as its provider would (the README shows how)",
                provider.kind
            );
        }
        let listen = config
            .server
            .listen
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]");
        let base = url.map_or_else(
            || format!("http://{listen}"),
            |u| u.trim_end_matches('/').to_string(),
        );
        Ok(Self {
            config,
            public: config
                .server
                .public_url
                .as_ref()
                .map_or_else(|| base.clone(), |_| config.server.public_base()),
            base,
            hooks: format!("/hooks/{account}/"),
            token: signing_token(loaded, provider)?,
            account_sid: webhooks::account_sid(provider),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(15))
                .build(),
        })
    }

    /// Posts a signed form to the account's `hook`; returns the response body.
    fn post(&self, hook: &str, params: &[(String, String)]) -> anyhow::Result<String> {
        let path = format!("{}{hook}", self.hooks);
        let signature = twilio::signature(&self.token, &format!("{}{path}", self.public), params);
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = format!("{}{path}", self.base);
        match self
            .agent
            .post(&url)
            .set(twilio::SIGNATURE_HEADER, &signature)
            .send_form(&pairs)
        {
            Ok(resp) => Ok(resp.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, resp)) => {
                bail!(
                    "POST {url} answered HTTP {code}: {}",
                    resp.into_string().unwrap_or_default().trim()
                )
            }
            Err(ureq::Error::Transport(t)) => {
                bail!("cannot reach textback at {url}: {t} (is `textback serve` running?)")
            }
        }
    }
}

/// What the server checks signatures with: the provider's `auth_token`, or for a simulator without one, the
/// key this installation made for it (kept in the database by `textback serve`).
fn signing_token(
    loaded: &Loaded,
    provider: &crate::config::ProviderConfig,
) -> anyhow::Result<String> {
    if let Some(key) = crate::providers::simulator::signing_key(provider) {
        return Ok(key.to_string());
    }
    if !provider.caps.simulated {
        bail!(
            "the account {:?} sets no key to sign its webhooks with",
            provider.kind
        );
    }
    let missing = || {
        anyhow::anyhow!(
            "the simulator's signing key is made by the server on its first start: run `textback serve` first (database {})",
            loaded.database.display()
        )
    };
    if !loaded.database.exists() {
        return Err(missing());
    }
    let db = crate::store::Store::open_read_only(&loaded.database)
        .with_context(|| format!("while opening {}", loaded.database.display()))?;
    db.read(|c| crate::store::meta::get(c, crate::providers::simulator::TOKEN_KEY))
        .with_context(|| format!("while reading {}", loaded.database.display()))?
        .ok_or_else(missing)
}

fn first_number(config: &Config) -> anyhow::Result<String> {
    config
        .businesses
        .first()
        .map(|b| b.sender().to_string())
        .context("the configuration has no business")
}

/// Simulates a missed call: the voice webhook, the dial action (when the call was forwarded) and the final
/// status callback. Returns a description of what happened, for the terminal.
pub fn missed_call(loaded: &Loaded, call: &Call, url: Option<&str>) -> anyhow::Result<String> {
    let config = &loaded.config;
    let valid = webhooks::DIAL_STATUSES;
    if !valid.contains(&call.status.as_str()) {
        bail!("--status must be one of {}", valid.join(", "));
    }
    let to = match &call.to {
        Some(t) => PhoneNumber::parse(t).with_context(|| "--to")?.to_string(),
        None => first_number(config)?,
    };
    let target = Target::new(loaded, &to, url)?;
    let call_sid = random_sid("CA");
    let base = webhooks::call(&target.account_sid, &call_sid, &call.from, &to);
    let mut log = Vec::new();
    let twiml = target.post("voice", &webhooks::ringing(&base))?;
    log.push(format!("POST {}voice        -> {twiml}", target.hooks));
    let duration = call.duration.unwrap_or(0);
    if twiml.contains("<Dial") {
        let dial = webhooks::dial_ended(&base, &random_sid("CA"), &call.status, duration);
        let answer = target.post("dial", &dial)?;
        log.push(format!("POST {}dial         -> {answer}", target.hooks));
    }
    target.post("call-status", &webhooks::completed(&base, duration))?;
    log.push(format!("POST {}call-status  -> ok", target.hooks));

    let delay = target
        .config
        .business_for_number(&to)
        .map(|b| humantime::format_duration(b.text_delay.0).to_string())
        .unwrap_or_default();
    log.push(format!(
        "Simulated call {call_sid} from {} to {to} ({}). If it counts as missed, the text-back leaves in {delay}: \
         watch the server's log or run `textback status`.",
        call.from, call.status
    ));
    Ok(log.join("\n"))
}

/// Simulates an inbound text.
pub fn text(loaded: &Loaded, text: &Text, url: Option<&str>) -> anyhow::Result<String> {
    let config = &loaded.config;
    let to = match &text.to {
        Some(t) => PhoneNumber::parse(t).with_context(|| "--to")?.to_string(),
        None => first_number(config)?,
    };
    let target = Target::new(loaded, &to, url)?;
    let sid = random_sid("SM");
    let params = webhooks::text(&target.account_sid, &sid, &text.from, &to, &text.body);
    target.post("sms", &params)?;
    Ok(format!(
        "Simulated text {sid} from {} to {to}: {:?}",
        text.from, text.body
    ))
}
