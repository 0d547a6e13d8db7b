//! The callee leg's answers to the initial INVITE: provisional responses relayed
//! to the caller (with PRACK where the callee asks for it), the answer, and
//! failures that move the call on.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{AnsweredBy, Call, CallState, CallTimer, Core, Reason, Role, Shared, Side};
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
            Role::Fire => {
                if resp.code >= 200 {
                    self.sh.by_tx.remove(&tx);
                }
                return;
            }
            Role::Orphan => return self.sh.on_orphan_response(now, key, tx, resp),
            _ => {}
        }
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        let span = call.span.clone();
        let _enter = span.enter();
        let sh = &mut self.sh;
        match role {
            Role::BInvite => call.on_b_invite_response(sh, now, tx, resp),
            Role::Bye => {
                if resp.code >= 200 {
                    call.bye_done(sh, tx);
                }
            }
            Role::Relay {
                server,
                to,
                invite,
                cseq,
            } => call.relay_response(sh, now, tx, (server, to, invite, cseq), resp),
            Role::TransferInvite => call.on_transfer_invite_response(sh, now, resp),
            Role::PartyInvite => call.on_party_response(sh, now, tx, resp),
            Role::AgentInvite => {
                if let Some(a) = call.on_agent_invite_response(sh, now, tx, resp) {
                    self.by_a.insert(a, key);
                }
            }
            Role::TransferReinvite => call.on_transfer_reinvite_response(sh, now, tx, resp),
            Role::Fire | Role::Orphan | Role::AInvite | Role::AwaitAck { .. } => {}
        }
    }
}

impl Call {
    fn on_b_invite_response(&mut self, sh: &mut Shared, now: Instant, tx: TxId, resp: Response) {
        let code = resp.code;
        let ring_timeout = sh.cfg.ring_timeout;
        // A queued call's seat is the ACD's business: it owns the ring timeout, and
        // the caller already hears ringback.
        let queued = matches!(self.state, CallState::Queued { .. });
        let ringing = matches!(self.state, CallState::Ringing);
        let Some(leg) = self.b_mut().filter(|l| l.invite == tx) else {
            return;
        };
        leg.dialog.learn_from_response(&resp);
        if code < 200 {
            let first = !leg.provisional;
            leg.provisional = true;
            let cancelling = leg.cancel_pending;
            if code > 100 && !cancelling && self.handover.is_some() {
                // Taken by the node a draining one handed the caller to, when
                // it says so; else it took it for a call of its own.
                if !self.handover_provisional(sh, now, &resp) {
                    return;
                }
            }
            let Some(leg) = self.b_mut().filter(|l| l.invite == tx) else {
                return;
            };
            if leg.cancel_pending {
                leg.cancel_pending = false;
                return self.cancel_b(sh, now, tx);
            }
            // Queued calls: the ACD owns the ring timeout; parallel calls: the line's
            // ring time, armed when the legacy leg was placed.
            if first && ringing {
                self.arm(sh, CallTimer::Ring, now + ring_timeout);
            }
            if code > 100 {
                if let Some(rseq) = resp.header("RSeq").filter(|_| requires_100rel(&resp)) {
                    self.prack(sh, now, rseq.trim().to_string());
                }
                if !queued {
                    self.relay_to_caller(sh, now, &resp);
                }
            }
            return;
        }
        leg.pending = false;
        if code >= 300 && self.overflow_from_legacy(sh, now, true) {
            // Busy or failed legacy seats: the call goes to 12345.
            return;
        }
        for t in [
            CallTimer::Ring,
            CallTimer::LegacyRing,
            CallTimer::CancelGuard,
        ] {
            self.timers.stop(t);
        }
        if code >= 300 && self.handover.is_some() {
            return self.handover_final_failure(sh, now, &resp);
        }
        if code < 300 && self.handover.is_some() {
            return self.handover_answered(sh, now, &resp);
        }
        if queued && code >= 300 && self.waiting() {
            return self.ring_failed(sh, now);
        }
        if code < 300 {
            if queued
                && let Some(agent) = self.agent.clone()
                && let Err(e) = sh.acd.answered(now, self.key, &agent)
            {
                debug!(error = %e, "ACD answered");
            }
            self.b_answered(sh, now, &resp);
        } else {
            self.set_reason(Reason::from_callee_status(code));
            self.relay_to_caller(sh, now, &resp);
            if self.a_placed && self.a.remote_tag.is_some() {
                // The agent's phone, answered first, is told by BYE.
                return self.hang_up_side(sh, now, Side::A);
            }
            self.finish(sh);
        }
    }

    /// The callee answered: relay the 2xx, unless the caller has already gone (the
    /// CANCEL/200 race), in which case the callee gets ACK and BYE at once.
    fn b_answered(&mut self, sh: &mut Shared, now: Instant, resp: &Response) {
        if self.gateway_answered() {
            return self.b_answered_queued(sh, now, resp);
        }
        let Some(leg) = self.b() else {
            return;
        };
        if self.a_invite.is_none() || matches!(self.state, CallState::Ending) {
            let (ack, peer) = (leg.ack(None, Bytes::new()), leg.dialog.peer);
            sh.tl.send_ack(Some(leg.invite), peer, ack);
            return self.hang_up_side(sh, now, Side::B);
        }
        let by = match self.state {
            CallState::Legacy { .. } => AnsweredBy::Legacy,
            CallState::Queued { .. } => AnsweredBy::Seats12345,
            _ => AnsweredBy::Direct,
        };
        self.state = CallState::Connected { by };
        self.answered_at = Some(now);
        self.answered_by = Some(by);
        let who = match by {
            AnsweredBy::Legacy => "legacy".to_string(),
            _ => self
                .agent
                .clone()
                .unwrap_or_else(|| by.as_str().to_string()),
        };
        self.note(sh, now, cdr::EventKind::Answered, Some(who));
        self.relay_to_caller(sh, now, resp);
        if self.media.is_some() {
            // The caller stops hearing the gateway (early media) and hears the callee.
            self.media_answered(sh);
        }
        let until = now + sh.cfg.max_duration;
        self.arm(sh, CallTimer::MaxDuration, until);
    }

    /// An agent answered a caller the gateway had answered itself: ACK the
    /// agent (the offer was ours), connect the audio. A caller already gone (the
    /// BYE/200 race) leaves the agent with ACK and BYE.
    fn b_answered_queued(&mut self, sh: &mut Shared, now: Instant, resp: &Response) {
        self.learn(sh, Side::B, resp.content_type(), &resp.body);
        let Some(leg) = self.b() else {
            return;
        };
        let (ack, peer) = (leg.ack(None, Bytes::new()), leg.dialog.peer);
        sh.tl.send_ack(Some(leg.invite), peer, ack);
        // A callback the API dialled: the citizen answered the gateway's
        // INVITE while the agent's phone, answered first, waits.
        let by = match self.state {
            CallState::Queued { .. } => AnsweredBy::Seats12345,
            CallState::Ringing if self.a_placed => AnsweredBy::Direct,
            _ => return self.hang_up_side(sh, now, Side::B),
        };
        self.state = CallState::Connected { by };
        self.answered_at = Some(now);
        self.answered_by = Some(by);
        let who = self.agent.clone().unwrap_or_else(|| "12345".to_string());
        self.note(sh, now, cdr::EventKind::Answered, Some(who));
        self.media_answered(sh);
        let until = now + sh.cfg.max_duration;
        self.arm(sh, CallTimer::MaxDuration, until);
        // The caller's 200 was the gateway's: say a person has taken the call.
        self.tell_caller(sh, now, super::tell_caller::ANSWERED_BY, "agent");
    }

    /// Relays a callee response (1xx or final) to the caller's pending INVITE.
    pub(super) fn relay_to_caller(&mut self, sh: &mut Shared, now: Instant, resp: &Response) {
        let contact = sh.contact(self.a.peer.transport);
        let Some((tx, req)) = &self.a_invite else {
            return;
        };
        let mut m = response_to(req, resp.code, &resp.reason, Some(&self.a.local_tag));
        if resp.code < 300 {
            m.header("Contact", &contact);
        }
        if (200..300).contains(&resp.code) {
            let by = match self.answered_by {
                Some(by) => Some(super::tell_caller::answered_by_value(by)),
                // Handed over: the node that took the call says who answered.
                None if self.handover.is_some() => resp.header(super::tell_caller::ANSWERED_BY),
                None => None,
            };
            if let Some(by) = by {
                m.header(super::tell_caller::ANSWERED_BY, by);
            }
        }
        relay_headers(&mut m, resp);
        self.echo_adoption(sh, &mut m);
        let tx = *tx;
        let anchored = if resp.code < 300 {
            self.body_to_caller(sh, resp.content_type(), &resp.body)
        } else {
            None
        };
        let bytes = match &anchored {
            Some(body) => m.finish(Some("application/sdp"), body),
            None => m.finish(resp.content_type(), &resp.body),
        };
        if resp.code >= 200 {
            self.a_invite = None;
            self.final_code = resp.code;
        }
        let ringback = (180..=183).contains(&resp.code) && !self.ringback_noted;
        sh.respond(now, tx, resp.code, bytes);
        if ringback {
            self.note(sh, now, cdr::EventKind::Ringback, None);
        }
    }

    /// Acknowledges a reliable provisional on the callee leg (the gateway does
    /// not offer 100rel to the caller, so it ends here).
    fn prack(&mut self, sh: &mut Shared, now: Instant, rseq: String) {
        let Some(leg) = self.b_mut() else {
            return;
        };
        let mut req = leg.dialog.request(Method::Prack, None, Bytes::new());
        req.extra
            .push(("RAck".into(), format!("{rseq} {} INVITE", leg.invite_cseq)));
        let peer = leg.dialog.peer;
        let tx = sh.tl.send_request(now, peer, req);
        self.track(sh, tx, Role::Fire);
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
