//! What a caller hears from the gateway and how its media ends: queued callers
//! answered with the greeting and hold music (or a line's prompt first), the
//! satisfaction survey, the relay's events (digits, played out, silence, ports
//! lost), a waiting caller's own in-dialog requests, and SIP INFO digits played
//! as RFC 4733. The SDP side of media is in `media.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::media::{
    MediaConfig, QueuedAudio, Survey, call_transport, info_digit, leg_of, side_index,
};
use super::{CallKey, CallTimer, Core, Phase, Reason, Side};
use crate::cdr;
use crate::media::command::{Hold, Leg, MediaCommand, MediaEvent, Playlist};
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};
use crate::sip::transaction::TxId;

impl Core {
    /// A queued call's audio: answer (or 183) the caller with the gateway's SDP
    /// and play the line's prompt or the greeting, then hold music. Returns
    /// true when the ACD offer waits for the line's prompt to finish.
    pub(super) fn queue_audio(
        &mut self,
        now: Instant,
        key: CallKey,
        queue: &str,
        line: &str,
    ) -> bool {
        let Some(cfg) = self.cfg.media.clone() else {
            return false;
        };
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        if call.media.is_none() || call.a_invite.is_none() {
            return false;
        }
        let line_prompt = call
            .media
            .as_ref()
            .and_then(|m| m.line_prompt.as_deref())
            .and_then(|p| cfg.prompts.get(p));
        // A parallel call overflowing from its legacy leg: forget that phone.
        self.media_cmd(MediaCommand::DropLeg {
            session: key,
            leg: Leg::B,
        });
        let Some(body) = self.a_answer(key) else {
            return false;
        };
        let contact = self.contact(call_transport(self, key));
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some((tx, req)) = &call.a_invite else {
            return false;
        };
        let tx = *tx;
        let (code, phrase) = match cfg.queued {
            QueuedAudio::Answer => (200, "OK"),
            QueuedAudio::EarlyMedia => (183, "Session Progress"),
        };
        let mut m = response_to(req, code, phrase, Some(&call.a.local_tag));
        m.header("Contact", &contact);
        if code == 200 {
            m.header(super::tell_caller::ANSWERED_BY, "gateway");
        }
        let bytes = m.finish(Some("application/sdp"), &body);
        if code == 200 {
            call.answered_invite = call.a_invite.take().map(|(_, r)| r);
            call.final_code = 200;
            call.phase = Phase::Answered;
        }
        let media = call.media.as_mut().expect("checked above");
        media.answered_a = code == 200;
        media.playing = true;
        let delayed = line_prompt.is_some();
        if delayed {
            media.queue_after_prompt = Some((queue.to_string(), line.to_string()));
        }
        // Should the relay never say the prompt ended, the caller is queued anyway.
        let guard = line_prompt
            .as_ref()
            .map(|p| now + Duration::from_millis(p.duration_ms()) + Duration::from_secs(2));
        self.respond(now, tx, code, bytes);
        let first = !self
            .calls
            .get(&key)
            .is_some_and(|c| c.events.iter().any(|e| e.kind == cdr::EventKind::Ringback));
        if first {
            self.note(now, key, cdr::EventKind::Ringback, None);
        }
        let playlist = match line_prompt {
            Some(p) => Playlist {
                once: vec![p],
                hold: None,
            },
            None => self.hold_playlist(&cfg, true),
        };
        self.media_play(key, playlist);
        if let Some(at) = guard {
            self.arm_call_timer(key, CallTimer::Survey, at);
        }
        delayed
    }

    fn hold_playlist(&self, cfg: &MediaConfig, greeting: bool) -> Playlist {
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

    /// The callee answered a call whose caller the gateway had already answered:
    /// acknowledge it and connect the two.
    pub(super) fn media_answered(&mut self, key: CallKey) {
        if let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) {
            m.playing = false;
        }
        self.media_cmd(MediaCommand::Bridge { session: key });
    }

    /// Whether the gateway answered the caller itself (its 200 is not the callee's).
    pub(super) fn gateway_answered(&self, key: CallKey) -> bool {
        self.calls
            .get(&key)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.answered_a)
    }

    /// The callee hung up first on an answered call: ask the caller for a rating
    /// instead of hanging up. False when no survey applies.
    pub(super) fn start_survey(&mut self, now: Instant, key: CallKey) -> bool {
        let Some(cfg) = self.cfg.media.clone() else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let rated = call.answered_by == Some("12345") && call.transferred_to.is_none();
        let Some(m) = call.media.as_mut() else {
            return false;
        };
        if m.survey != Survey::Due || !rated {
            return false;
        }
        let Some(prompt) = cfg.prompts.get(&cfg.survey_prompt) else {
            return false;
        };
        m.survey = Survey::Asking;
        m.playing = true;
        // The agent's leg is over: nothing to send BYE to.
        call.b.remote_tag = None;
        // The agent is free for the next caller while this one rates the call.
        let release = call.queue.is_some() && !std::mem::replace(&mut call.acd_done, true);
        let until = now + Duration::from_millis(prompt.duration_ms()) + cfg.survey_timeout;
        call.span
            .in_scope(|| debug!("agent hung up first: satisfaction survey"));
        self.media_cmd(MediaCommand::DropLeg {
            session: key,
            leg: Leg::B,
        });
        self.media_play(
            key,
            Playlist {
                once: vec![prompt],
                hold: None,
            },
        );
        self.arm_call_timer(key, CallTimer::Survey, until);
        self.tell_caller(now, key, super::tell_caller::SURVEY, "start");
        if release {
            if let Err(e) = self.acd.call_ended(now, key) {
                debug!(error = %e, "ACD call_ended at the survey");
            }
            self.drain_acd(now);
        }
        true
    }

    /// A digit from the caller (RFC 4733 or SIP INFO).
    pub(super) fn on_digit(&mut self, now: Instant, key: CallKey, digit: char) {
        let Some(cfg) = self.cfg.media.clone() else {
            return;
        };
        let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) else {
            return;
        };
        if m.survey != Survey::Asking {
            return;
        }
        let Some(rating) = digit.to_digit(10).filter(|d| (1..=3).contains(d)) else {
            debug!(%digit, "survey: not a rating key");
            return;
        };
        m.survey_digit = Some(rating as u8);
        info!(rating, "survey answered");
        self.close_survey(now, key, &cfg);
    }

    /// The survey is over (rated, or timed out): thank the caller, then BYE.
    pub(super) fn close_survey(&mut self, now: Instant, key: CallKey, cfg: &MediaConfig) {
        let thanks = cfg
            .survey_thanks
            .as_deref()
            .and_then(|t| cfg.prompts.get(t));
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.ring_deadline = None;
        let Some(m) = call.media.as_mut() else {
            return;
        };
        m.survey = Survey::Closing;
        match thanks.filter(|_| m.survey_digit.is_some()) {
            Some(p) => {
                self.media_play(
                    key,
                    Playlist {
                        once: vec![p],
                        hold: None,
                    },
                );
                // Bounded in case the relay never reports the end.
                let guard = now + Duration::from_millis(self.thanks_ms()) + Duration::from_secs(2);
                self.arm_call_timer(key, CallTimer::Survey, guard);
            }
            None => self.hang_up_side(now, key, Side::A),
        }
    }

    /// How long the survey's thanks prompt lasts.
    fn thanks_ms(&self) -> u64 {
        self.cfg
            .media
            .as_ref()
            .and_then(|c| c.survey_thanks.as_deref().and_then(|t| c.prompts.get(t)))
            .map_or(0, |p| p.duration_ms())
    }

    /// The survey timer: the caller pressed nothing, or the thanks never ended.
    pub(super) fn on_survey_timer(&mut self, now: Instant, key: CallKey) {
        let Some(cfg) = self.cfg.media.clone() else {
            return;
        };
        let survey = self
            .calls
            .get(&key)
            .and_then(|c| c.media.as_ref())
            .map(|m| m.survey);
        let prompt_pending = self
            .calls
            .get(&key)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.queue_after_prompt.is_some());
        if prompt_pending {
            debug!("the line's prompt never reported its end: queueing the caller");
            return self.on_play_done(now, key);
        }
        match survey {
            Some(Survey::Asking) => {
                debug!("survey: no key pressed");
                self.close_survey(now, key, &cfg);
            }
            Some(Survey::Closing) => self.hang_up_side(now, key, Side::A),
            _ => {}
        }
    }

    /// What the relay reported.
    pub fn handle_media(&mut self, now: Instant, ev: MediaEvent) {
        let key = ev.session();
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let span = call.span.clone();
        let _enter = span.enter();
        match ev {
            MediaEvent::Digit {
                leg: Leg::A, digit, ..
            } => self.on_digit(now, key, digit),
            MediaEvent::Digit { .. } => {}
            MediaEvent::PlayDone { play, .. } => {
                // Only the playlist playing now: one that ended while the core
                // was already sending the next (the survey's prompt as the
                // digit came) must not end the next one's wait.
                if call.media.as_ref().is_some_and(|m| m.plays == play) {
                    self.on_play_done(now, key);
                }
            }
            MediaEvent::Timeout { .. } if call.a_invite.is_some() => {
                // Not answered yet (ringing, early media): a phone need not send.
                debug!("no RTP yet on an unanswered call");
            }
            MediaEvent::Timeout { .. } => {
                info!(
                    reason = Reason::MediaTimeout.as_str(),
                    "no RTP from either phone: ending the call"
                );
                self.end_for_media(now, key, Reason::MediaTimeout);
            }
            MediaEvent::Failed { port, .. } => {
                // The call ends (503 when unanswered) and gives its pairs back:
                // the one that failed rests like any freed pair and is tried
                // again later (another program may have let it go, or a file
                // descriptor may be free again).
                warn!(port, "RTP ports could not be bound: ending the call");
                self.end_for_media(now, key, Reason::MediaPortUnavailable);
            }
            MediaEvent::Refused { .. } => {
                warn!(
                    reason = Reason::MediaRelayBusy.as_str(),
                    "the media relay is overloaded: ending the call"
                );
                self.end_for_media(now, key, Reason::MediaRelayBusy);
            }
        }
        drop(_enter);
        self.process_events(now);
    }

    fn on_play_done(&mut self, now: Instant, key: CallKey) {
        let Some(cfg) = self.cfg.media.clone() else {
            return;
        };
        let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) else {
            return;
        };
        if let Some((queue, line)) = m.queue_after_prompt.take() {
            // The line's prompt is over: hold music while the ACD finds an agent.
            let playlist = self.hold_playlist(&cfg, false);
            self.media_play(key, playlist);
            return self.offer_to_acd(now, key, &queue, &line);
        }
        match m.survey {
            Survey::Asking => {} // the prompt is over; the digit timer runs
            Survey::Closing => self.hang_up_side(now, key, Side::A),
            _ => {}
        }
    }

    /// Ends a call whose media failed.
    fn end_for_media(&mut self, now: Instant, key: CallKey, reason: Reason) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase == Phase::Ending {
            return;
        }
        call.set_reason(reason);
        if call.a_invite.is_some() {
            let code = if reason == Reason::MediaTimeout {
                408
            } else {
                503
            };
            let phrase = if code == 408 {
                "Request Timeout"
            } else {
                "Service Unavailable"
            };
            return self.abandon_early(now, key, reason, code, phrase);
        }
        if self.gateway_answered(key)
            && self
                .calls
                .get(&key)
                .is_some_and(|c| c.answered_at.is_none())
        {
            return self.leave_queue(now, key, reason);
        }
        self.hang_up(now, key);
    }

    /// A caller the gateway answered leaves before an agent did (it hung up, or
    /// the gateway ends the wait): the ACD forgets it, a callee being rung is
    /// cancelled, and the caller gets BYE unless it hung up itself.
    pub(super) fn leave_queue(&mut self, now: Instant, key: CallKey, reason: Reason) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.set_reason(reason);
        let reason = call.reason.unwrap_or(reason);
        call.phase = Phase::Ending;
        call.ring_deadline = None;
        let kind = super::ending_kind(reason);
        self.note(now, key, kind, Some(reason.as_str().to_string()));
        if reason != Reason::CallerCancelled {
            self.bye_caller(now, key);
        }
        let queued = self.calls.get(&key).is_some_and(|c| c.queue.is_some());
        if queued {
            if let Err(e) = self.acd.abandon(now, key) {
                debug!(error = %e, "ACD abandon");
            }
            self.drain_acd(now);
        } else if let Some(agent) = self.calls.get(&key).and_then(|c| c.agent.clone()) {
            self.cancel_ring(now, key, &agent);
        }
        self.finish(now, key);
    }

    /// Sends BYE to the caller; its answer needs no action (the call is ending).
    fn bye_caller(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.a.remote_tag.is_none() {
            return;
        }
        let peer = call.a.peer;
        let bye = call.a.request(Method::Bye, None, Bytes::new());
        let tx = self.tl.send_request(now, peer, bye);
        self.by_tx.insert(tx, (key, super::Role::Fire));
    }

    /// An in-dialog request from the caller while no callee is connected (the
    /// caller waits in a queue, or rates the call): the gateway answers it.
    pub(super) fn answer_locally(&mut self, now: Instant, key: CallKey, tx: TxId, req: &Request) {
        let ct = req.content_type().map(str::to_string);
        match req.method {
            Method::Info => {
                if let Some(d) = info_digit(ct.as_deref(), &req.body) {
                    self.on_digit(now, key, d);
                }
                self.reply(now, tx, req, 200, "OK");
            }
            Method::Invite | Method::Update => {
                // A refresh or a hold: learn the caller's SDP, answer with ours.
                let learned = self.learn(key, Side::A, ct.as_deref(), &req.body);
                if let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) {
                    if let Some(sdp) = learned {
                        m.offer = sdp;
                    }
                    m.a_answer = None;
                }
                let body = self.a_answer(key);
                let Some(call) = self.calls.get(&key) else {
                    return;
                };
                let transport = call.a.peer.transport;
                let contact = self.contact(transport);
                let Some(call) = self.calls.get(&key) else {
                    return;
                };
                let mut m = response_to(req, 200, "OK", Some(&call.a.local_tag));
                m.header("Contact", &contact);
                let bytes = match body {
                    Some(b) => m.finish(Some("application/sdp"), &b),
                    None => m.finish_empty(),
                };
                self.respond(now, tx, 200, bytes);
            }
            _ => self.reply(now, tx, req, 200, "OK"),
        }
    }

    /// A SIP INFO digit from one phone, for another that takes RFC 4733: the
    /// gateway answers the INFO and plays the digit in the media. False when the
    /// INFO should be relayed as it is.
    pub(super) fn interwork_info(
        &mut self,
        now: Instant,
        key: CallKey,
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
            .calls
            .get(&key)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.dtmf[side_index(to)].is_some());
        if !takes_events {
            return false;
        }
        self.reply(now, tx, req, 200, "OK");
        debug!(%digit, "SIP INFO digit sent on as RFC 4733");
        self.media_cmd(MediaCommand::Dtmf {
            session: key,
            leg: leg_of(to),
            digit,
        });
        true
    }

    /// Whether an in-dialog request from the caller is the gateway's to answer.
    pub(super) fn answers_locally(&self, key: CallKey, from: Side) -> bool {
        from == Side::A
            && self.calls.get(&key).is_some_and(|c| {
                c.media.as_ref().is_some_and(|m| {
                    // Waiting for an agent after the gateway's own answer, or rating.
                    (m.answered_a && c.answered_at.is_none())
                        || matches!(m.survey, Survey::Asking | Survey::Closing)
                })
            })
    }
}
