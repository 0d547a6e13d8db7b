//! Keepalive probes of registered contacts, as Asterisk's `qualify` does: every
//! `every`, an OPTIONS to each binding (at the address its REGISTER came from);
//! a binding whose probe gets no answer within `timeout` (or whose transaction
//! times out) is unreachable until a probe is answered again or it registers
//! again. An agent is unreachable when all of its bindings are.
//!
//! Pure: the registrar feeds it bindings as they come and go and `now`; the call
//! core sends each [`Probe`] as an OPTIONS and reports how it ended
//! ([`Qualifier::answered`], [`Qualifier::lost`]). It never learns of an address
//! but from a binding, so nobody can make the gateway probe an address that did
//! not register with a valid password; at most `max_outstanding` probes are in
//! flight at once (a binding's next probe waits for its last one to end), so the
//! probes' traffic is bounded by the number of bindings, not by anyone's input.
//!
//! Owns: per binding, when it is probed next, the probe in flight and whether it
//! answered. Must not: send SIP, read the clock.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use std::time::Instant;

use crate::sip::Peer;

/// How the keepalive probes run (`[registrar] qualify_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualifyConfig {
    /// Time between a binding's probes (from its registration, then from the
    /// end of its last probe); zero turns probing off.
    pub every: Duration,
    /// A probe not answered within this is a miss: the binding is unreachable.
    pub timeout: Duration,
    /// Most probes in flight at once; due ones wait for a slot.
    pub max_outstanding: usize,
}

impl Default for QualifyConfig {
    fn default() -> Self {
        QualifyConfig {
            every: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_outstanding: 256,
        }
    }
}

/// Identifies one probe (one OPTIONS transaction).
pub type ProbeId = u64;

/// An OPTIONS to send: to `contact` (the Request-URI) at `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub id: ProbeId,
    pub user: String,
    pub contact: String,
    pub peer: Peer,
}

/// An agent's reachability changed: all its bindings stopped answering, or one
/// answers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    pub user: String,
    pub reachable: bool,
}

type EntryId = u64;

/// One binding as the prober sees it.
#[derive(Debug)]
struct Entry {
    user: String,
    contact: String,
    peer: Peer,
    reachable: bool,
    /// Its one deadline in `due`: the next probe, or the answer to the one in flight.
    wake: Option<Instant>,
    /// The probe in flight (its transaction has not ended).
    probe: Option<ProbeId>,
    /// Due, and waiting for a free slot.
    queued: bool,
}

/// Per agent: bindings, and how many of them are unreachable.
#[derive(Debug, Default, Clone, Copy)]
struct UserCount {
    bindings: u32,
    unreachable: u32,
}

impl UserCount {
    fn reachable(self) -> bool {
        self.unreachable < self.bindings
    }
}

/// The keepalive prober of one registrar.
#[derive(Debug, Default)]
pub struct Qualifier {
    cfg: QualifyConfig,
    entries: HashMap<EntryId, Entry>,
    by_binding: HashMap<(String, String), EntryId>,
    users: HashMap<String, UserCount>,
    /// Each entry's `wake`, earliest first (exactly one item per armed entry).
    due: BTreeSet<(Instant, EntryId)>,
    /// Entries due while every slot was taken, oldest first.
    waiting: VecDeque<EntryId>,
    /// Probes in flight and their binding (which may be gone since).
    in_flight: HashMap<ProbeId, EntryId>,
    probes: VecDeque<Probe>,
    changes: VecDeque<Reachability>,
    next_entry: EntryId,
    next_probe: ProbeId,
}

impl Qualifier {
    pub fn new(cfg: QualifyConfig) -> Qualifier {
        Qualifier {
            cfg,
            ..Qualifier::default()
        }
    }

    fn enabled(&self) -> bool {
        !self.cfg.every.is_zero() && self.cfg.max_outstanding > 0
    }

    /// A REGISTER wrote (or refreshed) `user`'s binding `contact`, from `peer`
    /// (where it is probed). A REGISTER is a sign of life: an unreachable
    /// binding is reachable again.
    pub fn bound(&mut self, now: Instant, user: &str, contact: &str, peer: Peer) {
        if !self.enabled() {
            return;
        }
        let key = (user.to_string(), contact.to_ascii_lowercase());
        if let Some(&id) = self.by_binding.get(&key) {
            if let Some(e) = self.entries.get_mut(&id) {
                e.peer = peer;
            }
            self.set_reachable(id, true);
            return;
        }
        let id = self.next_entry;
        self.next_entry += 1;
        self.by_binding.insert(key, id);
        self.entries.insert(
            id,
            Entry {
                user: user.to_string(),
                contact: contact.to_string(),
                peer,
                reachable: true,
                wake: None,
                probe: None,
                queued: false,
            },
        );
        self.users.entry(user.to_string()).or_default().bindings += 1;
        self.arm(id, Some(now + self.cfg.every));
    }

    /// `user`'s binding `contact` is gone (removed, expired, account deleted).
    /// Its probe in flight keeps its slot until its transaction ends.
    pub fn unbound(&mut self, user: &str, contact: &str) {
        let key = (user.to_string(), contact.to_ascii_lowercase());
        let Some(id) = self.by_binding.remove(&key) else {
            return;
        };
        self.arm(id, None);
        let Some(e) = self.entries.remove(&id) else {
            return;
        };
        let Some(count) = self.users.get_mut(user) else {
            return;
        };
        let before = count.reachable();
        count.bindings -= 1;
        if !e.reachable {
            count.unreachable -= 1;
        }
        if count.bindings == 0 {
            self.users.remove(user);
            // Nothing left to be unreachable: the agent is logged out anyway.
            if !before {
                self.changes.push_back(Reachability {
                    user: user.to_string(),
                    reachable: true,
                });
            }
        } else if count.reachable() != before {
            let reachable = count.reachable();
            self.changes.push_back(Reachability {
                user: user.to_string(),
                reachable,
            });
        }
    }

    /// A final response to probe `id` came: the binding answers.
    pub fn answered(&mut self, now: Instant, id: ProbeId) {
        self.ended(now, id, true);
    }

    /// Probe `id`'s transaction ended without a response (Timer F, a transport
    /// error): the binding does not answer.
    pub fn lost(&mut self, now: Instant, id: ProbeId) {
        self.ended(now, id, false);
    }

    /// Whether `user` has bindings and none of them answers.
    pub fn unreachable(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|c| !c.reachable())
    }

    /// Probes in flight.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// The next OPTIONS to send.
    pub fn poll_probe(&mut self) -> Option<Probe> {
        self.probes.pop_front()
    }

    /// The next change of an agent's reachability.
    pub fn poll_change(&mut self) -> Option<Reachability> {
        self.changes.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Sends the probes due by `now` (as slots allow) and marks unreachable the
    /// bindings whose probe was not answered in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            e.wake = None;
            if e.probe.is_some() {
                // No answer in time; a late one still counts.
                self.set_reachable(id, false);
            } else {
                self.send_or_queue(now, id);
            }
        }
    }

    fn ended(&mut self, now: Instant, probe: ProbeId, answered: bool) {
        let Some(id) = self.in_flight.remove(&probe) else {
            return;
        };
        if let Some(e) = self.entries.get_mut(&id)
            && e.probe == Some(probe)
        {
            e.probe = None;
            self.set_reachable(id, answered);
            self.arm(id, Some(now + self.cfg.every));
        }
        // A slot is free: the longest-waiting due binding goes.
        while self.in_flight.len() < self.cfg.max_outstanding
            && let Some(next) = self.waiting.pop_front()
        {
            if let Some(e) = self.entries.get_mut(&next)
                && std::mem::take(&mut e.queued)
            {
                self.send(now, next);
            }
        }
    }

    fn send_or_queue(&mut self, now: Instant, id: EntryId) {
        if self.in_flight.len() < self.cfg.max_outstanding {
            return self.send(now, id);
        }
        if let Some(e) = self.entries.get_mut(&id)
            && !e.queued
        {
            e.queued = true;
            self.waiting.push_back(id);
        }
    }

    fn send(&mut self, now: Instant, id: EntryId) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        let probe = self.next_probe;
        self.next_probe += 1;
        e.probe = Some(probe);
        self.in_flight.insert(probe, id);
        self.probes.push_back(Probe {
            id: probe,
            user: e.user.clone(),
            contact: e.contact.clone(),
            peer: e.peer,
        });
        self.arm(id, Some(now + self.cfg.timeout));
    }

    /// Replaces the entry's deadline.
    fn arm(&mut self, id: EntryId, at: Option<Instant>) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if let Some(old) = e.wake.take() {
            self.due.remove(&(old, id));
        }
        if let Some(at) = at {
            e.wake = Some(at);
            self.due.insert((at, id));
        }
    }

    fn set_reachable(&mut self, id: EntryId, reachable: bool) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if e.reachable == reachable {
            return;
        }
        e.reachable = reachable;
        let user = e.user.clone();
        let Some(count) = self.users.get_mut(&user) else {
            return;
        };
        let before = count.reachable();
        if reachable {
            count.unreachable -= 1;
        } else {
            count.unreachable += 1;
        }
        if count.reachable() != before {
            self.changes.push_back(Reachability { user, reachable });
        }
    }
}
