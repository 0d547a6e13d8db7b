//! One leg of a call in the relay: its two sockets, what is known of its
//! phone, strict latching, the connected-socket filter, and the digits the
//! gateway generates towards the phone.
//!
//! Strict latching (DESIGN.md §7, media): a leg hears RTP only from the address
//! its SDP names, or from any port of the IP address its SIP signalling came
//! from (a phone behind NAT, whose SDP names a private address). Among those
//! allowed sources the first to send latches the leg; the SDP's own address
//! always takes it back, and another allowed source may take over once the
//! latched one has been silent for a while (NAT rebinding, a restarted phone).
//! Everything else is dropped and counted (`dropped_foreign`), and never
//! latches. RTCP follows the same rules with the SDP's RTCP address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::UdpSocket;
use tracing::debug;

use super::Stats;
use super::session::{CLOCK, count};
use crate::media::command::Remote;
use crate::media::{DtmfReceiver, DtmfSender, Rewriter, SourceId};

/// The DTMF generator's source id in a leg's rewriter.
const DIGITS: SourceId = SourceId(3);

/// An RFC 4733 event with no end packet is over after this much silence.
const DTMF_END_TIMEOUT_MS: u64 = 300;
/// How long a generated digit lasts.
const DTMF_OUT_MS: u32 = 160;
/// A latched source silent this long may be replaced by another allowed one.
pub(super) const RELATCH_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
/// The same for RTCP, which a phone sends only every few seconds (RFC 3550
/// §6.2: 5 s minimum interval, randomised up to 1.5 times).
const RTCP_RELATCH_AFTER: std::time::Duration = std::time::Duration::from_secs(16);
/// Digits waiting to be generated towards one phone.
const DIGIT_QUEUE: usize = 16;

/// One leg: its sockets and what is known of its phone.
#[derive(Debug)]
pub(super) struct LegIo {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub remote: Option<Remote>,
    /// The IP address the leg's SIP signalling came from: any port of it may
    /// send (a phone behind NAT sends from its public address, not its SDP's).
    signal: Option<IpAddr>,
    /// The address the phone actually sends from (symmetric latching, for NAT).
    latched: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    /// When the latched RTCP source last sent.
    rtcp_rx: Option<Instant>,
    /// The address `rtp` is connected to: the latched source, when it is the
    /// SDP's own address (see [`LegIo::sync_connection`]).
    pub(super) connected: Option<SocketAddr>,
    /// An address `connect` failed for: not tried again until a new SDP.
    connect_failed: Option<SocketAddr>,
    /// Rewrites everything sent towards this leg onto one RTP stream.
    pub(super) out: Rewriter,
    pub last_rx: Option<Instant>,
    pub(super) dtmf: DtmfReceiver,
    /// A digit the gateway sends this phone (RFC 4733): its events replace the
    /// audio towards it until the last end packet.
    pub(super) dtmf_out: Option<DtmfOut>,
    /// Digits after it (allocated once with the leg).
    digits: std::collections::VecDeque<char>,
}

/// An RFC 4733 event being generated: the generator's own stream position.
#[derive(Debug)]
pub(super) struct DtmfOut {
    sender: DtmfSender,
    seq: u16,
    /// All packets of one event carry its start timestamp (RFC 4733 §2.5.1.1).
    ts: u32,
    ssrc: u32,
}

impl LegIo {
    pub fn new(rtp: UdpSocket, rtcp: UdpSocket, seed: u64) -> LegIo {
        LegIo {
            rtp,
            rtcp,
            remote: None,
            signal: None,
            latched: None,
            latched_rtcp: None,
            rtcp_rx: None,
            connected: None,
            connect_failed: None,
            out: Rewriter::new(seed as u32, (seed >> 32) as u16, (seed >> 40) as u32),
            last_rx: None,
            dtmf: DtmfReceiver::new(DTMF_END_TIMEOUT_MS),
            dtmf_out: None,
            digits: std::collections::VecDeque::with_capacity(DIGIT_QUEUE),
        }
    }

    /// Starts sending `digit` to this phone; false when it takes no
    /// telephone-event (or the digit is not one).
    pub fn send_digit(&mut self, digit: char, seed: u64) -> bool {
        if self.remote.and_then(|r| r.dtmf_pt).is_none() || DtmfSender::new(digit, 1).is_err() {
            return false;
        }
        if self.dtmf_out.is_some() {
            // After the digit in progress (its end packets must go out first).
            if self.digits.len() < DIGIT_QUEUE {
                self.digits.push_back(digit);
            }
            return true;
        }
        let Ok(sender) = DtmfSender::new(digit, DTMF_OUT_MS) else {
            return false;
        };
        self.dtmf_out = Some(DtmfOut {
            sender,
            seq: seed as u16,
            ts: (seed >> 16) as u32,
            ssrc: (seed >> 32) as u32,
        });
        true
    }

    /// Where packets for this phone go: where it sends from, else its SDP.
    pub(super) fn dest(&self) -> Option<SocketAddr> {
        self.latched.or(self.remote.map(|r| r.rtp))
    }

    pub(super) fn dest_rtcp(&self) -> Option<SocketAddr> {
        self.latched_rtcp.or(self.remote.map(|r| r.rtcp))
    }

    /// The phone's SDP, and the IP address its signalling came from (`None`:
    /// only the SDP's own address may send).
    pub fn set_remote(&mut self, remote: Remote, signal: Option<IpAddr>) {
        let signal = signal.map(|ip| ip.to_canonical());
        if self.remote.map(|r| (r.rtp, r.rtcp)) != Some((remote.rtp, remote.rtcp))
            || self.signal != signal
        {
            // A new SDP address (or signalling source): learn the source again.
            self.latched = None;
            self.latched_rtcp = None;
            self.rtcp_rx = None;
            self.connect_failed = None;
        }
        self.remote = Some(remote);
        self.signal = signal;
        self.sync_connection();
    }

    /// Whether `src` may send on this leg at all: the SDP's address `sdp`, or
    /// any port of the signalling source IP (a phone behind NAT, whose SDP may
    /// name its private address, or its public one with a port the NAT does not
    /// keep). The SDP's address always wins the latch.
    fn allowed(&self, src: SocketAddr, sdp: SocketAddr) -> bool {
        src == sdp || self.signal.is_some_and(|ip| ip == src.ip().to_canonical())
    }

    /// The address the RTP socket should be connected to: the latched source
    /// when it is the address the phone's SDP names. A connected UDP socket
    /// sends without a route lookup per packet and the kernel drops other
    /// sources before they reach the relay; a phone behind NAT (latched
    /// elsewhere) stays unconnected, so that its SDP address can still take the
    /// leg back at once.
    pub(super) fn wanted_connection(&self) -> Option<SocketAddr> {
        self.latched
            .filter(|a| self.remote.is_some_and(|r| r.rtp == *a))
            .filter(|a| self.connect_failed != Some(*a))
    }

    /// Connects or disconnects the RTP socket to match [`Self::wanted_connection`].
    pub(super) fn sync_connection(&mut self) {
        let want = self.wanted_connection();
        if want == self.connected {
            return;
        }
        if self.connected.take().is_some()
            && let Err(e) = disconnect(&self.rtp)
        {
            // Sends carry their address anyway; only the kernel's filter stays.
            debug!(error = %e, "RTP socket could not be disconnected");
        }
        if let Some(a) = want {
            match self.rtp.connect(a) {
                Ok(()) => self.connected = Some(a),
                Err(e) => {
                    debug!(error = %e, %a, "RTP socket could not be connected");
                    self.connect_failed = Some(a);
                }
            }
        }
    }

    /// A connected phone silent for [`RELATCH_AFTER`]: the socket hears every
    /// source again, so that a phone that moved can latch anew (from an
    /// allowed address: see [`Self::accept`]).
    pub fn release_if_stale(&mut self, now: Instant) {
        let stale = self
            .last_rx
            .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER);
        if self.connected.is_some() && stale {
            // Whoever sends next latches (sends meanwhile go to the SDP's
            // address, the same one); a refreshed SDP does not reconnect.
            self.latched = None;
            self.sync_connection();
        }
    }

    /// Strict symmetric latching: whether an RTP packet from `src` is this
    /// phone's. Only allowed sources count (the SDP's address, any port of the
    /// signalling IP); the first of them after an SDP latches; the SDP's own
    /// address always wins; a latched source silent for [`RELATCH_AFTER`]
    /// gives way to another allowed one (NAT rebinding, a restarted phone).
    pub(super) fn accept(&mut self, src: SocketAddr, remote: Remote, now: Instant) -> Admit {
        if !self.allowed(src, remote.rtp) {
            return Admit::Stranger;
        }
        let stale = self
            .last_rx
            .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER);
        let admit = latch(&mut self.latched, src, src == remote.rtp || stale);
        if admit == Admit::Yes {
            self.last_rx = Some(now);
        }
        admit
    }

    /// [`Self::accept`] for RTCP: the SDP's RTCP address or the signalling IP,
    /// and a longer silence before another port may take over.
    pub(super) fn accept_rtcp(&mut self, src: SocketAddr, remote: Remote, now: Instant) -> Admit {
        if !self.allowed(src, remote.rtcp) {
            return Admit::Stranger;
        }
        let stale = self
            .rtcp_rx
            .is_none_or(|t| now.saturating_duration_since(t) >= RTCP_RELATCH_AFTER);
        let admit = latch(&mut self.latched_rtcp, src, src == remote.rtcp || stale);
        if admit == Admit::Yes {
            self.rtcp_rx = Some(now);
        }
        admit
    }

    /// Sends `pkt` to this phone from this leg's RTP socket.
    pub(super) fn send(&self, pkt: &[u8], dest: SocketAddr, stats: &Stats) {
        let sent = if self.connected == Some(dest) {
            self.rtp.send(pkt)
        } else {
            self.rtp.send_to(pkt, dest)
        };
        count(sent, dest, stats);
    }

    pub fn forget(&mut self) {
        self.remote = None;
        self.signal = None;
        self.latched = None;
        self.latched_rtcp = None;
        self.rtcp_rx = None;
        self.sync_connection();
    }
}

/// What latching makes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// The leg's phone: relay it.
    Yes,
    /// An allowed source, while another allowed one holds the leg.
    Held,
    /// Neither the SDP's address nor the signalling IP: never relayed, never latched.
    Stranger,
}

/// Latches `slot` onto the allowed source `src`: kept if it is the latched
/// one, taken when nothing is latched or when `may_take` (the SDP's own
/// address, or the latched source has fallen silent).
fn latch(slot: &mut Option<SocketAddr>, src: SocketAddr, may_take: bool) -> Admit {
    match *slot {
        Some(a) if a == src => Admit::Yes,
        Some(_) if !may_take => Admit::Held,
        _ => {
            *slot = Some(src);
            Admit::Yes
        }
    }
}

/// The next packet of a digit the gateway is sending to this phone.
pub(super) fn send_dtmf(io: &mut LegIo, buf: &mut [u8], now_ms: u64, stats: &Stats) {
    if io.dtmf_out.is_none() {
        return;
    }
    let (Some(dest), Some(pt)) = (io.dest(), io.remote.and_then(|r| r.dtmf_pt)) else {
        io.dtmf_out = None;
        return;
    };
    let Some(out) = io.dtmf_out.as_mut() else {
        return;
    };
    let Some(p) = out.sender.next() else {
        io.dtmf_out = None;
        if let Some(d) = io.digits.pop_front() {
            let seed = u64::from(io.out.out_ssrc()) << 16 ^ u64::from(d);
            io.send_digit(d, seed);
        }
        return;
    };
    buf[0] = 0x80;
    buf[1] = pt | if p.marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&out.seq.to_be_bytes());
    buf[4..8].copy_from_slice(&out.ts.to_be_bytes());
    buf[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
    buf[12..16].copy_from_slice(&p.payload);
    out.seq = out.seq.wrapping_add(1);
    let pkt = &mut buf[..16];
    if let Ok(crate::media::Verdict::Forward) = io.out.rewrite(pkt, DIGITS, now_ms, CLOCK) {
        io.send(pkt, dest, stats);
    }
}

/// Dissolves a UDP socket's connection (`connect` with `AF_UNSPEC`, which the
/// standard library has no call for); the socket keeps its port.
fn disconnect(sock: &UdpSocket) -> io::Result<()> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let unspec = libc::sockaddr_in {
        sin_family: libc::AF_UNSPEC as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    nix::sys::socket::connect(
        sock.as_raw_fd(),
        &nix::sys::socket::SockaddrIn::from(unspec),
    )
    .map_err(io::Error::from)
}
