//! What a caller hears from the gateway and how its media ends: queued callers
//! answered with the greeting and hold music (or a line's prompt first), the
//! satisfaction survey, the relay's events (digits, played out, silence, ports
//! lost), a waiting caller's own in-dialog requests, and SIP INFO digits played
//! as RFC 4733. The SDP side of media is in `media.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::media::{MediaConfig, QueuedAudio};
use super::media_sdp::{info_digit, leg_of, side_index};
use super::{AnsweredBy, Call, CallState, CallTimer, Core, Reason, Role, Shared, Side, SurveyStep};
use crate::cdr;
use crate::media::command::{Hold, Leg, MediaCommand, MediaEvent, Playlist};
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};
use crate::sip::transaction::TxId;

impl Core {
    /// What the relay reported: one lookup, then the call handles it.
    pub fn handle_media(&mut self, now: Instant, ev: MediaEvent) {
        let key = ev.session();
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            return;
        };
        let span = call.span.clone();
        span.in_scope(|| call.on_media(&mut self.sh, now, ev));
        self.process_events(now);
    }
}

impl Call {
    /// A queued call's audio: answer (or 183) the caller with the gateway's SDP
    /// and play the line's prompt or the greeting, then hold music. Returns
    /// true when the ACD offer waits for the line's prompt to finish.
    pub(super) fn queue_audio(&mut self, sh: &mut Shared, now: Instant) -> bool {
        let Some(cfg) = sh.cfg.media.clone() else {
            return false;
        };
        if self.media.is_none() || self.a_invite.is_none() {
            return false;
        }
        // A caller handed over by another node heard the greeting there.
        let adopted = self.adopted_offer_ms.is_some();
        let line_prompt = self
            .media
            .as_ref()
            .and_then(|m| m.line_prompt.as_deref())
            .filter(|_| !adopted)
            .and_then(|p| cfg.prompts.get(p));
        // A parallel call overflowing from its legacy leg: forget that phone.
        sh.media_cmd(MediaCommand::DropLeg {
            session: self.key,
            leg: Leg::B,
        });
        let Some(body) = self.a_answer(sh) else {
            return false;
        };
        let contact = sh.contact(self.a.peer.transport);
        let Some((tx, req)) = &self.a_invite else {
            return false;
        };
        let tx = *tx;
        let (code, phrase) = match cfg.queued {
            QueuedAudio::Answer => (200, "OK"),
            QueuedAudio::EarlyMedia => (183, "Session Progress"),
        };
        let mut m = response_to(req, code, phrase, Some(&self.a.local_tag));
        m.header("Contact", &contact);
        if code == 200 {
            m.header(super::tell_caller::ANSWERED_BY, "gateway");
        }
        self.echo_adoption(sh, &mut m);
        let bytes = m.finish(Some("application/sdp"), &body);
        if code == 200 {
            self.answered_invite = self.a_invite.take().map(|(_, r)| r);
            self.final_code = 200;
        }
        let delayed = line_prompt.is_some();
        self.state = CallState::Queued { prompt: delayed };
        if let Some(media) = self.media.as_mut() {
            media.playing = true;
        }
        sh.respond(now, tx, code, bytes);
        if !self.ringback_noted {
            self.note(sh, now, cdr::EventKind::Ringback, None);
        }
        let playlist = match &line_prompt {
            Some(p) => Playlist {
                once: vec![p.clone()],
                hold: None,
            },
            None => hold_playlist(&cfg, !adopted),
        };
        self.play(sh, playlist);
        // Should the relay never say the prompt ended, the caller is queued anyway.
        if let Some(p) = line_prompt {
            let at = now + Duration::from_millis(p.duration_ms()) + Duration::from_secs(2);
            self.arm(sh, CallTimer::PromptGuard, at);
        }
        delayed
    }

    /// The callee answered a call whose caller the gateway had already answered:
    /// acknowledge it and connect the two.
    pub(super) fn media_answered(&mut self, sh: &mut Shared) {
        if let Some(m) = self.media.as_mut() {
            m.playing = false;
        }
        sh.media_cmd(MediaCommand::Bridge { session: self.key });
    }

    /// The callee hung up first on an answered call: ask the caller for a rating
    /// instead of hanging up. False when no survey applies.
    pub(super) fn start_survey(&mut self, sh: &mut Shared, now: Instant) -> bool {
        let Some(cfg) = sh.cfg.media.clone() else {
            return false;
        };
        let rated = matches!(
            self.state,
            CallState::Connected {
                by: AnsweredBy::Seats12345
            }
        ) && self.transferred_to.is_none()
            // A handed-over call is rated where it was answered.
            && self.handover.is_none();
        let Some(m) = self.media.as_mut() else {
            return false;
        };
        if !m.survey_due || !rated {
            return false;
        }
        let Some(prompt) = cfg.prompts.get(&cfg.survey_prompt) else {
            return false;
        };
        m.survey_due = false;
        m.playing = true;
        self.state = CallState::Survey(SurveyStep::Asking);
        // The agent's leg is over: nothing to send BYE to.
        if let Some(leg) = self.take_b() {
            sh.by_b.remove(&leg.dialog.call_id);
        }
        let until = now + Duration::from_millis(prompt.duration_ms()) + cfg.survey_timeout;
        debug!("agent hung up first: satisfaction survey");
        sh.media_cmd(MediaCommand::DropLeg {
            session: self.key,
            leg: Leg::B,
        });
        self.play(
            sh,
            Playlist {
                once: vec![prompt],
                hold: None,
            },
        );
        self.arm(sh, CallTimer::SurveyKey, until);
        self.tell_caller(sh, now, super::tell_caller::SURVEY, "start");
        // The agent is free for the next caller while this one rates the call.
        self.release_acd(sh, now);
        true
    }

    /// A digit from the caller (RFC 4733 or SIP INFO).
    pub(super) fn on_digit(&mut self, sh: &mut Shared, now: Instant, digit: char) {
        let Some(cfg) = sh.cfg.media.clone() else {
            return;
        };
        if !matches!(self.state, CallState::Survey(SurveyStep::Asking)) {
            return;
        }
        let Some(m) = self.media.as_mut() else {
            return;
        };
        let Some(rating) = digit.to_digit(10).filter(|d| (1..=3).contains(d)) else {
            debug!(%digit, "survey: not a rating key");
            return;
        };
        m.survey_digit = Some(rating as u8);
        info!(rating, "survey answered");
        self.close_survey(sh, now, &cfg);
    }

    /// The survey is over (rated, or timed out): thank the caller, then BYE.
    pub(super) fn close_survey(&mut self, sh: &mut Shared, now: Instant, cfg: &MediaConfig) {
        let thanks = cfg
            .survey_thanks
            .as_deref()
            .and_then(|t| cfg.prompts.get(t));
        self.state = CallState::Survey(SurveyStep::Closing);
        self.timers.stop(CallTimer::SurveyKey);
        let rated = self
            .media
            .as_ref()
            .is_some_and(|m| m.survey_digit.is_some());
        match thanks.filter(|_| rated) {
            Some(p) => {
                // Bounded in case the relay never reports the end.
                let guard = now + Duration::from_millis(p.duration_ms()) + Duration::from_secs(2);
                self.play(
                    sh,
                    Playlist {
                        once: vec![p],
                        hold: None,
                    },
                );
                self.arm(sh, CallTimer::SurveyThanks, guard);
            }
            None => self.hang_up_side(sh, now, Side::A),
        }
    }

    /// The survey timer: the caller pressed nothing, or the thanks never ended.
    pub(super) fn on_survey_timer(&mut self, sh: &mut Shared, now: Instant) {
        let Some(cfg) = sh.cfg.media.clone() else {
            return;
        };
        match self.state {
            CallState::Survey(SurveyStep::Asking) => {
                debug!("survey: no key pressed");
                self.close_survey(sh, now, &cfg);
            }
            CallState::Survey(SurveyStep::Closing) => self.hang_up_side(sh, now, Side::A),
            _ => {}
        }
    }

    /// The line's prompt never reported its end: the caller is queued anyway.
    pub(super) fn on_prompt_guard(&mut self, sh: &mut Shared, now: Instant) {
        if matches!(self.state, CallState::Queued { prompt: true }) {
            debug!("the line's prompt never reported its end: queueing the caller");
            self.on_play_done(sh, now);
        }
        self.announced(sh, now);
    }

    /// What the relay reported about this call.
    fn on_media(&mut self, sh: &mut Shared, now: Instant, ev: MediaEvent) {
        match ev {
            MediaEvent::Digit {
                leg: Leg::A, digit, ..
            } => self.on_digit(sh, now, digit),
            MediaEvent::Digit { .. } => {}
            MediaEvent::PlayDone { play, .. } => {
                // Only the playlist playing now: one that ended while the core
                // was already sending the next (the survey's prompt as the
                // digit came) must not end the next one's wait.
                if self.media.as_ref().is_some_and(|m| m.plays == play) {
                    self.on_play_done(sh, now);
                }
            }
            MediaEvent::Timeout { .. } if self.a_invite.is_some() => {
                // Not answered yet (ringing, early media): a phone need not send.
                debug!("no RTP yet on an unanswered call");
            }
            MediaEvent::Timeout { .. } => {
                info!(
                    reason = Reason::MediaTimeout.as_str(),
                    "no RTP from either phone: ending the call"
                );
                self.end_for_media(sh, now, Reason::MediaTimeout);
            }
            MediaEvent::Failed { port, .. }
                if self
                    .media
                    .as_ref()
                    .is_some_and(|m| !m.ports.contains(&port)) =>
            {
                // Not the call's own ports: a third party's (current, or one
                // already gone); the call goes on without it.
                warn!(port, "the third party's RTP ports could not be bound");
                if self.third.as_deref().is_some_and(|t| t.port == port) {
                    self.end_party(sh, now, Some("SIP/2.0 503 Service Unavailable"));
                }
            }
            MediaEvent::Failed { port, .. } => {
                // The call ends (503 when unanswered) and gives its pairs back:
                // the one that failed rests like any freed pair and is tried
                // again later (another program may have let it go, or a file
                // descriptor may be free again).
                warn!(port, "RTP ports could not be bound: ending the call");
                self.end_for_media(sh, now, Reason::MediaPortUnavailable);
            }
            MediaEvent::Refused { .. } => {
                warn!(
                    reason = Reason::MediaRelayBusy.as_str(),
                    "the media relay is overloaded: ending the call"
                );
                self.end_for_media(sh, now, Reason::MediaRelayBusy);
            }
        }
    }

    fn on_play_done(&mut self, sh: &mut Shared, now: Instant) {
        let Some(cfg) = sh.cfg.media.clone() else {
            return;
        };
        match self.state {
            CallState::Queued { prompt: true } => {
                // The line's prompt is over: hold music while the ACD finds an agent.
                self.state = CallState::Queued { prompt: false };
                self.timers.stop(CallTimer::PromptGuard);
                let queue = self.queue.clone().unwrap_or_default();
                let line = self.line.clone();
                self.play(sh, hold_playlist(&cfg, false));
                // Handed to another node during the prompt: it queues it there.
                if self.handover.is_none() {
                    self.offer_to_acd(sh, now, &queue, &line)
                }
            }
            // The survey prompt is over: the key timer runs.
            CallState::Survey(SurveyStep::Asking) => {}
            CallState::Survey(SurveyStep::Closing) => self.hang_up_side(sh, now, Side::A),
            CallState::Announcing => self.announced(sh, now),
            _ => {}
        }
    }

    /// Ends a call whose media failed.
    fn end_for_media(&mut self, sh: &mut Shared, now: Instant, reason: Reason) {
        if matches!(self.state, CallState::Ending) {
            return;
        }
        self.set_reason(reason);
        if self.a_invite.is_some() {
            let (code, phrase) = if reason == Reason::MediaTimeout {
                (408, "Request Timeout")
            } else {
                (503, "Service Unavailable")
            };
            return self.abandon_early(sh, now, reason, code, phrase);
        }
        if self.waiting() {
            return self.leave_queue(sh, now, reason);
        }
        self.hang_up(sh, now);
    }

    /// A caller the gateway answered leaves before an agent did (it hung up, or
    /// the gateway ends the wait): the ACD forgets it, a callee being rung is
    /// cancelled, and the caller gets BYE unless it hung up itself.
    pub(super) fn leave_queue(&mut self, sh: &mut Shared, now: Instant, reason: Reason) {
        self.set_reason(reason);
        let reason = self.reason.unwrap_or(reason);
        self.state = CallState::Ending;
        self.timers.stop(CallTimer::Ring);
        let kind = super::ending_kind(reason);
        self.note(sh, now, kind, Some(reason.as_str().to_string()));
        if reason != Reason::CallerCancelled {
            self.bye_caller(sh, now);
        }
        if self.in_acd {
            self.release_acd(sh, now);
        } else if let Some(agent) = self.agent.clone() {
            self.cancel_ring(sh, now, &agent);
        }
        self.finish(sh);
    }

    /// Sends BYE to the caller; its answer needs no action (the call is ending).
    fn bye_caller(&mut self, sh: &mut Shared, now: Instant) {
        if self.a.remote_tag.is_none() {
            return;
        }
        let peer = self.a.peer;
        let bye = self.a.request(Method::Bye, None, Bytes::new());
        let tx = sh.tl.send_request(now, peer, bye);
        sh.by_tx.insert(tx, (self.key, Role::Fire));
    }

    /// An in-dialog request from the caller while no callee is connected (the
    /// caller waits in a queue, or rates the call): the gateway answers it.
    pub(super) fn answer_locally(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        tx: TxId,
        req: &Request,
    ) {
        let ct = req.content_type().map(str::to_string);
        match req.method {
            Method::Info => {
                if let Some(d) = info_digit(ct.as_deref(), &req.body) {
                    self.on_digit(sh, now, d);
                }
                sh.reply(now, tx, req, 200, "OK");
            }
            Method::Invite | Method::Update => {
                // A refresh or a hold: learn the caller's SDP, answer with ours.
                let learned = self.learn(sh, Side::A, ct.as_deref(), &req.body);
                if let Some(m) = self.media.as_mut() {
                    if let Some(sdp) = learned {
                        m.offer = sdp;
                    }
                    m.a_answer = None;
                }
                let body = self.a_answer(sh);
                let contact = sh.contact(self.a.peer.transport);
                let mut m = response_to(req, 200, "OK", Some(&self.a.local_tag));
                m.header("Contact", &contact);
                let bytes = match body {
                    Some(b) => m.finish(Some("application/sdp"), &b),
                    None => m.finish_empty(),
                };
                sh.respond(now, tx, 200, bytes);
            }
            _ => sh.reply(now, tx, req, 200, "OK"),
        }
    }

    /// A SIP INFO digit from one phone, for another that takes RFC 4733: the
    /// gateway answers the INFO and plays the digit in the media. False when the
    /// INFO should be relayed as it is.
    pub(super) fn interwork_info(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        from: Side,
        tx: TxId,
        req: &Request,
    ) -> bool {
        if req.method != Method::Info {
            return false;
        }
        let Some(digit) = info_digit(req.content_type(), &req.body) else {
            return false;
        };
        let to = from.other();
        let takes_events = self
            .media
            .as_ref()
            .is_some_and(|m| m.dtmf[side_index(to)].is_some());
        if !takes_events {
            return false;
        }
        sh.reply(now, tx, req, 200, "OK");
        debug!(%digit, "SIP INFO digit sent on as RFC 4733");
        sh.media_cmd(MediaCommand::Dtmf {
            session: self.key,
            leg: leg_of(to),
            digit,
        });
        true
    }

    /// Whether an in-dialog request from the caller is the gateway's to answer:
    /// it waits for an agent after the gateway's own answer, rates the call,
    /// or hears a line's out-of-service announcement.
    pub(super) fn answers_locally(&self, from: Side) -> bool {
        from == Side::A
            && self.media.is_some()
            && (self.waiting() && self.a_invite.is_none()
                || matches!(self.state, CallState::Survey(_) | CallState::Announcing))
    }
}

/// The greeting (when asked), then hold music with its message now and then.
pub(super) fn hold_playlist(cfg: &MediaConfig, greeting: bool) -> Playlist {
    let get = |n: &Option<String>| n.as_deref().and_then(|n| cfg.prompts.get(n));
    Playlist {
        once: if greeting {
            get(&cfg.greeting).into_iter().collect()
        } else {
            Vec::new()
        },
        hold: get(&cfg.hold_music).map(|music| Hold {
            music,
            message: get(&cfg.hold_message),
            every: cfg.hold_message_every,
        }),
    }
}
