//! Attended (consultative) transfer, as softphones do it (RFC 5589 §7): the
//! agent puts the citizen on hold, calls a directory number through the
//! gateway (a consultation: an agent-placed call, offered to nobody), talks,
//! then sends a REFER on the citizen's call whose Refer-To carries
//! `?Replaces=` naming the consultation's dialog (RFC 3891). The gateway joins
//! the consultation's far end to the citizen and releases the agent from both.
//!
//! Why the gateway does it itself rather than relaying the REFER: the citizen
//! is no SIP peer of the agent's (a trunk, a carrier) and would not follow a
//! REFER; and the far end must stay on the same relay ports, so nothing is
//! renegotiated: the relay swaps the two calls' callee legs, sockets and all
//! (`MediaCommand::Splice`), mixing only if the two phones use different laws.
//!
//! Only the call's own agent (digest, as for a blind transfer) may do it, and
//! only with its own consultation (Call-ID and both tags, and placed by that
//! agent): knowing someone else's Call-ID is not enough.

use std::time::Instant;

use tracing::info;

use super::refer_target::Replaces;
use super::routing::Routed;
use super::{CallKey, CallState, Core, Reason, Side};
use crate::cdr::EventKind;
use crate::dialplan::{Dialplan, Outcome, Target};
use crate::media::command::MediaCommand;
use crate::sip::Peer;
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

impl Core {
    /// An agent dialled `called`, a transfer-directory number: its
    /// consultation, routed to the entry that serves the citizen the agent is
    /// talking to (110 of the citizen's city).
    pub(super) fn route_consult(
        &self,
        now: Instant,
        agent: &str,
        called: &str,
        plan: &Dialplan,
    ) -> Option<Routed> {
        // The agent's current call, as the ACD knows it (a call the agent
        // has handed on still names it as its agent).
        let entry = self
            .sh
            .acd
            .agent(agent, now)
            .and_then(|a| a.call)
            .and_then(|k| self.calls.get(&k))
            .filter(|c| c.state.answered())
            .and_then(|c| c.directory_entry(&self.sh, called))
            .or_else(|| plan.transfer_for(called, &[]).cloned())?;
        info!(agent, number = %entry.number, "an agent consults a directory number");
        let target = Target {
            user: Some(
                entry
                    .target
                    .user
                    .clone()
                    .unwrap_or_else(|| entry.number.clone()),
            ),
            ..entry.target.clone()
        };
        Some(Routed {
            line: super::callback::agent_line(
                format!("consultation of {}", entry.number),
                target.clone(),
            ),
            outcome: Outcome::Sip(target),
            caller_from_pai: None,
            original: None,
            trunk: None,
            callback: None,
            announce: None,
            consult: Some(agent.to_string()),
        })
    }

    /// A REFER with Replaces on call `key`'s `side`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attended_refer(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        peer: Peer,
        key: CallKey,
        side: Side,
        replaces: &Replaces,
    ) {
        let sh = &mut self.sh;
        let Some(x) = self.calls.get_mut(&key) else {
            return;
        };
        if side != Side::B || x.agent_placed() || x.a_placed {
            return sh.reply(now, tx, req, 403, "Forbidden (only the agent may transfer)");
        }
        if !x.refer_authorised(sh, now, tx, req, peer) {
            return;
        }
        let ready =
            x.a_acked && matches!(x.state, CallState::Connected { .. }) && x.third.is_none();
        if !ready {
            return sh.reply(now, tx, req, 491, "Request Pending");
        }
        let agent = x.agent.clone();
        let x_codec = x.media.as_ref().map(|m| m.codec);
        let Some(y_key) = self.consultation(replaces, agent.as_deref()) else {
            info!("attended transfer refused: no consultation of this agent matches Replaces");
            return self.sh.reply(
                now,
                tx,
                req,
                403,
                "Forbidden (Replaces names no consultation of yours)",
            );
        };
        let Some(y) = self.calls.get(&y_key) else {
            return;
        };
        let y_up = y.a_acked
            && matches!(y.state, CallState::Connected { .. })
            && y.b().is_some_and(|l| !l.pending);
        if !y_up {
            return self.sh.reply(now, tx, req, 491, "Request Pending");
        }
        let y_codec = y.media.as_ref().map(|m| m.codec);
        let (Some(x_codec), Some(y_codec)) = (x_codec, y_codec) else {
            return self.sh.reply(
                now,
                tx,
                req,
                488,
                "Not Acceptable Here (attended transfer needs media anchored)",
            );
        };
        self.sh.reply(now, tx, req, 202, "Accepted");
        let (Some(mut x), Some(mut y)) = (self.calls.remove(&key), self.calls.remove(&y_key))
        else {
            return;
        };
        let sh = &mut self.sh;
        x.notify_agent(sh, now, "SIP/2.0 200 OK", true);
        if let Some(leg) = y.take_b() {
            sh.by_b.insert(leg.dialog.call_id.clone(), key);
            let id = x.legs.add(leg);
            if let Some(old) = x.make_callee(id) {
                // The agent hangs up itself once told (see parting.rs).
                sh.part(now, key, old);
            }
        }
        if let (Some(xm), Some(ym)) = (x.media.as_mut(), y.media.as_mut()) {
            std::mem::swap(&mut xm.ports[1], &mut ym.ports[1]);
            std::mem::swap(&mut xm.origin[1], &mut ym.origin[1]);
            std::mem::swap(&mut xm.dtmf[1], &mut ym.dtmf[1]);
        }
        sh.media_cmd(MediaCommand::Splice {
            session: key,
            from: y_key,
            mix: x_codec != y_codec,
        });
        let number = y.called.clone();
        x.transferred_to = Some(number.clone());
        x.note(sh, now, EventKind::TransferredOut, Some(number.clone()));
        x.release_acd(sh, now);
        info!(number = %number, "attended transfer: the citizen is with the consulted party");
        y.set_reason(Reason::ConsultTransferred);
        y.hang_up_side(sh, now, Side::A);
        self.calls.insert(key, x);
        self.calls.insert(y_key, y);
        self.settle(now);
    }

    /// The consultation a Replaces names: the gateway's dialog with the agent
    /// (Call-ID, the agent's tag as `from-tag`, ours as `to-tag`; the two
    /// tags swapped are accepted too), placed by `agent`. Without tags (older
    /// softphones) the Call-ID names it, still only among `agent`'s own: the
    /// REFER's digest says who the agent is, so naming another agent's
    /// consultation is refused either way.
    fn consultation(&self, r: &Replaces, agent: Option<&str>) -> Option<CallKey> {
        let agent = agent?;
        let Some((to_tag, from_tag)) = &r.tags else {
            return self
                .calls
                .values()
                .find(|c| *c.a.call_id == *r.call_id && c.consult.as_deref() == Some(agent))
                .map(|c| c.key);
        };
        [(from_tag, to_tag), (to_tag, from_tag)]
            .into_iter()
            .find_map(|(theirs, ours)| {
                let key = *self
                    .by_a
                    .get(&(r.call_id.as_str().into(), theirs.as_str().into()))?;
                let c = self.calls.get(&key)?;
                (*c.a.local_tag == **ours && c.consult.as_deref() == Some(agent)).then_some(key)
            })
    }
}
