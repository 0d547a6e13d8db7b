//! The numbers owed a callback, from the store to the call core every few
//! seconds: an agent may dial only those (`call/callback.rs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::transport::Control;

/// How often the list is read again.
const EVERY: Duration = Duration::from_secs(5);
/// Missed calls older than this are no longer called back from the list.
const LOOK_BACK_MS: i64 = 7 * 86_400_000;
/// Most numbers sent (the newest missed calls first).
const MAX: i64 = 100_000;

/// Sends the list until the core's channel closes.
pub async fn feed(shared: Arc<Shared>, control: mpsc::Sender<Control>) {
    loop {
        if let Some(store) = shared.store() {
            let since = crate::util::time::unix_ms() - LOOK_BACK_MS;
            match store.pending_callbacks(since, MAX).await {
                Ok(list) => {
                    if control.send(Control::Callbacks(list)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "callback list not read"),
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
