//! The call layer's side of media: which ports a call's legs use, what the SDP
//! crossing the gateway says, and what the caller hears (greeting, hold music,
//! the survey). The relay (`media::relay`) moves the packets; this decides.
//!
//! Every SDP that crosses the gateway goes through [`Core::sdp_to`]: the sending
//! leg's address and codec are told to the relay, and the SDP goes on anchored at
//! the gateway (its address, the port facing the receiving leg, the gateway's own
//! `o=` line per leg) with only the codecs the relay can carry and play prompts in.
//!
//! A queued caller is answered by the gateway itself (`queued = "answer"`) or
//! hears early media (`"early_media"`); either way the SLA clock runs until an
//! agent answers (the `answered` event is the agent's).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::{CallKey, CallTimer, Core, Phase, Reason, Side};
use crate::cdr;
use crate::media::command::{Hold, Leg, MediaCommand, MediaEvent, Playlist, Remote};
use crate::media::{Codec, Prompts};
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};
use crate::sip::sdp::{Direction, Sdp, SdpError};
use crate::sip::transaction::TxId;

/// The encodings the relay carries (no transcoding: prompts exist in both laws).
const RELAYED: &[&str] = &["PCMA/8000", "PCMU/8000", "telephone-event/8000"];

/// How a queued caller is treated while it waits for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedAudio {
    /// `200 OK` from the gateway, then greeting and hold music.
    Answer,
    /// `183 Session Progress` with the gateway's SDP: the same audio, unanswered.
    EarlyMedia,
}

/// The media settings the core needs (from `[media]` in the config).
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The address written into SDP (the relay binds it).
    pub address: IpAddr,
    /// Inclusive range of RTP ports.
    pub ports: (u16, u16),
    pub queued: QueuedAudio,
    pub prompts: Arc<Prompts>,
    pub greeting: Option<String>,
    pub hold_music: Option<String>,
    pub hold_message: Option<String>,
    pub hold_message_every: Duration,
    /// Lines ask for a satisfaction rating unless they say otherwise.
    pub survey: bool,
    pub survey_prompt: String,
    pub survey_thanks: Option<String>,
    /// How long the caller has to press a key once the survey prompt has played.
    pub survey_timeout: Duration,
    /// Lines are recorded unless they say otherwise.
    pub record: bool,
}

/// Where a call's satisfaction survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Survey {
    /// The line asks none, or the call is not one to rate.
    Off,
    /// The line asks one if an agent answers and hangs up first.
    Due,
    /// The prompt plays; the digit is awaited until the call timer fires.
    Asking,
    /// A digit came (or none did): the thanks prompt plays, then BYE.
    Closing,
}

/// One call's media.
#[derive(Debug)]
pub(super) struct CallMedia {
    /// RTP ports: `[0]` faces the caller, `[1]` the callee.
    pub ports: [u16; 2],
    /// The caller's offer, cut down to what the relay carries.
    offer: Sdp,
    /// The audio codec the caller sends.
    codec: Codec,
    /// The gateway itself answered the caller (queued, answer mode).
    pub answered_a: bool,
    /// The SDP answer the caller got from the gateway, repeated in the 200 that
    /// follows a 183.
    a_answer: Option<Bytes>,
    /// Our `o=` session id and version, per leg.
    origin: [(u64, u64); 2],
    /// Queue and line to enter once the line's prompt has played.
    queue_after_prompt: Option<(String, String)>,
    pub survey: Survey,
    pub survey_digit: Option<u8>,
    /// The recording's file name (`<call id>.wav`), when the line records.
    pub recording: Option<String>,
    /// The caller hears the gateway (not the callee).
    playing: bool,
    /// The line's prompt, played before queueing (the plan the call started with).
    line_prompt: Option<String>,
    /// telephone-event payload type per leg (`[caller, callee]`), from its SDP.
    dtmf: [Option<u8>; 2],
    /// Where the caller's phone listens and with what, as last told to the relay.
    a_remote: Remote,
}

/// Why a call could not get media.
#[derive(Debug)]
pub(super) enum MediaRefusal {
    NoCodec,
    NoPorts,
    BadSdp(SdpError),
}

impl Core {
    /// The next order for the relay.
    pub fn poll_media(&mut self) -> Option<MediaCommand> {
        self.media_out.pop_front()
    }

    fn media_cmd(&mut self, cmd: MediaCommand) {
        self.media_out.push_back(cmd);
    }

    /// Sets up media for a new call whose INVITE offers SDP. `Ok(false)`: the
    /// call goes without the relay (media off, or no offer: late offers are
    /// relayed end to end).
    pub(super) fn media_open(
        &mut self,
        key: CallKey,
        req: &Request,
        line: &crate::dialplan::Line,
    ) -> Result<bool, MediaRefusal> {
        let Some(cfg) = self.cfg.media.clone() else {
            return Ok(false);
        };
        let is_sdp = req
            .content_type()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/sdp"));
        if !is_sdp || req.body.is_empty() {
            return Ok(false);
        }
        let text = std::str::from_utf8(&req.body).map_err(|_| {
            MediaRefusal::BadSdp(SdpError::Malformed {
                line: 0,
                reason: "not UTF-8",
            })
        })?;
        let mut offer = Sdp::parse(text).map_err(MediaRefusal::BadSdp)?;
        match offer.restrict_codecs(RELAYED) {
            Ok(_) => {}
            Err(SdpError::NoCommonCodec | SdpError::NoAudio) => return Err(MediaRefusal::NoCodec),
            Err(e) => return Err(MediaRefusal::BadSdp(e)),
        }
        let remote = remote_of(&offer, None).ok_or(MediaRefusal::NoCodec)?;
        let Some(a) = self.ports.take() else {
            return Err(MediaRefusal::NoPorts);
        };
        let Some(b) = self.ports.take() else {
            self.ports.give_back(a);
            return Err(MediaRefusal::NoPorts);
        };
        let id = self.call_id_of(key);
        let recording = line
            .record
            .unwrap_or(cfg.record)
            .then(|| format!("{id}.wav"));
        let survey = if line.survey.unwrap_or(cfg.survey) {
            Survey::Due
        } else {
            Survey::Off
        };
        let seed = self.ids.next_u64();
        self.media_cmd(MediaCommand::Open {
            session: key,
            ports: [a, b],
            record: recording.as_ref().map(|_| id.clone()),
        });
        self.media_cmd(MediaCommand::Remote {
            session: key,
            leg: Leg::A,
            remote,
        });
        let Some(call) = self.calls.get_mut(&key) else {
            return Ok(false);
        };
        call.media = Some(Box::new(CallMedia {
            ports: [a, b],
            codec: remote.codec,
            offer,
            answered_a: false,
            a_answer: None,
            origin: [(seed >> 1 & 0xffff_ffff, 1), (seed >> 33, 1)],
            queue_after_prompt: None,
            survey,
            survey_digit: None,
            recording,
            playing: false,
            line_prompt: line.prompt.clone(),
            dtmf: [remote.dtmf_pt, None],
            a_remote: remote,
        }));
        Ok(true)
    }

    /// Gives the call's ports back and tells the relay the call is over.
    pub(super) fn media_close(&mut self, key: CallKey, media: Option<Box<CallMedia>>) {
        if let Some(m) = media {
            self.media_cmd(MediaCommand::Close { session: key });
            for p in m.ports {
                self.ports.give_back(p);
            }
        }
    }

    /// The SDP the callee leg is offered: the caller's codecs (only the agreed one
    /// once the gateway has answered the caller), anchored at the callee port.
    pub(super) fn b_offer(&mut self, key: CallKey) -> Option<Bytes> {
        let m = self.calls.get_mut(&key)?.media.as_mut()?;
        let mut sdp = m.offer.clone();
        if m.answered_a || m.a_answer.is_some() {
            let codec = codec_name(m.codec);
            if let Err(e) = sdp.restrict_codecs(&[codec, "telephone-event/8000"]) {
                debug!(error = %e, "callee offer keeps the caller's codecs");
            }
        }
        // The callee always gets a two-way offer, whatever the caller's hold state.
        sdp.set_direction(Direction::SendRecv);
        Some(self.present(key, Side::B, sdp))
    }

    /// The offer for a transfer target: the codec the caller already uses, at the
    /// callee-side port (the caller keeps its media session: no re-INVITE).
    pub(super) fn transfer_offer(&mut self, key: CallKey) -> Option<Bytes> {
        let m = self.calls.get_mut(&key)?.media.as_mut()?;
        let mut sdp = m.offer.clone();
        let codec = codec_name(m.codec);
        if let Err(e) = sdp.restrict_codecs(&[codec, "telephone-event/8000"]) {
            debug!(error = %e, "transfer offer keeps the caller's codecs");
        }
        sdp.set_direction(Direction::SendRecv);
        Some(self.present(key, Side::B, sdp))
    }

    /// Anchors `sdp` for the leg `to` and prints it.
    fn present(&mut self, key: CallKey, to: Side, mut sdp: Sdp) -> Bytes {
        let Some(cfg) = self.cfg.media.as_ref() else {
            return Bytes::from(sdp.to_string());
        };
        let address = cfg.address;
        let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) else {
            return Bytes::from(sdp.to_string());
        };
        let i = side_index(to);
        sdp.anchor(address, m.ports[i], false);
        // Only the first active audio stream is relayed: refuse the others
        // (RFC 3264 §6: port 0), so that nobody sends video to a relay port.
        let relayed = sdp
            .media
            .iter()
            .position(|s| s.kind == "audio" && s.port != 0);
        for (j, s) in sdp.media.iter_mut().enumerate() {
            if Some(j) != relayed {
                s.port = 0;
            }
        }
        let (id, version) = m.origin[i];
        m.origin[i].1 += 1;
        sdp.origin.username = "hotline".into();
        sdp.origin.session_id = id.to_string();
        sdp.origin.version = version;
        Bytes::from(sdp.to_string())
    }

    /// An SDP body crossing from the other leg to `to`: the sender's address goes
    /// to the relay, and the body comes back anchored. `None`: pass the body on
    /// unchanged (no media for this call, or no SDP in it).
    pub(super) fn sdp_to(
        &mut self,
        key: CallKey,
        to: Side,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Bytes> {
        let sdp = self.learn(key, to.other(), content_type, body)?;
        Some(self.present(key, to, sdp))
    }

    /// Reads an SDP body from leg `from` and tells the relay where that phone
    /// listens. Returns the SDP restricted to the relayed codecs.
    pub(super) fn learn(
        &mut self,
        key: CallKey,
        from: Side,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Sdp> {
        let m = self.calls.get(&key)?.media.as_ref()?;
        let is_sdp = content_type.is_some_and(|c| c.trim().eq_ignore_ascii_case("application/sdp"));
        if !is_sdp || body.is_empty() {
            return None;
        }
        let fallback = m.codec;
        let mut sdp = match std::str::from_utf8(body).ok().map(Sdp::parse) {
            Some(Ok(s)) => s,
            _ => {
                warn!("unreadable SDP from a leg: passed on unchanged, media may not flow");
                return None;
            }
        };
        if let Err(e) = sdp.restrict_codecs(RELAYED) {
            debug!(error = %e, "SDP with no relayed codec");
        }
        let leg = leg_of(from);
        match remote_of(&sdp, Some(fallback)) {
            Some(remote) => {
                let mut caller_update = None;
                if let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) {
                    m.dtmf[side_index(from)] = remote.dtmf_pt;
                    if from == Side::A {
                        m.codec = remote.codec;
                        m.a_remote = remote;
                    } else if m.a_answer.is_none() && remote.codec != m.a_remote.codec {
                        // The callee chose the other law of the caller's offer: the
                        // caller sends that one too (no transcoding).
                        m.codec = remote.codec;
                        m.a_remote.codec = remote.codec;
                        caller_update = Some(m.a_remote);
                    }
                }
                if let Some(remote) = caller_update {
                    self.media_cmd(MediaCommand::Remote {
                        session: key,
                        leg: Leg::A,
                        remote,
                    });
                }
                self.media_cmd(MediaCommand::Remote {
                    session: key,
                    leg,
                    remote,
                });
            }
            // Held with c=0.0.0.0, or port 0: the phone renders nothing now;
            // the relay keeps its address for when it resumes.
            None => debug!(?leg, "SDP without a reachable audio address (hold)"),
        }
        Some(sdp)
    }

    /// The SDP answer the gateway gives the caller itself: one codec (the first
    /// the caller offered) and telephone-event, anchored at the caller port.
    fn a_answer(&mut self, key: CallKey) -> Option<Bytes> {
        let m = self.calls.get_mut(&key)?.media.as_mut()?;
        if let Some(b) = &m.a_answer {
            return Some(b.clone());
        }
        let mut sdp = m.offer.clone();
        let codec = codec_name(m.codec);
        if let Err(e) = sdp.restrict_codecs(&[codec, "telephone-event/8000"]) {
            debug!(error = %e, "answer keeps the offered codecs");
        }
        let dir = sdp.direction().unwrap_or(Direction::SendRecv).reversed();
        sdp.set_direction(dir);
        let body = self.present(key, Side::A, sdp);
        if let Some(m) = self.calls.get_mut(&key).and_then(|c| c.media.as_mut()) {
            m.a_answer = Some(body.clone());
        }
        Some(body)
    }

    /// The body for a response relayed to the caller: the gateway's own answer
    /// if the caller already has one, else the callee's SDP anchored.
    pub(super) fn body_to_caller(
        &mut self,
        key: CallKey,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Bytes> {
        let given = self
            .calls
            .get(&key)
            .and_then(|c| c.media.as_ref())
            .and_then(|m| m.a_answer.clone());
        match given {
            Some(answer) => {
                self.learn(key, Side::B, content_type, body);
                Some(answer)
            }
            None => {
                let out = self.sdp_to(key, Side::A, content_type, body);
                let playing = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.media.as_ref())
                    .is_some_and(|m| m.playing);
                if out.is_some() && !playing {
                    // Early media or the answer of a direct route: bridge at once.
                    self.media_cmd(MediaCommand::Bridge { session: key });
                }
                out
            }
        }
    }

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
        self.media_cmd(MediaCommand::Play {
            session: key,
            playlist,
        });
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
        self.media_cmd(MediaCommand::Play {
            session: key,
            playlist: Playlist {
                once: vec![prompt],
                hold: None,
            },
        });
        self.arm_call_timer(key, CallTimer::Survey, until);
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
                self.media_cmd(MediaCommand::Play {
                    session: key,
                    playlist: Playlist {
                        once: vec![p],
                        hold: None,
                    },
                });
                // Bounded in case the relay never reports the end.
                let guard =
                    now + Duration::from_millis(self.guard_ms(key)) + Duration::from_secs(2);
                self.arm_call_timer(key, CallTimer::Survey, guard);
            }
            None => self.hang_up_side(now, key, Side::A),
        }
    }

    fn guard_ms(&self, _key: CallKey) -> u64 {
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
            MediaEvent::PlayDone { .. } => self.on_play_done(now, key),
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
                warn!(port, "RTP ports could not be bound: ending the call");
                self.ports.retire(port);
                self.end_for_media(now, key, Reason::MediaPortUnavailable);
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
            self.media_cmd(MediaCommand::Play {
                session: key,
                playlist,
            });
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

fn call_transport(core: &Core, key: CallKey) -> crate::sip::Transport {
    core.calls
        .get(&key)
        .map_or(crate::sip::Transport::Udp, |c| c.a.peer.transport)
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn leg_of(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Pcma => "PCMA/8000",
        Codec::Pcmu => "PCMU/8000",
    }
}

/// Where a phone wants its audio, from its SDP: `None` when held, or without
/// PCMA or PCMU.
pub fn sdp_remote(sdp: &Sdp) -> Option<Remote> {
    remote_of(sdp, None)
}

/// Where a phone wants its audio, from its SDP: `None` when held (`c=0.0.0.0`,
/// port 0) or without a relayed codec (then `fallback` is used if given).
pub(super) fn remote_of(sdp: &Sdp, fallback: Option<Codec>) -> Option<Remote> {
    let (ip, port) = sdp.audio_endpoint()?;
    let m = sdp.audio()?;
    let mut codec = None;
    let mut dtmf_pt = None;
    for pt in m.payload_types() {
        let enc = m.encoding(pt).unwrap_or("").to_ascii_lowercase();
        if codec.is_none() {
            codec = match (pt, enc.as_str()) {
                (_, e) if e.starts_with("pcma/8000") => Some(Codec::Pcma),
                (_, e) if e.starts_with("pcmu/8000") => Some(Codec::Pcmu),
                (0, "") => Some(Codec::Pcmu),
                (8, "") => Some(Codec::Pcma),
                _ => None,
            };
        }
        if dtmf_pt.is_none() && enc.starts_with("telephone-event/8000") {
            dtmf_pt = Some(pt);
        }
    }
    let rtcp = match m.rtcp() {
        Some(r) => SocketAddr::new(
            r.address.as_ref().and_then(|a| a.ip()).unwrap_or(ip),
            r.port,
        ),
        None => SocketAddr::new(ip, port.wrapping_add(1)),
    };
    Some(Remote {
        rtp: SocketAddr::new(ip, port),
        rtcp,
        codec: codec.or(fallback)?,
        dtmf_pt,
    })
}

/// The digit of a SIP INFO (`application/dtmf-relay`: `Signal=5`, or
/// `application/dtmf`: `5`).
pub(super) fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let ct = content_type?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match ct.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let c = value.chars().next()?;
    (value.len() == 1 && (c.is_ascii_digit() || "*#ABCDabcd".contains(c))).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_digits() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_digit(relay, b"Signal=2\r\nDuration=160\r\n"),
            Some('2')
        );
        assert_eq!(info_digit(relay, b"signal = #\r\n"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"3"), Some('3'));
        assert_eq!(info_digit(relay, b"Duration=160\r\n"), None);
        assert_eq!(info_digit(relay, b"Signal=12\r\n"), None);
        assert_eq!(info_digit(Some("text/plain"), b"1"), None);
        assert_eq!(info_digit(None, b"1"), None);
    }

    #[test]
    fn remotes_from_sdp() {
        let sdp = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=rtcp:4009\r\n",
        )
        .unwrap();
        let r = remote_of(&sdp, None).unwrap();
        assert_eq!(r.rtp, "10.0.0.1:4000".parse().unwrap());
        assert_eq!(r.rtcp, "10.0.0.1:4009".parse().unwrap());
        assert_eq!(r.codec, Codec::Pcmu, "the first offered codec");
        assert_eq!(r.dtmf_pt, Some(101));
        let held = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 8\r\n",
        )
        .unwrap();
        assert_eq!(remote_of(&held, None), None, "c=0.0.0.0 is hold");
        let g729 = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 18\r\n",
        )
        .unwrap();
        assert_eq!(remote_of(&g729, None), None);
        assert_eq!(
            remote_of(&g729, Some(Codec::Pcma)).map(|r| r.codec),
            Some(Codec::Pcma)
        );
    }
}
