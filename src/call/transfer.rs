//! Blind transfer by an agent (REFER, RFC 3515) to a number in the transfer
//! directory: the gateway places the new leg, moves the caller's media to it with
//! a re-INVITE (third-party call control, RFC 3725 flow I), reports progress to the
//! agent with NOTIFY, and releases the agent. Anything not in the directory is 403.

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info};

use super::refer_target::ReferTarget;
use super::{Call, CallState, Leg, LegId, Role, Shared, Side};
use crate::registrar::RequestAuth;
use crate::sip::Peer;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::transaction::{OutRequest, TxId};

/// A transfer in progress: the directory number and the new leg (answered
/// once its INVITE is no longer pending: its offer goes to the caller).
#[derive(Debug)]
pub(super) struct Transfer {
    number: String,
    leg: LegId,
}

impl Call {
    /// A REFER inside a call.
    pub(super) fn on_refer(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: Peer,
        side: Side,
    ) {
        // On a call an agent placed (a callback, a consultation), side B is
        // the citizen or the consulted party: nobody there may transfer.
        if side != Side::B || self.agent_placed() || self.a_placed {
            return sh.reply(now, tx, req, 403, "Forbidden (only the agent may transfer)");
        }
        if !self.refer_authorised(sh, now, tx, req, peer) {
            return;
        }
        let ready = self.a_acked
            && matches!(self.state, CallState::Connected { .. })
            && self.third.is_none();
        if !ready {
            return sh.reply(now, tx, req, 491, "Request Pending");
        }
        let target = req.header("Refer-To").and_then(ReferTarget::parse);
        let Some(ReferTarget {
            number,
            conference,
            replaces,
        }) = target
        else {
            return sh.reply(
                now,
                tx,
                req,
                400,
                "Bad Request (Refer-To is missing or not a SIP URI)",
            );
        };
        // An attended transfer (`replaces`) is the core's: it joins two calls.
        debug_assert!(replaces.is_none(), "Replaces is handled before the call");
        // A legacy seat hands its caller to the hotline.
        if let Some(queue) = self.legacy_refer_queue(sh, &number) {
            return self.legacy_to_12345(sh, now, (tx, req), &number, queue);
        }
        let Some(entry) = self.directory_entry(sh, &number) else {
            info!(number = %number, "transfer refused: not in the transfer directory");
            return sh.reply(
                now,
                tx,
                req,
                403,
                "Forbidden (not in the transfer directory)",
            );
        };
        if conference {
            let _ = self.add_party(sh, now, &entry, Some((tx, req)));
            return;
        }
        sh.reply(now, tx, req, 202, "Accepted");
        self.notify_agent(sh, now, "SIP/2.0 100 Trying", false);
        let offer = self.transfer_offer(sh);
        let (c, c_invite) = self.invite_directory(sh, now, &entry, offer);
        debug!(number = %entry.number, "transfer: calling the new leg");
        if let CallState::Connected { by } = self.state {
            let leg = self.legs.add(Leg::placed(c, c_invite));
            self.state = CallState::Transferring {
                by,
                transfer: Box::new(Transfer {
                    number: entry.number.clone(),
                    leg,
                }),
            };
        }
        self.track(sh, c_invite, Role::TransferInvite);
    }

    /// The transfer-directory entry for `number` that serves this caller: 110
    /// of the caller's city (its area code, else the one it dialled).
    pub(super) fn directory_entry(
        &self,
        sh: &Shared,
        number: &str,
    ) -> Option<crate::dialplan::Transfer> {
        let caller_area = crate::dialplan::number::national(&self.caller).area;
        let called_area =
            crate::dialplan::number::national(self.original.as_deref().unwrap_or(&self.called))
                .area;
        let areas: Vec<&str> = [caller_area.as_deref(), called_area.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        sh.dialplan.transfer_for(number, &areas).cloned()
    }

    /// Sends the INVITE of a new leg to a directory entry (a transfer target, a
    /// third party): `From` per the entry, the citizen's number asserted when a
    /// trunk delivered the call, `offer` as its SDP (none: a late offer). The
    /// leg is not in the call's table yet.
    pub(super) fn invite_directory(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        entry: &crate::dialplan::Transfer,
        offer: Option<Bytes>,
    ) -> (Dialog, TxId) {
        let target = &entry.target;
        let user = target.user.clone().unwrap_or_else(|| entry.number.clone());
        let uri = super::invite::sip_uri(&user, target.addr, target.transport);
        let peer = Peer {
            transport: target.transport,
            addr: target.addr,
        };
        let tag = sh.ids.tag();
        let call_id: Box<str> = sh.ids.call_id(sh.cfg.shard).into();
        let contact = sh.contact(peer.transport);
        let host = sh.cfg.contact_host.clone();
        let call = &mut *self;
        // `From` per the entry; the citizen's number in P-Asserted-Identity
        // either way (the carrier's trunk to 110 trusts the gateway's).
        let shown = if entry.from_line {
            call.line.clone()
        } else {
            call.caller.clone()
        };
        let c = Dialog {
            call_id,
            local_hdr: format!("<sip:{shown}@{host}>;tag={tag}"),
            local_tag: tag.into(),
            remote_tag: None,
            remote_hdr: format!("<sip:{user}@{}>", target.addr),
            remote_target: uri.clone(),
            route: Vec::new(),
            peer,
            local_cseq: 1,
        };
        let agent = call.agent.clone().unwrap_or_else(|| "agent".into());
        // Without media: late offer (the new leg offers, the caller answers it in
        // a re-INVITE). With media anchored the gateway offers the relay's
        // callee-side port itself and the caller's session does not change.
        let mut out = OutRequest {
            method: Some(Method::Invite),
            uri,
            from: c.local_hdr.clone(),
            to: c.remote_hdr.clone(),
            call_id: c.call_id.to_string(),
            cseq: 1,
            max_forwards: 70,
            extra: vec![
                ("Contact".into(), contact),
                ("Allow".into(), super::ALLOW.into()),
                ("Referred-By".into(), format!("<sip:{agent}@{host}>")),
            ],
            ..Default::default()
        };
        // Asserted only for a citizen a trunk delivered (not a stranger's From).
        let digits = call.caller.strip_prefix('+').unwrap_or(&call.caller);
        if call.trunk.is_some() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        {
            out.extra.push((
                "P-Asserted-Identity".into(),
                format!("<sip:{}@{host}>", call.caller),
            ));
        }
        if let Some(offer) = offer {
            out.content_type = Some("application/sdp".into());
            out.body = offer;
        }
        let tx = sh.tl.send_request(now, peer, out);
        (c, tx)
    }

    /// Whether the REFER may go on. A registered agent proves it is the agent of
    /// this call with digest, as on its REGISTER (DESIGN.md §7); otherwise it is
    /// answered here (401 challenge, 403, 400) and false is returned. Static
    /// seats and legacy platforms are trusted by network, as their calls are.
    pub(super) fn refer_authorised(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: Peer,
    ) -> bool {
        let Some(agent) = self.agent.clone().filter(|a| sh.registrar.is_user(a)) else {
            return true;
        };
        let reply = match sh
            .registrar
            .authenticate_request(now, req, peer, Some(&agent))
        {
            RequestAuth::Agent(user) if user == agent => return true,
            RequestAuth::Agent(_) => {
                sh.reply(now, tx, req, 403, "Forbidden (not the agent of this call)");
                return false;
            }
            RequestAuth::Absent => sh.registrar.challenge_request(now, peer, Some(&agent)),
            RequestAuth::Reply(r) => r,
        };
        sh.send_registrar_reply(now, tx, req, &reply);
        false
    }

    /// A response on the new leg's INVITE.
    pub(super) fn on_transfer_invite_response(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        resp: Response,
    ) {
        if resp.code < 200 {
            return;
        }
        let contact = sh.contact(self.a.peer.transport);
        let call = &mut *self;
        let CallState::Transferring { transfer, .. } = &mut call.state else {
            return;
        };
        if resp.code >= 300 {
            if let Some(t) = call.end_transfer() {
                call.legs.remove(t.leg);
            }
            let frag = format!("SIP/2.0 {} {}", resp.code, resp.reason);
            return self.notify_agent(sh, now, &frag, true);
        }
        if let Some(leg) = call.legs.get_mut(transfer.leg) {
            leg.dialog.learn_from_response(&resp);
            leg.pending = false;
        }
        if call.media.is_some() {
            // The new leg answered the relay's offer: point the relay at it, ACK it.
            let Some(Transfer { number, leg: id }) = call.end_transfer() else {
                return;
            };
            let Some(leg) = call.legs.get(id) else {
                return;
            };
            // The new leg is not the callee dialog yet: its own peer is the
            // signalling source the relay may hear it from.
            let signal = Some(leg.dialog.peer.addr.ip());
            let ack = leg.ack(None, Bytes::new());
            sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, ack);
            self.learn_from(sh, Side::B, signal, resp.content_type(), &resp.body);
            return self.complete_transfer(sh, now, number, id);
        }
        if resp.body.is_empty() {
            // No offer to give the caller: give up on the new leg.
            if let Some(t) = call.end_transfer() {
                self.release_leg(sh, now, t.leg);
            }
            return self.notify_agent(sh, now, "SIP/2.0 488 Not Acceptable Here", true);
        }
        // Give the new leg's offer to the caller.
        let mut reinvite = call.a.request(
            Method::Invite,
            resp.content_type().map(str::to_string),
            Bytes::from(resp.body.clone()),
        );
        reinvite.extra.push(("Contact".into(), contact));
        let peer = call.a.peer;
        let tx = sh.tl.send_request(now, peer, reinvite);
        self.track(sh, tx, Role::TransferReinvite);
    }

    /// The caller's answer to the re-INVITE carrying the new leg's offer.
    pub(super) fn on_transfer_reinvite_response(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        resp: Response,
    ) {
        if resp.code < 200 {
            return;
        }
        let call = &mut *self;
        let Some(Transfer { number, leg: id }) = call.end_transfer() else {
            return;
        };
        if resp.code >= 300 {
            self.release_leg(sh, now, id);
            let frag = format!("SIP/2.0 {} {}", resp.code, resp.reason);
            return self.notify_agent(sh, now, &frag, true);
        }
        // Complete both offer/answer exchanges: ACK the caller, ACK the new leg
        // with the caller's answer.
        let a_ack = call
            .a
            .request_with_cseq(Method::Ack, call.a.local_cseq, None, Bytes::new());
        let a_peer = call.a.peer;
        sh.tl.send_ack(Some(tx), a_peer, a_ack);
        let Some(leg) = self.legs.get(id) else {
            return;
        };
        let c_ack = leg.ack(
            resp.content_type().map(str::to_string),
            Bytes::from(resp.body.clone()),
        );
        sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, c_ack);
        self.complete_transfer(sh, now, number, id);
    }

    /// The new leg is up: tell the agent, put the new leg in its place, release
    /// the agent.
    fn complete_transfer(&mut self, sh: &mut Shared, now: Instant, number: String, id: LegId) {
        self.notify_agent(sh, now, "SIP/2.0 200 OK", true);
        let at_ms = sh.unix_ms(now);
        let call = &mut *self;
        let Some(new_id) = call.legs.get(id).map(|l| l.dialog.call_id.clone()) else {
            return;
        };
        let old_b = call.make_callee(id);
        call.transferred_to = Some(number.clone());
        call.events.push(crate::cdr::Event {
            at_ms,
            kind: crate::cdr::EventKind::TransferredOut,
            detail: Some(number.clone()),
        });
        sh.by_b.insert(new_id, self.key);
        if let Some(old) = old_b {
            // The agent may hang up itself first (see parting.rs).
            sh.part(now, self.key, old);
        }
        info!(number = %number, "call transferred");
        self.release_acd(sh, now);
    }

    /// The new leg or the caller's re-INVITE never answered: tell the agent, and
    /// release the new leg if it had answered.
    pub(super) fn on_transfer_timeout(&mut self, sh: &mut Shared, now: Instant) {
        let Some(t) = self.end_transfer() else {
            return;
        };
        if self.legs.get(t.leg).is_some_and(|l| !l.pending) {
            self.release_leg(sh, now, t.leg);
        } else {
            self.legs.remove(t.leg);
        }
        self.notify_agent(sh, now, "SIP/2.0 408 Request Timeout", true);
    }

    /// The call ends during a transfer: the new leg is cancelled while it
    /// rings, or released if it has answered.
    pub(super) fn drop_transfer(&mut self, sh: &mut Shared, now: Instant) {
        let Some(t) = self.end_transfer() else {
            return;
        };
        let Some(leg) = self.legs.remove(t.leg) else {
            return;
        };
        if !leg.pending {
            return self.release_invited(sh, now, leg);
        }
        match sh.tl.cancel(now, leg.invite) {
            Ok(c) => self.track(sh, c, Role::Fire),
            Err(e) => debug!(error = %e, "transfer leg: CANCEL not sent"),
        }
    }

    /// Ends a leg that answered but is not wanted: ACK its 2xx and send BYE.
    fn release_leg(&mut self, sh: &mut Shared, now: Instant, id: LegId) {
        if let Some(leg) = self.legs.remove(id) {
            self.release_invited(sh, now, leg);
        }
    }

    /// [`Self::release_leg`] for a leg already out of the table: ACK its 2xx
    /// and send BYE.
    pub(super) fn release_invited(&mut self, sh: &mut Shared, now: Instant, mut leg: Leg) {
        let ack = leg.ack(None, Bytes::new());
        sh.tl.send_ack(Some(leg.invite), leg.dialog.peer, ack);
        sh.bye_leg(now, self.key, &mut leg.dialog);
    }

    /// A NOTIFY with a sipfrag of the transfer's progress to the agent (RFC 3515 §2.4.5).
    pub(super) fn notify_agent(&mut self, sh: &mut Shared, now: Instant, frag: &str, last: bool) {
        let key = self.key;
        let Some(leg) = self.b_mut().filter(|l| l.has_dialog()) else {
            return;
        };
        let mut req = leg.dialog.request(
            Method::Notify,
            Some("message/sipfrag;version=2.0".into()),
            Bytes::from(format!("{frag}\r\n")),
        );
        req.extra.push(("Event".into(), "refer".into()));
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        req.extra.push(("Subscription-State".into(), state.into()));
        let peer = leg.dialog.peer;
        let tx = sh.tl.send_request(now, peer, req);
        sh.by_tx.insert(tx, (key, Role::Fire));
    }
}

impl Call {
    /// Ends the transfer in progress, if any: the call is connected as before
    /// (the caller and the agent) and the transfer is handed back.
    fn end_transfer(&mut self) -> Option<Transfer> {
        let CallState::Transferring { by, .. } = self.state else {
            return None;
        };
        match std::mem::replace(&mut self.state, CallState::Connected { by }) {
            CallState::Transferring { transfer, .. } => Some(*transfer),
            _ => None,
        }
    }
}
