//! A report as CSV: one line per period and key, then one total line per key
//! (`period` = `total`). Rates are fractions with four decimals; empty when
//! their denominator is zero.

use super::{Figures, Report};

/// The figure columns, in order.
pub(super) const FIGURES: [&str; 37] = [
    "offered",
    "counted",
    "answered",
    "transferred_out",
    "answered_within",
    "abandoned",
    "short_abandoned",
    "failed",
    "overflowed",
    "answer_rate",
    "answered_within_per_counted",
    "answered_within_per_answered",
    "wait_avg_s",
    "wait_p90_s",
    "talk_avg_s",
    "surveyed",
    "survey_eligible",
    "survey_response_rate",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "satisfied_share",
    "basically_satisfied_share",
    "dissatisfied_share",
    "callbacks_owed",
    "callbacks_pending",
    "callbacks_done",
    "callbacks_given_up",
    "callbacks_within_limit",
    "callbacks_within_limit_share",
    "uncovered_hours",
    "callers",
    "callers_answered_first_call",
    "first_call_answer_rate",
    "callers_answered",
    "caller_answer_rate",
    "peak_hour",
];

pub(super) fn values(f: &Figures) -> [String; 36] {
    let n = |v: u64| v.to_string();
    let r = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let s = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    [
        n(f.offered),
        n(f.counted),
        n(f.answered),
        n(f.transferred_out),
        n(f.answered_within),
        n(f.abandoned),
        n(f.short_abandoned),
        n(f.failed),
        n(f.overflowed),
        r(f.answer_rate),
        r(f.answered_within_per_counted),
        r(f.answered_within_per_answered),
        s(f.wait_avg_s),
        f.wait_p90_s.map(|v| v.to_string()).unwrap_or_default(),
        s(f.talk_avg_s),
        n(f.surveyed),
        n(f.survey_eligible),
        r(f.survey_response_rate),
        n(f.satisfied),
        n(f.basically_satisfied),
        n(f.dissatisfied),
        r(f.satisfied_share),
        r(f.basically_satisfied_share),
        r(f.dissatisfied_share),
        n(f.callbacks_owed),
        n(f.callbacks_pending),
        n(f.callbacks_done),
        n(f.callbacks_given_up),
        n(f.callbacks_within_limit),
        r(f.callbacks_within_limit_share),
        n(f.uncovered_hours),
        n(f.callers),
        n(f.callers_answered_first_call),
        r(f.first_call_answer_rate),
        n(f.callers_answered),
        r(f.caller_answer_rate),
    ]
}

/// The report as CSV text (RFC 4180, UTF-8).
pub fn to_csv(r: &Report) -> String {
    let mut out = String::from("dimension,key,period,start,end");
    for c in FIGURES {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    let mut line = |key: &str, period: &str, start: &str, end: &str, v: &[String], peak: String| {
        let head = [r.dimension, key, period, start, end];
        let cells: Vec<String> = head
            .iter()
            .map(|s| field(s))
            .chain(v.iter().cloned())
            .chain(std::iter::once(peak))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    };
    for row in &r.rows {
        let v = values(&row.figures);
        line(
            &row.key,
            &row.period,
            &row.start,
            &row.end,
            &v,
            String::new(),
        );
    }
    for t in &r.totals {
        let v = values(&t.figures);
        let peak = t.peak_hour.map(|h| h.to_string()).unwrap_or_default();
        line(&t.key, "total", &r.from, &r.to, &v, peak);
    }
    out
}

/// A text cell: quoted when it holds a comma, quote or line break; a leading
/// `=`, `+`, `-` or `@` defused with `'` so spreadsheets do not run it.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_are_quoted_and_defused() {
        assert_eq!(field("12345"), "12345");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
