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

use super::digest;
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::ids::IdGen;
use crate::sip::message::{self, Headers, Method, Request, Response};
use crate::sip::transaction::timer::TimerConfig;
use crate::sip::transaction::{LayerConfig, OutRequest, TransactionLayer, TxEvent, TxId};
use crate::sip::{Peer, Transmit, Transport, framing};

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
    /// Real audio: RTP ports for our SDP (each call takes one even port). `None`
    /// offers a placeholder port and sends no audio.
    pub rtp_ports: Option<(u16, u16)>,
}

/// What happened, for the driver to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    Registered {
        expires: u32,
    },
    RegisterFailed {
        code: u16,
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
    /// A transfer we asked for finished with this sipfrag status.
    TransferDone {
        call: u64,
        code: u16,
    },
    /// An outgoing call offered audio on `local_port`: bind it now, so that
    /// early media is not lost before the answer.
    Offered {
        call: u64,
        local_port: u16,
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
    answer_at: Option<Instant>,
    hangup_at: Option<Instant>,
    transfer_at: Option<Instant>,
    auth_tries: u8,
    /// Our RTP port for this call, with real audio.
    rtp_port: Option<u16>,
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
        let tl = TransactionLayer::new(layer, IdGen::new(ids.next_u64()));
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

    /// Registers (or refreshes); `expires` 0 unregisters.
    pub fn register(&mut self, now: Instant, expires: u32) {
        self.reg_auth_tries = 0;
        self.cfg.register_expires = expires;
        self.send_register(now, None);
    }

    fn send_register(&mut self, now: Instant, authorization: Option<String>) {
        self.reg_cseq += 1;
        let tag = self.ids.tag();
        let mut req = OutRequest {
            method: Some(Method::Register),
            uri: format!("sip:{}", self.cfg.server),
            from: format!("{};tag={tag}", self.aor()),
            to: self.aor(),
            call_id: self.reg_call_id.clone(),
            cseq: self.reg_cseq,
            max_forwards: 70,
            extra: vec![
                ("Contact".into(), self.contact()),
                ("Expires".into(), self.cfg.register_expires.to_string()),
                ("User-Agent".into(), "hotline-gw softphone".into()),
            ],
            ..Default::default()
        };
        if let Some(a) = authorization {
            req.extra.push(("Authorization".into(), a));
        }
        let tx = self.tl.send_request(now, self.server(), req);
        self.by_tx.insert(tx, Role::Register);
    }

    /// Places a call to `number` at the gateway.
    pub fn call(&mut self, now: Instant, number: &str) -> u64 {
        let key = self.next_call;
        self.next_call += 1;
        let tag = self.ids.tag();
        let server = self.server();
        let uri = format!("sip:{number}@{}", self.cfg.server);
        let dialog = Dialog {
            call_id: self.ids.call_id(0).into(),
            local_hdr: format!("<sip:{}@{}>;tag={tag}", self.cfg.user, self.cfg.local),
            local_tag: tag.into(),
            remote_tag: None,
            remote_hdr: format!("<{uri}>"),
            remote_target: uri,
            route: Vec::new(),
            peer: server,
            local_cseq: 1,
        };
        let rtp_port = self.rtp.as_mut().and_then(|p| p.take());
        let tx = self.send_invite(now, &dialog, None, rtp_port);
        self.by_call_id.insert(dialog.call_id.to_string(), key);
        self.calls.insert(
            key,
            UaCall {
                dialog,
                state: State::Calling,
                outgoing: true,
                invite_tx: tx,
                incoming: None,
                answered: false,
                answer_at: None,
                hangup_at: None,
                transfer_at: None,
                auth_tries: 0,
                rtp_port,
                media: None,
            },
        );
        self.by_tx.insert(tx, Role::Invite(key));
        if let Some(local_port) = rtp_port {
            self.events.push_back(UaEvent::Offered {
                call: key,
                local_port,
            });
        }
        key
    }

    fn send_invite(
        &mut self,
        now: Instant,
        d: &Dialog,
        authorization: Option<String>,
        rtp_port: Option<u16>,
    ) -> TxId {
        let mut req = d.request_with_cseq(
            Method::Invite,
            d.local_cseq,
            Some("application/sdp".into()),
            sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, rtp_port),
        );
        req.extra.push(("Contact".into(), self.contact()));
        if let Some(a) = authorization {
            req.extra.push(("Proxy-Authorization".into(), a));
        }
        self.tl.send_request(now, self.server(), req)
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
        self.calls.len()
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

    fn on_request(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let known = req.call_id().and_then(|c| self.by_call_id.get(c).copied());
        match (req.method.clone(), known) {
            (Method::Invite, None) if req.to_tag().is_none() => self.incoming(now, tx, req, peer),
            (Method::Bye, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                self.end(key, 200, false);
            }
            (Method::Cancel, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                if let Some(c) = self.calls.get_mut(&key)
                    && let Some(inv) = c.incoming.take()
                {
                    let bytes =
                        response_to(&inv, 487, "Request Terminated", Some(&c.dialog.local_tag))
                            .finish_empty();
                    let _ = self.tl.respond(now, c.invite_tx, 487, bytes);
                    self.end(key, 487, false);
                }
            }
            (Method::Invite, Some(key)) => {
                // A re-INVITE (e.g. the gateway moving us after a transfer): answer
                // its offer.
                let port = self.calls.get(&key).and_then(|c| c.rtp_port);
                let body = sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, port);
                let mut ok = response_to(&req, 200, "OK", None);
                ok.header("Contact", &self.contact());
                let _ = self
                    .tl
                    .respond(now, tx, 200, ok.finish(Some("application/sdp"), &body));
            }
            (Method::Notify, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                let terminated = req
                    .header("Subscription-State")
                    .is_some_and(|s| s.starts_with("terminated"));
                let code = std::str::from_utf8(&req.body)
                    .ok()
                    .and_then(|b| b.strip_prefix("SIP/2.0 "))
                    .and_then(|b| b.get(..3))
                    .and_then(|c| c.parse().ok());
                if let (true, Some(code)) = (terminated, code) {
                    self.events
                        .push_back(UaEvent::TransferDone { call: key, code });
                }
            }
            (Method::Options | Method::Info | Method::Update, Some(_)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
            }
            (Method::Options, None) => {
                let bytes = response_to(&req, 200, "OK", Some(&self.ids.tag())).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
            }
            _ => {
                let tag = self.ids.tag();
                let bytes = response_to(&req, 481, "Call/Transaction Does Not Exist", Some(&tag))
                    .finish_empty();
                let _ = self.tl.respond(now, tx, 481, bytes);
            }
        }
    }

    fn incoming(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let key = self.next_call;
        self.next_call += 1;
        let dialog = Dialog::uas(&req, peer, self.ids.tag());
        let screen_pop = req
            .headers
            .iter()
            .filter(|h| h.name.to_ascii_lowercase().starts_with("x-hotline-"))
            .map(|h| (h.name.to_string(), h.value.clone()))
            .collect();
        let from = req.header("From").unwrap_or_default().to_string();
        let ringing = response_to(&req, 180, "Ringing", Some(&dialog.local_tag));
        let mut ringing = ringing;
        ringing.header("Contact", &self.contact());
        let _ = self.tl.respond(now, tx, 180, ringing.finish_empty());
        self.by_call_id.insert(dialog.call_id.to_string(), key);
        self.calls.insert(
            key,
            UaCall {
                dialog,
                state: State::Ringing,
                outgoing: false,
                invite_tx: tx,
                incoming: Some(Box::new(req)),
                answered: false,
                answer_at: None,
                hangup_at: None,
                transfer_at: None,
                auth_tries: 0,
                rtp_port: None,
                media: None,
            },
        );
        self.events.push_back(UaEvent::Incoming {
            call: key,
            from,
            screen_pop,
        });
        if let Some(d) = self.cfg.answer_after {
            self.arm(key, Timer::Answer, now + d);
        }
    }

    /// Answers a ringing incoming call.
    pub fn answer(&mut self, now: Instant, key: u64) {
        let contact = self.contact();
        let rtp_port = self.rtp.as_mut().and_then(|p| p.take());
        let body = sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, rtp_port);
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(req) = c.incoming.take() else {
            if let (Some(p), Some(pool)) = (rtp_port, self.rtp.as_mut()) {
                pool.give_back(p);
            }
            return;
        };
        c.rtp_port = rtp_port;
        let remote = remote_audio(req.content_type(), &req.body);
        announce_media(&mut self.events, key, c, remote);
        let mut ok = response_to(&req, 200, "OK", Some(&c.dialog.local_tag));
        ok.header("Contact", &contact);
        let _ = self.tl.respond(
            now,
            c.invite_tx,
            200,
            ok.finish(Some("application/sdp"), &body),
        );
        c.state = State::Confirmed;
        c.answered = true;
        self.events.push_back(UaEvent::Answered { call: key });
        if let Some(t) = self.cfg.talk_for {
            self.arm(key, Timer::Hangup, now + t);
        }
        if self.cfg.transfer_to.is_some() {
            self.arm(key, Timer::Transfer, now + self.cfg.transfer_after);
        }
    }

    /// Blind-transfers a call (REFER with Refer-To) to the configured number.
    pub fn transfer(&mut self, now: Instant, key: u64) {
        let Some(number) = self.cfg.transfer_to.clone() else {
            return;
        };
        let refer_to = format!("<sip:{number}@{}>", self.cfg.server);
        let referred_by = self.contact();
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if c.state != State::Confirmed {
            return;
        }
        let mut req = c.dialog.request(Method::Refer, None, Bytes::new());
        req.extra.push(("Refer-To".into(), refer_to));
        req.extra.push(("Referred-By".into(), referred_by));
        let peer = c.dialog.peer;
        let tx = self.tl.send_request(now, peer, req);
        self.by_tx.insert(tx, Role::Other);
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
            Role::Other => {}
        }
    }

    fn on_register_response(&mut self, now: Instant, resp: &Response) {
        match resp.code {
            100..=199 => {}
            200..=299 => {
                let expires = resp
                    .header("Expires")
                    .and_then(|e| e.trim().parse().ok())
                    .or_else(|| {
                        resp.header("Contact").and_then(|c| {
                            message::param(c.rsplit('>').next().unwrap_or(""), "expires")
                                .and_then(|e| e.parse().ok())
                        })
                    })
                    .unwrap_or(self.cfg.register_expires);
                self.events.push_back(UaEvent::Registered { expires });
                if expires > 0 {
                    let refresh = Duration::from_secs(u64::from(expires) * 3 / 4);
                    self.arm(REGISTER_KEY, Timer::Reregister, now + refresh);
                }
            }
            401 | 407 if self.reg_auth_tries < 2 => {
                self.reg_auth_tries += 1;
                match self.answer_challenge(resp, "REGISTER", &format!("sip:{}", self.cfg.server)) {
                    Some(a) => self.send_register(now, Some(a)),
                    None => self
                        .events
                        .push_back(UaEvent::RegisterFailed { code: resp.code }),
                }
            }
            code => self.events.push_back(UaEvent::RegisterFailed { code }),
        }
    }

    fn answer_challenge(&mut self, resp: &Response, method: &str, uri: &str) -> Option<String> {
        let password = self.cfg.password.clone()?;
        let name = if resp.code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let c = digest::pick(resp.header_all(name))?;
        let cnonce = format!("{:016x}", self.ids.next_u64());
        Some(digest::authorization(
            &c,
            &self.cfg.user,
            &password,
            method,
            uri,
            &cnonce,
            1,
        ))
    }

    fn on_invite_response(&mut self, now: Instant, key: u64, tx: TxId, resp: Response) {
        let code = resp.code;
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if code < 200 {
            if code > 100 && c.state == State::Calling {
                c.state = State::Ringing;
            }
            if code > 100 {
                // Early media (a 183 with SDP): the greeting of a queued line.
                let remote = remote_audio(resp.content_type(), &resp.body);
                announce_media(&mut self.events, key, c, remote);
            }
            return;
        }
        if code < 300 {
            c.dialog.learn_from_response(&resp);
            let ack =
                c.dialog
                    .request_with_cseq(Method::Ack, c.dialog.local_cseq, None, Bytes::new());
            let peer = c.dialog.peer;
            self.tl.send_ack(Some(tx), peer, ack);
            if c.state == State::Ending {
                // We cancelled, but the answer won the race: hang up properly.
                c.state = State::Confirmed;
                self.hangup(now, key);
                return;
            }
            c.state = State::Confirmed;
            c.answered = true;
            self.events.push_back(UaEvent::Answered { call: key });
            let remote = remote_audio(resp.content_type(), &resp.body);
            announce_media(&mut self.events, key, c, remote);
            if let Some(t) = self.cfg.talk_for {
                self.arm(key, Timer::Hangup, now + t);
            }
            return;
        }
        let retry_auth = (code == 401 || code == 407) && c.auth_tries < 2;
        let by_us = c.state == State::Ending;
        if retry_auth {
            c.auth_tries += 1;
            let uri = c.dialog.remote_target.clone();
            if let Some(a) = self.answer_challenge(&resp, "INVITE", &uri) {
                self.retry_invite(now, key, a);
                return;
            }
        }
        self.end(key, code, by_us);
    }

    /// Re-sends an INVITE with credentials (same dialog, next CSeq).
    fn retry_invite(&mut self, now: Instant, key: u64, authorization: String) {
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        c.dialog.local_cseq += 1;
        let d = std::mem::replace(&mut c.dialog, Dialog::none());
        let port = c.rtp_port;
        let tx = self.send_invite(now, &d, Some(authorization), port);
        if let Some(c) = self.calls.get_mut(&key) {
            c.dialog = d;
            c.invite_tx = tx;
        }
        self.by_tx.insert(tx, Role::Invite(key));
    }

    fn on_timeout(&mut self, tx: TxId) {
        match self.by_tx.remove(&tx) {
            Some(Role::Invite(key)) => self.end(key, 408, false),
            Some(Role::Bye(key)) => self.end(key, 200, true),
            Some(Role::Register) => self.events.push_back(UaEvent::RegisterFailed { code: 408 }),
            _ => {}
        }
    }

    fn end(&mut self, key: u64, code: u16, by_us: bool) {
        if let Some(c) = self.calls.remove(&key) {
            self.by_call_id.remove(&*c.dialog.call_id);
            if let (Some(p), Some(pool)) = (c.rtp_port, self.rtp.as_mut()) {
                pool.give_back(p);
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

/// Tells the driver where a call's audio goes, when a new SDP names a new place.
fn announce_media(
    events: &mut VecDeque<UaEvent>,
    key: u64,
    c: &mut UaCall,
    remote: Option<crate::media::command::Remote>,
) {
    let (Some(local_port), Some(remote)) = (c.rtp_port, remote) else {
        return;
    };
    if c.media == Some(remote) {
        return;
    }
    c.media = Some(remote);
    events.push_back(UaEvent::Media {
        call: key,
        local_port,
        remote,
    });
}

/// Where the far end wants our audio, from an SDP body.
fn remote_audio(content_type: Option<&str>, body: &[u8]) -> Option<crate::media::command::Remote> {
    let is_sdp = content_type.is_some_and(|c| c.trim().eq_ignore_ascii_case("application/sdp"));
    if !is_sdp {
        return None;
    }
    let sdp = crate::sip::sdp::Sdp::parse(std::str::from_utf8(body).ok()?).ok()?;
    crate::call::remote_of(&sdp)
}

/// A PCMA/PCMU offer or answer for our address: on `rtp_port` with real audio,
/// else on a placeholder port nothing listens on.
fn sdp(local: SocketAddr, session: u64, rtp_port: Option<u16>) -> Bytes {
    let ip = local.ip();
    let port = rtp_port.unwrap_or(10_000 + (session % 20_000) as u16 / 2 * 2);
    Bytes::from(format!(
        "v=0\r\no=softphone {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    ))
}
