//! The initial INVITE: routing, the callee leg, relaying its responses, CANCEL and
//! the timeouts that end an unanswered call.

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info_span};

use super::{Call, CallKey, CallTimer, Core, Phase, Reason, Role, Side};
use super::{called_number, caller_number};
use crate::cdr;
use crate::dialplan::{CallFacts, Outcome, number};
use crate::sip::builder::{MessageBuf, response_to};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::transaction::{OutRequest, TxId};
use crate::sip::{Peer, Transport};
use crate::util::pii::Pii;

impl Core {
    pub(super) fn new_call(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let called = called_number(&req);
        let facts = CallFacts {
            request_uri: number::digits_of(&req.uri),
            to: number::to_digits(&req),
            original: number::original_called(&req),
            source: peer.addr.ip(),
            // Scanning registrations only matters for sources that are no trunk.
            from_agent: self.dialplan.trunk_for(peer.addr.ip()).is_none()
                && self.registrar.is_registered_source(now, peer.addr.ip()),
            at: self.local_time(now),
        };
        let plan = self.dialplan.clone();
        let decision = plan.decide(&facts);
        let (line, outcome) = match (decision.line, &decision.outcome) {
            (_, Outcome::Reject { code, reason }) => {
                let reason = Reason::from_code(reason).unwrap_or(Reason::NoRoute);
                let phrase = if *code == 403 {
                    "Forbidden"
                } else {
                    "Not Found"
                };
                tracing::info!(code, reason = reason.as_str(), source = %Pii(peer.addr.ip()), called = %Pii(&called), "call refused by the dialplan");
                self.reply(now, tx, &req, *code, phrase);
                return self.record_refused(now, &req, reason, *code);
            }
            (Some(line), outcome) => (line.clone(), outcome.clone()),
            (None, _) => {
                self.reply(now, tx, &req, 404, "Not Found");
                return self.record_refused(now, &req, Reason::NoRoute, 404);
            }
        };
        let caller_from_pai = decision
            .trunk
            .as_deref()
            .and_then(|t| plan.trunk(t))
            .is_some_and(|t| t.trusted)
            .then(|| number::asserted_caller(&req))
            .flatten();
        let overload = if self.calls.len() >= self.cfg.max_calls {
            Some(Reason::Overload)
        } else {
            self.store_backlog.then_some(Reason::StoreBacklog)
        };
        if let Some(reason) = overload {
            let tag = self.ids.tag();
            let mut m = response_to(&req, 503, "Service Unavailable", Some(&tag));
            m.header("Retry-After", &self.cfg.retry_after_s.to_string());
            self.respond(now, tx, 503, m.finish_empty());
            // A citizen dialled a line and was turned away: that counts against the
            // line's answer rate, and asks for a callback.
            let offered = match &outcome {
                Outcome::Queue(q) => q.clone(),
                Outcome::Legacy { .. } => format!("legacy:{}", line.number),
                _ => format!("sip:{}", line.number),
            };
            return self.record_turned_away(now, &req, reason, &line, offered);
        }
        let key = self.next_key;
        self.next_key += 1;
        let caller = caller_from_pai.unwrap_or_else(|| caller_number(&req));
        let span = info_span!("call", id = key, line = %line.number, mode = line.mode.as_str());
        span.in_scope(|| debug!(caller = %Pii(&caller), called = %Pii(&called), "offered"));
        let a = Dialog::uas(&req, peer, self.ids.tag());
        if let Some(tag) = &a.remote_tag {
            self.by_a.insert((a.call_id.clone(), tag.clone()), key);
        }
        let queue = match &outcome {
            Outcome::Queue(q) => Some(q.clone()),
            _ => None,
        };
        let parallel = match &outcome {
            Outcome::Legacy { queue, .. } => Some(queue.clone()),
            _ => None,
        };
        self.calls.insert(
            key,
            Call {
                span,
                phase: Phase::Early,
                a,
                b: Dialog::none(),
                a_invite: Some((tx, Box::new(req))),
                b_invite: None,
                b_invite_tx: None,
                relays: Vec::new(),
                b_invite_cseq: 1,
                b_provisional: false,
                cancel_pending: false,
                byes: 0,
                txs: Vec::with_capacity(4),
                caller,
                called: called.clone(),
                line: line.number.clone(),
                queue: queue.clone(),
                agent: None,
                overflowed: false,
                acd_done: false,
                transfer: None,
                transferred_to: None,
                parallel,
                answered_by: None,
                mode: line.mode,
                department: line.department.clone(),
                offered_at: now,
                answered_at: None,
                original: facts.original.clone().map(|(n, _)| n),
                events: Vec::with_capacity(8),
                line_name: line.name.clone(),
                deadline: self.deadline(now, line.deadline_workdays),
                reason: None,
                final_code: 0,
                ring_deadline: None,
                end_deadline: None,
                survey_deadline: None,
                media: None,
                answered_invite: None,
            },
        );
        self.track(key, tx, Role::AInvite);
        self.note(now, key, cdr::EventKind::Received, Some(called.clone()));
        let opened = self
            .calls
            .get(&key)
            .and_then(|c| c.a_invite.as_ref())
            .map(|(_, req)| req.clone())
            .map(|req| self.media_open(key, &req, &line));
        if let Some(Err(refusal)) = opened {
            let (reason, code, phrase) = match refusal {
                super::media::MediaRefusal::NoCodec => (
                    Reason::MediaNoCodec,
                    488,
                    "Not Acceptable Here (offer PCMA or PCMU)",
                ),
                super::media::MediaRefusal::NoPorts => {
                    (Reason::MediaNoPorts, 503, "Service Unavailable")
                }
                super::media::MediaRefusal::BadSdp(e) => {
                    debug!(error = %e, "unreadable SDP offer");
                    (Reason::InvalidRequest, 400, "Bad Request (unreadable SDP)")
                }
            };
            tracing::info!(code, reason = reason.as_str(), "call refused: no media");
            return self.abandon_early(now, key, reason, code, phrase);
        }
        match outcome {
            Outcome::Sip(target) => {
                let at = format!("sip:{}", line.number);
                self.note(now, key, cdr::EventKind::Offered, Some(at));
                let user = target.user.clone().unwrap_or(called);
                let uri = sip_uri(&user, target.addr, target.transport);
                let peer = Peer {
                    transport: target.transport,
                    addr: target.addr,
                };
                self.place_b(now, key, uri, peer, Vec::new());
            }
            Outcome::Queue(q) => self.enqueue(now, key, &q, &line.number),
            Outcome::Legacy {
                target, ring_time, ..
            } => {
                // Parallel answering: the legacy seats ring first.
                let at = format!("legacy:{}", line.number);
                self.note(now, key, cdr::EventKind::Offered, Some(at));
                let user = target.user.clone().unwrap_or(line.number.clone());
                let uri = sip_uri(&user, target.addr, target.transport);
                let peer = Peer {
                    transport: target.transport,
                    addr: target.addr,
                };
                self.place_b(now, key, uri, peer, Vec::new());
                self.arm_call_timer(key, CallTimer::Ring, now + ring_time);
            }
            Outcome::Reject { .. } => {}
        }
    }

    /// The legacy seats of a parallel line did not take the call: 12345 does.
    /// Returns false when the call is not a parallel call still on its legacy leg.
    pub(super) fn overflow_from_legacy(
        &mut self,
        now: Instant,
        key: CallKey,
        leg_done: bool,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        if call.a_invite.is_none() || call.queue.is_some() {
            return false;
        }
        let Some(queue) = call.parallel.clone() else {
            return false;
        };
        call.ring_deadline = None;
        call.queue = Some(queue.clone());
        call.overflowed = true;
        if leg_done {
            // The legacy INVITE is over (Timer B): just forget the leg.
            let dialog = std::mem::replace(&mut call.b, Dialog::none());
            call.b_invite = None;
            call.b_invite_tx = None;
            self.by_b.remove(&dialog.call_id);
        } else {
            // Dropped like an unanswered seat: CANCEL, and ACK+BYE if a 200 races it.
            call.agent = Some("legacy".into());
            self.cancel_ring(now, key, "legacy");
        }
        let line = self
            .calls
            .get(&key)
            .map(|c| c.line.clone())
            .unwrap_or_default();
        tracing::debug!(queue, "parallel line overflows to 12345");
        self.note(now, key, cdr::EventKind::Overflowed, Some(queue.clone()));
        self.enqueue(now, key, &queue, &line);
        true
    }

    /// Places the callee leg: a new dialog (Call-ID, tags, Via, Contact of its
    /// own) carrying the caller's offer to `uri` at `peer`.
    pub(super) fn place_b(
        &mut self,
        now: Instant,
        key: CallKey,
        uri: String,
        peer: Peer,
        extra: Vec<(String, String)>,
    ) {
        let b_tag = self.ids.tag();
        let call_id: Box<str> = self.ids.call_id(self.cfg.shard).into();
        let contact = self.contact(peer.transport);
        let contact_host = self.cfg.contact_host.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // The caller's INVITE: pending, or answered by the gateway itself.
        let Some(req) = call
            .a_invite
            .as_ref()
            .map(|(_, r)| r)
            .or(call.answered_invite.as_ref())
        else {
            return;
        };
        let display = display_name(req.header("From").unwrap_or_default());
        let to = addr_of(&uri);
        call.b = Dialog {
            call_id,
            local_hdr: format!("{display}<sip:{}@{contact_host}>;tag={b_tag}", call.caller),
            local_tag: b_tag.into(),
            remote_tag: None,
            remote_hdr: format!("<{to}>"),
            remote_target: uri.clone(),
            route: Vec::new(),
            peer,
            local_cseq: 1,
        };
        let a_body = Bytes::from(req.body.clone());
        let a_type = req.content_type().map(str::to_string);
        let max_forwards = req
            .max_forwards()
            .and_then(Result::ok)
            .unwrap_or(70)
            .saturating_sub(1)
            .min(70);
        let mut headers = vec![
            ("Contact".into(), contact),
            ("Allow".into(), super::ALLOW.into()),
        ];
        headers.extend(extra);
        let mut out = OutRequest {
            method: Some(Method::Invite),
            uri,
            from: call.b.local_hdr.clone(),
            to: call.b.remote_hdr.clone(),
            call_id: call.b.call_id.to_string(),
            cseq: 1,
            max_forwards,
            route: Vec::new(),
            extra: headers,
            content_type: a_type,
            body: a_body,
        };
        if let Some(offer) = self.b_offer(key) {
            out.content_type = Some("application/sdp".into());
            out.body = offer;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.b_invite_cseq = 1;
        call.b_provisional = false;
        call.cancel_pending = false;
        let b_call_id = call.b.call_id.clone();
        let b_tx = self.tl.send_request(now, peer, out);
        if let Some(call) = self.calls.get_mut(&key) {
            call.b_invite = Some(b_tx);
            call.b_invite_tx = Some(b_tx);
        }
        self.by_b.insert(b_call_id, key);
        self.track(key, b_tx, Role::BInvite);
    }

    /// Our Contact for a leg on `transport`.
    pub(super) fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:gw@{}>", self.cfg.contact_host),
            Transport::Tcp => format!("<sip:gw@{};transport=tcp>", self.cfg.contact_host),
        }
    }

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

    fn on_b_invite_response(&mut self, now: Instant, key: CallKey, tx: TxId, resp: Response) {
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
    fn b_answered(&mut self, now: Instant, key: CallKey, resp: &Response) {
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
    fn b_answered_queued(&mut self, now: Instant, key: CallKey, resp: &Response) {
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
    }

    /// Relays a callee response (1xx or final) to the caller's pending INVITE.
    fn relay_to_caller(&mut self, now: Instant, key: CallKey, resp: &Response) {
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
    fn prack(&mut self, now: Instant, key: CallKey, rseq: String) {
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

    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        cancels: Option<TxId>,
    ) {
        let target = cancels.and_then(|inv| self.by_tx.get(&inv).copied());
        let Some((key, Role::AInvite)) = target else {
            return self.reply(now, tx, req, 481, "Call/Transaction Does Not Exist");
        };
        self.reply(now, tx, req, 200, "OK");
        let pending = self.calls.get(&key).is_some_and(|c| c.a_invite.is_some());
        if !pending {
            return; // Already answered or failed: the CANCEL has no effect.
        }
        self.abandon_early(now, key, Reason::CallerCancelled, 487, "Request Terminated");
    }

    /// Ends an unanswered call from the gateway's side: the caller gets `code`,
    /// the callee a CANCEL (now, or once it has sent a provisional response).
    pub(super) fn abandon_early(
        &mut self,
        now: Instant,
        key: CallKey,
        reason: Reason,
        code: u16,
        phrase: &str,
    ) {
        if self.gateway_answered(key)
            && self
                .calls
                .get(&key)
                .is_some_and(|c| c.a_invite.is_none() && c.answered_at.is_none())
        {
            // The gateway answered this caller itself: it gets BYE, not `code`.
            return self.leave_queue(now, key, reason);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.set_reason(reason);
        call.phase = Phase::Ending;
        call.ring_deadline = None;
        let reason = call.reason.unwrap_or(reason);
        if let Some((a_tx, req)) = call.a_invite.take() {
            let bytes = response_to(&req, code, phrase, Some(&call.a.local_tag)).finish_empty();
            call.final_code = code;
            self.respond(now, a_tx, code, bytes);
            // The caller's side is over now, whatever the callee leg still takes.
            let kind = super::ending_kind(reason);
            self.note(now, key, kind, Some(reason.as_str().to_string()));
        }
        if self.calls.get(&key).is_some_and(|c| c.queue.is_some()) {
            // The ACD cancels any ring in progress (CancelRing orphans the leg).
            if let Err(e) = self.acd.abandon(now, key) {
                debug!(error = %e, "ACD abandon");
            }
            self.drain_acd(now);
            return self.finish(now, key);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.b_invite {
            Some(b_tx) if call.b_provisional => self.cancel_b(now, key, b_tx),
            Some(_) => call.cancel_pending = true,
            None => self.finish(now, key),
        }
    }

    fn cancel_b(&mut self, now: Instant, key: CallKey, b_tx: TxId) {
        match self.tl.cancel(now, b_tx) {
            Ok(c) => self.track(key, c, Role::Fire),
            Err(e) => debug!(error = %e, "CANCEL not sent"),
        }
        // RFC 3261 §9.1: give up on the INVITE 64·T1 after CANCEL if no final comes.
        let guard = now + self.tl.config().timers.timeout();
        self.arm_call_timer(key, CallTimer::Ring, guard);
    }

    pub(super) fn on_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, role)) = self.by_tx.get(&tx) else {
            return;
        };
        match role {
            Role::BInvite => {
                if self.overflow_from_legacy(now, key, true) {
                    return;
                }
                let queued_waiting = self
                    .calls
                    .get(&key)
                    .is_some_and(|c| c.queue.is_some() && c.waiting());
                if queued_waiting {
                    return self.ring_failed(now, key);
                }
                if let Some(c) = self.calls.get_mut(&key) {
                    c.b_invite = None;
                }
                // Answers the caller 408 if it still waits, then ends the call.
                self.abandon_early(now, key, Reason::CalleeTimeout, 408, "Request Timeout");
            }
            Role::Bye => self.bye_done(now, key, tx),
            Role::Relay { server, .. } => {
                self.by_tx.remove(&tx);
                self.fail_relay(now, key, server);
            }
            Role::Fire => {
                self.by_tx.remove(&tx);
            }
            Role::Orphan => {
                self.by_tx.remove(&tx);
                self.orphans.remove(&tx);
            }
            Role::TransferInvite | Role::TransferReinvite => self.on_transfer_timeout(now, key),
            Role::AInvite | Role::AwaitAck { .. } => {}
        }
    }

    pub(super) fn on_ack_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, Role::AInvite)) = self.by_tx.get(&tx) else {
            return;
        };
        if self.calls.get(&key).is_some_and(|c| c.waiting()) {
            // The gateway's own 200 was never acknowledged: the caller is gone.
            return self.leave_queue(now, key, Reason::CallerNoAck);
        }
        let answered = self
            .calls
            .get(&key)
            .is_some_and(|c| c.phase == Phase::Answered);
        if answered {
            if let Some(c) = self.calls.get_mut(&key) {
                c.set_reason(Reason::CallerNoAck);
            }
            self.hang_up(now, key);
        }
    }

    pub(super) fn on_call_timer(&mut self, now: Instant, key: CallKey, timer: CallTimer) {
        match timer {
            CallTimer::Ring => {
                if self.overflow_from_legacy(now, key, false) {
                    return;
                }
                let ending = self
                    .calls
                    .get(&key)
                    .is_some_and(|c| c.phase == Phase::Ending);
                if ending {
                    // The callee never answered our CANCEL's INVITE: give up.
                    self.finish(now, key);
                } else {
                    self.abandon_early(now, key, Reason::CalleeNoAnswer, 408, "Request Timeout");
                }
            }
            CallTimer::Survey => self.on_survey_timer(now, key),
            CallTimer::MaxDuration => {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.set_reason(Reason::MaxDuration);
                    c.end_deadline = None;
                }
                self.hang_up(now, key);
            }
        }
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

/// `"Name" ` from a From value, or nothing.
fn display_name(from: &str) -> String {
    let from = from.trim();
    if from.starts_with('"')
        && let Some(end) = from[1..].find('"')
    {
        return format!("{} ", &from[..end + 2]);
    }
    String::new()
}

/// `sip:user@host:port[;transport=tcp]`.
pub(super) fn sip_uri(user: &str, addr: std::net::SocketAddr, transport: Transport) -> String {
    let host = match addr {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let t = if transport == Transport::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
    format!("sip:{user}@{host}{t}")
}

/// A URI without its parameters, for a To header.
fn addr_of(uri: &str) -> &str {
    uri.split(';').next().unwrap_or(uri)
}
