//! The built-in simulator: a provider account that needs no signup. It speaks Twilio's webhook format
//! (so `textback simulate` and the demo exercise the real webhook path, signatures included), and its
//! "sends" are printed to the log instead of leaving the machine.

use super::{
    twilio, Accepted, Answer, Connect, Lookup, OutgoingSms, Parsed, Provider, Refused, Reply,
    Request, SendError,
};
use crate::clock::Millis;
use crate::config::ProviderConfig;
use crate::model::mask;
use std::sync::Mutex;

/// Where the installation keeps the key its simulator signs webhooks with (made at random on the first
/// start, so no two installations share it).
pub const TOKEN_KEY: &str = "simulator_token";

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
            token: config
                .auth_token
                .as_ref()
                .map_or(default_token, |t| t.expose())
                .to_string(),
            sent: Mutex::new(Vec::new()),
        }
    }
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
        let accepted = Accepted {
            sid: new_sid(),
            status: "sent".into(),
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

    fn connect(&self) -> Connect {
        Connect {
            instructions: "The built-in simulator needs nothing connected: play a missed call on the Simulator page. It posts Twilio's webhooks to:",
            urls: twilio::call_and_text_hooks(&self.hooks),
        }
    }
}
