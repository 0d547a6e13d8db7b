//! Call records as the core emits them: the finished call, the refused request,
//! the caller turned away; and which side an ending reason belongs to.

use std::time::Instant;

use super::{AnsweredBy, CallKey, Core, Reason, called_number, caller_number};
use crate::cdr;
use crate::dialplan::number;
use crate::sip::message::{self, Request};
use crate::util::pii::Pii;
use tracing::{debug, warn};

/// What the core knows of a finished call (or a refused request): the seed of
/// the public call record, [`cdr::CallRecord`].
#[derive(Debug, Clone)]
pub struct FinishedCall {
    pub key: CallKey,
    /// The caller's Call-ID (A leg).
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// The dialplan line, when one matched.
    pub line: Option<String>,
    /// The ACD queue it was answered from or abandoned in (the last one).
    pub queue: Option<String>,
    /// The agent who answered (or was last rung).
    pub agent: Option<String>,
    /// Whether it overflowed from one queue to another.
    pub overflowed: bool,
    /// The transfer-directory number an agent transferred it to.
    pub transferred_to: Option<String>,
    /// Who answered, when someone did.
    pub answered_by: Option<AnsweredBy>,
    /// The line's integration mode (`hotline`, `parallel`…).
    pub mode: Option<&'static str>,
    pub department: Option<String>,
    /// The trunk the call came in over.
    pub trunk: Option<String>,
    /// The department's transfer number (a direct-merged line), for the stub.
    pub transfer_number: Option<String>,
    pub reason: Reason,
    /// The final status the caller received for its INVITE.
    pub final_code: u16,
    pub offered_at: Instant,
    pub answered_at: Option<Instant>,
    pub ended_at: Instant,
    /// The gateway's id for the call, unique across restarts.
    pub id: String,
    /// The number originally dialled (Diversion / History-Info), when known.
    pub original: Option<String>,
    /// What happened, in order, with Unix times: the raw log the SLA is computed from.
    pub events: Vec<cdr::Event>,
    pub received_ms: i64,
    pub ended_ms: i64,
    /// The line's name and the work order's due date, for the ticket stub.
    pub line_name: Option<String>,
    pub deadline: Option<String>,
    /// The caller's satisfaction rating (1–3), when the survey got one.
    pub survey: Option<u8>,
    /// The recording's file name, when the call was recorded.
    pub recording: Option<String>,
}

impl FinishedCall {
    /// The public call record. Its SLA `outcome` is left for `sla::classify`.
    pub fn to_cdr(&self) -> cdr::CallRecord {
        let at = |k: cdr::EventKind| self.events.iter().find(|e| e.kind == k).map(|e| e.at_ms);
        // Callers who reached a line and were not served for the gateway's
        // reasons are owed a call back.
        let callback = self.line.is_some() && self.reason.owes_callback();
        cdr::CallRecord {
            id: self.id.clone(),
            sip_call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            called: self.called.clone(),
            original: self.original.clone().filter(|o| *o != self.called),
            line: self.line.clone(),
            mode: self.mode.map(str::to_string),
            department: self.department.clone(),
            trunk: self.trunk.clone(),
            queue: self.queue.clone(),
            agent: self.agent.clone(),
            answered_by: self.answered_by.map(|a| a.as_str().to_string()),
            transferred_to: self.transferred_to.clone(),
            outcome: None,
            reason: self.reason.as_str().to_string(),
            final_code: self.final_code,
            received_at_ms: self.received_ms,
            offered_at_ms: at(cdr::EventKind::Offered),
            answered_at_ms: at(cdr::EventKind::Answered),
            ended_at_ms: self.ended_ms,
            survey: self.survey,
            recording: self.recording.clone(),
            callback_pending: callback,
            callback_state: None,
            callback_done_at_ms: None,
            events: self.events.clone(),
        }
    }
}

impl Core {
    /// A record for a call to a known line that was turned away (overload, store
    /// backlog): offered, failed, and waiting for a callback.
    pub(super) fn record_turned_away(
        &mut self,
        now: Instant,
        req: &Request,
        reason: Reason,
        line: &crate::dialplan::Line,
        offered: String,
        trunk: Option<String>,
    ) {
        self.record_refused(now, req, reason, 503);
        let at_ms = self.sh.unix_ms(now);
        if let Some(r) = self.records.back_mut() {
            r.trunk = trunk;
            r.line = Some(line.number.clone());
            r.line_name = Some(line.name.clone());
            r.mode = Some(line.mode.as_str());
            r.department = line.department.clone();
            r.events.insert(
                1,
                cdr::Event {
                    at_ms,
                    kind: cdr::EventKind::Offered,
                    detail: Some(offered),
                },
            );
        }
    }

    /// A record for a request refused before any call existed.
    pub(super) fn record_refused(
        &mut self,
        now: Instant,
        req: &Request,
        reason: Reason,
        code: u16,
    ) {
        let called = called_number(req);
        warn_refused(reason, code, &called);
        let key = self.next_key;
        self.next_key += 1;
        let at_ms = self.sh.unix_ms(now);
        let event = |kind, detail| cdr::Event {
            at_ms,
            kind,
            detail: Some(detail),
        };
        self.records.push_back(FinishedCall {
            id: self.sh.call_id_of(key),
            original: number::original_called(req).map(|(n, _)| n),
            events: vec![
                event(cdr::EventKind::Received, called.clone()),
                event(cdr::EventKind::GatewayEnded, reason.as_str().to_string()),
            ],
            received_ms: at_ms,
            ended_ms: at_ms,
            line_name: None,
            deadline: None,
            survey: None,
            recording: None,
            key,
            call_id: message::Headers::call_id(req)
                .unwrap_or_default()
                .to_string(),
            caller: caller_number(req),
            called,
            line: None,
            queue: None,
            agent: None,
            overflowed: false,
            transferred_to: None,
            answered_by: None,
            mode: None,
            department: None,
            trunk: None,
            transfer_number: None,
            reason,
            final_code: code,
            offered_at: now,
            answered_at: None,
            ended_at: now,
        });
    }
}

/// Which side ended a call, from its reason code.
pub(super) fn ending_kind(reason: Reason) -> cdr::EventKind {
    match reason {
        Reason::CallerHangup | Reason::CallerCancelled => cdr::EventKind::CallerHungUp,
        Reason::CalleeHangup => cdr::EventKind::CalleeHungUp,
        _ => cdr::EventKind::GatewayEnded,
    }
}

fn warn_refused(reason: Reason, code: u16, called: &str) {
    if reason == Reason::Overload {
        warn!(
            code,
            reason = reason.as_str(),
            "call refused: over the concurrent-call limit"
        );
    } else {
        debug!(code, reason = reason.as_str(), called = %Pii(called), "call refused");
    }
}
