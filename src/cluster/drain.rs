//! A draining node's last task: beat, and hand its waiting callers over once
//! another node holds the lease (`call/handover.rs` does the SIP part).

use std::time::Duration;

use tokio::sync::mpsc;

use super::{ACD_LEASE, ClusterStatus};
use crate::store::{Heartbeat, Store};
use crate::transport::Control;

/// What a node says of itself in each heartbeat.
pub(super) struct Beat<'a> {
    pub node: &'a str,
    pub started_ms: i64,
    pub sip_addr: &'a str,
    pub status: &'a ClusterStatus,
}

/// A draining node goes on beating (its calls in progress are not a dead
/// node's to the others) until the process ends; once another node holds the
/// lease, the callers waiting here are handed to it, and again every period
/// for callers who came to wait since (a parallel line's overflow).
pub(super) async fn drain_forever(
    beat: Beat<'_>,
    store: &Store,
    control: &mpsc::Sender<Control>,
    every: Duration,
    ask_for: Duration,
) {
    let mut told: Option<String> = None;
    loop {
        let version = beat.status.plan_version();
        let hb = Heartbeat {
            node: beat.node,
            role: "draining",
            plan_version: &version,
            started_at_ms: beat.started_ms,
            sip_addr: beat.sip_addr,
        };
        let _ = tokio::time::timeout(ask_for, store.heartbeat(&hb)).await;
        if let Ok(Ok(Some((node, addr)))) =
            tokio::time::timeout(ask_for, store.other_holder(ACD_LEASE, beat.node)).await
        {
            match addr.parse() {
                Ok(addr) => {
                    if told.as_deref() != Some(node.as_str()) {
                        tracing::info!(to = %node, %addr, "cluster: handing the waiting callers over");
                        told = Some(node.clone());
                    }
                    let _ = control.send(Control::HandOver { node, addr }).await;
                }
                Err(_) if told.is_none() => {
                    tracing::warn!(to = %node, addr, "cluster: the lease holder's SIP address is unreadable; its callers wait here");
                    told = Some(node);
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(every).await;
    }
}
