//! Identifiers the gateway mints: tags, branches, Call-IDs and secret keys.
//!
//! Why: a stranger who could predict them could end, redirect or listen to other
//! people's calls (a BYE needs only the Call-ID and both tags). So they come from a
//! cryptographically secure generator (ChaCha12, `rand::rngs::StdRng`) whose output
//! reveals nothing of its state. The core may not read the OS RNG itself (it is
//! sans-IO): its driver hands it a [`Seed`] from the operating system at start and
//! fresh entropy now and then ([`IdGen::reseed`]); tests hand it a fixed seed and
//! get repeatable runs.

use std::fmt::Write;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// 256 bits of seed for an [`IdGen`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

impl Seed {
    /// A seed from the operating system's CSPRNG (for drivers, never the core).
    pub fn from_os() -> Seed {
        let mut s = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut s);
        Seed(s)
    }
}

/// A repeatable seed for tests and benchmarks (expanded, not used raw).
impl From<u64> for Seed {
    fn from(n: u64) -> Seed {
        let mut s = [0u8; 32];
        StdRng::seed_from_u64(n).fill_bytes(&mut s);
        Seed(s)
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// A generator of SIP identifiers and keys.
pub struct IdGen {
    rng: StdRng,
}

impl std::fmt::Debug for IdGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdGen(..)")
    }
}

impl IdGen {
    pub fn new(seed: impl Into<Seed>) -> IdGen {
        IdGen {
            rng: StdRng::from_seed(seed.into().0),
        }
    }

    /// Mixes fresh entropy in: the next state depends on both the old state and
    /// `fresh`, so neither alone predicts it.
    pub fn reseed(&mut self, fresh: Seed) {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        for (a, b) in s.iter_mut().zip(fresh.0) {
            *a ^= b;
        }
        self.rng = StdRng::from_seed(s);
    }

    /// A seed for another generator (a transaction layer, a pool).
    pub fn fork(&mut self) -> Seed {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        Seed(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Fills `out` with secret bytes (keys).
    pub fn fill(&mut self, out: &mut [u8]) {
        self.rng.fill_bytes(out);
    }

    fn hex(&mut self, prefix: &str, words: usize) -> String {
        let mut s = String::with_capacity(prefix.len() + 16 * words + 8);
        s.push_str(prefix);
        for _ in 0..words {
            let _ = write!(s, "{:016x}", self.next_u64());
        }
        s
    }

    /// A Via branch with the RFC 3261 magic cookie (128 random bits).
    pub fn branch(&mut self) -> String {
        self.hex("z9hG4bK", 2)
    }

    /// A From/To tag (64 random bits).
    pub fn tag(&mut self) -> String {
        self.hex("", 1)
    }

    /// A Call-ID for an outgoing leg (128 random bits); `shard` is embedded so
    /// that a sharded core can route the leg's responses and in-dialog requests
    /// back to its owner.
    pub fn call_id(&mut self, shard: u16) -> String {
        let mut s = self.hex("hgw", 2);
        let _ = write!(s, "-{shard}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_branches_have_the_cookie() {
        let mut g = IdGen::new(7);
        let (a, b) = (g.branch(), g.branch());
        assert_ne!(a, b);
        assert!(a.starts_with("z9hG4bK"));
        assert_eq!(a.len(), 7 + 32);
        assert!(g.call_id(3).ends_with("-3"));
    }

    #[test]
    fn the_same_seed_gives_the_same_ids_and_a_reseed_departs_from_them() {
        let (mut a, mut b) = (IdGen::new(9), IdGen::new(9));
        assert_eq!(a.tag(), b.tag());
        b.reseed(Seed([1; 32]));
        assert_ne!(a.tag(), b.tag());
    }

    /// The old splitmix64 generator was invertible: one tag gave the state and so
    /// every later identifier. With ChaCha, consecutive tags share no arithmetic
    /// relation a stranger could use; the least we can check is that knowing a tag
    /// and the old generator's step does not give the next one.
    #[test]
    fn a_tag_does_not_give_the_next_one_by_the_old_splitmix_step() {
        let mut g = IdGen::new(Seed::from_os());
        let first = u64::from_str_radix(&g.tag(), 16).unwrap();
        let next = u64::from_str_radix(&g.tag(), 16).unwrap();
        assert_ne!(first.wrapping_add(0x9E37_79B9_7F4A_7C15), next);
        assert_ne!(first, next);
    }
}
