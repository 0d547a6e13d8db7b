//! Registrar: REGISTER with digest authentication (MD5 and SHA-256) for agents'
//! softphones, the same digest for their INVITEs and REFERs, and the table of
//! where each agent can be reached (issue 3, issue 14).
//!
//! Pure, like `sip/`: no sockets, no clock, no randomness. Every entry point takes
//! `now`; the only secret is the nonce key handed to [`Registrar::new`]. Outputs
//! are a [`RegisterReply`] per REGISTER (the caller writes the SIP response),
//! [`RegistrarEvent`]s via [`Registrar::poll_event`], and the next wake-up via
//! [`Registrar::poll_timeout`].
//!
//! ```text
//! REGISTER ─► this account blocked for this source, or the source blocked
//!            and the account has not authenticated from it lately? ──► 403
//!                │no
//!                ▼
//!        Authorization ok? ──no──► 401 (SHA-256 + MD5 challenges; a wrong
//!                │yes                response over a nonce issued to this
//!                │                   source is counted)
//!                │              └─ right password, old nonce ► 401 stale=true
//!                ▼
//!        digest user = To user? ──no──► 403
//!                ▼
//!        Contacts name the source, or a private address? ──no──► 403
//!                ▼
//!        Contacts: query / update / `*` ──► 200 with current bindings
//!                                      └──► 400 / 403 / 423
//! ```
//!
//! Nonces are bound to the source IP they were issued to (`nonce.rs`), and
//! failures count per (account, source) and per source (`limiter.rs`): a packet
//! spoofed from an agent's address carries no such nonce, so it neither counts nor
//! locks anybody out. A blocked account is refused only to the source that failed.
//! A blocked source (a scan of many names) is refused every account **except**
//! those that authenticated from it within a day (or the longest registration,
//! if longer): behind an office NAT, one guessing machine must not stop the
//! agents who proved their password there (REGISTER refreshes, INVITE, REFER).
//!
//! Owns credentials (kept only as HA1 hashes), bindings, nonces and failure
//! counts. Must not send SIP, read the clock or log passwords.

mod auth;
mod bindings;
mod contact;
mod digest;
mod limiter;
mod nonce;
mod portable;
mod qualify;

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod lockout_tests;
#[cfg(test)]
mod path_tests;
#[cfg(test)]
mod qualify_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sip::Peer;
use crate::sip::message::{Headers, Method, Request, SipUri, addr_spec, split_list};

pub use auth::Credential;
pub use bindings::Binding;
pub use digest::{Algorithm, ResponseInput};
pub use portable::PortableBinding;
pub use qualify::{Probe, ProbeId, QualifyConfig, Reachability};

use auth::{Auth, Secret};
use bindings::{ApplyReject, BindingTable, Writer};
use contact::{ContactReject, ContactRequest, parse_contacts};
use limiter::{Blocked, FailureLimiter};
use nonce::{NonceKey, ReplayGuard};
use qualify::Qualifier;

/// Most events held for [`Registrar::poll_event`]; the oldest is dropped beyond it.
const MAX_EVENTS: usize = 65_536;
/// How long an account that authenticated from a source stays open to it while
/// that source is blocked (at least; `max_expires` when longer): a working day
/// and the night after it, so a desk phone left on is never locked out.
const TRUST_FOR: Duration = Duration::from_secs(86_400);

/// Registrar policy, from the gateway config.
///
/// Why: the lifetimes and limits are an operator's choice (RFC 3261 §10.3 leaves
/// them to the registrar); the defaults suit softphones on a call-centre LAN.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarConfig {
    /// Digest realm; part of every HA1, so changing it invalidates stored hashes.
    pub realm: String,
    /// How long a nonce is accepted before the client must re-authenticate.
    pub nonce_ttl: Duration,
    /// Shorter requested lifetimes get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer requested lifetimes are clamped to this.
    pub max_expires: u32,
    /// Lifetime when neither the contact nor the request says.
    pub default_expires: u32,
    /// Most bindings per user (desk phone, softphone, …).
    pub max_contacts: usize,
    /// Failures allowed per account from one source IP within `failure_window`;
    /// one more refuses that account to that source.
    pub max_failures: u32,
    /// Failures allowed per source IP across all accounts within
    /// `failure_window`; one more refuses the whole source.
    pub max_failures_per_source: u32,
    pub failure_window: Duration,
    /// How long a block lasts (403 without a challenge).
    pub block_for: Duration,
    /// Digest algorithms accepted, offered in this order (RFC 8760: most preferred
    /// first). Some older softphones read only the first challenge, so a lab may
    /// put MD5 first.
    pub algorithms: Vec<Algorithm>,
    /// Keepalive OPTIONS to registered contacts (`qualify`).
    pub qualify: QualifyConfig,
    /// Proxies whose REGISTERs may carry Path (RFC 3327). From anyone else a
    /// Path is ignored: a softphone cannot make the gateway add Route lines.
    pub path_from: Vec<IpAddr>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "hotline".into(),
            nonce_ttl: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
            max_failures: 5,
            max_failures_per_source: 20,
            failure_window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            algorithms: Algorithm::OFFERED.to_vec(),
            qualify: QualifyConfig::default(),
            path_from: Vec::new(),
        }
    }
}

impl RegistrarConfig {
    /// Rejects settings that make the registrar unusable.
    pub fn validate(&self) -> Result<(), RegistrarError> {
        let bad = |key, reason| Err(RegistrarError::Config { key, reason });
        if self.realm.is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            return bad(
                "realm",
                "must be non-empty, without quotes, backslashes or line breaks",
            );
        }
        if self.min_expires == 0 || self.min_expires > self.max_expires {
            return bad("min_expires", "must be between 1 and max_expires");
        }
        if !(self.min_expires..=self.max_expires).contains(&self.default_expires) {
            return bad(
                "default_expires",
                "must be between min_expires and max_expires",
            );
        }
        if self.max_contacts == 0 {
            return bad("max_contacts", "must be at least 1");
        }
        if self.max_failures_per_source < self.max_failures {
            return bad("max_failures_per_source", "must be at least max_failures");
        }
        if self.nonce_ttl.is_zero() {
            return bad("nonce_ttl", "must be positive");
        }
        let q = &self.qualify;
        if !q.every.is_zero() && (q.timeout.is_zero() || q.timeout >= q.every) {
            return bad(
                "qualify_timeout",
                "must be positive and shorter than qualify_every",
            );
        }
        if !q.every.is_zero() && q.max_outstanding == 0 {
            return bad("qualify_max_outstanding", "must be at least 1");
        }
        if self.algorithms.is_empty()
            || (self.algorithms.len() == 2 && self.algorithms[0] == self.algorithms[1])
        {
            return bad("algorithms", "list SHA-256, MD5 or both, each once");
        }
        Ok(())
    }
}

/// What went wrong inside the registrar layer.
///
/// Why: one error per layer (CONVENTIONS.md 5), tagged with the failing side.
/// Replies to bad REGISTERs are data ([`RegisterReply`]), not errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    /// The client (downstream) sent a header we cannot use.
    #[error("downstream: malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// The operator's settings are inconsistent.
    #[error("config: registrar.{key}: {reason}")]
    Config {
        key: &'static str,
        reason: &'static str,
    },
}

/// The answer to one REGISTER (or to an agent's INVITE or REFER that must be
/// challenged or refused), for the caller to send.
///
/// Why: the registrar does not write SIP; the call core turns this into
/// `response_to(req, code, &reason, Some(tag))` followed by `headers` in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReply {
    pub code: u16,
    pub reason: String,
    /// Extra header lines (`WWW-Authenticate`, `Contact`, `Min-Expires`), in order.
    pub headers: Vec<(&'static str, String)>,
    /// The account whose digest answer was wrong, when this reply refuses one
    /// (for the log: such failures are bounded by the failure limiter).
    pub failed_account: Option<String>,
}

impl RegisterReply {
    fn new(code: u16, reason: &str) -> RegisterReply {
        RegisterReply {
            code,
            reason: reason.to_string(),
            headers: Vec::new(),
            failed_account: None,
        }
    }

    fn bad_request(e: &RegistrarError) -> RegisterReply {
        let what = match e {
            RegistrarError::Malformed { what, .. } => what,
            RegistrarError::Config { .. } => "request",
        };
        RegisterReply::new(400, &format!("Bad Request (malformed {what})"))
    }
}

/// A change of where an agent can be reached; the ACD logs agents in and out on these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// A new contact was bound (refreshes of an existing one are silent).
    Registered { user: String, contact: String },
    /// The client removed a binding, or its user was deleted from the config.
    Unregistered { user: String, contact: String },
    /// A binding ran out without being refreshed.
    Expired { user: String, contact: String },
    /// Too many proven failures: `user` (or with `None`, every account) is
    /// refused to the source `ip` for `block_for`.
    Blocked { ip: IpAddr, user: Option<String> },
}

/// What an INVITE's or REFER's credentials say about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAuth {
    /// Digest credentials for this agent, verified.
    Agent(String),
    /// No credentials for our realm: the caller decides (challenge, or treat the
    /// sender as no agent).
    Absent,
    /// Answer this (401 challenge, 403 blocked, 400 malformed) and stop.
    Reply(RegisterReply),
}

/// The registrar for the agents' realm.
///
/// Why: agents' softphones must prove who they are before the ACD offers them
/// calls, and the call core must know where to ring them.
pub struct Registrar {
    cfg: RegistrarConfig,
    nonces: NonceKey,
    users: HashMap<String, Secret>,
    /// HA1s of a fixed non-user, so an unknown name costs the same hashing.
    decoy: Secret,
    replay: ReplayGuard,
    bindings: BindingTable,
    limiter: FailureLimiter,
    events: VecDeque<RegistrarEvent>,
    dropped_events: u64,
    /// Keepalive probes of the bindings.
    qualify: Qualifier,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("cfg", &self.cfg)
            .field(
                "users",
                &format_args!("{} (credentials redacted)", self.users.len()),
            )
            .field("bindings", &self.bindings)
            .field("blocked_or_failing", &self.limiter.tracked())
            .field("trusted_logins", &self.limiter.trusted())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// `secret` keys the nonces (draw it from the OS at start-up); `t0` is the
    /// origin of nonce timestamps (any instant not after the first `now`).
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32], t0: Instant) -> Registrar {
        Registrar {
            nonces: NonceKey::new(secret, &cfg.realm, t0, cfg.nonce_ttl),
            users: HashMap::new(),
            decoy: Secret::new(
                "\u{0}decoy",
                &cfg.realm,
                &Credential::Password(String::new()),
            ),
            replay: ReplayGuard::default(),
            bindings: BindingTable::default(),
            limiter: FailureLimiter::new(
                cfg.max_failures,
                cfg.max_failures_per_source,
                cfg.failure_window,
                cfg.block_for,
                TRUST_FOR.max(Duration::from_secs(u64::from(cfg.max_expires))),
            ),
            events: VecDeque::new(),
            dropped_events: 0,
            qualify: Qualifier::new(cfg.qualify),
            cfg,
        }
    }

    /// Replaces all credentials (config reload). Bindings of users that remain are
    /// kept; those of removed users are dropped with `Unregistered` events.
    pub fn set_users<C: Into<Credential>>(&mut self, users: impl IntoIterator<Item = (String, C)>) {
        let realm = &self.cfg.realm;
        self.users = users
            .into_iter()
            .map(|(user, credential)| {
                let secret = Secret::new(&user, realm, &credential.into());
                (user, secret)
            })
            .collect();
        let users = &self.users;
        let mut events = Vec::new();
        self.bindings
            .retain_users(|u| users.contains_key(u), &mut events);
        self.replay.retain_users(|u| users.contains_key(u));
        self.push_events(events);
    }

    /// Answers one REGISTER that arrived from `source`.
    pub fn handle_register(&mut self, now: Instant, req: &Request, source: Peer) -> RegisterReply {
        if req.method != Method::Register {
            return RegisterReply::new(405, "Method Not Allowed");
        }
        // Authentication before the To header (RFC 3261 §10.3 steps 3 and 5); the
        // address-of-record, when readable, names the account to check for a block.
        let aor = aor_user(req);
        let seen_from = self.register_source(req, source);
        let user = match self.authenticate(now, req, seen_from, aor.as_deref().ok()) {
            Ok(user) => user,
            Err(reply) => return reply,
        };
        let aor = match aor {
            Ok(aor) => aor,
            Err(e) => return RegisterReply::bad_request(&e),
        };
        if aor != user {
            return RegisterReply::new(403, "Forbidden (username does not match AOR)");
        }
        self.update_bindings(now, req, source, &user)
    }

    /// Where a REGISTER really came from, for its nonces and failure counts:
    /// behind a trusted proxy (`path_from`), the `received=` address its Path
    /// names (the softphone, as the proxy saw it), so that one guessing
    /// softphone behind the proxy blocks itself, not every agent behind it.
    /// Otherwise, or without one, the packet's source. Bindings keep the
    /// packet's source: agents are rung through the proxy.
    fn register_source(&self, req: &Request, source: Peer) -> Peer {
        if !self
            .cfg
            .path_from
            .contains(&source.addr.ip().to_canonical())
        {
            return source;
        }
        let received = req
            .header_all("Path")
            .flat_map(split_list)
            .filter_map(path_received)
            .last();
        match received {
            Some(addr) => Peer {
                transport: source.transport,
                addr,
            },
            None => source,
        }
    }

    /// Checks the credentials of an INVITE or REFER that arrived from `source`
    /// (agents prove who they are on every request, not only on REGISTER).
    /// `hint` names the account a request without credentials claims (its From
    /// user), so that a blocked source still challenges the agents it trusts.
    pub fn authenticate_request(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        hint: Option<&str>,
    ) -> RequestAuth {
        match self.credentials(req) {
            Ok(None) => {
                if self.blocked(now, source, hint) {
                    return RequestAuth::Reply(blocked_reply());
                }
                RequestAuth::Absent
            }
            Ok(Some(_)) => match self.authenticate(now, req, source, None) {
                Ok(user) => RequestAuth::Agent(user),
                Err(reply) => RequestAuth::Reply(reply),
            },
            Err(e) => RequestAuth::Reply(RegisterReply::bad_request(&e)),
        }
    }

    /// A 401 with a fresh nonce for `source`, for a request that carried no
    /// credentials; `user` (the From user, say) limits the algorithms offered to
    /// those that user can answer.
    pub fn challenge_request(
        &mut self,
        now: Instant,
        source: Peer,
        user: Option<&str>,
    ) -> RegisterReply {
        self.challenge(now, source.addr.ip(), false, user)
    }

    /// The user `req` authenticates as, or the reply to send: 403 to a blocked
    /// source or account, 401 to absent, stale or wrong credentials (counting
    /// proven failures), 400 to malformed ones. `hint` names the account when the
    /// request has no credentials (a REGISTER's address-of-record).
    /// Whether a request from `source` naming `user` is refused unchallenged:
    /// its source or account is blocked there, and the account did not
    /// authenticate from this very flow (IP and port) lately.
    fn blocked(&self, now: Instant, source: Peer, user: Option<&str>) -> bool {
        self.limiter.is_blocked(now, source.addr.ip(), user)
            && !user.is_some_and(|u| self.limiter.flow_trusted(now, source.addr, u))
    }

    fn authenticate(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        hint: Option<&str>,
    ) -> Result<String, RegisterReply> {
        let ip = source.addr.ip();
        let creds = self
            .credentials(req)
            .map_err(|e| RegisterReply::bad_request(&e))?;
        let named = creds.as_ref().map(|c| c.username.as_str()).or(hint);
        if self.blocked(now, source, named) {
            return Err(blocked_reply());
        }
        let Some(creds) = creds else {
            return Err(self.challenge(now, ip, false, hint));
        };
        match self.verify(now, req, creds, ip) {
            Auth::Ok(user) => {
                self.limiter.record_success(now, ip, &user);
                self.limiter.record_flow(now, source.addr, &user);
                Ok(user)
            }
            Auth::Malformed(e) => Err(RegisterReply::bad_request(&e)),
            Auth::Retry { stale, user } => Err(self.challenge(now, ip, stale, Some(&user))),
            Auth::Failed { user } => {
                self.limiter.forget_flow(source.addr, &user);
                let blocked = match self.limiter.record_failure(now, ip, &user) {
                    Blocked::No => {
                        let mut reply = self.challenge(now, ip, false, Some(&user));
                        reply.reason = WRONG_ANSWER.into();
                        reply.failed_account = Some(user);
                        return Err(reply);
                    }
                    Blocked::Account => Some(user.clone()),
                    Blocked::Source => None,
                };
                self.push_events([RegistrarEvent::Blocked { ip, user: blocked }]);
                let mut reply = blocked_reply();
                reply.failed_account = Some(user);
                Err(reply)
            }
        }
    }

    /// Unexpired bindings of `user`, best `q` first, then most recent.
    pub fn lookup(&self, now: Instant, user: &str) -> Vec<&Binding> {
        self.bindings.lookup(now, user)
    }

    /// Whether `req` answers a nonce this registrar issued to `source` (fresh or
    /// stale): only a client that received a challenge at that address can
    /// send one, so a flood spoofed from random addresses cannot. Checked
    /// statelessly, before anything is counted or kept.
    pub fn answers_our_nonce(&self, now: Instant, req: &Request, source: std::net::IpAddr) -> bool {
        matches!(self.credentials(req), Ok(Some(c))
            if self.nonces.check(now, &c.nonce, source) != nonce::NonceState::Invalid)
    }

    /// Whether `user` is a configured account (an agent).
    pub fn is_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Whether a binding was registered from `ip` (an agent's softphone): such a
    /// source's INVITEs without credentials are challenged.
    pub fn is_registered_source(&self, ip: std::net::IpAddr) -> bool {
        self.bindings.any_from(ip)
    }

    /// The IPs agents registered from, with a generation number that changes
    /// whenever this set does (so a copy is refreshed only then).
    pub fn registered_sources(&self) -> (u64, impl Iterator<Item = IpAddr> + '_) {
        self.bindings.sources()
    }

    /// The TCP connection from `peer` closed: agents who registered over it are
    /// rung at their Contact's port on the same IP until they register again
    /// ([`Binding::ring_at`]).
    pub fn connection_closed(&mut self, peer: Peer) {
        self.bindings.connection_closed(peer);
    }

    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// The next keepalive OPTIONS to send (see `qualify.rs`): the caller sends it
    /// to `peer` and reports its end with [`probe_answered`](Self::probe_answered)
    /// or [`probe_lost`](Self::probe_lost).
    pub fn poll_probe(&mut self) -> Option<Probe> {
        self.qualify.poll_probe()
    }

    /// A final response to keepalive probe `id` arrived.
    pub fn probe_answered(&mut self, now: Instant, id: ProbeId) {
        self.qualify.answered(now, id);
    }

    /// Keepalive probe `id`'s transaction ended with no response.
    pub fn probe_lost(&mut self, now: Instant, id: ProbeId) {
        self.qualify.lost(now, id);
    }

    /// The next change of an agent's reachability (all its bindings stopped
    /// answering the keepalive, or one answers again).
    pub fn poll_reachability(&mut self) -> Option<Reachability> {
        self.qualify.poll_change()
    }

    /// Whether `user` is registered and none of its bindings answers the keepalive.
    pub fn is_unreachable(&self, user: &str) -> bool {
        self.qualify.unreachable(user)
    }

    /// Keepalive probes in flight.
    pub fn probes_outstanding(&self) -> usize {
        self.qualify.outstanding()
    }

    /// The earliest binding expiry, block end or keepalive deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.bindings.next_expiry(),
            self.limiter.next_unblock(),
            self.qualify.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expires bindings, ends blocks and runs the keepalive probes due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut events = Vec::new();
        self.bindings.expire(now, &mut events);
        self.limiter.handle_timeout(now);
        self.push_events(events);
        self.qualify.handle_timeout(now);
    }

    /// Events dropped because nobody polled them (should stay 0).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    fn update_bindings(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        user: &str,
    ) -> RegisterReply {
        let changes = match parse_contacts(req, &self.cfg) {
            Ok(c) => c,
            Err(ContactReject::Malformed(e)) => return RegisterReply::bad_request(&e),
            Err(ContactReject::TooBrief(min)) => {
                let mut r = RegisterReply::new(423, "Interval Too Brief");
                r.headers.push(("Min-Expires", min.to_string()));
                return r;
            }
        };
        // A proxy's REGISTER names agents behind it, and how to reach them.
        let proxied = self
            .cfg
            .path_from
            .contains(&source.addr.ip().to_canonical());
        let path: Vec<String> = if proxied {
            req.header_all("Path")
                .flat_map(split_list)
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        if let ContactRequest::Update(updates) = &changes
            && !proxied
            && contact::foreign_host(updates, source.addr.ip())
        {
            return RegisterReply::new(
                403,
                "Forbidden (Contact names another host than the REGISTER came from)",
            );
        }
        let (Some(call_id), Some((cseq, _))) = (req.call_id(), req.cseq()) else {
            return RegisterReply::bad_request(&malformed("Call-ID or CSeq", "missing"));
        };
        let mut events = Vec::new();
        // Lapsed bindings go first, so they neither count nor get refreshed.
        self.bindings.expire(now, &mut events);
        let writer = Writer {
            now,
            source,
            call_id,
            cseq,
            max_contacts: self.cfg.max_contacts,
            path: &path,
        };
        let applied = self.bindings.apply(user, &changes, writer, &mut events);
        self.push_events(events);
        match applied {
            Err(ApplyReject::StaleCseq) => RegisterReply::new(400, "Bad Request (stale CSeq)"),
            Err(ApplyReject::TooManyContacts) => {
                RegisterReply::new(403, "Forbidden (too many contacts)")
            }
            Ok(()) => {
                let mut r = RegisterReply::new(200, "OK");
                for b in self.bindings.lookup(now, user) {
                    // Those this REGISTER wrote answer for themselves.
                    if b.updated_at == now && b.source == source {
                        self.qualify.bound(now, user, &b.contact, b.ring_at());
                    }
                    let mut v = format!("<{}>;expires={}", b.contact, b.remaining_secs(now));
                    if let Some(q) = b.q {
                        v.push_str(&format!(";q={q}"));
                    }
                    r.headers.push(("Contact", v));
                }
                // The Path stored is echoed to a UA that supports it (RFC 3327 §5.3).
                if !path.is_empty() && supports(req, "path") {
                    r.headers.push(("Path", path.join(", ")));
                }
                r
            }
        }
    }

    fn push_events(&mut self, events: impl IntoIterator<Item = RegistrarEvent>) {
        for e in events {
            if let RegistrarEvent::Unregistered { user, contact }
            | RegistrarEvent::Expired { user, contact } = &e
            {
                self.qualify.unbound(user, contact);
            }
            if self.events.len() >= MAX_EVENTS {
                self.events.pop_front();
                self.dropped_events += 1;
            }
            self.events.push_back(e);
        }
    }
}

/// The reason phrase of the new challenge that answers a wrong digest answer:
/// the user learns the password (or account) was wrong, an attacker learns
/// nothing about which.
pub const WRONG_ANSWER: &str = "Unauthorized (wrong password or unknown account)";

fn blocked_reply() -> RegisterReply {
    RegisterReply::new(403, "Forbidden (too many failed attempts)")
}

fn malformed(what: &'static str, detail: &str) -> RegistrarError {
    RegistrarError::Malformed {
        what,
        detail: detail.to_string(),
    }
}

/// The user part of the To URI: the address-of-record (RFC 3261 §10.3 step 5).
/// The user a REGISTER's To names (its address-of-record), if readable.
pub fn aor_of(req: &Request) -> Option<String> {
    aor_user(req).ok()
}

fn aor_user(req: &Request) -> Result<String, RegistrarError> {
    let to = req.header("To").ok_or_else(|| malformed("To", "missing"))?;
    let uri = SipUri::parse(addr_spec(to)).map_err(|e| malformed("To", &e))?;
    uri.user
        .map(String::from)
        .ok_or_else(|| malformed("To", "no user part"))
}

/// Whether `req` lists `tag` in a Supported header (`k` is its compact form).
fn supports(req: &Request, tag: &str) -> bool {
    req.header_all("Supported")
        .chain(req.header_all("k"))
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// The `received=sip:IP:port` parameter of a Path entry (Kamailio's
/// `add_path_received`), as an address.
fn path_received(entry: &str) -> Option<std::net::SocketAddr> {
    let at = entry.find(";received=")? + ";received=".len();
    let value = &entry[at..];
    let value = value.strip_prefix("sip:").unwrap_or(value);
    let end = value.find([';', '%', '>', ',']).unwrap_or(value.len());
    value[..end].parse().ok()
}
