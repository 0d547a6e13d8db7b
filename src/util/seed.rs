//! A per-process seed for identifier generators.
//!
//! Why: the sans-IO cores take their randomness as a seed; the drivers (the
//! gateway's transport and the softphone) both need one that differs per start.

use std::hash::{BuildHasher, Hasher};

/// Mixes the OS's per-process hash keys, the time and the process id.
pub fn process_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}
