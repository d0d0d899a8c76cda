//! Any PBX or VoIP system that can call a URL when a call ends (Asterisk, FreePBX, FreeSWITCH/FusionPBX, a
//! 3CX CRM template, a script): `POST /hooks/{account}/call` with the call's outcome, as JSON or a form.
//! It only reports calls; a business that uses it texts through another account (`sms_provider`).
//!
//! A report carries `caller`, `called`, `status` and `call_id` (for idempotency), and may carry `duration`
//! (seconds the caller was on the line), `billsec` (seconds answered) and `direction` (`inbound` or
//! `outbound`). It is authenticated by `Authorization: Bearer <token>`, or by `X-Textback-Timestamp` (unix
//! seconds) and `X-Textback-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` with the account's
//! secret, within 5 minutes. Caller IDs from SIP are attacker-controlled: every field is checked strictly.

use super::{
    hook_urls, Accepted, Addressed, Answer, Connect, Event, Lookup, OutgoingSms, ParseError,
    Parsed, Provider, Refused, Reply, Request, SendError,
};
use crate::clock::Millis;
use crate::config::{Caps, KindRules, ProviderConfig, SettingSpec, SettingType};
use crate::model::{AnsweredBy, CallEnd, CallReport, CallReportKind, CallerId, Direction};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header a signed report carries its signature in.
pub const SIGNATURE_HEADER: &str = "X-Textback-Signature";
/// The header a signed report carries its time in (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Textback-Timestamp";

/// `kind = "pbx"`: reports calls, never texts.
pub const KIND: super::Kind = super::Kind {
    rules: KindRules {
        name: "pbx",
        settings: &[
            SettingSpec {
                key: "token",
                ty: SettingType::Secret,
                required: None,
            },
            SettingSpec {
                key: "secret",
                ty: SettingType::Secret,
                required: None,
            },
        ],
        caps: |_| Caps {
            texts: false,
            ..Caps::default()
        },
        check,
    },
    build: |config, ctx| std::sync::Arc::new(Pbx::new(config, ctx.public_url, ctx.name)),
};

/// A token or a secret, long enough to stand between the internet and the business's texts.
fn check(config: &ProviderConfig) -> Vec<(&'static str, String)> {
    let mut problems = vec![];
    if config.text("token").is_none() && config.text("secret").is_none() {
        problems.push((
            "token",
            "a pbx account needs a token (sent as Authorization: Bearer) or a secret (HMAC-SHA256 signatures), or both".into(),
        ));
    }
    for key in ["token", "secret"] {
        if config.secret(key).is_some_and(|s| s.len() < 16) {
            problems.push((
                key,
                "must be at least 16 characters: it is all that stands between the internet and your texts"
                    .into(),
            ));
        }
    }
    problems
}

/// A PBX account.
pub struct Pbx {
    token: Option<String>,
    secret: Option<String>,
    hooks: String,
}

impl Pbx {
    /// Builds the account from its config; its reports come to `{public_url}/hooks/{name}/call`.
    pub fn new(config: &ProviderConfig, public_url: &str, name: &str) -> Self {
        Self {
            token: config.secret("token").map(str::to_string),
            secret: config.secret("secret").map(str::to_string),
            hooks: format!("{public_url}/hooks/{name}"),
        }
    }
}

/// The signature a report with `body` sent at `timestamp` carries: `sha256=` and the hex HMAC-SHA256 of
/// `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// How a PBX says a call ended, in the domain's words: Asterisk's `DIALSTATUS`, FreeSWITCH's hangup causes
/// and dispositions, and 3CX's call types. Asterisk documents that any result but `ANSWER` means the call
/// was not answered, and FreeSWITCH reports a failed bridge with the cause's name, so any other word is a
/// failure to connect. `None` for a report that is not final (ringing) or not a word at all.
pub fn call_end(status: &str) -> Option<CallEnd> {
    let s = status.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    Some(match s.as_str() {
        "ANSWER" | "ANSWERED" | "SUCCESS" | "CALL_ACCEPTED" | "NORMAL_CLEARING" | "INBOUND"
        | "OUTBOUND" | "COMPLETED" => CallEnd::Completed,
        // Another phone took the call (a ring group, a pickup).
        "LOSE_RACE" | "PICKED_OFF" => CallEnd::Completed,
        "NOANSWER" | "NO_ANSWER" | "NO_USER_RESPONSE" | "TIMEOUT" | "NODIAL" | "MISSED"
        | "NOTANSWERED" | "NOT_ANSWERED" | "ALLOTTED_TIMEOUT" => CallEnd::NoAnswer,
        "BUSY" | "USER_BUSY" => CallEnd::Busy,
        "CANCEL" | "ORIGINATOR_CANCEL" | "CANCELED" | "CANCELLED" => CallEnd::Canceled,
        "RINGING" | "RING" | "EARLY" | "PROGRESS" | "IN_PROGRESS" | "INITIATED" | "QUEUED" => {
            return None
        }
        other
            if (1..=40).contains(&other.len())
                && other
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            CallEnd::Failed
        }
        _ => return None,
    })
}

/// `digits` as an E.164 number: 7 to 15 digits, not starting with 0.
fn e164(digits: &str) -> Option<String> {
    ((7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0'))
    .then(|| format!("+{digits}"))
}

/// The business number called, as a PBX sends it: E.164, or the same digits without `+`.
fn called_number(raw: &str) -> Option<String> {
    let raw = raw.trim();
    e164(raw.strip_prefix('+').unwrap_or(raw))
}

/// The caller's number as a PBX sends it, read in the country of the number called (`called`, E.164):
/// E.164; international with the country's exit code (`00`, `011` in North America) or with the calling
/// code but no `+`; or national (10 digits in North America, elsewhere with or without the trunk `0`).
/// Anything else (a SIP URI, a name, `anonymous`, a number too short) is not a number: never texted,
/// never guessed.
fn caller_number(raw: &str, called: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('+') {
        return e164(rest);
    }
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cc = crate::country::calling_code(called)?;
    if cc == "1" {
        return match raw.len() {
            10 if !raw.starts_with(['0', '1']) => e164(&format!("1{raw}")),
            11 if raw.starts_with('1') => e164(raw),
            _ => raw.strip_prefix("011").and_then(e164),
        };
    }
    if let Some(rest) = raw.strip_prefix("00") {
        return e164(rest);
    }
    if let Some(national) = raw.strip_prefix('0') {
        // Italy keeps the leading 0 of its national numbers after the calling code.
        return if cc == "39" {
            e164(&format!("{cc}{raw}"))
        } else {
            e164(&format!("{cc}{national}"))
        };
    }
    if raw.starts_with(cc) {
        return e164(raw);
    }
    e164(&format!("{cc}{raw}"))
}

/// A call id we store: up to 128 characters of letters, digits, spaces and `.-_:@+/` (enough for Asterisk's
/// UNIQUEID, FreeSWITCH's uuid, or a 3CX template's number and start time).
fn call_id(raw: &str) -> Result<String, ParseError> {
    let id = raw.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .-_:@+/".contains(&b));
    if ok {
        Ok(id.to_string())
    } else {
        Err(ParseError::Malformed(
            "call_id must be 1 to 128 letters, digits, spaces or .-_:@+/ (Asterisk's UNIQUEID, FreeSWITCH's uuid)".into(),
        ))
    }
}

fn seconds(fields: &[(String, String)], key: &str) -> Result<Option<u64>, ParseError> {
    match field(fields, key) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
            .map(|s| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = s as u64;
                Some(whole)
            })
            .ok_or_else(|| {
                ParseError::Malformed(format!("{key} must be a number of seconds, got {v:?}"))
            }),
    }
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The report's fields, from a JSON object (strings or numbers) or a form.
fn fields(req: &Request<'_>) -> Result<Vec<(String, String)>, ParseError> {
    if req.is_json() {
        let value: serde_json::Value = serde_json::from_slice(req.body)
            .map_err(|e| ParseError::Malformed(format!("the body is not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ParseError::Malformed("the body must be a JSON object".into()))?;
        Ok(object
            .iter()
            .filter_map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((k.clone(), text))
            })
            .collect())
    } else if req.is_form() {
        Ok(form_urlencoded::parse(req.body).into_owned().collect())
    } else {
        Err(ParseError::Unsupported(
            "expected Content-Type application/json or application/x-www-form-urlencoded".into(),
        ))
    }
}

/// Reads a report into the domain.
pub fn parse_report(req: &Request<'_>) -> Result<Parsed, ParseError> {
    if !matches!(req.hook, "call" | "missed-call") {
        return Err(ParseError::NoSuchHook(req.hook.to_string()));
    }
    let f = fields(req)?;
    let required = |key: &str| {
        field(&f, key).ok_or_else(|| ParseError::Malformed(format!("missing required field {key}")))
    };
    let id = call_id(required("call_id")?)?;
    // An empty status (a dialplan variable that was never set: Dial or bridge never ran, the caller only
    // heard a menu or voicemail) means nobody answered, like Asterisk's NODIAL.
    let status = match f.iter().find(|(k, _)| k == "status") {
        None => {
            return Err(ParseError::Malformed(
                "missing required field status".into(),
            ))
        }
        Some((_, v)) if v.trim().is_empty() => "NODIAL",
        Some((_, v)) => v.trim(),
    };
    let end = call_end(status).ok_or_else(|| {
        ParseError::Malformed(format!(
            "status {status:?} is not how a call ended: send the Dial outcome (ANSWER, NOANSWER, BUSY, CANCEL, CONGESTION, CHANUNAVAIL, a FreeSWITCH cause such as NO_ANSWER) once the call is over"
        ))
    })?;
    let called = called_number(required("called")?).ok_or_else(|| {
        ParseError::Malformed(
            "called must be the business number in E.164 form, e.g. +16025550100".into(),
        )
    })?;
    // A withheld or non-numeric caller ID (anonymous, a SIP URI) is kept as "anonymous": never texted.
    let caller = field(&f, "caller")
        .and_then(|raw| caller_number(raw, &called))
        .unwrap_or_else(|| "anonymous".into());
    let direction = match field(&f, "direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("inbound" | "in" | "incoming") => Direction::Inbound,
        Some("outbound" | "out" | "outgoing") => Direction::Outbound,
        Some(other) => {
            return Err(ParseError::Malformed(format!(
                "direction must be inbound or outbound, got {other:?}"
            )))
        }
    };
    // 3CX reports an outbound call with CallType=Outbound.
    let direction = if status.eq_ignore_ascii_case("outbound") {
        Direction::Outbound
    } else {
        direction
    };
    let talk_secs = seconds(&f, "billsec")?;
    let caller_secs = seconds(&f, "duration")?;
    // An inbound call is for the business whose number was called; an outbound one (the business
    // calling someone back) for the business whose number, or staff phone, called.
    let addressed = match direction {
        Direction::Inbound => Addressed::Number {
            number: called.clone(),
            or: None,
        },
        Direction::Outbound => Addressed::Number {
            number: caller.clone(),
            or: Some(caller.clone()),
        },
    };
    let report = CallReport {
        call_sid: id.clone(),
        from: caller,
        to: called,
        direction,
        caller_id: CallerId::Unchecked,
        answered_by: AnsweredBy::Unknown,
        kind: CallReportKind::Ended {
            end,
            talk_secs,
            caller_secs,
        },
    };
    Ok(Parsed {
        event: Event::Call(report),
        addressed,
        idempotency_key: Some(id),
    })
}

impl Pbx {
    fn signed(&self, req: &Request<'_>) -> bool {
        let (Some(secret), Some(ts), Some(sig)) = (
            self.secret.as_deref(),
            req.header(TIMESTAMP_HEADER),
            req.header(SIGNATURE_HEADER),
        ) else {
            return false;
        };
        let fresh = super::fresh(ts, super::unix_now());
        fresh
            && bool::from(
                signature(secret, ts.trim(), req.body)
                    .as_bytes()
                    .ct_eq(sig.trim().as_bytes()),
            )
    }

    fn bearer(&self, req: &Request<'_>) -> bool {
        let (Some(token), Some(given)) = (
            self.token.as_deref(),
            req.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer ")),
        ) else {
            return false;
        };
        bool::from(token.as_bytes().ct_eq(given.trim().as_bytes()))
    }
}

fn cannot(what: &str) -> SendError {
    SendError::unsupported(&format!(
        "a pbx account cannot {what}; set the business's sms_provider"
    ))
}

impl Provider for Pbx {
    fn send_sms(&self, _sms: &OutgoingSms) -> Result<Accepted, SendError> {
        Err(cannot("send texts"))
    }

    fn find_sent(&self, _sms: &OutgoingSms, _since: Millis) -> Lookup {
        Lookup::NotSent
    }

    fn verify(&self, req: &Request<'_>) -> Result<(), Refused> {
        if !(req.is_json() || req.is_form()) {
            return Err(Refused::Unsupported(
                "expected Content-Type application/json or application/x-www-form-urlencoded",
            ));
        }
        if self.bearer(req) || self.signed(req) {
            Ok(())
        } else {
            Err(Refused::Forbidden(
                "a valid Authorization: Bearer token or X-Textback-Signature is required",
            ))
        }
    }

    fn parse(&self, req: &Request<'_>) -> Result<Parsed, ParseError> {
        parse_report(req)
    }

    fn reply(&self, _reply: &Reply<'_>) -> Answer {
        super::json_ok()
    }

    fn line_type(&self, _number: &str) -> Result<String, String> {
        Err("a pbx account cannot look numbers up".into())
    }

    fn place_call(&self, _from: &str, _to: &str, _say: &str) -> Result<String, SendError> {
        Err(cannot("place calls"))
    }

    fn probe(&self, _url: &str) -> Option<super::Probe> {
        let body = "{}".to_string();
        // A signature expires in minutes; a bearer token is sent only when there is nothing else.
        let headers = match (&self.secret, &self.token) {
            (Some(secret), _) => {
                let ts = super::unix_now().to_string();
                vec![
                    (TIMESTAMP_HEADER.into(), ts.clone()),
                    (
                        SIGNATURE_HEADER.into(),
                        signature(secret, &ts, body.as_bytes()),
                    ),
                ]
            }
            (None, Some(token)) => vec![("Authorization".into(), format!("Bearer {token}"))],
            (None, None) => return None,
        };
        Some(super::Probe {
            content_type: "application/json",
            body,
            headers,
        })
    }

    fn connect(&self) -> Connect {
        Connect {
            instructions: "Have the PBX POST each finished inbound call here, with Authorization: Bearer and the account's token (or an X-Textback-Signature); the README shows the dialplan for Asterisk, FreePBX, FreeSWITCH and 3CX:",
            urls: hook_urls(&self.hooks, &[("Call reports", "call")]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbx_outcomes_map_into_the_domain() {
        let cases: &[(&str, Option<CallEnd>)] = &[
            ("ANSWER", Some(CallEnd::Completed)),
            ("NOANSWER", Some(CallEnd::NoAnswer)),
            ("BUSY", Some(CallEnd::Busy)),
            ("CANCEL", Some(CallEnd::Canceled)),
            ("CONGESTION", Some(CallEnd::Failed)),
            ("CHANUNAVAIL", Some(CallEnd::Failed)),
            ("NODIAL", Some(CallEnd::NoAnswer)),
            ("NO_ANSWER", Some(CallEnd::NoAnswer)),
            ("USER_BUSY", Some(CallEnd::Busy)),
            ("ORIGINATOR_CANCEL", Some(CallEnd::Canceled)),
            ("NO_USER_RESPONSE", Some(CallEnd::NoAnswer)),
            ("CALL_REJECTED", Some(CallEnd::Failed)),
            ("success", Some(CallEnd::Completed)),
            ("Missed", Some(CallEnd::NoAnswer)),
            ("Notanswered", Some(CallEnd::NoAnswer)),
            ("Inbound", Some(CallEnd::Completed)),
            ("no-answer", Some(CallEnd::NoAnswer)),
            ("LOSE_RACE", Some(CallEnd::Completed)),
            ("PICKED_OFF", Some(CallEnd::Completed)),
            // Asterisk: any other result means not answered; FreeSWITCH: a failed bridge's cause name.
            ("RECOVERY_ON_TIMER_EXPIRE", Some(CallEnd::Failed)),
            ("NORMAL_UNSPECIFIED", Some(CallEnd::Failed)),
            ("MEDIA_TIMEOUT", Some(CallEnd::Failed)),
            ("ringing", None),
            ("", None),
            ("no answer; rm -rf", None),
            ("x".repeat(41).leak(), None),
        ];
        for (status, want) in cases {
            assert_eq!(call_end(status), *want, "{status}");
        }
    }

    #[test]
    fn numbers_and_ids_are_checked_strictly() {
        let called: &[(&str, Option<&str>)] = &[
            ("+16025550100", Some("+16025550100")),
            ("16025550100", Some("+16025550100")),
            (" +16025550100 ", Some("+16025550100")),
            ("0602555010", None),
            ("+123", None),
            ("6025550100;", None),
        ];
        for (raw, want) in called {
            assert_eq!(called_number(raw).as_deref(), *want, "{raw}");
        }
        // (caller as sent, the business number called, read as)
        let callers: &[(&str, &str, Option<&str>)] = &[
            ("+14805550111", "+16025550100", Some("+14805550111")),
            ("14805550111", "+16025550100", Some("+14805550111")),
            ("4805550111", "+16025550100", Some("+14805550111")),
            ("011442071838750", "+16025550100", Some("+442071838750")),
            ("0480555011", "+16025550100", None),
            ("555", "+16025550100", None),
            ("07700900123", "+442071838750", Some("+447700900123")),
            ("7700900123", "+442071838750", Some("+447700900123")),
            ("447700900123", "+442071838750", Some("+447700900123")),
            ("004930123456", "+442071838750", Some("+4930123456")),
            ("0612345678", "+390612345678", Some("+390612345678")),
            ("4805550111", "+99912345678", None),
            (" +14805550111 ", "+16025550100", Some("+14805550111")),
            ("anonymous", "+16025550100", None),
            ("sip:alice@evil.example.com", "+16025550100", None),
            ("+1480555011';DROP", "+16025550100", None),
            ("$(reboot)", "+16025550100", None),
            ("+123", "+16025550100", None),
        ];
        for (raw, called, want) in callers {
            assert_eq!(
                caller_number(raw, called).as_deref(),
                *want,
                "{raw} calling {called}"
            );
        }
        assert!(call_id("1700000000.42").is_ok());
        assert!(call_id("6a1f0c2e-2b1c-4a44-9a55-1d2f3e4a5b6c").is_ok());
        assert!(call_id("").is_err());
        assert!(call_id("+14805550111 11/28/2026 15:00:00").is_ok());
        assert!(call_id("a;b").is_err());
        assert!(call_id("a\"b").is_err());
        assert!(call_id("a\nb").is_err());
        assert!(call_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Computed independently with Python's hmac module.
        assert_eq!(
            signature("secret", "1700000000", br#"{"a":1}"#),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
