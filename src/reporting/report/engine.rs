//! Rolls call facts up into a report: per period and key, the totals of the
//! range, the hour-of-day profile and the repeat callers. Pure and streaming:
//! memory grows with the keys and periods of the report, and with the callers
//! of one repeat window, never with the number of calls.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::fact::{CallFact, Part};
use super::tally::Tally;
use super::{HourRow, Report, ReportSpec, Row, Total};
use crate::sla::Outcome;

/// A caller's calls on one key within the repeat window, counted once.
#[derive(Debug, Clone, Copy)]
struct Episode {
    start_ms: i64,
    /// The period it is counted in; `None` when it began before the range (it
    /// only keeps its repeats from counting as new callers).
    period: Option<usize>,
    answered: bool,
}

/// Hour-of-day counts.
#[derive(Debug, Clone, Copy, Default)]
struct HourTally {
    offered: u64,
    counted: u64,
    answered: u64,
    answered_within: u64,
}

/// What one key has counted.
#[derive(Debug)]
struct KeyState {
    periods: Vec<Tally>,
    hours: [HourTally; 24],
}

/// The report under construction. Feed it calls in order of first offer.
#[derive(Debug)]
pub struct Engine {
    spec: ReportSpec,
    periods: Vec<(i64, i64)>,
    /// Per key: a tally per period, and the hour profile.
    keys: HashMap<String, KeyState>,
    /// By hash of (key, caller).
    episodes: HashMap<u64, Episode>,
    purge_at: usize,
    /// The latest first offer seen.
    clock: i64,
}

impl Engine {
    pub fn new(spec: ReportSpec) -> Engine {
        let periods = spec.zone.periods(spec.period, spec.from_ms, spec.to_ms);
        Engine {
            spec,
            periods,
            keys: HashMap::new(),
            episodes: HashMap::new(),
            purge_at: 4096,
            clock: i64::MIN,
        }
    }

    /// From when calls must be fed: the range, and one repeat window before it
    /// (those calls only tell repeat callers from new ones).
    pub fn feed_from_ms(&self) -> i64 {
        self.spec.from_ms - self.spec.repeat_window_ms
    }

    /// Counts one call. Calls offered outside `[feed_from_ms, to)` are ignored.
    pub fn add(&mut self, f: &CallFact) {
        if f.offered_ms < self.feed_from_ms() || f.offered_ms >= self.spec.to_ms {
            return;
        }
        self.clock = self.clock.max(f.offered_ms);
        let period = (f.offered_ms >= self.spec.from_ms).then(|| {
            self.periods
                .partition_point(|p| p.0 <= f.offered_ms)
                .saturating_sub(1)
        });
        let within_ms = self.spec.sla.answer_within_ms();
        for part in f.parts(self.spec.dimension, within_ms) {
            if let Some(pi) = period {
                self.count(pi, &part, f);
            }
            self.repeat(period, &part, f);
        }
        if self.episodes.len() > self.purge_at {
            let oldest = self.clock - self.spec.repeat_window_ms;
            self.episodes.retain(|_, e| e.start_ms > oldest);
            self.purge_at = (self.episodes.len() * 2).max(4096);
        }
    }

    fn count(&mut self, pi: usize, part: &Part<'_>, f: &CallFact) {
        let key = part.key.as_ref();
        if !self.keys.contains_key(key) {
            let state = KeyState {
                periods: vec![Tally::default(); self.periods.len()],
                hours: [HourTally::default(); 24],
            };
            self.keys.insert(key.to_string(), state);
        }
        let Some(k) = self.keys.get_mut(key) else {
            return;
        };
        if let Some(t) = k.periods.get_mut(pi) {
            t.add(part);
        }
        let h = &mut k.hours[self.spec.zone.hour(f.offered_ms)];
        h.offered += 1;
        if part.outcome != Outcome::ShortAbandoned {
            h.counted += 1;
        }
        if part.outcome.is_served() {
            h.answered += 1;
            h.answered_within += u64::from(part.answered_within);
        }
    }

    /// Repeat callers: a call within the window of an episode on the same key
    /// joins it; otherwise it opens one. Short abandons are left out.
    fn repeat(&mut self, period: Option<usize>, part: &Part<'_>, f: &CallFact) {
        if part.outcome == Outcome::ShortAbandoned {
            return;
        }
        let mut h = DefaultHasher::new();
        part.key.hash(&mut h);
        f.caller.hash(&mut h);
        let id = h.finish();
        let served = part.outcome.is_served();
        let window = self.spec.repeat_window_ms;
        let key = part.key.as_ref();
        match self.episodes.get_mut(&id) {
            Some(e) if f.offered_ms - e.start_ms < window => {
                if served && !e.answered {
                    e.answered = true;
                    if let Some(pi) = e.period
                        && let Some(t) = self.tally(key, pi)
                    {
                        t.callers_answered += 1;
                    }
                }
            }
            _ => {
                self.episodes.insert(
                    id,
                    Episode {
                        start_ms: f.offered_ms,
                        period,
                        answered: served,
                    },
                );
                if let Some(pi) = period
                    && let Some(t) = self.tally(key, pi)
                {
                    t.callers += 1;
                    t.callers_answered_first_call += u64::from(served);
                    t.callers_answered += u64::from(served);
                }
            }
        }
    }

    fn tally(&mut self, key: &str, pi: usize) -> Option<&mut Tally> {
        self.keys.get_mut(key)?.periods.get_mut(pi)
    }

    /// The finished report: every key seen, with a row for each period (zeros
    /// where it had no calls), its totals and its hour profile.
    pub fn finish(self) -> Report {
        let spec = &self.spec;
        let zone = spec.zone;
        let mut keys: Vec<(&String, &KeyState)> = self.keys.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let mut rows = Vec::new();
        let mut totals = Vec::new();
        for (key, state) in keys {
            let mut total = Tally::default();
            for (t, &(start, end)) in state.periods.iter().zip(&self.periods) {
                total.merge(t);
                rows.push(Row {
                    period: zone.label(spec.period, start, end),
                    start: zone.rfc3339(start),
                    end: zone.rfc3339(end),
                    start_ms: start,
                    end_ms: end,
                    key: key.clone(),
                    figures: t.figures(),
                });
            }
            let hours = state.hours;
            totals.push(Total {
                key: key.clone(),
                figures: total.figures(),
                peak_hour: peak_hour(&hours),
                worst_hour: worst_hour(&hours, u64::from(spec.sla.min_offered)),
                hours: hours
                    .iter()
                    .enumerate()
                    .map(|(h, t)| HourRow {
                        hour: h as u8,
                        offered: t.offered,
                        counted: t.counted,
                        answered: t.answered,
                        answered_within: t.answered_within,
                        answer_rate: (t.counted > 0).then(|| t.answered as f64 / t.counted as f64),
                    })
                    .collect(),
            });
        }
        Report::new(spec, rows, totals)
    }
}

/// The hour with the most calls offered (the earliest on a tie); none without calls.
fn peak_hour(hours: &[HourTally; 24]) -> Option<u8> {
    let mut best: Option<(usize, u64)> = None;
    for (h, t) in hours.iter().enumerate() {
        if t.offered > 0 && best.is_none_or(|(_, o)| t.offered > o) {
            best = Some((h, t.offered));
        }
    }
    best.map(|(h, _)| h as u8)
}

/// The hour with the lowest answer rate among those with at least `min_counted`
/// counted calls (the earliest on a tie).
fn worst_hour(hours: &[HourTally; 24], min_counted: u64) -> Option<u8> {
    let mut worst: Option<(usize, f64)> = None;
    for (h, t) in hours.iter().enumerate() {
        if t.counted == 0 || t.counted < min_counted {
            continue;
        }
        let rate = t.answered as f64 / t.counted as f64;
        if worst.is_none_or(|(_, r)| rate < r) {
            worst = Some((h, rate));
        }
    }
    worst.map(|(h, _)| h as u8)
}
