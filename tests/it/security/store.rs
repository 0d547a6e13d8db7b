//! Attacker tests: store (see mod.rs).
