//! Attacker tests: media (see mod.rs).
