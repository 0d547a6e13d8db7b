//! The counts behind every figure, and the two rates computed from them.

use serde::{Deserialize, Serialize};

use super::Outcome;

/// Calls counted by outcome over some span (a second, an interval, a window).
///
/// `answered`, `abandoned`, `short_abandoned`, `transferred_out` and `failed` are
/// disjoint outcomes; `answered_within` is a subset of answered + transferred out;
/// `overflowed` counts calls that left a queue for another (on a queue: the visits
/// that ended so; elsewhere: calls that overflowed at least once), in addition to
/// their outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub offered: u64,
    pub answered: u64,
    pub answered_within: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub transferred_out: u64,
    pub failed: u64,
    pub overflowed: u64,
}

impl Counters {
    /// One offered call (or visit) with this outcome.
    pub fn one(outcome: Outcome, answered_within: bool) -> Counters {
        let mut c = Counters {
            offered: 1,
            answered_within: u64::from(answered_within),
            ..Counters::default()
        };
        match outcome {
            Outcome::Answered => c.answered = 1,
            Outcome::Abandoned => c.abandoned = 1,
            Outcome::ShortAbandoned => c.short_abandoned = 1,
            Outcome::TransferredOut => c.transferred_out = 1,
            Outcome::Failed => c.failed = 1,
            Outcome::Overflowed => c.overflowed = 1,
        }
        c
    }

    pub fn add(&mut self, o: &Counters) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within += o.answered_within;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.transferred_out += o.transferred_out;
        self.failed += o.failed;
        self.overflowed += o.overflowed;
    }

    /// The inverse of [`Counters::add`]. Saturates at zero: removing more than was
    /// added is a bug, caught in debug builds.
    pub fn sub(&mut self, o: &Counters) {
        fn take(a: &mut u64, b: u64) {
            debug_assert!(*a >= b, "SLA counter underflow");
            *a = a.saturating_sub(b);
        }
        take(&mut self.offered, o.offered);
        take(&mut self.answered, o.answered);
        take(&mut self.answered_within, o.answered_within);
        take(&mut self.abandoned, o.abandoned);
        take(&mut self.short_abandoned, o.short_abandoned);
        take(&mut self.transferred_out, o.transferred_out);
        take(&mut self.failed, o.failed);
        take(&mut self.overflowed, o.overflowed);
    }

    pub fn is_empty(&self) -> bool {
        *self == Counters::default()
    }

    /// The denominator of both rates: offered − short-abandoned.
    pub fn counted(&self) -> u64 {
        self.offered.saturating_sub(self.short_abandoned)
    }

    /// Calls a person took: answered + transferred out.
    pub fn served(&self) -> u64 {
        self.answered + self.transferred_out
    }

    /// (answered + transferred out) / (offered − short-abandoned); `None` when
    /// nothing counts.
    pub fn answer_rate(&self) -> Option<f64> {
        ratio(self.served(), self.counted())
    }

    /// answered within `answer_within_s` / (offered − short-abandoned); `None` when
    /// nothing counts.
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within, self.counted())
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}
