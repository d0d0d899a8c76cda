//! The command line: init, check-config, status, simulate, and serve on the built-in defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn init_writes_the_example_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = cli(dir.path(), &["init"]);
    assert_eq!(code, 0, "{out}");
    let written = std::fs::read_to_string(dir.path().join("textback.toml")).unwrap();
    assert_eq!(written, textback::config::EXAMPLE);
    let (code, _, err) = cli(dir.path(), &["init"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, out, _) = cli(dir.path(), &["check-config"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("textback.toml: OK") && out.contains("business demo (Demo Plumbing)"),
        "{out}"
    );
}

#[test]
fn check_config_names_file_line_and_key_for_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = "localhost"

[providers.main]
kind = "twilio"
account_sid = "AC123"
auth_token = "x"

[[business]]
id = "acme"
name = "Acme HVAC"
numbers = ["+16025550100", "(602) 555-0101"]
timezone = "America/Phonix"
"#,
    )
    .unwrap();
    let (code, _, err) = cli(dir.path(), &["check-config", "--config", "bad.toml"]);
    assert_eq!(code, 78, "{err}");
    for want in [
        "bad.toml:2: server.listen:",
        "bad.toml:6: providers.main.account_sid:",
        "bad.toml:12: business[0].numbers[1]: \"(602) 555-0101\" is not in E.164 form",
        "bad.toml:13: business[0].timezone:",
        "server.public_url: is required with the twilio provider",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }

    std::fs::write(&path, "[[business]]\nid = \"a\"\nnmae = \"x\"\n").unwrap();
    let (code, _, err) = cli(dir.path(), &["check-config", "--config", "bad.toml"]);
    assert_eq!(code, 78);
    assert!(
        err.contains("bad.toml:3: business[0].nmae: unknown key `nmae`: did you mean `name`?"),
        "{err}"
    );

    let (code, _, err) = cli(dir.path(), &["check-config", "--config", "missing.toml"]);
    assert_eq!(code, 78);
    assert!(
        err.contains("missing.toml: cannot read the config file"),
        "{err}"
    );

    // serve refuses a broken config the same way, with the exit code systemd is told not to restart on.
    std::fs::write(&path, "[server]\nlisten = \"nope\"\n").unwrap();
    let (code, _, err) = cli(dir.path(), &["serve", "--config", "bad.toml"]);
    assert_eq!(code, 78);
    assert!(err.contains("server.listen"), "{err}");
}

#[test]
fn simulate_drives_a_running_server_and_status_shows_the_result() {
    let config = r#"
[server]
listen = "127.0.0.1:0"
[providers.sim]
kind = "simulator"
[[business]]
id = "demo"
name = "Demo Plumbing"
numbers = ["+16025550100"]
forward_to = ["+16025550199"]
text_delay = "0s"
"#;
    let s = TestServer::start(config);
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
    assert!(out.contains("<Dial"), "{out}");
    // The server's stderr is a file here, as under journald: plain text, no colour codes.
    assert!(s.log().contains("INFO"), "{}", s.log());
    assert!(
        !s.log().contains('\u{1b}'),
        "ANSI codes in a log that is not a terminal"
    );
    let (code, _, err) = cli(
        s.dir.path(),
        &[
            "simulate",
            "missed-call",
            "--from",
            "anonymous",
            "--status",
            "busy",
            "--url",
            &s.url,
            "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0, "{err}");
    wait_for("the simulated text", 10, || {
        (s.count("SELECT COUNT(*) FROM messages WHERE provider_sid IS NOT NULL") == 1).then_some(())
    });
    // The log says which script the text-back used, and why.
    assert!(
        // (The demo business keeps office hours, so which script depends on when the test runs.)
        s.log().lines().any(|l| l.contains("text-back composed")
            && l.contains("message_id=1")
            && (l.contains("script=script: the business was open when they called")
                || l.contains(
                    "script=after_hours_script: the business was closed when they called"
                ))),
        "{}",
        s.log()
    );
    let (code, out, _) = cli(s.dir.path(), &["status", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(out.contains("Sent texts: 1"), "{out}");
    assert!(out.contains(&format!("+16025550100 -> {CALLER}")), "{out}");
    assert!(
        out.contains("call from anonymous  suppressed (no-caller-id)"),
        "{out}"
    );
    assert!(out.contains("Calls: missed 2"), "{out}");

    let (code, _, err) = cli(
        s.dir.path(),
        &[
            "simulate", "sms", "--from", CALLER, "--body", "STOP", "--url", &s.url, "--config",
            &cfg,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cli(s.dir.path(), &["status", "--config", &cfg]);
    assert!(out.contains("Opted-out contacts: 1"), "{out}");

    // A wrong signing token is refused by the server, and simulate says so.
    let bad = s.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        config.replace(
            "kind = \"simulator\"",
            "kind = \"simulator\"\nauth_token = \"wrong\"",
        ),
    )
    .unwrap();
    let (code, _, err) = cli(
        s.dir.path(),
        &[
            "simulate",
            "missed-call",
            "--from",
            CALLER,
            "--url",
            &s.url,
            "--config",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403"), "{err}");
}

#[test]
fn status_reads_pending_and_failed_texts() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "1h", ""));
    s.missed_call("CA1", "+14805550123");
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, _) = cli(s.dir.path(), &["status", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(out.contains("Pending texts: 1"), "{out}");
    assert!(out.contains("text_back    to +14805550123"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let (code, out, _) = cli(empty.path(), &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("No database"), "{out}");
}

#[test]
fn serve_with_no_config_file_runs_the_demo_on_the_defaults() {
    // The built-in defaults listen on 127.0.0.1:8080, where a user's own demo may be running: the test
    // takes any free port instead, and everything else from the defaults.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("TEXTBACK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner: Vec<String> = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let last = line.starts_with("Try it:");
        banner.push(line);
        if last || banner.len() > 20 {
            break;
        }
    }
    let url = banner[0]
        .split("listening on ")
        .nth(1)
        .map(str::to_string)
        .unwrap_or_default();
    let health = ureq::get(&format!("{url}/healthz"))
        .call()
        .map(|r| r.status());
    let (code, out, _) = cli(
        dir.path(),
        &["simulate", "missed-call", "--from", CALLER, "--url", &url],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("http://127.0.0.1:"), "{banner:?}");
    assert!(!url.ends_with(":8080"), "{banner:?}");
    assert!(banner[1].contains("built-in defaults"), "{banner:?}");
    assert!(
        banner
            .iter()
            .any(|l| l.starts_with("Try it:") && l.ends_with(&format!("--url {url}"))),
        "{banner:?}"
    );
    assert!(dir.path().join("textback.db").exists());
    assert_eq!(health.unwrap(), 200);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = cli(dir.path(), &["serve", "--listen", "nowhere"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--listen \"nowhere\" is not an address"),
        "{err}"
    );
}

#[test]
fn init_writes_where_config_points() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("etc").join("textback.toml");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let (code, out, err) = cli(dir.path(), &["init", "--config", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        textback::config::EXAMPLE
    );
    assert!(!dir.path().join("textback.toml").exists());
}

/// `textback serve` on the built-in defaults in `dir`, on a free port; its base URL.
fn serve_defaults(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("TEXTBACK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // Keep reading the banner on a thread so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let url = first.split("listening on ").nth(1).unwrap().to_string();
    (child, url)
}

#[test]
fn the_first_settings_save_on_the_defaults_writes_a_config_file() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = serve_defaults(dir.path());
    let mut add = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["user", "add", "sam", "--role", "owner"])
        .current_dir(dir.path())
        .env_remove("TEXTBACK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
    let mut b = Browser::at(&url);
    assert_eq!(b.login("sam", PASSWORD).status, 303);
    let page = b.get("/settings");
    assert!(
        page.body
            .contains("running on its built-in defaults. Saving writes them"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    let saved = b.post(
        "/settings/0",
        &[
            ("csrf", &csrf),
            ("version", ""),
            ("name", "Demo Plumbing and Drains"),
        ],
    );
    let file = dir.path().join("textback.toml");
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved
            .body
            .contains(&format!("The settings are now in {}", file.display())),
        "{}",
        saved.body
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("name = \"Demo Plumbing and Drains\""),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // The file is the defaults plus the change: valid, and found by the next start.
    let (code, out, err) = cli(dir.path(), &["check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("textback.toml: OK"), "{out}");
}
