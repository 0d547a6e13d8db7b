//! ACD (automatic call distribution): queues, agents and distribution strategies.
//!
//! Owns: which caller waits in which queue and in what order, each agent's state
//! (logged out, ready, ringing, on call, wrap-up, paused), and which agent to ring
//! next. It is a pure state machine in the sans-IO style of `sip::transaction`: it
//! never reads the clock, never sends SIP, never touches a socket or a store. Every
//! input takes `now`; the driver (the call layer) then drains
//!
//! - [`Acd::poll_command`]: what the call layer must do (ring an agent, cancel a
//!   ring, record an overflow, end a call with a callback record);
//! - [`Acd::poll_event`]: agent state changes, for the HTTP API and metrics;
//! - [`Acd::poll_timeout`]: when to call [`Acd::handle_timeout`] next.
//!
//! A caller's path:
//!
//! ```text
//!  offer ─► Waiting ──(Ready member)──► Ringing ──answered──► Connected ──call_ended──► (agent: WrapUp ─► Ready)
//!             ▲  │                         │
//!             │  │                         ├─ ring_failed / ring timeout: a miss; back to its place ─┐
//!             │  │                         └─ abandon: CancelRing, no miss ─► gone                   │
//!             └──┼─────────────────────────────────────────────────────────────────────────────────┘
//!                ├─ max wait: Overflow ─► Waiting in the next queue (same offer time and place)
//!                ├─ max wait, last queue: Expire (callback) ─► gone
//!                └─ abandon ─► gone
//! ```
//!
//! Must not: send SIP, read the clock, decide routing (the dialplan picks the queue).

mod agent;
mod config;
mod dispatch;
mod error;
mod flow;
mod queue;
mod reload;
mod strategy;
mod timer;
mod view;

#[cfg(test)]
mod reach_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

pub use agent::{AgentState, AgentStatus};
pub use config::{AcdConfig, AgentConfig, Member, Overflow, QueueConfig, Strategy};
pub use error::AcdError;
pub use timer::NEXT_ROUND_DELAY;
pub use view::{AgentCounts, AgentView, QueueView};

use agent::{Agent, Pending, Seat};
use queue::{CallState, Queue, QueuedCall, WaitKey};
use timer::{Timer, TimerHeap};

use crate::util::idmap::IdMap;

/// An agent or static member id, e.g. `"1001"`.
pub type AgentId = String;
/// The call layer's key for a call.
pub type CallId = u64;
pub type QueueName = String;

/// Why a call left a queue other than by being answered or abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// It waited the queue's `max_wait`.
    MaxWait,
    /// Its queue disappeared in a reload.
    QueueRemoved,
}

/// What the call layer must do. Commands come out in the order they must be done
/// (a `CancelRing` before the `Ring` of the same call to the next agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Place a leg to `target` (the agent's login contact or a static URI) and
    /// report `answered`, `ring_failed` or (caller gone) `abandon`. The ACD owns the
    /// ring timeout: it sends `CancelRing` when it expires.
    Ring {
        call: CallId,
        agent: AgentId,
        target: String,
    },
    /// Cancel the ring to `agent`; the caller stays queued (or has abandoned). A
    /// `200 OK` racing this must be ACKed and hung up: the ACD has moved on.
    CancelRing { call: CallId, agent: AgentId },
    /// The call moved from queue `from` to `to`; still in the ACD. For records, SLA
    /// (counted on both queues) and the caller's announcement.
    Overflow {
        call: CallId,
        from: QueueName,
        to: QueueName,
        cause: Cause,
    },
    /// The ACD has dropped the call: end it with a callback record (漏接回拨).
    Expire {
        call: CallId,
        queue: QueueName,
        cause: Cause,
    },
}

impl Command {
    /// The stable reason code (CONVENTIONS.md point 5) for commands that change a
    /// call's fate; `None` for rings.
    pub fn reason_code(&self) -> Option<&'static str> {
        match self {
            Command::Ring { .. } | Command::CancelRing { .. } => None,
            Command::Overflow { cause, .. } => Some(match cause {
                Cause::MaxWait => "acd.max_wait_overflow",
                Cause::QueueRemoved => "acd.queue_removed_overflow",
            }),
            Command::Expire { cause, .. } => Some(match cause {
                Cause::MaxWait => "acd.max_wait_callback",
                Cause::QueueRemoved => "acd.queue_removed_callback",
            }),
        }
    }
}

/// What observers (HTTP API, metrics) are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdEvent {
    /// `agent` entered `state`.
    AgentState { agent: AgentId, state: AgentState },
}

/// The ACD of one gateway.
#[derive(Debug, Default)]
pub struct Acd {
    /// In configured order (the order of views).
    queues: Vec<Queue>,
    queue_index: HashMap<QueueName, usize>,
    /// Agents and static members; ordered by id for stable views.
    agents: BTreeMap<AgentId, Agent>,
    calls: IdMap<CallId, QueuedCall>,
    /// Calls in state Waiting, in dispatch order.
    waiting: BTreeSet<WaitKey>,
    timers: TimerHeap,
    commands: VecDeque<Command>,
    events: VecDeque<AcdEvent>,
    next_seq: u64,
    next_ready_seq: u64,
}

impl Acd {
    /// An ACD with `cfg`: agents logged out, static members Ready.
    pub fn new(cfg: AcdConfig, now: Instant) -> Result<Acd, AcdError> {
        let mut acd = Acd::default();
        acd.reload(cfg, now)?;
        Ok(acd)
    }

    /// Logs `agent` in, to be rung at `contact`; a repeated login updates the
    /// contact (and cancels a logout requested during a call).
    pub fn login(&mut self, agent: &str, contact: String, now: Instant) -> Result<(), AcdError> {
        let a = self.agent_mut(agent)?;
        let Seat::Agent { contact: c } = &mut a.seat else {
            return Err(AcdError::StaticMember(agent.to_owned()));
        };
        *c = Some(contact);
        if a.pending == Some(Pending::Logout) {
            a.pending = None;
        }
        if a.state == AgentState::LoggedOut {
            a.answered = 0;
            a.missed_in_row = 0;
            a.reachable = true;
            self.make_ready(agent, now, true);
            self.dispatch(now);
        }
        Ok(())
    }

    /// Logs `agent` out now, or when its current ring or call ends.
    pub fn logout(&mut self, agent: &str, now: Instant) -> Result<(), AcdError> {
        let a = self.agent_mut(agent)?;
        if a.is_static() {
            return Err(AcdError::StaticMember(agent.to_owned()));
        }
        match a.state {
            AgentState::LoggedOut => {}
            ref s if s.is_busy() => a.pending = Some(Pending::Logout),
            _ => self.set_state(agent, AgentState::LoggedOut, now),
        }
        Ok(())
    }

    /// Pauses `agent` now (cutting a wrap-up short), or after its current call's
    /// wrap-up (or its current ring, if unanswered).
    pub fn pause(&mut self, agent: &str, reason: String, now: Instant) -> Result<(), AcdError> {
        let a = self.agent_mut(agent)?;
        match a.state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn(agent.to_owned())),
            ref s if s.is_busy() => {
                if a.pending != Some(Pending::Logout) {
                    a.pending = Some(Pending::Pause(reason));
                }
            }
            _ => self.set_state(agent, AgentState::Paused { reason }, now),
        }
        Ok(())
    }

    /// Whether `agent`'s phone answers the keepalive. An unreachable agent is
    /// never rung: Ready becomes Unreachable now, and the end of a ring, call,
    /// wrap-up or pause leads to Unreachable instead of Ready; reachable again,
    /// an Unreachable agent is Ready. A call in progress is left alone.
    pub fn set_reachable(
        &mut self,
        agent: &str,
        reachable: bool,
        now: Instant,
    ) -> Result<(), AcdError> {
        let a = self.agent_mut(agent)?;
        if a.is_static() {
            return Err(AcdError::StaticMember(agent.to_owned()));
        }
        a.reachable = reachable;
        match (&a.state, reachable) {
            (AgentState::Ready, false) => self.set_state(agent, AgentState::Unreachable, now),
            (AgentState::Unreachable, true) => {
                self.make_ready(agent, now, true);
                self.dispatch(now);
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes a paused agent Ready, or withdraws a pause requested during a call.
    pub fn unpause(&mut self, agent: &str, now: Instant) -> Result<(), AcdError> {
        let a = self.agent_mut(agent)?;
        match a.state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn(agent.to_owned())),
            AgentState::Paused { .. } => {
                a.missed_in_row = 0;
                self.make_ready(agent, now, true);
                self.dispatch(now);
            }
            _ => {
                if matches!(a.pending, Some(Pending::Pause(_))) {
                    a.pending = None;
                }
            }
        }
        Ok(())
    }

    /// Whether `queue` is one of this ACD's queues.
    pub fn has_queue(&self, queue: &str) -> bool {
        self.queue_index.contains_key(queue)
    }

    /// Queues `call` in `queue`. `skill` is what `Skills` queues match (the line);
    /// `priority` 0 is served first, FIFO within a priority.
    pub fn offer(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        skill: Option<String>,
        priority: u8,
    ) -> Result<(), AcdError> {
        self.offer_since(now, now, call, queue, skill, priority)
    }

    /// [`Acd::offer`] for a call that has waited since `since` (no later than
    /// `now`) elsewhere (another node handed it over): it takes its place
    /// among the calls waiting by that time, and its queue's limits (max
    /// wait) count from it.
    pub fn offer_since(
        &mut self,
        now: Instant,
        since: Instant,
        call: CallId,
        queue: &str,
        skill: Option<String>,
        priority: u8,
    ) -> Result<(), AcdError> {
        let since = since.min(now);
        if !self.queue_index.contains_key(queue) {
            return Err(AcdError::UnknownQueue(queue.to_owned()));
        }
        if self.calls.contains_key(&call) {
            return Err(AcdError::DuplicateCall(call));
        }
        self.next_seq += 1;
        let key = WaitKey {
            priority,
            offered_at: since,
            seq: self.next_seq,
            call,
        };
        let c = QueuedCall {
            queue: queue.to_owned(),
            skill,
            key,
            entered_at: since,
            state: CallState::Waiting,
            tried: Vec::new(),
            last_miss: None,
            next_round_at: None,
            max_wait_at: None,
            max_wait_due: false,
            widen_at: None,
            widened: false,
        };
        self.calls.insert(call, c);
        self.waiting.insert(key);
        self.arm_queue_timers(call);
        self.dispatch(now);
        Ok(())
    }

    /// The agent rung for `call` answered.
    pub fn answered(&mut self, now: Instant, call: CallId, agent: &str) -> Result<(), AcdError> {
        self.ringing(call, agent)?;
        let wrap_up = self
            .queue_of(call)
            .map(|q| q.cfg.wrap_up)
            .unwrap_or_default();
        let c = self.calls.get_mut(&call).expect("checked by ringing()");
        c.state = CallState::Connected {
            agent: agent.to_owned(),
            wrap_up,
        };
        c.max_wait_at = None;
        c.widen_at = None;
        let a = self.agents.get_mut(agent).expect("a ringing agent exists");
        a.answered += 1;
        a.missed_in_row = 0;
        self.set_state(agent, AgentState::OnCall { call }, now);
        Ok(())
    }

    /// The ring to `agent` failed (rejected, busy, unreachable): a miss. The call
    /// goes back to its place and on to the next agent.
    pub fn ring_failed(&mut self, now: Instant, call: CallId, agent: &str) -> Result<(), AcdError> {
        self.ringing(call, agent)?;
        self.ring_missed(now, call, agent);
        self.dispatch(now);
        Ok(())
    }

    /// An answered call ended: its agent starts wrap-up. A call not yet answered
    /// is treated as [`abandon`](Self::abandon).
    pub fn call_ended(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        self.remove_call(now, call)
    }

    /// The caller hung up before an answer: the call leaves the ACD; a ringing
    /// agent is cancelled (`CancelRing`) and is Ready again, with no miss counted.
    pub fn abandon(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        self.remove_call(now, call)
    }

    /// The next command for the call layer.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for observers.
    pub fn poll_event(&mut self) -> Option<AcdEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some((at, timer)) = self.timers.peek() {
            if self.is_armed(timer, *at) {
                return Some(*at);
            }
            self.timers.pop();
        }
        None
    }

    /// Fires every timer due at `now`, distributing after each (so that an agent
    /// whose wrap-up ended takes a caller before that caller's max wait, even when
    /// the driver wakes late).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            if self.is_armed(&timer, at) {
                self.on_timer(now, timer);
                self.dispatch(now);
            }
        }
    }

    /// The queue `call` is in now (it changes on overflow).
    pub fn call_queue(&self, call: CallId) -> Option<&str> {
        self.calls.get(&call).map(|c| c.queue.as_str())
    }

    pub fn agent_state(&self, agent: &str) -> Option<&AgentState> {
        self.agents.get(agent).map(|a| &a.state)
    }

    fn agent_mut(&mut self, agent: &str) -> Result<&mut Agent, AcdError> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.to_owned()))
    }

    fn queue(&self, name: &str) -> Option<&Queue> {
        self.queue_index.get(name).map(|&i| &self.queues[i])
    }

    fn queue_of(&self, call: CallId) -> Option<&Queue> {
        self.calls.get(&call).and_then(|c| self.queue(&c.queue))
    }

    /// Checks that `call` is ringing `agent`.
    fn ringing(&self, call: CallId, agent: &str) -> Result<(), AcdError> {
        let c = self.calls.get(&call).ok_or(AcdError::UnknownCall(call))?;
        match &c.state {
            CallState::Ringing { agent: a, .. } if a == agent => Ok(()),
            _ => Err(AcdError::NotRinging {
                call,
                agent: agent.to_owned(),
            }),
        }
    }

    fn is_armed(&self, timer: &Timer, at: Instant) -> bool {
        match timer {
            Timer::Ring(call) => self.calls.get(call).is_some_and(
                |c| matches!(c.state, CallState::Ringing { until, .. } if until == at),
            ),
            Timer::MaxWait(call) => self
                .calls
                .get(call)
                .is_some_and(|c| c.max_wait_at == Some(at)),
            Timer::Widen(call) => self.calls.get(call).is_some_and(|c| c.widen_at == Some(at)),
            Timer::NextRound(call) => self
                .calls
                .get(call)
                .is_some_and(|c| c.next_round_at == Some(at)),
            Timer::WrapUp(agent) => self
                .agents
                .get(agent)
                .is_some_and(|a| a.state == AgentState::WrapUp { until: at }),
        }
    }
}
