//! Twilio, as its documentation and official libraries define it: `X-Twilio-Signature` checking, the
//! webhook parameters of voice, dial, call-status, SMS and message-status callbacks, the TwiML we answer,
//! and the Messages REST API (send, and list to reconcile an interrupted send).

use super::{
    Accepted, Addressed, Answer, Connect, Event, Lookup, OutgoingSms, Parsed, Provider, Reply,
    Request, SendError,
};
use crate::clock::Millis;
use crate::config::{Caps, KindRules, ProviderConfig, SettingSpec, SettingType};
use crate::model::{
    AnsweredBy, CallEnd, CallReport, CallReportKind, CallerId, DeliveryReceipt, Direction,
    FailReason, Failure, InboundText, OptOutKind,
};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// The header that stays the same across retries of one webhook event.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

// ---------------------------------------------------------------------------------------------------------
// Signatures

/// Computes the signature Twilio sends for `url` and form `params`: HMAC-SHA1 keyed with the auth token over
/// the URL followed by every parameter as key + value, keys sorted, each key's distinct values sorted.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, v) in params {
        sorted.entry(k).or_default().insert(v);
    }
    let mut data = String::from(url);
    for (k, values) in sorted {
        for v in values {
            data.push_str(k);
            data.push_str(v);
        }
    }
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a webhook signature as Twilio's libraries do: against the URL with and without its port (Twilio is
/// inconsistent about ports), in constant time. When the URL carries `bodySHA256` (JSON webhooks) the
/// parameters are not signed, and the body must hash to that value.
pub fn validate(
    token: &str,
    url: &str,
    params: &[(String, String)],
    body: &[u8],
    header: &str,
) -> bool {
    if token.is_empty() || header.is_empty() {
        return false;
    }
    let body_hash = query_value(url, "bodySHA256");
    let signed_params: &[(String, String)] = if body_hash.is_some() { &[] } else { params };
    if let Some(expected) = body_hash {
        let actual = hex(&Sha256::digest(body));
        if !bool::from(actual.as_bytes().ct_eq(expected.as_bytes())) {
            return false;
        }
    }
    let mut candidates = vec![without_port(url), with_port(url)];
    // A raw apostrophe in the query is signed as %27 by some Twilio paths (twilio-node's legacy fallback).
    if url.contains('\'') {
        let encoded = url.replace('\'', "%27");
        candidates.push(without_port(&encoded));
        candidates.push(with_port(&encoded));
    }
    let mut ok = false;
    for candidate in candidates {
        let sig = signature(token, &candidate, signed_params);
        ok |= bool::from(sig.as_bytes().ct_eq(header.as_bytes()));
    }
    ok
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn query_value(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Splits a URL into (scheme, userinfo with its `@`, host, port, rest from the path on).
fn split_url(url: &str) -> Option<(&str, &str, &str, Option<&str>, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    };
    Some((scheme, userinfo, host, port, rest))
}

fn without_port(url: &str) -> String {
    match split_url(url) {
        Some((scheme, user, host, Some(_), rest)) => format!("{scheme}://{user}{host}{rest}"),
        _ => url.to_string(),
    }
}

fn with_port(url: &str) -> String {
    match split_url(url) {
        Some((scheme, user, host, None, rest)) => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{user}{host}:{port}{rest}")
        }
        _ => url.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Webhook parameters

/// A webhook's parameters are missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

// ---------------------------------------------------------------------------------------------------------
// Inbound webhooks, shared with the simulator (which speaks Twilio's format)

/// Whether a request comes from the account whose auth token is `token`: form-encoded, with a valid
/// `X-Twilio-Signature` over the URL and its parameters.
pub fn verify_request(token: &str, req: &Request<'_>) -> Result<(), super::Refused> {
    verify_signed(token, Signing::TWILIO, req)
}

/// Where a Twilio-format account's webhooks carry their signature, and what to say when it is not right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    /// The provider's name, for messages.
    pub(super) provider: &'static str,
    /// The headers that may carry it, the preferred first.
    headers: &'static [&'static str],
    missing: &'static str,
    invalid: &'static str,
    /// Where the account's numbers are pointed at us.
    connect: &'static str,
}

impl Signing {
    /// Twilio's.
    pub const TWILIO: Self = Self {
        provider: "Twilio",
        headers: &[SIGNATURE_HEADER],
        missing: "missing X-Twilio-Signature",
        invalid: "invalid X-Twilio-Signature",
        connect: "Paste these into your Twilio number's configuration (Phone Numbers, Active numbers; HTTP POST):",
    };
    /// SignalWire's Compatibility API: its own header, and Twilio's as an alias, signed with the project's
    /// Signing Key by Twilio's algorithm.
    pub const SIGNALWIRE: Self = Self {
        provider: "SignalWire",
        headers: &["X-SignalWire-Signature", SIGNATURE_HEADER],
        missing: "missing X-SignalWire-Signature",
        invalid: "invalid X-SignalWire-Signature",
        connect: "In your SignalWire space, set the number to handle calls and messages with LaML Webhooks, and paste these (HTTP POST):",
    };
}

/// [`verify_request`] with another account's signing rules.
pub fn verify_signed(key: &str, signing: Signing, req: &Request<'_>) -> Result<(), super::Refused> {
    if !req.is_form() {
        return Err(super::Refused::Unsupported(
            "expected Content-Type application/x-www-form-urlencoded",
        ));
    }
    let Some(signature) = signing.headers.iter().find_map(|h| req.header(h)) else {
        return Err(super::Refused::Forbidden(signing.missing));
    };
    let params = form(req.body);
    if validate(key, req.url, &params, req.body, signature) {
        Ok(())
    } else {
        Err(super::Refused::Forbidden(signing.invalid))
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Reads a Twilio webhook (by the name of its hook: `voice`, `dial`, `call-status`, `recording`, `screen`,
/// `screen-accept`, `sms`, `message-status`) into the domain.
pub fn parse_request(req: &Request<'_>) -> Result<Parsed, super::ParseError> {
    if !req.is_form() {
        return Err(super::ParseError::Unsupported(
            "expected Content-Type application/x-www-form-urlencoded".into(),
        ));
    }
    let params = form(req.body);
    let malformed = |e: ParseError| super::ParseError::Malformed(e.0);
    let to = || Addressed::Number {
        number: addressed_to(&params).unwrap_or_default().to_string(),
        or: None,
    };
    let our = |key: &str| -> Result<String, super::ParseError> {
        req.query(key)
            .map(str::to_string)
            .ok_or_else(|| super::ParseError::Malformed(format!("missing {key}")))
    };
    let (event, addressed) = match req.hook {
        "voice" => (
            Event::Incoming(parse_call(&params, CallHook::Voice).map_err(malformed)?),
            to(),
        ),
        "dial" => (
            Event::Call(parse_call(&params, CallHook::Dial).map_err(malformed)?),
            to(),
        ),
        "recording" => (
            Event::Call(parse_call(&params, CallHook::Recording).map_err(malformed)?),
            to(),
        ),
        // The business's own outbound calls report their status too: then the business number is `From`.
        "call-status" => (
            Event::Call(parse_call(&params, CallHook::Status).map_err(malformed)?),
            Addressed::Number {
                number: addressed_to(&params).unwrap_or_default().to_string(),
                or: receipt_sender(&params).map(str::to_string),
            },
        ),
        "screen" => (
            Event::ScreenAnswered {
                call: our("parent")?,
                machine: answered_by(get(&params, "AnsweredBy")) == AnsweredBy::Machine,
            },
            Addressed::Business(our("business")?),
        ),
        "screen-accept" => (
            Event::ScreenKey {
                call: our("parent")?,
                accepted: digits(&params) == Some("1"),
            },
            Addressed::Business(our("business")?),
        ),
        "sms" => (
            Event::Text(parse_inbound_text(&params).map_err(malformed)?),
            to(),
        ),
        // A receipt concerns the text we sent: the business number is its sender.
        "message-status" => (
            Event::Receipt(parse_receipt(&params).map_err(malformed)?),
            Addressed::Number {
                number: receipt_sender(&params).unwrap_or_default().to_string(),
                or: None,
            },
        ),
        other => return Err(super::ParseError::NoSuchHook(other.to_string())),
    };
    Ok(Parsed {
        event,
        addressed,
        idempotency_key: req
            .header(IDEMPOTENCY_HEADER)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

/// Writes a reply as TwiML; the URLs Twilio calls back are under `hooks` (`https://…/hooks/twilio`).
pub fn render_reply(hooks: &str, reply: &Reply<'_>) -> Answer {
    let body = match *reply {
        Reply::Ack => twiml_empty(),
        Reply::Hangup => twiml_hangup(),
        Reply::Forward {
            numbers,
            ring_secs,
            screen,
            machine_detection,
        } => {
            let screen_url =
                screen.map(|(business, call)| format!("{hooks}/screen?{}", ours(business, call)));
            twiml_dial(
                numbers,
                ring_secs,
                &format!("{hooks}/dial"),
                DialOptions {
                    screen_url: screen_url.as_deref(),
                    machine_detection,
                },
            )
        }
        Reply::Missed {
            greeting,
            voicemail,
        } => {
            let record = voicemail.then(|| format!("{hooks}/recording"));
            twiml_missed(greeting, record.as_deref())
        }
        Reply::ScreenPrompt {
            business_name,
            caller,
            call: (business, call),
        } => twiml_screen(
            business_name,
            caller,
            &format!("{hooks}/screen-accept?{}", ours(business, call)),
        ),
    };
    Answer {
        content_type: "text/xml; charset=utf-8",
        body,
    }
}

/// The query our screening URLs carry: which business, which call.
fn ours(business: &str, call: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("business", business)
        .append_pair("parent", call)
        .finish()
}

/// The value of a webhook parameter.
pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    get(params, key)
}

fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a [(String, String)], key: &str) -> Result<&'a str, ParseError> {
    match get(params, key) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ParseError(format!("missing required parameter {key}"))),
    }
}

fn seconds(params: &[(String, String)], key: &str) -> Result<Option<u64>, ParseError> {
    match get(params, key).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ParseError(format!(
                "{key} must be a whole number of seconds, got {v:?}"
            ))
        }),
    }
}

/// The number a call or message webhook is addressed to (`To`, or the legacy `Called`).
pub fn addressed_to(params: &[(String, String)]) -> Option<&str> {
    get(params, "To").or_else(|| get(params, "Called"))
}

/// The business number a delivery receipt concerns: the sender of the outgoing text.
pub fn receipt_sender(params: &[(String, String)]) -> Option<&str> {
    get(params, "From")
}

/// Which call webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallHook {
    /// `/hooks/twilio/voice`
    Voice,
    /// `/hooks/twilio/dial`
    Dial,
    /// `/hooks/twilio/call-status`
    Status,
    /// `/hooks/twilio/recording`
    Recording,
}

/// The caller id Twilio puts in `From` when the caller withheld it ("ANONYMOUS" typed on a keypad).
const ANONYMOUS_PLACEHOLDER: &str = "+266696687";

/// `From` as the domain reads it: Twilio's placeholder for a withheld number becomes `anonymous`.
fn caller(from: &str) -> String {
    if from.trim() == ANONYMOUS_PLACEHOLDER {
        "anonymous".into()
    } else {
        from.to_string()
    }
}

/// `DialCallStatus` or `CallStatus` in domain terms; `None` for a value Twilio does not document.
pub fn call_end(status: &str) -> Option<CallEnd> {
    Some(match status {
        "queued" | "initiated" | "ringing" | "in-progress" => CallEnd::Ongoing,
        // `answered` is what a dial into a conference reports instead of `completed`.
        "completed" | "answered" => CallEnd::Completed,
        "no-answer" => CallEnd::NoAnswer,
        "busy" => CallEnd::Busy,
        "failed" => CallEnd::Failed,
        "canceled" => CallEnd::Canceled,
        _ => return None,
    })
}

fn end_of(params: &[(String, String)], key: &str) -> Result<CallEnd, ParseError> {
    let status = required(params, key)?;
    call_end(status).ok_or_else(|| ParseError(format!("{key} {status:?} is not a call status")))
}

/// `Direction`: `inbound`, or `outbound-api`/`outbound-dial` for calls the account placed.
fn direction(value: Option<&str>) -> Direction {
    if value.is_some_and(|d| d.starts_with("outbound")) {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

/// `AnsweredBy` (answering machine detection): `human`, `machine_start`, `machine_end_beep`, `fax`, `unknown`...
pub fn answered_by(value: Option<&str>) -> AnsweredBy {
    match value {
        Some("human") => AnsweredBy::Human,
        Some(v) if v.starts_with("machine") || v == "fax" => AnsweredBy::Machine,
        _ => AnsweredBy::Unknown,
    }
}

/// `StirVerstat`: `TN-Validation-Passed-A/B/C`, or `...-Failed-...` / `No-TN-Validation` when the carrier
/// could not vouch for the number.
pub fn caller_id(stir_verstat: Option<&str>) -> CallerId {
    match stir_verstat {
        Some(v) if v.contains("Failed") || v.contains("No-TN-Validation") => CallerId::Failed,
        Some(v) if v.contains("Passed") => CallerId::Verified,
        _ => CallerId::Unchecked,
    }
}

/// Parses a call webhook into a domain report.
pub fn parse_call(params: &[(String, String)], hook: CallHook) -> Result<CallReport, ParseError> {
    let call_sid = required(params, "CallSid")?.to_string();
    let from = get(params, "From")
        .or_else(|| get(params, "Caller"))
        .unwrap_or_default();
    let to = addressed_to(params)
        .ok_or_else(|| ParseError("missing required parameter To".into()))?
        .to_string();
    let kind = match hook {
        CallHook::Voice => CallReportKind::Incoming,
        CallHook::Dial => CallReportKind::DialEnded {
            leg_id: get(params, "DialCallSid").map(str::to_string),
            end: end_of(params, "DialCallStatus")?,
            talk_secs: seconds(params, "DialCallDuration")?,
        },
        CallHook::Status => CallReportKind::Status {
            end: end_of(params, "CallStatus")?,
            duration_secs: seconds(params, "CallDuration")?,
        },
        CallHook::Recording => CallReportKind::Recording {
            url: recording_url(required(params, "RecordingUrl")?)?,
        },
    };
    Ok(CallReport {
        call_sid,
        from: caller(from),
        to,
        direction: direction(get(params, "Direction")),
        caller_id: caller_id(get(params, "StirVerstat")),
        answered_by: answered_by(get(params, "AnsweredBy")),
        kind,
    })
}

/// A voicemail's link: shown to staff as a link, so only an `https://` URL is taken (Twilio's recordings are
/// on `https://api.twilio.com`); anything else (`javascript:`, `data:`, plain http) is refused.
fn recording_url(url: &str) -> Result<String, ParseError> {
    let url = url.trim();
    let host = url.strip_prefix("https://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || url.contains(char::is_whitespace) {
        return Err(ParseError(format!(
            "RecordingUrl must be an https:// URL, got {url:?}"
        )));
    }
    Ok(url.to_string())
}

/// The digits a `<Gather>` collected.
pub fn digits(params: &[(String, String)]) -> Option<&str> {
    get(params, "Digits")
}

/// Parses an inbound SMS webhook.
pub fn parse_inbound_text(params: &[(String, String)]) -> Result<InboundText, ParseError> {
    let message_sid = get(params, "MessageSid")
        .or_else(|| get(params, "SmsMessageSid"))
        .or_else(|| get(params, "SmsSid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError("missing required parameter MessageSid".into()))?;
    // Advanced Opt-Out has acted on its own (possibly localized) keywords and says which.
    let opt_out = match get(params, "OptOutType") {
        Some("STOP") => Some(OptOutKind::Stop),
        Some("START") => Some(OptOutKind::Start),
        Some("HELP") => Some(OptOutKind::Help),
        _ => None,
    };
    Ok(InboundText {
        message_sid: message_sid.to_string(),
        from: required(params, "From")?.to_string(),
        to: required(params, "To")?.to_string(),
        body: get(params, "Body").unwrap_or_default().to_string(),
        opt_out,
    })
}

/// What a Twilio error code means for the recipient.
pub fn fail_reason(code: i64) -> FailReason {
    match code {
        21211 => FailReason::InvalidNumber,
        21610 => FailReason::OptedOut,
        // 'To' is not a mobile number; landline or unreachable carrier.
        21614 | 30006 => FailReason::NotMobile,
        // Message blocked; filtered by the carrier; sent from an unregistered 10DLC number.
        30004 | 30007 | 30034 => FailReason::Blocked,
        _ => FailReason::Other,
    }
}

fn failure(code: Option<i64>) -> Option<Failure> {
    code.map(|c| Failure {
        reason: fail_reason(c),
        code: Some(c.to_string()),
    })
}

/// Parses a message status callback. Twilio's states are the domain's words already.
pub fn parse_receipt(params: &[(String, String)]) -> Result<DeliveryReceipt, ParseError> {
    let message_sid = get(params, "MessageSid")
        .or_else(|| get(params, "SmsSid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError("missing required parameter MessageSid".into()))?;
    let status = get(params, "MessageStatus")
        .or_else(|| get(params, "SmsStatus"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError("missing required parameter MessageStatus".into()))?;
    let error_code = match get(params, "ErrorCode").map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ParseError(format!("ErrorCode must be a number, got {v:?}")))?,
        ),
    };
    Ok(DeliveryReceipt {
        message_sid: message_sid.to_string(),
        status: status.to_string(),
        failure: failure(error_code),
    })
}

// ---------------------------------------------------------------------------------------------------------
// TwiML

/// Escapes text for XML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// An empty response: no reply, nothing more to do.
pub fn twiml_empty() -> String {
    format!("{XML_HEAD}<Response></Response>")
}

/// How forwarded legs are answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct DialOptions<'a> {
    /// TwiML the person who answers hears first (call screening: "press 1 to take this call").
    pub screen_url: Option<&'a str>,
    /// Ask Twilio to detect answering machines (`AnsweredBy`).
    pub machine_detection: bool,
}

/// Rings the staff numbers for `timeout_secs`, then asks our dial action what to do.
pub fn twiml_dial(
    numbers: &[String],
    timeout_secs: u64,
    action_url: &str,
    options: DialOptions<'_>,
) -> String {
    let mut out = format!(
        "{XML_HEAD}<Response><Dial timeout=\"{timeout_secs}\" action=\"{}\" method=\"POST\" answerOnBridge=\"true\">",
        xml_escape(action_url)
    );
    for n in numbers {
        out.push_str("<Number");
        if let Some(url) = options.screen_url {
            out.push_str(&format!(" url=\"{}\" method=\"POST\"", xml_escape(url)));
        }
        if options.machine_detection {
            out.push_str(" machineDetection=\"Enable\"");
        }
        out.push_str(&format!(">{}</Number>", xml_escape(n)));
    }
    out.push_str("</Dial></Response>");
    out
}

/// Call screening: the person who answers a forwarded call must press 1 to take it; a voicemail never does.
pub fn twiml_screen(business: &str, caller: &str, accept_url: &str) -> String {
    let spoken: Vec<String> = caller
        .trim_start_matches('+')
        .chars()
        .map(String::from)
        .collect();
    format!(
        "{XML_HEAD}<Response><Gather numDigits=\"1\" timeout=\"6\" action=\"{}\" method=\"POST\"><Say>Call for {} from {}. Press 1 to take it.</Say></Gather><Hangup/></Response>",
        xml_escape(accept_url),
        xml_escape(business),
        xml_escape(&spoken.join(" "))
    )
}

/// What a caller hears after a missed call: an optional message, then a voicemail recording or a hang-up.
pub fn twiml_missed(greeting: &str, record_action: Option<&str>) -> String {
    let mut out = format!("{XML_HEAD}<Response>");
    if !greeting.trim().is_empty() {
        out.push_str(&format!("<Say>{}</Say>", xml_escape(greeting.trim())));
    }
    match record_action {
        Some(url) => out.push_str(&format!(
            "<Record maxLength=\"120\" playBeep=\"true\" action=\"{}\" method=\"POST\"/>",
            xml_escape(url)
        )),
        None => out.push_str("<Hangup/>"),
    }
    out.push_str("</Response>");
    out
}

/// Ends the call.
pub fn twiml_hangup() -> String {
    format!("{XML_HEAD}<Response><Hangup/></Response>")
}

// ---------------------------------------------------------------------------------------------------------
// REST API

/// A Twilio account, or one at a service that speaks Twilio's API (SignalWire's Compatibility API).
pub struct Twilio {
    /// The account id in the API's paths (Twilio's Account SID, SignalWire's Project ID).
    pub(super) account_sid: String,
    /// The REST API's password (Twilio's Auth Token, SignalWire's API token).
    password: String,
    /// What webhooks are signed with (Twilio's Auth Token, SignalWire's Signing Key).
    signing_key: String,
    pub(super) signing: Signing,
    /// The REST API's base, before `/2010-04-01`.
    pub(super) api_base: String,
    /// The Lookup API's base, when the account can look numbers up.
    lookup_base: Option<String>,
    /// The Messaging API's base (Messaging Services, A2P 10DLC), when the account has one (Twilio).
    pub(super) messaging_base: Option<String>,
    /// Where the provider calls back: `{public_url}/hooks/twilio` or `{public_url}/hooks/{account}`.
    pub(super) hooks: String,
    status_callback: String,
    pub(super) agent: ureq::Agent,
}

/// `kind = "twilio"`.
pub const TWILIO: super::Kind = super::Kind {
    rules: KindRules {
        name: "twilio",
        settings: &[
            SettingSpec {
                key: "account_sid",
                ty: SettingType::Text,
                required: Some("AC followed by 32 hex digits, from the Twilio console"),
            },
            SettingSpec {
                key: "auth_token",
                ty: SettingType::Secret,
                required: Some("the Twilio console's Auth Token"),
            },
            SettingSpec {
                key: "api_base",
                ty: SettingType::Url,
                required: None,
            },
            SettingSpec {
                key: "line_type_lookup",
                ty: SettingType::Flag,
                required: None,
            },
            SettingSpec {
                key: "lookup_base",
                ty: SettingType::Url,
                required: None,
            },
            SettingSpec {
                key: "messaging_base",
                ty: SettingType::Url,
                required: None,
            },
        ],
        caps: twilio_caps,
        check: twilio_check,
    },
    build: |config, ctx| std::sync::Arc::new(Twilio::new(config, ctx.public_url)),
};

/// `kind = "signalwire"`: SignalWire's Compatibility (cXML/LaML) API, Twilio's code path.
pub const SIGNALWIRE: super::Kind = super::Kind {
    rules: KindRules {
        name: "signalwire",
        settings: &[
            SettingSpec {
                key: "space",
                ty: SettingType::Text,
                required: Some("\"example\" for example.signalwire.com"),
            },
            SettingSpec {
                key: "project_id",
                ty: SettingType::Text,
                required: Some("the Project ID, a UUID"),
            },
            SettingSpec {
                key: "api_token",
                ty: SettingType::Secret,
                required: Some("an API token with the Messaging scope"),
            },
            SettingSpec {
                key: "signing_key",
                ty: SettingType::Secret,
                required: Some("the project's Signing Key, for webhook signatures"),
            },
            SettingSpec {
                key: "api_base",
                ty: SettingType::Url,
                required: None,
            },
        ],
        caps: signalwire_caps,
        check: signalwire_check,
    },
    build: |config, ctx| std::sync::Arc::new(Twilio::signalwire(config, ctx.public_url, ctx.name)),
};

fn twilio_caps(config: &ProviderConfig) -> Caps {
    Caps {
        calls_back: true,
        twilio_webhooks: true,
        line_type_lookup: config.flag("line_type_lookup").unwrap_or(false),
        screens_calls: true,
        places_calls: true,
        ..Caps::default()
    }
}

fn twilio_check(config: &ProviderConfig) -> Vec<(&'static str, String)> {
    match config.text("account_sid") {
        Some(sid) if !is_account_sid(sid) => vec![(
            "account_sid",
            format!("{sid:?} is not a Twilio Account SID (AC followed by 32 hex digits)"),
        )],
        _ => vec![],
    }
}

fn is_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn signalwire_caps(_: &ProviderConfig) -> Caps {
    Caps {
        calls_back: true,
        screens_calls: true,
        places_calls: true,
        ..Caps::default()
    }
}

fn signalwire_check(config: &ProviderConfig) -> Vec<(&'static str, String)> {
    let mut problems = vec![];
    if let Some(space) = config.text("space").filter(|s| !is_space(s)) {
        problems.push((
            "space",
            format!("{space:?} is not a space name: write \"example\" for example.signalwire.com"),
        ));
    }
    if let Some(id) = config.text("project_id").filter(|s| !is_uuid(s)) {
        problems.push(("project_id", format!("{id:?} is not a Project ID (a UUID)")));
    }
    problems
}

/// A SignalWire space name: lowercase letters, digits and dashes.
fn is_space(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A UUID such as SignalWire's project ids: 8-4-4-4-12 hex digits.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Twilio {
    /// A Twilio account; `public_url` is where its webhooks and delivery receipts come.
    pub fn new(config: &ProviderConfig, public_url: &str) -> Self {
        let hooks = format!("{public_url}/hooks/twilio");
        let token = config.secret("auth_token").unwrap_or_default().to_string();
        Self {
            account_sid: config.text("account_sid").unwrap_or_default().to_string(),
            password: token.clone(),
            signing_key: token,
            signing: Signing::TWILIO,
            api_base: config.api_base_or("https://api.twilio.com"),
            lookup_base: Some(
                config
                    .text("lookup_base")
                    .unwrap_or("https://lookups.twilio.com")
                    .trim_end_matches('/')
                    .to_string(),
            ),
            messaging_base: Some(
                config
                    .text("messaging_base")
                    .unwrap_or("https://messaging.twilio.com")
                    .trim_end_matches('/')
                    .to_string(),
            ),
            status_callback: format!("{hooks}/message-status"),
            hooks,
            agent: super::agent(config),
        }
    }

    /// A SignalWire project through its Compatibility API (`https://{space}.signalwire.com/api/laml`): the
    /// Project ID in paths and as the user, an API token as the password, webhooks signed with the
    /// project's Signing Key and sent to `{public_url}/hooks/{name}`. No Lookup.
    pub fn signalwire(config: &ProviderConfig, public_url: &str, name: &str) -> Self {
        let space = config.text("space").unwrap_or_default();
        let hooks = format!("{public_url}/hooks/{name}");
        let secret = |key| config.secret(key).unwrap_or_default().to_string();
        Self {
            account_sid: config.text("project_id").unwrap_or_default().to_string(),
            password: secret("api_token"),
            signing_key: secret("signing_key"),
            signing: Signing::SIGNALWIRE,
            api_base: config.api_base_or(&format!("https://{space}.signalwire.com/api/laml")),
            lookup_base: None,
            messaging_base: None,
            status_callback: format!("{hooks}/message-status"),
            hooks,
            agent: super::agent(config),
        }
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_base, self.account_sid
        )
    }

    pub(super) fn authorization(&self) -> String {
        let pair = format!("{}:{}", self.account_sid, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

#[derive(serde::Deserialize)]
struct MessageJson {
    sid: String,
    status: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
}

#[derive(serde::Deserialize)]
struct LookupJson {
    line_type_intelligence: Option<LineTypeJson>,
}

#[derive(serde::Deserialize)]
struct LineTypeJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    error_code: Option<i64>,
}

#[derive(serde::Deserialize)]
struct CallJson {
    sid: String,
}

#[derive(serde::Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageJson>,
}

/// The code and message of an error body, in every shape seen: Twilio's legacy `{code, message, more_info,
/// status}` and RFC 9457 `{type, title, status, code, detail}`, and SignalWire's `{"errors": [{code,
/// message}]}` (string codes) and `{"errors": ["message"]}`.
fn error_of(body: &str) -> (Option<String>, Option<String>) {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let item = match value.get("errors").and_then(|e| e.get(0)) {
        Some(serde_json::Value::String(message)) => return (None, Some(message.clone())),
        Some(first) => first,
        None => &value,
    };
    let code = match item.get("code") {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let message = ["message", "detail", "title"]
        .iter()
        .find_map(|k| item.get(k).and_then(serde_json::Value::as_str))
        .map(str::to_string);
    (code, message)
}

fn classify_status(status: u16, body: &str, retry_after: Option<&str>) -> SendError {
    let (code, message) = error_of(body);
    let message = format!(
        "HTTP {status}: {}",
        message.unwrap_or_else(|| format!("HTTP {status}"))
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
            failure: Failure {
                reason: code
                    .as_deref()
                    .and_then(|c| c.parse().ok())
                    .map_or(FailReason::Other, fail_reason),
                code,
            },
            message,
        }
    }
}

impl Provider for Twilio {
    fn send_sms(&self, sms: &OutgoingSms) -> Result<Accepted, SendError> {
        let result = self
            .agent
            .post(&self.messages_url())
            .set("Authorization", &self.authorization())
            .send_form(&[
                ("To", sms.to.as_str()),
                ("From", sms.from.as_str()),
                ("Body", sms.body.as_str()),
                ("StatusCallback", self.status_callback.as_str()),
            ]);
        match result {
            Ok(resp) => {
                let text = resp.into_string().map_err(|e| SendError::Ambiguous {
                    message: format!("could not read Twilio's answer: {e}"),
                })?;
                let m: MessageJson =
                    serde_json::from_str(&text).map_err(|e| SendError::Ambiguous {
                        message: format!("unexpected answer from Twilio: {e}"),
                    })?;
                Ok(Accepted {
                    sid: m.sid,
                    status: m.status.unwrap_or_else(|| "queued".into()),
                })
            }
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp.header("Retry-After").map(str::to_string);
                let body = resp.into_string().unwrap_or_default();
                Err(classify_status(code, &body, retry_after.as_deref()))
            }
            Err(ureq::Error::Transport(t)) => Err(SendError::transport(&t, "no answer")),
        }
    }

    fn find_sent(&self, sms: &OutgoingSms, since: Millis) -> Lookup {
        let result = self
            .agent
            .get(&self.messages_url())
            .set("Authorization", &self.authorization())
            .query("To", &sms.to)
            .query("From", &sms.from)
            .query("PageSize", "50")
            .call();
        let text = match result {
            Ok(resp) => match resp.into_string() {
                Ok(t) => t,
                Err(e) => return Lookup::Unknown(format!("could not read Twilio's answer: {e}")),
            },
            Err(ureq::Error::Status(code, _)) => {
                return Lookup::Unknown(format!("Twilio answered HTTP {code} to the message list"))
            }
            Err(ureq::Error::Transport(t)) => return Lookup::Unknown(t.kind().to_string()),
        };
        let list: MessageList = match serde_json::from_str(&text) {
            Ok(l) => l,
            Err(e) => return Lookup::Unknown(format!("unexpected message list from Twilio: {e}")),
        };
        // Twilio dates have one-second resolution; allow for clock skew between us and Twilio.
        let earliest = since - 120_000;
        let found = list.messages.into_iter().find(|m| {
            m.body.as_deref() == Some(sms.body.as_str())
                && m.to.as_deref().is_none_or(|t| t == sms.to)
                && m.from.as_deref().is_none_or(|f| f == sms.from)
                && m.date_created
                    .as_deref()
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .is_none_or(|d| d.timestamp_millis() >= earliest)
        });
        match found {
            Some(m) => Lookup::Sent(Accepted {
                sid: m.sid,
                status: m.status.unwrap_or_else(|| "queued".into()),
            }),
            None => Lookup::NotSent,
        }
    }

    fn verify(&self, req: &Request<'_>) -> Result<(), super::Refused> {
        verify_signed(&self.signing_key, self.signing, req)
    }

    fn parse(&self, req: &Request<'_>) -> Result<Parsed, super::ParseError> {
        parse_request(req)
    }

    fn reply(&self, reply: &Reply<'_>) -> Answer {
        render_reply(&self.hooks, reply)
    }

    fn line_type(&self, number: &str) -> Result<String, String> {
        let Some(base) = &self.lookup_base else {
            return Err("this account cannot look numbers up".into());
        };
        let encoded: String = form_urlencoded::byte_serialize(number.as_bytes()).collect();
        let url = format!("{base}/v2/PhoneNumbers/{encoded}");
        let resp = self
            .agent
            .get(&url)
            .set("Authorization", &self.authorization())
            .query("Fields", "line_type_intelligence")
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("Twilio Lookup answered HTTP {code}"),
                ureq::Error::Transport(t) => t.kind().to_string(),
            })?;
        let text = resp.into_string().map_err(|e| e.to_string())?;
        let json: LookupJson =
            serde_json::from_str(&text).map_err(|e| format!("unexpected Lookup answer: {e}"))?;
        match json.line_type_intelligence {
            Some(LineTypeJson {
                kind: Some(kind), ..
            }) => Ok(kind),
            Some(LineTypeJson {
                error_code: Some(code),
                ..
            }) => Err(format!("Lookup error {code}")),
            _ => Err("Lookup returned no line type".into()),
        }
    }

    fn place_call(&self, from: &str, to: &str, say: &str) -> Result<String, SendError> {
        let twiml = format!(
            "<Response><Say>{}</Say><Pause length=\"1\"/><Say>{}</Say></Response>",
            xml_escape(say),
            xml_escape(say)
        );
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.api_base, self.account_sid
        );
        let result = self
            .agent
            .post(&url)
            .set("Authorization", &self.authorization())
            .send_form(&[("To", to), ("From", from), ("Twiml", twiml.as_str())]);
        match result {
            Ok(resp) => {
                let text = resp.into_string().map_err(|e| SendError::Ambiguous {
                    message: e.to_string(),
                })?;
                let call: CallJson =
                    serde_json::from_str(&text).map_err(|e| SendError::Ambiguous {
                        message: format!("unexpected answer from Twilio: {e}"),
                    })?;
                Ok(call.sid)
            }
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp.header("Retry-After").map(str::to_string);
                let body = resp.into_string().unwrap_or_default();
                Err(classify_status(code, &body, retry_after.as_deref()))
            }
            Err(ureq::Error::Transport(t)) => Err(SendError::transport(&t, "no answer")),
        }
    }

    fn connect(&self) -> Connect {
        Connect {
            instructions: self.signing.connect,
            urls: call_and_text_hooks(&self.hooks),
        }
    }

    fn setup(&self) -> Option<&dyn super::NumberSetup> {
        Some(self)
    }

    fn explain(&self, code: &str) -> Option<&'static str> {
        Some(match code {
            "21211" => "the number is not a valid phone number",
            "21408" => "the account may not text this country: enable it under Messaging, Geo permissions",
            "21610" => "the recipient replied STOP to this sender; they must text START first",
            "21614" => "the number cannot take texts (not a mobile)",
            "30003" => "the handset is off or out of reach",
            "30004" => "the recipient's carrier blocked the text",
            "30005" => "the number does not exist or is no longer in service",
            "30006" => "a landline, or a carrier that does not take texts",
            "30007" => "the carrier filtered it as spam: register for A2P 10DLC and keep texts conversational",
            "30008" => "an unknown error at the carrier",
            "30034" => "the number is not registered for A2P 10DLC: US carriers block its texts (run textback doctor)",
            _ => return None,
        })
    }

    fn probe(&self, url: &str) -> Option<super::Probe> {
        let header = self.signing.headers.first()?;
        let body = "AccountSid=".to_string() + &self.account_sid;
        Some(super::Probe {
            content_type: "application/x-www-form-urlencoded",
            headers: vec![(
                (*header).to_string(),
                signature(&self.signing_key, url, &form(body.as_bytes())),
            )],
            body,
        })
    }
}

/// The three URLs a Twilio-format number is pointed at.
pub fn call_and_text_hooks(hooks: &str) -> Vec<super::HookUrl> {
    super::hook_urls(
        hooks,
        &[
            ("A call comes in", "voice"),
            ("Call status changes", "call-status"),
            ("A message comes in", "sms"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Params = Vec<(String, String)>;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn shared() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    /// The official vectors from Twilio's SDK test suites (../shared/PROVIDERS.md section 3.3).
    #[test]
    fn official_signature_vectors_compute() {
        let cases: &[(&str, Params, &str)] = &[
            (URL, shared(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", shared(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
            ("https://mycompany.com:443/myapp.php?foo=1&bar=2", shared(), "kvajT1Ptam85bY51eRf/AJRuM3w="),
            ("http://mycompany.com:80/myapp.php?foo=1&bar=2", shared(), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
            (
                URL,
                p(&[("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]),
                "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
            ),
            ("https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", shared(), "CukzLTc1tT5dXEDIHm/tKBanW10="),
            ("https://user@mycompany.com/myapp.php?foo=1&bar=2", shared(), "2YRLlVAflCqxaNicjMpJcSTgzSs="),
            (
                URL,
                p(&[("MessagingBinding.Address", "+1415xxxxxxx"), ("MessagingBinding.Address", "+1325xxxxxxx")]),
                "83O6e2vORAoJHUNzJjDWN1jz+BA=",
            ),
            (URL, vec![], "zYQTYrRWXE7LtzbG4PfP7/bkkGo="),
            ("https://mycompany.com/myapp.php", shared(), "1xaxFBvyzXYvWplzNOSs28HWO94="),
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2&type=thiswontbeusedinthesignaturegeneratorandsoshouldbeignored",
                shared(),
                "hYkNsTBttoNGkyCS0p+wWmQoRTg=",
            ),
            (
                "https://mycompany.com/myapp.php?foo=hello%20world&bar=test%2Bvalue",
                shared(),
                "er2tvAP1Wx+iuTTE2BPgvEaN1cs=",
            ),
            (
                URL,
                p(&[("Message", "Hello & goodbye! @#$%^*()"), ("From", "+1 (415) 867-5309"), ("Special", "unicode: ñáéíóú")]),
                "dCPiR4WtQ6QFN6pJh81CtlCcWLQ=",
            ),
            (URL, p(&[("Digits", ""), ("CallSid", "CA1234567890ABCDE"), ("EmptyParam", "")]), "9HHp/OqQMEwdrVebHDdA/+tqjX8="),
            (
                URL,
                p(&[("Zebra", "last"), ("Alpha", "first"), ("Beta", "second"), ("Gamma", "third")]),
                "enveUe73ZTVLAekHxez3Qx6JuuQ=",
            ),
            ("https://mycompany.com/webhook/España?año=2023", shared(), "G/Hx6mqqnjUNlPAoi2Sp9bGst0g="),
            (
                URL,
                p(&[("callSid", "lowercase"), ("CallSid", "uppercase"), ("CALLSID", "allcaps")]),
                "jDK7WKT8wiNrwggd4ceTv4e1MJ4=",
            ),
            ("https://mycompany.com:443//myapp.php?foo=1&bar=2", shared(), "A9lH3u16NjyiiM/+wylw5rirFUs="),
        ];
        for (url, params, want) in cases {
            assert_eq!(signature("12345", url, params), *want, "{url} {params:?}");
        }
    }

    #[test]
    fn official_signature_vectors_validate_with_and_without_port() {
        let cases: &[(&str, &str, bool)] = &[
            (URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true),
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                true,
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
                true,
            ),
            (URL, "kvajT1Ptam85bY51eRf/AJRuM3w=", true),
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
                true,
            ),
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
                true,
            ),
            (
                "https://user@mycompany.com/myapp.php?foo=1&bar=2",
                "aZfj4hyX1MLZhSS6QIL18Vn2/RA=",
                true,
            ),
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
                "TfZzewPq8wqrGlMfyAud8+/IvJ0=",
                true,
            ),
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
                "dsq4Ehbj6cs+KdTkpF5sSSplOWw=",
                true,
            ),
            (URL, "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8=", false),
            (URL, "WRONG_SIGNATURE", false),
            (URL, "", false),
        ];
        for (url, sig, want) in cases {
            assert_eq!(
                validate("12345", url, &shared(), b"", sig),
                *want,
                "{url} {sig}"
            );
        }
        assert!(!validate(
            "54321",
            URL,
            &shared(),
            b"",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn official_json_body_vectors() {
        assert_eq!(hex(&Sha256::digest(BODY.as_bytes())), BODY_HASH);
        let with_body = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(validate(
            "12345",
            &with_body,
            &[],
            BODY.as_bytes(),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        let only = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(validate(
            "12345",
            &only,
            &[],
            BODY.as_bytes(),
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        let empty = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert!(validate(
            "12345",
            empty,
            &[],
            b"{}",
            "Ldidvp12m26NI7eqEvxnEpkd9Hc="
        ));
        assert!(validate(
            "12345",
            empty,
            &[],
            b"{}",
            "rw/jVviOgicj2+kHZULvebnA4ag="
        ));
        // A tampered body fails even with the right signature.
        assert!(!validate(
            "12345",
            &with_body,
            &[],
            b"{\"property\": \"evil\"}",
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        // A body with no bodySHA256 in the URL is not signed that way.
        assert!(!validate(
            "12345",
            URL,
            &[],
            BODY.as_bytes(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn twilio_go_vectors_sort_keys_not_pairs() {
        let mut params = shared();
        params.push(("ReasonConferenceEnded".into(), "test".into()));
        params.push(("Reason".into(), "Participant".into()));
        assert_eq!(
            signature("12345", URL, &params),
            "vOEb5UThFn24KEfnOFLQY2AE5FY="
        );
        assert!(validate(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params,
            b"",
            "vOEb5UThFn24KEfnOFLQY2AE5FY="
        ));
        assert!(validate(
            "12345",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params,
            b"",
            "n2xBNyzSW7rfYStDtOFiFMv7qNo="
        ));
        assert!(!validate(
            "12345",
            URL,
            &params,
            b"",
            "95+Bu0JVPi0r/SsESZCVf0dWAjw="
        ));
    }

    #[test]
    fn ports_are_added_and_removed() {
        let cases = [
            (
                "https://a.com/x?y=1",
                "https://a.com/x?y=1",
                "https://a.com:443/x?y=1",
            ),
            (
                "http://a.com:8080/x",
                "http://a.com/x",
                "http://a.com:8080/x",
            ),
            (
                "https://u:p@a.com/x",
                "https://u:p@a.com/x",
                "https://u:p@a.com:443/x",
            ),
            (
                "http://[::1]:9000/x",
                "http://[::1]/x",
                "http://[::1]:9000/x",
            ),
            ("http://[::1]/x", "http://[::1]/x", "http://[::1]:80/x"),
        ];
        for (url, without, with) in cases {
            assert_eq!(without_port(url), without, "{url}");
            assert_eq!(with_port(url), with, "{url}");
        }
    }

    #[test]
    fn parses_call_webhooks() {
        let dial = p(&[
            ("CallSid", "CA1"),
            ("From", "+14805550111"),
            ("To", "+16025550100"),
            ("DialCallStatus", "completed"),
            ("DialCallSid", "CA2"),
            ("DialCallDuration", "42"),
        ]);
        let r = parse_call(&dial, CallHook::Dial).unwrap();
        assert_eq!(
            r.kind,
            CallReportKind::DialEnded {
                leg_id: Some("CA2".into()),
                end: CallEnd::Completed,
                talk_secs: Some(42)
            }
        );
        let cases: &[(Params, CallHook, &str)] = &[
            (
                p(&[("From", "+1"), ("To", "+2")]),
                CallHook::Voice,
                "missing required parameter CallSid",
            ),
            (
                p(&[("CallSid", "CA1"), ("From", "+1")]),
                CallHook::Voice,
                "missing required parameter To",
            ),
            (
                p(&[("CallSid", "CA1"), ("To", "+2")]),
                CallHook::Dial,
                "missing required parameter DialCallStatus",
            ),
            (
                p(&[
                    ("CallSid", "CA1"),
                    ("To", "+2"),
                    ("CallStatus", "completed"),
                    ("CallDuration", "x"),
                ]),
                CallHook::Status,
                "CallDuration must be a whole number of seconds",
            ),
            (
                p(&[
                    ("CallSid", "CA1"),
                    ("To", "+2"),
                    ("RecordingUrl", "javascript:alert(1)"),
                ]),
                CallHook::Recording,
                "RecordingUrl must be an https:// URL",
            ),
            (
                p(&[
                    ("CallSid", "CA1"),
                    ("To", "+2"),
                    ("RecordingUrl", "http://api.twilio.com/x"),
                ]),
                CallHook::Recording,
                "RecordingUrl must be an https:// URL",
            ),
            (
                p(&[
                    ("CallSid", "CA1"),
                    ("To", "+2"),
                    ("RecordingUrl", "https://"),
                ]),
                CallHook::Recording,
                "RecordingUrl must be an https:// URL",
            ),
        ];
        let ok = p(&[
            ("CallSid", "CA1"),
            ("To", "+2"),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            ),
        ]);
        assert!(parse_call(&ok, CallHook::Recording).is_ok());
        for (params, hook, want) in cases {
            let err = parse_call(params, *hook).unwrap_err().0;
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn parses_texts_and_receipts() {
        let t = parse_inbound_text(&p(&[
            ("MessageSid", "SM1"),
            ("From", "+1480"),
            ("To", "+1602"),
            ("Body", " STOP "),
        ]))
        .unwrap();
        assert_eq!(t.body, " STOP ");
        let r = parse_receipt(&p(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30006"),
        ]))
        .unwrap();
        assert_eq!(
            r.failure,
            Some(Failure {
                reason: FailReason::NotMobile,
                code: Some("30006".into())
            })
        );
        assert!(parse_receipt(&p(&[("MessageSid", "SM1")])).is_err());
        assert!(parse_receipt(&p(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "x")
        ]))
        .is_err());
    }

    #[test]
    fn twiml_is_escaped() {
        let x = twiml_dial(
            &["+16025550199".into()],
            20,
            "https://h/hooks/twilio/dial?a=1&b=2",
            DialOptions::default(),
        );
        assert!(
            x.contains("action=\"https://h/hooks/twilio/dial?a=1&amp;b=2\""),
            "{x}"
        );
        assert!(x.contains("<Number>+16025550199</Number>"));
        assert!(x.contains("timeout=\"20\""));
        let screened = twiml_dial(
            &["+16025550199".into()],
            20,
            "https://h/d",
            DialOptions {
                screen_url: Some("https://h/s?business=a&parent=CA1"),
                machine_detection: true,
            },
        );
        assert!(
            screened.contains("<Number url=\"https://h/s?business=a&amp;parent=CA1\" method=\"POST\" machineDetection=\"Enable\">"),
            "{screened}"
        );
        let gather = twiml_screen("Acme", "+1480", "https://h/a");
        assert!(
            gather.contains("<Gather numDigits=\"1\"") && gather.contains("from 1 4 8 0. Press 1"),
            "{gather}"
        );
        let m = twiml_missed("Tom & Jerry's <HVAC>", None);
        assert!(
            m.contains("<Say>Tom &amp; Jerry&apos;s &lt;HVAC&gt;</Say><Hangup/>"),
            "{m}"
        );
    }

    #[test]
    fn maps_twilio_values_into_the_domain() {
        let ends: &[(&str, Option<CallEnd>)] = &[
            ("queued", Some(CallEnd::Ongoing)),
            ("initiated", Some(CallEnd::Ongoing)),
            ("ringing", Some(CallEnd::Ongoing)),
            ("in-progress", Some(CallEnd::Ongoing)),
            ("completed", Some(CallEnd::Completed)),
            ("answered", Some(CallEnd::Completed)),
            ("no-answer", Some(CallEnd::NoAnswer)),
            ("busy", Some(CallEnd::Busy)),
            ("failed", Some(CallEnd::Failed)),
            ("canceled", Some(CallEnd::Canceled)),
            ("gone fishing", None),
        ];
        for (status, want) in ends {
            assert_eq!(call_end(status), *want, "{status}");
        }
        let by: &[(Option<&str>, AnsweredBy)] = &[
            (Some("human"), AnsweredBy::Human),
            (Some("machine_start"), AnsweredBy::Machine),
            (Some("machine_end_beep"), AnsweredBy::Machine),
            (Some("fax"), AnsweredBy::Machine),
            (Some("unknown"), AnsweredBy::Unknown),
            (None, AnsweredBy::Unknown),
        ];
        for (v, want) in by {
            assert_eq!(answered_by(*v), *want, "{v:?}");
        }
        let ids: &[(Option<&str>, CallerId)] = &[
            (Some("TN-Validation-Passed-A"), CallerId::Verified),
            (Some("TN-Validation-Failed-A"), CallerId::Failed),
            (Some("No-TN-Validation"), CallerId::Failed),
            (None, CallerId::Unchecked),
        ];
        for (v, want) in ids {
            assert_eq!(caller_id(*v), *want, "{v:?}");
        }
        let codes: &[(i64, FailReason)] = &[
            (21211, FailReason::InvalidNumber),
            (21610, FailReason::OptedOut),
            (21614, FailReason::NotMobile),
            (30006, FailReason::NotMobile),
            (30007, FailReason::Blocked),
            (30034, FailReason::Blocked),
            (30003, FailReason::Other),
        ];
        for (code, want) in codes {
            assert_eq!(fail_reason(*code), *want, "{code}");
        }
        let call = |from: &str| {
            parse_call(
                &p(&[("CallSid", "CA1"), ("From", from), ("To", "+16025550100")]),
                CallHook::Voice,
            )
            .unwrap()
            .from
        };
        assert_eq!(call("+266696687"), "anonymous");
        assert_eq!(call("+14805550111"), "+14805550111");
        let dir = |d: &str| {
            parse_call(
                &p(&[("CallSid", "CA1"), ("Direction", d), ("To", "+1")]),
                CallHook::Voice,
            )
            .unwrap()
            .direction
        };
        assert_eq!(dir("inbound"), Direction::Inbound);
        assert_eq!(dir("outbound-api"), Direction::Outbound);
        assert_eq!(dir("outbound-dial"), Direction::Outbound);
    }

    #[test]
    fn classifies_errors() {
        let e = classify_status(
            400,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#,
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
        let e = classify_status(
            429,
            r#"{"code": 20429, "message": "Too Many Requests"}"#,
            Some("7"),
        );
        assert_eq!(
            e,
            SendError::Retryable {
                message: "HTTP 429: Too Many Requests".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify_status(503, "oops", None),
            SendError::Retryable { .. }
        ));
        let e = classify_status(
            400,
            r#"{"type": "x", "title": "Bad", "status": 400, "code": 21211, "detail": "Invalid 'To' Phone Number"}"#,
            None,
        );
        assert!(
            matches!(e, SendError::Rejected { failure: Failure { reason: FailReason::InvalidNumber, .. }, ref message } if message.contains("Invalid 'To'")),
            "{e:?}"
        );
    }

    #[test]
    fn reads_every_error_shape_signalwire_sends_too() {
        // (body, code, message)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                r#"{"code":20003,"message":"Authentication failed","more_info":"https://developer.signalwire.com/compatibility-api/reference/errors","status":401}"#,
                Some("20003"),
                Some("Authentication failed"),
            ),
            (
                r#"{"errors":[{"code":"21610","message":"Attempt to send to unsubscribed recipient","more_info":"x"}]}"#,
                Some("21610"),
                Some("Attempt to send to unsubscribed recipient"),
            ),
            (
                r#"{"errors":["Validation error message"]}"#,
                None,
                Some("Validation error message"),
            ),
            ("<html>bad gateway</html>", None, None),
        ];
        for (body, code, message) in cases {
            let (c, m) = error_of(body);
            assert_eq!((c.as_deref(), m.as_deref()), (*code, *message), "{body}");
        }
        let e = classify_status(400, cases[1].0, None);
        assert!(
            matches!(e, SendError::Rejected { failure: Failure { reason: FailReason::OptedOut, ref code }, .. } if code.as_deref() == Some("21610")),
            "{e:?}"
        );
    }
}
