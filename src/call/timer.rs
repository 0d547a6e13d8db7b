//! The call layer's own timers, in one table: a heap of `(when, call, timer)`,
//! and on the call a field holding the live deadline of each. Re-arming a timer
//! or ending a call removes nothing from the heap: a stale entry is skipped when
//! it comes up.
//!
//! | timer | armed when | on expiry |
//! |---|---|---|
//! | `Ring` | a direct callee's first provisional (`ring_timeout`); a parallel line's legacy leg (its ring time); a CANCEL sent to a callee (64·T1) | a parallel call overflows to 12345; after a CANCEL the call is finished; otherwise 408 to the caller (`leg.callee_no_answer`) |
//! | `MaxDuration` | a call is answered (`max_duration`) | both legs are hung up (`call.max_duration`) |
//! | `Survey` | the survey prompt starts, its key is awaited, its thanks play | see `media_flow.rs` (`on_survey_timer`): the next step of the survey, or its end |
//! | `Progress` | a call arrives, then every [`PROGRESS_EVERY`] | while the caller's INVITE awaits its final response, its last provisional goes out again (RFC 3261 §13.3.1.1), so that no Timer C on the way (3 min) ends a caller still queued |
//!
//! Expiry is handled in `unanswered.rs` (`on_call_timer`).

use std::cmp::Reverse;
use std::time::Instant;

use super::{CallKey, Core};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CallTimer {
    Ring,
    MaxDuration,
    /// The satisfaction survey waits for a key, or for its thanks to end.
    Survey,
    /// The caller's pending INVITE gets its provisional again.
    Progress,
}

/// How often a pending caller INVITE's provisional is repeated: under a
/// minute, as RFC 3261 §13.3.1.1 asks, and well under Timer C's 3 minutes.
pub(super) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(50);

impl Core {
    /// The earliest deadline of the transaction layer, the calls, the ACD and the
    /// registrar.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut calls = None;
        while let Some(Reverse((at, key, timer))) = self.timers.peek().copied() {
            if self.call_timer_armed(key, timer, at) {
                calls = Some(at);
                break;
            }
            self.timers.pop();
        }
        [
            calls,
            self.tl.poll_timeout(),
            self.acd.poll_timeout(),
            self.registrar.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tl.handle_timeout(now);
        self.process_events(now);
        self.acd.handle_timeout(now);
        self.drain_acd(now);
        self.registrar.handle_timeout(now);
        self.drain_registrar(now);
        while let Some(Reverse((at, key, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.call_timer_armed(key, timer, at) {
                self.on_call_timer(now, key, timer);
                self.process_events(now);
            }
        }
    }

    pub(super) fn call_timer_armed(&self, key: CallKey, timer: CallTimer, at: Instant) -> bool {
        self.calls.get(&key).is_some_and(|c| match timer {
            CallTimer::Ring => c.ring_deadline == Some(at),
            CallTimer::MaxDuration => c.end_deadline == Some(at),
            CallTimer::Survey => c.survey_deadline == Some(at),
            CallTimer::Progress => c.progress_deadline == Some(at),
        })
    }

    pub(super) fn arm_call_timer(&mut self, key: CallKey, timer: CallTimer, at: Instant) {
        if let Some(c) = self.calls.get_mut(&key) {
            match timer {
                CallTimer::Ring => c.ring_deadline = Some(at),
                CallTimer::MaxDuration => c.end_deadline = Some(at),
                CallTimer::Survey => c.survey_deadline = Some(at),
                CallTimer::Progress => c.progress_deadline = Some(at),
            }
            self.timers.push(Reverse((at, key, timer)));
        }
    }
}
