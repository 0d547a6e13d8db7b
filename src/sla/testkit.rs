//! Builders for the SLA tests: call records from scripted events, and classified
//! calls, on a virtual clock of plain Unix milliseconds.

use crate::cdr::{CallRecord, Event, EventKind};

use super::{Classified, Outcome, SlaConfig, Visit, classify};

/// A time on a 15-minute boundary (1 794 999 600 000 = 1 994 444 × 900 000).
pub(super) const T0: i64 = 1_794_999_600_000;

pub(super) const SEC: i64 = 1000;
pub(super) const MIN: i64 = 60 * SEC;
pub(super) const HOUR: i64 = 60 * MIN;

/// A record of a call on `line` (mode `hotline` unless given) with events at
/// `T0 + offset`; an empty detail is none.
pub(super) fn record(
    line: Option<&str>,
    mode: Option<&str>,
    events: &[(i64, EventKind, &str)],
) -> CallRecord {
    let events: Vec<Event> = events
        .iter()
        .map(|(at, kind, detail)| Event {
            at_ms: T0 + at,
            kind: *kind,
            detail: (!detail.is_empty()).then(|| detail.to_string()),
        })
        .collect();
    CallRecord {
        id: "gw-1".into(),
        sip_call_id: "a@b".into(),
        caller: "13800000000".into(),
        called: line.unwrap_or("99999").into(),
        original: None,
        line: line.map(str::to_string),
        mode: mode.map(str::to_string),
        department: None,
        trunk: None,
        queue: None,
        agent: None,
        answered_by: None,
        transferred_to: None,
        outcome: None,
        reason: "test".into(),
        final_code: 200,
        received_at_ms: events.first().map_or(T0, |e| e.at_ms),
        offered_at_ms: None,
        answered_at_ms: None,
        ended_at_ms: events.last().map_or(T0, |e| e.at_ms),
        survey: None,
        recording: None,
        callback_pending: false,
        callback_state: None,
        callback_done_at_ms: None,
        events,
    }
}

/// Classifies a hotline-mode call on line 12345 with the default config.
pub(super) fn classified(events: &[(i64, EventKind, &str)]) -> Option<Classified> {
    classify(
        &record(Some("12345"), Some("hotline"), events),
        &SlaConfig::default(),
    )
}

/// A call on line 12345, mode hotline, queue `hotline`, that ended at `ended_ms`
/// (absolute) with `outcome`, answered within 15 s when served.
pub(super) fn done(outcome: Outcome, ended_ms: i64) -> Classified {
    done_on(outcome, ended_ms, "12345")
}

/// As [`done`], on another line.
pub(super) fn done_on(outcome: Outcome, ended_ms: i64, line: &str) -> Classified {
    let served = outcome.is_served();
    Classified {
        outcome,
        ended_ms,
        line: Some(line.to_string()),
        mode: Some("hotline".into()),
        wait_ms: served.then_some(3 * SEC),
        answered_within: served,
        overflowed: false,
        visits: vec![Visit {
            queue: "hotline".into(),
            offered_ms: ended_ms - 60 * SEC,
            outcome,
            answered_within: served,
        }],
    }
}
