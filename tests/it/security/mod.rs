//! Playing the attacker against the real binary (issue: safe on a real network).
//! One file per trust boundary of DESIGN.md §7; each test names the hole it closes.

mod agents;
mod agents_tcp;
mod http;
mod http_conns;
mod https;
mod limits;
mod media;
mod raw_sip;
mod sip;
mod sip_load;
mod store;
