//! Durability: kill -9 at the worst moments, restart, and check that every text is sent exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;

#[test]
fn a_text_scheduled_before_a_crash_is_sent_once_after_restart() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "2s", ""));
    s.missed_call("CA1", CALLER);
    // The webhook was acknowledged, so the job is on disk; die before it is due.
    s.kill9();
    assert!(fake.sends().is_empty());
    std::thread::sleep(Duration::from_millis(2500));
    s.restart();
    wait_for("the text after restart", 10, || {
        fake.sends().into_iter().next()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends().len(), 1);
    assert_eq!(
        s.text("SELECT textback FROM calls").as_deref(),
        Some("sent")
    );
}

#[test]
fn a_send_under_way_at_a_crash_is_reconciled_not_resent() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    // Twilio accepts the message, but the answer never reaches us: we die mid-request.
    fake.hold(true);
    s.missed_call("CA2", CALLER);
    wait_for("the send to be under way", 10, || {
        (fake.held() == 1).then_some(())
    });
    assert_eq!(
        s.text("SELECT status FROM messages").as_deref(),
        Some("sending")
    );
    s.kill9();
    fake.hold(false);
    s.restart();
    let sid = wait_for("the reconciled message", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE provider_sid IS NOT NULL")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends().len(), 1, "resent blindly:\n{}", s.log());
    assert_eq!(fake.created(), 1);
    assert!(sid.starts_with("SM"));
    assert_eq!(s.text("SELECT state FROM jobs").as_deref(), Some("done"));
    assert!(
        fake.received().iter().any(|r| r.method == "GET"),
        "the provider was not asked"
    );
}

#[test]
fn a_send_lost_on_the_way_at_a_crash_is_sent_after_checking() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    // The request never made it into Twilio.
    fake.lose(true);
    s.missed_call("CA3", CALLER);
    wait_for("the send to be under way", 10, || {
        (fake.held() == 1).then_some(())
    });
    s.kill9();
    fake.lose(false);
    s.restart();
    wait_for("the text", 10, || (fake.created() == 1).then_some(()));
    wait_for("the message to be recorded", 10, || {
        s.text("SELECT provider_sid FROM messages WHERE provider_sid IS NOT NULL")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.created(), 1);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'"),
        1
    );
}

#[test]
fn a_crash_right_after_the_webhook_loses_nothing_and_duplicates_nothing() {
    let fake = FakeTwilio::start();
    let mut s = TestServer::start(&twilio_config(&fake.url, "1s", ""));
    for i in 0..20 {
        s.missed_call(&format!("CA1{i:02}"), &format!("+1480555{:04}", 1000 + i));
    }
    s.kill9();
    s.restart();
    // Twilio redelivers some of the same webhooks after the outage.
    for i in 0..20 {
        s.missed_call(&format!("CA1{i:02}"), &format!("+1480555{:04}", 1000 + i));
    }
    wait_for("twenty texts", 15, || {
        (fake.sends().len() == 20).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.sends().len(), 20);
    let mut to: Vec<String> = fake
        .sends()
        .iter()
        .map(|r| r.get("To").unwrap().to_string())
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 20);
}
