//! TCP connections: framing by Content-Length, one reader and one writer task each.
//! A malformed message is answered `400` and skipped; the connection stays up. A
//! message begun and not finished in time (a stalled or hostile peer) closes it.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::Inbound;
use crate::sip::framing::{self, Frame};

/// What a connection may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Largest message.
    pub max_message: usize,
    /// Longest time from a message's first byte to its last.
    pub partial: std::time::Duration,
}

pub(super) async fn accept_loop(listener: TcpListener, core: mpsc::Sender<Inbound>, max: Limits) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let (writer, rx) = mpsc::channel(super::WRITE_QUEUE);
                if core.send(Inbound::Open { addr, writer }).await.is_err() {
                    return;
                }
                tokio::spawn(serve(stream, addr, core.clone(), rx, max));
            }
            Err(e) => {
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens an outgoing connection; messages queue until it is up.
pub(super) fn connect(
    addr: SocketAddr,
    core: mpsc::Sender<Inbound>,
    max: Limits,
    queue: usize,
) -> mpsc::Sender<Bytes> {
    let (writer, rx) = mpsc::channel(queue);
    tokio::spawn(async move {
        match TcpStream::connect(addr).await {
            Ok(stream) => serve(stream, addr, core, rx, max).await,
            Err(e) => {
                warn!(%addr, error = %e, "TCP connect failed");
                let _ = core.send(Inbound::Closed { addr }).await;
            }
        }
    });
    writer
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    core: mpsc::Sender<Inbound>,
    mut rx: mpsc::Receiver<Bytes>,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // When the bytes of the message not yet complete began to arrive.
    let mut partial_since: Option<tokio::time::Instant> = None;
    'read: loop {
        let read = rd.read_buf(&mut buf);
        let got = match partial_since {
            None => read.await,
            Some(t) => match tokio::time::timeout_at(t + limits.partial, read).await {
                Ok(r) => r,
                Err(_) => {
                    debug!(%addr, "TCP message not finished in time; connection closed");
                    break;
                }
            },
        };
        match got {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            let skip = framing::skip_keepalive(&buf);
            let _ = buf.split_to(skip);
            if buf.is_empty() {
                break;
            }
            let msg = match framing::frame_stream(&buf, limits.max_message) {
                Frame::Incomplete => {
                    partial_since.get_or_insert_with(tokio::time::Instant::now);
                    break;
                }
                Frame::Complete(n) => Inbound::Frame {
                    addr,
                    bytes: buf.split_to(n).freeze(),
                },
                Frame::Invalid { len, error } => {
                    debug!(%addr, %error, "unframeable TCP message");
                    Inbound::Invalid {
                        addr,
                        bytes: buf.split_to(len).freeze(),
                        error: error.to_string(),
                    }
                }
            };
            partial_since = None;
            if core.send(msg).await.is_err() {
                break 'read;
            }
        }
        if buf.is_empty() {
            partial_since = None;
        }
    }
    writer.abort();
    let _ = core.send(Inbound::Closed { addr }).await;
}
