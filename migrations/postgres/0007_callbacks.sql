-- Calling citizens back (issue 17): each attempt, and each missed call's
-- callback state (pending, in_progress, done, given_up; null: none owed).
CREATE TABLE callback_attempts (
    id       TEXT PRIMARY KEY,
    missed   TEXT NOT NULL,
    agent    TEXT NOT NULL,
    number   TEXT NOT NULL,
    at_ms    BIGINT NOT NULL,
    result   TEXT NOT NULL
);
CREATE INDEX callback_attempts_missed ON callback_attempts (missed);
ALTER TABLE call_records ADD COLUMN callback_state TEXT;
ALTER TABLE call_records ADD COLUMN callback_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_records ADD COLUMN callback_done_at_ms BIGINT;
