-- Signed outbound events: each event once, with the JSON body every endpoint receives (its id is what
-- receivers deduplicate on), and one delivery per endpoint that takes it. Erasing a contact erases its events.
CREATE TABLE outbound_events (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE,
    business_id TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    contact_id  INTEGER REFERENCES contacts (id) ON DELETE CASCADE,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX outbound_events_created ON outbound_events (created_at);

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    event_id      INTEGER NOT NULL REFERENCES outbound_events (id) ON DELETE CASCADE,
    business_id   TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,
    -- Deliveries to one endpoint with the same key go in order (the contact's id; NULL for none).
    ordering_key  INTEGER,
    state         TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    response_code INTEGER,
    last_error    TEXT,
    next_at       INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX deliveries_endpoint ON deliveries (business_id, endpoint, id);
CREATE INDEX deliveries_pending ON deliveries (endpoint, ordering_key, id) WHERE state = 'pending';

-- Endpoints that answered 410 Gone: nothing more is sent to them until an owner resumes them.
CREATE TABLE endpoint_pauses (
    business_id TEXT    NOT NULL,
    endpoint    TEXT    NOT NULL,
    paused_at   INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (business_id, endpoint)
);

-- Bookings reported by booking tools; one row per booking, whatever number of times it was delivered.
CREATE TABLE bookings (
    id          INTEGER PRIMARY KEY,
    business_id TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    contact_id  INTEGER REFERENCES contacts (id) ON DELETE CASCADE,
    phone       TEXT,
    email       TEXT,
    name        TEXT,
    title       TEXT,
    value_cents INTEGER,
    starts_at   INTEGER,
    state       TEXT    NOT NULL CHECK (state IN ('booked', 'cancelled', 'rescheduled')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (business_id, source, external_id)
);
CREATE INDEX bookings_contact ON bookings (contact_id);
CREATE INDEX bookings_created ON bookings (business_id, created_at);

ALTER TABLE contacts ADD COLUMN email TEXT;
CREATE INDEX contacts_email ON contacts (business_id, email) WHERE email IS NOT NULL;
