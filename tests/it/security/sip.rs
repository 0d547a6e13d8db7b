//! Attacker tests: sip (see mod.rs).
