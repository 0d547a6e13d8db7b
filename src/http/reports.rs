//! The supervisors' routes: `/api/v1/sla`, `/api/v1/sla/intervals`,
//! `/api/v1/calls` (JSON, or CSV streamed page by page), the callback list, `/metrics` and the wallboard.

#![allow(clippy::result_large_err)] // handlers return their error page as the Err side

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{
    AppState, JsonBody, NoFields, ask, error, json_body, one_of, query_and_store, store,
    time_param, wants_csv,
};
use crate::cdr::CallRecord;
use crate::store::CallFilter;
use crate::transport::Control;
use crate::util::time::rfc3339;

/// The wallboard: one self-contained page, embedded in the binary.
const WALLBOARD: &str = include_str!("wallboard.html");

/// Largest page of `/api/v1/calls`.
const MAX_LIMIT: i64 = 100_000;

/// `GET /`: the live wallboard.
pub(super) async fn wallboard() -> Html<&'static str> {
    Html(WALLBOARD)
}

/// `GET /api/v1/sla`: the live figures (docs/sla-api.md).
pub(super) async fn sla(State(state): State<AppState>) -> Response {
    let now = crate::util::time::unix_ms();
    let snap = state.reporting.tracker().snapshot(now);
    let mut body = serde_json::to_value(snap).unwrap_or_default();
    // Where the callbacks stand (漏接回拨), from the store; null without one.
    body["callbacks"] = match callback_summary(&state, now).await {
        Some(s) => serde_json::to_value(s).unwrap_or_default(),
        None => serde_json::Value::Null,
    };
    Json(body).into_response()
}

/// The callbacks' standing, when the store answers.
async fn callback_summary(state: &AppState, now: i64) -> Option<crate::store::CallbackSummary> {
    let store = state.reporting.store()?;
    let within_h = state.reporting.sla.callback_within_h;
    store.callback_summary(now, within_h).await.ok()
}

/// `GET /api/v1/calls/{id}/callback`: a missed call's callback state and its
/// attempts (who, when, result).
pub(super) async fn callback_of(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let store = match store(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let unavailable = |e: crate::store::StoreError| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    };
    let (pending, callback_state, attempts_n) = match store.callback_of(&id).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "no_such_call",
                format!("no call {id:?}"),
            );
        }
        Err(e) => return unavailable(e),
    };
    match store.callback_attempts(&id).await {
        Ok(attempts) => Json(json!({
            "id": id,
            "callback_pending": pending,
            "callback_state": callback_state,
            "callback_attempts": attempts_n,
            "attempts": attempts,
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let queues = ask(&state, Control::Queues).await.unwrap_or_default();
    let agents = ask(&state, Control::Agents).await.unwrap_or_default();
    let now = crate::util::time::unix_ms();
    let snap = state.reporting.tracker().snapshot(now);
    let mut body = super::metrics::render(
        &state.status,
        &state.connections,
        &state.reporting,
        &snap,
        &queues,
        &agents,
    );
    if let Some(c) = callback_summary(&state, now).await {
        super::metrics::callbacks(&mut body, &c);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Query of `/api/v1/calls`. Unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallsQuery {
    /// Ended at or after: RFC 3339 or Unix milliseconds.
    from: Option<String>,
    /// Ended before: RFC 3339 or Unix milliseconds.
    to: Option<String>,
    line: Option<String>,
    mode: Option<String>,
    queue: Option<String>,
    outcome: Option<String>,
    /// The trunk the calls came in over (a `[[trunk]]` name).
    trunk: Option<String>,
    /// `pending`: missed calls still waiting for a callback; `done`: the others.
    callback: Option<String>,
    /// Default 100 (JSON) or 100 000 (CSV).
    limit: Option<i64>,
    /// `desc` (newest first, default) or `asc`.
    order: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// `GET /api/v1/calls`: call records, filtered; `format=csv` exports them.
pub(super) async fn calls(
    State(state): State<AppState>,
    q: Result<Query<CallsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, store) = match query_and_store(&state, q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let csv = match wants_csv(&q.format, false) {
        Ok(csv) => csv,
        Err(r) => return r,
    };
    let callback_pending = match q.callback.as_deref() {
        None => None,
        Some("pending") => Some(true),
        Some("done") => Some(false),
        Some(c) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_callback",
                format!("callback={c:?}: use pending or done"),
            );
        }
    };
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_order",
                format!("order={o:?}: use asc or desc"),
            );
        }
    };
    let modes = crate::dialplan::Mode::ALL.map(|m| m.as_str());
    // A call's own outcome (`overflowed` is only ever a queue visit's).
    let outcomes: Vec<&str> = crate::sla::Outcome::ALL
        .into_iter()
        .filter(|o| *o != crate::sla::Outcome::Overflowed)
        .map(|o| o.as_str())
        .collect();
    if let Err(r) = one_of("mode", &q.mode, &modes).and(one_of("outcome", &q.outcome, &outcomes)) {
        return r;
    }
    let (from_ms, to_ms) = match (time_param("from", &q.from), time_param("to", &q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let limit = q.limit.unwrap_or(if csv { MAX_LIMIT } else { 100 });
    if !(1..=MAX_LIMIT).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        );
    }
    let filter = CallFilter {
        from_ms,
        to_ms,
        line: q.line,
        mode: q.mode,
        queue: q.queue,
        outcome: q.outcome,
        trunk: q.trunk,
        callback_pending,
        limit,
        ascending,
        after: None,
    };
    if csv {
        return csv_export(store.clone(), filter).await;
    }
    match store.calls(&filter).await {
        Ok(calls) => Json(json!({ "count": calls.len(), "calls": calls })).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// Rows per store query of a CSV export: memory stays at one page, whatever the
/// `limit`.
const CSV_PAGE: i64 = 1000;

/// `format=csv`: the first page is read before answering (a store error is still
/// a `503`), the rest streamed page by page after it. A store error later cuts
/// the body short, which the client sees as a broken transfer, not a short file.
async fn csv_export(store: crate::store::Store, filter: CallFilter) -> Response {
    let mut cursor = CsvCursor {
        store,
        left: filter.limit,
        filter,
    };
    let first = match cursor.page().await {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            );
        }
    };
    let head = Bytes::from(format!("{CSV_HEADER}{}", first.0));
    let rest = futures_util::stream::unfold(first.1.then_some(cursor), |cursor| async move {
        let mut c = cursor?;
        match c.page().await {
            Ok((rows, more)) => Some((Ok(Bytes::from(rows)), more.then_some(c))),
            Err(e) => {
                tracing::warn!(error = %e, "CSV export cut short: the store failed");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(head))),
        rest,
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"calls.csv\"",
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// Where a CSV export has got to.
struct CsvCursor {
    store: crate::store::Store,
    /// The query, its `after` moved past each page.
    filter: CallFilter,
    /// Rows still wanted (the request's `limit`).
    left: i64,
}

impl CsvCursor {
    /// The next page as CSV rows, and whether more may follow.
    async fn page(&mut self) -> Result<(String, bool), crate::store::StoreError> {
        let limit = self.left.min(CSV_PAGE);
        let page = CallFilter {
            limit,
            ..self.filter.clone()
        };
        let rows = self.store.calls(&page).await?;
        self.left -= rows.len() as i64;
        let mut out = String::new();
        for c in &rows {
            csv_row(&mut out, c);
        }
        let more = rows.len() as i64 == limit && self.left > 0;
        self.filter.after = rows.last().map(|r| (r.ended_at_ms, r.id.clone()));
        Ok((out, more))
    }
}

/// `POST /api/v1/calls/{id}/callback`: an operator called the citizen back.
pub(super) async fn callback_done(
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
    match store.clear_callback(&id).await {
        Ok(true) => Json(json!({ "id": id, "callback_pending": false })).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "no_pending_callback",
            format!("no call {id:?} waits for a callback"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// Query of `/api/v1/sla/intervals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IntervalsQuery {
    from: Option<String>,
    to: Option<String>,
    /// `overall`, `line`, `mode` or `queue` [default: all].
    dimension: Option<String>,
}

/// `GET /api/v1/sla/intervals`: the persisted 15-minute intervals (history that
/// survives restarts) [default: the last 24 h].
pub(super) async fn intervals(
    State(state): State<AppState>,
    q: Result<Query<IntervalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, store) = match query_and_store(&state, q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = crate::util::time::unix_ms();
    let (from, to) = match (time_param("from", &q.from), time_param("to", &q.to)) {
        (Ok(f), Ok(t)) => (f.unwrap_or(now - 86_400_000), t.unwrap_or(now + 1)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let Some(d) = &q.dimension
        && crate::sla::Dimension::parse(d).is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_dimension",
            format!("dimension={d:?}: use overall, line, mode or queue"),
        );
    }
    let from = crate::sla::interval_start_ms(from);
    match store.intervals(from, to, q.dimension.as_deref()).await {
        Ok(rows) => {
            let sla = &state.reporting.sla;
            let rows: Vec<_> = rows
                .into_iter()
                .map(|r| {
                    let counted = r.offered - r.short_abandoned;
                    let rate = (counted > 0)
                        .then(|| (r.answered + r.transferred_out) as f64 / counted as f64);
                    let level = (counted > 0).then(|| r.answered_within as f64 / counted as f64);
                    json!({
                        "start_ms": r.start_ms, "dimension": r.dimension, "key": r.key,
                        "offered": r.offered, "answered": r.answered,
                        "answered_within": r.answered_within, "abandoned": r.abandoned,
                        "short_abandoned": r.short_abandoned, "transferred_out": r.transferred_out,
                        "failed": r.failed, "overflowed": r.overflowed,
                        "answer_rate": rate, "service_level": level,
                        "below_target": rate.is_some_and(|r| r < sla.target),
                    })
                })
                .collect();
            Json(json!({ "target": sla.target, "intervals": rows })).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// The CSV export's columns: times in Unix ms and RFC 3339 (UTC), the raw events
/// as a JSON column.
const CSV_HEADER: &str = "id,sip_call_id,caller,called,original,line,mode,department,queue,\
    agent,answered_by,transferred_to,outcome,reason,final_code,received_at,offered_at,\
    answered_at,ended_at,wait_ms,talk_ms,survey,recording,callback_pending,events,trunk\n";

/// One call as a CSV row.
fn csv_row(out: &mut String, c: &CallRecord) {
    let t = |ms: Option<i64>| ms.map(rfc3339).unwrap_or_default();
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let fields = [
        c.id.clone(),
        c.sip_call_id.clone(),
        c.caller.clone(),
        c.called.clone(),
        c.original.clone().unwrap_or_default(),
        c.line.clone().unwrap_or_default(),
        c.mode.clone().unwrap_or_default(),
        c.department.clone().unwrap_or_default(),
        c.queue.clone().unwrap_or_default(),
        c.agent.clone().unwrap_or_default(),
        c.answered_by.clone().unwrap_or_default(),
        c.transferred_to.clone().unwrap_or_default(),
        c.outcome.clone().unwrap_or_default(),
        c.reason.clone(),
        c.final_code.to_string(),
        t(Some(c.received_at_ms)),
        t(c.offered_at_ms),
        t(c.answered_at_ms),
        t(Some(c.ended_at_ms)),
        n(c.offered_at_ms.zip(c.answered_at_ms).map(|(o, a)| a - o)),
        // The agent's talk time ends when the call is transferred out.
        n(c.answered_at_ms.map(|a| {
            let until = c
                .first(crate::cdr::EventKind::TransferredOut)
                .map_or(c.ended_at_ms, |e| e.at_ms);
            until - a
        })),
        c.survey.map(|s| s.to_string()).unwrap_or_default(),
        c.recording.clone().unwrap_or_default(),
        c.callback_pending.to_string(),
        serde_json::to_string(&c.events).unwrap_or_default(),
        c.trunk.clone().unwrap_or_default(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(f));
    }
    out.push('\n');
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180). A
/// leading `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not run it.
fn csv_field(f: &str) -> String {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let phone = f.strip_prefix('+').is_some_and(number);
    let negative = f
        .strip_prefix('-')
        .is_some_and(|n| n.parse::<f64>().is_ok());
    let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) && !phone && !negative {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-5"), "-5");
        assert_eq!(csv_field("+8613800138000"), "+8613800138000", "E.164 stays");
        assert_eq!(csv_field("+1+cmd"), "'+1+cmd");
        assert_eq!(csv_field("-cmd"), "'-cmd");
    }

    #[test]
    fn times_print_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}
