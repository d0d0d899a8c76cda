//! Telling the rest of the business: signed outbound events (retried, ordered, paused on 410, surviving
//! kill -9), booking tools closing the loop (Cal.com, Calendly, the generic hook), and email (alerts, the
//! daily digest across a DST change, `email-test`). Every receiver is a small server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec-0123456789abcdef";

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One request an event receiver got.
#[derive(Clone, Debug)]
struct Got {
    event: serde_json::Value,
    signed: bool,
    status: u16,
}

/// An endpoint that checks each event's signature the way the README tells receivers to, and answers with
/// the statuses it is given (then 200).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}/events", server.server_addr().to_ip().unwrap());
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let answers: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (s, g, a) = (Arc::clone(&server), Arc::clone(&got), Arc::clone(&answers));
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let header = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Textback-Signature"))
                    .map(|h| h.value.as_str().to_string())
                    .unwrap_or_default();
                let (mut t, mut v1) = ("", "");
                for part in header.split(',') {
                    match part.split_once('=') {
                        Some(("t", x)) => t = x,
                        Some(("v1", x)) => v1 = x,
                        _ => {}
                    }
                }
                let signed =
                    !t.is_empty() && hex_hmac(SECRET, &[t.as_bytes(), b".", body.as_bytes()]) == v1;
                let status = a.lock().unwrap().pop_front().unwrap_or(200);
                g.lock().unwrap().push(Got {
                    event: serde_json::from_str(&body).unwrap_or_default(),
                    signed,
                    status,
                });
                let _ = req.respond(tiny_http::Response::from_string("").with_status_code(status));
            }
        });
        Self {
            url,
            got,
            answers,
            server,
            thread: Some(thread),
        }
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The events taken with a 2xx, in the order they were taken.
    fn delivered(&self) -> Vec<serde_json::Value> {
        self.got()
            .into_iter()
            .filter(|g| g.status < 300)
            .map(|g| g.event)
            .collect()
    }

    fn delivered_types(&self) -> Vec<String> {
        self.delivered()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn webhook(url: &str, extra: &str) -> String {
    format!(
        "[[business.webhooks]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nretry_backoff = \"50ms\"\n{extra}\n"
    )
}

#[test]
fn events_are_signed_retried_until_taken_delivered_once_and_in_order_per_contact() {
    let fake = FakeTwilio::start();
    let receiver = Receiver::start();
    // The first event fails twice: everything about the same contact waits behind it.
    receiver.answer(&[503, 500]);
    let s = TestServer::start(&twilio_config(&fake.url, "0s", &webhook(&receiver.url, "")));
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    wait_for("call.missed and text.sent", 15, || {
        let types = receiver.delivered_types();
        (types.len() >= 2).then_some(())
    });
    s.text_in("SM1", CALLER, "STOP");
    wait_for("the reply and the opt-out", 15, || {
        (receiver.delivered_types().len() >= 4).then_some(())
    });
    let types = receiver.delivered_types();
    assert_eq!(
        &types[..4],
        &[
            "call.missed",
            "text.sent",
            "reply.received",
            "contact.opted_out"
        ],
        "{types:?}"
    );
    let got = receiver.got();
    assert!(got.iter().all(|g| g.signed), "every request verifies");
    // Three attempts of the first event, each the same event; one delivery of each.
    let first = &got[0].event["id"];
    assert_eq!(got.iter().filter(|g| &g.event["id"] == first).count(), 3);
    let delivered = receiver.delivered();
    let mut ids: Vec<&str> = delivered
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event delivered twice");
    let missed = &delivered[0];
    assert_eq!(missed["version"], 1);
    assert_eq!(missed["business"]["id"], "acme");
    assert_eq!(missed["contact"]["phone"], CALLER);
    assert_eq!(missed["data"]["call_id"], "CA1");
    assert_eq!(delivered[1]["data"]["to"], CALLER);
    assert_eq!(delivered[2]["data"]["body"], "STOP");
    assert_eq!(
        s.count("SELECT attempts FROM deliveries ORDER BY id LIMIT 1"),
        3
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered'"),
        0
    );
}

#[test]
fn an_event_survives_kill_9_before_it_is_delivered() {
    let fake = FakeTwilio::start();
    let receiver = Receiver::start();
    receiver.answer(&[503; 200]);
    let config = twilio_config(
        &fake.url,
        "0s",
        &webhook(&receiver.url, "events = [\"call.missed\"]"),
    );
    let mut s = TestServer::start(&config);
    s.missed_call("CA1", CALLER);
    wait_for("a failed attempt", 10, || {
        (!receiver.got().is_empty()).then_some(())
    });
    s.kill9();
    receiver.answers.lock().unwrap().clear();
    s.restart();
    wait_for("the delivery after the restart", 15, || {
        (!receiver.delivered().is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["type"], "call.missed");
    assert!(receiver
        .got()
        .iter()
        .all(|g| g.event["type"] == "call.missed"));
}

#[test]
fn a_410_pauses_the_endpoint_and_the_owner_sees_it_tests_it_and_resumes_it() {
    let fake = FakeTwilio::start();
    let receiver = Receiver::start();
    receiver.answer(&[410]);
    let s = TestServer::start(&twilio_config(
        &fake.url,
        "0s",
        &webhook(&receiver.url, "events = [\"call.missed\", \"test\"]"),
    ));
    s.missed_call("CA1", CALLER);
    wait_for("the 410", 10, || (!receiver.got().is_empty()).then_some(()));
    wait_for("the pause", 10, || {
        (s.count("SELECT COUNT(*) FROM endpoint_pauses") == 1).then_some(())
    });
    s.missed_call("CA2", "+14805550177");
    wait_for("the skipped delivery", 10, || {
        (s.count("SELECT COUNT(*) FROM deliveries WHERE state = 'skipped'") == 1).then_some(())
    });
    assert_eq!(
        receiver.got().len(),
        1,
        "nothing more goes to a paused endpoint"
    );
    let (code, out, _) = cli(s.dir.path(), &["status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Outbound event endpoints: 1 failing of 1"),
        "{out}"
    );
    assert!(out.contains("paused"), "{out}");

    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let page = b.get("/settings/integrations");
    assert!(
        page.body.contains(&receiver.url) && page.body.contains("paused"),
        "{}",
        page.body
    );
    assert!(page.body.contains("410"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    b.post(
        "/settings/integrations/resume",
        &[("csrf", &csrf), ("business", "acme"), ("endpoint", "0")],
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM endpoint_pauses"), 0);
    b.post(
        "/settings/integrations/test",
        &[("csrf", &csrf), ("business", "acme"), ("endpoint", "0")],
    );
    wait_for("the test event", 10, || {
        receiver
            .delivered()
            .into_iter()
            .find(|e| e["type"] == "test")
    });
    let page = b.get("/settings/integrations");
    assert!(page.body.contains("delivered"), "{}", page.body);
    // Staff are not owners: the page is refused.
    add_user(&s, "kim", &["--role", "staff"]);
    let mut staff = Browser::new(&s);
    staff.login("kim", PASSWORD);
    assert_eq!(staff.get("/settings/integrations").status, 403);
}

fn bookings_config(fake: &FakeTwilio, extra: &str) -> String {
    twilio_config(
        &fake.url,
        "0s",
        &format!(
            "follow_ups = [{{ after = \"1h\", script = \"Still need help?\" }}]\n{extra}\n[business.bookings]\ncalcom_secret = \"cal-secret-0123456789\"\ncalendly_signing_key = \"calendly-key-0123456789\"\nsecret = \"generic-key-0123456789\"\n"
        ),
    )
    .replace("follow_ups = []\n", "")
}

fn post_booking(
    s: &TestServer,
    tool: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut req = ureq::post(&format!("{}/hooks/booking/{tool}/acme", s.url));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_cal_com_booking_books_the_conversation_stops_follow_ups_and_counts_once() {
    let fake = FakeTwilio::start();
    let receiver = Receiver::start();
    let s = TestServer::start(&bookings_config(
        &fake,
        &webhook(
            &receiver.url,
            "events = [\"conversation.booked\", \"conversation.unbooked\"]",
        ),
    ));
    // The fixture's attendee is this caller.
    s.missed_call("CA1", "+14805550123");
    wait_for("the follow-up queued", 10, || {
        (s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'follow_up' AND state = 'pending'") == 1)
            .then_some(())
    });
    let body = include_str!("fixtures/calcom_booking_created.json");
    let sig = hex_hmac("cal-secret-0123456789", &[body.as_bytes()]);
    let forged = hex_hmac("not-the-secret", &[body.as_bytes()]);
    for (header, want) in [
        (None, 401),
        (Some("no-secret-provided".to_string()), 401),
        (Some(forged), 401),
    ] {
        let headers: Vec<(&str, String)> = header
            .map(|h| vec![("X-Cal-Signature-256", h)])
            .unwrap_or_default();
        let (code, _) = post_booking(&s, "calcom", body, &headers);
        assert_eq!(code, want);
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM bookings"),
        0,
        "refused changes nothing"
    );
    let (code, answer) = post_booking(&s, "calcom", body, &[("X-Cal-Signature-256", sig.clone())]);
    assert_eq!(
        (code, answer.contains("\"booked\"")),
        (200, true),
        "{answer}"
    );
    let (code, answer) = post_booking(&s, "calcom", body, &[("X-Cal-Signature-256", sig)]);
    assert_eq!(
        (code, answer.contains("duplicate")),
        (200, true),
        "{answer}"
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM bookings"), 1);
    assert_eq!(
        s.text("SELECT state FROM contacts WHERE phone = '+14805550123'")
            .as_deref(),
        Some("booked")
    );
    assert_eq!(
        s.count("SELECT booked_value_cents FROM contacts WHERE phone = '+14805550123'"),
        38_550
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'follow_up' AND state = 'pending'"),
        0,
        "the booking stopped the follow-up"
    );
    let booked = wait_for("conversation.booked", 10, || {
        receiver.delivered().into_iter().next()
    });
    assert_eq!(booked["type"], "conversation.booked");
    assert_eq!(booked["data"]["source"], "calcom");
    assert_eq!(booked["data"]["value_cents"], 38_550);

    // The timeline shows it.
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let id = s.count("SELECT id FROM contacts WHERE phone = '+14805550123'");
    let page = b.get(&format!("/conversations/{id}"));
    assert!(
        page.body.contains("Booked through Cal.com"),
        "{}",
        page.body
    );

    // A reschedule moves it: still booked, the old booking marked rescheduled, counted once.
    let moved = include_str!("fixtures/calcom_booking_rescheduled.json");
    let sig = hex_hmac("cal-secret-0123456789", &[moved.as_bytes()]);
    let (code, answer) = post_booking(&s, "calcom", moved, &[("X-Cal-Signature-256", sig)]);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        s.text("SELECT state FROM bookings WHERE external_id = 'bFJeNb2uX8ANpT3JL5EfXw'")
            .as_deref(),
        Some("rescheduled")
    );
    assert_eq!(
        s.text("SELECT state FROM contacts WHERE phone = '+14805550123'")
            .as_deref(),
        Some("booked")
    );
    // Cancelling the new one reverses it.
    let cancelled = include_str!("fixtures/calcom_booking_cancelled.json");
    let sig = hex_hmac("cal-secret-0123456789", &[cancelled.as_bytes()]);
    let (code, answer) = post_booking(&s, "calcom", cancelled, &[("X-Cal-Signature-256", sig)]);
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("cancelled"), "{answer}");
    assert_ne!(
        s.text("SELECT state FROM contacts WHERE phone = '+14805550123'")
            .as_deref(),
        Some("booked")
    );
    wait_for("conversation.unbooked", 10, || {
        receiver
            .delivered()
            .into_iter()
            .find(|e| e["type"] == "conversation.unbooked")
    });

    // Erasing the contact erases its bookings and the events that named it.
    let page = b.get(&format!("/contacts/{id}"));
    let csrf = Browser::csrf(&page);
    let gone = b.post(
        &format!("/contacts/{id}/erase"),
        &[("csrf", &csrf), ("confirm", "+14805550123")],
    );
    assert_eq!(gone.location.as_deref(), Some("/contacts?erased=1"));
    assert_eq!(s.count("SELECT COUNT(*) FROM bookings"), 0);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM outbound_events WHERE instr(body, '+14805550123') > 0"),
        0
    );
}

#[test]
fn calendly_bookings_are_verified_with_a_timestamp_and_unmatched_ones_are_kept() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&bookings_config(&fake, ""));
    let body = include_str!("fixtures/calendly_invitee_created.json");
    let key = "calendly-key-0123456789";
    let t = now_secs();
    let good = format!(
        "t={t},v1={}",
        hex_hmac(key, &[t.to_string().as_bytes(), b".", body.as_bytes()])
    );
    let old = t - 3600;
    let stale = format!(
        "t={old},v1={}",
        hex_hmac(key, &[old.to_string().as_bytes(), b".", body.as_bytes()])
    );
    let wrong = format!(
        "t={t},v1={}",
        hex_hmac("other", &[t.to_string().as_bytes(), b".", body.as_bytes()])
    );
    for bad in [stale, wrong, "garbage".to_string()] {
        let (code, _) = post_booking(&s, "calendly", body, &[("Calendly-Webhook-Signature", bad)]);
        assert_eq!(code, 401);
    }
    // Nobody called from the invitee's number: kept, and shown as booked elsewhere.
    let (code, answer) = post_booking(
        &s,
        "calendly",
        body,
        &[("Calendly-Webhook-Signature", good)],
    );
    assert_eq!(
        (code, answer.contains("unmatched")),
        (200, true),
        "{answer}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM bookings WHERE contact_id IS NULL AND state = 'booked'"),
        1
    );
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let page = b.get("/dashboard");
    assert!(
        page.body.contains("booked, not from a text-back"),
        "{}",
        page.body
    );
}

/// The generic hook's signature header for `body`, signed now.
fn generic_signature(body: &str) -> String {
    let t = now_secs();
    let mac = hex_hmac(
        "generic-key-0123456789",
        &[t.to_string().as_bytes(), b".", body.as_bytes()],
    );
    format!("t={t},v1={mac}")
}

/// A missed call from the caller, and the contact it makes.
fn caller_contact(s: &TestServer) {
    s.missed_call("CA1", CALLER);
    wait_for("the contact", 10, || {
        (s.count("SELECT COUNT(*) FROM contacts") == 1).then_some(())
    });
}

#[test]
fn the_generic_hook_takes_a_value_and_refuses_an_unsigned_request() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&bookings_config(&fake, ""));
    caller_contact(&s);
    let body = format!(
        r#"{{"id": "crm-42", "event": "booked", "phone": "{}", "value": "199.99"}}"#,
        CALLER
    );
    let (code, _) = post_booking(&s, "generic", &body, &[]);
    assert_eq!(code, 401);
    let header = generic_signature(&body);
    let (code, answer) = post_booking(&s, "generic", &body, &[("Textback-Signature", header)]);
    assert_eq!(
        (code, answer.contains("\"booked\"")),
        (200, true),
        "{answer}"
    );
    assert_eq!(
        s.count(&format!(
            "SELECT booked_value_cents FROM contacts WHERE phone = '{CALLER}'"
        )),
        19_999
    );
    let (code, _) = post_booking(&s, "nosuch", &body, &[]);
    assert_eq!(code, 404);
}

/// An SMTP server on 127.0.0.1 that takes every message, in clear text, and keeps them.
struct FakeSmtp {
    port: u16,
    mails: Arc<Mutex<Vec<String>>>,
}

impl FakeSmtp {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = Arc::clone(&mails);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || Self::session(stream, &kept));
            }
        });
        Self { port, mails }
    }

    fn session(stream: std::net::TcpStream, kept: &Mutex<Vec<String>>) {
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let _ = out.write_all(b"220 fake ESMTP\r\n");
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250-fake\r\n250 8BITMIME\r\n",
                "DATA" => {
                    let _ = out.write_all(b"354 go ahead\r\n");
                    let mut mail = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        mail.push_str(&line);
                    }
                    kept.lock().unwrap().push(mail);
                    b"250 queued as 1\r\n"
                }
                "QUIT" => {
                    let _ = out.write_all(b"221 bye\r\n");
                    return;
                }
                _ => b"250 ok\r\n",
            };
            let _ = out.write_all(answer);
        }
    }

    fn mails(&self) -> Vec<String> {
        self.mails.lock().unwrap().clone()
    }

    fn config(&self) -> String {
        format!(
            "[email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nallow_plaintext = true\nfrom = \"Acme alerts <alerts@example.com>\"\nretry_backoff = \"50ms\"\n",
            self.port
        )
    }
}

#[test]
fn staff_get_alerts_by_email_and_email_test_sends_one() {
    let fake = FakeTwilio::start();
    let smtp = FakeSmtp::start();
    let notify = "[[business.notify]]\nname = \"Owner\"\nemail = \"owner@example.com\"\n";
    let config = twilio_config(&fake.url, "0s", notify);
    let s = TestServer::start(&format!("{}\n{}", smtp.config(), config));
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    s.text_in("SM1", CALLER, "Can you come today?");
    let mail = wait_for("the alert email", 10, || smtp.mails().into_iter().next());
    assert!(mail.contains("To: owner@example.com"), "{mail}");
    assert!(mail.contains("Subject: Acme HVAC: reply from"), "{mail}");
    assert!(mail.contains("Can you come today?"), "{mail}");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'email' AND state = 'done'"),
        1
    );

    let (code, out, err) = cli(s.dir.path(), &["email-test", "me@example.com"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Sent to me@example.com"), "{out}");
    assert!(smtp
        .mails()
        .iter()
        .any(|m| m.contains("To: me@example.com")));
    let (code, _, err) = cli(s.dir.path(), &["email-test", "not an address"]);
    assert_ne!(code, 0);
    assert!(err.contains("not an email address"), "{err}");
}

#[test]
fn a_plain_text_relay_must_be_allowed_and_never_gets_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[email]\nhost = \"mail.example.com\"\ntls = \"none\"\nuser = \"u\"\npassword = \"p\"\nfrom = \"a@example.com\"\n{}",
        twilio_config("http://127.0.0.1:9", "0s", "digest = \"0 7 * * *\"")
    );
    std::fs::write(dir.path().join("textback.toml"), config).unwrap();
    let (code, _, err) = cli(dir.path(), &["check-config", "--config", "textback.toml"]);
    assert_ne!(code, 0);
    assert!(err.contains("email.tls"), "{err}");
    assert!(err.contains("email.password"), "{err}");
    assert!(err.contains("business[0].digest"), "{err}");
}

/// The scheduler of a New York business with a digest at `schedule`, on a manual clock at `start`.
fn digest_deps(
    smtp: &FakeSmtp,
    schedule: &str,
    start: &str,
    dir: &tempfile::TempDir,
) -> (
    textback::scheduler::Deps,
    std::sync::Arc<textback::clock::ManualClock>,
) {
    let notify = format!(
        "digest = \"{schedule}\"\n[[business.notify]]\nname = \"Owner\"\nemail = \"owner@example.com\"\n"
    );
    let text = format!(
        "{}\n{}",
        smtp.config(),
        twilio_config("http://127.0.0.1:9", "0s", &notify)
            .replace("America/Phoenix", "America/New_York")
    );
    manual_scheduler(dir, &text, at(start))
}

fn next_digest(deps: &textback::scheduler::Deps) -> i64 {
    deps.store
        .read(|c| {
            Ok(textback::store::jobs::pending_of_kind(c, "digest")?
                .first()
                .map_or(0, |j| j.run_at))
        })
        .unwrap()
}

#[test]
fn the_digest_runs_once_at_its_local_time_on_both_daylight_saving_days() {
    // (schedule, clock before, first run in UTC, a moment after it when it must not run again, the day after)
    let cases = [
        // Fall back: 01:30 happens twice; the digest goes at the first one only.
        (
            "30 1 * * *",
            "2026-10-31T16:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-02T06:30:00Z",
            "Saturday 31 October 2026",
        ),
        // Spring forward: 02:30 does not exist; the digest goes at 03:00.
        (
            "30 2 * * *",
            "2026-03-07T16:00:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-09T06:30:00Z",
            "Saturday 7 March 2026",
        ),
    ];
    for (schedule, start, due, later, tomorrow, day) in cases {
        let smtp = FakeSmtp::start();
        let dir = tempfile::tempdir().unwrap();
        let (deps, clock) = digest_deps(&smtp, schedule, start, &dir);
        tick(&deps, &clock, at(start));
        assert_eq!(next_digest(&deps), at(due), "{schedule}: queued for {due}");
        let before = chrono::DateTime::from_timestamp_millis(at(due) - 60_000)
            .unwrap()
            .to_rfc3339();
        tick(&deps, &clock, at(&before));
        assert!(smtp.mails().is_empty(), "{schedule}: not before {due}");
        tick(&deps, &clock, at(due));
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{schedule}: one digest at {due}");
        assert!(mails[0].contains("To: owner@example.com"), "{}", mails[0]);
        assert!(mails[0].contains("multipart/alternative"), "{}", mails[0]);
        assert!(
            mails[0].contains(day),
            "{schedule}: about {day}: {}",
            mails[0]
        );
        tick(&deps, &clock, at(later));
        assert_eq!(smtp.mails().len(), 1, "{schedule}: not again at {later}");
        assert_eq!(
            next_digest(&deps),
            at(tomorrow),
            "{schedule}: next at {tomorrow}"
        );
    }
}

#[test]
fn integration_settings_are_checked_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let business = "digest = \"0 7 * *\"\n\
        [[business.notify]]\nname = \"Owner\"\nemail = \"not-an-address\"\n\
        [[business.webhooks]]\nurl = \"ftp://crm.example.com\"\nsecret = \"short\"\nevents = [\"reply.recieved\"]\n";
    let config = format!(
        "[email]\nhost = \"smtp.example.com\"\nfrom = \"Acme <alerts@example.com>\"\n{}",
        twilio_config("http://127.0.0.1:9", "0s", business)
    );
    std::fs::write(dir.path().join("textback.toml"), config).unwrap();
    let (code, _, err) = cli(dir.path(), &["check-config", "--config", "textback.toml"]);
    assert_eq!(code, 78, "{err}");
    for want in [
        "business[0].digest: `0 7 * *` is not a cron expression",
        "business[0].notify[0].email: \"not-an-address\" is not an email address",
        "business[0].webhooks[0].url: is not an http(s) URL",
        "business[0].webhooks[0].secret: must be at least 16 characters",
        "business[0].webhooks[0].events[0]: \"reply.recieved\" is not an event type",
        "did you mean `reply.received`?",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("short\""),
        "the secret is not repeated: {err}"
    );
    assert!(err.contains("textback.toml:"), "{err}");
}

#[test]
fn a_booking_without_a_phone_is_matched_by_the_email_staff_saved() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&bookings_config(&fake, ""));
    caller_contact(&s);
    add_user(&s, "sam", &["--role", "staff"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let id = s.count("SELECT id FROM contacts");
    let page = b.get(&format!("/contacts/{id}"));
    let csrf = Browser::csrf(&page);
    let refused = b.post(
        &format!("/contacts/{id}"),
        &[
            ("csrf", &csrf),
            ("name", "Dana"),
            ("email", "dana at example"),
        ],
    );
    assert_eq!(refused.status, 400);
    b.post(
        &format!("/contacts/{id}"),
        &[
            ("csrf", &csrf),
            ("name", "Dana"),
            ("email", "Dana@Example.com"),
        ],
    );
    assert_eq!(
        s.text("SELECT email FROM contacts").as_deref(),
        Some("dana@example.com")
    );
    let body = r#"{"id": "crm-7", "event": "booked", "email": "dana@example.com"}"#;
    let header = generic_signature(body);
    let (code, answer) = post_booking(&s, "generic", body, &[("Textback-Signature", header)]);
    assert_eq!(
        (code, answer.contains("\"booked\"")),
        (200, true),
        "{answer}"
    );
    assert_eq!(
        s.text("SELECT state FROM contacts").as_deref(),
        Some("booked")
    );
}

#[test]
fn starttls_that_the_server_does_not_offer_sends_nothing_in_clear_text() {
    let smtp = FakeSmtp::start();
    let dir = tempfile::tempdir().unwrap();
    let email = smtp.config().replace(
        "tls = \"none\"\nallow_plaintext = true\n",
        "tls = \"starttls\"\nuser = \"u\"\npassword = \"secret-password\"\n",
    );
    assert!(email.contains("starttls"), "{email}");
    let config = format!("{email}\n{}", twilio_config("http://127.0.0.1:9", "0s", ""));
    std::fs::write(dir.path().join("textback.toml"), config).unwrap();
    let (code, out, err) = cli(dir.path(), &["email-test", "me@example.com"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(!err.contains("secret-password"), "{err}");
    assert!(smtp.mails().is_empty(), "nothing was sent");
}
