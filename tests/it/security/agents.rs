//! Attacker tests: agents (see mod.rs).
