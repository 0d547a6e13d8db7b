//! The softphone's RTP ports: a block of 64 held (bound) for the softphone's
//! life, so that no other program takes a port between the choice of the block
//! and a call's use of it (which once left an agent's call without audio, and
//! its summary without a recording, on a loaded machine).

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The first and last port of a block.
pub(super) type PortRange = (u16, u16);
/// A block's sockets by port.
pub(super) type Held = BTreeMap<u16, std::net::UdpSocket>;

/// A block of 64 RTP ports, bound now and held for the softphone's life (each
/// call takes a socket from it and gives it back), chosen from the SIP port (so
/// that softphones side by side try different blocks first), above the kernel's
/// usual ephemeral range (61000-64839) and so clear of the gateway's ranges. A
/// block of which any port is taken is passed over; holding the sockets means
/// no other program (another softphone, an ephemeral socket where the range is
/// wider) can take a port between this choice and a call's use of it.
pub(super) fn hold(
    ip: std::net::IpAddr,
    sip_port: u16,
) -> Result<(PortRange, Held), super::run::SoftphoneError> {
    let blocks = 60u16;
    let first = sip_port % blocks;
    for i in 0..blocks {
        let lo = 61_000 + ((first + i) % blocks) * 64;
        let sockets: Option<Held> = (lo..lo + 64)
            .map(|p| {
                std::net::UdpSocket::bind(SocketAddr::new(ip, p))
                    .ok()
                    .map(|s| (p, s))
            })
            .collect();
        if let Some(sockets) = sockets {
            return Ok(((lo, lo + 63), sockets));
        }
    }
    Err(super::run::SoftphoneError::Io(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free block of 64 RTP ports in 61000-64839",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softphones_side_by_side_never_share_an_rtp_port() {
        let ip = std::net::Ipv4Addr::LOCALHOST.into();
        // The same SIP port modulo 60 tries the same block first.
        let (a, held_a) = hold(ip, 5060).unwrap();
        let (b, _held_b) = hold(ip, 5060).unwrap();
        assert_ne!(a, b, "the second is passed over the held block");
        assert_eq!(held_a.len(), 64);
        // A block with one port taken by another program is passed over.
        drop(held_a);
        let _other = std::net::UdpSocket::bind(SocketAddr::new(ip, a.0 + 11)).unwrap();
        let (c, _held_c) = hold(ip, 5060).unwrap();
        assert!(c != a && c != b, "{c:?}");
    }
}
