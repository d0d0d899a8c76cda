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
        let statuses = handles.into_iter().map(|h| h.join().unwrap()).collect();
        if expect_refusals {
            // Writes failed while the lock is still held: health says so.
            let health = s.get("/healthz");
            assert_eq!(health.status, 503, "{}", health.body);
            assert!(health.body.contains("\"database\":false"), "{}", health.body);
        }
        statuses
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
