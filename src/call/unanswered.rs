//! How an unanswered call ends: the caller's CANCEL, abandoning the callee leg,
//! transaction timeouts, a missing ACK, and the call's own timers.

use std::time::Instant;

use tracing::debug;

use super::{Call, CallKey, CallState, CallTimer, Core, Reason, Role, Shared};
use crate::sip::builder::response_to;
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

impl Core {
    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        cancels: Option<TxId>,
    ) {
        if let Some(inv) = cancels
            && self.parked.iter().any(|p| p.tx == inv)
        {
            self.sh.reply(now, tx, req, 200, "OK");
            self.cancel_parked(now, inv);
            return;
        }
        let target = cancels.and_then(|inv| self.sh.by_tx.get(&inv).copied());
        let Some((key, Role::AInvite)) = target else {
            return self
                .sh
                .reply(now, tx, req, 481, "Call/Transaction Does Not Exist");
        };
        self.sh.reply(now, tx, req, 200, "OK");
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        if call.a_invite.is_none() {
            return; // Already answered or failed: the CANCEL has no effect.
        }
        let (r, phrase) = (Reason::CallerCancelled, "Request Terminated");
        call.abandon_early(&mut self.sh, now, r, 487, phrase);
    }

    /// A client transaction timed out (Timer B or F).
    pub(super) fn on_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, role)) = self.sh.by_tx.get(&tx) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        match role {
            Role::Fire => {
                self.sh.by_tx.remove(&tx);
                return;
            }
            Role::Orphan => {
                self.sh.by_tx.remove(&tx);
                self.sh.orphans.remove(&tx);
                return;
            }
            _ => {}
        }
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        let sh = &mut self.sh;
        match role {
            Role::BInvite => call.on_b_invite_timeout(sh, now, tx),
            Role::Bye => call.bye_done(sh, tx),
            Role::Relay { server, .. } => {
                sh.by_tx.remove(&tx);
                call.fail_relay(sh, now, server);
            }
            Role::TransferInvite | Role::TransferReinvite => call.on_transfer_timeout(sh, now),
            Role::PartyInvite => call.on_party_timeout(sh, now, Some(tx)),
            Role::AgentInvite => call.agent_invite_timeout(sh),
            Role::AInvite => {
                // The caller's INVITE outlived its guard: it can no longer be
                // answered, so the call must not wait on (a leak otherwise).
                if call.a_invite.as_ref().is_some_and(|(t, _)| *t == tx) {
                    debug!("the caller's INVITE timed out unanswered");
                    let (r, phrase) = (Reason::CallerTimeout, "Request Timeout");
                    call.abandon_early(sh, now, r, 408, phrase);
                }
            }
            Role::Fire | Role::Orphan | Role::AwaitAck { .. } => {}
        }
    }

    /// The caller never acknowledged a 2xx.
    pub(super) fn on_ack_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, Role::AInvite)) = self.sh.by_tx.get(&tx) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        if call.waiting() {
            // The gateway's own 200 was never acknowledged: the caller is gone.
            return call.leave_queue(&mut self.sh, now, Reason::CallerNoAck);
        }
        if call.state.answered() && !call.a_acked {
            call.set_reason(Reason::CallerNoAck);
            call.hang_up(&mut self.sh, now);
        }
    }

    /// One of a call's own timers expired.
    pub(super) fn on_call_timer(&mut self, now: Instant, key: CallKey, timer: CallTimer) {
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        let span = call.span.clone();
        let _enter = span.enter();
        call.on_timer(&mut self.sh, now, timer);
    }
}

impl Call {
    /// Ends an unanswered call from the gateway's side: the caller gets `code`,
    /// the callee a CANCEL (now, or once it has sent a provisional response).
    pub(super) fn abandon_early(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        reason: Reason,
        code: u16,
        phrase: &str,
    ) {
        if self.waiting() && self.a_invite.is_none() {
            // The gateway answered this caller itself: it gets BYE, not `code`.
            return self.leave_queue(sh, now, reason);
        }
        self.set_reason(reason);
        let queued = matches!(self.state, CallState::Queued { .. });
        self.state = CallState::Ending;
        self.timers.stop(CallTimer::Ring);
        self.timers.stop(CallTimer::LegacyRing);
        let reason = self.reason.unwrap_or(reason);
        if let Some((a_tx, req)) = self.a_invite.take() {
            let bytes = response_to(&req, code, phrase, Some(&self.a.local_tag)).finish_empty();
            self.final_code = code;
            sh.respond(now, a_tx, code, bytes);
            // The caller's side is over now, whatever the callee leg still takes.
            let kind = super::ending_kind(reason);
            self.note(sh, now, kind, Some(reason.as_str().to_string()));
        }
        if queued {
            // The ACD cancels any ring in progress (CancelRing orphans the leg).
            self.release_acd(sh, now);
            return self.finish(sh);
        }
        let Some(leg) = self.b_mut() else {
            return self.finish(sh);
        };
        match leg.pending {
            true if leg.provisional => {
                let tx = leg.invite;
                self.cancel_b(sh, now, tx)
            }
            true => leg.cancel_pending = true,
            false => self.finish(sh),
        }
    }

    pub(super) fn cancel_b(&mut self, sh: &mut Shared, now: Instant, b_tx: TxId) {
        match sh.tl.cancel(now, b_tx) {
            Ok(c) => self.track(sh, c, Role::Fire),
            Err(e) => debug!(error = %e, "CANCEL not sent"),
        }
        // RFC 3261 §9.1: give up on the INVITE 64·T1 after CANCEL if no final comes.
        let guard = now + sh.tl.config().timers.timeout();
        self.arm(sh, CallTimer::CancelGuard, guard);
    }

    /// The callee INVITE got no final response (Timer B).
    fn on_b_invite_timeout(&mut self, sh: &mut Shared, now: Instant, tx: TxId) {
        if self.overflow_from_legacy(sh, now, true) {
            return;
        }
        if matches!(self.state, CallState::Queued { .. }) && self.waiting() {
            return self.ring_failed(sh, now);
        }
        if let Some(leg) = self.b_mut().filter(|l| l.invite == tx) {
            leg.pending = false;
        }
        // Answers the caller 408 if it still waits, then ends the call.
        self.abandon_early(sh, now, Reason::CalleeTimeout, 408, "Request Timeout");
    }

    fn on_timer(&mut self, sh: &mut Shared, now: Instant, timer: CallTimer) {
        match timer {
            CallTimer::Ring if self.handover.is_some() => self.handover_failed(sh, now, None),
            CallTimer::Ring if self.a_route.is_some() => self.agent_no_answer(sh, now),
            CallTimer::Ring => {
                self.abandon_early(sh, now, Reason::CalleeNoAnswer, 408, "Request Timeout");
            }
            CallTimer::LegacyRing => {
                self.overflow_from_legacy(sh, now, false);
            }
            // The callee never answered our CANCEL's INVITE: give up on it.
            CallTimer::CancelGuard => self.finish(sh),
            CallTimer::PromptGuard => self.on_prompt_guard(sh, now),
            CallTimer::PartyRing => self.on_party_timeout(sh, now, None),
            CallTimer::SurveyKey | CallTimer::SurveyThanks => self.on_survey_timer(sh, now),
            CallTimer::Progress => {
                let pending = self.a_invite.as_ref().map(|(tx, _)| *tx);
                if let Some(tx) = pending
                    && sh.tl.refresh_provisional(now, tx).is_ok()
                {
                    self.arm(sh, CallTimer::Progress, now + super::timer::PROGRESS_EVERY);
                }
            }
            CallTimer::MaxDuration => {
                self.set_reason(Reason::MaxDuration);
                self.hang_up(sh, now);
            }
        }
    }
}
