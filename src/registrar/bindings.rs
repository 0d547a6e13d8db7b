//! The location table: contact bindings per user (address-of-record), their
//! lifetimes and the events their changes produce. No I/O, no clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sip::message::SipUri;
use crate::sip::{Peer, Transport};

use super::RegistrarEvent;
use super::contact::{ContactRequest, ContactUpdate};

/// Where an agent's softphone can be reached, and until when.
///
/// Why: the call core looks agents up here to ring them; `source` is where the
/// REGISTER really came from, which is what to send to behind a NAT.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Contact URI as registered, without `<>` and without `?headers`.
    pub contact: String,
    pub expires_at: Instant,
    /// Transport and address the REGISTER arrived from.
    pub source: Peer,
    /// Call-ID and CSeq of the REGISTER that last wrote this binding, to reject
    /// reordered or replayed older ones (RFC 3261 §10.3 step 7).
    pub call_id: String,
    pub cseq: u32,
    /// Preference (`q` parameter, 0–1); absent counts as 1 when ordering.
    pub q: Option<f32>,
    /// When the binding was last written, to order equal-q bindings.
    pub updated_at: Instant,
    /// The TCP connection the REGISTER came over has closed since (see
    /// [`ring_at`](Self::ring_at)).
    pub flow_closed: bool,
    /// The Path (RFC 3327) a trusted proxy added, in order: the Route set of
    /// the requests that ring this contact. Empty without a proxy.
    pub path: Vec<String>,
}

impl Binding {
    /// Where to send requests to this agent (never a host it did not register
    /// from). Over UDP, and over TCP while the REGISTER's connection is open:
    /// the REGISTER's source (through that very connection). Once that
    /// connection has closed, its ephemeral port means nothing: the Contact's
    /// port (5060 if it names none) on the same source IP, over TCP.
    pub fn ring_at(&self) -> Peer {
        if self.source.transport != Transport::Tcp || !self.flow_closed {
            return self.source;
        }
        // Behind a proxy (only a trusted one writes a Path): its address, as
        // the first Path entry names it.
        if let Some(addr) = self.path.first().and_then(|p| path_addr(p)) {
            return Peer {
                transport: Transport::Tcp,
                addr,
            };
        }
        let port = SipUri::parse(&self.contact)
            .ok()
            .and_then(|u| u.port)
            .unwrap_or(5060);
        Peer {
            transport: Transport::Tcp,
            addr: std::net::SocketAddr::new(self.source.addr.ip(), port),
        }
    }

    /// Whole seconds left, rounded up (what a `;expires=` parameter reports).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let left = self.expires_at.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// The REGISTER facts every binding it writes shares.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub now: Instant,
    pub source: Peer,
    pub call_id: &'a str,
    pub cseq: u32,
    pub max_contacts: usize,
    /// The Path a trusted proxy added (empty otherwise).
    pub path: &'a [String],
}

/// Why a REGISTER's binding changes were not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyReject {
    /// Same Call-ID as a stored binding and a CSeq not higher than it.
    StaleCseq,
    /// The AOR would have more than `max_contacts` bindings.
    TooManyContacts,
}

/// All bindings, by user.
///
/// Why: one owner for the lifetimes, so that expiry, lookup and un-registration
/// agree on what is bound and every change yields exactly one event.
#[derive(Debug, Default)]
pub struct BindingTable {
    by_user: HashMap<String, Vec<Binding>>,
    /// Bindings per source IP, so that "did an agent register from here?" is one
    /// lookup per INVITE, not a scan of every binding.
    by_ip: HashMap<IpAddr, u32>,
    /// Bumped whenever an IP enters or leaves `by_ip`, so that a copy of the set
    /// kept elsewhere (the TCP acceptor's) knows when to refresh.
    ip_generation: u64,
}

impl BindingTable {
    /// Whether a binding came from `ip` (one past its expiry counts until
    /// [`expire`](Self::expire) removes it, which the registrar's timer does on
    /// time).
    pub fn any_from(&self, ip: IpAddr) -> bool {
        self.by_ip.contains_key(&ip)
    }

    /// The TCP connection from `peer` has closed: bindings written over it are
    /// rung at their Contact's port from now on. One lookup when no agent
    /// registered from that IP (a stranger's connection).
    pub fn connection_closed(&mut self, peer: Peer) {
        if peer.transport != Transport::Tcp || !self.any_from(peer.addr.ip()) {
            return;
        }
        for b in self.by_user.values_mut().flatten() {
            if b.source == peer {
                b.flow_closed = true;
            }
        }
    }

    /// The IPs bindings came from, and the generation of that set (it changes
    /// whenever the set does).
    pub fn sources(&self) -> (u64, impl Iterator<Item = IpAddr> + '_) {
        (self.ip_generation, self.by_ip.keys().copied())
    }

    fn count(&mut self, list: &[Binding], added: bool) {
        for b in list {
            let ip = b.source.addr.ip();
            let n = self.by_ip.entry(ip).or_default();
            if added {
                *n += 1;
                if *n == 1 {
                    self.ip_generation += 1;
                }
            } else {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_ip.remove(&ip);
                    self.ip_generation += 1;
                }
            }
        }
    }

    /// Unexpired bindings of `user`, best `q` first, then most recently written.
    pub fn lookup(&self, now: Instant, user: &str) -> Vec<&Binding> {
        let mut out: Vec<&Binding> = self
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter(|b| b.expires_at > now)
            .collect();
        out.sort_by(|a, b| {
            let (qa, qb) = (a.q.unwrap_or(1.0), b.q.unwrap_or(1.0));
            qb.total_cmp(&qa).then(b.updated_at.cmp(&a.updated_at))
        });
        out
    }

    /// The earliest expiry of any binding.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_user.values().flatten().map(|b| b.expires_at).min()
    }

    /// Removes bindings due by `now`, emitting `Expired` for each.
    pub fn expire(&mut self, now: Instant, events: &mut Vec<RegistrarEvent>) {
        let mut gone = Vec::new();
        self.by_user.retain(|user, list| {
            list.retain(|b| {
                let alive = b.expires_at > now;
                if !alive {
                    events.push(RegistrarEvent::Expired {
                        user: user.clone(),
                        contact: b.contact.clone(),
                    });
                    gone.push(b.clone());
                }
                alive
            });
            !list.is_empty()
        });
        self.count(&gone, false);
    }

    /// Drops every binding of users `keep` rejects, emitting `Unregistered`.
    pub fn retain_users(&mut self, keep: impl Fn(&str) -> bool, events: &mut Vec<RegistrarEvent>) {
        let mut gone = Vec::new();
        self.by_user.retain(|user, list| {
            if keep(user) {
                return true;
            }
            events.extend(list.iter().map(|b| RegistrarEvent::Unregistered {
                user: user.clone(),
                contact: b.contact.clone(),
            }));
            gone.append(list);
            false
        });
        self.count(&gone, false);
    }

    /// Applies a REGISTER's contacts for `user` all-or-nothing (RFC 3261 §10.3).
    pub fn apply(
        &mut self,
        user: &str,
        req: &ContactRequest,
        w: Writer<'_>,
        events: &mut Vec<RegistrarEvent>,
    ) -> Result<(), ApplyReject> {
        let old: &[Binding] = self.by_user.get(user).map_or(&[], Vec::as_slice);
        let stale = |uri: Option<&str>| {
            old.iter().any(|b| {
                uri.is_none_or(|u| same_uri(&b.contact, u))
                    && b.call_id == w.call_id
                    && w.cseq <= b.cseq
            })
        };
        let next = match req {
            ContactRequest::Query => return Ok(()),
            ContactRequest::RemoveAll => {
                if stale(None) {
                    return Err(ApplyReject::StaleCseq);
                }
                Vec::new()
            }
            ContactRequest::Update(updates) => {
                if updates.iter().any(|u| stale(Some(&u.uri))) {
                    return Err(ApplyReject::StaleCseq);
                }
                let mut next = old.to_vec();
                for u in updates {
                    next.retain(|b| !same_uri(&b.contact, &u.uri));
                    if u.expires > 0 {
                        next.push(binding(u, w));
                    }
                }
                if next.len() > w.max_contacts {
                    return Err(ApplyReject::TooManyContacts);
                }
                next
            }
        };
        self.replace(user, next, events);
        Ok(())
    }

    /// Sets `user`'s bindings to `next`, emitting `Registered` for contacts new
    /// to it and `Unregistered` for those gone.
    pub fn replace(&mut self, user: &str, next: Vec<Binding>, events: &mut Vec<RegistrarEvent>) {
        let old: &[Binding] = self.by_user.get(user).map_or(&[], Vec::as_slice);
        for b in old.iter().filter(|b| !contains(&next, &b.contact)) {
            events.push(RegistrarEvent::Unregistered {
                user: user.to_string(),
                contact: b.contact.clone(),
            });
        }
        for b in next.iter().filter(|b| !contains(old, &b.contact)) {
            events.push(RegistrarEvent::Registered {
                user: user.to_string(),
                contact: b.contact.clone(),
            });
        }
        let old = self.by_user.remove(user).unwrap_or_default();
        // The new ones first: a refresh from the same address leaves the set of
        // source IPs (and its generation) as it was, so nothing is copied for it.
        self.count(&next, true);
        self.count(&old, false);
        if !next.is_empty() {
            self.by_user.insert(user.to_string(), next);
        }
    }

    /// The users with bindings.
    pub fn users(&self) -> Vec<String> {
        self.by_user.keys().cloned().collect()
    }

    /// `user`'s bindings as they are stored (expired ones included until the
    /// expiry timer removes them).
    pub fn of(&self, user: &str) -> &[Binding] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }
}

fn binding(u: &ContactUpdate, w: Writer<'_>) -> Binding {
    Binding {
        contact: u.uri.clone(),
        expires_at: w.now + Duration::from_secs(u64::from(u.expires)),
        source: w.source,
        call_id: w.call_id.to_string(),
        cseq: w.cseq,
        q: u.q,
        updated_at: w.now,
        flow_closed: false,
        path: w.path.to_vec(),
    }
}

/// The address a Path entry (`<sip:proxy:port;lr>`) names, when it is an IP.
fn path_addr(entry: &str) -> Option<std::net::SocketAddr> {
    let uri = SipUri::parse(crate::sip::message::addr_spec(entry)).ok()?;
    Some(std::net::SocketAddr::new(
        uri.ip()?,
        uri.port.unwrap_or(5060),
    ))
}

fn contains(list: &[Binding], uri: &str) -> bool {
    list.iter().any(|b| same_uri(&b.contact, uri))
}

/// Contact URI equality: case-insensitive on the whole text. Stricter than RFC
/// 3261 §19.1.4 only for differently ordered parameters, which softphones
/// refreshing their own binding do not produce.
fn same_uri(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}
