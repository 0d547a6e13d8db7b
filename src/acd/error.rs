//! The ACD layer's one error type.
//!
//! Why: every refusal says which side was wrong: the configuration (a reload is
//! refused and the running configuration stays) or the integrator's input (the
//! call layer or the HTTP API named something the ACD does not know, or asked for a
//! transition the current state does not allow). Neither kind changes any state.

use super::{AgentId, CallId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    // Input side: the call layer or the HTTP API.
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("unknown agent {0:?}")]
    UnknownAgent(AgentId),
    #[error("call {0} is not in the ACD (never offered, or already ended or expired)")]
    UnknownCall(CallId),
    #[error("call {0} is already in the ACD")]
    DuplicateCall(CallId),
    #[error("call {call} is not ringing agent {agent:?}")]
    NotRinging { call: CallId, agent: AgentId },
    #[error("{0:?} is a static member: always logged in, no login or logout")]
    StaticMember(AgentId),
    #[error("agent {0:?} is logged out")]
    NotLoggedIn(AgentId),

    // Configuration side: the whole configuration is refused.
    #[error("config: queue {0:?} defined twice")]
    DuplicateQueue(String),
    #[error("config: agent {0:?} defined twice")]
    DuplicateAgent(AgentId),
    #[error("config: queue {queue:?} lists member {member:?} twice")]
    DuplicateMember { queue: String, member: String },
    #[error("config: queue {queue:?} lists {member:?}, which is not a configured agent")]
    UnknownMember { queue: String, member: AgentId },
    #[error("config: static member {0:?} clashes with an agent id or another target")]
    StaticConflict(String),
    #[error("config: queue {queue:?} overflows to unknown queue {to:?}")]
    UnknownOverflow { queue: String, to: String },
    #[error("config: the overflow chain from queue {0:?} loops instead of ending in a callback")]
    OverflowCycle(String),
    #[error("config: queue {queue:?} has a zero {field}")]
    ZeroDuration { queue: String, field: &'static str },
}

impl AcdError {
    /// Whether the configuration (not an input) was at fault.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            AcdError::DuplicateQueue(_)
                | AcdError::DuplicateAgent(_)
                | AcdError::DuplicateMember { .. }
                | AcdError::UnknownMember { .. }
                | AcdError::StaticConflict(_)
                | AcdError::UnknownOverflow { .. }
                | AcdError::OverflowCycle(_)
                | AcdError::ZeroDuration { .. }
        )
    }
}
