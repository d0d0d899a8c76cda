//! Every provider through its own wire format, against a fake of its API on loopback: signatures accepted
//! and refused, missed calls read from its events, inbound texts, receipts, opt-outs, error classes, and a
//! missed call reported by a PBX and texted through another account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::*;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

/// A config with `providers` and one business (extra keys in `business`), texting at once.
fn config(providers: &str, business: &str) -> String {
    config_with(providers, "0s", business)
}

/// Waits until every job due by now has run: after it, any text that was going to go out has gone, so
/// counting what the fake received proves what was not sent.
fn settled(s: &TestServer) {
    wait_for("the due work to finish", 10, || {
        let busy = s.count(
            "SELECT COUNT(*) FROM jobs WHERE state = 'running' \
             OR (state = 'pending' AND run_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000)",
        );
        (busy == 0).then_some(())
    });
}

fn status_of(s: &TestServer, sid: &str) -> String {
    s.text(&format!(
        "SELECT status FROM messages WHERE provider_sid = '{sid}'"
    ))
    .unwrap_or_default()
}

fn opted_out(s: &TestServer, phone: &str) -> bool {
    s.count(&format!(
        "SELECT COUNT(*) FROM contacts WHERE phone = '{phone}' AND opted_out_at IS NOT NULL"
    )) == 1
}

fn landline(s: &TestServer, phone: &str) -> bool {
    s.count(&format!(
        "SELECT COUNT(*) FROM line_types WHERE phone = '{phone}' AND line_type = 'landline'"
    )) == 1
}

/// Posts a Twilio-format form signed with `key` in `header` (SignalWire's and Twilio's headers).
fn post_twilio_format(
    s: &TestServer,
    path: &str,
    params: &[(&str, &str)],
    key: &str,
    header: &str,
) -> Response {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let sig = textback::providers::twilio::signature(key, &format!("{PUBLIC_URL}{path}"), &owned);
    s.post_form(path, params, &[(header, sig.as_str())])
}

// -------------------------------------------------------------------------------------------------------------
// SignalWire

const PROJECT: &str = "ea108133-d6b3-407c-9536-9fad8a1f1a82";
const SW_TOKEN: &str = "PT0123456789abcdef";
const SW_KEY: &str = "PSK_signing_key_0123";
const SW_HEADER: &str = "X-SignalWire-Signature";

fn uuid(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// SignalWire's Compatibility API as its TypeSpec describes it: Twilio-shaped JSON, UUID ids, and errors
/// as `{"errors": [{"code": "<string>", ...}]}` on some endpoints.
fn fake_signalwire() -> FakeApi {
    FakeApi::start(|req, before| {
        let messages = format!("/api/laml/2010-04-01/Accounts/{PROJECT}/Messages.json");
        let now = Duration::ZERO;
        if req.header("Authorization") != Some(basic(PROJECT, SW_TOKEN).as_str()) {
            return (401, r#"{"code":20003,"message":"Authentication failed","more_info":"https://developer.signalwire.com/compatibility-api/reference/errors","status":401}"#.into(), now);
        }
        if req.method == "GET" && req.path.starts_with(&messages) {
            return (200, r#"{"messages":[]}"#.into(), now);
        }
        if req.method != "POST" || req.path != messages {
            return (
                404,
                r#"{"code":20404,"message":"Not Found","status":404}"#.into(),
                now,
            );
        }
        match req.form("To").as_deref() {
            Some("+15005550004") => (
                400,
                r#"{"errors":[{"code":"21610","message":"Attempt to send to unsubscribed recipient","more_info":"https://developer.signalwire.com"}]}"#.into(),
                now,
            ),
            Some("+15005550009") => (
                422,
                r#"{"errors":["'To' number is not a valid mobile number"]}"#.into(),
                now,
            ),
            to => {
                let sid = uuid(before.len() + 1);
                let body = serde_json::json!({
                    "account_sid": PROJECT, "api_version": "2010-04-01", "body": req.form("Body"),
                    "from": req.form("From"), "to": to, "sid": sid, "status": "queued",
                    "direction": "outbound-api", "num_segments": "1", "error_code": null, "error_message": null,
                });
                (201, body.to_string(), now)
            }
        }
    })
}

fn signalwire_server() -> (FakeApi, TestServer) {
    let fake = fake_signalwire();
    let providers = format!(
        r#"[providers.sw]
kind = "signalwire"
space = "example"
project_id = "{PROJECT}"
api_token = "{SW_TOKEN}"
signing_key = "{SW_KEY}"
api_base = "{}/api/laml"
settle_time = "1s"
retry_backoff = "200ms""#,
        fake.url
    );
    let s = TestServer::start(&config(&providers, ""));
    (fake, s)
}

fn sw_call(call: &str, from: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", PROJECT.into()),
        ("CallSid", call.into()),
        ("CallStatus", "ringing".into()),
        ("Direction", "inbound".into()),
        ("From", from.into()),
        ("To", BUSINESS_NUMBER.into()),
    ]
}

#[test]
fn signalwire_missed_call_gets_one_text_and_its_receipt() {
    let (fake, s) = signalwire_server();
    let call = uuid(900);
    let ring = post_twilio_format(
        &s,
        "/hooks/sw/voice",
        &borrow(&sw_call(&call, CALLER)),
        SW_KEY,
        SW_HEADER,
    );
    assert_eq!(ring.status, 200, "{}", ring.body);
    assert!(ring.body.contains("<Dial"), "{}", ring.body);
    assert!(
        ring.body
            .contains(&format!("action=\"{PUBLIC_URL}/hooks/sw/dial\"")),
        "callbacks come back to the account's own URL: {}",
        ring.body
    );
    let mut dial = sw_call(&call, CALLER);
    dial.push(("DialCallStatus", "no-answer".into()));
    dial.push(("DialCallSid", uuid(901)));
    // SignalWire also sends Twilio's header on cXML requests, signed the same way.
    for _ in 0..2 {
        let r = post_twilio_format(
            &s,
            "/hooks/sw/dial",
            &borrow(&dial),
            SW_KEY,
            "X-Twilio-Signature",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let messages = format!("/api/laml/2010-04-01/Accounts/{PROJECT}/Messages.json");
    let send = wait_for("the text-back", 10, || {
        fake.requests("POST", &messages).into_iter().next()
    });
    assert_eq!(send.form("To").as_deref(), Some(CALLER));
    assert_eq!(send.form("From").as_deref(), Some(BUSINESS_NUMBER));
    assert_eq!(
        send.form("StatusCallback"),
        Some(format!("{PUBLIC_URL}/hooks/sw/message-status"))
    );
    let sid = wait_for("the text to be sent", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE direction = 'out' AND status = 'queued'")
    });
    assert_eq!(sid, uuid(1));
    // SignalWire's status callback has MessageStatus only (no SmsStatus), and string error codes.
    let receipt = [
        ("AccountSid", PROJECT),
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("From", BUSINESS_NUMBER),
        ("To", CALLER),
        ("NumSegments", "1"),
    ];
    let r = post_twilio_format(&s, "/hooks/sw/message-status", &receipt, SW_KEY, SW_HEADER);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&s, &sid), "delivered");
    settled(&s);
    assert_eq!(
        fake.requests("POST", &messages).len(),
        1,
        "one call, one text"
    );
}

#[test]
fn signalwire_webhooks_are_checked_with_the_signing_key() {
    let (_fake, s) = signalwire_server();
    let p = sw_call(&uuid(1), CALLER);
    let p = borrow(&p);
    let cases: &[(&str, &str, u16)] = &[
        (SW_KEY, SW_HEADER, 200),
        (SW_KEY, "X-Twilio-Signature", 200),
        // The API token signs nothing: webhooks use the project's Signing Key.
        (SW_TOKEN, SW_HEADER, 403),
        (AUTH_TOKEN, "X-Twilio-Signature", 403),
    ];
    for (i, &(key, header, want)) in cases.iter().enumerate() {
        let call = uuid(100 + i);
        let mut p = p.clone();
        p[1] = ("CallSid", call.as_str());
        let r = post_twilio_format(&s, "/hooks/sw/voice", &p, key, header);
        assert_eq!(r.status, want, "{key} in {header}: {}", r.body);
    }
    assert_eq!(s.post_form("/hooks/sw/voice", &p, &[]).status, 403);
    // Signed for another account's URL.
    let owned: Vec<(String, String)> = p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let sig = textback::providers::twilio::signature(
        SW_KEY,
        &format!("{PUBLIC_URL}/hooks/other/voice"),
        &owned,
    );
    assert_eq!(
        s.post_form("/hooks/sw/voice", &p, &[(SW_HEADER, &sig)])
            .status,
        403
    );
    assert_eq!(
        s.post_form("/hooks/nobody/voice", &p, &[(SW_HEADER, &sig)])
            .status,
        404
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls"),
        2,
        "only the signed calls were recorded"
    );
}

#[test]
fn an_account_cannot_speak_for_a_business_it_does_not_serve() {
    let fake = fake_signalwire();
    let providers = format!(
        r#"[providers.sw]
kind = "signalwire"
space = "example"
project_id = "{PROJECT}"
api_token = "{SW_TOKEN}"
signing_key = "{SW_KEY}"
api_base = "{}/api/laml"

[providers.other]
kind = "simulator"
auth_token = "another-account-token-0123""#,
        fake.url
    );
    let s = TestServer::start(&config(&providers, "provider = \"sw\""));
    let call = sw_call(&uuid(7), CALLER);
    for path in ["/hooks/other/voice", "/hooks/twilio/voice"] {
        let r = post_twilio_format(
            &s,
            path,
            &borrow(&call),
            "another-account-token-0123",
            "X-Twilio-Signature",
        );
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(
            r.body
                .contains("signed by an account this business does not use"),
            "{}",
            r.body
        );
    }
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 0);
    let own = post_twilio_format(&s, "/hooks/sw/voice", &borrow(&call), SW_KEY, SW_HEADER);
    assert_eq!(own.status, 200, "{}", own.body);
}

#[test]
fn signalwire_opt_outs_and_refusals() {
    let (fake, s) = signalwire_server();
    let sms = |sid: &str, from: &str, body: &str| {
        let p = [
            ("AccountSid", PROJECT),
            ("MessageSid", sid),
            ("From", from),
            ("To", BUSINESS_NUMBER),
            ("Body", body),
            ("NumMedia", "0"),
        ];
        post_twilio_format(&s, "/hooks/sw/sms", &p, SW_KEY, SW_HEADER)
    };
    assert_eq!(sms(&uuid(50), CALLER, "STOP").status, 200);
    assert!(opted_out(&s, CALLER));
    // The carrier confirms STOP on an A2P route: nothing from us.
    settled(&s);
    assert!(fake.requests("POST", "/api").is_empty());

    // A refusal with a string code in errors[]: 21610 opts the recipient out here too.
    let mut dial = sw_call(&uuid(60), "+15005550004");
    dial.push(("DialCallStatus", "busy".into()));
    assert_eq!(
        post_twilio_format(&s, "/hooks/sw/dial", &borrow(&dial), SW_KEY, SW_HEADER).status,
        200
    );
    wait_for("the refused text to fail", 10, || {
        (s.count(
            "SELECT COUNT(*) FROM messages WHERE to_number = '+15005550004' AND status = 'failed'",
        ) == 1)
            .then_some(())
    });
    assert_eq!(
        s.text("SELECT CAST(error_code AS TEXT) FROM messages WHERE to_number = '+15005550004'")
            .as_deref(),
        Some("21610")
    );
    assert!(opted_out(&s, "+15005550004"));

    // A 422 with only a message: failed for good, not retried.
    let mut dial = sw_call(&uuid(61), "+15005550009");
    dial.push(("DialCallStatus", "no-answer".into()));
    assert_eq!(
        post_twilio_format(&s, "/hooks/sw/dial", &borrow(&dial), SW_KEY, SW_HEADER).status,
        200
    );
    wait_for("the 422 to fail the text", 10, || {
        s.text("SELECT error_message FROM messages WHERE to_number = '+15005550009' AND status = 'failed'")
    });
    let attempts = fake
        .requests("POST", "/api")
        .iter()
        .filter(|r| r.form("To").as_deref() == Some("+15005550009"))
        .count();
    assert_eq!(attempts, 1);
}

// -------------------------------------------------------------------------------------------------------------
// Telnyx

const TX_KEY: &str = "KEY0123456789ABCDEF";

fn telnyx_keys() -> (ed25519_dalek::SigningKey, String) {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let public = B64.encode(signing.verifying_key().to_bytes());
    (signing, public)
}

fn telnyx_sign(key: &ed25519_dalek::SigningKey, ts: i64, body: &str) -> Vec<(String, String)> {
    use ed25519_dalek::Signer;
    let sig = key.sign(format!("{ts}|{body}").as_bytes());
    vec![
        ("telnyx-timestamp".into(), ts.to_string()),
        (
            "telnyx-signature-ed25519".into(),
            B64.encode(sig.to_bytes()),
        ),
    ]
}

fn post_telnyx(
    s: &TestServer,
    key: &ed25519_dalek::SigningKey,
    path: &str,
    content_type: &str,
    body: &str,
) -> Response {
    post_telnyx_at(s, key, now_secs(), path, content_type, body)
}

fn post_telnyx_at(
    s: &TestServer,
    key: &ed25519_dalek::SigningKey,
    ts: i64,
    path: &str,
    content_type: &str,
    body: &str,
) -> Response {
    let headers = telnyx_sign(key, ts, body);
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    s.post_raw(path, content_type, body, &h)
}

/// Telnyx's Messaging API v2: `{"data": {...}}` on success, `{"errors": [...]}` (string codes) otherwise.
fn fake_telnyx() -> FakeApi {
    FakeApi::start(|req, before| {
        let now = Duration::ZERO;
        if req.header("Authorization") != Some(format!("Bearer {TX_KEY}").as_str()) {
            return (401, r#"{"errors":[{"code":"10009","title":"Authentication failed","detail":"The API key is invalid."}]}"#.into(), now);
        }
        if req.method != "POST" || req.path != "/v2/messages" {
            return (
                404,
                r#"{"errors":[{"code":"10005","title":"Resource not found"}]}"#.into(),
                now,
            );
        }
        let body = req.json();
        let to = body["to"].as_str().unwrap_or_default().to_string();
        if to == "+15005550004" {
            return (
                409,
                format!(
                    r#"{{"errors":[{{"code":"40300","title":"Blocked due to STOP message","detail":"Messages cannot be sent from {BUSINESS_NUMBER} to {to} due to an existing block rule."}}]}}"#
                ),
                now,
            );
        }
        let data = serde_json::json!({"data": {
            "record_type": "message", "direction": "outbound", "id": uuid(before.len() + 1), "type": "SMS",
            "messaging_profile_id": body["messaging_profile_id"],
            "from": {"phone_number": body["from"], "carrier": "Telnyx", "line_type": "Wireless"},
            "to": [{"phone_number": to, "status": "queued", "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"}],
            "text": body["text"], "parts": 1, "errors": [],
        }});
        (200, data.to_string(), now)
    })
}

fn telnyx_server(business: &str) -> (FakeApi, TestServer, ed25519_dalek::SigningKey) {
    telnyx_server_after("0s", business)
}

fn telnyx_server_after(
    delay: &str,
    business: &str,
) -> (FakeApi, TestServer, ed25519_dalek::SigningKey) {
    let fake = fake_telnyx();
    let (signing, public) = telnyx_keys();
    let providers = format!(
        r#"[providers.tx]
kind = "telnyx"
api_key = "{TX_KEY}"
public_key = "{public}"
messaging_profile_id = "16fd2706-8baf-433b-82eb-8c7fada847da"
api_base = "{}"
settle_time = "1s"
retry_backoff = "200ms""#,
        fake.url
    );
    let s = TestServer::start(&config_with(&providers, delay, business));
    (fake, s, signing)
}

fn hangup(event: &str, from: &str, cause: &str) -> String {
    hangup_between(event, from, BUSINESS_NUMBER, cause)
}

/// A Call Control `call.hangup` as Telnyx sends it (no direction: the numbers tell).
fn hangup_between(event: &str, from: &str, to: &str, cause: &str) -> String {
    serde_json::json!({
        "data": {
            "event_type": "call.hangup", "id": event, "occurred_at": "2026-11-28T15:00:25.000000Z",
            "record_type": "event",
            "payload": {
                "call_control_id": format!("v3:{event}"), "call_leg_id": format!("leg-{event}"),
                "call_session_id": format!("session-{event}"), "connection_id": "1494404757140276705",
                "from": from, "to": to,
                "hangup_cause": cause, "hangup_source": "caller", "sip_hangup_cause": "unspecified",
                "start_time": "2026-11-28T15:00:00.000000Z", "state": "hangup",
            }
        },
        "meta": {"attempt": 1, "delivered_to": format!("{PUBLIC_URL}/hooks/tx/events")}
    })
    .to_string()
}

#[test]
fn telnyx_call_control_hangups_decide_missed_calls() {
    let (fake, s, key) = telnyx_server("");
    // (caller, hangup_cause, texted)
    let cases = [
        ("+14805550121", "timeout", true),
        ("+14805550122", "no_answer", true),
        ("+14805550123", "user_busy", true),
        ("+14805550124", "originator_cancel", true),
        ("+14805550125", "call_rejected", true),
        ("+14805550126", "normal_clearing", false),
    ];
    for (i, (caller, cause, _)) in cases.iter().enumerate() {
        let body = hangup(&format!("evt-{i}"), caller, cause);
        let r = post_telnyx(&s, &key, "/hooks/tx/events", "application/json", &body);
        assert_eq!(r.status, 200, "{cause}: {}", r.body);
        // A redelivery of the same event changes nothing.
        assert_eq!(
            post_telnyx(&s, &key, "/hooks/tx/events", "application/json", &body).status,
            200
        );
    }
    let texted = cases.iter().filter(|c| c.2).count();
    wait_for("the text-backs", 10, || {
        (fake.requests("POST", "/v2/messages").len() >= texted).then_some(())
    });
    settled(&s);
    let sends = fake.requests("POST", "/v2/messages");
    for (caller, cause, want) in cases {
        let got = sends.iter().filter(|r| r.json()["to"] == caller).count();
        assert_eq!(got, usize::from(want), "{cause}");
    }
    let first = sends[0].json();
    assert_eq!(first["from"], BUSINESS_NUMBER);
    assert_eq!(
        first["messaging_profile_id"],
        "16fd2706-8baf-433b-82eb-8c7fada847da"
    );
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi, this is Acme HVAC."),
        "{first}"
    );
}

#[test]
fn telnyx_hangups_say_no_direction_so_the_numbers_do() {
    let (fake, s, key) = telnyx_server_after("1h", "");
    let caller = "+14805550128";
    let post = |body: &str| post_telnyx(&s, &key, "/hooks/tx/events", "application/json", body);
    assert_eq!(post(&hangup("evt-in", caller, "timeout")).status, 200);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE state = 'pending'"),
        1
    );
    // The business calls back from its number: that leg's hangup is an outbound call, which calls off
    // the pending text-back instead of counting as a missed call of its own.
    let back = hangup_between("evt-out", BUSINESS_NUMBER, caller, "normal_clearing");
    assert_eq!(post(&back).status, 200);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'"),
        1
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 1);
    // A leg between two numbers no business has is refused, and changes nothing.
    let stray = hangup_between("evt-x", "+14805550001", "+14805550002", "timeout");
    assert_eq!(post(&stray).status, 404);
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 1);
    settled(&s);
    assert!(fake.requests("POST", "/v2/messages").is_empty());
}

#[test]
fn telnyx_signatures_are_ed25519_over_timestamp_and_body() {
    let (_fake, s, key) = telnyx_server("");
    let body = hangup("evt-sig", CALLER, "timeout");
    let now = now_secs();
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let cases: &[(&ed25519_dalek::SigningKey, i64, u16)] = &[
        (&other, now, 403),
        (&key, now - 301, 403),
        (&key, now + 301, 403),
    ];
    for &(k, ts, want) in cases {
        assert_eq!(
            post_telnyx_at(&s, k, ts, "/hooks/tx/events", "application/json", &body).status,
            want,
            "{ts}"
        );
    }
    // A signature over another body.
    let headers = telnyx_sign(&key, now, &body);
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tampered = body.replace(CALLER, "+14805550999");
    assert_eq!(
        s.post_raw("/hooks/tx/events", "application/json", &tampered, &h)
            .status,
        403
    );
    assert_eq!(
        s.post_raw("/hooks/tx/events", "application/json", &body, &[])
            .status,
        403
    );
    assert_eq!(
        s.post_raw("/hooks/tx/events", "text/plain", &body, &h)
            .status,
        415
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 0);
    assert_eq!(
        post_telnyx_at(
            &s,
            &key,
            now - 299,
            "/hooks/tx/events",
            "application/json",
            &body
        )
        .status,
        200
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 1);
}

#[test]
fn telnyx_texml_missed_call_caps_the_ring_time() {
    let (fake, s, key) = telnyx_server("ring_timeout = \"150s\"");
    let form = |extra: &[(&str, &str)]| {
        let mut p: Vec<(&str, &str)> = vec![
            ("AccountSid", "0f8a4b5b-4b4c-4d0f-9a8e-2f1d3c4b5a69"),
            ("CallSid", "v3:texml-call-1"),
            ("CallStatus", "ringing"),
            ("ConnectionId", "1494404757140276705"),
            ("Direction", "inbound"),
            ("From", CALLER),
            ("To", BUSINESS_NUMBER),
        ];
        p.extend_from_slice(extra);
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p)
            .finish()
    };
    let form_type = "application/x-www-form-urlencoded";
    let r = post_telnyx(&s, &key, "/hooks/tx/voice", form_type, &form(&[]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("timeout=\"120\""),
        "TeXML's Dial takes at most 120 s: {}",
        r.body
    );
    assert!(
        r.body
            .contains(&format!("action=\"{PUBLIC_URL}/hooks/tx/dial\"")),
        "{}",
        r.body
    );
    let dial = form(&[
        ("DialCallStatus", "no-answer"),
        ("DialCallSid", "v3:texml-leg-1"),
    ]);
    let r = post_telnyx(&s, &key, "/hooks/tx/dial", form_type, &dial);
    assert_eq!(r.status, 200, "{}", r.body);
    let send = wait_for("the text-back", 10, || {
        fake.requests("POST", "/v2/messages").into_iter().next()
    });
    assert_eq!(send.json()["to"], CALLER);
    // Telnyx signs the body, not the URL: no hook that would trust its query string is taken.
    let digits = form(&[("Digits", "1")]);
    let r = post_telnyx(
        &s,
        &key,
        "/hooks/tx/screen-accept?business=acme&parent=v3:texml-call-1",
        form_type,
        &digits,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // A form without a signature is refused like JSON.
    assert_eq!(
        s.post_raw("/hooks/tx/voice", form_type, &form(&[]), &[])
            .status,
        403
    );
}

#[test]
fn telnyx_texts_receipts_and_errors() {
    let (fake, s, key) = telnyx_server("");
    let received = |id: &str, from: &str, text: &str| {
        serde_json::json!({"data": {"event_type": "message.received", "id": format!("evt-{id}"),
            "occurred_at": "2026-11-28T15:00:00.000Z", "record_type": "event",
            "payload": {"id": id, "direction": "inbound", "type": "SMS", "text": text,
                "from": {"phone_number": from, "carrier": "T-Mobile", "line_type": "Wireless", "status": "received"},
                "to": [{"phone_number": BUSINESS_NUMBER, "status": "webhook_delivered"}],
                "received_at": "2026-11-28T15:00:00.000Z", "media": []}}})
        .to_string()
    };
    let r = post_telnyx(
        &s,
        &key,
        "/hooks/tx/events",
        "application/json",
        &received("in-1", "+14805550131", "Is Tuesday ok?"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND provider_sid = 'in-1'"),
        1
    );
    let r = post_telnyx(
        &s,
        &key,
        "/hooks/tx/events",
        "application/json",
        &received("in-2", "+14805550132", "STOP"),
    );
    assert_eq!(r.status, 200);
    assert!(opted_out(&s, "+14805550132"));

    // A text goes out; its receipts follow (including a status Telnyx added later).
    let r = post_telnyx(
        &s,
        &key,
        "/hooks/tx/events",
        "application/json",
        &hangup("evt-a", "+14805550133", "timeout"),
    );
    assert_eq!(r.status, 200);
    let sid = wait_for("the text", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE to_number = '+14805550133' AND status = 'queued'")
    });
    let finalized = |event: &str, status: &str, errors: serde_json::Value| {
        serde_json::json!({"data": {"event_type": event, "id": format!("evt-{event}-{status}"),
            "occurred_at": "2026-11-28T15:01:00.000Z", "record_type": "event",
            "payload": {"id": sid, "direction": "outbound", "type": "SMS",
                "from": {"phone_number": BUSINESS_NUMBER},
                "to": [{"phone_number": "+14805550133", "status": status}], "errors": errors}}})
        .to_string()
    };
    let sent = finalized("message.sent", "sent", serde_json::json!([]));
    assert_eq!(
        post_telnyx(&s, &key, "/hooks/tx/events", "application/json", &sent).status,
        200
    );
    assert_eq!(status_of(&s, &sid), "sent");
    let failed = finalized(
        "message.finalized",
        "delivery_failed",
        serde_json::json!([{"code": "40001", "title": "Not routable", "detail": "Destination is a landline or non-routable number"}]),
    );
    assert_eq!(
        post_telnyx(&s, &key, "/hooks/tx/events", "application/json", &failed).status,
        200
    );
    assert_eq!(status_of(&s, &sid), "undelivered");
    assert!(
        landline(&s, "+14805550133"),
        "40001 marks the number as unable to take texts"
    );

    // Sending to someone Telnyx holds a STOP for: 409 with code 40300.
    let r = post_telnyx(
        &s,
        &key,
        "/hooks/tx/events",
        "application/json",
        &hangup("evt-b", "+15005550004", "user_busy"),
    );
    assert_eq!(r.status, 200);
    wait_for("the blocked text to fail", 10, || {
        (s.count(
            "SELECT COUNT(*) FROM messages WHERE to_number = '+15005550004' AND status = 'failed'",
        ) == 1)
            .then_some(())
    });
    assert!(opted_out(&s, "+15005550004"));
    assert_eq!(
        fake.requests("POST", "/v2/messages")
            .iter()
            .filter(|r| r.json()["to"] == "+15005550004")
            .count(),
        1,
        "a refusal is not retried"
    );
}

// -------------------------------------------------------------------------------------------------------------
// PBX reports, texted through Twilio

const PBX_TOKEN: &str = "pbx-token-0123456789";
const PBX_SECRET: &str = "pbx-secret-0123456789";

fn pbx_twilio_server() -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let providers = format!(
        r#"[providers.pbx]
kind = "pbx"
token = "{PBX_TOKEN}"
secret = "{PBX_SECRET}"

[providers.main]
kind = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
api_base = "{}"
settle_time = "1s"
retry_backoff = "200ms""#,
        fake.url
    );
    let s = TestServer::start(&config(
        &providers,
        "provider = \"pbx\"\nsms_provider = \"main\"",
    ));
    (fake, s)
}

fn report(s: &TestServer, fields: &[(&str, &str)]) -> Response {
    let auth = format!("Bearer {PBX_TOKEN}");
    s.post_form(
        "/hooks/pbx/missed-call",
        fields,
        &[("Authorization", auth.as_str())],
    )
}

#[test]
fn pbx_reports_are_texted_through_twilio() {
    let (fake, s) = pbx_twilio_server();
    // (caller, status as Asterisk's DIALSTATUS or a FreeSWITCH cause, texted)
    let cases = [
        ("+14805550141", "NOANSWER", true),
        ("+14805550142", "BUSY", true),
        ("+14805550143", "CANCEL", true),
        ("+14805550144", "CONGESTION", true),
        ("+14805550145", "CHANUNAVAIL", true),
        ("+14805550146", "NO_ANSWER", true),
        ("+14805550147", "USER_BUSY", true),
        ("+14805550148", "ORIGINATOR_CANCEL", true),
        ("+14805550149", "ANSWER", false),
        // Never reached Dial (a menu, straight to voicemail): FreeSWITCH expands an unset DIALSTATUS to "".
        ("+14805550150", "", true),
        // FreeSWITCH names a failed bridge by its cause: anything but an answer was not answered.
        ("+14805550151", "RECOVERY_ON_TIMER_EXPIRE", true),
        ("+14805550152", "PICKED_OFF", false),
    ];
    for (i, (caller, status, _)) in cases.iter().enumerate() {
        let id = format!("1700000000.{i}");
        let fields = [
            ("caller", *caller),
            ("called", BUSINESS_NUMBER),
            ("status", *status),
            ("call_id", id.as_str()),
            ("billsec", "30"),
        ];
        assert_eq!(report(&s, &fields).status, 200, "{status}");
        // The PBX retries: the same call id changes nothing.
        let r = report(&s, &fields);
        assert_eq!((r.status, r.body.as_str()), (200, "{\"ok\":true}"));
    }
    let texted = cases.iter().filter(|c| c.2).count();
    wait_for("the text-backs", 10, || {
        (fake.sends().len() >= texted).then_some(())
    });
    settled(&s);
    for (caller, status, want) in cases {
        assert_eq!(fake.sends_to(caller).len(), usize::from(want), "{status}");
    }
    let send = &fake.sends_to("+14805550141")[0];
    assert_eq!(
        send.get("From"),
        Some(BUSINESS_NUMBER),
        "texted from the business number"
    );

    // Twilio texts for this business but the PBX reports its calls: a call webhook from Twilio would count
    // a call twice, and is refused.
    let r = s.ring("CA-from-the-texting-account", "+14805550160");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE from_raw = '+14805550160'"),
        0
    );

    // A reply comes back through Twilio's webhook, for the same business.
    assert_eq!(
        s.text_in("SM-reply-1", "+14805550141", "Yes please").status,
        200
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND business_id = 'acme'"),
        1
    );
}

#[test]
fn simulate_says_it_only_plays_twilio_webhooks() {
    let (fake, s) = pbx_twilio_server();
    let cfg = s.config.to_str().unwrap().to_string();
    let args = [
        "simulate",
        "missed-call",
        "--from",
        CALLER,
        "--url",
        &s.url,
        "--config",
        &cfg,
    ];
    let (code, out, err) = cli(s.dir.path(), &args);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("simulate plays Twilio's webhooks, and +16025550100 is reported by the pbx account \"pbx\""),
        "{err}"
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 0);
    assert!(fake.sends().is_empty());
}

#[test]
fn pbx_reports_are_authenticated_and_checked_strictly() {
    let (fake, s) = pbx_twilio_server();
    let good = [
        ("caller", CALLER),
        ("called", BUSINESS_NUMBER),
        ("status", "NOANSWER"),
        ("call_id", "1700000001.1"),
    ];
    assert_eq!(
        s.post_form("/hooks/pbx/missed-call", &good, &[]).status,
        403
    );
    assert_eq!(
        s.post_form(
            "/hooks/pbx/missed-call",
            &good,
            &[("Authorization", "Bearer wrong-token-0123456789")]
        )
        .status,
        403
    );
    assert_eq!(
        s.post_raw(
            "/hooks/pbx/missed-call",
            "text/plain",
            "caller=x",
            &[("Authorization", &format!("Bearer {PBX_TOKEN}"))]
        )
        .status,
        415
    );
    let bad: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("caller", CALLER),
                ("called", "100"),
                ("status", "NOANSWER"),
                ("call_id", "a"),
            ],
            "called",
        ),
        (
            &[
                ("caller", CALLER),
                ("called", BUSINESS_NUMBER),
                ("status", "no answer; rm -rf /"),
                ("call_id", "b"),
            ],
            "status",
        ),
        (
            &[
                ("caller", CALLER),
                ("called", BUSINESS_NUMBER),
                ("status", "NOANSWER"),
            ],
            "call_id",
        ),
        (
            &[
                ("caller", CALLER),
                ("called", BUSINESS_NUMBER),
                ("status", "NOANSWER"),
                ("call_id", "c d;rm"),
            ],
            "call_id",
        ),
        (
            &[
                ("caller", CALLER),
                ("called", BUSINESS_NUMBER),
                ("status", "NOANSWER"),
                ("call_id", "e"),
                ("duration", "-1"),
            ],
            "duration",
        ),
        (
            &[
                ("caller", CALLER),
                ("called", BUSINESS_NUMBER),
                ("call_id", "b2"),
            ],
            "status",
        ),
    ];
    for (fields, names) in bad {
        let r = report(&s, fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(r.body.contains(names), "{fields:?}: {}", r.body);
    }
    let r = report(
        &s,
        &[
            ("caller", CALLER),
            ("called", "+16025550111"),
            ("status", "NOANSWER"),
            ("call_id", "f"),
        ],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // A caller ID that is not a phone number (a SIP URI, a shell trick) is never texted.
    let r = report(
        &s,
        &[
            ("caller", "sip:$(reboot)@evil"),
            ("called", BUSINESS_NUMBER),
            ("status", "NOANSWER"),
            ("call_id", "g"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 1);
    assert_eq!(
        s.text("SELECT from_raw FROM calls").as_deref(),
        Some("anonymous")
    );
    settled(&s);
    assert!(fake.sends().is_empty(), "{:?}", fake.sends());

    // Signed JSON: HMAC-SHA256 over "{timestamp}.{body}".
    let body = format!(
        r#"{{"caller":"{CALLER}","called":"{BUSINESS_NUMBER}","status":"BUSY","call_id":"1700000002.7","duration":9}}"#
    );
    let post = |ts: i64, secret: &str| {
        let ts = ts.to_string();
        let sig = textback::providers::pbx::signature(secret, &ts, body.as_bytes());
        s.post_raw(
            "/hooks/pbx/call",
            "application/json",
            &body,
            &[
                ("X-Textback-Timestamp", &ts),
                ("X-Textback-Signature", &sig),
            ],
        )
    };
    assert_eq!(post(now_secs(), "not-the-secret-0123").status, 403);
    assert_eq!(post(now_secs() - 400, PBX_SECRET).status, 403);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls"),
        1,
        "nothing recorded from refused reports"
    );
    assert_eq!(post(now_secs(), PBX_SECRET).status, 200);
    let send = wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    assert_eq!(send.get("From"), Some(BUSINESS_NUMBER));
}

// -------------------------------------------------------------------------------------------------------------
// An Android phone on the desk, with missed calls from the PBX

const PHONE_USER: &str = "sms";
const PHONE_PASSWORD: &str = "nanoid-password";
const PHONE_KEY: &str = "a-long-signing-key-for-tests";
/// Its first answer comes after the client gave up (but the phone took the text).
const SLOW: &str = "+14805550177";

/// capcom6's SMSGate local server: 202 with the message's state, 409 for an id it already has, the state by
/// id, HTTP Basic auth.
fn fake_phone() -> FakeApi {
    FakeApi::start(|req, before| {
        let now = Duration::ZERO;
        if req.header("Authorization") != Some(basic(PHONE_USER, PHONE_PASSWORD).as_str()) {
            return (401, r#"{"message":"Unauthorized"}"#.into(), now);
        }
        let state = |id: &str, to: &str, state: &str| {
            serde_json::json!({"id": id, "deviceId": "dev1", "state": state, "isHashed": false, "isEncrypted": false,
                "recipients": [{"phoneNumber": to, "state": state, "error": null}],
                "states": {state: "2026-11-28T15:00:00.000+00:00"}})
            .to_string()
        };
        let taken: Vec<serde_json::Value> = before
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/messages")
            .map(ApiRequest::json)
            .collect();
        if req.method == "GET" {
            let id = req.path.trim_start_matches("/messages/");
            return match taken.iter().find(|m| m["id"] == id) {
                Some(m) => (
                    200,
                    state(
                        id,
                        m["phoneNumbers"][0].as_str().unwrap_or_default(),
                        "Sent",
                    ),
                    now,
                ),
                None => (404, String::new(), now),
            };
        }
        let body = req.json();
        let id = body["id"].as_str().unwrap_or_default().to_string();
        if taken.iter().any(|m| m["id"] == id.as_str()) {
            return (
                409,
                r#"{"message":"Message with the same ID already exists"}"#.into(),
                now,
            );
        }
        let to = body["phoneNumbers"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let wait = if to == SLOW {
            Duration::from_millis(2500)
        } else {
            now
        };
        (202, state(&id, &to, "Pending"), wait)
    })
}

fn pbx_phone_server() -> (FakeApi, TestServer) {
    let fake = fake_phone();
    let providers = format!(
        r#"[providers.pbx]
kind = "pbx"
token = "{PBX_TOKEN}"

[providers.phone]
kind = "android-gateway"
url = "{}"
username = "{PHONE_USER}"
password = "{PHONE_PASSWORD}"
signing_key = "{PHONE_KEY}"
send_timeout = "1s"
settle_time = "1s"
retry_backoff = "200ms""#,
        fake.url
    );
    let s = TestServer::start(&config(
        &providers,
        "provider = \"pbx\"\nsms_provider = \"phone\"",
    ));
    (fake, s)
}

fn phone_event(s: &TestServer, key: &str, ts: i64, body: &str) -> Response {
    let ts = ts.to_string();
    let sig = textback::providers::android_gateway::signature(key, body.as_bytes(), &ts);
    s.post_raw(
        "/hooks/phone/events",
        "application/json",
        body,
        &[("X-Signature", &sig), ("X-Timestamp", &ts)],
    )
}

fn phone_missed_call(s: &TestServer, caller: &str, id: &str) {
    let r = report(
        s,
        &[
            ("caller", caller),
            ("called", BUSINESS_NUMBER),
            ("status", "NOANSWER"),
            ("call_id", id),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_pbx_missed_call_is_texted_from_the_phone() {
    let (fake, s) = pbx_phone_server();
    phone_missed_call(&s, CALLER, "1700000003.1");
    let send = wait_for("the text-back", 10, || {
        fake.requests("POST", "/messages").into_iter().next()
    });
    let body = send.json();
    assert_eq!(body["phoneNumbers"], serde_json::json!([CALLER]));
    assert_eq!(body["withDeliveryReport"], true);
    assert!(
        body["textMessage"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi, this is Acme HVAC."),
        "{body}"
    );
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("textback-1-"), "{id}");
    wait_for("the text to be taken", 10, || {
        (status_of(&s, &id) == "queued").then_some(())
    });

    // The phone reports it sent, then delivered.
    for (n, event) in ["sms:sent", "sms:delivered"].iter().enumerate() {
        let body = serde_json::json!({"id": format!("evt-{n}"), "webhookId": "wh1", "event": event, "deviceId": "dev1",
            "payload": {"messageId": id, "sender": null, "recipient": CALLER, "simNumber": 1, "phoneNumber": CALLER}})
        .to_string();
        assert_eq!(phone_event(&s, PHONE_KEY, now_secs(), &body).status, 200);
    }
    assert_eq!(status_of(&s, &id), "delivered");

    // A reply reaches the business (the phone does not know its own number).
    let reply = serde_json::json!({"id": "evt-r", "webhookId": "wh2", "event": "sms:received", "deviceId": "dev1",
        "payload": {"messageId": "in-1", "sender": CALLER, "recipient": null, "simNumber": 1, "message": "Tomorrow 9am?",
            "receivedAt": "2026-11-28T08:00:00.000-07:00", "phoneNumber": CALLER}})
    .to_string();
    assert_eq!(phone_event(&s, PHONE_KEY, now_secs(), &reply).status, 200);
    assert_eq!(
        s.text("SELECT body FROM messages WHERE direction = 'in'")
            .as_deref(),
        Some("Tomorrow 9am?")
    );
    // Its signature is checked: another key, an old timestamp, a changed body.
    let cases = [(PHONE_KEY, now_secs() - 301), ("another-key", now_secs())];
    for (key, ts) in cases {
        assert_eq!(
            phone_event(&s, key, ts, &reply.replace("evt-r", "evt-x")).status,
            403,
            "{key} {ts}"
        );
    }
    let ts = now_secs().to_string();
    let sig = textback::providers::android_gateway::signature(PHONE_KEY, reply.as_bytes(), &ts);
    let forged = reply.replace("Tomorrow 9am?", "Call me at 900");
    let r = s.post_raw(
        "/hooks/phone/events",
        "application/json",
        &forged,
        &[("X-Signature", &sig), ("X-Timestamp", &ts)],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
        1
    );
    let to_caller = fake
        .requests("POST", "/messages")
        .iter()
        .filter(|r| r.json()["phoneNumbers"][0] == CALLER)
        .count();
    assert_eq!(to_caller, 1, "one call, one text");
    // Staff hear of the reply through the phone too.
    wait_for("the staff alert", 10, || {
        fake.requests("POST", "/messages")
            .into_iter()
            .find(|r| r.json()["phoneNumbers"][0] == STAFF_NUMBER)
    });
}

#[test]
fn the_phone_confirms_stop_itself_and_learns_from_failures() {
    let (fake, s) = pbx_phone_server();
    let stop = serde_json::json!({"id": "evt-s", "webhookId": "wh2", "event": "sms:received", "deviceId": "dev1",
        "payload": {"messageId": "in-s", "sender": "+14805550151", "recipient": null, "simNumber": 1, "message": "STOP",
            "receivedAt": "2026-11-28T08:00:00.000-07:00", "phoneNumber": "+14805550151"}})
    .to_string();
    assert_eq!(phone_event(&s, PHONE_KEY, now_secs(), &stop).status, 200);
    assert!(opted_out(&s, "+14805550151"));
    // No carrier stands between a SIM and the recipient: the one confirmation is ours.
    let confirmation = wait_for("the opt-out confirmation", 10, || {
        fake.requests("POST", "/messages").into_iter().next()
    });
    let text = confirmation.json()["textMessage"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("unsubscribed"), "{text}");
    phone_missed_call(&s, "+14805550151", "1700000004.1");
    settled(&s);
    assert_eq!(
        fake.requests("POST", "/messages").len(),
        1,
        "no text-back to someone who opted out"
    );

    // The phone could not send: the number is no mobile.
    phone_missed_call(&s, "+14805550152", "1700000004.2");
    let send = wait_for("the text-back", 10, || {
        fake.requests("POST", "/messages")
            .into_iter()
            .find(|r| r.json()["phoneNumbers"][0] == "+14805550152")
    });
    let id = send.json()["id"].as_str().unwrap().to_string();
    wait_for("the text to be taken", 10, || {
        (status_of(&s, &id) == "queued").then_some(())
    });
    let failed = serde_json::json!({"id": "evt-f", "webhookId": "wh3", "event": "sms:failed", "deviceId": "dev1",
        "payload": {"messageId": id, "sender": null, "recipient": "+14805550152", "simNumber": 1,
            "failedAt": "2026-11-28T08:00:00.000-07:00", "reason": "Invalid phone number type", "phoneNumber": "+14805550152"}})
    .to_string();
    assert_eq!(phone_event(&s, PHONE_KEY, now_secs(), &failed).status, 200);
    assert_eq!(status_of(&s, &id), "failed");
    assert!(landline(&s, "+14805550152"));
}

#[test]
fn a_send_the_phone_took_but_never_answered_is_not_sent_twice() {
    let (fake, s) = pbx_phone_server();
    phone_missed_call(&s, SLOW, "1700000005.1");
    // The send times out after 1 s; the text is checked with the phone, which has it, so it is not resent.
    let id = wait_for("the text to be found on the phone", 20, || {
        s.text(&format!("SELECT provider_sid FROM messages WHERE to_number = '{SLOW}' AND status IN ('queued', 'sent')"))
    });
    assert!(id.starts_with("textback-"), "{id}");
    assert_eq!(
        fake.requests("POST", "/messages").len(),
        1,
        "{:?}",
        fake.received()
    );
    assert_eq!(fake.requests("GET", &format!("/messages/{id}")).len(), 1);
}

#[test]
fn the_admin_pages_show_where_each_account_is_pointed() {
    let (_fake, s) = pbx_phone_server();
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    assert_eq!(b.login("sam", PASSWORD).status, 303);
    // Where each account is pointed is set-up: on the Setup page, not the dashboard or settings.
    for page in ["/dashboard", "/settings"] {
        let p = b.get(page);
        assert_eq!(p.status, 200, "{page}");
        assert!(!p.body.contains("/hooks/"), "{page}");
    }
    {
        let page = "/golive";
        let p = b.get(page);
        assert_eq!(p.status, 200, "{page}");
        for want in [
            "pbx <small>(pbx)</small>",
            "Used by Acme HVAC (calls).",
            &format!("<code>{PUBLIC_URL}/hooks/pbx/call</code>"),
            "phone <small>(android-gateway)</small>",
            "Used by Acme HVAC (texts).",
            &format!("<code>{PUBLIC_URL}/hooks/phone/events</code>"),
        ] {
            assert!(p.body.contains(want), "{page} lacks {want}:\n{}", p.body);
        }
        assert!(!p.body.contains("/hooks/twilio"), "{page}");
    }
}

#[test]
fn twilio_numbers_keep_their_urls() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    assert_eq!(b.login("sam", PASSWORD).status, 303);
    // The webhook URLs are set-up, shown on the Setup page (not the dashboard).
    assert!(!b.get("/dashboard").body.contains("/hooks/twilio/voice"));
    let p = b.get("/golive");
    for hook in ["voice", "call-status", "sms"] {
        let want = format!("<code>{PUBLIC_URL}/hooks/twilio/{hook}</code>");
        assert!(p.body.contains(&want), "lacks {want}:\n{}", p.body);
    }
    assert!(p.body.contains("Twilio number"), "{}", p.body);
    // The account's own URL works as well as the legacy one.
    let call = voice("CA-own-url", CALLER);
    assert_eq!(
        s.post_signed("/hooks/main/voice", &borrow(&call)).status,
        200
    );
}
