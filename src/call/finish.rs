//! How a call leaves the core: its last answers, the ACD told, the relay
//! closed, and its record emitted; and every call at once when the gateway stops.

use std::time::Instant;

use super::record::{FinishedCall, ending_kind};
use super::{CallKey, Core, Reason};
use crate::cdr;
use crate::sip::builder::response_to;
use crate::util::pii::Pii;

impl Core {
    /// Removes a call and emits its record. Requests still waiting for an answer
    /// from the other leg are answered here, so no server transaction is left open.
    pub(super) fn finish(&mut self, now: Instant, key: CallKey) {
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        call.release_acd(&mut self.sh, now);
        for (tx, req) in std::mem::take(&mut call.relays) {
            let tag = self.sh.ids.tag();
            // RFC 3261 §15.1.2: requests pending when the dialog ends get 487.
            let bytes = response_to(&req, 487, "Request Terminated", Some(&tag));
            self.sh.respond(now, tx, 487, bytes.finish_empty());
        }
        if let Some((tx, req)) = call.a_invite.take() {
            let bytes = response_to(&req, 500, "Server Internal Error", Some(&call.a.local_tag));
            call.final_code = 500;
            self.sh.respond(now, tx, 500, bytes.finish_empty());
        }
        if let Some(tag) = call.a_tag.take() {
            let k = (call.a.call_id.clone(), tag);
            // Only this call's entry (a later INVITE may have taken the key).
            if self.by_a.get(&k) == Some(&key) {
                self.by_a.remove(&k);
            }
        }
        if let Some(b) = call.b() {
            self.sh.by_b.remove(&b.dialog.call_id);
        }
        if let Some(t) = call.third.take() {
            if let Some(l) = call.legs.get(t.leg) {
                self.sh.by_b.remove(&l.dialog.call_id);
            }
            self.sh.ports.give_back(t.port);
        }
        for tx in &call.txs {
            self.sh.by_tx.remove(tx);
        }
        let media = call.media.take();
        let (survey, recording) = media
            .as_ref()
            .map_or((None, None), |m| (m.survey_digit, m.recording.clone()));
        self.sh.media_close(key, media);
        let reason = call.reason.unwrap_or(Reason::CalleeRejected);
        let ended_ms = self.sh.unix_ms(now);
        if !call.end_noted {
            call.events.push(cdr::Event {
                at_ms: ended_ms,
                kind: ending_kind(reason),
                detail: Some(reason.as_str().to_string()),
            });
        }
        let _enter = call.span.enter();
        tracing::info!(
            reason = reason.as_str(),
            code = call.final_code,
            state = call.state.name(),
            caller = %Pii(&call.caller),
            "call ended"
        );
        let id = self.sh.call_id_of(key);
        self.sh.adopted.remove(&key);
        // An agent's own call was offered to nobody: no line, no mode, not counted.
        let on_line = !call.agent_placed();
        let callback = call.callback.take();
        if let Some(h) = call.handover.as_ref().filter(|h| h.accepted) {
            // Handed over: the node that took it writes its record (same id).
            tracing::debug!(to = %h.node, "no record here: handed over");
            return;
        }
        let record = FinishedCall {
            key,
            call_id: call.a.call_id.to_string(),
            caller: call.caller,
            called: call.called,
            line: on_line.then_some(call.line),
            queue: call.queue,
            agent: call.agent,
            overflowed: call.overflowed,
            transferred_to: call.transferred_to,
            answered_by: call.answered_by,
            mode: on_line.then_some(call.mode.as_str()),
            department: call.department,
            trunk: call.trunk,
            transfer_number: call.transfer_number,
            reason,
            final_code: call.final_code,
            offered_at: call.offered_at,
            answered_at: call.answered_at,
            ended_at: now,
            id,
            original: call.original,
            received_ms: call.events.first().map_or(ended_ms, |e| e.at_ms),
            ended_ms,
            events: call.events,
            line_name: on_line.then_some(call.line_name),
            deadline: call.deadline,
            survey,
            recording,
        };
        self.note_callback(callback, &record);
        self.records.push_back(record);
    }

    /// Ends every call because the gateway is stopping: callers still waiting get
    /// `503`, answered calls get BYE on both legs, and every call leaves its record
    /// (reason `gateway.shutdown`) now rather than after the BYEs are answered.
    pub fn shutdown(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            if call.waiting() {
                let phrase = "Service Unavailable";
                call.abandon_early(&mut self.sh, now, Reason::Shutdown, 503, phrase);
            } else {
                call.set_reason(Reason::Shutdown);
                call.hang_up(&mut self.sh, now);
            }
            self.finish(now, key);
        }
        self.settle(now);
    }
}
