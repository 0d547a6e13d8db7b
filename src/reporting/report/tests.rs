//! Every figure of a scripted set of calls, compared with a count made by hand
//! (the comments show the count).

use super::*;
use crate::cdr::{Event, EventKind as K};

pub(super) const S: i64 = 1000;
pub(super) const H: i64 = 3_600_000;

pub(super) fn ms(s: &str) -> i64 {
    crate::dialplan::time::parse_rfc3339(s).unwrap() * 1000
}

/// Local midnight opening Monday 2026-11-02 (Asia/Shanghai).
pub(super) fn day1() -> i64 {
    ms("2026-11-02T00:00:00+08:00")
}

/// A call offered at `at` on `line` to `place`, with the events that follow.
fn call(
    id: &str,
    caller: &str,
    line: &str,
    place: &str,
    at: i64,
    rest: &[(i64, K, &str)],
) -> CallRecord {
    let (mode, dept) = match line {
        "12345" => ("hotline", None),
        "12315" => ("call_forwarding", Some("市场监管")),
        _ => ("parallel", Some("人社")),
    };
    let mut events = vec![
        Event {
            at_ms: at - 200,
            kind: K::Received,
            detail: Some(line.into()),
        },
        Event {
            at_ms: at,
            kind: K::Offered,
            detail: Some(place.into()),
        },
    ];
    for (dt, kind, d) in rest {
        events.push(Event {
            at_ms: at + dt,
            kind: *kind,
            detail: (!d.is_empty()).then(|| d.to_string()),
        });
    }
    let ended = events.last().unwrap().at_ms;
    CallRecord {
        id: id.into(),
        sip_call_id: format!("{id}@test"),
        caller: caller.into(),
        called: line.into(),
        original: None,
        line: Some(line.into()),
        mode: Some(mode.into()),
        department: dept.map(str::to_string),
        trunk: None,
        queue: Some(place.into()),
        agent: None,
        answered_by: None,
        transferred_to: None,
        outcome: None,
        reason: "call.caller_hangup".into(),
        final_code: 200,
        received_at_ms: at - 200,
        offered_at_ms: Some(at),
        answered_at_ms: None,
        ended_at_ms: ended,
        survey: None,
        recording: None,
        callback_pending: false,
        callback_state: None,
        callback_done_at_ms: None,
        events,
    }
}

#[allow(clippy::too_many_arguments)]
/// Answered after `wait` by a 12345 agent, ended after `talk` by the agent
/// (the survey case) or the caller.
fn answered(
    id: &str,
    caller: &str,
    line: &str,
    place: &str,
    at: i64,
    wait: i64,
    talk: i64,
    agent_first: bool,
) -> CallRecord {
    let end = if agent_first {
        K::CalleeHungUp
    } else {
        K::CallerHungUp
    };
    let mut r = call(
        id,
        caller,
        line,
        place,
        at,
        &[(wait, K::Answered, "a1"), (wait + talk, end, "")],
    );
    r.answered_by = Some("12345".into());
    if agent_first {
        r.reason = "call.callee_hangup".into();
    }
    r
}

fn abandoned(id: &str, caller: &str, at: i64, after: i64, callback_pending: bool) -> CallRecord {
    let mut r = call(
        id,
        caller,
        "12345",
        "hotline",
        at,
        &[(after, K::CallerHungUp, "call.caller_cancelled")],
    );
    r.reason = "call.caller_cancelled".into();
    r.callback_pending = callback_pending;
    r
}

pub(super) fn records() -> Vec<CallRecord> {
    let d1 = day1();
    let mut v = Vec::new();
    // A: 09:00, wait 10 s, talk 120 s, the agent hangs up, rated 1.
    let mut a = answered(
        "A",
        "c1",
        "12345",
        "hotline",
        d1 + 9 * H,
        10 * S,
        120 * S,
        true,
    );
    a.survey = Some(1);
    v.push(a);
    // B: 09:10, wait 20 s (late), talk 60 s, the agent hangs up, no rating.
    v.push(answered(
        "B",
        "c2",
        "12345",
        "hotline",
        d1 + 9 * H + 600 * S,
        20 * S,
        60 * S,
        true,
    ));
    // C: 09:20, abandoned after 30 s, callback pending.
    v.push(abandoned("C", "c3", d1 + 9 * H + 1200 * S, 30 * S, true));
    // D: 09:30, short abandon after 3 s.
    v.push(abandoned("D", "c4", d1 + 9 * H + 1800 * S, 3 * S, false));
    // E: 10:00, c3 again (same episode as C), wait 5 s, talk 30 s, rated 3.
    let mut e = answered(
        "E",
        "c3",
        "12345",
        "hotline",
        d1 + 10 * H,
        5 * S,
        30 * S,
        true,
    );
    e.survey = Some(3);
    v.push(e);
    // F: 10:30 on 12315, wait exactly 15 s (within), transferred to 110 after 60 s
    // of talk, ends 140 s later.
    let mut f = call(
        "F",
        "c5",
        "12315",
        "market",
        d1 + 10 * H + 1800 * S,
        &[
            (15 * S, K::Answered, "a2"),
            (75 * S, K::TransferredOut, "110"),
            (215 * S, K::CallerHungUp, ""),
        ],
    );
    f.answered_by = Some("12345".into());
    f.transferred_to = Some("110".into());
    v.push(f);
    // G: 11:00 on 12333, answered by the legacy seats after 8 s, talk 100 s.
    let mut g = call(
        "G",
        "c6",
        "12333",
        "legacy:12333",
        d1 + 11 * H,
        &[
            (8 * S, K::Answered, "legacy"),
            (108 * S, K::CalleeHungUp, ""),
        ],
    );
    g.answered_by = Some("legacy".into());
    g.reason = "call.callee_hangup".into();
    g.queue = None;
    v.push(g);
    // H: 11:10 on 12333, legacy for 20 s, overflowed to the 12345 queue, answered
    // 6 s later (26 s after the first offer), talk 40 s, the agent hangs up, rated 2.
    let mut h = call(
        "H",
        "c7",
        "12333",
        "legacy:12333",
        d1 + 11 * H + 600 * S,
        &[
            (20 * S, K::Overflowed, "hotline"),
            (26 * S, K::Answered, "a1"),
            (66 * S, K::CalleeHungUp, ""),
        ],
    );
    h.answered_by = Some("12345".into());
    h.reason = "call.callee_hangup".into();
    h.survey = Some(2);
    v.push(h);
    // I: 23:59:50, abandoned after 40 s (ends on day 2, counts on day 1), called back.
    v.push(abandoned("I", "c8", d1 + 24 * H - 10 * S, 40 * S, false));
    // L: 08:00, c9 abandons after 40 s, pending; c9 already called yesterday at
    // 20:00 (before the range, within 24 h): not a new caller.
    v.push(abandoned("L", "c9", d1 + 8 * H, 40 * S, true));
    v.push(answered(
        "L0",
        "c9",
        "12345",
        "hotline",
        d1 - 4 * H,
        4 * S,
        50 * S,
        false,
    ));
    // J: day 2, 10:00, c1 again 25 h after A (a new caller episode): waited the
    // queue's maximum, ended by the gateway with a callback pending.
    let mut j = call(
        "J",
        "c1",
        "12345",
        "hotline",
        d1 + 34 * H,
        &[(120 * S, K::GatewayEnded, "acd.max_wait_callback")],
    );
    j.reason = "acd.max_wait_callback".into();
    j.callback_pending = true;
    v.push(j);
    // K: no line (never offered): not counted.
    let mut k = call("K", "c1", "99999", "x", d1 + 9 * H, &[]);
    k.events.retain(|e| e.kind != K::Offered);
    v.push(k);
    v
}

pub(super) fn spec(period: PeriodKind, dimension: Dimension) -> ReportSpec {
    ReportSpec {
        period,
        dimension,
        from_ms: day1(),
        to_ms: day1() + 48 * H,
        zone: Zone {
            offset_minutes: 480,
        },
        repeat_window_ms: 24 * H,
        sla: SlaConfig {
            min_offered: 2,
            ..SlaConfig::default()
        },
    }
}

pub(super) fn row<'a>(r: &'a Report, key: &str, period: &str) -> &'a Figures {
    &r.rows
        .iter()
        .find(|x| x.key == key && x.period == period)
        .unwrap_or_else(|| {
            panic!(
                "no row {key} {period}: {:#?}",
                r.rows
                    .iter()
                    .map(|x| (&x.key, &x.period))
                    .collect::<Vec<_>>()
            )
        })
        .figures
}

pub(super) fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn overall_by_day_matches_the_hand_count() {
    let r = build(&records(), spec(PeriodKind::Day, Dimension::Overall));
    let f = row(&r, "all", "2026-11-02");
    // A B C D E F G H I L; K never offered, L0 before the range.
    assert_eq!(f.offered, 10);
    assert_eq!(f.short_abandoned, 1, "D");
    assert_eq!(f.counted, 9);
    assert_eq!(f.answered, 6, "A B E F G H");
    assert_eq!(f.transferred_out, 1, "F");
    assert_eq!(f.abandoned, 3, "C I L");
    assert_eq!(f.failed, 0);
    assert_eq!(
        f.answered_within, 4,
        "A 10 s, E 5 s, F 15 s, G 8 s (B 20 s, H 26 s late)"
    );
    assert!(close(f.answer_rate, 6.0 / 9.0));
    assert!(close(f.answered_within_per_counted, 4.0 / 9.0));
    assert!(close(f.answered_within_per_answered, 4.0 / 6.0));
    assert!(close(
        f.wait_avg_s,
        (10.0 + 20.0 + 5.0 + 15.0 + 8.0 + 26.0) / 6.0
    ));
    assert_eq!(
        f.wait_p90_s,
        Some(26),
        "rank ⌈0.9 × 6⌉ = 6 of 5 8 10 15 20 26"
    );
    assert!(
        close(
            f.talk_avg_s,
            (120.0 + 60.0 + 30.0 + 60.0 + 100.0 + 40.0) / 6.0
        ),
        "F's talk ends at the transfer"
    );
    assert_eq!(
        (f.satisfied, f.basically_satisfied, f.dissatisfied),
        (1, 1, 1),
        "A 1, H 2, E 3"
    );
    assert_eq!(f.surveyed, 3);
    assert_eq!(
        f.survey_eligible, 4,
        "A B E H: a 12345 agent hung up first, not transferred"
    );
    assert!(close(f.survey_response_rate, 3.0 / 4.0));
    assert!(close(f.satisfied_share, 1.0 / 3.0));
    assert!(close(f.dissatisfied_share, 1.0 / 3.0));
    assert_eq!(
        (f.callbacks_owed, f.callbacks_pending, f.callbacks_done),
        (3, 2, 1),
        "C L pending, I done"
    );
    // Callers: c1 (A) c2 (B) c3 (C, then E) c5 (F) c6 (G) c7 (H) c8 (I); c4 only
    // short-abandoned; c9 (L) repeats yesterday's L0.
    assert_eq!(f.callers, 7);
    assert_eq!(f.callers_answered_first_call, 5, "c1 c2 c5 c6 c7");
    assert_eq!(f.callers_answered, 6, "and c3 at E");
    assert!(close(f.first_call_answer_rate, 5.0 / 7.0));
    assert!(close(f.caller_answer_rate, 6.0 / 7.0));

    let f = row(&r, "all", "2026-11-03");
    assert_eq!(
        (f.offered, f.counted, f.answered, f.failed),
        (1, 1, 0, 1),
        "J"
    );
    assert!(close(f.answer_rate, 0.0));
    assert_eq!(f.answered_within_per_answered, None, "no answered call");
    assert_eq!(
        (
            f.callbacks_pending,
            f.callers,
            f.callers_answered_first_call
        ),
        (1, 1, 0)
    );

    let t = &r.totals[0];
    assert_eq!(
        (t.key.as_str(), t.figures.offered, t.figures.answered),
        ("all", 11, 6)
    );
    assert_eq!(t.figures.callers, 8);
    assert_eq!(t.figures.wait_p90_s, Some(26));
    // Hours: 8 L | 9 A B C D | 10 E F J | 11 G H | 23 I.
    assert_eq!(t.hours[9].offered, 4);
    assert_eq!(t.hours[10].offered, 3);
    assert_eq!(t.peak_hour, Some(9));
    // Counted ≥ 2: 9 → 2/3, 10 → 2/3, 11 → 2/2: the earliest of the tie.
    assert_eq!(t.worst_hour, Some(9));
    assert_eq!(
        r.notes.len(),
        2,
        "7x24 coverage and callback limits are named as missing"
    );
}

#[test]
fn callbacks_are_counted_done_in_time_late_given_up_or_pending() {
    let d1 = day1();
    let hour = 3_600_000;
    // Four callers abandoned at 09:00 (after 30 s), each owed a callback.
    let missed = |id: &str, state: Option<&str>, done_after_h: Option<i64>| {
        let mut r = abandoned(
            id,
            &format!("1380000000{}", id.len()),
            d1 + 9 * hour,
            30_000,
            true,
        );
        r.callback_state = state.map(str::to_string);
        if let Some(h) = done_after_h {
            r.callback_pending = false;
            r.callback_done_at_ms = Some(r.ended_at_ms + h * hour);
        }
        if state == Some("given_up") {
            r.callback_pending = false;
        }
        r
    };
    let records = vec![
        missed("P", None, None),                // still owed
        missed("IN", Some("done"), Some(3)),    // called back after 3 h
        missed("LATE", Some("done"), Some(30)), // after 30 h: past the 24 h limit
        missed("GONE", Some("given_up"), None), // three failed attempts
    ];
    let r = build(&records, spec(PeriodKind::Day, Dimension::Overall));
    let f = row(&r, "all", "2026-11-02");
    assert_eq!(f.callbacks_owed, 4);
    assert_eq!(
        (f.callbacks_pending, f.callbacks_done, f.callbacks_given_up),
        (1, 2, 1)
    );
    assert_eq!(f.callbacks_within_limit, 1, "IN only");
    assert!(close(f.callbacks_within_limit_share, 1.0 / 4.0));
}

#[test]
fn hours_a_queue_went_unstaffed_are_counted_once_each() {
    let d1 = day1();
    let hour = 3_600_000;
    let unstaffed = |id: &str, at: i64| {
        let mut r = abandoned(id, "13800000001", at, 30_000, true);
        r.events.insert(
            1,
            crate::cdr::Event {
                at_ms: at + 1,
                kind: K::Unstaffed,
                detail: Some("hotline".into()),
            },
        );
        r
    };
    let records = vec![
        unstaffed("U1", d1 + 2 * hour + 600_000),   // 02:10
        unstaffed("U2", d1 + 2 * hour + 3_000_000), // 02:50, same hour
        unstaffed("U3", d1 + 4 * hour + 300_000),   // 04:05
        abandoned("S", "13800000002", d1 + 3 * hour, 30_000, true), // staffed
    ];
    let r = build(&records, spec(PeriodKind::Day, Dimension::Overall));
    assert_eq!(row(&r, "all", "2026-11-02").uncovered_hours, 2);
}

#[test]
fn seats_12345_count_a_forwarded_call_from_the_queue_not_the_announcement() {
    let d1 = day1();
    // Offered at 10:00, 6 s announcement, queued, answered 12 s later.
    let mut r = answered(
        "FW",
        "13800000009",
        "12315",
        "hotline",
        d1 + 10 * 3_600_000,
        18_000,
        60_000,
        false,
    );
    let at = r.events[1].at_ms;
    r.events.insert(
        2,
        crate::cdr::Event {
            at_ms: at + 6_000,
            kind: K::Queued,
            detail: Some("hotline".into()),
        },
    );
    let records = vec![r];
    let overall = build(&records, spec(PeriodKind::Day, Dimension::Overall));
    assert_eq!(
        row(&overall, "all", "2026-11-02").answered_within,
        0,
        "18 s from arrival"
    );
    let seats = build(&records, spec(PeriodKind::Day, Dimension::Seats));
    assert_eq!(
        row(&seats, "12345", "2026-11-02").answered_within,
        1,
        "12 s from the queue"
    );
}
