//! Per-process randomness for the drivers (the gateway's transport, the relay, the
//! softphone): the sans-IO cores take theirs as a seed.

use rand::RngCore;

/// 64 bits from the operating system's CSPRNG.
pub fn process_seed() -> u64 {
    rand::rngs::OsRng.next_u64()
}
