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
//! agent answers (the `answered` event is the agent's). What the caller hears,
//! the survey and the relay's events are in `media_flow.rs`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, warn};

use super::media_sdp::{codec_name, leg_of, remote_of, side_index};
use super::{Call, CallKey, Core, Shared, Side};
use crate::media::command::{Leg, MediaCommand, Playlist, Remote};
use crate::media::{Codec, Prompts};
use crate::sip::message::{Headers, Request};
use crate::sip::sdp::{Direction, Sdp, SdpError};

/// The encodings the relay carries (no transcoding: prompts exist in both laws).
pub(super) const RELAYED: &[&str] = &["PCMA/8000", "PCMU/8000", "telephone-event/8000"];

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
    /// The announcement of a line out of service.
    pub not_in_service: Option<String>,
    /// Lines are recorded unless they say otherwise.
    pub record: bool,
}

/// One call's media.
#[derive(Debug)]
pub(super) struct CallMedia {
    /// RTP ports: `[0]` faces the caller, `[1]` the callee.
    pub ports: [u16; 2],
    /// The caller's offer, cut down to what the relay carries.
    pub(super) offer: Sdp,
    /// The audio codec the caller sends.
    pub(super) codec: Codec,
    /// The SDP answer the caller got from the gateway, repeated in the 200 that
    /// follows a 183.
    pub(super) a_answer: Option<Bytes>,
    /// Our `o=` session id and version, per leg.
    pub(super) origin: [(u64, u64); 2],
    /// The line asks for a rating and none has been asked yet.
    pub(super) survey_due: bool,
    pub survey_digit: Option<u8>,
    /// The recording's file name (`<call id>.wav`), when the line records.
    pub recording: Option<String>,
    /// The caller hears the gateway (not the callee).
    pub(super) playing: bool,
    /// The number of the last playlist sent to the relay.
    pub(super) plays: u32,
    /// The line's prompt, played before queueing (the plan the call started with).
    pub(super) line_prompt: Option<String>,
    /// telephone-event payload type per leg (`[caller, callee]`), from its SDP.
    pub(super) dtmf: [Option<u8>; 2],
    /// Where the caller's phone listens and with what, as last told to the relay.
    pub(super) a_remote: Remote,
}

/// `sdp` anchored at the gateway's `address` and `port`, with our `o=` line
/// (`origin`: session id and the version, bumped here), printed.
pub(super) fn anchored(mut sdp: Sdp, address: IpAddr, port: u16, origin: &mut (u64, u64)) -> Bytes {
    sdp.anchor(address, port, false);
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
    let (id, version) = *origin;
    origin.1 += 1;
    sdp.origin.username = "hotline".into();
    sdp.origin.session_id = id.to_string();
    sdp.origin.version = version;
    Bytes::from(sdp.to_string())
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
        self.sh.media_out.pop_front()
    }
}

impl Shared {
    /// Gives a finished call's ports back and tells the relay the call is over.
    pub(super) fn media_close(&mut self, key: CallKey, media: Option<Box<CallMedia>>) {
        if let Some(m) = media {
            self.media_cmd(MediaCommand::Close { session: key });
            for p in m.ports {
                self.ports.give_back(p);
            }
        }
    }
}

impl Call {
    /// The caller hears `playlist`, numbered so that its end is told apart
    /// from the end of the one before.
    pub(super) fn play(&mut self, sh: &mut Shared, playlist: Playlist) {
        let Some(m) = self.media.as_mut() else {
            return;
        };
        m.plays = m.plays.wrapping_add(1);
        sh.media_cmd(MediaCommand::Play {
            session: self.key,
            play: m.plays,
            playlist,
        });
    }

    /// Sets up media for a new call whose INVITE offers SDP. `Ok(false)`: the
    /// call goes without the relay (media off, or no offer: late offers are
    /// relayed end to end).
    pub(super) fn media_open(
        &mut self,
        sh: &mut Shared,
        req: &Request,
        line: &crate::dialplan::Line,
    ) -> Result<bool, MediaRefusal> {
        let Some(cfg) = sh.cfg.media.clone() else {
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
        let Some(a) = sh.ports.take(sh.ids.next_u64()) else {
            return Err(MediaRefusal::NoPorts);
        };
        let Some(b) = sh.ports.take(sh.ids.next_u64()) else {
            sh.ports.give_back(a);
            return Err(MediaRefusal::NoPorts);
        };
        let id = sh.call_id_of(self.key);
        let recording = line
            .record
            .unwrap_or(cfg.record)
            .then(|| format!("{id}.wav"));
        let survey_due = line.survey.unwrap_or(cfg.survey);
        let seed = sh.ids.next_u64();
        sh.media_cmd(MediaCommand::Open {
            session: self.key,
            ports: [a, b],
            record: recording.as_ref().map(|_| id.clone()),
        });
        sh.media_cmd(MediaCommand::Remote {
            session: self.key,
            leg: Leg::A,
            remote,
            signal: self.signal_ip(Side::A),
        });
        self.media = Some(Box::new(CallMedia {
            ports: [a, b],
            codec: remote.codec,
            offer,
            a_answer: None,
            origin: [(seed >> 1 & 0xffff_ffff, 1), (seed >> 33, 1)],
            survey_due,
            survey_digit: None,
            recording,
            playing: false,
            plays: 0,
            line_prompt: line.prompt.clone(),
            dtmf: [remote.dtmf_pt, None],
            a_remote: remote,
        }));
        Ok(true)
    }

    /// The SDP the callee leg is offered: the caller's codecs (only the agreed one
    /// once the gateway has answered the caller), anchored at the callee port.
    pub(super) fn b_offer(&mut self, sh: &mut Shared) -> Option<Bytes> {
        let gateway_answered = self.gateway_answered();
        let m = self.media.as_mut()?;
        let mut sdp = m.offer.clone();
        if gateway_answered || m.a_answer.is_some() {
            let codec = codec_name(m.codec);
            if let Err(e) = sdp.restrict_codecs(&[codec, "telephone-event/8000"]) {
                debug!(error = %e, "callee offer keeps the caller's codecs");
            }
        }
        // The callee always gets a two-way offer, whatever the caller's hold state.
        sdp.set_direction(Direction::SendRecv);
        Some(self.present(sh, Side::B, sdp))
    }

    /// The offer for a transfer target: the codec the caller already uses, at the
    /// callee-side port (the caller keeps its media session: no re-INVITE).
    pub(super) fn transfer_offer(&mut self, sh: &mut Shared) -> Option<Bytes> {
        let m = self.media.as_mut()?;
        let mut sdp = m.offer.clone();
        let codec = codec_name(m.codec);
        if let Err(e) = sdp.restrict_codecs(&[codec, "telephone-event/8000"]) {
            debug!(error = %e, "transfer offer keeps the caller's codecs");
        }
        sdp.set_direction(Direction::SendRecv);
        Some(self.present(sh, Side::B, sdp))
    }

    /// Anchors `sdp` for the leg `to` and prints it.
    pub(super) fn present(&mut self, sh: &Shared, to: Side, sdp: Sdp) -> Bytes {
        let Some(cfg) = sh.cfg.media.as_ref() else {
            return Bytes::from(sdp.to_string());
        };
        let Some(m) = self.media.as_mut() else {
            return Bytes::from(sdp.to_string());
        };
        let i = side_index(to);
        anchored(sdp, cfg.address, m.ports[i], &mut m.origin[i])
    }

    /// An SDP body crossing from the other leg to `to`: the sender's address goes
    /// to the relay, and the body comes back anchored. `None`: pass the body on
    /// unchanged (no media for this call, or no SDP in it).
    pub(super) fn sdp_to(
        &mut self,
        sh: &mut Shared,
        to: Side,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Bytes> {
        let sdp = self.learn(sh, to.other(), content_type, body)?;
        Some(self.present(sh, to, sdp))
    }

    /// The IP address leg `side`'s signalling comes from (its dialog's peer):
    /// the relay also hears that leg's RTP from any port of it (a phone behind
    /// NAT). `None` before the leg has a peer.
    pub(super) fn signal_ip(&self, side: Side) -> Option<IpAddr> {
        let peer = self.peer_of(side)?;
        Some(peer.addr.ip()).filter(|ip| !ip.is_unspecified())
    }

    /// Reads an SDP body from leg `from` and tells the relay where that phone
    /// listens. Returns the SDP restricted to the relayed codecs.
    pub(super) fn learn(
        &mut self,
        sh: &mut Shared,
        from: Side,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Sdp> {
        let signal = self.signal_ip(from);
        self.learn_from(sh, from, signal, content_type, body)
    }

    /// [`Self::learn`] for a leg whose signalling comes from `signal` (a
    /// transfer target not yet in the call's callee dialog).
    pub(super) fn learn_from(
        &mut self,
        sh: &mut Shared,
        from: Side,
        signal: Option<IpAddr>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Sdp> {
        let a_signal = self.signal_ip(Side::A);
        let key = self.key;
        let m = self.media.as_mut()?;
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
                m.dtmf[side_index(from)] = remote.dtmf_pt;
                if from == Side::A {
                    m.codec = remote.codec;
                    m.a_remote = remote;
                } else if m.a_answer.is_none() && remote.codec != m.a_remote.codec {
                    // The callee chose the other law of the caller's offer: the
                    // caller sends that one too (no transcoding).
                    m.codec = remote.codec;
                    m.a_remote.codec = remote.codec;
                    sh.media_cmd(MediaCommand::Remote {
                        session: key,
                        leg: Leg::A,
                        remote: m.a_remote,
                        signal: a_signal,
                    });
                }
                sh.media_cmd(MediaCommand::Remote {
                    session: key,
                    leg,
                    remote,
                    signal,
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
    pub(super) fn a_answer(&mut self, sh: &mut Shared) -> Option<Bytes> {
        let m = self.media.as_mut()?;
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
        let body = self.present(sh, Side::A, sdp);
        if let Some(m) = self.media.as_mut() {
            m.a_answer = Some(body.clone());
        }
        Some(body)
    }

    /// The body for a response relayed to the caller: the gateway's own answer
    /// if the caller already has one, else the callee's SDP anchored.
    pub(super) fn body_to_caller(
        &mut self,
        sh: &mut Shared,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Bytes> {
        let given = self.media.as_ref().and_then(|m| m.a_answer.clone());
        match given {
            Some(answer) => {
                self.learn(sh, Side::B, content_type, body);
                Some(answer)
            }
            None => {
                let out = self.sdp_to(sh, Side::A, content_type, body);
                let playing = self.media.as_ref().is_some_and(|m| m.playing);
                if out.is_some() && !playing {
                    // Early media or the answer of a direct route: bridge at once.
                    sh.media_cmd(MediaCommand::Bridge { session: self.key });
                }
                out
            }
        }
    }
}
