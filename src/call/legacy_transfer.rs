//! A parallel line's legacy seat hands its caller to 12345: it REFERs the
//! call to the hotline (`Refer-To` a line whose route has a queue, e.g.
//! 12345). The gateway accepts (202, NOTIFY 200), lets the legacy seat go,
//! plays the caller hold music and queues it for 12345's agents, whose answer
//! is bridged in. The record keeps the legacy answer (the citizen was served
//! there) and the transfer (`transferred_to` the hotline's number).
//!
//! The caller's audio must pass through the gateway (media anchored) for it
//! to hear hold music and then the agent: without `[media]` such a REFER gets
//! `488` and the call goes on as it was.

use std::time::Instant;

use tracing::info;

use super::{AnsweredBy, Call, CallState, Shared};
use crate::cdr;
use crate::media::command::{Leg, MediaCommand};
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

impl Call {
    /// The queue a legacy seat's REFER to `number` hands the caller to, when
    /// the call was answered by legacy seats and `number` is a line of the
    /// hotline with a queue.
    pub(super) fn legacy_refer_queue(&self, sh: &Shared, number: &str) -> Option<String> {
        if !matches!(
            self.state,
            CallState::Connected {
                by: AnsweredBy::Legacy
            }
        ) {
            return None;
        }
        let line = sh.dialplan.lookup(number)?;
        (line.mode != crate::dialplan::Mode::Parallel)
            .then(|| line.queue().map(str::to_string))
            .flatten()
    }

    /// Takes a legacy seat's REFER to the hotline (see the module docs).
    pub(super) fn legacy_to_12345(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        (tx, req): (TxId, &Request),
        number: &str,
        queue: String,
    ) {
        // Hold music and the agent's audio reach the caller only through the relay.
        let anchored = sh.cfg.media.clone().filter(|_| self.media.is_some());
        let (Some(cfg), Some(invite)) = (anchored, self.caller_invite.take()) else {
            return sh.reply(
                now,
                tx,
                req,
                488,
                "Not Acceptable Here (a transfer to 12345 needs media anchored)",
            );
        };
        sh.reply(now, tx, req, 202, "Accepted");
        self.notify_agent(sh, now, "SIP/2.0 200 OK", true);
        info!(to = number, queue, "legacy seat hands the caller to 12345");
        // The legacy seat leaves.
        if let Some(mut old) = self.take_b() {
            sh.by_b.remove(&old.dialog.call_id);
            sh.bye_leg(now, self.key, &mut old.dialog);
        }
        sh.media_cmd(MediaCommand::DropLeg {
            session: self.key,
            leg: Leg::B,
        });
        // The caller is answered already: callee legs are built from its INVITE.
        self.answered_invite = Some(invite);
        self.transferred_to = Some(number.to_string());
        self.note(
            sh,
            now,
            cdr::EventKind::TransferredOut,
            Some(number.to_string()),
        );
        self.state = CallState::Queued { prompt: false };
        self.queue = Some(queue.clone());
        self.agent = None;
        self.play(sh, super::media_flow::hold_playlist(&cfg, false));
        let line = self.line.clone();
        self.offer_to_acd(sh, now, &queue, &line);
    }
}
