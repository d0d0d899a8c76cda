//! Who may use the admin UI: Argon2id password hashes, random tokens stored as SHA-256 hashes, session expiry
//! rules, and a small in-memory limiter for login attempts. Pure except for the random source.

use crate::clock::Millis;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

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
    verify_in(password, phc, &mut Vec::new())
}

/// The most Argon2 memory a stored hash may ask for (64 MiB), so a tampered hash cannot exhaust memory.
const MAX_BLOCKS: usize = 64 * 1024;

/// [`verify_password`] with caller-owned Argon2 memory, grown as needed and reused across calls. Each
/// hash needs ~19 MiB; a fresh allocation per sign-in was not returned to the system by the allocator
/// (resident memory grew by 19 MiB with every sign-in), so the hashing threads keep one buffer each.
pub fn verify_in(password: &str, phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) =
        (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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

/// What the login limiter allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed guesses per account in [`WINDOW_MS`]: after that the account is slowed to this rate.
    pub per_account: usize,
    /// Failed guesses per client address in [`WINDOW_MS`], over all accounts: a budget generous enough that a
    /// shared address (an office, a proxy not listed in `trusted_proxies`) does not lock everyone out.
    pub per_client: usize,
    /// Keys remembered at most; the oldest are forgotten first.
    pub max_keys: usize,
}

/// The limits the server runs with.
pub const LIMITS: Limits = Limits {
    per_account: 5,
    per_client: 20,
    max_keys: 10_000,
};
/// The window failed attempts are counted in.
pub const WINDOW_MS: Millis = 15 * 60_000;

/// Counts login attempts per account and per client address in a sliding window. An attempt is reserved
/// (counted as a failure) under the lock *before* the password is checked, so parallel guesses cannot
/// all slip in before the first one is counted; a success clears the account and gives the client its
/// attempt back. Accounts and clients are kept apart, each bounded: expired keys are dropped first, then the
/// stalest key that is not at its limit, so flooding new names or addresses cannot flush a locked one.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    accounts: HashMap<String, Vec<Millis>>,
    clients: HashMap<String, Vec<Millis>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(LIMITS)
    }
}

/// A reserved login attempt: the keys it was counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    account: String,
    client: String,
    at: Millis,
}

impl Limiter {
    /// A limiter with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(Counts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reserves an attempt for `account` from `client` at `now`: counted as a failure until [`Limiter::
    /// succeeded`] or [`Limiter::release`]. `Err` holds when the next attempt will be allowed.
    pub fn begin(&self, account: &str, client: &str, now: Millis) -> Result<Attempt, Millis> {
        let mut counts = self.lock();
        let Counts { accounts, clients } = &mut *counts;
        let until = [
            blocked_until(accounts, account, self.limits.per_account, now),
            blocked_until(clients, client, self.limits.per_client, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(until) = until {
            return Err(until);
        }
        reserve(
            accounts,
            account,
            self.limits.per_account,
            self.limits.max_keys,
            now,
        );
        reserve(
            clients,
            client,
            self.limits.per_client,
            self.limits.max_keys,
            now,
        );
        Ok(Attempt {
            account: account.to_string(),
            client: client.to_string(),
            at: now,
        })
    }

    /// The password was right: the account's failures are forgotten and the client gets its attempt back.
    pub fn succeeded(&self, attempt: &Attempt) {
        let mut counts = self.lock();
        counts.accounts.remove(&attempt.account);
        unreserve(&mut counts.clients, &attempt.client, attempt.at);
    }

    /// The password was never checked (the server was too busy): the attempt does not count.
    pub fn release(&self, attempt: &Attempt) {
        let mut counts = self.lock();
        unreserve(&mut counts.accounts, &attempt.account, attempt.at);
        unreserve(&mut counts.clients, &attempt.client, attempt.at);
    }

    /// How many keys are remembered (accounts and clients).
    pub fn len(&self) -> usize {
        let counts = self.lock();
        counts.accounts.len() + counts.clients.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When `key` may try again, if it is at its `limit` now.
fn blocked_until(
    map: &mut HashMap<String, Vec<Millis>>,
    key: &str,
    limit: usize,
    now: Millis,
) -> Option<Millis> {
    let list = map.get_mut(key)?;
    list.retain(|t| now - t < WINDOW_MS);
    (list.len() >= limit).then(|| list.iter().min().copied().unwrap_or(now) + WINDOW_MS)
}

fn reserve(
    map: &mut HashMap<String, Vec<Millis>>,
    key: &str,
    limit: usize,
    max_keys: usize,
    now: Millis,
) {
    if !map.contains_key(key) {
        make_room(map, max_keys, limit, now);
    }
    map.entry(key.to_string()).or_default().push(now);
}

fn unreserve(map: &mut HashMap<String, Vec<Millis>>, key: &str, at: Millis) {
    if let Some(list) = map.get_mut(key) {
        if let Some(i) = list.iter().rposition(|t| *t == at) {
            list.remove(i);
        }
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// Keeps the map under `max` keys before one is added: expired keys go first, then the stalest key below its
/// `limit` (a locked key goes only when every key is locked).
fn make_room(map: &mut HashMap<String, Vec<Millis>>, max: usize, limit: usize, now: Millis) {
    if map.len() < max {
        return;
    }
    map.retain(|_, list| list.iter().any(|t| now - t < WINDOW_MS));
    while map.len() >= max {
        let latest = |list: &Vec<Millis>| list.iter().max().copied().unwrap_or(Millis::MIN);
        let stalest = map
            .iter()
            .filter(|(_, list)| list.len() < limit)
            .min_by_key(|(_, list)| latest(list))
            .or_else(|| map.iter().min_by_key(|(_, list)| latest(list)))
            .map(|(k, _)| k.clone());
        match stalest {
            Some(k) => {
                map.remove(&k);
            }
            None => return,
        }
    }
}

/// Password hashing off the request path, on a fixed number of threads with a short queue: each Argon2
/// hash takes ~19 MiB for tens of milliseconds, so unbounded parallel logins would take gigabytes. A
/// request that finds the queue full is told to come back (429) instead of waiting.
pub struct Hasher {
    jobs: std::sync::mpsc::SyncSender<HashJob>,
}

/// Work for a hashing thread, given that thread's reusable Argon2 memory.
type HashJob = Box<dyn FnOnce(&mut Vec<argon2::Block>) + Send>;

/// The hasher's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins at once; try again in a moment")]
pub struct Busy;

impl Hasher {
    /// Starts `threads` hashing threads with room for `queue` waiting requests.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = std::sync::Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("hasher-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { jobs: tx })
    }

    /// Runs `f` on a hashing thread, with that thread's Argon2 memory, and waits for it without holding an
    /// async worker.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move |memory| {
                let _ = tx.send(f(memory));
            }))
            .map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }
}

/// A fixed hash of nothing anybody types ("textback-no-such-user"), with the default parameters every
/// stored hash has.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$dGV4dGJhY2stZHVtbXk$v3dS4iutJm8n9P3aWbnsbNWYRvlxgqvXGSCjjNQZanw";

/// Checks a password against a user's hash, or, when there is no such user, against a hash of nothing
/// with the same parameters: both take the same time, so timing does not tell which user names exist.
pub fn verify_or_dummy(password: &str, phc: Option<&str>, memory: &mut Vec<argon2::Block>) -> bool {
    match phc {
        Some(phc) => verify_in(password, phc, memory),
        None => {
            let _ = verify_in(password, DUMMY, memory);
            false
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
    fn each_account_gets_five_guesses_per_window_counted_before_checking() {
        let l = Limiter::default();
        // Five guesses in flight at once are all counted before any is checked; the sixth is refused.
        let held: Vec<_> = (0..5)
            .map(|i| l.begin("sam", "1.2.3.4", i).unwrap())
            .collect();
        assert_eq!(l.begin("sam", "1.2.3.4", 10), Err(WINDOW_MS));
        // Another account from the same address is not locked out.
        let other = l.begin("alex", "1.2.3.4", 10).unwrap();
        l.succeeded(&other);
        // The window slides.
        assert!(l.begin("sam", "5.6.7.8", WINDOW_MS + 1).is_ok());
        // A success forgets the account's failures.
        let ok = l.begin("alex", "1.2.3.4", 20).unwrap();
        l.succeeded(&ok);
        assert!(l.begin("alex", "1.2.3.4", 21).is_ok());
        drop(held);
    }

    #[test]
    fn each_client_gets_a_budget_over_all_accounts_and_unchecked_attempts_do_not_count() {
        let l = Limiter::new(Limits {
            per_account: 5,
            per_client: 3,
            max_keys: 100,
        });
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            assert!(l.begin(name, "9.9.9.9", i64::try_from(i).unwrap()).is_ok());
        }
        assert!(l.begin("d", "9.9.9.9", 5).is_err());
        assert!(l.begin("d", "8.8.8.8", 5).is_ok());
        // Released (never checked): not counted.
        let l = Limiter::new(Limits {
            per_account: 1,
            per_client: 1,
            max_keys: 100,
        });
        let a = l.begin("x", "1.1.1.1", 0).unwrap();
        l.release(&a);
        assert!(l.is_empty());
        assert!(l.begin("x", "1.1.1.1", 1).is_ok());
    }

    #[test]
    fn the_limiter_remembers_a_bounded_number_of_keys() {
        let l = Limiter::new(Limits {
            per_account: 5,
            per_client: 1_000_000,
            max_keys: 50,
        });
        for i in 0..10_000 {
            let _ = l.begin(
                &format!("name{i}"),
                &format!("10.0.{}.{}", i / 256, i % 256),
                i,
            );
            assert!(l.len() <= 100, "{} keys after {i}", l.len());
        }
        // Expired keys go first: a fresh key after the window finds room without evicting a live one.
        let l = Limiter::new(Limits {
            per_account: 2,
            per_client: 100,
            max_keys: 2,
        });
        let _ = l.begin("old", "1.1.1.1", 0);
        let _ = l.begin("live", "1.1.1.1", WINDOW_MS);
        let _ = l.begin("newer", "1.1.1.1", WINDOW_MS + 1);
        assert!(l.begin("live", "1.1.1.1", WINDOW_MS + 2).is_ok());
        assert!(
            l.begin("live", "1.1.1.1", WINDOW_MS + 3).is_err(),
            "the live key's count was lost"
        );
        // A locked account survives a flood of new names: the unlocked keys go first.
        let l = Limiter::new(Limits {
            per_account: 2,
            per_client: 1_000_000,
            max_keys: 10,
        });
        for t in 0..2 {
            let _ = l.begin("victim", "1.1.1.1", t);
        }
        for i in 0..1_000 {
            let _ = l.begin(&format!("junk{i}"), "1.1.1.1", 10 + i);
        }
        assert!(
            l.begin("victim", "1.1.1.1", 2_000).is_err(),
            "the lock was flushed"
        );
    }

    #[test]
    fn unknown_users_are_checked_against_a_dummy_hash() {
        let mut memory = Vec::new();
        let h = hash_password("correct horse battery").unwrap();
        assert!(verify_or_dummy(
            "correct horse battery",
            Some(&h),
            &mut memory
        ));
        assert!(!verify_or_dummy("wrong", Some(&h), &mut memory));
        assert!(!verify_or_dummy("correct horse battery", None, &mut memory));
        // The dummy is a real hash with the same cost as the ones users get: it takes the same time.
        let dummy_cost = PasswordHash::new(DUMMY).unwrap().params.to_string();
        assert_eq!(
            dummy_cost,
            PasswordHash::new(&h).unwrap().params.to_string()
        );
        assert!(verify_in("textback-no-such-user", DUMMY, &mut memory));
    }
}
