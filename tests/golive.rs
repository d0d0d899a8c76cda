//! Going live: `connect`, `doctor`, `send-test` and `10dlc` against a fake Twilio on loopback, and the whole
//! path from `init` to a missed call texted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};

fn config_path(s: &TestServer) -> String {
    s.config.to_str().unwrap().to_string()
}

fn run(s: &TestServer, args: &[&str]) -> (i32, String, String) {
    let cfg = config_path(s);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", cfg.as_str()]);
    cli(s.dir.path(), &all)
}

#[test]
fn connect_points_the_number_here_and_is_safe_to_run_twice() {
    let fake = FakeTwilio::start();
    fake.add_number(BUSINESS_NUMBER, &[]);
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));

    let (code, out, err) = run(&s, &["connect", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        &format!("VoiceUrl: (not set) -> {PUBLIC_URL}/hooks/twilio/voice"),
        &format!("StatusCallback: (not set) -> {PUBLIC_URL}/hooks/twilio/call-status"),
        &format!(
            "SmsUrl: https://demo.twilio.com/welcome/sms/reply -> {PUBLIC_URL}/hooks/twilio/sms"
        ),
        "would change (dry run: nothing was changed)",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    assert!(
        fake.number_updates().is_empty(),
        "a dry run changes nothing"
    );
    assert!(fake.number(BUSINESS_NUMBER)["voice_url"].is_null());

    let (code, out, err) = run(&s, &["connect"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  changed"), "{out}");
    let n = fake.number(BUSINESS_NUMBER);
    assert_eq!(n["voice_url"], format!("{PUBLIC_URL}/hooks/twilio/voice"));
    assert_eq!(
        n["status_callback"],
        format!("{PUBLIC_URL}/hooks/twilio/call-status")
    );
    assert_eq!(n["sms_url"], format!("{PUBLIC_URL}/hooks/twilio/sms"));
    let update = &fake.number_updates()[0];
    assert!(
        update.get("VoiceMethod").is_none(),
        "only what differs is sent: {update:?}"
    );

    let (code, out, _) = run(&s, &["connect"]);
    assert_eq!(code, 0);
    assert!(out.contains("already points at this server"), "{out}");
    assert_eq!(
        fake.number_updates().len(),
        1,
        "running it twice changes nothing"
    );
}

#[test]
fn connect_refuses_what_would_ignore_the_urls_and_says_what_to_change() {
    let fake = FakeTwilio::start();
    let pn = fake.add_number(BUSINESS_NUMBER, &[("voice_application_sid", "AP0123")]);
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let refused = |want: &str| {
        let (code, out, err) = run(&s, &["connect"]);
        assert_ne!(code, 0, "{out}");
        assert!(out.contains(want), "{want:?} in:\n{out}{err}");
        assert!(out.contains("nothing was changed"), "{out}");
        assert!(fake.number_updates().is_empty());
    };
    refused("refused: its calls go to the TwiML App AP0123 (VoiceApplicationSid)");
    fake.set_number(BUSINESS_NUMBER, "voice_application_sid", "");
    fake.set_number(BUSINESS_NUMBER, "trunk_sid", "TK0123");
    refused("refused: it belongs to the Elastic SIP Trunk TK0123 (TrunkSid)");
    fake.set_number(BUSINESS_NUMBER, "trunk_sid", "");
    fake.add_service("MG0123", false, &[&pn]);
    refused("refused: it is in the Messaging Service MG0123 (Acme texts), whose own incoming-message webhook receives its texts");

    // A number the account does not have, and credentials it refuses.
    let fake2 = FakeTwilio::start();
    let s2 = TestServer::start(&twilio_config(&fake2.url, "0s", ""));
    let (code, out, _) = run(&s2, &["connect"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("+16025550100 is not a number of the Twilio account"),
        "{out}"
    );
    let wrong = twilio_config(&fake2.url, "0s", "").replace(AUTH_TOKEN, "not-the-token");
    std::fs::write(&s2.config, wrong).unwrap();
    let (code, out, _) = run(&s2, &["connect"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("Twilio refused the account's credentials (HTTP 401"),
        "{out}"
    );
}

#[test]
fn a_number_in_a_messaging_service_that_defers_to_it_is_connected() {
    let fake = FakeTwilio::start();
    let pn = fake.add_number(BUSINESS_NUMBER, &[]);
    fake.add_service("MG0123", true, &[&pn]);
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let (code, out, err) = run(&s, &["connect"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        fake.number(BUSINESS_NUMBER)["sms_url"],
        format!("{PUBLIC_URL}/hooks/twilio/sms")
    );
}

/// A Twilio config whose public URL is the server itself, reachable from the test.
fn reachable_config(api: &str) -> (String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let config = twilio_config(api, "0s", "ring_timeout = \"18s\"")
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            &format!("public_url = \"{PUBLIC_URL}\""),
            &format!("public_url = \"{url}\""),
        );
    (config, url)
}

#[test]
fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let fake = FakeTwilio::start();
    let pn = fake.add_number(BUSINESS_NUMBER, &[]);
    let (config, url) = reachable_config(&fake.url);
    let s = TestServer::start(&config);

    // Not connected yet, and no 10DLC campaign.
    let (code, out, _) = run(&s, &["doctor"]);
    assert_ne!(code, 0, "{out}");
    for want in [
        "ok    config: ",
        "ok    database: ",
        "ok    account \"main\" accepts its credentials",
        "FAIL  +16025550100 does not point at this server (VoiceUrl, StatusCallback, SmsUrl differ)",
        "      fix: run textback connect",
        &format!("warn  public_url {url} is this machine"),
        &format!("ok    public_url {url} reaches a healthy textback"),
        &format!("ok    a request signed for main round-trips through {url}"),
        "ok    acme: ring_timeout 18s",
        "warn  +16025550100 is in no Messaging Service: US carriers filter unregistered 10DLC texts",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }

    // Connected, registered: nothing fails.
    assert_eq!(run(&s, &["connect"]).0, 0);
    fake.add_service("MG0123", true, &[&pn]);
    fake.add_campaign("MG0123", "VERIFIED", "APPROVED");
    let (code, out, err) = run(&s, &["doctor"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FAIL"), "{out}");
    for want in [
        "ok    +16025550100 (main) points at this server",
        "ok    +16025550100: 10DLC campaign CFOOBAR verified",
        "ok    +16025550100: 10DLC brand BN",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }

    // A public URL with a path the proxy does not forward: the health check says so.
    let moved = config.replace(
        &format!("public_url = \"{url}\""),
        &format!("public_url = \"{url}/textback\""),
    );
    std::fs::write(&s.config, moved).unwrap();
    let (code, out, _) = run(&s, &["doctor"]);
    assert_ne!(code, 0);
    assert!(
        out.contains(&format!("FAIL  {url}/textback/healthz answered HTTP 404")),
        "{out}"
    );
}

#[test]
fn doctor_catches_a_public_url_providers_would_sign_differently() {
    // The server believes it is reached as http://localhost:PORT; the file (and so what a provider would
    // be told) says http://127.0.0.1:PORT. Health answers, but signatures over the one do not check out
    // against the other.
    let fake = FakeTwilio::start();
    fake.add_number(BUSINESS_NUMBER, &[]);
    let (config, url) = reachable_config(&fake.url);
    let port = url.rsplit(':').next().unwrap();
    let s = TestServer::start(&config.replace(&url, &format!("http://localhost:{port}")));
    std::fs::write(&s.config, &config).unwrap();
    let (code, out, _) = run(&s, &["doctor"]);
    assert_ne!(code, 0);
    assert!(
        out.contains(&format!(
            "ok    public_url {url} reaches a healthy textback"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL  a request signed for main over {url}/hooks/main/ping was refused"
        )),
        "{out}"
    );
    assert!(
        out.contains("fix: server.public_url must be exactly the URL providers call"),
        "{out}"
    );
}

#[test]
fn a_ping_is_answered_only_when_signed_and_changes_nothing() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let p = [("AccountSid", ACCOUNT_SID)];
    assert_eq!(s.post_form("/hooks/main/ping", &p, &[]).status, 403);
    assert_eq!(
        s.post_form("/hooks/main/ping", &p, &[("X-Twilio-Signature", "forged")])
            .status,
        403
    );
    let r = s.post_signed("/hooks/main/ping", &p);
    assert_eq!((r.status, r.body.as_str()), (200, "pong\n"));
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), 0);
    assert_eq!(s.count("SELECT COUNT(*) FROM webhook_tokens"), 0);
    assert_eq!(s.count("SELECT COUNT(*) FROM messages"), 0);
}

#[test]
fn doctor_stops_asking_providers_when_out_of_time() {
    let fake = FakeTwilio::start();
    let dir = tempfile::tempdir().unwrap();
    let config = textback::config::parse(
        &twilio_config(&fake.url, "0s", ""),
        None,
        &textback::providers::rules(),
    )
    .unwrap();
    let database = dir.path().join("t.db");
    let store = textback::store::Store::open(&database).unwrap();
    let providers = textback::providers::Providers::from_config(
        &config,
        &textback::providers::SimulatorToken::default(),
    );
    let http = ureq::agent();
    let checks = textback::setup::doctor(
        &config,
        "t.toml",
        &database,
        &store,
        &providers,
        &http,
        Duration::ZERO,
    );
    let last = checks.last().unwrap();
    assert!(
        last.what.starts_with("checks stopped after 0s"),
        "{checks:#?}"
    );
    assert!(fake.received().is_empty(), "no provider was asked");
}

#[test]
fn doctor_fails_on_refused_credentials() {
    let fake = FakeTwilio::start();
    fake.add_number(BUSINESS_NUMBER, &[]);
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    std::fs::write(
        &s.config,
        twilio_config(&fake.url, "0s", "").replace(AUTH_TOKEN, "not-the-token"),
    )
    .unwrap();
    let (code, out, _) = run(&s, &["doctor"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  account \"main\": Twilio refused the account's credentials"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  https://textback.example.com cannot be reached from here"),
        "{out}"
    );
}

/// Runs `send-test` on a thread; the test plays the provider's receipt meanwhile.
fn send_test(s: &TestServer, to: &str) -> std::thread::JoinHandle<(i32, String, String)> {
    let (dir, cfg) = (s.dir.path().to_path_buf(), config_path(s));
    let to = to.to_string();
    std::thread::spawn(move || cli(&dir, &["send-test", &to, "--wait", "20s", "--config", &cfg]))
}

#[test]
fn send_test_waits_for_the_receipt_and_explains_a_failure() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let waiting = send_test(&s, "+14805550177");
    let sent = wait_for("the test text", 10, || {
        fake.sends_to("+14805550177").into_iter().next()
    });
    assert_eq!(
        sent.get("Body"),
        Some("textback test from Acme HVAC: if this arrived, texting works.")
    );
    let sid = wait_for("its id", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE to_number = '+14805550177' AND provider_sid IS NOT NULL")
    });
    assert_eq!(
        s.receipt(&sid, "+14805550177", "delivered", None).status,
        200
    );
    let (code, out, err) = waiting.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test text via main: delivered to +14805550177"),
        "{out}"
    );

    let waiting = send_test(&s, "+14805550178");
    wait_for("the test text", 10, || {
        fake.sends_to("+14805550178").into_iter().next()
    });
    let sid = wait_for("its id", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE to_number = '+14805550178' AND provider_sid IS NOT NULL")
    });
    assert_eq!(
        s.receipt(&sid, "+14805550178", "undelivered", Some("30034"))
            .status,
        200
    );
    let (code, out, _) = waiting.join().unwrap();
    assert_ne!(code, 0);
    assert!(
        out.contains("not delivered to +14805550178: error 30034: the number is not registered for A2P 10DLC"),
        "{out}"
    );
}

#[test]
fn send_test_says_when_nothing_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("textback.toml"), simulator_config()).unwrap();
    let started = Instant::now();
    let (code, out, _) = cli(dir.path(), &["send-test", "+14805550179", "--wait", "1s"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("still waiting to be sent: is `textback serve` running?"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (code, _, err) = cli(dir.path(), &["send-test", "555-0100"]);
    assert_ne!(code, 0);
    assert!(err.contains("E.164"), "{err}");
}

#[test]
fn tendlc_writes_the_registration_from_the_configuration() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&agency(&fake.url));
    let (code, _, err) = run(&s, &["10dlc"]);
    assert_ne!(code, 0);
    assert!(err.contains("say which with --business ID"), "{err}");
    let (code, out, err) = run(&s, &["10dlc", "--business", "acme"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "A2P 10DLC campaign registration for acme",
        "Use case (UsAppToPersonUsecase):\nCUSTOMER_CARE",
        "How do end-users consent (MessageFlow):\nConsent is given by calling: a customer calls Acme HVAC at +16025550100.",
        "Sample message #1 (MessageSamples):\nHi, this is Acme HVAC. Sorry we missed your call!",
        "Opt-out keywords (OptOutKeywords):\nSTOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT",
        "ok    the text-back names the business and says how to opt out (error 30893)",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let (code, out, _) = run(&s, &["10dlc", "--business", "bolt", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["business"], "bolt");
    let samples = v["campaign"]["MessageSamples"].as_array().unwrap();
    assert!((2..=5).contains(&samples.len()), "{v}");
    assert!(
        samples[0].as_str().unwrap().contains("Bolt Locksmiths"),
        "{v}"
    );
    let (code, _, err) = run(&s, &["10dlc", "--business", "nope"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no business \"nope\"; the businesses are: acme, bolt"),
        "{err}"
    );
}

/// The whole path a new operator takes, scripted: init, edit the file, check it, start, connect, doctor,
/// a test text, and a missed call texted. Prints how long it took.
#[test]
fn from_init_to_a_missed_call_texted() {
    let started = Instant::now();
    let fake = FakeTwilio::start();
    let pn = fake.add_number(BUSINESS_NUMBER, &[]);
    fake.add_service("MG0123", true, &[&pn]);
    fake.add_campaign("MG0123", "VERIFIED", "APPROVED");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(cli(dir.path(), &["init"]).0, 0);
    // The edits the README's "Go live" asks for: the account, the public URL, the number.
    let (_, url) = reachable_config(&fake.url);
    let port = url.rsplit(':').next().unwrap();
    let text = std::fs::read_to_string(dir.path().join("textback.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("# public_url = \"https://textback.example.com\"", &format!("public_url = \"{url}\""))
        .replace(
            "[providers.simulator]\nkind = \"simulator\"",
            &format!(
                "[providers.main]\nkind = \"twilio\"\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\napi_base = \"{api}\"\nmessaging_base = \"{api}\"",
                api = fake.url
            ),
        )
        .replace("text_delay = \"20s\"", "text_delay = \"0s\"")
        .replace("ring_timeout = \"20s\"", "ring_timeout = \"18s\"")
        .replace("quiet_hours = \"21:00-08:00\"", "quiet_hours = \"\"");
    // Never the default port, where a user's demo may be running.
    assert!(
        text.contains(&format!("listen = \"127.0.0.1:{port}\"")),
        "{text}"
    );
    std::fs::write(dir.path().join("textback.toml"), &text).unwrap();
    let (code, out, err) = cli(dir.path(), &["check-config"]);
    assert_eq!(code, 0, "{out}{err}\n{text}");

    let s = TestServer::start_in(dir);
    assert_eq!(s.url, url);
    let (code, out, err) = run(&s, &["connect"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&s, &["doctor"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FAIL"), "{out}");

    let waiting = send_test(&s, "+14805550190");
    let sid = wait_for("the test text", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE to_number = '+14805550190' AND provider_sid IS NOT NULL")
    });
    let receipt = [
        ("AccountSid", ACCOUNT_SID),
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("From", BUSINESS_NUMBER),
        ("To", "+14805550190"),
    ];
    let r = s.post_signed_with(
        "/hooks/twilio/message-status",
        &receipt,
        AUTH_TOKEN,
        &url,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, out, err) = waiting.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");

    // A caller rings, nobody answers: one text, from the number called.
    let call = voice("CA-live-1", CALLER);
    let ring = s.post_signed_with("/hooks/twilio/voice", &borrow(&call), AUTH_TOKEN, &url, &[]);
    assert_eq!(ring.status, 200, "{}", ring.body);
    let mut dial = voice("CA-live-1", CALLER);
    dial.push(("DialCallStatus", "no-answer".into()));
    dial.push(("DialCallSid", "CA-live-1-leg".into()));
    let r = s.post_signed_with("/hooks/twilio/dial", &borrow(&dial), AUTH_TOKEN, &url, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let text = wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    assert_eq!(text.get("From"), Some(BUSINESS_NUMBER));
    eprintln!(
        "from init to a missed call texted, scripted: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Telnyx's v2 API as far as connect uses it: the number, its TeXML application and messaging profile,
/// their current settings being the last PATCH sent (or what the portal set).
fn fake_telnyx_account(shared_with: Option<&'static str>) -> FakeApi {
    FakeApi::start(move |req, before| {
        let now = Duration::ZERO;
        if req.header("Authorization") != Some("Bearer KEY0123") {
            return (401, r#"{"errors":[{"code":"10009","title":"Authentication failed","detail":"The API key is invalid."}]}"#.into(), now);
        }
        let patched = |path: &str, key: &str, initial: serde_json::Value| {
            before
                .iter()
                .rev()
                .filter(|r| r.method == "PATCH" && r.path == path)
                .find_map(|r| r.json().get(key).cloned())
                .unwrap_or(initial)
        };
        let path = req.path.split('?').next().unwrap_or_default();
        match (req.method.as_str(), path) {
            ("GET", "/v2/phone_numbers")
                if req.path.contains("filter%5Bphone_number%5D=16025550100")
                    || req.path.contains("filter%5Bconnection_id%5D=APP1")
                    || req.path.contains("filter%5Bmessaging_profile_id%5D=PROF1") =>
            {
                let ours = serde_json::json!({"id": "1293384261075731499", "record_type": "phone_number", "phone_number": BUSINESS_NUMBER, "connection_id": "APP1", "messaging_profile_id": "PROF1", "status": "active"});
                let mut data = vec![ours];
                if let (Some(other), false) = (shared_with, req.path.contains("filter%5Bphone_number%5D")) {
                    data.push(serde_json::json!({"id": "99", "phone_number": other, "connection_id": "APP1", "messaging_profile_id": "PROF1"}));
                }
                (200, serde_json::json!({"data": data, "meta": {"total_results": 1}}).to_string(), now)
            }
            ("GET", "/v2/phone_numbers") => (200, r#"{"data":[],"meta":{"total_results":0}}"#.into(), now),
            ("GET", "/v2/texml_applications/APP1") => (
                200,
                serde_json::json!({"data": {"id": "APP1", "record_type": "texml_application", "friendly_name": "front desk",
                    "voice_url": patched("/v2/texml_applications/APP1", "voice_url", serde_json::json!("https://old.example.com/voice")),
                    "voice_method": "post", "status_callback_method": "post",
                    "status_callback": patched("/v2/texml_applications/APP1", "status_callback", serde_json::Value::Null)}}).to_string(),
                now,
            ),
            ("GET", "/v2/messaging_profiles/PROF1") => (
                200,
                serde_json::json!({"data": {"id": "PROF1", "record_type": "messaging_profile", "name": "Acme",
                    "webhook_url": patched("/v2/messaging_profiles/PROF1", "webhook_url", serde_json::Value::Null),
                    "webhook_api_version": patched("/v2/messaging_profiles/PROF1", "webhook_api_version", serde_json::json!("1"))}}).to_string(),
                now,
            ),
            ("PATCH", "/v2/texml_applications/APP1" | "/v2/messaging_profiles/PROF1") => (200, format!(r#"{{"data":{}}}"#, req.body), now),
            _ => (404, r#"{"errors":[{"code":"10005","title":"Resource not found"}]}"#.into(), now),
        }
    })
}

#[test]
fn connect_points_a_telnyx_number_through_its_application_and_profile() {
    let fake = fake_telnyx_account(None);
    let providers = format!(
        "[providers.tx]\nkind = \"telnyx\"\napi_key = \"KEY0123\"\npublic_key = \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\napi_base = \"{}\"",
        fake.url
    );
    let s = TestServer::start(&config_with(&providers, "0s", ""));
    let (code, out, err) = run(&s, &["connect", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        &format!("voice_url: https://old.example.com/voice -> {PUBLIC_URL}/hooks/tx/voice"),
        &format!("status_callback: (not set) -> {PUBLIC_URL}/hooks/tx/call-status"),
        &format!("webhook_url: (not set) -> {PUBLIC_URL}/hooks/tx/events"),
        "webhook_api_version: 1 -> 2",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    assert!(fake.requests("PATCH", "/v2/").is_empty());
    let (code, out, err) = run(&s, &["connect"]);
    assert_eq!(code, 0, "{out}{err}");
    let app = &fake.requests("PATCH", "/v2/texml_applications/APP1")[0];
    assert_eq!(
        app.json()["voice_url"],
        format!("{PUBLIC_URL}/hooks/tx/voice")
    );
    let profile = &fake.requests("PATCH", "/v2/messaging_profiles/PROF1")[0];
    assert_eq!(profile.json()["webhook_api_version"], "2");
    let (code, out, _) = run(&s, &["connect"]);
    assert_eq!(code, 0);
    assert!(out.contains("already points at this server"), "{out}");
    assert_eq!(
        fake.requests("PATCH", "/v2/").len(),
        2,
        "running it twice changes nothing"
    );
}

#[test]
fn the_setup_page_checks_connects_and_sends_a_test_text() {
    let fake = FakeTwilio::start();
    fake.add_number(BUSINESS_NUMBER, &[]);
    let (config, url) = reachable_config(&fake.url);
    let s = TestServer::start(&config);
    add_user(&s, "olive", &["--role", "owner"]);
    add_user(&s, "stan", &["--role", "staff"]);
    let mut staff = Browser::new(&s);
    staff.login("stan", PASSWORD);
    assert!(
        !staff.get("/").body.contains("href=\"/golive\""),
        "staff see no Setup tab"
    );
    assert_eq!(staff.get("/golive").status, 403);

    let mut b = Browser::new(&s);
    b.login("olive", PASSWORD);
    assert!(b.get("/").body.contains("href=\"/golive\""));
    let page = b.get("/golive");
    assert_eq!(page.status, 200);
    for want in [
        "<strong>fail</strong> +16025550100 does not point at this server",
        "Fix: run textback connect",
        &format!("<strong>ok</strong> a request signed for main round-trips through {url}"),
        "Connect my numbers",
    ] {
        assert!(page.body.contains(want), "{want:?} in:\n{}", page.body);
    }
    let csrf = Browser::csrf(&page);
    let connected = b.post("/golive/connect", &[("csrf", &csrf)]);
    assert_eq!(connected.status, 200);
    assert!(connected.body.contains("  changed"), "{}", connected.body);
    assert!(
        connected
            .body
            .contains("<strong>ok</strong> +16025550100 (main) points at this server"),
        "{}",
        connected.body
    );
    assert_eq!(
        fake.number(BUSINESS_NUMBER)["voice_url"],
        format!("{url}/hooks/twilio/voice")
    );

    let queued = b.post(
        "/golive/test-text",
        &[
            ("csrf", &csrf),
            ("business", "acme"),
            ("number", "+14805550191"),
        ],
    );
    assert_eq!(queued.status, 303);
    let at = queued.location.clone().unwrap();
    assert!(at.starts_with("/golive/test/"), "{at}");
    let sid = wait_for("the test text", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE to_number = '+14805550191' AND provider_sid IS NOT NULL")
    });
    assert!(b.get(&at).body.contains("waiting for the delivery receipt"));
    let receipt = [
        ("AccountSid", ACCOUNT_SID),
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("From", BUSINESS_NUMBER),
        ("To", "+14805550191"),
    ];
    assert_eq!(
        s.post_signed_with(
            "/hooks/twilio/message-status",
            &receipt,
            AUTH_TOKEN,
            &url,
            &[]
        )
        .status,
        200
    );
    assert!(b.get(&at).body.contains("delivered to +14805550191"));
    // A message that is not a test text (here a text-back) is not shown here.
    let call = voice("CA-golive-1", CALLER);
    assert_eq!(
        s.post_signed_with("/hooks/twilio/voice", &borrow(&call), AUTH_TOKEN, &url, &[])
            .status,
        200
    );
    let mut dial = voice("CA-golive-1", CALLER);
    dial.push(("DialCallStatus", "no-answer".into()));
    assert_eq!(
        s.post_signed_with("/hooks/twilio/dial", &borrow(&dial), AUTH_TOKEN, &url, &[])
            .status,
        200
    );
    let textback = wait_for("the text-back", 10, || {
        s.text("SELECT CAST(id AS TEXT) FROM messages WHERE purpose = 'textback'")
    });
    assert_eq!(b.get(&format!("/golive/test/{textback}")).status, 404);
    assert_eq!(b.get("/golive/test/999").status, 404);
}

#[test]
fn connect_will_not_move_a_telnyx_number_textback_does_not_answer_for() {
    let fake = fake_telnyx_account(Some("+16025550999"));
    let providers = format!(
        "[providers.tx]\nkind = \"telnyx\"\napi_key = \"KEY0123\"\npublic_key = \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\napi_base = \"{}\"",
        fake.url
    );
    let s = TestServer::start(&config_with(&providers, "0s", ""));
    let (code, out, _) = run(&s, &["connect"]);
    assert_ne!(code, 0, "{out}");
    for want in [
        "refused: its TeXML application APP1 also takes the calls of +16025550999",
        "refused: its messaging profile PROF1 also carries the texts of +16025550999",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    assert!(fake.requests("PATCH", "/v2/").is_empty());
}
