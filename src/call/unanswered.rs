//! How an unanswered call ends: the caller's CANCEL, abandoning the callee leg,
//! transaction timeouts, a missing ACK, and the call's own timers.

use std::time::Instant;

use tracing::debug;

use super::{CallKey, CallState, CallTimer, Core, Reason, Role};
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
        let target = cancels.and_then(|inv| self.sh.by_tx.get(&inv).copied());
        let Some((key, Role::AInvite)) = target else {
            return self.reply(now, tx, req, 481, "Call/Transaction Does Not Exist");
        };
        self.reply(now, tx, req, 200, "OK");
        let pending = self.calls.get(&key).is_some_and(|c| c.a_invite.is_some());
        if !pending {
            return; // Already answered or failed: the CANCEL has no effect.
        }
        self.abandon_early(now, key, Reason::CallerCancelled, 487, "Request Terminated");
    }

    /// Ends an unanswered call from the gateway's side: the caller gets `code`,
    /// the callee a CANCEL (now, or once it has sent a provisional response).
    pub(super) fn abandon_early(
        &mut self,
        now: Instant,
        key: CallKey,
        reason: Reason,
        code: u16,
        phrase: &str,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.waiting() && call.a_invite.is_none() {
            // The gateway answered this caller itself: it gets BYE, not `code`.
            return self.leave_queue(now, key, reason);
        }
        call.set_reason(reason);
        let queued = matches!(call.state, CallState::Queued { .. });
        call.state = CallState::Ending;
        call.timers.stop(CallTimer::Ring);
        call.timers.stop(CallTimer::LegacyRing);
        let reason = call.reason.unwrap_or(reason);
        if let Some((a_tx, req)) = call.a_invite.take() {
            let bytes = response_to(&req, code, phrase, Some(&call.a.local_tag)).finish_empty();
            call.final_code = code;
            self.respond(now, a_tx, code, bytes);
            // The caller's side is over now, whatever the callee leg still takes.
            let kind = super::ending_kind(reason);
            self.note(now, key, kind, Some(reason.as_str().to_string()));
        }
        if queued {
            // The ACD cancels any ring in progress (CancelRing orphans the leg).
            self.release_acd(now, key);
            return self.finish(now, key);
        }
        let Some(leg) = self.calls.get_mut(&key).and_then(|c| c.b.as_mut()) else {
            return self.finish(now, key);
        };
        match leg.pending {
            true if leg.provisional => {
                let tx = leg.invite;
                self.cancel_b(now, key, tx)
            }
            true => leg.cancel_pending = true,
            false => self.finish(now, key),
        }
    }

    pub(super) fn cancel_b(&mut self, now: Instant, key: CallKey, b_tx: TxId) {
        match self.sh.tl.cancel(now, b_tx) {
            Ok(c) => self.track(key, c, Role::Fire),
            Err(e) => debug!(error = %e, "CANCEL not sent"),
        }
        // RFC 3261 §9.1: give up on the INVITE 64·T1 after CANCEL if no final comes.
        let guard = now + self.sh.tl.config().timers.timeout();
        self.arm_call_timer(key, CallTimer::CancelGuard, guard);
    }

    pub(super) fn on_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, role)) = self.sh.by_tx.get(&tx) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        match role {
            Role::BInvite => {
                if self.overflow_from_legacy(now, key, true) {
                    return;
                }
                let Some(call) = self.calls.get_mut(&key) else {
                    self.sh.stats.stale_events += 1;
                    return;
                };
                if matches!(call.state, CallState::Queued { .. }) && call.waiting() {
                    return self.ring_failed(now, key);
                }
                if let Some(leg) = call.b.as_mut().filter(|l| l.invite == tx) {
                    leg.pending = false;
                }
                // Answers the caller 408 if it still waits, then ends the call.
                self.abandon_early(now, key, Reason::CalleeTimeout, 408, "Request Timeout");
            }
            Role::Bye => self.bye_done(now, key, tx),
            Role::Relay { server, .. } => {
                self.sh.by_tx.remove(&tx);
                self.fail_relay(now, key, server);
            }
            Role::Fire => {
                self.sh.by_tx.remove(&tx);
            }
            Role::Orphan => {
                self.sh.by_tx.remove(&tx);
                self.sh.orphans.remove(&tx);
            }
            Role::TransferInvite | Role::TransferReinvite => self.on_transfer_timeout(now, key),
            Role::AInvite => {
                // The caller's INVITE outlived its guard: it can no longer be
                // answered, so the call must not wait on (a leak otherwise).
                if let Some(c) = self.calls.get_mut(&key)
                    && c.a_invite.as_ref().is_some_and(|(t, _)| *t == tx)
                {
                    debug!("the caller's INVITE timed out unanswered");
                    self.abandon_early(now, key, Reason::CallerTimeout, 408, "Request Timeout");
                }
            }
            Role::AwaitAck { .. } => {}
        }
    }

    pub(super) fn on_ack_timeout(&mut self, now: Instant, tx: TxId) {
        let Some(&(key, Role::AInvite)) = self.sh.by_tx.get(&tx) else {
            return;
        };
        if self.calls.get(&key).is_some_and(|c| c.waiting()) {
            // The gateway's own 200 was never acknowledged: the caller is gone.
            return self.leave_queue(now, key, Reason::CallerNoAck);
        }
        let unacked = self
            .calls
            .get(&key)
            .is_some_and(|c| c.state.answered() && !c.a_acked);
        if unacked {
            if let Some(c) = self.calls.get_mut(&key) {
                c.set_reason(Reason::CallerNoAck);
            }
            self.hang_up(now, key);
        }
    }

    pub(super) fn on_call_timer(&mut self, now: Instant, key: CallKey, timer: CallTimer) {
        match timer {
            CallTimer::Ring => {
                self.abandon_early(now, key, Reason::CalleeNoAnswer, 408, "Request Timeout");
            }
            CallTimer::LegacyRing => {
                self.overflow_from_legacy(now, key, false);
            }
            // The callee never answered our CANCEL's INVITE: give up on it.
            CallTimer::CancelGuard => self.finish(now, key),
            CallTimer::PromptGuard => self.on_prompt_guard(now, key),
            CallTimer::SurveyKey | CallTimer::SurveyThanks => self.on_survey_timer(now, key),
            CallTimer::Progress => {
                let pending = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.a_invite.as_ref().map(|(tx, _)| *tx));
                if let Some(tx) = pending
                    && self.sh.tl.refresh_provisional(now, tx).is_ok()
                {
                    self.arm_call_timer(
                        key,
                        CallTimer::Progress,
                        now + super::timer::PROGRESS_EVERY,
                    );
                }
            }
            CallTimer::MaxDuration => {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.set_reason(Reason::MaxDuration);
                }
                self.hang_up(now, key);
            }
        }
    }
}
