//! TCP connections: framing by Content-Length, one reader and one writer task each.
//! A malformed message is answered `400` and skipped; the connection stays up. A
//! message begun and not finished in time (a stalled or hostile peer) closes it.
//!
//! Connections are capped (`[sip] tcp_max_connections` in all, of which an
//! eighth is kept for the connections the gateway opens itself, and
//! `tcp_max_per_source` from one IP address): one over a cap is accepted and
//! closed at once, so that the listen backlog never fills. An accepted
//! connection must bring a complete message within `tcp_first_message_s`, and
//! any connection that receives nothing for `tcp_idle_s` is closed (longer than
//! any registration or call, so agents keep theirs).

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
    /// How long an accepted connection has to bring its first complete message.
    pub first_message: Duration,
    /// A connection that receives nothing for this long is closed.
    pub idle: Duration,
    /// Connections open at once, accepted and opened by the gateway.
    pub max_connections: usize,
    /// Accepted connections open at once from one IP address.
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

/// Who holds the open connections: counts in all and per source IP.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    /// Accepted connections per source; only sources with one or more.
    per_source: HashMap<IpAddr, usize>,
}

impl Table {
    /// Takes a place for a connection from `source` (`None`: one the gateway
    /// opens), or says no.
    fn admit(&mut self, source: Option<IpAddr>, limits: &Limits) -> bool {
        match source {
            None if self.total >= limits.max_connections => false,
            None => {
                self.total += 1;
                true
            }
            Some(ip) => {
                let from_ip = self.per_source.get(&ip).copied().unwrap_or(0);
                if self.total >= limits.max_inbound() || from_ip >= limits.max_per_source {
                    return false;
                }
                self.total += 1;
                *self.per_source.entry(ip).or_insert(0) += 1;
                true
            }
        }
    }

    fn release(&mut self, source: Option<IpAddr>) {
        self.total = self.total.saturating_sub(1);
        if let Some(ip) = source
            && let Some(n) = self.per_source.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&ip);
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
}

/// A connection's place in the table, given back when it is dropped.
#[derive(Debug)]
struct Slot {
    conns: Conns,
    source: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.lock().release(self.source);
        self.conns.status.tcp_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conns {
    pub fn new(limits: Limits, status: Arc<Status>) -> Conns {
        Conns {
            table: Default::default(),
            limits,
            status,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(&self, source: Option<IpAddr>) -> Option<Slot> {
        if !self
            .lock()
            .admit(source.map(|ip| ip.to_canonical()), &self.limits)
        {
            self.status.tcp_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.status.tcp_open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            conns: self.clone(),
            source: source.map(|ip| ip.to_canonical()),
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
    /// No complete message since the connection was accepted.
    FirstMessage,
    /// Nothing received for the idle time.
    Idle,
}

/// The earliest of a connection's deadlines, and which one it is.
fn next_deadline(
    limits: &Limits,
    opened: Instant,
    greeted: bool,
    last_rx: Instant,
    partial_since: Option<Instant>,
) -> (Instant, Expiry) {
    let mut next = (last_rx + limits.idle, Expiry::Idle);
    if !greeted {
        next = next.min((opened + limits.first_message, Expiry::FirstMessage));
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
    // A connection the gateway opened speaks to a peer it chose.
    let mut greeted = !inbound;
    let mut last_rx = opened;
    // When the bytes of the message not yet complete began to arrive.
    let mut partial_since: Option<Instant> = None;
    // Bytes still to drop: the body of a message refused as too large.
    let mut discard: usize = 0;
    'read: loop {
        let (until, why) = next_deadline(&limits, opened, greeted, last_rx, partial_since);
        let got = match tokio::time::timeout_at(until, rd.read_buf(&mut buf)).await {
            Ok(r) => r,
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

    #[test]
    fn connections_are_capped_per_source_and_in_all() {
        let l = limits(16, 3);
        let mut t = Table::default();
        let ip = |n: u8| Some(IpAddr::from([127, 0, 0, n]));
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
            t.admit(None, &l) && t.admit(None, &l),
            "outgoing still opens"
        );
        assert!(!t.admit(None, &l), "but not past the total");
        for src in 2..=20 {
            while t.per_source.contains_key(&IpAddr::from([127, 0, 0, src])) {
                t.release(ip(src));
            }
        }
        t.release(None);
        t.release(None);
        assert_eq!(t.total, 0);
        assert!(
            t.per_source.is_empty(),
            "no entry is kept for a source with none"
        );
    }

    #[test]
    fn the_first_message_deadline_holds_until_a_message_comes() {
        let l = limits(16, 3);
        let t0 = Instant::now();
        let (at, why) = next_deadline(&l, t0, false, t0, None);
        assert_eq!((at, why), (t0 + l.first_message, Expiry::FirstMessage));
        // Keepalives move `last_rx` but not the first-message deadline.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            next_deadline(&l, t0, false, later, None).1,
            Expiry::FirstMessage
        );
        // Once a message came, only idleness (or a message left unfinished) counts.
        assert_eq!(
            next_deadline(&l, t0, true, later, None),
            (later + l.idle, Expiry::Idle)
        );
        assert_eq!(
            next_deadline(&l, t0, true, later, Some(later)),
            (later + l.partial, Expiry::Partial)
        );
    }
}
