//! Attacker tests: limits (see mod.rs).
