//! Whether this node answers calls: alone it always does; in a cluster only
//! while it holds the ACD lease (docs/cluster.md). A standby or draining node
//! answers OPTIONS, REGISTER and new INVITEs with `503`, so that the proxy in
//! front (Kamailio's dispatcher) sends them to the active node.

use std::collections::HashSet;
use std::time::Instant;

use tracing::info;

use super::Core;
use crate::registrar::PortableBinding;
use crate::sip::Peer;
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

/// This node's part in answering calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// Takes calls, rings agents (alone, or the lease holder).
    Active,
    /// Holds no lease: refuses new calls and registrations; rings nobody.
    Standby,
    /// Stopping: refuses new calls; calls in progress go on to their end.
    Draining,
}

impl Serving {
    pub fn as_str(self) -> &'static str {
        match self {
            Serving::Active => "active",
            Serving::Standby => "standby",
            Serving::Draining => "draining",
        }
    }
}

/// `Retry-After` seconds on a `503` from a node that is not active: the proxy
/// should come back soon, another node takes over within a lease.
pub(super) const NOT_ACTIVE_RETRY_AFTER_S: u32 = 1;

/// A new INVITE a standby holds (its `100 Trying` sent) while it may be about
/// to take the lease: the proxy sends calls here only when the active node
/// has stopped answering.
#[derive(Debug)]
pub(super) struct Parked {
    pub tx: TxId,
    pub req: Request,
    pub peer: Peer,
    pub until: Instant,
}

/// Most INVITEs a standby holds at once; more are refused at once.
pub(super) const MAX_PARKED: usize = 2048;

impl Core {
    pub fn serving(&self) -> Serving {
        self.serving
    }

    /// Becomes active and rings the agents registered in `bindings` (the
    /// database's registrations, read when this node took the lease) at once,
    /// but for those `paused` names (agent, reason): paused at the node that
    /// held the lease before, they stay paused here.
    /// Returns how many bindings were taken.
    pub fn activate(
        &mut self,
        now: Instant,
        bindings: Vec<PortableBinding>,
        paused: &[(String, String)],
    ) -> usize {
        let unix = self.sh.unix_ms(now);
        let taken = self.sh.registrar.import(now, unix, bindings);
        self.serving = Serving::Active;
        info!(
            bindings = taken,
            paused = paused.len(),
            parked = self.parked.len(),
            "active: this node answers calls"
        );
        self.drain_registrar(now);
        for (agent, reason) in paused {
            if let Err(e) = self.sh.acd.pause(agent, reason.clone(), now) {
                tracing::debug!(agent, error = %e, "pause not carried over");
            }
        }
        // The calls that waited for this moment are served now, oldest first.
        for p in std::mem::take(&mut self.parked) {
            self.new_call(now, p.tx, p.req, p.peer);
        }
        self.process_events(now);
        taken
    }

    /// A standby holds a new INVITE for up to `hold` (set with the cluster):
    /// `true` if held; then it is served if this node takes the lease in time,
    /// else refused like any other when its time is up.
    pub(super) fn park(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        peer: Peer,
    ) -> Option<Request> {
        let hold = self.sh.cfg.standby_hold?;
        if self.serving != Serving::Standby || self.parked.len() >= MAX_PARKED {
            return Some(req);
        }
        self.parked.push_back(Parked {
            tx,
            req,
            peer,
            until: now + hold,
        });
        None
    }

    /// Refuses the parked INVITEs whose time is up (and, when `cancelled`
    /// names one, that one with 487).
    pub(super) fn expire_parked(&mut self, now: Instant) {
        while self.parked.front().is_some_and(|p| p.until <= now) {
            let Some(p) = self.parked.pop_front() else {
                break;
            };
            self.sh.not_active(now, p.tx, &p.req, Serving::Standby);
            self.record_refused(now, &p.req, super::Reason::ClusterStandby, 503);
        }
    }

    /// A CANCEL for a parked INVITE: 487, and a record of the caller's cancel.
    pub(super) fn cancel_parked(&mut self, now: Instant, invite: TxId) -> bool {
        let Some(i) = self.parked.iter().position(|p| p.tx == invite) else {
            return false;
        };
        let Some(p) = self.parked.remove(i) else {
            return false;
        };
        self.sh.reply(now, p.tx, &p.req, 487, "Request Terminated");
        self.record_refused(now, &p.req, super::Reason::CallerCancelled, 487);
        true
    }

    /// When the oldest parked INVITE's time is up.
    pub(super) fn parked_deadline(&self) -> Option<Instant> {
        self.parked.front().map(|p| p.until)
    }

    /// Stops ringing agents: the lease is lost (another node may hold it) or
    /// the node is stopping. Registrations are forgotten here (not in the
    /// database): agents are logged out of this node's ACD, so callers still
    /// queued here are offered to nobody. Calls already connected go on.
    pub fn step_down(&mut self, now: Instant, to: Serving) {
        if self.serving == to {
            return;
        }
        info!(
            from = self.serving.as_str(),
            to = to.as_str(),
            "no longer active"
        );
        self.serving = to;
        self.sh.registrar.forget_all();
        self.drain_registrar(now);
    }

    /// The next call answered (clustered only), for its live row.
    pub fn poll_answer(&mut self) -> Option<crate::cdr::Answer> {
        self.sh.answers.pop_front()
    }

    /// Agents on a call another node holds (the database's live calls): they
    /// are logged out of this node's ACD until their call ends there, so no
    /// agent is offered two calls across a handover. Agents leaving the set
    /// are logged in again if registered.
    pub fn set_busy_elsewhere(&mut self, now: Instant, agents: HashSet<String>) {
        let freed: Vec<String> = self
            .sh
            .busy_elsewhere
            .difference(&agents)
            .cloned()
            .collect();
        for a in agents.difference(&self.sh.busy_elsewhere) {
            info!(agent = %a, "agent on a call at another node: not offered calls here");
            let _ = self.sh.acd.logout(a, now);
        }
        self.sh.busy_elsewhere = agents;
        for a in freed {
            let contact = self
                .sh
                .registrar
                .lookup(now, &a)
                .first()
                .map(|b| b.contact.clone());
            if let Some(contact) = contact {
                info!(agent = %a, "agent's call at another node ended: offered calls again");
                let _ = self.sh.acd.login(&a, contact, now);
            }
        }
        self.settle(now);
    }

    /// Agents whose REGISTER this node answered since the last call, with
    /// their bindings now (empty: none left), for the database.
    pub fn poll_registration(&mut self) -> Option<(String, Vec<PortableBinding>)> {
        self.sh.registrations.pop_front()
    }
}
