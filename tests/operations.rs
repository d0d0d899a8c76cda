//! Running it for years: backups while the server writes, restores that refuse what they must, and the
//! version and schema the binary and `/healthz` report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_backup_taken_under_writes_restores_to_the_same_data_and_restore_refuses_a_running_server() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    for i in 0..10 {
        s.missed_call(&format!("CA{i}"), &format!("+1480555{:04}", 2000 + i));
    }
    let dest = s.dir.path().join("backups");
    std::fs::create_dir_all(&dest).unwrap();
    // The backup runs while webhooks keep writing.
    let backup_run = {
        let (dir, dest) = (s.dir.path().to_path_buf(), dest.clone());
        std::thread::spawn(move || cli(&dir, &["backup", dest.to_str().unwrap()]))
    };
    for i in 10..30 {
        s.missed_call(&format!("CA{i}"), &format!("+1480555{:04}", 2000 + i));
    }
    let (code, out, err) = backup_run.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("integrity ok"), "{out}");
    let files: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let backup = files[0].clone();
    assert!(backup
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("textback-"));
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy is private");
    // It never overwrites.
    let (code, _, err) = cli(s.dir.path(), &["backup", backup.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("exists already"), "{err}");

    // The copy holds a consistent state: every call acknowledged before it began, each with its contact.
    let copy = rusqlite::Connection::open(&backup).unwrap();
    let copied: i64 = copy
        .query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
        .unwrap();
    assert!((10..=30).contains(&copied), "{copied}");
    let orphans: i64 = copy
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE contact_id IS NOT NULL AND contact_id NOT IN (SELECT id FROM contacts)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    let state = |c: &rusqlite::Connection| -> String {
        c.query_row(
            "SELECT (SELECT group_concat(call_sid || ':' || state, ',') FROM (SELECT * FROM calls ORDER BY id))
                 || '|' || (SELECT group_concat(phone, ',') FROM (SELECT * FROM contacts ORDER BY id))
                 || '|' || (SELECT group_concat(kind || ':' || state, ',') FROM (SELECT * FROM jobs ORDER BY id))",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let backed_up = state(&copy);
    drop(copy);

    // While the server runs, restore refuses and changes nothing.
    let (code, _, err) = cli(s.dir.path(), &["restore", backup.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("a textback server is running"), "{err}");

    s.stop();
    // More happens after the backup... then the restore brings the backup's state back.
    let db = s.db_path();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("DELETE FROM calls", []).unwrap();
    }
    let (code, out, err) = cli(s.dir.path(), &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("To undo"), "{out}");
    assert!(out.contains(".before-restore-"), "{out}");
    let restored = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(
        state(&restored),
        backed_up,
        "the restored database is the backup"
    );
    drop(restored);
    s.restart();
    assert_eq!(s.count("SELECT COUNT(*) FROM calls"), copied);
}

#[test]
fn restore_refuses_a_file_that_is_not_a_sound_textback_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("textback.toml"),
        twilio_config("http://127.0.0.1:9", "0s", ""),
    )
    .unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, only some words").unwrap();
    let (code, _, err) = cli(dir.path(), &["restore", junk.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not restored"), "{err}");
    let empty = dir.path().join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let (code, _, err) = cli(dir.path(), &["restore", empty.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a textback database"), "{err}");
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (id); PRAGMA user_version = 999;")
        .unwrap();
    let (code, _, err) = cli(dir.path(), &["restore", newer.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("newer than this textback knows"), "{err}");
    assert!(
        !dir.path().join("textback.db").exists(),
        "nothing was put in place"
    );
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["serve", "--config"])
        .arg(&s.config)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another textback server is running"), "{err}");
}

#[test]
fn the_binary_and_healthz_say_their_version_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = cli(dir.path(), &["--version"]);
    assert_eq!(code, 0);
    let want = format!("textback {} (database schema ", env!("CARGO_PKG_VERSION"));
    assert!(out.starts_with(&want), "{out}");
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    let health: serde_json::Value = serde_json::from_str(&s.get("/healthz").body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let schema = health["schema"].as_i64().unwrap();
    assert!(
        out.contains(&format!("schema {schema})")),
        "{out} vs {schema}"
    );
    assert_eq!(s.count("PRAGMA user_version"), schema);
}

/// A scheduler with `[backup]` settings `backup`, on a manual clock.
fn backup_deps(
    dir: &tempfile::TempDir,
    backup: &str,
) -> (
    textback::scheduler::Deps,
    std::sync::Arc<textback::clock::ManualClock>,
) {
    let text = format!(
        "[backup]\n{backup}\n{}",
        twilio_config("http://127.0.0.1:9", "0s", "")
    );
    manual_scheduler(dir, &text, at("2026-11-01T00:00:00Z"))
}

fn status(deps: &textback::scheduler::Deps, now: i64) -> String {
    let s = deps
        .store
        .read(|c| textback::report::read_at(c, 5, now))
        .unwrap();
    textback::report::render(&s, now)
}

#[test]
fn scheduled_backups_run_at_local_time_keep_the_newest_and_report_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (deps, clock) = backup_deps(
        &dir,
        "dir = \"backups\"\nschedule = \"0 3 * * *\"\nkeep = 2\ntimezone = \"America/New_York\"",
    );
    // 03:00 New York is 08:00Z after the clocks went back on 2026-11-01.
    let mut now = at("2026-11-01T00:00:00Z");
    tick(&deps, &clock, now);
    for day in 1..=3 {
        now = at(&format!("2026-11-0{day}T08:00:00Z"));
        tick(&deps, &clock, now - 60_000);
        tick(&deps, &clock, now);
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "the newest two are kept: {files:?}");
    assert!(files[1].starts_with("textback-20261103T0800"), "{files:?}");
    let out = status(&deps, now);
    assert!(
        out.contains("Last backup: 2026-11-03 08:00:00 UTC"),
        "{out}"
    );
    assert!(!out.contains("FAILED"), "{out}");

    // A folder that cannot be written: the failure is recorded, shown, and the next run is still queued.
    std::fs::remove_dir_all(dir.path().join("backups")).unwrap();
    std::fs::write(
        dir.path().join("backups"),
        b"a file where the folder should be",
    )
    .unwrap();
    now = at("2026-11-04T08:00:00Z");
    tick(&deps, &clock, now);
    let out = status(&deps, now);
    assert!(
        out.contains("Backup FAILED at 2026-11-04 08:00:00 UTC"),
        "{out}"
    );
    let config = deps.config.get();
    let check = textback::setup::backup_check(&config, &deps.store, now);
    assert!(check.what.contains("the last one failed"), "{}", check.what);
    let next = deps
        .store
        .read(|c| Ok(textback::store::jobs::pending_of_kind(c, "backup")?[0].run_at))
        .unwrap();
    assert_eq!(next, at("2026-11-05T08:00:00Z"));
}

#[test]
fn json_logs_are_one_object_per_line_without_colour() {
    let fake = FakeTwilio::start();
    let config = twilio_config(&fake.url, "0s", "").replace(
        "[log]\nlevel = \"debug\"",
        "[log]\nlevel = \"info\"\nformat = \"json\"",
    );
    assert!(config.contains("format = \"json\""));
    let s = TestServer::start(&config);
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    let log = wait_for("a logged send", 10, || {
        let log = s.log();
        log.contains("text accepted").then_some(log)
    });
    assert!(!log.contains('\u{1b}'), "no ANSI codes");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    let sent = lines
        .iter()
        .find(|l| l["message"] == "text accepted")
        .expect("the send is logged");
    assert_eq!(sent["level"], "INFO");
    assert!(sent["ts"].as_str().unwrap().ends_with('Z'));
    assert!(sent["fields"]["id"].is_string(), "{sent}");
    assert_eq!(sent["spans"][0]["name"], "send", "{sent}");
    assert!(!log.contains(AUTH_TOKEN), "no secret in the log");
}

#[test]
fn retention_redacts_old_bodies_and_prunes_old_calls_but_keeps_consent_and_export_writes_it_all() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    for (i, caller) in ["+14805550301", "+14805550302", "+14805550303"]
        .iter()
        .enumerate()
    {
        s.missed_call(&format!("CA{i}"), caller);
        wait_for("the text-back", 10, || {
            fake.sends_to(caller).into_iter().next()
        });
    }
    s.text_in("SM1", "+14805550301", "STOP");
    s.text_in("SM2", "+14805550302", "Yes please");
    wait_for("the consent record", 10, || {
        (s.count("SELECT COUNT(*) FROM consent_events") == 1).then_some(())
    });
    s.stop();
    // Two callers' history is 400 days old; the third's is recent.
    let db = s.db_path();
    let day = 24 * 3_600_000_i64;
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let old = "(SELECT id FROM contacts WHERE phone IN ('+14805550301', '+14805550302'))";
        c.execute(
            &format!(
                "UPDATE messages SET created_at = created_at - {} WHERE contact_id IN {old}",
                400 * day
            ),
            [],
        )
        .unwrap();
        c.execute(
            &format!(
                "UPDATE calls SET started_at = started_at - {} WHERE contact_id IN {old}",
                400 * day
            ),
            [],
        )
        .unwrap();
        c.execute(
            &format!("UPDATE delivery_receipts SET at = at - {}", 400 * day),
            [],
        )
        .unwrap();
    }
    let consent_before = s.count("SELECT COUNT(*) FROM consent_events");
    let contacts_before = s.count("SELECT COUNT(*) FROM contacts");
    let old_messages = s.count("SELECT COUNT(*) FROM messages WHERE created_at < strftime('%s','now') * 1000 - 365 * 86400000");
    assert!(old_messages >= 4, "{old_messages}");

    let store = textback::store::Store::open(&db).unwrap();
    let policy = textback::config::RetentionConfig {
        message_bodies: Some(textback::config::Dur(std::time::Duration::from_secs(
            365 * 86_400,
        ))),
        calls: Some(textback::config::Dur(std::time::Duration::from_secs(
            365 * 86_400,
        ))),
    };
    let now = textback::clock::to_millis(std::time::SystemTime::now());
    // A batch of 2 rows per transaction: several batches, all of them applied.
    let done = textback::retention::apply(&store, &policy, now, 2).unwrap();
    assert_eq!(done.redacted as i64, old_messages);
    assert!(done.pruned >= 2, "{done:?}");
    drop(store);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE body = '{}'",
            textback::store::retention::REDACTED
        )),
        old_messages
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM calls"),
        1,
        "the recent call stays"
    );
    let recent =
        "FROM messages m JOIN contacts k ON k.id = m.contact_id WHERE k.phone = '+14805550303'";
    assert!(s.count(&format!("SELECT COUNT(*) {recent}")) >= 1);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) {recent} AND m.body = '{}'",
            textback::store::retention::REDACTED
        )),
        0,
        "recent bodies stay"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM consent_events"),
        consent_before
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM contacts"), contacts_before);

    let (code, out, err) = cli(s.dir.path(), &["export", "--business", "acme"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds = |k: &str| lines.iter().filter(|l| l["kind"] == k).count();
    assert_eq!(kinds("contact") as i64, contacts_before);
    assert_eq!(kinds("consent") as i64, consent_before);
    assert_eq!(kinds("call"), 1);
    assert!(kinds("message") >= 5);
    let stop = lines.iter().find(|l| l["kind"] == "consent").unwrap();
    assert_eq!(stop["phone"], "+14805550301");
    assert_eq!(stop["change"], "opt_out");
    assert!(err.contains("records written"), "{err}");
    let (code, _, err) = cli(s.dir.path(), &["export", "--business", "nosuch"]);
    assert_ne!(code, 0);
    assert!(err.contains("no business \"nosuch\""), "{err}");
}

/// The migrations as released, read from the source tree: the fixtures are built with the old ones.
fn migrations() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

const DAY: i64 = 86_400_000;

/// Rows a real installation has, written against schema `version` (only what that schema has).
fn fixture_rows(c: &rusqlite::Connection, version: usize) {
    let t = 1_780_000_000_000_i64;
    if version == 1 {
        for i in 0..50_i64 {
            let phone = format!("+1480555{:04}", 4000 + i);
            let at = t + i * DAY / 10;
            c.execute(
                "INSERT INTO contacts (business_id, phone, opted_out_at, created_at, updated_at) VALUES ('acme', ?1, ?2, ?3, ?3)",
                rusqlite::params![phone, (i % 10 == 0).then_some(at), at],
            )
            .unwrap();
            let contact = c.last_insert_rowid();
            c.execute(
                "INSERT INTO calls (business_id, provider, call_sid, contact_id, from_raw, to_number, state, miss_reason, textback, started_at, updated_at)
                 VALUES ('acme', 'main', ?1, ?2, ?3, '+16025550100', 'missed', 'no-answer', 'sent', ?4, ?4)",
                rusqlite::params![format!("CA{i}"), contact, phone, at],
            )
            .unwrap();
            let call = c.last_insert_rowid();
            c.execute(
                "INSERT INTO messages (business_id, contact_id, call_id, direction, purpose, provider, provider_sid, from_number, to_number, body, segments, status, created_at, sent_at, updated_at)
                 VALUES ('acme', ?1, ?2, 'out', 'textback', 'main', ?3, '+16025550100', ?4, 'Sorry we missed your call - what do you need?', 1, 'delivered', ?5, ?5, ?5)",
                rusqlite::params![contact, call, format!("SM{i}"), phone, at + 20_000],
            )
            .unwrap();
            c.execute(
                "INSERT INTO delivery_receipts (provider, message_sid, status, at) VALUES ('main', ?1, 'delivered', ?2)",
                rusqlite::params![format!("SM{i}"), at + 25_000],
            )
            .unwrap();
            if i % 10 == 0 {
                c.execute(
                    "INSERT INTO consent_events (contact_id, change, source, at) VALUES (?1, 'opt_out', 'keyword:STOP', ?2)",
                    rusqlite::params![contact, at],
                )
                .unwrap();
            }
        }
        c.execute(
            "INSERT INTO jobs (kind, payload, dedupe_key, contact_id, run_at, max_attempts, created_at, updated_at)
             VALUES ('follow_up', '{\"kind\":\"follow_up\",\"contact_id\":2,\"step\":0,\"due_at\":1780000000000}', 'followup:2:0', 2, ?1, 8, ?1, ?1)",
            [t],
        )
        .unwrap();
    }
    if version == 3 {
        c.execute(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES ('sam', 'x', 'owner', ?1, ?1)",
            [t],
        )
        .unwrap();
        c.execute(
            "INSERT INTO notes (contact_id, author, body, created_at) VALUES (2, 'sam', 'Prefers mornings', ?1)",
            [t],
        )
        .unwrap();
    }
}

/// A database at schema `version`, with rows added by each schema up to it.
fn fixture(path: &std::path::Path, version: usize) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    for (i, sql) in migrations().iter().take(version).enumerate() {
        let tx = c.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap())
            .unwrap();
        tx.commit().unwrap();
        fixture_rows(&c, i + 1);
    }
}

fn counts(db: &std::path::Path) -> [i64; 5] {
    let c = rusqlite::Connection::open(db).unwrap();
    let n = |sql: &str| c.query_row(sql, [], |r| r.get(0)).unwrap();
    [
        n("SELECT COUNT(*) FROM contacts"),
        n("SELECT COUNT(*) FROM calls"),
        n("SELECT COUNT(*) FROM messages"),
        n("SELECT COUNT(*) FROM consent_events"),
        n("SELECT COUNT(*) FROM delivery_receipts"),
    ]
}

#[test]
fn every_earlier_schema_upgrades_with_its_data_and_the_server_works_on_it() {
    let all = migrations().len();
    let fake = FakeTwilio::start();
    for version in 1..all {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("textback.db");
        fixture(&db, version);
        let before = counts(&db);
        std::fs::write(
            dir.path().join("textback.toml"),
            twilio_config(&fake.url, "0s", ""),
        )
        .unwrap();
        let s = TestServer::start_in(dir);
        assert_eq!(s.count("PRAGMA user_version"), all as i64, "from {version}");
        assert_eq!(
            counts(&s.db_path()),
            before,
            "from {version}: every row kept"
        );
        assert_eq!(s.text("PRAGMA integrity_check").as_deref(), Some("ok"));
        // The upgraded database works: an old contact calls again and is texted back.
        s.missed_call(&format!("CA-new-{version}"), "+14805554001");
        wait_for("the text-back", 10, || {
            fake.sends_to("+14805554001").into_iter().nth(version - 1)
        });
        let (code, out, err) = cli(s.dir.path(), &["status"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Opted-out contacts: 5"),
            "from {version}: {out}"
        );
    }
}

#[test]
fn a_migration_killed_half_way_leaves_the_old_version_and_runs_again() {
    let all = migrations().len();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("textback.db");
    fixture(&db, all - 1);
    let before = counts(&db);
    let fake = FakeTwilio::start();
    std::fs::write(
        dir.path().join("textback.toml"),
        twilio_config(&fake.url, "0s", ""),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args([
            "serve",
            "--config",
            "textback.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env("TEXTBACK_TEST_MIGRATION_PAUSE_MS", "30000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The server takes its lock, then opens the database and migrates: the last migration's transaction
    // is open (its changes made, not committed) when it dies.
    wait_for("the server to take its lock", 10, || {
        dir.path().join("textback.db.lock").exists().then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, (all - 1) as i64, "the old version is intact");
        let tables: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'outbound_events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "nothing of the interrupted migration remains");
    }
    assert_eq!(counts(&db), before);
    let s = TestServer::start_in(dir);
    assert_eq!(s.count("PRAGMA user_version"), all as i64);
    assert_eq!(counts(&s.db_path()), before);
}

fn scrape(s: &TestServer, token: Option<&str>) -> (u16, String, String) {
    let mut req = ureq::get(&format!("{}/metrics", s.url));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => {
            let ct = r.content_type().to_string();
            (r.status(), ct, r.into_string().unwrap())
        }
        Err(ureq::Error::Status(code, r)) => (code, String::new(), r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// The value of one sample line, by its name and labels as written.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_need_a_token_or_an_allowed_address_and_count_what_happened() {
    let fake = FakeTwilio::start();
    // Off by default.
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    assert_eq!(scrape(&s, None).0, 404);
    drop(s);

    let token = "metrics-token-0123456789";
    let config = format!(
        "[metrics]\ntoken = \"{token}\"\n{}",
        twilio_config(&fake.url, "0s", "")
    );
    let s = TestServer::start(&config);
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    let forged = s.post_raw(
        "/hooks/main/voice",
        "application/x-www-form-urlencoded",
        "CallSid=CA9",
        &[],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(scrape(&s, None).0, 401);
    assert_eq!(scrape(&s, Some("wrong-token-0123456789")).0, 401);
    let (code, content_type, text) = wait_for("the send to be counted", 10, || {
        let got = scrape(&s, Some(token));
        got.2.contains("textback_sends_total{").then_some(got)
    });
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/plain");
    assert!(text.ends_with('\n'));
    let ok = sample(
        &text,
        "textback_webhooks_received_total{provider=\"twilio\",hook=\"voice\",outcome=\"ok\"}",
    );
    assert_eq!(ok, Some(1.0), "{text}");
    let refused = sample(
        &text,
        "textback_webhooks_received_total{provider=\"main\",hook=\"-\",outcome=\"refused\"}",
    );
    assert_eq!(refused, Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "textback_sends_total{provider=\"main\",outcome=\"accepted\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "textback_send_lateness_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "textback_send_duration_seconds_count{provider=\"main\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "textback_db_write_batch_size_count").unwrap() >= 3.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "textback_db_commit_duration_seconds_bucket{le=\"+Inf\"}"
        )
        .unwrap()
            >= 3.0
    );
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1_000_000.0);
    assert!(sample(&text, "process_open_fds").unwrap() > 3.0);
    assert_eq!(sample(&text, "textback_scheduler_up"), Some(1.0));
    assert!(
        text.contains("# TYPE textback_jobs_pending gauge"),
        "{text}"
    );
    assert!(text.contains("textback_build_info{version=\""), "{text}");
    let texts: f64 = text
        .lines()
        .filter(|l| l.starts_with("textback_texts{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(texts, 1.0, "{text}");
    assert!(!text.contains(CALLER), "no phone numbers in metrics");
    // Every sample line's name has a TYPE line before it.
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "{line}");
        }
    }
    drop(s);

    // An allow-listed address needs no token.
    let config = format!(
        "[metrics]\nallow = [\"127.0.0.1/32\"]\n{}",
        twilio_config(&fake.url, "0s", "")
    );
    let s = TestServer::start(&config);
    assert_eq!(scrape(&s, None).0, 200);
}
