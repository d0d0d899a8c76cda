//! SQL for Web Push: which users owners allowed, their browsers' subscriptions, and the appliance's VAPID
//! key (made on first use).

use super::{meta, optional, Conn, Result};
use rusqlite::params;

/// Browsers per user: a phone, a tablet, a desk or two. A new one beyond this replaces the oldest.
pub const MAX_PER_USER: i64 = 10;

/// A browser's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Row id.
    pub id: i64,
    /// Whose.
    pub user_id: i64,
    /// The push service URL notifications are POSTed to.
    pub endpoint: String,
    /// The browser's P-256 key, base64url.
    pub p256dh: String,
    /// The browser's auth secret, base64url.
    pub auth: String,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: r.get(0)?,
        user_id: r.get(1)?,
        endpoint: r.get(2)?,
        p256dh: r.get(3)?,
        auth: r.get(4)?,
    })
}

/// The appliance's VAPID key as stored, made from `fresh` the first time.
pub fn vapid_key(c: &Conn<'_>, fresh: &str) -> Result<String> {
    meta::get_or_insert(c, crate::push::KEY_META, fresh)
}

/// Whether owners allowed the user notifications.
pub fn allowed(c: &Conn<'_>, user_id: i64) -> Result<bool> {
    Ok(optional(
        c.0.prepare_cached("SELECT push FROM users WHERE id = ?1")?
            .query_row([user_id], |r| r.get(0)),
    )?
    .unwrap_or(false))
}

/// Allows or stops notifications for a user; stopping forgets their browsers' subscriptions too.
pub fn set_allowed(c: &Conn<'_>, user_id: i64, on: bool) -> Result<bool> {
    let changed =
        c.0.prepare_cached("UPDATE users SET push = ?2 WHERE id = ?1")?
            .execute(params![user_id, on])?;
    if !on {
        c.0.prepare_cached("DELETE FROM push_subscriptions WHERE user_id = ?1")?
            .execute([user_id])?;
    }
    Ok(changed > 0)
}

/// A user, whether owners allowed them notifications, and how many browsers they subscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPush {
    /// The user's id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// `owner` or `staff`.
    pub role: String,
    /// Allowed notifications.
    pub allowed: bool,
    /// Subscribed browsers.
    pub browsers: i64,
}

/// Every user and their notifications.
pub fn users(c: &Conn<'_>) -> Result<Vec<UserPush>> {
    let mut st = c.0.prepare_cached(
        "SELECT u.id, u.name, u.role, u.push,
                (SELECT COUNT(*) FROM push_subscriptions s WHERE s.user_id = u.id)
         FROM users u ORDER BY u.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(UserPush {
            id: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            allowed: r.get(3)?,
            browsers: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores a browser's subscription for a user (the same endpoint again updates its keys and owner), and
/// keeps at most [`MAX_PER_USER`] per user, dropping the oldest.
pub fn subscribe(
    c: &Conn<'_>,
    user_id: i64,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    now: i64,
) -> Result<i64> {
    let id: i64 = c
        .0
        .prepare_cached(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh,
               auth = excluded.auth, created_at = excluded.created_at
             RETURNING id",
        )?
        .query_row(params![user_id, endpoint, p256dh, auth, now], |r| r.get(0))?;
    c.0.prepare_cached(
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN
           (SELECT id FROM push_subscriptions WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)",
    )?
    .execute(params![user_id, MAX_PER_USER])?;
    Ok(id)
}

/// Forgets a browser (the user turned notifications off there). Only the user's own.
pub fn unsubscribe(c: &Conn<'_>, user_id: i64, endpoint: &str) -> Result<bool> {
    Ok(c.0
        .prepare_cached("DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2")?
        .execute(params![user_id, endpoint])?
        > 0)
}

/// Forgets a subscription the push service says is gone.
pub fn remove(c: &Conn<'_>, id: i64) -> Result<()> {
    c.0.prepare_cached("DELETE FROM push_subscriptions WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A subscription, if it still exists and its user is still allowed.
pub fn get(c: &Conn<'_>, id: i64) -> Result<Option<Subscription>> {
    optional(
        c.0.prepare_cached(
            "SELECT s.id, s.user_id, s.endpoint, s.p256dh, s.auth FROM push_subscriptions s
             JOIN users u ON u.id = s.user_id WHERE s.id = ?1 AND u.push = 1",
        )?
        .query_row([id], from_row),
    )
}

/// Notes a delivery.
pub fn delivered(c: &Conn<'_>, id: i64, now: i64) -> Result<()> {
    c.0.prepare_cached("UPDATE push_subscriptions SET last_ok_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The subscriptions of allowed users, with the user id, to be filtered by who may see a business.
pub fn of_allowed_users(c: &Conn<'_>) -> Result<Vec<Subscription>> {
    let mut st = c.0.prepare_cached(
        "SELECT s.id, s.user_id, s.endpoint, s.p256dh, s.auth FROM push_subscriptions s
         JOIN users u ON u.id = s.user_id WHERE u.push = 1 ORDER BY s.id",
    )?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A user's own subscriptions.
pub fn of_user(c: &Conn<'_>, user_id: i64) -> Result<Vec<Subscription>> {
    let mut st = c.0.prepare_cached(
        "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([user_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
