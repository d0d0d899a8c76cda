//! The fault suite: what an attacker, a busy box or a slow provider does to the appliance, through the real
//! binary. Each test reproduces a defect that was found from outside and keeps it fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;

fn server_with(delay: &str, extra: &str) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, delay, extra));
    (fake, s)
}

/// Dial actions posted while another process holds an exclusive lock on the database for `hold`: every
/// acknowledged one is stored with its text-back job, none is half-applied, refused ones succeed when
/// retried, and `/healthz` tells the truth meanwhile.
fn traffic_during_an_exclusive_lock(hold: Duration, expect_refusals: bool) {
    let (_fake, s) = server_with("1h", "");
    assert_eq!(s.get("/healthz").status, 200);
    let locker = rusqlite::Connection::open(s.db_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // Another process (a backup, a careless sqlite3 shell) lets go after `hold`.
    let release = std::thread::spawn(move || {
        std::thread::sleep(hold);
        locker.execute_batch("ROLLBACK").unwrap();
    });
    let calls: Vec<String> = (0..8).map(|i| format!("CA-lock-{i}")).collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = calls
            .iter()
            .enumerate()
            .map(|(i, sid)| {
                let s = &s;
                scope.spawn(move || {
                    s.dial_ended(sid, &format!("+1480555{:04}", 2000 + i), "no-answer", None)
                        .status
                })
            })
            .collect();
        if expect_refusals {
            // Once a write has failed, and while the lock is still held, health says so.
            let health = wait_for("healthz to report the failing writes", 9, || {
                Some(s.get("/healthz")).filter(|h| h.status == 503)
            });
            assert!(
                health.body.contains("\"database\":false"),
                "{}",
                health.body
            );
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    release.join().unwrap();

    assert!(
        statuses.iter().all(|st| *st == 200 || *st == 503),
        "{statuses:?}"
    );
    if expect_refusals {
        assert!(statuses.contains(&503), "{statuses:?}");
    } else {
        assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    }
    // Nothing half-applied: every stored missed call has its job, every job its call.
    let orphans = "SELECT COUNT(*) FROM calls c WHERE c.state = 'missed' AND NOT EXISTS
                   (SELECT 1 FROM jobs j WHERE j.kind = 'text_back' AND j.dedupe_key = 'textback:acme:' || c.call_sid)";
    assert_eq!(s.count(orphans), 0);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE state <> 'missed'"),
        0
    );
    for (sid, status) in calls.iter().zip(&statuses) {
        let stored = s.count(&format!(
            "SELECT COUNT(*) FROM calls WHERE call_sid = '{sid}' AND textback = 'scheduled'"
        ));
        if *status == 200 {
            assert_eq!(stored, 1, "{sid} was acknowledged but not stored");
        } else {
            // Refused whole: the retry will be the one that counts.
            assert_eq!(stored, 0, "{sid} was refused but partly stored");
        }
    }
    // The provider retries what was refused; now everything is stored exactly once.
    for (i, (sid, status)) in calls.iter().zip(&statuses).enumerate() {
        if *status != 200 {
            let from = format!("+1480555{:04}", 2000 + i);
            assert_eq!(s.dial_ended(sid, &from, "no-answer", None).status, 200);
        }
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'text_back'"),
        8
    );
    assert_eq!(s.count(orphans), 0);
    wait_for("healthz to recover", 10, || {
        (s.get("/healthz").status == 200).then_some(())
    });
}

#[test]
fn a_three_second_lock_delays_webhooks_but_loses_nothing() {
    traffic_during_an_exclusive_lock(Duration::from_secs(3), false);
}

#[test]
fn a_ten_second_lock_refuses_webhooks_whole_and_health_says_so() {
    traffic_during_an_exclusive_lock(Duration::from_secs(10), true);
}

const BOMB: &str =
    "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x\
                    {% endfor %}{% endfor %}{% endfor %}";

/// Posts a signed voice webhook with a short client timeout; the status, or `None` when it did not
/// answer in time.
fn ring_within(s: &TestServer, sid: &str, limit: Duration) -> Option<u16> {
    let params = voice(sid, "+14805550177");
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    let sig = textback::providers::twilio::signature(
        AUTH_TOKEN,
        &format!("{PUBLIC_URL}/hooks/twilio/voice"),
        &owned,
    );
    let agent = ureq::AgentBuilder::new().timeout(limit).build();
    match agent
        .post(&format!("{}/hooks/twilio/voice", s.url))
        .set("X-Twilio-Signature", &sig)
        .send_form(&borrow(&params))
    {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(code),
        Err(_) => None,
    }
}

#[test]
fn a_template_bomb_is_refused_at_once_and_webhooks_keep_flowing() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "olive", &["--role", "owner"]);
    add_user(&s, "stan", &["--role", "staff", "--business", "acme"]);
    // Staff do not preview scripts at all.
    let mut staff = Browser::new(&s);
    assert_eq!(staff.login("stan", PASSWORD).status, 303);
    let csrf = Browser::csrf(&staff.get("/"));
    let refused = staff.post(
        "/settings/preview",
        &[("csrf", &csrf), ("business", "0"), ("script", BOMB)],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Owners hear at once what is wrong; meanwhile webhooks and health checks are answered promptly.
    let mut owner = Browser::new(&s);
    assert_eq!(owner.login("olive", PASSWORD).status, 303);
    let csrf = Browser::csrf(&owner.get("/settings"));
    std::thread::scope(|scope| {
        let bombs: Vec<_> = (0..4)
            .map(|_| {
                let (mut b, csrf) = (owner.clone(), csrf.clone());
                scope.spawn(move || {
                    let p = b.post(
                        "/settings/preview",
                        &[("csrf", &csrf), ("business", "0"), ("script", BOMB)],
                    );
                    (p.status, p.body)
                })
            })
            .collect();
        for i in 0..10 {
            let status = ring_within(&s, &format!("CA-bomb-{i}"), Duration::from_secs(1));
            assert_eq!(status, Some(200), "webhook {i} not answered within 1 s");
            assert_eq!(s.get("/healthz").status, 200);
        }
        for b in bombs {
            let (status, body) = b.join().unwrap();
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("{% for %}"), "{body}");
            assert!(body.contains("\"error\""), "{body}");
        }
    });
    // A script that renders longer than a text can carry is refused with its length.
    let long = "{{ name }} ".repeat(180);
    let p = owner.post(
        "/settings/preview",
        &[("csrf", &csrf), ("business", "0"), ("script", &long)],
    );
    assert!(
        p.body.contains("one text carries at most 1600"),
        "{}",
        p.body
    );
    // And it is never saved: the settings form refuses it with the key.
    let version = form_value(&owner.get("/settings").body, "version");
    let p = owner.post(
        "/settings/0",
        &[("csrf", &csrf), ("version", &version), ("script", BOMB)],
    );
    assert_eq!(p.status, 400);
    assert!(p.body.contains("business[0].script"), "{}", p.body);
}

#[test]
fn sigterm_stops_the_process_within_seconds_even_with_a_send_hanging() {
    let (fake, mut s) = server_with("0s", "");
    fake.hold(true);
    s.missed_call("CA-term", CALLER);
    wait_for("the send to hang", 10, || (fake.held() == 1).then_some(()));
    let status = s.terminate_within(Duration::from_secs(8));
    assert!(
        status.is_some_and(|st| st.success()),
        "still running 8 s after SIGTERM: {status:?}\n{}",
        s.log()
    );
    fake.hold(false);
}

/// Messages systemd would receive on NOTIFY_SOCKET, collected until `within` passes.
fn notifications(sock: &std::os::unix::net::UnixDatagram, within: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    out
}

/// Whether `message` arrives within `within`.
fn notified(sock: &std::os::unix::net::UnixDatagram, message: &str, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    let mut buf = [0u8; 256];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) if &buf[..n] == message.as_bytes() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn the_watchdog_is_pinged_only_while_the_server_proves_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let fake = FakeTwilio::start();
    let s = TestServer::start_with_env(
        &twilio_config(&fake.url, "1h", "").replace(
            "database = \"textback.db\"",
            "database = \"textback.db\"\nbusy_timeout = \"300ms\"",
        ),
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            // A ping every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let first = notifications(&sock, Duration::from_secs(2));
    assert!(first.iter().any(|m| m == "READY=1"), "{first:?}");
    assert!(first.iter().any(|m| m == "WATCHDOG=1"), "{first:?}");
    // The database stops taking writes: health says so, and the pings stop, so systemd would restart it.
    let locker = rusqlite::Connection::open(s.db_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    wait_for("healthz to report the failing writes", 15, || {
        (s.get("/healthz").status == 503).then_some(())
    });
    let _ = notifications(&sock, Duration::from_millis(300));
    let during = notifications(&sock, Duration::from_millis(1500));
    assert!(!during.iter().any(|m| m == "WATCHDOG=1"), "{during:?}");
    locker.execute_batch("ROLLBACK").unwrap();
    assert!(
        notified(&sock, "WATCHDOG=1", Duration::from_secs(6)),
        "no ping after the database recovered"
    );
}

/// A sign-in form: the login cookie and the CSRF value it must echo.
fn login_form(s: &TestServer) -> (String, String) {
    let mut b = Browser::new(s);
    let page = b.get("/login");
    (b.cookie_header(), Browser::csrf(&page))
}

/// One sign-in attempt, optionally through a proxy that says who it forwards for; the status.
fn sign_in(
    s: &TestServer,
    form: &(String, String),
    name: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> u16 {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent
        .post(&format!("{}/login", s.url))
        .set("Cookie", &form.0);
    if let Some(xff) = forwarded_for {
        req = req.set("X-Forwarded-For", xff);
    }
    match req.send_form(&[("csrf", &form.1), ("name", name), ("password", password)]) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

/// The server's peak resident memory, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn parallel_guesses_check_at_most_five_passwords_and_stay_small() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "sam", &["--role", "owner"]);
    let form = login_form(&s);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (s, form) = (&s, &form);
                scope.spawn(move || sign_in(s, form, "sam", &format!("guess number {i}"), None))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|st| **st == 401).count();
    let refused = statuses.iter().filter(|st| **st == 429).count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + refused, 200, "{statuses:?}");
    let peak = peak_rss_kib(s.pid());
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    // The account stays slowed down, even for the right password, for the rest of the window.
    assert_eq!(sign_in(&s, &form, "sam", PASSWORD, None), 429);
}

#[test]
fn guesses_at_one_account_do_not_lock_out_the_others() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "sam", &["--role", "owner"]);
    add_user(&s, "alice", &["--role", "owner"]);
    let form = login_form(&s);
    for i in 0..5 {
        assert_eq!(
            sign_in(&s, &form, "alice", &format!("wrong {i}"), None),
            401
        );
    }
    assert_eq!(sign_in(&s, &form, "alice", "wrong again", None), 429);
    // Same address (everyone behind one proxy looks like this): Sam still gets in.
    assert_eq!(sign_in(&s, &form, "sam", PASSWORD, None), 303);
}

#[test]
fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "1h", "").replace(
        "public_url = ",
        "trusted_proxies = [\"127.0.0.1\"]\npublic_url = ",
    );
    let s = TestServer::start(&config);
    add_user(&s, "sam", &["--role", "owner"]);
    let form = login_form(&s);
    // One client sprays many accounts until its own budget is spent.
    let mut spent = 0;
    for i in 0..40 {
        let st = sign_in(&s, &form, &format!("nobody{i}"), "x", Some("203.0.113.5"));
        if st == 429 {
            break;
        }
        assert_eq!(st, 401);
        spent += 1;
    }
    assert_eq!(spent, 20, "the per-client budget");
    assert_eq!(
        sign_in(&s, &form, "sam", PASSWORD, Some("203.0.113.5")),
        429
    );
    // Another client behind the same proxy is unaffected; prepending to the header changes nothing.
    assert_eq!(
        sign_in(&s, &form, "nobody", "x", Some("1.1.1.1, 203.0.113.5")),
        429
    );
    assert_eq!(
        sign_in(&s, &form, "sam", PASSWORD, Some("198.51.100.7")),
        303
    );
    // A proxy that adds its own X-Forwarded-For line below the client's: the client's line is not believed.
    assert_eq!(
        raw_sign_in(&s, &form, &["198.51.100.8", "203.0.113.5"]),
        429
    );
}

/// A sign-in whose request carries each of `forwarded` as its own X-Forwarded-For line; the status.
fn raw_sign_in(s: &TestServer, form: &(String, String), forwarded: &[&str]) -> u16 {
    use std::io::{Read, Write};
    let addr = s.url.trim_start_matches("http://");
    let body = format!("csrf={}&name=nobody&password=x", form.1);
    let lines: String = forwarded
        .iter()
        .map(|f| format!("X-Forwarded-For: {f}\r\n"))
        .collect();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\n{lines}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        form.0,
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn without_trusted_proxies_the_forwarded_header_is_ignored() {
    let (_fake, s) = server_with("1h", "");
    let form = login_form(&s);
    for i in 0..20 {
        let xff = format!("198.51.100.{i}");
        assert_eq!(sign_in(&s, &form, &format!("n{i}"), "x", Some(&xff)), 401);
    }
    assert_eq!(sign_in(&s, &form, "n99", "x", Some("198.51.100.200")), 429);
}

#[test]
fn unknown_user_names_take_as_long_to_refuse_as_known_ones() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "sam", &["--role", "owner"]);
    let form = login_form(&s);
    let time = |name: &str| {
        let started = std::time::Instant::now();
        assert_eq!(sign_in(&s, &form, name, "wrong password", None), 401);
        started.elapsed()
    };
    let _warm = time("warmup");
    let mut known: Vec<Duration> = (0..3).map(|_| time("sam")).collect();
    let unknown: Vec<Duration> = (0..3).map(|i| time(&format!("ghost{i}"))).collect();
    known.sort();
    let fastest_unknown = unknown.iter().min().unwrap();
    // Both check a full Argon2 hash; without the dummy hash an unknown name answered ~100 times faster.
    assert!(
        *fastest_unknown * 2 >= known[1],
        "unknown {unknown:?} vs known {known:?}"
    );
}

/// An inbound text to another business's number.
fn text_to(s: &TestServer, to: &str, sid: &str, from: &str, body: &str) -> u16 {
    s.post_signed(
        "/hooks/twilio/sms",
        &[
            ("AccountSid", ACCOUNT_SID),
            ("Body", body),
            ("From", from),
            ("MessageSid", sid),
            ("To", to),
        ],
    )
    .status
}

#[test]
fn staff_see_their_own_conversations_however_busy_another_business_is() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&agency(&fake.url));
    add_user(&s, "stan", &["--role", "staff", "--business", "acme"]);
    add_user(&s, "olive", &["--role", "owner"]);
    assert_eq!(
        text_to(
            &s,
            BUSINESS_NUMBER,
            "SMacme",
            "+14805550001",
            "Hi from acme's customer"
        ),
        200
    );
    // Then the other business gets busy: 520 new conversations.
    for i in 0..520 {
        let from = format!("+1520555{i:04}");
        assert_eq!(
            text_to(&s, "+16025550300", &format!("SMbolt{i}"), &from, "hello"),
            200
        );
    }
    let mut stan = Browser::new(&s);
    assert_eq!(stan.login("stan", PASSWORD).status, 303);
    let inbox = stan.get("/");
    assert!(
        inbox.body.contains("Hi from acme&#x27;s customer")
            || inbox.body.contains("Hi from acme's customer"),
        "{}",
        inbox.body
    );
    assert!(!inbox.body.contains("Older conversations"));
    let contacts = stan.get("/contacts");
    assert!(
        contacts.body.contains("(480) 555-0001"),
        "{}",
        contacts.body
    );
    let token = create_token(&s, "stan");
    let (_, conv) = api(&s, "/api/v1/conversations", Some(&token));
    assert_eq!(conv["conversations"].as_array().unwrap().len(), 1, "{conv}");
    assert!(conv["next"].is_null());
    let (_, list) = api(&s, "/api/v1/contacts", Some(&token));
    assert_eq!(list["contacts"].as_array().unwrap().len(), 1, "{list}");

    // The owner pages through everything: nothing is silently cut off.
    let mut olive = Browser::new(&s);
    assert_eq!(olive.login("olive", PASSWORD).status, 303);
    let (mut seen, mut path, mut pages) = (std::collections::HashSet::new(), "/".to_string(), 0);
    loop {
        let page = olive.get(&path);
        pages += 1;
        for id in page.body.split("href=\"/conversations/").skip(1) {
            seen.insert(id.split('"').next().unwrap().to_string());
        }
        let Some(at) = page.body.find("\">Older conversations") else {
            break;
        };
        let href = page.body[..at].rsplit("href=\"").next().unwrap();
        path = href.replace("&amp;", "&");
    }
    assert_eq!((seen.len(), pages), (521, 6));
    let owner_token = create_token(&s, "olive");
    let (mut total, mut next) = (0, String::new());
    loop {
        let (status, body) = api(
            &s,
            &format!("/api/v1/contacts?before={next}"),
            Some(&owner_token),
        );
        assert_eq!(status, 200, "{body}");
        total += body["contacts"].as_array().unwrap().len();
        match body["next"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!(total, 521);
    assert_eq!(
        api(&s, "/api/v1/contacts?before=nonsense", Some(&owner_token)).0,
        400
    );
}

/// Runs `textback token ...` on the server's config.
fn token_cli(s: &TestServer, args: &[&str]) -> (i32, String, String) {
    let cfg = s.config.to_str().unwrap().to_string();
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", &cfg]);
    cli(s.dir.path(), &all)
}

fn token_id(created: &str) -> String {
    created
        .split("token id ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn api_tokens_are_listed_revoked_expire_and_die_with_the_password() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "olive", &["--role", "owner"]);
    let (code, created, err) = token_cli(
        &s,
        &["create", "zapier", "--user", "olive", "--expires", "90d"],
    );
    assert_eq!(code, 0, "{err}");
    let token = created.lines().next().unwrap().trim().to_string();
    let id = token_id(&created);
    let (_, list, _) = token_cli(&s, &["list"]);
    assert!(
        list.contains("zapier") && list.contains("olive") && list.contains("never"),
        "{list}"
    );
    assert!(!list.contains(&token), "the list shows the secret");
    assert_eq!(api(&s, "/api/v1/contacts", Some(&token)).0, 200);
    let (_, list, _) = token_cli(&s, &["list"]);
    let row = list.lines().find(|l| l.contains("zapier")).unwrap();
    assert_eq!(
        row.matches("UTC").count(),
        3,
        "created, last used and expiry: {row}"
    );
    // Revoked: refused at once.
    let (code, out, _) = token_cli(&s, &["revoke", &id]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(api(&s, "/api/v1/contacts", Some(&token)).0, 401);
    assert_ne!(token_cli(&s, &["revoke", &id]).0, 0);
    // Expired.
    let (_, created, _) = token_cli(
        &s,
        &["create", "short", "--user", "olive", "--expires", "1ms"],
    );
    let short = created.lines().next().unwrap().trim().to_string();
    assert_eq!(api(&s, "/api/v1/contacts", Some(&short)).0, 401);
    assert!(token_cli(&s, &["list"]).1.contains("(expired)"));
    // A new password revokes the user's tokens; so does removing the user.
    let (_, created, _) = token_cli(&s, &["create", "crm", "--user", "olive"]);
    let crm = created.lines().next().unwrap().trim().to_string();
    assert_eq!(api(&s, "/api/v1/contacts", Some(&crm)).0, 200);
    let passwd = std::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args([
            "user",
            "passwd",
            "olive",
            "--config",
            s.config.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut child = passwd;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"another long password\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(api(&s, "/api/v1/contacts", Some(&crm)).0, 401);
    add_user(&s, "temp", &["--role", "owner"]);
    let (_, created, _) = token_cli(&s, &["create", "t", "--user", "temp"]);
    let temp = created.lines().next().unwrap().trim().to_string();
    assert_eq!(api(&s, "/api/v1/contacts", Some(&temp)).0, 200);
    let cfg = s.config.to_str().unwrap().to_string();
    assert_eq!(
        cli(s.dir.path(), &["user", "remove", "temp", "--config", &cfg]).0,
        0
    );
    assert_eq!(api(&s, "/api/v1/contacts", Some(&temp)).0, 401);
}

/// Opens `/events` with a browser's cookies; the reader, past the response headers.
fn open_events(s: &TestServer, b: &Browser) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::{BufRead, Write};
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        b.cookie_header()
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    reader
}

/// Reads the stream until it ends (the last chunk, or the connection closing); what it carried.
fn read_until_closed(reader: &mut std::io::BufReader<std::net::TcpStream>) -> String {
    use std::io::BufRead;
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return seen,
            Ok(_) if line == "0\r\n" => return seen,
            Ok(_) => seen.push_str(&line),
            Err(e) => panic!("the stream stayed open: {e}; it carried {seen:?}"),
        }
    }
}

#[test]
fn an_open_event_stream_ends_with_its_session() {
    let (_fake, s) = server_with("1h", "");
    add_user(&s, "sam", &["--role", "owner"]);
    add_user(&s, "temp", &["--role", "owner"]);
    // Logged out.
    let mut b = Browser::new(&s);
    b.login("sam", PASSWORD);
    let mut stream = open_events(&s, &b);
    let csrf = Browser::csrf(&b.get("/"));
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).status, 303);
    s.text_in("SM-live-1", CALLER, "still there?");
    let carried = read_until_closed(&mut stream);
    assert!(!carried.contains("event: update"), "{carried}");
    // The user removed.
    let mut t = Browser::new(&s);
    t.login("temp", PASSWORD);
    let mut stream = open_events(&s, &t);
    let cfg = s.config.to_str().unwrap().to_string();
    assert_eq!(
        cli(s.dir.path(), &["user", "remove", "temp", "--config", &cfg]).0,
        0
    );
    s.text_in("SM-live-2", CALLER, "hello?");
    let carried = read_until_closed(&mut stream);
    assert!(!carried.contains("event: update"), "{carried}");
}

#[test]
fn a_provider_that_accepts_late_gets_exactly_one_text() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "0s", "").replace(
        "settle_time = \"1s\"",
        "settle_time = \"4s\"\nsend_timeout = \"1s\"",
    );
    let s = TestServer::start(&config);
    // The provider takes 2.5 s to accept: our request times out at 1 s, the text exists at 2.5 s.
    fake.accept_after(Some(Duration::from_millis(2500)));
    s.missed_call("CA-late", CALLER);
    wait_for("the unclear send to be parked for checking", 10, || {
        s.text("SELECT status FROM messages WHERE direction = 'out'")
            .filter(|st| st == "checking")
    });
    let sid = wait_for("the text to be recorded as sent", 20, || {
        s.text("SELECT provider_sid FROM messages WHERE direction = 'out' AND provider_sid IS NOT NULL")
    });
    assert_eq!(fake.sends().len(), 1, "the text was sent again");
    assert_eq!(fake.created(), 1);
    assert!(sid.starts_with("SM"));
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'text_back' AND state = 'done'"),
        1
    );
}

#[test]
fn an_unclear_send_the_provider_never_got_is_sent_once_after_checking() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "0s", "").replace(
        "settle_time = \"1s\"",
        "settle_time = \"1s\"\nsend_timeout = \"1s\"",
    );
    let s = TestServer::start(&config);
    // The request is lost on the way: no answer, no message.
    fake.lose(true);
    s.missed_call("CA-lost", CALLER);
    wait_for("the unclear send to be parked for checking", 10, || {
        s.text("SELECT status FROM messages WHERE direction = 'out'")
            .filter(|st| st == "checking")
    });
    fake.lose(false);
    wait_for("the text to be sent after checking", 20, || {
        (fake.created() == 1).then_some(())
    });
    wait_for("the text to be recorded", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE direction = 'out' AND provider_sid IS NOT NULL")
    });
    assert_eq!(fake.created(), 1);
    // The check came before the resend.
    let received = fake.received();
    let list = received.iter().position(|r| r.method == "GET").unwrap();
    let resend = received.iter().rposition(|r| r.method == "POST").unwrap();
    assert!(list < resend, "{received:?}");
}

/// Renders `{{ name }}|{{ booking_link }}` with the running configuration (what the next text would say).
fn running_fields(b: &mut Browser, csrf: &str) -> String {
    let p = b.post(
        "/settings/preview",
        &[
            ("csrf", csrf),
            ("business", "0"),
            ("script", "{{ name }}|{{ booking_link }}"),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    json["text"]
        .as_str()
        .unwrap()
        .trim_end_matches(" Reply STOP to opt out.")
        .to_string()
}

#[test]
fn concurrent_settings_saves_never_lose_an_acknowledged_edit() {
    let (_fake, s) = server_with("1h", "booking_link = \"https://book.example.com/0\"");
    add_user(&s, "olive", &["--role", "owner"]);
    add_user(&s, "omar", &["--role", "owner"]);
    let (mut a, mut b) = (Browser::new(&s), Browser::new(&s));
    a.login("olive", PASSWORD);
    b.login("omar", PASSWORD);
    let (mut name, mut link) = (
        "Acme HVAC".to_string(),
        "https://book.example.com/0".to_string(),
    );
    for round in 1..=20 {
        let (pa, pb) = (a.get("/settings"), b.get("/settings"));
        let (ca, va) = (Browser::csrf(&pa), form_value(&pa.body, "version"));
        let (cb, vb) = (Browser::csrf(&pb), form_value(&pb.body, "version"));
        let (new_name, new_link) = (
            format!("Acme {round}"),
            format!("https://book.example.com/{round}"),
        );
        let (sa, sb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| {
                a.post(
                    "/settings/0",
                    &[("csrf", &ca), ("version", &va), ("name", &new_name)],
                )
            });
            let tb = scope.spawn(|| {
                b.post(
                    "/settings/0",
                    &[("csrf", &cb), ("version", &vb), ("booking_link", &new_link)],
                )
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        for p in [&sa, &sb] {
            assert!(
                p.status == 303 || p.status == 409,
                "round {round}: {} {}",
                p.status,
                p.body
            );
        }
        assert!(
            sa.status == 303 || sb.status == 303,
            "round {round}: nobody's save went through"
        );
        if sa.status == 303 {
            name.clone_from(&new_name);
        } else {
            assert!(sa.body.contains("reload the page"), "{}", sa.body);
        }
        if sb.status == 303 {
            link.clone_from(&new_link);
        }
        // Every acknowledged edit is in the file and in force.
        let file = std::fs::read_to_string(&s.config).unwrap();
        assert!(
            file.contains(&format!("name = \"{name}\"")),
            "round {round}: {file}"
        );
        assert!(
            file.contains(&format!("booking_link = \"{link}\"")),
            "round {round}: {file}"
        );
        assert_eq!(
            running_fields(&mut a, &ca),
            format!("{name}|{link}"),
            "round {round}"
        );
    }
    let strays: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

#[test]
fn sighup_reloads_the_file_rebuilding_providers_and_keeps_it_when_invalid() {
    let (first, second) = (FakeTwilio::start(), FakeTwilio::start());
    let s = TestServer::start(&twilio_config(&first.url, "0s", ""));
    let hup = |s: &TestServer| {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &s.pid().to_string()])
            .status()
            .unwrap()
            .success());
    };
    // The account moves: the next text goes through the new API base, without a restart.
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, text.replace(&first.url, &second.url)).unwrap();
    hup(&s);
    wait_for("the reload", 10, || {
        s.log().contains("configuration reloaded").then_some(())
    });
    assert!(s.log().contains("providers rebuilt: main"), "{}", s.log());
    s.missed_call("CA-hup-1", CALLER);
    wait_for("the text through the new account", 10, || {
        (second.sends().len() == 1).then_some(())
    });
    assert!(first.sends().is_empty());
    // A broken file is refused, problem by problem, and the running configuration stays.
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        good.replace("text_delay = \"0s\"", "text_delay = \"soon\""),
    )
    .unwrap();
    hup(&s);
    wait_for("the refusal", 10, || {
        s.log()
            .contains("the running configuration stays")
            .then_some(())
    });
    assert!(
        s.log().contains("invalid duration \\\"soon\\\"") || s.log().contains("soon"),
        "{}",
        s.log()
    );
    s.missed_call("CA-hup-2", "+14805550112");
    wait_for("the second text", 10, || {
        (second.sends().len() == 2).then_some(())
    });
    // A change that needs a restart says so.
    std::fs::write(
        &s.config,
        good.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
    )
    .unwrap();
    hup(&s);
    wait_for("the second reload", 10, || {
        s.log()
            .contains("restart textback to apply: server.listen")
            .then_some(())
    });
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn money_recordings_and_headers_refuse_what_they_must() {
    let (_fake, s) = server_with(
        "1h",
        "alert_webhook = { url = \"https://hooks.slack.com/services/T000/B000/SECRETXYZ\", format = \"slack\" }",
    );
    add_user(&s, "olive", &["--role", "owner"]);
    assert_eq!(s.text_in("SM-money", CALLER, "how much?").status, 200);
    let id = s.count("SELECT id FROM contacts");
    let mut b = Browser::new(&s);
    b.login("olive", PASSWORD);
    let page = b.get(&format!("/conversations/{id}"));
    let csrf = Browser::csrf(&page);
    // Money: no overflow, no sign, a cap, a clear error, nothing stored.
    for bad in ["92233720368547759", "-0.5", "1e9", "12.345"] {
        let p = b.post(
            &format!("/conversations/{id}/booked"),
            &[("csrf", &csrf), ("value", bad)],
        );
        assert_eq!(p.status, 400, "{bad}: {}", p.body);
        assert!(p.body.contains("Not an amount"), "{}", p.body);
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM contacts WHERE state = 'booked'"),
        0
    );
    let p = b.post(
        &format!("/conversations/{id}/booked"),
        &[("csrf", &csrf), ("value", "$1,250.50")],
    );
    assert_eq!(p.status, 303);
    assert_eq!(s.count("SELECT booked_value_cents FROM contacts"), 125_050);
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, _, err) = cli(
        s.dir.path(),
        &["mark-booked", CALLER, "--value=-0.5", "--config", &cfg],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no sign"), "{err}");
    // A voicemail link is https or nothing.
    s.missed_call("CA-vm", CALLER);
    let rec = recording("CA-vm", CALLER, "javascript:alert(document.cookie)");
    let r = s.post_signed("/hooks/twilio/recording", &borrow(&rec));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls WHERE recording_url IS NOT NULL"),
        0
    );
    // Pages and exports with personal data are not cached; https is enforced; static files stay cacheable.
    for path in [
        "/",
        &format!("/conversations/{id}"),
        "/contacts",
        "/contacts.csv",
        "/settings",
    ] {
        let p = b.get(path);
        assert_eq!(p.status, 200, "{path}");
        let header = |name: &str| {
            p.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(header("Cache-Control"), "no-store", "{path}");
        assert!(
            header("Strict-Transport-Security").starts_with("max-age="),
            "{path}"
        );
    }
    let css = page
        .body
        .split("href=\"/static/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let asset = b.get(&format!("/static/{css}"));
    assert!(asset
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Cache-Control") && v.contains("immutable")));
    // The alert webhook's URL is its only secret: the settings page shows where it goes, not the URL.
    let settings = b.get("/settings");
    assert!(
        settings.body.contains("hooks.slack.com"),
        "{}",
        settings.body
    );
    assert!(!settings.body.contains("SECRETXYZ"));
}

#[test]
fn each_installation_signs_simulated_webhooks_with_its_own_key() {
    let (a, b) = (
        TestServer::start(&simulator_config()),
        TestServer::start(&simulator_config()),
    );
    let key = |s: &TestServer| {
        s.text("SELECT value FROM meta WHERE key = 'simulator_token'")
            .unwrap()
    };
    assert_eq!(key(&a).len(), 43);
    assert_ne!(key(&a), key(&b));
    // The old well-known key signs nothing any more.
    let params = voice("CA-sim", CALLER);
    let forged = a.post_signed_with(
        "/hooks/twilio/voice",
        &borrow(&params),
        "simulator",
        &a.url,
        &[],
    );
    assert_eq!(forged.status, 403);
    // `textback simulate` finds the installation's key.
    let cfg = a.config.to_str().unwrap().to_string();
    let (code, out, err) = cli(
        a.dir.path(),
        &[
            "simulate",
            "missed-call",
            "--from",
            CALLER,
            "--url",
            &a.url,
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_screened_call_nobody_took_plays_the_greeting_and_records_a_voicemail() {
    let (_fake, s) = server_with("1h", "call_screening = true\nvoicemail = true");
    assert!(s
        .ring("CA-scr", CALLER)
        .body
        .contains("/hooks/twilio/screen?"));
    // A voicemail box answered the forwarded leg and never pressed 1.
    let answer = s.dial_ended("CA-scr", CALLER, "completed", Some(40));
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("<Say>Sorry we missed your call."),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("<Record maxLength=\"120\" playBeep=\"true\" action=\"https://textback.example.com/hooks/twilio/recording\""),
        "{}",
        answer.body
    );
    assert_eq!(
        s.text("SELECT miss_reason FROM calls").as_deref(),
        Some("not-accepted")
    );
    // The same decision on a redelivery.
    assert_eq!(
        s.dial_ended("CA-scr", CALLER, "completed", Some(40)).body,
        answer.body
    );
    // Someone pressed 1 and talked: the caller is not sent to voicemail.
    s.ring("CA-took", "+14805550122");
    let pressed = [
        ("CallSid", "CA-took-leg"),
        ("Digits", "1"),
        ("From", "+14805550122"),
        ("To", STAFF_NUMBER),
    ];
    s.post_signed(
        "/hooks/twilio/screen-accept?business=acme&parent=CA-took",
        &pressed,
    );
    let took = s.dial_ended("CA-took", "+14805550122", "completed", Some(40));
    assert!(
        took.body.contains("<Hangup/>") && !took.body.contains("<Record"),
        "{}",
        took.body
    );
}

#[test]
fn skipping_instant_hang_ups_measures_the_callers_time_on_the_line() {
    let (_fake, s) = server_with("1h", "skip_instant_hangups = true");
    // A first-time caller rings for a while; nobody answers. Twilio reports the forwarded leg's talk time,
    // DialCallDuration=0, which says nothing about how long the caller waited.
    s.ring("CA-wait", CALLER);
    std::thread::sleep(Duration::from_millis(2100));
    s.dial_ended("CA-wait", CALLER, "no-answer", Some(0));
    assert_eq!(
        s.text("SELECT textback FROM calls WHERE call_sid = 'CA-wait'")
            .as_deref(),
        Some("scheduled")
    );
    // A robocall that hangs up at once is still skipped (the status callback's CallDuration is its own).
    s.ring("CA-robo", "+14805550123");
    s.call_status("CA-robo", "+14805550123", "completed", 1);
    assert_eq!(
        s.text("SELECT textback_reason FROM calls WHERE call_sid = 'CA-robo'")
            .as_deref(),
        Some("instant-hang-up")
    );
}

/// A quiet-hours span, in Phoenix time (no daylight saving), that holds the current hour.
fn quiet_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hour = ((secs / 3600) + 24 - 7) % 24;
    format!("{:02}:00-{:02}:00", (hour + 23) % 24, (hour + 2) % 24)
}

#[test]
fn urgent_alerts_ignore_quiet_hours_for_everyone_on_the_list() {
    let notify = format!(
        "notify = [{{ name = \"Pat\", sms = \"+16025550188\", quiet_hours = \"{}\" }}]",
        quiet_now()
    );
    let (fake, s) = server_with("1h", &notify);
    assert_eq!(
        s.text_in("SM-911", CALLER, "EMERGENCY my basement is flooding")
            .status,
        200
    );
    let alert = wait_for("the urgent alert", 10, || {
        fake.sends_to("+16025550188").into_iter().next()
    });
    assert!(
        alert.get("Body").unwrap().starts_with("URGENT Acme HVAC"),
        "{alert:?}"
    );
    // An ordinary reply still waits for Pat's quiet hours to end.
    assert_eq!(
        s.text_in("SM-later", "+14805550124", "no rush, next week is fine")
            .status,
        200
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends_to("+16025550188").len(), 1);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs j JOIN messages m ON m.id = j.message_id
                 WHERE m.to_number = '+16025550188' AND j.state = 'pending' AND j.run_at > j.created_at"),
        1
    );
}

#[test]
fn follow_ups_called_off_are_shown_with_their_reason() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", "").replace(
        "follow_ups = []",
        "follow_ups = [{ after = \"2h\", script = \"Still need a hand?\" }]",
    ));
    s.missed_call("CA-fu", CALLER);
    wait_for("the text-back", 10, || {
        (fake.sends().len() == 1).then_some(())
    });
    wait_for("the follow-up to be scheduled", 10, || {
        (s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'follow_up' AND state = 'pending'") == 1)
            .then_some(())
    });
    assert_eq!(
        s.text_in("SM-fu", CALLER, "yes please, tomorrow morning")
            .status,
        200
    );
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, err) = cli(s.dir.path(), &["status", "--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("followup") && l.contains(CALLER))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("(replied)"), "{line}");
}

#[test]
fn check_config_names_the_key_of_a_bad_value_and_init_documents_line_type_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("textback.toml");
    std::fs::write(
        &file,
        "[providers.s]\nkind = \"simulator\"\n[[business]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+16025550100\"]\nquiet_hours_policy = \"later\"\n",
    )
    .unwrap();
    let (code, _, err) = cli(
        dir.path(),
        &["check-config", "--config", file.to_str().unwrap()],
    );
    assert_eq!(code, 78);
    assert!(
        err.contains("textback.toml:7: business[0].quiet_hours_policy: unknown variant `later`"),
        "{err}"
    );
    let written = dir.path().join("new.toml");
    let (code, _, err) = cli(dir.path(), &["init", written.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&written)
        .unwrap()
        .contains("line_type_lookup"));
}
