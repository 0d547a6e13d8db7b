//! TCP connections: framing by Content-Length, one reader and one writer task each.
//! A malformed message is answered `400` and skipped; the connection stays up. A
//! message begun and not finished in time (a stalled or hostile peer) closes it.
//!
//! Connections are capped (`[sip] tcp_max_connections` in all, of which an
//! eighth is kept for the connections the gateway opens itself, and
//! `tcp_max_per_source` from one IP address, or one IPv6 /64, unless it is a
//! known source: a trunk's, or one an agent registered from): one over a cap is
//! accepted and closed at once, so that the listen backlog never fills.
//!
//! An accepted connection is closed when `tcp_first_message_s` pass without a
//! complete message, until it has carried a message from a known source (an
//! agent's REGISTER that authenticated makes its IP known); from then on, only
//! `tcp_idle_s` of silence closes it (longer than any registration or call, so
//! agents keep theirs). A stranger's connection cannot be held open with one
//! OPTIONS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::known::KnownSources;
use super::{Inbound, Status};
use crate::sip::framing::{self, Frame};

/// How often, at most, refused connections are logged (with their count).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a connection may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Largest message.
    pub max_message: usize,
    /// Longest time from a message's first byte to its last.
    pub partial: Duration,
    /// How long an accepted connection not yet trusted (see [`serve`]) may go
    /// without a complete message.
    pub first_message: Duration,
    /// A trusted connection that receives nothing for this long is closed.
    pub idle: Duration,
    /// Connections open at once, accepted and opened by the gateway.
    pub max_connections: usize,
    /// Accepted connections open at once from one IP address (one IPv6 /64),
    /// known sources excepted.
    pub max_per_source: usize,
}

impl Limits {
    /// Accepted connections at most: the rest of `max_connections` is kept for
    /// the ones the gateway opens (to agents and trunks), so a flood of
    /// incoming connections cannot stop it from reaching them.
    fn max_inbound(&self) -> usize {
        self.max_connections - self.max_connections / 8
    }
}

/// Whose a connection is, for the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// One the gateway opened.
    Outgoing,
    /// Accepted from a known source: only the total cap applies.
    Known,
    /// Accepted from anybody else, counted under this source key
    /// ([`source_key`]).
    Stranger(IpAddr),
}

/// The per-source cap's key: the IP, or for IPv6 its /64 (one host usually
/// holds a whole /64, and would otherwise have 2^64 sources).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Who holds the open connections: counts in all and per source key.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    /// Strangers' accepted connections per source key; only keys with one or more.
    per_source: HashMap<IpAddr, usize>,
}

impl Table {
    /// Takes a place for a connection, or says no.
    fn admit(&mut self, origin: Origin, limits: &Limits) -> bool {
        match origin {
            Origin::Outgoing if self.total >= limits.max_connections => false,
            Origin::Known if self.total >= limits.max_inbound() => false,
            Origin::Outgoing | Origin::Known => {
                self.total += 1;
                true
            }
            Origin::Stranger(key) => {
                let from_key = self.per_source.get(&key).copied().unwrap_or(0);
                if self.total >= limits.max_inbound() || from_key >= limits.max_per_source {
                    return false;
                }
                self.total += 1;
                *self.per_source.entry(key).or_insert(0) += 1;
                true
            }
        }
    }

    fn release(&mut self, origin: Origin) {
        self.total = self.total.saturating_sub(1);
        if let Origin::Stranger(key) = origin
            && let Some(n) = self.per_source.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&key);
            }
        }
    }
}

/// The connection table shared by the acceptor, the connectors and the
/// connections themselves.
#[derive(Debug, Clone)]
pub(super) struct Conns {
    table: Arc<Mutex<Table>>,
    limits: Limits,
    status: Arc<Status>,
    /// Trunks and registered agents' IPs: no per-source cap, the long idle time.
    known: Arc<KnownSources>,
}

/// A connection's place in the table, given back when it is dropped.
#[derive(Debug)]
struct Slot {
    conns: Conns,
    origin: Origin,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.lock().release(self.origin);
        self.conns.status.tcp_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conns {
    pub fn new(limits: Limits, status: Arc<Status>, known: Arc<KnownSources>) -> Conns {
        Conns {
            table: Default::default(),
            limits,
            status,
            known,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `source` (`None`: one the gateway opens).
    fn admit(&self, source: Option<IpAddr>) -> Option<Slot> {
        let origin = match source {
            None => Origin::Outgoing,
            Some(ip) if self.known.contains(ip) => Origin::Known,
            Some(ip) => Origin::Stranger(source_key(ip)),
        };
        if !self.lock().admit(origin, &self.limits) {
            self.status.tcp_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.status.tcp_open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            conns: self.clone(),
            origin,
        })
    }
}

pub(super) async fn accept_loop(listener: TcpListener, core: mpsc::Sender<Inbound>, conns: Conns) {
    let mut refused_since_log = 0u64;
    let mut last_log: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Some(slot) = conns.admit(Some(addr.ip())) else {
                    // Over a cap: closed at once (the backlog keeps moving).
                    drop(stream);
                    refused_since_log += 1;
                    if last_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                        warn!(
                            refused = refused_since_log,
                            source = %addr.ip(),
                            "TCP connections over the cap closed (sip.tcp_max_connections, sip.tcp_max_per_source)"
                        );
                        refused_since_log = 0;
                        last_log = Some(Instant::now());
                    }
                    continue;
                };
                let (writer, rx) = mpsc::channel(super::WRITE_QUEUE);
                if core.send(Inbound::Open { addr, writer }).await.is_err() {
                    return;
                }
                tokio::spawn(serve(stream, addr, core.clone(), rx, slot, true));
            }
            Err(e) => {
                // EMFILE among others: the file-descriptor budget was exceeded.
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens an outgoing connection; messages queue until it is up. Over the
/// connection cap, nothing is opened and the messages are dropped.
pub(super) fn connect(
    addr: SocketAddr,
    core: mpsc::Sender<Inbound>,
    conns: &Conns,
    queue: usize,
) -> mpsc::Sender<Bytes> {
    let (writer, rx) = mpsc::channel(queue);
    let slot = conns.admit(None);
    tokio::spawn(async move {
        let Some(slot) = slot else {
            warn!(%addr, "TCP connection not opened: sip.tcp_max_connections reached");
            let _ = core.send(Inbound::Closed { addr }).await;
            return;
        };
        match TcpStream::connect(addr).await {
            Ok(stream) => serve(stream, addr, core, rx, slot, false).await,
            Err(e) => {
                warn!(%addr, error = %e, "TCP connect failed");
                let _ = core.send(Inbound::Closed { addr }).await;
            }
        }
    });
    writer
}

/// Why a connection's reader stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expiry {
    /// A message begun and not finished in time.
    Partial,
    /// Not trusted yet, and no complete message for `first_message` (since it
    /// was accepted, or since its last message).
    Untrusted,
    /// Nothing received for the idle time.
    Idle,
}

/// The earliest of a connection's deadlines, and which one it is.
/// `last_message`: when the last complete message (or, before any, the
/// connection) came; keepalives do not move it.
fn next_deadline(
    limits: &Limits,
    trusted: bool,
    last_message: Instant,
    last_rx: Instant,
    partial_since: Option<Instant>,
) -> (Instant, Expiry) {
    let mut next = (last_rx + limits.idle, Expiry::Idle);
    if !trusted {
        next = next.min((last_message + limits.first_message, Expiry::Untrusted));
    }
    if let Some(t) = partial_since {
        next = next.min((t + limits.partial, Expiry::Partial));
    }
    next
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    core: mpsc::Sender<Inbound>,
    mut rx: mpsc::Receiver<Bytes>,
    slot: Slot,
    inbound: bool,
) {
    let limits = slot.conns.limits;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let opened = Instant::now();
    // A connection the gateway opened speaks to a peer it chose. An accepted one
    // is trusted once it has carried a message and its source is known (checked
    // when the short deadline comes, so that the core has handled the message:
    // a REGISTER that authenticated makes its source known).
    let mut trusted = !inbound;
    let mut greeted = false;
    let mut last_message = opened;
    let mut last_rx = opened;
    // When the bytes of the message not yet complete began to arrive.
    let mut partial_since: Option<Instant> = None;
    // Bytes still to drop: the body of a message refused as too large.
    let mut discard: usize = 0;
    'read: loop {
        let (until, why) = next_deadline(&limits, trusted, last_message, last_rx, partial_since);
        let got = match tokio::time::timeout_at(until, rd.read_buf(&mut buf)).await {
            Ok(r) => r,
            Err(_)
                if why == Expiry::Untrusted && greeted && slot.conns.known.contains(addr.ip()) =>
            {
                trusted = true;
                continue;
            }
            Err(_) => {
                if why != Expiry::Partial {
                    slot.conns
                        .status
                        .tcp_closed_silent
                        .fetch_add(1, Ordering::Relaxed);
                }
                debug!(%addr, ?why, "TCP connection closed: deadline passed");
                break;
            }
        };
        match got {
            Ok(0) | Err(_) => break,
            Ok(_) => last_rx = Instant::now(),
        }
        loop {
            if discard > 0 {
                // The rest of a body refused as too large: not a message.
                let n = discard.min(buf.len());
                let _ = buf.split_to(n);
                discard -= n;
                if discard > 0 {
                    partial_since.get_or_insert_with(Instant::now);
                    break;
                }
            }
            let skip = framing::skip_keepalive(&buf);
            let _ = buf.split_to(skip);
            if buf.is_empty() {
                break;
            }
            let msg = match framing::frame_stream(&buf, limits.max_message) {
                Frame::Incomplete => {
                    partial_since.get_or_insert_with(Instant::now);
                    break;
                }
                Frame::Complete(n) => {
                    greeted = true;
                    last_message = Instant::now();
                    Inbound::Frame {
                        addr,
                        bytes: buf.split_to(n).freeze(),
                    }
                }
                Frame::Invalid { len, error } => {
                    debug!(%addr, %error, "unframeable TCP message");
                    if let framing::FrameError::TooLarge { .. } = error {
                        // Its header section is `len` bytes: the body it declares
                        // follows, and must not be read as the next message.
                        discard = framing::declared_body(&buf[..len]).unwrap_or(0);
                    }
                    Inbound::Invalid {
                        addr,
                        bytes: buf.split_to(len).freeze(),
                        error: error.to_string(),
                    }
                }
            };
            partial_since = None;
            if core.send(msg).await.is_err() {
                break 'read;
            }
        }
        if buf.is_empty() {
            partial_since = None;
        }
    }
    writer.abort();
    drop(slot);
    let _ = core.send(Inbound::Closed { addr }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_source: usize) -> Limits {
        Limits {
            max_message: 65_535,
            partial: Duration::from_secs(32),
            first_message: Duration::from_secs(10),
            idle: Duration::from_secs(10_800),
            max_connections: max,
            max_per_source: per_source,
        }
    }

    fn ip(n: u8) -> Origin {
        Origin::Stranger(IpAddr::from([127, 0, 0, n]))
    }

    #[test]
    fn connections_are_capped_per_source_and_in_all() {
        let l = limits(16, 3);
        let mut t = Table::default();
        for _ in 0..3 {
            assert!(t.admit(ip(2), &l));
        }
        assert!(!t.admit(ip(2), &l), "a fourth from one source");
        assert!(t.admit(ip(3), &l), "another source still gets in");
        t.release(ip(2));
        assert!(t.admit(ip(2), &l), "a closed connection frees its place");
        // 14 = 16 - 16/8 accepted at most: the rest is kept for outgoing ones.
        let mut n = 4;
        for src in 4..=20 {
            for _ in 0..3 {
                if t.admit(ip(src), &l) {
                    n += 1;
                }
            }
        }
        assert_eq!(n, 14);
        assert_eq!(t.total, 14);
        assert!(
            !t.admit(Origin::Known, &l),
            "a known source: the total holds"
        );
        assert!(
            t.admit(Origin::Outgoing, &l) && t.admit(Origin::Outgoing, &l),
            "outgoing still opens"
        );
        assert!(!t.admit(Origin::Outgoing, &l), "but not past the total");
        for src in 2..=20 {
            while t.per_source.contains_key(&IpAddr::from([127, 0, 0, src])) {
                t.release(ip(src));
            }
        }
        t.release(Origin::Outgoing);
        t.release(Origin::Outgoing);
        assert_eq!(t.total, 0);
        assert!(
            t.per_source.is_empty(),
            "no entry is kept for a source with none"
        );
    }

    #[test]
    fn known_sources_pass_the_per_source_cap_and_ipv6_counts_by_64() {
        let l = limits(4096, 3);
        let mut t = Table::default();
        for _ in 0..3 {
            assert!(t.admit(ip(2), &l));
        }
        assert!(!t.admit(ip(2), &l));
        // An office NAT an agent registered from: its 65th phone gets in.
        for _ in 0..100 {
            assert!(t.admit(Origin::Known, &l));
        }
        assert!(t.per_source.len() == 1 && t.total == 103);
        for _ in 0..100 {
            t.release(Origin::Known);
        }
        assert_eq!(t.per_source.get(&IpAddr::from([127, 0, 0, 2])), Some(&3));
        // Addresses of one IPv6 /64 share one count; another /64 has its own.
        let v6 = |s: &str| Origin::Stranger(source_key(s.parse().unwrap()));
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff:1:2:3"));
        for host in ["::1", "::2", "::3"] {
            assert!(t.admit(v6(&format!("2001:db8:1:2{host}")), &l));
        }
        assert!(!t.admit(v6("2001:db8:1:2::99"), &l), "a fourth in the /64");
        assert!(t.admit(v6("2001:db8:1:3::1"), &l), "the next /64");
        // IPv4-mapped addresses count as the IPv4 address.
        assert_eq!(
            source_key("::ffff:127.0.0.2".parse().unwrap()),
            IpAddr::from([127, 0, 0, 2])
        );
    }

    #[test]
    fn an_untrusted_connection_keeps_the_short_deadline_after_each_message() {
        let l = limits(16, 3);
        let t0 = Instant::now();
        let (at, why) = next_deadline(&l, false, t0, t0, None);
        assert_eq!((at, why), (t0 + l.first_message, Expiry::Untrusted));
        // Keepalives move `last_rx` but not the short deadline.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            next_deadline(&l, false, t0, later, None),
            (t0 + l.first_message, Expiry::Untrusted)
        );
        // A message (one OPTIONS, say) moves it, but by the short time only.
        assert_eq!(
            next_deadline(&l, false, later, later, None),
            (later + l.first_message, Expiry::Untrusted)
        );
        // Trusted: only idleness (or a message left unfinished) counts.
        assert_eq!(
            next_deadline(&l, true, t0, later, None),
            (later + l.idle, Expiry::Idle)
        );
        assert_eq!(
            next_deadline(&l, true, t0, later, Some(later)),
            (later + l.partial, Expiry::Partial)
        );
    }
}
