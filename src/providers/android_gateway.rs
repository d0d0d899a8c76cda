//! An Android phone running capcom6's open-source "SMS Gateway for Android" (SMSGate): texts go out through
//! the phone's SIM, in the app's local-server mode (`http://<phone's LAN address>:8080`). (Its cloud mode has
//! the same API, but there the signing key cannot be set, and the app's own is too short to trust.)
//!
//! - send: `POST {url}/messages` with HTTP Basic auth and
//!   `{"id", "textMessage": {"text"}, "phoneNumbers": [to], "withDeliveryReport": true}`; 202 with the
//!   message's state. The `id` is ours and the same on every attempt of one text, so a repeat is refused
//!   with 409 instead of sent twice;
//! - state: `GET {url}/messages/{id}` (404 when the phone never took it), `state` one of `Pending`,
//!   `Processed`, `Sent`, `Delivered`, `Failed` (and `Cancelling`, `Cancelled`);
//! - webhooks, registered on the phone for `sms:received`, `sms:sent`, `sms:delivered` and `sms:failed` at
//!   `{public_url}/hooks/{account}/events`: JSON `{"id", "webhookId", "event", "deviceId", "payload"}`,
//!   signed with `X-Signature` = lowercase hex HMAC-SHA256(signing key, raw body followed by `X-Timestamp`).
//!   The app sets no window for the timestamp; five minutes either way is taken here.
//!
//! A phone is not a carrier: it does not answer STOP itself, and it only texts (calls are reported by
//! another account). It serves one business unless its webhooks name the number they came to.

use super::{
    hook_urls, Accepted, Addressed, Answer, Connect, Event, Lookup, OutgoingSms, ParseError,
    Parsed, Provider, Refused, Reply, Request, SendError,
};
use crate::clock::Millis;
use crate::config::{Caps, KindRules, ProviderConfig, SettingSpec, SettingType};
use crate::model::{DeliveryReceipt, FailReason, Failure, InboundText};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Signature";
/// The header carrying the time of signing (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Timestamp";

/// `kind = "android-gateway"`: texts only, and answers no STOP itself.
pub const KIND: super::Kind = super::Kind {
    rules: KindRules {
        name: "android-gateway",
        settings: &[
            SettingSpec {
                key: "url",
                ty: SettingType::Url,
                required: Some(
                    "the phone's address as the app shows it, e.g. \"http://192.168.1.50:8080\"",
                ),
            },
            SettingSpec {
                key: "username",
                ty: SettingType::Text,
                required: Some("as the app shows it"),
            },
            SettingSpec {
                key: "password",
                ty: SettingType::Secret,
                required: Some("as the app shows it"),
            },
            SettingSpec {
                key: "signing_key",
                ty: SettingType::Secret,
                required: Some("the app's webhook signing key, so its webhooks can be checked"),
            },
        ],
        caps: |_| Caps {
            reports_calls: false,
            confirms_stop: false,
            ..Caps::default()
        },
        // The app makes up an 8-character key when none is set: too short to stand a guessing attack
        // on one captured webhook.
        check: |config| {
            if config.secret("signing_key").is_some_and(|k| k.len() < 16) {
                vec![(
                    "signing_key",
                    "must be at least 16 characters: set a long one in the app (the README shows how)"
                        .into(),
                )]
            } else {
                vec![]
            }
        },
    },
    build: |config, ctx| std::sync::Arc::new(AndroidGateway::new(config, ctx.public_url, ctx.name)),
};

/// A phone running the gateway app.
pub struct AndroidGateway {
    url: String,
    authorization: String,
    signing_key: String,
    hooks: String,
    agent: ureq::Agent,
}

impl AndroidGateway {
    /// Builds the account from its config; its webhooks come to `{public_url}/hooks/{name}/events`.
    pub fn new(config: &ProviderConfig, public_url: &str, name: &str) -> Self {
        let user = config.text("username").unwrap_or_default();
        let password = config.secret("password").unwrap_or_default();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            url: config
                .text("url")
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            authorization: format!("Basic {basic}"),
            signing_key: config.secret("signing_key").unwrap_or_default().to_string(),
            hooks: format!("{public_url}/hooks/{name}"),
            agent: super::agent(config),
        }
    }
}

/// The signature the app puts on `body` sent at `timestamp`.
pub fn signature(key: &str, body: &[u8], timestamp: &str) -> String {
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `sig` signs `body` at `timestamp` with `key`, within five minutes of `now` (unix seconds).
pub fn verify_at(key: &str, body: &[u8], timestamp: &str, sig: &str, now: i64) -> bool {
    let fresh = super::fresh(timestamp, now);
    let expected = signature(key, body, timestamp.trim());
    let given = sig.trim().to_ascii_lowercase();
    fresh && !key.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A message `state` in the domain's words.
pub fn delivery_state(state: &str) -> &'static str {
    match state {
        "Sent" => "sent",
        "Delivered" => "delivered",
        "Failed" | "Cancelled" => "failed",
        // Pending, Processed, Cancelling and anything new: not out yet.
        _ => "queued",
    }
}

/// What the app's reason for a failed text means for the recipient. The app checks numbers with
/// libphonenumber before sending and says so in these words; anything else (no signal, no credit, a
/// radio error) is not the recipient's fault.
pub fn fail_reason(reason: &str) -> FailReason {
    match reason.trim() {
        "Invalid phone number type" => FailReason::NotMobile,
        "Invalid phone number" => FailReason::InvalidNumber,
        _ => FailReason::Other,
    }
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// Reads a webhook: `{"id", "event", "payload"}`.
pub fn parse_event(body: &[u8]) -> Result<Parsed, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ParseError::Malformed(format!("the body is not JSON: {e}")))?;
    let id = text(&value, "id").ok_or_else(|| ParseError::Malformed("missing id".into()))?;
    let event =
        text(&value, "event").ok_or_else(|| ParseError::Malformed("missing event".into()))?;
    let empty = serde_json::Value::Null;
    let payload = value.get("payload").unwrap_or(&empty);
    let required = |key: &str| {
        text(payload, key).ok_or_else(|| ParseError::Malformed(format!("missing payload.{key}")))
    };
    // The phone rarely knows its own number: the account's business, or the number when it does.
    let addressed = |number: Option<String>| Addressed::Account { number };
    let (event, addressed) = match event.as_str() {
        "sms:received" => {
            let recipient = text(payload, "recipient");
            let text = InboundText {
                message_sid: required("messageId")?,
                from: text(payload, "sender")
                    .or_else(|| text(payload, "phoneNumber"))
                    .ok_or_else(|| ParseError::Malformed("missing payload.sender".into()))?,
                to: recipient.clone().unwrap_or_default(),
                body: required("message")?,
                opt_out: None,
            };
            (Event::Text(text), addressed(recipient))
        }
        "sms:sent" | "sms:delivered" | "sms:failed" => {
            let status = match event.as_str() {
                "sms:sent" => "sent",
                "sms:delivered" => "delivered",
                _ => "failed",
            };
            let failure = (status == "failed").then(|| {
                let reason = text(payload, "reason").unwrap_or_default();
                Failure {
                    reason: fail_reason(&reason),
                    code: None,
                }
            });
            let receipt = DeliveryReceipt {
                message_sid: required("messageId")?,
                status: status.into(),
                failure,
            };
            (Event::Receipt(receipt), addressed(text(payload, "sender")))
        }
        // system:ping, mms:*, sms:data-received and anything new.
        _ => (Event::Ignored, Addressed::Nobody),
    };
    Ok(Parsed {
        event,
        addressed,
        idempotency_key: Some(id),
    })
}

/// The app's error text: `{"message": "..."}`.
fn message_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| text(&v, "message"))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

fn classify_status(status: u16, body: &str) -> SendError {
    let message = format!("HTTP {status}: {}", message_of(body));
    match status {
        429 | 500.. => SendError::Retryable {
            message,
            retry_after: None,
        },
        // A wrong user name or password: nothing will go until the config is fixed, and a retry with the
        // same credentials would only lock the account out.
        _ => SendError::Rejected {
            failure: Failure {
                reason: FailReason::Other,
                code: Some(status.to_string()),
            },
            message,
        },
    }
}

impl AndroidGateway {
    fn accepted(id: &str, value: &serde_json::Value) -> Accepted {
        Accepted {
            sid: text(value, "id").unwrap_or_else(|| id.to_string()),
            status: delivery_state(&text(value, "state").unwrap_or_default()).into(),
        }
    }
}

impl Provider for AndroidGateway {
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError> {
        let body = serde_json::json!({
            "id": sms.key,
            "textMessage": { "text": sms.body },
            "phoneNumbers": [sms.to],
            "withDeliveryReport": true,
        });
        let result = self
            .agent
            .post(&format!("{}/messages", self.url))
            .set("Authorization", &self.authorization)
            .send_json(body);
        match result {
            Ok(resp) => {
                let value: serde_json::Value = resp.into_json().unwrap_or_default();
                Ok(Self::accepted(&sms.key, &value))
            }
            // The phone already has a message with this id: an earlier attempt got through.
            Err(ureq::Error::Status(409, _)) => Ok(Accepted {
                sid: sms.key.clone(),
                status: "queued".into(),
            }),
            Err(ureq::Error::Status(code, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                Err(classify_status(code, &body))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(SendError::transport(&t, "the phone did not answer"))
            }
        }
    }

    fn find_sent(&self, sms: &OutgoingSms, _since: Millis) -> Lookup {
        let result = self
            .agent
            .get(&format!("{}/messages/{}", self.url, sms.key))
            .set("Authorization", &self.authorization)
            .call();
        match result {
            Ok(resp) => match resp.into_json::<serde_json::Value>() {
                Ok(value) => Lookup::Sent(Self::accepted(&sms.key, &value)),
                Err(e) => Lookup::Unknown(format!("unexpected answer from the phone: {e}")),
            },
            Err(ureq::Error::Status(404, _)) => Lookup::NotSent,
            Err(ureq::Error::Status(code, _)) => {
                Lookup::Unknown(format!("the phone answered HTTP {code}"))
            }
            Err(ureq::Error::Transport(t)) => {
                Lookup::Unknown(format!("the phone did not answer: {}", t.kind()))
            }
        }
    }

    fn verify(&self, req: &Request<'_>) -> Result<(), Refused> {
        if !req.is_json() {
            return Err(Refused::Unsupported(
                "expected Content-Type application/json",
            ));
        }
        let (Some(ts), Some(sig)) = (req.header(TIMESTAMP_HEADER), req.header(SIGNATURE_HEADER))
        else {
            return Err(Refused::Forbidden("missing X-Signature or X-Timestamp"));
        };
        if verify_at(&self.signing_key, req.body, ts, sig, super::unix_now()) {
            Ok(())
        } else {
            Err(Refused::Forbidden("invalid X-Signature"))
        }
    }

    fn parse(&self, req: &Request<'_>) -> Result<Parsed, ParseError> {
        if req.hook != "events" {
            return Err(ParseError::NoSuchHook(req.hook.to_string()));
        }
        parse_event(req.body)
    }

    fn reply(&self, _reply: &Reply<'_>) -> Answer {
        super::json_ok()
    }

    fn line_type(&self, _number: &str) -> Result<String, String> {
        Err("a phone cannot look numbers up".into())
    }

    fn place_call(&self, _from: &str, _to: &str, _say: &str) -> Result<String, SendError> {
        Err(SendError::unsupported(
            "an android-gateway account only texts; staff are texted instead",
        ))
    }

    fn probe(&self, _url: &str) -> Option<super::Probe> {
        let body = "{}".to_string();
        let ts = super::unix_now().to_string();
        Some(super::Probe {
            content_type: "application/json",
            headers: vec![
                (TIMESTAMP_HEADER.into(), ts.clone()),
                (
                    SIGNATURE_HEADER.into(),
                    signature(&self.signing_key, body.as_bytes(), &ts),
                ),
            ],
            body,
        })
    }

    fn connect(&self) -> Connect {
        Connect {
            instructions: "In the SMS Gateway app, register this URL for each of the events sms:received, sms:sent, sms:delivered and sms:failed (the app only calls https:// URLs):",
            urls: hook_urls(&self.hooks, &[("Texts and delivery reports", "events")]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROVIDERS-MORE.md §3.5's self-computed vector (not an official one).
    const BODY: &str = r#"{"id":"evt1","webhookId":"wh1","event":"sms:received","deviceId":"dev1","payload":{"messageId":"m1","sender":"+15551230001","recipient":null,"simNumber":1,"message":"STOP","receivedAt":"2024-06-07T11:41:31.000+07:00","phoneNumber":"+15551230001"}}"#;

    #[test]
    fn signatures_are_hmac_sha256_over_body_then_timestamp() {
        assert_eq!(BODY.len(), 247);
        let sig = "5f3523215bc29697730ad9f579c5d3a1f746a956ddeb74e0d44c8f971c129781";
        assert_eq!(signature("k3yExample", BODY.as_bytes(), "1700000000"), sig);
        let cases: &[(&str, &str, &str, i64, bool)] = &[
            ("k3yExample", "1700000000", sig, 1_700_000_000, true),
            (
                "k3yExample",
                "1700000000",
                &sig.to_ascii_uppercase(),
                1_700_000_000,
                true,
            ),
            ("k3yExample", "1700000000", sig, 1_700_000_300, true),
            ("k3yExample", "1700000000", sig, 1_700_000_301, false),
            ("k3yExample", "1700000000", sig, 1_699_999_699, false),
            ("k3yExample", "1700000001", sig, 1_700_000_000, false),
            ("another", "1700000000", sig, 1_700_000_000, false),
            ("", "1700000000", sig, 1_700_000_000, false),
            ("k3yExample", "soon", sig, 1_700_000_000, false),
        ];
        for &(key, ts, s, now, ok) in cases {
            assert_eq!(
                verify_at(key, BODY.as_bytes(), ts, s, now),
                ok,
                "{key} {ts} {now}"
            );
        }
        let tampered = BODY.replace("STOP", "STAY");
        assert!(!verify_at(
            "k3yExample",
            tampered.as_bytes(),
            "1700000000",
            sig,
            1_700_000_000
        ));
    }

    #[test]
    fn gateway_values_map_into_the_domain() {
        let states = [
            ("Pending", "queued"),
            ("Processed", "queued"),
            ("Cancelling", "queued"),
            ("Sent", "sent"),
            ("Delivered", "delivered"),
            ("Failed", "failed"),
            ("Cancelled", "failed"),
            ("SomethingNew", "queued"),
        ];
        for (wire, domain) in states {
            assert_eq!(delivery_state(wire), domain, "{wire}");
        }
        let reasons = [
            ("Invalid phone number", FailReason::InvalidNumber),
            ("Invalid phone number type", FailReason::NotMobile),
            ("RESULT_ERROR_NO_SERVICE", FailReason::Other),
            ("", FailReason::Other),
        ];
        for (wire, domain) in reasons {
            assert_eq!(fail_reason(wire), domain, "{wire}");
        }
    }

    #[test]
    fn reads_texts_and_receipts() {
        let p = parse_event(BODY.as_bytes()).unwrap();
        assert_eq!(p.idempotency_key.as_deref(), Some("evt1"));
        assert_eq!(p.addressed, Addressed::Account { number: None });
        let Event::Text(t) = p.event else {
            panic!("{p:?}")
        };
        assert_eq!(
            (t.from.as_str(), t.body.as_str(), t.message_sid.as_str()),
            ("+15551230001", "STOP", "m1")
        );

        let failed = r#"{"id":"evt2","event":"sms:failed","payload":{"messageId":"textback-7-1","sender":"+16025550100","recipient":"+14805550101","failedAt":"2024-06-07T11:41:31.000+07:00","reason":"Invalid phone number type","phoneNumber":"+14805550101"}}"#;
        let p = parse_event(failed.as_bytes()).unwrap();
        assert_eq!(
            p.addressed,
            Addressed::Account {
                number: Some("+16025550100".into())
            }
        );
        assert_eq!(
            p.event,
            Event::Receipt(DeliveryReceipt {
                message_sid: "textback-7-1".into(),
                status: "failed".into(),
                failure: Some(Failure {
                    reason: FailReason::NotMobile,
                    code: None
                }),
            })
        );
        let ping = r#"{"id":"evt3","event":"system:ping","payload":{}}"#;
        assert_eq!(parse_event(ping.as_bytes()).unwrap().event, Event::Ignored);
        for bad in [
            r#"{"event":"sms:received"}"#,
            r#"{"id":"e","event":"sms:received","payload":{}}"#,
            "nope",
        ] {
            assert!(
                matches!(parse_event(bad.as_bytes()), Err(ParseError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(
            classify_status(503, ""),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            classify_status(429, ""),
            SendError::Retryable { .. }
        ));
        match classify_status(400, r#"{"message":"phoneNumbers is empty"}"#) {
            SendError::Rejected { message, .. } => {
                assert!(message.contains("phoneNumbers is empty"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_status(401, ""),
            SendError::Rejected { .. }
        ));
    }
}
