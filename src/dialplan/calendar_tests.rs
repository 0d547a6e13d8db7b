use super::*;
use crate::dialplan::time::{Weekday, parse_date};

fn d(s: &str) -> Date {
    parse_date(s).unwrap()
}

/// A made-up Golden Week shaped like China's usual pattern (NOT the official 2026
/// calendar): holidays Thu 1 – Thu 8 October, worked back on Sunday 27 September
/// and Saturday 10 October.
fn golden_week() -> Calendar {
    let holidays = (1..=8).map(|day| Date::new(2026, 10, day).unwrap());
    Calendar::new(holidays, [d("2026-09-27"), d("2026-10-10")]).unwrap()
}

#[test]
fn day_kinds_around_golden_week() {
    let cal = golden_week();
    let table = [
        ("2026-09-25", Weekday::Fri, DayKind::Working),
        ("2026-09-26", Weekday::Sat, DayKind::Weekend),
        ("2026-09-27", Weekday::Sun, DayKind::MakeUpWorkday),
        ("2026-09-30", Weekday::Wed, DayKind::Working),
        ("2026-10-01", Weekday::Thu, DayKind::Holiday),
        ("2026-10-03", Weekday::Sat, DayKind::Holiday),
        ("2026-10-05", Weekday::Mon, DayKind::Holiday),
        ("2026-10-08", Weekday::Thu, DayKind::Holiday),
        ("2026-10-09", Weekday::Fri, DayKind::Working),
        ("2026-10-10", Weekday::Sat, DayKind::MakeUpWorkday),
        ("2026-10-11", Weekday::Sun, DayKind::Weekend),
        ("2026-10-12", Weekday::Mon, DayKind::Working),
    ];
    for (date, weekday, kind) in table {
        let date = d(date);
        assert_eq!(date.weekday(), weekday, "{date}");
        assert_eq!(cal.day_kind(date), kind, "{date}");
        assert_eq!(cal.is_working_day(date), kind.is_working(), "{date}");
    }
}

#[test]
fn working_day_deadlines() {
    let cal = golden_week();
    // (start, n, n-th working day after start)
    let table = [
        ("2026-09-30", 0, "2026-09-30"),
        ("2026-10-03", 0, "2026-10-03"), // n = 0 is the day itself, even a holiday
        ("2026-09-25", 1, "2026-09-27"), // Fri → the make-up Sunday
        ("2026-09-25", 2, "2026-09-28"),
        ("2026-09-30", 1, "2026-10-09"), // across the whole holiday week
        ("2026-09-30", 2, "2026-10-10"), // the make-up Saturday counts
        ("2026-09-30", 3, "2026-10-12"), // the Sunday after does not
        ("2026-10-03", 1, "2026-10-09"), // from inside the holiday
        ("2026-09-29", 5, "2026-10-13"),
        ("2026-10-10", 1, "2026-10-12"),
    ];
    for (start, n, want) in table {
        assert_eq!(
            cal.add_working_days(d(start), n),
            d(want),
            "{start} + {n} working days"
        );
    }
    // An empty calendar is the plain Monday–Friday week.
    let plain = Calendar::default();
    assert_eq!(plain.add_working_days(d("2026-10-02"), 3), d("2026-10-07"));
    assert_eq!(plain.add_working_days(d("2026-10-02"), 5), d("2026-10-09"));
    assert_eq!(plain.add_working_days(d("2026-10-03"), 1), d("2026-10-05"));
}

#[test]
fn inconsistent_data_is_rejected() {
    assert_eq!(
        Calendar::new([d("2026-10-10")], [d("2026-10-10")]),
        Err(CalendarError::HolidayAndWorkday(d("2026-10-10")))
    );
    let err = Calendar::new([], [d("2026-10-09")]).unwrap_err();
    assert_eq!(
        err,
        CalendarError::WorkdayNotWeekend(d("2026-10-09"), Weekday::Fri)
    );
    assert_eq!(
        err.to_string(),
        "make-up working day 2026-10-09 is a Fri: only a Saturday or Sunday can be one"
    );
    // A holiday on a weekend is fine (holiday weeks span weekends), and so are duplicates.
    assert!(Calendar::new([d("2026-10-03"), d("2026-10-03")], []).is_ok());
}

#[test]
fn trace_text_and_years() {
    let cal = golden_week();
    assert_eq!(
        cal.why(d("2026-10-10")),
        "2026-10-10 Sat: make-up working day (调休)"
    );
    assert_eq!(cal.why(d("2026-10-01")), "2026-10-01 Thu: public holiday");
    assert_eq!(cal.why(d("2026-10-11")), "2026-10-11 Sun: weekend");
    assert_eq!(
        cal.why(d("2026-10-12")),
        "2026-10-12 Mon: working day (Mon-Fri)"
    );
    assert!(cal.has_year(2026));
    assert!(!cal.has_year(2027));
    assert_eq!(cal.holidays().count(), 8);
    assert_eq!(cal.workdays().collect::<Vec<_>>().len(), 2);
}
