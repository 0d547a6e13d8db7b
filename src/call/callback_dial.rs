//! A callback dialled through the API (third-party call control, RFC 3725):
//! `POST /api/v1/calls/{id}/callback/dial` with the agent who calls back. The
//! gateway rings the agent's phone first (its INVITE carries the citizen's
//! number and the missed call's id, as a screen pop); once the agent answers,
//! the citizen is dialled over the outbound trunk exactly as when the agent
//! dials from its softphone (`callback.rs`): the hotline's number presented,
//! the trunk's patterns and limits, and the attempt recorded with its result.
//!
//! The gateway offers the agent's phone its own SDP (the relay's caller-side
//! port, both G.711 laws), so the media must be anchored (`[media]`); the
//! citizen is offered the law the agent chose. Until the agent answers, no
//! attempt exists: an agent who does not answer costs the citizen nothing.
//!
//! In the call, the agent's dialog is the call's A side, placed by the gateway
//! (`Call::placed_a`); everything after the agent's answer is the ordinary
//! callback flow.

use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};
use tracing::info;

use super::api::ApiError;
use super::callback::{Attempt, agent_line};
use super::media::CallMedia;
use super::{Call, CallState, CallTimer, Core, Reason, Role, Side};
use crate::cdr;
use crate::dialplan::{Outcome, Target};
use crate::media::command::{MediaCommand, Remote};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Response};
use crate::sip::sdp::Sdp;
use crate::sip::transaction::OutRequest;

/// The gateway's own offer to the agent's phone: both laws and DTMF events.
fn own_offer(address: std::net::IpAddr) -> Option<Sdp> {
    let ip = match address {
        std::net::IpAddr::V4(_) => "IP4",
        std::net::IpAddr::V6(_) => "IP6",
    };
    Sdp::parse(&format!(
        "v=0\r\no=hotline 1 1 IN {ip} {address}\r\ns=hotline\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
m=audio 9 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
    ))
    .ok()
}

/// A refusal of the API, with its stable code.
fn refused(code: &'static str, why: String) -> ApiError {
    ApiError::Party(code, why)
}

impl Core {
    /// `POST /api/v1/calls/{missed}/callback/dial`: rings `agent`, then the
    /// citizen the missed call `missed` owes a callback to.
    pub fn dial_callback_api(
        &mut self,
        now: Instant,
        missed: &str,
        agent: &str,
    ) -> Result<Value, ApiError> {
        let number = self
            .sh
            .callbacks
            .number_of(missed)
            .ok_or_else(|| {
                refused(
                    "no_pending_callback",
                    format!("call {missed:?} is not owed a callback (or is not known yet)"),
                )
            })?
            .to_string();
        let busy = self
            .sh
            .acd
            .agent(agent, now)
            .ok_or_else(|| ApiError::UnknownAgent(agent.to_string()))?
            .call
            .is_some();
        // On a call the ACD offered, or on one the agent placed itself (a
        // callback, a consultation: the ACD does not see those).
        let placing = |c: &Call| {
            c.consult.as_deref() == Some(agent)
                || c.callback.as_ref().is_some_and(|a| a.agent == agent)
        };
        if busy || self.calls.values().any(|c| placing(c)) {
            return Err(refused("agent_busy", format!("agent {agent} is on a call")));
        }
        let binding = self
            .sh
            .registrar
            .lookup(now, agent)
            .first()
            .map(|b| (b.contact.clone(), b.ring_at(), b.path.clone()));
        let Some((contact, agent_peer, path)) = binding else {
            return Err(refused(
                "agent_not_registered",
                format!("agent {agent} has no registered phone"),
            ));
        };
        let Some(address) = self.sh.cfg.media.as_ref().map(|m| m.address) else {
            return Err(refused(
                "no_media",
                "the gateway's media is off ([media]): it cannot offer the agent's phone its own SDP"
                    .into(),
            ));
        };
        let plan = self.sh.dialplan.clone();
        let trunk = plan.outbound_trunk();
        let Some((trunk, o, target)) =
            trunk.and_then(|t| Some((t, t.outbound.as_ref()?, t.target.clone()?)))
        else {
            return Err(refused(
                "no_trunk",
                "no outbound trunk is configured".into(),
            ));
        };
        if !o.allows(&number) {
            return Err(refused(
                "not_allowed",
                format!("the outbound trunk's patterns do not allow {number}"),
            ));
        }
        if self.calls.len() >= self.sh.cfg.max_calls {
            return Err(refused(
                "overload",
                "the gateway is at its call limit".into(),
            ));
        }
        if !self.sh.outbound.admit(now, o) {
            return Err(refused(
                "trunk_busy",
                "the outbound trunk is at its limit: try again in a second".into(),
            ));
        }
        let key = self.next_key;
        self.next_key += 1;
        let target = Target {
            user: Some(number.clone()),
            ..target
        };
        let line = agent_line(format!("callback over {}", trunk.name), target.clone());
        let attempt = Attempt {
            missed: missed.to_string(),
            agent: agent.to_string(),
            number: number.clone(),
            started_ms: self.sh.unix_ms(now),
            placed: false,
        };
        let sh = &mut self.sh;
        let tag = sh.ids.tag();
        let host = sh.cfg.contact_host.clone();
        let a = Dialog {
            call_id: sh.ids.call_id(sh.cfg.shard).into(),
            local_hdr: format!("\"callback\" <sip:{}@{host}>;tag={tag}", o.caller_id),
            local_tag: tag.into(),
            remote_tag: None,
            remote_hdr: format!("<sip:{agent}@{host}>"),
            remote_target: contact.clone(),
            route: path,
            peer: agent_peer,
            local_cseq: 1,
        };
        // What the callee leg is built from (`place_b`): the citizen sees the
        // hotline's number, and nothing of the agent's.
        let template = format!(
            "INVITE sip:{number}@{host} SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch=z9hG4bK3pcc{key}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{}@{host}>;tag={}\r\nTo: <sip:{number}@{host}>\r\n\
Call-ID: {}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            o.caller_id, a.local_tag, a.call_id
        );
        let Ok(crate::sip::message::Message::Request(template)) =
            crate::sip::message::parse(template.as_bytes())
        else {
            sh.outbound.release();
            return Err(refused("internal", "could not build the callback".into()));
        };
        let span = tracing::info_span!("call", id = key, line = "callback", mode = "callback");
        let mut call = Call::new(key, span, CallState::Ringing, a, &line, now);
        call.answered_invite = Some(Box::new(template));
        call.caller = o.caller_id.clone();
        call.called = number.clone();
        call.agent = Some(agent.to_string());
        call.trunk = Some(trunk.name.clone());
        call.callback = Some(attempt);
        let offer = match call.open_own_media(sh, address) {
            Some(o) => o,
            None => {
                sh.outbound.release();
                return Err(refused("no_ports", "no RTP ports are free".into()));
            }
        };
        let contact_hdr = sh.contact(agent_peer.transport);
        let out = OutRequest {
            method: Some(Method::Invite),
            uri: contact,
            from: call.a.local_hdr.clone(),
            to: call.a.remote_hdr.clone(),
            call_id: call.a.call_id.to_string(),
            cseq: 1,
            max_forwards: 70,
            route: call.a.route.clone(),
            extra: vec![
                ("Contact".into(), contact_hdr),
                ("Allow".into(), super::ALLOW.into()),
                ("X-Hotline-Callback".into(), missed.to_string()),
                ("X-Hotline-Caller".into(), number.clone()),
            ],
            content_type: Some("application/sdp".into()),
            body: offer,
        };
        let tx = sh.tl.send_request(now, agent_peer, out);
        call.a_placed = true;
        call.a_route = Some(Box::new((line, Outcome::Sip(target), tx)));
        call.track(sh, tx, Role::AgentInvite);
        call.arm(sh, CallTimer::Ring, now + sh.cfg.ring_timeout);
        call.note(sh, now, cdr::EventKind::Received, Some(number.clone()));
        info!(agent, "callback by the API: ringing the agent first");
        self.calls.insert(key, Box::new(call));
        let id = self.sh.call_id_of(key);
        Ok(json!({ "call": id, "missed": missed, "agent": agent, "state": "ringing_agent" }))
    }
}

impl Call {
    /// Media for a call whose first leg the gateway places: the relay's
    /// session, and the gateway's own offer for that leg (returned).
    fn open_own_media(
        &mut self,
        sh: &mut super::Shared,
        address: std::net::IpAddr,
    ) -> Option<Bytes> {
        let offer = own_offer(address)?;
        let a = sh.ports.take(sh.ids.next_u64())?;
        let Some(b) = sh.ports.take(sh.ids.next_u64()) else {
            sh.ports.give_back(a);
            return None;
        };
        sh.media_cmd(MediaCommand::Open {
            session: self.key,
            ports: [a, b],
            record: None,
        });
        let seed = sh.ids.next_u64();
        let placeholder = Remote {
            rtp: std::net::SocketAddr::new(address, 9),
            rtcp: std::net::SocketAddr::new(address, 9),
            codec: crate::media::Codec::Pcma,
            dtmf_pt: None,
        };
        self.media = Some(Box::new(CallMedia {
            ports: [a, b],
            codec: crate::media::Codec::Pcma,
            offer: offer.clone(),
            a_answer: None,
            origin: [(seed >> 1 & 0xffff_ffff, 1), (seed >> 33, 1)],
            survey_due: false,
            survey_digit: None,
            recording: None,
            playing: false,
            plays: 0,
            line_prompt: None,
            dtmf: [None, None],
            a_remote: placeholder,
        }));
        let body = self.present(sh, Side::A, offer);
        if let Some(m) = self.media.as_mut() {
            // The agent's phone has the gateway's SDP: what the citizen's
            // phone answers is told to the relay, not passed on.
            m.a_answer = Some(body.clone());
        }
        Some(body)
    }

    /// The agent's phone answered (or refused) the gateway's INVITE.
    pub(super) fn on_agent_invite_response(
        &mut self,
        sh: &mut super::Shared,
        now: Instant,
        tx: crate::sip::transaction::TxId,
        resp: Response,
    ) -> Option<(Box<str>, Box<str>)> {
        if resp.code < 200 {
            self.a.learn_from_response(&resp);
            return None;
        }
        self.timers.stop(CallTimer::Ring);
        // Cancelled at the ring timeout: an answer that raced the CANCEL
        // is released, the citizen is not called.
        let cancelled = self.timers.get(CallTimer::CancelGuard).is_some();
        self.timers.stop(CallTimer::CancelGuard);
        if resp.code >= 300 || cancelled || !matches!(self.state, CallState::Ringing) {
            if resp.code < 300 {
                // Given up on meanwhile: ACK and BYE the agent's late answer.
                self.a.learn_from_response(&resp);
                let ack = self.a.request_with_cseq(Method::Ack, 1, None, Bytes::new());
                sh.tl.send_ack(Some(tx), self.a.peer, ack);
                self.hang_up_side(sh, now, Side::A);
                return None;
            }
            info!(
                code = resp.code,
                "callback by the API: the agent did not answer"
            );
            self.set_reason(Reason::from_callee_status(resp.code));
            self.final_code = resp.code;
            self.a.remote_tag = None;
            self.a_route = None;
            self.finish(sh);
            return None;
        }
        self.a.learn_from_response(&resp);
        let ack = self.a.request_with_cseq(Method::Ack, 1, None, Bytes::new());
        sh.tl.send_ack(Some(tx), self.a.peer, ack);
        self.a_acked = true;
        self.learn(sh, Side::A, resp.content_type(), &resp.body);
        let (line, outcome, _) = *self.a_route.take()?;
        self.route(sh, now, outcome, &line);
        let tag = self.a.remote_tag.clone()?;
        self.a_tag = Some(tag.clone());
        Some((self.a.call_id.clone(), tag))
    }

    /// The agent's phone rang out (the ring timeout): its INVITE is
    /// cancelled; its final response ends the call.
    pub(super) fn agent_no_answer(&mut self, sh: &mut super::Shared, now: Instant) {
        self.set_reason(Reason::CalleeNoAnswer);
        if let Some(tx) = self.a_route.as_ref().map(|r| r.2) {
            self.cancel_b(sh, now, tx);
        }
    }

    /// The agent's INVITE got no final response (Timer B).
    pub(super) fn agent_invite_timeout(&mut self, sh: &mut super::Shared) {
        self.set_reason(Reason::CalleeTimeout);
        self.a_route = None;
        self.finish(sh);
    }
}
