//! Bindings as they leave one node and reach another (through the database):
//! lifetimes in Unix milliseconds instead of instants. The node taking over the
//! ACD rings agents at once, without waiting for their next REGISTER.

use std::time::{Duration, Instant};

use super::{Binding, Registrar, RegistrarEvent};
use crate::sip::Peer;

/// One binding with its lifetime on the wall clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PortableBinding {
    pub user: String,
    pub contact: String,
    pub source: Peer,
    pub path: Vec<String>,
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at_ms: i64,
}

impl Registrar {
    /// `user`'s current bindings, for the database; `unix_now_ms` is the wall
    /// clock at `now`. Empty once the user has none.
    pub fn export(&self, now: Instant, unix_now_ms: i64, user: &str) -> Vec<PortableBinding> {
        self.bindings
            .of(user)
            .iter()
            .filter(|b| b.expires_at > now)
            .map(|b| PortableBinding {
                user: user.to_string(),
                contact: b.contact.clone(),
                source: b.source,
                path: b.path.clone(),
                q: b.q,
                call_id: b.call_id.clone(),
                cseq: b.cseq,
                expires_at_ms: unix_now_ms
                    + b.expires_at.saturating_duration_since(now).as_millis() as i64,
            })
            .collect()
    }

    /// Replaces the bindings of every user `list` names with its entries (the
    /// database's view, read when this node took over); entries of users not
    /// configured here, or already expired, are skipped. Emits `Registered`
    /// events (the ACD logs those agents in) and starts keepalives. Returns how
    /// many bindings were taken.
    pub fn import(&mut self, now: Instant, unix_now_ms: i64, list: Vec<PortableBinding>) -> usize {
        let mut by_user: std::collections::BTreeMap<String, Vec<Binding>> = Default::default();
        for p in list {
            let left = p.expires_at_ms - unix_now_ms;
            if left <= 0 || !self.users.contains_key(&p.user) {
                continue;
            }
            let flow_closed = p.source.transport == crate::sip::Transport::Tcp;
            by_user.entry(p.user).or_default().push(Binding {
                contact: p.contact,
                expires_at: now + Duration::from_millis(left as u64),
                source: p.source,
                call_id: p.call_id,
                cseq: p.cseq,
                q: p.q,
                updated_at: now,
                // Another node's TCP connection is not ours.
                flow_closed,
                path: p.path,
            });
        }
        let mut taken = 0;
        let mut events = Vec::new();
        for (user, mut list) in by_user {
            list.truncate(self.cfg.max_contacts);
            taken += list.len();
            for b in &list {
                self.qualify.bound(now, &user, &b.contact, b.ring_at());
            }
            self.bindings.replace(&user, list, &mut events);
        }
        self.push_events(events);
        taken
    }

    /// Forgets every binding here (not in the database): this node no longer
    /// holds the ACD, and must not ring anyone. Emits `Unregistered` events.
    pub fn forget_all(&mut self) {
        let mut events: Vec<RegistrarEvent> = Vec::new();
        for user in self.bindings.users() {
            self.bindings.replace(&user, Vec::new(), &mut events);
        }
        self.push_events(events);
    }
}
