-- Call records, the raw event log (JSON, one array per call) and the persisted
-- 15-minute SLA intervals. Times are Unix milliseconds (UTC).
CREATE TABLE call_records (
    id               TEXT PRIMARY KEY,
    sip_call_id      TEXT NOT NULL,
    caller           TEXT NOT NULL,
    called           TEXT NOT NULL,
    original         TEXT,
    line             TEXT,
    mode             TEXT,
    department       TEXT,
    queue            TEXT,
    agent            TEXT,
    answered_by      TEXT,
    transferred_to   TEXT,
    outcome          TEXT,
    reason           TEXT NOT NULL,
    final_code       INTEGER NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    offered_at_ms    INTEGER,
    answered_at_ms   INTEGER,
    ended_at_ms      INTEGER NOT NULL,
    survey           INTEGER,
    recording        TEXT,
    callback_pending INTEGER NOT NULL DEFAULT 0,
    events           TEXT NOT NULL
);
CREATE INDEX call_records_ended ON call_records (ended_at_ms);
CREATE INDEX call_records_callback ON call_records (ended_at_ms) WHERE callback_pending = 1;

CREATE TABLE sla_intervals (
    start_ms        INTEGER NOT NULL,
    dimension       TEXT NOT NULL,
    key             TEXT NOT NULL,
    offered         INTEGER NOT NULL,
    answered        INTEGER NOT NULL,
    answered_within INTEGER NOT NULL,
    abandoned       INTEGER NOT NULL,
    short_abandoned INTEGER NOT NULL,
    transferred_out INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    overflowed      INTEGER NOT NULL,
    PRIMARY KEY (start_ms, dimension, key)
);

CREATE TABLE sla_alerts (
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    dimension   TEXT NOT NULL,
    key         TEXT NOT NULL,
    sla_window  TEXT NOT NULL,
    answer_rate REAL,
    offered     INTEGER NOT NULL,
    target      REAL NOT NULL
);
CREATE INDEX sla_alerts_at ON sla_alerts (at_ms);
