//! SQL for admin users, their businesses, sessions, one-time setup links and API tokens. Tokens are stored
//! only as hashes.

use super::{optional, Conn, Error, Result};
use rusqlite::params;

/// A user of the admin UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// `owner` or `staff`.
    pub role: String,
    /// Businesses a staff user may see (owners see all).
    pub businesses: Vec<String>,
}

impl User {
    /// Whether the user may see a business.
    pub fn can_see(&self, business_id: &str) -> bool {
        self.role == "owner" || self.businesses.iter().any(|b| b == business_id)
    }
}

fn load(c: &Conn<'_>, row: Option<(i64, String, String, String)>) -> Result<Option<User>> {
    let Some((id, name, password_hash, role)) = row else {
        return Ok(None);
    };
    let mut st = c.0.prepare_cached(
        "SELECT business_id FROM user_businesses WHERE user_id = ?1 ORDER BY business_id",
    )?;
    let businesses = st
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(User {
        id,
        name,
        password_hash,
        role,
        businesses,
    }))
}

/// The user with this login name.
pub fn by_name(c: &Conn<'_>, name: &str) -> Result<Option<User>> {
    let row = optional(
        c.0.prepare_cached("SELECT id, name, password_hash, role FROM users WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))),
    )?;
    load(c, row)
}

/// The user with this id.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Option<User>> {
    let row = optional(
        c.0.prepare_cached("SELECT id, name, password_hash, role FROM users WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))),
    )?;
    load(c, row)
}

/// Every user, by name.
pub fn list(c: &Conn<'_>) -> Result<Vec<User>> {
    let ids: Vec<i64> =
        c.0.prepare_cached("SELECT id FROM users ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for id in ids {
        out.extend(get(c, id)?);
    }
    Ok(out)
}

/// How many users exist.
pub fn count(c: &Conn<'_>) -> Result<i64> {
    Ok(c.0
        .prepare_cached("SELECT COUNT(*) FROM users")?
        .query_row([], |r| r.get(0))?)
}

/// Creates a user; refuses a name already taken.
pub fn create(
    c: &Conn<'_>,
    name: &str,
    password_hash: &str,
    role: &str,
    businesses: &[String],
    now: i64,
) -> Result<i64> {
    let n = c
        .0
        .prepare_cached(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, password_hash, role, now])?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "a user named {name:?} already exists"
        )));
    }
    let id = c.0.last_insert_rowid();
    for b in businesses {
        c.0.prepare_cached(
            "INSERT OR IGNORE INTO user_businesses (user_id, business_id) VALUES (?1, ?2)",
        )?
        .execute(params![id, b])?;
    }
    Ok(id)
}

/// Changes a password and signs the user out everywhere: sessions end and API tokens are revoked (a
/// password is changed because it may be known to someone else, who may have made a token with it).
pub fn set_password(c: &Conn<'_>, id: i64, password_hash: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, password_hash, now])?;
    c.0.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([id])?;
    c.0.prepare_cached("DELETE FROM api_tokens WHERE user_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Removes a user (their sessions and tokens go with them).
pub fn remove(c: &Conn<'_>, id: i64) -> Result<()> {
    c.0.prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose.
    pub user_id: i64,
    /// The session's CSRF token.
    pub csrf: String,
    /// Signed in at.
    pub created_at: i64,
    /// Last request.
    pub last_seen_at: i64,
}

/// Starts a session.
pub fn create_session(
    c: &Conn<'_>,
    token_hash: &str,
    user_id: i64,
    csrf: &str,
    now: i64,
) -> Result<()> {
    c.0.prepare_cached(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![token_hash, user_id, csrf, now])?;
    Ok(())
}

/// The session with this token hash, if any.
pub fn session(c: &Conn<'_>, token_hash: &str) -> Result<Option<Session>> {
    optional(
        c.0.prepare_cached(
            "SELECT user_id, csrf, created_at, last_seen_at FROM sessions WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(Session {
                user_id: r.get(0)?,
                csrf: r.get(1)?,
                created_at: r.get(2)?,
                last_seen_at: r.get(3)?,
            })
        }),
    )
}

/// Records activity on a session.
pub fn touch_session(c: &Conn<'_>, token_hash: &str, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
        .execute(params![token_hash, now])?;
    Ok(())
}

/// Ends a session.
pub fn end_session(c: &Conn<'_>, token_hash: &str) -> Result<()> {
    c.0.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
        .execute([token_hash])?;
    Ok(())
}

/// Stores a one-time setup link's token.
pub fn create_setup_token(c: &Conn<'_>, token_hash: &str, expires_at: i64) -> Result<()> {
    c.0.prepare_cached("INSERT INTO setup_tokens (token_hash, expires_at) VALUES (?1, ?2)")?
        .execute(params![token_hash, expires_at])?;
    Ok(())
}

/// Uses a setup token once; false if it is unknown, used or expired.
pub fn use_setup_token(c: &Conn<'_>, token_hash: &str, now: i64) -> Result<bool> {
    let n = c
        .0
        .prepare_cached(
            "UPDATE setup_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        )?
        .execute(params![token_hash, now])?;
    Ok(n == 1)
}

/// Whether a setup token is valid (unused, unexpired), without using it.
pub fn setup_token_valid(c: &Conn<'_>, token_hash: &str, now: i64) -> Result<bool> {
    Ok(c
        .0
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM setup_tokens WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2)",
        )?
        .query_row(params![token_hash, now], |r| r.get(0))?)
}

/// Creates an API token for a user, valid until `expires_at` (forever when `None`).
pub fn create_api_token(
    c: &Conn<'_>,
    name: &str,
    token_hash: &str,
    user_id: i64,
    expires_at: Option<i64>,
    now: i64,
) -> Result<i64> {
    c.0.prepare_cached(
        "INSERT INTO api_tokens (name, token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![name, token_hash, user_id, now, expires_at])?;
    Ok(c.0.last_insert_rowid())
}

/// A token that is valid at `now`: its id, its user, and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenUse {
    /// Row id.
    pub id: i64,
    /// Whose access it has.
    pub user_id: i64,
    /// Last used, if ever.
    pub last_used_at: Option<i64>,
}

/// The valid (unexpired) token with this hash.
pub fn api_token(c: &Conn<'_>, token_hash: &str, now: i64) -> Result<Option<ApiTokenUse>> {
    optional(
        c.0.prepare_cached(
            "SELECT id, user_id, last_used_at FROM api_tokens
             WHERE token_hash = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![token_hash, now], |r| {
            Ok(ApiTokenUse {
                id: r.get(0)?,
                user_id: r.get(1)?,
                last_used_at: r.get(2)?,
            })
        }),
    )
}

/// Records that a token was used.
pub fn touch_api_token(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// A token as `textback token list` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Row id: what `token revoke` takes.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// Whose access it has.
    pub user: String,
    /// Made at.
    pub created_at: i64,
    /// Last used.
    pub last_used_at: Option<i64>,
    /// Stops working at.
    pub expires_at: Option<i64>,
}

/// Every API token, oldest first.
pub fn api_tokens(c: &Conn<'_>) -> Result<Vec<ApiToken>> {
    let mut st = c.0.prepare_cached(
        "SELECT t.id, t.name, u.name, t.created_at, t.last_used_at, t.expires_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(ApiToken {
            id: r.get(0)?,
            name: r.get(1)?,
            user: r.get(2)?,
            created_at: r.get(3)?,
            last_used_at: r.get(4)?,
            expires_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes a token; false when there is no such token.
pub fn revoke_api_token(c: &Conn<'_>, id: i64) -> Result<bool> {
    Ok(c.0
        .prepare_cached("DELETE FROM api_tokens WHERE id = ?1")?
        .execute([id])?
        == 1)
}
