//! Requests from strangers (neither a trunk, a registered agent nor a cluster node): answered
//! statelessly or dropped, before the transaction layer sees them (see `guard.rs`).

use std::net::IpAddr;
use std::time::Instant;

use tracing::info;

use super::guard::Class;
use super::{ALLOW, Core};
use crate::sip::Peer;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};

impl Core {
    /// A trunk's, a registered agent's or another cluster node's address: its
    /// requests are served statefully.
    pub(super) fn known_source(&self, ip: IpAddr) -> bool {
        self.sh.dialplan.trunk_for(ip).is_some()
            || self.sh.registrar.is_registered_source(ip)
            || self.sh.peers.iter().any(|p| p.ip() == ip)
    }

    /// Handles a stranger's request that needs no transaction; `false` lets it
    /// through: a request inside one of the gateway's dialogs (it names the
    /// leg's Call-ID and both tags: a party to the call, such as a seat or a
    /// legacy platform that is no trunk, not rate-limited), or a REGISTER
    /// within its budget (the registrar challenges it).
    pub(super) fn stranger(&mut self, now: Instant, req: &Request, peer: Peer) -> bool {
        let in_dialog = req.to_tag().is_some();
        if in_dialog && req.method != Method::Register && self.find_dialog(req).is_some()
            || self.sh.tl.has_server_transaction(req)
        {
            return false;
        }
        let class = match req.method {
            Method::Register
                if self
                    .sh
                    .registrar
                    .answers_our_nonce(now, req, peer.addr.ip()) =>
            {
                Class::ProvenRegister
            }
            Method::Register => Class::Register,
            _ => Class::Other,
        };
        if !self.guard.admit(now, peer.addr.ip(), class) {
            self.log_strangers(now);
            return true;
        }
        if req.method == Method::Register {
            return false;
        }
        let (code, phrase) = match &req.method {
            Method::Ack => return true, // Nothing to answer.
            // No dialog of the gateway's has these tags.
            _ if in_dialog => (481, "Call/Transaction Does Not Exist"),
            Method::Invite => (403, "Forbidden"),
            Method::Options if self.serving != super::Serving::Active => {
                (503, "Service Unavailable (not active)")
            }
            Method::Options => (200, "OK"),
            Method::Cancel | Method::Bye | Method::Info | Method::Update | Method::Prack => {
                (481, "Call/Transaction Does Not Exist")
            }
            Method::Other(_) => (501, "Not Implemented"),
            _ => (405, "Method Not Allowed"),
        };
        let tag = self.sh.ids.tag();
        let mut m = response_to(req, code, phrase, Some(&tag));
        if code == 200 || code == 405 {
            m.header("Allow", ALLOW);
        }
        self.sh.tl.send_stateless(peer, m.finish_empty());
        self.guard.refused();
        self.log_strangers(now);
        true
    }

    /// One line a minute at most, when strangers were refused or dropped.
    fn log_strangers(&mut self, now: Instant) {
        if let Some(c) = self.guard.summary_due(now) {
            info!(
                refused = c.refused,
                dropped = c.dropped,
                sources = self.guard.tracked(),
                "requests from strangers (neither trunks nor registered agents) since the last report"
            );
        }
    }
}
