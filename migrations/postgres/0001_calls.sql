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
    final_code       BIGINT NOT NULL,
    received_at_ms   BIGINT NOT NULL,
    offered_at_ms    BIGINT,
    answered_at_ms   BIGINT,
    ended_at_ms      BIGINT NOT NULL,
    survey           BIGINT,
    recording        TEXT,
    callback_pending BIGINT NOT NULL DEFAULT 0,
    events           TEXT NOT NULL
);
CREATE INDEX call_records_ended ON call_records (ended_at_ms);
CREATE INDEX call_records_callback ON call_records (ended_at_ms) WHERE callback_pending = 1;

CREATE TABLE sla_intervals (
    start_ms        BIGINT NOT NULL,
    dimension       TEXT NOT NULL,
    key             TEXT NOT NULL,
    offered         BIGINT NOT NULL,
    answered        BIGINT NOT NULL,
    answered_within BIGINT NOT NULL,
    abandoned       BIGINT NOT NULL,
    short_abandoned BIGINT NOT NULL,
    transferred_out BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    overflowed      BIGINT NOT NULL,
    PRIMARY KEY (start_ms, dimension, key)
);

CREATE TABLE sla_alerts (
    at_ms       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    dimension   TEXT NOT NULL,
    key         TEXT NOT NULL,
    sla_window  TEXT NOT NULL,
    answer_rate DOUBLE PRECISION,
    offered     BIGINT NOT NULL,
    target      DOUBLE PRECISION NOT NULL
);
CREATE INDEX sla_alerts_at ON sla_alerts (at_ms);
