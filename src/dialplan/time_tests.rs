use super::*;

fn d(s: &str) -> Date {
    parse_date(s).unwrap()
}

#[test]
fn civil_round_trip_over_four_centuries() {
    // 1900-03-01 … 2300-03-01 covers every leap rule (1900 and 2100 are not leap
    // years, 2000 is).
    let start = d("1900-03-01").days_since_epoch();
    let mut prev = Date::from_days(start - 1);
    for n in start..start + 146_097 {
        let date = Date::from_days(n);
        assert_eq!(date.days_since_epoch(), n);
        assert_eq!(Date::new(date.year(), date.month(), date.day()), Ok(date));
        assert!(date > prev);
        assert_eq!(prev.succ(), date);
        prev = date;
    }
}

#[test]
fn known_days_and_weekdays() {
    let table = [
        ("1970-01-01", 0, Weekday::Thu),
        ("1900-03-01", -25_508, Weekday::Thu),
        ("2024-02-29", 19_782, Weekday::Thu),
        ("2100-03-01", 47_541, Weekday::Mon),
        ("2026-10-01", 20_727, Weekday::Thu),
        ("2026-10-10", 20_736, Weekday::Sat),
        ("1969-12-31", -1, Weekday::Wed),
    ];
    for (text, days, wd) in table {
        let date = d(text);
        assert_eq!(date.days_since_epoch(), days, "{text}");
        assert_eq!(Date::from_days(days), date, "{text}");
        assert_eq!(date.weekday(), wd, "{text}");
        assert_eq!(date.to_string(), text);
    }
}

#[test]
fn leap_years() {
    assert!(Date::new(2024, 2, 29).is_ok());
    assert!(Date::new(2000, 2, 29).is_ok());
    assert!(Date::new(2026, 2, 29).is_err());
    assert!(Date::new(1900, 2, 29).is_err());
    assert!(Date::new(2100, 2, 29).is_err());
    assert_eq!(d("2024-02-28").add_days(1), d("2024-02-29"));
    assert_eq!(d("2024-02-29").add_days(1), d("2024-03-01"));
    assert_eq!(d("2026-02-28").add_days(1), d("2026-03-01"));
    assert_eq!(d("2024-03-01").add_days(-366), d("2023-03-01"));
}

#[test]
fn date_syntax_is_strict() {
    for bad in [
        "2026-1-01",
        "2026/10/01",
        "26-10-01",
        "2026-10-01 ",
        "2026-10-0x",
        "",
        "２０２６-10-01",
        "2026-é-01",
        "2é2-10-01",
    ] {
        assert!(
            matches!(parse_date(bad), Err(TimeError::DateSyntax(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_date("2026-13-01"),
        Err(TimeError::NoSuchDate {
            year: 2026,
            month: 13,
            day: 1
        })
    );
    assert!(parse_date("2026-04-31").is_err());
    assert!(parse_date("2026-04-00").is_err());
    assert_eq!("2026-10-01".parse::<Date>(), Ok(d("2026-10-01")));
}

#[test]
fn local_time_in_shanghai() {
    // (unix seconds, expected local "YYYY-MM-DD Www HH:MM")
    let table = [
        (0, "1970-01-01 Thu 08:00"),
        (1_767_196_799, "2025-12-31 Wed 23:59"), // 15:59:59Z: last second of the year
        (1_767_196_800, "2026-01-01 Thu 00:00"), // 16:00:00Z: the year turns at 16:00 UTC
        (1_709_136_000, "2024-02-29 Thu 00:00"), // 2024-02-28T16:00Z
        (1_790_818_200, "2026-10-01 Thu 09:30"),
        (-1, "1970-01-01 Thu 07:59"),
        (-8 * 3600, "1970-01-01 Thu 00:00"),
        (-8 * 3600 - 60, "1969-12-31 Wed 23:59"),
    ];
    for (secs, want) in table {
        assert_eq!(
            local_time(secs, SHANGHAI_OFFSET_MINUTES).to_string(),
            want,
            "{secs}"
        );
    }
    let t = local_time(1_790_818_200, SHANGHAI_OFFSET_MINUTES);
    assert_eq!(
        (t.year, t.month, t.day, t.minute_of_day),
        (2026, 10, 1, 9 * 60 + 30)
    );
    assert_eq!(t.date(), d("2026-10-01"));
    // The same instant in UTC and at a negative offset.
    assert_eq!(
        local_time(1_790_818_200, 0).to_string(),
        "2026-10-01 Thu 01:30"
    );
    assert_eq!(
        local_time(1_790_818_200, -5 * 60).to_string(),
        "2026-09-30 Wed 20:30"
    );
}

#[test]
fn rfc3339() {
    let ok = [
        ("2026-10-01T09:30:00+08:00", 1_790_818_200),
        ("2026-10-01T01:30:00Z", 1_790_818_200),
        ("2026-10-01t01:30:00z", 1_790_818_200),
        ("2026-10-01 01:30:00Z", 1_790_818_200),
        ("2026-10-01T01:30:00.999Z", 1_790_818_200),
        ("2026-09-30T20:30:00-05:00", 1_790_818_200),
        ("2026-01-01T00:00:00+08:00", 1_767_196_800),
        ("1970-01-01T00:00:00Z", 0),
        ("2016-12-31T23:59:60Z", 1_483_228_800), // leap second: the next second
    ];
    for (text, want) in ok {
        assert_eq!(parse_rfc3339(text), Ok(want), "{text}");
    }
    for bad in [
        "2026-10-01",
        "2026-10-01T09:30+08:00",
        "2026-10-01T09:30:00",
        "2026-10-01T09:30:00+0800",
        "2026-10-01T09:30:00+08",
        "2026-10-01T09:30:00.Z",
        "2026-10-01X09:30:00Z",
        "2026-10-01T09:30:00 Z",
        "2026-10-01T09:30:00Z ",
        "2026-10-01T09:30:00+08:00:00",
        "2026-10-01T０9:30:00Z",
    ] {
        assert!(
            matches!(parse_rfc3339(bad), Err(TimeError::Rfc3339Syntax(_))),
            "{bad:?}"
        );
    }
    for range in [
        "2026-10-01T24:00:00Z",
        "2026-10-01T09:60:00Z",
        "2026-10-01T09:30:61Z",
        "2026-10-01T09:30:00+24:00",
    ] {
        assert!(
            matches!(parse_rfc3339(range), Err(TimeError::TimeOfDay(_))),
            "{range}"
        );
    }
    assert!(matches!(
        parse_rfc3339("2026-02-30T00:00:00Z"),
        Err(TimeError::NoSuchDate { .. })
    ));
}

#[test]
fn weekday_names() {
    assert_eq!(Weekday::from_name("mon"), Some(Weekday::Mon));
    assert_eq!(Weekday::from_name("SUNDAY"), Some(Weekday::Sun));
    assert_eq!(Weekday::from_name("Thu"), Some(Weekday::Thu));
    assert_eq!(Weekday::from_name("th"), None);
    assert_eq!(Weekday::from_name("weekday"), None);
    assert_eq!(Weekday::Sun.add_days(1), Weekday::Mon);
    assert_eq!(Weekday::Mon.add_days(-1), Weekday::Sun);
    assert!(Weekday::Sat.is_weekend() && !Weekday::Fri.is_weekend());
}
