//! The B2BUA core: calls made of a caller's dialog and a callee [`leg::Leg`],
//! driven by transaction events.
//!
//! Sans-IO like `sip/`: [`Core`] takes raw bytes with the peer they came from and
//! the current time, and hands back bytes to send, its next deadline and records
//! of finished calls. The transport task owns one `Core`. Callee Call-IDs carry
//! the core's shard number, so that a driver running several cores could route
//! by Call-ID; today there is one.
//!
//! Where a call stands is one `CallState`; its chart is at the top of `state.rs`.
//! The call's timers, one per purpose, are in `timer.rs`.

mod announce;
pub mod api;
mod attended;
mod callback;
mod callback_dial;
mod callee_answer;
pub(crate) mod conference;
mod core_config;
mod dialog;
mod dispatch;
mod finish;
#[cfg(test)]
mod flow_tests;
mod guard;
mod handover;
mod invite;
pub mod leg;
mod legacy_transfer;
mod media;
mod media_flow;
mod media_sdp;
#[cfg(test)]
mod media_tests;
mod parting;
mod qualify;
mod queued;
pub mod reason;
mod record;
mod refer_target;
mod routing;
#[cfg(test)]
mod security_tests;
mod serving;
#[cfg(test)]
mod serving_tests;
mod shared;
mod state;
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
use std::time::Instant;

use tracing::{debug, warn};

use crate::acd::Acd;
use crate::call::api::ApiError;
use crate::cdr;
use crate::dialplan::Dialplan;
use crate::registrar::Registrar;
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::framing;
use crate::sip::ids::{IdGen, Seed};
use crate::sip::message::{self, Message, Method, Request};
use crate::sip::transaction::{TransactionLayer, TxId};
use crate::sip::validate::check_request;
use crate::sip::{Peer, Transmit, salvage};
use crate::util::idmap::IdMap;
pub use core_config::CoreConfig;
pub use guard::{GuardConfig, GuardCounts};
pub use leg::Side;
use leg::{Leg, LegId, Legs};
pub use media::{MediaConfig, QueuedAudio};
pub use media_sdp::missing_line_prompts;
pub use reason::Reason;
pub use record::FinishedCall;
use record::ending_kind;
pub use serving::Serving;
pub use state::AnsweredBy;
use state::{CallState, SurveyStep};
use timer::{CallTimer, Timers};

/// Identifies a call inside one core.
pub type CallKey = u64;

/// What a transaction means to its call.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Server transaction of the caller's INVITE.
    AInvite,
    /// Client transaction of the INVITE to the callee.
    BInvite,
    /// Our CANCEL, PRACK, NOTIFY or a BYE whose answer changes nothing.
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
    /// The INVITE of a three-party call's third leg.
    PartyInvite,
    /// The gateway's INVITE to an agent's phone (a callback by the API).
    AgentInvite,
}

/// One call: the caller's dialog, the callee leg, and what ties them together.
#[derive(Debug)]
struct Call {
    key: CallKey,
    span: tracing::Span,
    state: CallState,
    /// The caller's dialog (the gateway is its UAS).
    a: Dialog,
    /// The caller's tag under which `Core::by_a` finds the call (`a`'s
    /// remote tag is cleared when its dialog ends before the call does).
    a_tag: Option<Box<str>>,
    /// The caller's INVITE while it awaits a final response.
    a_invite: Option<(TxId, Box<Request>)>,
    /// The caller's INVITE after the gateway answered it itself (queued callers
    /// with media): callee legs are still built from it.
    answered_invite: Option<Box<Request>>,
    /// The caller acknowledged the 2xx it got (the gateway's or the callee's).
    a_acked: bool,
    /// The legs the call placed (the callee; a transfer's new leg).
    legs: Legs,
    /// The callee among them: the destination, agent or legacy seat rung or connected.
    callee: Option<LegId>,
    /// Requests relayed to the other leg, by their server transaction, until final.
    relays: Vec<(TxId, Box<Request>)>,
    /// BYEs sent and not yet answered.
    byes: u8,
    txs: Vec<TxId>,
    caller: String,
    called: String,
    line: String,
    /// The ACD queue the call is in (or was answered from).
    queue: Option<String>,
    /// The ACD knows the call: it must be told once when the call leaves it.
    in_acd: bool,
    /// The agent being rung, or who answered.
    agent: Option<String>,
    overflowed: bool,
    /// The directory number the call was transferred to.
    transferred_to: Option<String>,
    answered_by: Option<AnsweredBy>,
    mode: crate::dialplan::Mode,
    department: Option<String>,
    /// The trunk the call came in over (its source address).
    trunk: Option<String>,
    /// The line's department's transfer number (direct merge).
    transfer_number: Option<String>,
    offered_at: Instant,
    answered_at: Option<Instant>,
    /// Milestones already written to the event log (never read back from it).
    offer_noted: bool,
    ringback_noted: bool,
    end_noted: bool,
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
    timers: Timers,
    /// The call's media at the relay, when anchored.
    media: Option<Box<media::CallMedia>>,
    /// Being handed to another node (this one is draining).
    handover: Option<handover::Handover>,
    /// Handed over by another node: the Unix time of its first offer there,
    /// which this node's first offer takes.
    adopted_offer_ms: Option<i64>,
    /// An agent calling a citizen back: which missed call, who.
    callback: Option<callback::Attempt>,
    /// A parallel line's caller INVITE, kept while legacy seats may hand the
    /// call to 12345 (callee legs are built from it).
    caller_invite: Option<Box<Request>>,
    /// A third party the agent added (`conference.rs`).
    third: Option<Box<conference::Third>>,
    /// An agent's consultation of a directory number: the agent (`attended.rs`).
    consult: Option<String>,
    /// The gateway placed the A side itself (a callback dialled by the API:
    /// `callback_dial.rs`): `a` is its UAC dialog with the agent's phone.
    a_placed: bool,
    /// Until the agent answers: where the call goes next, and the INVITE.
    a_route: Option<Box<(crate::dialplan::Line, crate::dialplan::Outcome, TxId)>>,
}

impl Call {
    /// A call on `line` whose caller side is `a`, with nothing else known
    /// yet: no INVITE pending, no leg, no media, offered `now`.
    fn new(
        key: CallKey,
        span: tracing::Span,
        state: CallState,
        a: Dialog,
        line: &crate::dialplan::Line,
        now: Instant,
    ) -> Call {
        Call {
            key,
            span,
            state,
            a_tag: a.remote_tag.clone(),
            a,
            a_invite: None,
            answered_invite: None,
            a_acked: false,
            legs: Legs::default(),
            callee: None,
            relays: Vec::new(),
            byes: 0,
            txs: Vec::with_capacity(4),
            caller: String::new(),
            called: String::new(),
            line: line.number.clone(),
            queue: None,
            in_acd: false,
            agent: None,
            overflowed: false,
            transferred_to: None,
            answered_by: None,
            mode: line.mode,
            department: line.department.clone(),
            trunk: None,
            transfer_number: line.transfer_number.clone(),
            offered_at: now,
            answered_at: None,
            offer_noted: false,
            ringback_noted: false,
            end_noted: false,
            original: None,
            events: Vec::with_capacity(8),
            line_name: line.name.clone(),
            deadline: None,
            reason: None,
            final_code: 0,
            timers: Timers::default(),
            media: None,
            handover: None,
            adopted_offer_ms: None,
            callback: None,
            caller_invite: None,
            third: None,
            consult: None,
            a_placed: false,
            a_route: None,
        }
    }

    fn set_reason(&mut self, r: Reason) {
        self.reason.get_or_insert(r);
    }

    /// An agent placed the call (a callback, a consultation): it is offered
    /// to nobody and counts in no answer rate.
    fn agent_placed(&self) -> bool {
        self.callback.is_some() || self.consult.is_some()
    }

    /// The gateway answered the caller itself (its 200 is not the callee's).
    fn gateway_answered(&self) -> bool {
        self.answered_invite.is_some()
    }

    /// The caller still waits for a person: its INVITE is pending, or the
    /// gateway answered it and no callee has yet.
    fn waiting(&self) -> bool {
        self.a_invite.is_some()
            || (self.gateway_answered() && matches!(self.state, CallState::Queued { .. }))
    }

    /// The dialog of one side, when it has one.
    fn dialog(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => Some(&mut self.a),
            Side::B => self.b_mut().map(|l| &mut l.dialog),
        }
    }

    /// The dialog of one side, when it has one.
    fn dialog_ref(&self, side: Side) -> Option<&Dialog> {
        match side {
            Side::A => Some(&self.a),
            Side::B => self.b().map(|l| &l.dialog),
        }
    }

    /// Where one side's messages go.
    fn peer_of(&self, side: Side) -> Option<Peer> {
        self.dialog_ref(side).map(|d| d.peer)
    }

    /// The callee INVITE still awaits its final response.
    fn b_pending(&self) -> bool {
        self.b().is_some_and(|l| l.pending)
    }

    /// The callee leg.
    fn b(&self) -> Option<&Leg> {
        self.legs.get(self.callee?)
    }

    fn b_mut(&mut self) -> Option<&mut Leg> {
        self.legs.get_mut(self.callee?)
    }

    /// Lets the callee leg go (the caller has no callee until the next one).
    fn take_b(&mut self) -> Option<Leg> {
        let id = self.callee.take()?;
        self.legs.remove(id)
    }

    /// The third party's leg, while the call has one.
    fn third_leg(&self) -> Option<&Leg> {
        self.legs.get(self.third.as_ref()?.leg)
    }

    /// Makes a leg of the table the callee; the one before is let go.
    fn make_callee(&mut self, id: LegId) -> Option<Leg> {
        let old = self.take_b();
        self.callee = Some(id);
        old
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
    /// Transaction events and timers for calls that had already ended (ignored).
    pub stale_events: u64,
}

/// The B2BUA core: the call table and what the calls share.
#[derive(Debug)]
pub struct Core {
    sh: Shared,
    calls: IdMap<CallKey, Box<Call>>,
    next_key: CallKey,
    /// Caller dialogs by (Call-ID, caller's tag).
    by_a: HashMap<(Box<str>, Box<str>), CallKey>,
    records: VecDeque<FinishedCall>,
    /// Finished calls wait for the database: refuse new ones.
    store_backlog: bool,
    /// Rate limits and counters for strangers.
    guard: guard::Guard,
    /// Keepalive OPTIONS to agents in flight.
    probes: qualify::Probes,
    /// Whether this node answers calls (always, alone; in a cluster, while it
    /// holds the ACD lease).
    serving: Serving,
    /// New INVITEs a standby holds, oldest first (see `serving.rs`).
    parked: VecDeque<serving::Parked>,
}

/// Everything of the core but its call table: what a call's handlers use.
#[derive(Debug)]
pub(super) struct Shared {
    cfg: CoreConfig,
    tl: TransactionLayer,
    ids: IdGen,
    dialplan: Arc<Dialplan>,
    /// Callee dialogs by our Call-ID.
    by_b: HashMap<Box<str>, CallKey>,
    by_tx: IdMap<TxId, (CallKey, Role)>,
    timers: BinaryHeap<Reverse<(Instant, CallKey, CallTimer)>>,
    /// Calls offered to a person since the last `poll_offer`: their stubs open.
    offers: VecDeque<cdr::Offer>,
    /// Agents whose REGISTER was answered since the last `poll_registration`,
    /// with their bindings then (for the database, when clustered).
    registrations: VecDeque<(String, Vec<crate::registrar::PortableBinding>)>,
    /// Calls answered since the last `poll_answer` (clustered only).
    answers: VecDeque<cdr::Answer>,
    /// Agents on a call held by another node (from the database): not offered
    /// calls here until that call ends.
    busy_elsewhere: std::collections::HashSet<String>,
    stats: CoreStats,
    acd: Acd,
    registrar: Registrar,
    orphans: IdMap<TxId, queued::Orphan>,
    /// RTP ports for anchored calls.
    ports: crate::media::pool::PortPool,
    /// Orders for the relay since the last `poll_media`.
    media_out: VecDeque<crate::media::command::MediaCommand>,
    /// Prefix of call record ids: this core's random boot id.
    id_prefix: String,
    /// An instant and the Unix time it corresponds to: the core's wall clock for
    /// time rules, set by the driver (the core never reads the clock).
    wall: (Instant, i64),
    /// Calls whose handlers have finished them: removed once the event settles.
    finished: Vec<CallKey>,
    /// The other cluster nodes' SIP addresses: handed-over calls come only
    /// from these.
    peers: std::collections::HashSet<std::net::SocketAddr>,
    /// Ids of calls handed over by another node (kept instead of this core's).
    adopted: HashMap<CallKey, String>,
    /// The numbers owed a callback (see `callback.rs`).
    callbacks: callback::CallbackList,
    /// The outbound trunk's bounds.
    outbound: callback::OutboundGate,
    /// Callback attempts started and ended since the last `poll_callback`.
    callback_events: VecDeque<cdr::CallbackEvent>,
    /// Agents a transfer released, given a moment to hang up themselves.
    partings: parting::Partings,
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
        let start_standby = cfg.start_standby;
        Core {
            sh: Shared {
                ports: crate::media::pool::PortPool::new(lo, hi),
                media_out: VecDeque::new(),
                cfg,
                tl,
                ids,
                dialplan,
                by_b: HashMap::new(),
                by_tx: IdMap::default(),
                timers: BinaryHeap::new(),
                offers: VecDeque::new(),
                registrations: VecDeque::new(),
                answers: VecDeque::new(),
                busy_elsewhere: Default::default(),
                stats: CoreStats::default(),
                acd,
                registrar,
                orphans: IdMap::default(),
                wall: (now, 0),
                id_prefix,
                finished: Vec::new(),
                peers: Default::default(),
                adopted: HashMap::new(),
                callbacks: Default::default(),
                outbound: Default::default(),
                callback_events: VecDeque::new(),
                partings: Default::default(),
            },
            calls: IdMap::default(),
            next_key: 1,
            by_a: HashMap::new(),
            records: VecDeque::new(),
            store_backlog: false,
            guard,
            probes: Default::default(),
            parked: VecDeque::new(),
            serving: if start_standby {
                Serving::Standby
            } else {
                Serving::Active
            },
        }
    }

    /// Mixes fresh entropy from the OS into every generator the core holds (the
    /// driver calls it now and then).
    pub fn reseed(&mut self, fresh: Seed) {
        self.sh.ids.reseed(fresh);
        let forked = self.sh.ids.fork();
        self.sh.tl.reseed(forked);
    }

    /// While set, new calls get `503` + Retry-After with reason `store.backlog`.
    pub fn set_store_backlog(&mut self, on: bool) {
        self.store_backlog = on;
    }

    /// Tells the core which Unix time (in milliseconds) `at` is, for time-of-day
    /// rules and call records.
    pub fn set_wall_clock(&mut self, at: Instant, unix_ms: i64) {
        self.sh.wall = (at, unix_ms);
    }

    /// Replaces the dialplan; calls in progress keep the route they took, logged-in
    /// agents stay logged in and queued callers stay queued. The plan goes in
    /// whole or not at all: a line naming a prompt the gateway has not loaded,
    /// or queues the ACD refuses, leave everything as it was.
    pub fn set_dialplan(&mut self, now: Instant, plan: Arc<Dialplan>) -> Result<(), ApiError> {
        if let Some(m) = &self.sh.cfg.media {
            let missing = media_sdp::missing_line_prompts(&plan, &m.prompts);
            if !missing.is_empty() {
                return Err(ApiError::Refused(missing.join("; ")));
            }
        }
        self.sh
            .acd
            .reload(queued::acd_config(&plan), now)
            .map_err(|e| ApiError::Refused(format!("queues: {e}")))?;
        self.sh
            .registrar
            .set_users(queued::agent_credentials(&plan));
        self.sh.dialplan = plan;
        self.drain_registrar(now);
        Ok(())
    }

    /// The ACD, for the HTTP API's views and agent state changes.
    pub fn acd(&self) -> &Acd {
        &self.sh.acd
    }

    /// Changes an agent's state from the API; the ACD's resulting commands run.
    pub fn with_acd<T>(&mut self, now: Instant, f: impl FnOnce(&mut Acd) -> T) -> T {
        let r = f(&mut self.sh.acd);
        self.settle(now);
        r
    }

    /// Feeds one UDP datagram.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], peer: Peer) {
        match framing::frame_datagram(data, self.sh.cfg.max_message_bytes) {
            Ok(len) => self.handle_frame(now, &data[..len], peer),
            Err(framing::FrameError::TooLarge { .. }) => {
                self.sh.stats.parse_errors += 1;
                if let Some(bytes) = salvage::error_response(data, 513, "Message Too Large") {
                    self.sh.tl.send_stateless(peer, bytes);
                }
            }
            Err(e) => self.reject_unparsed(data, peer, &e.to_string()),
        }
    }

    /// Feeds one complete message framed off a stream.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], peer: Peer) {
        self.sh.stats.messages_in += 1;
        let msg = match message::parse(frame) {
            Ok(m) => m,
            Err(e) => return self.reject_unparsed(frame, peer, &e.to_string()),
        };
        if let Message::Request(req) = &msg
            && let Err(reject) = check_request(req)
        {
            self.sh.stats.rejected_requests += 1;
            debug!(code = reject.code, reason = %reject.reason, %peer, "request refused");
            if req.method != Method::Ack {
                let mut m = response_to(req, reject.code, &reject.reason, None);
                for (name, value) in &reject.headers {
                    m.header(name, value);
                }
                self.sh.tl.send_stateless(peer, m.finish_empty());
            }
            return;
        }
        if let Message::Request(req) = &msg
            && !self.known_source(peer.addr.ip())
            && self.stranger(now, req, peer)
        {
            return;
        }
        self.sh.tl.handle_message(now, msg, peer);
        self.process_events(now);
    }

    /// The IPs agents registered from (trunks are in the dialplan), and a
    /// generation number that changes whenever this set does: the TCP acceptor
    /// keeps a copy to tell known sources from strangers.
    pub fn registered_sources(&self) -> (u64, impl Iterator<Item = std::net::IpAddr> + '_) {
        self.sh.registrar.registered_sources()
    }

    /// A TCP connection closed (the peer's, or one the gateway opened): agents
    /// who registered over it are rung at their Contact's port from now on.
    pub fn handle_closed(&mut self, peer: Peer) {
        self.sh.registrar.connection_closed(peer);
    }

    /// Answers a message the parser or framer refused: `400` when addressable.
    pub fn reject_unparsed(&mut self, data: &[u8], peer: Peer, detail: &str) {
        self.sh.stats.parse_errors += 1;
        debug!(%peer, detail, "unparseable message");
        if let Some(bytes) = salvage::bad_request(data, detail) {
            self.sh.tl.send_stateless(peer, bytes);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.sh.tl.poll_transmit()
    }

    /// The next finished call.
    pub fn poll_record(&mut self) -> Option<FinishedCall> {
        self.records.pop_front()
    }

    /// The next call offered to a person (its work-order stub opens now).
    pub fn poll_offer(&mut self) -> Option<cdr::Offer> {
        self.sh.offers.pop_front()
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions (for leak checks).
    pub fn transactions(&self) -> usize {
        self.sh.tl.len()
    }

    /// The core's counters, with the strangers' and the transaction layer's.
    pub fn stats(&self) -> CoreStats {
        CoreStats {
            strangers: self.guard.counts(),
            foreign_responses: self.sh.tl.foreign_responses(),
            ..self.sh.stats.clone()
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
