//! What a report needs of one call: its classification (the same `sla::classify`
//! the live figures use) and the facts around it, cut into the parts each
//! dimension counts.

use std::borrow::Cow;

use crate::cdr::{CallRecord, EventKind};
use crate::sla::{Outcome, SlaConfig, Visit, classify};

/// The key of calls with no line, mode or department.
pub const NONE_KEY: &str = "(none)";

/// The key of the `12345 seats` aggregate on the `seats` dimension.
pub const SEATS_12345: &str = "12345";

/// A missed call's callback (漏接回拨).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    /// No callback is owed.
    None,
    Pending,
    /// Called back (an answered attempt, or an operator's mark); `within`:
    /// within `[sla] callback_within_h` of the missed call's end.
    Done {
        within: bool,
    },
    /// Given up after `[sla] callback_max_attempts` failed attempts.
    GivenUp,
}

/// One offered call, as reports count it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFact {
    /// The caller's number (for repeat callers).
    pub caller: String,
    pub line: Option<String>,
    pub mode: Option<String>,
    pub department: Option<String>,
    /// The first offer: the call's period and hour.
    pub offered_ms: i64,
    pub outcome: Outcome,
    /// Answered within the service-level seconds of the first offer.
    pub answered_within: bool,
    pub answered_ms: Option<i64>,
    /// From the answer to the end, or to the transfer out.
    pub talk_ms: Option<i64>,
    /// 1 satisfied, 2 basically satisfied, 3 dissatisfied.
    pub survey: Option<u8>,
    /// The gateway asks for a rating on such calls: answered by a 12345 seat, not
    /// transferred, and the agent hung up first (or a rating was given).
    pub survey_eligible: bool,
    pub callback: Callback,
    /// Where a person should have answered, in order (at least one).
    pub visits: Vec<Visit>,
    /// The hour (Unix ms / 1 h) in which the call reached a queue with nobody
    /// logged in, if it did (7×24 coverage).
    pub unstaffed_hour: Option<i64>,
    /// When the call first entered an ACD queue (after a line's announcement,
    /// or on overflow): where `seats=12345` starts counting.
    pub queued_ms: Option<i64>,
}

impl CallFact {
    /// The facts of a finished call; `None` when it was never offered to a person.
    pub fn of(r: &CallRecord, sla: &SlaConfig) -> Option<CallFact> {
        let c = classify(r, sla)?;
        let offered_ms = c.visits.first()?.offered_ms;
        let answered_ms = c.wait_ms.map(|w| offered_ms + w);
        let talk_ms = answered_ms.map(|a| {
            let until = r
                .events
                .iter()
                .find(|e| e.kind == EventKind::TransferredOut && e.at_ms >= a)
                .map_or(r.ended_at_ms, |e| e.at_ms);
            (until - a).max(0)
        });
        let owed = r.callback_pending
            || c.outcome == Outcome::Abandoned
            || crate::call::Reason::from_code(&r.reason)
                .is_some_and(crate::call::Reason::owes_callback);
        let within_ms = i64::from(sla.callback_within_h) * 3_600_000;
        let callback = match (owed, r.callback_pending, r.callback_state.as_deref()) {
            (false, _, _) => Callback::None,
            (true, true, _) => Callback::Pending,
            (true, false, Some("given_up")) => Callback::GivenUp,
            (true, false, _) => Callback::Done {
                // Marked done before callbacks kept their time: not known in time.
                within: r
                    .callback_done_at_ms
                    .is_some_and(|d| d - r.ended_at_ms <= within_ms),
            },
        };
        let survey = r.survey.filter(|s| (1..=3).contains(s));
        let survey_eligible = survey.is_some()
            || (c.outcome == Outcome::Answered
                && r.answered_by.as_deref() == Some("12345")
                && r.transferred_to.is_none()
                && r.reason == "call.callee_hangup");
        Some(CallFact {
            caller: r.caller.clone(),
            line: r.line.clone(),
            mode: r.mode.clone(),
            department: r.department.clone(),
            offered_ms,
            outcome: c.outcome,
            answered_within: c.answered_within,
            answered_ms,
            talk_ms,
            survey,
            survey_eligible,
            callback,
            queued_ms: r.first(EventKind::Queued).map(|e| e.at_ms),
            unstaffed_hour: r
                .first(EventKind::Unstaffed)
                .map(|e| e.at_ms.div_euclid(3_600_000)),
            visits: c.visits,
        })
    }
}

/// What a call brings to one key of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<'a> {
    pub key: Cow<'a, str>,
    pub outcome: Outcome,
    pub answered_within: bool,
    /// From the offer here to the answer, when answered here.
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub survey: Option<u8>,
    pub survey_eligible: bool,
    pub callback: Callback,
    /// The hour this part reached a queue with nobody logged in.
    pub unstaffed_hour: Option<i64>,
}

/// The report dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Every offered call, key `all`.
    Overall,
    Line,
    Mode,
    /// Each place a call was offered: an ACD queue, `legacy:<line>`, `sip:<line>`.
    /// An overflowed call counts on every queue it visited.
    Queue,
    Department,
    /// Who should answer: `12345` (every ACD queue together: 12345's own seats),
    /// or each legacy platform (`legacy:<line>`) and direct SIP line (`sip:<line>`)
    /// apart. Calls answered by legacy seats are not in `12345`.
    Seats,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Overall,
        Dimension::Line,
        Dimension::Mode,
        Dimension::Queue,
        Dimension::Department,
        Dimension::Seats,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Overall => "overall",
            Dimension::Line => "line",
            Dimension::Mode => "mode",
            Dimension::Queue => "queue",
            Dimension::Department => "department",
            Dimension::Seats => "seats",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A line, mode or department as a key (`(none)` when absent).
fn key_of(v: &Option<String>) -> Cow<'_, str> {
    Cow::Borrowed(v.as_deref().unwrap_or(NONE_KEY))
}

/// Whose seats a place is: `legacy:…` and `sip:…` stand alone, every ACD queue
/// is 12345's.
fn seat_class(place: &str) -> &str {
    if place.starts_with("legacy:") || place.starts_with("sip:") {
        place
    } else {
        SEATS_12345
    }
}

impl CallFact {
    /// The whole call under one key.
    fn whole<'a>(&'a self, key: Cow<'a, str>) -> Part<'a> {
        Part {
            key,
            outcome: self.outcome,
            answered_within: self.answered_within,
            wait_ms: self.answered_ms.map(|a| a - self.offered_ms),
            talk_ms: self.talk_ms,
            survey: self.survey,
            survey_eligible: self.survey_eligible,
            callback: self.callback,
            unstaffed_hour: self.unstaffed_hour,
        }
    }

    /// The parts this call brings to `dim`, given the service-level time.
    pub fn parts(&self, dim: Dimension, within_ms: i64) -> Vec<Part<'_>> {
        match dim {
            Dimension::Overall => vec![self.whole(Cow::Borrowed("all"))],
            Dimension::Line => vec![self.whole(key_of(&self.line))],
            Dimension::Mode => vec![self.whole(key_of(&self.mode))],
            Dimension::Department => vec![self.whole(key_of(&self.department))],
            Dimension::Queue => self.visit_parts(
                self.visits
                    .iter()
                    .map(|v| (Cow::Borrowed(v.queue.as_str()), v.offered_ms))
                    .collect(),
                within_ms,
            ),
            Dimension::Seats => {
                // Consecutive visits to the same seats are one stay there.
                let mut stays: Vec<(Cow<'_, str>, i64)> = Vec::new();
                for v in &self.visits {
                    let class = seat_class(&v.queue);
                    if stays.last().is_none_or(|(k, _)| k != class) {
                        // 12345's seats count from the moment the call entered
                        // their queue (after a line's announcement).
                        let start = match self.queued_ms {
                            Some(q) if class == SEATS_12345 && q >= v.offered_ms => q,
                            _ => v.offered_ms,
                        };
                        stays.push((Cow::Borrowed(class), start));
                    }
                }
                self.visit_parts(stays, within_ms)
            }
        }
    }

    /// One part per stay: each stay but the last overflowed; the last has the
    /// call's outcome, its wait counted from the stay's own offer.
    fn visit_parts<'a>(&'a self, stays: Vec<(Cow<'a, str>, i64)>, within_ms: i64) -> Vec<Part<'a>> {
        let n = stays.len();
        stays
            .into_iter()
            .enumerate()
            .map(|(i, (key, offered_ms))| {
                if i + 1 < n {
                    return Part {
                        key,
                        outcome: Outcome::Overflowed,
                        answered_within: false,
                        wait_ms: None,
                        talk_ms: None,
                        survey: None,
                        survey_eligible: false,
                        callback: Callback::None,
                        unstaffed_hour: None,
                    };
                }
                let wait_ms = self.answered_ms.map(|a| (a - offered_ms).max(0));
                Part {
                    answered_within: wait_ms.is_some_and(|w| w <= within_ms),
                    wait_ms,
                    ..self.whole(key)
                }
            })
            .collect()
    }
}
