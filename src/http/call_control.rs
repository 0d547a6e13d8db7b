//! Control of calls in progress: a third party added to a call, and a
//! callback dialled with the agent's phone first. Both are orders for the
//! active node's SIP core; the answer is `202` while something rings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::{AppState, JsonBody, api_error, ask, error, json_body};
use crate::call::api::ApiError;
use crate::transport::Control;

/// The body of `POST /api/v1/calls/{id}/callback/dial`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DialCallback {
    /// The agent who calls back: its phone rings first.
    agent: String,
}

/// `POST /api/v1/calls/{id}/callback/dial`: calls the citizen of missed call
/// `id` back, ringing the agent's phone first (202 while it rings).
pub(super) async fn dial_callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<DialCallback>,
) -> Response {
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    order(&state, |reply| Control::DialCallback {
        missed: id,
        agent: body.agent,
        reply,
    })
    .await
}

/// The body of `POST /api/v1/calls/{id}/parties`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddParty {
    /// A transfer-directory number (110, a department).
    number: String,
}

/// `POST /api/v1/calls/{id}/parties`: the agent's call gets a third party
/// (a three-party call): 202 while it rings; it joins when it answers.
pub(super) async fn add_party(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<AddParty>,
) -> Response {
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    order(&state, |reply| Control::AddParty {
        call: id,
        number: body.number,
        reply,
    })
    .await
}

/// Sends a call-control order to the core: `202` with its answer, or the
/// refusal; `409 not_active` from a node that does not hold the calls.
async fn order(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<serde_json::Value, ApiError>>) -> Control,
) -> Response {
    if state.status.serving() != crate::call::Serving::Active {
        return error(
            StatusCode::CONFLICT,
            "not_active",
            format!(
                "node {} is {}: send call control to the active node",
                state.node.node,
                state.status.serving().as_str()
            ),
        );
    }
    match ask(state, make).await {
        Ok(Ok(v)) => (StatusCode::ACCEPTED, Json(v)).into_response(),
        Ok(Err(e)) => api_error(e),
        Err(r) => r,
    }
}
