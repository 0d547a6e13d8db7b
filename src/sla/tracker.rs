//! The live answer-rate state: rolling figures per dimension and key, breach
//! latches, the overall 15-minute intervals of the last 24 h, and alerts.

use std::collections::{HashMap, VecDeque};

use super::breach::Latch;
use super::window::Series;
use super::{
    Alert, Breach, Classified, Counters, Dimension, INTERVAL_MS, RECENT_ALERTS, SlaConfig, Window,
};

/// Alerts kept for [`Tracker::poll_alerts`] when nobody polls; older ones are
/// dropped (and counted) rather than queued without bound.
const MAX_PENDING_ALERTS: usize = 1024;

/// How many intervals a snapshot shows: the current one and the 95 before it.
const DAY_INTERVALS: i64 = Window::H24.duration_ms() / INTERVAL_MS;

/// The start of the 15-minute interval holding `ms` (a multiple of 900 000).
pub fn interval_start_ms(ms: i64) -> i64 {
    ms.div_euclid(INTERVAL_MS) * INTERVAL_MS
}

/// One increment of the persisted interval table: what one call adds to one
/// (interval, dimension, key). The store upserts these by adding counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalRow {
    /// The interval the call ended in.
    pub start_ms: i64,
    pub dimension: Dimension,
    pub key: String,
    pub counters: Counters,
}

/// One key's live state.
#[derive(Debug, Clone)]
pub(super) struct KeyState {
    pub(super) series: Series,
    pub(super) latch: Latch,
}

/// Rolling answer-rate figures, fed with classified calls and told the time.
///
/// Cost: [`Tracker::record`] is O(1) amortized per call (a call that arrives out of
/// order pays a binary search and a short shift); [`Tracker::advance`],
/// [`Tracker::poll_alerts`] and [`Tracker::snapshot`] are O(keys × windows) plus
/// the buckets that expire. Time only moves forward: an earlier `now_ms` than one
/// already seen is treated as that time.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub(super) cfg: SlaConfig,
    /// The latest time seen; `None` before the first (while seeding, say).
    pub(super) now_ms: Option<i64>,
    /// Per dimension (by [`Dimension::index`]): the keys with calls in the last 24 h
    /// or an open breach.
    pub(super) keys: [HashMap<String, KeyState>; 4],
    /// Overall figures per 15-minute interval, ordered, only non-empty ones.
    pub(super) intervals: VecDeque<(i64, Counters)>,
    /// Alerts not yet returned by `poll_alerts`.
    pending: VecDeque<Alert>,
    /// The last [`RECENT_ALERTS`] alerts, oldest first.
    pub(super) recent: VecDeque<Alert>,
    /// Alerts dropped because nobody polled.
    dropped_alerts: u64,
}

impl Tracker {
    pub fn new(cfg: SlaConfig) -> Tracker {
        Tracker {
            cfg,
            now_ms: None,
            keys: Default::default(),
            intervals: VecDeque::new(),
            pending: VecDeque::new(),
            recent: VecDeque::new(),
            dropped_alerts: 0,
        }
    }

    pub fn config(&self) -> &SlaConfig {
        &self.cfg
    }

    /// The current second; before any time is known every call lies ahead.
    fn now_s(&self) -> i64 {
        self.now_ms.map_or(i64::MIN, |ms| ms.div_euclid(1000))
    }

    /// The interval rows one call adds; the same function serves the live upsert
    /// and a recompute from stored events.
    pub fn interval_rows(c: &Classified) -> Vec<IntervalRow> {
        let start_ms = interval_start_ms(c.ended_ms);
        c.contributions()
            .into_iter()
            .map(|x| IntervalRow {
                start_ms,
                dimension: x.dimension,
                key: x.key.to_string(),
                counters: x.counters,
            })
            .collect()
    }

    /// Marks a key's window as in breach since `since_ms`, as the last alert sent
    /// before a restart said. The next evaluation then reports only what changed
    /// since (a recovery, or nothing), instead of judging from a clean latch.
    pub fn restore_breach(
        &mut self,
        dimension: Dimension,
        key: &str,
        window: Window,
        since_ms: i64,
    ) {
        let state = self.keys[dimension.index()]
            .entry(key.to_string())
            .or_insert_with(|| KeyState {
                series: Series::new(),
                latch: Latch::default(),
            });
        state.latch.set(window, Some(since_ms));
    }

    /// Counts a finished call at `c.ended_ms`. Calls may arrive out of order; one
    /// that ended more than 24 h before the current time is ignored (it still
    /// belongs in the persisted intervals), one that ends after it counts once the
    /// time reaches it.
    pub fn record(&mut self, c: &Classified) {
        let (now_s, sec) = (self.now_s(), c.ended_ms.div_euclid(1000));
        for x in c.contributions() {
            let map = &mut self.keys[x.dimension.index()];
            if !map.contains_key(x.key) {
                let state = KeyState {
                    series: Series::new(),
                    latch: Latch::default(),
                };
                map.insert(x.key.to_string(), state);
            }
            if let Some(state) = map.get_mut(x.key) {
                state.series.add(sec, &x.counters, now_s);
            }
            if x.dimension == Dimension::Overall {
                self.add_interval(c.ended_ms, &x.counters);
            }
        }
    }

    /// The oldest interval of the last 24 h: the current one and the 95 before it.
    fn first_shown_interval(&self) -> i64 {
        self.now_ms.map_or(i64::MIN, |ms| {
            interval_start_ms(ms) - (DAY_INTERVALS - 1) * INTERVAL_MS
        })
    }

    fn add_interval(&mut self, ended_ms: i64, counts: &Counters) {
        let start = interval_start_ms(ended_ms);
        if start < self.first_shown_interval() {
            return;
        }
        let pos = self.intervals.partition_point(|(s, _)| *s < start);
        match self.intervals.get_mut(pos) {
            Some((s, c)) if *s == start => c.add(counts),
            _ => {
                let mut c = Counters::default();
                c.add(counts);
                self.intervals.insert(pos, (start, c));
            }
        }
    }

    /// Moves the time to `now_ms`: calls leave the windows they are now too old for,
    /// keys with nothing left (and no open breach) are forgotten.
    pub fn advance(&mut self, now_ms: i64) {
        if self.now_ms.is_some_and(|t| now_ms <= t) {
            return;
        }
        let old_s = self.now_s();
        self.now_ms = Some(now_ms);
        let new_s = self.now_s();
        for map in &mut self.keys {
            for state in map.values_mut() {
                state.series.advance(old_s, new_s);
            }
            map.retain(|_, s| !s.series.is_empty() || s.latch.any());
        }
        let first = self.first_shown_interval();
        while self.intervals.front().is_some_and(|(s, _)| *s < first) {
            self.intervals.pop_front();
        }
    }

    /// The figures of one key and window as of the current time; `None` for a key
    /// with no calls in the last 24 h.
    pub fn figures(&self, dimension: Dimension, key: &str, window: Window) -> Option<Counters> {
        let state = self.keys[dimension.index()].get(key)?;
        Some(*state.series.sum(window))
    }

    /// Advances to `now_ms`, judges every key and window, and returns the breaches
    /// and recoveries since the last call, at most one per transition.
    pub fn poll_alerts(&mut self, now_ms: i64) -> Vec<Alert> {
        self.advance(now_ms);
        self.evaluate();
        self.pending.drain(..).collect()
    }

    /// How many alerts were dropped because `poll_alerts` was not called.
    pub fn dropped_alerts(&self) -> u64 {
        self.dropped_alerts
    }

    /// Judges every key and window at the current time and queues the transitions.
    pub(super) fn evaluate(&mut self) {
        let Some(at_ms) = self.now_ms else {
            return;
        };
        let cfg = &self.cfg;
        let mut alerts = Vec::new();
        for dimension in Dimension::ALL {
            for (key, state) in &mut self.keys[dimension.index()] {
                for window in Window::ALL {
                    let figures = state.series.sum(window);
                    if let Some((kind, answer_rate)) =
                        state.latch.judge(window, figures, cfg, at_ms)
                    {
                        alerts.push(Alert {
                            kind,
                            dimension,
                            key: key.clone(),
                            window,
                            at_ms,
                            answer_rate,
                            offered: figures.offered,
                            target: cfg.target,
                        });
                    }
                }
            }
        }
        alerts
            .sort_by(|a, b| (a.dimension, &a.key, a.window).cmp(&(b.dimension, &b.key, b.window)));
        for alert in alerts {
            if self.recent.len() == RECENT_ALERTS {
                self.recent.pop_front();
            }
            self.recent.push_back(alert.clone());
            if self.pending.len() == MAX_PENDING_ALERTS {
                self.pending.pop_front();
                self.dropped_alerts += 1;
            }
            self.pending.push_back(alert);
        }
    }

    /// Every key and window in breach, by dimension, key and window.
    pub fn breaches(&self) -> Vec<Breach> {
        let mut out = Vec::new();
        for dimension in Dimension::ALL {
            for (key, state) in &self.keys[dimension.index()] {
                for window in Window::ALL {
                    if let Some(since_ms) = state.latch.since(window) {
                        out.push(Breach {
                            dimension,
                            key: key.clone(),
                            window,
                            since_ms,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.dimension, &a.key, a.window).cmp(&(b.dimension, &b.key, b.window)));
        out
    }

    /// The last [`RECENT_ALERTS`] alerts, oldest first.
    pub fn recent_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.recent.iter()
    }
}
