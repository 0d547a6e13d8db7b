//! What a plan is warned about without being refused (`dialplan check`, the
//! start, every reload): a parallel line that rings its legacy seats longer
//! than the service level, and a holiday calendar without the next year.
//! Pure: the caller passes the service-level seconds and today's local date.

use super::time::Date;
use super::{Dialplan, Route};

/// The warnings for `plan`, each naming where to change it.
pub fn warnings(plan: &Dialplan, answer_within_s: u32, today: Date) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines: Vec<_> = plan.lines().collect();
    lines.sort_by(|a, b| a.number.cmp(&b.number));
    for l in lines {
        if let Route::Parallel { ring_time, .. } = &l.route
            && ring_time.as_secs() > u64::from(answer_within_s)
        {
            out.push(format!(
                "{}: ring_time_s: line {} ({}) rings its legacy seats for {} s, longer than the \
                 service level ([sla] answer_within_s = {answer_within_s}): a call that overflows \
                 to 12345 after the full ring can never count as answered within \
                 {answer_within_s} s of its arrival, unless [sla] offer_clock = \"queue\" (the \
                 reports' `12345` seats count from the queue either way)",
                l.defined_at,
                l.number,
                l.name,
                ring_time.as_secs()
            ));
        }
    }
    for year in [today.year(), today.year() + 1] {
        if !plan.calendar.has_year(year) {
            out.push(format!(
                "calendar: no [[calendar]] for {year}: work-order deadlines that reach into \
                 {year} ignore its public holidays and make-up working days (调休); add the \
                 State Council's {year} notice (published each November or December) and \
                 reload"
            ));
        }
    }
    out
}

/// The last year the calendar has days for (`None` when empty): the metric
/// `hotline_calendar_last_year`.
pub fn calendar_last_year(plan: &Dialplan) -> Option<i32> {
    plan.calendar.years().last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ring: u32, calendar: &str) -> Dialplan {
        let lines = format!(
            "[[trunk]]\nname = \"legacy\"\nkind = \"legacy\"\nsources = [\"127.0.0.2\"]\n\
             target = \"sip:127.0.0.2:5060\"\n\n\
             [[line]]\nnumber = \"12333\"\nname = \"人社\"\nmode = \"parallel\"\nqueue = \"q\"\n\
             legacy_trunk = \"legacy\"\nring_time_s = {ring}\n\n\
             [[queue]]\nname = \"q\"\nstatic_members = [\"sip:127.0.0.1:5070\"]\n"
        );
        let mut files = vec![("lines.toml".to_string(), lines)];
        if !calendar.is_empty() {
            files.push(("calendar.toml".to_string(), calendar.to_string()));
        }
        super::super::parse_sources(&files).unwrap()
    }

    const CAL_2026: &str = "[[calendar]]\nyear = 2026\nholidays = [\"2026-10-01\"]\n";

    #[test]
    fn a_ring_longer_than_the_service_level_is_named_with_its_place() {
        let today = Date::new(2026, 12, 7).unwrap();
        let two = format!("{CAL_2026}[[calendar]]\nyear = 2027\nholidays = [\"2027-01-01\"]\n");
        let w = warnings(&plan(20, &two), 15, today);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("lines.toml:"), "{}", w[0]);
        assert!(w[0].contains("ring_time_s") && w[0].contains("12333") && w[0].contains("20 s"));
        assert!(
            warnings(&plan(15, &two), 15, today).is_empty(),
            "15 s still meets 15 s"
        );
        assert!(warnings(&plan(20, &two), 30, today).is_empty());
    }

    #[test]
    fn a_calendar_without_next_year_is_warned_about() {
        let today = Date::new(2026, 12, 7).unwrap();
        let w = warnings(&plan(10, CAL_2026), 15, today);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("calendar: no [[calendar]] for 2027"),
            "{}",
            w[0]
        );
        let w = warnings(&plan(10, ""), 15, today);
        assert_eq!(w.len(), 2, "neither this year nor the next: {w:?}");
        assert_eq!(calendar_last_year(&plan(10, CAL_2026)), Some(2026));
        assert_eq!(calendar_last_year(&plan(10, "")), None);
    }
}
