//! RFC 3261 §17 transactions, sans-IO, in the style of quinn-proto.
//!
//! The layer owns every client and server transaction of one core. It never reads
//! the clock and never touches a socket: the driver feeds it parsed messages and the
//! current time, then drains [`TransactionLayer::poll_transmit`] (bytes to send),
//! [`TransactionLayer::poll_event`] (what the transaction user must act on) and
//! [`TransactionLayer::poll_timeout`] (when to call
//! [`TransactionLayer::handle_timeout`] next).
//!
//! Beyond RFC 3261 it implements RFC 6026 (the Accepted state for 2xx to INVITE,
//! Timers L and M), retransmits 2xx responses until their ACK arrives (§13.3.1.4),
//! and detects merged requests (§8.2.2.2, answered `482`).

mod client;
mod key;
mod out;
mod server;
pub mod timer;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use key::{ClientKey, MAGIC_COOKIE, MergeKey, ServerKey};
pub use out::OutRequest;
use timer::{TimerConfig, TimerKind, TimerQueue, TimerSlots};

use super::ids::IdGen;
use super::message::{Message, Request, Response};
use super::{Peer, Transmit};
use crate::util::idmap::IdMap;

/// Identifies a transaction inside one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// What the transaction user (the call layer) must act on.
#[derive(Debug)]
pub enum TxEvent {
    /// A new request. INVITE has been answered `100 Trying` already; everything
    /// else waits for [`TransactionLayer::respond`]. For CANCEL, `cancels` names the
    /// INVITE server transaction it matches, if any.
    Request {
        tx: TxId,
        request: Request,
        peer: Peer,
        cancels: Option<TxId>,
    },
    /// An ACK that no non-2xx transaction absorbed: the ACK for a 2xx. `tx` is the
    /// INVITE server transaction whose 2xx it acknowledges, when the layer knew it.
    Ack {
        tx: Option<TxId>,
        request: Request,
        peer: Peer,
    },
    /// A response for a client transaction (the first of each; 2xx retransmissions
    /// are absorbed in Accepted and re-ACKed by the layer).
    Response { tx: TxId, response: Response },
    /// A transaction timed out: a client one (Timer B, F, or C in Proceeding) is a
    /// `408`; a server one (Timer C) was never answered by the TU.
    Timeout { tx: TxId },
    /// A server INVITE transaction's final response was never acknowledged
    /// (Timer H for non-2xx, Timer L for 2xx).
    AckTimeout { tx: TxId },
}

/// Why a transaction-user call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction {0:?} does not exist (it ended or never began)")]
    NoSuchTransaction(TxId),
    #[error("transaction {0:?} cannot do that in its current state")]
    WrongState(TxId),
}

/// Configuration of one layer.
#[derive(Debug, Clone)]
pub struct LayerConfig {
    pub timers: TimerConfig,
    /// Our Via sent-by (`host:port`), the same for every transport.
    pub sent_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InviteServer,
    NonInviteServer,
    InviteClient,
    NonInviteClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug)]
enum Index {
    Server(ServerKey),
    Client(ClientKey),
}

/// A server INVITE's From tag, and its 2xx's To tag once sent.
type AckTags = (Box<str>, Option<Box<str>>);

/// One transaction. Fields are only what retransmission and matching need.
#[derive(Debug)]
struct Tx {
    kind: Kind,
    state: State,
    peer: Peer,
    index: Index,
    timers: TimerSlots,
    /// Current retransmission interval of Timer A, E, G or Retransmit2xx.
    interval: Duration,
    /// Server: the last response sent. Client: the request.
    last: Option<Bytes>,
    /// Client INVITE: the ACK sent for the final response, resent on retransmits.
    ack: Option<Bytes>,
    /// Client INVITE: the request in parts, to build its ACK and CANCEL.
    parts: Option<Box<OutRequest>>,
    /// Client INVITE: our Via, shared by CANCEL and non-2xx ACK.
    via: Option<Box<str>>,
    merge: Option<MergeKey>,
    /// Server INVITE: (Call-ID, CSeq), under which the ACK for a 2xx is matched.
    ack_key: Option<(Box<str>, u32)>,
    /// Server INVITE in Accepted with its 2xx not yet acknowledged.
    ack_wait: bool,
    /// A server INVITE's From tag, and the To tag of its 2xx once sent: the ACK
    /// of that 2xx must carry both (a forged ACK with the Call-ID and CSeq alone
    /// could otherwise stand in for the caller's, SDP included).
    ack_tags: Option<Box<AckTags>>,
}

/// The transaction layer of one core.
#[derive(Debug)]
pub struct TransactionLayer {
    config: LayerConfig,
    ids: IdGen,
    /// Responses that matched a transaction but came from another address than
    /// the one its request went to (dropped).
    foreign_responses: u64,
    next_id: u64,
    txs: IdMap<TxId, Tx>,
    servers: HashMap<ServerKey, TxId>,
    clients: HashMap<ClientKey, TxId>,
    merges: HashMap<MergeKey, TxId>,
    /// (Call-ID, CSeq) of 2xx-answered INVITEs awaiting their ACK.
    ack_waits: HashMap<(Box<str>, u32), TxId>,
    timers: TimerQueue<TxId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(config: LayerConfig, ids: IdGen) -> TransactionLayer {
        TransactionLayer {
            config,
            ids,
            foreign_responses: 0,
            next_id: 1,
            txs: IdMap::default(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            merges: HashMap::new(),
            ack_waits: HashMap::new(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Mixes fresh entropy into the branch generator.
    pub fn reseed(&mut self, fresh: super::ids::Seed) {
        self.ids.reseed(fresh);
    }

    pub fn config(&self) -> &LayerConfig {
        &self.config
    }

    /// Feeds one parsed message received from `peer`.
    pub fn handle_message(&mut self, now: Instant, msg: Message, peer: Peer) {
        match msg {
            Message::Request(req) => self.handle_request(now, req, peer),
            Message::Response(resp) => self.handle_response(now, resp, peer),
        }
    }

    /// Sends bytes outside any transaction (stateless responses, 2xx ACK resends).
    pub fn send_stateless(&mut self, peer: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// The next datagram or stream write to perform.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some((at, id, kind)) = self.timers.peek() {
            if self.is_armed(id, kind, at) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id, kind)) = self.timers.pop_due(now) {
            if !self.is_armed(id, kind, at) {
                continue;
            }
            if let Some(tx) = self.txs.get_mut(&id) {
                tx.timers.clear(kind);
            }
            self.on_timer(now, id, kind);
        }
        self.shrink_if_sparse();
    }

    /// Tables sized for a burst of set-ups give their memory back once it
    /// has passed (held calls keep none of their set-up transactions): a
    /// table a quarter full is shrunk to twice what it holds, so the cost of
    /// a shrink is paid for by the removals before it.
    fn shrink_if_sparse(&mut self) {
        fn shrink<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(m: &mut HashMap<K, V, S>) {
            if m.capacity() > timer::SPARSE_MIN && m.len() * 4 < m.capacity() {
                m.shrink_to(m.len() * 2);
            }
        }
        shrink(&mut self.txs);
        shrink(&mut self.servers);
        shrink(&mut self.clients);
        shrink(&mut self.merges);
        shrink(&mut self.ack_waits);
        self.timers.shrink_if_sparse();
    }

    /// Responses dropped because they came from another address than their
    /// request went to.
    pub fn foreign_responses(&self) -> u64 {
        self.foreign_responses
    }

    /// Number of live transactions (for leak checks and metrics).
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    fn is_armed(&self, id: TxId, kind: TimerKind, at: Instant) -> bool {
        self.txs
            .get(&id)
            .is_some_and(|tx| tx.timers.get(kind) == Some(at))
    }

    fn alloc_id(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    fn arm(&mut self, id: TxId, kind: TimerKind, after: Duration, now: Instant) {
        let at = now + after;
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.timers.set(kind, at);
            self.timers.push(at, id, kind);
        }
    }

    fn disarm(&mut self, id: TxId, kind: TimerKind) {
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.timers.clear(kind);
        }
    }

    /// Arms a timer, or ends the transaction now when its duration is zero
    /// (Timers D, I, J, K on reliable transports).
    fn arm_or_end(&mut self, id: TxId, kind: TimerKind, now: Instant) {
        let reliable = self
            .txs
            .get(&id)
            .is_some_and(|tx| tx.peer.transport.is_reliable());
        let after = self.config.timers.initial(kind, reliable);
        if after.is_zero() {
            self.terminate(id);
        } else {
            self.arm(id, kind, after, now);
        }
    }

    fn send(&mut self, peer: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    fn resend_last(&mut self, id: TxId) {
        if let Some(tx) = self.txs.get(&id)
            && let Some(bytes) = tx.last.clone()
        {
            let peer = tx.peer;
            self.send(peer, bytes);
        }
    }

    fn terminate(&mut self, id: TxId) {
        let Some(tx) = self.txs.remove(&id) else {
            return;
        };
        match tx.index {
            Index::Server(k) => {
                self.servers.remove(&k);
            }
            Index::Client(k) => {
                self.clients.remove(&k);
            }
        }
        if let Some(m) = tx.merge
            && self.merges.get(&m) == Some(&id)
        {
            self.merges.remove(&m);
        }
        if let Some(w) = tx.ack_key
            && self.ack_waits.get(&w) == Some(&id)
        {
            self.ack_waits.remove(&w);
        }
    }

    fn on_timer(&mut self, now: Instant, id: TxId, kind: TimerKind) {
        use TimerKind::*;
        match kind {
            A | E | G | Retransmit2xx => self.retransmit(now, id, kind),
            B | F | C => {
                if kind == C {
                    tracing::debug!(?id, "no final response in time (Timer C)");
                    // A client INVITE that got a provisional is cancelled, so the
                    // far end stops ringing (RFC 3261 §16.7 step 2); the TU hears
                    // of a timeout either way.
                    let proceeding = self.txs.get(&id).is_some_and(|t| {
                        t.kind == Kind::InviteClient && t.state == State::Proceeding
                    });
                    if proceeding {
                        let _ = self.cancel(now, id);
                    }
                }
                self.events.push_back(TxEvent::Timeout { tx: id });
                self.terminate(id);
            }
            H => {
                self.events.push_back(TxEvent::AckTimeout { tx: id });
                self.terminate(id);
            }
            L => {
                let unacked = self.txs.get(&id).is_some_and(|t| t.ack_wait);
                if unacked {
                    self.events.push_back(TxEvent::AckTimeout { tx: id });
                }
                self.terminate(id);
            }
            D | I | J | K | M => self.terminate(id),
        }
    }

    fn retransmit(&mut self, now: Instant, id: TxId, kind: TimerKind) {
        let t = self.config.timers;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let next = if kind == TimerKind::E && tx.state == State::Proceeding {
            t.t2
        } else {
            t.backoff(kind, tx.interval)
        };
        tx.interval = next;
        self.resend_last(id);
        self.arm(id, kind, next, now);
    }
}

#[cfg(test)]
mod tests;
