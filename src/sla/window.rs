//! Rolling sums for one key: a sparse, time-ordered list of one-second buckets (only
//! seconds in which a call of this key ended) and, per window, a running sum with
//! an expiry cursor. Recording and advancing cost O(1) amortized; reading a window
//! is O(1). Memory is proportional to the seconds with calls in the last 24 h.

use std::collections::VecDeque;

use super::{Counters, Window};

/// The calls of one key that ended in one second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    sec: i64,
    counts: Counters,
}

/// One key's rolling figures. All times are whole Unix seconds.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Ordered by `sec`, one bucket per second. Buckets older than the 24 h window
    /// are dropped; buckets after `now` wait until `now` reaches them.
    buckets: VecDeque<Bucket>,
    /// Per window (by [`Window::index`]): the sum of the buckets in the window.
    sums: [Counters; 3],
    /// Per window: `buckets[..cursor]` have left the window. Always 0 for 24 h,
    /// whose expired buckets are dropped.
    cursor: [usize; 3],
}

/// The last second a window no longer holds at `now_s`: the window is
/// `(cutoff, now_s]`.
fn cutoff(now_s: i64, w: Window) -> i64 {
    now_s.saturating_sub(w.duration_s())
}

impl Series {
    pub(crate) fn new() -> Series {
        Series {
            buckets: VecDeque::new(),
            sums: [Counters::default(); 3],
            cursor: [0; 3],
        }
    }

    /// The figures of a window as of the last [`Series::advance`].
    pub(crate) fn sum(&self, w: Window) -> &Counters {
        &self.sums[w.index()]
    }

    /// No calls held (none in the last 24 h, none pending in the future).
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Adds counts for a call that ended in second `sec`, given the series' current
    /// time `now_s`. Calls already older than 24 h are dropped.
    pub(crate) fn add(&mut self, sec: i64, counts: &Counters, now_s: i64) {
        if sec <= cutoff(now_s, Window::H24) {
            return;
        }
        let (pos, fresh) = match self.buckets.back() {
            Some(b) if b.sec < sec => (self.buckets.len(), true),
            Some(b) if b.sec == sec => (self.buckets.len() - 1, false),
            None => (0, true),
            Some(_) => {
                let p = self.buckets.partition_point(|b| b.sec < sec);
                (p, self.buckets[p].sec != sec)
            }
        };
        if fresh {
            self.buckets.insert(
                pos,
                Bucket {
                    sec,
                    counts: Counters::default(),
                },
            );
        }
        self.buckets[pos].counts.add(counts);
        for w in Window::ALL {
            let i = w.index();
            if sec <= cutoff(now_s, w) {
                // Before the cursor: already out of this window.
                if fresh {
                    self.cursor[i] += 1;
                }
            } else if sec <= now_s {
                self.sums[i].add(counts);
            }
        }
    }

    /// Moves the series from `old_s` to `new_s` (`new_s >= old_s`): buckets in
    /// `(old_s, new_s]` enter every window, then buckets at or before each window's
    /// new cutoff leave it.
    pub(crate) fn advance(&mut self, old_s: i64, new_s: i64) {
        if new_s <= old_s {
            return;
        }
        for b in self.buckets.iter().rev() {
            if b.sec <= old_s {
                break;
            }
            if b.sec <= new_s {
                for s in &mut self.sums {
                    s.add(&b.counts);
                }
            }
        }
        for w in [Window::M15, Window::H1] {
            let (i, cut) = (w.index(), cutoff(new_s, w));
            while let Some(b) = self.buckets.get(self.cursor[i]) {
                if b.sec > cut {
                    break;
                }
                self.sums[i].sub(&b.counts);
                self.cursor[i] += 1;
            }
        }
        let (day, cut) = (Window::H24.index(), cutoff(new_s, Window::H24));
        while let Some(b) = self.buckets.front() {
            if b.sec > cut {
                break;
            }
            self.sums[day].sub(&b.counts);
            self.buckets.pop_front();
            for c in &mut self.cursor {
                *c = c.saturating_sub(1);
            }
        }
    }
}
