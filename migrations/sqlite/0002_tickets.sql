-- Work-order stubs and their delivery outbox. A stub and its outbox entry are
-- written in one transaction; the outbox is delivered in revision order per stub.
CREATE TABLE tickets (
    id            TEXT PRIMARY KEY,
    line          TEXT,
    state         TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    delivery      TEXT NOT NULL,
    stub          TEXT NOT NULL
);
CREATE INDEX tickets_updated ON tickets (updated_at_ms);
CREATE INDEX tickets_open ON tickets (created_at_ms) WHERE state = 'open';

CREATE TABLE ticket_outbox (
    ticket_id       TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    PRIMARY KEY (ticket_id, revision)
);
CREATE INDEX ticket_outbox_due ON ticket_outbox (next_at_ms) WHERE state = 'pending';
