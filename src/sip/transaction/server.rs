//! Server transactions: INVITE (§17.2.1 with RFC 6026) and non-INVITE (§17.2.2).

use std::time::Instant;

use bytes::Bytes;

use super::{
    Index, Kind, State, TimerConfig, TimerKind, TransactionLayer, Tx, TxError, TxEvent, TxId,
};
use super::{MergeKey, ServerKey};
use crate::sip::Peer;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};

impl TransactionLayer {
    pub(super) fn handle_request(&mut self, now: Instant, req: Request, peer: Peer) {
        let Some(via) = req.top_via() else {
            // The core validates Via before this point; without one nothing can match.
            return;
        };
        let key = ServerKey::of(&req, &via);
        if req.method == Method::Ack {
            return self.handle_ack(now, key, req, peer);
        }
        if let Some(&id) = self.servers.get(&key) {
            return self.absorb_retransmission(id);
        }
        let merge = MergeKey::of(&req);
        if let Some(m) = &merge
            && self.merges.contains_key(m)
        {
            // Same request over another path (RFC 3261 §8.2.2.2).
            let bytes = response_to(&req, 482, "Loop Detected", None).finish_empty();
            self.send_stateless(peer, bytes);
            return;
        }
        let invite = req.method == Method::Invite;
        let cancels = if req.method == Method::Cancel {
            // Only the INVITE's own sender may cancel it: a stranger who learnt
            // the branch gets 481 (DESIGN.md §7).
            self.servers
                .get(&key.with_method(Method::Invite))
                .copied()
                .filter(|id| {
                    self.txs
                        .get(id)
                        .is_some_and(|t| t.peer.addr.ip() == peer.addr.ip())
                })
        } else {
            None
        };
        if req.method == Method::Cancel && cancels.is_none() {
            // Nothing to cancel: 481 without a transaction, so that a CANCEL
            // from someone else cannot stand in for the real one's (same key).
            let bytes = response_to(&req, 481, "Call/Transaction Does Not Exist", Some("gw481"))
                .finish_empty();
            self.send_stateless(peer, bytes);
            return;
        }
        let id = self.alloc_id();
        let mut tx = Tx {
            kind: if invite {
                Kind::InviteServer
            } else {
                Kind::NonInviteServer
            },
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            peer,
            index: Index::Server(key.clone()),
            timers: Default::default(),
            interval: self.config.timers.t1,
            last: None,
            ack: None,
            parts: None,
            via: None,
            merge: None,
            ack_key: if invite {
                req.call_id()
                    .zip(req.cseq())
                    .map(|(cid, (n, _))| (cid.into(), n))
            } else {
                None
            },
            ack_wait: false,
            ack_tags: if invite {
                req.from_tag().map(|f| Box::new((f.into_boxed_str(), None)))
            } else {
                None
            },
        };
        if invite {
            // Answer at once so the caller stops retransmitting (§17.2.1).
            let trying = response_to(&req, 100, "Trying", None).finish_empty();
            tx.last = Some(trying.clone());
            self.send(peer, trying);
        }
        if let Some(m) = merge {
            self.merges.insert(m.clone(), id);
            tx.merge = Some(m);
        }
        self.servers.insert(key, id);
        self.txs.insert(id, tx);
        let guard = if invite {
            TimerConfig::TIMER_C
        } else {
            self.config.timers.timeout()
        };
        self.arm(id, TimerKind::C, guard, now);
        self.events.push_back(TxEvent::Request {
            tx: id,
            request: req,
            peer,
            cancels,
        });
    }

    fn absorb_retransmission(&mut self, id: TxId) {
        let Some(tx) = self.txs.get(&id) else {
            return;
        };
        match (tx.kind, tx.state) {
            (Kind::NonInviteServer, State::Trying) => {}
            (Kind::InviteServer, State::Confirmed) => {}
            // Proceeding: last provisional; Completed: the final; Accepted: the 2xx.
            _ => self.resend_last(id),
        }
    }

    fn handle_ack(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if let Some(&id) = self.servers.get(&key) {
            let state = self.txs.get(&id).map(|t| t.state);
            match state {
                Some(State::Completed) => {
                    // ACK for our non-2xx final: stop G and H, absorb ACK retransmissions.
                    self.disarm(id, TimerKind::G);
                    self.disarm(id, TimerKind::H);
                    if let Some(tx) = self.txs.get_mut(&id) {
                        tx.state = State::Confirmed;
                    }
                    self.arm_or_end(id, TimerKind::I, now);
                    return;
                }
                Some(State::Accepted) => return self.ack_2xx(id, req, peer),
                _ => return,
            }
        }
        let wait = req
            .call_id()
            .zip(req.cseq())
            .and_then(|(cid, (n, _))| self.ack_waits.get(&(cid.into(), n)).copied());
        match wait {
            Some(id) => self.ack_2xx(id, req, peer),
            None => self.events.push_back(TxEvent::Ack {
                tx: None,
                request: req,
                peer,
            }),
        }
    }

    /// An ACK for a 2xx we sent: stop retransmitting it and tell the TU once.
    /// It must carry the INVITE's From tag and the 2xx's To tag; one that does
    /// not is someone else's guess, and changes nothing.
    fn ack_2xx(&mut self, id: TxId, req: Request, peer: Peer) {
        let genuine = self
            .txs
            .get(&id)
            .is_some_and(|tx| match tx.ack_tags.as_deref() {
                Some((from, to)) => {
                    req.from_tag().as_deref() == Some(&**from)
                        && to.as_deref() == req.to_tag().as_deref()
                }
                None => true,
            });
        if !genuine {
            tracing::debug!(%peer, "ACK with tags that are not the dialog's: ignored");
            return;
        }
        self.disarm(id, TimerKind::Retransmit2xx);
        let first = match self.txs.get_mut(&id) {
            Some(tx) if tx.ack_wait => {
                tx.last = None;
                tx.ack_wait = false;
                tx.ack_key.clone()
            }
            _ => None,
        };
        // A retransmitted ACK is absorbed: the TU hears of each 2xx's ACK once.
        if first.is_some() {
            self.events.push_back(TxEvent::Ack {
                tx: Some(id),
                request: req,
                peer,
            });
        }
    }

    /// Whether `req` belongs to a server transaction already open (a
    /// retransmission, or the ACK of a non-2xx final): it is absorbed or
    /// answered as before, whoever sends it.
    pub fn has_server_transaction(&self, req: &Request) -> bool {
        req.top_via().is_some_and(|via| {
            let key = ServerKey::of(req, &via);
            let key = if req.method == Method::Ack {
                key.with_method(Method::Invite)
            } else {
                key
            };
            self.servers.contains_key(&key)
        })
    }

    /// Sends a response within a server transaction. `code` must match `bytes`.
    pub fn respond(
        &mut self,
        now: Instant,
        id: TxId,
        code: u16,
        bytes: Bytes,
    ) -> Result<(), TxError> {
        let tx = self
            .txs
            .get_mut(&id)
            .ok_or(TxError::NoSuchTransaction(id))?;
        let peer = tx.peer;
        let reliable = peer.transport.is_reliable();
        match (tx.kind, tx.state) {
            (Kind::InviteServer, State::Proceeding) => {
                tx.last = Some(bytes.clone());
                self.send(peer, bytes);
                if code < 200 {
                    // A provisional shows the TU is still at work: the guard
                    // restarts (as Timer C does at a proxy, RFC 3261 §16.7).
                    self.arm(id, TimerKind::C, TimerConfig::TIMER_C, now);
                    return Ok(());
                }
                if code < 300 {
                    let sent = self.txs.get(&id).and_then(|t| t.last.clone());
                    let to_tag = sent
                        .and_then(|b| crate::sip::message::parse(&b).ok())
                        .and_then(|m| match m {
                            crate::sip::message::Message::Response(r) => r.to_tag(),
                            crate::sip::message::Message::Request(_) => None,
                        });
                    let tx = self.txs.get_mut(&id).expect("present");
                    if let Some(tags) = tx.ack_tags.as_mut() {
                        tags.1 = to_tag.map(String::into_boxed_str);
                    }
                    tx.state = State::Accepted;
                    if let Some(w) = tx.ack_key.clone() {
                        tx.ack_wait = true;
                        self.ack_waits.insert(w, id);
                    }
                    if !reliable {
                        self.arm(id, TimerKind::Retransmit2xx, self.config.timers.t1, now);
                    }
                    self.arm(id, TimerKind::L, self.config.timers.timeout(), now);
                } else {
                    let tx = self.txs.get_mut(&id).expect("present");
                    tx.state = State::Completed;
                    tx.interval = self.config.timers.t1;
                    if !reliable {
                        self.arm(id, TimerKind::G, self.config.timers.t1, now);
                    }
                    self.arm(id, TimerKind::H, self.config.timers.timeout(), now);
                }
                Ok(())
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding) => {
                tx.last = Some(bytes.clone());
                if code < 200 {
                    tx.state = State::Proceeding;
                    self.send(peer, bytes);
                } else {
                    tx.state = State::Completed;
                    self.send(peer, bytes);
                    self.arm_or_end(id, TimerKind::J, now);
                }
                Ok(())
            }
            _ => Err(TxError::WrongState(id)),
        }
    }

    /// Sends the last provisional response of a pending INVITE again and restarts
    /// its guard: a UAS that takes long should repeat a provisional at least
    /// every minute (RFC 3261 §13.3.1.1), so that neither the caller nor a proxy
    /// on the way (Timer C, 3 min) gives up on a call that is merely queued.
    pub fn refresh_provisional(&mut self, now: Instant, id: TxId) -> Result<(), TxError> {
        let tx = self.txs.get(&id).ok_or(TxError::NoSuchTransaction(id))?;
        if (tx.kind, tx.state) != (Kind::InviteServer, State::Proceeding) {
            return Err(TxError::WrongState(id));
        }
        self.resend_last(id);
        self.arm(id, TimerKind::C, TimerConfig::TIMER_C, now);
        Ok(())
    }

    /// Whether a server transaction is still waiting for a final response.
    pub fn is_pending(&self, id: TxId) -> bool {
        self.txs
            .get(&id)
            .is_some_and(|t| matches!(t.state, State::Trying | State::Proceeding))
    }
}
