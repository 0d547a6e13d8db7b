//! Queues and the calls in them.
//!
//! Ordering: every waiting call of every queue sits in one set ordered by
//! [`WaitKey`]: priority (0 first), then original offer time, then offer order. The
//! key is fixed at offer and never changes, so a call whose ring failed goes back
//! to its own place (ahead of every later caller) and a call that overflows keeps
//! its seniority in the target queue.

use std::time::{Duration, Instant};

use super::config::QueueConfig;
use super::{AgentId, CallId};

/// A queue's configuration and the little runtime state it needs.
#[derive(Debug)]
pub(super) struct Queue {
    pub cfg: QueueConfig,
    /// The member rung last (the round-robin pointer), by id so that it survives a
    /// reload that reorders members.
    pub rr_last: Option<AgentId>,
}

impl Queue {
    pub fn member_index(&self, id: &str) -> Option<usize> {
        self.cfg.members.iter().position(|m| m.id() == id)
    }
}

/// A waiting call's place; field order is the dispatch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct WaitKey {
    pub priority: u8,
    pub offered_at: Instant,
    pub seq: u64,
    pub call: CallId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallState {
    /// In the waiting set.
    Waiting,
    Ringing {
        agent: AgentId,
        until: Instant,
    },
    /// Answered; the ACD keeps the call only to start the agent's wrap-up.
    Connected {
        agent: AgentId,
        /// The wrap-up of the queue that answered, used if a reload removes the
        /// queue before the call ends (otherwise its current setting applies).
        wrap_up: Duration,
    },
}

/// A call the ACD distributes.
#[derive(Debug)]
pub(super) struct QueuedCall {
    /// The queue it is in now (changes on overflow).
    pub queue: String,
    pub skill: Option<String>,
    pub key: WaitKey,
    /// When it entered `queue` (max wait and skill widening count from here).
    pub entered_at: Instant,
    pub state: CallState,
    /// Agents rung for it in this round.
    pub tried: Vec<AgentId>,
    /// When its last ring failed or timed out.
    pub last_miss: Option<Instant>,
    /// The round is over and the next one may not start before this instant.
    pub next_round_at: Option<Instant>,
    pub max_wait_at: Option<Instant>,
    /// Max wait passed while an agent was ringing: overflow when that ring fails.
    pub max_wait_due: bool,
    pub widen_at: Option<Instant>,
    /// Skill widening happened: any member qualifies.
    pub widened: bool,
}

impl QueuedCall {
    /// Not yet answered: waiting or ringing.
    pub fn is_queued(&self) -> bool {
        !matches!(self.state, CallState::Connected { .. })
    }
}
