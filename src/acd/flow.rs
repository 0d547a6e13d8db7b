//! State transitions shared by the inputs and the timers: agent state changes (with
//! their events), the end of a ring or a call, requeue, overflow and expiry.

use std::time::Instant;

use super::config::{Overflow, Strategy};
use super::{
    Acd, AcdError, AcdEvent, AgentState, CallId, CallState, Cause, Command, Pending, Timer,
};

impl Acd {
    /// Enters `state` and reports it. A removed agent that logs out is forgotten.
    pub(super) fn set_state(&mut self, id: &str, state: AgentState, now: Instant) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if let AgentState::WrapUp { until } = state {
            self.timers.push(until, Timer::WrapUp(id.to_owned()));
        }
        if state == AgentState::LoggedOut {
            a.pending = None;
            if let super::Seat::Agent { contact } = &mut a.seat {
                *contact = None;
            }
        }
        a.state = state.clone();
        a.since = now;
        let forget = a.removed && state == AgentState::LoggedOut;
        if forget {
            self.agents.remove(id);
        }
        self.events.push_back(AcdEvent::AgentState {
            agent: id.to_owned(),
            state,
        });
    }

    /// Enters Ready (Unreachable while its phone does not answer the
    /// keepalive); `fresh` (after work, login, unpause) restarts the idle clock,
    /// a ring that ended without an answer does not.
    pub(super) fn make_ready(&mut self, id: &str, now: Instant, fresh: bool) {
        if self.agents.get(id).is_some_and(|a| !a.reachable) {
            return self.set_state(id, AgentState::Unreachable, now);
        }
        if let Some(a) = self.agents.get_mut(id)
            && fresh
        {
            self.next_ready_seq += 1;
            a.idle_since = now;
            a.ready_seq = self.next_ready_seq;
        }
        self.set_state(id, AgentState::Ready, now);
    }

    /// The agent's ring ended unanswered: applies a pending logout or pause, else
    /// Ready. `auto_pause` is the queue's miss limit when this was a miss.
    fn end_ring(&mut self, id: &str, now: Instant, auto_pause: Option<u32>) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        let mut next = AgentState::Ready;
        if let Some(limit) = auto_pause {
            a.missed_in_row += 1;
            if limit > 0 && a.missed_in_row >= limit {
                let reason = format!("auto: {} missed calls", a.missed_in_row);
                tracing::info!(agent = id, %reason, "agent auto-paused");
                next = AgentState::Paused { reason };
            }
        }
        match a.pending.take() {
            _ if a.removed => next = AgentState::LoggedOut,
            Some(Pending::Logout) => next = AgentState::LoggedOut,
            Some(Pending::Pause(reason)) if next == AgentState::Ready => {
                next = AgentState::Paused { reason }
            }
            _ => {}
        }
        if next == AgentState::Ready {
            self.make_ready(id, now, false);
        } else {
            self.set_state(id, next, now);
        }
    }

    /// A ring of `call` to `agent` failed or timed out: a miss; the call goes back
    /// to its place, or on to overflow if its max wait passed during the ring.
    pub(super) fn ring_missed(&mut self, now: Instant, call: CallId, agent: &str) {
        let limit = self
            .queue_of(call)
            .map_or(0, |q| q.cfg.auto_pause_after_misses);
        self.end_ring(agent, now, Some(limit));
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.state = CallState::Waiting;
        c.last_miss = Some(now);
        self.waiting.insert(c.key);
        if c.max_wait_due {
            self.leave_queue(now, call, Cause::MaxWait);
        }
    }

    /// Removes `call` in whatever state; the agent it rang or talked to moves on.
    pub(super) fn remove_call(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        let c = self
            .calls
            .remove(&call)
            .ok_or(AcdError::UnknownCall(call))?;
        match c.state {
            CallState::Waiting => {
                self.waiting.remove(&c.key);
            }
            CallState::Ringing { agent, .. } => {
                self.commands.push_back(Command::CancelRing {
                    call,
                    agent: agent.clone(),
                });
                self.end_ring(&agent, now, None);
            }
            CallState::Connected { agent, wrap_up } => {
                // The queue's current setting, if a reload changed it meanwhile.
                let wrap_up = self.queue(&c.queue).map_or(wrap_up, |q| q.cfg.wrap_up);
                let leave = self
                    .agents
                    .get(&agent)
                    .is_some_and(|a| a.removed || a.pending == Some(Pending::Logout));
                if leave {
                    self.set_state(&agent, AgentState::LoggedOut, now);
                } else if wrap_up.is_zero() {
                    self.end_wrap_up(&agent, now);
                } else {
                    let until = now + wrap_up;
                    self.set_state(&agent, AgentState::WrapUp { until }, now);
                }
            }
        }
        self.dispatch(now);
        Ok(())
    }

    /// Wrap-up is over: Ready, or Paused if asked meanwhile.
    fn end_wrap_up(&mut self, id: &str, now: Instant) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        match a.pending.take() {
            Some(Pending::Pause(reason)) => self.set_state(id, AgentState::Paused { reason }, now),
            Some(Pending::Logout) => self.set_state(id, AgentState::LoggedOut, now),
            None => self.make_ready(id, now, true),
        }
    }

    /// Arms max wait and skill widening for a call that just entered its queue.
    pub(super) fn arm_queue_timers(&mut self, call: CallId) {
        let Some(q) = self.queue_of(call).map(|q| q.cfg.clone()) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let max_wait_at = c.entered_at + q.max_wait;
        c.max_wait_at = Some(max_wait_at);
        self.timers.push(max_wait_at, Timer::MaxWait(call));
        c.widen_at = None;
        if q.strategy == Strategy::Skills && c.skill.is_some() && !c.widened {
            if q.skill_widen_after.is_zero() {
                c.widened = true;
            } else {
                let at = c.entered_at + q.skill_widen_after;
                c.widen_at = Some(at);
                self.timers.push(at, Timer::Widen(call));
            }
        }
    }

    /// The call leaves its queue without an answer: on to the overflow queue, or
    /// out of the ACD with a callback. A ringing agent is cancelled first.
    pub(super) fn leave_queue(&mut self, now: Instant, call: CallId, cause: Cause) {
        let overflow = self.queue_of(call).map(|q| q.cfg.overflow.clone());
        self.leave_to(now, call, cause, overflow);
    }

    /// As [`leave_queue`](Self::leave_queue), with the overflow decided by the
    /// caller (a reload decides it from the old configuration).
    pub(super) fn leave_to(
        &mut self,
        now: Instant,
        call: CallId,
        cause: Cause,
        overflow: Option<Overflow>,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let CallState::Ringing { agent, .. } = c.state.clone() {
            c.state = CallState::Waiting;
            self.waiting.insert(c.key);
            self.commands.push_back(Command::CancelRing {
                call,
                agent: agent.clone(),
            });
            self.end_ring(&agent, now, None);
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let from = c.queue.clone();
        match overflow {
            Some(Overflow::Queue(to)) if self.queue_index.contains_key(&to) => {
                tracing::debug!(call, %from, %to, ?cause, "call overflows");
                c.queue = to.clone();
                c.entered_at = now;
                c.tried.clear();
                c.last_miss = None;
                c.next_round_at = None;
                c.max_wait_due = false;
                c.widened = false;
                self.commands.push_back(Command::Overflow {
                    call,
                    from,
                    to,
                    cause,
                });
                self.arm_queue_timers(call);
            }
            _ => {
                tracing::debug!(call, queue = %from, ?cause, "call expires to callback");
                self.waiting.remove(&c.key);
                self.calls.remove(&call);
                self.commands.push_back(Command::Expire {
                    call,
                    queue: from,
                    cause,
                });
            }
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Ring(call) => {
                let Some(CallState::Ringing { agent, .. }) =
                    self.calls.get(&call).map(|c| c.state.clone())
                else {
                    return;
                };
                self.commands.push_back(Command::CancelRing {
                    call,
                    agent: agent.clone(),
                });
                self.ring_missed(now, call, &agent);
            }
            Timer::MaxWait(call) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                c.max_wait_at = None;
                if matches!(c.state, CallState::Ringing { .. }) {
                    // Let the ring run: the agent may answer. See ring_missed().
                    c.max_wait_due = true;
                } else {
                    self.leave_queue(now, call, Cause::MaxWait);
                }
            }
            Timer::Widen(call) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.widen_at = None;
                    c.widened = true;
                }
            }
            Timer::NextRound(call) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.next_round_at = None;
                }
            }
            Timer::WrapUp(agent) => self.end_wrap_up(&agent, now),
        }
    }
}
