//! The HTTP side: health, the admin API, `/metrics`, the SLA and call-record API
//! and the wallboard. Reads the lock-free [`Status`], asks the SIP core through
//! its control queue, and reads the store through `store/`; never touches SIP
//! messages or SQL.

mod metrics;
mod reports;
mod tickets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::call::api::{AgentAction, ApiError};
use crate::transport::{Control, Status};

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub status: Arc<Status>,
    /// Questions and orders for the SIP core.
    pub control: mpsc::Sender<Control>,
    /// The dialplan folder, for `POST /api/v1/dialplan/reload`.
    pub dialplan_dir: PathBuf,
    /// Live answer-rate figures, counters and the call-record store.
    pub reporting: Arc<crate::reporting::Shared>,
}

/// Why the HTTP server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot bind HTTP on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        /// In the message, not a `source()`: printed once, not twice.
        error: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The router, separate from serving so tests can drive it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(reports::wallboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(reports::metrics))
        .route("/api/v1/sla", get(reports::sla))
        .route("/api/v1/sla/intervals", get(reports::intervals))
        .route("/api/v1/calls", get(reports::calls))
        .route("/api/v1/calls/{id}/callback", post(reports::callback_done))
        .route("/api/v1/tickets", get(tickets::list))
        .route("/api/v1/tickets/{id}", get(tickets::one))
        .route("/api/v1/tickets/{id}/redrive", post(tickets::redrive))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}/state", post(agent_state))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/dialplan/reload", post(reload_dialplan))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Any other path: the error body every API error has.
async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource: {} (see docs/openapi.yaml)", uri.path()),
    )
}

/// A known path asked with a method it does not take (the `Allow` header says which).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// A JSON error body with a stable `error` code and a human `message`.
fn error(code: StatusCode, error: &str, message: String) -> Response {
    (code, Json(json!({ "error": error, "message": message }))).into_response()
}

/// The store, or the `503` that says there is none (yet).
#[allow(clippy::result_large_err)] // the Err side is the finished error page
fn store(state: &AppState) -> Result<&crate::store::Store, Response> {
    state.reporting.store().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "no database is connected (store.database = \"none\", or it is unreachable)".into(),
        )
    })
}

/// A handler's query (refused with `400 bad_query`) and the store (`503` without).
#[allow(clippy::result_large_err)]
fn query_and_store<T>(
    state: &AppState,
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<(T, &crate::store::Store), Response> {
    let axum::extract::Query(q) =
        q.map_err(|e| error(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    Ok((q, store(state)?))
}

/// A query parameter that must be one of `allowed` (when given): `400 bad_NAME`
/// listing them otherwise, so that a typo never reads as "no such calls".
#[allow(clippy::result_large_err)]
fn one_of(name: &str, v: &Option<String>, allowed: &[&str]) -> Result<(), Response> {
    match v {
        Some(v) if !allowed.contains(&v.as_str()) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("bad_{name}"),
            format!("{name}={v:?}: use {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// A time query parameter: RFC 3339 or Unix milliseconds; `400 bad_time` otherwise.
#[allow(clippy::result_large_err)]
fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, Response> {
    let Some(v) = v else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    crate::dialplan::time::parse_rfc3339(v)
        .map(|s| Some(s * 1000))
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_time",
                format!("{name}={v:?}: {e}"),
            )
        })
}

/// Asks the core a question and waits for its answer.
async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "core_unavailable",
            "the SIP core is not running".into(),
        )
    };
    state
        .control
        .send(make(tx))
        .await
        .map_err(|_| unavailable())?;
    rx.await.map_err(|_| unavailable())
}

/// `GET /api/v1/agents`: every agent and static seat with its state.
async fn agents(State(state): State<AppState>) -> Response {
    match ask(&state, Control::Agents).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /api/v1/queues`: waiting callers, longest wait, agents by state.
async fn queues(State(state): State<AppState>) -> Response {
    match ask(&state, Control::Queues).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `POST /api/v1/agents/{id}/state` with `{"state": "ready" | "paused" | "logged_out",
/// "reason": "…"}`.
async fn agent_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AgentAction>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(action) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let answer = ask(&state, |reply| Control::AgentAction {
        agent: id,
        action,
        reply,
    })
    .await;
    match answer {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(ApiError::UnknownAgent(a))) => error(
            StatusCode::NOT_FOUND,
            "unknown_agent",
            format!("no agent {a:?}"),
        ),
        Ok(Err(ApiError::Refused(m))) => error(StatusCode::CONFLICT, "refused", m),
        Err(r) => r,
    }
}

/// `POST /api/v1/dialplan/reload`: loads the dialplan folder again. On any error
/// the running plan stays and the answer names file, line and key.
async fn reload_dialplan(State(state): State<AppState>) -> Response {
    let dir = state.dialplan_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::dialplan::load(&dir)).await;
    match loaded {
        Ok(Ok(plan)) => {
            let lines = plan.len();
            let queues = plan.queues.len();
            let agents = plan.agents.len();
            let plan = Arc::new(plan);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let unavailable = || {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "core_unavailable",
                    "the SIP core is not running".into(),
                )
            };
            if state
                .control
                .send(Control::ReloadDialplan(plan, tx))
                .await
                .is_err()
            {
                return unavailable();
            }
            match rx.await {
                Ok(Ok(())) => {}
                // Valid on its own, refused by the running gateway (a prompt it
                // has not loaded, queues the ACD refuses): nothing changed.
                Ok(Err(e)) => {
                    return Json(json!({ "error": "dialplan_refused", "message": e.to_string() }))
                        .into_response_with(StatusCode::UNPROCESSABLE_ENTITY);
                }
                Err(_) => return unavailable(),
            }
            Json(
                json!({ "status": "reloaded", "lines": lines, "queues": queues, "agents": agents }),
            )
            .into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "dialplan reload (HTTP) refused: the plan is invalid; the running plan stays");
            Json(json!({
                "error": "dialplan_invalid",
                "message": e.to_string(),
                "file": e.file,
                "line": e.line,
                "key": e.key,
            }))
            .into_response_with(StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

trait WithStatus {
    fn into_response_with(self, code: StatusCode) -> Response;
}

impl WithStatus for Json<serde_json::Value> {
    fn into_response_with(self, code: StatusCode) -> Response {
        (code, self).into_response()
    }
}

/// `GET /healthz`: 200 while the SIP core runs, with its headline figures.
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let s = &state.status;
    let t = &state.reporting.telemetry;
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
        "store": {
            "backend": state.reporting.store().map(|s| s.backend().as_str()),
            "written": t.written.load(Ordering::Relaxed),
            "queued": t.queued.load(Ordering::Relaxed),
            "held": t.held.load(Ordering::Relaxed),
            "write_errors": t.write_errors.load(Ordering::Relaxed),
            "dropped": t.dropped.load(Ordering::Relaxed),
            "backlog": t.backlogged.load(Ordering::Relaxed),
        },
    }))
}

/// Binds the HTTP port: done before the gateway says it runs, so that a port in
/// use stops the start with a clear error.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| HttpError::Bind { addr, error })
}

/// Serves on a bound listener until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> Result<(), HttpError> {
    axum::serve(listener, router(state))
        .await
        .map_err(HttpError::Serve)
}
