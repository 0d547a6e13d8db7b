//! Delivery of stub revisions to the ticket system: at least once, in revision
//! order per stub, with an idempotency key, retries with exponential backoff and
//! jitter (and the receiver's `Retry-After`), and a dead-letter state after
//! `max_attempts` that raises an alert. The outbox in the store is the only state,
//! so a restart resumes where the last run stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::task::JoinSet;

use crate::store::{Attempt, OutboxItem, Store};
use crate::util::hmac::{hex, hmac_sha256};
use crate::util::post;

/// `[tickets]`: where stubs go and how hard to try. Every key is optional; with no
/// `url` the stubs stay in the gateway's store (`GET /api/v1/tickets`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// Open a stub for every call offered (default). `false`: no stubs at all.
    pub enabled: bool,
    /// The ticket system's endpoint (`http://…` or `https://…`); each revision is POSTed here.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// Signs each body: `X-Hotline-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    pub hmac_secret: Option<String>,
    pub timeout_ms: u64,
    /// Attempts before an entry is dead-lettered (and an alert raised).
    pub max_attempts: u32,
    pub backoff_first_ms: u64,
    pub backoff_max_ms: u64,
    /// Deliveries in flight at once (different stubs; one stub is always in order).
    pub concurrency: usize,
    /// Where a dead-lettered delivery is announced (POST, JSON), besides the log and
    /// `hotline_tickets_dead_total`.
    pub alert_webhook: Option<String>,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            enabled: true,
            url: None,
            bearer_token: None,
            hmac_secret: None,
            timeout_ms: 5_000,
            max_attempts: 12,
            backoff_first_ms: 500,
            backoff_max_ms: 60_000,
            concurrency: 8,
            alert_webhook: None,
        }
    }
}

impl TicketsConfig {
    /// Checks values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, url) in [("url", &self.url), ("alert_webhook", &self.alert_webhook)] {
            if let Some(u) = url
                && !u.starts_with("http://")
                && !u.starts_with("https://")
            {
                return Err(format!(
                    "{key}: must be an http:// or https:// URL, got {u:?}"
                ));
            }
        }
        if !self.enabled && self.url.is_some() {
            return Err("enabled: a url is set but stubs are disabled (enabled = false)".into());
        }
        if self.max_attempts == 0 || self.concurrency == 0 || self.timeout_ms == 0 {
            return Err(
                "max_attempts: max_attempts, concurrency and timeout_ms must be positive".into(),
            );
        }
        if self.backoff_first_ms == 0 || self.backoff_max_ms < self.backoff_first_ms {
            return Err("backoff_first_ms: need 0 < backoff_first_ms <= backoff_max_ms".into());
        }
        Ok(())
    }
}

/// Delivery counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
    /// Entries waiting, and dead-lettered, as last counted.
    pub pending: AtomicU64,
    pub dead_letters: AtomicU64,
}

/// How long to wait before attempt `attempts + 1`: doubling from the first
/// backoff up to the cap, with ±50 % jitter, and no sooner than `Retry-After`.
pub fn backoff_ms(
    cfg: &TicketsConfig,
    attempts: u32,
    retry_after_s: Option<u64>,
    random: u64,
) -> u64 {
    let exp = cfg
        .backoff_first_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
        .min(cfg.backoff_max_ms);
    // Jitter in [exp/2, exp]: retries from many stubs spread out.
    let jittered = exp / 2 + random % (exp / 2 + 1);
    // Retry-After is honoured up to a day (a bogus value must not stall a stub).
    let asked = retry_after_s.unwrap_or(0).min(86_400) * 1000;
    jittered.max(asked)
}

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    /// The receiver refuses this body for good: no point trying again.
    Reject,
}

/// Judges a status code: 2xx and 409 (the receiver already has this revision) are
/// delivered; 400, 413, 415 and 422 (the receiver refuses this body) are rejected at
/// once; everything else, including 401/403/404 (a token or URL an operator will
/// fix), is retried until `max_attempts`.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 | 409 => Verdict::Delivered,
        400 | 413 | 415 | 422 => Verdict::Reject,
        _ => Verdict::Retry,
    }
}

/// Runs forever: delivers due outbox entries.
pub async fn run(store: Store, cfg: TicketsConfig, stats: Arc<DeliveryStats>) {
    let Some(url) = cfg.url.clone() else {
        return;
    };
    let mut rng = crate::util::seed::process_seed() | 1;
    let client = Arc::new(post::Client::default());
    let mut idle = Duration::from_millis(50);
    let mut counted = std::time::Instant::now() - Duration::from_secs(10);
    loop {
        if counted.elapsed() >= Duration::from_secs(1) {
            counted = std::time::Instant::now();
            if let Ok((pending, dead)) = store.outbox_counts().await {
                stats.pending.store(pending as u64, Ordering::Relaxed);
                stats.dead_letters.store(dead as u64, Ordering::Relaxed);
            }
        }
        let now = crate::util::time::unix_ms();
        let due = match store.due_outbox(now, (cfg.concurrency * 32) as i64).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "ticket outbox unreadable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(idle).await;
            idle = (idle * 2).min(Duration::from_millis(500));
            continue;
        }
        idle = Duration::from_millis(50);
        let mut set = JoinSet::new();
        let mut results = Vec::with_capacity(due.len());
        for item in due {
            while set.len() >= cfg.concurrency {
                if let Some(Ok(a)) = set.join_next().await {
                    results.push(a);
                }
            }
            // xorshift64: jitter needs no cryptographic randomness.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let (cfg, stats, url, client) =
                (cfg.clone(), stats.clone(), url.clone(), client.clone());
            let random = rng;
            set.spawn(async move { attempt(&client, &cfg, &stats, &url, item, random).await });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(a) = r {
                results.push(a);
            }
        }
        // One transaction for the round. If it fails the entries stay due and are
        // sent again: the idempotency key makes the repeat harmless.
        if let Err(e) = store.outbox_attempts(&results).await {
            tracing::warn!(error = %e, attempts = results.len(), "cannot record delivery attempts; they will be repeated");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// POSTs one entry and judges the answer.
async fn attempt(
    client: &post::Client,
    cfg: &TicketsConfig,
    stats: &DeliveryStats,
    url: &str,
    item: OutboxItem,
    random: u64,
) -> Attempt {
    let body = Bytes::from(item.body.clone());
    let mut headers = vec![
        (
            "idempotency-key",
            format!("{}:{}", item.ticket_id, item.revision),
        ),
        ("x-hotline-ticket", item.ticket_id.clone()),
        ("x-hotline-ticket-revision", item.revision.to_string()),
    ];
    if let Some(token) = &cfg.bearer_token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    if let Some(secret) = &cfg.hmac_secret {
        let sig = hex(&hmac_sha256(secret.as_bytes(), &body));
        headers.push(("x-hotline-signature", format!("sha256={sig}")));
    }
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let (status, retry_after, error) = match client.post_json(url, body, &headers, timeout).await {
        Ok(a) => (
            Some(a.status),
            a.retry_after_s,
            format!("HTTP {}", a.status),
        ),
        Err(e) => (None, None, e.to_string()),
    };
    let now = crate::util::time::unix_ms();
    let attempts = item.attempts as u32 + 1;
    let mut result = Attempt {
        ticket_id: item.ticket_id.clone(),
        revision: item.revision,
        delivered: false,
        status: status.map(i64::from),
        error: None,
        next_at_ms: None,
        at_ms: now,
    };
    if status.map(verdict) == Some(Verdict::Delivered) {
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        result.delivered = true;
        return result;
    }
    stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
    let give_up = status.map(verdict) == Some(Verdict::Reject) || attempts >= cfg.max_attempts;
    result.error = Some(error.clone());
    if give_up {
        stats.dead.fetch_add(1, Ordering::Relaxed);
        tracing::error!(ticket = %item.ticket_id, revision = item.revision, attempts, error, "ticket stub dead-lettered: the ticket system did not take it (POST /api/v1/tickets/{{id}}/redrive to try again)");
        alert(cfg, &item, attempts, &error).await;
    } else {
        result.next_at_ms = Some(now + backoff_ms(cfg, attempts, retry_after, random) as i64);
        if attempts == 1 || attempts.is_power_of_two() {
            tracing::warn!(ticket = %item.ticket_id, revision = item.revision, attempts, error, "ticket delivery failed; will retry");
        }
    }
    result
}

/// Announces a dead-lettered delivery on the alert webhook, once.
async fn alert(cfg: &TicketsConfig, item: &OutboxItem, attempts: u32, error: &str) {
    let Some(url) = &cfg.alert_webhook else {
        return;
    };
    let body = serde_json::json!({
        "kind": "ticket_dead_letter",
        "ticket": item.ticket_id,
        "revision": item.revision,
        "attempts": attempts,
        "error": error,
    });
    let body = Bytes::from(body.to_string());
    let key = [(
        "idempotency-key",
        format!("dead:{}:{}", item.ticket_id, item.revision),
    )];
    if let Err(e) = post::post_json(url, body, &key, Duration::from_millis(cfg.timeout_ms)).await {
        tracing::warn!(error = %e, "ticket alert webhook unreachable");
    }
}
