//! Calls routed to an ACD queue, and the seats that answer them: ringback while
//! queued, ringing agents as the ACD commands, orphaned rings torn down cleanly,
//! and REGISTER from agents' softphones logging them in and out.

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::{CallKey, Core, Reason, Role};
use crate::acd::{self, AcdConfig, AgentConfig, Command, Member, QueueConfig};
use crate::cdr;
use crate::dialplan::{Dialplan, Overflow};
use crate::registrar::{Credential, RegisterReply, RegistrarEvent};
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
    /// Queues a call. With media the gateway answers the caller (or sends early
    /// media) with the greeting and hold music, or first the line's prompt;
    /// without, the caller hears ringback (`180`) while it waits.
    pub(super) fn enqueue(&mut self, now: Instant, key: CallKey, queue: &str, line: &str) {
        // An overflow (from a parallel line's legacy seats) was noted already.
        let overflow = self.calls.get(&key).is_some_and(|c| {
            c.events
                .last()
                .is_some_and(|e| e.kind == cdr::EventKind::Overflowed)
        });
        if !overflow {
            self.note(now, key, cdr::EventKind::Offered, Some(queue.to_string()));
        }
        let with_media = self.calls.get(&key).is_some_and(|c| c.media.is_some());
        if with_media && self.cfg.media.is_some() {
            let delayed = self.queue_audio(now, key, queue, line);
            if !delayed {
                self.offer_to_acd(now, key, queue, line);
            }
            return;
        }
        let contact = self.contact(Transport::Udp);
        if let Some(call) = self.calls.get(&key)
            && let Some((tx, req)) = &call.a_invite
        {
            let contact = match call.a.peer.transport {
                Transport::Udp => contact,
                Transport::Tcp => self.contact(Transport::Tcp),
            };
            let mut m = response_to(req, 180, "Ringing", Some(&call.a.local_tag));
            m.header("Contact", &contact);
            let tx = *tx;
            let first = !call
                .events
                .iter()
                .any(|e| e.kind == cdr::EventKind::Ringback);
            self.respond(now, tx, 180, m.finish_empty());
            if first {
                self.note(now, key, cdr::EventKind::Ringback, None);
            }
        }
        self.offer_to_acd(now, key, queue, line);
    }

    /// Hands a queued call to the ACD.
    pub(super) fn offer_to_acd(&mut self, now: Instant, key: CallKey, queue: &str, line: &str) {
        match self.acd.offer(now, key, queue, Some(line.to_string()), 0) {
            Ok(()) => self.drain_acd(now),
            Err(e) => {
                warn!(error = %e, queue, "cannot queue the call");
                self.abandon_early(now, key, Reason::NoRoute, 503, "Service Unavailable");
            }
        }
    }

    /// Carries out what the ACD asked for.
    pub(super) fn drain_acd(&mut self, now: Instant) {
        while let Some(cmd) = self.acd.poll_command() {
            match cmd {
                Command::Ring {
                    call,
                    agent,
                    target,
                } => self.ring_agent(now, call, agent, &target),
                Command::CancelRing { call, agent } => self.cancel_ring(now, call, &agent),
                Command::Overflow { call, to, .. } => {
                    self.note(now, call, cdr::EventKind::Overflowed, Some(to.clone()));
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.queue = Some(to);
                        c.overflowed = true;
                    }
                }
                Command::Expire { call, cause, .. } => {
                    let reason = match cause {
                        acd::Cause::MaxWait => Reason::QueueCallback,
                        acd::Cause::QueueRemoved => Reason::QueueRemoved,
                    };
                    let phrase = "Temporarily Unavailable (you will be called back)";
                    self.abandon_early(now, call, reason, 480, phrase);
                }
            }
        }
        while let Some(acd::AcdEvent::AgentState { agent, state }) = self.acd.poll_event() {
            debug!(agent, ?state, "agent state");
        }
    }

    fn ring_agent(&mut self, now: Instant, key: CallKey, agent: String, target: &str) {
        let waiting = self.calls.get(&key).is_some_and(|c| c.waiting());
        if !waiting {
            let _ = self.acd.abandon(now, key);
            return;
        }
        let Some((uri, peer)) = self.resolve_seat(now, key, &agent, target) else {
            warn!(agent, target, "agent contact is not a reachable SIP URI");
            let _ = self.acd.ring_failed(now, key, &agent);
            return;
        };
        let ticket = self.call_id_of(key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut pop = vec![
            // The call record's id (as in /api/v1/calls and the stub), unique
            // across restarts; not the core's per-process call counter.
            ("X-Hotline-Call-Id".to_string(), ticket.clone()),
            ("X-Hotline-Caller".to_string(), call.caller.clone()),
            ("X-Hotline-Line".to_string(), call.line.clone()),
            ("X-Hotline-Mode".to_string(), call.mode.as_str().to_string()),
            (
                "X-Hotline-Department".to_string(),
                call.department.clone().unwrap_or_default(),
            ),
            (
                "X-Hotline-Queue".to_string(),
                call.queue.clone().unwrap_or_default(),
            ),
        ];
        if self.cfg.tickets {
            pop.push(("X-Hotline-Ticket".to_string(), ticket));
        }
        call.agent = Some(agent.clone());
        let span = call.span.clone();
        self.note(now, key, cdr::EventKind::AgentRinging, Some(agent.clone()));
        span.in_scope(|| debug!(agent, "ringing agent"));
        self.place_b(now, key, uri, peer, pop);
    }

    /// The Request-URI and address for ringing a seat. An agent: its registered
    /// contact as the Request-URI, sent to the transport and address its REGISTER
    /// came from (never to a host the Contact names: DESIGN.md §7; over TCP, once
    /// that connection has closed, the Contact's port on that IP:
    /// [`crate::registrar::Binding::ring_at`]), or nothing once it has no binding. A static member: its URI (whose missing user part
    /// becomes the called number).
    fn resolve_seat(
        &self,
        now: Instant,
        key: CallKey,
        agent: &str,
        target: &str,
    ) -> Option<(String, Peer)> {
        if self.registrar.is_user(agent) {
            let bindings = self.registrar.lookup(now, agent);
            let b = bindings
                .iter()
                .find(|b| b.contact.eq_ignore_ascii_case(target))
                .or(bindings.first())?;
            return Some((b.contact.clone(), b.ring_at()));
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
            None => {
                let called = self.calls.get(&key).map(|c| c.called.clone())?;
                super::invite::sip_uri(&called, addr, transport)
            }
        };
        Some((text, Peer { transport, addr }))
    }

    /// Gives up on the current callee leg of a call (the ACD moved on).
    pub(super) fn cancel_ring(&mut self, now: Instant, key: CallKey, agent: &str) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.agent.as_deref() != Some(agent) {
            return;
        }
        call.agent = None;
        let dialog = std::mem::replace(&mut call.b, Dialog::none());
        let provisional = call.b_provisional;
        call.b_invite_tx = None;
        call.cancel_pending = false;
        let Some(tx) = call.b_invite.take() else {
            self.by_b.remove(&dialog.call_id);
            return;
        };
        call.txs.retain(|t| *t != tx);
        self.by_b.remove(&dialog.call_id);
        self.by_tx.insert(tx, (key, Role::Orphan));
        self.orphans.insert(
            tx,
            Orphan {
                dialog,
                cancelled: provisional,
            },
        );
        if provisional && let Ok(c) = self.tl.cancel(now, tx) {
            self.by_tx.insert(c, (key, Role::Fire));
        }
    }

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

    /// The callee leg of a queued call failed: the ACD tries the next seat.
    pub(super) fn ring_failed(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(agent) = call.agent.take() else {
            return;
        };
        call.b_invite = None;
        call.b_invite_tx = None;
        call.cancel_pending = false;
        let dialog = std::mem::replace(&mut call.b, Dialog::none());
        self.by_b.remove(&dialog.call_id);
        if let Err(e) = self.acd.ring_failed(now, key, &agent) {
            debug!(error = %e, "ring_failed");
        }
        self.drain_acd(now);
    }

    /// REGISTER from an agent's softphone.
    pub(super) fn on_register(&mut self, now: Instant, tx: TxId, req: &Request, peer: Peer) {
        let reply = self.registrar.handle_register(now, req, peer);
        if let Some(account) = &reply.failed_account {
            info!(account = %account, source = %Pii(peer.addr.ip()), status = reply.code, reason = %reply.reason, "registration failed");
        }
        self.send_registrar_reply(now, tx, req, &reply);
        self.drain_registrar(now);
    }

    /// Sends the registrar's answer (to a REGISTER, or a challenge or refusal of
    /// an agent's INVITE or REFER) on `tx`.
    pub(super) fn send_registrar_reply(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        reply: &RegisterReply,
    ) {
        let tag = self.ids.tag();
        let mut m = response_to(req, reply.code, &reply.reason, Some(&tag));
        for (name, value) in &reply.headers {
            m.header(name, value);
        }
        self.respond(now, tx, reply.code, m.finish_empty());
    }

    /// Logs agents in and out as their registrations come and go.
    pub(super) fn drain_registrar(&mut self, now: Instant) {
        while let Some(ev) = self.registrar.poll_event() {
            match ev {
                RegistrarEvent::Registered { user, contact } => {
                    info!(agent = %user, "agent registered");
                    if let Err(e) = self.acd.login(&user, contact, now) {
                        debug!(error = %e, agent = %user, "registered user is not an ACD agent");
                    }
                }
                RegistrarEvent::Unregistered { user, .. }
                | RegistrarEvent::Expired { user, .. } => {
                    if self.registrar.lookup(now, &user).is_empty() {
                        info!(agent = %user, "agent unregistered");
                        let _ = self.acd.logout(&user, now);
                    }
                }
                RegistrarEvent::Blocked { ip, user } => {
                    let account = user.as_deref().unwrap_or("(every account)");
                    warn!(source = %Pii(ip), account = ?account, "source blocked after repeated digest failures");
                }
            }
        }
        self.drain_qualify(now);
        self.drain_acd(now);
    }
}
