//! The conversation engine end to end through the Twilio webhooks and the fake API: hours and quiet hours,
//! who is never texted, not racing a human, follow-ups, keyword rules, alerts, opt-outs and pacing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;

fn start(extra: &str) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", extra));
    (fake, s)
}

fn start_with(config: impl FnOnce(&str) -> String) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&config(&fake.url));
    (fake, s)
}

/// `HH:MM` in Phoenix (UTC-7 all year), `offset_min` minutes from now.
fn phoenix(offset_min: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::minutes(offset_min) - chrono::Duration::hours(7);
    t.format("%H:%M").to_string()
}

/// Today's date in Phoenix.
fn phoenix_today() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(7))
        .format("%Y-%m-%d")
        .to_string()
}

fn body_to(fake: &FakeTwilio, to: &str) -> String {
    wait_for("a text", 10, || fake.sends_to(to).into_iter().next())
        .get("Body")
        .unwrap()
        .to_string()
}

// -------------------------------------------------------------------------------------------------------------
// Hours and quiet hours

#[test]
fn outside_opening_hours_the_after_hours_script_is_used() {
    let (fake, s) =
        start_with(|api| twilio_config(api, "0s", "").replace("[\"00:00-24:00\"]", "[]"));
    s.missed_call("CA1", CALLER);
    let body = body_to(&fake, CALLER);
    assert!(body.contains("Reply EMERGENCY"), "{body}");

    // A closure date counts as closed even inside the weekly hours.
    let (fake, s) = start(&format!("closed = [\"{}\"]", phoenix_today()));
    s.missed_call("CA2", CALLER);
    let body = body_to(&fake, CALLER);
    assert!(body.contains("Reply EMERGENCY"), "{body}");

    // Open: the normal script.
    let (fake, s) = start("");
    s.missed_call("CA3", CALLER);
    let body = body_to(&fake, CALLER);
    assert!(body.contains("What can we help you with?"), "{body}");
}

#[test]
fn quiet_hours_defer_skip_or_drop_the_first_text_as_configured() {
    // Quiet hours from an hour ago until two hours from now.
    let quiet = format!("quiet_hours = \"{}-{}\"", phoenix(-60), phoenix(120));
    let with = |policy: &str, max: &str| {
        let (policy, max, quiet) = (policy.to_string(), max.to_string(), quiet.clone());
        move |api: &str| {
            twilio_config(api, "0s", "")
                .replace("quiet_hours = \"\"", &quiet)
                .replace("follow_ups = []", &format!("follow_ups = []\nquiet_hours_policy = \"{policy}\"\nmax_deferral = \"{max}\""))
        }
    };
    let (fake, s) = start_with(with("defer", "12h"));
    s.missed_call("CA1", CALLER);
    let due = s.count("SELECT run_at FROM jobs WHERE state = 'pending'");
    let wait_ms = due - chrono::Utc::now().timestamp_millis();
    assert!(
        (100 * 60_000..=121 * 60_000).contains(&wait_ms),
        "deferred by {wait_ms} ms"
    );
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("scheduled")
    );

    let (_fake2, s2) = start_with(with("defer", "1h"));
    s2.missed_call("CA2", CALLER);
    assert_eq!(
        s2.text("SELECT textback_reason FROM calls").as_deref(),
        Some("too-late")
    );

    let (_fake3, s3) = start_with(with("skip", "12h"));
    s3.missed_call("CA3", CALLER);
    assert_eq!(
        s3.text("SELECT textback_reason FROM calls").as_deref(),
        Some("quiet-hours")
    );

    // "send": the caller called a minute ago, so it goes now, with the after-hours script.
    let (fake4, s4) = start_with(with("send", "12h"));
    s4.missed_call("CA4", CALLER);
    assert!(body_to(&fake4, CALLER).contains("Reply EMERGENCY"));

    // status shows why nobody was texted.
    let (code, out, _) = cli(
        s2.dir.path(),
        &["status", "--config", s2.config.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert!(out.contains("suppressed (too-late)"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(fake.sends().is_empty());
}

// -------------------------------------------------------------------------------------------------------------
// Who is never texted

#[test]
fn staff_denied_foreign_blocked_and_unverified_callers_are_not_texted() {
    let extra = r#"staff = ["+14805550001"]
deny = ["+1900", "+14805550002"]
skip_unverified_callers = true
skip_instant_hangups = true
notify = [{ name = "Sam", sms = "+14805550003" }]"#;
    let (fake, s) = start(extra);
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, _, err) = cli(s.dir.path(), &["block", "+14805550004", "--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    let cases = [
        ("CA1", "+14805550001", "staff-number"),
        ("CA2", "+14805550002", "denied"),
        ("CA3", "+19005550100", "denied"),
        ("CA4", "+14805550003", "staff-number"),
        ("CA5", "+442071838750", "country-not-allowed"),
        ("CA6", "+14805550004", "blocked"),
    ];
    for (sid, from, _) in cases {
        s.missed_call(sid, from);
    }
    // Caller ID that failed carrier verification.
    let mut p = voice("CA7", "+14805550005");
    p.push(("StirVerstat", "TN-Validation-Failed-B".into()));
    s.post_signed("/hooks/twilio/voice", &borrow(&p));
    p.retain(|(k, _)| *k != "CallStatus");
    p.push(("CallStatus", "in-progress".into()));
    p.push(("DialCallStatus", "no-answer".into()));
    s.post_signed("/hooks/twilio/dial", &borrow(&p));
    // A one-second hang-up from a number never seen before.
    s.call_status("CA8", "+14805550006", "canceled", 1);
    for (sid, reason) in cases
        .iter()
        .map(|(s, _, r)| (*s, *r))
        .chain([("CA7", "unverified-caller-id"), ("CA8", "instant-hang-up")])
    {
        let got = s.text(&format!(
            "SELECT textback_reason FROM calls WHERE call_sid = '{sid}'"
        ));
        assert_eq!(got.as_deref(), Some(reason), "{sid}");
    }
    std::thread::sleep(Duration::from_millis(400));
    assert!(fake.sends().is_empty(), "{:?}", fake.sends());
}

#[test]
fn landlines_found_by_lookup_are_not_texted_and_staff_are_asked_to_call_back() {
    let (fake, s) = start_with(|api| {
        twilio_config(api, "0s", "")
            .replace("repeat_window = \"24h\"", "repeat_window = \"1s\"")
            .replace(
                &format!("api_base = \"{api}\""),
                &format!("api_base = \"{api}\"\nline_type_lookup = true\nlookup_base = \"{api}\""),
            )
    });
    let landline = "+16025551234";
    fake.landline(landline);
    s.missed_call("CA1", landline);
    let alert = body_to(&fake, STAFF_NUMBER);
    assert!(
        alert.contains(landline) && alert.contains("call them back"),
        "{alert}"
    );
    assert_eq!(
        s.text("SELECT textback_reason FROM calls").as_deref(),
        Some("landline")
    );
    assert_eq!(fake.lookups(), 1);
    // The second call is decided from the cache, at once.
    std::thread::sleep(Duration::from_millis(1100));
    s.missed_call("CA2", landline);
    assert_eq!(
        s.text("SELECT textback_reason FROM calls WHERE call_sid = 'CA2'")
            .as_deref(),
        Some("landline")
    );
    assert_eq!(fake.lookups(), 1);
    assert!(fake.sends_to(landline).is_empty());
    // A mobile is looked up once and texted.
    s.missed_call("CA3", CALLER);
    body_to(&fake, CALLER);
    assert_eq!(fake.lookups(), 2);
    assert_eq!(
        s.text(&format!(
            "SELECT line_type FROM line_types WHERE phone = '{CALLER}'"
        ))
        .as_deref(),
        Some("mobile")
    );
}

#[test]
fn a_caller_new_to_the_business_but_known_as_a_landline_is_not_texted() {
    // Line types are cached by number, not by contact: an agency's number looked up for one client is
    // known when it calls another, where it is a new contact (decided without the contact-history queries).
    // The delay keeps the send step's own check out of it: the decision is made when the call comes in.
    let (_fake, s) = start_with(|api| twilio_config(api, "1h", ""));
    let landline = "+16025551234";
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO line_types (phone, line_type, source, checked_at) VALUES (?1, 'landline', 'lookup', ?2)",
        rusqlite::params![landline, now_secs() * 1000],
    )
    .unwrap();
    s.missed_call("CA1", landline);
    s.missed_call("CA2", CALLER);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM contacts"),
        2,
        "two new contacts"
    );
    assert_eq!(
        s.text("SELECT textback || ' ' || textback_reason FROM calls WHERE call_sid = 'CA1'")
            .as_deref(),
        Some("suppressed landline")
    );
    assert_eq!(
        s.text("SELECT textback FROM calls WHERE call_sid = 'CA2'")
            .as_deref(),
        Some("scheduled")
    );
}

/// A dial action for `call_sid` reporting a second forwarded leg, answered and talked for `secs`.
fn second_leg_answered(s: &TestServer, call_sid: &str, from: &str, secs: u64) -> u16 {
    let mut p = voice(call_sid, from);
    p.retain(|(k, _)| *k != "CallStatus");
    p.push(("CallStatus", "in-progress".into()));
    p.push(("DialCallSid", format!("{call_sid}-leg2")));
    p.push(("DialCallStatus", "completed".into()));
    p.push(("DialCallDuration", secs.to_string()));
    s.post_signed("/hooks/twilio/dial", &borrow(&p)).status
}

#[test]
fn a_missed_call_answered_on_a_second_leg_calls_off_its_text() {
    let (fake, s) = start_with(|api| twilio_config(api, "1h", ""));
    assert_eq!(s.ring("CA1", CALLER).status, 200);
    assert_eq!(s.dial_ended("CA1", CALLER, "no-answer", None).status, 200);
    assert_eq!(
        s.text("SELECT textback FROM calls WHERE call_sid = 'CA1'")
            .as_deref(),
        Some("scheduled")
    );
    assert_eq!(second_leg_answered(&s, "CA1", CALLER, 45), 200);
    assert_eq!(
        s.text("SELECT state || ' ' || textback || ' ' || textback_reason FROM calls WHERE call_sid = 'CA1'")
            .as_deref(),
        Some("answered cancelled answered")
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'text_back' AND state = 'pending'"),
        0
    );
    assert!(fake.sends().is_empty());
}

#[test]
fn a_landline_error_marks_the_number_so_it_is_never_tried_again() {
    let (fake, s) = start_with(|api| {
        twilio_config(api, "0s", "").replace("repeat_window = \"24h\"", "repeat_window = \"1s\"")
    });
    s.missed_call("CA1", "+15005550009"); // the fake answers 21614, not a mobile
    wait_for("the failure", 10, || {
        (s.count("SELECT COUNT(*) FROM messages WHERE error_code = 21614") == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1100));
    s.missed_call("CA2", "+15005550009");
    assert_eq!(
        s.text("SELECT textback_reason FROM calls WHERE call_sid = 'CA2'")
            .as_deref(),
        Some("landline")
    );
    assert_eq!(fake.sends_to("+15005550009").len(), 1);
}

// -------------------------------------------------------------------------------------------------------------
// Do not race a human

#[test]
fn calling_the_caller_back_during_the_delay_cancels_the_text() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "3s", ""));
    s.missed_call("CA1", CALLER);
    // The business calls back from its Twilio number: the outbound call's status callback.
    let outbound = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", "CA9"),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-api"),
        ("From", BUSINESS_NUMBER),
        ("To", CALLER),
    ];
    assert_eq!(
        s.post_signed("/hooks/twilio/call-status", &outbound).status,
        200
    );
    assert_eq!(
        s.text("SELECT textback || ' ' || textback_reason FROM calls")
            .as_deref(),
        Some("cancelled called-back")
    );

    // A callback placed from a staff cell (through Twilio, with that caller ID) counts too.
    s.missed_call("CA4", "+14805550444");
    let from_staff = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", "CA8"),
        ("CallStatus", "ringing"),
        ("Direction", "outbound-api"),
        ("From", STAFF_NUMBER),
        ("To", "+14805550444"),
    ];
    assert_eq!(
        s.post_signed("/hooks/twilio/call-status", &from_staff)
            .status,
        200
    );
    assert_eq!(
        s.text("SELECT textback_reason FROM calls WHERE call_sid = 'CA4'")
            .as_deref(),
        Some("called-back")
    );

    // The caller calls again and gets through: the first call's text is called off.
    s.missed_call("CA2", "+14805550222");
    s.ring("CA3", "+14805550222");
    s.dial_ended("CA3", "+14805550222", "completed", Some(45));
    assert_eq!(
        s.text("SELECT textback || ' ' || textback_reason FROM calls WHERE call_sid = 'CA2'")
            .as_deref(),
        Some("cancelled answered")
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert!(fake.sends().is_empty(), "{:?}", fake.sends());
}

#[test]
fn voicemail_that_picks_up_counts_as_missed() {
    let (fake, s) = start("call_screening = true\nmachine_detection = true");
    let twiml = s.ring("CA1", CALLER).body;
    assert!(
        twiml.contains("/hooks/twilio/screen?business=acme&amp;parent=CA1"),
        "{twiml}"
    );
    assert!(twiml.contains("machineDetection=\"Enable\""), "{twiml}");

    // The screening leg: staff hear who calls and must press 1.
    let leg = [
        ("CallSid", "CA1-leg"),
        ("From", CALLER),
        ("To", STAFF_NUMBER),
    ];
    let screen = s.post_signed("/hooks/twilio/screen?business=acme&parent=CA1", &leg);
    assert!(
        screen.body.contains("<Gather numDigits=\"1\"") && screen.body.contains("Press 1"),
        "{}",
        screen.body
    );
    // A voicemail answered and never pressed 1: the dial reports "completed" for 40 s, but it is missed.
    s.dial_ended("CA1", CALLER, "completed", Some(40));
    assert_eq!(
        s.text("SELECT miss_reason FROM calls WHERE call_sid = 'CA1'")
            .as_deref(),
        Some("not-accepted")
    );
    body_to(&fake, CALLER);

    // A person pressed 1: answered, no text.
    s.ring("CA2", "+14805550222");
    let pressed = [
        ("CallSid", "CA2-leg"),
        ("Digits", "1"),
        ("From", "+14805550222"),
        ("To", STAFF_NUMBER),
    ];
    let ok = s.post_signed(
        "/hooks/twilio/screen-accept?business=acme&parent=CA2",
        &pressed,
    );
    assert_eq!(
        ok.body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
    s.dial_ended("CA2", "+14805550222", "completed", Some(40));
    assert_eq!(
        s.text("SELECT state FROM calls WHERE call_sid = 'CA2'")
            .as_deref(),
        Some("answered")
    );

    // Machine detection says a machine answered.
    s.ring("CA3", "+14805550333");
    let mut p = voice("CA3", "+14805550333");
    p.push(("DialCallStatus", "completed".into()));
    p.push(("DialCallDuration", "30".into()));
    p.push(("AnsweredBy", "machine_end_beep".into()));
    s.post_signed("/hooks/twilio/dial", &borrow(&p));
    assert_eq!(
        s.text("SELECT miss_reason FROM calls WHERE call_sid = 'CA3'")
            .as_deref(),
        Some("voicemail")
    );
}

#[test]
fn a_staff_reply_holds_automatic_texts_back() {
    let rules =
        r#"keywords = [{ words = ["BOOK"], reply = "Book here: https://book.example.com" }]"#;
    let (fake, s) = start(rules);
    let cfg = s.config.to_str().unwrap().to_string();
    // Without staff in the conversation, BOOK is answered automatically.
    s.text_in("SM1", "+14805550222", "book");
    assert!(body_to(&fake, "+14805550222").contains("https://book.example.com"));
    // Staff reply by hand...
    let (code, out, err) = cli(
        s.dir.path(),
        &[
            "reply",
            CALLER,
            "--body",
            "Hi, Sam here. What's up?",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(body_to(&fake, CALLER).contains("Sam here"));
    // ...so for the next 30 minutes automation stays quiet.
    s.text_in("SM2", CALLER, "BOOK please");
    wait_for("the staff alert", 10, || {
        (fake.sends_to(STAFF_NUMBER).len() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        fake.sends_to(CALLER).len(),
        1,
        "{:?}",
        fake.sends_to(CALLER)
    );
    // And staff cannot text someone who opted out.
    s.text_in("SM3", "+14805550444", "STOP");
    let (code, _, err) = cli(
        s.dir.path(),
        &[
            "reply",
            "+14805550444",
            "--body",
            "hello?",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("opted out"), "{err}");
}

// -------------------------------------------------------------------------------------------------------------
// Keeping the conversation moving

#[test]
fn follow_ups_go_out_until_the_contact_replies() {
    let steps = r#"follow_ups = [{ after = "1s", script = "Still need help, from {{ name }}?" }, { after = "1s", script = "Last nudge from {{ name }}." }]"#;
    let (fake, s) =
        start_with(|api| twilio_config(api, "0s", "").replace("follow_ups = []", steps));
    // Nobody answers: the text-back and both follow-ups go out, in order.
    s.missed_call("CA1", CALLER);
    wait_for("three texts", 15, || {
        (fake.sends_to(CALLER).len() == 3).then_some(())
    });
    let bodies: Vec<String> = fake
        .sends_to(CALLER)
        .iter()
        .map(|r| r.get("Body").unwrap().to_string())
        .collect();
    assert!(
        bodies[1].starts_with("Still need help") && bodies[2].starts_with("Last nudge"),
        "{bodies:?}"
    );

    // A reply cancels the rest at once.
    s.missed_call("CA2", "+14805550222");
    body_to(&fake, "+14805550222");
    wait_for("the follow-up job", 5, || {
        (s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'follow_up' AND state = 'pending'") == 1)
            .then_some(())
    });
    s.text_in("SM1", "+14805550222", "yes my AC is out");
    assert_eq!(
        s.text("SELECT state || ' ' || last_error FROM jobs WHERE kind = 'follow_up' ORDER BY id DESC LIMIT 1").as_deref(),
        Some("cancelled replied")
    );
    assert_eq!(
        s.text("SELECT state FROM contacts WHERE phone = '+14805550222'")
            .as_deref(),
        Some("replied")
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fake.sends_to("+14805550222").len(), 1);

    // Booking from the CLI stops them too, and records the value.
    s.missed_call("CA3", "+14805550333");
    body_to(&fake, "+14805550333");
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, _) = cli(
        s.dir.path(),
        &[
            "mark-booked",
            "+14805550333",
            "--value",
            "385",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("worth 385.00"), "{out}");
    assert_eq!(
        s.text(
            "SELECT state || ' ' || booked_value_cents FROM contacts WHERE phone = '+14805550333'"
        )
        .as_deref(),
        Some("booked 38500")
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fake.sends_to("+14805550333").len(), 1);
}

#[test]
fn an_emergency_alerts_on_call_staff_within_two_seconds() {
    let sink = WebhookSink::start();
    let extra = format!(
        "call_on_emergency = true\nnotify = [{{ name = \"Sam\", sms = \"+14805559999\", on_call = true, quiet_hours = \"00:00-24:00\" }}, {{ name = \"Office\", sms = \"+14805558888\", quiet_hours = \"00:00-24:00\" }}]\nalert_webhook = {{ url = \"{}\", format = \"json\" }}",
        sink.url
    );
    let (fake, s) = start(&extra);
    s.text_in(
        "SM1",
        CALLER,
        "EMERGENCY - water pouring through the ceiling",
    );
    let alert = wait_for("the on-call alert", 2, || {
        fake.sends_to("+14805559999").into_iter().next()
    });
    let body = alert.get("Body").unwrap();
    assert!(
        body.starts_with("URGENT Acme HVAC")
            && body.contains(CALLER)
            && body.contains("water pouring"),
        "{body}"
    );
    assert!(
        body.contains(&format!("{PUBLIC_URL}/conversations/")),
        "{body}"
    );
    // The caller hears someone is on the way to the phone.
    assert!(body_to(&fake, CALLER).contains("getting someone to the phone"));
    // On-call staff are phoned too, and the chat tool is told.
    let call = wait_for("the alert call", 5, || fake.calls().into_iter().next());
    assert_eq!(call.get("To"), Some("+14805559999"));
    assert!(
        call.get("Twiml")
            .unwrap()
            .contains("<Say>Urgent message for Acme HVAC."),
        "{call:?}"
    );
    let (_, post) = wait_for("the webhook", 5, || sink.posts().into_iter().next());
    let json: serde_json::Value = serde_json::from_str(&post).unwrap();
    assert_eq!(json["urgent"], true);
    assert_eq!(json["from"], CALLER);
    assert_eq!(s.count("SELECT urgent FROM contacts"), 1);
    // The office, off call and in its quiet hours, is texted at once too (an urgent alert ignores quiet
    // hours), but not phoned: only on-call people are.
    let office = wait_for("the office's alert", 5, || {
        fake.sends_to("+14805558888").into_iter().next()
    });
    assert!(office.get("Body").unwrap().starts_with("URGENT Acme HVAC"));
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn every_reply_alerts_staff_with_a_link() {
    let sink = WebhookSink::start();
    let (fake, s) = start(&format!(
        "alert_webhook = {{ url = \"{}\", format = \"ntfy\" }}",
        sink.url
    ));
    s.text_in("SM1", CALLER, "Can you come Tuesday?");
    let alert = body_to(&fake, STAFF_NUMBER);
    assert!(
        alert.contains("reply from +14805550111: \"Can you come Tuesday?\""),
        "{alert}"
    );
    let (headers, body) = wait_for("the ntfy post", 5, || sink.posts().into_iter().next());
    assert!(body.contains("Can you come Tuesday?"), "{body}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("Title") && v.contains("Acme HVAC")),
        "{headers:?}"
    );
    assert_eq!(s.count("SELECT needs_reply FROM contacts"), 1);
}

#[test]
fn plain_language_opt_outs_are_honoured_with_one_confirmation() {
    let (fake, s) = start("");
    s.text_in("SM1", CALLER, "Please stop texting me.");
    let confirmation = body_to(&fake, CALLER);
    assert!(
        confirmation.contains("unsubscribed") && confirmation.contains("START"),
        "{confirmation}"
    );
    assert_eq!(
        s.text("SELECT state FROM contacts").as_deref(),
        Some("opted_out")
    );
    assert_eq!(
        s.text("SELECT source FROM consent_events").as_deref(),
        Some("message:Please stop texting me.")
    );
    // Saying it again confirms nothing more; a missed call is not texted.
    s.text_in("SM2", CALLER, "remove me from your list");
    s.missed_call("CA1", CALLER);
    assert_eq!(
        s.text("SELECT textback_reason FROM calls").as_deref(),
        Some("opted-out")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends_to(CALLER).len(), 1);
    // Carrier keywords are confirmed by the carrier, not by us.
    s.text_in("SM3", "+14805550222", "STOP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(fake.sends_to("+14805550222").is_empty());
}

#[test]
fn the_daily_cap_limits_automatic_texts_per_contact() {
    let extra = "daily_cap = 1\nkeywords = [{ words = [\"BOOK\"], reply = \"Book here: https://book.example.com\" }]";
    let (fake, s) = start(extra);
    s.missed_call("CA1", CALLER);
    body_to(&fake, CALLER);
    s.text_in("SM1", CALLER, "BOOK");
    // Staff still hear of the reply; the caller gets no second automatic text today.
    wait_for("the staff alert", 10, || {
        fake.sends_to(STAFF_NUMBER).into_iter().next()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends_to(CALLER).len(), 1);
}

#[test]
fn each_number_sends_at_its_configured_rate() {
    let (fake, s) = start_with(|api| {
        twilio_config(api, "0s", "").replace("send_rate = 50.0", "send_rate = 2.0")
    });
    for i in 0..4 {
        s.missed_call(&format!("CA{i}"), &format!("+148055502{i:02}"));
    }
    wait_for("four texts", 15, || (fake.sends().len() == 4).then_some(()));
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let mut st = conn
        .prepare("SELECT sent_at FROM messages WHERE sent_at IS NOT NULL ORDER BY sent_at")
        .unwrap();
    let times: Vec<i64> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 450,
            "sent {} ms apart: {times:?}",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn returning_contacts_get_their_own_script() {
    let extra = "returning_script = \"Hi again, it's {{ name }}! Sorry we missed you - what can we do this time?\"";
    let (fake, s) = start(extra);
    s.text_in("SM1", CALLER, "thanks for last week");
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().find(|r| {
            r.get("Body")
                .unwrap()
                .starts_with("Hi again, it's Acme HVAC!")
        })
    });
    // Someone new gets the normal script.
    s.missed_call("CA2", "+14805550222");
    assert!(body_to(&fake, "+14805550222").contains("What can we help you with?"));
}
