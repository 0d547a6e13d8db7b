//! Requests inside an established call: BYE from either side, ACK, and relaying
//! everything else (re-INVITE, UPDATE, INFO, …) to the other leg.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{Call, CallKey, CallState, CallTimer, Core, Reason, Role, Shared, Side};

/// Who sent an in-dialog request: one of the call's two sides, or its third party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Party {
    Side(Side),
    Third,
}
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::transaction::TxId;

/// Headers of a relayed request or response that carry meaning end to end.
const RELAYED: &[&str] = &[
    "Event",
    "Subscription-State",
    "Info-Package",
    "Reason",
    "Session-Expires",
];

impl Core {
    /// Entries of the indexes calls keep (callers' and callees' dialogs,
    /// orphaned legs, transactions): zero once every call has ended and its
    /// transactions are over (the flow tests' leak check).
    #[cfg(test)]
    pub(super) fn index_sizes(&self) -> [usize; 4] {
        [
            self.by_a.len(),
            self.sh.by_b.len(),
            self.sh.orphans.len(),
            self.sh.by_tx.len(),
        ]
    }

    /// The call and side a request with a To tag belongs to: its Call-ID **and**
    /// both tags must be the leg's (RFC 3261 §12.2.2). A Call-ID alone is not a
    /// credential: it travels in clear and the other leg's party knows it.
    pub(super) fn find_dialog(&self, req: &Request) -> Option<(CallKey, Party)> {
        let call_id = req.call_id()?;
        let (from, to) = (req.from_tag()?, req.to_tag()?);
        if let Some(&key) = self.sh.by_b.get(call_id) {
            let call = self.calls.get(&key)?;
            let is = |d: &crate::sip::dialog::Dialog| {
                d.remote_tag.as_deref() == Some(from.as_str()) && *d.local_tag == *to
            };
            if call.b().is_some_and(|l| is(&l.dialog)) {
                return Some((key, Party::Side(Side::B)));
            }
            return call
                .third_leg()
                .is_some_and(|l| is(&l.dialog))
                .then_some((key, Party::Third));
        }
        let key = *self.by_a.get(&(call_id.into(), from.as_str().into()))?;
        (*self.calls.get(&key)?.a.local_tag == *to).then_some((key, Party::Side(Side::A)))
    }

    pub(super) fn in_dialog(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        peer: crate::sip::Peer,
    ) {
        let found = self.find_dialog(&req);
        // An attended transfer joins two calls: the core's, not one call's.
        if let Some((key, Party::Side(side))) = found
            && req.method == Method::Refer
            && let Some(r) = req
                .header("Refer-To")
                .and_then(super::refer_target::ReferTarget::parse)
                .and_then(|t| t.replaces)
        {
            return self.attended_refer(now, tx, &req, peer, key, side, &r);
        }
        let call = found.and_then(|(key, side)| Some((self.calls.get_mut(&key)?, side)));
        let Some((call, side)) = call else {
            if self.on_parting_request(now, tx, &req) {
                return;
            }
            return self
                .sh
                .reply(now, tx, &req, 481, "Call/Transaction Does Not Exist");
        };
        let span = call.span.clone();
        let _enter = span.enter();
        let sh = &mut self.sh;
        let side = match side {
            Party::Side(side) => side,
            Party::Third => return call.on_party_request(sh, now, tx, &req, peer),
        };
        match req.method {
            Method::Bye => call.on_bye(sh, now, tx, &req, side),
            Method::Refer => call.on_refer(sh, now, tx, &req, peer, side),
            _ => call.relay(sh, now, side, tx, req),
        }
    }

    pub(super) fn on_ack(&mut self, tx: Option<TxId>, req: &Request) {
        let Some(&(key, role)) = tx.and_then(|t| self.sh.by_tx.get(&t)) else {
            debug!("ACK for no pending 2xx: absorbed");
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        call.on_ack(&mut self.sh, tx, role, req);
    }
}

impl Call {
    fn on_bye(&mut self, sh: &mut Shared, now: Instant, tx: TxId, req: &Request, side: Side) {
        sh.reply(now, tx, req, 200, "OK");
        if side == Side::B && self.agent_leaves_party(sh, now) {
            return;
        }
        // A third party still ringing is not wanted any more.
        self.end_party(sh, now, Some("SIP/2.0 487 Request Terminated"));
        let surveyed = side == Side::B
            && matches!(self.state, CallState::Connected { .. })
            && self.start_survey(sh, now);
        if surveyed {
            self.set_reason(Reason::CalleeHangup);
            return;
        }
        if side == Side::A && self.waiting() {
            if self.a_invite.is_some() {
                // A BYE before any answer ends the attempt like a CANCEL.
                let (r, phrase) = (Reason::CallerCancelled, "Request Terminated");
                return self.abandon_early(sh, now, r, 487, phrase);
            }
            // Answered by the gateway, not yet by an agent: an abandon.
            self.a.remote_tag = None;
            return self.leave_queue(sh, now, Reason::CallerCancelled);
        }
        if side == Side::A && self.a_placed && !self.state.answered() {
            // The agent of a callback the API dialled hung up before the
            // citizen answered: the citizen's phone stops ringing.
            self.a.remote_tag = None;
            let (r, phrase) = (Reason::CallerCancelled, "Request Terminated");
            return self.abandon_early(sh, now, r, 487, phrase);
        }
        if side == Side::A && matches!(self.state, CallState::Announcing) {
            // The caller hung up on the announcement: nothing left to BYE.
            self.a.remote_tag = None;
            return self.hang_up_side(sh, now, Side::A);
        }
        if self.state.answered() {
            self.set_reason(match side {
                Side::A => Reason::CallerHangup,
                Side::B => Reason::CalleeHangup,
            });
            if side == Side::A && !self.a_acked && !self.gateway_answered() {
                // The caller's BYE overtook its ACK (a proxy's parallel
                // workers reorder them): the callee's 200 still gets its ACK,
                // before the BYE, or the callee resends it for 32 s.
                self.a_acked = true;
                if let Some(leg) = self.b() {
                    let ack = leg.ack(None, Bytes::new());
                    sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, ack);
                }
            }
            // The side that hung up has no dialog left: BYE the other.
            self.hang_up_side(sh, now, side.other());
        }
    }

    /// Sends BYE on both legs that have a dialog.
    pub(super) fn hang_up(&mut self, sh: &mut Shared, now: Instant) {
        self.hang_up_side(sh, now, Side::A);
        self.hang_up_side(sh, now, Side::B);
    }

    /// Sends BYE on one leg; the call ends when every BYE has been answered.
    pub(super) fn hang_up_side(&mut self, sh: &mut Shared, now: Instant, side: Side) {
        self.drop_transfer(sh, now);
        self.end_party(sh, now, None);
        self.state = CallState::Ending;
        self.timers.stop(CallTimer::MaxDuration);
        let Some(leg) = self.dialog(side).filter(|d| d.remote_tag.is_some()) else {
            return self.finish_if_idle(sh);
        };
        let peer = leg.peer;
        let bye = leg.request(Method::Bye, None, Bytes::new());
        self.byes += 1;
        let tx = sh.tl.send_request(now, peer, bye);
        self.track(sh, tx, Role::Bye);
    }

    pub(super) fn bye_done(&mut self, sh: &mut Shared, tx: TxId) {
        sh.by_tx.remove(&tx);
        self.byes = self.byes.saturating_sub(1);
        self.finish_if_idle(sh);
    }

    fn finish_if_idle(&mut self, sh: &mut Shared) {
        if self.byes == 0 && !self.b_pending() {
            self.finish(sh);
        }
    }

    fn on_ack(&mut self, sh: &mut Shared, tx: Option<TxId>, role: Role, req: &Request) {
        let to = match role {
            Role::AwaitAck { to, .. } => to,
            _ => Side::B,
        };
        let (ct, body) = match self.sdp_to(sh, to, req.content_type(), &req.body) {
            Some(b) => (Some("application/sdp".to_string()), b),
            None => (
                req.content_type().map(str::to_string),
                Bytes::from(req.body.clone()),
            ),
        };
        match role {
            Role::AInvite if !self.a_acked => {
                self.a_acked = true;
                // The gateway's own 200 to a queued caller: the agent has its own ACK.
                if self.gateway_answered() || !self.state.answered() {
                    return;
                }
                if let Some(leg) = self.b() {
                    let ack = leg.ack(ct, body);
                    sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, ack);
                }
            }
            Role::AwaitAck { client, to, cseq } => {
                let Some(leg) = self.dialog(to) else {
                    return;
                };
                let ack = leg.request_with_cseq(Method::Ack, cseq, ct, body);
                let peer = leg.peer;
                sh.tl.send_ack(Some(client), peer, ack);
                sh.by_tx.remove(&tx.unwrap_or(client));
            }
            _ => {}
        }
    }

    /// Relays an in-dialog request to the other leg.
    fn relay(&mut self, sh: &mut Shared, now: Instant, from: Side, server: TxId, req: Request) {
        if self.answers_locally(from) {
            return self.answer_locally(sh, now, server, &req);
        }
        if self.interwork_info(sh, now, from, server, &req) {
            return;
        }
        let to = from.other();
        let up = !matches!(self.state, CallState::Ending)
            && (to == Side::A || self.dialog_ref(to).is_some_and(|d| d.remote_tag.is_some()));
        let Some(to_peer) = self.peer_of(to).filter(|_| up) else {
            return sh.reply(now, server, &req, 481, "Call/Transaction Does Not Exist");
        };
        let contact = sh.contact(to_peer.transport);
        let refresh = matches!(req.method, Method::Invite | Method::Update);
        if refresh
            && let Some(c) = req.contact_uri()
            && let Some(d) = self.dialog(from)
        {
            d.remote_target = c.text.to_string();
        }
        let (ct, body) = match self.sdp_to(sh, to, req.content_type(), &req.body) {
            Some(b) => (Some("application/sdp".to_string()), b),
            None => (
                req.content_type().map(str::to_string),
                Bytes::from(req.body.clone()),
            ),
        };
        let Some(leg) = self.dialog(to) else {
            return;
        };
        let mut out = leg.request(req.method.clone(), ct, body);
        if refresh {
            out.extra.push(("Contact".into(), contact));
        }
        for name in RELAYED {
            for v in req.header_all(name) {
                out.extra.push((name.to_string(), v.to_string()));
            }
        }
        let (peer, cseq) = (leg.peer, leg.local_cseq);
        let invite = req.method == Method::Invite;
        self.relays.push((server, Box::new(req)));
        let client = sh.tl.send_request(now, peer, out);
        let role = Role::Relay {
            server,
            to,
            invite,
            cseq,
        };
        self.track(sh, client, role);
    }

    /// Relays a response to a relayed request back to its origin.
    pub(super) fn relay_response(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        client: TxId,
        (server, to, invite, cseq): (TxId, Side, bool, u32),
        resp: Response,
    ) {
        if resp.code == 100 {
            return;
        }
        let contact = self
            .peer_of(to.other())
            .map(|p| sh.contact(p.transport))
            .unwrap_or_default();
        let Some(i) = self.relays.iter().position(|(t, _)| *t == server) else {
            return;
        };
        let success = (200..300).contains(&resp.code);
        if success
            && let Some(c) = resp.contact_uri()
            && let Some(d) = self.dialog(to)
        {
            d.remote_target = c.text.to_string();
        }
        let req = &self.relays[i].1;
        let mut m = response_to(req, resp.code, &resp.reason, None);
        if success && matches!(req.method, Method::Invite | Method::Update) {
            m.header("Contact", &contact);
        }
        for name in RELAYED {
            for v in resp.header_all(name) {
                m.header(name, v);
            }
        }
        // The response travels back to the leg that sent the request.
        let anchored = if success {
            self.sdp_to(sh, to.other(), resp.content_type(), &resp.body)
        } else {
            None
        };
        let bytes = match &anchored {
            Some(b) => m.finish(Some("application/sdp"), b),
            None => m.finish(resp.content_type(), &resp.body),
        };
        if resp.code >= 200 {
            self.relays.swap_remove(i);
            sh.by_tx.remove(&client);
            if success && invite {
                self.track(sh, server, Role::AwaitAck { client, to, cseq });
            }
        }
        sh.respond(now, server, resp.code, bytes);
    }

    /// Answers a relayed request `408` when the other leg never responded.
    pub(super) fn fail_relay(&mut self, sh: &mut Shared, now: Instant, server: TxId) {
        let Some(i) = self.relays.iter().position(|(t, _)| *t == server) else {
            return;
        };
        let (_, req) = self.relays.swap_remove(i);
        let bytes = response_to(&req, 408, "Request Timeout", None).finish_empty();
        sh.respond(now, server, 408, bytes);
    }
}
