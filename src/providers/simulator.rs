//! The built-in simulator: a provider account that needs no signup. It speaks Twilio's webhook format
//! (so `textback simulate` and the demo exercise the real webhook path, signatures included), and its
//! "sends" are printed to the log instead of leaving the machine.

use super::{
    twilio, Accepted, Answer, Connect, Lookup, OutgoingSms, Parsed, Provider, Refused, Reply,
    Request, SendError,
};
use crate::clock::Millis;
use crate::config::{Caps, KindRules, ProviderConfig, SettingSpec, SettingType};
use crate::model::mask;
use std::sync::Mutex;

/// Where the installation keeps the key its simulator signs webhooks with (made at random on the first
/// start, so no two installations share it).
pub const TOKEN_KEY: &str = "simulator_token";

/// `kind = "simulator"`: speaks Twilio's webhooks, sends nothing.
pub const KIND: super::Kind = super::Kind {
    rules: KindRules {
        name: "simulator",
        settings: &[SettingSpec {
            key: "auth_token",
            ty: SettingType::Secret,
            required: None,
        }],
        caps: |_| Caps {
            twilio_webhooks: true,
            simulated: true,
            screens_calls: true,
            places_calls: true,
            ..Caps::default()
        },
        check: |_| vec![],
    },
    build: |config, ctx| {
        std::sync::Arc::new(Simulator::new(config, ctx.simulator_token, ctx.public_url))
    },
};

/// The key an account that speaks Twilio's webhooks signs them with, when its config sets one (a simulator
/// without one signs with the key this installation made for it, kept in its database).
pub fn signing_key(config: &ProviderConfig) -> Option<&str> {
    config.secret("auth_token")
}

/// The simulator account.
pub struct Simulator {
    token: String,
    /// Where its webhooks go: `{public_url}/hooks/twilio` (it speaks Twilio's format).
    hooks: String,
    sent: Mutex<Vec<(OutgoingSms, Accepted)>>,
}

impl Simulator {
    /// Builds the simulator from its config; `default_token` signs its webhooks unless it sets `auth_token`.
    pub fn new(config: &ProviderConfig, default_token: &str, public_url: &str) -> Self {
        Self {
            hooks: format!("{public_url}/hooks/twilio"),
            token: signing_key(config).unwrap_or(default_token).to_string(),
            sent: Mutex::new(Vec::new()),
        }
    }
}

/// The webhooks a Twilio-format account sends, as `textback simulate` plays them: the fields Twilio posts
/// for each hook, so the simulator exercises the real parsing and signature path.
pub mod webhooks {
    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// The fields every webhook about one inbound call carries.
    pub fn call(account_sid: &str, call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
        pairs(&[
            ("AccountSid", account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", call_sid),
            ("Called", to),
            ("Caller", from),
            ("Direction", "inbound"),
            ("From", from),
            ("To", to),
        ])
    }

    /// `voice`: the call rings.
    pub fn ringing(call: &[(String, String)]) -> Vec<(String, String)> {
        let mut p = call.to_vec();
        p.push(("CallStatus".into(), "ringing".into()));
        p
    }

    /// `dial`: the forwarded leg ended with `status` (`no-answer`, `busy`, `failed`, `canceled`,
    /// `completed` after `answered_secs`).
    pub fn dial_ended(
        call: &[(String, String)],
        leg_sid: &str,
        status: &str,
        answered_secs: u64,
    ) -> Vec<(String, String)> {
        let mut p = call.to_vec();
        p.push(("CallStatus".into(), "in-progress".into()));
        p.push(("DialCallSid".into(), leg_sid.into()));
        p.push(("DialCallStatus".into(), status.into()));
        if status == "completed" {
            p.push(("DialCallDuration".into(), answered_secs.to_string()));
            p.push(("DialBridged".into(), "true".into()));
        }
        p
    }

    /// `call-status`: the call is over.
    pub fn completed(call: &[(String, String)], secs: u64) -> Vec<(String, String)> {
        let mut p = call.to_vec();
        p.push(("CallStatus".into(), "completed".into()));
        p.push(("CallDuration".into(), secs.to_string()));
        p
    }

    /// `sms`: a text comes in.
    pub fn text(
        account_sid: &str,
        sid: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> Vec<(String, String)> {
        pairs(&[
            ("AccountSid", account_sid),
            ("ApiVersion", "2010-04-01"),
            ("Body", body),
            ("From", from),
            ("MessageSid", sid),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", to),
        ])
    }

    /// The Account SID the webhooks carry: the account's own, or a placeholder for the simulator.
    pub fn account_sid(config: &crate::config::ProviderConfig) -> String {
        config
            .text("account_sid")
            .map_or_else(|| format!("AC{}", "0".repeat(32)), str::to_string)
    }

    /// The ways a forwarded leg can end, as `textback simulate --status` takes them.
    pub const DIAL_STATUSES: [&str; 5] = ["no-answer", "busy", "failed", "canceled", "completed"];
}

fn new_sid() -> String {
    let mut sid = String::from("SM");
    for _ in 0..32 {
        sid.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
    }
    sid
}

impl Provider for Simulator {
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError> {
        // The simulated phone has it at once: the text counts as delivered, as a real receipt would say.
        let accepted = Accepted {
            sid: new_sid(),
            status: "delivered".into(),
        };
        tracing::info!(
            to = %mask(&sms.to),
            from = %sms.from,
            sid = %accepted.sid,
            body = %sms.body,
            "simulator: text sent"
        );
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((sms.clone(), accepted.clone()));
        }
        Ok(accepted)
    }

    fn find_sent(&self, sms: &OutgoingSms, _since: Millis) -> Lookup {
        // The simulator forgets its sends when the process stops, so after a restart it cannot have sent it.
        match self.sent.lock() {
            Ok(sent) => sent
                .iter()
                .find(|(s, _)| s == sms)
                .map_or(Lookup::NotSent, |(_, a)| Lookup::Sent(a.clone())),
            Err(_) => Lookup::Unknown("simulator state poisoned".into()),
        }
    }

    fn line_type(&self, _number: &str) -> Result<String, String> {
        Ok("mobile".into())
    }

    fn place_call(&self, from: &str, to: &str, say: &str) -> Result<String, SendError> {
        let sid = new_sid().replacen("SM", "CA", 1);
        tracing::info!(to = %mask(to), %from, %sid, %say, "simulator: alert call placed");
        Ok(sid)
    }

    fn verify(&self, req: &Request<'_>) -> Result<(), Refused> {
        twilio::verify_request(&self.token, req)
    }

    fn parse(&self, req: &Request<'_>) -> Result<Parsed, super::ParseError> {
        twilio::parse_request(req)
    }

    fn reply(&self, reply: &Reply<'_>) -> Answer {
        twilio::render_reply(&self.hooks, reply)
    }

    fn probe(&self, url: &str) -> Option<super::Probe> {
        Some(super::Probe {
            content_type: "application/x-www-form-urlencoded",
            headers: vec![(
                twilio::SIGNATURE_HEADER.to_string(),
                twilio::signature(&self.token, url, &[]),
            )],
            body: String::new(),
        })
    }

    fn connect(&self) -> Connect {
        Connect {
            instructions: "The built-in simulator needs nothing connected: play a missed call on the Simulator page. It posts Twilio's webhooks to:",
            urls: twilio::call_and_text_hooks(&self.hooks),
        }
    }
}
