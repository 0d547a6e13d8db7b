//! The B2BUA core: calls made of two independent legs, driven by transaction events.
//!
//! Sans-IO like `sip/`: [`Core`] takes raw bytes with the peer they came from and
//! the current time, and hands back bytes to send, its next deadline and records
//! of finished calls. The transport task owns one `Core` (one per shard when
//! sharded by Call-ID: outgoing Call-IDs carry the shard number).
//!
//! A call's phases:
//!
//! ```text
//!  INVITE ─► route ─► Early ──2xx──► Answered ──ACK──► Confirmed ──BYE──► Ending ─► record
//!              │        │                                              ▲
//!              │        ├─ CANCEL / ring timeout ─► (487 / 408 to A) ──┤
//!              │        └─ callee ≥300 / Timer B ─► relayed / 408 ─────┘
//!              └─ 404 no route / 503 overload ─► record
//! ```

pub mod api;
mod callee_answer;
mod dialog;
mod finish;
mod guard;
mod invite;
pub mod leg;
mod media;
mod media_flow;
#[cfg(test)]
mod media_tests;
mod qualify;
mod queued;
pub mod reason;
mod record;
#[cfg(test)]
mod security_tests;
mod strangers;
mod tell_caller;
#[cfg(test)]
mod tests;
mod timer;
mod transfer;
mod unanswered;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, warn};

use crate::acd::Acd;
use crate::call::api::ApiError;
use crate::cdr;
use crate::dialplan::Dialplan;
use crate::registrar::{Registrar, RegistrarConfig};
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::framing;
use crate::sip::ids::{IdGen, Seed};
use crate::sip::message::{self, Headers, Message, Method, Request};
use crate::sip::transaction::{LayerConfig, TransactionLayer, TxEvent, TxId};
use crate::sip::validate::check_request;
use crate::sip::{Peer, Transmit, salvage};
use crate::util::idmap::IdMap;
pub use guard::{GuardConfig, GuardCounts};
pub use leg::Side;
pub use media::{MediaConfig, QueuedAudio, missing_line_prompts, sdp_remote as remote_of};
pub use reason::Reason;
pub use record::CallRecord;
use record::ending_kind;
use timer::CallTimer;

/// What the core needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub layer: LayerConfig,
    /// `host:port` for our Contact header.
    pub contact_host: String,
    pub max_calls: usize,
    pub retry_after_s: u32,
    pub ring_timeout: Duration,
    pub max_duration: Duration,
    pub max_message_bytes: usize,
    /// This core's shard number, embedded in outgoing Call-IDs.
    pub shard: u16,
    /// How agents' REGISTERs are authenticated.
    pub registrar: RegistrarConfig,
    /// Work-order stubs are kept: the agent's INVITE names the call's stub
    /// (`X-Hotline-Ticket`).
    pub tickets: bool,
    /// Anchor RTP at the gateway's relay; `None` relays SDP end to end.
    pub media: Option<MediaConfig>,
    /// What sources that are neither trunks nor registered agents may send.
    pub strangers: GuardConfig,
}

impl Default for CoreConfig {
    /// A core on 127.0.0.1:5060 with RFC timers and the shipped call limits.
    fn default() -> Self {
        CoreConfig {
            layer: LayerConfig {
                timers: Default::default(),
                sent_by: "127.0.0.1:5060".into(),
            },
            contact_host: "127.0.0.1:5060".into(),
            max_calls: 2000,
            retry_after_s: 30,
            ring_timeout: Duration::from_secs(60),
            max_duration: Duration::from_secs(7200),
            max_message_bytes: 65_535,
            shard: 0,
            registrar: RegistrarConfig::default(),
            tickets: true,
            media: None,
            strangers: GuardConfig::default(),
        }
    }
}

/// Identifies a call inside one core.
pub type CallKey = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// B leg placed, no final response yet.
    Early,
    /// 2xx relayed to the caller, waiting for its ACK.
    Answered,
    Confirmed,
    /// Hanging up: waiting for outstanding BYEs or the B INVITE's final response.
    Ending,
}

/// What a transaction means to its call.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Server transaction of the caller's INVITE.
    AInvite,
    /// Client transaction of the INVITE to the callee.
    BInvite,
    /// Our CANCEL or PRACK: the response needs no action.
    Fire,
    /// A BYE we sent as part of hanging up.
    Bye,
    /// A request relayed to `to`: its responses go back on server transaction `server`.
    Relay {
        server: TxId,
        to: Side,
        invite: bool,
        cseq: u32,
    },
    /// A server re-INVITE whose 2xx was relayed: its ACK goes to `client` on `to`.
    AwaitAck { client: TxId, to: Side, cseq: u32 },
    /// The INVITE of a callee leg the call gave up on (see `queued::Orphan`).
    Orphan,
    /// The INVITE of the new leg of a transfer.
    TransferInvite,
    /// The re-INVITE giving the caller the transfer target's offer.
    TransferReinvite,
}

/// One call: two legs and what ties them together.
#[derive(Debug)]
struct Call {
    span: tracing::Span,
    phase: Phase,
    a: Dialog,
    b: Dialog,
    /// The caller's INVITE while it awaits a final response.
    a_invite: Option<(TxId, Box<Request>)>,
    /// The callee INVITE's client transaction while it awaits a final response.
    b_invite: Option<TxId>,
    /// The callee INVITE's client transaction, kept for the ACK of its 2xx.
    b_invite_tx: Option<TxId>,
    b_invite_cseq: u32,
    /// Requests relayed to the other leg, by their server transaction, until final.
    relays: Vec<(TxId, Box<Request>)>,
    b_provisional: bool,
    /// CANCEL requested before the callee sent any provisional response.
    cancel_pending: bool,
    /// BYEs sent and not yet answered.
    byes: u8,
    txs: Vec<TxId>,
    caller: String,
    called: String,
    line: String,
    /// The ACD queue the call is in (or was answered from).
    queue: Option<String>,
    /// The agent being rung, or who answered.
    agent: Option<String>,
    overflowed: bool,
    /// The ACD has been told the call is over for it (after a transfer).
    acd_done: bool,
    /// A transfer in progress.
    transfer: Option<Box<transfer::Transfer>>,
    /// The directory number the call was transferred to.
    transferred_to: Option<String>,
    /// A parallel line's 12345 queue while its legacy seats ring.
    parallel: Option<String>,
    /// Who answered: `"12345"` or `"legacy"` (a parallel line's seats).
    answered_by: Option<&'static str>,
    mode: crate::dialplan::Mode,
    department: Option<String>,
    offered_at: Instant,
    answered_at: Option<Instant>,
    /// The number originally dialled (Diversion / History-Info).
    original: Option<String>,
    /// The raw event log, kept with the call record.
    events: Vec<cdr::Event>,
    /// The line's name, for the work-order stub.
    line_name: String,
    /// When the call's work order is due (local date), from the line's rule.
    deadline: Option<String>,
    reason: Option<Reason>,
    final_code: u16,
    ring_deadline: Option<Instant>,
    end_deadline: Option<Instant>,
    survey_deadline: Option<Instant>,
    progress_deadline: Option<Instant>,
    /// The call's media at the relay, when anchored.
    media: Option<Box<media::CallMedia>>,
    /// The caller's INVITE after the gateway answered it itself (callee legs
    /// are still built from it).
    answered_invite: Option<Box<Request>>,
}

impl Call {
    fn leg(&mut self, side: Side) -> &mut Dialog {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    fn set_reason(&mut self, r: Reason) {
        self.reason.get_or_insert(r);
    }

    /// The caller still waits for a person: its INVITE is pending, or the
    /// gateway answered it and no callee has yet.
    fn waiting(&self) -> bool {
        self.a_invite.is_some()
            || (self.media.as_ref().is_some_and(|m| m.answered_a)
                && self.answered_at.is_none()
                && self.phase != Phase::Ending)
    }
}

/// Counters of what the core has seen, for metrics.
#[derive(Debug, Default, Clone)]
pub struct CoreStats {
    pub messages_in: u64,
    pub parse_errors: u64,
    pub rejected_requests: u64,
    /// Strangers' requests answered statelessly, and dropped over the rate limit.
    pub strangers: GuardCounts,
    /// Responses from another address than their request went to (dropped).
    pub foreign_responses: u64,
}

/// The B2BUA core of one shard.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    tl: TransactionLayer,
    ids: IdGen,
    dialplan: Arc<Dialplan>,
    calls: IdMap<CallKey, Call>,
    next_key: CallKey,
    /// Caller dialogs by (Call-ID, caller's tag).
    by_a: HashMap<(Box<str>, Box<str>), CallKey>,
    /// Callee dialogs by our Call-ID.
    by_b: HashMap<Box<str>, CallKey>,
    by_tx: IdMap<TxId, (CallKey, Role)>,
    timers: BinaryHeap<Reverse<(Instant, CallKey, CallTimer)>>,
    records: VecDeque<CallRecord>,
    /// Calls offered to a person since the last `poll_offer`: their stubs open.
    offers: VecDeque<cdr::Offer>,
    stats: CoreStats,
    acd: Acd,
    registrar: Registrar,
    orphans: IdMap<TxId, queued::Orphan>,
    /// RTP ports for anchored calls.
    ports: crate::media::pool::PortPool,
    /// Orders for the relay since the last `poll_media`.
    media_out: VecDeque<crate::media::command::MediaCommand>,
    /// Finished calls wait for the database: refuse new ones.
    store_backlog: bool,
    /// Rate limits and counters for strangers.
    guard: guard::Guard,
    /// Keepalive OPTIONS to agents in flight.
    probes: qualify::Probes,
    /// Prefix of call record ids: this core's random boot id.
    id_prefix: String,
    /// An instant and the Unix time it corresponds to: the core's wall clock for
    /// time rules, set by the driver (the core never reads the clock).
    wall: (Instant, i64),
}

impl Core {
    /// A core for `dialplan`. `now` starts the ACD's and registrar's clocks.
    /// `seed` is the core's randomness (identifiers, the nonce key, record ids):
    /// from the OS in the gateway ([`Seed::from_os`]), fixed in tests.
    pub fn new(
        cfg: CoreConfig,
        dialplan: Arc<Dialplan>,
        seed: impl Into<Seed>,
        now: Instant,
    ) -> Core {
        let mut ids = IdGen::new(seed);
        let tl = TransactionLayer::new(cfg.layer.clone(), IdGen::new(ids.fork()));
        let acd = Acd::new(queued::acd_config(&dialplan), now).unwrap_or_else(|e| {
            // The dialplan loader checks the same invariants; never expected.
            warn!(error = %e, "ACD configuration refused; no queues");
            Acd::default()
        });
        let mut secret = [0u8; 32];
        ids.fill(&mut secret);
        let mut registrar = Registrar::new(cfg.registrar.clone(), secret, now);
        registrar.set_users(queued::agent_credentials(&dialplan));
        let (lo, hi) = cfg.media.as_ref().map_or((0, 0), |m| m.ports);
        // Its own random draw: it tells nothing of the generator's state.
        let id_prefix = format!("{:012x}", ids.next_u64() & 0xffff_ffff_ffff);
        let guard = guard::Guard::new(cfg.strangers, now);
        Core {
            ports: crate::media::pool::PortPool::new(lo, hi),
            media_out: VecDeque::new(),
            cfg,
            tl,
            ids,
            dialplan,
            calls: IdMap::default(),
            next_key: 1,
            by_a: HashMap::new(),
            by_b: HashMap::new(),
            by_tx: IdMap::default(),
            timers: BinaryHeap::new(),
            records: VecDeque::new(),
            offers: VecDeque::new(),
            stats: CoreStats::default(),
            acd,
            registrar,
            orphans: IdMap::default(),
            wall: (now, 0),
            store_backlog: false,
            guard,
            probes: Default::default(),
            id_prefix,
        }
    }

    /// Mixes fresh entropy from the OS into every generator the core holds (the
    /// driver calls it now and then).
    pub fn reseed(&mut self, fresh: Seed) {
        self.ids.reseed(fresh);
        let forked = self.ids.fork();
        self.tl.reseed(forked);
    }

    /// While set, new calls get `503` + Retry-After with reason `store.backlog`.
    pub fn set_store_backlog(&mut self, on: bool) {
        self.store_backlog = on;
    }

    /// Tells the core which Unix time (in milliseconds) `at` is, for time-of-day
    /// rules and call records.
    pub fn set_wall_clock(&mut self, at: Instant, unix_ms: i64) {
        self.wall = (at, unix_ms);
    }

    /// Unix milliseconds at `now`.
    pub(crate) fn unix_ms(&self, now: Instant) -> i64 {
        let (at, unix) = self.wall;
        match now.checked_duration_since(at) {
            Some(d) => unix + d.as_millis() as i64,
            None => unix - at.duration_since(now).as_millis() as i64,
        }
    }

    /// Local time (the dialplan's UTC offset) at `now`.
    fn local_time(&self, now: Instant) -> crate::dialplan::time::LocalTime {
        let secs = self.unix_ms(now).div_euclid(1000);
        crate::dialplan::time::local_time(secs, self.dialplan.utc_offset_minutes)
    }

    /// Adds an event to a call's log.
    pub(super) fn note(
        &mut self,
        now: Instant,
        key: CallKey,
        kind: cdr::EventKind,
        detail: Option<String>,
    ) {
        let at_ms = self.unix_ms(now);
        let id = self.call_id_of(key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let first_offer = kind == cdr::EventKind::Offered
            && !call
                .events
                .iter()
                .any(|e| e.kind == cdr::EventKind::Offered);
        if first_offer {
            self.offers.push_back(cdr::Offer {
                id,
                sip_call_id: call.a.call_id.to_string(),
                caller: call.caller.clone(),
                called: call.called.clone(),
                original: call.original.clone(),
                line: call.line.clone(),
                line_name: call.line_name.clone(),
                mode: call.mode.as_str().to_string(),
                department: call.department.clone(),
                offered_to: detail.clone().unwrap_or_default(),
                at_ms,
                deadline: call.deadline.clone(),
            });
        }
        call.events.push(cdr::Event {
            at_ms,
            kind,
            detail,
        });
    }

    /// Replaces the dialplan; calls in progress keep the route they took, logged-in
    /// agents stay logged in and queued callers stay queued. The plan goes in
    /// whole or not at all: a line naming a prompt the gateway has not loaded,
    /// or queues the ACD refuses, leave everything as it was.
    pub fn set_dialplan(&mut self, now: Instant, plan: Arc<Dialplan>) -> Result<(), ApiError> {
        if let Some(m) = &self.cfg.media {
            let missing = media::missing_line_prompts(&plan, &m.prompts);
            if !missing.is_empty() {
                return Err(ApiError::Refused(missing.join("; ")));
            }
        }
        self.acd
            .reload(queued::acd_config(&plan), now)
            .map_err(|e| ApiError::Refused(format!("queues: {e}")))?;
        self.registrar.set_users(queued::agent_credentials(&plan));
        self.dialplan = plan;
        self.drain_registrar(now);
        Ok(())
    }

    /// The ACD, for the HTTP API's views and agent state changes.
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// Changes an agent's state from the API; the ACD's resulting commands run.
    pub fn with_acd<T>(&mut self, now: Instant, f: impl FnOnce(&mut Acd) -> T) -> T {
        let r = f(&mut self.acd);
        self.drain_acd(now);
        r
    }

    /// Feeds one UDP datagram.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], peer: Peer) {
        match framing::frame_datagram(data, self.cfg.max_message_bytes) {
            Ok(len) => self.handle_frame(now, &data[..len], peer),
            Err(framing::FrameError::TooLarge { .. }) => {
                self.stats.parse_errors += 1;
                if let Some(bytes) = salvage::error_response(data, 513, "Message Too Large") {
                    self.tl.send_stateless(peer, bytes);
                }
            }
            Err(e) => self.reject_unparsed(data, peer, &e.to_string()),
        }
    }

    /// Feeds one complete message framed off a stream.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], peer: Peer) {
        self.stats.messages_in += 1;
        let msg = match message::parse(frame) {
            Ok(m) => m,
            Err(e) => return self.reject_unparsed(frame, peer, &e.to_string()),
        };
        if let Message::Request(req) = &msg
            && let Err(reject) = check_request(req)
        {
            self.stats.rejected_requests += 1;
            debug!(code = reject.code, reason = %reject.reason, %peer, "request refused");
            if req.method != Method::Ack {
                let mut m = response_to(req, reject.code, &reject.reason, None);
                for (name, value) in &reject.headers {
                    m.header(name, value);
                }
                self.tl.send_stateless(peer, m.finish_empty());
            }
            return;
        }
        if let Message::Request(req) = &msg
            && !self.known_source(peer.addr.ip())
            && self.stranger(now, req, peer)
        {
            return;
        }
        self.tl.handle_message(now, msg, peer);
        self.process_events(now);
    }

    /// The IPs agents registered from (trunks are in the dialplan), and a
    /// generation number that changes whenever this set does: the TCP acceptor
    /// keeps a copy to tell known sources from strangers.
    pub fn registered_sources(&self) -> (u64, impl Iterator<Item = std::net::IpAddr> + '_) {
        self.registrar.registered_sources()
    }

    /// A TCP connection closed (the peer's, or one the gateway opened): agents
    /// who registered over it are rung at their Contact's port from now on.
    pub fn handle_closed(&mut self, peer: Peer) {
        self.registrar.connection_closed(peer);
    }

    /// Answers a message the parser or framer refused: `400` when addressable.
    pub fn reject_unparsed(&mut self, data: &[u8], peer: Peer, detail: &str) {
        self.stats.parse_errors += 1;
        debug!(%peer, detail, "unparseable message");
        if let Some(bytes) = salvage::bad_request(data, detail) {
            self.tl.send_stateless(peer, bytes);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tl.poll_transmit()
    }

    /// The next finished call.
    pub fn poll_record(&mut self) -> Option<CallRecord> {
        self.records.pop_front()
    }

    /// The next call offered to a person (its work-order stub opens now).
    pub fn poll_offer(&mut self) -> Option<cdr::Offer> {
        self.offers.pop_front()
    }

    /// The id of a call: the record's, the stub's and the screen pop's.
    pub(super) fn call_id_of(&self, key: CallKey) -> String {
        format!("{}-{key}", self.id_prefix)
    }

    /// The local date `workdays` working days after `now`, on the calendar.
    pub(super) fn deadline(&self, now: Instant, workdays: u32) -> Option<String> {
        let today = self.local_time(now).date();
        Some(
            self.dialplan
                .calendar
                .add_working_days(today, workdays)
                .to_string(),
        )
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions (for leak checks).
    pub fn transactions(&self) -> usize {
        self.tl.len()
    }

    /// The core's counters, with the strangers' and the transaction layer's.
    pub fn stats(&self) -> CoreStats {
        CoreStats {
            strangers: self.guard.counts(),
            foreign_responses: self.tl.foreign_responses(),
            ..self.stats.clone()
        }
    }

    pub(crate) fn process_events(&mut self, now: Instant) {
        while let Some(ev) = self.tl.poll_event() {
            match ev {
                TxEvent::Request {
                    tx,
                    request,
                    peer,
                    cancels,
                } => self.on_request(now, tx, request, peer, cancels),
                TxEvent::Ack { tx, request, .. } => self.on_ack(tx, &request),
                TxEvent::Response { tx, response } if self.probes.owns(tx) => {
                    self.on_probe_response(now, tx, &response)
                }
                TxEvent::Response { tx, response } => self.on_response(now, tx, response),
                TxEvent::Timeout { tx } if self.probes.owns(tx) => self.on_probe_lost(now, tx),
                TxEvent::Timeout { tx } => self.on_timeout(now, tx),
                TxEvent::AckTimeout { tx } => self.on_ack_timeout(now, tx),
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        peer: Peer,
        cancels: Option<TxId>,
    ) {
        match req.method {
            Method::Cancel => self.on_cancel(now, tx, &req, cancels),
            Method::Invite if req.to_tag().is_none() => self.new_call(now, tx, req, peer),
            _ if req.to_tag().is_some() => self.in_dialog(now, tx, req, peer),
            Method::Register => self.on_register(now, tx, &req, peer),
            Method::Options => {
                let mut m = response_to(&req, 200, "OK", Some(&self.ids.tag()));
                m.header("Allow", ALLOW)
                    .header("Accept", "application/sdp")
                    .header("Supported", "");
                self.respond(now, tx, 200, m.finish_empty());
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Invite => {
                self.reply(now, tx, &req, 481, "Call/Transaction Does Not Exist");
            }
            Method::Other(_) => self.reply(now, tx, &req, 501, "Not Implemented"),
            _ => {
                let mut m = response_to(&req, 405, "Method Not Allowed", Some(&self.ids.tag()));
                m.header("Allow", ALLOW);
                self.respond(now, tx, 405, m.finish_empty());
            }
        }
    }

    /// Sends a plain response on a server transaction.
    fn reply(&mut self, now: Instant, tx: TxId, req: &Request, code: u16, reason: &str) {
        let tag = self.ids.tag();
        let bytes = response_to(req, code, reason, Some(&tag)).finish_empty();
        self.respond(now, tx, code, bytes);
    }

    fn respond(&mut self, now: Instant, tx: TxId, code: u16, bytes: Bytes) {
        if let Err(e) = self.tl.respond(now, tx, code, bytes) {
            debug!(error = %e, "response not sent");
        }
    }

    fn track(&mut self, key: CallKey, tx: TxId, role: Role) {
        self.by_tx.insert(tx, (key, role));
        if let Some(c) = self.calls.get_mut(&key) {
            c.txs.push(tx);
        }
    }
}

/// Methods the gateway handles.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK";

/// The number dialled: the Request-URI's user part (or a `tel:` number).
pub fn called_number(req: &Request) -> String {
    req.parsed_uri()
        .ok()
        .and_then(|u| u.user.map(|u| u.to_string()))
        .unwrap_or_default()
}

/// The caller's number: the From URI's user part.
pub fn caller_number(req: &Request) -> String {
    use message::Headers;
    req.header("From")
        .and_then(|f| message::SipUri::parse(message::addr_spec(f)).ok())
        .and_then(|u| u.user.map(|u| u.to_string()))
        .unwrap_or_else(|| "anonymous".into())
}
