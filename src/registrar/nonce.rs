//! Stateless digest nonces and the small replay guard that backs them.
//!
//! A nonce is `hex(secs) ‖ hex(serial) ‖ hex(HMAC-SHA256(secret, secs ‖ serial ‖
//! source IP ‖ realm)[..16])`: it proves the registrar issued it, when, and to which
//! source address, so nothing is stored per challenge and a flood of
//! unauthenticated requests costs no memory. A nonce presented from another
//! address does not verify: a failure is only counted for a nonce the gateway
//! gave that very source, so spoofed packets cannot lock anybody out. `secs`
//! counts seconds since the `t0` given to the registrar (this file never reads a
//! clock); `serial` makes two challenges in the same second differ, so a client
//! that reuses its cnonce is not mistaken for a replay.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::digest::{constant_time_eq, hex};

/// Bytes of the HMAC kept in a nonce (128 bits: forging one is out of reach).
const MAC_LEN: usize = 16;
/// Hex digits of the issue time (a `u64`).
const TIME_HEX: usize = 16;
/// Hex digits of the serial (a `u32`).
const SERIAL_HEX: usize = 8;

/// What a nonce presented by a client turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued by us within the TTL.
    Fresh,
    /// Issued by us, but longer ago than the TTL.
    Stale,
    /// Not ours: forged, mangled, issued to another source address, or from
    /// before a restart with a new secret.
    Invalid,
}

/// Issues and checks nonces with a keyed MAC.
///
/// Why: verification needs only the secret, so the registrar keeps no table of
/// outstanding challenges (DESIGN.md §6: bad input must not cost us state).
pub struct NonceKey {
    secret: [u8; 32],
    realm: String,
    t0: Instant,
    ttl: Duration,
    /// Counts issued nonces (wrapping); not secret, only for uniqueness.
    serial: u32,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("secret", &"<redacted>")
            .field("realm", &self.realm)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl NonceKey {
    pub fn new(secret: [u8; 32], realm: &str, t0: Instant, ttl: Duration) -> NonceKey {
        NonceKey {
            secret,
            realm: realm.to_string(),
            t0,
            ttl,
            serial: 0,
        }
    }

    /// A nonce stamped with `now`, for the client at `source`.
    pub fn issue(&mut self, now: Instant, source: IpAddr) -> String {
        let secs = now.saturating_duration_since(self.t0).as_secs();
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let mac = self.mac(secs, serial, source);
        format!("{secs:016x}{serial:08x}{}", hex(&mac))
    }

    /// What `nonce`, presented by a client at `source`, is.
    pub fn check(&self, now: Instant, nonce: &str, source: IpAddr) -> NonceState {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if nonce.len() != TIME_HEX + SERIAL_HEX + 2 * MAC_LEN || !nonce.bytes().all(lower_hex) {
            return NonceState::Invalid;
        }
        let (time, rest) = nonce.split_at(TIME_HEX);
        let (serial, mac) = rest.split_at(SERIAL_HEX);
        let (Ok(secs), Ok(serial)) = (
            u64::from_str_radix(time, 16),
            u32::from_str_radix(serial, 16),
        ) else {
            return NonceState::Invalid;
        };
        if !constant_time_eq(
            mac.as_bytes(),
            hex(&self.mac(secs, serial, source)).as_bytes(),
        ) {
            return NonceState::Invalid;
        }
        let Some(issued) = self.t0.checked_add(Duration::from_secs(secs)) else {
            return NonceState::Invalid;
        };
        if issued > now {
            // Ours, yet from the future: only possible with a reused secret and a
            // different t0. Refuse it rather than trust the clock arithmetic.
            return NonceState::Invalid;
        }
        if now.duration_since(issued) > self.ttl {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }

    fn mac(&self, secs: u64, serial: u32, source: IpAddr) -> [u8; MAC_LEN] {
        let mut msg = Vec::with_capacity(29 + self.realm.len());
        msg.extend_from_slice(&secs.to_be_bytes());
        msg.extend_from_slice(&serial.to_be_bytes());
        // An IPv4-mapped IPv6 address is the same host as the IPv4 one.
        match source.to_canonical() {
            IpAddr::V4(a) => {
                msg.push(4);
                msg.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                msg.push(6);
                msg.extend_from_slice(&a.octets());
            }
        }
        msg.extend_from_slice(self.realm.as_bytes());
        let full = hmac_sha256(&self.secret, &msg);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }
}

/// HMAC-SHA256 (RFC 2104), written out because only `sha2` is a dependency.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.into()
}

/// How many (nonce, cnonce) pairs are remembered per user.
const GUARD_PER_USER: usize = 8;

/// The highest nonce-count seen per (user, nonce, cnonce).
///
/// Why: digest with qop=auth does not cover the Contact header, so a sniffed
/// Authorization could be replayed within the nonce TTL to hijack an agent's
/// calls. Remembering the last `nc` per client nonce (RFC 7616 §3.4.5) stops that,
/// at a bounded cost: a few entries per provisioned user.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<String, VecDeque<Seen>>,
}

#[derive(Debug)]
struct Seen {
    nonce: String,
    cnonce: String,
    nc: u32,
}

impl ReplayGuard {
    /// Records a use; false when this (nonce, cnonce) already had an `nc` this high.
    pub fn accept(&mut self, user: &str, nonce: &str, cnonce: &str, nc: u32) -> bool {
        let list = self.seen.entry(user.to_string()).or_default();
        if let Some(s) = list
            .iter_mut()
            .find(|s| s.nonce == nonce && s.cnonce == cnonce)
        {
            if nc <= s.nc {
                return false;
            }
            s.nc = nc;
            return true;
        }
        if list.len() >= GUARD_PER_USER {
            list.pop_front();
        }
        list.push_back(Seen {
            nonce: nonce.to_string(),
            cnonce: cnonce.to_string(),
            nc,
        });
        true
    }

    /// Forgets users that no longer exist.
    pub fn retain_users(&mut self, keep: impl Fn(&str) -> bool) {
        self.seen.retain(|u, _| keep(u));
    }
}
