//! Three-party calls: the agent adds a transfer-directory number (110, a
//! department) to a connected call; the gateway rings it on a third leg and,
//! on answer, the relay mixes all three (each hears the other two). The agent
//! may then leave (the citizen and the third party stay connected: a transfer
//! after introduction), or the third party may leave (back to the two).
//!
//! Two ways in, both for the call's own agent only:
//! - REFER with `;hotline=conference` on the Refer-To URI. Every softphone can
//!   send a REFER to a typed URI (its blind-transfer key), so no new message is
//!   needed; a plain REFER stays a blind transfer. NOTIFYs report progress as
//!   for a transfer (RFC 3515).
//! - `POST /api/v1/calls/{id}/parties` (an agent desktop, a supervisor).
//!
//! Why not DTMF codes: the citizen would hear them, and they clash with the
//! survey's keys. Three-party calls need the media anchored (the mix is the
//! relay's); without, they are refused (488).
//!
//! The call stays `Connected` throughout; `Call::third` holds the third leg.
//! Its join and leave are events of the call record (`party_joined`,
//! `party_left`); the SLA counts the call once, as answered by the agent.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info};

use super::leg::{Leg, LegId};
use super::{Call, CallState, CallTimer, Role, Shared};
use crate::cdr::EventKind;
use crate::media::command::{Leg as MediaLeg, MediaCommand};
use crate::sip::message::{Method, Request, Response};
use crate::sip::sdp::Direction;
use crate::sip::transaction::TxId;

/// How long the third party may ring before the gateway gives up on it.
pub(super) const PARTY_RING: Duration = Duration::from_secs(30);

/// The third party of a call.
#[derive(Debug)]
pub(super) struct Third {
    /// The directory number rung.
    pub number: String,
    pub leg: LegId,
    /// Its RTP port at the relay ([`MediaLeg::C`]).
    pub port: u16,
    /// Our `o=` session id and version towards it.
    pub origin: (u64, u64),
    /// It answered: the mix is on.
    pub joined: bool,
    /// Its telephone-event payload type, from its answer.
    pub dtmf: Option<u8>,
    /// The agent's REFER asked for it: progress goes back as NOTIFYs.
    pub by_refer: bool,
}

/// Why a third party cannot be added now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRefusal {
    /// Not connected to a person, or a transfer or another party in progress.
    Busy,
    /// The call's media is not anchored at the gateway: nothing to mix.
    NoMedia,
    /// No RTP ports left.
    NoPorts,
}

impl PartyRefusal {
    /// The SIP status and phrase, for a REFER.
    pub fn sip(self) -> (u16, &'static str) {
        match self {
            PartyRefusal::Busy => (491, "Request Pending"),
            PartyRefusal::NoMedia => (488, "Not Acceptable Here (three-party calls need media)"),
            PartyRefusal::NoPorts => (503, "Service Unavailable (no RTP ports)"),
        }
    }

    /// The stable code of the API's error body.
    pub fn code(self) -> &'static str {
        match self {
            PartyRefusal::Busy => "call_busy",
            PartyRefusal::NoMedia => "no_media",
            PartyRefusal::NoPorts => "no_ports",
        }
    }
}

impl Call {
    /// Rings `entry` as the call's third party. With `refer`, the agent's
    /// REFER is answered here (202, or the refusal).
    pub(super) fn add_party(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        entry: &crate::dialplan::Transfer,
        refer: Option<(TxId, &Request)>,
    ) -> Result<(), PartyRefusal> {
        let r = self.place_party(sh, now, entry, refer.is_some());
        if let Some((tx, req)) = refer {
            match r {
                Ok(()) => {
                    sh.reply(now, tx, req, 202, "Accepted");
                    self.notify_agent(sh, now, "SIP/2.0 100 Trying", false);
                }
                Err(e) => {
                    let (code, phrase) = e.sip();
                    sh.reply(now, tx, req, code, phrase);
                }
            }
        }
        r
    }

    fn place_party(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        entry: &crate::dialplan::Transfer,
        by_refer: bool,
    ) -> Result<(), PartyRefusal> {
        // The agent must be the callee: not a call an agent placed itself
        // (a callback, a consultation), where the agent is the caller.
        let ready = self.a_acked
            && matches!(self.state, CallState::Connected { .. })
            && self.third.is_none()
            && !self.agent_placed()
            && !self.a_placed
            && self.b().is_some_and(|l| !l.pending);
        if !ready {
            return Err(PartyRefusal::Busy);
        }
        if self.media.is_none() || sh.cfg.media.is_none() {
            return Err(PartyRefusal::NoMedia);
        }
        let port = sh
            .ports
            .take(sh.ids.next_u64())
            .ok_or(PartyRefusal::NoPorts)?;
        sh.media_cmd(MediaCommand::AddLeg {
            session: self.key,
            port,
        });
        let seed = sh.ids.next_u64();
        let mut origin = (seed >> 33, 1);
        let offer = self.party_offer(sh, port, &mut origin);
        let (dialog, tx) = self.invite_directory(sh, now, entry, offer);
        let leg = self.legs.add(Leg::placed(dialog, tx));
        self.third = Some(Box::new(Third {
            number: entry.number.clone(),
            leg,
            port,
            origin,
            joined: false,
            dtmf: None,
            by_refer,
        }));
        self.track(sh, tx, Role::PartyInvite);
        self.arm(sh, CallTimer::PartyRing, now + PARTY_RING);
        info!(number = %entry.number, "three-party call: ringing the third party");
        Ok(())
    }

    /// The offer for the third party: the caller's codec, anchored at `port`.
    fn party_offer(&mut self, sh: &Shared, port: u16, origin: &mut (u64, u64)) -> Option<Bytes> {
        let cfg = sh.cfg.media.as_ref()?;
        let m = self.media.as_ref()?;
        let mut sdp = m.offer.clone();
        if let Err(e) = sdp.restrict_codecs(&[
            super::media_sdp::codec_name(m.codec),
            "telephone-event/8000",
        ]) {
            debug!(error = %e, "third-party offer keeps the caller's codecs");
        }
        sdp.set_direction(Direction::SendRecv);
        Some(super::media::anchored(sdp, cfg.address, port, origin))
    }

    /// A response on the third party's INVITE `tx` (one the call has let go
    /// is an orphan's: `end_party`).
    pub(super) fn on_party_response(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        resp: Response,
    ) {
        let Some(third) = self.third.as_deref() else {
            return;
        };
        let id = third.leg;
        if self.legs.get(id).is_none_or(|l| l.invite != tx) {
            return;
        }
        if resp.code < 200 {
            if let Some(leg) = self.legs.get_mut(id) {
                leg.provisional = true;
                leg.dialog.learn_from_response(&resp);
            }
            return;
        }
        if resp.code >= 300 {
            // Its INVITE is over: nothing to cancel or orphan.
            if let Some(leg) = self.legs.get_mut(id) {
                leg.pending = false;
            }
            info!(
                code = resp.code,
                "three-party call: the third party did not answer"
            );
            let frag = format!("SIP/2.0 {} {}", resp.code, resp.reason);
            return self.end_party(sh, now, Some(&frag));
        }
        let Some(leg) = self.legs.get_mut(id) else {
            return;
        };
        leg.dialog.learn_from_response(&resp);
        leg.pending = false;
        let ack = leg.ack(None, Bytes::new());
        let (peer, invite, call_id) = (leg.dialog.peer, leg.invite, leg.dialog.call_id.clone());
        sh.tl.send_ack(Some(invite), peer, ack);
        if !matches!(self.state, CallState::Connected { .. }) {
            // The call moved on while it rang (the agent left, the caller hung up).
            return self.end_party(sh, now, None);
        }
        self.timers.stop(CallTimer::PartyRing);
        sh.by_b.insert(call_id, self.key);
        let remote = self.media.as_ref().and_then(|m| {
            let text = std::str::from_utf8(&resp.body).ok()?;
            let sdp = crate::sip::sdp::Sdp::parse(text).ok()?;
            super::media_sdp::remote_of(&sdp, Some(m.codec))
        });
        let Some(remote) = remote else {
            info!("three-party call: the third party's answer has no usable SDP");
            return self.end_party(sh, now, Some("SIP/2.0 488 Not Acceptable Here"));
        };
        sh.media_cmd(MediaCommand::Remote {
            session: self.key,
            leg: MediaLeg::C,
            remote,
            signal: Some(peer.addr.ip()).filter(|ip| !ip.is_unspecified()),
        });
        sh.media_cmd(MediaCommand::Mix {
            session: self.key,
            on: true,
        });
        let number = match self.third.as_deref_mut() {
            Some(t) => {
                t.joined = true;
                t.dtmf = remote.dtmf_pt;
                t.number.clone()
            }
            None => return,
        };
        self.note(sh, now, EventKind::PartyJoined, Some(number.clone()));
        info!(number = %number, "three-party call: all three connected");
        if self.third.as_deref().is_some_and(|t| t.by_refer) {
            self.notify_agent(sh, now, "SIP/2.0 200 OK", true);
        }
    }

    /// The third party rang too long (`tx`: none), or its INVITE `tx` timed
    /// out.
    pub(super) fn on_party_timeout(&mut self, sh: &mut Shared, now: Instant, tx: Option<TxId>) {
        let current = self
            .third_leg()
            .is_some_and(|l| tx.is_none_or(|t| l.invite == t));
        if current && self.third.as_deref().is_some_and(|t| !t.joined) {
            if tx.is_some()
                && let Some(leg) = self.third.as_deref().map(|t| t.leg)
                && let Some(leg) = self.legs.get_mut(leg)
            {
                // Timer B: its INVITE is over, nothing to cancel.
                leg.pending = false;
            }
            self.end_party(sh, now, Some("SIP/2.0 408 Request Timeout"));
        }
    }

    /// A request on the third party's dialog: BYE (it leaves), anything else
    /// answered here (the other legs are not its business).
    pub(super) fn on_party_request(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: crate::sip::Peer,
    ) {
        match req.method {
            Method::Bye => {
                sh.reply(now, tx, req, 200, "OK");
                if let Some(t) = self.third.as_deref()
                    && let Some(leg) = self.legs.get_mut(t.leg)
                {
                    // Its dialog is over: nothing to BYE.
                    leg.dialog.remote_tag = None;
                }
                info!("three-party call: the third party left");
                self.end_party(sh, now, None);
            }
            Method::Invite | Method::Update => self.answer_party_refresh(sh, now, tx, req, peer),
            Method::Refer => sh.reply(now, tx, req, 403, "Forbidden (only the agent may transfer)"),
            _ => sh.reply(now, tx, req, 200, "OK"),
        }
    }

    /// A re-INVITE or UPDATE from the third party (a session refresh, hold):
    /// its address goes to the relay; the answer is the gateway's own SDP.
    fn answer_party_refresh(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: crate::sip::Peer,
    ) {
        let Some(third) = self.third.as_deref_mut() else {
            return;
        };
        let codec = self.media.as_ref().map(|m| m.codec);
        let text = std::str::from_utf8(&req.body).unwrap_or("");
        let offer = crate::sip::sdp::Sdp::parse(text).ok();
        if let Some(remote) = offer
            .as_ref()
            .and_then(|sdp| super::media_sdp::remote_of(sdp, codec))
        {
            sh.media_cmd(MediaCommand::Remote {
                session: self.key,
                leg: MediaLeg::C,
                remote,
                signal: Some(peer.addr.ip()).filter(|ip| !ip.is_unspecified()),
            });
        }
        let answer = match (offer, sh.cfg.media.as_ref()) {
            (Some(mut sdp), Some(cfg)) => {
                if let Err(e) = sdp.restrict_codecs(super::media::RELAYED) {
                    debug!(error = %e, "third party's refresh offer kept as is");
                }
                let dir = sdp.direction().unwrap_or(Direction::SendRecv).reversed();
                sdp.set_direction(dir);
                Some(super::media::anchored(
                    sdp,
                    cfg.address,
                    third.port,
                    &mut third.origin,
                ))
            }
            _ => None,
        };
        let tag = self
            .legs
            .get(third.leg)
            .map(|l| l.dialog.local_tag.to_string());
        let contact = sh.contact(self.a.peer.transport);
        let mut m = crate::sip::builder::response_to(req, 200, "OK", tag.as_deref());
        m.header("Contact", &contact);
        let bytes = match answer {
            Some(b) => m.finish(Some("application/sdp"), &b),
            None => m.finish_empty(),
        };
        sh.respond(now, tx, 200, bytes);
    }

    /// The third party is gone (it left, refused, never answered, or the call
    /// is ending): its leg and port are let go, the caller and the agent hear
    /// each other again. `frag`: the agent's REFER gets this final NOTIFY.
    pub(super) fn end_party(&mut self, sh: &mut Shared, now: Instant, frag: Option<&str>) {
        let Some(third) = self.third.take() else {
            return;
        };
        self.timers.stop(CallTimer::PartyRing);
        sh.media_cmd(MediaCommand::DropLeg {
            session: self.key,
            leg: MediaLeg::C,
        });
        sh.ports.give_back(third.port);
        if let Some(mut leg) = self.legs.remove(third.leg) {
            sh.by_b.remove(&leg.dialog.call_id);
            if leg.pending {
                // Cancelled (now, or at its first provisional); a 2xx that
                // races the CANCEL gets ACK and BYE, whatever the call does.
                self.orphan_leg(sh, now, leg);
            } else if leg.dialog.remote_tag.is_some() {
                sh.bye_leg(now, self.key, &mut leg.dialog);
            }
        }
        if third.joined {
            self.note(sh, now, EventKind::PartyLeft, Some(third.number));
        }
        if third.by_refer
            && let Some(frag) = frag
        {
            self.notify_agent(sh, now, frag, true);
        }
    }

    /// The agent hung up while the third party is on the call: the third
    /// party takes the agent's place (a transfer after introduction). False
    /// when there is no joined third party (the agent's BYE ends as usual).
    pub(super) fn agent_leaves_party(&mut self, sh: &mut Shared, now: Instant) -> bool {
        let Some(third) = self.third.take_if(|t| t.joined) else {
            return false;
        };
        let agent = self.agent.clone().unwrap_or_else(|| "agent".into());
        if let Some(old) = self.make_callee(third.leg) {
            sh.by_b.remove(&old.dialog.call_id);
        }
        sh.media_cmd(MediaCommand::Promote { session: self.key });
        if let Some(m) = self.media.as_mut() {
            sh.ports.give_back(m.ports[1]);
            m.ports[1] = third.port;
            m.origin[1] = third.origin;
            m.dtmf[1] = third.dtmf;
        }
        self.transferred_to = Some(third.number.clone());
        self.note(sh, now, EventKind::PartyLeft, Some(agent));
        self.note(
            sh,
            now,
            EventKind::TransferredOut,
            Some(third.number.clone()),
        );
        info!(number = %third.number, "three-party call: the agent left; the caller stays with the third party");
        self.release_acd(sh, now);
        true
    }
}

impl super::Core {
    /// `POST /api/v1/calls/{id}/parties`: rings `number` as the third party
    /// of the call whose record id is `call`.
    pub fn add_party_api(
        &mut self,
        now: Instant,
        call: &str,
        number: &str,
    ) -> Result<serde_json::Value, super::api::ApiError> {
        use super::api::ApiError;
        let key = self
            .calls
            .keys()
            .copied()
            .find(|&k| self.sh.call_id_of(k) == call)
            .ok_or_else(|| ApiError::UnknownCall(call.to_string()))?;
        let sh = &mut self.sh;
        let Some(c) = self.calls.get_mut(&key) else {
            return Err(ApiError::UnknownCall(call.to_string()));
        };
        let span = c.span.clone();
        let _enter = span.enter();
        let entry = c
            .directory_entry(sh, number)
            .ok_or_else(|| ApiError::NotInDirectory(number.to_string()))?;
        c.add_party(sh, now, &entry, None).map_err(|e| {
            let why = match e {
                PartyRefusal::Busy => {
                    "the call is not connected to an agent, or a transfer or another party is under way"
                }
                PartyRefusal::NoMedia => {
                    "the call's media is not anchored at the gateway ([media] is off): nothing to mix"
                }
                PartyRefusal::NoPorts => "no RTP ports are free",
            };
            ApiError::Party(e.code(), why.to_string())
        })?;
        self.settle(now);
        Ok(serde_json::json!({
            "call": call,
            "number": entry.number,
            "name": entry.name,
            "state": "ringing",
        }))
    }
}
