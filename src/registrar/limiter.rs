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
//!   (a scan of many names): the whole source is refused for `block_for`,
//!   **except** to the accounts that authenticated from that source within
//!   `trust_for` (a day, or the longest registration if longer). A source is
//!   often an office NAT: one machine guessing behind it must not lock out the
//!   agents who proved their password from there (their REGISTER refreshes,
//!   INVITEs and REFERs go on). Their own per-account limit still applies.
//!
//! - an account blocked at a source (someone behind the same NAT guessed its
//!   password) stays open to the **flow** (IP and port) that authenticated as it
//!   within `trust_for`: the agent's own phone keeps refreshing its registration
//!   and placing calls, while the guesser, whose NAT mapping has another port, is
//!   refused. Wrong answers on that flow still count and are still refused.
//!
//! Owns only timestamps keyed by (user, IP), (user, IP and port) and IP; never
//! sees credentials. No I/O, no clock: every call takes `now`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most keys tracked at once; beyond it one is forgotten (see `make_room`), so a
/// scan from many addresses cannot grow memory without bound.
const MAX_TRACKED: usize = 16_384;
/// Longest user name kept as a key; longer names are cut (they match no account).
const MAX_USER_LEN: usize = 64;
/// Most (source, account) successes remembered; beyond it the oldest is
/// forgotten. Only a right password adds one, so a guesser cannot fill it.
const MAX_TRUSTED: usize = 16_384;

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
    /// How long a success keeps an account open to a blocked source.
    trust_for: Duration,
    /// The last success of each account from each source (only `Key::Account`s).
    trusted: HashMap<Key, Instant>,
    /// The last success of each account from each flow (IP and port).
    flows: HashMap<(SocketAddr, Box<str>), Instant>,
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
        trust_for: Duration,
    ) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            max_source_failures,
            window,
            block_for,
            by_key: HashMap::new(),
            trust_for,
            trusted: HashMap::new(),
            flows: HashMap::new(),
        }
    }

    /// Whether `user` (or, with `None`, an unnamed account) is refused to `ip`:
    /// the account is blocked there, or the whole source is and `user` has not
    /// authenticated from it within `trust_for`.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr, user: Option<&str>) -> bool {
        let blocked = |k: &Key| {
            self.by_key
                .get(k)
                .and_then(|s| s.blocked_until)
                .is_some_and(|until| until > now)
        };
        let Some(user) = user else {
            return blocked(&Key::Source(ip));
        };
        let key = account(ip, user);
        if blocked(&key) {
            return true;
        }
        blocked(&Key::Source(ip)) && !self.is_trusted(now, &key)
    }

    /// Whether the account `key` authenticated from its source within `trust_for`.
    fn is_trusted(&self, now: Instant, key: &Key) -> bool {
        fresh(&self.trusted, key, now, self.trust_for)
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
    /// their logins), and keeps the account open to `ip` for `trust_for` should
    /// the source as a whole be blocked.
    pub fn record_success(&mut self, now: Instant, ip: IpAddr, user: &str) {
        let k = account(ip, user);
        if self
            .by_key
            .get(&k)
            .is_some_and(|s| s.blocked_until.is_none())
        {
            self.by_key.remove(&k);
        }
        remember(&mut self.trusted, k, now, self.trust_for);
    }

    /// Forgets successes older than `trust_for`.
    fn forget_trust(&mut self, now: Instant) {
        let trust_for = self.trust_for;
        self.trusted
            .retain(|_, t| now.saturating_duration_since(*t) < trust_for);
        self.flows
            .retain(|_, t| now.saturating_duration_since(*t) < trust_for);
    }

    /// A success of `user` from the flow `from`: its account stays open to that
    /// flow for `trust_for` even if the account gets blocked at its IP.
    pub fn record_flow(&mut self, now: Instant, from: SocketAddr, user: &str) {
        remember(
            &mut self.flows,
            (from, cut(user).into()),
            now,
            self.trust_for,
        );
    }

    /// A wrong answer for `user` from the flow `from`: the flow loses its waiver,
    /// so that no flow can keep guessing a blocked account's password.
    pub fn forget_flow(&mut self, from: SocketAddr, user: &str) {
        self.flows.remove(&(from, cut(user).into()));
    }

    /// Whether `user` authenticated from the flow `from` within `trust_for`.
    pub fn flow_trusted(&self, now: Instant, from: SocketAddr, user: &str) -> bool {
        fresh(&self.flows, &(from, cut(user).into()), now, self.trust_for)
    }

    /// (Source, account) successes remembered; for tests and metrics.
    pub fn trusted(&self) -> usize {
        self.trusted.len()
    }

    /// The earliest end of a block.
    pub fn next_unblock(&self) -> Option<Instant> {
        self.by_key.values().filter_map(|s| s.blocked_until).min()
    }

    /// Ends blocks due by `now`, forgets failures older than the window and
    /// successes older than `trust_for`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.forget_trust(now);
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

/// Records a success at `now` under `key`, in a table of at most
/// `MAX_TRUSTED`: when it is full, successes older than `trust_for` go first,
/// then the oldest one.
fn remember<K: std::hash::Hash + Eq + Clone>(
    table: &mut HashMap<K, Instant>,
    key: K,
    now: Instant,
    trust_for: Duration,
) {
    if !table.contains_key(&key) && table.len() >= MAX_TRUSTED {
        table.retain(|_, t| now.saturating_duration_since(*t) < trust_for);
        if table.len() >= MAX_TRUSTED
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
        {
            table.remove(&oldest);
        }
    }
    table.insert(key, now);
}

/// Whether `key` succeeded within `trust_for` of `now`.
fn fresh<K: std::hash::Hash + Eq>(
    table: &HashMap<K, Instant>,
    key: &K,
    now: Instant,
    trust_for: Duration,
) -> bool {
    table
        .get(key)
        .is_some_and(|t| now.saturating_duration_since(*t) < trust_for)
}

fn account(ip: IpAddr, user: &str) -> Key {
    Key::Account(ip, cut(user).into())
}

/// A user name as kept in a key: at most `MAX_USER_LEN` bytes.
fn cut(user: &str) -> &str {
    let mut end = user.len().min(MAX_USER_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn limiter() -> FailureLimiter {
        // Blocks longer than the trust, to see the trust lapse inside one.
        FailureLimiter::new(5, 20, Duration::from_secs(60), 3 * DAY, DAY)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn block_source(l: &mut FailureLimiter, now: Instant, src: IpAddr) {
        let blocked: Vec<Blocked> = (0..21)
            .map(|i| l.record_failure(now, src, &format!("name{}", i % 7)))
            .collect();
        assert_eq!(blocked.last(), Some(&Blocked::Source));
    }

    #[test]
    fn a_success_keeps_its_account_open_to_a_blocked_source_for_trust_for() {
        let t0 = Instant::now();
        let mut l = limiter();
        l.record_success(t0, ip(1), "agent");
        block_source(&mut l, t0, ip(1));
        assert!(!l.is_blocked(t0, ip(1), Some("agent")));
        assert!(l.is_blocked(t0, ip(1), Some("other")));
        assert!(l.is_blocked(t0, ip(1), None));
        // The success was at another source: no help there.
        block_source(&mut l, t0, ip(2));
        assert!(l.is_blocked(t0, ip(2), Some("agent")));
        // A refresh renews the trust; without one it lapses after a day.
        let later = t0 + DAY - Duration::from_secs(1);
        assert!(!l.is_blocked(later, ip(1), Some("agent")));
        l.record_success(later, ip(1), "agent");
        assert!(!l.is_blocked(later + DAY - Duration::from_secs(1), ip(1), Some("agent")));
        let lapsed = later + DAY;
        assert!(l.is_blocked(lapsed, ip(1), Some("agent")));
        l.handle_timeout(lapsed);
        assert_eq!(l.trusted(), 0, "a lapsed success is forgotten");
    }

    #[test]
    fn the_memory_of_successes_is_bounded() {
        let t0 = Instant::now();
        let mut l = limiter();
        for i in 0..MAX_TRUSTED + 10 {
            let at = t0 + Duration::from_millis(i as u64);
            l.record_success(at, ip(1), &format!("agent{i}"));
        }
        assert_eq!(l.trusted(), MAX_TRUSTED);
        // The oldest went first; the newest is kept.
        let now = t0 + Duration::from_secs(60);
        block_source(&mut l, now, ip(1));
        assert!(l.is_blocked(now, ip(1), Some("agent0")));
        assert!(!l.is_blocked(now, ip(1), Some(&format!("agent{}", MAX_TRUSTED + 9))));
    }
}
