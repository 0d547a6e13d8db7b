//! The UDP socket: large kernel buffers, batched non-blocking receive.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tracing::warn;

use crate::call::Core;
use crate::sip::{Peer, Transport};

/// Kernel buffer size asked for; the kernel may grant less.
const SOCKET_BUFFER: usize = 8 << 20;

pub(super) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Feeds up to `batch` waiting datagrams to the core.
pub(super) fn drain(
    sock: &UdpSocket,
    core: &mut Core,
    buf: &mut [u8],
    batch: usize,
) -> std::io::Result<()> {
    for _ in 0..batch {
        match sock.try_recv_from(buf) {
            Ok((n, addr)) => {
                let peer = Peer {
                    transport: Transport::Udp,
                    addr,
                };
                core.handle_datagram(Instant::now(), &buf[..n], peer);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            // ICMP port unreachable from an earlier send surfaces here on Linux.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) async fn send(sock: &UdpSocket, addr: SocketAddr, bytes: &[u8]) {
    let result = match sock.try_send_to(bytes, addr) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => sock.send_to(bytes, addr).await,
        r => r,
    };
    if let Err(e) = result {
        warn!(%addr, error = %e, "UDP send failed");
    }
}
