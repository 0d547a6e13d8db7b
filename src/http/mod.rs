//! The HTTP side: health, the admin API, `/metrics`, the SLA and call-record API
//! and the wallboard, over HTTP or HTTPS. Reads the lock-free [`Status`], asks the
//! SIP core through its control queue, and reads the store through `store/`; never
//! touches SIP messages or SQL. Who may call what: `auth.rs` and `guard.rs`.

pub mod auth;
mod call_control;
mod conns;
mod guard;
mod metrics;
mod report_api;
mod reports;
mod tickets;
mod tls;

pub use auth::{Role, Token, Tokens};
pub use conns::{ConnStats, Limits};
pub use guard::Access;

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
    /// The tokens and the Host allow-list.
    pub access: Arc<Access>,
    /// The SIP and HTTP listen addresses: on an exposed gateway a reloaded plan
    /// with a shipped agent password is refused, as at start.
    pub listens: crate::config::Listens,
    /// Open and refused connections, for `/metrics` (kept by [`serve`]).
    pub connections: Arc<ConnStats>,
    /// This node's name, lease and dialplan version (`/healthz`).
    pub node: Arc<crate::cluster::ClusterStatus>,
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
    /// `[http.tls]`: a certificate or key that cannot be used.
    #[error("{file}: {message} ([http.tls])")]
    Tls { file: String, message: String },
}

/// The layer that refuses a request whose token's role is below `Role::$role`
/// (and a POST without a JSON body).
macro_rules! needs {
    ($role:ident) => {
        axum::middleware::from_fn_with_state(Role::$role, guard::require)
    };
}

/// The router, separate from serving so tests can drive it. Each API route names
/// the least role it needs (docs/openapi.yaml says the same); `GET /healthz` and
/// the wallboard page are open, everything else needs a token.
pub fn router(state: AppState) -> Router {
    let access = state.access.clone();
    Router::new()
        .route("/", get(reports::wallboard))
        .route("/reports", get(report_api::page))
        .route("/healthz", get(healthz))
        .route(
            "/metrics",
            get(reports::metrics).route_layer(needs!(Viewer)),
        )
        .route("/api/v1/sla", get(reports::sla).route_layer(needs!(Viewer)))
        .route(
            "/api/v1/sla/intervals",
            get(reports::intervals).route_layer(needs!(Viewer)),
        )
        .route(
            "/api/v1/reports",
            get(report_api::reports).route_layer(needs!(Viewer)),
        )
        .route(
            "/api/v1/calls",
            get(reports::calls).route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/calls/{id}/callback",
            get(reports::callback_of)
                .post(reports::callback_done)
                .route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/calls/{id}/callback/dial",
            post(call_control::dial_callback).route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/calls/{id}/parties",
            post(call_control::add_party).route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/tickets",
            get(tickets::list).route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/tickets/{id}",
            get(tickets::one).route_layer(needs!(Supervisor)),
        )
        .route(
            "/api/v1/tickets/{id}/redrive",
            post(tickets::redrive).route_layer(needs!(Admin)),
        )
        .route("/api/v1/agents", get(agents).route_layer(needs!(Viewer)))
        .route(
            "/api/v1/agents/{id}/state",
            post(agent_state).route_layer(needs!(Supervisor)),
        )
        .route("/api/v1/queues", get(queues).route_layer(needs!(Viewer)))
        .route(
            "/api/v1/dialplan/reload",
            post(reload_dialplan).route_layer(needs!(Admin)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            access,
            guard::authenticate,
        ))
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
/// Whether `format=` asks for CSV (`json` or `csv`; when absent, `default`),
/// or the `400 bad_format` of [`one_of`].
#[allow(clippy::result_large_err)]
fn wants_csv(format: &Option<String>, default: bool) -> Result<bool, Response> {
    one_of("format", format, &["json", "csv"])?;
    Ok(format.as_deref().map_or(default, |f| f == "csv"))
}

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

/// Unix milliseconds of years 0000 to 9999: what RFC 3339 can write, and what
/// keeps range arithmetic on query times from overflowing.
const INSTANT_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// An instant in a query: Unix milliseconds or RFC 3339 (an unescaped `+` of
/// the offset arrives as a space), within years 0000 to 9999.
fn parse_instant(v: &str) -> Result<i64, String> {
    let ms = match v.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => crate::dialplan::time::parse_rfc3339(&v.replace(' ', "+"))
            .map(|secs| secs * 1000)
            .map_err(|e| e.to_string())?,
    };
    if INSTANT_MS.contains(&ms) {
        Ok(ms)
    } else {
        Err("outside the years 0000 to 9999".into())
    }
}

/// A time query parameter: RFC 3339 or Unix milliseconds; `400 bad_time` otherwise.
#[allow(clippy::result_large_err)]
fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, Response> {
    let Some(v) = v else {
        return Ok(None);
    };
    parse_instant(v).map(Some).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_time",
            format!("{name}={v:?}: {e}"),
        )
    })
}

/// A handler's JSON body, as axum's extractor gives it.
type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The body of a POST that takes no parameters: `{}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// A JSON body, or `400 bad_request` saying what is wrong with it (`415` when it
/// is not JSON at all; the guard refuses most of those before).
#[allow(clippy::result_large_err)]
fn json_body<T>(body: JsonBody<T>) -> Result<T, Response> {
    use axum::extract::rejection::JsonRejection;
    match body {
        Ok(Json(b)) => Ok(b),
        Err(e @ JsonRejection::MissingJsonContentType(_)) => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.body_text(),
        )),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, "bad_request", e.body_text())),
    }
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
    if let Some(r) = active_view(&state, "agents").await {
        return r;
    }
    match ask(&state, Control::Agents).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /api/v1/queues`: waiting callers, longest wait, agents by state.
async fn queues(State(state): State<AppState>) -> Response {
    if let Some(r) = active_view(&state, "queues").await {
        return r;
    }
    match ask(&state, Control::Queues).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// On a cluster node that is not active: the active node's copy of a view
/// (`X-Hotline-View-Of` names it, `X-Hotline-View-At` says when, Unix ms), so
/// the API and the wallboard read the same on either node.
async fn active_view(state: &AppState, name: &str) -> Option<Response> {
    // Only a cluster node is ever anything but active.
    if state.status.serving() == crate::call::Serving::Active {
        return None;
    }
    let (node, at_ms, body) = state.reporting.store()?.view(name).await.ok()??;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut r = Json(value).into_response();
    let h = r.headers_mut();
    h.insert("x-hotline-view-of", node.parse().ok()?);
    h.insert("x-hotline-view-at", at_ms.to_string().parse().ok()?);
    Some(r)
}

/// `POST /api/v1/agents/{id}/state` with `{"state": "ready" | "paused" | "logged_out",
/// "reason": "…"}`.
async fn agent_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AgentAction>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let action = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if state.status.serving() != crate::call::Serving::Active {
        return error(
            StatusCode::CONFLICT,
            "not_active",
            format!(
                "node {} is {}: send agent changes to the active node",
                state.node.node,
                state.status.serving().as_str()
            ),
        );
    }
    let answer = ask(&state, |reply| Control::AgentAction {
        agent: id,
        action,
        reply,
    })
    .await;
    match answer {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => api_error(e),
        Err(r) => r,
    }
}

/// The core's refusal as an API error body.
pub(super) fn api_error(e: ApiError) -> Response {
    let m = e.to_string();
    match e {
        ApiError::UnknownAgent(_) => error(StatusCode::NOT_FOUND, "unknown_agent", m),
        ApiError::Refused(_) => error(StatusCode::CONFLICT, "refused", m),
        ApiError::UnknownCall(_) => error(StatusCode::NOT_FOUND, "unknown_call", m),
        ApiError::NotInDirectory(_) => error(StatusCode::FORBIDDEN, "not_in_directory", m),
        ApiError::Party(code, _) => {
            let status = match code {
                "no_pending_callback" => StatusCode::NOT_FOUND,
                "not_allowed" => StatusCode::FORBIDDEN,
                "no_ports" | "overload" | "trunk_busy" => StatusCode::SERVICE_UNAVAILABLE,
                "internal" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            };
            error(status, code, m)
        }
    }
}

/// `POST /api/v1/dialplan/reload`: loads the dialplan folder again. On any error
/// the running plan stays and the answer names file, line and key.
async fn reload_dialplan(State(state): State<AppState>, body: JsonBody<NoFields>) -> Response {
    if let Err(r) = json_body(body) {
        return r;
    }
    let dir = state.dialplan_dir.clone();
    let listens = state.listens;
    let loaded = tokio::task::spawn_blocking(move || {
        let plan = crate::dialplan::load(&dir)?;
        Ok::<_, crate::dialplan::DialplanError>((listens.check_reload(&plan, &dir), plan))
    })
    .await;
    match loaded {
        Ok(Ok((Err(exposed), _))) => {
            tracing::error!(error = %exposed, "dialplan reload (HTTP) refused");
            Json(json!({ "error": "dialplan_refused", "message": exposed }))
                .into_response_with(StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(Ok((Ok(()), plan))) => {
            let lines = plan.len();
            let queues = plan.queues.len();
            let agents = plan.agents.len();
            let plan = Arc::new(plan);
            let running = plan.clone();
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
                Ok(Ok(())) => {
                    crate::reporting::plan_reloaded(
                        &state.reporting,
                        &running,
                        state.reporting.sla.answer_within_s,
                    );
                    let dir = state.dialplan_dir.clone();
                    if let Ok(v) =
                        tokio::task::spawn_blocking(move || crate::cluster::plan_version_of(&dir))
                            .await
                    {
                        state.node.reloaded_by_operator(v);
                    }
                }
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
        "node": {
            "name": state.node.node,
            "role": s.serving().as_str(),
            "lease_epoch": state.node.epoch.load(Ordering::Relaxed),
            "plan_version": state.node.plan_version(),
        },
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

/// A bound HTTP port, plain or with TLS, and its connection limits.
#[derive(Debug)]
pub struct Bound {
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
}

impl Bound {
    /// `https` or `http`, for the log.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// Binds the HTTP port and loads the TLS certificate and key (when `tls` names
/// them): done before the gateway says it runs, so that a port in use or a bad
/// certificate stops the start with a clear error.
pub async fn bind(
    addr: SocketAddr,
    tls: Option<(&std::path::Path, &std::path::Path)>,
    limits: Limits,
) -> Result<Bound, HttpError> {
    let tls = match tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| HttpError::Bind { addr, error })?;
    Ok(Bound { tcp, tls, limits })
}

/// Serves on a bound port until the future is dropped: at most
/// `limits.max_connections` at once (`max_per_source` from one address), each
/// closed when a request's headers are later than `limits.header_timeout`.
pub async fn serve(bound: Bound, state: AppState) -> Result<(), HttpError> {
    let stats = state.connections.clone();
    let app = router(state);
    let tls = bound.tls.map(tokio_rustls::TlsAcceptor::from);
    conns::accept_loop(bound.tcp, tls, app, bound.limits, stats).await;
    Ok(())
}
