-- Conversation state per contact, call details the engine needs, and the line-type cache.

ALTER TABLE contacts ADD COLUMN state TEXT NOT NULL DEFAULT 'new'
    CHECK (state IN ('new', 'texted', 'replied', 'booked', 'lost', 'opted_out'));
ALTER TABLE contacts ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN needs_reply INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN blocked_at INTEGER;
ALTER TABLE contacts ADD COLUMN booked_at INTEGER;
ALTER TABLE contacts ADD COLUMN booked_value_cents INTEGER;
ALTER TABLE contacts ADD COLUMN last_inbound_at INTEGER;
ALTER TABLE contacts ADD COLUMN last_staff_reply_at INTEGER;
ALTER TABLE contacts ADD COLUMN reached_at INTEGER;

ALTER TABLE calls ADD COLUMN direction TEXT;
ALTER TABLE calls ADD COLUMN stir_verstat TEXT;
ALTER TABLE calls ADD COLUMN answered_by TEXT;
ALTER TABLE calls ADD COLUMN screened_in INTEGER NOT NULL DEFAULT 0;

-- The keyword rule an inbound text matched.
ALTER TABLE messages ADD COLUMN keyword TEXT;
CREATE INDEX messages_contact_direction ON messages (contact_id, direction, created_at);

-- Line types by number (Lookup results, or learned from landline errors), kept 180 days.
CREATE TABLE line_types (
    phone      TEXT    PRIMARY KEY,
    line_type  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL
) WITHOUT ROWID;
