//! Failed-authentication counting and blocking, per (account, source IP) and per
//! source IP.
//!
//! Only failures the registrar has proved came from the source are counted: the
//! response was computed over a nonce issued to that very address (see
//! `nonce.rs`), so whoever sent it received our challenge there. Spoofed packets
//! carry no such nonce and count for nothing.
//!
//! Two limits, each over `window`:
//! - an account tried from one source more than `max_failures` times: that account
//!   is refused (403) **to that source only** for `block_for`. The agent at their
//!   own desk, or anywhere else, keeps working; a guesser must move address.
//! - one source failing more than `max_source_failures` times across all accounts
//!   (a scan of many names): the whole source is refused for `block_for`.
//!
//! Owns only timestamps keyed by (user, IP) and IP; never sees credentials. No I/O,
//! no clock: every call takes `now`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most keys tracked at once; beyond it one is forgotten (see `make_room`), so a
/// scan from many addresses cannot grow memory without bound.
const MAX_TRACKED: usize = 16_384;
/// Longest user name kept as a key; longer names are cut (they match no account).
const MAX_USER_LEN: usize = 64;

/// What is counted and blocked: an account as tried from one source, or a source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(IpAddr, Box<str>),
    Source(IpAddr),
}

/// What a failure caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Nothing yet.
    No,
    /// This account is refused to this source from now on.
    Account,
    /// This source is refused for every account from now on.
    Source,
}

/// Failure windows and blocks per (account, source) and per source.
///
/// Why: password guessing against agents' accounts is the first attack a public
/// registrar meets (DESIGN.md §6: "failures rate-limited per source"), and a lock
/// that anybody can trigger for somebody else is an attack of its own.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    max_source_failures: u32,
    window: Duration,
    block_for: Duration,
    by_key: HashMap<Key, State>,
}

#[derive(Debug, Default)]
struct State {
    /// Failure times inside the window, oldest first (bounded by the limit + 1).
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl State {
    fn last_seen(&self) -> Option<Instant> {
        self.failures.back().copied()
    }
}

impl FailureLimiter {
    pub fn new(
        max_failures: u32,
        max_source_failures: u32,
        window: Duration,
        block_for: Duration,
    ) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            max_source_failures,
            window,
            block_for,
            by_key: HashMap::new(),
        }
    }

    /// Whether `ip` is refused as a whole, or for `user` when one is named.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr, user: Option<&str>) -> bool {
        let blocked = |k: &Key| {
            self.by_key
                .get(k)
                .and_then(|s| s.blocked_until)
                .is_some_and(|until| until > now)
        };
        blocked(&Key::Source(ip)) || user.is_some_and(|u| blocked(&account(ip, u)))
    }

    /// Counts a proven failure of `user` from `ip`; says what it blocked.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr, user: &str) -> Blocked {
        let account_limit = self.max_failures;
        let source_limit = self.max_source_failures;
        if self.count(now, account(ip, user), account_limit) {
            // The source's count still grows, so a scan is caught either way.
            self.count(now, Key::Source(ip), source_limit);
            return Blocked::Account;
        }
        if self.count(now, Key::Source(ip), source_limit) {
            return Blocked::Source;
        }
        Blocked::No
    }

    /// A success of `user` from `ip` clears that account's failures there (not the
    /// source's: a guesser sharing an office NAT with agents must not be reset by
    /// their logins).
    pub fn record_success(&mut self, ip: IpAddr, user: &str) {
        let k = account(ip, user);
        if self
            .by_key
            .get(&k)
            .is_some_and(|s| s.blocked_until.is_none())
        {
            self.by_key.remove(&k);
        }
    }

    /// The earliest end of a block.
    pub fn next_unblock(&self) -> Option<Instant> {
        self.by_key.values().filter_map(|s| s.blocked_until).min()
    }

    /// Ends blocks due by `now` and forgets failures older than the window.
    pub fn handle_timeout(&mut self, now: Instant) {
        let window = self.window;
        self.by_key.retain(|_, s| {
            if s.blocked_until.is_some_and(|u| u > now) {
                return true;
            }
            s.blocked_until = None;
            s.last_seen()
                .is_some_and(|t| now.saturating_duration_since(t) < window)
        });
    }

    /// Keys currently tracked (failing or blocked); for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.by_key.len()
    }

    /// Adds a failure under `key`; true when it makes `key` blocked (from `now`).
    fn count(&mut self, now: Instant, key: Key, limit: u32) -> bool {
        if !self.by_key.contains_key(&key) && self.by_key.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        let window = self.window;
        let state = self.by_key.entry(key).or_default();
        state.blocked_until = state.blocked_until.filter(|u| *u > now);
        if state.blocked_until.is_some() {
            return false;
        }
        while state
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            state.failures.pop_front();
        }
        state.failures.push_back(now);
        if state.failures.len() > limit as usize {
            state.failures.clear();
            state.blocked_until = Some(now + self.block_for);
            return true;
        }
        false
    }

    fn make_room(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.by_key.len() < MAX_TRACKED {
            return;
        }
        // The least recent failing key, else (all blocked) the block ending first:
        // the table stays bounded even under a scan from many addresses.
        let victim = self
            .by_key
            .iter()
            .filter(|(_, s)| s.blocked_until.is_none())
            .min_by_key(|(_, s)| s.last_seen())
            .or_else(|| self.by_key.iter().min_by_key(|(_, s)| s.blocked_until))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.by_key.remove(&k);
        }
    }
}

fn account(ip: IpAddr, user: &str) -> Key {
    let mut end = user.len().min(MAX_USER_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    Key::Account(ip, user[..end].into())
}
