//! The callee leg's answers to the initial INVITE: provisional responses relayed
//! to the caller (with PRACK where the callee asks for it), the answer, and
//! failures that move the call on.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{CallKey, CallTimer, Core, Phase, Reason, Role, Side};
use crate::cdr;
use crate::sip::builder::{MessageBuf, response_to};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Response};
use crate::sip::transaction::TxId;

impl Core {
    pub(super) fn on_response(&mut self, now: Instant, tx: TxId, resp: Response) {
        let Some(&(key, role)) = self.by_tx.get(&tx) else {
            return;
        };
        match role {
            Role::BInvite => self.on_b_invite_response(now, key, tx, resp),
            Role::Fire => {
                if resp.code >= 200 {
                    self.by_tx.remove(&tx);
                }
            }
            Role::Bye => {
                if resp.code >= 200 {
                    self.bye_done(now, key, tx);
                }
            }
            Role::Relay {
                server,
                to,
                invite,
                cseq,
            } => self.relay_response(now, key, tx, (server, to, invite, cseq), resp),
            Role::Orphan => self.on_orphan_response(now, key, tx, resp),
            Role::TransferInvite => self.on_transfer_invite_response(now, key, resp),
            Role::TransferReinvite => self.on_transfer_reinvite_response(now, key, tx, resp),
            Role::AInvite | Role::AwaitAck { .. } => {}
        }
    }

    pub(super) fn on_b_invite_response(
        &mut self,
        now: Instant,
        key: CallKey,
        tx: TxId,
        resp: Response,
    ) {
        let code = resp.code;
        let ring_timeout = self.cfg.ring_timeout;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.b.learn_from_response(&resp);
        // A queued call's seat is the ACD's business: it owns the ring timeout, and
        // the caller already hears ringback.
        let queued = call.queue.is_some();
        if code < 200 {
            let first = !call.b_provisional;
            call.b_provisional = true;
            if call.cancel_pending {
                call.cancel_pending = false;
                self.cancel_b(now, key, tx);
                return;
            }
            // Queued calls: the ACD owns the ring timeout; parallel calls: the line's
            // ring time, armed when the legacy leg was placed.
            if first && !queued && call.parallel.is_none() {
                self.arm_call_timer(key, CallTimer::Ring, now + ring_timeout);
            }
            if code > 100 {
                if let Some(rseq) = resp.header("RSeq").filter(|_| requires_100rel(&resp)) {
                    self.prack(now, key, rseq.trim().to_string());
                }
                if !queued {
                    self.relay_to_caller(now, key, &resp);
                }
            }
            return;
        }
        if code >= 300 && call.parallel.is_some() && !queued && call.a_invite.is_some() {
            // Busy or failed legacy seats: the call goes to 12345. The leg is over
            // (its INVITE got a final), so only forget it.
            let dialog = std::mem::replace(&mut call.b, Dialog::none());
            call.b_invite = None;
            call.b_invite_tx = None;
            self.by_b.remove(&dialog.call_id);
            let q = call.parallel.clone().unwrap_or_default();
            let line = call.line.clone();
            call.ring_deadline = None;
            call.queue = Some(q.clone());
            call.overflowed = true;
            self.note(now, key, cdr::EventKind::Overflowed, Some(q.clone()));
            return self.enqueue(now, key, &q, &line);
        }
        call.b_invite = None;
        call.ring_deadline = None;
        if queued && code >= 300 && call.waiting() {
            return self.ring_failed(now, key);
        }
        if code < 300 {
            if queued && let Some(agent) = call.agent.clone() {
                if let Err(e) = self.acd.answered(now, key, &agent) {
                    debug!(error = %e, "ACD answered");
                }
                self.drain_acd(now);
            }
            self.b_answered(now, key, &resp);
        } else {
            call.set_reason(Reason::from_callee_status(code));
            self.relay_to_caller(now, key, &resp);
            self.finish(now, key);
        }
    }

    /// The callee answered: relay the 2xx, unless the caller has already gone (the
    /// CANCEL/200 race), in which case the callee gets ACK and BYE at once.
    pub(super) fn b_answered(&mut self, now: Instant, key: CallKey, resp: &Response) {
        let max_duration = self.cfg.max_duration;
        if self.gateway_answered(key) {
            return self.b_answered_queued(now, key, resp);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.a_invite.is_none() || call.phase == Phase::Ending {
            let ack = call
                .b
                .request_with_cseq(Method::Ack, call.b_invite_cseq, None, Bytes::new());
            self.tl.send_ack(call.b_invite_tx, call.b.peer, ack);
            self.hang_up_side(now, key, Side::B);
            return;
        }
        call.phase = Phase::Answered;
        call.answered_at = Some(now);
        let by = if call.parallel.is_some() && call.queue.is_none() {
            "legacy"
        } else if call.queue.is_some() {
            "12345"
        } else {
            // A line routed straight to a SIP destination (a department's own phone).
            "direct"
        };
        call.answered_by = Some(by);
        let who = match by {
            "legacy" => "legacy".to_string(),
            _ => call.agent.clone().unwrap_or_else(|| by.to_string()),
        };
        self.note(now, key, cdr::EventKind::Answered, Some(who));
        self.relay_to_caller(now, key, resp);
        if self.calls.get(&key).is_some_and(|c| c.media.is_some()) {
            // The caller stops hearing the gateway (early media) and hears the callee.
            self.media_answered(key);
        }
        self.arm_call_timer(key, CallTimer::MaxDuration, now + max_duration);
    }

    /// An agent answered a caller the gateway had answered itself: ACK the
    /// agent (the offer was ours), connect the audio. A caller already gone (the
    /// BYE/200 race) leaves the agent with ACK and BYE.
    pub(super) fn b_answered_queued(&mut self, now: Instant, key: CallKey, resp: &Response) {
        let max_duration = self.cfg.max_duration;
        self.learn(key, Side::B, resp.content_type(), &resp.body);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let ack = call
            .b
            .request_with_cseq(Method::Ack, call.b_invite_cseq, None, Bytes::new());
        self.tl.send_ack(call.b_invite_tx, call.b.peer, ack);
        if call.phase == Phase::Ending || call.answered_at.is_some() {
            return self.hang_up_side(now, key, Side::B);
        }
        call.answered_at = Some(now);
        call.answered_by = Some("12345");
        let who = call.agent.clone().unwrap_or_else(|| "12345".to_string());
        self.note(now, key, cdr::EventKind::Answered, Some(who));
        self.media_answered(key);
        self.arm_call_timer(key, CallTimer::MaxDuration, now + max_duration);
        // The caller's 200 was the gateway's: say a person has taken the call.
        self.tell_caller(now, key, super::tell_caller::ANSWERED_BY, "agent");
    }

    /// Relays a callee response (1xx or final) to the caller's pending INVITE.
    pub(super) fn relay_to_caller(&mut self, now: Instant, key: CallKey, resp: &Response) {
        let Some(transport) = self.calls.get(&key).map(|c| c.a.peer.transport) else {
            return;
        };
        let contact = self.contact(transport);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some((tx, req)) = &call.a_invite else {
            return;
        };
        let mut m = response_to(req, resp.code, &resp.reason, Some(&call.a.local_tag));
        if resp.code < 300 {
            m.header("Contact", &contact);
        }
        if resp.code >= 200
            && resp.code < 300
            && let Some(by) = call.answered_by
        {
            let by = super::tell_caller::answered_by_value(by);
            m.header(super::tell_caller::ANSWERED_BY, by);
        }
        relay_headers(&mut m, resp);
        let tx = *tx;
        let anchored = if resp.code < 300 {
            self.body_to_caller(key, resp.content_type(), &resp.body)
        } else {
            None
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let bytes = match &anchored {
            Some(body) => m.finish(Some("application/sdp"), body),
            None => m.finish(resp.content_type(), &resp.body),
        };
        if resp.code >= 200 {
            call.a_invite = None;
            call.final_code = resp.code;
        }
        let ringback = (180..=183).contains(&resp.code)
            && !call
                .events
                .iter()
                .any(|e| e.kind == cdr::EventKind::Ringback);
        self.respond(now, tx, resp.code, bytes);
        if ringback {
            self.note(now, key, cdr::EventKind::Ringback, None);
        }
    }

    /// Acknowledges a reliable provisional on the callee leg (the gateway does
    /// not offer 100rel to the caller, so it ends here).
    pub(super) fn prack(&mut self, now: Instant, key: CallKey, rseq: String) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut req = call.b.request(Method::Prack, None, Bytes::new());
        req.extra.push((
            "RAck".into(),
            format!("{rseq} {} INVITE", call.b_invite_cseq),
        ));
        let peer = call.b.peer;
        let tx = self.tl.send_request(now, peer, req);
        self.track(key, tx, Role::Fire);
    }
}

/// Headers of a callee response worth passing to the caller.
fn relay_headers(m: &mut MessageBuf, resp: &Response) {
    for name in ["Reason", "Warning", "Retry-After", "Allow", "Supported"] {
        for v in resp.header_all(name) {
            m.header(name, v);
        }
    }
}

fn requires_100rel(resp: &Response) -> bool {
    resp.header_all("Require").any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("100rel"))
    })
}
