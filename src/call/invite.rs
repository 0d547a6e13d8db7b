//! The initial INVITE: building the call from its route (`routing.rs`) and
//! placing the callee leg (its answers are in `callee_answer.rs`, the ends of
//! unanswered calls in `unanswered.rs`).

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info_span};

use super::routing::Routed;
use super::{Call, CallState, CallTimer, Core, Leg, Reason, Role, Shared};
use super::{called_number, caller_number};
use crate::cdr;
use crate::dialplan::{Line, Outcome};
use crate::registrar::RequestAuth;
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Request};
use crate::sip::transaction::{OutRequest, TxId};
use crate::sip::{Peer, Transport};
use crate::util::pii::Pii;

impl Core {
    pub(super) fn new_call(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let req = match self.serving {
            super::Serving::Standby => match self.park(now, tx, req, peer) {
                None => return,
                Some(req) => req,
            },
            _ => req,
        };
        if self.serving != super::Serving::Active {
            // The proxy tries the active node; the record says why this one refused.
            self.sh.not_active(now, tx, &req, self.serving);
            if self.handover_claim(&req, peer).is_some() {
                // A peer handing a caller over records the call itself.
                return;
            }
            let reason = match self.serving {
                super::Serving::Draining => Reason::ClusterDraining,
                _ => Reason::ClusterStandby,
            };
            return self.record_refused(now, &req, reason, 503);
        }
        let called = called_number(&req);
        let claim = self.handover_claim(&req, peer);
        let plan = self.sh.dialplan.clone();
        let routed = match &claim {
            Some(c) => self.route_handed_over(now, tx, &req, &plan, c),
            None => self.route_new(now, tx, &req, peer, &plan),
        };
        let Some(Routed {
            line,
            outcome,
            caller_from_pai,
            original,
            trunk,
            callback,
            announce,
            consult,
        }) = routed
        else {
            return; // answered and recorded
        };
        let overload = if self.calls.len() >= self.sh.cfg.max_calls {
            Some(Reason::Overload)
        } else {
            self.store_backlog.then_some(Reason::StoreBacklog)
        };
        if let Some(reason) = overload {
            let tag = self.sh.ids.tag();
            let mut m = response_to(&req, 503, "Service Unavailable", Some(&tag));
            m.header("Retry-After", &self.sh.cfg.retry_after_s.to_string());
            self.sh.respond(now, tx, 503, m.finish_empty());
            if claim.is_some() {
                return; // the handing node records it
            }
            if announce.is_some() {
                // No line in service: nobody was offered the call.
                return self.record_refused(now, &req, reason, 503);
            }
            if let Some(a) = callback {
                self.record_refused(now, &req, reason, 503);
                if let Some(r) = self.records.pop_back() {
                    self.note_callback(Some(a), &r);
                    self.records.push_back(r);
                }
                return;
            }
            // A citizen dialled a line and was turned away: that counts against the
            // line's answer rate, and asks for a callback.
            let offered = offered_to(&outcome, &line);
            return self.record_turned_away(now, &req, reason, &line, offered, trunk);
        }
        let key = self.next_key;
        self.next_key += 1;
        let caller = caller_from_pai.unwrap_or_else(|| caller_number(&req));
        let span = info_span!("call", id = key, line = %line.number, mode = line.mode.as_str());
        span.in_scope(|| debug!(caller = %Pii(&caller), called = %Pii(&called), "offered"));
        let a = Dialog::uas(&req, peer, self.sh.ids.tag());
        if let Some(tag) = &a.remote_tag {
            self.by_a.insert((a.call_id.clone(), tag.clone()), key);
        }
        let (state, queue) = match &outcome {
            Outcome::Queue(q) => (CallState::Queued { prompt: false }, Some(q.clone())),
            Outcome::Legacy { queue, .. } => (
                CallState::Legacy {
                    overflow: queue.clone(),
                },
                None,
            ),
            _ => (CallState::Ringing, None),
        };
        // Legacy seats may hand the call to 12345 later (legacy_transfer.rs).
        let caller_invite =
            matches!(outcome, Outcome::Legacy { .. }).then(|| Box::new(req.clone()));
        let mut call = Call::new(key, span, state, a, &line, now);
        call.a_invite = Some((tx, Box::new(req)));
        call.caller = caller;
        call.called = called.clone();
        call.queue = queue;
        call.trunk = trunk;
        call.original = original;
        call.deadline = self.sh.deadline(now, line.deadline_workdays);
        call.callback = callback;
        call.caller_invite = caller_invite;
        call.consult = consult;
        if let Some(a) = &call.callback {
            call.agent = Some(a.agent.clone());
        }
        if let Some(c) = claim {
            // Handed over by a draining node: its id (one record, one work
            // order) and its first offer's time (its place in the queue).
            let now_ms = self.sh.unix_ms(now);
            let offered_ms = super::handover::claimed_offer_ms(c.offered_ms, now_ms);
            let waited = std::time::Duration::from_millis((now_ms - offered_ms).max(0) as u64);
            call.offered_at = now.checked_sub(waited).unwrap_or(now);
            call.adopted_offer_ms = Some(offered_ms);
            self.sh.adopted.insert(key, c.id);
        }
        let sh = &mut self.sh;
        call.track(sh, tx, Role::AInvite);
        call.arm(sh, CallTimer::Progress, now + super::timer::PROGRESS_EVERY);
        call.note(sh, now, cdr::EventKind::Received, Some(called.clone()));
        let req = call.a_invite.as_ref().map(|(_, r)| r.clone());
        let opened = req.map(|req| call.media_open(sh, &req, &line));
        let span = call.span.clone();
        let _enter = span.enter();
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
            if announce.is_some() {
                // A line out of service offers the call to nobody: a plain 404.
                call.abandon_early(sh, now, Reason::LineNotInService, 404, "Not Found");
                self.calls.insert(key, Box::new(call));
                return;
            }
            // The caller reached a line and was not served: offered, and missed
            // (an agent's callback reached nobody: not offered).
            if !call.agent_placed() {
                let offered = offered_to(&outcome, &line);
                call.note(sh, now, cdr::EventKind::Offered, Some(offered));
            }
            call.abandon_early(sh, now, reason, code, phrase);
        } else if let Some(prompt) = announce {
            call.announce(sh, now, &prompt);
        } else {
            call.route(sh, now, outcome, &line);
        }
        self.calls.insert(key, Box::new(call));
    }

    /// Whether a request from a source that is no trunk comes from an agent:
    /// `Some(Some(agent))` with valid credentials, `Some(None)` from a stranger (no
    /// credentials, no registration from its address: the dialplan decides),
    /// `None` when it has been answered here: a 401 challenge (no credentials from
    /// an address an agent registered from, or stale/wrong ones), 403 to a blocked
    /// source, 400 to malformed credentials.
    pub(super) fn agent_auth(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: Peer,
    ) -> Option<Option<String>> {
        let from = crate::call::caller_number(req);
        let reply = match self
            .sh
            .registrar
            .authenticate_request(now, req, peer, Some(&from))
        {
            RequestAuth::Agent(user) => return Some(Some(user)),
            RequestAuth::Absent if !self.sh.registrar.is_registered_source(peer.addr.ip()) => {
                return Some(None);
            }
            RequestAuth::Absent => self.sh.registrar.challenge_request(now, peer, Some(&from)),
            RequestAuth::Reply(r) => r,
        };
        self.sh.send_registrar_reply(now, tx, req, &reply);
        None
    }
}

impl Call {
    /// Places the first leg of a new call as its route says.
    pub(super) fn route(&mut self, sh: &mut Shared, now: Instant, outcome: Outcome, line: &Line) {
        match outcome {
            Outcome::Sip(target) => {
                // A callback is offered to nobody: the agent placed it.
                if !self.agent_placed() {
                    let at = format!("sip:{}", line.number);
                    self.note(sh, now, cdr::EventKind::Offered, Some(at));
                }
                let user = target.user.clone().unwrap_or(self.called.clone());
                let uri = sip_uri(&user, target.addr, target.transport);
                let peer = Peer {
                    transport: target.transport,
                    addr: target.addr,
                };
                // A callback presents the hotline's number, asserted.
                self.callback_placed(sh, now);
                let extra = match self.callback {
                    Some(_) => vec![(
                        "P-Asserted-Identity".to_string(),
                        format!("<sip:{}@{}>", self.caller, sh.cfg.contact_host),
                    )],
                    None => Vec::new(),
                };
                self.place_b(sh, now, (uri, peer, Vec::new()), extra);
            }
            Outcome::Queue(q) => self.enqueue(sh, now, &q, &line.number, false),
            Outcome::Legacy {
                target, ring_time, ..
            } => {
                // Parallel answering: the legacy seats ring first.
                let at = format!("legacy:{}", line.number);
                self.note(sh, now, cdr::EventKind::Offered, Some(at));
                let user = target.user.clone().unwrap_or(line.number.clone());
                let uri = sip_uri(&user, target.addr, target.transport);
                let peer = Peer {
                    transport: target.transport,
                    addr: target.addr,
                };
                self.place_b(sh, now, (uri, peer, Vec::new()), Vec::new());
                self.arm(sh, CallTimer::LegacyRing, now + ring_time);
            }
            Outcome::Reject { .. } => {}
        }
    }

    /// The legacy seats of a parallel line did not take the call: 12345 does.
    /// `leg_done`: the legacy INVITE is over (a final response, or Timer B), so
    /// the leg is only forgotten; otherwise it is cancelled like an unanswered
    /// seat (ACK and BYE if a 200 races the CANCEL). Returns false when the call
    /// is not ringing legacy seats.
    pub(super) fn overflow_from_legacy(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        leg_done: bool,
    ) -> bool {
        let CallState::Legacy { overflow } = &self.state else {
            return false;
        };
        if self.a_invite.is_none() {
            return false;
        }
        let queue = overflow.clone();
        self.state = CallState::Queued { prompt: false };
        self.timers.stop(CallTimer::LegacyRing);
        self.queue = Some(queue.clone());
        self.overflowed = true;
        let line = self.line.clone();
        if leg_done {
            if let Some(leg) = self.take_b() {
                sh.by_b.remove(&leg.dialog.call_id);
            }
        } else {
            self.agent = Some("legacy".into());
            self.cancel_ring(sh, now, "legacy");
        }
        debug!(queue, "parallel line overflows to 12345");
        self.note(sh, now, cdr::EventKind::Overflowed, Some(queue.clone()));
        self.enqueue(sh, now, &queue, &line, true);
        true
    }

    /// Places the callee leg: a new dialog (Call-ID, tags, Via, Contact of its
    /// own) carrying the caller's offer to `uri` at `peer`, with a preloaded
    /// `route` (the Path a proxy in front of an agent recorded; RFC 3327).
    pub(super) fn place_b(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        (uri, peer, route): (String, Peer, Vec<String>),
        extra: Vec<(String, String)>,
    ) {
        let b_tag = sh.ids.tag();
        let call_id: Box<str> = sh.ids.call_id(sh.cfg.shard).into();
        let contact = sh.contact(peer.transport);
        // The caller's INVITE: pending, or answered by the gateway itself.
        let Some(req) = self
            .a_invite
            .as_ref()
            .map(|(_, r)| r)
            .or(self.answered_invite.as_ref())
        else {
            return;
        };
        // A callback shows the citizen the hotline's number, not the agent's name.
        let display = match self.callback {
            Some(_) => String::new(),
            None => display_name(req.header("From").unwrap_or_default()),
        };
        let to = addr_of(&uri);
        let dialog = Dialog {
            call_id,
            local_hdr: format!(
                "{display}<sip:{}@{}>;tag={b_tag}",
                self.caller, sh.cfg.contact_host
            ),
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
            from: dialog.local_hdr.clone(),
            to: dialog.remote_hdr.clone(),
            call_id: dialog.call_id.to_string(),
            cseq: 1,
            max_forwards,
            route,
            extra: headers,
            content_type: a_type,
            body: a_body,
        };
        if let Some(offer) = self.b_offer(sh) {
            out.content_type = Some("application/sdp".into());
            out.body = offer;
        }
        sh.by_b.insert(dialog.call_id.clone(), self.key);
        let b_tx = sh.tl.send_request(now, peer, out);
        let id = self.legs.add(Leg::placed(dialog, b_tx));
        self.make_callee(id);
        self.track(sh, b_tx, Role::BInvite);
    }
}

/// Where a call to `line` is offered, as its `offered` event names it: the
/// queue, `legacy:<line>` or `sip:<line>`.
fn offered_to(outcome: &Outcome, line: &Line) -> String {
    match outcome {
        Outcome::Queue(q) => q.clone(),
        Outcome::Legacy { .. } => format!("legacy:{}", line.number),
        _ => format!("sip:{}", line.number),
    }
}

/// `"Name" ` from a From value, or nothing: a quoted string (RFC 3261 §25.1)
/// whose `\"` and `\\` escapes are kept, so the copy is as well formed as the
/// original; an unterminated one is dropped.
pub(super) fn display_name(from: &str) -> String {
    let from = from.trim();
    if !from.starts_with('"') {
        return String::new();
    }
    let mut escaped = false;
    for (i, c) in from.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return format!("{} ", &from[..=i]),
            '\r' | '\n' => break,
            _ => {}
        }
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

#[cfg(test)]
mod display_tests {
    use super::display_name;

    #[test]
    fn escaped_quotes_stay_inside_the_display_name() {
        assert_eq!(
            display_name(r#""Zhang \"San\"" <sip:1@h>;tag=a"#),
            r#""Zhang \"San\"" "#
        );
        assert_eq!(display_name(r#""back\\" <sip:1@h>"#), r#""back\\" "#);
        assert_eq!(display_name(r#""张三" <sip:1@h>"#), r#""张三" "#);
        assert_eq!(display_name(r#""open <sip:1@h>"#), "");
        assert_eq!(display_name("<sip:1@h>"), "");
    }
}
