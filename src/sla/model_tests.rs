//! The rolling sums against their definition, on a long random run with late and
//! out-of-order records, and a restart seeded from the stored calls.

use super::testkit::{HOUR, MIN, T0, done_on};
use super::{Classified, Counters, Dimension, Outcome, SlaConfig, Tracker, Window};

/// A small deterministic generator for the model test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn random_call(rng: &mut Lcg, ended_ms: i64) -> Classified {
    let outcome = Outcome::ALL[rng.below(5) as usize];
    let line = ["12345", "12315", "12333"][rng.below(3) as usize];
    let mut c = done_on(outcome, ended_ms, line);
    c.answered_within = outcome.is_served() && rng.below(3) > 0;
    c
}

/// What a window holds, by definition: calls whose end second is in
/// `(now_s − w_s, now_s]`.
fn brute(calls: &[Classified], now_ms: i64, d: Dimension, key: &str, w: Window) -> Counters {
    let now_s = now_ms.div_euclid(1000);
    let mut sum = Counters::default();
    for c in calls {
        let s = c.ended_ms.div_euclid(1000);
        if now_s - w.duration_ms() / 1000 < s && s <= now_s {
            for x in c.contributions() {
                if x.dimension == d && x.key == key {
                    sum.add(&x.counters);
                }
            }
        }
    }
    sum
}

#[test]
fn rolling_sums_match_the_definition_and_seeding_reproduces_them() {
    let mut rng = Lcg(12345);
    let mut live = Tracker::new(SlaConfig::default());
    let mut calls = Vec::new();
    let mut now = T0;
    let keys = [
        (Dimension::Overall, "all"),
        (Dimension::Line, "12345"),
        (Dimension::Line, "12333"),
        (Dimension::Mode, "hotline"),
        (Dimension::Queue, "hotline"),
    ];
    for step in 0..4000 {
        // Mostly seconds apart, sometimes the same second, sometimes a quiet hour.
        now += match rng.below(20) {
            0 => 0,
            1 => HOUR + rng.below(1000) as i64,
            _ => rng.below(60_000) as i64,
        };
        // Records arrive up to 5 s late and out of order, a few up to 2 h late, a few
        // from just ahead.
        let late = match rng.below(50) {
            0 => rng.below(2 * HOUR as u64) as i64,
            _ => rng.below(5_000) as i64 - 500,
        };
        let c = random_call(&mut rng, now - late);
        live.record(&c);
        calls.push(c);
        live.advance(now);
        if step % 97 == 0 {
            for (d, k) in keys {
                for w in Window::ALL {
                    let got = live.figures(d, k, w).unwrap_or_default();
                    assert_eq!(
                        got,
                        brute(&calls, now, d, k, w),
                        "step {step} {d:?} {k} {w:?}"
                    );
                }
            }
        }
    }
    // A restart: seed a new tracker with the last day's calls in any order.
    let cutoff_s = now.div_euclid(1000) - 24 * 3600;
    let day: Vec<_> = calls
        .iter()
        .filter(|c| c.ended_ms.div_euclid(1000) > cutoff_s)
        .cloned()
        .collect();
    let mut order: Vec<usize> = (0..day.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut seeded = Tracker::new(SlaConfig::default());
    for i in order {
        seeded.record(&day[i]);
    }
    for later in [now, now + 10 * MIN, now + 5 * HOUR] {
        let (a, b) = (live.snapshot(later), seeded.snapshot(later));
        assert_eq!(
            (&a.overall, &a.lines, &a.modes, &a.queues),
            (&b.overall, &b.lines, &b.modes, &b.queues)
        );
        assert_eq!(a.intervals, b.intervals);
    }
}
