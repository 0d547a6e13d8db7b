//! A draining node hands the callers still waiting in its queues to the node
//! that took the lease (docs/cluster.md, "Stopping a node"). Each gets an
//! INVITE to that node carrying [`HEADER`]; the call is bridged through this
//! node until it ends. The taking node adopts the call's id and the time of
//! its first offer, so the caller keeps its place in the queue and its work
//! order, and the call is recorded once: there.
//!
//! ```text
//!  caller ─► draining node ──INVITE, X-Hotline-Handover──► active node ─► agent
//!            (no agents; relays)   18x/2xx: accepted        (queues it by its
//!                                  ≥300 or 8 s: refused      first offer time)
//! ```
//!
//! Until the taking node accepts (a provisional past 100, or a 2xx) the call
//! is this node's: refused or unanswered, it ends here with
//! `cluster.handover_failed` and a callback. Once accepted, this node writes
//! no record for it (the taking node does; the live row became its own).
//!
//! Trust (DESIGN.md §7): the header is honoured only from another node's SIP
//! address as the database lists it. From anyone else it is ignored and the
//! INVITE is an ordinary call: a stranger cannot jump the queue with an old
//! offer time, nor take over another call's id and work order.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Call, CallKey, CallState, CallTimer, Core, Reason, Shared, Side};
use crate::sip::message::{Headers, Request, Response};
use crate::sip::{Peer, Transport};

/// The header a draining node puts on the INVITE handing a caller over:
/// `id=<call id>;offered=<unix ms>;line=<number>;queue=<name>`.
pub const HEADER: &str = "X-Hotline-Handover";

/// How long the taking node has to accept a handed-over caller.
pub(super) const ACCEPT_WITHIN: Duration = Duration::from_secs(8);

/// The header of the taking node's answers to a handover INVITE: the adopted
/// call's id, echoed. Without it the handover is not taken.
pub const ACCEPTED: &str = "X-Hotline-Handover-Accepted";

/// Silence from the taking node after it adopted a waiting caller (it repeats
/// its provisional every 50 s) past which it is presumed gone.
pub(super) const ACCEPTED_GUARD: Duration = Duration::from_secs(120);

/// Oldest first offer a handed-over call may claim: a day.
const MAX_AGE_MS: i64 = 24 * 3600 * 1000;

/// A call this node is handing over.
#[derive(Debug, Clone)]
pub(super) struct Handover {
    /// The node it goes to.
    pub node: String,
    /// The call's id, which the taking node echoes when it adopts it.
    pub id: String,
    /// That node took it (18x or 2xx): its record is written there.
    pub accepted: bool,
}

/// What a handover INVITE claims, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Claim {
    pub id: String,
    pub offered_ms: i64,
    pub line: String,
    pub queue: String,
    /// The trunk the call came in over, and the number first dialled: kept
    /// for the record (and for the 110 of the caller's area).
    pub trunk: Option<String>,
    pub original: Option<String>,
}

impl Claim {
    /// The header value, signed with `secret` when the cluster has one.
    pub fn to_signed_header(&self, secret: Option<&[u8]>) -> String {
        let v = self.to_header();
        match secret {
            Some(k) => format!("{v};sig={}", sign(k, &v)),
            None => v,
        }
    }

    /// Reads a header value, which must carry a valid `sig` when `secret` is
    /// set (over everything before it).
    pub fn parse_signed(value: &str, secret: Option<&[u8]>) -> Option<Claim> {
        let Some(k) = secret else {
            return Claim::parse(value);
        };
        let (body, sig) = value.rsplit_once(";sig=")?;
        let want = sign(k, body);
        let ok: bool = subtle::ConstantTimeEq::ct_eq(want.as_bytes(), sig.trim().as_bytes()).into();
        if !ok {
            return None;
        }
        Claim::parse(body)
    }

    pub fn to_header(&self) -> String {
        let mut v = format!(
            "id={};offered={};line={};queue={}",
            self.id, self.offered_ms, self.line, self.queue
        );
        for (k, x) in [("trunk", &self.trunk), ("original", &self.original)] {
            if let Some(x) = x.as_ref().filter(|x| token(x)) {
                v.push_str(&format!(";{k}={x}"));
            }
        }
        v
    }

    /// Reads a header value; `None` when any part is missing or malformed.
    pub fn parse(value: &str) -> Option<Claim> {
        let (mut id, mut offered, mut line, mut queue) = (None, None, None, None);
        let (mut trunk, mut original) = (None, None);
        for part in value.split(';') {
            let (k, v) = part.trim().split_once('=')?;
            let slot = match k.trim() {
                "id" => &mut id,
                "offered" => &mut offered,
                "line" => &mut line,
                "queue" => &mut queue,
                "trunk" => &mut trunk,
                "original" => &mut original,
                _ => continue,
            };
            *slot = Some(v.trim().to_string());
        }
        let (id, line, queue) = (id?, line?, queue?);
        if !(token(&id) && token(&line) && token(&queue)) {
            return None;
        }
        Some(Claim {
            id,
            offered_ms: offered?.parse().ok()?,
            line,
            queue,
            trunk: trunk.filter(|t: &String| token(t)),
            original: original.filter(|o: &String| token(o)),
        })
    }
}

impl Core {
    /// The other cluster nodes' SIP addresses (from the database).
    pub fn set_peers(&mut self, peers: std::collections::HashSet<SocketAddr>) {
        info!(peers = peers.len(), "cluster peers");
        self.sh.peers = peers;
    }

    /// Hands every caller still waiting in a queue here to `node` at `addr`
    /// (this node is draining and `node` holds the lease). Returns how many.
    pub fn hand_over(&mut self, now: Instant, node: &str, addr: SocketAddr) -> usize {
        if self.serving != super::Serving::Draining {
            warn!(
                node,
                "handover asked of a node that is not draining: ignored"
            );
            return 0;
        }
        let mut keys: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| c.handover.is_none() && c.waits_in_queue())
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        // Out of this node's ACD first: a ring still in progress is cancelled.
        for k in &keys {
            if let Some(c) = self.calls.get_mut(k) {
                c.release_acd(&mut self.sh, now);
            }
        }
        self.process_events(now);
        let mut handed = 0;
        for k in keys {
            let Some(c) = self.calls.get_mut(&k) else {
                continue;
            };
            if !c.waits_in_queue() || c.b().is_some() {
                continue;
            }
            let span = c.span.clone();
            let _enter = span.enter();
            c.place_handover(&mut self.sh, now, node, addr);
            handed += 1;
        }
        if handed > 0 {
            info!(calls = handed, to = node, %addr, "waiting callers handed over");
        }
        self.settle(now);
        handed
    }

    /// The claim of a handover INVITE, when it comes from a cluster peer; a
    /// claim from anyone else is ignored (and said so).
    pub(super) fn handover_claim(&self, req: &Request, peer: Peer) -> Option<Claim> {
        let value = req.header(HEADER)?;
        if !self.sh.cfg.clustered || !self.sh.peers.contains(&peer.addr) {
            info!(source = %crate::util::pii::Pii(peer.addr.ip()), "handover header from a non-peer: ignored");
            return None;
        }
        let claim = Claim::parse_signed(value, self.sh.cfg.cluster_secret.as_deref());
        if claim.is_none() {
            warn!("unreadable or unsigned handover claim from a peer: an ordinary call");
        }
        claim
    }
}

impl Call {
    /// On the taking node, the answers to an adopted call's INVITE echo its
    /// id, so the handing node knows the call is taken.
    pub(super) fn echo_adoption(&self, sh: &Shared, m: &mut crate::sip::builder::MessageBuf) {
        if self.adopted_offer_ms.is_some()
            && let Some(id) = sh.adopted.get(&self.key)
        {
            m.header(ACCEPTED, id);
        }
    }

    /// Queued, no person has answered, and the caller is still there.
    fn waits_in_queue(&self) -> bool {
        matches!(self.state, CallState::Queued { .. }) && self.waiting() && self.queue.is_some()
    }

    fn place_handover(&mut self, sh: &mut Shared, now: Instant, node: &str, addr: SocketAddr) {
        let offered_ms = self
            .events
            .iter()
            .find(|e| e.kind == crate::cdr::EventKind::Offered)
            .map_or_else(|| sh.unix_ms(self.offered_at), |e| e.at_ms);
        let claim = Claim {
            id: sh.call_id_of(self.key),
            offered_ms,
            line: self.line.clone(),
            queue: self.queue.clone().unwrap_or_default(),
            trunk: self.trunk.clone(),
            original: self.original.clone(),
        };
        debug!(to = node, "handing the caller over");
        self.agent = None;
        self.handover = Some(Handover {
            node: node.to_string(),
            id: claim.id.clone(),
            accepted: false,
        });
        let uri = super::invite::sip_uri(&self.called, addr, Transport::Udp);
        let peer = Peer {
            transport: Transport::Udp,
            addr,
        };
        self.place_b(
            sh,
            now,
            (uri, peer, Vec::new()),
            vec![(
                HEADER.to_string(),
                claim.to_signed_header(sh.cfg.cluster_secret.as_deref()),
            )],
        );
        self.arm(sh, CallTimer::Ring, now + ACCEPT_WITHIN);
    }

    /// Whether the callee leg is a handover, still to be accepted or refused.
    pub(super) fn handing_over(&self) -> bool {
        self.handover.as_ref().is_some_and(|h| !h.accepted)
    }

    /// Whether `resp` is the taking node's word that it adopted the call.
    fn echoed(&self, resp: &Response) -> bool {
        let id = self.handover.as_ref().map(|h| h.id.as_str());
        resp.header(ACCEPTED)
            .map(str::trim)
            .is_some_and(|v| Some(v) == id)
    }

    /// The taking node has the call (its answer echoed the id): from now on
    /// it records it; this node relays until the end, and gives up on it only
    /// if the taking node falls silent for [`ACCEPTED_GUARD`] (it repeats its
    /// provisional every 50 s while the caller waits).
    fn handover_taken(&mut self, sh: &mut Shared, now: Instant) {
        if let Some(h) = &mut self.handover {
            if !h.accepted {
                info!(to = %h.node, "handover accepted: the call is recorded there");
            }
            h.accepted = true;
        }
        self.arm(sh, CallTimer::Ring, now + ACCEPTED_GUARD);
    }

    /// A provisional on the handover leg: `true` to go on with it. One
    /// without the echo means the other node took the INVITE as an ordinary
    /// call (an old version, an address it does not know as a peer's): the
    /// leg is cancelled and the caller's call ends here, with a callback.
    pub(super) fn handover_provisional(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        resp: &Response,
    ) -> bool {
        if self.echoed(resp) {
            self.handover_taken(sh, now);
            return true;
        }
        if self.handing_over() {
            warn!(
                code = resp.code,
                "handover not adopted by the other node: cancelled"
            );
            self.handover_failed(sh, now, Some(resp.code));
            return false;
        }
        true
    }

    /// The taking node answered (its greeting, or its agent): the caller is
    /// bridged to it. No answer is noted here: the taking node records it.
    pub(super) fn handover_answered(&mut self, sh: &mut Shared, now: Instant, resp: &Response) {
        let adopted = self.echoed(resp) || !self.handing_over();
        let gateway_answered = self.gateway_answered();
        if gateway_answered {
            self.learn(sh, Side::B, resp.content_type(), &resp.body);
        }
        let Some(leg) = self.b() else {
            return;
        };
        if !adopted {
            // Answered as an ordinary call there: hang that up, end here.
            warn!("handover answered but not adopted by the other node: ended");
            if let Some(leg) = self.take_b() {
                sh.by_b.remove(&leg.dialog.call_id);
                self.release_invited(sh, now, leg);
            }
            return self.abandon_early(
                sh,
                now,
                Reason::ClusterHandoverFailed,
                503,
                "Service Unavailable",
            );
        }
        let gone = !matches!(self.state, CallState::Queued { .. })
            || (!gateway_answered && self.a_invite.is_none());
        if gateway_answered || gone {
            let (ack, peer) = (leg.ack(None, bytes::Bytes::new()), leg.dialog.peer);
            sh.tl.send_ack(Some(leg.invite), peer, ack);
        }
        self.handover_taken(sh, now);
        self.timers.stop(CallTimer::Ring);
        if gone {
            return self.hang_up_side(sh, now, Side::B);
        }
        self.state = CallState::Connected {
            by: super::AnsweredBy::Seats12345,
        };
        if gateway_answered {
            self.media_answered(sh);
        } else {
            self.relay_to_caller(sh, now, resp);
            if self.media.is_some() {
                self.media_answered(sh);
            }
        }
        let until = now + sh.cfg.max_duration;
        self.arm(sh, CallTimer::MaxDuration, until);
    }

    /// A final failure on the handover leg. Before the taking node adopted
    /// the call: it ends here with a callback. After: the taking node ended
    /// it (its max wait, its own stop) and recorded it; the caller hears the
    /// same here, and this node records nothing.
    pub(super) fn handover_final_failure(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        resp: &Response,
    ) {
        if self.handing_over() {
            return self.handover_failed(sh, now, Some(resp.code));
        }
        self.timers.stop(CallTimer::Ring);
        if let Some(leg) = self.take_b() {
            sh.by_b.remove(&leg.dialog.call_id);
        }
        let reason = Reason::from_callee_status(resp.code);
        self.abandon_early(sh, now, reason, resp.code, &resp.reason);
    }

    /// The handover failed before the taking node adopted the call (refused,
    /// no answer in [`ACCEPT_WITHIN`], not adopted), or the taking node fell
    /// silent after it did: the caller's call ends here, with a callback, and
    /// this node records it.
    pub(super) fn handover_failed(&mut self, sh: &mut Shared, now: Instant, code: Option<u16>) {
        warn!(
            code,
            to = self.handover.as_ref().map(|h| h.node.as_str()),
            "handover failed: the caller is owed a callback"
        );
        if let Some(h) = &mut self.handover {
            h.accepted = false;
        }
        self.orphan_b(sh, now);
        self.abandon_early(
            sh,
            now,
            Reason::ClusterHandoverFailed,
            503,
            "Service Unavailable",
        );
    }
}

/// The hex HMAC-SHA256 of `body` under `key`.
fn sign(key: &[u8], body: &str) -> String {
    crate::util::hex::hex(&crate::util::hmac::hmac_sha256(key, body.as_bytes()))
}

/// A claim's value: 1-64 letters, digits, `-`, `_` or `.`.
fn token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Bounds a claimed first offer time to the last day and not after `now_ms`.
pub(super) fn claimed_offer_ms(claimed: i64, now_ms: i64) -> i64 {
    claimed.clamp(now_ms - MAX_AGE_MS, now_ms)
}

#[cfg(test)]
mod tests {
    use super::Claim;

    #[test]
    fn a_claim_reads_back_what_it_wrote_and_refuses_junk() {
        let c = Claim {
            id: "0a1b2c3d4e5f-17".into(),
            offered_ms: 1_765_000_000_000,
            line: "12345".into(),
            queue: "agents".into(),
            trunk: Some("carrier".into()),
            original: Some("12315".into()),
        };
        assert_eq!(Claim::parse(&c.to_header()), Some(c.clone()));
        let bare = Claim {
            trunk: None,
            original: None,
            ..c
        };
        assert_eq!(Claim::parse(&bare.to_header()), Some(bare.clone()));
        // Signed: read back with the secret; refused without it, with another
        // one, or tampered with.
        let key = b"a-cluster-secret-of-the-province";
        let signed = bare.to_signed_header(Some(key));
        assert_eq!(Claim::parse_signed(&signed, Some(key)), Some(bare.clone()));
        assert_eq!(
            Claim::parse_signed(&bare.to_header(), Some(key)),
            None,
            "unsigned"
        );
        assert_eq!(
            Claim::parse_signed(&signed, Some(b"another-secret-entirely")),
            None
        );
        let older = signed.replace("offered=1765000000000", "offered=1764000000000");
        assert_eq!(Claim::parse_signed(&older, Some(key)), None, "tampered");
        for bad in [
            "",
            "id=x;offered=1;line=12345",
            "id=x;offered=soon;line=1;queue=q",
            "id=a b;offered=1;line=1;queue=q",
            "id=x\r\nVia: evil;offered=1;line=1;queue=q",
            &format!("id={};offered=1;line=1;queue=q", "x".repeat(65)),
        ] {
            assert_eq!(Claim::parse(bad), None, "{bad:?}");
        }
    }
}
