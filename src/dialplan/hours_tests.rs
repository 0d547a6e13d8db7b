use super::*;
use crate::dialplan::time::{Date, parse_date};

/// Made-up Golden Week data (NOT the official calendar): holidays 1–8 October
/// 2026, make-up working days Sunday 27 September and Saturday 10 October.
fn cal() -> Calendar {
    let holidays = (1..=8).map(|day| Date::new(2026, 10, day).unwrap());
    let workdays = ["2026-09-27", "2026-10-10"].map(|s| parse_date(s).unwrap());
    Calendar::new(holidays, workdays).unwrap()
}

fn at(date: &str, hhmm: &str) -> LocalTime {
    let d = parse_date(date).unwrap();
    let (h, m) = hhmm.split_once(':').unwrap();
    LocalTime {
        year: d.year(),
        month: d.month(),
        day: d.day(),
        weekday: d.weekday(),
        minute_of_day: h.parse::<u16>().unwrap() * 60 + m.parse::<u16>().unwrap(),
    }
}

fn hours(rules: &[&str]) -> Hours {
    Hours::parse(rules).unwrap()
}

/// Runs a table of (date, time, expected open) against one set of rules.
fn check(rules: &[&str], table: &[(&str, &str, bool)]) {
    let h = hours(rules);
    let cal = cal();
    for &(date, time, want) in table {
        let (open, why) = h.is_open(&at(date, time), &cal);
        assert_eq!(open, want, "{rules:?} at {date} {time}: {why}");
        assert_eq!(h.decide(&at(date, time), &cal).open, want);
    }
}

#[test]
fn workdays_boundaries_and_calendar() {
    check(
        &["workdays 08:30-17:30"],
        &[
            ("2026-10-09", "00:00", false), // Fri
            ("2026-10-09", "08:29", false),
            ("2026-10-09", "08:30", true),
            ("2026-10-09", "17:29", true),
            ("2026-10-09", "17:30", false),
            ("2026-10-09", "23:59", false),
            ("2026-10-10", "09:00", true),  // make-up Saturday
            ("2026-09-27", "09:00", true),  // make-up Sunday
            ("2026-09-26", "09:00", false), // ordinary Saturday
            ("2026-10-11", "09:00", false), // ordinary Sunday
            ("2026-10-01", "09:00", false), // holiday (Thu)
            ("2026-10-05", "09:00", false), // holiday (Mon)
        ],
    );
}

#[test]
fn weekday_names_are_calendar_blind() {
    let table = [
        ("2026-10-05", "09:00", true),  // a holiday Monday is still a Monday
        ("2026-10-10", "09:00", false), // a make-up Saturday is still a Saturday
        ("2026-10-09", "12:00", false),
    ];
    check(&["mon-fri 08:00-12:00"], &table);
    check(
        &["sat,sun 09:00-17:00"],
        &[
            ("2026-10-10", "09:00", true),
            ("2026-09-26", "16:59", true),
            ("2026-09-26", "17:00", false),
            ("2026-10-09", "10:00", false),
        ],
    );
    // A range may wrap the week.
    check(
        &["sat-mon 10:00-11:00"],
        &[
            ("2026-09-26", "10:00", true),
            ("2026-09-27", "10:00", true),
            ("2026-09-28", "10:00", true),
            ("2026-09-29", "10:00", false),
        ],
    );
}

#[test]
fn closed_rule_wins() {
    let rules = ["mon-fri 08:00-12:00", "holidays closed"];
    check(
        &rules,
        &[
            ("2026-10-05", "09:00", false), // holiday Monday: closed wins
            ("2026-10-09", "09:00", true),
        ],
    );
    check(
        &["daily 00:00-24:00", "holidays closed"],
        &[
            ("2026-10-11", "00:00", true),
            ("2026-10-11", "23:59", true),
            ("2026-10-01", "12:00", false),
            ("2026-10-08", "23:59", false),
            ("2026-10-09", "00:00", true),
        ],
    );
    let (open, why) = hours(&rules).is_open(&at("2026-10-05", "09:00"), &cal());
    assert!(!open);
    assert_eq!(
        why,
        "closed at 2026-10-05 Mon 09:00 (public holiday): rule \"holidays closed\""
    );
}

#[test]
fn several_ranges_and_rules() {
    for rules in [
        &["mon-fri 08:00-12:00,14:00-17:30"][..],
        &["mon-fri 08:00-12:00 14:00-17:30"],
        &["mon-fri 14:00-17:30", "mon-fri 08:00-12:00"],
    ] {
        check(
            rules,
            &[
                ("2026-10-09", "07:59", false),
                ("2026-10-09", "08:00", true),
                ("2026-10-09", "11:59", true),
                ("2026-10-09", "12:00", false),
                ("2026-10-09", "13:59", false),
                ("2026-10-09", "14:00", true),
                ("2026-10-09", "17:30", false),
            ],
        );
    }
    // Calendar-aware and calendar-blind rules combine: weekday seats plus a
    // Saturday-morning shift.
    check(
        &["workdays 08:30-17:30", "sat 09:00-12:00", "holidays closed"],
        &[
            ("2026-09-26", "09:30", true),  // ordinary Saturday: the Saturday shift
            ("2026-09-26", "13:00", false), // … which ends at noon
            ("2026-10-10", "13:00", true),  // make-up Saturday: a full working day
            ("2026-10-03", "09:30", false), // holiday Saturday: closed wins
        ],
    );
    check(
        &["restdays 09:00-12:00"],
        &[
            ("2026-10-03", "09:00", true),  // holiday
            ("2026-10-11", "09:00", true),  // weekend
            ("2026-10-10", "09:00", false), // make-up Saturday
            ("2026-10-09", "09:00", false),
        ],
    );
}

#[test]
fn trace_reasons() {
    let h = hours(&["workdays 08:30-17:30"]);
    let cal = cal();
    assert_eq!(
        h.is_open(&at("2026-10-10", "09:00"), &cal).1,
        "open at 2026-10-10 Sat 09:00 (make-up working day (调休)): rule \"workdays 08:30-17:30\""
    );
    assert_eq!(
        h.is_open(&at("2026-10-09", "17:30"), &cal).1,
        "closed at 2026-10-09 Fri 17:30 (working day (Mon-Fri)): no rule opens then"
    );
    let d = h.decide(&at("2026-10-10", "09:00"), &cal);
    assert_eq!(
        d,
        Decision {
            open: true,
            rule: Some(0),
            day: DayKind::MakeUpWorkday
        }
    );
    let always = Hours::parse::<&str>(&[]).unwrap();
    assert!(always.is_empty());
    let (open, why) = always.is_open(&at("2026-10-01", "03:00"), &cal);
    assert!(open);
    assert!(why.ends_with("no hours configured (always open)"), "{why}");
    assert_eq!(always.to_string(), "always open");
    assert_eq!(
        hours(&[" workdays 08:30-17:30 ", "holidays closed"]).to_string(),
        "workdays 08:30-17:30; holidays closed"
    );
    let owned = vec![
        "Mon-Fri 8:00-12:00".to_string(),
        "HOLIDAYS CLOSED".to_string(),
    ];
    let h = Hours::parse(&owned).unwrap();
    assert_eq!(
        h.rules().collect::<Vec<_>>(),
        ["Mon-Fri 8:00-12:00", "HOLIDAYS CLOSED"]
    );
    assert!(!h.is_open(&at("2026-10-05", "09:00"), &cal).0);
    assert!(h.is_open(&at("2026-10-09", "08:00"), &cal).0);
}

#[test]
fn errors_name_the_rule_and_reason() {
    // (rules, index of the bad rule, fragment of the reason)
    let table: &[(&[&str], usize, &str)] = &[
        (&["workdays 08:3-17:30"], 0, "bad time \"08:3\""),
        (&["workdays 25:00-26:00"], 0, "bad time"),
        (&["workdays 08:60-09:00"], 0, "bad time"),
        (&["workdays 08:00-24:01"], 0, "bad time"),
        (&["workdays 0800-1700"], 0, "bad time"),
        (&["workdays 24:00-24:00"], 0, "cannot start at 24:00"),
        (&["workdays 17:30-08:30"], 0, "end is not after start"),
        (&["workdays 08:30-08:30"], 0, "end is not after start"),
        (&["someday 08:00-09:00"], 0, "unknown day \"someday\""),
        (&["weekdays 08:00-09:00"], 0, "unknown day"),
        (&["mon,,fri 08:00-09:00"], 0, "unknown day \"\""),
        (&["mon-fry 08:00-09:00"], 0, "unknown day \"fry\""),
        (&["mon-fri"], 0, "expected DAYS then"),
        (&["mon-fri ,"], 0, "expected HH:MM-HH:MM ranges or closed"),
        (&["mon-fri open"], 0, "bad time range \"open\""),
        (
            &["mon-fri 08:00-12:00,11:00-13:00"],
            0,
            "overlapping hours: 11:00-13:00 overlaps 08:00-12:00",
        ),
        (
            &["holidays closed", "mon-fri 08:00-12:00", "fri 11:30-13:00"],
            2,
            "overlapping hours: 11:30-13:00 overlaps 08:00-12:00 of hours[1]",
        ),
        (
            &["workdays 08:00-12:00", "workdays 11:00-13:00"],
            1,
            "overlapping hours",
        ),
        (
            &["daily 00:00-24:00", "sun 10:00-11:00"],
            1,
            "overlapping hours",
        ),
    ];
    for (rules, index, reason) in table {
        let err = Hours::parse(rules).unwrap_err();
        assert_eq!(err.index, *index, "{rules:?}: {err}");
        assert_eq!(err.rule, rules[*index].trim());
        assert!(err.reason.contains(reason), "{rules:?}: {err}");
    }
    let err = Hours::parse(&["mon-fri 08:00-12:00", "fri 11:30-13:00"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "hours[1] \"fri 11:30-13:00\": overlapping hours: 11:30-13:00 overlaps 08:00-12:00 \
         of hours[0] \"mon-fri 08:00-12:00\""
    );
    // Not overlaps: adjacent ranges, disjoint days, calendar-aware vs blind,
    // closed vs open (closed wins by design).
    for ok in [
        &["mon-fri 08:00-12:00", "mon-fri 12:00-13:00"][..],
        &["mon-fri 08:00-12:00", "sat 08:00-12:00"],
        &["workdays 08:00-12:00", "mon-fri 11:00-13:00"],
        &["workdays 08:00-12:00", "holidays 08:00-12:00"],
        &["daily 00:00-24:00", "holidays closed", "sun closed"],
    ] {
        assert!(Hours::parse(ok).is_ok(), "{ok:?}");
    }
}
