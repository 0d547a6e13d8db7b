//! The call layer's own timers: one named timer per purpose in a fixed table on
//! each call ([`Timers`]), and one heap of `(when, call, timer)` in the core.
//! Re-arming or stopping a timer, or ending a call, removes nothing from the
//! heap: an entry whose deadline is no longer the table's is skipped.
//!
//! | timer | armed when | on expiry |
//! |---|---|---|
//! | `Ring` | a direct callee's first provisional (`ring_timeout`); a handover leg is placed (8 s), re-armed by each adopting provisional (120 s) | 408 to the caller (`leg.callee_no_answer`); a handover: `cluster.handover_failed` (`handover.rs`) |
//! | `LegacyRing` | a parallel line's legacy leg is placed (the line's ring time) | the call overflows to the line's 12345 queue |
//! | `CancelGuard` | a CANCEL is sent to a callee (64·T1, RFC 3261 §9.1) | the call ends without the INVITE's final response |
//! | `MaxDuration` | a call is answered (`max_duration`) | both legs are hung up (`call.max_duration`) |
//! | `PromptGuard` | a line's prompt starts (its length + 2 s) | the caller is queued as if the relay had reported its end |
//! | `SurveyKey` | the survey prompt starts (its length + the survey timeout) | the survey closes without a rating |
//! | `SurveyThanks` | the thanks start (their length + 2 s) | the caller gets BYE |
//! | `PartyRing` | a three-party call's third leg is placed (30 s) | the third leg is cancelled; the agent's REFER hears 408 (`conference.rs`) |
//! | `Progress` | a call arrives, then every [`PROGRESS_EVERY`] | while the caller's INVITE awaits its final response, its last provisional goes out again (RFC 3261 §13.3.1.1), so that no Timer C on the way (3 min) ends a caller still queued |
//!
//! Expiry is dispatched in `unanswered.rs` (`on_call_timer`).

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use super::{CallKey, Core};

/// The purpose of a call timer: an index into [`Timers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CallTimer {
    Ring,
    LegacyRing,
    CancelGuard,
    MaxDuration,
    PromptGuard,
    SurveyKey,
    SurveyThanks,
    Progress,
    PartyRing,
}

impl CallTimer {
    const COUNT: usize = 9;
}

/// A call's live deadline for each timer.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Timers([Option<Instant>; CallTimer::COUNT]);

impl Timers {
    pub fn get(&self, t: CallTimer) -> Option<Instant> {
        self.0[t as usize]
    }

    pub fn stop(&mut self, t: CallTimer) {
        self.0[t as usize] = None;
    }

    pub fn set(&mut self, t: CallTimer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
}

/// How often a pending caller INVITE's provisional is repeated: under a
/// minute, as RFC 3261 §13.3.1.1 asks, and well under Timer C's 3 minutes.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_secs(50);

impl Core {
    /// The earliest deadline of the transaction layer, the calls, the ACD and the
    /// registrar.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut calls = None;
        while let Some(Reverse((at, key, timer))) = self.sh.timers.peek().copied() {
            if self.call_timer_armed(key, timer, at) {
                calls = Some(at);
                break;
            }
            self.sh.timers.pop();
        }
        [
            calls,
            self.sh.tl.poll_timeout(),
            self.sh.acd.poll_timeout(),
            self.sh.registrar.poll_timeout(),
            self.parked_deadline(),
            self.sh.parting_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.sh.tl.handle_timeout(now);
        self.process_events(now);
        self.expire_parked(now);
        self.sh.expire_partings(now);
        self.sh.acd.handle_timeout(now);
        self.settle(now);
        self.sh.registrar.handle_timeout(now);
        self.drain_registrar(now);
        while let Some(Reverse((at, key, timer))) = self.sh.timers.peek().copied() {
            if at > now {
                break;
            }
            self.sh.timers.pop();
            if self.call_timer_armed(key, timer, at) {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.timers.stop(timer);
                }
                self.on_call_timer(now, key, timer);
                self.process_events(now);
            }
        }
        // The transactions of a burst of set-ups are gone: their index too.
        let (len, cap) = (self.sh.by_tx.len(), self.sh.by_tx.capacity());
        if cap > 256 && len * 4 < cap {
            self.sh.by_tx.shrink_to(len * 2);
        }
    }

    fn call_timer_armed(&self, key: CallKey, timer: CallTimer, at: Instant) -> bool {
        self.calls
            .get(&key)
            .is_some_and(|c| c.timers.get(timer) == Some(at))
    }
}
