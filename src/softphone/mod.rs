//! The test softphone: a SIP user agent built on the project's own `sip/` core,
//! used by people trying the gateway and by its integration tests, as an agent
//! (register, auto-answer, talk, hang up) or as citizens calling in.
//!
//! [`ua`] is the sans-IO user agent; [`run`] drives it over a UDP socket for the
//! `hotline-gw softphone` subcommands.

pub mod audio;
pub mod cli;
pub mod digest;
mod driver;
mod rtp_block;
pub mod run;
pub mod ua;

pub use ua::{Ua, UaConfig, UaEvent};
