//! Whole call flows through the core on a virtual clock, as a driver sees them:
//! only [`Core`](super::Core)'s public surface (datagrams in, transmits, media
//! commands and records out, timers), never a `Call`'s fields. They pin what
//! the gateway does today for the flows that otherwise only the real binary
//! covers, so that a rewrite of the core's internals can be checked against them.
//!
//! | file | flows |
//! |---|---|
//! | `queued.rs` | queued ringback with and without media, agents registered with digest |
//! | `callback_dial.rs` | a callback dialled by the API: the agent's phone first, then the citizen; refusals dial nothing |
//! | `conference.rs` | three-party calls: 110 added by REFER or the API and mixed in; the agent leaves, 110 leaves, 110 busy, no media |
//! | `attended.rs` | attended transfer: the agent consults 110, then REFER with Replaces joins it to the citizen; another agent's consultation cannot be named |
//! | `callback.rs` | an agent calls a citizen back over the outbound trunk; everything else it dials is refused, nothing leaves |
//! | `handover.rs` | a draining node hands a waiting caller to the lease holder; the holder adopts it (from a peer only) |
//! | `orphan.rs` | the ACD gives up on an agent and its 200 arrives afterwards |
//! | `parallel.rs` | a parallel line's legacy seats: overflow on each trigger, and answering |
//! | `survey.rs` | the satisfaction survey after the agent hangs up first |
//! | `transfer.rs` | blind transfer by REFER: success, busy target, silent target |
//! | `timers.rs` | each call timer's expiry |
//!
//! Every flow ends with the leak check: no call left once it is over, and no
//! transaction left 64·T1 later.

mod attended;
mod callback;
mod callback_dial;
mod conference;
mod handover;
mod keepalive;
mod orphan;
mod parallel;
mod queued;
mod support;
mod survey;
mod timers;
mod transfer;
