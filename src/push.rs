//! Web Push to staff phones: the appliance's VAPID identity (RFC 8292), payload encryption (RFC 8291, the
//! `aes128gcm` content coding of RFC 8188), which push services may be posted to, and one POST per
//! notification. Pure except `send`, which speaks HTTP through ureq.
//!
//! A browser subscribes with the appliance's public key and hands over an endpoint at its vendor's push
//! service plus two keys (`p256dh`, `auth`); every notification is encrypted to those keys, so the push
//! service relays bytes it cannot read, and signed with a short-lived JWT naming the operator, so the push
//! service knows whom to contact.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use std::time::Duration;

/// Where the appliance's VAPID private key lives in the `meta` table. Changing it invalidates every
/// subscription (each is bound to the public key), so it is made once and kept.
pub const KEY_META: &str = "vapid_private_key";
/// Notifications the push service may hold for an offline phone: a day, after which they are stale.
pub const TTL_SECS: u64 = 86_400;
/// JWTs live 12 hours (at most 24 h is allowed; Apple refuses more).
const JWT_LIFETIME_SECS: i64 = 12 * 3600;
/// One record holds the whole payload: push services guarantee about 4 KB; we stay well under.
const RECORD_SIZE: u32 = 4096;
/// The largest payload we encrypt (the JSON of a notification; bodies are cut to an excerpt before).
pub const MAX_PAYLOAD: usize = 3000;
/// The push services of the browsers staff use: Chrome and Edge on Android (FCM), Firefox, Safari and iOS
/// home-screen apps, Windows. Notifications are posted nowhere else unless the operator adds an origin.
const VENDOR_HOSTS: [&str; 5] = [
    "fcm.googleapis.com",
    "android.googleapis.com",
    "push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
];

/// Why a push did not go through.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The push service no longer knows the subscription (404 or 410): delete it.
    #[error("the push service says the subscription is gone (HTTP {0})")]
    Gone(u16),
    /// Worth trying again later (network, 429, 5xx).
    #[error("{message}")]
    Retryable {
        /// What happened.
        message: String,
        /// The push service's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Refused for good (a bad JWT, a payload too large, bad keys).
    #[error("{0}")]
    Rejected(String),
}

/// The appliance's VAPID key pair.
#[derive(Clone)]
pub struct Vapid {
    key: SecretKey,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// A fresh key pair.
    pub fn generate() -> Self {
        Self {
            key: SecretKey::random(&mut rand_core::OsRng),
        }
    }

    /// The key pair from its stored private half (base64url of the 32-byte scalar).
    pub fn from_stored(b64: &str) -> Option<Self> {
        let bytes = B64.decode(b64.trim()).ok()?;
        SecretKey::from_slice(&bytes).ok().map(|key| Self { key })
    }

    /// The private half as stored.
    pub fn to_stored(&self) -> String {
        B64.encode(self.key.to_bytes())
    }

    /// The public key as browsers take it for `applicationServerKey`: base64url of the uncompressed point.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.public_key().to_encoded_point(false).as_bytes())
    }

    /// The `Authorization` header for a request to `endpoint`: `vapid t=<JWT>, k=<public key>`, the JWT
    /// naming the push service's origin, expiring 12 hours after `now_secs`, with the operator's contact.
    pub fn authorization(
        &self,
        endpoint: &url::Url,
        contact: &str,
        now_secs: i64,
    ) -> Result<String, Error> {
        let aud = endpoint.origin().ascii_serialization();
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = B64.encode(
            serde_json::json!({ "aud": aud, "exp": now_secs + JWT_LIFETIME_SECS, "sub": contact })
                .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let signer = p256::ecdsa::SigningKey::from(&self.key);
        let signature: p256::ecdsa::Signature = signer.sign(signing_input.as_bytes());
        Ok(format!(
            "vapid t={signing_input}.{}, k={}",
            B64.encode(signature.to_bytes()),
            self.public_key()
        ))
    }
}

/// A browser's subscription keys, decoded and checked.
#[derive(Debug, Clone)]
pub struct Keys {
    p256dh: PublicKey,
    auth: [u8; 16],
}

impl Keys {
    /// Decodes `p256dh` (base64url of an uncompressed P-256 point) and `auth` (base64url of 16 bytes), as
    /// `PushSubscription.toJSON()` gives them.
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, String> {
        let point = decode_b64(p256dh).ok_or("keys.p256dh is not base64url")?;
        if point.len() != 65 {
            return Err(format!(
                "keys.p256dh must be a 65-byte P-256 point, not {} bytes",
                point.len()
            ));
        }
        let p256dh =
            PublicKey::from_sec1_bytes(&point).map_err(|_| "keys.p256dh is not a P-256 point")?;
        let auth = decode_b64(auth).ok_or("keys.auth is not base64url")?;
        let auth: [u8; 16] = auth
            .try_into()
            .map_err(|v: Vec<u8>| format!("keys.auth must be 16 bytes, not {}", v.len()))?;
        Ok(Self { p256dh, auth })
    }
}

/// Browsers write base64url without padding; some libraries add it.
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim().trim_end_matches('=')).ok()
}

/// Encrypts `plaintext` for a subscription (RFC 8291): a fresh key pair and salt per message.
pub fn encrypt(keys: &Keys, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let mut salt = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    encrypt_with(
        keys,
        plaintext,
        &SecretKey::random(&mut rand_core::OsRng),
        salt,
    )
}

/// RFC 8291 with a given sender key and salt (the RFC's example fixes both).
fn encrypt_with(
    keys: &Keys,
    plaintext: &[u8],
    sender: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(Error::Rejected(format!(
            "the notification is {} bytes; at most {MAX_PAYLOAD}",
            plaintext.len()
        )));
    }
    let ua_public = keys.p256dh.to_encoded_point(false);
    let as_public = sender.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), keys.p256dh.as_affine());
    // IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(ua_public.as_bytes());
    info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&keys.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| Error::Rejected("key derivation failed".into()))?;
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|()| prk.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|_| Error::Rejected("key derivation failed".into()))?;
    // One record, the last: the plaintext then the 0x02 delimiter, no padding.
    let mut record = plaintext.to_vec();
    record.push(2);
    let sealed = Aes128Gcm::new(&cek.into())
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| Error::Rejected("encryption failed".into()))?;
    // Header: salt (16) || record size (4, big-endian) || key id length (1) || key id (the sender key, 65).
    let mut out = Vec::with_capacity(86 + sealed.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(65);
    out.extend_from_slice(as_public.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Checks a subscription's endpoint: https at a browser vendor's push service, or an origin the operator
/// allowed (`[push] services`, e.g. a self-hosted autopush). Anything else would let a signed-in user make
/// the appliance POST wherever they like.
pub fn check_endpoint(endpoint: &str, extra_origins: &[String]) -> Result<url::Url, String> {
    if endpoint.len() > 2048 {
        return Err("the endpoint is longer than 2048 characters".into());
    }
    let url = url::Url::parse(endpoint).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    let origin = url.origin().ascii_serialization();
    if extra_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin)
    {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default();
    let vendor = VENDOR_HOSTS
        .iter()
        .any(|v| host == *v || host.ends_with(&format!(".{v}")));
    if url.scheme() == "https" && vendor && url.port().is_none() {
        Ok(url)
    } else {
        Err(format!(
            "{origin} is not a browser push service textback posts to (add it to [push] services to allow it)"
        ))
    }
}

/// Checks the operator contact the JWT carries: `mailto:` an address, or an `https:` URL, that a push
/// service can actually reach. Apple refuses placeholders (`localhost`, `.local`, `.invalid`, spaces).
pub fn check_contact(contact: &str) -> Result<(), String> {
    let host = if let Some(address) = contact.strip_prefix("mailto:") {
        let (local, domain) = address
            .split_once('@')
            .ok_or("a mailto: contact needs an address, e.g. mailto:you@yourcompany.com")?;
        if local.is_empty()
            || address
                .chars()
                .any(|c| c.is_whitespace() || "<>,;\"".contains(c))
        {
            return Err("the address after mailto: must be one plain address, e.g. mailto:you@yourcompany.com".into());
        }
        domain.to_ascii_lowercase()
    } else if contact.starts_with("https://") {
        url::Url::parse(contact)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .ok_or("not a URL")?
    } else {
        return Err(
            "must start with mailto: (an email address) or https:// (a page about you)".into(),
        );
    };
    let reserved = [
        "localhost",
        ".localhost",
        ".local",
        ".invalid",
        ".test",
        ".example",
        "example.com",
        "example.org",
        "example.net",
        ".lan",
        ".internal",
        ".home.arpa",
    ];
    if !host.contains('.')
        || reserved
            .iter()
            .any(|r| host == r.trim_start_matches('.') || host.ends_with(r))
    {
        return Err(format!(
            "{host} is not a domain the push services can reach (Apple refuses placeholders); give a real address"
        ));
    }
    Ok(())
}

/// What a phone shows: JSON the service worker reads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Notification {
    /// The first line.
    pub title: String,
    /// The text under it.
    pub body: String,
    /// The page a tap opens (a path on this appliance).
    pub url: String,
    /// Notifications with the same tag replace each other (one per conversation).
    pub tag: String,
    /// Urgent notifications ask the push service to wake the phone at once.
    pub urgent: bool,
}

/// Encrypts and POSTs one notification to a subscription's push service.
pub fn send(
    agent: &ureq::Agent,
    vapid: &Vapid,
    contact: &str,
    endpoint: &url::Url,
    keys: &Keys,
    note: &Notification,
    now_secs: i64,
) -> Result<(), Error> {
    let body = encrypt(
        keys,
        serde_json::to_string(note).unwrap_or_default().as_bytes(),
    )?;
    let result = agent
        .post(endpoint.as_str())
        .set(
            "Authorization",
            &vapid.authorization(endpoint, contact, now_secs)?,
        )
        .set("TTL", &TTL_SECS.to_string())
        .set("Urgency", if note.urgent { "high" } else { "normal" })
        .set("Content-Encoding", "aes128gcm")
        .set("Content-Type", "application/octet-stream")
        .send_bytes(&body);
    match result {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code @ (404 | 410), _)) => Err(Error::Gone(code)),
        Err(ureq::Error::Status(code, resp)) if code == 429 || code >= 500 => {
            Err(Error::Retryable {
                message: format!("the push service answered HTTP {code}"),
                retry_after: resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs),
            })
        }
        Err(ureq::Error::Status(code, resp)) => {
            // Apple explains a refusal in JSON ({"reason":"BadJwtToken"}); keep a short excerpt.
            let why: String = resp
                .into_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Err(Error::Rejected(format!(
                "the push service answered HTTP {code}{}",
                if why.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.trim())
                }
            )))
        }
        Err(ureq::Error::Transport(t)) => Err(Error::Retryable {
            message: format!("the push service could not be reached: {}", t.kind()),
            retry_after: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    /// RFC 8291 section 5 / Appendix A: the same keys and salt give byte for byte the same message.
    #[test]
    fn the_rfc_8291_example_encrypts_byte_for_byte() {
        let keys = Keys::parse(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "BTBZMqHH6r4Tts7J_aSIgg",
        )
        .unwrap();
        let sender =
            SecretKey::from_slice(&b("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let salt: [u8; 16] = b("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let out = encrypt_with(
            &keys,
            b"When I grow up, I want to be a watermelon",
            &sender,
            salt,
        )
        .unwrap();
        assert_eq!(
            B64.encode(out),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
        // Fresh key and salt each time: two encryptions of one text differ.
        assert_ne!(encrypt(&keys, b"x").unwrap(), encrypt(&keys, b"x").unwrap());
        assert!(encrypt(&keys, &[b'a'; MAX_PAYLOAD + 1]).is_err());
    }

    #[test]
    fn the_vapid_jwt_is_es256_for_the_push_service_origin_and_verifies() {
        use p256::ecdsa::signature::Verifier;
        let vapid = Vapid::generate();
        let again = Vapid::from_stored(&vapid.to_stored()).unwrap();
        assert_eq!(vapid.public_key(), again.public_key());
        assert_eq!(b(&vapid.public_key()).len(), 65);
        let endpoint = url::Url::parse("https://web.push.apple.com/QGuQ-long-token").unwrap();
        let header = vapid
            .authorization(&endpoint, "mailto:ops@acme-hvac.com", 1_800_000_000)
            .unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, vapid.public_key());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head: serde_json::Value = serde_json::from_slice(&b(parts[0])).unwrap();
        assert_eq!(head["alg"], "ES256");
        let claims: serde_json::Value = serde_json::from_slice(&b(parts[1])).unwrap();
        assert_eq!(claims["aud"], "https://web.push.apple.com");
        assert_eq!(claims["sub"], "mailto:ops@acme-hvac.com");
        assert_eq!(claims["exp"], 1_800_000_000 + 12 * 3600);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b(k)).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&b(parts[2])).unwrap();
        assert!(key
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .is_ok());
    }

    #[test]
    fn endpoints_are_browser_push_services_or_allowed_origins() {
        let extra = vec!["http://127.0.0.1:4000".to_string()];
        for (endpoint, ok) in [
            ("https://fcm.googleapis.com/fcm/send/abc", true),
            (
                "https://updates.push.services.mozilla.com/wpush/v2/abc",
                true,
            ),
            ("https://web.push.apple.com/QGuQ", true),
            ("https://wns2-by3p.notify.windows.com/w/?token=x", true),
            ("http://127.0.0.1:4000/push/1", true),
            ("http://fcm.googleapis.com/fcm/send/abc", false),
            ("https://fcm.googleapis.com:8443/fcm/send/abc", false),
            ("https://evilfcm.googleapis.com.attacker.net/x", false),
            ("https://169.254.169.254/latest/meta-data", false),
            ("http://127.0.0.1:4001/push/1", false),
            ("http://localhost:8080/admin", false),
            ("not a url", false),
        ] {
            assert_eq!(
                check_endpoint(endpoint, &extra).is_ok(),
                ok,
                "{endpoint}: {:?}",
                check_endpoint(endpoint, &extra)
            );
        }
    }

    #[test]
    fn the_contact_is_one_the_push_services_accept() {
        for (contact, ok) in [
            ("mailto:ops@acme-hvac.com", true),
            ("https://acme-hvac.com/contact", true),
            ("mailto:admin@localhost", false),
            ("mailto:me@box.local", false),
            ("mailto:me@x.invalid", false),
            ("mailto:me@example.com", false),
            ("mailto: ops@acme-hvac.com", false),
            ("mailto:<ops@acme-hvac.com>", false),
            ("ops@acme-hvac.com", false),
            ("http://acme-hvac.com", false),
            ("mailto:ops", false),
        ] {
            assert_eq!(check_contact(contact).is_ok(), ok, "{contact}");
        }
    }

    #[test]
    fn subscription_keys_are_checked() {
        let good_point =
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert!(Keys::parse(good_point, "BTBZMqHH6r4Tts7J_aSIgg").is_ok());
        assert!(Keys::parse(good_point, "BTBZMqHH6r4Tts7J_aSIgg==").is_ok());
        assert!(Keys::parse(good_point, "short").is_err());
        assert!(Keys::parse("AAAA", "BTBZMqHH6r4Tts7J_aSIgg").is_err());
        // 65 bytes but not on the curve.
        let off_curve = B64.encode([4u8; 65]);
        assert!(Keys::parse(&off_curve, "BTBZMqHH6r4Tts7J_aSIgg").is_err());
    }
}
