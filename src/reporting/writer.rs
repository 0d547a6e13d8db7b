//! The batching writer: takes what is queued, writes it in one transaction, and
//! retries with backoff until the database takes it. A record is never dropped;
//! while the database is away, or cannot write (disk full, I/O error, read-only
//! file: see `StoreError::is_transient`), the queue fills and the SIP task refuses
//! new calls. Only a record the database refuses outright (a constraint it
//! breaks) is given up, and logged by its id: no record content reaches a log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Item, Shared};
use crate::store::{AlertRow, Store, StoreError};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How the writer gets its store.
#[derive(Debug)]
pub(super) enum Connect {
    Ready(Store),
    /// Down at start: keep trying this URL.
    Pending(String),
}

pub(super) async fn run(
    connect: Connect,
    mut rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
    batch_max: usize,
    tickets: crate::tickets::deliver::TicketsConfig,
) {
    let store = match connect {
        Connect::Ready(store) => store,
        Connect::Pending(url) => connect_until_up(&url, &shared).await,
    };
    if tickets.url.is_some() {
        let stats = shared.tickets.clone();
        tokio::spawn(crate::tickets::deliver::run(store.clone(), tickets, stats));
    }
    let mut batch = Vec::with_capacity(batch_max);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, batch_max).await == 0 {
            tracing::info!("call-record writer done: queue closed and drained");
            return;
        }
        let queued = &shared.telemetry.queued;
        queued.store(rx.len() as u64, Ordering::Relaxed);
        let mut calls = Vec::with_capacity(batch.len());
        let mut opens = Vec::new();
        let mut alerts = Vec::new();
        let mut lives = Vec::new();
        let mut registrations = Vec::new();
        let mut answers = Vec::new();
        let mut callbacks = Vec::new();
        for item in batch.drain(..) {
            match item {
                Item::Call(w) => calls.push(*w),
                Item::TicketOpen(t) => opens.push(t),
                Item::LiveOpen(l) => lives.push(l),
                Item::LiveAnswered(id, agent, by, at) => answers.push((id, agent, by, at)),
                Item::Registrations(aor, rows) => registrations.push((aor, rows)),
                Item::Alert(a) => alerts.push(a),
                Item::Callback(c) => callbacks.push(c),
            }
        }
        // Calls in progress before the records that end them (same batch: the
        // record's transaction deletes the row just written).
        if !lives.is_empty()
            && retry(&shared, "live calls", || store.open_live(&lives))
                .await
                .is_none()
        {
            tracing::error!(calls = lives.len(), "live calls refused by the database");
        }
        if !answers.is_empty()
            && retry(&shared, "live answers", || store.answer_live(&answers))
                .await
                .is_none()
        {
            tracing::error!(
                calls = answers.len(),
                "live answers refused by the database"
            );
        }
        for (aor, rows) in &registrations {
            if retry(&shared, "registrations", || {
                store.put_registrations(aor, rows)
            })
            .await
            .is_none()
            {
                tracing::error!(agent = %aor, "registration refused by the database");
            }
        }
        // Stubs opened by calls still in progress (a stub's later revision in the
        // same batch wins either way: the store keeps the highest revision).
        if !opens.is_empty()
            && retry(&shared, "ticket stubs", || store.open_tickets(&opens))
                .await
                .is_none()
        {
            // One stub the database refuses must not cost the others.
            for one in opens.chunks(1) {
                if retry(&shared, "ticket stub", || store.open_tickets(one))
                    .await
                    .is_none()
                {
                    tracing::error!(ticket = %one[0].id, "ticket stub refused by the database");
                }
            }
        }
        if !calls.is_empty() {
            // Every record of a batch the store took is committed, new or not: a
            // retry after an unclear failure (the commit went through, its answer
            // was lost) finds them stored already and inserts nothing.
            let written = retry(&shared, "call records", || store.insert_calls(&calls))
                .await
                .map(|_| calls.len());
            shared
                .telemetry
                .written
                .fetch_add(written.unwrap_or(0) as u64, Ordering::Relaxed);
            if written.is_none() {
                // The batch holds a record the database refuses: write one at a time
                // so that only that one is lost, loudly.
                for one in calls.chunks(1) {
                    match retry(&shared, "call record", || store.insert_calls(one)).await {
                        Some(_) => {
                            shared.telemetry.written.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            // The id only: a record holds the caller's number.
                            tracing::error!(
                                record = %one[0].record.id,
                                "call record refused by the database"
                            );
                            // Its stub's final revision still goes in on its own.
                            if let Some(t) = &one[0].ticket {
                                let t = std::slice::from_ref(t);
                                let _ =
                                    retry(&shared, "ticket stub", || store.open_tickets(t)).await;
                            }
                        }
                    }
                }
            }
        }
        // After the records: an attempt updates the missed call's row.
        let max_attempts = i64::from(shared.sla.callback_max_attempts);
        for c in &callbacks {
            let done = match c {
                crate::cdr::CallbackEvent::Started { missed, .. } => {
                    retry(&shared, "callback start", || store.callback_started(missed)).await
                }
                crate::cdr::CallbackEvent::Ended(a) => {
                    retry(&shared, "callback attempt", || {
                        store.callback_attempt(a, max_attempts)
                    })
                    .await
                }
            };
            if done.is_none() {
                tracing::error!("callback attempt refused by the database");
            }
        }
        for a in alerts {
            let row = AlertRow {
                at_ms: a.at_ms,
                kind: format!("{:?}", a.kind).to_lowercase(),
                dimension: a.dimension.as_str().to_string(),
                key: a.key.clone(),
                window: a.window.as_str().to_string(),
                answer_rate: Some(a.answer_rate),
                offered: a.offered as i64,
                target: a.target,
            };
            let _ = retry(&shared, "SLA alert", || store.insert_alert(&row)).await;
        }
        shared
            .telemetry
            .queued
            .store(rx.len() as u64, Ordering::Relaxed);
    }
}

/// Opens the store, retrying with capped backoff, and attaches it.
async fn connect_until_up(url: &str, shared: &Shared) -> Store {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        tokio::time::sleep(backoff).await;
        attempt += 1;
        let opened = match Store::open(url).await {
            Ok(store) => super::attach(shared, store.clone()).await.map(|()| store),
            Err(e) => Err(e),
        };
        match opened {
            Ok(store) => {
                tracing::info!(
                    attempts = attempt,
                    "database reachable again: writing the waiting records"
                );
                return store;
            }
            Err(e) => {
                shared
                    .telemetry
                    .write_errors
                    .fetch_add(1, Ordering::Relaxed);
                if attempt.is_power_of_two() {
                    tracing::warn!(error = %e, attempt, "database still unavailable");
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Runs `op` until it succeeds (`Some`) or the database refuses it outright
/// (`None`). Transient failures are retried forever with capped backoff.
async fn retry<T, F, Fut>(shared: &Shared, what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(v) => {
                if attempt > 0 {
                    tracing::info!(
                        what,
                        attempts = attempt + 1,
                        "database write succeeded again"
                    );
                }
                return Some(v);
            }
            Err(e) => {
                shared
                    .telemetry
                    .write_errors
                    .fetch_add(1, Ordering::Relaxed);
                attempt += 1;
                if !e.is_transient() && attempt >= 3 {
                    tracing::error!(what, error = %e, "database refuses the write");
                    return None;
                }
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::warn!(what, error = %e, attempt, "database write failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
