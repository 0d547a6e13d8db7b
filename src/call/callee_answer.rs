//! The callee leg's answers to the initial INVITE: provisional responses relayed
//! to the caller (with PRACK where the callee asks for it), the answer, and
//! failures that move the call on.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{AnsweredBy, CallKey, CallState, CallTimer, Core, Reason, Role, Side};
use crate::cdr;
use crate::sip::builder::{MessageBuf, response_to};
use crate::sip::message::{Headers, Method, Response};
use crate::sip::transaction::TxId;

impl Core {
    pub(super) fn on_response(&mut self, now: Instant, tx: TxId, resp: Response) {
        let Some(&(key, role)) = self.sh.by_tx.get(&tx) else {
            // Its call has ended and forgotten the transaction.
            self.sh.stats.stale_events += 1;
            return;
        };
        match role {
            Role::BInvite => self.on_b_invite_response(now, key, tx, resp),
            Role::Fire => {
                if resp.code >= 200 {
                    self.sh.by_tx.remove(&tx);
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
        let ring_timeout = self.sh.cfg.ring_timeout;
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        let Some(leg) = call.b.as_mut().filter(|l| l.invite == tx) else {
            return;
        };
        leg.dialog.learn_from_response(&resp);
        // A queued call's seat is the ACD's business: it owns the ring timeout, and
        // the caller already hears ringback.
        let queued = matches!(call.state, CallState::Queued { .. });
        if code < 200 {
            let first = !leg.provisional;
            leg.provisional = true;
            if leg.cancel_pending {
                leg.cancel_pending = false;
                self.cancel_b(now, key, tx);
                return;
            }
            // Queued calls: the ACD owns the ring timeout; parallel calls: the line's
            // ring time, armed when the legacy leg was placed.
            if first && matches!(call.state, CallState::Ringing) {
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
        leg.pending = false;
        if code >= 300 && self.overflow_from_legacy(now, key, true) {
            // Busy or failed legacy seats: the call goes to 12345.
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        for t in [
            CallTimer::Ring,
            CallTimer::LegacyRing,
            CallTimer::CancelGuard,
        ] {
            call.timers.stop(t);
        }
        if queued && code >= 300 && call.waiting() {
            return self.ring_failed(now, key);
        }
        if code < 300 {
            if queued && let Some(agent) = call.agent.clone() {
                if let Err(e) = self.sh.acd.answered(now, key, &agent) {
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
        let max_duration = self.sh.cfg.max_duration;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.gateway_answered() {
            return self.b_answered_queued(now, key, resp);
        }
        let Some(leg) = call.b.as_ref() else {
            return;
        };
        if call.a_invite.is_none() || matches!(call.state, CallState::Ending) {
            let (ack, peer) = (leg.ack(None, Bytes::new()), leg.dialog.peer);
            self.sh.tl.send_ack(Some(leg.invite), peer, ack);
            self.hang_up_side(now, key, Side::B);
            return;
        }
        let by = match call.state {
            CallState::Legacy { .. } => AnsweredBy::Legacy,
            CallState::Queued { .. } => AnsweredBy::Seats12345,
            _ => AnsweredBy::Direct,
        };
        call.state = CallState::Connected { by };
        call.answered_at = Some(now);
        call.answered_by = Some(by);
        let who = match by {
            AnsweredBy::Legacy => "legacy".to_string(),
            _ => call
                .agent
                .clone()
                .unwrap_or_else(|| by.as_str().to_string()),
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
        let max_duration = self.sh.cfg.max_duration;
        self.learn(key, Side::B, resp.content_type(), &resp.body);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(leg) = call.b.as_ref() else {
            return;
        };
        let (ack, peer) = (leg.ack(None, Bytes::new()), leg.dialog.peer);
        self.sh.tl.send_ack(Some(leg.invite), peer, ack);
        if !matches!(call.state, CallState::Queued { .. }) {
            return self.hang_up_side(now, key, Side::B);
        }
        call.state = CallState::Connected {
            by: AnsweredBy::Seats12345,
        };
        call.answered_at = Some(now);
        call.answered_by = Some(AnsweredBy::Seats12345);
        let who = call.agent.clone().unwrap_or_else(|| "12345".to_string());
        self.note(now, key, cdr::EventKind::Answered, Some(who));
        self.media_answered(key);
        self.arm_call_timer(key, CallTimer::MaxDuration, now + max_duration);
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
        let ringback = (180..=183).contains(&resp.code) && !call.ringback_noted;
        self.respond(now, tx, resp.code, bytes);
        if ringback {
            self.note(now, key, cdr::EventKind::Ringback, None);
        }
    }

    /// Acknowledges a reliable provisional on the callee leg (the gateway does
    /// not offer 100rel to the caller, so it ends here).
    pub(super) fn prack(&mut self, now: Instant, key: CallKey, rseq: String) {
        let Some(leg) = self.calls.get_mut(&key).and_then(|c| c.b.as_mut()) else {
            return;
        };
        let mut req = leg.dialog.request(Method::Prack, None, Bytes::new());
        req.extra
            .push(("RAck".into(), format!("{rseq} {} INVITE", leg.invite_cseq)));
        let peer = leg.dialog.peer;
        let tx = self.sh.tl.send_request(now, peer, req);
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
