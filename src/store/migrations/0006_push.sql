-- Web Push: owners allow notifications per user; each of the user's browsers that subscribed is a row
-- (removed with the user, or when the push service answers 404/410).
ALTER TABLE users ADD COLUMN push INTEGER NOT NULL DEFAULT 0;
CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_ok_at INTEGER
);
CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
