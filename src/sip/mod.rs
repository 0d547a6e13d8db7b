//! The SIP protocol core: messages, framing, transactions. Sans-IO: nothing here
//! touches a socket, tokio or the clock; every entry point takes `now`.

pub mod builder;
pub mod dialog;
pub mod framing;
pub mod header_value;
pub mod ids;
pub mod message;
pub mod salvage;
pub mod sdp;
pub mod sdp_audio;
pub mod transaction;
pub mod validate;

use std::fmt;
use std::net::SocketAddr;

/// The transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports get no retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// The other end of a message: transport and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_lowercase(),
            self.addr
        )
    }
}

/// Bytes to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: bytes::Bytes,
}
