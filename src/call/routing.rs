//! Where a new call goes: the dialplan's decision for a call from a trunk,
//! an agent or a stranger (an agent's call to a number that is no line is a
//! callback: `callback.rs`), or the claim of a call another node hands over
//! (`handover.rs`). `invite.rs` builds the call from the result.

use std::time::Instant;

use super::{Core, Reason, called_number};
use crate::dialplan::{CallFacts, Line, Outcome, number};
use crate::sip::Peer;
use crate::sip::message::Request;
use crate::sip::transaction::TxId;
use crate::util::pii::Pii;

impl Core {
    /// The line and route of a new call, from the dialplan; `None` when the
    /// call was answered here already (refused, or challenged).
    pub(super) fn route_new(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: Peer,
        plan: &crate::dialplan::Dialplan,
    ) -> Option<Routed> {
        // Trunks are trusted by network; anyone else counts as an agent only with
        // digest credentials (DESIGN.md §7), not for sharing an agent's address.
        let agent = match self.sh.dialplan.trunk_for(peer.addr.ip()) {
            Some(_) => None,
            None => self.agent_auth(now, tx, req, peer)?,
        };
        let from_agent = agent.is_some();
        let called = called_number(req);
        // An agent dialling out: only a callback, and only over the outbound trunk.
        if let Some(agent) = &agent
            && plan.lookup(&called).is_none()
        {
            // A directory number (110, a department): the agent consults it
            // before an attended transfer (`attended.rs`).
            if let Some(r) = self.route_consult(now, agent, &called, plan) {
                return Some(r);
            }
            return self.route_callback(now, tx, req, agent, plan);
        }
        let facts = CallFacts {
            request_uri: number::digits_of(&req.uri),
            to: number::to_digits(req),
            original: number::original_called(req),
            source: peer.addr.ip(),
            from_agent,
            at: self.sh.local_time(now),
        };
        let decision = plan.decide(&facts);
        // A line out of service is announced, when media can.
        if let (Some(line), Outcome::Reject { reason, .. }) = (decision.line, &decision.outcome)
            && *reason == Reason::LineNotInService.as_str()
            && let Some(prompt) = self.sh.not_in_service_prompt()
        {
            return Some(Routed {
                line: line.clone(),
                outcome: decision.outcome.clone(),
                caller_from_pai: None,
                original: facts.original.map(|(n, _)| n),
                trunk: decision.trunk.clone(),
                callback: None,
                announce: Some(prompt),
                consult: None,
            });
        }
        let (line, outcome) = match (decision.line, &decision.outcome) {
            (_, Outcome::Reject { code, reason }) => {
                let reason = Reason::from_code(reason).unwrap_or(Reason::NoRoute);
                let phrase = if *code == 403 {
                    "Forbidden"
                } else {
                    "Not Found"
                };
                tracing::info!(code, reason = reason.as_str(), source = %Pii(peer.addr.ip()), called = %Pii(&called), "call refused by the dialplan");
                self.sh.reply(now, tx, req, *code, phrase);
                self.record_refused(now, req, reason, *code);
                return None;
            }
            (Some(line), outcome) => (line.clone(), outcome.clone()),
            (None, _) => {
                self.sh.reply(now, tx, req, 404, "Not Found");
                self.record_refused(now, req, Reason::NoRoute, 404);
                return None;
            }
        };
        let caller_from_pai = decision
            .trunk
            .as_deref()
            .and_then(|t| plan.trunk(t))
            .is_some_and(|t| t.trusted)
            .then(|| number::asserted_caller(req))
            .flatten();
        Some(Routed {
            line,
            outcome,
            caller_from_pai,
            original: facts.original.map(|(n, _)| n),
            trunk: decision.trunk.clone(),
            callback: None,
            announce: None,
            consult: None,
        })
    }

    /// The line and queue a peer handed a caller over to: as the claim says,
    /// when this node's plan has both (the nodes run one plan); else `404`,
    /// and the handing node ends and records the call, with a callback.
    pub(super) fn route_handed_over(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        plan: &crate::dialplan::Dialplan,
        claim: &super::handover::Claim,
    ) -> Option<Routed> {
        let line = plan
            .lookup(&claim.line)
            .filter(|l| l.number == claim.line && self.sh.acd.has_queue(&claim.queue));
        let Some(line) = line else {
            tracing::warn!(line = %claim.line, queue = %claim.queue, "handed-over call for a line or queue this node does not have");
            // The handing node records the call (it ends there).
            self.sh.reply(now, tx, req, 404, "Not Found");
            return None;
        };
        Some(Routed {
            line: line.clone(),
            outcome: Outcome::Queue(claim.queue.clone()),
            caller_from_pai: None,
            original: claim.original.clone(),
            trunk: claim.trunk.clone(),
            callback: None,
            announce: None,
            consult: None,
        })
    }
}

/// Where a new call goes, and who placed it.
pub(super) struct Routed {
    pub line: Line,
    pub outcome: Outcome,
    /// The caller's number from a trusted trunk's P-Asserted-Identity (or the
    /// number a callback presents).
    pub caller_from_pai: Option<String>,
    /// The number originally dialled (Diversion / History-Info).
    pub original: Option<String>,
    /// The trunk whose address placed the call (or a callback goes out on).
    pub trunk: Option<String>,
    /// An agent calling a citizen back.
    pub callback: Option<super::callback::Attempt>,
    /// A line out of service: the announcement to play before hanging up.
    pub announce: Option<String>,
    /// An agent consulting a directory number (the agent's id).
    pub consult: Option<String>,
}
