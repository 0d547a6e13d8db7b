//! Work-order (工单) stubs: the facts of a call, handed to the hotline's ticket
//! system so that an agent can complete the work order.
//!
//! A stub opens when a call is offered (it enters a queue, or rings a parallel
//! line's legacy seats); its id is the call's id and travels in the agent's INVITE
//! (`X-Hotline-Ticket`). When the call ends the stub gets its final revision with
//! the outcome. Each revision is a full snapshot (`docs/ticket-stub.schema.json`,
//! schema `hotline.ticket-stub/v1`), written to the store with its outbox entry in
//! one transaction, then POSTed by [`deliver`] in revision order, at least once,
//! with an idempotency key.
//!
//! This module builds stubs (pure) and runs the delivery loop; the SQL lives in
//! `store/`.

pub mod deliver;

use serde::{Deserialize, Serialize};

use crate::cdr::{CallRecord, EventKind, Offer};
use crate::util::time::rfc3339;

/// The schema name and version every stub carries.
pub const SCHEMA: &str = "hotline.ticket-stub/v1";

/// Where a work order stands, as far as the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StubState {
    /// Offered, not yet ended: an agent may be on it.
    Open,
    /// An agent of 12345 answered.
    Answered,
    /// Missed (abandoned, given up at the queue's max wait, turned away): call the
    /// citizen back (漏接回拨).
    Callback,
    /// A parallel line's legacy seats answered (shared for the record).
    LegacyAnswered,
    /// An agent passed the call to the transfer directory (110, 119, 120, 122…).
    Transferred,
    /// Ended by a failure on the gateway's or the callee's side.
    Failed,
    /// The gateway restarted while the call was in progress.
    Interrupted,
}

impl StubState {
    pub const ALL: [StubState; 7] = [
        StubState::Open,
        StubState::Answered,
        StubState::Callback,
        StubState::LegacyAnswered,
        StubState::Transferred,
        StubState::Failed,
        StubState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StubState::Open => "open",
            StubState::Answered => "answered",
            StubState::Callback => "callback",
            StubState::LegacyAnswered => "legacy_answered",
            StubState::Transferred => "transferred",
            StubState::Failed => "failed",
            StubState::Interrupted => "interrupted",
        }
    }
}

/// One revision of a stub (`hotline.ticket-stub/v1`). Field names are a contract
/// with the ticket system: add fields, never rename one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stub {
    pub schema: String,
    /// The stub's id: the call's id, unique across restarts.
    pub id: String,
    /// 1 when opened, 2 when completed, more when the survey or recording is
    /// attached later.
    pub revision: u32,
    pub state: StubState,
    /// The caller's SIP Call-ID.
    pub call_id: String,
    pub line: Option<String>,
    pub line_name: Option<String>,
    pub mode: Option<String>,
    pub department: Option<String>,
    /// The trunk the call came in over (a 110 trunk for calls 110 handed over).
    #[serde(default)]
    pub trunk: Option<String>,
    /// A direct-merged department's transfer number (its old number): where
    /// an agent transfers the citizen to reach the department itself.
    #[serde(default)]
    pub transfer_number: Option<String>,
    pub caller: String,
    pub called: String,
    pub original: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub answered_by: Option<String>,
    pub transferred_to: Option<String>,
    /// The SLA outcome once ended.
    pub outcome: Option<String>,
    /// The stable reason code once ended.
    pub reason: Option<String>,
    /// RFC 3339 UTC.
    pub offered_at: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// Local date (`YYYY-MM-DD`) by which the work order is due: the line's
    /// working days on the holiday calendar.
    pub deadline: Option<String>,
    pub survey: Option<u8>,
    pub recording: Option<String>,
}

/// The stub a call opens when it is offered.
pub fn open(offer: &Offer) -> Stub {
    Stub {
        schema: SCHEMA.into(),
        id: offer.id.clone(),
        revision: 1,
        state: StubState::Open,
        call_id: offer.sip_call_id.clone(),
        line: Some(offer.line.clone()),
        line_name: Some(offer.line_name.clone()),
        mode: Some(offer.mode.clone()),
        department: offer.department.clone(),
        trunk: offer.trunk.clone(),
        transfer_number: offer.transfer_number.clone(),
        caller: offer.caller.clone(),
        called: offer.called.clone(),
        original: offer.original.clone(),
        queue: Some(offer.offered_to.clone()),
        agent: None,
        answered_by: None,
        transferred_to: None,
        outcome: None,
        reason: None,
        offered_at: rfc3339(offer.at_ms),
        answered_at: None,
        ended_at: None,
        deadline: offer.deadline.clone(),
        survey: None,
        recording: None,
    }
}

/// The final revision of a call's stub, from its record (whose `outcome` is set).
/// `None` for calls never offered to a person: they open no work order.
pub fn complete(
    record: &CallRecord,
    line_name: Option<String>,
    deadline: Option<String>,
) -> Option<Stub> {
    let outcome = record.outcome.as_deref()?;
    let state = if record.first(EventKind::TransferredOut).is_some() {
        StubState::Transferred
    } else if record.answered_by.as_deref() == Some("legacy") {
        StubState::LegacyAnswered
    } else if record.answered_at_ms.is_some() {
        StubState::Answered
    } else if record.callback_pending {
        // Missed and owed a callback, as the call list says: abandoned, given
        // up, turned away; a short abandon only under `[sla]
        // callback_short_abandoned` (otherwise `failed`, its `outcome` saying
        // `short_abandoned`).
        StubState::Callback
    } else {
        StubState::Failed
    };
    let offered = record.offered_at_ms.unwrap_or(record.received_at_ms);
    Some(Stub {
        schema: SCHEMA.into(),
        id: record.id.clone(),
        revision: 2,
        state,
        call_id: record.sip_call_id.clone(),
        line: record.line.clone(),
        line_name,
        mode: record.mode.clone(),
        department: record.department.clone(),
        trunk: record.trunk.clone(),
        transfer_number: None,
        caller: record.caller.clone(),
        called: record.called.clone(),
        original: record.original.clone(),
        queue: record.queue.clone(),
        agent: record
            .agent
            .clone()
            .filter(|_| record.answered_at_ms.is_some()),
        answered_by: record.answered_by.clone(),
        transferred_to: record.transferred_to.clone(),
        outcome: Some(outcome.to_string()),
        reason: Some(record.reason.clone()),
        offered_at: rfc3339(offered),
        answered_at: record.answered_at_ms.map(rfc3339),
        ended_at: Some(rfc3339(record.ended_at_ms)),
        deadline,
        survey: record.survey,
        recording: record.recording.clone(),
    })
}

/// The final revision of a stub whose call was cut short by a restart.
pub fn interrupted(open: &Stub, now_ms: i64) -> Stub {
    Stub {
        revision: open.revision + 1,
        state: StubState::Interrupted,
        outcome: Some("failed".into()),
        reason: Some("gateway.restart".into()),
        ended_at: Some(rfc3339(now_ms)),
        ..open.clone()
    }
}

#[cfg(test)]
mod tests;
