//! A stand-in for the hotline's ticket system, for trying the integration and for
//! benchmarks: takes stub revisions (`POST /tickets`), answers `201`, counts them,
//! and honours the idempotency key (a repeat answers `200` and is not counted).
//!
//! `cargo run --release --example ticket_sink -- 127.0.0.1:9100`, then set
//! `[tickets] url = "http://127.0.0.1:9100/tickets"`. `GET /count` answers
//! `{"stubs": N, "revisions": N, "repeats": N}`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

#[derive(Default)]
struct Sink {
    keys: HashSet<String>,
    stubs: HashMap<String, u64>,
    repeats: u64,
}

type Shared = Arc<Mutex<Sink>>;

async fn take(State(sink): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Ok(stub) = serde_json::from_str::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
    if !s.keys.insert(key) {
        s.repeats += 1;
        return StatusCode::OK;
    }
    let id = stub["id"].as_str().unwrap_or_default().to_string();
    *s.stubs.entry(id).or_default() += 1;
    StatusCode::CREATED
}

async fn count(State(sink): State<Shared>) -> Json<serde_json::Value> {
    let s = sink.lock().unwrap_or_else(|p| p.into_inner());
    Json(serde_json::json!({
        "stubs": s.stubs.len(),
        "revisions": s.keys.len(),
        "repeats": s.repeats,
    }))
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sink: Shared = Arc::default();
        let app = Router::new()
            .route("/tickets", post(take))
            .route("/count", get(count))
            .with_state(sink);
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("ticket sink on http://{addr}/tickets");
        axum::serve(listener, app).await
    })
}
