//! Strangers: sources that are neither a trunk nor a registered agent.
//!
//! Why: whoever can send a packet may be an attacker (DESIGN.md §7). A stranger
//! gets an answer and nothing more: no transaction, no retransmission, no stored
//! record, no log line per packet. Its requests are rate-limited per source IP and
//! in total (token buckets), so a flood from one address or from many spoofed ones
//! costs a bounded amount of work and memory; what is refused or dropped is counted
//! and summed up in one log line a minute at most. REGISTERs have buckets of their
//! own ([`Class`]): a flood of INVITEs does not keep agents from logging in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How much a stranger may send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardConfig {
    /// Requests per second one source IP may send (sustained).
    pub per_source_rate: f64,
    /// Requests one source IP may send in a burst.
    pub per_source_burst: f64,
    /// Requests per second all strangers together may send.
    pub total_rate: f64,
    pub total_burst: f64,
    /// Source IPs tracked at once; past it, only the total bucket applies.
    pub max_sources: usize,
}

impl Default for GuardConfig {
    /// Enough for an office NAT's agents registering at once (each REGISTER is
    /// two requests until one agent is registered, which makes the IP known).
    fn default() -> Self {
        GuardConfig {
            per_source_rate: 20.0,
            per_source_burst: 100.0,
            total_rate: 2000.0,
            total_burst: 4000.0,
            max_sources: 65_536,
        }
    }
}

/// What a stranger's request is, for the buckets it draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// An agent logging in (or someone guessing passwords: the registrar limits
    /// failures on its own).
    Register,
    /// Everything else.
    Other,
    /// A REGISTER answering a nonce the gateway issued to its source: it draws on
    /// the source's REGISTER bucket only, never on the total one, so that a
    /// flood from spoofed addresses cannot keep agents from logging in.
    ProvenRegister,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        self.refill(now, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What strangers cost so far (exported as metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GuardCounts {
    /// Answered statelessly (403 to an INVITE, 481, 405…).
    pub refused: u64,
    /// Over a rate limit: dropped unanswered.
    pub dropped: u64,
}

/// The rate limiter and counters for strangers' requests.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    sources: HashMap<(IpAddr, Class), Bucket>,
    /// The total buckets: [`Class::Register`], [`Class::Other`].
    total: [Bucket; 2],
    counts: GuardCounts,
    /// Counts at the last summary line, and when it was written.
    logged: (GuardCounts, Option<Instant>),
}

/// How often at most the summary line is logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Guard {
    pub fn new(cfg: GuardConfig, now: Instant) -> Guard {
        Guard {
            cfg,
            sources: HashMap::new(),
            total: [Bucket::full(cfg.total_burst, now); 2],
            counts: GuardCounts::default(),
            logged: (GuardCounts::default(), None),
        }
    }

    /// May a stranger's request of this class from `ip` be answered now? A
    /// `false` is counted as dropped.
    pub fn admit(&mut self, now: Instant, ip: IpAddr, class: Class) -> bool {
        let c = self.cfg;
        let proven = class == Class::ProvenRegister;
        let class = if proven { Class::Register } else { class };
        let key = (ip, class);
        if self.sources.len() >= c.max_sources && !self.sources.contains_key(&key) {
            // Forget sources whose buckets have filled up again: they cost nothing.
            self.sources.retain(|_, b| {
                b.refill(now, c.per_source_rate, c.per_source_burst);
                b.tokens < c.per_source_burst
            });
        }
        let per_source = if self.sources.len() < c.max_sources || self.sources.contains_key(&key) {
            self.sources
                .entry(key)
                .or_insert_with(|| Bucket::full(c.per_source_burst, now))
                .take(now, c.per_source_rate, c.per_source_burst)
        } else {
            true // Table full of active sources: the total bucket still holds.
        };
        let total = &mut self.total[usize::from(class == Class::Other)];
        let ok = per_source && (proven || total.take(now, c.total_rate, c.total_burst));
        if !ok {
            self.counts.dropped += 1;
        }
        ok
    }

    /// A stranger's request was answered statelessly.
    pub fn refused(&mut self) {
        self.counts.refused += 1;
    }

    pub fn counts(&self) -> GuardCounts {
        self.counts
    }

    /// Source IPs being tracked (bounded by `max_sources`).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// The counts since the last summary, when one is due (at most one a minute,
    /// and only when something happened).
    pub fn summary_due(&mut self, now: Instant) -> Option<GuardCounts> {
        let (before, at) = self.logged;
        if at.is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY) {
            return None;
        }
        let since = GuardCounts {
            refused: self.counts.refused - before.refused,
            dropped: self.counts.dropped - before.dropped,
        };
        if since == GuardCounts::default() {
            return None;
        }
        self.logged = (self.counts, Some(now));
        Some(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn one_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardConfig::default(), t0);
        let admitted = (0..1000)
            .filter(|_| g.admit(t0, ip(1), Class::Other))
            .count();
        assert_eq!(admitted, 100);
        assert_eq!(g.counts().dropped, 900);
        // One second later: 20 more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            (0..1000)
                .filter(|_| g.admit(t1, ip(1), Class::Other))
                .count(),
            20
        );
        // Another source is not affected.
        assert!(g.admit(t1, ip(2), Class::Other));
        // Nor are REGISTERs from the flooding address.
        assert!(g.admit(t1, ip(1), Class::Register));
    }

    #[test]
    fn many_sources_are_held_by_the_total_bucket_and_the_table_stays_bounded() {
        let t0 = Instant::now();
        let cfg = GuardConfig {
            max_sources: 50,
            ..GuardConfig::default()
        };
        let mut g = Guard::new(cfg, t0);
        let mut admitted = 0;
        for i in 0..20_000u32 {
            let src = IpAddr::from((0xC000_0000u32 + i).to_be_bytes());
            admitted += usize::from(g.admit(t0, src, Class::Other));
        }
        assert_eq!(admitted, 4000);
        assert!(g.tracked() <= 50);
        // The REGISTER budget is untouched by the INVITE flood.
        assert!(g.admit(t0, ip(200), Class::Register));
        // A flood of REGISTERs drains the REGISTER total...
        for i in 0..20_000u32 {
            let src = IpAddr::from((0xC100_0000u32 + i).to_be_bytes());
            g.admit(t0, src, Class::Register);
        }
        assert!(!g.admit(t0, ip(201), Class::Register));
        // ...but not a REGISTER that answers a nonce issued to its source.
        assert!(g.admit(t0, ip(202), Class::ProvenRegister));
    }

    #[test]
    fn the_summary_comes_at_most_once_a_minute_and_only_when_something_happened() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardConfig::default(), t0);
        assert_eq!(g.summary_due(t0), None);
        g.refused();
        g.refused();
        assert_eq!(
            g.summary_due(t0),
            Some(GuardCounts {
                refused: 2,
                dropped: 0
            })
        );
        g.refused();
        assert_eq!(g.summary_due(t0 + Duration::from_secs(30)), None);
        assert_eq!(
            g.summary_due(t0 + Duration::from_secs(61)),
            Some(GuardCounts {
                refused: 1,
                dropped: 0
            })
        );
    }
}
