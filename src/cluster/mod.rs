//! Several gateways behind one SIP proxy, sharing PostgreSQL (docs/cluster.md):
//! active/standby, decided by a lease row in the database.
//!
//! ```text
//!  every renew_every_ms:  lease (take / renew) ─► Lease (pure) ─► Activate / StepDown ─► SIP core
//!                         heartbeat (role, dialplan version)
//!                         active: close the calls of nodes whose heartbeat stopped
//!  SIGTERM:               release the lease, StepDown(Draining); then, every
//!                         period until the process ends: heartbeat, and once
//!                         another node holds the lease, HandOver (the callers
//!                         still waiting here go to it, see call/handover.rs)
//! ```
//!
//! Owns the timing of the lease; the SQL is in `store/`, what a lost call
//! becomes is in `reporting/`, and what a standby answers is in `call/`.

mod drain;
pub mod lease;
mod views;

pub use views::paused_in;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::call::Serving;
use crate::config::ClusterSection;
use crate::reporting::{self, Shared};
use crate::store::{Heartbeat, Store};
use crate::transport::Control;
use lease::{Change, Lease, Step};

/// The lease's name in `cluster_lease`.
pub const ACD_LEASE: &str = "acd";

/// What `/healthz` shows of this node's part in the cluster.
#[derive(Debug, Default)]
pub struct ClusterStatus {
    pub node: String,
    /// The lease epoch held (0: none).
    pub epoch: AtomicI64,
    /// The running dialplan's version (a digest of its files).
    pub plan_version: std::sync::Mutex<String>,
    /// Set when this node reloaded its dialplan on an operator's request
    /// (HTTP, SIGHUP): the lease keeper tells the other nodes.
    pub reloaded_here: std::sync::atomic::AtomicBool,
}

impl ClusterStatus {
    /// This node (`local` when alone) running the dialplan in `dir`.
    pub fn new(node: &str, dir: &std::path::Path) -> ClusterStatus {
        ClusterStatus {
            node: node.to_string(),
            epoch: AtomicI64::new(0),
            plan_version: std::sync::Mutex::new(plan_version_of(dir)),
            reloaded_here: Default::default(),
        }
    }

    /// An operator reloaded this node's dialplan (HTTP or SIGHUP): the running
    /// version, and a note for the other nodes to reload theirs.
    pub fn reloaded_by_operator(&self, version: String) {
        self.set_plan_version(version);
        self.reloaded_here.store(true, Ordering::Relaxed);
    }

    pub fn plan_version(&self) -> String {
        self.plan_version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_plan_version(&self, v: String) {
        *self.plan_version.lock().unwrap_or_else(|p| p.into_inner()) = v;
    }
}

/// A running cluster member: `drain` starts the handover; `task` runs until
/// the process ends.
#[derive(Debug)]
pub struct Member {
    pub status: Arc<ClusterStatus>,
    drain: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Member {
    /// Stops answering calls and hands the lease over (SIGTERM).
    pub fn drain(&self) {
        let _ = self.drain.send(true);
    }
}

/// Starts the lease keeper for this node.
pub fn spawn(
    cfg: ClusterSection,
    shared: Arc<Shared>,
    control: mpsc::Sender<Control>,
    status: Arc<ClusterStatus>,
    reload: mpsc::Sender<()>,
    sip_addr: std::net::SocketAddr,
) -> Member {
    let (drain, drain_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        cfg,
        shared,
        control,
        status.clone(),
        drain_rx,
        reload,
        sip_addr.to_string(),
    ));
    Member {
        status,
        drain,
        task,
    }
}

async fn run(
    cfg: ClusterSection,
    shared: Arc<Shared>,
    control: mpsc::Sender<Control>,
    status: Arc<ClusterStatus>,
    mut drain: watch::Receiver<bool>,
    reload: mpsc::Sender<()>,
    sip_addr: String,
) {
    let ttl = Duration::from_millis(cfg.lease_ttl_ms);
    let every = Duration::from_millis(cfg.renew_every_ms);
    // A node is dead to the others once its heartbeat is this old.
    let stale_ms = (2 * cfg.lease_ttl_ms + cfg.renew_every_ms) as i64;
    let started_ms = crate::util::time::unix_ms();
    let mut lease = Lease::new(Instant::now(), ttl, every);
    // Ask no longer than this for one answer: past it the deadline decides.
    let ask_for = ttl / 3;
    let mut seen_plan: Option<i64> = None;
    let mut busy: std::collections::HashSet<String> = Default::default();
    let mut peers: std::collections::HashSet<std::net::SocketAddr> = Default::default();
    let mut ticks: u64 = 0;
    loop {
        let store = match shared.store() {
            Some(s) => s.clone(),
            None => {
                // Not connected yet (the reporting service keeps trying).
                tokio::select! {
                    _ = tokio::time::sleep(every) => continue,
                    _ = drain.changed() => return,
                }
            }
        };
        let (step, change) = lease.poll(Instant::now());
        if let Some(c) = change {
            apply(c, &cfg, &shared, &store, &control, &status, &mut busy).await;
        }
        if step == Step::Acquire {
            // The database work of one period, cut short at the lease's own
            // deadline: a node cut off from the database (its queries hanging)
            // steps down on time instead of waiting for them (see lease.rs).
            let deadline = match lease.role() {
                lease::Role::Active { valid_until, .. } => Some(valid_until),
                _ => None,
            };
            let work = async {
                let sent = Instant::now();
                let asked = tokio::time::timeout(
                    ask_for,
                    store.acquire_lease(ACD_LEASE, &cfg.node, cfg.lease_ttl_ms as i64),
                )
                .await;
                let answer = match asked {
                    Ok(Ok(granted)) => Ok(granted),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cluster lease: no answer from the database");
                        Err(())
                    }
                    Err(_) => Err(()),
                };
                if let Some(c) = lease.answered(Instant::now(), sent, answer) {
                    apply(c, &cfg, &shared, &store, &control, &status, &mut busy).await;
                }
                let role = match lease.role() {
                    lease::Role::Active { .. } => "active",
                    lease::Role::Standby => "standby",
                    lease::Role::Draining => "draining",
                };
                let version = status.plan_version();
                let beat = Heartbeat {
                    node: &cfg.node,
                    role,
                    plan_version: &version,
                    started_at_ms: started_ms,
                    sip_addr: &sip_addr,
                };
                let _ = tokio::time::timeout(ask_for, store.heartbeat(&beat)).await;
                ticks += 1;
                // The nodes a handed-over call is accepted from.
                if let Ok(Ok(list)) =
                    tokio::time::timeout(ask_for, store.peer_addrs(&cfg.node, stale_ms)).await
                {
                    let now_peers = list.iter().filter_map(|a| a.parse().ok()).collect();
                    if now_peers != peers {
                        peers = now_peers;
                        let _ = control.send(Control::Peers(peers.clone())).await;
                    }
                }
                let active = matches!(lease.role(), lease::Role::Active { .. });
                if active {
                    // Calls a dead node left behind get their records here.
                    if let Err(e) =
                        reporting::finalize_orphans(&shared, &store, Some(stale_ms)).await
                    {
                        tracing::warn!(error = %e, "cluster: closing a dead node's calls failed; retrying");
                    }
                    // What the API shows of the ACD, for the standby to show too.
                    views::share_views(&cfg.node, &store, &control, ask_for).await;
                    // Agents still on another node's calls (a draining node's).
                    if let Ok(Ok(list)) =
                        tokio::time::timeout(ask_for, store.agents_busy_elsewhere(&cfg.node)).await
                    {
                        let now_busy: std::collections::HashSet<String> =
                            list.into_iter().collect();
                        if now_busy != busy {
                            busy = now_busy.clone();
                            let _ = control.send(Control::BusyElsewhere(now_busy)).await;
                        }
                    }
                } else if ticks.is_multiple_of(STANDBY_REFRESH_TICKS) {
                    // The standby's figures follow the active node's stored calls.
                    if let Err(e) = reporting::refresh_live(&shared, &store).await {
                        tracing::debug!(error = %e, "cluster: live figures not refreshed");
                    }
                }
                sync_plan(&cfg.node, &store, &status, &reload, &mut seen_plan, ask_for).await;
            };
            tokio::select! {
                _ = work => {}
                _ = sleep_until_opt(deadline) => {
                    tracing::warn!(node = %cfg.node, "cluster: the database did not answer before the lease's deadline");
                }
            }
        }
        let wake = lease.next_at();
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = drain.changed() => {
                let held = lease.drain();
                shared.sends_alerts.store(false, Ordering::Relaxed);
                let _ = control.send(Control::StepDown(Serving::Draining)).await;
                status.epoch.store(0, Ordering::Relaxed);
                if let Some(epoch) = held {
                    match store.release_lease(ACD_LEASE, &cfg.node, epoch).await {
                        Ok(_) => tracing::info!("cluster: lease released for the standby to take over"),
                        Err(e) => tracing::warn!(error = %e, "cluster: lease not released; it lapses by itself"),
                    }
                }
                let beat = drain::Beat {
                    node: &cfg.node,
                    started_ms,
                    sip_addr: &sip_addr,
                    status: &status,
                };
                return drain::drain_forever(beat, &store, &control, every, ask_for).await;
            }
        }
    }
}

async fn apply(
    change: Change,
    cfg: &ClusterSection,
    shared: &Shared,
    store: &Store,
    control: &mpsc::Sender<Control>,
    status: &ClusterStatus,
    busy: &mut std::collections::HashSet<String>,
) {
    match change {
        Change::BecameActive { epoch } => {
            let now_ms = crate::util::time::unix_ms();
            let bindings = match store.registrations(now_ms).await {
                Ok(rows) => rows
                    .iter()
                    .filter_map(reporting::portable_binding)
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: registrations not read; agents are rung once they register again");
                    Vec::new()
                }
            };
            tracing::info!(node = %cfg.node, epoch, agents = bindings.len(), "cluster: this node holds the ACD lease");
            status.epoch.store(epoch, Ordering::Relaxed);
            // The live windows as the last holder left them (its calls are
            // stored), and its open breaches: no alert is sent twice.
            if let Err(e) = reporting::refresh_live(shared, store).await {
                tracing::warn!(error = %e, "cluster: live figures not rebuilt from the store");
            }
            shared.sends_alerts.store(true, Ordering::Relaxed);
            // Agents still on the other node's calls are held back before any
            // agent is logged in here.
            if let Ok(list) = store.agents_busy_elsewhere(&cfg.node).await {
                *busy = list.into_iter().collect();
                let _ = control.send(Control::BusyElsewhere(busy.clone())).await;
            }
            // Agents paused at the last holder stay paused (its last view).
            let paused = match store.view("agents").await {
                Ok(Some((_, _, body))) => serde_json::from_str(&body)
                    .map(|v| paused_in(&v))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let _ = control.send(Control::Activate { bindings, paused }).await;
            // Calls the last holder left behind, if it died.
            let stale_ms = (2 * cfg.lease_ttl_ms + cfg.renew_every_ms) as i64;
            if let Err(e) = reporting::finalize_orphans(shared, store, Some(stale_ms)).await {
                tracing::warn!(error = %e, "cluster: closing a dead node's calls failed; retrying");
            }
        }
        Change::LostLease => {
            tracing::warn!(node = %cfg.node, "cluster: ACD lease lost or lapsed; standing by");
            status.epoch.store(0, Ordering::Relaxed);
            shared.sends_alerts.store(false, Ordering::Relaxed);
            let _ = control.send(Control::StepDown(Serving::Standby)).await;
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A standby rebuilds its live figures from the store every this many lease
/// periods (15 s at the default 500 ms).
const STANDBY_REFRESH_TICKS: u64 = 30;

/// One reload request reaches every node: a node an operator reloaded bumps
/// the generation in the database; the others see it change and reload their
/// own copy of the files (through the same path as SIGHUP).
async fn sync_plan(
    node: &str,
    store: &Store,
    status: &ClusterStatus,
    reload: &mpsc::Sender<()>,
    seen: &mut Option<i64>,
    ask_for: Duration,
) {
    if status.reloaded_here.swap(false, Ordering::Relaxed) {
        match tokio::time::timeout(ask_for, store.bump_plan_generation(node)).await {
            Ok(Ok(g)) => {
                tracing::info!(
                    generation = g,
                    "cluster: dialplan reloaded here; the other nodes follow"
                );
                *seen = Some(g);
            }
            _ => {
                // Try again next time.
                status.reloaded_here.store(true, Ordering::Relaxed);
            }
        }
        return;
    }
    let Ok(Ok(g)) = tokio::time::timeout(ask_for, store.plan_generation()).await else {
        return;
    };
    match *seen {
        None => *seen = Some(g),
        Some(s) if g > s => {
            tracing::info!(
                generation = g,
                "cluster: another node reloaded the dialplan; reloading ours"
            );
            *seen = Some(g);
            let _ = reload.try_send(());
        }
        _ => {}
    }
}

/// The version of the dialplan files in `dir` (see [`plan_version`]); without
/// that folder, of the embedded example plan the gateway then runs.
pub fn plan_version_of(dir: &std::path::Path) -> String {
    if !dir.exists() {
        let embedded: Vec<(String, String)> = crate::dialplan::DEFAULT_FILES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        return plan_version(&embedded);
    }
    plan_version(&crate::config::read_dialplan_files(dir))
}

/// A dialplan's version: the first 12 hex digits of SHA-256 over its files'
/// names and texts, in name order. Two nodes with the same files agree.
pub fn plan_version(files: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in files {
        let base = std::path::Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.update(base.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    crate::util::hex::hex(&h.finalize()[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_version_follows_the_files_and_the_embedded_plan_matches_the_shipped_folder() {
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/default");
        let embedded = plan_version_of(std::path::Path::new("/nonexistent/dialplans"));
        assert_eq!(
            plan_version_of(&shipped),
            embedded,
            "same files, same version"
        );
        let a = plan_version(&[("lines.toml".into(), "x".into())]);
        let b = plan_version(&[("lines.toml".into(), "y".into())]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 12);
        // Where the files live does not matter, only their names and texts.
        let c = plan_version(&[("/etc/hotline-gw/dialplans/lines.toml".into(), "x".into())]);
        assert_eq!(a, c);
    }
}
