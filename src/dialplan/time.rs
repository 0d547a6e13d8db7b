//! Civil dates and local wall-clock time for time rules, without a date crate.
//!
//! Owns the proleptic Gregorian arithmetic (days-from-civil and back), the
//! conversion of a Unix timestamp to local time at a fixed UTC offset, and the two
//! text forms operators type: `2026-10-01` in calendar files and RFC 3339 instants
//! for `dialplan trace --at`. Pure: it never reads the clock; callers pass `now`.
//!
//! Asia/Shanghai is a fixed UTC+8 ([`SHANGHAI_OFFSET_MINUTES`]): China has had no
//! daylight saving time since 1991, so a fixed offset is exact for every date the
//! gateway meets.

use std::fmt;
use std::str::FromStr;

use crate::util::time::{civil_from_days, days_from_civil};

/// The UTC offset of Asia/Shanghai (China Standard Time), in minutes.
pub const SHANGHAI_OFFSET_MINUTES: i32 = 8 * 60;

const SECS_PER_DAY: i64 = 86_400;

/// Why a date or timestamp string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not a date of the form YYYY-MM-DD")]
    DateSyntax(String),
    #[error("{year:04}-{month:02}-{day:02} does not exist")]
    NoSuchDate { year: i32, month: u8, day: u8 },
    #[error("{0:?} is not an RFC 3339 time like 2026-10-01T09:30:00+08:00")]
    Rfc3339Syntax(String),
    #[error("{0:?}: time of day out of range")]
    TimeOfDay(String),
}

/// A day of the week. Chinese weeks, like ISO weeks, start on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday first, as [`Weekday::index`] counts.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The weekday `n` days later (negative: earlier).
    pub fn add_days(self, n: i64) -> Weekday {
        Weekday::ALL[(i64::from(self.index()) + n).rem_euclid(7) as usize]
    }

    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Sat | Weekday::Sun)
    }

    /// Parses `mon`, `Monday`, `TUE`… (three-letter or full English, any case).
    pub fn from_name(name: &str) -> Option<Weekday> {
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let lower = name.to_ascii_lowercase();
        FULL.iter()
            .position(|f| *f == lower || (lower.len() == 3 && f.starts_with(&*lower)))
            .map(|i| Weekday::ALL[i])
    }

    pub fn as_str(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self as usize]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid proleptic Gregorian date: the unit of holiday and make-up-day data.
///
/// Fields are private so that every `Date` exists; the derived order is
/// chronological (year, then month, then day).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// A date, if it exists (2024-02-29 does, 2026-02-29 does not).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, TimeError> {
        if (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month) {
            Ok(Date { year, month, day })
        } else {
            Err(TimeError::NoSuchDate { year, month, day })
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let (year, month, day) = civil_from_days(days);
        Date { year, month, day }
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3).
        Weekday::Thu.add_days(self.days_since_epoch())
    }

    /// The date `n` days later (negative: earlier).
    pub fn add_days(self, n: i64) -> Date {
        Date::from_days(self.days_since_epoch() + n)
    }

    /// The next day.
    pub fn succ(self) -> Date {
        self.add_days(1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Date, TimeError> {
        parse_date(s)
    }
}

/// Local wall-clock time: what opening hours and calendar rules are judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    pub weekday: Weekday,
    /// 0 (00:00) to 1439 (23:59); seconds are dropped.
    pub minute_of_day: u16,
}

impl LocalTime {
    /// The calendar date of this local time.
    pub fn date(&self) -> Date {
        Date {
            year: self.year,
            month: self.month,
            day: self.day,
        }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:02}:{:02}",
            self.date(),
            self.weekday,
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

/// The local time at `unix_secs` in a zone `utc_offset_minutes` east of UTC
/// ([`SHANGHAI_OFFSET_MINUTES`] for China).
pub fn local_time(unix_secs: i64, utc_offset_minutes: i32) -> LocalTime {
    let local = unix_secs.saturating_add(i64::from(utc_offset_minutes) * 60);
    let days = local.div_euclid(SECS_PER_DAY);
    let secs = local.rem_euclid(SECS_PER_DAY);
    let date = Date::from_days(days);
    LocalTime {
        year: date.year,
        month: date.month,
        day: date.day,
        weekday: date.weekday(),
        minute_of_day: (secs / 60) as u16,
    }
}

/// Parses `YYYY-MM-DD` (exactly that form: four-digit year, two-digit month and day).
pub fn parse_date(s: &str) -> Result<Date, TimeError> {
    let syntax = || TimeError::DateSyntax(s.to_string());
    let b = s.as_bytes();
    if b.len() != 10 || !s.is_ascii() || b[4] != b'-' || b[7] != b'-' {
        return Err(syntax());
    }
    let year = digits(&s[0..4]).ok_or_else(syntax)?;
    let month = digits(&s[5..7]).ok_or_else(syntax)?;
    let day = digits(&s[8..10]).ok_or_else(syntax)?;
    Date::new(year as i32, month as u8, day as u8)
}

/// Parses an RFC 3339 instant (`2026-10-01T09:30:00+08:00`, `…Z`, optional
/// fractional seconds, `t`/`z` or a space instead of `T` accepted) to Unix seconds.
/// Fractions are truncated; a leap second `:60` counts as the next second.
pub fn parse_rfc3339(s: &str) -> Result<i64, TimeError> {
    let syntax = || TimeError::Rfc3339Syntax(s.to_string());
    if s.len() < 20 || !s.is_ascii() {
        return Err(syntax());
    }
    let date = parse_date(&s[..10]).map_err(|e| match e {
        TimeError::DateSyntax(_) => syntax(),
        other => other,
    })?;
    let rest = &s[10..];
    let b = rest.as_bytes();
    if !matches!(b[0], b'T' | b't' | b' ') || b[3] != b':' || b[6] != b':' {
        return Err(syntax());
    }
    let hour = digits(&rest[1..3]).ok_or_else(syntax)?;
    let minute = digits(&rest[4..6]).ok_or_else(syntax)?;
    let second = digits(&rest[7..9]).ok_or_else(syntax)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimeError::TimeOfDay(s.to_string()));
    }
    let mut zone = &rest[9..];
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(syntax());
        }
        zone = &frac[n..];
    }
    let offset_secs = match zone.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = digits(&zone[1..3]).ok_or_else(syntax)?;
            let m = digits(&zone[4..6]).ok_or_else(syntax)?;
            if h > 23 || m > 59 {
                return Err(TimeError::TimeOfDay(s.to_string()));
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err(syntax()),
    };
    let local =
        date.days_since_epoch() * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second);
    Ok(local - offset_secs)
}

/// A run of ASCII digits as a number; `None` if empty or anything else is present.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
