//! hotline-gateway: the telephony front door of a provincial 12345 hotline.
//!
//! Layers (arrows point down only; `docs/design.md` §2 has the full table):
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
//!   cluster (lease keeper: store ─► transport Control; docs/cluster.md)
//!   media (RTP relay thread, port pool, prompts, playout, DTMF, recording);
//!   call drives it through commands (Core::poll_media) and events (handle_media)
//!
//!   util (hex, id maps, seeds, redaction, UTC time, TOML spans, HTTP posts):
//!   below every layer, uses nothing of the crate
//! ```
//!
//! `sip/`, `dialplan/` and the call core are pure: state + input + `now`.
//! Only `transport/` and the media relay own sockets and read the clock.

pub mod acd;
pub mod call;
pub mod cdr;
pub mod cluster;
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
