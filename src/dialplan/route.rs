//! The routing decision: which line a call reaches, in which mode, and where it
//! goes — a pure function of the plan, the call's facts and the local time, with
//! the reasons kept for `hotline-gw dialplan trace`.

use std::net::IpAddr;

use serde::Serialize;

use super::number::{self, OriginalSource};
use super::time::{Date, LocalTime};
use super::{Dialplan, Line, Route, Target};

/// What routing needs to know about a call.
#[derive(Debug, Clone)]
pub struct CallFacts {
    /// Digits of the Request-URI user (or `tel:` number).
    pub request_uri: Option<String>,
    /// Digits of the To URI.
    pub to: Option<String>,
    /// The original called number of a forwarded call, and where it came from.
    pub original: Option<(String, OriginalSource)>,
    pub source: IpAddr,
    /// The request carried valid digest credentials of an agent (an address
    /// alone proves nothing: DESIGN.md §7).
    pub from_agent: bool,
    pub at: LocalTime,
}

impl CallFacts {
    /// A call dialling `number` from `source` at `at`, with no other headers
    /// (`dialplan trace`, benchmarks).
    pub fn dialled(number: &str, source: IpAddr, at: LocalTime) -> CallFacts {
        CallFacts {
            request_uri: number::digits_of(number),
            to: None,
            original: None,
            source,
            from_agent: false,
            at,
        }
    }
}

/// Where the call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused: the status to answer and the stable reason code.
    Reject {
        code: u16,
        reason: &'static str,
    },
    Queue(String),
    Sip(Target),
    /// Ring the legacy seats first; overflow to `queue`.
    Legacy {
        target: Target,
        ring_time: std::time::Duration,
        queue: String,
    },
}

/// A routing decision and why it was taken.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub line: Option<&'a Line>,
    /// The number the line was found by.
    pub called: Option<String>,
    /// The trunk the call came from.
    pub trunk: Option<String>,
    pub outcome: Outcome,
    pub why: Vec<String>,
}

/// The decision in a form for `dialplan trace --json` and logs.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub line: Option<String>,
    pub line_name: Option<String>,
    pub mode: Option<&'static str>,
    pub department: Option<String>,
    pub called: Option<String>,
    pub trunk: Option<String>,
    pub route: String,
    pub why: Vec<String>,
}

impl Decision<'_> {
    pub fn view(&self) -> DecisionView {
        DecisionView {
            line: self.line.map(|l| l.number.clone()),
            line_name: self.line.map(|l| l.name.clone()),
            mode: self.line.map(|l| l.mode.as_str()),
            department: self.line.and_then(|l| l.department.clone()),
            called: self.called.clone(),
            trunk: self.trunk.clone(),
            route: match &self.outcome {
                Outcome::Reject { code, reason } => format!("reject {code} ({reason})"),
                Outcome::Queue(q) => format!("queue:{q}"),
                Outcome::Sip(t) => t.uri.clone(),
                Outcome::Legacy {
                    target,
                    ring_time,
                    queue,
                } => format!(
                    "legacy {} for {} s, then queue:{queue}",
                    target.uri,
                    ring_time.as_secs()
                ),
            },
            why: self.why.clone(),
        }
    }
}

/// The reasons of a decision, collected only when someone will read them.
#[derive(Debug)]
struct Why {
    explain: bool,
    notes: Vec<String>,
}

impl Why {
    fn push(&mut self, note: impl FnOnce() -> String) {
        if self.explain {
            self.notes.push(note());
        }
    }
}

impl Dialplan {
    /// Decides where a call goes (the signalling path: no explanation kept).
    pub fn decide(&self, facts: &CallFacts) -> Decision<'_> {
        self.decide_inner(facts, false)
    }

    /// Decides and explains why, for `dialplan trace` and logs.
    pub fn explain(&self, facts: &CallFacts) -> Decision<'_> {
        self.decide_inner(facts, true)
    }

    fn decide_inner(&self, facts: &CallFacts, explain: bool) -> Decision<'_> {
        let mut why = Why {
            explain,
            notes: Vec::new(),
        };
        let trunk = self.trunk_for(facts.source);
        match (trunk, facts.from_agent) {
            (Some(t), _) => {
                why.push(|| format!("source {} is trunk {:?} ({})", facts.source, t.name, t.kind))
            }
            (None, true) => {
                why.push(|| format!("source {} is an authenticated agent", facts.source))
            }
            (None, false) => {
                why.push(|| {
                    format!(
                        "source {} is no trunk and no authenticated agent",
                        facts.source
                    )
                });
                return self.reject(None, why, 403, "dialplan.untrusted_source");
            }
        }
        let trunk_name = trunk.map(|t| t.name.clone());
        let found = self.find_line(facts, &mut why);
        let Some((line, called)) = found else {
            let mut d = self.reject(None, why, 404, "dialplan.no_route");
            d.trunk = trunk_name;
            return d;
        };
        let today = facts.at.date();
        if !in_effect(line, today) {
            why.push(|| {
                format!(
                    "line {} is not in service on {today} (from {:?} until {:?})",
                    line.number, line.effective_from, line.effective_until
                )
            });
            let mut d = self.reject(Some(line), why, 404, "dialplan.line_not_in_service");
            d.trunk = trunk_name;
            return d;
        }
        let outcome = match &line.route {
            Route::Queue(q) => Outcome::Queue(q.clone()),
            Route::Sip(t) => Outcome::Sip(t.clone()),
            Route::Parallel {
                legacy,
                ring_time,
                queue,
            } => {
                let open = if line.hours.is_empty() {
                    why.push(|| "legacy seats open: no hours set".into());
                    true
                } else if explain {
                    let (open, rule) = line.hours.is_open(&facts.at, &self.calendar);
                    let state = if open { "open" } else { "closed" };
                    why.push(|| format!("legacy seats {state}: {rule}"));
                    open
                } else {
                    line.hours.decide(&facts.at, &self.calendar).open
                };
                if open {
                    Outcome::Legacy {
                        target: legacy.clone(),
                        ring_time: *ring_time,
                        queue: queue.clone(),
                    }
                } else {
                    Outcome::Queue(queue.clone())
                }
            }
        };
        Decision {
            line: Some(line),
            called: Some(called),
            trunk: trunk_name,
            outcome,
            why: why.notes,
        }
    }

    fn reject(
        &self,
        line: Option<&Line>,
        why: Why,
        code: u16,
        reason: &'static str,
    ) -> Decision<'_> {
        let line = line.and_then(|l| self.lines.get(&l.number));
        Decision {
            line,
            called: None,
            trunk: None,
            outcome: Outcome::Reject { code, reason },
            why: why.notes,
        }
    }

    /// The line a call reaches. A call-forwarding line named by Diversion or
    /// History-Info wins over the number the carrier forwarded to (12345).
    fn find_line(&self, facts: &CallFacts, why: &mut Why) -> Option<(&Line, String)> {
        if let Some((orig, source)) = &facts.original
            && let Some(line) = self.lookup(orig)
        {
            why.push(|| {
                format!(
                    "original called number {orig} from {source:?} is line {}",
                    line.number
                )
            });
            return Some((line, orig.clone()));
        }
        // The Request-URI decides when it carries a number; the To header only when
        // it does not (a trunk addressing the gateway by name). A number that is in
        // no line is refused rather than rescued by another header.
        let (what, digits) = match (&facts.request_uri, &facts.to) {
            (Some(d), _) => ("Request-URI", d),
            (None, Some(d)) => ("To", d),
            (None, None) => {
                why.push(|| "neither the Request-URI nor To carries a number".into());
                return None;
            }
        };
        if let Some(line) = self.lookup(digits) {
            why.push(|| {
                format!(
                    "{what} number {digits} is line {} ({})",
                    line.number,
                    line.mode.as_str()
                )
            });
            return Some((line, digits.clone()));
        }
        why.push(|| format!("{what} number {digits} is in no line"));
        None
    }

    /// A line by dialled digits: with an area code, that city's line first.
    pub fn lookup(&self, dialled: &str) -> Option<&Line> {
        let digits = number::digits_of(dialled).unwrap_or_else(|| dialled.to_string());
        let n = number::national(&digits);
        if let Some(area) = &n.area
            && let Some(l) = self.lines.get(&format!("{area}{}", n.number))
        {
            return Some(l);
        }
        self.lines.get(&n.number)
    }
}

fn in_effect(line: &Line, today: Date) -> bool {
    let parse = |d: &Option<String>| d.as_deref().and_then(|d| super::time::parse_date(d).ok());
    parse(&line.effective_from).is_none_or(|f| today >= f)
        && parse(&line.effective_until).is_none_or(|u| today <= u)
}
