//! The RTP port pool: which local port pairs the relay may use.
//!
//! Why: every anchored leg needs an even RTP port and the odd RTCP port above it
//! (RFC 3550 §11), taken from the configured range. The pool is pure: the call
//! layer takes a pair when it writes an SDP and gives it back when the call ends;
//! the relay thread binds what it is handed.
//!
//! Pairs are handed out at random from the free set (the caller supplies the
//! randomness, so the core stays repeatable in tests): the next call's ports
//! cannot be guessed from the last one's, so spraying them takes the whole range.
//! A freed pair rests behind the pairs freed after it before it can be chosen
//! again, so that late packets of its last call do not reach the next one. A pair
//! the relay could not bind (another program holds it, or no file descriptor was
//! left) is given back like any other: it rests, and is tried again later; it is
//! never retired for good. Taking and giving back are O(1).

use std::collections::{HashSet, VecDeque};

/// Freed pairs wait behind at most this many others before they can be chosen.
const REST_MAX: usize = 256;

/// Even RTP ports of a configured range, handed out at random.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// Pairs that may be chosen.
    free: Vec<u16>,
    /// Pairs given back recently, oldest first; they join `free` as more come.
    resting: VecDeque<u16>,
    /// How many pairs rest before the oldest joins `free`.
    rest: usize,
    /// Ports handed out and not yet given back, for a cheap double-free check.
    used: HashSet<u16>,
}

impl PortPool {
    /// A pool of the even ports in `first..=last` whose odd neighbour is in range too.
    pub fn new(first: u16, last: u16) -> PortPool {
        let start = first.saturating_add(first % 2);
        let free: Vec<u16> = (start..last).step_by(2).collect();
        // A quarter of the pool rests (up to REST_MAX): most of it stays free.
        let rest = (free.len() / 4).min(REST_MAX);
        PortPool {
            resting: VecDeque::with_capacity(rest + 1),
            used: HashSet::with_capacity(free.len()),
            free,
            rest,
        }
    }

    /// How many pairs the pool holds in all.
    pub fn capacity(&self) -> usize {
        self.free.len() + self.resting.len() + self.used.len()
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// An RTP port (its RTCP port is the next one) chosen with `random` among
    /// the free pairs, or `None` when all are in use.
    pub fn take(&mut self, random: u64) -> Option<u16> {
        if self.free.is_empty() {
            // Everything else is in use: a resting pair is better than none.
            self.free.push(self.resting.pop_front()?);
        }
        // Multiply-shift: an index in 0..len without the bias of a modulo.
        let i = ((u128::from(random) * self.free.len() as u128) >> 64) as usize;
        let port = self.free.swap_remove(i);
        self.used.insert(port);
        Some(port)
    }

    /// Gives a pair back (also one the relay could not bind); a port the pool
    /// did not hand out is ignored.
    pub fn give_back(&mut self, port: u16) {
        if !self.used.remove(&port) {
            return;
        }
        self.resting.push_back(port);
        while self.resting.len() > self.rest {
            match self.resting.pop_front() {
                Some(p) => self.free.push(p),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeatable stream of test randomness (splitmix64).
    fn rng(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn hands_out_every_even_port_inside_the_range_once() {
        let mut r = rng(1);
        let mut p = PortPool::new(20001, 20010);
        let mut got: Vec<u16> = std::iter::from_fn(|| p.take(r())).collect();
        got.sort_unstable();
        assert_eq!(got, vec![20002, 20004, 20006, 20008]);
        assert_eq!(p.capacity(), 4);
        assert_eq!(p.in_use(), 4);
        assert_eq!(p.take(r()), None);
    }

    #[test]
    fn ports_come_in_no_predictable_order() {
        let mut r = rng(7);
        let mut p = PortPool::new(20000, 29999);
        let got: Vec<u16> = (0..50).filter_map(|_| p.take(r())).collect();
        let ascending = got.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(ascending < 5, "not handed out in sequence: {got:?}");
        // The same randomness gives the same ports (the core is repeatable).
        let mut again = PortPool::new(20000, 29999);
        let mut r = rng(7);
        let same: Vec<u16> = (0..50).filter_map(|_| again.take(r())).collect();
        assert_eq!(got, same);
        // Extreme random values stay inside the free set.
        let mut q = PortPool::new(30000, 30007);
        assert!(q.take(u64::MAX).is_some());
        assert!(q.take(0).is_some());
        assert_eq!(q.in_use(), 2);
    }

    #[test]
    fn a_freed_port_rests_before_it_is_chosen_again() {
        let mut r = rng(3);
        // 40 pairs: 10 rest.
        let mut p = PortPool::new(30000, 30079);
        let a = p.take(r()).unwrap();
        p.give_back(a);
        for _ in 0..29 {
            let got = p.take(r()).unwrap();
            assert_ne!(
                got, a,
                "a just-freed port is not chosen while others are free"
            );
        }
        p.give_back(a); // not in use any more: ignored
        assert_eq!(p.in_use(), 29);
        assert_eq!(p.capacity(), 40);
    }

    #[test]
    fn resting_ports_are_used_when_nothing_else_is_free() {
        let mut r = rng(5);
        let mut p = PortPool::new(40000, 40015); // 8 pairs, 2 rest
        let all: Vec<u16> = std::iter::from_fn(|| p.take(r())).collect();
        assert_eq!(all.len(), 8);
        p.give_back(all[0]);
        assert_eq!(p.take(r()), Some(all[0]), "a resting pair beats a 503");
        assert_eq!(p.take(r()), None);
    }

    #[test]
    fn a_pair_that_failed_to_bind_comes_back() {
        let mut r = rng(9);
        let mut p = PortPool::new(40000, 40001); // one pair
        let a = p.take(r()).unwrap();
        // The relay could not bind it; the call ends and gives it back.
        p.give_back(a);
        assert_eq!(p.capacity(), 1);
        assert_eq!(p.take(r()), Some(a), "not retired for good");
    }
}
