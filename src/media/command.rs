//! What the call layer asks of the relay, and what the relay tells it back.
//!
//! Why: the call core is sans-IO. It decides which ports a call uses, what each
//! phone hears and when the call's media ends; it emits these commands from
//! `Core::poll_media`, and the transport hands them to the relay thread. The
//! relay's findings (a digit, silence, a prompt played out) come back as events.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::{Codec, Prompt};

/// A call's media session: the call's key in its core.
pub type SessionId = u64;

/// Which side of the gateway a media leg faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller (the citizen).
    A,
    /// The callee: an agent, a legacy seat, a transfer target.
    B,
    /// A third party the agent added (110, a department): heard only in a mix.
    C,
}

impl Leg {
    pub fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
            Leg::C => 2,
        }
    }

    /// The leg a two-party call relays this one's packets to. A third party
    /// has none: it is only ever heard through a mix.
    pub fn other(self) -> Option<Leg> {
        match self {
            Leg::A => Some(Leg::B),
            Leg::B => Some(Leg::A),
            Leg::C => None,
        }
    }
}

/// Where a leg's phone wants its audio, from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub rtp: SocketAddr,
    /// Explicit `a=rtcp`, else RTP port + 1.
    pub rtcp: SocketAddr,
    /// The audio codec this leg sends and expects.
    pub codec: Codec,
    /// The payload type of `telephone-event` on this leg, if negotiated.
    pub dtmf_pt: Option<u8>,
}

/// What the caller hears from the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    /// Played in order, once.
    pub once: Vec<Arc<Prompt>>,
    /// Then, if set, music on hold until told otherwise.
    pub hold: Option<Hold>,
}

/// Music on hold, with an optional periodic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub music: Arc<Prompt>,
    pub message: Option<Arc<Prompt>>,
    /// How much music plays between messages.
    pub every: Duration,
}

/// An order for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Binds the leg's port pairs (`ports[0]` faces the caller, `ports[1]` the
    /// callee). `record` names the recording file (no extension) when the call's
    /// line records.
    Open {
        session: SessionId,
        ports: [u16; 2],
        record: Option<String>,
    },
    /// A leg's phone announced (or changed) where it receives and what codec.
    /// The relay hears the leg only from the SDP's address or from any port of
    /// `signal`, the IP address the leg's SIP signalling came from (a phone
    /// behind NAT); it latches onto the first of those that sends.
    Remote {
        session: SessionId,
        leg: Leg,
        remote: Remote,
        signal: Option<IpAddr>,
    },
    /// The caller hears `playlist` instead of the callee. `play` numbers the
    /// session's playlists: its [`MediaEvent::PlayDone`] carries it back.
    Play {
        session: SessionId,
        play: u32,
        playlist: Playlist,
    },
    /// The two legs hear each other.
    Bridge { session: SessionId },
    /// The callee leg is gone (transfer, survey): forget its phone. For the
    /// third leg, its port pair is unbound too (the core gives it back).
    DropLeg { session: SessionId, leg: Leg },
    /// Binds a port pair for a third party ([`Leg::C`]): the agent is adding
    /// someone. It hears nothing until [`MediaCommand::Mix`].
    AddLeg { session: SessionId, port: u16 },
    /// `true`: every leg hears the sum of the others, decoded and encoded per
    /// listener (each leg in its own law). `false`: back to relaying A ↔ B.
    Mix { session: SessionId, on: bool },
    /// The third leg takes the callee's place (the agent left a three-party
    /// call): the old callee's ports are unbound, the mix ends, A ↔ B again.
    Promote { session: SessionId },
    /// The callee legs of two sessions change places, sockets and all (an
    /// attended transfer: `from`'s callee joins `session`'s caller, and
    /// `session`'s old callee ends with `from`). With `mix`, `session` mixes
    /// afterwards (the two phones use different laws).
    Splice {
        session: SessionId,
        from: SessionId,
        mix: bool,
    },
    /// Sends `digit` to the leg's phone as RFC 4733 telephone-events (SIP INFO
    /// DTMF from the other phone, interworked).
    Dtmf {
        session: SessionId,
        leg: Leg,
        digit: char,
    },
    /// The call is over: unbind, finish the recording.
    Close { session: SessionId },
}

impl MediaCommand {
    pub fn session(&self) -> SessionId {
        match self {
            MediaCommand::Open { session, .. }
            | MediaCommand::Remote { session, .. }
            | MediaCommand::Play { session, .. }
            | MediaCommand::Bridge { session }
            | MediaCommand::DropLeg { session, .. }
            | MediaCommand::AddLeg { session, .. }
            | MediaCommand::Mix { session, .. }
            | MediaCommand::Promote { session }
            | MediaCommand::Splice { session, .. }
            | MediaCommand::Dtmf { session, .. }
            | MediaCommand::Close { session } => *session,
        }
    }
}

/// What the relay noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The playlist's `once` part has been played out (and there is no hold
    /// music after it).
    /// `play` is the [`MediaCommand::Play`]'s own number: a playlist that ends
    /// while the core is already sending the next one is told apart from it.
    PlayDone { session: SessionId, play: u32 },
    /// A DTMF digit from a leg (RFC 4733).
    Digit {
        session: SessionId,
        leg: Leg,
        digit: char,
    },
    /// No RTP from any leg for the configured time.
    Timeout { session: SessionId },
    /// The ports could not be bound.
    Failed { session: SessionId, port: u16 },
    /// The relay never got one of the session's orders (its command queue was
    /// full, or it has stopped): reported by the transport, not by the relay.
    Refused { session: SessionId },
}

impl MediaEvent {
    pub fn session(&self) -> SessionId {
        match self {
            MediaEvent::PlayDone { session, .. }
            | MediaEvent::Digit { session, .. }
            | MediaEvent::Timeout { session }
            | MediaEvent::Failed { session, .. }
            | MediaEvent::Refused { session } => *session,
        }
    }
}
