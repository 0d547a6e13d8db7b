//! The active node's API views in the database, for a standby to serve and
//! for the next holder to take the agents' pauses from.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::Store;
use crate::transport::Control;

/// The agents an agents view shows paused, or about to be (a pause waiting
/// for the call to end), with the pause's reason.
pub fn paused_in(view: &serde_json::Value) -> Vec<(String, String)> {
    let Some(agents) = view["agents"].as_array() else {
        return Vec::new();
    };
    agents
        .iter()
        .filter_map(|a| {
            let id = a["id"].as_str()?;
            let reason = if a["state"] == "paused" {
                a["pause_reason"].as_str()
            } else if a["pending_state"] == "paused" {
                a["pending_reason"].as_str()
            } else {
                return None;
            };
            Some((id.to_string(), reason.unwrap_or("api").to_string()))
        })
        .collect()
}

/// Copies the core's agents and queues views into the database.
pub(super) async fn share_views(
    node: &str,
    store: &Store,
    control: &mpsc::Sender<Control>,
    ask_for: Duration,
) {
    let at_ms = crate::util::time::unix_ms();
    type Ask = fn(tokio::sync::oneshot::Sender<serde_json::Value>) -> Control;
    for (name, ask) in [
        ("agents", Control::Agents as Ask),
        ("queues", Control::Queues as Ask),
    ] {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if control.send(ask(tx)).await.is_err() {
            return;
        }
        let Ok(Ok(view)) = tokio::time::timeout(ask_for, rx).await else {
            return;
        };
        let _ = tokio::time::timeout(
            ask_for,
            store.put_view(name, node, at_ms, &view.to_string()),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::paused_in;

    #[test]
    fn paused_and_about_to_pause_agents_are_read_from_a_view() {
        let view = serde_json::json!({"agents": [
            {"id": "1001", "state": "paused", "pause_reason": "lunch"},
            {"id": "1002", "state": "on_call", "pending_state": "paused", "pending_reason": "training"},
            {"id": "1003", "state": "ready"},
            {"id": "1004", "state": "paused"},
            {"state": "paused"},
        ]});
        assert_eq!(
            paused_in(&view),
            vec![
                ("1001".to_string(), "lunch".to_string()),
                ("1002".to_string(), "training".to_string()),
                ("1004".to_string(), "api".to_string()),
            ]
        );
        assert!(paused_in(&serde_json::json!({"nope": 1})).is_empty());
    }
}
