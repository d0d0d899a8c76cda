//! Telnyx, as its documentation and SDKs define it: webhooks signed with Ed25519 over
//! `"{telnyx-timestamp}|{raw body}"` (timestamps more than 5 minutes off refused), calls either through
//! TeXML (Twilio-like form callbacks and XML answers, `<Dial timeout>` at most 120 s) or reported by Call
//! Control `call.hangup` events, and texts through the Messaging API v2 (`POST /v2/messages`, Bearer API key;
//! `message.received`, `message.sent` and `message.finalized` events; errors as `errors[]` with string
//! codes). Webhooks come to `{public_url}/hooks/{account}/{hook}`.

use super::{
    hook_urls, twilio, Accepted, Addressed, Answer, Connect, Event, Lookup, OutgoingSms,
    ParseError, Parsed, Provider, Refused, Reply, Request, SendError,
};
use crate::clock::Millis;
use crate::config::{Caps, KindRules, ProviderConfig, SettingSpec, SettingType};
use crate::model::{
    AnsweredBy, CallEnd, CallReport, CallReportKind, CallerId, DeliveryReceipt, Direction,
    FailReason, Failure, InboundText,
};
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use std::time::Duration;

/// The header carrying the Ed25519 signature (base64).
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// The header carrying the time the webhook was signed (unix seconds).
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// TeXML's longest `<Dial timeout>`.
const MAX_RING_SECS: u64 = 120;

/// `kind = "telnyx"`.
pub const KIND: super::Kind = super::Kind {
    rules: KindRules {
        name: "telnyx",
        settings: &[
            SettingSpec {
                key: "api_key",
                ty: SettingType::Secret,
                required: Some("an API key from the Telnyx portal"),
            },
            SettingSpec {
                key: "public_key",
                ty: SettingType::Text,
                required: Some(
                    "the account's public key (Portal, Keys & Credentials), to check webhook signatures",
                ),
            },
            SettingSpec {
                key: "messaging_profile_id",
                ty: SettingType::Text,
                required: None,
            },
            SettingSpec {
                key: "api_base",
                ty: SettingType::Url,
                required: None,
            },
        ],
        caps: |_| Caps {
            calls_back: true,
            ..Caps::default()
        },
        check: |config| match config.text("public_key") {
            Some(k) if public_key(k).is_none() => vec![(
                "public_key",
                "is not a base64 Ed25519 public key (32 bytes), as the Telnyx portal shows it".into(),
            )],
            _ => vec![],
        },
    },
    build: |config, ctx| std::sync::Arc::new(Telnyx::new(config, ctx.public_url, ctx.name)),
};

/// An Ed25519 public key written in base64, as the portal shows it.
fn public_key(base64: &str) -> Option<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()
}

/// A Telnyx account.
pub struct Telnyx {
    api_key: String,
    public_key: Option<VerifyingKey>,
    messaging_profile_id: Option<String>,
    api_base: String,
    hooks: String,
    agent: ureq::Agent,
}

impl Telnyx {
    /// Builds the account from its config; its webhooks come to `{public_url}/hooks/{name}`.
    pub fn new(config: &ProviderConfig, public_url: &str, name: &str) -> Self {
        Self {
            api_key: config.secret("api_key").unwrap_or_default().to_string(),
            public_key: config.text("public_key").and_then(public_key),
            messaging_profile_id: config.text("messaging_profile_id").map(str::to_string),
            api_base: config.api_base_or("https://api.telnyx.com"),
            hooks: format!("{public_url}/hooks/{name}"),
            agent: super::agent(config),
        }
    }
}

/// Whether `signature` (base64) is `key`'s Ed25519 signature of `"{timestamp}|{body}"`, made within 5
/// minutes of `now` (unix seconds).
pub fn verify_at(
    key: &VerifyingKey,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> bool {
    let fresh = super::fresh(timestamp, now);
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.trim().as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    fresh && key.verify(&message, &sig).is_ok()
}

/// A Call Control `hangup_cause` in the domain's words.
pub fn hangup_end(cause: &str) -> CallEnd {
    match cause {
        "normal_clearing" | "time_limit" => CallEnd::Completed,
        "originator_cancel" => CallEnd::Canceled,
        "timeout" | "no_answer" => CallEnd::NoAnswer,
        "user_busy" => CallEnd::Busy,
        // call_rejected, not_found, unspecified, and anything new.
        _ => CallEnd::Failed,
    }
}

/// A `to[].status` of an outgoing message in the domain's words; values Telnyx adds later are kept as sent
/// (they rank as "queued").
pub fn delivery_state(status: &str) -> String {
    match status {
        "queued" | "sending" => "queued",
        "sent" | "delivery_unconfirmed" => "sent",
        "delivered" | "webhook_delivered" => "delivered",
        "delivery_failed" => "undelivered",
        "sending_failed" | "expired" => "failed",
        other => other,
    }
    .to_string()
}

/// What a Telnyx error code means for the recipient.
pub fn fail_reason(code: &str) -> FailReason {
    match code {
        // Blocked due to STOP message.
        "40300" => FailReason::OptedOut,
        // Destination is a landline or non-routable number.
        "40001" => FailReason::NotMobile,
        // Invalid phone number; not E.164; invalid destination.
        "10002" | "10016" | "40012" => FailReason::InvalidNumber,
        // Blocked as spam.
        "40002" | "40003" => FailReason::Blocked,
        _ => FailReason::Other,
    }
}

/// The first of an `errors[]` array: its code and what it says.
fn first_error(value: &serde_json::Value) -> (Option<String>, Option<String>) {
    let Some(first) = value.get("errors").and_then(|e| e.get(0)) else {
        return (None, None);
    };
    let code = match first.get("code") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let text = ["detail", "title"]
        .iter()
        .find_map(|k| first.get(k).and_then(serde_json::Value::as_str))
        .map(str::to_string);
    (code, text)
}

fn failure_of(code: Option<String>) -> Failure {
    Failure {
        reason: code.as_deref().map_or(FailReason::Other, fail_reason),
        code,
    }
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

fn seconds_between(start: Option<&str>, end: Option<&str>) -> Option<u64> {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    let (a, b) = (parse(start?)?, parse(end?)?);
    u64::try_from((b - a).num_seconds()).ok()
}

/// Reads a Telnyx v2 JSON webhook (`{"data": {"event_type", "id", "occurred_at", "payload"}}`).
pub fn parse_event(body: &[u8]) -> Result<Parsed, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ParseError::Malformed(format!("the body is not JSON: {e}")))?;
    let data = value
        .get("data")
        .ok_or_else(|| ParseError::Malformed("missing data".into()))?;
    let event_type = text(data, "event_type")
        .ok_or_else(|| ParseError::Malformed("missing data.event_type".into()))?;
    let id = text(data, "id").ok_or_else(|| ParseError::Malformed("missing data.id".into()))?;
    let empty = serde_json::Value::Null;
    let payload = data.get("payload").unwrap_or(&empty);
    let required = |key: &str| {
        text(payload, key)
            .ok_or_else(|| ParseError::Malformed(format!("missing data.payload.{key}")))
    };
    let (event, addressed) = match event_type.as_str() {
        "call.hangup" => {
            let from = text(payload, "from").unwrap_or_default();
            let to = required("to")?;
            let cause = text(payload, "hangup_cause").unwrap_or_default();
            // Each leg of a session hangs up on its own: the leg is the call. The payload does not say
            // which way it went; the numbers do (see `Addressed::Call`).
            let report = CallReport {
                call_sid: text(payload, "call_leg_id")
                    .or_else(|| text(payload, "call_control_id"))
                    .ok_or_else(|| {
                        ParseError::Malformed("missing data.payload.call_leg_id".into())
                    })?,
                from: from.clone(),
                to: to.clone(),
                direction: Direction::Inbound,
                caller_id: CallerId::Unchecked,
                answered_by: AnsweredBy::Unknown,
                kind: CallReportKind::Ended {
                    end: hangup_end(&cause),
                    talk_secs: None,
                    caller_secs: seconds_between(
                        text(payload, "start_time").as_deref(),
                        text(data, "occurred_at").as_deref(),
                    ),
                },
            };
            (Event::Call(report), Addressed::Call { from, to })
        }
        "message.received" => {
            let from = payload
                .get("from")
                .and_then(|f| text(f, "phone_number"))
                .ok_or_else(|| {
                    ParseError::Malformed("missing data.payload.from.phone_number".into())
                })?;
            let to = payload
                .get("to")
                .and_then(|t| t.get(0))
                .and_then(|t| text(t, "phone_number"))
                .ok_or_else(|| {
                    ParseError::Malformed("missing data.payload.to[0].phone_number".into())
                })?;
            let message = InboundText {
                message_sid: required("id")?,
                from,
                to: to.clone(),
                body: text(payload, "text").unwrap_or_default(),
                opt_out: None,
            };
            (
                Event::Text(message),
                Addressed::Number {
                    number: to,
                    or: None,
                },
            )
        }
        "message.sent" | "message.finalized" => {
            let status = payload
                .get("to")
                .and_then(|t| t.get(0))
                .and_then(|t| text(t, "status"))
                .ok_or_else(|| ParseError::Malformed("missing data.payload.to[0].status".into()))?;
            let state = delivery_state(&status);
            let (code, _) = first_error(payload);
            let failed = matches!(state.as_str(), "failed" | "undelivered");
            let receipt = DeliveryReceipt {
                message_sid: required("id")?,
                status: state,
                failure: (failed || code.is_some()).then(|| failure_of(code)),
            };
            let from = payload
                .get("from")
                .and_then(|f| text(f, "phone_number"))
                .unwrap_or_default();
            (
                Event::Receipt(receipt),
                Addressed::Number {
                    number: from,
                    or: None,
                },
            )
        }
        _ => (Event::Ignored, Addressed::Nobody),
    };
    Ok(Parsed {
        event,
        addressed,
        idempotency_key: Some(id),
    })
}

fn classify_status(status: u16, body: &str, retry_after: Option<&str>) -> SendError {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let (code, detail) = first_error(&value);
    let message = format!(
        "HTTP {status}: {}",
        detail.unwrap_or_else(|| format!("HTTP {status}"))
    );
    if status == 429 || status >= 500 {
        SendError::Retryable {
            message,
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        }
    } else {
        SendError::Rejected {
            failure: failure_of(code),
            message,
        }
    }
}

impl Provider for Telnyx {
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError> {
        let mut body = serde_json::json!({ "from": sms.from, "to": sms.to, "text": sms.body });
        if let Some(profile) = &self.messaging_profile_id {
            body["messaging_profile_id"] = serde_json::Value::String(profile.clone());
        }
        let result = self
            .agent
            .post(&format!("{}/v2/messages", self.api_base))
            .set("Authorization", &format!("Bearer {}", self.api_key))
            .send_json(body);
        match result {
            Ok(resp) => {
                let value: serde_json::Value =
                    resp.into_json().map_err(|e| SendError::Ambiguous {
                        message: format!("unexpected answer from Telnyx: {e}"),
                    })?;
                let data = value.get("data").unwrap_or(&value);
                let id = text(data, "id").ok_or_else(|| SendError::Ambiguous {
                    message: "Telnyx's answer has no message id".into(),
                })?;
                let status = data
                    .get("to")
                    .and_then(|t| t.get(0))
                    .and_then(|t| text(t, "status"))
                    .map_or_else(|| "queued".to_string(), |s| delivery_state(&s));
                Ok(Accepted { sid: id, status })
            }
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp.header("Retry-After").map(str::to_string);
                let body = resp.into_string().unwrap_or_default();
                Err(classify_status(code, &body, retry_after.as_deref()))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(SendError::transport(&t, "Telnyx did not answer"))
            }
        }
    }

    fn find_sent(&self, _sms: &OutgoingSms, _since: Millis) -> Lookup {
        // The Messaging API finds a message by its id only, which an unanswered send never got.
        Lookup::Unknown("Telnyx cannot list sent messages by recipient".into())
    }

    fn verify(&self, req: &Request<'_>) -> Result<(), Refused> {
        if !(req.is_json() || req.is_form()) {
            return Err(Refused::Unsupported(
                "expected Content-Type application/json (or a TeXML form callback)",
            ));
        }
        let (Some(ts), Some(sig)) = (req.header(TIMESTAMP_HEADER), req.header(SIGNATURE_HEADER))
        else {
            return Err(Refused::Forbidden(
                "missing telnyx-signature-ed25519 or telnyx-timestamp",
            ));
        };
        match &self.public_key {
            Some(key) if verify_at(key, ts, req.body, sig, super::unix_now()) => Ok(()),
            _ => Err(Refused::Forbidden("invalid telnyx-signature-ed25519")),
        }
    }

    fn parse(&self, req: &Request<'_>) -> Result<Parsed, ParseError> {
        // TeXML's callbacks are Twilio's, form-encoded; everything else is a JSON event. Telnyx signs the
        // body but not the URL, so no hook that trusts its query string (call screening) is taken.
        if req.is_form() {
            if matches!(req.hook, "screen" | "screen-accept") {
                return Err(ParseError::NoSuchHook(req.hook.to_string()));
            }
            twilio::parse_request(req)
        } else {
            parse_event(req.body)
        }
    }

    fn reply(&self, reply: &Reply<'_>) -> Answer {
        let capped = match *reply {
            Reply::Forward {
                numbers, ring_secs, ..
            } => Reply::Forward {
                numbers,
                ring_secs: ring_secs.min(MAX_RING_SECS),
                screen: None,
                machine_detection: false,
            },
            other => other,
        };
        twilio::render_reply(&self.hooks, &capped)
    }

    fn line_type(&self, _number: &str) -> Result<String, String> {
        Err("line type lookup is a Twilio feature".into())
    }

    fn place_call(&self, _from: &str, _to: &str, _say: &str) -> Result<String, SendError> {
        Err(SendError::unsupported(
            "alert calls through Telnyx are not supported; staff are texted",
        ))
    }

    fn setup(&self) -> Option<&dyn super::NumberSetup> {
        Some(self)
    }

    fn explain(&self, code: &str) -> Option<&'static str> {
        Some(match code {
            "40300" => "the recipient replied STOP to this number; they must text START first",
            "40001" => "a landline or a number that cannot take texts",
            "40012" | "10002" | "10016" => "the number is not a valid phone number",
            "40008" => "undeliverable",
            "40002" | "40003" => {
                "the carrier blocked it as spam: register the number's 10DLC campaign"
            }
            "40005" | "40014" => "it expired before the carrier took it",
            _ => return None,
        })
    }

    fn connect(&self) -> Connect {
        Connect {
            instructions: "In the Telnyx portal: a TeXML application's Voice URL and Status Callback (HTTP POST), or a Call Control application's webhook URL; and the messaging profile's webhook URL (API v2):",
            urls: hook_urls(
                &self.hooks,
                &[
                    ("TeXML Voice URL", "voice"),
                    ("TeXML Status Callback", "call-status"),
                    ("Call Control and messaging webhooks", "events"),
                ],
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Number set-up (PROVIDERS-MORE.md §2.5): the number's TeXML application takes its calls, its messaging
// profile's webhook its texts. `connect` points those at this server; it does not create or reassign them.

impl Telnyx {
    fn refused(status: u16, body: &str) -> super::SetupError {
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let (code, detail) = first_error(&value);
        let what = detail.or(code).unwrap_or_else(|| format!("HTTP {status}"));
        super::SetupError::Refused(match status {
            401 | 403 => format!(
                "Telnyx refused the API key (HTTP {status}: {what}): check api_key in textback.toml"
            ),
            _ => format!("Telnyx answered HTTP {status}: {what}"),
        })
    }

    fn call_api(
        &self,
        req: ureq::Request,
        body: Option<serde_json::Value>,
    ) -> Result<(serde_json::Value, Option<std::time::SystemTime>), super::SetupError> {
        let req = req.set("Authorization", &format!("Bearer {}", self.api_key));
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let date = resp
                    .header("Date")
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .map(std::time::SystemTime::from);
                let value = resp.into_json().map_err(|e| {
                    super::SetupError::Unreachable(format!("Telnyx answered nonsense: {e}"))
                })?;
                Ok((value, date))
            }
            Err(ureq::Error::Status(status, resp)) => Err(Self::refused(
                status,
                &resp.into_string().unwrap_or_default(),
            )),
            Err(ureq::Error::Transport(t)) => Err(super::SetupError::Unreachable(format!(
                "cannot reach Telnyx: {t}"
            ))),
        }
    }

    fn get(&self, path: &str) -> Result<serde_json::Value, super::SetupError> {
        let url = format!("{}/v2/{path}", self.api_base);
        Ok(self.call_api(self.agent.get(&url), None)?.0)
    }

    /// The object of `path`'s answer, or `None` when Telnyx has no such thing.
    fn object(&self, path: &str) -> Result<Option<serde_json::Value>, super::SetupError> {
        match self.get(path) {
            Ok(v) => Ok(v.get("data").cloned()),
            Err(super::SetupError::Refused(why)) if why.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl super::NumberSetup for Telnyx {
    fn account(&self) -> Result<Option<std::time::SystemTime>, super::SetupError> {
        let url = format!("{}/v2/phone_numbers?page[size]=1", self.api_base);
        Ok(self.call_api(self.agent.get(&url), None)?.1)
    }

    fn plan(
        &self,
        number: &str,
        wants: super::Wants,
        managed: &[String],
    ) -> Result<super::NumberPlan, super::SetupError> {
        // Telnyx's filter takes digits only: anything else matches nothing.
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        let list = self.get(&format!("phone_numbers?filter%5Bphone_number%5D={digits}"))?;
        let found = list
            .get("data")
            .and_then(serde_json::Value::as_array)
            .and_then(|d| d.iter().find(|n| text(n, "phone_number").as_deref() == Some(number)))
            .cloned()
            .ok_or_else(|| {
                super::SetupError::Refused(format!(
                    "{number} is not a number of this Telnyx account: buy or port it, or correct `numbers` in textback.toml"
                ))
            })?;
        let id = text(&found, "id").unwrap_or_default();
        let mut changes = Vec::new();
        let mut blockers = Vec::new();
        // The application and the profile serve every number assigned to them: changing one for a number
        // textback does not answer for would take that number's calls or texts too.
        let others = |filter: &str, value: &str| -> Result<Vec<String>, super::SetupError> {
            let list = self.get(&format!(
                "phone_numbers?filter%5B{filter}%5D={value}&page%5Bsize%5D=250"
            ))?;
            Ok(list
                .get("data")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| text(n, "phone_number"))
                .filter(|n| !managed.contains(n))
                .collect())
        };
        let mut compare =
            |target: &str, obj: &serde_json::Value, field: &'static str, wanted: String| {
                let now = text(obj, field).unwrap_or_default();
                let same = if field.ends_with("_method") {
                    now.eq_ignore_ascii_case(&wanted)
                } else {
                    now == wanted
                };
                if !same {
                    changes.push(super::Change {
                        target: target.to_string(),
                        field,
                        now,
                        wanted,
                    });
                }
            };
        if wants.calls {
            match text(&found, "connection_id").filter(|c| !c.is_empty()) {
                None => blockers.push(format!(
                    "it has no voice connection: create a TeXML application with Voice URL {}/voice and assign the number to it",
                    self.hooks
                )),
                Some(app) => match self.object(&format!("texml_applications/{app}"))? {
                    Some(texml) => {
                        let shared = others("connection_id", &app)?;
                        if shared.is_empty() {
                            compare(&app, &texml, "voice_url", format!("{}/voice", self.hooks));
                            compare(&app, &texml, "voice_method", "post".into());
                            compare(&app, &texml, "status_callback", format!("{}/call-status", self.hooks));
                            compare(&app, &texml, "status_callback_method", "post".into());
                        } else {
                            blockers.push(format!(
                                "its TeXML application {app} also takes the calls of {}, which textback does not answer for: give this number a TeXML application of its own",
                                shared.join(", ")
                            ));
                        }
                    }
                    None => blockers.push(format!(
                        "its calls go to connection {app}, which is not a TeXML application: set that connection's webhook URL (API v2) to {}/events by hand for Call Control reports, or assign the number to a TeXML application",
                        self.hooks
                    )),
                },
            }
        }
        if wants.texts {
            match text(&found, "messaging_profile_id").filter(|p| !p.is_empty()) {
                None => blockers.push(
                    "it has no messaging profile: assign one in the portal (Messaging), then run connect again".into(),
                ),
                Some(profile) => match self.object(&format!("messaging_profiles/{profile}"))? {
                    Some(p) => {
                        let shared = others("messaging_profile_id", &profile)?;
                        if shared.is_empty() {
                            compare(&profile, &p, "webhook_url", format!("{}/events", self.hooks));
                            compare(&profile, &p, "webhook_api_version", "2".into());
                        } else {
                            blockers.push(format!(
                                "its messaging profile {profile} also carries the texts of {}, which textback does not answer for: give this number a messaging profile of its own",
                                shared.join(", ")
                            ));
                        }
                    }
                    None => blockers.push(format!("its messaging profile {profile} cannot be read")),
                },
            }
        }
        Ok(super::NumberPlan {
            number: number.to_string(),
            id,
            changes,
            blockers,
        })
    }

    fn apply(&self, plan: &super::NumberPlan) -> Result<(), super::SetupError> {
        if !plan.blockers.is_empty() {
            return Err(super::SetupError::Refused(plan.blockers.join("; ")));
        }
        let mut targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
        targets.dedup();
        for target in targets {
            let mut body = serde_json::Map::new();
            let mut profile = false;
            for c in plan.changes.iter().filter(|c| c.target == target) {
                profile |= c.field.starts_with("webhook_");
                body.insert(
                    c.field.to_string(),
                    serde_json::Value::String(c.wanted.clone()),
                );
            }
            let kind = if profile {
                "messaging_profiles"
            } else {
                "texml_applications"
            };
            let url = format!("{}/v2/{kind}/{target}", self.api_base);
            self.call_api(
                self.agent.request("PATCH", &url),
                Some(serde_json::Value::Object(body)),
            )?;
        }
        Ok(())
    }

    fn a2p(&self, number: &str) -> Vec<super::Check> {
        if !number.starts_with("+1") {
            return vec![super::Check::ok(format!(
                "{number}: A2P 10DLC registration applies to US numbers only"
            ))];
        }
        vec![super::Check::warn(
            format!("{number}: 10DLC registration is not checked from here for Telnyx"),
            "make sure the number's messaging profile is in a registered 10DLC campaign (portal: Messaging, 10DLC)",
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROVIDERS.md §6.2's deterministic vector (RFC 8032 test key 1), not an official Telnyx one.
    const KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const BODY: &str = r#"{"data":{"event_type":"call.hangup","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2023-11-14T22:13:20.000000Z","payload":{"call_control_id":"v3:test","call_leg_id":"428c31b6-7af4-4bcb-b7f5-5013ef9657c1","call_session_id":"428c31b6-abf3-3bc1-b7f4-5013ef9657c1","from":"+15551230001","to":"+15559870002","hangup_cause":"timeout","hangup_source":"unknown","sip_hangup_cause":"unspecified","state":"hangup"},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://example.com/telnyx"}}"#;
    const SIG: &str =
        "NRn2YMdscRythlkYXQqemaQvO0tOmXKQKbIZVCBvdsisIpUcgIP7kUt4M3uUZHq4gbUbV/nTnj70LvC69/zrBg==";

    fn key() -> VerifyingKey {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        VerifyingKey::from_bytes(&bytes.try_into().unwrap()).unwrap()
    }

    #[test]
    fn ed25519_signatures_over_timestamp_and_body() {
        assert_eq!(BODY.len(), 505);
        let cases: &[(&str, &str, &str, i64, bool)] = &[
            ("1700000000", BODY, SIG, 1_700_000_000, true),
            ("1700000000", BODY, SIG, 1_700_000_299, true),
            ("1700000000", BODY, SIG, 1_700_000_301, false),
            ("1700000001", BODY, SIG, 1_700_000_001, false),
            (
                "1700000000",
                &BODY.replace("timeout", "no_answer"),
                SIG,
                1_700_000_000,
                false,
            ),
            ("1700000000", BODY, "not base64!", 1_700_000_000, false),
            ("soon", BODY, SIG, 1_700_000_000, false),
        ];
        for (ts, body, sig, now, want) in cases {
            assert_eq!(
                verify_at(&key(), ts, body.as_bytes(), sig, *now),
                *want,
                "{ts} {now}"
            );
        }
    }

    #[test]
    fn telnyx_values_map_into_the_domain() {
        let causes: &[(&str, CallEnd)] = &[
            ("normal_clearing", CallEnd::Completed),
            ("originator_cancel", CallEnd::Canceled),
            ("timeout", CallEnd::NoAnswer),
            ("no_answer", CallEnd::NoAnswer),
            ("user_busy", CallEnd::Busy),
            ("call_rejected", CallEnd::Failed),
            ("not_found", CallEnd::Failed),
            ("unspecified", CallEnd::Failed),
        ];
        for (cause, want) in causes {
            assert_eq!(hangup_end(cause), *want, "{cause}");
        }
        let states: &[(&str, &str)] = &[
            ("queued", "queued"),
            ("sending", "queued"),
            ("sent", "sent"),
            ("delivery_unconfirmed", "sent"),
            ("delivered", "delivered"),
            ("delivery_failed", "undelivered"),
            ("sending_failed", "failed"),
            ("expired", "failed"),
            ("something_new", "something_new"),
        ];
        for (status, want) in states {
            assert_eq!(delivery_state(status), *want, "{status}");
        }
        let codes: &[(&str, FailReason)] = &[
            ("40300", FailReason::OptedOut),
            ("40001", FailReason::NotMobile),
            ("10002", FailReason::InvalidNumber),
            ("40012", FailReason::InvalidNumber),
            ("40003", FailReason::Blocked),
            ("40008", FailReason::Other),
        ];
        for (code, want) in codes {
            assert_eq!(fail_reason(code), *want, "{code}");
        }
    }

    #[test]
    fn reads_call_control_hangups_and_messaging_events() {
        let p = parse_event(BODY.as_bytes()).unwrap();
        assert_eq!(
            p.idempotency_key.as_deref(),
            Some("0ccc7b54-4df3-4bca-a65a-3da1ecc777f0")
        );
        let Event::Call(call) = p.event else {
            panic!("{p:?}")
        };
        assert_eq!(call.from, "+15551230001");
        assert_eq!(
            call.kind,
            CallReportKind::Ended {
                end: CallEnd::NoAnswer,
                talk_secs: None,
                caller_secs: None
            }
        );
        let received = br#"{"data":{"event_type":"message.received","id":"e1","payload":{"id":"m1","text":"STOP","from":{"phone_number":"+15551230001"},"to":[{"phone_number":"+15559870002","status":"webhook_delivered"}]}}}"#;
        let p = parse_event(received).unwrap();
        assert!(
            matches!(p.event, Event::Text(ref t) if t.body == "STOP" && t.from == "+15551230001")
        );
        let finalized = br#"{"data":{"event_type":"message.finalized","id":"e2","payload":{"id":"m2","from":{"phone_number":"+15559870002"},"to":[{"phone_number":"+15551230001","status":"delivery_failed"}],"errors":[{"code":"40001","title":"Not routable"}]}}}"#;
        let p = parse_event(finalized).unwrap();
        let Event::Receipt(r) = p.event else { panic!() };
        assert_eq!(r.status, "undelivered");
        assert_eq!(r.failure.unwrap().reason, FailReason::NotMobile);
        let other = br#"{"data":{"event_type":"call.answered","id":"e3","payload":{}}}"#;
        assert_eq!(parse_event(other).unwrap().event, Event::Ignored);
        assert!(parse_event(b"{}").is_err());
    }

    #[test]
    fn classifies_errors() {
        let e = classify_status(
            409,
            r#"{"errors":[{"code":"40300","title":"Blocked due to STOP message","detail":"Messages cannot be sent"}]}"#,
            None,
        );
        assert!(
            matches!(
                e,
                SendError::Rejected {
                    failure: Failure {
                        reason: FailReason::OptedOut,
                        ..
                    },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(matches!(
            classify_status(503, "", Some("3")),
            SendError::Retryable { .. }
        ));
    }
}
