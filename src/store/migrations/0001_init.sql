-- The first schema. Every instant is unix milliseconds UTC, passed in from the clock.

CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    business_id  TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    opted_out_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (business_id, phone)
);

-- The audit trail of consent: every opt-out and opt-in, where it came from and when.
CREATE TABLE consent_events (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    change     TEXT    NOT NULL CHECK (change IN ('opt_out', 'opt_in')),
    source     TEXT    NOT NULL,
    detail     TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, at);

CREATE TABLE calls (
    id              INTEGER PRIMARY KEY,
    business_id     TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    call_sid        TEXT    NOT NULL,
    contact_id      INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    from_raw        TEXT    NOT NULL,
    to_number       TEXT    NOT NULL,
    dialed          INTEGER NOT NULL DEFAULT 0,   -- our voice webhook answered it with a <Dial>
    dial_reported   INTEGER NOT NULL DEFAULT 0,   -- the <Dial action> report arrived
    state           TEXT    NOT NULL CHECK (state IN ('ringing', 'missed', 'answered')),
    miss_reason     TEXT,
    dial_status     TEXT,
    duration_secs   INTEGER,
    recording_url   TEXT,
    textback        TEXT CHECK (textback IN ('scheduled', 'sent', 'suppressed', 'cancelled', 'failed')),
    textback_reason TEXT,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (provider, call_sid)
);
CREATE INDEX calls_business_started ON calls (business_id, started_at);
CREATE INDEX calls_contact ON calls (contact_id);

-- One row per applied call report, so a redelivered dial action or status callback changes nothing.
CREATE TABLE call_reports (
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    key     TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (call_id, key)
) WITHOUT ROWID;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    business_id   TEXT    NOT NULL,
    contact_id    INTEGER REFERENCES contacts (id) ON DELETE CASCADE,
    call_id       INTEGER REFERENCES calls (id) ON DELETE SET NULL,
    direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    purpose       TEXT    NOT NULL,
    provider      TEXT    NOT NULL,
    provider_sid  TEXT,
    from_number   TEXT    NOT NULL,
    to_number     TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    segments      INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    error_code    INTEGER,
    error_message TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    updated_at    INTEGER NOT NULL,
    UNIQUE (provider, provider_sid)
);
CREATE INDEX messages_contact ON messages (contact_id, created_at);
CREATE INDEX messages_created ON messages (created_at);

-- One row per applied delivery receipt (MessageSid + MessageStatus).
CREATE TABLE delivery_receipts (
    provider    TEXT    NOT NULL,
    message_sid TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error_code  INTEGER,
    at          INTEGER NOT NULL,
    PRIMARY KEY (provider, message_sid, status)
) WITHOUT ROWID;

-- I-Twilio-Idempotency-Token values already applied.
CREATE TABLE webhook_tokens (
    token TEXT    PRIMARY KEY,
    at    INTEGER NOT NULL
) WITHOUT ROWID;

-- The outbox: work to do at a time, committed with the decision that caused it.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    dedupe_key   TEXT,
    contact_id   INTEGER,
    message_id   INTEGER,
    run_at       INTEGER NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled', 'unknown')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    locked_until INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (kind, dedupe_key)
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'pending';
CREATE INDEX jobs_running ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_contact ON jobs (contact_id, state);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
