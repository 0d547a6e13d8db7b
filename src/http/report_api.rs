//! `GET /api/v1/reports` (JSON or CSV) and the printable report page
//! `GET /reports` (docs/reports-api.md). The figures come from
//! `reporting::report`; this file reads the query and picks the format.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, error, one_of, parse_instant, query_and_store, wants_csv};
use crate::dialplan::time::{Date, parse_date};
use crate::reporting::report::{self, Dimension, MAX_RANGE_DAYS, PeriodKind, ReportSpec, Zone};

/// The printable report page, embedded in the binary.
const PAGE: &str = include_str!("report.html");

/// Reports computed at once; more get `503 reports_busy`. Each may read
/// months of records on the runtime the store writer shares (it yields every
/// thousand records): one at a time keeps the writer's share.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

const DAY_MS: i64 = 86_400_000;

/// `GET /reports`: the page (it holds no data and asks for a viewer token).
pub(super) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Query of `/api/v1/reports`. Unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    /// `day` (default), `week`, `month` or `range`.
    period: Option<String>,
    /// `overall` (default), `line`, `mode`, `queue`, `department` or `seats`.
    dimension: Option<String>,
    /// A local date `2026-11-01`, a month `2026-11`, RFC 3339 or Unix ms
    /// [default: the start of the local month of `to`].
    from: Option<String>,
    /// Exclusive for an instant; a date or month is included whole [default: now].
    to: Option<String>,
    /// The repeat-caller window, 1–168 hours [default 24].
    repeat_hours: Option<u32>,
    /// `json`, `csv` or `xlsx` (an Excel workbook) [default: by the Accept
    /// header, else JSON].
    format: Option<String>,
}

/// `GET /api/v1/reports`.
pub(super) async fn reports(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, store) = match query_and_store(&state, q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let zone = state.reporting.zone;
    let spec = match spec_of(&q, zone, &state.reporting.sla, crate::util::time::unix_ms()) {
        Ok(s) => s,
        Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message),
    };
    let accept_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if let Err(r) = one_of("format", &q.format, &["json", "csv", "xlsx"]) {
        return r;
    }
    let xlsx = q.format.as_deref() == Some("xlsx");
    let csv = match xlsx {
        true => false,
        false => match wants_csv(&q.format, accept_csv) {
            Ok(csv) => csv,
            Err(r) => return r,
        },
    };
    let Ok(_slot) = RUNNING.try_acquire() else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "reports_busy",
            "another report is being computed; try again shortly".to_string(),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return r;
    };
    let report = match report::run(store, spec).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            );
        }
    };
    if xlsx {
        let name = format!(
            "attachment; filename=\"report-{}-{}-{}.xlsx\"",
            report.dimension,
            report.period,
            zone.date(report.from_ms)
        );
        return match report::workbook(std::slice::from_ref(&report)) {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, report::XLSX_TYPE.to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "workbook_failed",
                e.to_string(),
            ),
        };
    }
    if csv {
        let name = format!(
            "attachment; filename=\"report-{}-{}-{}.csv\"",
            report.dimension,
            report.period,
            zone.date(report.from_ms)
        );
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, name),
            ],
            report::to_csv(&report),
        )
            .into_response();
    }
    axum::Json(report).into_response()
}

/// The report asked for, or the error code and message of a `400`.
fn spec_of(
    q: &ReportQuery,
    zone: Zone,
    sla: &crate::sla::SlaConfig,
    now_ms: i64,
) -> Result<ReportSpec, (&'static str, String)> {
    let period = match q.period.as_deref() {
        None => PeriodKind::Day,
        Some(p) => PeriodKind::parse(p).ok_or_else(|| {
            (
                "bad_period",
                format!("period={p:?}: use day, week, month or range"),
            )
        })?,
    };
    let dimension = match q.dimension.as_deref() {
        None => Dimension::Overall,
        Some(d) => Dimension::parse(d).ok_or_else(|| {
            (
                "bad_dimension",
                format!("dimension={d:?}: use overall, line, mode, queue, department or seats"),
            )
        })?,
    };
    let to_ms = match &q.to {
        None => now_ms,
        Some(t) => instant(t, zone, true).map_err(|m| ("bad_time", format!("to={t:?}: {m}")))?,
    };
    let from_ms = match &q.from {
        None => zone.period_start(PeriodKind::Month, to_ms - 1, 0),
        Some(f) => instant(f, zone, false).map_err(|m| ("bad_time", format!("from={f:?}: {m}")))?,
    };
    if from_ms >= to_ms {
        return Err((
            "bad_range",
            format!(
                "from ({}) must be before to ({})",
                zone.rfc3339(from_ms),
                zone.rfc3339(to_ms)
            ),
        ));
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * DAY_MS {
        return Err((
            "bad_range",
            format!("a report covers at most {MAX_RANGE_DAYS} days; ask for less"),
        ));
    }
    let repeat_hours = q.repeat_hours.unwrap_or(24);
    if !(1..=168).contains(&repeat_hours) {
        return Err((
            "bad_repeat_hours",
            format!("repeat_hours={repeat_hours}: use 1 to 168"),
        ));
    }
    Ok(ReportSpec {
        period,
        dimension,
        from_ms,
        to_ms,
        zone,
        repeat_window_ms: i64::from(repeat_hours) * 3_600_000,
        sla: sla.clone(),
    })
}

/// A time parameter: Unix ms, RFC 3339, a local date or a local month. A date
/// or month given as the end of a range (`end`) includes it whole.
fn instant(s: &str, zone: Zone, end: bool) -> Result<i64, String> {
    if s.parse::<i64>().is_ok() || s.contains('T') {
        return parse_instant(s);
    }
    let bad = || "use a date 2026-11-01, a month 2026-11, RFC 3339 or Unix ms".to_string();
    if s.len() == 7 {
        let first = parse_date(&format!("{s}-01")).map_err(|_| bad())?;
        let start = zone.midnight(first);
        return Ok(if end {
            zone.period_end(PeriodKind::Month, start, 0)
        } else {
            start
        });
    }
    let d: Date = parse_date(s).map_err(|_| bad())?;
    Ok(zone.midnight(if end { d.succ() } else { d }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: Zone = Zone {
        offset_minutes: 480,
    };

    fn q(pairs: &[(&str, &str)]) -> ReportQuery {
        let s: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri: axum::http::Uri = format!("/r?{}", s.join("&")).parse().unwrap();
        Query::<ReportQuery>::try_from_uri(&uri).unwrap().0
    }

    fn spec(pairs: &[(&str, &str)]) -> Result<ReportSpec, (&'static str, String)> {
        spec_of(
            &q(pairs),
            CN,
            &crate::sla::SlaConfig::default(),
            1_796_000_000_000,
        )
    }

    #[test]
    fn a_month_and_inclusive_dates_cover_local_days() {
        let s = spec(&[("from", "2026-11"), ("to", "2026-11")]).unwrap();
        assert_eq!(CN.rfc3339(s.from_ms), "2026-11-01T00:00:00+08:00");
        assert_eq!(CN.rfc3339(s.to_ms), "2026-12-01T00:00:00+08:00");
        let s = spec(&[
            ("from", "2026-11-02"),
            ("to", "2026-11-02"),
            ("period", "range"),
        ])
        .unwrap();
        assert_eq!(s.to_ms - s.from_ms, DAY_MS);
        assert_eq!(
            (s.period, s.dimension),
            (PeriodKind::Range, Dimension::Overall)
        );
        let s = spec(&[
            ("from", "2026-11-02T09:00:00+08:00"),
            ("to", "1793600000000"),
        ])
        .unwrap();
        assert_eq!(s.to_ms, 1_793_600_000_000);
        let s = spec(&[]).unwrap();
        assert_eq!(CN.rfc3339(s.from_ms), "2026-11-01T00:00:00+08:00");
        assert_eq!(s.to_ms, 1_796_000_000_000, "now");
    }

    #[test]
    fn bad_parameters_are_named() {
        let code = |pairs: &[(&str, &str)]| spec(pairs).unwrap_err().0;
        assert_eq!(code(&[("period", "year")]), "bad_period");
        assert_eq!(code(&[("dimension", "agent")]), "bad_dimension");
        assert_eq!(code(&[("from", "2026-13-01")]), "bad_time");
        assert_eq!(code(&[("from", "yesterday")]), "bad_time");
        assert_eq!(
            code(&[("from", "2026-11-05"), ("to", "2026-11-04")]),
            "bad_range"
        );
        assert_eq!(
            code(&[("from", "2024-01-01"), ("to", "2026-01-01")]),
            "bad_range"
        );
        assert_eq!(code(&[("repeat_hours", "0")]), "bad_repeat_hours");
        // Extreme Unix times that would wrap the range arithmetic (and ask for
        // 10^11 days) are refused, whatever the token.
        let (lo, hi) = ("-4611686018427387904", "4611686018427387904");
        assert_eq!(code(&[("from", lo), ("to", hi)]), "bad_time");
        assert_eq!(code(&[("to", "-9223372036854775808")]), "bad_time");
        assert_eq!(
            code(&[("from", "0"), ("to", "253402300799999")]),
            "bad_range"
        );
        let msg = spec(&[("from", "2026-11-05"), ("to", "2026-11-04")])
            .unwrap_err()
            .1;
        assert!(msg.contains("2026-11-05T00:00:00+08:00"), "{msg}");
    }
}
