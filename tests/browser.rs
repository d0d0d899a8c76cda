//! The admin UI in a real headless Chromium: `tests/browser/flow.mjs` (playwright-core) logs in, turns on
//! push notifications, sees a missed call arrive in the inbox live, gets (and decrypts) the push for the
//! reply, reads the conversation as bubbles in the business's time, sends a saved reply, follows a link,
//! keeps the composer on screen, marks it booked and finds it on the dashboard; on every page at 390x844
//! and 1280x800 it checks for horizontal scroll, a wrapping tab bar and small tap targets; and it saves
//! screenshots at both sizes under `test-artifacts/screenshots`. Needs Debian's chromium and the npm
//! packages that `scripts/install-test-deps` installs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn the_admin_ui_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && root.join("tests/browser/node_modules/playwright-core").exists(),
        "the browser test needs Debian's chromium and playwright-core: run scripts/install-test-deps"
    );
    let push = FakePush::start();
    let config = simulator_config()
        .replace(
            "[providers.simulator]",
            &format!(
                "[push]\ncontact = \"mailto:ops@demo-plumbing.com\"\nservices = [\"{}\"]\n[providers.simulator]",
                push.url
            ),
        )
        .replace(
            "text_delay = \"0s\"",
            "text_delay = \"0s\"\ntimezone = \"America/Phoenix\"\nsaved_replies = [\"On our way!\", \"Can you send a photo?\"]",
        );
    let s = TestServer::start(&config);
    add_user(&s, "sam", &["--role", "owner"]);
    let shots = root.join("test-artifacts/screenshots");
    let key = s
        .text("SELECT value FROM meta WHERE key = 'simulator_token'")
        .expect("the simulator's signing key");
    let out = Command::new("node")
        .arg(root.join("tests/browser/flow.mjs"))
        .args([s.url.as_str(), "sam", PASSWORD])
        .arg(&shots)
        .arg(&key)
        .arg(&push.url)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(
        !push.to("/push/browser").is_empty(),
        "the fake push service got the notification"
    );
    for page in ["inbox", "conversation", "dashboard", "settings"] {
        for size in ["phone", "desktop"] {
            let file = shots.join(format!("{page}-{size}.png"));
            assert!(
                std::fs::metadata(&file)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{}",
                file.display()
            );
        }
    }
}
