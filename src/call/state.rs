//! Where a call stands: one [`CallState`] whose variants carry their own data,
//! and who answered ([`AnsweredBy`]).
//!
//! ```text
//!                  ┌──────────── 404 / 403 / 503: a record, no call ──────────────┐
//!  INVITE ─► route ┤                                                              │
//!                  ├─ sip target ───► Ringing ──────── callee 2xx ─────┐          │
//!                  ├─ parallel ─────► Legacy{overflow} ─ seat 2xx ─────┤          │
//!                  │                    │ ring time / ≥300 / Timer B   │          │
//!                  │                    ▼                              ▼          │
//!                  └─ queue ────────► Queued{prompt} ── agent 2xx ─► Connected{by}│
//!                                       │  ▲ ring fails: next agent    │  ▲       │
//!                                       │  └───────────────────────────┘  │       │
//!                                       │              REFER ─► Transferring{by,…}│
//!                                       │                        (done / failed)  │
//!                                       │        agent BYE, survey due ─► Survey(step)
//!                                       ▼                              ▼          │
//!     CANCEL · caller BYE · max wait · ring timeout · media failure ─► Ending ─► record
//! ```
//!
//! `Ending` waits for the BYEs the gateway sent and for a callee INVITE's final
//! response (after its CANCEL); then the call is removed and its record emitted.
//! Facts that outlive a state (the queue the call was in, the agent rung,
//! whether the gateway answered the caller itself) are fields of the call.

use super::transfer::Transfer;

/// One call's state; see the chart above.
#[derive(Debug)]
pub(super) enum CallState {
    /// A line routed straight to a SIP destination rings it; the caller's
    /// INVITE waits for its answer.
    Ringing,
    /// A parallel line's legacy seats ring; unanswered, the call moves to the
    /// 12345 queue `overflow`.
    Legacy { overflow: String },
    /// In the call's ACD queue; an agent being rung is the callee leg. With
    /// `prompt` the line's prompt still plays and the ACD has not been offered
    /// the call yet.
    Queued { prompt: bool },
    /// A person answered.
    Connected { by: AnsweredBy },
    /// An agent's blind transfer: the new leg rings while the agent stays.
    Transferring {
        by: AnsweredBy,
        transfer: Box<Transfer>,
    },
    /// The agent hung up first: the caller rates the call.
    Survey(SurveyStep),
    /// A line out of service (before `effective_from`, after `effective_until`):
    /// the gateway answered and plays its announcement, then hangs up.
    Announcing,
    /// Hanging up: BYEs or the callee INVITE's final response outstanding.
    Ending,
}

impl CallState {
    /// A person has answered (the callee, an agent, a legacy seat), and the
    /// call has not begun to end.
    pub fn answered(&self) -> bool {
        matches!(
            self,
            CallState::Connected { .. } | CallState::Transferring { .. } | CallState::Survey(_)
        )
    }

    /// The name used in logs and the state chart.
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Legacy { .. } => "legacy",
            CallState::Queued { .. } => "queued",
            CallState::Connected { .. } => "connected",
            CallState::Transferring { .. } => "transferring",
            CallState::Survey(_) => "survey",
            CallState::Announcing => "announcing",
            CallState::Ending => "ending",
        }
    }
}

/// Where the satisfaction survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SurveyStep {
    /// The prompt plays, then a key is awaited.
    Asking,
    /// A key came (or none did): the thanks play, then BYE.
    Closing,
}

/// Who answered a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// An agent or static seat of a 12345 queue.
    Seats12345,
    /// A parallel line's legacy seats.
    Legacy,
    /// A line routed straight to a SIP destination (a department's own phone).
    Direct,
}

impl AnsweredBy {
    /// The name in call records and stubs.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Seats12345 => "12345",
            AnsweredBy::Legacy => "legacy",
            AnsweredBy::Direct => "direct",
        }
    }
}
