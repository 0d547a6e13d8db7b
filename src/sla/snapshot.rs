//! The `GET /api/v1/sla` document (docs/sla-api.md). The serialized field names are
//! a contract with the wallboard and the tests: never rename one, add a new field
//! instead.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::tracker::KeyState;
use super::{Alert, Breach, Counters, Dimension, OVERALL_KEY, Tracker, Window};

/// Everything the wallboard shows, as of `generated_at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub generated_at_ms: i64,
    pub target: f64,
    pub answer_within_s: u32,
    pub short_abandon_s: u32,
    pub min_offered: u32,
    /// Always `["15m", "1h", "24h"]`.
    pub windows: Vec<Window>,
    pub overall: WindowFigures,
    /// Keys with calls in the last 24 h or an open breach, sorted by key.
    pub lines: Vec<KeyFigures>,
    pub modes: Vec<KeyFigures>,
    pub queues: Vec<KeyFigures>,
    /// Open breaches, by dimension, key and window.
    pub breaches: Vec<Breach>,
    /// The last 50 alerts, oldest first.
    pub alerts: Vec<Alert>,
    /// Overall figures per 15-minute interval of the last 24 h (the current one and
    /// the 95 before it), oldest first, only intervals with calls.
    pub intervals: Vec<IntervalFigures>,
}

/// One figure set per window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    #[serde(rename = "15m")]
    pub m15: Figures,
    #[serde(rename = "1h")]
    pub h1: Figures,
    #[serde(rename = "24h")]
    pub h24: Figures,
}

impl WindowFigures {
    pub fn get(&self, w: Window) -> &Figures {
        match w {
            Window::M15 => &self.m15,
            Window::H1 => &self.h1,
            Window::H24 => &self.h24,
        }
    }
}

/// The windows of one line, mode or queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyFigures {
    pub key: String,
    pub windows: WindowFigures,
}

/// `FIGURES`: the counters of one key and window, their rates and breach state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub answered_within: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub transferred_out: u64,
    pub failed: u64,
    pub overflowed: u64,
    /// `null` when offered − short-abandoned is 0.
    pub answer_rate: Option<f64>,
    pub service_level: Option<f64>,
    pub breached: bool,
}

impl Figures {
    pub fn new(c: &Counters, breached: bool) -> Figures {
        Figures {
            offered: c.offered,
            answered: c.answered,
            answered_within: c.answered_within,
            abandoned: c.abandoned,
            short_abandoned: c.short_abandoned,
            transferred_out: c.transferred_out,
            failed: c.failed,
            overflowed: c.overflowed,
            answer_rate: c.answer_rate(),
            service_level: c.service_level(),
            breached,
        }
    }
}

/// One overall 15-minute interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalFigures {
    pub start_ms: i64,
    pub offered: u64,
    /// Answered outcomes only, as in `FIGURES`.
    pub answered: u64,
    pub answer_rate: Option<f64>,
    pub service_level: Option<f64>,
}

fn window_figures(state: Option<&KeyState>) -> WindowFigures {
    let one = |w: Window| match state {
        Some(s) => Figures::new(s.series.sum(w), s.latch.since(w).is_some()),
        None => Figures::new(&Counters::default(), false),
    };
    WindowFigures {
        m15: one(Window::M15),
        h1: one(Window::H1),
        h24: one(Window::H24),
    }
}

fn keyed(map: &HashMap<String, KeyState>) -> Vec<KeyFigures> {
    let mut out: Vec<KeyFigures> = map
        .iter()
        .map(|(key, state)| KeyFigures {
            key: key.clone(),
            windows: window_figures(Some(state)),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Tracker {
    /// Advances to `now_ms`, judges breaches (queuing any alerts for
    /// [`Tracker::poll_alerts`]) and returns the figures.
    pub fn snapshot(&mut self, now_ms: i64) -> Snapshot {
        self.advance(now_ms);
        self.evaluate();
        let now_ms = self.now_ms.unwrap_or(now_ms);
        let dim = |d: Dimension| &self.keys[d.index()];
        Snapshot {
            generated_at_ms: now_ms,
            target: self.cfg.target,
            answer_within_s: self.cfg.answer_within_s,
            short_abandon_s: self.cfg.short_abandon_s,
            min_offered: self.cfg.min_offered,
            windows: Window::ALL.to_vec(),
            overall: window_figures(dim(Dimension::Overall).get(OVERALL_KEY)),
            lines: keyed(dim(Dimension::Line)),
            modes: keyed(dim(Dimension::Mode)),
            queues: keyed(dim(Dimension::Queue)),
            breaches: self.breaches(),
            alerts: self.recent.iter().cloned().collect(),
            intervals: self
                .intervals
                .iter()
                .filter(|(start, _)| *start <= now_ms)
                .map(|(start, c)| IntervalFigures {
                    start_ms: *start,
                    offered: c.offered,
                    answered: c.answered,
                    answer_rate: c.answer_rate(),
                    service_level: c.service_level(),
                })
                .collect(),
        }
    }
}
