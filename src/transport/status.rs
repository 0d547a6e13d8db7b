//! A lock-free view of the core for the HTTP side: the core task writes, readers
//! read; no lock is ever held across an await.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::call::{Core, Reason};
use crate::reporting::Recorder;

/// Live figures of the SIP core.
#[derive(Debug)]
pub struct Status {
    pub started: Instant,
    pub active_calls: AtomicU64,
    /// [`crate::call::Serving`] as its discriminant (0 active, 1 standby, 2 draining).
    pub serving: std::sync::atomic::AtomicU8,
    pub transactions: AtomicU64,
    pub messages_in: AtomicU64,
    pub parse_errors: AtomicU64,
    pub rejected_requests: AtomicU64,
    /// Strangers' requests answered statelessly / dropped over the rate limit.
    pub strangers_refused: AtomicU64,
    pub strangers_dropped: AtomicU64,
    /// Responses from another address than their request went to (dropped).
    pub foreign_responses: AtomicU64,
    pub stale_events: AtomicU64,
    /// Finished calls by reason, indexed like [`Reason::ALL`].
    pub ended: [AtomicU64; Reason::ALL.len()],
    /// The media relay's counters, once it runs.
    pub media: std::sync::OnceLock<std::sync::Arc<crate::media::relay::Stats>>,
    /// SIP TCP connections open now (accepted and opened).
    pub tcp_open: AtomicU64,
    /// TCP connections closed at once for being over a cap (or not opened).
    pub tcp_refused: AtomicU64,
    /// TCP connections closed for silence: no first message in time, or idle.
    pub tcp_closed_silent: AtomicU64,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            started: Instant::now(),
            active_calls: AtomicU64::new(0),
            serving: std::sync::atomic::AtomicU8::new(0),
            transactions: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            rejected_requests: AtomicU64::new(0),
            strangers_refused: AtomicU64::new(0),
            strangers_dropped: AtomicU64::new(0),
            foreign_responses: AtomicU64::new(0),
            stale_events: AtomicU64::new(0),
            ended: std::array::from_fn(|_| AtomicU64::new(0)),
            media: Default::default(),
            tcp_open: AtomicU64::new(0),
            tcp_refused: AtomicU64::new(0),
            tcp_closed_silent: AtomicU64::new(0),
        }
    }
}

impl Status {
    /// Copies the core's figures and drains its finished-call records.
    pub(crate) fn observe(&self, core: &mut Core, recorder: Option<&mut Recorder>) {
        let mut recorder = recorder;
        // Offers first: a stub opens before a short call's final revision.
        while let Some(o) = core.poll_offer() {
            if let Some(rec) = recorder.as_deref_mut() {
                rec.offered(&o);
            }
        }
        while let Some(a) = core.poll_answer() {
            if let Some(rec) = recorder.as_deref_mut() {
                rec.answered(&a);
            }
        }
        while let Some(ev) = core.poll_callback() {
            if let Some(rec) = recorder.as_deref_mut() {
                rec.callback(ev);
            }
        }
        while let Some((user, bindings)) = core.poll_registration() {
            if let Some(rec) = recorder.as_deref_mut() {
                rec.registered(&user, &bindings);
            }
        }
        while let Some(r) = core.poll_record() {
            if let Some(i) = Reason::ALL.iter().position(|x| *x == r.reason) {
                self.ended[i].fetch_add(1, Ordering::Relaxed);
            }
            if let Some(rec) = recorder.as_deref_mut() {
                rec.finished(&r);
            }
        }
        if let Some(rec) = recorder {
            if rec.backlogged() {
                rec.pump();
            }
            core.set_store_backlog(rec.backlogged());
        }
        let s = core.stats();
        self.active_calls
            .store(core.active_calls() as u64, Ordering::Relaxed);
        self.serving.store(core.serving() as u8, Ordering::Relaxed);
        self.transactions
            .store(core.transactions() as u64, Ordering::Relaxed);
        self.messages_in.store(s.messages_in, Ordering::Relaxed);
        self.parse_errors.store(s.parse_errors, Ordering::Relaxed);
        self.rejected_requests
            .store(s.rejected_requests, Ordering::Relaxed);
        self.strangers_refused
            .store(s.strangers.refused, Ordering::Relaxed);
        self.strangers_dropped
            .store(s.strangers.dropped, Ordering::Relaxed);
        self.foreign_responses
            .store(s.foreign_responses, Ordering::Relaxed);
        self.stale_events.store(s.stale_events, Ordering::Relaxed);
    }

    /// Whether the core answers calls now.
    pub fn serving(&self) -> crate::call::Serving {
        match self.serving.load(Ordering::Relaxed) {
            0 => crate::call::Serving::Active,
            1 => crate::call::Serving::Standby,
            _ => crate::call::Serving::Draining,
        }
    }

    /// Finished calls per reason code.
    pub fn ended_by_reason(&self) -> Vec<(&'static str, u64)> {
        Reason::ALL
            .iter()
            .zip(&self.ended)
            .map(|(r, n)| (r.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }
}
