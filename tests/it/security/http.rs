//! Attacker tests: http (see mod.rs).
