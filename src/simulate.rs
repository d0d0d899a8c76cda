//! `textback simulate`: sends correctly signed, Twilio-shaped webhooks to a running server, exactly as Twilio
//! would for a missed call or an inbound text, so the whole path can be tried without a phone.

use crate::config::{Config, Loaded, ProviderKind};
use crate::model::PhoneNumber;
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
        let provider = &config.providers[config.provider_name(biz)];
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
            token: signing_token(loaded, provider)?,
            account_sid: provider
                .account_sid
                .clone()
                .unwrap_or_else(|| format!("AC{}", "0".repeat(32))),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(15))
                .build(),
        })
    }

    /// Posts a signed form to `path`; returns the response body.
    fn post(&self, path: &str, params: &[(String, String)]) -> anyhow::Result<String> {
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
    if provider.auth_token.is_some() || provider.kind != ProviderKind::Simulator {
        return Ok(provider.signing_token().to_string());
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

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Simulates a missed call: the voice webhook, the dial action (when the call was forwarded) and the final
/// status callback. Returns a description of what happened, for the terminal.
pub fn missed_call(loaded: &Loaded, call: &Call, url: Option<&str>) -> anyhow::Result<String> {
    let config = &loaded.config;
    let valid = ["no-answer", "busy", "failed", "canceled", "completed"];
    if !valid.contains(&call.status.as_str()) {
        bail!("--status must be one of {}", valid.join(", "));
    }
    let to = match &call.to {
        Some(t) => PhoneNumber::parse(t).with_context(|| "--to")?.to_string(),
        None => first_number(config)?,
    };
    let target = Target::new(loaded, &to, url)?;
    let call_sid = random_sid("CA");
    let base = pairs(&[
        ("AccountSid", &target.account_sid),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", &call_sid),
        ("Called", &to),
        ("Caller", &call.from),
        ("Direction", "inbound"),
        ("From", &call.from),
        ("To", &to),
    ]);
    let mut log = Vec::new();
    let mut voice = base.clone();
    voice.push(("CallStatus".into(), "ringing".into()));
    let twiml = target.post("/hooks/twilio/voice", &voice)?;
    log.push(format!("POST /hooks/twilio/voice        -> {twiml}"));

    let duration = call.duration.unwrap_or(0).to_string();
    if twiml.contains("<Dial") {
        let mut dial = base.clone();
        dial.push(("CallStatus".into(), "in-progress".into()));
        dial.push(("DialCallSid".into(), random_sid("CA")));
        dial.push(("DialCallStatus".into(), call.status.clone()));
        if call.status == "completed" {
            dial.push(("DialCallDuration".into(), duration.clone()));
            dial.push(("DialBridged".into(), "true".into()));
        }
        let answer = target.post("/hooks/twilio/dial", &dial)?;
        log.push(format!("POST /hooks/twilio/dial         -> {answer}"));
    }
    let mut status = base;
    status.push(("CallStatus".into(), "completed".into()));
    status.push(("CallDuration".into(), duration));
    target.post("/hooks/twilio/call-status", &status)?;
    log.push("POST /hooks/twilio/call-status  -> ok".to_string());

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
    let params = pairs(&[
        ("AccountSid", &target.account_sid),
        ("ApiVersion", "2010-04-01"),
        ("Body", &text.body),
        ("From", &text.from),
        ("MessageSid", &sid),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", &sid),
        ("SmsSid", &sid),
        ("SmsStatus", "received"),
        ("To", &to),
    ]);
    target.post("/hooks/twilio/sms", &params)?;
    Ok(format!(
        "Simulated text {sid} from {} to {to}: {:?}",
        text.from, text.body
    ))
}
