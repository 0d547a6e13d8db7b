//! Breach and recovery alerts: the once-a-second ticker that moves the live
//! windows and collects transitions, and the webhook sender.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Item, Shared};
use crate::sla::{Alert, AlertKind};
use crate::util::post;

const TICK: Duration = Duration::from_secs(1);
const WEBHOOK_QUEUE: usize = 256;
const WEBHOOK_TRIES: u32 = 5;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Advances the live windows every second and hands out their transitions.
pub(super) async fn ticker(
    shared: Arc<Shared>,
    writer: mpsc::WeakSender<Item>,
    webhook: Option<mpsc::Sender<Alert>>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::util::time::unix_ms();
        let alerts = {
            let mut t = shared.tracker();
            t.advance(now);
            t.poll_alerts(now)
        };
        // A standby keeps its windows moving but leaves alerts to the holder.
        if !shared.sends_alerts.load(Ordering::Relaxed) {
            continue;
        }
        for a in alerts {
            let t = &shared.telemetry;
            match a.kind {
                AlertKind::Breach => {
                    t.alerts_breach.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(dimension = a.dimension.as_str(), key = %a.key, window = a.window.as_str(), answer_rate = a.answer_rate, offered = a.offered, target = a.target, "answer rate below target: SLA breach");
                }
                AlertKind::Recovery => {
                    t.alerts_recovery.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(dimension = a.dimension.as_str(), key = %a.key, window = a.window.as_str(), answer_rate = a.answer_rate, offered = a.offered, "answer rate back above target: SLA recovered");
                }
            }
            if let Some(w) = &webhook
                && w.try_send(a.clone()).is_err()
            {
                t.webhook_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("webhook queue full: alert not posted");
            }
            if let Some(writer) = writer.upgrade()
                && writer.try_send(Item::Alert(a)).is_err()
            {
                tracing::warn!("store queue full: alert kept in the log only");
            }
        }
    }
}

/// Starts the webhook sender when a URL is configured.
pub(super) fn spawn_webhook(
    url: Option<String>,
    shared: Arc<Shared>,
) -> Option<mpsc::Sender<Alert>> {
    let url = url?;
    let (tx, mut rx) = mpsc::channel::<Alert>(WEBHOOK_QUEUE);
    tokio::spawn(async move {
        while let Some(a) = rx.recv().await {
            deliver(&url, &a, &shared).await;
        }
    });
    Some(tx)
}

/// POSTs one alert, retrying a few times. The idempotency key lets the receiver
/// drop a repeat when an answer was lost.
async fn deliver(url: &str, a: &Alert, shared: &Shared) {
    let body = Bytes::from(serde_json::to_vec(a).unwrap_or_default());
    let key = format!(
        "{}:{}:{}:{}:{}",
        a.dimension.as_str(),
        a.key,
        a.window.as_str(),
        serde_json::to_value(a.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        a.at_ms
    );
    let mut backoff = Duration::from_millis(500);
    for attempt in 1..=WEBHOOK_TRIES {
        let headers = [("idempotency-key", key.clone())];
        match post::post_json(url, body.clone(), &headers, WEBHOOK_TIMEOUT).await {
            Ok(ans) if (200..300).contains(&ans.status) => return,
            Ok(ans) => tracing::warn!(
                status = ans.status,
                attempt,
                "SLA webhook refused the alert"
            ),
            Err(e) => tracing::warn!(error = %e, attempt, "SLA webhook unreachable"),
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    shared
        .telemetry
        .webhook_failures
        .fetch_add(1, Ordering::Relaxed);
    tracing::error!(key, "SLA alert not delivered to the webhook");
}
