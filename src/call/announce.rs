//! A line out of service (before its `effective_from`, after its
//! `effective_until`) is not a bare `404`: the gateway answers, plays the
//! `[media] not_in_service` announcement (the number has changed, call 12345:
//! 国办函〔2025〕66号) and hangs up. The call reached no person: its record
//! (`dialplan.line_not_in_service`) is offered to nobody and counts nowhere.
//! Without media, or without the prompt, it stays a `404`.

use std::time::{Duration, Instant};

use tracing::info;

use super::{Call, CallState, CallTimer, Reason, Shared, Side};
use crate::media::command::Playlist;
use crate::sip::builder::response_to;

impl Shared {
    /// The announcement to play for a line out of service, when there is one.
    pub(super) fn not_in_service_prompt(&self) -> Option<String> {
        let cfg = self.cfg.media.as_ref()?;
        let name = cfg.not_in_service.as_ref()?;
        cfg.prompts.get(name).map(|_| name.clone())
    }
}

impl Call {
    /// Answers the caller with the gateway's SDP and plays `prompt`; its end
    /// (or a guard past its length) hangs up.
    pub(super) fn announce(&mut self, sh: &mut Shared, now: Instant, prompt: &str) {
        self.set_reason(Reason::LineNotInService);
        let Some(prompt) = sh.cfg.media.as_ref().and_then(|m| m.prompts.get(prompt)) else {
            return self.abandon_early(sh, now, Reason::LineNotInService, 404, "Not Found");
        };
        let (Some(body), Some((tx, req))) = (self.a_answer(sh), self.a_invite.take()) else {
            return self.abandon_early(sh, now, Reason::LineNotInService, 404, "Not Found");
        };
        let mut m = response_to(&req, 200, "OK", Some(&self.a.local_tag));
        m.header("Contact", &sh.contact(self.a.peer.transport));
        m.header(super::tell_caller::ANSWERED_BY, "gateway");
        sh.respond(now, tx, 200, m.finish(Some("application/sdp"), &body));
        self.answered_invite = Some(req);
        self.final_code = 200;
        self.state = CallState::Announcing;
        info!("line not in service: announcing, then hanging up");
        let guard = now + Duration::from_millis(prompt.duration_ms()) + Duration::from_secs(2);
        self.play(
            sh,
            Playlist {
                once: vec![prompt],
                hold: None,
            },
        );
        self.arm(sh, CallTimer::PromptGuard, guard);
    }

    /// The announcement is over (or its guard fired): BYE.
    pub(super) fn announced(&mut self, sh: &mut Shared, now: Instant) {
        if matches!(self.state, CallState::Announcing) {
            self.timers.stop(CallTimer::PromptGuard);
            self.hang_up_side(sh, now, Side::A);
        }
    }
}
