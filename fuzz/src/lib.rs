//! Shared harness code for the fuzz targets and the seed generator.
//!
//! The `core_input` target interprets its input as a list of operations on one
//! [`Core`] with a virtual clock (see [`Harness`] and [`op`] for the encoding), so the
//! seed generator (`examples/gen_seeds.rs`) and the target run exactly the same code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_gateway::call::{Core, CoreConfig};
use hotline_gateway::media::command::{Leg, MediaEvent};
use hotline_gateway::sip::framing::{self, Frame};

use hotline_gateway::sip::{Peer, Transmit, Transport};

/// Separates operations in a `core_input` input.
pub const SEP: &[u8] = b"\x00\xff\x00";

/// The peers an operation can come from (all loopback). Index 0 is the callee
/// target of line 12345 in the default dialplan, so the fuzzer can answer the
/// gateway's own INVITEs; index 1 is the caller the seeds use.
pub const PEERS: [&str; 4] = [
    "127.0.0.1:5070",
    "127.0.0.1:40000",
    "127.0.0.1:40001",
    "[::1]:5062",
];
pub const CALLEE: usize = 0;
pub const CALLER: usize = 1;

/// Clock steps selectable by an `advance` operation: around T1, T2, T4, 64·T1,
/// Timer D, the 60 s ring timeout and the 600 s maximum call duration.
pub const STEPS: [Duration; 16] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_millis(499),
    Duration::from_millis(500),
    Duration::from_millis(501),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(5),
    Duration::from_secs(16),
    Duration::from_secs(32),
    Duration::from_millis(32_001),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(600),
];

/// The shipped prompts, converted once per process (not per input).
fn prompts() -> Arc<hotline_gateway::media::Prompts> {
    static P: std::sync::OnceLock<Arc<hotline_gateway::media::Prompts>> =
        std::sync::OnceLock::new();
    P.get_or_init(|| Arc::new(hotline_gateway::media::Prompts::embedded()))
        .clone()
}

/// The core as `core()` in tests/it/corpus.rs builds it, with media anchored
/// (the shipped prompts, the default `[media]` settings): the relay is played by
/// the input (`next_timers` operations with a high argument inject its events).
pub fn core() -> Core {
    let plan = hotline_gateway::dialplan::embedded_default()
    .expect("the default dialplan parses");
    // The default [media] settings, as a gateway with no [media] section runs.
    let media = hotline_gateway::transport::media::core_media_config(
        &hotline_gateway::config::MediaSection::default(),
        "127.0.0.1".parse().unwrap(),
        prompts(),
    );
    let cfg = CoreConfig {
        max_calls: 10,
        max_duration: Duration::from_secs(600),
        media: Some(media),
        ..Default::default()
    };
    Core::new(cfg, Arc::new(plan), 1, Instant::now())
}

pub fn peer(index: usize, transport: Transport) -> Peer {
    Peer {
        transport,
        addr: PEERS[index % PEERS.len()].parse::<SocketAddr>().unwrap(),
    }
}

/// Builders of single operations (the first byte of a chunk selects the action).
///
/// | `b & 3` | action | argument |
/// |---|---|---|
/// | 0 | rest of chunk is a UDP datagram (`handle_datagram`) | peer `(b >> 2) & 3` |
/// | 1 | rest of chunk is a TCP stream segment: framed with `frame_stream`, each frame to `handle_frame`, unframeable heads to `reject_unparsed` | peer `(b >> 2) & 3` |
/// | 2 | advance the clock by `STEPS[(b >> 2) & 15]`, then `handle_timeout` | |
/// | 3 | jump to the next deadline (`poll_timeout`) and fire it, `((b >> 2) & 15) + 1` times | |
pub mod op {
    pub fn udp(peer: usize, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![(peer as u8 & 3) << 2];
        v.extend_from_slice(msg);
        v
    }
    pub fn tcp(peer: usize, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![1 | (peer as u8 & 3) << 2];
        v.extend_from_slice(msg);
        v
    }
    /// Advance by `STEPS[step]`.
    pub fn advance(step: usize) -> Vec<u8> {
        vec![2 | (step as u8 & 15) << 2]
    }
    /// Fire the next `n` (1..=16) deadlines.
    pub fn next_timers(n: usize) -> Vec<u8> {
        vec![3 | ((n.clamp(1, 16) - 1) as u8) << 2]
    }
}

/// Joins operations into one `core_input` input.
pub fn encode(ops: &[Vec<u8>]) -> Vec<u8> {
    ops.join(SEP)
}

/// Splits a `core_input` input into its operations.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = find(rest, SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One core on a virtual clock.
#[derive(Debug)]
pub struct Harness {
    pub core: Core,
    pub now: Instant,
    pub start: Instant,
    /// Every record drained so far (kept for the seed generator's checks).
    pub records: usize,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let now = Instant::now();
        Harness {
            core: core(),
            now,
            start: now,
            records: 0,
        }
    }

    /// Applies one operation; returns what the core sent.
    pub fn apply(&mut self, chunk: &[u8]) -> Vec<Transmit> {
        let Some((&b, rest)) = chunk.split_first() else {
            return Vec::new();
        };
        let arg = usize::from(b >> 2);
        match b & 3 {
            0 => {
                self.core
                    .handle_datagram(self.now, rest, peer(arg & 3, Transport::Udp));
            }
            1 => {
                let p = peer(arg & 3, Transport::Tcp);
                let mut buf = rest;
                loop {
                    buf = &buf[framing::skip_keepalive(buf)..];
                    if buf.is_empty() {
                        break;
                    }
                    match framing::frame_stream(buf, 65_535) {
                        Frame::Incomplete => break,
                        Frame::Complete(n) => {
                            self.core.handle_frame(self.now, &buf[..n], p);
                            buf = &buf[n..];
                        }
                        Frame::Invalid { len, error } => {
                            self.core
                                .reject_unparsed(&buf[..len], p, &error.to_string());
                            buf = &buf[len..];
                        }
                    }
                }
            }
            2 => {
                self.now += STEPS[arg & 15];
                self.core.handle_timeout(self.now);
            }
            _ if arg >= 16 => {
                // A relay event for one of the first calls.
                let session = u64::from(rest.first().copied().unwrap_or(0) % 8) + 1;
                let ev = match arg >> 4 {
                    1 => MediaEvent::Timeout { session },
                    2 => MediaEvent::Digit {
                        session,
                        leg: Leg::A,
                        digit: char::from(b'0' + (arg & 15) as u8 % 10),
                    },
                    3 => MediaEvent::Refused { session },
                    // Current or stale playlists (numbers are small in a fuzz run).
                    _ => MediaEvent::PlayDone {
                        session,
                        play: u32::from(rest.get(1).copied().unwrap_or(0) % 4),
                    },
                };
                self.core.handle_media(self.now, ev);
            }
            _ => {
                for _ in 0..=(arg & 15) {
                    let Some(at) = self.core.poll_timeout() else {
                        break;
                    };
                    self.now = self.now.max(at);
                    self.core.handle_timeout(self.now);
                }
            }
        }
        self.drain()
    }

    fn drain(&mut self) -> Vec<Transmit> {
        let out: Vec<Transmit> = std::iter::from_fn(|| self.core.poll_transmit()).collect();
        while self.core.poll_media().is_some() {}
        while self.core.poll_offer().is_some() {}
        while self.core.poll_record().is_some() {
            self.records += 1;
        }
        out
    }

    /// Runs every timer out, as a quiet network would: each deadline in turn. Then
    /// nothing may be left: no transaction, no call, no deadline.
    pub fn finish(&mut self) -> Result<(), String> {
        let drain_start = self.now;
        let mut fired = 0u32;
        while let Some(at) = self.core.poll_timeout() {
            if at > drain_start + Duration::from_secs(24 * 3600) {
                return Err(format!(
                    "timers never end: a deadline {:?} after the input ended ({} transactions, {} calls)",
                    at - drain_start,
                    self.core.transactions(),
                    self.core.active_calls()
                ));
            }
            fired += 1;
            if fired > 100_000 {
                return Err(format!(
                    "the clock does not move: {fired} deadlines, now {:?} after the input ended",
                    self.now - drain_start
                ));
            }
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        let (txs, calls) = (self.core.transactions(), self.core.active_calls());
        if txs != 0 || calls != 0 {
            return Err(format!(
                "leak after every timer ran out ({:?} after the input ended): {txs} transactions, {calls} calls",
                self.now - drain_start
            ));
        }
        Ok(())
    }
}

/// The `core_input` target: apply every operation, then check for leaks.
pub fn run_core_input(data: &[u8]) {
    let mut h = Harness::new();
    for chunk in split(data) {
        h.apply(chunk);
    }
    if let Err(e) = h.finish() {
        panic!("{e}");
    }
}
