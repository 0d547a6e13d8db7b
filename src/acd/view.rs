//! Read-only snapshots for the HTTP API and the wallboard.
//!
//! The serialized field names are part of the public interface (DESIGN.md §4):
//! never rename one, add a new field instead.

use std::time::Instant;

use serde::Serialize;

use super::agent::{Agent, AgentStatus, Pending};
use super::config::Strategy;
use super::{Acd, AgentId, CallId, CallState};

/// One agent or static member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    /// A static member (always logged in, fixed target).
    pub is_static: bool,
    pub state: AgentStatus,
    /// The call it rings for or talks on.
    pub call: Option<CallId>,
    pub pause_reason: Option<String>,
    /// Time in the current state.
    pub in_state_ms: u64,
    pub calls_answered: u64,
    pub missed_in_row: u32,
    /// A logout or pause waits for the current call to end.
    pub change_pending: bool,
    /// The state it waits to go to (`paused`, `logged_out`), and a pause's reason.
    pub pending_state: Option<&'static str>,
    pub pending_reason: Option<String>,
    /// Its phone answers the keepalive OPTIONS (or has not been asked yet);
    /// `false` with any state (a call in progress) as well as `unreachable`.
    pub reachable: bool,
}

/// How many members of a queue are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounts {
    pub logged_out: usize,
    pub ready: usize,
    pub ringing: usize,
    pub on_call: usize,
    pub wrap_up: usize,
    pub paused: usize,
    pub unreachable: usize,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueView {
    pub name: String,
    pub strategy: Strategy,
    /// Callers waiting with no agent ringing.
    pub waiting: usize,
    /// Callers for whom an agent is ringing.
    pub ringing: usize,
    /// The longest wait of a caller still unanswered here, counted from the
    /// original offer (overflowed callers bring their wait along).
    pub longest_wait_ms: u64,
    pub agents: AgentCounts,
}

fn millis(now: Instant, since: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
}

fn agent_view(id: &str, a: &Agent, now: Instant) -> AgentView {
    AgentView {
        id: id.to_owned(),
        name: a.name.clone(),
        is_static: a.is_static(),
        state: a.state.status(),
        call: a.state.call(),
        pause_reason: match &a.state {
            super::AgentState::Paused { reason } => Some(reason.clone()),
            _ => None,
        },
        in_state_ms: millis(now, a.since),
        calls_answered: a.answered,
        missed_in_row: a.missed_in_row,
        change_pending: a.pending.is_some() || a.removed,
        pending_state: match (&a.pending, a.removed) {
            (_, true) | (Some(Pending::Logout), _) => Some("logged_out"),
            (Some(Pending::Pause(_)), false) => Some("paused"),
            (None, false) => None,
        },
        pending_reason: match &a.pending {
            Some(Pending::Pause(r)) => Some(r.clone()),
            _ => None,
        },
        reachable: a.reachable,
    }
}

impl Acd {
    /// Every agent and static member, by id.
    pub fn agents(&self, now: Instant) -> impl Iterator<Item = AgentView> + '_ {
        self.agents
            .iter()
            .map(move |(id, a)| agent_view(id, a, now))
    }

    pub fn agent(&self, id: &str, now: Instant) -> Option<AgentView> {
        self.agents.get(id).map(|a| agent_view(id, a, now))
    }

    /// Whether any member of `queue` is logged in (in any state but logged
    /// out or unreachable; a paused agent is at its desk). Unknown queue: no.
    pub fn staffed(&self, queue: &str) -> bool {
        let Some(&i) = self.queue_index.get(queue) else {
            return false;
        };
        self.queues[i].cfg.members.iter().any(|m| {
            self.agents.get(m.id()).is_some_and(|a| {
                !matches!(
                    a.state.status(),
                    AgentStatus::LoggedOut | AgentStatus::Unreachable
                )
            })
        })
    }

    /// Every queue, in configured order.
    pub fn queues(&self, now: Instant) -> Vec<QueueView> {
        let mut views: Vec<QueueView> = self
            .queues
            .iter()
            .map(|q| {
                let mut agents = AgentCounts::default();
                for m in &q.cfg.members {
                    let Some(a) = self.agents.get(m.id()) else {
                        continue;
                    };
                    *match a.state.status() {
                        AgentStatus::LoggedOut => &mut agents.logged_out,
                        AgentStatus::Ready => &mut agents.ready,
                        AgentStatus::Ringing => &mut agents.ringing,
                        AgentStatus::OnCall => &mut agents.on_call,
                        AgentStatus::WrapUp => &mut agents.wrap_up,
                        AgentStatus::Paused => &mut agents.paused,
                        AgentStatus::Unreachable => &mut agents.unreachable,
                    } += 1;
                }
                QueueView {
                    name: q.cfg.name.clone(),
                    strategy: q.cfg.strategy,
                    waiting: 0,
                    ringing: 0,
                    longest_wait_ms: 0,
                    agents,
                }
            })
            .collect();
        for c in self.calls.values() {
            let Some(&i) = self.queue_index.get(&c.queue) else {
                continue;
            };
            let v = &mut views[i];
            match c.state {
                CallState::Waiting => v.waiting += 1,
                CallState::Ringing { .. } => v.ringing += 1,
                CallState::Connected { .. } => continue,
            }
            v.longest_wait_ms = v.longest_wait_ms.max(millis(now, c.key.offered_at));
        }
        views
    }
}
