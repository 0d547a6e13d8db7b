//! hotline-gateway: the telephony front door of a provincial 12345 hotline.
//!
//! Layers (arrows point down only; DESIGN.md §2 has the full table):
//!
//! ```text
//!   main.rs (CLI, anyhow)
//!      │
//!   http ──────────────┐          config (typed files, validate())
//!      │               │
//!   transport ── drives ─► call (B2BUA core: legs, reason codes)
//!   (sockets, clock)          │            │
//!                         dialplan      sip (message facade, framing,
//!                         (pure)         validation, transactions: sans-IO)
//!
//!   reporting (service: records → sla (pure) → store (sqlx); tickets delivery)
//!   media (pure so far: RTP rewrite, RFC 4733 DTMF, G.711; the relay comes next)
//! ```
//!
//! `sip/`, `dialplan/` and the call core are pure: state + input + `now`.
//! Only `transport/` owns sockets and reads the clock.

pub mod acd;
pub mod call;
pub mod cdr;
pub mod config;
pub mod dialplan;
pub mod http;
pub mod media;
pub mod registrar;
pub mod reporting;
pub mod sip;
pub mod sla;
pub mod softphone;
pub mod store;
pub mod tickets;
pub mod transport;
pub mod util;
