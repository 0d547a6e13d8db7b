//! The ACD's own configuration types and the invariants the state machine relies on.
//!
//! Why: the config layer owns the file format (TOML, `deny_unknown_fields`, file and
//! line in errors) and builds these plain structs; [`AcdConfig::validate`] checks what
//! only the ACD can know (members exist, overflow chains end in a callback), so that
//! a bad reload is refused and the running configuration keeps working.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{AcdError, AgentId};

/// How a queue chooses among its Ready members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The member Ready the longest (oldest `idle_since`).
    #[default]
    LongestIdle,
    /// A pointer rotating over the member list in configured order.
    RoundRobin,
    /// Fewest calls answered since login; ties go to the longest idle.
    FewestCalls,
    /// Members having the call's skill, best (lowest) priority number first, then
    /// longest idle; after `skill_widen_after` of waiting any member qualifies.
    Skills,
}

/// Where a caller goes after `max_wait` in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// Into another queue, keeping the original offer time (and place) of the caller.
    Queue(String),
    /// Out of the ACD: the call layer ends the call and records a callback (漏接回拨).
    Callback,
}

/// One seat a queue can ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A configured agent, rung at the contact it logged in with.
    Agent(AgentId),
    /// A fixed SIP destination (a legacy seat, a desk phone without REGISTER): always
    /// logged in, one call at a time. The same id in several queues is one seat.
    Static { id: String, target: String },
}

impl Member {
    pub fn id(&self) -> &str {
        match self {
            Member::Agent(id) => id,
            Member::Static { id, .. } => id,
        }
    }
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: Strategy,
    /// How long one agent rings before the call moves on (a miss).
    pub ring_timeout: Duration,
    /// Time after a call during which the agent gets no new call.
    pub wrap_up: Duration,
    /// Longest wait in this queue (counted from entering it) before `overflow`.
    pub max_wait: Duration,
    pub overflow: Overflow,
    /// With [`Strategy::Skills`]: after this wait in the queue any member qualifies.
    pub skill_widen_after: Duration,
    /// Consecutive misses after which an agent is paused; 0 never pauses.
    pub auto_pause_after_misses: u32,
    /// In configured order (the round-robin order).
    pub members: Vec<Member>,
}

/// One agent seat that may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    /// (skill, priority): a skill is e.g. a line number; priority 1 is the best.
    pub skills: Vec<(String, u8)>,
}

/// Everything the ACD is configured with; replaced as a whole by `reload`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcdConfig {
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
}

impl AcdConfig {
    /// Checks the invariants the state machine relies on.
    pub fn validate(&self) -> Result<(), AcdError> {
        let mut agents = HashSet::new();
        for a in &self.agents {
            if !agents.insert(a.id.as_str()) {
                return Err(AcdError::DuplicateAgent(a.id.clone()));
            }
        }
        let mut queues = HashMap::new();
        for q in &self.queues {
            if queues.insert(q.name.as_str(), q).is_some() {
                return Err(AcdError::DuplicateQueue(q.name.clone()));
            }
            if q.ring_timeout.is_zero() {
                return Err(zero(q, "ring_timeout"));
            }
            if q.max_wait.is_zero() {
                return Err(zero(q, "max_wait"));
            }
        }
        let mut statics: HashMap<&str, &str> = HashMap::new();
        for q in &self.queues {
            let mut seen = HashSet::new();
            for m in &q.members {
                if !seen.insert(m.id()) {
                    return Err(AcdError::DuplicateMember {
                        queue: q.name.clone(),
                        member: m.id().to_owned(),
                    });
                }
                match m {
                    Member::Agent(id) if !agents.contains(id.as_str()) => {
                        return Err(AcdError::UnknownMember {
                            queue: q.name.clone(),
                            member: id.clone(),
                        });
                    }
                    Member::Agent(_) => {}
                    Member::Static { id, target } => {
                        let clash = agents.contains(id.as_str())
                            || statics.insert(id, target).is_some_and(|t| t != target);
                        if clash {
                            return Err(AcdError::StaticConflict(id.clone()));
                        }
                    }
                }
            }
        }
        for q in &self.queues {
            // Each chain must end in a callback: a caller never waits unbounded.
            let mut seen = HashSet::from([q.name.as_str()]);
            let mut at: &QueueConfig = q;
            while let Overflow::Queue(to) = &at.overflow {
                let Some(next) = queues.get(to.as_str()) else {
                    return Err(AcdError::UnknownOverflow {
                        queue: at.name.clone(),
                        to: to.clone(),
                    });
                };
                if !seen.insert(to) {
                    return Err(AcdError::OverflowCycle(q.name.clone()));
                }
                at = *next;
            }
        }
        Ok(())
    }
}

fn zero(q: &QueueConfig, field: &'static str) -> AcdError {
    AcdError::ZeroDuration {
        queue: q.name.clone(),
        field,
    }
}
