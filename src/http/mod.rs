//! The HTTP side: health now; metrics, the API and the wallboard build on it.
//! Reads only the lock-free [`Status`]; never touches SIP or SQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::transport::Status;

/// Why the HTTP server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot bind HTTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The router, separate from serving so tests can drive it.
pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(status)
}

/// `GET /healthz`: 200 while the SIP core runs, with its headline figures.
async fn healthz(State(s): State<Arc<Status>>) -> Json<serde_json::Value> {
    let ended: serde_json::Map<String, serde_json::Value> = s
        .ended_by_reason()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    Json(json!({
        "status": "ok",
        "uptime_s": s.started.elapsed().as_secs(),
        "active_calls": s.active_calls.load(Ordering::Relaxed),
        "transactions": s.transactions.load(Ordering::Relaxed),
        "messages_in": s.messages_in.load(Ordering::Relaxed),
        "parse_errors": s.parse_errors.load(Ordering::Relaxed),
        "rejected_requests": s.rejected_requests.load(Ordering::Relaxed),
        "calls_ended": ended,
    }))
}

/// Binds and serves until the future is dropped.
pub async fn serve(addr: SocketAddr, status: Arc<Status>) -> Result<(), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    axum::serve(listener, router(status))
        .await
        .map_err(HttpError::Serve)
}
