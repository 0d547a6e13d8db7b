//! The ACD's named timers, in one table, and their heap.
//!
//! | timer | armed when | deadline | on expiry |
//! |---|---|---|---|
//! | `Ring(call)` | an agent is rung | + queue `ring_timeout` | `CancelRing`, a miss, the call goes back to its place and on to the next agent |
//! | `MaxWait(call)` | a call enters a queue (offer, overflow) | + queue `max_wait` | `Overflow` to the next queue or `Expire` (callback); deferred while an agent rings |
//! | `Widen(call)` | a call with a skill enters a `Skills` queue | + `skill_widen_after` | any member qualifies |
//! | `NextRound(call)` | every qualifying member has been rung for the call | last miss + [`NEXT_ROUND_DELAY`] | the missers may be rung again |
//! | `WrapUp(agent)` | a call of the agent ends | + queue `wrap_up` | the agent is Ready (or Paused, if asked meanwhile) |
//!
//! Each deadline is stored beside its owner (the call or the agent state); heap
//! entries are never removed on cancel, and a popped entry counts only if its owner
//! still holds the same deadline (lazy deletion, as in `sip::transaction::timer`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{AgentId, CallId};

/// How long after its round's last miss a call waits before ringing the same
/// agents again. Why: a seat that fails at once (unreachable contact, DND `486`)
/// would otherwise be re-rung in a tight loop, synchronously inside the driver's
/// command loop, when it is the only member and auto-pause is off.
pub const NEXT_ROUND_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Ring(CallId),
    MaxWait(CallId),
    Widen(CallId),
    NextRound(CallId),
    WrapUp(AgentId),
}

/// Deadlines, earliest first; stale entries included (see the module doc).
#[derive(Debug, Default)]
pub(super) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl TimerHeap {
    pub fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The earliest entry, stale or not.
    pub fn peek(&self) -> Option<&(Instant, Timer)> {
        self.heap.peek().map(|Reverse(e)| e)
    }

    /// Pops the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drops the earliest entry (used to discard stale ones).
    pub fn pop(&mut self) {
        self.heap.pop();
    }
}
