//! The work-order stubs: `GET /api/v1/tickets`, `GET /api/v1/tickets/{id}` and
//! `POST /api/v1/tickets/{id}/redrive` (an operator re-drives a dead-lettered
//! delivery).

#![allow(clippy::result_large_err)] // handlers return their error page as the Err side

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState, JsonBody, NoFields, error, json_body, one_of, query_and_store, store, time_param,
};
use crate::store::{TicketFilter, TicketRow};

const MAX_LIMIT: i64 = 10_000;

fn view(t: TicketRow) -> Value {
    let stub: Value = serde_json::from_str(&t.stub).unwrap_or(Value::Null);
    json!({
        "id": t.id,
        "line": t.line,
        "state": t.state,
        "revision": t.revision,
        "created_at_ms": t.created_at_ms,
        "updated_at_ms": t.updated_at_ms,
        "delivery": t.delivery,
        "attempts": t.attempts,
        "last_status": t.last_status,
        "last_error": t.last_error,
        "stub": stub,
    })
}

/// Query of `/api/v1/tickets`. Unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TicketsQuery {
    state: Option<String>,
    line: Option<String>,
    /// `local`, `pending`, `delivered` or `dead`.
    delivery: Option<String>,
    /// Updated at or after / before: RFC 3339 or Unix milliseconds.
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/tickets`: stubs and their delivery state, newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    q: Result<Query<TicketsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, store) = match query_and_store(&state, q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let states = crate::tickets::StubState::ALL.map(|s| s.as_str());
    if let Err(r) = one_of(
        "delivery",
        &q.delivery,
        &["local", "pending", "delivered", "dead"],
    )
    .and(one_of("state", &q.state, &states))
    {
        return r;
    }
    let (from_ms, to_ms) = match (time_param("from", &q.from), time_param("to", &q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        );
    }
    let filter = TicketFilter {
        state: q.state,
        line: q.line,
        delivery: q.delivery,
        from_ms,
        to_ms,
        limit,
    };
    match store.tickets(&filter).await {
        Ok(rows) => {
            let tickets: Vec<Value> = rows.into_iter().map(view).collect();
            Json(json!({ "count": tickets.len(), "tickets": tickets })).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// `GET /api/v1/tickets/{id}`.
pub(super) async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let store = match store(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match store.ticket(&id).await {
        Ok(Some(t)) => Json(view(t)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_ticket",
            format!("no ticket {id:?}"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// `POST /api/v1/tickets/{id}/redrive`: dead-lettered revisions go back in the
/// outbox, attempts reset.
pub(super) async fn redrive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<NoFields>,
) -> Response {
    if let Err(r) = json_body(body) {
        return r;
    }
    let store = match store(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match store.redrive(&id, crate::util::time::unix_ms()).await {
        Ok(0) => error(
            StatusCode::NOT_FOUND,
            "nothing_to_redrive",
            format!("ticket {id:?} has no dead-lettered delivery"),
        ),
        Ok(n) => {
            tracing::info!(ticket = %id, revisions = n, "ticket delivery re-driven by an operator");
            Json(json!({ "id": id, "redriven": n })).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}
