//! What one finished call counts as, computed from its raw event log only, so that
//! history can be recomputed from stored events when a definition changes.

use serde::{Deserialize, Serialize};

use super::{Counters, Dimension, OVERALL_KEY, SlaConfig};
use crate::cdr::{CallRecord, EventKind};

/// The SLA outcome of a call (or of one queue visit). The `snake_case` names are
/// stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A person (agent or legacy seat) answered.
    Answered,
    /// The caller hung up before an answer, after the short-abandon time.
    Abandoned,
    /// The caller hung up within the short-abandon time of the first offer; left out
    /// of the rates' denominator.
    ShortAbandoned,
    /// Answered, then transferred out (emergency, department). Counts as served.
    TransferredOut,
    /// Not answered and not abandoned: the gateway ended it (max-wait callback,
    /// shutdown) or a downstream leg failed.
    Failed,
    /// Only for a queue visit: the call left this queue for another.
    Overflowed,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Answered,
        Outcome::Abandoned,
        Outcome::ShortAbandoned,
        Outcome::TransferredOut,
        Outcome::Failed,
        Outcome::Overflowed,
    ];

    /// The stable name stored in call records and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Abandoned => "abandoned",
            Outcome::ShortAbandoned => "short_abandoned",
            Outcome::TransferredOut => "transferred_out",
            Outcome::Failed => "failed",
            Outcome::Overflowed => "overflowed",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether a person took the call.
    pub fn is_served(self) -> bool {
        matches!(self, Outcome::Answered | Outcome::TransferredOut)
    }
}

/// One stay of a call in one place where a person should answer: a queue, or
/// `legacy:<line>` / `sip:<line>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// The key on the queue dimension (`unknown` when the event had no detail).
    pub queue: String,
    /// When the call was offered here (the overflow time for a later visit).
    pub offered_ms: i64,
    /// `Overflowed` for every visit but the last, which gets the call's outcome.
    pub outcome: Outcome,
    /// Answered here within `answer_within_s` of `offered_ms`.
    pub answered_within: bool,
}

/// A call as the SLA sees it. `None` from [`classify`] means it does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Never `Overflowed`: that is a visit outcome.
    pub outcome: Outcome,
    /// The time of the call's last event; the call counts at this time.
    pub ended_ms: i64,
    pub line: Option<String>,
    pub mode: Option<String>,
    /// From the first offer to the answer; `None` when not answered.
    pub wait_ms: Option<i64>,
    /// Served within `answer_within_s` of the first offer.
    pub answered_within: bool,
    /// It overflowed at least once.
    pub overflowed: bool,
    /// In order; at least one.
    pub visits: Vec<Visit>,
}

/// What one call adds to one key of one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution<'a> {
    pub dimension: Dimension,
    pub key: &'a str,
    pub counters: Counters,
}

impl Classified {
    /// Every (dimension, key, counters) this call adds: overall (`all`) once, its
    /// line and mode once each when known, and one entry per queue visit — an
    /// overflowed call counts as offered + overflowed on each queue it left and with
    /// its outcome on the one it ended in.
    pub fn contributions(&self) -> Vec<Contribution<'_>> {
        let mut call = Counters::one(self.outcome, self.answered_within);
        call.overflowed = u64::from(self.overflowed);
        let mut out = Vec::with_capacity(3 + self.visits.len());
        out.push(Contribution {
            dimension: Dimension::Overall,
            key: OVERALL_KEY,
            counters: call,
        });
        for (dimension, key) in [(Dimension::Line, &self.line), (Dimension::Mode, &self.mode)] {
            if let Some(key) = key {
                out.push(Contribution {
                    dimension,
                    key,
                    counters: call,
                });
            }
        }
        for v in &self.visits {
            out.push(Contribution {
                dimension: Dimension::Queue,
                key: &v.queue,
                counters: Counters::one(v.outcome, v.answered_within),
            });
        }
        out
    }
}

/// Classifies a finished call from `record.events` (plus its routing facts `line`
/// and `mode`). Ignores the record's derived fields (`outcome`, `offered_at_ms`,
/// `answered_at_ms`, `queue`, `ended_at_ms`), so stored events can be re-run.
///
/// Returns `None` when the call was never offered to a person (no `Offered` event:
/// refused, unknown number). Otherwise, reading the events in order from the
/// first `Offered`:
///
/// - `Offered` opens a visit at its detail; a later `Offered` with another detail,
///   or an `Overflowed`, closes the current visit as `Overflowed` and opens one at
///   its detail, offered at that event's time. Both are ignored once answered.
/// - The first `Answered` before the call ended (first `CallerHungUp`,
///   `CalleeHungUp` or `GatewayEnded`) answers the current visit; a
///   `TransferredOut` after it makes the outcome `TransferredOut`.
/// - Unanswered and ended by `CallerHungUp`: `ShortAbandoned` when the hang-up came
///   at most `short_abandon_s` after the first offer, else `Abandoned`.
/// - Anything else unanswered is `Failed`.
pub fn classify(record: &CallRecord, cfg: &SlaConfig) -> Option<Classified> {
    let events = &record.events;
    let first = events.iter().position(|e| e.kind == EventKind::Offered)?;
    let first_offered_ms = events[first].at_ms;
    let ended_ms = events.iter().map(|e| e.at_ms).max()?;

    let mut visits: Vec<Visit> = Vec::new();
    let mut overflowed = false;
    let mut answered_at: Option<i64> = None;
    let mut transferred = false;
    let mut end: Option<(EventKind, i64)> = None;
    for e in &events[first..] {
        let open = answered_at.is_none() && end.is_none();
        match e.kind {
            EventKind::Offered | EventKind::Overflowed if open => {
                let place = e.detail.as_deref().unwrap_or("unknown");
                if let Some(current) = visits.last_mut() {
                    if e.kind == EventKind::Offered && current.queue == place {
                        continue;
                    }
                    current.outcome = Outcome::Overflowed;
                    overflowed = true;
                }
                visits.push(Visit {
                    queue: place.to_string(),
                    offered_ms: e.at_ms,
                    outcome: Outcome::Failed,
                    answered_within: false,
                });
            }
            EventKind::Answered if open => answered_at = Some(e.at_ms),
            EventKind::TransferredOut if answered_at.is_some() => transferred = true,
            EventKind::CallerHungUp | EventKind::CalleeHungUp | EventKind::GatewayEnded
                if end.is_none() =>
            {
                end = Some((e.kind, e.at_ms));
            }
            _ => {}
        }
    }

    let outcome = match (answered_at, end) {
        (Some(_), _) if transferred => Outcome::TransferredOut,
        (Some(_), _) => Outcome::Answered,
        (None, Some((EventKind::CallerHungUp, at))) => {
            if at - first_offered_ms <= cfg.short_abandon_ms() {
                Outcome::ShortAbandoned
            } else {
                Outcome::Abandoned
            }
        }
        (None, _) => Outcome::Failed,
    };
    let within = cfg.answer_within_ms();
    // The wait's start: the first offer, or (the `queue` clock) the first
    // entry into an ACD queue when the call made one.
    let clock_ms = match cfg.offer_clock {
        super::OfferClock::Arrival => first_offered_ms,
        super::OfferClock::Queue => events[first..]
            .iter()
            .find(|e| e.kind == EventKind::Queued)
            .map_or(first_offered_ms, |e| e.at_ms),
    };
    let wait_ms = answered_at.map(|at| (at - clock_ms).max(0));
    let last = visits.last_mut()?;
    last.outcome = outcome;
    last.answered_within = answered_at.is_some_and(|at| at - last.offered_ms <= within);

    Some(Classified {
        outcome,
        ended_ms,
        line: record.line.clone(),
        mode: record.mode.clone(),
        wait_ms,
        answered_within: wait_ms.is_some_and(|w| w <= within),
        overflowed,
        visits,
    })
}
