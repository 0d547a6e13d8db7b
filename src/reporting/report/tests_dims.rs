//! The same scripted calls cut by line, department, mode, queue and seats; the
//! range's edges, the repeat window, and the CSV.

use super::tests::{H, S, close, day1, records, row, spec};
use super::*;

#[test]
fn lines_departments_and_modes_split_the_same_calls() {
    let r = build(&records(), spec(PeriodKind::Day, Dimension::Line));
    let f = row(&r, "12345", "2026-11-02");
    // A B C D E I L.
    assert_eq!(
        (f.offered, f.counted, f.answered, f.answered_within),
        (7, 6, 3, 2)
    );
    let f = row(&r, "12333", "2026-11-02");
    assert_eq!(
        (f.offered, f.answered, f.answered_within),
        (2, 2, 1),
        "G within, H 26 s from arrival"
    );
    let f = row(&r, "12315", "2026-11-02");
    assert_eq!(
        (f.offered, f.answered, f.transferred_out, f.answered_within),
        (1, 1, 1, 1)
    );
    let keys: Vec<&str> = r.totals.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["12315", "12333", "12345"]);
    assert_eq!(r.rows.len(), 6, "every key has both days, zeros included");
    assert_eq!(row(&r, "12333", "2026-11-03").offered, 0);

    let r = build(&records(), spec(PeriodKind::Range, Dimension::Department));
    let keys: Vec<(&str, u64)> = r
        .totals
        .iter()
        .map(|t| (t.key.as_str(), t.figures.offered))
        .collect();
    assert_eq!(keys, [("(none)", 8), ("人社", 2), ("市场监管", 1)]);
    assert_eq!(r.rows.len(), 3, "one period: the range");

    let r = build(&records(), spec(PeriodKind::Week, Dimension::Mode));
    let f = row(&r, "parallel", "2026-11-02/2026-11-03");
    assert_eq!(f.offered, 2);
    let f = row(&r, "hotline", "2026-11-02/2026-11-03");
    assert_eq!(f.offered, 8, "A B C D E I L J");
}

#[test]
fn twelve345_seats_leave_out_legacy_answers_and_time_from_reaching_12345() {
    let r = build(&records(), spec(PeriodKind::Day, Dimension::Seats));
    let f = row(&r, "12345", "2026-11-02");
    // Queue visits: A B C D E I L (hotline), F (market), H after its overflow.
    assert_eq!(f.offered, 9);
    assert_eq!(
        f.answered, 5,
        "A B E F H; not G, answered by the legacy seats"
    );
    assert_eq!(f.counted, 8);
    assert_eq!(
        f.answered_within, 4,
        "A E F, and H 6 s after reaching 12345"
    );
    assert!(close(f.answer_rate, 5.0 / 8.0));
    assert_eq!(f.overflowed, 0);
    let f = row(&r, "legacy:12333", "2026-11-02");
    assert_eq!(
        (f.offered, f.answered, f.overflowed, f.answered_within),
        (2, 1, 1, 1),
        "G answered, H overflowed"
    );
    assert!(close(f.answer_rate, 0.5));

    let r = build(&records(), spec(PeriodKind::Day, Dimension::Queue));
    let f = row(&r, "hotline", "2026-11-02");
    assert_eq!(
        (f.offered, f.answered),
        (8, 4),
        "A B C D E I L, H's second visit"
    );
    let f = row(&r, "market", "2026-11-02");
    assert_eq!((f.offered, f.answered), (1, 1));
    assert!(close(f.wait_avg_s, 15.0));
}

#[test]
fn a_call_counts_when_first_offered_and_the_range_is_half_open() {
    let mut s = spec(PeriodKind::Range, Dimension::Overall);
    s.to_ms = day1() + 24 * H - 10 * S; // I is offered exactly here: left out
    let r = build(&records(), s.clone());
    assert_eq!(r.totals[0].figures.offered, 9);
    s.to_ms += 1;
    let r = build(&records(), s);
    assert_eq!(r.totals[0].figures.offered, 10);
    assert_eq!(r.from, "2026-11-02T00:00:00+08:00");
}

#[test]
fn a_shorter_repeat_window_counts_more_callers() {
    let mut s = spec(PeriodKind::Range, Dimension::Overall);
    s.repeat_window_ms = 30 * 60 * S; // E (40 min after C) is a new caller; L0→L too
    let r = build(&records(), s);
    let f = &r.totals[0].figures;
    // c1 (A) c2 c3 (C) c3 (E) c5 c6 c7 c8 c9 (L) c1 (J).
    assert_eq!(f.callers, 10);
    assert_eq!(f.callers_answered_first_call, 6, "A B E F G H");
}

#[test]
fn nothing_offered_gives_an_empty_report() {
    let r = build(&[], spec(PeriodKind::Day, Dimension::Line));
    assert!(r.rows.is_empty() && r.totals.is_empty());
    let csv = to_csv(&r);
    assert_eq!(csv.lines().count(), 1, "the header only");
}

#[test]
fn csv_has_one_line_per_row_and_total_with_the_same_figures() {
    let r = build(&records(), spec(PeriodKind::Day, Dimension::Overall));
    let csv = to_csv(&r);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 2 + 1);
    let head: Vec<&str> = lines[0].split(',').collect();
    let cell = |line: &str, name: &str| {
        let i = head.iter().position(|h| *h == name).unwrap();
        line.split(',').nth(i).unwrap().to_string()
    };
    assert_eq!(cell(lines[1], "period"), "2026-11-02");
    assert_eq!(cell(lines[1], "offered"), "10");
    assert_eq!(cell(lines[1], "answer_rate"), "0.6667");
    assert_eq!(cell(lines[1], "answered_within_per_counted"), "0.4444");
    assert_eq!(cell(lines[1], "answered_within_per_answered"), "0.6667");
    assert_eq!(cell(lines[1], "wait_p90_s"), "26");
    assert_eq!(cell(lines[3], "period"), "total");
    assert_eq!(cell(lines[3], "peak_hour"), "9");
    assert_eq!(
        cell(lines[2], "answered_within_per_answered"),
        "",
        "no answered call on day 2"
    );
}
