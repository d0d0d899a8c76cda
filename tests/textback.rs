//! The text-back itself, end to end: missed-call webhooks in, texts out through the fake Twilio API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};

fn server_with(delay: &str, extra: &str) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let server = TestServer::start(&twilio_config(&fake.url, delay, extra));
    (fake, server)
}

/// Waits past the point where a text would have gone, then asserts none did.
fn assert_no_text_after(fake: &FakeTwilio, s: &TestServer, delay: Duration) {
    std::thread::sleep(delay);
    assert_eq!(
        fake.sends().len(),
        0,
        "unexpected text: {:?}\n{}",
        fake.sends(),
        s.log()
    );
}

#[test]
fn a_missed_call_gets_exactly_one_text_after_the_delay() {
    let (fake, s) = server_with("2s", "");
    let start = Instant::now();
    s.missed_call("CA1", CALLER);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE state = 'pending'"),
        1
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(fake.sends().is_empty(), "sent before the delay");
    let send = wait_for("the text-back", 10, || fake.sends().into_iter().next());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "sent after {took:?}, before the 2 s delay"
    );

    assert_eq!(
        send.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(send.get("To"), Some(CALLER));
    assert_eq!(send.get("From"), Some(BUSINESS_NUMBER));
    assert_eq!(
        send.get("StatusCallback"),
        Some(format!("{PUBLIC_URL}/hooks/twilio/message-status").as_str())
    );
    let body = send.get("Body").unwrap();
    assert!(
        body.starts_with("Hi, this is Acme HVAC. Sorry we missed your call!"),
        "{body}"
    );
    assert!(body.ends_with("Reply STOP to opt out."), "{body}");

    wait_for("the message row", 5, || {
        s.text("SELECT status FROM messages WHERE direction = 'out'")
            .filter(|st| st == "queued")
    });
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("sent")
    );
    assert_eq!(s.text("SELECT state FROM jobs").as_deref(), Some("done"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends().len(), 1);
}

#[test]
fn missed_answered_and_short_calls_are_told_apart() {
    let (fake, s) = server_with("0s", "");
    // Answered and talked: never texted.
    s.ring("CA10", "+14805550110");
    s.dial_ended("CA10", "+14805550110", "completed", Some(95));
    s.call_status("CA10", "+14805550110", "completed", 110);
    // Answered for 3 s (a hang-up or a voicemail box): texted.
    s.ring("CA11", "+14805550111");
    s.dial_ended("CA11", "+14805550111", "completed", Some(3));
    // Busy: texted.
    s.ring("CA12", "+14805550112");
    s.dial_ended("CA12", "+14805550112", "busy", None);
    // Hung up while it rang: no dial action ever came; the status callback finalises it.
    s.ring("CA13", "+14805550113");
    s.call_status("CA13", "+14805550113", "completed", 6);
    // A number forwarded elsewhere: only the status callback, no-answer.
    s.call_status("CA14", "+14805550114", "no-answer", 0);

    wait_for("four texts", 10, || (fake.sends().len() == 4).then_some(()));
    std::thread::sleep(Duration::from_millis(300));
    let mut to: Vec<String> = fake
        .sends()
        .iter()
        .map(|r| r.get("To").unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "+14805550111",
            "+14805550112",
            "+14805550113",
            "+14805550114"
        ]
    );
    assert_eq!(
        s.text("SELECT state FROM calls WHERE call_sid = 'CA10'")
            .as_deref(),
        Some("answered")
    );
    assert_eq!(
        s.text("SELECT miss_reason FROM calls WHERE call_sid = 'CA13'")
            .as_deref(),
        Some("hung-up-while-ringing")
    );
}

#[test]
fn an_answer_reported_during_the_delay_cancels_the_text() {
    let (fake, s) = server_with("2s", "");
    s.ring("CA20", CALLER);
    // The status callback arrives first and looks like a hang-up...
    s.call_status("CA20", CALLER, "canceled", 0);
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("scheduled")
    );
    // ...then the dial action says staff talked to them.
    s.dial_ended("CA20", CALLER, "completed", Some(60));
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("cancelled")
    );
    assert_no_text_after(&fake, &s, Duration::from_millis(2800));
}

#[test]
fn nobody_who_cannot_or_must_not_be_texted_is_texted() {
    let (fake, s) = server_with("0s", "");
    let callers = [
        ("CA30", "anonymous", "no-caller-id"),
        ("CA31", "+266696687", "no-caller-id"),
        ("CA32", "restricted", "no-caller-id"),
        ("CA33", "12345", "no-caller-id"),
        ("CA34", STAFF_NUMBER, "staff-number"),
        ("CA35", BUSINESS_NUMBER, "own-number"),
        ("CA36", "client:alice", "no-caller-id"),
    ];
    for (sid, from, _) in callers {
        s.missed_call(sid, from);
    }
    for (sid, from, reason) in callers {
        let got = s.text(&format!(
            "SELECT textback || ':' || textback_reason FROM calls WHERE call_sid = '{sid}'"
        ));
        assert_eq!(
            got.as_deref(),
            Some(format!("suppressed:{reason}").as_str()),
            "{from}"
        );
    }
    assert_no_text_after(&fake, &s, Duration::from_millis(500));
}

#[test]
fn one_text_per_caller_per_repeat_window() {
    let (fake, s) = server_with("0s", "");
    s.missed_call("CA40", CALLER);
    wait_for("the first text", 10, || {
        (fake.sends().len() == 1).then_some(())
    });
    s.missed_call("CA41", CALLER);
    s.missed_call("CA42", CALLER);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(fake.sends().len(), 1);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE textback = 'suppressed' AND textback_reason = 'repeat-window'"),
        2
    );
}

#[test]
fn an_opt_out_during_the_delay_cancels_the_text_and_blocks_later_ones() {
    let (fake, s) = server_with("2s", "");
    s.missed_call("CA50", CALLER);
    assert_eq!(s.text_in("SM50", CALLER, "  Stop! ").status, 200);
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM contacts WHERE opted_out_at IS NOT NULL"),
        1
    );
    assert_eq!(
        s.text("SELECT change || ' ' || source FROM consent_events")
            .as_deref(),
        Some("opt_out keyword:Stop!")
    );
    s.missed_call("CA51", CALLER);
    assert_eq!(
        s.text("SELECT textback_reason FROM calls WHERE call_sid = 'CA51'")
            .as_deref(),
        Some("opted-out")
    );
    assert_no_text_after(&fake, &s, Duration::from_millis(2600));

    // START opts back in; the audit trail keeps both changes.
    s.text_in("SM52", CALLER, "start");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM contacts WHERE opted_out_at IS NOT NULL"),
        0
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM consent_events"), 2);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
        2
    );
}

#[test]
fn help_gets_the_business_name_and_how_to_opt_out() {
    let (fake, s) = server_with("0s", "");
    s.text_in("SM60", CALLER, "HELP");
    let reply = wait_for("the HELP answer", 10, || fake.sends().into_iter().next());
    let body = reply.get("Body").unwrap();
    assert!(
        body.contains("Acme HVAC") && body.contains("Reply STOP to opt out"),
        "{body}"
    );
    assert!(!body.to_lowercase().contains("call you back"), "{body}");
}

#[test]
fn final_provider_errors_fail_at_once_and_21610_opts_the_contact_out() {
    let (fake, s) = server_with("0s", "");
    s.missed_call("CA70", "+15005550004"); // 21610 unsubscribed
    s.missed_call("CA71", "+15005550001"); // 21211 invalid number
    s.missed_call("CA72", "+15005550009"); // 21614 not a mobile
    wait_for("three failures", 10, || {
        (s.count("SELECT COUNT(*) FROM messages WHERE status = 'failed'") == 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.sends().len(), 3, "final errors must not be retried");
    let codes = s.count("SELECT SUM(error_code) FROM messages");
    assert_eq!(codes, 21610 + 21211 + 21614);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE state = 'failed'"),
        3
    );
    assert_eq!(
        s.text("SELECT phone FROM contacts WHERE opted_out_at IS NOT NULL")
            .as_deref(),
        Some("+15005550004")
    );
    assert_eq!(
        s.text("SELECT source FROM consent_events").as_deref(),
        Some("provider:21610")
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE textback = 'failed'"),
        3
    );
}

#[test]
fn outages_and_rate_limits_are_retried_and_sent_once() {
    let (fake, s) = server_with("0s", "");
    fake.script(vec![
        Scripted::error(503, 20500, "Service Unavailable"),
        Scripted {
            status: 429,
            body: r#"{"code": 20429, "message": "Too Many Requests", "status": 429}"#.into(),
            headers: vec![("Retry-After".into(), "1".into())],
        },
    ]);
    s.missed_call("CA80", CALLER);
    wait_for("the retry state", 10, || {
        s.text("SELECT status FROM messages")
            .filter(|st| st == "retrying")
    });
    let sent = wait_for("the text after retries", 40, || {
        s.text("SELECT status FROM messages")
            .filter(|st| st == "queued")
    });
    assert_eq!(sent, "queued");
    assert_eq!(fake.sends().len(), 3);
    assert_eq!(s.count("SELECT attempts FROM jobs"), 3);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'"),
        1
    );
}

#[test]
fn delivery_receipts_only_move_forward_and_apply_once() {
    let (fake, s) = server_with("0s", "");
    s.missed_call("CA90", CALLER);
    wait_for("the text", 10, || fake.sends().into_iter().next());
    let sid = wait_for("the message sid", 5, || {
        s.text("SELECT provider_sid FROM messages WHERE provider_sid IS NOT NULL")
    });
    assert_eq!(s.receipt(&sid, CALLER, "sent", None).status, 200);
    assert_eq!(s.receipt(&sid, CALLER, "delivered", None).status, 200);
    assert_eq!(s.receipt(&sid, CALLER, "sent", None).status, 200);
    assert_eq!(
        s.text("SELECT status FROM messages").as_deref(),
        Some("delivered")
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM delivery_receipts"), 2);
    // An unknown message id is acknowledged (Twilio would retry otherwise) and changes nothing.
    assert_eq!(
        s.receipt(
            "SMffffffffffffffffffffffffffffffff",
            CALLER,
            "failed",
            Some("30006")
        )
        .status,
        200
    );
    assert_eq!(
        s.text("SELECT status FROM messages").as_deref(),
        Some("delivered")
    );
}

#[test]
fn an_undelivered_receipt_records_the_carrier_error() {
    let (fake, s) = server_with("0s", "");
    s.missed_call("CA91", CALLER);
    wait_for("the text", 10, || fake.sends().into_iter().next());
    let sid = wait_for("the message sid", 5, || {
        s.text("SELECT provider_sid FROM messages WHERE provider_sid IS NOT NULL")
    });
    s.receipt(&sid, CALLER, "undelivered", Some("30006"));
    assert_eq!(
        s.text("SELECT status || ' ' || error_code FROM messages")
            .as_deref(),
        Some("undelivered 30006")
    );
}

#[test]
fn no_forward_to_means_every_call_is_missed_and_voicemail_is_recorded() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "0s", "voicemail = true").replace(
        &format!("forward_to = [\"{STAFF_NUMBER}\"]"),
        "forward_to = []",
    );
    let s = TestServer::start(&config);
    let twiml = s.ring("CA95", CALLER);
    assert!(
        twiml.body.contains("<Record") && twiml.body.contains("/hooks/twilio/recording"),
        "{}",
        twiml.body
    );
    let rec = recording(
        "CA95",
        CALLER,
        "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
    );
    assert_eq!(
        s.post_signed("/hooks/twilio/recording", &borrow(&rec))
            .status,
        200
    );
    assert!(s
        .text("SELECT recording_url FROM calls")
        .unwrap()
        .ends_with("RE1"));
    wait_for("the text", 10, || fake.sends().into_iter().next());
    assert_eq!(
        s.text("SELECT miss_reason FROM calls").as_deref(),
        Some("no-forward-to")
    );
}

#[test]
fn shuts_down_cleanly_on_sigterm() {
    let (_fake, mut s) = server_with("1h", "");
    s.missed_call("CA99", CALLER);
    assert!(s.stop(), "did not exit 0 on SIGTERM:\n{}", s.log());
    assert!(s.log().contains("stopped"));
}
