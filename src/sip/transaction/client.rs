//! Client transactions: INVITE (§17.1.1 with RFC 6026) and non-INVITE (§17.1.2),
//! plus the CANCEL (§9.1) and ACK the layer builds for them.

use std::time::Instant;

use bytes::Bytes;

use super::{
    ClientKey, Index, Kind, OutRequest, State, TimerConfig, TimerKind, TransactionLayer, Tx,
};
use super::{TxError, TxEvent, TxId};
use crate::sip::Peer;
use crate::sip::message::{Headers, Method, Response};

impl TransactionLayer {
    /// Starts a client transaction for `req` towards `peer`. ACK is not a
    /// transaction: use [`send_ack`](Self::send_ack).
    pub fn send_request(&mut self, now: Instant, peer: Peer, req: OutRequest) -> TxId {
        let branch = self.ids.branch();
        let via = self.via(peer, &branch);
        self.start_client(now, peer, req, branch, via)
    }

    fn via(&self, peer: Peer, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            peer.transport.as_str(),
            self.config.sent_by,
            branch
        )
    }

    fn start_client(
        &mut self,
        now: Instant,
        peer: Peer,
        req: OutRequest,
        branch: String,
        via: String,
    ) -> TxId {
        let method = req.method().clone();
        let invite = method == Method::Invite;
        let bytes = req.write(&via);
        let id = self.alloc_id();
        let key = ClientKey {
            branch: branch.into(),
            method,
        };
        let tx = Tx {
            kind: if invite {
                Kind::InviteClient
            } else {
                Kind::NonInviteClient
            },
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            peer,
            index: Index::Client(key.clone()),
            timers: Default::default(),
            interval: self.config.timers.t1,
            last: Some(bytes.clone()),
            ack: None,
            parts: invite.then(|| {
                let mut parts = req;
                parts.body = Bytes::new();
                parts.extra.clear();
                Box::new(parts)
            }),
            via: invite.then(|| via.into()),
            merge: None,
            ack_key: None,
            ack_wait: false,
            ack_tags: None,
        };
        self.clients.insert(key, id);
        self.txs.insert(id, tx);
        self.send(peer, bytes);
        let (retrans, timeout) = if invite {
            (TimerKind::A, TimerKind::B)
        } else {
            (TimerKind::E, TimerKind::F)
        };
        if !peer.transport.is_reliable() {
            self.arm(id, retrans, self.config.timers.t1, now);
        }
        self.arm(id, timeout, self.config.timers.timeout(), now);
        id
    }

    /// Cancels a pending client INVITE (RFC 3261 §9.1): a new non-INVITE
    /// transaction with the INVITE's branch. The caller must have seen a
    /// provisional response first; a final one makes the CANCEL pointless.
    pub fn cancel(&mut self, now: Instant, invite: TxId) -> Result<TxId, TxError> {
        let tx = self
            .txs
            .get(&invite)
            .ok_or(TxError::NoSuchTransaction(invite))?;
        if tx.kind != Kind::InviteClient || !matches!(tx.state, State::Calling | State::Proceeding)
        {
            return Err(TxError::WrongState(invite));
        }
        let (Some(parts), Some(via), Index::Client(key)) = (&tx.parts, &tx.via, &tx.index) else {
            return Err(TxError::WrongState(invite));
        };
        let mut cancel = (**parts).clone();
        cancel.method = Some(Method::Cancel);
        let bytes = cancel.write_as(&Method::Cancel, parts.cseq, via, &parts.to, false);
        let (peer, branch, via) = (tx.peer, key.branch.clone(), via.clone());
        let id = self.alloc_id();
        let ckey = ClientKey {
            branch,
            method: Method::Cancel,
        };
        self.clients.insert(ckey.clone(), id);
        self.txs.insert(
            id,
            Tx {
                kind: Kind::NonInviteClient,
                state: State::Trying,
                peer,
                index: Index::Client(ckey),
                timers: Default::default(),
                interval: self.config.timers.t1,
                last: Some(bytes.clone()),
                ack: None,
                parts: None,
                via: Some(via),
                merge: None,
                ack_key: None,
                ack_wait: false,
                ack_tags: None,
            },
        );
        self.send(peer, bytes);
        if !peer.transport.is_reliable() {
            self.arm(id, TimerKind::E, self.config.timers.t1, now);
        }
        self.arm(id, TimerKind::F, self.config.timers.timeout(), now);
        Ok(id)
    }

    /// Sends the ACK for a 2xx (built by the dialog: new branch, remote target).
    /// When `invite` is still in Accepted, the ACK is kept and re-sent for every
    /// retransmission of the 2xx.
    pub fn send_ack(&mut self, invite: Option<TxId>, peer: Peer, ack: OutRequest) {
        let branch = self.ids.branch();
        let bytes = ack.write(&self.via(peer, &branch));
        if let Some(tx) = invite.and_then(|id| self.txs.get_mut(&id))
            && tx.kind == Kind::InviteClient
            && tx.state == State::Accepted
        {
            tx.ack = Some(bytes.clone());
        }
        self.send(peer, bytes);
    }

    pub(super) fn handle_response(&mut self, now: Instant, resp: Response, from: Peer) {
        let Some(key) = ClientKey::of_response(&resp) else {
            return;
        };
        let Some(&id) = self.clients.get(&key) else {
            return; // Stray: no transaction (RFC 3261 §18.1.2 says discard).
        };
        let Some(tx) = self.txs.get(&id) else {
            return;
        };
        if tx.peer.addr.ip() != from.addr.ip() || tx.peer.transport != from.transport {
            // Only the host the request went to may answer it (any port: some
            // far ends answer from another socket; the 128-bit branch is secret
            // to everyone else): a forged 200 or 486 from elsewhere is a stray
            // (DESIGN.md §7).
            self.foreign_responses += 1;
            return;
        }
        match tx.kind {
            Kind::InviteClient => self.invite_response(now, id, resp),
            Kind::NonInviteClient => self.non_invite_response(now, id, resp),
            _ => {}
        }
    }

    fn invite_response(&mut self, now: Instant, id: TxId, resp: Response) {
        let code = resp.code;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        match tx.state {
            State::Calling | State::Proceeding => {
                tx.timers.clear(TimerKind::A);
                tx.timers.clear(TimerKind::C);
                if code < 200 {
                    tx.state = State::Proceeding;
                    tx.timers.clear(TimerKind::B);
                    // Timer C restarts with every provisional (RFC 3261 §16.6).
                    self.arm(id, TimerKind::C, TimerConfig::TIMER_C, now);
                } else if code < 300 {
                    tx.state = State::Accepted;
                    tx.timers.clear(TimerKind::B);
                    // Only the dialog's ACK is needed from here on (kept by send_ack).
                    tx.last = None;
                    tx.parts = None;
                    tx.via = None;
                    self.arm(id, TimerKind::M, self.config.timers.timeout(), now);
                } else {
                    tx.state = State::Completed;
                    tx.timers.clear(TimerKind::B);
                    tx.last = None;
                    let ack = self.non_2xx_ack(id, &resp);
                    if let Some(tx) = self.txs.get_mut(&id) {
                        tx.ack = ack.clone();
                        tx.parts = None;
                        let peer = tx.peer;
                        if let Some(ack) = ack {
                            self.send(peer, ack);
                        }
                    }
                    self.events.push_back(TxEvent::Response {
                        tx: id,
                        response: resp,
                    });
                    self.arm_or_end(id, TimerKind::D, now);
                    return;
                }
                self.events.push_back(TxEvent::Response {
                    tx: id,
                    response: resp,
                });
            }
            State::Accepted if (200..300).contains(&code) => {
                // A retransmitted 2xx: re-send our ACK if the dialog has sent one.
                if let Some(ack) = tx.ack.clone() {
                    let peer = tx.peer;
                    self.send(peer, ack);
                }
            }
            State::Completed if code >= 300 => {
                if let Some(ack) = tx.ack.clone() {
                    let peer = tx.peer;
                    self.send(peer, ack);
                }
            }
            _ => {}
        }
    }

    /// The ACK for a non-2xx final response: same branch and Request-URI, To from
    /// the response (RFC 3261 §17.1.1.3).
    fn non_2xx_ack(&self, id: TxId, resp: &Response) -> Option<Bytes> {
        let tx = self.txs.get(&id)?;
        let parts = tx.parts.as_ref()?;
        let via = tx.via.as_ref()?;
        let to = resp.header("To").unwrap_or(&parts.to);
        Some(parts.write_as(&Method::Ack, parts.cseq, via, to, false))
    }

    fn non_invite_response(&mut self, now: Instant, id: TxId, resp: Response) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        if !matches!(tx.state, State::Trying | State::Proceeding) {
            return; // Completed: absorb retransmitted finals.
        }
        if resp.code < 200 {
            if tx.state == State::Trying {
                tx.state = State::Proceeding;
            }
            self.events.push_back(TxEvent::Response {
                tx: id,
                response: resp,
            });
            return;
        }
        tx.state = State::Completed;
        tx.timers.clear(TimerKind::E);
        tx.timers.clear(TimerKind::F);
        tx.last = None;
        self.events.push_back(TxEvent::Response {
            tx: id,
            response: resp,
        });
        self.arm_or_end(id, TimerKind::K, now);
    }
}
