-- Several gateways on one database (issue 16). Used by a single node too: its
-- live calls are closed as interrupted when it starts again.

-- The ACD lease: one row per lease name; its holder answers calls. `epoch`
-- grows whenever the holder changes (a fencing token); `expires_at_ms` is on the
-- database's clock, so nodes' clocks never decide who holds it.
CREATE TABLE cluster_lease (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    epoch         BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Each node's heartbeat (database clock), role and dialplan version.
CREATE TABLE cluster_nodes (
    node         TEXT PRIMARY KEY,
    seen_at_ms   BIGINT NOT NULL,
    role         TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL
);

-- A call in progress, written when it is offered and deleted with its record.
-- `offer` is the offer's JSON (what its work-order stub opened with); the
-- answer's columns are set when it is answered (the agent is then busy at
-- `node`, and a call lost with its node is recorded as answered).
CREATE TABLE live_calls (
    id             TEXT PRIMARY KEY,
    node           TEXT NOT NULL,
    at_ms          BIGINT NOT NULL,
    offer          TEXT NOT NULL,
    agent          TEXT,
    answered_by    TEXT,
    answered_at_ms BIGINT
);
CREATE INDEX live_calls_agent ON live_calls (agent);
CREATE INDEX live_calls_node ON live_calls (node);

-- Dialplan reloads: a node that reloads bumps `generation`; every other node
-- sees the change within a lease renewal and reloads its own copy of the files.
CREATE TABLE cluster_plan (
    name       TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    by_node    TEXT NOT NULL
);

-- What the active node shows of its ACD (`/api/v1/agents`, `/api/v1/queues`),
-- copied every lease period, so that a standby's API and wallboard show the
-- same.
CREATE TABLE cluster_views (
    name  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    body  TEXT NOT NULL
);

-- Agents' registrations, so that the node taking over rings them at once.
CREATE TABLE registrations (
    aor           TEXT NOT NULL,
    contact       TEXT NOT NULL,
    transport     TEXT NOT NULL,
    source        TEXT NOT NULL,
    path          TEXT NOT NULL,
    q             TEXT,
    call_id       TEXT NOT NULL,
    cseq          BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (aor, contact)
);
