//! Calling citizens back (漏接回拨, 国办函〔2025〕66号): an agent dials, from its
//! softphone, a number owed a callback; the gateway places the call over the
//! outbound trunk (`[[trunk]] kind = "outbound"`), presenting the trunk's
//! `caller_id`, and records the attempt and its result.
//!
//! Nothing else leaves: a number an agent dials that is neither a line nor
//! owed a callback, or that the trunk's patterns do not allow, gets `403`, and
//! no INVITE goes out (toll fraud stays closed). The list of numbers owed a
//! callback is the store's (missed calls with `callback_pending`, sent by the
//! reporting side every few seconds) plus the calls missed here since.
//! Every agent of the hotline may call back any number on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::info;

use super::routing::Routed;
use super::{Core, FinishedCall, Reason};
use crate::cdr::{self, CallbackEvent, CallbackResult};
use crate::dialplan::outbound::Outbound;
use crate::dialplan::{Dialplan, Line, Mode, Outcome, Route, Target};
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

/// Most numbers the list holds (the oldest beyond it are still in the store).
pub(super) const MAX_LISTED: usize = 100_000;

/// An attempt in progress: which missed call it answers, who dialled.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub missed: String,
    pub agent: String,
    pub number: String,
    pub started_ms: i64,
    /// The INVITE went out (an attempt refused here is no attempt).
    pub placed: bool,
}

/// The form numbers are kept and dialled in: national, without a country
/// code (`+8613800138000`, `008613800138000` → `13800138000`).
pub(super) fn normalized(number: &str) -> String {
    crate::dialplan::number::national(number.trim()).national_format()
}

/// The numbers owed a callback: number → the missed call's id.
#[derive(Debug, Default)]
pub(super) struct CallbackList {
    by_number: HashMap<String, String>,
}

impl CallbackList {
    fn owe(&mut self, number: &str, missed: &str) {
        let key = normalized(number);
        if self.by_number.len() < MAX_LISTED || self.by_number.contains_key(&key) {
            // The oldest missed call of a number is the one called back.
            self.by_number
                .entry(key)
                .or_insert_with(|| missed.to_string());
        }
    }

    fn get(&self, number: &str) -> Option<&String> {
        self.by_number.get(&normalized(number))
    }

    /// The number the missed call `missed` is owed a callback on.
    pub(super) fn number_of(&self, missed: &str) -> Option<&str> {
        self.by_number
            .iter()
            .find(|(_, id)| *id == missed)
            .map(|(n, _)| n.as_str())
    }
}

/// The outbound trunk's bounds at this node: calls at once, and new calls in
/// the current second.
#[derive(Debug, Default)]
pub(super) struct OutboundGate {
    active: usize,
    second: Option<Instant>,
    in_second: u32,
}

impl OutboundGate {
    /// Whether a new call may go out now; if so it is counted.
    pub(super) fn admit(&mut self, now: Instant, o: &Outbound) -> bool {
        if self
            .second
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            self.second = Some(now);
            self.in_second = 0;
        }
        if self.active >= o.max_concurrent || self.in_second >= o.cps {
            return false;
        }
        self.active += 1;
        self.in_second += 1;
        true
    }

    pub(super) fn release(&mut self) {
        self.active = self.active.saturating_sub(1);
    }
}

impl Core {
    /// Replaces the list of numbers owed a callback (number, missed call id),
    /// from the store, oldest missed call first.
    pub fn set_callbacks(&mut self, list: Vec<(String, String)>) {
        let mut fresh = CallbackList::default();
        for (number, id) in &list {
            fresh.owe(number, id);
        }
        self.sh.callbacks = fresh;
    }

    /// The next callback attempt started or ended, for the store.
    pub fn poll_callback(&mut self) -> Option<CallbackEvent> {
        self.sh.callback_events.pop_front()
    }

    /// An agent dialled `called`, which is no line: a callback over the
    /// outbound trunk when the number is owed one and the trunk allows it,
    /// else refused here (`None`: answered and recorded).
    pub(super) fn route_callback(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        agent: &str,
        plan: &Dialplan,
    ) -> Option<Routed> {
        let number = normalized(&super::called_number(req));
        let trunk = plan.outbound_trunk();
        let out = trunk.and_then(|t| Some((t, t.outbound.as_ref()?, t.target.clone()?)));
        let listed = self.sh.callbacks.get(&number).cloned();
        let refusal = match (&out, &listed) {
            (None, _) => Some((Reason::CallbackNoTrunk, "Forbidden (no outbound trunk)")),
            (Some((_, o, _)), Some(_)) if o.allows(&number) => None,
            _ => Some((
                Reason::CallbackNotListed,
                "Forbidden (not a number owed a callback)",
            )),
        };
        if let Some((reason, phrase)) = refusal {
            info!(
                agent,
                reason = reason.as_str(),
                "agent's call refused: nothing is dialled out"
            );
            self.sh.reply(now, tx, req, 403, phrase);
            self.record_refused(now, req, reason, 403);
            return None;
        }
        let ((trunk, o, target), missed) = (out?, listed?);
        if !self.sh.outbound.admit(now, o) {
            let tag = self.sh.ids.tag();
            let mut m =
                crate::sip::builder::response_to(req, 503, "Service Unavailable", Some(&tag));
            m.header("Retry-After", "1");
            self.sh.respond(now, tx, 503, m.finish_empty());
            self.record_refused(now, req, Reason::CallbackTrunkBusy, 503);
            return None;
        }
        let started_ms = self.sh.unix_ms(now);
        info!(agent, trunk = %trunk.name, "calling a citizen back");
        let target = Target {
            user: Some(number.clone()),
            ..target
        };
        Some(Routed {
            line: agent_line(format!("callback over {}", trunk.name), target.clone()),
            outcome: Outcome::Sip(target),
            caller_from_pai: Some(o.caller_id.clone()),
            original: None,
            trunk: Some(trunk.name.clone()),
            callback: Some(Attempt {
                missed,
                agent: agent.to_string(),
                number,
                started_ms,
                placed: false,
            }),
            announce: None,
            consult: None,
        })
    }

    /// A finished call: a callback attempt is reported (and, answered, its
    /// number leaves the list); a missed call owed a callback joins the list.
    pub(super) fn note_callback(&mut self, attempt: Option<Attempt>, record: &FinishedCall) {
        if let Some(a) = attempt {
            self.sh.outbound.release();
            if !a.placed {
                // Refused here (overload, media): no attempt was made.
                return;
            }
            let result = result_of(
                record.answered_at.is_some(),
                record.reason,
                record.final_code,
            );
            if result == CallbackResult::Answered {
                self.sh.callbacks.by_number.remove(&a.number);
            }
            self.sh
                .callback_events
                .push_back(CallbackEvent::Ended(cdr::CallbackAttempt {
                    id: record.id.clone(),
                    missed: a.missed,
                    agent: a.agent,
                    number: a.number,
                    at_ms: a.started_ms,
                    result,
                }));
            return;
        }
        if record.to_cdr().callback_pending {
            self.sh.callbacks.owe(&record.caller, &record.id);
        }
    }
}

impl super::Call {
    /// A callback's INVITE is going out: the attempt starts.
    pub(super) fn callback_placed(&mut self, sh: &mut super::Shared, now: Instant) {
        if let Some(a) = &mut self.callback {
            a.placed = true;
            sh.callback_events.push_back(CallbackEvent::Started {
                missed: a.missed.clone(),
                at_ms: sh.unix_ms(now),
            });
        }
    }
}

/// The attempt's result, from how its call ended.
pub(super) fn result_of(answered: bool, reason: Reason, final_code: u16) -> CallbackResult {
    if answered {
        return CallbackResult::Answered;
    }
    match (reason, final_code) {
        (Reason::CalleeBusy, _) | (_, 486 | 600) => CallbackResult::Busy,
        (_, 404 | 410 | 484 | 485 | 604) => CallbackResult::WrongNumber,
        (
            Reason::CalleeNoAnswer
            | Reason::CalleeTimeout
            | Reason::CallerCancelled
            | Reason::CallerHangup,
            _,
        )
        | (_, 408 | 480 | 487) => CallbackResult::NoAnswer,
        _ => CallbackResult::Failed,
    }
}

/// The line an agent's own call (a callback, a consultation) goes out on:
/// none of the plan's; not offered to anyone, so never counted in the answer
/// rate.
pub(super) fn agent_line(name: String, target: Target) -> Line {
    Line {
        number: String::new(),
        name,
        route: Route::Sip(target),
        mode: Mode::default(),
        department: None,
        transfer_number: None,
        prompt: None,
        hours: Default::default(),
        effective_from: None,
        effective_until: None,
        deadline_workdays: 0,
        survey: Some(false),
        record: None,
        defined_at: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_follow_how_the_attempt_ended() {
        use CallbackResult::*;
        assert_eq!(result_of(true, Reason::CallerHangup, 200), Answered);
        assert_eq!(result_of(false, Reason::CalleeBusy, 486), Busy);
        assert_eq!(result_of(false, Reason::CalleeRejected, 404), WrongNumber);
        assert_eq!(result_of(false, Reason::CalleeTimeout, 408), NoAnswer);
        assert_eq!(result_of(false, Reason::CallerCancelled, 487), NoAnswer);
        assert_eq!(result_of(false, Reason::CalleeRejected, 503), Failed);
    }

    #[test]
    fn the_gate_holds_calls_at_once_and_per_second() {
        let o = Outbound {
            caller_id: "12345".into(),
            allow: vec!["1XXXXXXXXXX".into()],
            max_concurrent: 3,
            cps: 2,
        };
        let mut g = OutboundGate::default();
        let t0 = Instant::now();
        assert!(g.admit(t0, &o));
        assert!(g.admit(t0, &o));
        assert!(!g.admit(t0, &o), "two per second");
        let t1 = t0 + Duration::from_secs(1);
        assert!(g.admit(t1, &o));
        assert!(!g.admit(t1 + Duration::from_secs(1), &o), "three at once");
        g.release();
        assert!(g.admit(t1 + Duration::from_secs(1), &o));
    }
}
