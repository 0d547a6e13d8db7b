//! One call's media in the relay: two legs (`leg.rs`) and, in a three-party
//! call, a third; who hears what, and the per-packet path (latch, DTMF, record
//! tap, rewrite, forward, or into the mix).
//!
//! Why: the relay thread's loop only finds the session a ready socket belongs to;
//! everything about one packet happens here, on a buffer the loop owns, with no
//! allocation.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tracing::trace;

use super::Stats;
use super::leg::{Admit, LegIo, send_dtmf};
use super::player::{Player, Tick};
use crate::media::SourceId;
use crate::media::command::{Leg, MediaEvent, SessionId};
use crate::media::mix::Mix;
use crate::media::prompt::FRAME;
use crate::media::record::{Chunk, RecordTap};

/// RTP header length without CSRCs or extensions.
const HEADER: usize = 12;
/// Clock rate of G.711 and of telephone-event at 8 kHz.
pub(super) const CLOCK: u32 = 8000;
/// The player's source id in the caller's rewriter (legs use 0 and 1).
const PLAYER: SourceId = SourceId(2);
/// The mix's source id in every leg's rewriter (the DTMF generator has 3).
const MIXER: SourceId = SourceId(4);

/// Who the caller hears.
#[derive(Debug)]
pub(super) enum Source {
    Silence,
    Callee,
    Play(Box<Player>),
}

/// A call's media.
#[derive(Debug)]
pub(super) struct Session {
    pub id: SessionId,
    pub legs: [LegIo; 2],
    /// A third party, while the agent adds one ([`Leg::C`]).
    pub third: Option<Box<LegIo>>,
    /// Every leg hears the sum of the others (three-party call, transcoding).
    pub mix: Option<Box<Mix>>,
    /// The caller and the callee use different laws (a spliced call): the mix
    /// stays on whatever the third party does.
    pub transcode: bool,
    pub source: Source,
    /// The callee hears the caller.
    pub bridged: bool,
    pub opened: Instant,
    /// When silence was last reported.
    pub timeout_reported: Option<Instant>,
    pub recording: bool,
    /// The number of the playlist playing (or last played).
    play: u32,
    seed: u64,
}

impl Session {
    pub fn new(id: SessionId, legs: [LegIo; 2], now: Instant, seed: u64, recording: bool) -> Self {
        Session {
            id,
            legs,
            third: None,
            mix: None,
            transcode: false,
            source: Source::Silence,
            bridged: false,
            opened: now,
            timeout_reported: None,
            recording,
            play: 0,
            seed,
        }
    }

    pub fn play(&mut self, play: u32, list: crate::media::command::Playlist) {
        self.play = play;
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let s = self.seed;
        self.source = Source::Play(Box::new(Player::new(
            list,
            (s >> 16) as u32,
            s as u16,
            (s >> 32) as u32,
        )));
    }

    /// A leg's sockets and phone, if the session has that leg.
    pub fn leg(&self, leg: Leg) -> Option<&LegIo> {
        match leg {
            Leg::A | Leg::B => Some(&self.legs[leg.index()]),
            Leg::C => self.third.as_deref(),
        }
    }

    pub fn leg_mut(&mut self, leg: Leg) -> Option<&mut LegIo> {
        match leg {
            Leg::A | Leg::B => Some(&mut self.legs[leg.index()]),
            Leg::C => self.third.as_deref_mut(),
        }
    }

    /// Every leg the session has, with its name.
    pub fn all_legs_mut(&mut self) -> impl Iterator<Item = (Leg, &mut LegIo)> {
        let [a, b] = &mut self.legs;
        [(Leg::A, a), (Leg::B, b)]
            .into_iter()
            .chain(self.third.as_deref_mut().map(|c| (Leg::C, c)))
    }

    /// Starts (or ends) mixing; a transcoding call keeps mixing. `seed`
    /// makes the mix's own stream.
    pub fn set_mix(&mut self, on: bool, seed: u64) {
        if !on && !self.transcode {
            self.mix = None;
            return;
        }
        if !on {
            return;
        }
        if self.mix.is_none() {
            self.mix = Some(Box::new(Mix::new(
                (seed >> 8) as u16,
                (seed >> 24) as u32,
                (seed >> 40) as u32 | 1,
            )));
        }
        // Whoever was playing to the caller stops: a mix is a conversation.
        self.source = Source::Callee;
        self.bridged = true;
    }

    fn ms_since_open(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.opened).as_millis() as u64
    }

    /// One RTP packet `buf[..len]` arrived on `leg` from `src`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_rtp(
        &mut self,
        leg: Leg,
        buf: &mut [u8],
        len: usize,
        src: SocketAddr,
        now: Instant,
        stats: &Stats,
        tap: &RecordTap,
        events: &mut dyn FnMut(MediaEvent),
    ) {
        let i = leg.index();
        let now_ms = self.ms_since_open(now);
        let mixing = self.mix.is_some();
        {
            let Some(io) = (match leg {
                Leg::A | Leg::B => Some(&mut self.legs[i]),
                Leg::C => self.third.as_deref_mut(),
            }) else {
                return;
            };
            let Some(remote) = io.remote else {
                // No SDP from this phone yet: nobody to latch onto.
                stats.inc(&stats.dropped_unknown);
                return;
            };
            // Only real RTP may latch a leg.
            if len < HEADER || buf[0] >> 6 != 2 {
                stats.inc(&stats.dropped_malformed);
                return;
            }
            let Some(header) = header_len(&buf[..len]) else {
                stats.inc(&stats.dropped_malformed);
                return;
            };
            if !admitted(io.accept(src, remote, now), stats) {
                return;
            }
            if io.connected != io.wanted_connection() {
                io.sync_connection();
            }
            let pt = buf[1] & 0x7f;
            if Some(pt) == remote.dtmf_pt {
                let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                if let Ok(done) = io.dtmf.on_packet(ts, &buf[header..len], now_ms) {
                    for d in done {
                        events(MediaEvent::Digit {
                            session: self.id,
                            leg,
                            digit: d.digit,
                        });
                    }
                }
            } else if let Some(codec) = crate::media::Codec::from_payload_type(pt) {
                // In a mix the callee channel records what the caller hears
                // (the mix, in `tick`), not each party apart.
                if self.recording && (leg == Leg::A || (leg == Leg::B && !mixing)) {
                    tap.send(Chunk::audio(
                        self.id,
                        i as u8,
                        now_ms,
                        codec,
                        &buf[header..len],
                    ));
                }
                if let Some(mix) = self.mix.as_mut() {
                    mix.push(i, codec, &buf[header..len]);
                }
            }
        }
        if mixing {
            return;
        }
        let forward = match leg {
            Leg::A => self.bridged,
            Leg::B => matches!(self.source, Source::Callee),
            Leg::C => false,
        };
        let Some(to) = leg.other().filter(|_| forward) else {
            return;
        };
        let in_dtmf = self.legs[i].remote.and_then(|r| r.dtmf_pt);
        let out = &mut self.legs[to.index()];
        if out.dtmf_out.is_some() {
            // Audio is muted while the gateway plays a digit to this phone.
            return;
        }
        let (Some(dest), Some(remote)) = (out.dest(), out.remote) else {
            return;
        };
        let pkt = &mut buf[..len];
        if in_dtmf == Some(pkt[1] & 0x7f) {
            match remote.dtmf_pt {
                // telephone-event has its own number on each leg.
                Some(pt) => pkt[1] = (pkt[1] & 0x80) | pt,
                None => return,
            }
        }
        match out.out.rewrite(pkt, SourceId(i as u32), now_ms, CLOCK) {
            Ok(crate::media::Verdict::Forward) => out.send(pkt, dest, stats),
            Ok(crate::media::Verdict::DropBeforeSwitch) => stats.inc(&stats.dropped_late),
            Err(_) => stats.inc(&stats.dropped_malformed),
        }
    }

    /// One RTCP packet arrived on `leg`: relayed to the other leg's RTCP address.
    pub fn on_rtcp(
        &mut self,
        leg: Leg,
        buf: &mut [u8],
        len: usize,
        src: SocketAddr,
        now: Instant,
        stats: &Stats,
    ) {
        let mixing = self.mix.is_some();
        let Some(io) = self.leg_mut(leg) else {
            return;
        };
        let Some(remote) = io.remote else {
            stats.inc(&stats.dropped_unknown);
            return;
        };
        if len < 8 || buf[0] >> 6 != 2 {
            stats.inc(&stats.dropped_malformed);
            return;
        }
        if !admitted(io.accept_rtcp(src, remote, now), stats) {
            return;
        }
        // A mix is its own source towards every phone: reports about one
        // phone's stream mean nothing to another's.
        let bridged = !mixing
            && match leg {
                Leg::A => self.bridged,
                Leg::B => matches!(self.source, Source::Callee),
                Leg::C => false,
            };
        let Some(to) = leg.other().filter(|_| bridged && len >= 8) else {
            return;
        };
        // The sender's SSRC becomes the one the other phone sees on RTP from us.
        let other = &self.legs[to.index()];
        let Some(dest) = other.dest_rtcp() else {
            return;
        };
        // The SSRC the receiving phone sees on our RTP towards it.
        let ssrc = other.out.out_ssrc();
        let pt = buf[1];
        if (200..=201).contains(&pt) {
            buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
        }
        let sent = other.rtcp.send_to(&buf[..len], dest);
        count(sent, dest, stats);
    }

    /// Every 20 ms: the next frame of the caller's playlist, and DTMF ends that
    /// never came.
    pub fn tick(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        stats: &Stats,
        tap: &RecordTap,
        events: &mut dyn FnMut(MediaEvent),
    ) {
        let now_ms = self.ms_since_open(now);
        let id = self.id;
        for (leg, io) in self.all_legs_mut() {
            send_dtmf(io, buf, now_ms, stats);
            if io.dtmf.poll_timeout().is_some()
                && let Some(d) = io.dtmf.poll(now_ms)
            {
                events(MediaEvent::Digit {
                    session: id,
                    leg,
                    digit: d.digit,
                });
            }
        }
        // A prompt to the caller (the survey) takes over from the mix.
        if self.mix.is_some() && matches!(self.source, Source::Callee) {
            return self.tick_mix(now_ms, buf, stats, tap);
        }
        let Source::Play(player) = &mut self.source else {
            return;
        };
        let a = &mut self.legs[0];
        let Some(remote) = a.remote else {
            return;
        };
        let codec = remote.codec;
        let (seq, ts, ssrc) = (player.seq, player.ts, player.ssrc);
        match player.tick(codec, &mut buf[HEADER..]) {
            Tick::Frame(n) => {
                buf[0] = 0x80;
                buf[1] = codec.payload_type();
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                buf[4..8].copy_from_slice(&ts.to_be_bytes());
                buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
                let pkt = &mut buf[..HEADER + n];
                let Some(dest) = a.dest() else {
                    return;
                };
                if let Ok(crate::media::Verdict::Forward) =
                    a.out.rewrite(pkt, PLAYER, now_ms, CLOCK)
                {
                    stats.inc(&stats.played);
                    a.send(pkt, dest, stats);
                }
            }
            Tick::Done => {
                self.source = Source::Silence;
                events(MediaEvent::PlayDone {
                    session: self.id,
                    play: self.play,
                });
            }
            Tick::Idle => {}
        }
    }

    /// One frame of the mix to every leg with a phone, each in its own law;
    /// the caller's frame is also the recording's callee channel.
    fn tick_mix(&mut self, now_ms: u64, buf: &mut [u8], stats: &Stats, tap: &RecordTap) {
        let Some(mut mix) = self.mix.take() else {
            return;
        };
        mix.tick();
        let (id, recording) = (self.id, self.recording);
        for (leg, io) in self.all_legs_mut() {
            let (Some(remote), Some(dest)) = (io.remote, io.dest()) else {
                continue;
            };
            if io.dtmf_out.is_some() {
                continue; // a digit plays to this phone
            }
            let codec = remote.codec;
            let n = mix.encode_for(leg.index(), codec, &mut buf[HEADER..HEADER + FRAME]);
            if leg == Leg::A && recording {
                tap.send(Chunk::audio(id, 1, now_ms, codec, &buf[HEADER..HEADER + n]));
            }
            buf[0] = 0x80;
            buf[1] = codec.payload_type();
            buf[2..4].copy_from_slice(&mix.seq.to_be_bytes());
            buf[4..8].copy_from_slice(&mix.ts.to_be_bytes());
            buf[8..12].copy_from_slice(&mix.ssrc.to_be_bytes());
            let pkt = &mut buf[..HEADER + n];
            if let Ok(crate::media::Verdict::Forward) = io.out.rewrite(pkt, MIXER, now_ms, CLOCK) {
                io.send(pkt, dest, stats);
            }
        }
        self.mix = Some(mix);
    }

    /// The newest sign of life from any leg (or the opening).
    pub fn last_activity(&self) -> Instant {
        self.legs
            .iter()
            .chain(self.third.as_deref())
            .filter_map(|l| l.last_rx)
            .max()
            .unwrap_or(self.opened)
            .max(self.opened)
    }
}

/// The RTP header's length with CSRCs and extension (RFC 3550 §5.1, §5.3.1).
fn header_len(pkt: &[u8]) -> Option<usize> {
    let cc = usize::from(pkt[0] & 0x0f);
    let mut len = HEADER + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*pkt.last()?))?;
    }
    (len <= end).then_some(len)
}

pub(super) fn count(sent: io::Result<usize>, dest: SocketAddr, stats: &Stats) {
    match sent {
        Ok(_) => stats.inc(&stats.packets_out),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.inc(&stats.dropped_send),
        Err(e) => {
            trace!(error = %e, %dest, "RTP send failed");
            stats.inc(&stats.dropped_send);
        }
    }
}

/// Whether latching let a packet through; a dropped one is counted by why.
fn admitted(admit: Admit, stats: &Stats) -> bool {
    match admit {
        Admit::Yes => true,
        Admit::Held => {
            stats.inc(&stats.dropped_unknown);
            false
        }
        Admit::Stranger => {
            stats.inc(&stats.dropped_foreign);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::header_len;

    #[test]
    fn header_lengths() {
        let mut p = vec![0x80u8, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        p.extend([0xd5; 160]);
        assert_eq!(header_len(&p), Some(12));
        p[0] = 0x82; // two CSRCs
        assert_eq!(header_len(&p), Some(20));
        p[0] = 0x90; // an extension of one word
        p[14] = 0;
        p[15] = 1;
        assert_eq!(header_len(&p), Some(20));
        p[0] = 0xa0; // padding longer than the packet
        *p.last_mut().unwrap() = 250;
        assert_eq!(header_len(&p), None);
    }
}
