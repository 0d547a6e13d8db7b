//! Counters and histograms the reporting service keeps for `/metrics`: atomics,
//! written by the SIP task and the writer, read by HTTP without locks.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::sla::Outcome;

/// Upper bounds (seconds) of the wait-time buckets.
pub const WAIT_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];
/// Upper bounds (seconds) of the post-dial-delay buckets.
pub const PDD_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A Prometheus-style histogram: cumulative on output, per bucket here.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the `+Inf` bucket.
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe_ms(&self, ms: i64) {
        let s = ms.max(0) as f64 / 1000.0;
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(ms.max(0) as u64 * 1000, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) pairs ending with `+Inf`, and the sum in
    /// seconds.
    pub fn cumulative(&self) -> (Vec<(Option<f64>, u64)>, f64) {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied(), total));
        }
        (out, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// What the reporting service counts.
#[derive(Debug)]
pub struct Telemetry {
    /// Finished calls per SLA outcome, indexed like [`Outcome::ALL`].
    pub outcomes: [AtomicU64; 6],
    /// Finished calls never offered to a person (refused, unknown number…).
    pub not_offered: AtomicU64,
    /// Offer to answer, of answered calls.
    pub wait: Histogram,
    /// INVITE to first ringback.
    pub post_dial_delay: Histogram,
    /// Records committed to the database.
    pub written: AtomicU64,
    /// Failed write attempts (each retried).
    pub write_errors: AtomicU64,
    /// Records of refused requests dropped while the queue was full.
    pub dropped: AtomicU64,
    /// Records held in memory because the writer's queue was full.
    pub held: AtomicU64,
    /// Records in the writer's queue.
    pub queued: AtomicU64,
    /// New calls are refused until the backlog drains.
    pub backlogged: AtomicBool,
    pub alerts_breach: AtomicU64,
    pub alerts_recovery: AtomicU64,
    pub webhook_failures: AtomicU64,
    /// The last year the running dialplan's holiday calendar has days for (0:
    /// none), for `hotline_calendar_last_year`.
    pub calendar_last_year: AtomicI64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            outcomes: Default::default(),
            not_offered: AtomicU64::new(0),
            wait: Histogram::new(&WAIT_BUCKETS),
            post_dial_delay: Histogram::new(&PDD_BUCKETS),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            held: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            backlogged: AtomicBool::new(false),
            alerts_breach: AtomicU64::new(0),
            alerts_recovery: AtomicU64::new(0),
            webhook_failures: AtomicU64::new(0),
            calendar_last_year: AtomicI64::new(0),
        }
    }
}

impl Telemetry {
    /// Notes the running plan's calendar (at start and after each reload).
    pub fn set_calendar(&self, plan: &crate::dialplan::Dialplan) {
        let last = crate::dialplan::calendar_last_year(plan).unwrap_or(0);
        self.calendar_last_year
            .store(i64::from(last), Ordering::Relaxed);
    }

    pub fn count_outcome(&self, o: Option<Outcome>) {
        match o.and_then(|o| Outcome::ALL.iter().position(|x| *x == o)) {
            Some(i) => self.outcomes[i].fetch_add(1, Ordering::Relaxed),
            None => self.not_offered.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// (outcome name, count) for every outcome, then `not_offered`.
    pub fn outcome_counts(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = Outcome::ALL
            .iter()
            .zip(&self.outcomes)
            .map(|(o, n)| (o.as_str(), n.load(Ordering::Relaxed)))
            .collect();
        v.push(("not_offered", self.not_offered.load(Ordering::Relaxed)));
        v
    }
}
