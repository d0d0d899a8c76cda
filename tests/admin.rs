//! The admin UI through HTTP: access control, sessions, CSRF, tenant isolation, the reply path through the
//! fake provider, the first-run setup link, security headers and static files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::{Command, Stdio};

#[test]
fn logged_out_visitors_are_sent_to_the_login_page() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let mut b = Browser::new(&s);
    for path in [
        "/",
        "/dashboard",
        "/conversations/1",
        "/contacts",
        "/contacts/1",
        "/contacts.csv",
        "/settings",
        "/simulator",
    ] {
        let p = b.get(path);
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/login")),
            "{path}"
        );
    }
    for path in [
        "/conversations/1/reply",
        "/contacts/1",
        "/contacts/1/erase",
        "/settings/0",
        "/settings/0/test-text",
        "/simulator/call",
        "/logout",
    ] {
        let p = b.post(path, &[("body", "hi"), ("csrf", "x")]);
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/login")),
            "{path}"
        );
    }
    assert_eq!(b.post("/settings/preview", &[("csrf", "x")]).status, 401);
    assert_eq!(b.get("/events").status, 401);
    let login = b.get("/login");
    assert_eq!(login.status, 200);
    assert!(login
        .body
        .contains("<form method=\"post\" action=\"/login\">"));
}

#[test]
fn login_sessions_logout_and_rate_limits() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    // Login without the form's CSRF value is refused.
    let p = b.post(
        "/login",
        &[("csrf", "forged"), ("name", "sam"), ("password", PASSWORD)],
    );
    assert_eq!(p.status, 403);
    // Wrong password.
    let p = b.login("sam", "wrong password!");
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong user name or password."));
    // Right password: a session cookie that scripts cannot read and other sites do not send.
    let p = b.login("sam", PASSWORD);
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/")),
        "{}",
        p.body
    );
    let session = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tb_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Secure"),
        "{session}"
    );
    let inbox = b.get("/");
    assert_eq!(inbox.status, 200);
    assert!(
        inbox.body.contains("No conversations here yet."),
        "{}",
        inbox.body
    );
    // Logout needs the CSRF token too, then the session is gone.
    let csrf = Browser::csrf(&inbox);
    assert_eq!(b.post("/logout", &[("csrf", "nope")]).status, 403);
    assert_eq!(
        b.post("/logout", &[("csrf", &csrf)]).location.as_deref(),
        Some("/login")
    );
    assert_eq!(b.get("/").location.as_deref(), Some("/login"));
    // Five failures in a row (the sign-in above cleared the earlier one) slow the account down for a while,
    // even for the right password.
    let mut other = Browser::new(&s);
    for _ in 0..5 {
        assert_eq!(other.login("sam", "guess guess guess").status, 401);
    }
    assert_eq!(other.login("sam", PASSWORD).status, 429);
}

#[test]
fn the_first_run_link_creates_the_owner_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTwilio::start();
    std::fs::write(
        dir.path().join("textback.toml"),
        twilio_config(&fake.url, "0s", ""),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["serve", "--config"])
        .arg(dir.path().join("textback.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut addr = String::new();
    let mut link = String::new();
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        if let Some(a) = line.split("listening on ").nth(1) {
            addr = a.trim().to_string();
        }
        if let Some(l) = line.trim().strip_prefix(PUBLIC_URL) {
            link = l.to_string();
            break;
        }
    }
    assert!(link.starts_with("/setup?token="), "no setup link printed");
    let s = TestServerRef { url: addr };
    let mut b = Browser {
        base: s.url.clone(),
        agent: ureq::AgentBuilder::new().redirects(0).build(),
        cookies: vec![],
    };
    let token = link.trim_start_matches("/setup?token=").to_string();
    assert_eq!(b.get(&link).status, 200);
    let short = b.post(
        "/setup",
        &[("token", &token), ("name", "owner"), ("password", "short")],
    );
    assert_eq!(short.status, 400);
    let done = b.post(
        "/setup",
        &[("token", &token), ("name", "owner"), ("password", PASSWORD)],
    );
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/")));
    assert_eq!(b.get("/").status, 200);
    // The link works once.
    let mut again = Browser {
        base: s.url.clone(),
        agent: ureq::AgentBuilder::new().redirects(0).build(),
        cookies: vec![],
    };
    assert_eq!(again.get(&link).status, 404);
    assert_eq!(
        again
            .post(
                "/setup",
                &[("token", &token), ("name", "evil"), ("password", PASSWORD)]
            )
            .status,
        404
    );
    let _ = child.kill();
    let _ = child.wait();
}

struct TestServerRef {
    url: String,
}

#[test]
fn staff_reply_book_and_see_it_on_the_dashboard() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    s.text_in("SM1", CALLER, "Can you come Tuesday?");
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let inbox = b.get("/");
    assert!(
        inbox.body.contains("needs reply") && inbox.body.contains("Can you come Tuesday?"),
        "{}",
        inbox.body
    );
    let id = s.count("SELECT id FROM contacts");
    assert!(
        inbox.body.contains("<span class=\"badge new\">new</span>"),
        "unread marker"
    );
    let page = b.get(&format!("/conversations/{id}"));
    assert!(
        page.body.contains("Missed call · no answer")
            && page.body.contains("Can you come Tuesday?"),
        "{}",
        page.body
    );
    // Which script the text-back used, and why.
    assert!(
        page.body
            .contains("Texted back with the opening-hours script, because the business was open when they called"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    assert!(
        !b.get("/").body.contains("badge new"),
        "opening the conversation marks it read"
    );
    // A reply without the CSRF token is refused and sends nothing.
    let forged = b.post(
        &format!("/conversations/{id}/reply"),
        &[("body", "forged"), ("csrf", "bad")],
    );
    assert_eq!(forged.status, 403);
    let sent = b.post(
        &format!("/conversations/{id}/reply"),
        &[("body", "Yes, 9am works!"), ("csrf", &csrf)],
    );
    assert_eq!(sent.status, 303);
    let reply = wait_for("the reply", 10, || {
        fake.sends_to(CALLER)
            .into_iter()
            .find(|r| r.get("Body") == Some("Yes, 9am works!"))
    });
    assert_eq!(reply.get("From"), Some(BUSINESS_NUMBER));
    assert!(fake
        .sends_to(CALLER)
        .iter()
        .all(|r| r.get("Body") != Some("forged")));
    assert_eq!(s.count("SELECT needs_reply FROM contacts"), 0);
    // Mark booked with a value; the dashboard counts it.
    b.post(
        &format!("/conversations/{id}/booked"),
        &[("value", "385"), ("csrf", &csrf)],
    );
    b.post(
        &format!("/conversations/{id}/note"),
        &[("body", "Gate code 1234"), ("csrf", &csrf)],
    );
    let page = b.get(&format!("/conversations/{id}"));
    assert!(
        page.body.contains("booked $385.00") && page.body.contains("Gate code 1234"),
        "{}",
        page.body
    );
    let dash = b.get("/dashboard");
    assert!(dash.body.contains("$385.00"), "{}", dash.body);
    assert!(
        dash.body.contains("<tr><th>Booked</th><td>1</td></tr>"),
        "{}",
        dash.body
    );
    assert!(dash.body.contains("<svg") && dash.body.contains("Missed calls by weekday and hour"));
    // It leads with this month: the money and the job recovered, and what needs attention.
    let month = (chrono::Utc::now() - chrono::Duration::hours(7))
        .format("%B")
        .to_string();
    let lead = dash.body.find("class=\"tiles headline\"").unwrap();
    assert!(
        dash.body[lead..].starts_with(&format!(
            "class=\"tiles headline\" aria-label=\"{month} so far\">\n  <div class=\"tile lead\"><span class=\"n\">$385.00</span><span>recovered in {month}</span></div>\n  <div class=\"tile\"><span class=\"n\">1</span><span>job booked in {month}</span></div>"
        )),
        "{}",
        &dash.body[lead..]
    );
    assert!(lead < dash.body.find("<h2>Funnel</h2>").unwrap());
    assert!(
        dash.body
            .contains("Nothing: every conversation is answered."),
        "{}",
        dash.body
    );
    // Set-up hints are on the Setup page, not here.
    assert!(!dash.body.contains("/hooks/twilio/voice"));
    assert!(b
        .get("/golive")
        .body
        .contains(&format!("{PUBLIC_URL}/hooks/twilio/voice")));
}

#[test]
fn staff_never_see_another_business() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&agency(&fake.url));
    add_user(&s, "ann", &["--business", "acme"]);
    // One conversation at each business.
    s.text_in("SM1", CALLER, "hello acme");
    s.post_signed(
        "/hooks/twilio/sms",
        &[
            ("Body", "hello bolt secret"),
            ("From", "+14805550777"),
            ("MessageSid", "SM2"),
            ("To", "+16025550300"),
        ],
    );
    let bolt = s.count("SELECT id FROM contacts WHERE business_id = 'bolt'");
    let acme = s.count("SELECT id FROM contacts WHERE business_id = 'acme'");
    let mut b = Browser::new(&s);
    b.login("ann", PASSWORD);
    let inbox = b.get("/");
    assert!(inbox.body.contains("hello acme"));
    assert!(!inbox.body.contains("hello bolt"), "{}", inbox.body);
    assert!(!b.get("/?business=bolt").body.contains("hello bolt"));
    let page = b.get(&format!("/conversations/{bolt}"));
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("hello bolt"));
    let csrf = Browser::csrf(&b.get(&format!("/conversations/{acme}")));
    let act = b.post(
        &format!("/conversations/{bolt}/reply"),
        &[("body", "sneaky"), ("csrf", &csrf)],
    );
    assert_eq!(act.status, 404);
    assert!(!b.get("/dashboard").body.contains("Bolt Locksmiths"));
    assert_eq!(b.get(&format!("/contacts/{bolt}")).status, 404);
    assert!(!b.get("/contacts").body.contains("+14805550777"));
    assert!(!b.get("/contacts.csv").body.contains("+14805550777"));
    let erase = b.post(
        &format!("/contacts/{bolt}/erase"),
        &[("csrf", &csrf), ("confirm", "+14805550777")],
    );
    assert_eq!(erase.status, 404);
    assert_eq!(
        s.count(&format!("SELECT COUNT(*) FROM contacts WHERE id = {bolt}")),
        1
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(fake.sends_to("+14805550777").is_empty());
}

#[test]
fn pages_carry_security_headers_and_assets_are_cached() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let mut b = Browser::new(&s);
    let login = b.get("/login");
    let header = |name: &str| {
        login
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let csp = header("Content-Security-Policy");
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header("X-Frame-Options"), "DENY");
    assert_eq!(header("Referrer-Policy"), "same-origin");
    assert!(
        !login.body.contains("<script>") && !login.body.contains("style="),
        "inline script or style"
    );
    let css = login
        .body
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(
        css.starts_with("/static/") && css.ends_with("/app.css"),
        "{css}"
    );
    let first = b.get(&css);
    assert_eq!(first.status, 200);
    let etag = first
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
        .unwrap()
        .1
        .clone();
    assert!(first
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("cache-control") && v.contains("immutable")));
    let again = Browser::answer(
        ureq::AgentBuilder::new()
            .redirects(0)
            .build()
            .get(&format!("{}{css}", s.url))
            .set("If-None-Match", &etag)
            .call(),
    );
    assert_eq!(again.status, 304);
    assert_eq!(b.get("/static/0000000000000000/app.css").status, 404);
}

#[test]
fn user_commands_list_change_and_remove_users() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "ann", &["--business", "acme"]);
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, _) = cli(s.dir.path(), &["user", "list", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ann") && out.contains("staff") && out.contains("acme"),
        "{out}"
    );
    // With one business, a staff user needs no --business.
    add_user(&s, "bob", &[]);
    let (_, out, _) = cli(s.dir.path(), &["user", "list", "--config", &cfg]);
    assert!(
        out.lines()
            .any(|l| l.contains("bob") && l.contains("staff") && l.contains("acme")),
        "{out}"
    );
    let (code, _, err) = cli(
        s.dir.path(),
        &["user", "add", "bob", "--business", "nope", "--config", &cfg],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no business \"nope\""), "{err}");
    let (code, out, _) = cli(s.dir.path(), &["user", "remove", "ann", "--config", &cfg]);
    assert_eq!(code, 0, "{out}");
    let mut b = Browser::new(&s);
    assert_eq!(b.login("ann", PASSWORD).status, 401);
}

#[test]
fn the_json_api_reads_with_the_token_owner_access() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&agency(&fake.url));
    add_user(&s, "ann", &["--business", "acme"]);
    s.missed_call("CA1", CALLER);
    s.text_in("SM1", CALLER, "hello acme");
    s.post_signed(
        "/hooks/twilio/sms",
        &[
            ("Body", "hello bolt"),
            ("From", "+14805550777"),
            ("MessageSid", "SM2"),
            ("To", "+16025550300"),
        ],
    );
    let bolt = s.count("SELECT id FROM contacts WHERE business_id = 'bolt'");
    let acme = s.count("SELECT id FROM contacts WHERE business_id = 'acme'");
    assert_eq!(api(&s, "/api/v1/conversations", None).0, 401);
    assert_eq!(api(&s, "/api/v1/conversations", Some("not-a-token")).0, 401);
    let token = create_token(&s, "ann");
    let (status, json) = api(&s, "/api/v1/conversations", Some(&token));
    assert_eq!(status, 200);
    let list = json["conversations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{json}");
    assert_eq!(list[0]["business"], "acme");
    assert_eq!(list[0]["last_message"], "hello acme");
    let (status, json) = api(
        &s,
        &format!("/api/v1/conversations/{acme}/messages"),
        Some(&token),
    );
    assert_eq!(status, 200);
    assert!(
        json["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "hello acme"),
        "{json}"
    );
    assert_eq!(
        api(
            &s,
            &format!("/api/v1/conversations/{bolt}/messages"),
            Some(&token)
        )
        .0,
        404
    );
    let (_, json) = api(&s, "/api/v1/calls", Some(&token));
    assert_eq!(json["calls"][0]["call_sid"], "CA1");
    let (_, json) = api(&s, "/api/v1/contacts", Some(&token));
    assert_eq!(json["contacts"].as_array().unwrap().len(), 1);
    let (_, json) = api(&s, "/api/v1/stats?days=7", Some(&token));
    assert_eq!(json["funnel"]["missed"], 1, "{json}");
}

#[test]
fn contacts_can_be_found_edited_exported_and_erased() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    s.missed_call("CA1", CALLER);
    s.text_in("SM1", CALLER, "STOP");
    s.text_in("SM2", "+14805550222", "hi there");
    let id = s.count(&format!("SELECT id FROM contacts WHERE phone = '{CALLER}'"));
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let page = b.get(&format!("/contacts/{id}"));
    assert!(
        page.body.contains("opt out (keyword:STOP)"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    let saved = b.post(
        &format!("/contacts/{id}"),
        &[
            ("csrf", &csrf),
            ("name", "=Jo Smith"),
            ("tags", "customer, vip"),
            ("notes", "Gate code 42"),
        ],
    );
    assert_eq!(saved.status, 303);
    let found = b.get("/contacts?q=Jo");
    assert!(
        found.body.contains("=Jo Smith") && !found.body.contains("+14805550222"),
        "{}",
        found.body
    );
    let csv = b.get("/contacts.csv");
    assert!(csv
        .body
        .starts_with("id,business,phone,name,tags,state,opted_out_at,booked_value\n"));
    assert!(
        csv.body.contains(&format!(
            "{id},acme,{CALLER},'=Jo Smith,\"customer, vip\",opted_out,"
        )),
        "{}",
        csv.body
    );
    // Erase needs the number typed back.
    let wrong = b.post(
        &format!("/contacts/{id}/erase"),
        &[("csrf", &csrf), ("confirm", "yes")],
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(
        s.count(&format!("SELECT COUNT(*) FROM contacts WHERE id = {id}")),
        1
    );
    let gone = b.post(
        &format!("/contacts/{id}/erase"),
        &[("csrf", &csrf), ("confirm", CALLER)],
    );
    assert_eq!(gone.location.as_deref(), Some("/contacts?erased=1"));
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM contacts WHERE phone = '{CALLER}'"
        )),
        0
    );
    assert_eq!(s.count(&format!("SELECT COUNT(*) FROM messages WHERE to_number = '{CALLER}' OR from_number = '{CALLER}' OR instr(body, '{CALLER}') > 0")), 0);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM calls WHERE from_raw = '{CALLER}'"
        )),
        0
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE from_raw = 'erased'"),
        1
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM consent_events"), 0);
}

#[test]
fn open_pages_hear_about_new_activity() {
    use std::io::{BufRead, BufReader, Write as _};
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        b.cookie_header()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    s.text_in("SM1", CALLER, "anyone there?");
    let mut seen = String::new();
    while !seen.contains("event: update") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream closed"
        );
        seen.push_str(&line);
    }
    // Without a session there is no stream.
    let resp = ureq::get(&format!("{}/events", s.url)).call();
    assert!(matches!(resp, Err(ureq::Error::Status(401, _))));
}

#[test]
fn owners_edit_settings_which_are_validated_written_back_and_applied() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "0s", "").replace(
        "text_delay = \"0s\"",
        "# wait a little\ntext_delay = \"0s\"   # seconds matter",
    );
    let s = TestServer::start(&config);
    add_user(&s, "sam", &["--role", "owner"]);
    add_user(&s, "ann", &["--business", "acme"]);
    let mut staff = Browser::new(&s);
    staff.login("ann", PASSWORD);
    assert_eq!(staff.get("/settings").status, 403);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let page = b.get("/settings");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("name=\"text_delay\" value=\"0s\""),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    // Preview a script with the segment count.
    let preview = b.post(
        "/settings/preview",
        &[
            ("csrf", &csrf),
            ("business", "0"),
            ("script", "Hi from {{ name }}!"),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&preview.body).unwrap();
    assert_eq!(json["text"], "Hi from Acme HVAC! Reply STOP to opt out.");
    assert_eq!(json["segments"], 1);
    let broken = b.post(
        "/settings/preview",
        &[
            ("csrf", &csrf),
            ("business", "0"),
            ("script", "Hi {{ nope }}"),
        ],
    );
    assert!(broken.body.contains("undefined value"), "{}", broken.body);
    // A bad edit changes nothing.
    let version = form_value(&page.body, "version");
    let before = std::fs::read_to_string(&s.config).unwrap();
    let bad = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("quiet_hours", "9pm-8am"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("business[0].quiet_hours"), "{}", bad.body);
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), before);
    // What was typed is still in the form, in an open section.
    assert!(
        bad.body.contains("name=\"quiet_hours\" value=\"9pm-8am\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("id=\"b0-pace\" open"), "{}", bad.body);
    // Sections; built-in scripts as words, never their names; the greeting previewed as speech.
    for section in [
        "Scripts",
        "Hours",
        "Quiet hours and pace",
        "Alerts",
        "Saved replies",
        "Prices",
    ] {
        assert!(
            page.body.contains(&format!("<summary>{section}</summary>")),
            "{section}"
        );
    }
    assert!(
        page.body.contains("The built-in “direct question” text")
            && page
                .body
                .contains(">Hi, this is {{ name }}. Sorry we missed your call!")
            && !page.body.contains(">direct_question<")
            && !page.body.contains(">emergency_triage<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-speech"), "{}", page.body);
    assert!(
        page.body
            .contains("data-optional=\"the texts above are used\""),
        "{}",
        page.body
    );
    // Saved replies: one per line, written as a list, offered in conversations at once.
    let replies = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", &version),
            (
                "saved_replies",
                "On our way!\r\nHere is our price list: https://acme.example.com/prices",
            ),
        ],
    );
    assert_eq!(replies.status, 303, "{}", replies.body);
    let after = std::fs::read_to_string(&s.config).unwrap();
    assert!(
        after.contains("saved_replies = [\"On our way!\", \"Here is our price list: https://acme.example.com/prices\"]"),
        "{after}"
    );
    let page = b.get("/settings");
    let csrf = Browser::csrf(&page);
    let version = form_value(&page.body, "version");
    // A custom script can be reset to the built-in default.
    let custom = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("script", "Hi from {{ name }}!"),
        ],
    );
    assert_eq!(custom.status, 303, "{}", custom.body);
    let page = b.get("/settings");
    assert!(
        page.body.contains(">Reset to default</button>"),
        "{}",
        page.body
    );
    let version = form_value(&page.body, "version");
    let reset = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("script", "Hi from {{ name }}!"),
            ("reset", "script"),
        ],
    );
    assert_eq!(reset.status, 303, "{}", reset.body);
    assert!(!std::fs::read_to_string(&s.config)
        .unwrap()
        .contains("Hi from"));
    let page = b.get("/settings");
    let version = form_value(&page.body, "version");
    // A good one is written back with the comments kept, and applies at once.
    let good = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("text_delay", "1h"),
            ("hours.sun", "10:00-14:00"),
        ],
    );
    assert_eq!(
        good.location.as_deref(),
        Some("/settings?saved=1"),
        "{}",
        good.body
    );
    let after = std::fs::read_to_string(&s.config).unwrap();
    assert!(
        after.contains("# wait a little\ntext_delay = \"1h\"   # seconds matter"),
        "{after}"
    );
    assert!(after.contains("sun = [\"10:00-14:00\"]"), "{after}");
    s.missed_call("CA1", CALLER);
    let due = s.count("SELECT run_at - created_at FROM jobs WHERE kind = 'text_back'");
    assert_eq!(due, 3_600_000);
    // And a test text goes to the number given.
    b.post(
        "/settings/0/test-text",
        &[("csrf", &csrf), ("to", "+14805550999")],
    );
    let test = wait_for("the test text", 10, || {
        fake.sends_to("+14805550999").into_iter().next()
    });
    assert!(test
        .get("Body")
        .unwrap()
        .starts_with("[test] Hi, this is Acme HVAC."));
}

#[test]
fn the_simulator_page_places_a_missed_call_and_shows_the_text_back() {
    let config = simulator_config();
    let s = TestServer::start(&config);
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    assert!(b.get("/").body.contains("href=\"/simulator\""));
    assert!(
        b.get("/dashboard").body.contains("href=\"/simulator\""),
        "every page shows the simulator tab"
    );
    let page = b.get("/simulator");
    assert!(page.body.contains("Call +16025550100"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    let call = b.post(
        "/simulator/call",
        &[
            ("csrf", &csrf),
            ("business", "demo"),
            ("from", CALLER),
            ("status", "no-answer"),
        ],
    );
    assert_eq!(call.status, 303);
    wait_for("the simulated text-back", 10, || {
        let p = b.get("/simulator?business=demo&from=%2B14805550111");
        p.body.contains("Hi, this is Demo Plumbing.").then_some(())
    });
    b.post(
        "/simulator/text",
        &[
            ("csrf", &csrf),
            ("business", "demo"),
            ("from", CALLER),
            ("body", "My sink is leaking"),
        ],
    );
    assert!(b.get("/").body.contains("My sink is leaking"));
}

#[test]
fn the_api_says_when_a_business_is_unknown() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let token = create_token(&s, "sam");
    for path in ["stats", "calls", "contacts", "conversations"] {
        let (status, body) = api(&s, &format!("/api/v1/{path}?business=nope"), Some(&token));
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("no business \"nope\""),
            "{body}"
        );
        let (status, _) = api(&s, &format!("/api/v1/{path}?business=acme"), Some(&token));
        assert_eq!(status, 200, "{path}");
    }
}

#[test]
fn pages_show_commands_as_code_not_backticks() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let mut b = Browser::new(&s);
    let p = b.get("/setup?token=not-a-token");
    assert_eq!(p.status, 404);
    assert!(
        p.body.contains("<code>textback user add</code>"),
        "{}",
        p.body
    );
    assert!(!p.body.contains('`'), "{}", p.body);
}

#[test]
fn a_booking_marked_lost_is_not_counted_as_recovered() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let token = create_token(&s, "sam");
    s.missed_call("CA1", CALLER);
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, _, err) = cli(
        s.dir.path(),
        &["mark-booked", CALLER, "--value", "385", "--config", &cfg],
    );
    assert_eq!(code, 0, "{err}");
    let (_, stats) = api(&s, "/api/v1/stats", Some(&token));
    assert_eq!(
        (&stats["funnel"]["booked"], &stats["recovered_cents"]),
        (&serde_json::json!(1), &serde_json::json!(38500)),
        "{stats}"
    );
    let (code, _, err) = cli(s.dir.path(), &["mark-lost", CALLER, "--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    let (_, stats) = api(&s, "/api/v1/stats", Some(&token));
    assert_eq!(
        (&stats["funnel"]["booked"], &stats["recovered_cents"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{stats}"
    );
}

#[test]
fn the_simulator_delivers_what_it_sends() {
    let s = TestServer::start(&simulator_config());
    add_user(&s, "sam", &["--role", "owner"]);
    let token = create_token(&s, "sam");
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, err) = cli(
        s.dir.path(),
        &[
            "simulate",
            "missed-call",
            "--from",
            CALLER,
            "--url",
            &s.url,
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    wait_for("the simulated text", 10, || {
        s.text("SELECT status FROM messages WHERE direction = 'out'")
            .filter(|st| st == "delivered")
    });
    let (_, stats) = api(&s, "/api/v1/stats", Some(&token));
    assert_eq!(stats["funnel"]["delivered"], 1, "{stats}");
}

#[test]
fn staff_of_several_businesses_must_say_which() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&agency(&fake.url));
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, _, err) = cli(s.dir.path(), &["user", "add", "carl", "--config", &cfg]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--business ID; give at least one of: acme, bolt"),
        "{err}"
    );
}

#[test]
fn the_simulator_says_what_became_of_each_call_and_starts_from_a_fresh_number() {
    // Closed all week and a long text delay: the page has to say when the text leaves and why it is the
    // after-hours one.
    let closed =
        "[business.hours]\nmon = []\ntue = []\nwed = []\nthu = []\nfri = []\nsat = []\nsun = []\n";
    let config = simulator_config()
        .replace("text_delay = \"0s\"", "text_delay = \"1h\"")
        .replace(ALL_WEEK, closed);
    assert!(config.contains("text_delay = \"1h\"") && config.contains("mon = []"));
    let s = TestServer::start(&config);
    add_user(&s, "sam", &["--role", "owner"]);
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let page = b.get("/simulator");
    assert!(
        page.body.contains("name=\"from\" value=\"+14805550100\""),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    let call = |b: &mut Browser, from: &str| {
        let p = b.post(
            "/simulator/call",
            &[
                ("csrf", &csrf),
                ("business", "demo"),
                ("from", from),
                ("status", "no-answer"),
                ("body", ""),
            ],
        );
        assert_eq!(p.status, 303, "{}", p.body);
        b.get(&format!(
            "/simulator?business=demo&from={}",
            from.replace('+', "%2B")
        ))
    };
    let p = call(&mut b, "+14805550100");
    assert!(
        p.body
            .contains("call missed (no answer): text-back due at ")
            && p.body
                .contains("with after_hours_script: the business was closed when they called"),
        "{}",
        p.body
    );
    // A number that opted out is told so, not silently ignored.
    let stop = b.post(
        "/simulator/text",
        &[
            ("csrf", &csrf),
            ("business", "demo"),
            ("from", "+14805550105"),
            ("status", "no-answer"),
            ("body", "STOP"),
        ],
    );
    assert_eq!(stop.status, 303);
    let p = call(&mut b, "+14805550105");
    assert!(
        p.body.contains("not texted: this number opted out"),
        "{}",
        p.body
    );
    // A fresh page plays a number this business has never heard from.
    let page = b.get("/simulator");
    assert!(
        page.body.contains("name=\"from\" value=\"+14805550101\""),
        "{}",
        page.body
    );
}

/// `HH:MM` in Phoenix (UTC-7 all year) now, and a minute ago (a page may render across a minute's turn).
fn phoenix_now() -> [String; 2] {
    let t = chrono::Utc::now() - chrono::Duration::hours(7);
    [t, t - chrono::Duration::minutes(1)].map(|t| t.format("%H:%M").to_string())
}

#[test]
fn the_conversation_reads_like_a_messaging_app() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(
        &fake.url,
        "0s",
        "voicemail = true\nbooking_link = \"https://book.example.com/acme\"\nsaved_replies = [\"On our way!\", \"Can you send a photo?\"]",
    ));
    add_user(&s, "sam", &["--role", "staff", "--business", "acme"]);
    s.missed_call("CA1", CALLER);
    let rec = recording(
        "CA1",
        CALLER,
        "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
    );
    assert_eq!(
        s.post_signed("/hooks/twilio/recording", &borrow(&rec))
            .status,
        200
    );
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    let sid = wait_for("the text-back's sid", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE purpose = 'textback'")
    });
    // The carrier says it never arrived: a landline.
    assert_eq!(
        s.receipt(&sid, CALLER, "undelivered", Some("30006")).status,
        200
    );
    s.text_in(
        "SM-link",
        CALLER,
        "Photo: https://example.com/p/1.jpg. Thanks",
    );
    let id = s.count("SELECT id FROM contacts");
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);

    let inbox = b.get("/");
    assert!(
        inbox.body.contains("(480) 555-0111") && !inbox.body.contains("+14805550111"),
        "the inbox shows numbers as people write them: {}",
        inbox.body
    );
    assert!(!inbox.body.contains("UTC"), "{}", inbox.body);

    let page = b.get(&format!("/conversations/{id}"));
    let body = &page.body;
    for (what, needle) in [
        ("tap to call", "href=\"tel:+14805550111\""),
        ("tap to text", "href=\"sms:+14805550111\""),
        ("the formatted number", "(480) 555-0111"),
        ("a day heading", "<h2 class=\"day\"><span>Today</span></h2>"),
        ("their bubble", "class=\"msg in\""),
        ("an automatic bubble", "class=\"msg out auto failed\""),
        ("the automatic mark", "Automatic text-back"),
        (
            "a clickable link",
            "<a href=\"https://example.com/p/1.jpg\" rel=\"noopener noreferrer\" target=\"_blank\">https://example.com/p/1.jpg</a>.",
        ),
        (
            "why it failed",
            "Not delivered: a landline, or a carrier that does not take texts",
        ),
        ("a retry", ">Send again</button>"),
        (
            "the voicemail player",
            "<audio controls preload=\"none\" src=\"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1\">",
        ),
        ("the call event", "Missed call · no answer"),
        (
            "the script and why",
            "Texted back with the opening-hours script, because the business was open when they called",
        ),
        ("the booking link insert", "data-insert=\"https://book.example.com/acme\""),
        ("a saved reply insert", "data-insert=\"On our way!\""),
        ("actions in a menu", "<details class=\"menu\">"),
    ] {
        assert!(body.contains(needle), "{what}: {needle}\n{body}");
    }
    assert!(
        phoenix_now()
            .iter()
            .any(|t| body.contains(&format!(">{t}</time>"))),
        "times are Phoenix's, not UTC: {body}"
    );
    assert!(
        !body.contains("UTC") && !body.contains("+14805550111<"),
        "{body}"
    );

    // Send again: the same text, once more, as a new message.
    let csrf = Browser::csrf(&page);
    let original = fake.sends_to(CALLER)[0].get("Body").unwrap().to_string();
    let again = b.post(
        &format!("/conversations/{id}/reply"),
        &[("csrf", &csrf), ("body", &original)],
    );
    assert_eq!(again.status, 303);
    wait_for("the retry", 10, || {
        (fake.sends_to(CALLER).len() == 2).then_some(())
    });

    // Once they opt out, neither a retry nor the composer is offered, and the state is in words.
    s.text_in("SM-stop", CALLER, "STOP");
    let page = b.get(&format!("/conversations/{id}"));
    assert!(
        !page.body.contains(">Send again</button>") && !page.body.contains("class=\"composer\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("opted out") && !page.body.contains("opted_out"));
    let contacts = b.get("/contacts");
    assert!(
        contacts.body.matches("opted out").count() == 1 && !contacts.body.contains("opted_out"),
        "{}",
        contacts.body
    );
}
