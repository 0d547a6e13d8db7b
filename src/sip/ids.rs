//! Identifiers the gateway mints: tags, branches and Call-IDs.
//!
//! Why: they must be unique and unguessable enough that a far end cannot collide with
//! them, yet the core may not read the clock or an OS RNG. The generator is seeded
//! once by its owner (the transport task) and is a plain splitmix64 afterwards, so
//! tests can seed it and get repeatable runs.

use std::fmt::Write;

/// A seeded generator of SIP identifiers.
#[derive(Debug, Clone)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> IdGen {
        IdGen { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn hex(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 16);
        s.push_str(prefix);
        let _ = write!(s, "{:016x}", self.next_u64());
        s
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&mut self) -> String {
        self.hex("z9hG4bK")
    }

    /// A From/To tag.
    pub fn tag(&mut self) -> String {
        self.hex("")
    }

    /// A Call-ID for an outgoing leg; `shard` is embedded so that a sharded core can
    /// route the leg's responses and in-dialog requests back to its owner.
    pub fn call_id(&mut self, shard: u16) -> String {
        let mut s = self.hex("hgw");
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
        assert!(g.call_id(3).ends_with("-3"));
    }
}
