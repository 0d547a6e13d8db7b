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
/// lease, the callers still waiting here are handed to it, once.
pub(super) async fn drain_forever(
    beat: Beat<'_>,
    store: &Store,
    control: &mpsc::Sender<Control>,
    every: Duration,
    ask_for: Duration,
) {
    let mut handed = false;
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
        if !handed
            && let Ok(Ok(Some((node, addr)))) =
                tokio::time::timeout(ask_for, store.other_holder(ACD_LEASE, beat.node)).await
        {
            match addr.parse() {
                Ok(addr) => {
                    tracing::info!(to = %node, %addr, "cluster: handing the waiting callers over");
                    let _ = control.send(Control::HandOver { node, addr }).await;
                    handed = true;
                }
                Err(_) => {
                    tracing::warn!(to = %node, addr, "cluster: the lease holder's SIP address is unreadable; its callers wait here");
                    handed = true;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
