//! Calls in progress as the database knows them, and what happens to those a
//! node left behind: a node that died (found by another node) or stopped hard
//! (found by itself when it starts again). Each such call gets a record
//! (`cluster.node_lost`, a callback pending) and its stub's final revision
//! (`interrupted`), in one transaction that also deletes its live row, so two
//! nodes finalising the same call write it once.

use crate::cdr::{CallRecord, Event, EventKind, Offer};
use crate::registrar::PortableBinding;
use crate::sip::{Peer, Transport};
use crate::sla::{self, Tracker};
use crate::store::{CallWrite, RegistrationRow, Store, StoreError};
use crate::tickets;

use super::{Shared, ticket_write, to_store_row};

/// Live calls finalised per transaction.
const PAGE: i64 = 500;

/// Finalises the calls in progress that a node left behind: `others_stale_ms`
/// `None` takes this node's own (its previous run's: call it before taking
/// calls), `Some(ms)` those of other nodes whose heartbeat is older than `ms`.
/// Returns how many calls got a record.
pub async fn finalize_orphans(
    shared: &Shared,
    store: &Store,
    others_stale_ms: Option<i64>,
) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let page = store
            .orphaned_live(&shared.node, others_stale_ms, PAGE)
            .await?;
        if page.is_empty() {
            return Ok(total);
        }
        let now = crate::util::time::unix_ms();
        let mut writes = Vec::with_capacity(page.len());
        let mut classified = Vec::with_capacity(page.len());
        let mut unreadable = Vec::new();
        for live in &page {
            let Ok(offer) = serde_json::from_str::<Offer>(&live.offer) else {
                tracing::error!(call = %live.id, node = %live.node, "stored live call unreadable");
                unreadable.push(live.id.clone());
                continue;
            };
            let (write, c) = lost_call(shared, &offer, live, now);
            writes.push(write);
            classified.extend(c);
        }
        let n = writes.len();
        let inserted = store.insert_calls(&writes).await?;
        if !unreadable.is_empty() {
            store.forget_live(&unreadable).await?;
        }
        // Only the records this node wrote count here (another node may have
        // finalised the same calls a moment before).
        if inserted == n {
            let mut tracker = shared.tracker();
            for c in &classified {
                tracker.record(c);
            }
        }
        total += inserted;
        let nodes: std::collections::BTreeSet<&str> =
            page.iter().map(|l| l.node.as_str()).collect();
        tracing::warn!(
            calls = n,
            written = inserted,
            nodes = ?nodes,
            "calls in progress on a node that stopped or died: recorded as cluster.node_lost, callbacks pending"
        );
        if (page.len() as i64) < PAGE {
            return Ok(total);
        }
    }
}

/// The record, interval increments and final stub of a call its node lost.
fn lost_call(
    shared: &Shared,
    offer: &Offer,
    live: &crate::store::LiveCall,
    now: i64,
) -> (CallWrite, Option<sla::Classified>) {
    let reason = crate::call::Reason::ClusterNodeLost.as_str();
    let queue = (!offer.offered_to.contains(':')).then(|| offer.offered_to.clone());
    let end = now.max(offer.at_ms);
    let mut events = vec![Event {
        at_ms: offer.at_ms,
        kind: EventKind::Offered,
        detail: Some(offer.offered_to.clone()),
    }];
    // Answered before the node died: a person took the call, and it was cut.
    if let Some(at) = live.answered_at_ms {
        events.push(Event {
            at_ms: at,
            kind: EventKind::Answered,
            detail: live.agent.clone().or_else(|| live.answered_by.clone()),
        });
    }
    events.push(Event {
        at_ms: end,
        kind: EventKind::GatewayEnded,
        detail: Some(reason.to_string()),
    });
    let mut record = CallRecord {
        id: offer.id.clone(),
        sip_call_id: offer.sip_call_id.clone(),
        caller: offer.caller.clone(),
        called: offer.called.clone(),
        original: offer.original.clone(),
        line: Some(offer.line.clone()),
        mode: Some(offer.mode.clone()),
        department: offer.department.clone(),
        trunk: offer.trunk.clone(),
        queue,
        agent: live.agent.clone(),
        answered_by: live.answered_by.clone(),
        transferred_to: None,
        outcome: None,
        reason: reason.to_string(),
        // Unknown: what the caller last heard died with the node.
        final_code: 0,
        received_at_ms: offer.at_ms,
        offered_at_ms: Some(offer.at_ms),
        answered_at_ms: live.answered_at_ms,
        ended_at_ms: end,
        survey: None,
        recording: None,
        callback_pending: true,
        callback_state: None,
        callback_done_at_ms: None,
        events,
    };
    let classified = sla::classify(&record, &shared.sla);
    record.outcome = classified.as_ref().map(|c| c.outcome.as_str().to_string());
    let intervals = classified
        .as_ref()
        .map(|c| {
            Tracker::interval_rows(c)
                .into_iter()
                .map(to_store_row)
                .collect()
        })
        .unwrap_or_default();
    let mut stub = tickets::interrupted(&tickets::open(offer), now);
    stub.reason = Some(reason.to_string());
    stub.outcome = record.outcome.clone().or(stub.outcome);
    stub.agent = record.agent.clone().or(stub.agent);
    let ticket = Some(ticket_write(&stub, now, shared.deliver_tickets));
    (
        CallWrite {
            record,
            intervals,
            ticket,
        },
        classified,
    )
}

/// A binding as the database keeps it.
pub(super) fn registration_row(b: &PortableBinding) -> RegistrationRow {
    RegistrationRow {
        aor: b.user.clone(),
        contact: b.contact.clone(),
        transport: match b.source.transport {
            Transport::Udp => "udp".into(),
            Transport::Tcp => "tcp".into(),
        },
        source: b.source.addr.to_string(),
        path: b.path.join("\n"),
        q: b.q.map(|q| q.to_string()),
        call_id: b.call_id.clone(),
        cseq: i64::from(b.cseq),
        expires_at_ms: b.expires_at_ms,
    }
}

/// A stored registration as the registrar takes it; `None` if unreadable.
pub fn portable_binding(r: &RegistrationRow) -> Option<PortableBinding> {
    let transport = match r.transport.as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        _ => return None,
    };
    Some(PortableBinding {
        user: r.aor.clone(),
        contact: r.contact.clone(),
        source: Peer {
            transport,
            addr: r.source.parse().ok()?,
        },
        path: r
            .path
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        q: match &r.q {
            Some(q) => Some(q.parse().ok()?),
            None => None,
        },
        call_id: r.call_id.clone(),
        cseq: u32::try_from(r.cseq).ok()?,
        expires_at_ms: r.expires_at_ms,
    })
}
