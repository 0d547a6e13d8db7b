//! The softphone's driver: its sans-IO [`Ua`] over a UDP socket, and each
//! call's audio task (started when a call has media, stopped and reported when
//! it ends), with the RTP sockets of the held block.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::net::UdpSocket;

use super::audio::{self, AudioOpts, AudioReport};
use super::run::{SoftphoneError, Summary};
use super::ua::{Ua, UaConfig};
use crate::sip::{Peer, Transport};

/// One call's running audio.
#[derive(Debug)]
pub(super) struct AudioTask {
    stop: tokio::sync::oneshot::Sender<()>,
    /// Where to send: a later SDP may move the far end.
    remote: tokio::sync::watch::Sender<crate::media::command::Remote>,
    /// Its report, and its socket back to the held block.
    handle: tokio::task::JoinHandle<(AudioReport, UdpSocket)>,
    /// The segment the audio heard now belongs to.
    segment: tokio::sync::watch::Sender<&'static str>,
}

/// The softphone's UA over its UDP socket, with each call's audio.
#[derive(Debug)]
pub(super) struct Driver {
    pub(super) ua: Ua,
    pub(super) sock: UdpSocket,
    pub(super) buf: Vec<u8>,
    pub(super) audio: Option<AudioOpts>,
    pub(super) tasks: BTreeMap<u64, AudioTask>,
    /// RTP sockets bound for calls whose audio has not started yet.
    pub(super) offered: BTreeMap<u64, UdpSocket>,
    /// The RTP block's sockets not in use by a call, held (bound) for the
    /// softphone's life: no other program can take a port between the choice
    /// of the block and a call's use of it.
    pub(super) held: BTreeMap<u16, std::net::UdpSocket>,
    /// Per call, the segment of the call its audio is in (see [`audio::Segment`]).
    pub(super) segments: BTreeMap<u64, &'static str>,
}

impl Driver {
    pub(super) async fn new(
        cfg: UaConfig,
        audio: Option<AudioOpts>,
    ) -> Result<Driver, SoftphoneError> {
        let addr = cfg.local;
        let sock = UdpSocket::bind(addr)
            .await
            .map_err(|error| SoftphoneError::Bind { addr, error })?;
        let mut cfg = cfg;
        cfg.local = sock.local_addr()?;
        let mut held = BTreeMap::new();
        if audio.is_some() && cfg.rtp_ports.is_none() {
            let (range, sockets) = super::rtp_block::hold(cfg.local.ip(), cfg.local.port())?;
            cfg.rtp_ports = Some(range);
            held = sockets;
        }
        let seed = crate::util::seed::process_seed();
        Ok(Driver {
            ua: Ua::new(cfg, seed),
            sock,
            buf: vec![0; 65_536],
            audio,
            tasks: BTreeMap::new(),
            offered: BTreeMap::new(),
            held,
            segments: BTreeMap::new(),
        })
    }

    /// The socket of RTP port `port`: the held one, or (outside the block) a
    /// new one.
    pub(super) async fn rtp_socket(&mut self, port: u16) -> std::io::Result<UdpSocket> {
        match self.held.remove(&port) {
            Some(sock) => {
                sock.set_nonblocking(true)?;
                UdpSocket::from_std(sock)
            }
            None => audio::bind(self.ip(), port).await,
        }
    }

    /// What a call's audio hears from now on belongs to segment `name`.
    pub(super) fn set_segment(&mut self, call: u64, name: &'static str) {
        self.segments.insert(call, name);
        if let Some(t) = self.tasks.get(&call) {
            let _ = t.segment.send(name);
        }
    }

    /// A call is done with its RTP socket: back to the held block.
    pub(super) fn give_back(&mut self, sock: UdpSocket) {
        if let (Ok(addr), Ok(sock)) = (sock.local_addr(), sock.into_std()) {
            self.held.insert(addr.port(), sock);
        }
    }

    /// Binds the RTP port of every call whose SDP is about to go out (an
    /// offer, an answer), so that what arrives before its audio starts (early
    /// media, the far end's first frames) waits in the socket.
    pub(super) async fn bind_offered(&mut self) {
        while let Some((call, port)) = self.ua.poll_new_rtp_port() {
            if self.audio.is_none() {
                continue;
            }
            match self.rtp_socket(port).await {
                Ok(sock) => {
                    self.offered.insert(call, sock);
                }
                Err(e) => eprintln!("call {call}: cannot bind RTP port {port}: {e}"),
            }
        }
    }

    pub(super) fn ip(&self) -> std::net::IpAddr {
        self.sock
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// A call has audio: start it, or send it to where a new SDP moved the far end.
    pub(super) async fn start_audio(
        &mut self,
        call: u64,
        port: u16,
        remote: crate::media::command::Remote,
    ) {
        let Some(opts) = self.audio.clone() else {
            return;
        };
        if let Some(task) = self.tasks.get(&call) {
            let _ = task.remote.send(remote);
            return;
        }
        let sock = match self.offered.remove(&call) {
            Some(sock) => sock,
            None => match self.rtp_socket(port).await {
                Ok(sock) => sock,
                Err(e) => {
                    eprintln!("call {call}: cannot bind RTP port {port}: {e}");
                    return;
                }
            },
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let (remote_tx, remote_rx) = tokio::sync::watch::channel(remote);
        let name = self.segments.get(&call).copied().unwrap_or("call");
        let (segment, segment_rx) = tokio::sync::watch::channel(name);
        let handle = tokio::spawn(audio::run(call, sock, remote_rx, opts, stop_rx, segment_rx));
        self.tasks.insert(
            call,
            AudioTask {
                stop,
                remote: remote_tx,
                handle,
                segment,
            },
        );
    }

    /// A call ended: stop its audio and keep its report.
    pub(super) async fn stop_audio(&mut self, call: u64, summary: &mut Summary) {
        self.segments.remove(&call);
        if let Some(sock) = self.offered.remove(&call) {
            self.give_back(sock);
        }
        if let Some(task) = self.tasks.remove(&call) {
            let _ = task.stop.send(());
            if let Ok((r, sock)) = task.handle.await {
                summary.audio.push(r);
                self.give_back(sock);
            }
        }
    }

    /// Stops the audio of calls that never reported their end, keeping their
    /// reports (the run is over).
    pub(super) async fn stop_all_audio(&mut self, summary: &mut Summary) {
        let calls: Vec<u64> = self
            .tasks
            .keys()
            .chain(self.offered.keys())
            .copied()
            .collect();
        for call in calls {
            self.stop_audio(call, summary).await;
        }
    }

    /// Sends what the UA produced.
    pub(super) async fn flush(&mut self) -> Result<(), SoftphoneError> {
        self.bind_offered().await;
        while let Some(t) = self.ua.poll_transmit() {
            self.sock.send_to(&t.bytes, t.peer.addr).await?;
        }
        Ok(())
    }

    /// Waits for input or the UA's next timer (at most until `until`).
    pub(super) async fn step(&mut self, until: Instant) -> Result<(), SoftphoneError> {
        self.flush().await?;
        let deadline = self.ua.poll_timeout().map_or(until, |t| t.min(until));
        tokio::select! {
            r = self.sock.recv_from(&mut self.buf) => {
                let (n, addr) = r?;
                let peer = Peer { transport: Transport::Udp, addr };
                self.ua.handle_datagram(Instant::now(), &self.buf[..n], peer);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                self.ua.handle_timeout(Instant::now());
            }
        }
        self.flush().await
    }
}
