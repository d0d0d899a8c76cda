//! Push notifications to staff phones, through the real interfaces: an owner allows a user, the user's
//! browser subscribes over HTTP, and a reply, an urgent text and a failed text each reach a fake push
//! service on loopback, which checks the VAPID JWT and decrypts the payload (RFC 8291) with the browser's
//! private key, as a phone would. A push service that answers 410 loses the subscription.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aes_gcm::aead::{Aead, KeyInit};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use std::io::Read;

/// A browser's push keys: the private key stays here, the public key and auth secret are given to the server.
struct Device {
    key: p256::SecretKey,
    auth: [u8; 16],
}

impl Device {
    fn new(seed: u8) -> Self {
        let mut auth = [seed; 16];
        auth[0] = 0xA5;
        Self {
            key: p256::SecretKey::random(&mut rand_core::OsRng),
            auth,
        }
    }

    fn subscription(&self, endpoint: &str) -> serde_json::Value {
        serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": B64.encode(self.key.public_key().to_encoded_point(false).as_bytes()),
                "auth": B64.encode(self.auth),
            }
        })
    }

    /// Decrypts an `aes128gcm` push body (RFC 8291 / RFC 8188), as the browser does.
    fn decrypt(&self, body: &[u8]) -> serde_json::Value {
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap());
        assert_eq!(rs, 4096);
        let idlen = body[20] as usize;
        assert_eq!(idlen, 65, "the key id is the sender's public key");
        let sender = p256::PublicKey::from_sec1_bytes(&body[21..21 + idlen]).unwrap();
        let sealed = &body[21 + idlen..];
        let shared = p256::ecdh::diffie_hellman(self.key.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(self.key.public_key().to_encoded_point(false).as_bytes());
        info.extend_from_slice(sender.to_encoded_point(false).as_bytes());
        let mut ikm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .unwrap();
        let prk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let mut plain = aes_gcm::Aes128Gcm::new(&cek.into())
            .decrypt(aes_gcm::Nonce::from_slice(&nonce), sealed)
            .expect("the payload decrypts with the device's key");
        // The last record ends with 0x02, then any padding zeros.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "the last-record delimiter");
        serde_json::from_slice(&plain).unwrap()
    }
}

/// Checks the VAPID `Authorization` header: ES256 over the JWT by the appliance's key, for this push
/// service's origin, naming the operator, expiring within a day.
fn check_vapid(p: &Pushed, key: &str, origin: &str) {
    use p256::ecdsa::signature::Verifier;
    let auth = p.header("Authorization").expect("Authorization");
    let (t, k) = auth
        .strip_prefix("vapid t=")
        .and_then(|r| r.split_once(", k="))
        .expect("vapid t=…, k=…");
    assert_eq!(k, key, "the key browsers subscribed with");
    let parts: Vec<&str> = t.split('.').collect();
    let claims: serde_json::Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], origin);
    assert_eq!(claims["sub"], "mailto:ops@acme-hvac.com");
    let exp = claims["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(exp > now && exp <= now + 24 * 3600, "{exp}");
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&B64.decode(k).unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
    verifying
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("the JWT verifies with the appliance's public key");
    assert_eq!(p.header("Content-Encoding"), Some("aes128gcm"));
    assert_eq!(p.header("TTL"), Some("86400"));
}

fn push_config(api: &str, push: &FakePush) -> String {
    twilio_config(api, "0s", "").replace(
        "[providers.main]",
        &format!(
            "[push]\ncontact = \"mailto:ops@acme-hvac.com\"\nservices = [\"{}\"]\n\n[providers.main]",
            push.url
        ),
    )
}

#[test]
fn staff_phones_are_notified_of_replies_urgent_and_failed_texts() {
    let fake = FakeTwilio::start();
    let push = FakePush::start();
    let s = TestServer::start(&push_config(&fake.url, &push));
    add_user(&s, "sam", &["--role", "owner"]);
    add_user(&s, "ann", &["--business", "acme"]);
    let ann_id = s.count("SELECT id FROM users WHERE name = 'ann'");

    // Until an owner allows it, Ann cannot subscribe.
    let mut ann = Browser::new(&s);
    ann.login("ann", PASSWORD);
    let page = ann.get("/notifications");
    assert!(
        page.body
            .contains("An owner has not turned on notifications for you"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    let phone = Device::new(1);
    let endpoint = format!("{}/push/ann-phone", push.url);
    let refused = ann.post_json(
        "/push/subscribe",
        &serde_json::json!({ "csrf": csrf, "subscription": phone.subscription(&endpoint) }),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    // The owner turns it on for Ann in Settings, Alerts.
    let mut sam = Browser::new(&s);
    sam.login("sam", PASSWORD);
    let settings = sam.get("/settings");
    assert!(
        settings.body.contains("Turn on notifications for ann"),
        "{}",
        settings.body
    );
    let on = sam.post(
        &format!("/settings/push/{ann_id}"),
        &[("csrf", &Browser::csrf(&settings)), ("on", "1")],
    );
    assert_eq!(on.status, 303);
    // Staff cannot do that themselves.
    assert_eq!(
        ann.post(
            &format!("/settings/push/{ann_id}"),
            &[("csrf", &csrf), ("on", "1")]
        )
        .status,
        403
    );

    // Ann's page now carries the appliance's key (made on first use) and subscribes her phone.
    let page = ann.get("/notifications");
    let key = page
        .body
        .split("data-push-key=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the VAPID key on the page")
        .to_string();
    assert_eq!(B64.decode(&key).unwrap().len(), 65);
    assert!(s
        .text("SELECT value FROM meta WHERE key = 'vapid_private_key'")
        .is_some());
    let csrf = Browser::csrf(&page);
    let subscribe = |b: &mut Browser, sub: serde_json::Value| {
        b.post_json(
            "/push/subscribe",
            &serde_json::json!({ "csrf": csrf, "subscription": sub }),
        )
    };
    assert_eq!(
        subscribe(&mut ann, phone.subscription(&endpoint)).status,
        201
    );
    // An old phone whose subscription the push service has forgotten.
    let old = Device::new(2);
    let old_endpoint = format!("{}/push/ann-old", push.url);
    push.answer_gone("/push/ann-old");
    assert_eq!(
        subscribe(&mut ann, old.subscription(&old_endpoint)).status,
        201
    );
    // Endpoints elsewhere, and broken keys, are refused with a reason; nothing is stored.
    for (sub, why) in [
        (
            phone.subscription("https://169.254.169.254/latest"),
            "not a browser push service",
        ),
        (
            phone.subscription("http://127.0.0.1:1/x"),
            "not a browser push service",
        ),
        (
            serde_json::json!({ "endpoint": endpoint, "keys": { "p256dh": "AAAA", "auth": "short" } }),
            "keys.p256dh",
        ),
    ] {
        let r = subscribe(&mut ann, sub);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(why), "{}", r.body);
    }
    let forged = ann.post_json(
        "/push/subscribe",
        &serde_json::json!({ "csrf": "nope", "subscription": phone.subscription(&endpoint) }),
    );
    assert_eq!(forged.status, 403);
    assert_eq!(s.count("SELECT COUNT(*) FROM push_subscriptions"), 2);

    // A missed call, the text-back, and the caller replies: Ann's phone is told.
    s.missed_call("CA1", CALLER);
    wait_for("the text-back", 10, || {
        fake.sends_to(CALLER).into_iter().next()
    });
    s.text_in("SM1", CALLER, "Can you come Tuesday?");
    let contact = s.count("SELECT id FROM contacts");
    let first = wait_for("the push", 10, || {
        push.to("/push/ann-phone").into_iter().next()
    });
    check_vapid(&first, &key, &push.url);
    assert_eq!(first.header("Urgency"), Some("normal"));
    let note = phone.decrypt(&first.body);
    assert_eq!(note["title"], "(480) 555-0111 replied · Acme HVAC");
    assert_eq!(note["body"], "Can you come Tuesday?");
    assert_eq!(note["url"], format!("/conversations/{contact}"));
    assert_eq!(note["urgent"], false);
    // The forgotten subscription was tried, answered 410, and is gone.
    wait_for("the gone subscription removed", 10, || {
        (s.count("SELECT COUNT(*) FROM push_subscriptions") == 1).then_some(())
    });
    assert_eq!(push.to("/push/ann-old").len(), 1);

    // An urgent keyword: an urgent push.
    s.text_in("SM2", CALLER, "EMERGENCY water everywhere");
    let urgent = wait_for("the urgent push", 10, || {
        push.to("/push/ann-phone").into_iter().nth(1)
    });
    assert_eq!(urgent.header("Urgency"), Some("high"));
    let note = phone.decrypt(&urgent.body);
    assert_eq!(note["title"], "URGENT: (480) 555-0111 · Acme HVAC");
    assert_eq!(note["urgent"], true);

    // A text that fails for good: the carrier says undelivered.
    let sid = s
        .text("SELECT provider_sid FROM messages WHERE purpose = 'textback'")
        .unwrap();
    assert_eq!(
        s.receipt(&sid, CALLER, "undelivered", Some("30003")).status,
        200
    );
    let failed = wait_for("the failure push", 10, || {
        push.to("/push/ann-phone").into_iter().nth(2)
    });
    let note = phone.decrypt(&failed.body);
    assert_eq!(note["title"], "Text to (480) 555-0111 failed");
    // The same receipt again tells nobody twice.
    assert_eq!(
        s.receipt(&sid, CALLER, "undelivered", Some("30003")).status,
        200
    );

    // A test from the Notifications page reaches her own devices only.
    let page = ann.get("/notifications");
    assert!(
        page.body
            .contains("Notifications are on for 1 of your devices"),
        "{}",
        page.body
    );
    let test = ann.post("/push/test", &[("csrf", &Browser::csrf(&page))]);
    assert_eq!(test.status, 303);
    let tested = wait_for("the test push", 10, || {
        push.to("/push/ann-phone").into_iter().nth(3)
    });
    assert_eq!(phone.decrypt(&tested.body)["title"], "textback test");
    assert_eq!(
        push.to("/push/ann-phone").len(),
        4,
        "no duplicate of the failure"
    );

    // Turning Ann off forgets her phones; the next reply notifies nobody (no push is even queued: the
    // reply and its notifications are written together).
    let pushes = s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'push'");
    let settings = sam.get("/settings");
    sam.post(
        &format!("/settings/push/{ann_id}"),
        &[("csrf", &Browser::csrf(&settings)), ("on", "0")],
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM push_subscriptions"), 0);
    s.text_in("SM3", CALLER, "Hello?");
    wait_for("the reply stored", 10, || {
        (s.count("SELECT COUNT(*) FROM messages WHERE body = 'Hello?'") == 1).then_some(())
    });
    assert_eq!(
        s.count("SELECT COUNT(*) FROM jobs WHERE kind = 'push'"),
        pushes
    );
}

#[test]
fn without_a_push_contact_notifications_are_off_and_say_how_to_turn_them_on() {
    let fake = FakeTwilio::start();
    let s = TestServer::start(&twilio_config(&fake.url, "0s", ""));
    add_user(&s, "sam", &["--role", "owner"]);
    let mut sam = Browser::new(&s);
    sam.login("sam", PASSWORD);
    let page = sam.get("/notifications");
    assert!(
        page.body
            .contains("Notifications are off on this appliance")
            && page.body.contains("[push]"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("data-push-key"));
    let r = sam.post_json(
        "/push/subscribe",
        &serde_json::json!({ "csrf": Browser::csrf(&page), "subscription": Device::new(3).subscription("https://fcm.googleapis.com/fcm/send/x") }),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // The manifest, the worker and the icons are served to anyone (browsers fetch them without cookies).
    let anon = s.get("/manifest.webmanifest");
    assert_eq!(anon.status, 200);
    assert_eq!(anon.content_type, "application/manifest+json");
    let manifest: serde_json::Value = serde_json::from_str(&anon.body).unwrap();
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["theme_color"], "#0b6e4f");
    assert!(manifest["icons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["sizes"] == "512x512"));
    assert_eq!(s.get("/sw.js").status, 200);
    let icon = ureq::get(&format!("{}/icon-192.png", s.url))
        .call()
        .unwrap();
    assert_eq!(icon.content_type(), "image/png");
    let mut png = Vec::new();
    icon.into_reader().read_to_end(&mut png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
