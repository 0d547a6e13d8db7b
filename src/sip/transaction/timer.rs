//! The RFC 3261 §17 timer table (plus RFC 6026's L and M), in one place.
//!
//! Why: every retransmission and timeout of the transaction layer is one of these
//! named timers; the earliest armed entry is the layer's next wake-up
//! ([`super::TransactionLayer::poll_timeout`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The base intervals, configurable per deployment (RFC 3261 §17.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Maximum duration a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The named timers. Which transaction kind arms which is in the table below.
///
/// | timer | kind | fires | default |
/// |---|---|---|---|
/// | A | client INVITE | retransmit INVITE (UDP), doubling | T1 |
/// | B | client INVITE | transaction timeout | 64·T1 |
/// | C | INVITE, both sides | no final response in Proceeding (RFC 3261 §16.6), reset by each provisional | 3 min |
/// | C | server non-INVITE | the TU never answered (not in the RFC: a guard against leaks) | 64·T1 |
/// | D | client INVITE | leave Completed (absorb final retransmissions) | 32 s UDP, 0 TCP |
/// | E | client non-INVITE | retransmit request (UDP), doubling to T2 | T1 |
/// | F | client non-INVITE | transaction timeout | 64·T1 |
/// | G | server INVITE | retransmit non-2xx final (UDP), doubling to T2 | T1 |
/// | H | server INVITE | give up waiting for ACK | 64·T1 |
/// | I | server INVITE | leave Confirmed (absorb ACK retransmissions) | T4 UDP, 0 TCP |
/// | J | server non-INVITE | leave Completed | 64·T1 UDP, 0 TCP |
/// | K | client non-INVITE | leave Completed | T4 UDP, 0 TCP |
/// | L | server INVITE | leave Accepted after a 2xx (RFC 6026) | 64·T1 |
/// | M | client INVITE | leave Accepted after a 2xx (RFC 6026) | 64·T1 |
/// | Retransmit2xx | server INVITE | resend 2xx until ACK (RFC 3261 §13.3.1.4) | T1, doubling to T2 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    Retransmit2xx,
}

impl TimerConfig {
    /// 64·T1: the timeout of Timers B, F, H, J (UDP), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer C for INVITE transactions: how long Proceeding may last.
    pub const TIMER_C: Duration = Duration::from_secs(180);

    /// The initial interval of a timer, given whether the transport is reliable.
    pub fn initial(&self, kind: TimerKind, reliable: bool) -> Duration {
        use TimerKind::*;
        match kind {
            A | E | G | Retransmit2xx => self.t1,
            B | F | H | L | M => self.timeout(),
            C => Self::TIMER_C,
            D if reliable => Duration::ZERO,
            D => Duration::from_secs(32).max(self.timeout() / 2),
            I | K if reliable => Duration::ZERO,
            I | K => self.t4,
            J if reliable => Duration::ZERO,
            J => self.timeout(),
        }
    }

    /// The next retransmission interval after `current`: doubling, capped at T2
    /// except for Timer A, which doubles without cap (RFC 3261 §17.1.1.2).
    pub fn backoff(&self, kind: TimerKind, current: Duration) -> Duration {
        match kind {
            TimerKind::A => current * 2,
            _ => (current * 2).min(self.t2),
        }
    }
}

/// The timers a transaction has armed. No transaction kind runs more than three
/// at once, so three (kind, deadline) slots keep each transaction small.
#[derive(Debug, Default, Clone)]
pub struct TimerSlots {
    slots: [Option<(TimerKind, Instant)>; 3],
}

impl TimerSlots {
    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .find(|(k, _)| *k == kind)
            .map(|(_, at)| *at)
    }

    pub fn set(&mut self, kind: TimerKind, at: Instant) {
        let slot = self
            .slots
            .iter()
            .position(|s| s.is_some_and(|(k, _)| k == kind))
            .or_else(|| self.slots.iter().position(Option::is_none))
            .expect("a transaction arms at most three timers at once");
        self.slots[slot] = Some((kind, at));
    }

    pub fn clear(&mut self, kind: TimerKind) {
        for s in &mut self.slots {
            if s.is_some_and(|(k, _)| k == kind) {
                *s = None;
            }
        }
    }
}

/// Below this capacity a table is never shrunk (not worth the rehash).
pub(crate) const SPARSE_MIN: usize = 256;

/// Deadlines of all transactions, earliest first. Entries are never removed when a
/// timer is cancelled: a popped entry counts only if its transaction's slot still
/// holds the same deadline (lazy deletion keeps arming and cancelling O(log n)).
#[derive(Debug)]
pub struct TimerQueue<Id: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, Id, TimerKind)>>,
}

impl<Id: Ord + Copy> Default for TimerQueue<Id> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
        }
    }
}

impl<Id: Ord + Copy> TimerQueue<Id> {
    /// Gives back the room a burst left: a queue a quarter full keeps twice
    /// what it holds.
    pub fn shrink_if_sparse(&mut self) {
        let (len, cap) = (self.heap.len(), self.heap.capacity());
        if cap > SPARSE_MIN && len * 4 < cap {
            self.heap.shrink_to(len * 2);
        }
    }

    pub fn push(&mut self, at: Instant, id: Id, kind: TimerKind) {
        self.heap.push(Reverse((at, id, kind)));
    }

    /// The earliest entry, stale or not.
    pub fn peek(&self) -> Option<(Instant, Id, TimerKind)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Pops the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Id, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drops the earliest entry (used to discard stale ones).
    pub fn pop(&mut self) {
        self.heap.pop();
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_rfc3261_table_4() {
        let c = TimerConfig::default();
        assert_eq!(c.initial(TimerKind::B, false), Duration::from_secs(32));
        assert_eq!(c.initial(TimerKind::D, false), Duration::from_secs(32));
        assert_eq!(c.initial(TimerKind::D, true), Duration::ZERO);
        assert_eq!(c.initial(TimerKind::K, false), Duration::from_secs(5));
        assert_eq!(
            c.backoff(TimerKind::E, Duration::from_secs(4)),
            Duration::from_secs(4)
        );
        assert_eq!(
            c.backoff(TimerKind::A, Duration::from_secs(4)),
            Duration::from_secs(8)
        );
    }
}
