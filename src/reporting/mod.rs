//! The reporting service: turns finished calls into answer-rate figures, metrics
//! and database rows, off the signalling path.
//!
//! ```text
//!  SIP task ── Recorder::finished ──► classify (sla/) ─► Tracker (live windows)
//!                     │                                  Telemetry (/metrics)
//!                     └─ try_send ─► bounded queue ─► writer task ─► store/ (batched)
//!  ticker (1 s) ─► Tracker::advance / poll_alerts ─► log, store, webhook task
//! ```
//!
//! The queue policy when the database is slower than the calls: the SIP task never
//! waits. A finished call that does not fit is held in order in memory, and new
//! calls are refused (`503`, reason `store.backlog`) until the queue is half empty.
//! Calls turned away meanwhile still count (offered and failed, on their line, with
//! a callback pending), so a stalled database never flatters the answer rate.
//! Records of requests refused before reaching any line (unknown numbers,
//! scanners) are dropped while the queue is full. Held records are capped at
//! [`HELD_FACTOR`] × the queue's capacity; past that (a flood during a long stall)
//! further records are dropped too. Every drop is counted in
//! `hotline_store_dropped_total` and logged; the live figures count every call
//! either way.

mod alerts;
pub mod callbacks;
mod live;
pub mod report;
pub mod telemetry;
mod writer;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cdr::EventKind;
use crate::sla::{self, Outcome, SlaConfig, Tracker};
use crate::store::{CallFilter, CallWrite, IntervalRow, Store, StoreError, TicketWrite};
use crate::tickets::{self, Stub, deliver};
pub use live::{finalize_orphans, portable_binding};
pub use telemetry::Telemetry;

/// Held records beyond this many times the queue's capacity are dropped (loudly).
pub const HELD_FACTOR: usize = 10;

/// What the writer task is given.
#[derive(Debug)]
enum Item {
    /// A finished call with its intervals and its stub's final revision.
    Call(Box<CallWrite>),
    /// A stub opened by a call just offered.
    TicketOpen(TicketWrite),
    /// A call just offered, in progress on this node.
    LiveOpen(crate::store::LiveCall),
    /// A call in progress answered: (id, agent, answered_by, at_ms).
    LiveAnswered(String, Option<String>, String, i64),
    /// An agent's bindings after a REGISTER (none: unregistered).
    Registrations(String, Vec<crate::store::RegistrationRow>),
    Alert(sla::Alert),
    /// A callback attempt started or ended.
    Callback(crate::cdr::CallbackEvent),
}

/// What HTTP reads: the live figures, the counters and the store.
#[derive(Debug)]
pub struct Shared {
    tracker: Mutex<Tracker>,
    pub telemetry: Telemetry,
    /// Ticket delivery counters.
    pub tickets: Arc<deliver::DeliveryStats>,
    /// Set once the database is open (at start, or later if it was down).
    store: OnceLock<Store>,
    pub sla: SlaConfig,
    /// Reports' local time (the dialplan's `utc_offset` at start).
    pub zone: report::Zone,
    /// This node's name (see [`ReportingConfig::node`]).
    pub node: String,
    pub clustered: bool,
    /// Ticket settings (an orphaned call's stub is delivered like any other).
    pub deliver_tickets: bool,
    /// Breach alerts go out from here (alone: always; in a cluster: only from
    /// the lease holder, so an alert goes out once, not once per node).
    pub sends_alerts: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The store, once connected; `None` without a database or while connecting.
    pub fn store(&self) -> Option<&Store> {
        self.store.get()
    }

    /// The live tracker (held briefly; never across an await).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ReportingConfig {
    pub sla: SlaConfig,
    /// `None`: no store (records only feed the live figures).
    pub database: Option<String>,
    pub queue_capacity: usize,
    pub batch_max: usize,
    /// Work-order stubs: where they are delivered (none: kept in the store).
    pub tickets: deliver::TicketsConfig,
    /// Minutes east of UTC of reports' local days (the dialplan's `utc_offset`).
    pub utc_offset_minutes: i32,
    /// This node's name (`[cluster] node`; `local` alone): its calls in
    /// progress are kept under it, and closed by it when it starts again.
    pub node: String,
    /// Part of a cluster: other nodes' open stubs are theirs, not closed at start.
    pub clustered: bool,
}

/// The running service: the SIP task's [`Recorder`], HTTP's [`Shared`], and the
/// tasks to wait for at shutdown.
#[derive(Debug)]
pub struct Reporting {
    pub recorder: Recorder,
    pub shared: Arc<Shared>,
    pub writer: Option<JoinHandle<()>>,
}

/// Opens the store, replays the last 24 hours into the live figures, and starts
/// the writer, the alert ticker and the webhook sender. A database that cannot be
/// reached yet does not keep the hotline down: calls are taken, their records wait
/// in the queue (then `503 store.backlog`), and the writer keeps connecting. A
/// database that refuses us (bad URL, credentials, schema) is an error.
pub async fn start(cfg: ReportingConfig) -> Result<Reporting, StoreError> {
    let shared = Arc::new(Shared {
        tracker: Mutex::new(Tracker::new(cfg.sla.clone())),
        telemetry: Telemetry::default(),
        tickets: Arc::default(),
        store: OnceLock::new(),
        sla: cfg.sla.clone(),
        zone: report::Zone {
            offset_minutes: cfg.utc_offset_minutes,
        },
        node: cfg.node.clone(),
        clustered: cfg.clustered,
        deliver_tickets: cfg.tickets.url.is_some(),
        sends_alerts: std::sync::atomic::AtomicBool::new(!cfg.clustered),
    });
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let connect = match &cfg.database {
        None => None,
        Some(url) => match Store::open(url).await {
            Ok(store) => match attach(&shared, store.clone()).await {
                Ok(()) => Some(writer::Connect::Ready(store)),
                Err(e) if e.is_transient() => {
                    tracing::error!(error = %e, "database failed during the replay at start: taking calls, connecting again in the background");
                    Some(writer::Connect::Pending(url.clone()))
                }
                Err(e) => return Err(e),
            },
            Err(e) if e.is_transient() => {
                tracing::error!(error = %e, "database unavailable at start: taking calls, their records wait; connecting again in the background");
                Some(writer::Connect::Pending(url.clone()))
            }
            Err(e) => return Err(e),
        },
    };
    // The first tick reports what changed since the last alert sent before the
    // restart (a breach that opened, or one that recovered meanwhile).
    shared.tracker().advance(crate::util::time::unix_ms());
    let tickets_cfg = cfg.tickets.clone();
    let writer = connect.map(|c| {
        tokio::spawn(writer::run(
            c,
            rx,
            shared.clone(),
            cfg.batch_max,
            tickets_cfg,
        ))
    });
    let webhook = alerts::spawn_webhook(cfg.sla.webhook.clone(), shared.clone());
    tokio::spawn(alerts::ticker(shared.clone(), tx.downgrade(), webhook));
    let recorder = Recorder {
        shared: shared.clone(),
        tickets: cfg.tickets.enabled,
        deliver_tickets: cfg.tickets.url.is_some(),
        sla: cfg.sla,
        tx: writer.is_some().then_some(tx),
        capacity: cfg.queue_capacity,
        held: VecDeque::new(),
    };
    Ok(Reporting {
        recorder,
        shared,
        writer,
    })
}

/// Replays the last 24 hours from a newly opened store into the live figures,
/// puts back the open breaches, and makes the store visible to HTTP.
pub(super) async fn attach(shared: &Shared, store: Store) -> Result<(), StoreError> {
    let now = crate::util::time::unix_ms();
    let replayed = replay(&store, shared, now).await?;
    restore_breaches(&store, shared, now).await?;
    // This node's calls cut short by its last stop get a record and a callback.
    live::finalize_orphans(shared, &store, None).await?;
    if !shared.clustered {
        // Stubs from before live calls were kept (one node per database then).
        close_interrupted(&store, now).await?;
    }
    tracing::info!(
        backend = store.backend().as_str(),
        replayed,
        "call records store open; last 24 h replayed"
    );
    let _ = shared.store.set(store);
    Ok(())
}

/// Rebuilds the live answer-rate windows from the store (the last 24 hours)
/// and the open breaches from the stored alerts: a cluster node taking over
/// sees the calls the other node took, and re-sends no alert it already sent.
/// Call it when this node records no calls of its own (standby, or right
/// before it starts answering).
pub async fn refresh_live(shared: &Shared, store: &Store) -> Result<usize, StoreError> {
    let now = crate::util::time::unix_ms();
    *shared.tracker() = Tracker::new(shared.sla.clone());
    let n = replay(store, shared, now).await?;
    restore_breaches(store, shared, now).await?;
    shared.tracker().advance(now);
    Ok(n)
}

/// Gives the stubs still open after [`live::finalize_orphans`] (calls from
/// before live calls were kept) their final revision (`interrupted`). Alone
/// only: in a cluster an open stub may be another node's call in progress.
async fn close_interrupted(store: &Store, now: i64) -> Result<(), StoreError> {
    loop {
        let open = store.open_stubs(1000).await?;
        if open.is_empty() {
            return Ok(());
        }
        let n = open.len();
        let mut writes = Vec::with_capacity(n);
        for (id, json) in open {
            let Ok(stub) = serde_json::from_str::<Stub>(&json) else {
                tracing::error!(ticket = %id, "stored stub unreadable; left open");
                continue;
            };
            let done = tickets::interrupted(&stub, now);
            // Delivered if the open revision was (its outbox entry says so).
            let deliver = store
                .ticket(&id)
                .await?
                .is_some_and(|t| t.delivery != "local");
            writes.push(ticket_write(&done, now, deliver));
        }
        if writes.is_empty() {
            return Ok(());
        }
        store.open_tickets(&writes).await?;
        tracing::warn!(
            stubs = writes.len(),
            "work orders of calls cut short by the restart closed as interrupted"
        );
        if n < 1000 {
            return Ok(());
        }
    }
}

/// A stub revision as the store keeps it.
fn ticket_write(stub: &Stub, at_ms: i64, deliver: bool) -> TicketWrite {
    TicketWrite {
        id: stub.id.clone(),
        line: stub.line.clone(),
        state: stub.state.as_str().to_string(),
        revision: i64::from(stub.revision),
        at_ms,
        stub: serde_json::to_string(stub).unwrap_or_default(),
        deliver,
    }
}

/// Puts back the breaches that were open when the gateway stopped: the last stored
/// alert of each key and window says whether it was in breach.
async fn restore_breaches(store: &Store, shared: &Shared, now: i64) -> Result<(), StoreError> {
    // A breach older than this with no recovery is judged afresh.
    const LOOKBACK_MS: i64 = 7 * 86_400_000;
    let mut last = std::collections::HashMap::new();
    for a in store.alerts(now - LOOKBACK_MS).await? {
        last.insert((a.dimension.clone(), a.key.clone(), a.window.clone()), a);
    }
    for ((dimension, key, window), a) in last {
        let (Some(d), Some(w)) = (
            sla::Dimension::parse(&dimension),
            sla::Window::parse(&window),
        ) else {
            continue;
        };
        if a.kind == "breach" {
            shared.tracker().restore_breach(d, &key, w, a.at_ms);
        }
    }
    Ok(())
}

/// Feeds the calls of the last 24 hours into a fresh tracker.
async fn replay(store: &Store, shared: &Shared, now: i64) -> Result<usize, StoreError> {
    let sla = &shared.sla;
    const PAGE: i64 = 20_000;
    let mut from = now - sla::Window::H24.duration_ms();
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    loop {
        let page = store
            .calls(&CallFilter {
                from_ms: Some(from),
                limit: PAGE,
                ascending: true,
                ..Default::default()
            })
            .await?;
        let full = page.len() as i64 == PAGE;
        let mut tracker = shared.tracker();
        for r in &page {
            // Pages overlap at their boundary millisecond.
            if seen.insert(r.id.clone())
                && let Some(c) = sla::classify(r, sla)
            {
                tracker.record(&c);
                n += 1;
            }
            from = from.max(r.ended_at_ms);
        }
        drop(tracker);
        if !full {
            return Ok(n);
        }
    }
}

/// A new dialplan runs: its calendar goes to the metrics, and its warnings
/// (`dialplan::warnings`) to the log.
pub fn plan_reloaded(shared: &Shared, plan: &crate::dialplan::Dialplan, answer_within_s: u32) {
    shared.telemetry.set_calendar(plan);
    let now = crate::util::time::unix_ms();
    let today = shared.zone.date(now);
    for w in crate::dialplan::warnings(plan, answer_within_s, today) {
        tracing::warn!("dialplan: {w}");
    }
}

/// The SIP task's end of the service. Never waits.
#[derive(Debug)]
pub struct Recorder {
    shared: Arc<Shared>,
    /// Stubs are kept (`[tickets] enabled`).
    tickets: bool,
    /// A ticket URL is configured: stub revisions go to the outbox.
    deliver_tickets: bool,
    sla: SlaConfig,
    tx: Option<mpsc::Sender<Item>>,
    capacity: usize,
    /// Records that did not fit in the queue, oldest first.
    held: VecDeque<Item>,
}

impl Recorder {
    /// Notes a call just offered as in progress on this node, and opens its
    /// work-order stub.
    pub fn offered(&mut self, offer: &crate::cdr::Offer) {
        if self.tx.is_none() {
            return;
        }
        let live = Item::LiveOpen(crate::store::LiveCall {
            id: offer.id.clone(),
            node: self.shared.node.clone(),
            at_ms: offer.at_ms,
            offer: serde_json::to_string(offer).unwrap_or_default(),
            agent: None,
            answered_by: None,
            answered_at_ms: None,
        });
        self.queue(live);
        if self.tickets {
            let stub = tickets::open(offer);
            self.queue(Item::TicketOpen(ticket_write(
                &stub,
                offer.at_ms,
                self.deliver_tickets,
            )));
        }
        self.update_gauges();
    }

    /// A call in progress was answered (clustered): its live row says who holds
    /// the agent now.
    pub fn answered(&mut self, a: &crate::cdr::Answer) {
        if self.tx.is_none() {
            return;
        }
        self.queue(Item::LiveAnswered(
            a.id.clone(),
            a.agent.clone(),
            a.answered_by.clone(),
            a.at_ms,
        ));
    }

    /// A callback attempt started or ended, for the missed call's state.
    pub fn callback(&mut self, ev: crate::cdr::CallbackEvent) {
        if self.tx.is_none() {
            return;
        }
        self.queue(Item::Callback(ev));
    }

    /// An agent's bindings after a REGISTER, for the node that takes over.
    pub fn registered(&mut self, user: &str, bindings: &[crate::registrar::PortableBinding]) {
        if self.tx.is_none() {
            return;
        }
        let rows = bindings.iter().map(live::registration_row).collect();
        self.queue(Item::Registrations(user.to_string(), rows));
    }

    fn queue(&mut self, item: Item) {
        if self.held.is_empty() {
            self.send_or_hold(item, true);
        } else {
            self.hold(item);
        }
    }

    /// Counts a finished call and queues it for the store.
    pub fn finished(&mut self, record: &crate::call::FinishedCall) {
        let mut cdr = record.to_cdr();
        let classified = sla::classify(&cdr, &self.sla);
        let outcome = classified.as_ref().map(|c| c.outcome);
        cdr.outcome = outcome.map(|o| o.as_str().to_string());
        // Missed calls are owed a callback; short abandons per `[sla]`.
        cdr.callback_pending |= outcome == Some(Outcome::Abandoned)
            || (self.sla.callback_short_abandoned && outcome == Some(Outcome::ShortAbandoned));
        let t = &self.shared.telemetry;
        t.count_outcome(outcome);
        if let (Some(offered), Some(answered)) = (cdr.offered_at_ms, cdr.answered_at_ms) {
            t.wait.observe_ms(answered - offered);
        }
        if let Some(ringback) = cdr.first(EventKind::Ringback) {
            t.post_dial_delay
                .observe_ms(ringback.at_ms - cdr.received_at_ms);
        }
        let rows = match &classified {
            Some(c) => {
                self.shared.tracker().record(c);
                Tracker::interval_rows(c)
                    .into_iter()
                    .map(to_store_row)
                    .collect()
            }
            None => Vec::new(),
        };
        if self.tx.is_none() {
            return;
        }
        let ticket = tickets::complete(&cdr, record.line_name.clone(), record.deadline.clone())
            .filter(|_| self.tickets)
            .map(|stub| tickets::Stub {
                transfer_number: record.transfer_number.clone(),
                ..stub
            })
            .map(|stub| ticket_write(&stub, cdr.ended_at_ms, self.deliver_tickets));
        let item = Item::Call(Box::new(CallWrite {
            record: cdr,
            intervals: rows,
            ticket,
        }));
        if self.held.is_empty() {
            self.send_or_hold(item, outcome.is_some());
        } else if outcome.is_some() {
            self.hold(item);
        } else {
            self.drop_refused();
        }
        self.update_gauges();
    }

    /// Moves held records into the queue as room appears. Call it often while
    /// [`Recorder::backlogged`].
    pub fn pump(&mut self) {
        let Some(tx) = &self.tx else {
            return;
        };
        while let Some(item) = self.held.pop_front() {
            match tx.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => {
                    self.held.push_front(item);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!("call-record writer stopped: held records cannot be written");
                    self.held.clear();
                    break;
                }
            }
        }
        self.update_gauges();
    }

    /// Whether new calls should be refused: records are held, or the queue has not
    /// drained below half since it was full.
    pub fn backlogged(&self) -> bool {
        self.shared.telemetry.backlogged.load(Ordering::Relaxed)
    }

    /// Sends every held record, waiting for room: for shutdown.
    pub async fn close(mut self) {
        if let Some(tx) = self.tx.take() {
            for item in self.held.drain(..) {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        }
    }

    fn send_or_hold(&mut self, item: Item, offered: bool) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                if offered {
                    self.hold(item);
                } else {
                    self.drop_refused();
                }
                self.shared
                    .telemetry
                    .backlogged
                    .store(true, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("call-record writer stopped: record not written");
            }
        }
    }

    /// Keeps a record until the queue has room, up to the cap.
    fn hold(&mut self, item: Item) {
        if self.held.len() < self.capacity.saturating_mul(HELD_FACTOR) {
            self.held.push_back(item);
            return;
        }
        let n = self
            .shared
            .telemetry
            .dropped
            .fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::error!(
                dropped = n + 1,
                held = self.held.len(),
                "store stalled too long: call record dropped (the live figures still count it)"
            );
        }
    }

    fn drop_refused(&self) {
        let n = self
            .shared
            .telemetry
            .dropped
            .fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::warn!(
                dropped = n + 1,
                "store queue full: record of a refused request dropped (offered calls are kept)"
            );
        }
    }

    fn update_gauges(&self) {
        let t = &self.shared.telemetry;
        let free = self.tx.as_ref().map_or(self.capacity, |tx| tx.capacity());
        t.queued
            .store((self.capacity - free) as u64, Ordering::Relaxed);
        t.held.store(self.held.len() as u64, Ordering::Relaxed);
        if t.backlogged.load(Ordering::Relaxed) && self.held.is_empty() && free * 2 >= self.capacity
        {
            t.backlogged.store(false, Ordering::Relaxed);
            tracing::info!("store queue drained: accepting new calls again");
        } else if !self.held.is_empty() && !t.backlogged.swap(true, Ordering::Relaxed) {
            tracing::warn!("store queue full: refusing new calls until it drains");
        }
    }
}

fn to_store_row(r: sla::IntervalRow) -> IntervalRow {
    let c = r.counters;
    let n = |v: u64| v as i64;
    IntervalRow {
        start_ms: r.start_ms,
        dimension: r.dimension.as_str().to_string(),
        key: r.key,
        offered: n(c.offered),
        answered: n(c.answered),
        answered_within: n(c.answered_within),
        abandoned: n(c.abandoned),
        short_abandoned: n(c.short_abandoned),
        transferred_out: n(c.transferred_out),
        failed: n(c.failed),
        overflowed: n(c.overflowed),
    }
}

/// Rebuilds the persisted intervals in `[from_ms, to_ms)` from the stored raw
/// events, with today's formula. Returns (calls read, rows written). Memory is one
/// row per (interval, dimension, key), whatever the number of calls. Run it with
/// the gateway stopped, or over a range that no longer takes calls: increments the
/// writer commits meanwhile in that range would be replaced.
pub async fn recompute(
    store: &Store,
    sla_cfg: &SlaConfig,
    from_ms: i64,
    to_ms: i64,
) -> Result<(usize, usize), StoreError> {
    const PAGE: i64 = 20_000;
    let from_ms = sla::interval_start_ms(from_ms);
    let to_ms = sla::interval_start_ms(to_ms + sla::INTERVAL_MS - 1);
    let mut sums: std::collections::HashMap<(i64, String, String), IntervalRow> =
        std::collections::HashMap::new();
    let mut calls = 0;
    let mut cursor = from_ms;
    // Pages overlap at their boundary millisecond: remember only those ids.
    let mut at_cursor: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let page = store
            .calls(&CallFilter {
                from_ms: Some(cursor),
                to_ms: Some(to_ms),
                limit: PAGE,
                ascending: true,
                ..Default::default()
            })
            .await?;
        let full = page.len() as i64 == PAGE;
        let mut next_at_cursor = std::collections::HashSet::new();
        let last = page.last().map(|r| r.ended_at_ms).unwrap_or(cursor);
        let mut fresh = 0;
        for r in &page {
            if r.ended_at_ms == cursor && at_cursor.contains(&r.id) {
                continue;
            }
            fresh += 1;
            if r.ended_at_ms == last {
                next_at_cursor.insert(r.id.clone());
            }
            calls += 1;
            if let Some(c) = sla::classify(r, sla_cfg) {
                for row in Tracker::interval_rows(&c).into_iter().map(to_store_row) {
                    let k = (row.start_ms, row.dimension.clone(), row.key.clone());
                    let sum = sums.entry(k).or_insert_with(|| IntervalRow {
                        start_ms: row.start_ms,
                        dimension: row.dimension.clone(),
                        key: row.key.clone(),
                        ..Default::default()
                    });
                    add_row(sum, &row);
                }
            }
        }
        // (`fresh == 0`: a whole page of calls that ended in one millisecond.)
        if !full || fresh == 0 {
            break;
        }
        if last == cursor {
            next_at_cursor.extend(at_cursor);
        }
        cursor = last;
        at_cursor = next_at_cursor;
    }
    let rows: Vec<IntervalRow> = sums.into_values().collect();
    let n = rows.len();
    store.replace_intervals(from_ms, to_ms, &rows).await?;
    Ok((calls, n))
}

fn add_row(sum: &mut IntervalRow, r: &IntervalRow) {
    sum.offered += r.offered;
    sum.answered += r.answered;
    sum.answered_within += r.answered_within;
    sum.abandoned += r.abandoned;
    sum.short_abandoned += r.short_abandoned;
    sum.transferred_out += r.transferred_out;
    sum.failed += r.failed;
    sum.overflowed += r.overflowed;
}
