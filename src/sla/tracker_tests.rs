//! The rolling figures, intervals and breach latches on a virtual clock.

use std::collections::BTreeMap;

use super::testkit::{HOUR, MIN, SEC, T0, done, done_on};
use super::{
    AlertKind, Counters, Dimension, INTERVAL_MS, Outcome, SlaConfig, Tracker, Window,
    interval_start_ms,
};

fn overall(t: &Tracker, w: Window) -> Counters {
    t.figures(Dimension::Overall, "all", w).unwrap_or_default()
}

#[test]
fn windows_are_open_at_the_old_end_and_closed_at_now() {
    let end = T0 + 7 * SEC;
    // (now − end, in 15m, in 1h, in 24h)
    let table = [
        (0, true, true, true),
        (899_999, true, true, true),
        (900_000, false, true, true),
        (3_599_999, false, true, true),
        (3_600_000, false, false, true),
        (86_399_999, false, false, true),
        (86_400_000, false, false, false),
    ];
    for (age, m15, h1, h24) in table {
        let mut t = Tracker::new(SlaConfig::default());
        t.record(&done(Outcome::Answered, end));
        t.advance(end + age);
        let got = Window::ALL.map(|w| overall(&t, w).offered == 1);
        assert_eq!(got, [m15, h1, h24], "age {age} ms");
    }
}

#[test]
fn windows_count_whole_seconds() {
    // A call that ended at .500 belongs to its second: at .499 fifteen minutes later
    // that second has left the window.
    let mut t = Tracker::new(SlaConfig::default());
    t.record(&done(Outcome::Answered, T0 + 500));
    t.advance(T0 + 15 * MIN - 1);
    assert_eq!(overall(&t, Window::M15).offered, 1);
    t.advance(T0 + 15 * MIN);
    assert_eq!(overall(&t, Window::M15).offered, 0);
}

#[test]
fn a_call_from_the_future_counts_once_now_reaches_it() {
    let mut t = Tracker::new(SlaConfig::default());
    t.advance(T0);
    t.record(&done(Outcome::Answered, T0 + 3 * SEC));
    assert_eq!(overall(&t, Window::M15).offered, 0);
    t.advance(T0 + 2_999);
    assert_eq!(overall(&t, Window::M15).offered, 0);
    t.advance(T0 + 3 * SEC);
    assert_eq!(Window::ALL.map(|w| overall(&t, w).offered), [1, 1, 1]);
    // Time does not go back.
    t.advance(T0);
    assert_eq!(overall(&t, Window::M15).offered, 1);
}

#[test]
fn late_records_land_in_the_windows_they_belong_to() {
    let mut t = Tracker::new(SlaConfig::default());
    let now = T0 + 30 * HOUR;
    t.advance(now);
    for ago in [
        10 * SEC,
        30 * MIN,
        30 * MIN, // the same second again
        90 * MIN,
        23 * HOUR,
        24 * HOUR - SEC,
        24 * HOUR - 1, // in the same second as 24 h ago: dropped
        24 * HOUR,     // dropped
        30 * HOUR,     // dropped
    ] {
        t.record(&done(Outcome::Answered, now - ago));
    }
    assert_eq!(Window::ALL.map(|w| overall(&t, w).offered), [1, 3, 6]);
    t.advance(now + 20 * MIN);
    assert_eq!(Window::ALL.map(|w| overall(&t, w).offered), [0, 3, 5]);
}

#[test]
fn an_overflowed_call_counts_once_per_queue_and_once_overall() {
    use crate::cdr::EventKind::{Answered, CallerHungUp, Offered, Overflowed};
    let c = super::testkit::classified(&[
        (0, Offered, "hotline"),
        (60 * SEC, Overflowed, "backup"),
        (65 * SEC, Answered, "2001"),
        (300 * SEC, CallerHungUp, ""),
    ])
    .unwrap();
    let mut t = Tracker::new(SlaConfig::default());
    t.record(&c);
    t.advance(T0 + 300 * SEC);
    let get = |d, k| t.figures(d, k, Window::M15).unwrap();
    let all = get(Dimension::Overall, "all");
    assert_eq!((all.offered, all.answered, all.overflowed), (1, 1, 1));
    assert_eq!(all.answer_rate(), Some(1.0));
    let left = get(Dimension::Queue, "hotline");
    assert_eq!((left.offered, left.answered, left.overflowed), (1, 0, 1));
    assert_eq!(left.answer_rate(), Some(0.0));
    let reached = get(Dimension::Queue, "backup");
    assert_eq!(
        (reached.offered, reached.answered, reached.answered_within),
        (1, 1, 1)
    );

    let rows = Tracker::interval_rows(&c);
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (r.dimension.as_str(), r.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("overall", "all"),
            ("line", "12345"),
            ("mode", "hotline"),
            ("queue", "hotline"),
            ("queue", "backup")
        ]
    );
    assert!(rows.iter().all(|r| r.start_ms == T0));
}

#[test]
fn intervals_are_aligned_to_15_minutes() {
    assert_eq!(interval_start_ms(T0), T0);
    assert_eq!(interval_start_ms(T0 + INTERVAL_MS - 1), T0);
    assert_eq!(interval_start_ms(T0 + INTERVAL_MS), T0 + INTERVAL_MS);
    assert_eq!(interval_start_ms(-1), -INTERVAL_MS);
    let mut t = Tracker::new(SlaConfig::default());
    for end in [T0 + 1, T0 + 899_999, T0 + 900_000, T0 + 3 * HOUR + 7 * SEC] {
        t.record(&done(Outcome::Answered, end));
        let rows = Tracker::interval_rows(&done(Outcome::Answered, end));
        assert!(rows.iter().all(|r| r.start_ms == interval_start_ms(end)));
    }
    t.record(&done(Outcome::Abandoned, T0 + 10 * SEC));
    let snap = t.snapshot(T0 + 3 * HOUR + 7 * SEC);
    let got: Vec<_> = snap
        .intervals
        .iter()
        .map(|i| (i.start_ms - T0, i.offered, i.answered))
        .collect();
    assert_eq!(
        got,
        [(0, 3, 2), (INTERVAL_MS, 1, 1), (12 * INTERVAL_MS, 1, 1)]
    );
    assert!(snap.intervals.iter().all(|i| i.start_ms % INTERVAL_MS == 0));
    assert_eq!(snap.intervals[0].answer_rate, Some(2.0 / 3.0));
    // 24 h later only the intervals of the last 24 h are left: the current one and the
    // 95 before it.
    let snap = t.snapshot(T0 + 24 * HOUR + INTERVAL_MS);
    let starts: Vec<_> = snap.intervals.iter().map(|i| i.start_ms - T0).collect();
    assert_eq!(starts, [12 * INTERVAL_MS]);
}

/// A breach alert per (dimension, key, window), in order.
fn transitions(alerts: &[super::Alert]) -> BTreeMap<(Dimension, String, Window), Vec<AlertKind>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for a in alerts {
        out.entry((a.dimension, a.key.clone(), a.window))
            .or_default()
            .push(a.kind);
    }
    out
}

#[test]
fn a_rate_wobbling_around_the_target_breaches_once_and_recovers_at_the_margin() {
    let mut t = Tracker::new(SlaConfig::default());
    let now = T0 + HOUR;
    for i in 0..1000 {
        let o = if i < 950 {
            Outcome::Answered
        } else {
            Outcome::Abandoned
        };
        t.record(&done(o, now));
    }
    assert!(
        t.poll_alerts(now).is_empty(),
        "exactly 0.95 is not a breach"
    );
    let (mut alerts, mut below, mut above) = (Vec::new(), 0, 0);
    for _ in 0..200 {
        let rate = overall(&t, Window::M15).answer_rate().unwrap();
        assert!((0.949..0.951).contains(&rate), "{rate}");
        let o = if rate < 0.95 {
            below += 1;
            Outcome::Answered
        } else {
            above += 1;
            Outcome::Abandoned
        };
        t.record(&done(o, now));
        alerts.extend(t.poll_alerts(now));
    }
    assert!(
        below > 100 && above > 5,
        "the rate did wobble: {below} / {above}"
    );
    let seen = transitions(&alerts);
    assert_eq!(
        seen.len(),
        4 * 3,
        "overall, line, mode, queue × 3 windows: {seen:?}"
    );
    assert!(seen.values().all(|k| k == &[AlertKind::Breach]), "{seen:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.dimension, a.key.as_str(), a.window, a.at_ms),
        (Dimension::Overall, "all", Window::M15, now)
    );
    assert!(a.answer_rate < 0.95 && a.offered > 1000 && a.target == 0.95);
    assert_eq!(t.breaches().len(), 12);

    // Recovery comes only at 0.96, not before.
    let mut recovered = Vec::new();
    while recovered.is_empty() {
        let before = overall(&t, Window::M15).answer_rate().unwrap();
        t.record(&done(Outcome::Answered, now));
        recovered = t.poll_alerts(now);
        if recovered.is_empty() {
            assert!(before < 0.96);
        }
    }
    let rate = overall(&t, Window::M15).answer_rate().unwrap();
    assert!((0.96..0.9601).contains(&rate), "{rate}");
    let seen = transitions(&recovered);
    assert_eq!(seen.len(), 12);
    assert!(seen.values().all(|k| k == &[AlertKind::Recovery]));
    assert!(t.breaches().is_empty());
    assert!(t.poll_alerts(now).is_empty());
}

#[test]
fn no_judgement_below_min_offered_and_short_abandons_do_not_count() {
    let mut t = Tracker::new(SlaConfig::default());
    for _ in 0..19 {
        t.record(&done(Outcome::Abandoned, T0));
    }
    for _ in 0..30 {
        t.record(&done(Outcome::ShortAbandoned, T0));
    }
    assert!(t.poll_alerts(T0).is_empty(), "19 counted calls are too few");
    t.record(&done(Outcome::Failed, T0));
    let alerts = t.poll_alerts(T0);
    assert_eq!(alerts.len(), 12);
    assert!(
        alerts
            .iter()
            .all(|a| a.kind == AlertKind::Breach && a.answer_rate == 0.0 && a.offered == 50)
    );
}

#[test]
fn expiry_of_a_breachs_calls_recovers_window_by_window() {
    let mut t = Tracker::new(SlaConfig::default());
    for _ in 0..20 {
        t.record(&done_on(Outcome::Abandoned, T0, "12315"));
    }
    for _ in 0..40 {
        t.record(&done_on(Outcome::Answered, T0 + 10 * MIN, "12345"));
    }
    let overall_alerts = |alerts: &[super::Alert]| -> Vec<(String, Window, AlertKind)> {
        alerts
            .iter()
            .filter(|a| a.dimension == Dimension::Overall)
            .map(|a| (a.key.clone(), a.window, a.kind))
            .collect()
    };
    let first = t.poll_alerts(T0 + 10 * MIN);
    let breach = |w| ("all".to_string(), w, AlertKind::Breach);
    assert_eq!(
        overall_alerts(&first),
        [breach(Window::M15), breach(Window::H1), breach(Window::H24)]
    );
    assert!(
        first
            .iter()
            .any(|a| a.dimension == Dimension::Line && a.key == "12315")
    );
    assert!(!first.iter().any(|a| a.key == "12345"));
    let recovery = |w| vec![("all".to_string(), w, AlertKind::Recovery)];
    assert_eq!(overall_alerts(&t.poll_alerts(T0 + 15 * MIN - 1)), []);
    assert_eq!(
        overall_alerts(&t.poll_alerts(T0 + 15 * MIN)),
        recovery(Window::M15)
    );
    assert_eq!(
        overall_alerts(&t.poll_alerts(T0 + HOUR)),
        recovery(Window::H1)
    );
    assert_eq!(
        overall_alerts(&t.poll_alerts(T0 + 24 * HOUR)),
        recovery(Window::H24)
    );

    // Line 12315 lost all its calls: too few to judge, so its breach stays open
    // (no alert) and the line stays on the wallboard until enough calls come in.
    let open: Vec<_> = t
        .breaches()
        .into_iter()
        .filter(|b| b.key == "12315")
        .collect();
    assert_eq!(open.len(), 3);
    assert!(open.iter().all(|b| b.since_ms == T0 + 10 * MIN));
    t.advance(T0 + 48 * HOUR);
    assert_eq!(
        t.figures(Dimension::Line, "12315", Window::H24),
        Some(Counters::default())
    );
    assert_eq!(
        t.figures(Dimension::Line, "12345", Window::H24),
        None,
        "forgotten"
    );
    let snap = t.snapshot(T0 + 48 * HOUR);
    assert_eq!(snap.lines.len(), 1);
    assert!(snap.lines[0].windows.h24.breached);
    let now = T0 + 48 * HOUR + SEC;
    for _ in 0..20 {
        t.record(&done_on(Outcome::Answered, now, "12315"));
    }
    let back = t.poll_alerts(now);
    assert!(
        back.iter()
            .filter(|a| a.key == "12315")
            .all(|a| a.kind == AlertKind::Recovery)
    );
    assert_eq!(back.iter().filter(|a| a.key == "12315").count(), 3);
    assert!(t.breaches().is_empty());
}

#[test]
fn alerts_from_a_snapshot_are_still_polled_and_recent_ones_are_capped() {
    let mut t = Tracker::new(SlaConfig {
        min_offered: 1,
        ..SlaConfig::default()
    });
    let mut now = T0;
    for _ in 0..30 {
        t.record(&done(Outcome::Abandoned, now));
        t.snapshot(now);
        now += 25 * HOUR;
        t.record(&done(Outcome::Answered, now));
        t.snapshot(now);
        now += 25 * HOUR;
    }
    let snap = t.snapshot(now);
    assert_eq!(snap.alerts.len(), 50);
    assert!(
        snap.alerts.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "oldest first"
    );
    assert_eq!(snap.alerts.last().unwrap().kind, AlertKind::Recovery);
    let polled = t.poll_alerts(now);
    assert_eq!(polled.len(), 30 * 2 * 12);
    assert!(t.poll_alerts(now).is_empty());
}
