//! Webhook handling through HTTP: signatures, malformed input, idempotency, TwiML answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn server() -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let server = TestServer::start(&twilio_config(&fake.url, "1s", ""));
    (fake, server)
}

fn nothing_written(s: &TestServer) {
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 0);
    assert_eq!(s.count("SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(s.count("SELECT COUNT(*) FROM jobs"), 0);
    assert_eq!(s.count("SELECT COUNT(*) FROM contacts"), 0);
}

#[test]
fn forged_missing_and_stale_signatures_get_403_and_change_nothing() {
    let (_fake, s) = server();
    let params = voice("CA100", CALLER);
    let p = borrow(&params);
    let cases: Vec<(&str, Response)> = vec![
        ("no signature", s.post_form("/hooks/twilio/voice", &p, &[])),
        (
            "garbage signature",
            s.post_form(
                "/hooks/twilio/voice",
                &p,
                &[("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
            ),
        ),
        (
            "wrong auth token",
            s.post_signed_with("/hooks/twilio/voice", &p, "not-the-token", PUBLIC_URL, &[]),
        ),
        (
            "signed for another URL",
            s.post_signed_with(
                "/hooks/twilio/voice",
                &p,
                AUTH_TOKEN,
                "https://evil.example.com",
                &[],
            ),
        ),
        (
            "signed for another path",
            s.post_form(
                "/hooks/twilio/voice",
                &p,
                &[("X-Twilio-Signature", &sign(&p, "/hooks/twilio/sms"))],
            ),
        ),
    ];
    for (what, resp) in cases {
        assert_eq!(resp.status, 403, "{what}: {resp:?}");
    }
    // A valid signature over tampered parameters.
    let sig = sign(&p, "/hooks/twilio/voice");
    let mut tampered = p.clone();
    tampered.retain(|(k, _)| *k != "From");
    tampered.push(("From", "+19995550000"));
    let resp = s.post_form(
        "/hooks/twilio/voice",
        &tampered,
        &[("X-Twilio-Signature", &sig)],
    );
    assert_eq!(resp.status, 403);
    nothing_written(&s);
}

fn sign(params: &[(&str, &str)], path: &str) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    textback::providers::twilio::signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &owned)
}

#[test]
fn signatures_with_the_default_port_are_accepted() {
    let (_fake, s) = server();
    let params = voice("CA101", CALLER);
    let resp = s.post_signed_with(
        "/hooks/twilio/voice",
        &borrow(&params),
        AUTH_TOKEN,
        "https://textback.example.com:443",
        &[],
    );
    assert_eq!(resp.status, 200, "{resp:?}");
}

#[test]
fn malformed_requests_get_precise_errors_and_change_nothing() {
    let (_fake, s) = server();
    let no_sid: Vec<(&str, &str)> = vec![
        ("From", CALLER),
        ("To", BUSINESS_NUMBER),
        ("CallStatus", "ringing"),
    ];
    let resp = s.post_signed("/hooks/twilio/voice", &no_sid);
    assert_eq!(resp.status, 400);
    assert!(
        resp.body.contains("missing required parameter CallSid"),
        "{}",
        resp.body
    );

    let mut bad_duration = voice("CA102", CALLER);
    bad_duration.push(("DialCallStatus", "completed".into()));
    bad_duration.push(("DialCallDuration", "soon".into()));
    let resp = s.post_signed("/hooks/twilio/dial", &borrow(&bad_duration));
    assert_eq!(resp.status, 400);
    assert!(
        resp.body
            .contains("DialCallDuration must be a whole number"),
        "{}",
        resp.body
    );

    let resp = s.post_signed(
        "/hooks/twilio/sms",
        &[("From", CALLER), ("To", BUSINESS_NUMBER), ("Body", "hi")],
    );
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("MessageSid"), "{}", resp.body);

    let resp = s.post_raw(
        "/hooks/twilio/voice",
        "application/json",
        "{\"CallSid\": \"CA1\"}",
        &[],
    );
    assert_eq!(resp.status, 415);

    let mut elsewhere = voice("CA103", CALLER);
    elsewhere.retain(|(k, _)| *k != "To");
    elsewhere.push(("To", "+19995551234".into()));
    let resp = s.post_signed("/hooks/twilio/voice", &borrow(&elsewhere));
    assert_eq!(resp.status, 404);
    assert!(resp.body.contains("not configured"), "{}", resp.body);

    let big = "x".repeat(100 * 1024);
    let resp = s.post_signed(
        "/hooks/twilio/sms",
        &[
            ("Body", big.as_str()),
            ("MessageSid", "SM1"),
            ("To", BUSINESS_NUMBER),
        ],
    );
    assert_eq!(resp.status, 413);
    nothing_written(&s);
}

#[test]
fn the_voice_webhook_rings_staff_with_our_dial_action() {
    let (_fake, s) = server();
    let resp = s.ring("CA104", CALLER);
    assert_eq!(resp.status, 200);
    assert!(
        resp.content_type.starts_with("text/xml"),
        "{}",
        resp.content_type
    );
    assert!(
        resp.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial"),
        "{}",
        resp.body
    );
    assert!(resp.body.contains("timeout=\"20\""), "{}", resp.body);
    assert!(
        resp.body
            .contains(&format!("action=\"{PUBLIC_URL}/hooks/twilio/dial\"")),
        "{}",
        resp.body
    );
    assert!(
        resp.body
            .contains(&format!("<Number>{STAFF_NUMBER}</Number>")),
        "{}",
        resp.body
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE state = 'ringing'"),
        1
    );

    let missed = s.dial_ended("CA104", CALLER, "no-answer", None);
    assert!(
        missed.body.contains("<Say>Sorry we missed your call."),
        "{}",
        missed.body
    );
    let answered = s.dial_ended("CA105", CALLER, "completed", Some(120));
    assert!(
        answered.body.contains("<Hangup/>") && !answered.body.contains("<Say>"),
        "{}",
        answered.body
    );
    let status = s.call_status("CA104", CALLER, "completed", 22);
    assert_eq!(
        status.body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
}

#[test]
fn a_webhook_delivered_twice_produces_one_call_one_job_and_one_text() {
    let (fake, s) = server();
    for _ in 0..2 {
        assert_eq!(s.ring("CA200", CALLER).status, 200);
        assert_eq!(s.dial_ended("CA200", CALLER, "no-answer", None).status, 200);
        assert_eq!(s.call_status("CA200", CALLER, "completed", 21).status, 200);
        assert_eq!(s.call_status("CA200", CALLER, "no-answer", 0).status, 200);
    }
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 1);
    assert_eq!(s.count("SELECT COUNT(*) FROM jobs"), 1);
    wait_for("the text", 10, || (fake.sends().len() == 1).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(fake.sends().len(), 1);
}

#[test]
fn the_idempotency_token_deduplicates_retries() {
    let (_fake, s) = server();
    let token = [("I-Twilio-Idempotency-Token", "tok-1")];
    let send = |body: &str, sid: &str| {
        let p = [
            ("Body", body),
            ("From", CALLER),
            ("MessageSid", sid),
            ("To", BUSINESS_NUMBER),
        ];
        s.post_signed_with("/hooks/twilio/sms", &p, AUTH_TOKEN, PUBLIC_URL, &token)
    };
    assert_eq!(send("hello", "SM300").status, 200);
    // The same event retried (even if a proxy mangled the sid) changes nothing.
    assert_eq!(send("hello", "SM301").status, 200);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
        1
    );
    // The natural key deduplicates without a token too.
    assert_eq!(s.text_in("SM302", CALLER, "again").status, 200);
    assert_eq!(s.text_in("SM302", CALLER, "again").status, 200);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
        2
    );
}

#[test]
fn healthz_reports_ok() {
    let (_fake, s) = server();
    let h = s.get("/healthz");
    assert_eq!(h.status, 200);
    assert!(h.body.contains("\"status\":\"ok\""), "{}", h.body);
}
