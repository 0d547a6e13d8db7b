//! Breach and recovery: a per (dimension, key, window) latch with hysteresis, and
//! the alerts its transitions produce.
//!
//! Enter when at least `min_offered` calls count (offered − short-abandoned) and
//! the answer rate is below `target`; leave when at least `min_offered` count and
//! the rate is at or above `target + recover_margin`. With fewer counted calls the
//! state holds, whatever the rate — also when every call of a breach has expired.

use serde::{Deserialize, Serialize};

use super::{Counters, Dimension, SlaConfig, Window};

/// Slack for comparing a ratio of counts with a configured threshold, so that
/// `96/100` meets `0.95 + 0.01` whatever the rounding of the sum.
pub(crate) const EPSILON: f64 = 1e-9;

/// Whether an alert opens or closes a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Breach,
    Recovery,
}

/// One transition, for the log, the exporter, the webhook and the snapshot
/// (`ALERT` in docs/sla-api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub dimension: Dimension,
    pub key: String,
    pub window: Window,
    /// When the transition was seen (the `now_ms` of the evaluation).
    pub at_ms: i64,
    /// The rate that caused it.
    pub answer_rate: f64,
    /// Offered calls in the window at that time.
    pub offered: u64,
    pub target: f64,
}

/// A key/window currently in breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    pub dimension: Dimension,
    pub key: String,
    pub window: Window,
    /// When the breach was seen to start.
    pub since_ms: i64,
}

/// The latch of one key, per window: `Some(since_ms)` while in breach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Latch {
    since: [Option<i64>; 3],
}

impl Latch {
    pub(crate) fn since(&self, w: Window) -> Option<i64> {
        self.since[w.index()]
    }

    /// Puts a window back in (or out of) breach, as remembered across a restart.
    pub(crate) fn set(&mut self, w: Window, since: Option<i64>) {
        self.since[w.index()] = since;
    }

    pub(crate) fn any(&self) -> bool {
        self.since.iter().any(Option::is_some)
    }

    /// Judges one window's figures at `now_ms`; returns the transition, if any.
    pub(crate) fn judge(
        &mut self,
        w: Window,
        figures: &Counters,
        cfg: &SlaConfig,
        now_ms: i64,
    ) -> Option<(AlertKind, f64)> {
        if figures.counted() < u64::from(cfg.min_offered) {
            return None;
        }
        let rate = figures.answer_rate()?;
        let since = &mut self.since[w.index()];
        match since {
            None if rate + EPSILON < cfg.target => {
                *since = Some(now_ms);
                Some((AlertKind::Breach, rate))
            }
            Some(_) if rate + EPSILON >= cfg.target + cfg.recover_margin => {
                *since = None;
                Some((AlertKind::Recovery, rate))
            }
            _ => None,
        }
    }
}
