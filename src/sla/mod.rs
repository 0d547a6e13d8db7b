//! Answer-rate arithmetic (DESIGN.md §5): what each finished call counts as, the
//! rolling 15 min / 1 h / 24 h figures per overall, line, mode and queue, the
//! 15-minute interval rows the store persists, and breach / recovery alerts.
//!
//! Owns: the outcome of a call for the SLA ([`classify`]), the counters and rates
//! ([`Counters`]), the live rolling state ([`Tracker`]) and the JSON shape of
//! `GET /api/v1/sla` ([`Snapshot`], docs/sla-api.md).
//!
//! Pure, like `sip/` and `acd/`: no clock reads, no I/O, no tokio, no database.
//! Every function that depends on time takes `now_ms` (Unix milliseconds, UTC). The
//! driver (a service task) feeds finished calls with [`Tracker::record`], calls
//! [`Tracker::poll_alerts`] periodically (and sends what it returns to the log, the
//! exporter and the webhook) and serves [`Tracker::snapshot`].
//!
//! Must not: read the clock, touch the store or the network, or change call records.
//! The webhook URL in [`SlaConfig`] is only carried here for the driver.
//!
//! # Time semantics
//!
//! A call counts at the second in which it **ended** (`ended_ms / 1000`, rounded
//! down). A rolling window of length `w` at `now_ms` holds the calls whose end second
//! `s` satisfies `now_s - w_s < s <= now_s` (with `now_s = now_ms / 1000` rounded
//! down): the window is `(now - w, now]` on whole seconds. A call that ended exactly
//! 15 minutes ago is therefore out of `15m` and still in `1h`; a call whose end lies
//! after `now` is kept and counts once `now` reaches it.
//!
//! A 15-minute interval starts at a multiple of 900 000 ms since the Unix epoch and
//! covers `[start, start + 15 min)`.
//!
//! # Restarts
//!
//! The tracker holds nothing that cannot be rebuilt: after a restart, call
//! [`Tracker::record`] for every stored call that ended in the last 24 hours (any
//! order works; ordered by end time is fastest), then use the tracker as usual. The
//! figures equal those of a tracker that ran all along. Breach latches are put
//! back with [`Tracker::restore_breach`] from the last alert sent per key and
//! window; the first [`Tracker::poll_alerts`] then reports only what changed since
//! (without that, it reports every current breach again).

mod breach;
mod classify;
mod counters;
mod snapshot;
mod tracker;
mod window;

#[cfg(test)]
mod classify_tests;
#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tracker_tests;

use serde::{Deserialize, Serialize};

pub use breach::{Alert, AlertKind, Breach};
pub use classify::{Classified, Contribution, Outcome, Visit, classify};
pub use counters::Counters;
pub use snapshot::{Figures, IntervalFigures, KeyFigures, Snapshot, WindowFigures};
pub use tracker::{IntervalRow, Tracker, interval_start_ms};

/// The length of one persisted interval.
pub const INTERVAL_MS: i64 = 15 * 60 * 1000;

/// How many recent alerts a snapshot shows.
pub const RECENT_ALERTS: usize = 50;

/// The `[sla]` configuration section. Defaults are the GB/T 33358 figures of
/// DESIGN.md §5.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// The answer rate a line must reach, in (0, 1].
    pub target: f64,
    /// A call answered within this many seconds of its first offer counts in the
    /// service level (exactly this many seconds still counts).
    pub answer_within_s: u32,
    /// A caller who hangs up within this many seconds of the first offer is a short
    /// abandon and leaves the denominator (exactly this many seconds is short).
    pub short_abandon_s: u32,
    /// No breach or recovery is judged on fewer counted calls
    /// (offered − short-abandoned) than this in a window.
    pub min_offered: u32,
    /// A breach recovers only at `target + recover_margin`, so that a rate that
    /// wobbles around the target does not flap.
    pub recover_margin: f64,
    /// Where the driver POSTs alerts. Carried, never used here.
    pub webhook: Option<String>,
    /// A missed call is called back "in time" within this many hours of its
    /// end (the share in time is reported).
    pub callback_within_h: u32,
    /// Attempts before a missed call's callback is given up.
    pub callback_max_attempts: u32,
    /// Short-abandoned calls (hung up within `short_abandon_s`) are owed a
    /// callback too. Off by default: most are misdials.
    pub callback_short_abandoned: bool,
    /// When a call's wait starts for `answer_within_s` (15秒接通率) and the
    /// wait figures: at its first offer (`arrival`: a forwarded line's
    /// announcement and a parallel line's legacy ringing count), or when it
    /// entered 12345's queue (`queue`). Reports' `seats` dimension always
    /// counts 12345's seats from the queue.
    pub offer_clock: OfferClock,
}

/// See [`SlaConfig::offer_clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferClock {
    #[default]
    Arrival,
    Queue,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            target: 0.95,
            answer_within_s: 15,
            short_abandon_s: 5,
            min_offered: 20,
            recover_margin: 0.01,
            webhook: None,
            callback_within_h: 24,
            callback_max_attempts: 3,
            callback_short_abandoned: false,
            offer_clock: OfferClock::Arrival,
        }
    }
}

impl SlaConfig {
    /// Checks value ranges. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=720).contains(&self.callback_within_h) {
            return Err(format!(
                "callback_within_h: must be 1..=720 hours, got {}",
                self.callback_within_h
            ));
        }
        if !(1..=20).contains(&self.callback_max_attempts) {
            return Err(format!(
                "callback_max_attempts: must be 1..=20, got {}",
                self.callback_max_attempts
            ));
        }
        if !(self.target > 0.0 && self.target <= 1.0) {
            return Err(format!("target: must be in (0, 1], got {}", self.target));
        }
        if !(self.recover_margin >= 0.0 && self.recover_margin < 0.5) {
            return Err(format!(
                "recover_margin: must be in [0, 0.5), got {}",
                self.recover_margin
            ));
        }
        if self.target + self.recover_margin > 1.0 + breach::EPSILON {
            return Err(format!(
                "recover_margin: target + recover_margin = {} is above 1, a breach could never recover",
                self.target + self.recover_margin
            ));
        }
        if !(1..=3600).contains(&self.answer_within_s) {
            return Err(format!(
                "answer_within_s: must be 1..=3600, got {}",
                self.answer_within_s
            ));
        }
        if self.short_abandon_s > 3600 {
            return Err(format!(
                "short_abandon_s: must be 0..=3600, got {}",
                self.short_abandon_s
            ));
        }
        if self.min_offered == 0 {
            return Err("min_offered: must be at least 1".to_string());
        }
        if let Some(url) = &self.webhook
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            return Err(format!(
                "webhook: must be an http:// or https:// URL, got {url:?}"
            ));
        }
        Ok(())
    }

    pub(crate) fn answer_within_ms(&self) -> i64 {
        i64::from(self.answer_within_s) * 1000
    }

    pub(crate) fn short_abandon_ms(&self) -> i64 {
        i64::from(self.short_abandon_s) * 1000
    }
}

/// The rolling windows. Fixed: GB/T 33358 judges any 24 h; 15 min and 1 h are for
/// the wallboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "24h")]
    H24,
}

impl Window {
    /// Shortest first.
    pub const ALL: [Window; 3] = [Window::M15, Window::H1, Window::H24];

    /// The stable name used in JSON and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::M15 => "15m",
            Window::H1 => "1h",
            Window::H24 => "24h",
        }
    }

    /// The inverse of [`Window::as_str`].
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    pub const fn duration_ms(self) -> i64 {
        match self {
            Window::M15 => 15 * 60 * 1000,
            Window::H1 => 60 * 60 * 1000,
            Window::H24 => 24 * 60 * 60 * 1000,
        }
    }

    pub(crate) const fn duration_s(self) -> i64 {
        self.duration_ms() / 1000
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a figure is about. Overall has the single key `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Overall,
    /// A dialplan line (the number called).
    Line,
    /// A line's integration mode (`hotline`, `parallel`, …).
    Mode,
    /// An ACD queue, or `legacy:<line>` / `sip:<line>` for calls offered outside the
    /// ACD.
    Queue,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Overall,
        Dimension::Line,
        Dimension::Mode,
        Dimension::Queue,
    ];

    /// The stable name stored in the interval table and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Overall => "overall",
            Dimension::Line => "line",
            Dimension::Mode => "mode",
            Dimension::Queue => "queue",
        }
    }

    /// The inverse of [`Dimension::as_str`].
    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The key of the overall dimension.
pub const OVERALL_KEY: &str = "all";
