//! Report periods on the local calendar: natural days (local midnight to local
//! midnight), Monday-first weeks, natural months, or the whole range asked.
//! Pure arithmetic on Unix milliseconds and a fixed UTC offset (Asia/Shanghai
//! has no daylight saving, so a fixed offset is exact).

use serde::{Deserialize, Serialize};

use crate::dialplan::time::Date;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// How a report's range is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    /// Monday to Sunday.
    Week,
    Month,
    /// The whole range asked, as one period.
    Range,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 4] = [
        PeriodKind::Day,
        PeriodKind::Week,
        PeriodKind::Month,
        PeriodKind::Range,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
            PeriodKind::Range => "range",
        }
    }

    pub fn parse(s: &str) -> Option<PeriodKind> {
        PeriodKind::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Local time arithmetic at one UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// Minutes east of UTC (+480 for Asia/Shanghai).
    pub offset_minutes: i32,
}

impl Zone {
    fn offset_ms(self) -> i64 {
        i64::from(self.offset_minutes) * 60_000
    }

    /// The local date at `ms`.
    pub fn date(self, ms: i64) -> Date {
        Date::from_days((ms + self.offset_ms()).div_euclid(DAY_MS))
    }

    /// The local hour of day (0–23) at `ms`.
    pub fn hour(self, ms: i64) -> usize {
        ((ms + self.offset_ms()).rem_euclid(DAY_MS) / HOUR_MS) as usize
    }

    /// Local midnight opening `date`, in Unix ms.
    pub fn midnight(self, date: Date) -> i64 {
        date.days_since_epoch() * DAY_MS - self.offset_ms()
    }

    /// The start of the period of `kind` holding `ms` (for `Range`: `range_from`).
    pub fn period_start(self, kind: PeriodKind, ms: i64, range_from: i64) -> i64 {
        let d = self.date(ms);
        match kind {
            PeriodKind::Day => self.midnight(d),
            PeriodKind::Week => self.midnight(d.add_days(-i64::from(d.weekday().index()))),
            PeriodKind::Month => self.midnight(first_of_month(d)),
            PeriodKind::Range => range_from,
        }
    }

    /// The start of the period after the one starting at `start`.
    pub fn period_end(self, kind: PeriodKind, start: i64, range_to: i64) -> i64 {
        let d = self.date(start);
        match kind {
            PeriodKind::Day => self.midnight(d.succ()),
            PeriodKind::Week => self.midnight(d.add_days(7)),
            PeriodKind::Month => {
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                self.midnight(Date::new(y, m, 1).unwrap_or(d))
            }
            PeriodKind::Range => range_to,
        }
    }

    /// The periods cutting `[from, to)`, each clipped to it, in order.
    pub fn periods(self, kind: PeriodKind, from: i64, to: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut start = self.period_start(kind, from, from);
        while start < to {
            let end = self.period_end(kind, start, to);
            if end <= start {
                break;
            }
            out.push((start.max(from), end.min(to)));
            start = end;
        }
        out
    }

    /// `2026-11-01T00:00:00+08:00`: an instant in local time.
    pub fn rfc3339(self, ms: i64) -> String {
        let local = ms + self.offset_ms();
        let d = Date::from_days(local.div_euclid(DAY_MS));
        let s = local.rem_euclid(DAY_MS) / 1000;
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        format!(
            "{d}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            s / 3600,
            s / 60 % 60,
            s % 60,
            off / 60,
            off % 60
        )
    }

    /// A period's name: `2026-11-03` (day), `2026-11-02/2026-11-08` (week, first
    /// and last day), `2026-11` (month), or first and last local day of a range.
    pub fn label(self, kind: PeriodKind, start: i64, end: i64) -> String {
        let first = self.date(start);
        let last = self.date(end - 1);
        match kind {
            PeriodKind::Day => first.to_string(),
            PeriodKind::Month => format!("{:04}-{:02}", first.year(), first.month()),
            PeriodKind::Week | PeriodKind::Range if first == last => first.to_string(),
            PeriodKind::Week | PeriodKind::Range => format!("{first}/{last}"),
        }
    }
}

fn first_of_month(d: Date) -> Date {
    Date::new(d.year(), d.month(), 1).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: Zone = Zone {
        offset_minutes: 480,
    };

    fn ms(s: &str) -> i64 {
        crate::dialplan::time::parse_rfc3339(s).unwrap() * 1000
    }

    #[test]
    fn a_local_day_runs_midnight_to_midnight_in_shanghai() {
        // 2026-11-03 23:59:59 local is 15:59:59 UTC; 00:00 local is 16:00 UTC.
        let late = ms("2026-11-03T23:59:59+08:00");
        assert_eq!(
            CN.period_start(PeriodKind::Day, late, 0),
            ms("2026-11-03T00:00:00+08:00")
        );
        assert_eq!(
            CN.date(ms("2026-11-03T16:00:00Z")).to_string(),
            "2026-11-04"
        );
        assert_eq!(CN.hour(ms("2026-11-03T16:30:00Z")), 0);
        assert_eq!(CN.hour(late), 23);
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-05 is a Thursday; its week starts Monday 2026-11-02.
        let t = ms("2026-11-05T10:00:00+08:00");
        assert_eq!(
            CN.period_start(PeriodKind::Week, t, 0),
            ms("2026-11-02T00:00:00+08:00")
        );
        assert_eq!(
            CN.period_start(PeriodKind::Month, t, 0),
            ms("2026-11-01T00:00:00+08:00")
        );
        let dec = ms("2026-12-01T00:00:00+08:00");
        assert_eq!(
            CN.period_end(PeriodKind::Month, ms("2026-11-01T00:00:00+08:00"), 0),
            dec
        );
        assert_eq!(
            CN.period_end(PeriodKind::Month, dec, 0),
            ms("2027-01-01T00:00:00+08:00")
        );
    }

    #[test]
    fn periods_are_clipped_to_the_range_and_labelled() {
        let from = ms("2026-11-29T12:00:00+08:00");
        let to = ms("2026-12-02T00:00:00+08:00");
        let days = CN.periods(PeriodKind::Day, from, to);
        assert_eq!(days.len(), 3);
        assert_eq!(days[0], (from, ms("2026-11-30T00:00:00+08:00")));
        let months = CN.periods(PeriodKind::Month, from, to);
        assert_eq!(months.len(), 2);
        assert_eq!(
            CN.label(PeriodKind::Month, months[1].0, months[1].1),
            "2026-12"
        );
        assert_eq!(
            CN.label(PeriodKind::Day, days[2].0, days[2].1),
            "2026-12-01"
        );
        let weeks = CN.periods(PeriodKind::Week, from, to);
        assert_eq!(
            CN.label(PeriodKind::Week, weeks[0].0, weeks[0].1),
            "2026-11-29",
            "clipped: Sunday alone"
        );
        assert_eq!(CN.periods(PeriodKind::Range, from, to), vec![(from, to)]);
        assert_eq!(CN.rfc3339(from), "2026-11-29T12:00:00+08:00");
    }
}
