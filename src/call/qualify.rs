//! Keepalive OPTIONS to agents' registered contacts, as Asterisk's `qualify`:
//! the registrar decides when and to whom (`registrar/qualify.rs`: only
//! bindings, a bounded number in flight); this sends each probe, tells the
//! registrar how it ended, and hands reachability changes to the ACD (an agent
//! whose phone does not answer is `unreachable` and never rung).
//!
//! Owns the map from OPTIONS transaction to probe. Must not decide timing.

use std::collections::HashMap;
use std::time::Instant;

use tracing::{debug, info};

use super::Core;
use crate::registrar::ProbeId;
use crate::sip::message::{Method, Response};
use crate::sip::transaction::{OutRequest, TxId};

/// Keepalive OPTIONS transactions in flight (at most the registrar's
/// `qualify_max_outstanding`).
#[derive(Debug, Default)]
pub(super) struct Probes {
    by_tx: HashMap<TxId, ProbeId>,
}

impl Probes {
    /// Whether `tx` is a keepalive probe's transaction.
    pub(super) fn owns(&self, tx: TxId) -> bool {
        self.by_tx.contains_key(&tx)
    }
}

impl Core {
    /// Sends the probes the registrar has due, and applies reachability
    /// changes to the ACD (its commands are carried out by the caller's
    /// `settle`).
    pub(super) fn drain_qualify(&mut self, now: Instant) {
        while let Some(p) = self.sh.registrar.poll_probe() {
            let tag = self.sh.ids.tag();
            let req = OutRequest {
                method: Some(Method::Options),
                uri: p.contact.clone(),
                from: format!("<sip:hotline@{}>;tag={tag}", self.sh.cfg.contact_host),
                to: format!("<{}>", p.contact),
                call_id: self.sh.ids.call_id(self.sh.cfg.shard),
                cseq: 1,
                max_forwards: 70,
                ..Default::default()
            };
            let tx = self.sh.tl.send_request(now, p.peer, req);
            self.probes.by_tx.insert(tx, p.id);
        }
        while let Some(r) = self.sh.registrar.poll_reachability() {
            if r.reachable {
                info!(agent = %r.user, "agent reachable again");
            } else {
                info!(agent = %r.user, "agent unreachable: its phone does not answer the keepalive");
            }
            if let Err(e) = self.sh.acd.set_reachable(&r.user, r.reachable, now) {
                debug!(error = %e, agent = %r.user, "reachability of no ACD agent");
            }
        }
    }

    /// A response to a keepalive probe: any final one shows the phone alive.
    pub(super) fn on_probe_response(&mut self, now: Instant, tx: TxId, resp: &Response) {
        if resp.code < 200 {
            return;
        }
        if let Some(id) = self.probes.by_tx.remove(&tx) {
            self.sh.registrar.probe_answered(now, id);
        }
        self.drain_qualify(now);
        self.settle(now);
    }

    /// A keepalive probe's transaction ended unanswered (Timer F).
    pub(super) fn on_probe_lost(&mut self, now: Instant, tx: TxId) {
        if let Some(id) = self.probes.by_tx.remove(&tx) {
            self.sh.registrar.probe_lost(now, id);
        }
        self.drain_qualify(now);
        self.settle(now);
    }
}
