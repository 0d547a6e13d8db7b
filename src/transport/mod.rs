//! Sockets and the clock: the only layer that owns either. It drives one
//! [`Core`](crate::call::Core) from a single task:
//!
//! ```text
//!  UDP socket ──try_recv──┐                 ┌──try_send──► UDP socket
//!  TCP readers ──frames──►│ core task: Core │──per-connection queues──► TCP writers
//!  control (reload/stop)─►│  (sans-IO)      │──records──► Status (atomics for HTTP)
//!                         └── sleep_until(core.poll_timeout()) ──┘
//! ```
//!
//! Sharding across cores would run one such task per shard, with a dispatcher
//! hashing Call-ID (outgoing Call-IDs carry their shard number).

pub mod fds;
mod known;
pub mod media;
mod status;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

pub use status::Status;

use crate::call::api::{AgentAction, ApiError};
use crate::call::{Core, CoreConfig};
use crate::config::Config;
use crate::dialplan::Dialplan;
use crate::media::command::MediaEvent;
use crate::reporting::Recorder;
use crate::sip::ids::Seed;
use crate::sip::transaction::LayerConfig;
use crate::sip::{Peer, Transmit, Transport};

/// Why the transport could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind SIP {transport} on {addr}: {error}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        /// In the message, not a `source()`: printed once, not twice.
        error: std::io::Error,
    },
    #[error("SIP socket failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("media: {0}")]
    Media(String),
    /// The configuration may need more file descriptors than the limit allows.
    #[error("{0}")]
    FileDescriptors(String),
}

/// What TCP connection tasks tell the core task.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A connection is up; `writer` queues bytes to it.
    Open {
        addr: SocketAddr,
        writer: mpsc::Sender<Bytes>,
    },
    /// One framed message.
    Frame {
        addr: SocketAddr,
        bytes: Bytes,
    },
    /// Bytes that could not be framed (answered `400` when possible).
    Invalid {
        addr: SocketAddr,
        bytes: Bytes,
        error: String,
    },
    Closed {
        addr: SocketAddr,
    },
}

/// Orders and questions for the core task from outside (HTTP, signals). Answers
/// come back on the oneshot each question carries.
#[derive(Debug)]
pub enum Control {
    /// A checked dialplan to swap in; the core may still refuse it (a prompt it
    /// has not loaded, queues the ACD refuses), and says so.
    ReloadDialplan(Arc<Dialplan>, oneshot::Sender<Result<(), ApiError>>),
    Shutdown,
    /// This node took the cluster's ACD lease: answer calls, and ring the agents
    /// registered in the database at once, but for those paused at the last
    /// holder (agent, reason).
    Activate {
        bindings: Vec<crate::registrar::PortableBinding>,
        paused: Vec<(String, String)>,
    },
    /// The lease is lost (standby) or the node is stopping (draining): refuse
    /// new calls, ring nobody; calls in progress go on.
    StepDown(crate::call::Serving),
    /// Agents on calls other nodes hold (the database's live calls).
    BusyElsewhere(std::collections::HashSet<String>),
    /// The numbers owed a callback (number, missed call id), from the store.
    Callbacks(Vec<(String, String)>),
    /// The other cluster nodes' SIP addresses: a handed-over call is accepted
    /// only from one of them.
    Peers(std::collections::HashSet<std::net::SocketAddr>),
    /// This node is draining and `node` (at `addr`) holds the lease now: the
    /// callers still waiting here are handed to it.
    HandOver {
        node: String,
        addr: std::net::SocketAddr,
    },
    Agents(oneshot::Sender<serde_json::Value>),
    Queues(oneshot::Sender<serde_json::Value>),
    AgentAction {
        agent: String,
        action: AgentAction,
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
    },
    /// Call the citizen of missed call `missed` back, `agent`'s phone first.
    DialCallback {
        missed: String,
        agent: String,
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
    },
    /// Ring `number` as a third party of call `call` (its record id).
    AddParty {
        call: String,
        number: String,
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
    },
}

/// Bound sockets, ready to run.
#[derive(Debug)]
pub struct SipServer {
    udp: Option<tokio::net::UdpSocket>,
    tcp: Option<tokio::net::TcpListener>,
    core: Core,
    /// Message size (UDP and TCP), TCP's deadlines and connection caps.
    tcp_limits: tcp::Limits,
    status: Arc<Status>,
    /// Where finished calls go (figures, metrics, the store).
    recorder: Option<Recorder>,
    /// The RTP relay, when media is enabled.
    media: Option<media::MediaPlane>,
    /// The dialplan the core starts with (its trunks are known TCP sources).
    plan: Arc<Dialplan>,
}

/// Capacity of the queue from TCP readers to the core task.
const INBOUND_QUEUE: usize = 8192;
/// Capacity of each connection's write queue.
const WRITE_QUEUE: usize = 1024;
/// How often held call records are retried while the store queue is full.
const BACKLOG_PUMP: Duration = Duration::from_millis(20);
/// How often the core's wall clock is set again from the system clock.
const WALL_CLOCK_EVERY: Duration = Duration::from_secs(1);
/// Fresh OS entropy goes into the core's generators every this many wall-clock
/// ticks (a minute).
const RESEED_EVERY_TICKS: u32 = 60;
/// Datagrams handled per wake-up before timers and TCP get a turn.
const UDP_BATCH: usize = 256;

impl SipServer {
    /// Binds the configured sockets and builds the core.
    pub async fn bind(
        cfg: &Config,
        plan: Arc<Dialplan>,
        status: Arc<Status>,
    ) -> Result<SipServer, TransportError> {
        let addr = cfg.sip.listen;
        let udp = if cfg.sip.udp {
            Some(udp::bind(addr).map_err(|error| TransportError::Bind {
                transport: "UDP",
                addr,
                error,
            })?)
        } else {
            None
        };
        let tcp = if cfg.sip.tcp {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|error| {
                TransportError::Bind {
                    transport: "TCP",
                    addr,
                    error,
                }
            })?)
        } else {
            None
        };
        let local = udp
            .as_ref()
            .map(|s| s.local_addr())
            .or_else(|| tcp.as_ref().map(|s| s.local_addr()))
            .transpose()?
            .unwrap_or(addr);
        let advertise = cfg.sip.advertise.unwrap_or(local);
        let core_cfg = CoreConfig {
            layer: LayerConfig {
                timers: cfg.timers(),
                sent_by: advertise.to_string(),
            },
            contact_host: advertise.to_string(),
            max_calls: cfg.calls.max_concurrent,
            retry_after_s: cfg.calls.retry_after_s,
            ring_timeout: Duration::from_secs(cfg.calls.ring_timeout_s),
            max_duration: Duration::from_secs(cfg.calls.max_duration_s),
            max_message_bytes: cfg.sip.max_message_bytes,
            shard: 0,
            // Checked by Config::validate; the default only if that was skipped.
            registrar: cfg.registrar.to_registrar().unwrap_or_default(),
            tickets: cfg.tickets.enabled && cfg.database_url().is_some(),
            media: None,
            strangers: cfg.sip.strangers.to_guard(),
            clustered: cfg.cluster.is_some(),
            start_standby: cfg.cluster.is_some(),
            standby_hold: cfg
                .cluster
                .as_ref()
                .filter(|c| c.standby_hold_ms > 0)
                .map(|c| Duration::from_millis(c.standby_hold_ms)),
            cluster_secret: cfg
                .cluster
                .as_ref()
                .and_then(|c| c.secret.as_ref())
                .map(|s| s.as_bytes().to_vec()),
        };
        let (core_cfg, media) = match media::start(cfg, &plan)? {
            Some((m, plane)) => {
                let _ = status.media.set(plane.handle.stats.clone());
                (
                    CoreConfig {
                        media: Some(m),
                        ..core_cfg
                    },
                    Some(plane),
                )
            }
            None => (core_cfg, None),
        };
        let now = Instant::now();
        let mut core = Core::new(core_cfg, plan.clone(), Seed::from_os(), now);
        core.set_wall_clock(now, crate::util::time::unix_ms());
        status
            .serving
            .store(core.serving() as u8, std::sync::atomic::Ordering::Relaxed);
        Ok(SipServer {
            udp,
            tcp,
            core,
            tcp_limits: tcp::Limits {
                max_message: cfg.sip.max_message_bytes,
                // A message begun and not finished within 64·T1 (Timer B's span)
                // will not be: the connection is closed.
                partial: cfg.timers().timeout(),
                first_message: Duration::from_secs(cfg.sip.tcp_first_message_s),
                idle: Duration::from_secs(cfg.sip.tcp_idle_s),
                max_connections: cfg.sip.tcp_max_connections,
                max_per_source: cfg.sip.tcp_max_per_source,
            },
            status,
            recorder: None,
            media,
            plan,
        })
    }

    /// The UDP (or else TCP) address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .or_else(|| self.tcp.as_ref().and_then(|s| s.local_addr().ok()))
    }

    /// Hands finished calls to the reporting service.
    pub fn with_recorder(mut self, recorder: Recorder) -> SipServer {
        self.recorder = Some(recorder);
        self
    }

    /// Runs until [`Control::Shutdown`]; then hands every held call record to the
    /// writer.
    pub async fn run(self, mut control: mpsc::Receiver<Control>) -> Result<(), TransportError> {
        let SipServer {
            udp,
            tcp,
            mut core,
            tcp_limits,
            status,
            mut recorder,
            media,
            plan,
        } = self;
        let (media_handle, mut media_events) = match media {
            Some(m) => (Some(m.handle), Some(m.events)),
            None => (None, None),
        };
        let (in_tx, mut in_rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
        let known = known::KnownSources::new(plan);
        let tcp_conns = tcp::Conns::new(tcp_limits, status.clone(), known.clone());
        if let Some(listener) = tcp {
            tokio::spawn(tcp::accept_loop(listener, in_tx.clone(), tcp_conns.clone()));
        }
        let mut conns: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
        let mut buf = vec![0u8; tcp_limits.max_message.max(2048) + 1];
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        let mut wall_set = Instant::now();
        let mut reseeds = 0u32;
        let result: Result<(), TransportError> = async {
            loop {
                let deadline = core.poll_timeout().unwrap_or(far_future);
                // Not biased: under a UDP flood, timers, TCP, the relay's events
                // and control still get their turn (tokio picks a ready branch at
                // random; each drains a bounded batch).
                tokio::select! {
                    c = control.recv() => match c {
                        Some(Control::ReloadDialplan(plan, reply)) => {
                            let lines = plan.len();
                            let r = core.set_dialplan(Instant::now(), plan.clone());
                            match &r {
                                Ok(()) => {
                                    known.set_plan(plan);
                                    info!(lines, "dialplan reloaded");
                                }
                                Err(e) => warn!(error = %e, "dialplan reload refused; the running plan stays"),
                            }
                            let _ = reply.send(r);
                        }
                        Some(Control::Shutdown) | None => {
                            info!(active_calls = core.active_calls(), "SIP transport stopping");
                            return Ok(());
                        }
                        Some(Control::Activate { bindings, paused }) => {
                            core.activate(Instant::now(), bindings, &paused);
                        }
                        Some(Control::StepDown(to)) => core.step_down(Instant::now(), to),
                        Some(Control::Peers(peers)) => core.set_peers(peers),
                        Some(Control::Callbacks(list)) => core.set_callbacks(list),
                        Some(Control::HandOver { node, addr }) => {
                            core.hand_over(Instant::now(), &node, addr);
                        }
                        Some(Control::BusyElsewhere(agents)) => {
                            core.set_busy_elsewhere(Instant::now(), agents);
                        }
                        Some(Control::Agents(reply)) => {
                            let _ = reply.send(core.agents_view(Instant::now()));
                        }
                        Some(Control::Queues(reply)) => {
                            let _ = reply.send(core.queues_view(Instant::now()));
                        }
                        Some(Control::AgentAction { agent, action, reply }) => {
                            let _ = reply.send(core.agent_action(Instant::now(), &agent, action));
                        }
                        Some(Control::DialCallback { missed, agent, reply }) => {
                            let _ = reply.send(core.dial_callback_api(Instant::now(), &missed, &agent));
                        }
                        Some(Control::AddParty { call, number, reply }) => {
                            let _ = reply.send(core.add_party_api(Instant::now(), &call, &number));
                        }
                    },
                    r = readable(udp.as_ref()) => {
                        r?;
                        if let Some(sock) = &udp {
                            udp::drain(sock, &mut core, &mut buf, UDP_BATCH)?;
                        }
                    }
                    Some(msg) = in_rx.recv() => {
                        on_inbound(&mut core, &mut conns, msg);
                        // Take whatever else is already queued without re-arming select.
                        for _ in 0..UDP_BATCH {
                            match in_rx.try_recv() {
                                Ok(msg) => on_inbound(&mut core, &mut conns, msg),
                                Err(_) => break,
                            }
                        }
                    }
                    Some(ev) = media_event(media_events.as_mut()) => {
                        let now = Instant::now();
                        core.handle_media(now, ev);
                        if let Some(rx) = media_events.as_mut() {
                            for _ in 0..UDP_BATCH {
                                match rx.try_recv() {
                                    Ok(ev) => core.handle_media(now, ev),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        core.handle_timeout(Instant::now());
                    }
                    // Held call records move on as the writer makes room.
                    _ = tokio::time::sleep(BACKLOG_PUMP), if recorder.as_ref().is_some_and(|r| r.backlogged()) => {}
                }
                // Media first: the relay is ready before the SDP answer goes out,
                // and a call the relay refused gets its 503 in the same pass.
                flush_media(&mut core, media_handle.as_ref());
                flush(&mut core, udp.as_ref(), &mut conns, &in_tx, &tcp_conns).await;
                known.sync(&core);
                status.observe(&mut core, recorder.as_mut());
                // Follow the wall clock (NTP steps, drift) for records and time rules.
                if wall_set.elapsed() >= WALL_CLOCK_EVERY {
                    wall_set = Instant::now();
                    core.set_wall_clock(wall_set, crate::util::time::unix_ms());
                    reseeds += 1;
                    if reseeds.is_multiple_of(RESEED_EVERY_TICKS) {
                        core.reseed(Seed::from_os());
                    }
                }
            }
        }
        .await;
        // Stopping, or a socket failed: every call in progress ends with a record,
        // and every record goes to the writer.
        core.shutdown(Instant::now());
        flush_media(&mut core, media_handle.as_ref());
        flush(&mut core, udp.as_ref(), &mut conns, &in_tx, &tcp_conns).await;
        status.observe(&mut core, recorder.as_mut());
        if let Some(r) = recorder.take() {
            r.close().await;
        }
        result
    }
}

async fn media_event(
    rx: Option<&mut mpsc::Receiver<crate::media::command::MediaEvent>>,
) -> Option<crate::media::command::MediaEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Hands the core's media orders to the relay (without the relay, drops them).
fn flush_media(core: &mut Core, handle: Option<&crate::media::relay::MediaHandle>) {
    while let Some(cmd) = core.poll_media() {
        let session = cmd.session();
        if let Some(h) = handle
            && let Err(e) = h.send(cmd)
        {
            // (A Close is never refused.) The relay missed an order for this
            // call (its Open, where the caller is, what it hears): end the call
            // now rather than leave it in silence.
            warn!(error = %e, "media order dropped");
            core.handle_media(Instant::now(), MediaEvent::Refused { session });
        }
    }
    if let Some(h) = handle {
        h.flush();
    }
}

async fn readable(sock: Option<&tokio::net::UdpSocket>) -> std::io::Result<()> {
    match sock {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

fn on_inbound(core: &mut Core, conns: &mut HashMap<SocketAddr, mpsc::Sender<Bytes>>, msg: Inbound) {
    let tcp = |addr| Peer {
        transport: Transport::Tcp,
        addr,
    };
    match msg {
        Inbound::Open { addr, writer } => {
            debug!(%addr, "TCP connection up");
            conns.insert(addr, writer);
        }
        Inbound::Frame { addr, bytes } => core.handle_frame(Instant::now(), &bytes, tcp(addr)),
        Inbound::Invalid { addr, bytes, error } => core.reject_unparsed(&bytes, tcp(addr), &error),
        Inbound::Closed { addr } => {
            debug!(%addr, "TCP connection closed");
            conns.remove(&addr);
            core.handle_closed(tcp(addr));
        }
    }
}

/// Sends everything the core produced.
async fn flush(
    core: &mut Core,
    udp: Option<&tokio::net::UdpSocket>,
    conns: &mut HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    in_tx: &mpsc::Sender<Inbound>,
    tcp_conns: &tcp::Conns,
) {
    while let Some(Transmit { peer, bytes }) = core.poll_transmit() {
        match peer.transport {
            Transport::Udp => {
                if let Some(sock) = udp {
                    udp::send(sock, peer.addr, &bytes).await;
                }
            }
            Transport::Tcp => {
                let writer = conns.entry(peer.addr).or_insert_with(|| {
                    tcp::connect(peer.addr, in_tx.clone(), tcp_conns, WRITE_QUEUE)
                });
                if let Err(e) = writer.try_send(bytes) {
                    warn!(addr = %peer.addr, error = %e, "TCP write queue full or closed: message dropped");
                    if matches!(e, mpsc::error::TrySendError::Closed(_)) {
                        conns.remove(&peer.addr);
                    }
                }
            }
        }
    }
}
