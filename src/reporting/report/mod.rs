//! Reports: the figures a province is judged by (接通率, both 15秒接通率, waits,
//! talk time, satisfaction, callbacks, 一次接通率), per local day, week, month or
//! any range, and per line, mode, queue, department or seats, computed from the
//! stored call records by pure functions (docs/reports-api.md defines each figure).
//!
//! ```text
//!  store (records, by first offer) ─► CallFact::of (sla::classify) ─► Engine::add
//!                                                     Engine::finish ─► Report ─► JSON / CSV
//! ```
//!
//! Owns: the report's definitions and arithmetic. Must not: read the clock, touch
//! the store or the network (`load.rs` is the one async part: it pages records
//! from the store into the engine).
//!
//! A call counts in the period and hour of its **first offer** (when the citizen
//! reached a point where a person should answer); the live SLA windows count it
//! when it ends. The two differ only for calls that cross a period's boundary.

mod csv;
mod engine;
mod fact;
mod load;
mod period;
mod tally;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dims;
mod xlsx;

use serde::Serialize;

pub use csv::to_csv;
pub use engine::Engine;
pub use fact::{CallFact, Callback, Dimension, NONE_KEY, Part, SEATS_12345};
#[cfg(test)]
pub(crate) use load::run_paged;
pub use load::{MAX_RANGE_DAYS, run};
pub use period::{PeriodKind, Zone};
pub use tally::{Figures, Tally};
pub use xlsx::{XLSX_TYPE, workbook};

use crate::cdr::CallRecord;
use crate::sla::SlaConfig;

/// What is not in the reports, and why (shown with every report).
pub const NOTES: [&str; 2] = [
    "7x24 coverage (hours with calls offered and no agent logged in) is not reported: \
     agent log-ins and log-outs are not stored, only the live agent states",
    "callbacks within the time limit are not reported: the time a callback was marked \
     done is not stored, only whether it is still pending",
];

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    pub period: PeriodKind,
    pub dimension: Dimension,
    /// Calls first offered in `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    pub zone: Zone,
    /// A number calling again within this long of its first call counts once.
    pub repeat_window_ms: i64,
    /// The service-level seconds, short-abandon seconds, target, and
    /// `min_offered` (the fewest counted calls an hour needs to be the worst).
    pub sla: SlaConfig,
}

/// One period of one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `2026-11-03`, `2026-11-02/2026-11-08`, `2026-11`.
    pub period: String,
    /// Local RFC 3339 instants; `end` is exclusive.
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub key: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The whole range for one key, with its hour-of-day profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    pub key: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// The local hour (0–23) with the most calls offered.
    pub peak_hour: Option<u8>,
    /// The local hour with the lowest answer rate, among hours with at least
    /// `worst_hour_min_counted` counted calls.
    pub worst_hour: Option<u8>,
    pub hours: Vec<HourRow>,
}

/// One local hour of day over the whole range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    pub hour: u8,
    pub offered: u64,
    pub counted: u64,
    pub answered: u64,
    pub answered_within: u64,
    pub answer_rate: Option<f64>,
}

/// A finished report (the JSON of `GET /api/v1/reports`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: &'static str,
    pub dimension: &'static str,
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// `+08:00`.
    pub utc_offset: String,
    pub answer_within_s: u32,
    pub short_abandon_s: u32,
    pub target: f64,
    pub repeat_window_h: f64,
    pub worst_hour_min_counted: u32,
    /// Key by key, each period in order.
    pub rows: Vec<Row>,
    pub totals: Vec<Total>,
    pub notes: Vec<&'static str>,
}

impl Report {
    fn new(spec: &ReportSpec, rows: Vec<Row>, totals: Vec<Total>) -> Report {
        let z = spec.zone;
        let off = z.offset_minutes.unsigned_abs();
        let sign = if z.offset_minutes < 0 { '-' } else { '+' };
        Report {
            period: spec.period.as_str(),
            dimension: spec.dimension.as_str(),
            from: z.rfc3339(spec.from_ms),
            to: z.rfc3339(spec.to_ms),
            from_ms: spec.from_ms,
            to_ms: spec.to_ms,
            utc_offset: format!("{sign}{:02}:{:02}", off / 60, off % 60),
            answer_within_s: spec.sla.answer_within_s,
            short_abandon_s: spec.sla.short_abandon_s,
            target: spec.sla.target,
            repeat_window_h: spec.repeat_window_ms as f64 / 3_600_000.0,
            worst_hour_min_counted: spec.sla.min_offered,
            rows,
            totals,
            notes: NOTES.to_vec(),
        }
    }
}

/// A report over records in memory, in any order (tests, small exports).
pub fn build(records: &[CallRecord], spec: ReportSpec) -> Report {
    let mut facts: Vec<CallFact> = records
        .iter()
        .filter_map(|r| CallFact::of(r, &spec.sla))
        .collect();
    facts.sort_by_key(|f| f.offered_ms);
    let mut engine = Engine::new(spec);
    for f in &facts {
        engine.add(f);
    }
    engine.finish()
}
