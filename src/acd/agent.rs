//! Agents (and static members) as the ACD sees them: state, counters, requests
//! waiting for the current call to end.

use std::time::Instant;

use super::CallId;

/// An agent's state. Changes are reported as [`super::AcdEvent::AgentState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    /// Idle and offered calls.
    Ready,
    /// Being rung for `call`.
    Ringing {
        call: CallId,
    },
    /// Talking on `call`.
    OnCall {
        call: CallId,
    },
    /// After a call, not offered calls until `until`.
    WrapUp {
        until: Instant,
    },
    /// Logged in, not offered calls. Auto-pauses have reasons starting with `auto:`.
    Paused {
        reason: String,
    },
    /// Logged in, but its phone does not answer the keepalive: not offered
    /// calls until it does (or registers) again.
    Unreachable,
}

impl AgentState {
    pub fn status(&self) -> AgentStatus {
        match self {
            AgentState::LoggedOut => AgentStatus::LoggedOut,
            AgentState::Ready => AgentStatus::Ready,
            AgentState::Ringing { .. } => AgentStatus::Ringing,
            AgentState::OnCall { .. } => AgentStatus::OnCall,
            AgentState::WrapUp { .. } => AgentStatus::WrapUp,
            AgentState::Paused { .. } => AgentStatus::Paused,
            AgentState::Unreachable => AgentStatus::Unreachable,
        }
    }

    /// The call the agent is ringing for or talking on.
    pub fn call(&self) -> Option<CallId> {
        match self {
            AgentState::Ringing { call } | AgentState::OnCall { call } => Some(*call),
            _ => None,
        }
    }

    /// Ringing or on a call: requests to log out or pause wait for the call to end.
    pub fn is_busy(&self) -> bool {
        self.call().is_some()
    }
}

/// The state without its data: stable names for JSON and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    LoggedOut,
    Ready,
    Ringing,
    OnCall,
    WrapUp,
    Paused,
    Unreachable,
}

/// Where a seat is rung.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seat {
    /// A configured agent; `contact` is set while logged in.
    Agent { contact: Option<String> },
    /// A static member: always logged in.
    Static { target: String },
}

/// What the agent asked for while busy, applied when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pending {
    Logout,
    Pause(String),
}

/// One seat's runtime state. Every field is what a strategy, a view or a
/// deferred request needs.
#[derive(Debug)]
pub(super) struct Agent {
    pub name: String,
    pub skills: Vec<(String, u8)>,
    pub seat: Seat,
    pub state: AgentState,
    /// When `state` was entered (for views).
    pub since: Instant,
    /// When the agent last became Ready after work; a miss does not reset it.
    pub idle_since: Instant,
    /// Order of becoming Ready, to break `idle_since` ties deterministically.
    pub ready_seq: u64,
    /// Calls answered since login (FewestCalls, views).
    pub answered: u64,
    /// Consecutive misses (auto-pause); reset by an answer, login or unpause.
    pub missed_in_row: u32,
    pub pending: Option<Pending>,
    /// Gone from the configuration: logged out and forgotten once idle.
    pub removed: bool,
    /// Its phone answers the keepalive (or has not been asked yet). While not,
    /// it is `Unreachable` instead of `Ready`.
    pub reachable: bool,
}

impl Agent {
    pub fn new(name: String, skills: Vec<(String, u8)>, seat: Seat, now: Instant) -> Agent {
        Agent {
            name,
            skills,
            seat,
            state: AgentState::LoggedOut,
            since: now,
            idle_since: now,
            ready_seq: 0,
            answered: 0,
            missed_in_row: 0,
            pending: None,
            removed: false,
            reachable: true,
        }
    }

    pub fn is_static(&self) -> bool {
        matches!(self.seat, Seat::Static { .. })
    }

    /// Where to ring the seat.
    pub fn target(&self) -> Option<&str> {
        match &self.seat {
            Seat::Agent { contact } => contact.as_deref(),
            Seat::Static { target } => Some(target),
        }
    }

    /// Logged in, not paused and reachable: counts for a distribution round.
    pub fn is_available(&self) -> bool {
        !matches!(
            self.state,
            AgentState::LoggedOut | AgentState::Paused { .. } | AgentState::Unreachable
        )
    }

    pub fn skill_priority(&self, skill: &str) -> Option<u8> {
        self.skills
            .iter()
            .find(|(s, _)| s == skill)
            .map(|(_, p)| *p)
    }
}
