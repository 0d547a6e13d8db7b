//! Failed-authentication counting and blocking per source IP.
//!
//! Owns only timestamps keyed by IP address; it never sees credentials. No I/O,
//! no clock: every call takes `now`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most source addresses tracked at once; beyond it one is forgotten (see
/// `make_room`), so a scan from many addresses cannot grow memory without bound.
const MAX_TRACKED: usize = 16_384;

/// Per-IP failure windows and blocks.
///
/// Why: password guessing against agents' accounts is the first attack a public
/// registrar meets (DESIGN.md §6: "failures rate-limited per source").
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    block_for: Duration,
    by_ip: HashMap<IpAddr, IpState>,
}

#[derive(Debug, Default)]
struct IpState {
    /// Failure times inside the window, oldest first (at most `max_failures + 1`).
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl IpState {
    fn last_seen(&self) -> Option<Instant> {
        self.failures.back().copied()
    }
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration, block_for: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window,
            block_for,
            by_ip: HashMap::new(),
        }
    }

    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.by_ip
            .get(&ip)
            .and_then(|s| s.blocked_until)
            .is_some_and(|until| until > now)
    }

    /// Counts a failure; true when it makes `ip` blocked (from `now`).
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> bool {
        if !self.by_ip.contains_key(&ip) && self.by_ip.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        let window = self.window;
        let state = self.by_ip.entry(ip).or_default();
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
        if state.failures.len() > self.max_failures as usize {
            state.failures.clear();
            state.blocked_until = Some(now + self.block_for);
            return true;
        }
        false
    }

    /// A success from `ip` clears its failures.
    pub fn record_success(&mut self, ip: IpAddr) {
        if self
            .by_ip
            .get(&ip)
            .is_some_and(|s| s.blocked_until.is_none())
        {
            self.by_ip.remove(&ip);
        }
    }

    /// The earliest end of a block.
    pub fn next_unblock(&self) -> Option<Instant> {
        self.by_ip.values().filter_map(|s| s.blocked_until).min()
    }

    /// Ends blocks due by `now` and forgets failures older than the window.
    pub fn handle_timeout(&mut self, now: Instant) {
        let window = self.window;
        self.by_ip.retain(|_, s| {
            if s.blocked_until.is_some_and(|u| u > now) {
                return true;
            }
            s.blocked_until = None;
            s.last_seen()
                .is_some_and(|t| now.saturating_duration_since(t) < window)
        });
    }

    fn make_room(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.by_ip.len() < MAX_TRACKED {
            return;
        }
        // The least recent failing address, else (all blocked) the block ending first:
        // the table stays bounded even under a scan from many addresses.
        let victim = self
            .by_ip
            .iter()
            .filter(|(_, s)| s.blocked_until.is_none())
            .min_by_key(|(_, s)| s.last_seen())
            .or_else(|| self.by_ip.iter().min_by_key(|(_, s)| s.blocked_until))
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            self.by_ip.remove(&ip);
        }
    }

    /// Addresses currently tracked (failing or blocked); for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.by_ip.len()
    }
}
