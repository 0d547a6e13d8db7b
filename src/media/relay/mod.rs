//! The relay thread: every anchored call's RTP and RTCP, on one event loop.
//!
//! ```text
//!  Core::poll_media ─► MediaHandle::send ─► command queue ─┐ (mio Waker)
//!                                                          ▼
//!   UDP sockets (4 per call) ──readable──► relay loop: strict latch, DTMF, record tap,
//!                                          rewrite, send_to the other leg
//!   every 20 ms: playlists → caller;  every 1 s: media timeouts
//!                                          │
//!  Core::handle_media ◄── tokio mpsc ◄─────┘ MediaEvent (digit, timeout, played)
//! ```
//!
//! Why its own thread and loop: a relay is judged by packets per second per core.
//! One nonblocking socket pair per leg, edge-triggered readiness, a single packet
//! buffer reused for every datagram (no allocation per packet), and no async
//! machinery between the kernel and the rewrite.

mod batch;
mod leg;
mod player;
mod session;
mod third;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, warn};

use super::MediaError;
use super::command::{Leg, MediaCommand, MediaEvent, SessionId};
use super::record::RecordTap;
use leg::LegIo;
use session::{Session, Source};

/// Commands in flight from the core to the relay.
const COMMANDS: usize = 65_536;
const WAKER: Token = Token(usize::MAX);
/// Playout and DTMF-end clock.
const TICK: Duration = Duration::from_millis(20);
/// How often silent calls are looked for.
const TIMEOUT_SCAN: Duration = Duration::from_secs(1);
/// Ids of sessions closed before their Open, remembered at most.
const CLOSED_EARLY_MAX: usize = 65_536;
/// Largest datagram relayed.
const MAX_PACKET: usize = 2048;
/// Poll tokens per session slot: RTP and RTCP of legs A, B and C.
const SLOT_TOKENS: usize = 6;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The address the relay's sockets bind to (and SDP names).
    pub bind: IpAddr,
    /// A call with no RTP from any leg for this long is reported.
    pub timeout: Duration,
    /// After a wake-up that found packets, wait this long before looking again,
    /// so that one wake-up serves every packet that arrived meanwhile (interrupt
    /// moderation). Adds at most this much delay; zero wakes per packet.
    pub coalesce: Duration,
}

/// Counters of the relay, read by `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub played: AtomicU64,
    /// From an allowed address while another holds the leg, or before any SDP.
    pub dropped_unknown: AtomicU64,
    /// From an address that is neither the leg's SDP address nor its
    /// signalling source IP (spraying, injection attempts): never relayed.
    pub dropped_foreign: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_late: AtomicU64,
    pub dropped_send: AtomicU64,
    pub sessions: AtomicU64,
    pub commands_dropped: AtomicU64,
    pub events_dropped: AtomicU64,
    /// Recording chunks the writer could not take (the recorder's counter).
    pub record_dropped: Arc<AtomicU64>,
}

impl Stats {
    fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The core's side of the relay: commands in, counters out.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    tx: SyncSender<MediaCommand>,
    /// `Close` orders that found the queue full: never dropped, or the call's
    /// sockets would stay bound for good.
    closes: Arc<Mutex<Vec<SessionId>>>,
    waker: Arc<Waker>,
    pub stats: Arc<Stats>,
    pending: Arc<AtomicU64>,
}

impl MediaHandle {
    /// Queues a command; [`flush`](Self::flush) wakes the relay. A full queue
    /// drops the command (`RelayBusy`), except `Close`, which waits aside.
    pub fn send(&self, cmd: MediaCommand) -> Result<(), MediaError> {
        match self.tx.try_send(cmd) {
            Ok(()) => {
                self.pending.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(MediaCommand::Close { session })) => {
                self.closes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(session);
                self.pending.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.stats.inc(&self.stats.commands_dropped);
                Err(MediaError::RelayBusy)
            }
            Err(TrySendError::Disconnected(_)) => Err(MediaError::RelayGone),
        }
    }

    /// Wakes the relay if commands were queued since the last flush.
    pub fn flush(&self) {
        if self.pending.swap(0, Ordering::Relaxed) > 0 {
            let _ = self.waker.wake();
        }
    }
}

/// Starts the relay thread. Events go to `events` (dropped and counted when full).
pub fn spawn(
    cfg: RelayConfig,
    tap: RecordTap,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
) -> io::Result<MediaHandle> {
    spawn_with_queue(cfg, tap, events, COMMANDS)
}

/// [`spawn`] with a command queue of `queue` orders.
fn spawn_with_queue(
    cfg: RelayConfig,
    tap: RecordTap,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    queue: usize,
) -> io::Result<MediaHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = sync_channel(queue);
    let closes = Arc::new(Mutex::new(Vec::new()));
    let stats = Arc::new(Stats {
        record_dropped: tap.dropped.clone(),
        ..Default::default()
    });
    let mut relay = Relay {
        cfg,
        poll,
        rx,
        closes: closes.clone(),
        closed_early: HashSet::new(),
        sessions: Vec::new(),
        free: Vec::new(),
        by_id: HashMap::new(),
        stats: stats.clone(),
        tap,
        events,
        seed: crate::util::seed::process_seed(),
    };
    std::thread::Builder::new()
        .name("media-relay".into())
        .spawn(move || relay.run())?;
    Ok(MediaHandle {
        tx,
        closes,
        waker,
        stats,
        pending: Default::default(),
    })
}

struct Relay {
    cfg: RelayConfig,
    poll: Poll,
    rx: Receiver<MediaCommand>,
    closes: Arc<Mutex<Vec<SessionId>>>,
    /// Sessions closed before their Open was seen (session ids are never reused).
    closed_early: HashSet<SessionId>,
    /// Slots; a socket's token is `slot * 6 + (leg * 2) + (0 RTP | 1 RTCP)`.
    sessions: Vec<Option<Session>>,
    free: Vec<usize>,
    by_id: HashMap<SessionId, usize>,
    stats: Arc<Stats>,
    tap: RecordTap,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    seed: u64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({} sessions)", self.by_id.len())
    }
}

impl Relay {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut buf = [0u8; MAX_PACKET];
        let mut batch = batch::Batch::new();
        let mut next_tick = Instant::now() + TICK;
        let mut next_scan = Instant::now() + TIMEOUT_SCAN;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                warn!(error = %e, "media relay poll failed; relay stops");
                return;
            }
            let mut packets = false;
            for ev in events.iter() {
                if ev.token() == WAKER {
                    if !self.commands() {
                        debug!("media relay: the core is gone; relay stops");
                        return;
                    }
                    continue;
                }
                packets = true;
                self.readable(ev.token().0, &mut batch);
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick += TICK;
                if next_tick < now {
                    next_tick = now + TICK; // the loop fell behind: skip, do not burst
                }
                self.tick(now, &mut buf);
            }
            if now >= next_scan {
                next_scan = now + TIMEOUT_SCAN;
                self.scan_timeouts(now);
            }
            if packets && !self.cfg.coalesce.is_zero() {
                std::thread::sleep(
                    self.cfg
                        .coalesce
                        .min(next_tick.saturating_duration_since(now)),
                );
            }
        }
    }

    fn emit(events: &tokio::sync::mpsc::Sender<MediaEvent>, stats: &Stats, ev: MediaEvent) {
        if events.try_send(ev).is_err() {
            stats.inc(&stats.events_dropped);
        }
    }

    /// Drains the command queue; false when the core has gone.
    fn commands(&mut self) -> bool {
        self.waiting_closes();
        loop {
            match self.rx.try_recv() {
                Ok(cmd) => self.command(cmd),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// The Closes that found the queue full. They go before the queue: the core
    /// hands a closed call's ports to new calls at once, and a new call's Open
    /// must find them free. Orders still queued for a closed call are no-ops;
    /// its Open, if it is still queued (the Close overtook it), is skipped.
    fn waiting_closes(&mut self) {
        let closes = std::mem::take(&mut *self.closes.lock().unwrap_or_else(|e| e.into_inner()));
        for session in closes {
            if self.by_id.contains_key(&session) {
                self.close(session);
            } else {
                if self.closed_early.len() >= CLOSED_EARLY_MAX {
                    // Opens that were refused never come: forget old ids.
                    self.closed_early.clear();
                }
                self.closed_early.insert(session);
            }
        }
    }

    fn command(&mut self, cmd: MediaCommand) {
        let now = Instant::now();
        match cmd {
            MediaCommand::Open {
                session,
                ports,
                record,
            } => self.open(now, session, ports, record),
            MediaCommand::Remote {
                session,
                leg,
                remote,
                signal,
            } => {
                if let Some(io) = self.session(session).and_then(|s| s.leg_mut(leg)) {
                    io.set_remote(remote, signal);
                }
            }
            MediaCommand::Play {
                session,
                play,
                playlist,
            } => {
                if let Some(s) = self.session(session) {
                    s.play(play, playlist);
                }
            }
            MediaCommand::Bridge { session } => {
                if let Some(s) = self.session(session) {
                    s.source = Source::Callee;
                    s.bridged = true;
                }
            }
            MediaCommand::DropLeg {
                session,
                leg: Leg::C,
            } => self.drop_third(session),
            MediaCommand::DropLeg { session, leg } => {
                if let Some(s) = self.session(session) {
                    s.legs[leg.index()].forget();
                    if leg == Leg::B {
                        s.bridged = false;
                        if matches!(s.source, Source::Callee) {
                            s.source = Source::Silence;
                        }
                    }
                }
            }
            MediaCommand::AddLeg { session, port } => self.add_third(session, port),
            MediaCommand::Mix { session, on } => {
                let seed = self.next_seed();
                if let Some(s) = self.session(session) {
                    s.set_mix(on, seed);
                }
            }
            MediaCommand::Promote { session } => self.promote(session),
            MediaCommand::Splice { session, from, mix } => self.splice(session, from, mix),
            MediaCommand::Dtmf {
                session,
                leg,
                digit,
            } => {
                let seed = self.next_seed();
                if let Some(io) = self.session(session).and_then(|s| s.leg_mut(leg))
                    && !io.send_digit(digit, seed)
                {
                    debug!(session, ?leg, %digit, "digit not sent: the phone takes no telephone-event");
                }
            }
            MediaCommand::Close { session } => self.close(session),
        }
    }

    fn next_seed(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.seed
    }

    fn session(&mut self, id: SessionId) -> Option<&mut Session> {
        let slot = *self.by_id.get(&id)?;
        self.sessions.get_mut(slot)?.as_mut()
    }

    fn open(&mut self, now: Instant, id: SessionId, ports: [u16; 2], record: Option<String>) {
        if self.by_id.contains_key(&id) || self.closed_early.remove(&id) {
            return;
        }
        let bind = |port: u16| UdpSocket::bind(SocketAddr::new(self.cfg.bind, port));
        let mut legs = Vec::with_capacity(2);
        for port in ports {
            match (bind(port), bind(port + 1)) {
                (Ok(rtp), Ok(rtcp)) => {
                    self.seed = self
                        .seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    legs.push(LegIo::new(rtp, rtcp, self.seed));
                }
                (Err(e), _) | (_, Err(e)) => {
                    warn!(port, error = %e, "cannot bind an RTP port pair");
                    Self::emit(
                        &self.events,
                        &self.stats,
                        MediaEvent::Failed { session: id, port },
                    );
                    return;
                }
            }
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.sessions.push(None);
            self.sessions.len() - 1
        });
        let Ok::<[LegIo; 2], _>(mut legs) = legs.try_into() else {
            return;
        };
        for (l, io) in legs.iter_mut().enumerate() {
            if let Err(e) = watch(&self.poll, io, slot * SLOT_TOKENS + l * 2, false) {
                warn!(error = %e, "cannot watch an RTP socket");
                Self::emit(
                    &self.events,
                    &self.stats,
                    MediaEvent::Failed {
                        session: id,
                        port: ports[l],
                    },
                );
                self.free.push(slot);
                return;
            }
        }
        let recording = record
            .as_deref()
            .and_then(|name| self.tap.open(id, name))
            .is_some();
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.sessions[slot] = Some(Session::new(id, legs, now, self.seed, recording));
        self.by_id.insert(id, slot);
        self.stats
            .sessions
            .store(self.by_id.len() as u64, Ordering::Relaxed);
    }

    fn close(&mut self, id: SessionId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(mut s) = self.sessions[slot].take() {
            for (_, io) in s.all_legs_mut() {
                let _ = self.poll.registry().deregister(&mut io.rtp);
                let _ = self.poll.registry().deregister(&mut io.rtcp);
            }
            if s.recording {
                self.tap.close(id);
            }
        }
        self.free.push(slot);
        self.stats
            .sessions
            .store(self.by_id.len() as u64, Ordering::Relaxed);
    }

    /// Reads a ready socket until it is empty, a batch per system call.
    fn readable(&mut self, token: usize, batch: &mut batch::Batch) {
        use std::os::fd::AsRawFd;
        let (slot, leg, rtcp) = (token / SLOT_TOKENS, token % SLOT_TOKENS / 2, token % 2 == 1);
        let leg = match leg {
            0 => Leg::A,
            1 => Leg::B,
            _ => Leg::C,
        };
        let Some(Some(s)) = self.sessions.get_mut(slot) else {
            return;
        };
        let (events, stats, tap) = (&self.events, &*self.stats, &self.tap);
        let mut emit = |ev| Self::emit(events, stats, ev);
        // Bounded: a socket that keeps failing (ICMP errors) cannot hold the loop.
        for _ in 0..64 {
            let Some(io) = s.leg(leg) else {
                return;
            };
            let fd = if rtcp {
                io.rtcp.as_raw_fd()
            } else {
                io.rtp.as_raw_fd()
            };
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP port unreachable from an earlier send, EINTR and the like.
                Err(_) => continue,
            };
            let now = Instant::now();
            for i in 0..n {
                let (buf, len, src) = batch.packet(i);
                let Some(src) = src else { continue };
                stats.inc(&stats.packets_in);
                if rtcp {
                    s.on_rtcp(leg, buf, len, src, now, stats);
                } else {
                    s.on_rtp(leg, buf, len, src, now, stats, tap, &mut emit);
                }
            }
            if n < batch::BATCH {
                return;
            }
        }
    }

    fn tick(&mut self, now: Instant, buf: &mut [u8; MAX_PACKET]) {
        let (events, stats, tap) = (&self.events, &*self.stats, &self.tap);
        let mut emit = |ev| Self::emit(events, stats, ev);
        for s in self.sessions.iter_mut().flatten() {
            s.tick(now, buf, stats, tap, &mut emit);
        }
    }

    /// Every second: connected legs whose phone fell silent are released
    /// (another allowed source may latch), and silent calls are reported.
    fn scan_timeouts(&mut self, now: Instant) {
        let timeout = self.cfg.timeout;
        for s in self.sessions.iter_mut().flatten() {
            for (_, leg) in s.all_legs_mut() {
                leg.release_if_stale(now);
            }
            // Reported again every `timeout` while the silence lasts: the core may
            // ignore a report (a caller not answered yet) and act on a later one.
            let since = s
                .last_activity()
                .max(s.timeout_reported.unwrap_or(s.opened));
            if now.saturating_duration_since(since) >= timeout {
                s.timeout_reported = Some(now);
                Self::emit(
                    &self.events,
                    &self.stats,
                    MediaEvent::Timeout { session: s.id },
                );
            }
        }
    }
}

/// Registers a leg's two sockets under `base` (RTP) and `base + 1` (RTCP);
/// `again`: they were registered under other tokens before.
fn watch(poll: &Poll, io: &mut LegIo, base: usize, again: bool) -> io::Result<()> {
    let r = poll.registry();
    if again {
        r.reregister(&mut io.rtp, Token(base), Interest::READABLE)?;
        r.reregister(&mut io.rtcp, Token(base + 1), Interest::READABLE)
    } else {
        r.register(&mut io.rtp, Token(base), Interest::READABLE)?;
        r.register(&mut io.rtcp, Token(base + 1), Interest::READABLE)
    }
}

#[cfg(test)]
mod latch_tests;
#[cfg(test)]
mod mix_tests;
#[cfg(test)]
mod tests;
