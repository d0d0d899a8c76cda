//! Who may use the admin UI: Argon2id password hashes, random tokens stored as SHA-256 hashes, session expiry
//! rules, and a small in-memory limiter for login attempts. Pure except for the random source.

use crate::clock::Millis;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// A session ends after this long without a request.
pub const IDLE_MS: Millis = 12 * 3_600_000;
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_MS: Millis = 30 * 24 * 3_600_000;
/// A first-run setup link works this long.
pub const SETUP_MS: Millis = 30 * 60_000;
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD: usize = 10;

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks a password against a stored hash, in constant time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Whether a new password is acceptable.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        ));
    }
    Ok(())
}

/// A new random token: 32 bytes from the OS, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a token is stored: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a session is still valid at `now`.
pub fn session_valid(created_at: Millis, last_seen_at: Millis, now: Millis) -> bool {
    now - last_seen_at < IDLE_MS && now - created_at < ABSOLUTE_MS
}

/// Counts failed logins per key (IP address, user name) in a sliding window.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, Vec<Millis>>>,
}

/// Failed attempts allowed per key in [`WINDOW_MS`].
pub const MAX_FAILURES: usize = 5;
/// The window failed attempts are counted in.
pub const WINDOW_MS: Millis = 15 * 60_000;

impl Limiter {
    /// Whether another attempt for `key` is allowed now.
    pub fn allowed(&self, key: &str, now: Millis) -> bool {
        let Ok(mut map) = self.failures.lock() else {
            return true;
        };
        let list = map.entry(key.to_string()).or_default();
        list.retain(|t| now - t < WINDOW_MS);
        list.len() < MAX_FAILURES
    }

    /// Records a failed attempt.
    pub fn failed(&self, key: &str, now: Millis) {
        if let Ok(mut map) = self.failures.lock() {
            map.entry(key.to_string()).or_default().push(now);
        }
    }

    /// Forgets the failures of a key (after a successful login).
    pub fn clear(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batter", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let cases = [
            ((0, 0, 1_000), true),
            ((0, 0, IDLE_MS - 1), true),
            ((0, 0, IDLE_MS), false),
            ((0, ABSOLUTE_MS - 10, ABSOLUTE_MS - 1), true),
            ((0, ABSOLUTE_MS - 10, ABSOLUTE_MS), false),
        ];
        for ((created, seen, now), want) in cases {
            assert_eq!(
                session_valid(created, seen, now),
                want,
                "{created} {seen} {now}"
            );
        }
    }

    #[test]
    fn the_limiter_stops_the_sixth_attempt_for_a_while() {
        let l = Limiter::default();
        for i in 0..5 {
            assert!(l.allowed("ip:1", i));
            l.failed("ip:1", i);
        }
        assert!(!l.allowed("ip:1", 10));
        assert!(l.allowed("ip:2", 10));
        assert!(l.allowed("ip:1", WINDOW_MS + 10));
        l.clear("ip:1");
        assert!(l.allowed("ip:1", 11));
    }
}
