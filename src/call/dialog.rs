//! Requests inside an established call: BYE from either side, ACK, and relaying
//! everything else (re-INVITE, UPDATE, INFO, …) to the other leg.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{CallKey, CallState, CallTimer, Core, Reason, Role, Side};
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
    /// The call and side a request with a To tag belongs to: its Call-ID **and**
    /// both tags must be the leg's (RFC 3261 §12.2.2). A Call-ID alone is not a
    /// credential: it travels in clear and the other leg's party knows it.
    pub(super) fn find_dialog(&self, req: &Request) -> Option<(CallKey, Side)> {
        let call_id = req.call_id()?;
        let (from, to) = (req.from_tag()?, req.to_tag()?);
        if let Some(&key) = self.sh.by_b.get(call_id) {
            let b = &self.calls.get(&key)?.b.as_ref()?.dialog;
            return (b.remote_tag.as_deref() == Some(from.as_str()) && *b.local_tag == *to)
                .then_some((key, Side::B));
        }
        let key = *self.by_a.get(&(call_id.into(), from.as_str().into()))?;
        (*self.calls.get(&key)?.a.local_tag == *to).then_some((key, Side::A))
    }

    pub(super) fn in_dialog(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        peer: crate::sip::Peer,
    ) {
        let Some((key, side)) = self.find_dialog(&req) else {
            return self.reply(now, tx, &req, 481, "Call/Transaction Does Not Exist");
        };
        let span = self
            .calls
            .get(&key)
            .map_or_else(tracing::Span::none, |c| c.span.clone());
        let _enter = span.enter();
        match req.method {
            Method::Bye => self.on_bye(now, tx, &req, key, side),
            Method::Refer => self.on_refer(now, tx, &req, peer, key, side),
            _ => self.relay(now, key, side, tx, req),
        }
    }

    fn on_bye(&mut self, now: Instant, tx: TxId, req: &Request, key: CallKey, side: Side) {
        self.reply(now, tx, req, 200, "OK");
        let surveyed = side == Side::B
            && self
                .calls
                .get(&key)
                .is_some_and(|c| matches!(c.state, CallState::Connected { .. }))
            && self.start_survey(now, key);
        if surveyed {
            if let Some(call) = self.calls.get_mut(&key) {
                call.set_reason(Reason::CalleeHangup);
            }
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if side == Side::A && call.waiting() {
            if call.a_invite.is_some() {
                // A BYE before any answer ends the attempt like a CANCEL.
                let (r, phrase) = (Reason::CallerCancelled, "Request Terminated");
                return self.abandon_early(now, key, r, 487, phrase);
            }
            // Answered by the gateway, not yet by an agent: an abandon.
            call.a.remote_tag = None;
            return self.leave_queue(now, key, Reason::CallerCancelled);
        }
        if call.state.answered() {
            call.set_reason(match side {
                Side::A => Reason::CallerHangup,
                Side::B => Reason::CalleeHangup,
            });
            // The side that hung up has no dialog left: BYE the other.
            self.hang_up_side(now, key, side.other());
        }
    }

    /// Sends BYE on both legs that have a dialog.
    pub(super) fn hang_up(&mut self, now: Instant, key: CallKey) {
        self.hang_up_side(now, key, Side::A);
        self.hang_up_side(now, key, Side::B);
    }

    /// Sends BYE on one leg; the call ends when every BYE has been answered.
    pub(super) fn hang_up_side(&mut self, now: Instant, key: CallKey, side: Side) {
        self.drop_transfer(now, key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.state = CallState::Ending;
        call.timers.stop(CallTimer::MaxDuration);
        let Some(leg) = call.dialog(side).filter(|d| d.remote_tag.is_some()) else {
            return self.finish_if_idle(now, key);
        };
        let peer = leg.peer;
        let bye = leg.request(Method::Bye, None, Bytes::new());
        call.byes += 1;
        let tx = self.sh.tl.send_request(now, peer, bye);
        self.track(key, tx, Role::Bye);
    }

    pub(super) fn bye_done(&mut self, now: Instant, key: CallKey, tx: TxId) {
        self.sh.by_tx.remove(&tx);
        if let Some(call) = self.calls.get_mut(&key) {
            call.byes = call.byes.saturating_sub(1);
        }
        self.finish_if_idle(now, key);
    }

    fn finish_if_idle(&mut self, now: Instant, key: CallKey) {
        let idle = self
            .calls
            .get(&key)
            .is_some_and(|c| c.byes == 0 && !c.b_pending());
        if idle {
            self.finish(now, key);
        }
    }

    pub(super) fn on_ack(&mut self, tx: Option<TxId>, req: &Request) {
        let Some(&(key, role)) = tx.and_then(|t| self.sh.by_tx.get(&t)) else {
            debug!("ACK for no pending 2xx: absorbed");
            return;
        };
        let to = match role {
            Role::AwaitAck { to, .. } => to,
            _ => Side::B,
        };
        let (ct, body) = match self.sdp_to(key, to, req.content_type(), &req.body) {
            Some(b) => (Some("application/sdp".to_string()), b),
            None => (
                req.content_type().map(str::to_string),
                Bytes::from(req.body.clone()),
            ),
        };
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        match role {
            Role::AInvite if !call.a_acked => {
                call.a_acked = true;
                // The gateway's own 200 to a queued caller: the agent has its own ACK.
                if call.gateway_answered() || !call.state.answered() {
                    return;
                }
                if let Some(leg) = call.b.as_ref() {
                    let ack = leg.ack(ct, body);
                    self.sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, ack);
                }
            }
            Role::AwaitAck { client, to, cseq } => {
                let Some(leg) = call.dialog(to) else {
                    return;
                };
                let ack = leg.request_with_cseq(Method::Ack, cseq, ct, body);
                let peer = leg.peer;
                self.sh.tl.send_ack(Some(client), peer, ack);
                self.sh.by_tx.remove(&tx.unwrap_or(client));
            }
            _ => {}
        }
    }

    /// Relays an in-dialog request to the other leg.
    fn relay(&mut self, now: Instant, key: CallKey, from: Side, server: TxId, req: Request) {
        if self.answers_locally(key, from) {
            return self.answer_locally(now, key, server, &req);
        }
        if self.interwork_info(now, key, from, server, &req) {
            return;
        }
        let to = from.other();
        let to_peer = self.calls.get(&key).and_then(|c| {
            let up = !matches!(c.state, CallState::Ending)
                && (to == Side::A || c.dialog_ref(to).is_some_and(|d| d.remote_tag.is_some()));
            up.then(|| c.peer_of(to)).flatten()
        });
        let Some(to_peer) = to_peer else {
            return self.reply(now, server, &req, 481, "Call/Transaction Does Not Exist");
        };
        let contact = self.contact(to_peer.transport);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let refresh = matches!(req.method, Method::Invite | Method::Update);
        if refresh
            && let Some(c) = req.contact_uri()
            && let Some(d) = call.dialog(from)
        {
            d.remote_target = c.text.to_string();
        }
        let anchored = self.sdp_to(key, to, req.content_type(), &req.body);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let (ct, body) = match anchored {
            Some(b) => (Some("application/sdp".to_string()), b),
            None => (
                req.content_type().map(str::to_string),
                Bytes::from(req.body.clone()),
            ),
        };
        let Some(leg) = call.dialog(to) else {
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
        call.relays.push((server, Box::new(req)));
        let client = self.sh.tl.send_request(now, peer, out);
        self.track(
            key,
            client,
            Role::Relay {
                server,
                to,
                invite,
                cseq,
            },
        );
    }

    /// Relays a response to a relayed request back to its origin.
    pub(super) fn relay_response(
        &mut self,
        now: Instant,
        key: CallKey,
        client: TxId,
        (server, to, invite, cseq): (TxId, Side, bool, u32),
        resp: Response,
    ) {
        if resp.code == 100 {
            return;
        }
        let from_transport = self
            .calls
            .get(&key)
            .and_then(|c| c.peer_of(to.other()))
            .map(|p| p.transport);
        let contact = from_transport.map(|t| self.contact(t)).unwrap_or_default();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(i) = call.relays.iter().position(|(t, _)| *t == server) else {
            return;
        };
        let success = (200..300).contains(&resp.code);
        if success
            && let Some(c) = resp.contact_uri()
            && let Some(d) = call.dialog(to)
        {
            d.remote_target = c.text.to_string();
        }
        let req = &call.relays[i].1;
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
            self.sdp_to(key, to.other(), resp.content_type(), &resp.body)
        } else {
            None
        };
        let bytes = match &anchored {
            Some(b) => m.finish(Some("application/sdp"), b),
            None => m.finish(resp.content_type(), &resp.body),
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.code >= 200 {
            call.relays.swap_remove(i);
            self.sh.by_tx.remove(&client);
            if success && invite {
                self.track(key, server, Role::AwaitAck { client, to, cseq });
            }
        }
        self.respond(now, server, resp.code, bytes);
    }

    /// Answers a relayed request `408` when the other leg never responded.
    pub(super) fn fail_relay(&mut self, now: Instant, key: CallKey, server: TxId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(i) = call.relays.iter().position(|(t, _)| *t == server) else {
            return;
        };
        let (_, req) = call.relays.swap_remove(i);
        let bytes = response_to(&req, 408, "Request Timeout", None).finish_empty();
        self.respond(now, server, 408, bytes);
    }
}

impl super::Call {
    /// The dialog of one side, when it has one.
    fn dialog_ref(&self, side: Side) -> Option<&crate::sip::dialog::Dialog> {
        match side {
            Side::A => Some(&self.a),
            Side::B => self.b.as_ref().map(|l| &l.dialog),
        }
    }
}
