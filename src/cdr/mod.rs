//! Call detail records: what the gateway keeps of every finished call, and the raw
//! event log from which every answer-rate figure can be recomputed.
//!
//! Plain data with stable JSON field names (they are part of the public API:
//! `GET /api/v1/calls`, the CSV export and the database columns). The call core
//! builds records; `sla/` classifies them; `store/` persists them. Times are Unix
//! milliseconds (UTC) so that records survive restarts and compare across nodes.

use serde::{Deserialize, Serialize};

/// One thing that happened to a call, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub kind: EventKind,
    /// What the event is about: a queue, an agent, a number, or a reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The kinds of call events. Their `snake_case` names are stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The caller's INVITE arrived. Detail: the called number as dialled.
    Received,
    /// The call reached a point where a person should answer. Detail: the queue,
    /// `legacy:<line>` for a parallel line's legacy seats, or `sip:<line>` for a
    /// line routed straight to a SIP destination.
    Offered,
    /// The first ringback (18x) was sent to the caller.
    Ringback,
    /// An agent's phone is being rung. Detail: the agent id.
    AgentRinging,
    /// The call left a queue for another. Detail: where it went (same naming as
    /// `Offered`).
    Overflowed,
    /// A person answered. Detail: the agent id, or `legacy`.
    Answered,
    /// An agent transferred the call. Detail: the transfer-directory number.
    TransferredOut,
    /// The caller hung up (or cancelled). Detail: the reason code.
    CallerHungUp,
    /// The callee side (agent, legacy seat, transfer target) hung up. Detail: the
    /// reason code.
    CalleeHungUp,
    /// The gateway ended or refused the call. Detail: the reason code.
    GatewayEnded,
    /// The call reached an ACD queue with no member logged in (7×24
    /// coverage). Detail: the queue.
    Unstaffed,
    /// The call entered an ACD queue: after the line's announcement, or on
    /// overflow from a parallel line's legacy seats. Detail: the queue. The
    /// `queue` offer clock and the `seats` report count from here.
    Queued,
    /// A third party joined the call (a three-party call). Detail: its
    /// directory number.
    PartyJoined,
    /// A party left a three-party call while the others stayed. Detail: the
    /// third party's number, or the agent's id.
    PartyLeft,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::Received,
        EventKind::Offered,
        EventKind::Ringback,
        EventKind::AgentRinging,
        EventKind::Overflowed,
        EventKind::Answered,
        EventKind::TransferredOut,
        EventKind::CallerHungUp,
        EventKind::CalleeHungUp,
        EventKind::GatewayEnded,
        EventKind::Unstaffed,
        EventKind::Queued,
        EventKind::PartyJoined,
        EventKind::PartyLeft,
    ];

    /// The stable name stored in the database and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Offered => "offered",
            EventKind::Ringback => "ringback",
            EventKind::AgentRinging => "agent_ringing",
            EventKind::Overflowed => "overflowed",
            EventKind::Answered => "answered",
            EventKind::TransferredOut => "transferred_out",
            EventKind::CallerHungUp => "caller_hung_up",
            EventKind::CalleeHungUp => "callee_hung_up",
            EventKind::GatewayEnded => "gateway_ended",
            EventKind::Unstaffed => "unstaffed",
            EventKind::Queued => "queued",
            EventKind::PartyJoined => "party_joined",
            EventKind::PartyLeft => "party_left",
        }
    }

    /// The inverse of [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Everything the gateway keeps of one finished call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The gateway's own id for the call, unique across restarts and nodes.
    pub id: String,
    /// The caller's Call-ID (A leg).
    pub sip_call_id: String,
    pub caller: String,
    /// The number the call was routed on.
    pub called: String,
    /// The number the caller originally dialled, when a carrier forwarded the call
    /// (Diversion / History-Info) or it differs from `called`.
    pub original: Option<String>,
    /// The dialplan line, when one matched.
    pub line: Option<String>,
    /// The line's integration mode (`hotline`, `direct_merge`, `call_forwarding`,
    /// `parallel`).
    pub mode: Option<String>,
    pub department: Option<String>,
    /// The trunk the call came in over (`carrier`, a `110` trunk…), when a
    /// trunk's address placed it: both directions of 分流 are counted by it.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The last ACD queue the call was in.
    pub queue: Option<String>,
    /// The agent who answered (or was last rung).
    pub agent: Option<String>,
    /// Who answered: `12345` (an agent or seat of a queue), `legacy` (a parallel
    /// line's legacy seats) or `direct` (a line routed straight to a SIP phone).
    pub answered_by: Option<String>,
    /// The transfer-directory number an agent transferred the call to.
    pub transferred_to: Option<String>,
    /// The SLA outcome (`answered`, `abandoned`, …), or none when the call was never
    /// offered to a person (refused, unknown number).
    pub outcome: Option<String>,
    /// The stable reason code the call ended with.
    pub reason: String,
    /// The final status the caller received for its INVITE.
    pub final_code: u16,
    pub received_at_ms: i64,
    pub offered_at_ms: Option<i64>,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    /// The satisfaction survey digit (1–3), once media collects it.
    pub survey: Option<u8>,
    /// The recording's file name, once media writes one.
    pub recording: Option<String>,
    /// Whether a missed call still waits for a callback (abandoned, or given up at
    /// the queue's max wait). Cleared by an operator.
    pub callback_pending: bool,
    /// The callback's state once one was owed and tried or closed: `pending`,
    /// `in_progress`, `done`, `given_up` (null before the first attempt).
    #[serde(default)]
    pub callback_state: Option<String>,
    /// When the citizen was called back (an answered attempt, or an
    /// operator's mark), Unix ms.
    #[serde(default)]
    pub callback_done_at_ms: Option<i64>,
    pub events: Vec<Event>,
}

impl CallRecord {
    /// The first event of a kind.
    pub fn first(&self, kind: EventKind) -> Option<&Event> {
        self.events.iter().find(|e| e.kind == kind)
    }
}

/// A call answered, as it happens (a cluster node notes it on the call's live
/// row: who holds that agent, and how to record the call if the node dies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The call's id.
    pub id: String,
    pub agent: Option<String>,
    /// `12345`, `legacy` or `direct`.
    pub answered_by: String,
    pub at_ms: i64,
}

/// What became of one attempt to call a citizen back (漏接回拨).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackResult {
    Answered,
    NoAnswer,
    Busy,
    /// The number does not exist or cannot be reached as dialled.
    WrongNumber,
    /// The gateway's or the trunk's side failed.
    Failed,
}

impl CallbackResult {
    pub const ALL: [CallbackResult; 5] = [
        CallbackResult::Answered,
        CallbackResult::NoAnswer,
        CallbackResult::Busy,
        CallbackResult::WrongNumber,
        CallbackResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallbackResult::Answered => "answered",
            CallbackResult::NoAnswer => "no_answer",
            CallbackResult::Busy => "busy",
            CallbackResult::WrongNumber => "wrong_number",
            CallbackResult::Failed => "failed",
        }
    }
}

/// A callback attempt, as it happens: started (an agent dialled the citizen)
/// or ended with its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackEvent {
    Started {
        /// The missed call's id.
        missed: String,
        at_ms: i64,
    },
    Ended(CallbackAttempt),
}

/// One finished attempt to call a citizen back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    /// The attempt's own call record id.
    pub id: String,
    /// The missed call's id.
    pub missed: String,
    /// The agent who dialled.
    pub agent: String,
    /// The number dialled.
    pub number: String,
    /// When the attempt started (Unix ms).
    pub at_ms: i64,
    pub result: CallbackResult,
}

/// A call offered to a person, as it happens: what its work-order stub opens with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The call's id (the record's, and the stub's).
    pub id: String,
    pub sip_call_id: String,
    pub caller: String,
    pub called: String,
    pub original: Option<String>,
    pub line: String,
    pub line_name: String,
    pub mode: String,
    pub department: Option<String>,
    /// The trunk the call came in over.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The department's transfer number (a direct-merged line).
    #[serde(default)]
    pub transfer_number: Option<String>,
    /// The queue, `legacy:<line>` or `sip:<line>`.
    pub offered_to: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Local date (`YYYY-MM-DD`) the work order is due, on the holiday calendar.
    pub deadline: Option<String>,
}
