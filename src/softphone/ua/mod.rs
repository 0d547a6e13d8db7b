//! The softphone's user agent: registration, outgoing and incoming calls, with the
//! policy of a test client (auto-answer after a delay, talk for a while, hang up).
//!
//! Sans-IO like the gateway's core: built on [`TransactionLayer`] and [`Dialog`],
//! driven by `now`, datagrams in and [`Transmit`]s out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::ids::IdGen;
use crate::sip::message::{self, Method, Request, Response};
use crate::sip::transaction::timer::TimerConfig;
use crate::sip::transaction::{LayerConfig, TransactionLayer, TxEvent, TxId};
use crate::sip::{Peer, Transmit, Transport, framing};

mod incoming;
mod outgoing;
mod register;
mod sdp;
#[cfg(test)]
mod tests;

/// How the softphone behaves.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our bound address, written into Via and Contact.
    pub local: SocketAddr,
    /// The gateway (registrar and outbound proxy).
    pub server: SocketAddr,
    /// Our user part: an agent id, or the caller's number.
    pub user: String,
    pub password: Option<String>,
    pub timers: TimerConfig,
    /// Answer incoming calls after this delay; `None` lets them ring.
    pub answer_after: Option<Duration>,
    /// Hang up this long after answer; `None` waits for the far end.
    pub talk_for: Option<Duration>,
    pub register_expires: u32,
    /// Agent mode: blind-transfer each answered call (REFER) to this number.
    pub transfer_to: Option<String>,
    /// How long after answering to transfer.
    pub transfer_after: Duration,
    /// What `transfer_to` does: a blind transfer, a three-party call, or a
    /// consultation followed by an attended transfer.
    pub transfer_mode: TransferMode,
    /// Real audio: RTP ports for our SDP (each call takes one even port). `None`
    /// offers a placeholder port and sends no audio.
    pub rtp_ports: Option<(u16, u16)>,
}

/// What the agent does with `transfer_to` once it has answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransferMode {
    /// REFER to the number (blind transfer).
    #[default]
    Blind,
    /// REFER with `;hotline=conference`: the number joins a three-party call.
    Conference,
    /// Call the number (a consultation), then REFER with Replaces naming it
    /// (attended transfer, RFC 5589 §7).
    Attended,
}

/// What happened, for the driver to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    Registered {
        expires: u32,
    },
    /// The final status line of the failed REGISTER (`403 Forbidden (…)`).
    RegisterFailed {
        status: String,
    },
    /// The server refused an outgoing call with this status line (reported
    /// just before its `Ended`).
    Refused {
        call: u64,
        status: String,
    },
    /// An incoming call, with the `X-Hotline-*` screen-pop headers it carried.
    Incoming {
        call: u64,
        from: String,
        screen_pop: Vec<(String, String)>,
    },
    Answered {
        call: u64,
    },
    /// A call ended: `code` is the final status of a failed call, or 200 when an
    /// answered call ended; `by_us` says who hung up or gave up.
    Ended {
        call: u64,
        code: u16,
        by_us: bool,
    },
    /// The gateway said who answered an outgoing call (`X-Hotline-Answered-By`
    /// on its 200 or, once an agent takes a call the gateway answered, on an
    /// INFO): `gateway`, `agent`, `legacy` or `direct`; `far end` for a 200
    /// that does not say.
    AnsweredBy {
        call: u64,
        by: String,
    },
    /// The gateway started the satisfaction survey on an outgoing call (an
    /// INFO with `X-Hotline-Survey`).
    SurveyStarted {
        call: u64,
    },
    /// A transfer we asked for finished with this sipfrag status.
    TransferDone {
        call: u64,
        code: u16,
    },
    /// A call has audio (early media on a 18x, or the answer): send from
    /// `local_port` to `remote`. Sent again when a later SDP moves the far end.
    Media {
        call: u64,
        local_port: u16,
        remote: crate::media::command::Remote,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Ringing,
    Confirmed,
    Ending,
}

#[derive(Debug)]
struct UaCall {
    dialog: Dialog,
    state: State,
    outgoing: bool,
    /// Outgoing: the INVITE's client transaction. Incoming: its server transaction.
    invite_tx: TxId,
    incoming: Option<Box<Request>>,
    answered: bool,
    /// Outgoing: any response to the INVITE arrived (the server is alive).
    heard: bool,
    /// Given up on before any response: reported ended, kept only so that a
    /// late provisional gets its CANCEL and a late 2xx its ACK and BYE.
    given_up: bool,
    answer_at: Option<Instant>,
    hangup_at: Option<Instant>,
    transfer_at: Option<Instant>,
    auth_tries: u8,
    /// Challenges to our REFER answered so far.
    refer_auth_tries: u8,
    /// Our RTP port for this call, with real audio.
    rtp_port: Option<u16>,
    /// The consultation placed for this call's attended transfer.
    consulting: Option<u64>,
    /// This call is the consultation of that call.
    consult_for: Option<u64>,
    /// The far end's audio as last announced in a [`UaEvent::Media`].
    media: Option<crate::media::command::Remote>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Answer,
    Hangup,
    Reregister,
    Transfer,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Register,
    Invite(u64),
    Bye(u64),
    Refer(u64),
    Other,
}

/// The user agent.
#[derive(Debug)]
pub struct Ua {
    cfg: UaConfig,
    tl: TransactionLayer,
    ids: IdGen,
    calls: HashMap<u64, UaCall>,
    by_call_id: HashMap<String, u64>,
    by_tx: HashMap<TxId, Role>,
    next_call: u64,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    events: VecDeque<UaEvent>,
    /// RTP ports just written into an SDP, for the driver to bind.
    new_rtp_ports: VecDeque<(u64, u16)>,
    reg_call_id: String,
    reg_cseq: u32,
    reg_auth_tries: u8,
    reregister_at: Option<Instant>,
    rtp: Option<crate::media::pool::PortPool>,
}

const REGISTER_KEY: u64 = 0;

impl Ua {
    pub fn new(cfg: UaConfig, seed: u64) -> Ua {
        let mut ids = IdGen::new(seed);
        let layer = LayerConfig {
            timers: cfg.timers,
            sent_by: cfg.local.to_string(),
        };
        let tl = TransactionLayer::new(layer, IdGen::new(ids.fork()));
        let reg_call_id = ids.call_id(0);
        let rtp = cfg
            .rtp_ports
            .map(|(lo, hi)| crate::media::pool::PortPool::new(lo, hi));
        Ua {
            rtp,
            cfg,
            tl,
            ids,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_tx: HashMap::new(),
            next_call: 1,
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            new_rtp_ports: VecDeque::new(),
            reg_call_id,
            reg_cseq: 0,
            reg_auth_tries: 0,
            reregister_at: None,
        }
    }

    fn server(&self) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: self.cfg.server,
        }
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.cfg.user, self.cfg.local)
    }

    fn aor(&self) -> String {
        format!("<sip:{}@{}>", self.cfg.user, self.cfg.server)
    }

    /// Ends a call from our side: CANCEL before answer, BYE after.
    pub fn hangup(&mut self, now: Instant, key: u64) {
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        match (c.state, c.outgoing) {
            (State::Calling | State::Ringing, true) => {
                c.state = State::Ending;
                if let Ok(tx) = self.tl.cancel(now, c.invite_tx) {
                    self.by_tx.insert(tx, Role::Other);
                }
            }
            (State::Calling | State::Ringing, false) => {
                if let Some(req) = c.incoming.take() {
                    let bytes = response_to(&req, 486, "Busy Here", Some(&c.dialog.local_tag))
                        .finish_empty();
                    let _ = self.tl.respond(now, c.invite_tx, 486, bytes);
                }
                self.end(key, 486, true);
            }
            (State::Confirmed, _) => {
                c.state = State::Ending;
                let bye = c.dialog.request(Method::Bye, None, Bytes::new());
                let tx = self.tl.send_request(now, c.dialog.peer, bye);
                self.by_tx.insert(tx, Role::Bye(key));
            }
            (State::Ending, _) => {}
        }
    }

    /// Hangs up every call (the softphone is stopping).
    pub fn hangup_all(&mut self, now: Instant) {
        let mut keys: Vec<u64> = self.calls.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.hangup(now, key);
        }
    }

    /// Gives up on a call: as [`hangup`](Self::hangup), except that an outgoing
    /// call no response has come for (a server that is down) ends here and now
    /// with 408, rather than when the INVITE transaction times out (64·T1).
    pub fn give_up(&mut self, now: Instant, key: u64) {
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if !(c.outgoing && c.state == State::Calling && !c.heard) {
            return self.hangup(now, key);
        }
        // No CANCEL before a provisional (RFC 3261 §9.1): it goes if one comes.
        c.given_up = true;
        c.state = State::Ending;
        self.events.push_back(UaEvent::Ended {
            call: key,
            code: 408,
            by_us: true,
        });
    }

    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], peer: Peer) {
        let Ok(n) = framing::frame_datagram(data, 65_535) else {
            return;
        };
        if let Ok(msg) = message::parse(&data[..n]) {
            self.tl.handle_message(now, msg, peer);
            self.process(now);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tl.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key, t))) = self.timers.peek().copied() {
            if self.timer_armed(key, t, at) {
                return Some(self.tl.poll_timeout().map_or(at, |x| x.min(at)));
            }
            self.timers.pop();
        }
        self.tl.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tl.handle_timeout(now);
        self.process(now);
        while let Some(Reverse((at, key, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !self.timer_armed(key, t, at) {
                continue;
            }
            match t {
                Timer::Answer => self.answer(now, key),
                Timer::Hangup => self.hangup(now, key),
                Timer::Transfer => self.transfer(now, key),
                Timer::Reregister => {
                    self.reregister_at = None;
                    self.register(now, self.cfg.register_expires);
                }
            }
            self.process(now);
        }
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| !c.given_up).count()
    }

    /// The next RTP port a call has just put in an SDP (an offer, an answer):
    /// the driver binds it before the SDP goes out, so that nothing sent to it
    /// is lost (early media before the answer, the first frames after it).
    pub fn poll_new_rtp_port(&mut self) -> Option<(u64, u16)> {
        self.new_rtp_ports.pop_front()
    }

    fn timer_armed(&self, key: u64, t: Timer, at: Instant) -> bool {
        match t {
            Timer::Reregister => self.reregister_at == Some(at),
            Timer::Answer => self
                .calls
                .get(&key)
                .is_some_and(|c| c.answer_at == Some(at)),
            Timer::Hangup => self
                .calls
                .get(&key)
                .is_some_and(|c| c.hangup_at == Some(at)),
            Timer::Transfer => self
                .calls
                .get(&key)
                .is_some_and(|c| c.transfer_at == Some(at)),
        }
    }

    fn arm(&mut self, key: u64, t: Timer, at: Instant) {
        match t {
            Timer::Reregister => self.reregister_at = Some(at),
            Timer::Answer | Timer::Hangup | Timer::Transfer => {
                let Some(c) = self.calls.get_mut(&key) else {
                    return;
                };
                match t {
                    Timer::Answer => c.answer_at = Some(at),
                    Timer::Hangup => c.hangup_at = Some(at),
                    _ => c.transfer_at = Some(at),
                }
            }
        }
        self.timers.push(Reverse((at, key, t)));
    }

    fn process(&mut self, now: Instant) {
        while let Some(ev) = self.tl.poll_event() {
            match ev {
                TxEvent::Request {
                    tx, request, peer, ..
                } => self.on_request(now, tx, request, peer),
                TxEvent::Response { tx, response } => self.on_response(now, tx, response),
                TxEvent::Timeout { tx } => self.on_timeout(tx),
                TxEvent::Ack { .. } | TxEvent::AckTimeout { .. } => {}
            }
        }
    }

    fn on_response(&mut self, now: Instant, tx: TxId, resp: Response) {
        let Some(role) = self.by_tx.get(&tx).copied() else {
            return;
        };
        if resp.code >= 200 {
            self.by_tx.remove(&tx);
        }
        match role {
            Role::Register => self.on_register_response(now, &resp),
            Role::Invite(key) => self.on_invite_response(now, key, tx, resp),
            Role::Bye(key) => {
                if resp.code >= 200 {
                    self.end(key, 200, true);
                }
            }
            Role::Refer(key) => self.on_refer_response(now, key, &resp),
            Role::Other => {}
        }
    }

    fn on_timeout(&mut self, tx: TxId) {
        match self.by_tx.remove(&tx) {
            Some(Role::Invite(key)) => self.end(key, 408, false),
            Some(Role::Bye(key)) => self.end(key, 200, true),
            Some(Role::Register) => self.events.push_back(UaEvent::RegisterFailed {
                status: "408 Request Timeout (no answer from the gateway)".into(),
            }),
            _ => {}
        }
    }

    fn end(&mut self, key: u64, code: u16, by_us: bool) {
        if let Some(c) = self.calls.remove(&key) {
            self.by_call_id.remove(&*c.dialog.call_id);
            if let (Some(p), Some(pool)) = (c.rtp_port, self.rtp.as_mut()) {
                pool.give_back(p);
            }
            if c.given_up {
                return; // reported when it was given up
            }
            let code = if c.answered { 200 } else { code };
            self.events.push_back(UaEvent::Ended {
                call: key,
                code,
                by_us,
            });
        }
    }
}
