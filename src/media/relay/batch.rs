//! Receiving in batches: `recvmmsg(2)` drains a ready socket in one system call.
//!
//! Why: the relay's sockets are edge-triggered, so each must be read until it
//! is empty. With one `recv_from` per packet that costs an extra, failing call
//! (`EAGAIN`) per wake-up, usually one per packet at 50 packets/s per stream.
//! `recvmmsg` with `MSG_DONTWAIT` returns everything queued at once; fewer than
//! [`BATCH`] packets means the socket is empty. Buffers and headers are
//! allocated once, when the relay starts.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

use super::MAX_PACKET;

/// Datagrams taken per call.
pub(super) const BATCH: usize = 8;

/// Reusable receive buffers.
pub(super) struct Batch {
    bufs: Box<[[u8; MAX_PACKET]; BATCH]>,
    headers: MultiHeaders<SockaddrStorage>,
    got: [(usize, Option<SocketAddr>); BATCH],
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            bufs: Box::new([[0u8; MAX_PACKET]; BATCH]),
            headers: MultiHeaders::preallocate(BATCH, None),
            got: [(0, None); BATCH],
        }
    }

    /// Takes what is queued on `fd` (at most [`BATCH`]); `WouldBlock` when nothing.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovs = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let results = recvmmsg(
            fd,
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for r in results {
            self.got[n] = (r.bytes, r.address.as_ref().and_then(to_std));
            n += 1;
        }
        Ok(n)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv): its buffer (the whole
    /// buffer, for in-place rewriting), length and source.
    pub fn packet(&mut self, i: usize) -> (&mut [u8; MAX_PACKET], usize, Option<SocketAddr>) {
        let (len, src) = self.got[i];
        (&mut self.bufs[i], len, src)
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    let v6 = a.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(
        v6.ip(),
        v6.port(),
        v6.flowinfo(),
        v6.scope_id(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn drains_a_socket_in_one_call() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = Batch::new();
        assert_eq!(
            b.recv(rx.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for i in 0..3u8 {
            tx.send_to(&[i; 10], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 3);
        for i in 0..3 {
            let (buf, len, src) = b.packet(i);
            assert_eq!((len, buf[0]), (10, i as u8));
            assert_eq!(src, Some(tx.local_addr().unwrap()));
        }
    }
}
