//! China's working-day calendar as data: public holidays and make-up working days.
//!
//! Why data: the State Council publishes each year's holidays and the weekend days
//! worked in exchange (调休) only months ahead, so operators update the dialplan's
//! calendar every year; nothing here knows a date by heart. Owns the day kinds,
//! working-day tests and deadline arithmetic (work-order deadlines are counted in
//! working days); it must not read files or the clock.

use std::collections::BTreeSet;
use std::fmt;

use super::time::Date;

/// Why a calendar's data is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0} is listed both as a holiday and as a make-up working day")]
    HolidayAndWorkday(Date),
    #[error("make-up working day {0} is a {1}: only a Saturday or Sunday can be one")]
    WorkdayNotWeekend(Date, super::time::Weekday),
}

/// What kind of day a date is, for rules and for trace output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// Monday to Friday, not a holiday.
    Working,
    /// Saturday or Sunday, not a make-up working day.
    Weekend,
    /// A public holiday (including the weekdays of a holiday week).
    Holiday,
    /// A Saturday or Sunday worked in exchange for a holiday (调休).
    MakeUpWorkday,
}

impl DayKind {
    /// Whether people (and legacy department seats) work that day.
    pub fn is_working(self) -> bool {
        matches!(self, DayKind::Working | DayKind::MakeUpWorkday)
    }

    /// A short explanation for `dialplan trace`.
    pub fn why(self) -> &'static str {
        match self {
            DayKind::Working => "working day (Mon-Fri)",
            DayKind::Weekend => "weekend",
            DayKind::Holiday => "public holiday",
            DayKind::MakeUpWorkday => "make-up working day (调休)",
        }
    }
}

impl fmt::Display for DayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.why())
    }
}

/// The holidays and make-up working days the dialplan declares; every other day
/// follows the Monday–Friday week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Days off, whatever weekday they fall on.
    holidays: BTreeSet<Date>,
    /// Saturdays and Sundays that are working days (调休).
    workdays: BTreeSet<Date>,
}

impl Calendar {
    /// A calendar from its holidays and make-up working days. Fails when a date is
    /// in both lists, or a make-up working day is not a Saturday or Sunday (the
    /// usual typo when copying a year's notice).
    pub fn new(
        holidays: impl IntoIterator<Item = Date>,
        workdays: impl IntoIterator<Item = Date>,
    ) -> Result<Calendar, CalendarError> {
        let holidays: BTreeSet<Date> = holidays.into_iter().collect();
        let workdays: BTreeSet<Date> = workdays.into_iter().collect();
        if let Some(d) = holidays.intersection(&workdays).next() {
            return Err(CalendarError::HolidayAndWorkday(*d));
        }
        if let Some(d) = workdays.iter().find(|d| !d.weekday().is_weekend()) {
            return Err(CalendarError::WorkdayNotWeekend(*d, d.weekday()));
        }
        Ok(Calendar { holidays, workdays })
    }

    pub fn day_kind(&self, date: Date) -> DayKind {
        if self.holidays.contains(&date) {
            DayKind::Holiday
        } else if self.workdays.contains(&date) {
            DayKind::MakeUpWorkday
        } else if date.weekday().is_weekend() {
            DayKind::Weekend
        } else {
            DayKind::Working
        }
    }

    /// Monday–Friday unless a holiday; Saturday or Sunday only when a make-up
    /// working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.day_kind(date).is_working()
    }

    /// The `n`-th working day after `date` (`date` itself when `n` is 0, whatever
    /// kind of day it is): a deadline of "3 working days" from a Friday request is
    /// the following Wednesday, or later across a holiday.
    pub fn add_working_days(&self, date: Date, n: u32) -> Date {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day.succ();
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// `2026-10-10 Sat: make-up working day (调休)`, for trace output.
    pub fn why(&self, date: Date) -> String {
        format!("{date} {}: {}", date.weekday(), self.day_kind(date).why())
    }

    /// Whether the data mentions any day of `year`: a calendar with nothing for the
    /// current year has probably not been updated (`dialplan check` warns).
    pub fn has_year(&self, year: i32) -> bool {
        let first = Date::new(year, 1, 1).expect("January 1st exists");
        let last = Date::new(year, 12, 31).expect("December 31st exists");
        self.holidays.range(first..=last).next().is_some()
            || self.workdays.range(first..=last).next().is_some()
    }

    /// The years the data mentions, in order (for `dialplan check`'s summary).
    pub fn years(&self) -> BTreeSet<i32> {
        self.holidays()
            .chain(self.workdays())
            .map(Date::year)
            .collect()
    }

    pub fn holidays(&self) -> impl Iterator<Item = Date> + '_ {
        self.holidays.iter().copied()
    }

    pub fn workdays(&self) -> impl Iterator<Item = Date> + '_ {
        self.workdays.iter().copied()
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
