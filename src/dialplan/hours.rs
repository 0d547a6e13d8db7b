//! Opening hours of a parallel line's legacy seats: outside them, calls overflow
//! straight to 12345 (DESIGN.md §1).
//!
//! Owns the rule grammar, its validation and the open/closed decision with the
//! rule that made it (for `dialplan trace`). It must not read the clock: the caller
//! passes the local time and the [`Calendar`].
//!
//! One rule is `DAYS TIMES`, where
//! - `DAYS` is `workdays` (working days per the calendar: make-up weekend days in,
//!   holidays out), `holidays`, `restdays` (every day that is not a working day),
//!   `daily`, or calendar-blind weekday names: `mon-fri`, `sat,sun`, `mon-wed,fri`;
//! - `TIMES` is `closed`, or one or more `HH:MM-HH:MM` ranges separated by commas
//!   or spaces. Ranges include their start and exclude their end (`08:30-17:30` is
//!   open at 17:29, closed at 17:30); `24:00` ends a day; a range never crosses
//!   midnight (write `22:00-24:00` and `00:00-06:00` on the next days).
//!
//! A line's rules combine: a `closed` rule that matches the day wins; otherwise any
//! matching range opens. Two open rules for the same day set may not overlap (a sign
//! of a typo). A line with no rules is always open.

use std::fmt;

use super::calendar::{Calendar, DayKind};
use super::time::LocalTime;

/// A rule that cannot be used, with its position (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hours[{index}] {rule:?}: {reason}")]
pub struct HoursError {
    /// Position of the rule in the line's `hours` list, from 0.
    pub index: usize,
    /// The rule as written.
    pub rule: String,
    pub reason: String,
}

/// A line's opening hours: parsed, validated rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hours {
    rules: Vec<Rule>,
}

/// One rule of [`Hours`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// As written (trimmed), quoted in trace output and errors.
    text: String,
    days: Days,
    /// Half-open minute ranges `[start, end)`, sorted; empty means `closed`.
    ranges: Vec<(u16, u16)>,
}

/// Which days a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Days {
    /// Calendar-blind: bit `i` set for weekday index `i` (Monday = 0).
    Week(u8),
    /// Working days per the calendar (Mon–Fri and make-up days, minus holidays).
    Workdays,
    /// Public holidays per the calendar.
    Holidays,
    /// Every day that is not a working day per the calendar.
    Restdays,
}

impl Days {
    fn matches(self, t: &LocalTime, kind: DayKind) -> bool {
        match self {
            Days::Week(mask) => mask & (1 << t.weekday.index()) != 0,
            Days::Workdays => kind.is_working(),
            Days::Holidays => kind == DayKind::Holiday,
            Days::Restdays => !kind.is_working(),
        }
    }

    /// Whether two rules name (partly) the same days in the same terms, so that
    /// overlapping ranges between them are a mistake. Calendar-blind and
    /// calendar-aware rules are not compared: `workdays 08:30-17:30` with
    /// `sat 09:00-12:00` is a deliberate combination.
    fn same_set(self, other: Days) -> bool {
        match (self, other) {
            (Days::Week(a), Days::Week(b)) => a & b != 0,
            (a, b) => a == b,
        }
    }
}

/// The outcome of [`Hours::decide`], without allocating: which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub open: bool,
    /// The index of the deciding rule; `None` when no rule matched (closed) or the
    /// line has no rules (open).
    pub rule: Option<usize>,
    /// The calendar's view of the day.
    pub day: DayKind,
}

impl Hours {
    /// Parses and validates a line's rules; the first error names the rule.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Hours, HoursError> {
        let mut parsed: Vec<Rule> = Vec::with_capacity(rules.len());
        for (index, text) in rules.iter().enumerate() {
            let text = text.as_ref().trim();
            let err = |reason: String| HoursError {
                index,
                rule: text.to_string(),
                reason,
            };
            let rule = parse_rule(text).map_err(err)?;
            for (i, earlier) in parsed.iter().enumerate() {
                if let Some((a, b)) = overlap(earlier, &rule) {
                    return Err(err(format!(
                        "overlapping hours: {} overlaps {} of hours[{i}] {:?}",
                        span(b),
                        span(a),
                        earlier.text
                    )));
                }
            }
            parsed.push(rule);
        }
        Ok(Hours { rules: parsed })
    }

    /// Whether the line is open at `t`, and the rule or reason that decided, in
    /// words for `dialplan trace`.
    pub fn is_open(&self, t: &LocalTime, cal: &Calendar) -> (bool, String) {
        let d = self.decide(t, cal);
        let day = format!("{t} ({})", d.day.why());
        let why = match (d.open, d.rule) {
            (true, Some(i)) => format!("open at {day}: rule {:?}", self.rules[i].text),
            (false, Some(i)) => format!("closed at {day}: rule {:?}", self.rules[i].text),
            (true, None) => format!("open at {day}: no hours configured (always open)"),
            (false, None) => format!("closed at {day}: no rule opens then"),
        };
        (d.open, why)
    }

    /// The decision of [`Hours::is_open`] without formatting, for the routing path.
    pub fn decide(&self, t: &LocalTime, cal: &Calendar) -> Decision {
        let day = cal.day_kind(t.date());
        if self.rules.is_empty() {
            return Decision {
                open: true,
                rule: None,
                day,
            };
        }
        let closing = self
            .rules
            .iter()
            .position(|r| r.ranges.is_empty() && r.days.matches(t, day));
        if closing.is_some() {
            return Decision {
                open: false,
                rule: closing,
                day,
            };
        }
        let m = t.minute_of_day;
        let opening = self
            .rules
            .iter()
            .position(|r| r.days.matches(t, day) && r.ranges.iter().any(|&(s, e)| s <= m && m < e));
        Decision {
            open: opening.is_some(),
            rule: opening,
            day,
        }
    }

    /// The rules as written, in order.
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.text.as_str())
    }

    /// True when no rule is configured: the line is always open.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("always open");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&r.text)?;
        }
        Ok(())
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let (days, times) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| "expected DAYS then HH:MM-HH:MM or closed".to_string())?;
    let days = parse_days(days)?;
    let times = times.trim();
    let mut ranges = Vec::new();
    if !times.eq_ignore_ascii_case("closed") {
        for r in times
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|r| !r.is_empty())
        {
            ranges.push(parse_range(r)?);
        }
        if ranges.is_empty() {
            return Err("expected HH:MM-HH:MM ranges or closed".into());
        }
        ranges.sort_unstable();
        if let Some(w) = ranges.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(format!(
                "overlapping hours: {} overlaps {}",
                span(w[1]),
                span(w[0])
            ));
        }
    }
    Ok(Rule {
        text: text.to_string(),
        days,
        ranges,
    })
}

fn parse_days(spec: &str) -> Result<Days, String> {
    let lower = spec.to_ascii_lowercase();
    match lower.as_str() {
        "workdays" => return Ok(Days::Workdays),
        "holidays" => return Ok(Days::Holidays),
        "restdays" => return Ok(Days::Restdays),
        "daily" => return Ok(Days::Week(0x7f)),
        _ => {}
    }
    let mut mask = 0u8;
    for part in lower.split(',') {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let day = |name: &str| {
            super::time::Weekday::from_name(name).ok_or_else(|| {
                format!(
                    "unknown day {name:?}: use workdays, holidays, restdays, daily, \
                     or weekday names like mon-fri or sat,sun"
                )
            })
        };
        let (from, to) = (day(from)?, day(to)?);
        // A range may wrap the week: `sat-mon` is Saturday, Sunday and Monday.
        let len = (i64::from(to.index()) - i64::from(from.index())).rem_euclid(7);
        for n in 0..=len {
            mask |= 1 << from.add_days(n).index();
        }
    }
    Ok(Days::Week(mask))
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("bad time range {text:?}: expected HH:MM-HH:MM"))?;
    let (start, end) = (parse_hhmm(start)?, parse_hhmm(end)?);
    if start >= 24 * 60 {
        return Err(format!("bad time {text:?}: a range cannot start at 24:00"));
    }
    if end <= start {
        return Err(format!(
            "end is not after start in {text:?}: split a range that crosses midnight in two"
        ));
    }
    Ok((start, end))
}

/// `HH:MM` (or `H:MM`) to minutes since midnight; `24:00` allowed.
fn parse_hhmm(text: &str) -> Result<u16, String> {
    let bad = || format!("bad time {text:?}: expected HH:MM between 00:00 and 24:00");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let ok = |s: &str, max_len| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !ok(h, 2) || !ok(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The first pair of overlapping ranges between two open rules for the same days.
fn overlap(a: &Rule, b: &Rule) -> Option<((u16, u16), (u16, u16))> {
    if !a.days.same_set(b.days) {
        return None;
    }
    a.ranges.iter().find_map(|&x| {
        b.ranges
            .iter()
            .find(|&&y| x.0 < y.1 && y.0 < x.1)
            .map(|&y| (x, y))
    })
}

/// `08:30-17:30`.
fn span((start, end): (u16, u16)) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

#[cfg(test)]
#[path = "hours_tests.rs"]
mod tests;
