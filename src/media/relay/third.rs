//! The relay's three-party and attended-transfer orders: a third leg's ports
//! bound and unbound, the third party taking the callee's place, and two
//! sessions exchanging their callee legs.
//!
//! Why apart from the loop: these are the only orders that move sockets
//! between slots, so they are the only ones that re-register poll tokens.

use std::net::SocketAddr;

use mio::net::UdpSocket;
use tracing::warn;

use super::leg::LegIo;
use super::{Relay, SLOT_TOKENS, watch};
use crate::media::command::{Leg, MediaEvent, SessionId};

impl Relay {
    /// Binds the third leg's port pair ([`Leg::C`]).
    pub(super) fn add_third(&mut self, id: SessionId, port: u16) {
        let Some(&slot) = self.by_id.get(&id) else {
            return;
        };
        let bind = |port: u16| UdpSocket::bind(SocketAddr::new(self.cfg.bind, port));
        let (rtp, rtcp) = match (bind(port), bind(port + 1)) {
            (Ok(rtp), Ok(rtcp)) => (rtp, rtcp),
            (Err(e), _) | (_, Err(e)) => {
                warn!(port, error = %e, "cannot bind the third party's RTP port pair");
                return Self::emit(
                    &self.events,
                    &self.stats,
                    MediaEvent::Failed { session: id, port },
                );
            }
        };
        let seed = self.next_seed();
        let mut io = LegIo::new(rtp, rtcp, seed);
        let base = slot * SLOT_TOKENS + Leg::C.index() * 2;
        if let Err(e) = watch(&self.poll, &mut io, base, false) {
            warn!(error = %e, "cannot watch the third party's RTP socket");
            return Self::emit(
                &self.events,
                &self.stats,
                MediaEvent::Failed { session: id, port },
            );
        }
        let Some(Some(s)) = self.sessions.get_mut(slot) else {
            return;
        };
        if let Some(mut old) = s.third.replace(Box::new(io)) {
            let _ = self.poll.registry().deregister(&mut old.rtp);
            let _ = self.poll.registry().deregister(&mut old.rtcp);
        }
    }

    /// Unbinds the third leg; the caller and the callee hear each other again.
    pub(super) fn drop_third(&mut self, id: SessionId) {
        let Some(s) = self.session(id) else {
            return;
        };
        let third = s.third.take();
        if let Some(m) = s.mix.as_mut() {
            m.clear(Leg::C.index());
        }
        s.set_mix(false, 0);
        if let Some(mut io) = third {
            let _ = self.poll.registry().deregister(&mut io.rtp);
            let _ = self.poll.registry().deregister(&mut io.rtcp);
        }
    }

    /// The third leg becomes the callee: the old callee's sockets close.
    pub(super) fn promote(&mut self, id: SessionId) {
        let Some(&slot) = self.by_id.get(&id) else {
            return;
        };
        let Some(Some(s)) = self.sessions.get_mut(slot) else {
            return;
        };
        let Some(third) = s.third.take() else {
            return;
        };
        let mut old = std::mem::replace(&mut s.legs[Leg::B.index()], *third);
        if let Some(m) = s.mix.as_mut() {
            m.clear(Leg::B.index());
            m.clear(Leg::C.index());
        }
        s.set_mix(false, 0);
        let _ = self.poll.registry().deregister(&mut old.rtp);
        let _ = self.poll.registry().deregister(&mut old.rtcp);
        let base = slot * SLOT_TOKENS + Leg::B.index() * 2;
        if let Err(e) = watch(&self.poll, &mut s.legs[Leg::B.index()], base, true) {
            warn!(error = %e, "cannot watch the promoted leg's RTP socket");
        }
    }

    /// `session` and `from` exchange their callee legs (attended transfer).
    pub(super) fn splice(&mut self, id: SessionId, from: SessionId, mix: bool) {
        let (Some(&x), Some(&y)) = (self.by_id.get(&id), self.by_id.get(&from)) else {
            return;
        };
        if x == y {
            return;
        }
        let (lo, hi) = (x.min(y), x.max(y));
        let (left, right) = self.sessions.split_at_mut(hi);
        let (Some(a), Some(b)) = (left[lo].as_mut(), right[0].as_mut()) else {
            return;
        };
        std::mem::swap(&mut a.legs[Leg::B.index()], &mut b.legs[Leg::B.index()]);
        for (slot, s) in [(lo, a), (hi, b)] {
            let base = slot * SLOT_TOKENS + Leg::B.index() * 2;
            if let Err(e) = watch(&self.poll, &mut s.legs[Leg::B.index()], base, true) {
                warn!(error = %e, "cannot watch a spliced leg's RTP socket");
            }
        }
        let seed = self.next_seed();
        if let Some(s) = self.session(id) {
            s.source = super::session::Source::Callee;
            s.bridged = true;
            s.transcode = mix;
            s.set_mix(mix, seed);
        }
        // The consultation keeps the agent's two old legs until it closes:
        // they hear nothing of each other meanwhile.
        if let Some(s) = self.session(from) {
            s.bridged = false;
            s.source = super::session::Source::Silence;
            s.transcode = false;
            s.set_mix(false, seed);
        }
    }
}
