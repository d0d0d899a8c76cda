-- API tokens can expire; the last use is recorded (at most once a minute).
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;

-- When the current attempt to send a message began: a send whose outcome is unclear is looked up at the
-- provider from this time on, however often the row changes while it is being checked.
ALTER TABLE messages ADD COLUMN send_started_at INTEGER;
