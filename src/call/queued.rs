//! Calls routed to an ACD queue, and the seats that answer them: ringback while
//! queued, ringing agents as the ACD commands, orphaned rings torn down cleanly,
//! and REGISTER from agents' softphones logging them in and out.

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::{Call, CallKey, Core, Reason, Role, Shared};
use crate::acd::{self, AcdConfig, AgentConfig, Command, Member, QueueConfig};
use crate::cdr;
use crate::dialplan::{Dialplan, Overflow};
use crate::registrar::{Credential, RegistrarEvent};
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Method, Request, Response, SipUri};
use crate::sip::transaction::TxId;
use crate::sip::{Peer, Transport};
use crate::util::pii::Pii;

/// A callee leg the call has given up on (ring timeout, caller gone): it is
/// cancelled, and a 2xx that races the CANCEL gets ACK and BYE.
#[derive(Debug)]
pub(super) struct Orphan {
    dialog: Dialog,
    cancelled: bool,
}

/// The ACD's configuration from the dialplan's queues and agents.
pub fn acd_config(plan: &Dialplan) -> AcdConfig {
    let secs = std::time::Duration::from_secs;
    AcdConfig {
        queues: plan
            .queues
            .iter()
            .map(|q| QueueConfig {
                name: q.name.clone(),
                strategy: q.strategy,
                ring_timeout: secs(q.ring_timeout_s),
                wrap_up: secs(q.wrap_up_s),
                max_wait: secs(q.max_wait_s),
                overflow: match &q.overflow {
                    Overflow::Callback => acd::Overflow::Callback,
                    Overflow::Queue(n) => acd::Overflow::Queue(n.clone()),
                },
                skill_widen_after: secs(q.skill_widen_after_s),
                auto_pause_after_misses: q.auto_pause_after_misses,
                members: q
                    .agents
                    .iter()
                    .map(|a| Member::Agent(a.clone()))
                    .chain(q.static_members.iter().flat_map(|t| {
                        (1..=q.static_seats).map(move |n| Member::Static {
                            id: if q.static_seats == 1 {
                                t.clone()
                            } else {
                                format!("{t}#{n}")
                            },
                            target: t.clone(),
                        })
                    }))
                    .collect(),
            })
            .collect(),
        agents: plan
            .agents
            .iter()
            .map(|a| AgentConfig {
                id: a.id.clone(),
                name: a.name.clone(),
                skills: a.skills.iter().map(|(s, p)| (s.clone(), *p)).collect(),
            })
            .collect(),
    }
}

/// Each agent's digest secret for the registrar: its password or its HA1s.
pub fn agent_credentials(plan: &Dialplan) -> Vec<(String, Credential)> {
    plan.agents
        .iter()
        .map(|a| {
            let credential = if a.ha1_md5.is_some() || a.ha1_sha256.is_some() {
                Credential::Ha1 {
                    md5: a.ha1_md5.clone(),
                    sha256: a.ha1_sha256.clone(),
                }
            } else {
                Credential::Password(a.password.clone())
            };
            (a.id.clone(), credential)
        })
        .collect()
}

impl Core {
    /// Carries out one ACD command, on the call it names.
    pub(super) fn on_acd_command(&mut self, now: Instant, cmd: Command) {
        let key = match &cmd {
            Command::Ring { call, .. }
            | Command::CancelRing { call, .. }
            | Command::Overflow { call, .. }
            | Command::Expire { call, .. } => *call,
        };
        let Some(call) = self.calls.get_mut(&key) else {
            self.sh.stats.stale_events += 1;
            if let Command::Ring { .. } = cmd {
                // A call the core no longer has: the ACD must not hold its agent.
                let _ = self.sh.acd.abandon(now, key);
            }
            return;
        };
        let span = call.span.clone();
        let _enter = span.enter();
        let sh = &mut self.sh;
        match cmd {
            Command::Ring { agent, target, .. } => call.ring_agent(sh, now, agent, &target),
            Command::CancelRing { agent, .. } => call.cancel_ring(sh, now, &agent),
            Command::Overflow { to, .. } => {
                call.note(sh, now, cdr::EventKind::Overflowed, Some(to.clone()));
                call.queue = Some(to);
                call.overflowed = true;
            }
            Command::Expire { cause, .. } => {
                // The ACD has forgotten the call already.
                call.in_acd = false;
                let reason = match cause {
                    acd::Cause::MaxWait => Reason::QueueCallback,
                    acd::Cause::QueueRemoved => Reason::QueueRemoved,
                };
                let phrase = "Temporarily Unavailable (you will be called back)";
                call.abandon_early(sh, now, reason, 480, phrase);
            }
        }
    }
}

impl Call {
    /// Queues a call. With media the gateway answers the caller (or sends early
    /// media) with the greeting and hold music, or first the line's prompt;
    /// without, the caller hears ringback (`180`) while it waits.
    pub(super) fn enqueue(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        queue: &str,
        line: &str,
        overflowed: bool,
    ) {
        // An overflow (from a parallel line's legacy seats) was noted already.
        if !overflowed {
            self.note(sh, now, cdr::EventKind::Offered, Some(queue.to_string()));
        }
        if self.media.is_some() && sh.cfg.media.is_some() {
            let delayed = self.queue_audio(sh, now);
            if !delayed {
                self.offer_to_acd(sh, now, queue, line);
            }
            return;
        }
        if let Some((tx, req)) = &self.a_invite {
            let contact = sh.contact(self.a.peer.transport);
            let mut m = response_to(req, 180, "Ringing", Some(&self.a.local_tag));
            m.header("Contact", &contact);
            self.echo_adoption(sh, &mut m);
            let tx = *tx;
            sh.respond(now, tx, 180, m.finish_empty());
            if !self.ringback_noted {
                self.note(sh, now, cdr::EventKind::Ringback, None);
            }
        }
        self.offer_to_acd(sh, now, queue, line);
    }

    /// Hands a queued call to the ACD.
    pub(super) fn offer_to_acd(&mut self, sh: &mut Shared, now: Instant, queue: &str, line: &str) {
        self.note(sh, now, cdr::EventKind::Queued, Some(queue.to_string()));
        // 7×24 coverage: nobody at the queue's desks when a citizen reaches it.
        if !sh.acd.staffed(queue) {
            self.note(sh, now, cdr::EventKind::Unstaffed, Some(queue.to_string()));
        }
        // A handed-over caller keeps its place: it queues from its first offer.
        let since = match self.adopted_offer_ms {
            Some(_) => self.offered_at.min(now),
            None => now,
        };
        match sh
            .acd
            .offer_since(now, since, self.key, queue, Some(line.to_string()), 0)
        {
            Ok(()) => self.in_acd = true,
            Err(e) => {
                warn!(error = %e, queue, "cannot queue the call");
                self.abandon_early(sh, now, Reason::NoRoute, 503, "Service Unavailable");
            }
        }
    }

    /// Tells the ACD, once, that the call has left it: answered calls end (the
    /// agent goes to wrap-up), others are abandoned (a ring in progress is
    /// cancelled). Later calls do nothing.
    pub(super) fn release_acd(&mut self, sh: &mut Shared, now: Instant) {
        // A caller leaving while being handed over: the other node forgets it too.
        if self.handover.is_some() && self.b().is_some_and(|l| l.pending) {
            self.orphan_b(sh, now);
        }
        if !std::mem::replace(&mut self.in_acd, false) {
            return;
        }
        let result = if self.answered_at.is_some() {
            sh.acd.call_ended(now, self.key)
        } else {
            sh.acd.abandon(now, self.key)
        };
        if let Err(e) = result {
            debug!(error = %e, "ACD release");
        }
    }

    fn ring_agent(&mut self, sh: &mut Shared, now: Instant, agent: String, target: &str) {
        if !self.waiting() {
            let _ = sh.acd.abandon(now, self.key);
            return;
        }
        let Some(seat) = resolve_seat(sh, now, &self.called, &agent, target) else {
            warn!(agent, target, "agent contact is not a reachable SIP URI");
            let _ = sh.acd.ring_failed(now, self.key, &agent);
            return;
        };
        let ticket = sh.call_id_of(self.key);
        let mut pop = vec![
            // The call record's id (as in /api/v1/calls and the stub), unique
            // across restarts; not the core's per-process call counter.
            ("X-Hotline-Call-Id".to_string(), ticket.clone()),
            ("X-Hotline-Caller".to_string(), self.caller.clone()),
            ("X-Hotline-Line".to_string(), self.line.clone()),
            ("X-Hotline-Mode".to_string(), self.mode.as_str().to_string()),
            (
                "X-Hotline-Department".to_string(),
                self.department.clone().unwrap_or_default(),
            ),
            (
                "X-Hotline-Queue".to_string(),
                self.queue.clone().unwrap_or_default(),
            ),
        ];
        if let Some(n) = &self.transfer_number {
            // The department's own number: where the agent transfers for it.
            pop.push(("X-Hotline-Transfer-Number".to_string(), n.clone()));
        }
        if sh.cfg.tickets {
            pop.push(("X-Hotline-Ticket".to_string(), ticket));
        }
        self.agent = Some(agent.clone());
        self.note(sh, now, cdr::EventKind::AgentRinging, Some(agent.clone()));
        debug!(agent, "ringing agent");
        self.place_b(sh, now, seat, pop);
    }

    /// Gives up on the current callee leg of a call (the ACD moved on).
    pub(super) fn cancel_ring(&mut self, sh: &mut Shared, now: Instant, agent: &str) {
        if self.agent.as_deref() != Some(agent) {
            return;
        }
        self.agent = None;
        self.orphan_b(sh, now);
    }

    /// Gives up on the callee leg: forgotten by the call; an INVITE still
    /// pending is cancelled (or, before its first provisional, cancelled or
    /// ended when its answer comes: see [`Orphan`]).
    pub(super) fn orphan_b(&mut self, sh: &mut Shared, now: Instant) {
        let Some(leg) = self.take_b() else {
            return;
        };
        self.orphan_leg(sh, now, leg);
    }

    /// Lets a leg go that the call no longer wants: forgotten by the call;
    /// an INVITE still pending is cancelled now, or once its first
    /// provisional comes, and a 2xx that still arrives gets ACK and BYE
    /// (see [`Orphan`]).
    pub(super) fn orphan_leg(&mut self, sh: &mut Shared, now: Instant, leg: super::Leg) {
        sh.by_b.remove(&leg.dialog.call_id);
        if !leg.pending {
            return;
        }
        let tx = leg.invite;
        self.txs.retain(|t| *t != tx);
        sh.by_tx.insert(tx, (self.key, Role::Orphan));
        let cancelled = leg.provisional;
        sh.orphans.insert(
            tx,
            Orphan {
                dialog: leg.dialog,
                cancelled,
            },
        );
        if cancelled && let Ok(c) = sh.tl.cancel(now, tx) {
            sh.by_tx.insert(c, (self.key, Role::Fire));
        }
    }

    /// The callee leg of a queued call failed: the ACD tries the next seat.
    pub(super) fn ring_failed(&mut self, sh: &mut Shared, now: Instant) {
        let Some(agent) = self.agent.take() else {
            return;
        };
        if let Some(leg) = self.take_b() {
            sh.by_b.remove(&leg.dialog.call_id);
        }
        if let Err(e) = sh.acd.ring_failed(now, self.key, &agent) {
            debug!(error = %e, "ring_failed");
        }
    }
}

/// Registrations waiting to be written before the oldest are dropped (the
/// driver takes them after every event, so this is only reached if it stalls).
const MAX_PENDING_REGISTRATIONS: usize = 65_536;

/// The Request-URI and address for ringing a seat. An agent: its registered
/// contact as the Request-URI, sent to the transport and address its REGISTER
/// came from (never to a host the Contact names: DESIGN.md §7; over TCP, once
/// that connection has closed, the Contact's port on that IP:
/// [`crate::registrar::Binding::ring_at`]), or nothing once it has no binding.
/// A static member: its URI (whose missing user part becomes the called number).
/// The third part is the route set to preload: the agent's Path, when a proxy
/// relayed its REGISTER.
fn resolve_seat(
    sh: &Shared,
    now: Instant,
    called: &str,
    agent: &str,
    target: &str,
) -> Option<(String, Peer, Vec<String>)> {
    if sh.registrar.is_user(agent) {
        let bindings = sh.registrar.lookup(now, agent);
        let b = bindings
            .iter()
            .find(|b| b.contact.eq_ignore_ascii_case(target))
            .or(bindings.first())?;
        return Some((b.contact.clone(), b.ring_at(), b.path.clone()));
    }
    let uri = SipUri::parse(target).ok()?;
    let ip = uri.ip()?;
    let transport = match uri.transport.as_deref() {
        Some("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    let addr = std::net::SocketAddr::new(ip, uri.port.unwrap_or(5060));
    let text = match uri.user {
        Some(_) => uri.text.to_string(),
        None => super::invite::sip_uri(called, addr, transport),
    };
    Some((text, Peer { transport, addr }, Vec::new()))
}

impl Shared {
    /// A response on an orphaned callee leg.
    pub(super) fn on_orphan_response(
        &mut self,
        now: Instant,
        key: CallKey,
        tx: TxId,
        resp: Response,
    ) {
        let Some(o) = self.orphans.get_mut(&tx) else {
            return;
        };
        if resp.code < 200 {
            if !o.cancelled
                && let Ok(c) = self.tl.cancel(now, tx)
            {
                o.cancelled = true;
                self.by_tx.insert(c, (key, Role::Fire));
            }
            return;
        }
        let Some(mut o) = self.orphans.remove(&tx) else {
            return;
        };
        self.by_tx.remove(&tx);
        if resp.code < 300 {
            // The seat answered after we gave up on it: acknowledge, then hang up.
            o.dialog.learn_from_response(&resp);
            let ack = o
                .dialog
                .request_with_cseq(Method::Ack, 1, None, Bytes::new());
            self.tl.send_ack(Some(tx), o.dialog.peer, ack);
            let bye = o.dialog.request(Method::Bye, None, Bytes::new());
            let b = self.tl.send_request(now, o.dialog.peer, bye);
            self.by_tx.insert(b, (key, Role::Fire));
        }
    }
}

impl Core {
    /// REGISTER from an agent's softphone.
    pub(super) fn on_register(&mut self, now: Instant, tx: TxId, req: &Request, peer: Peer) {
        let reply = self.sh.registrar.handle_register(now, req, peer);
        if let Some(account) = &reply.failed_account {
            info!(account = %account, source = %Pii(peer.addr.ip()), status = reply.code, reason = %reply.reason, "registration failed");
        }
        self.sh.send_registrar_reply(now, tx, req, &reply);
        if reply.code == 200
            && self.sh.cfg.clustered
            && let Some(user) = crate::registrar::aor_of(req)
        {
            let unix = self.sh.unix_ms(now);
            let bindings = self.sh.registrar.export(now, unix, &user);
            if self.sh.registrations.len() < MAX_PENDING_REGISTRATIONS {
                self.sh.registrations.push_back((user, bindings));
            }
        }
        self.drain_registrar(now);
    }

    /// Logs agents in and out as their registrations come and go.
    pub(super) fn drain_registrar(&mut self, now: Instant) {
        while let Some(ev) = self.sh.registrar.poll_event() {
            match ev {
                RegistrarEvent::Registered { user, .. }
                    if self.sh.busy_elsewhere.contains(&user) =>
                {
                    info!(agent = %user, "agent registered; on a call at another node");
                }
                RegistrarEvent::Registered { user, contact } => {
                    info!(agent = %user, "agent registered");
                    if let Err(e) = self.sh.acd.login(&user, contact, now) {
                        debug!(error = %e, agent = %user, "registered user is not an ACD agent");
                    }
                }
                RegistrarEvent::Unregistered { user, .. }
                | RegistrarEvent::Expired { user, .. } => {
                    if self.sh.registrar.lookup(now, &user).is_empty() {
                        info!(agent = %user, "agent unregistered");
                        let _ = self.sh.acd.logout(&user, now);
                    }
                }
                RegistrarEvent::Blocked { ip, user } => {
                    let account = user.as_deref().unwrap_or("(every account)");
                    warn!(source = %Pii(ip), account = ?account, "source blocked after repeated digest failures");
                }
            }
        }
        self.drain_qualify(now);
        self.settle(now);
    }
}
