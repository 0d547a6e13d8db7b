//! A month's report over a large province's calls: `GET /api/v1/reports`'s work
//! (`reporting::report::run`) over N call records offered in November 2026
//! (default 3 000 000), on SQLite (a file, WAL) and on PostgreSQL
//! (127.0.0.1:5432). Prints the seconds per report and the records/s.
//!
//! `cargo bench --bench report_month [-- CALLS]` (`HGW_BENCH_ONLY=sqlite` or
//! `postgres` for one of them); `scripts/bench-report.sh` bounds it in time. The data are written once by SQL (`INSERT … SELECT` over
//! a generated series, about 20 s for 3 M on SQLite) and kept between runs:
//! the SQLite file in `$CARGO_TARGET_DIR/bench-report/` (else `target/`), the
//! PostgreSQL database `hgw_bench_report`.
//!
//! The mix per 100 calls: 88 answered (waits 0–29 s, talks 60–299 s, a third
//! ended by the agent, rated 1–3), 5 abandoned (callback pending), 3 short
//! abandons, 4 given up at the queue's maximum wait; 50 lines (10 parallel, with
//! legacy seats answering a tenth of their calls); about 1.5 M distinct callers.

use std::time::Instant;

use hotline_gateway::reporting::report::{self, Dimension, PeriodKind, ReportSpec, Zone};
use hotline_gateway::sla::SlaConfig;
use hotline_gateway::store::Store;

/// 2026-11-01T00:00:00+08:00 and the month's length.
const NOV: i64 = 1_793_462_400_000;
const MONTH_MS: i64 = 30 * 86_400_000;
const RUNS: usize = 2;

/// The generated calls: `{n}` rows, call `i` offered at NOV + i × step.
/// `{series}` yields `i`; `{fmt}` formats like printf.
fn insert_sql(sqlite: bool, n: i64) -> String {
    let step = MONTH_MS / n;
    let (series, fmt) = if sqlite {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) SELECT i FROM s",
                n - 1
            ),
            "printf",
        )
    } else {
        (
            format!("SELECT generate_series(0::bigint, {}) AS i", n - 1),
            "format",
        )
    };
    // Outcome class by i % 100; times relative to the offer `o`.
    let o = format!("({NOV} + i * {step})");
    let caller = if sqlite {
        format!("{fmt}('138%08d', (i * 7919) % 1500000)")
    } else {
        "'138' || lpad(((i * 7919) % 1500000)::text, 8, '0')".to_string()
    };
    let d = if sqlite { "%d" } else { "%s" };
    let s = "%s";
    let line = "('123' || (i % 50))";
    let parallel = "(i % 50 < 10)";
    let legacy = format!("({parallel} AND i % 10 = 0)");
    let wait = "((i * 7) % 30) * 1000";
    let talk = "(60 + (i % 240)) * 1000";
    let cls = "(i % 100)";
    let ev = |kind: &str, at: &str, detail: &str| {
        format!("{fmt}('{{\"at_ms\":{d},\"kind\":\"{kind}\",\"detail\":\"{s}\"}}', {at}, {detail})")
    };
    let offered = ev(
        "offered",
        &o,
        &format!("CASE WHEN {legacy} THEN 'legacy:' || {line} ELSE 'hotline' END"),
    );
    let answered = ev("answered", &format!("{o} + {wait}"), "'a1'");
    let agent_first = "(i % 3 = 0)";
    let hung = format!(
        "CASE WHEN {agent_first} THEN {} ELSE {} END",
        ev(
            "callee_hung_up",
            &format!("{o} + {wait} + {talk}"),
            "'call.callee_hangup'"
        ),
        ev(
            "caller_hung_up",
            &format!("{o} + {wait} + {talk}"),
            "'call.caller_hangup'"
        )
    );
    let abandon = ev(
        "caller_hung_up",
        &format!("{o} + (20 + i % 60) * 1000"),
        "'call.caller_cancelled'",
    );
    let short = ev(
        "caller_hung_up",
        &format!("{o} + 2000"),
        "'call.caller_cancelled'",
    );
    let gave_up = ev(
        "gateway_ended",
        &format!("{o} + 120000"),
        "'acd.max_wait_callback'",
    );
    let rest = format!(
        "CASE WHEN {cls} < 88 THEN {answered} || ',' || {hung} WHEN {cls} < 93 THEN {abandon} \
         WHEN {cls} < 96 THEN {short} ELSE {gave_up} END"
    );
    let ended = format!(
        "CASE WHEN {cls} < 88 THEN {o} + {wait} + {talk} WHEN {cls} < 93 THEN {o} + (20 + i % 60) * 1000 \
         WHEN {cls} < 96 THEN {o} + 2000 ELSE {o} + 120000 END"
    );
    let outcome = format!(
        "CASE WHEN {cls} < 88 THEN 'answered' WHEN {cls} < 93 THEN 'abandoned' \
         WHEN {cls} < 96 THEN 'short_abandoned' ELSE 'failed' END"
    );
    let reason = format!(
        "CASE WHEN {cls} < 88 AND {agent_first} THEN 'call.callee_hangup' WHEN {cls} < 88 THEN 'call.caller_hangup' \
         WHEN {cls} < 96 THEN 'call.caller_cancelled' ELSE 'acd.max_wait_callback' END"
    );
    let gw_id = format!("{fmt}('gw-{d}', i)");
    format!(
        "INSERT INTO call_records (id, sip_call_id, caller, called, original, line, mode, department, \
         queue, agent, answered_by, transferred_to, outcome, reason, final_code, received_at_ms, \
         offered_at_ms, answered_at_ms, ended_at_ms, survey, recording, callback_pending, events) \
         SELECT {gw_id}, {gw_id}, {caller}, {line}, NULL, {line}, \
         CASE WHEN {parallel} THEN 'parallel' ELSE 'hotline' END, \
         'dept-' || (i % 49), CASE WHEN {legacy} THEN NULL ELSE 'hotline' END, NULL, \
         CASE WHEN {cls} >= 88 THEN NULL WHEN {legacy} THEN 'legacy' ELSE '12345' END, NULL, \
         {outcome}, {reason}, 200, {o}, {o}, CASE WHEN {cls} < 88 THEN {o} + {wait} END, {ended}, \
         CASE WHEN {cls} < 88 AND {agent_first} AND i % 5 > 0 THEN 1 + i % 3 END, NULL, \
         CASE WHEN {cls} >= 88 AND {cls} < 93 OR {cls} >= 96 THEN 1 ELSE 0 END, \
         '[' || {offered} || ',' || {rest} || ']' FROM ({series}) AS g"
    )
}

async fn prepare(url: &str, sqlite: bool, n: i64) -> Store {
    let store = Store::open(url).await.expect(url);
    let have = store.count_calls().await.unwrap();
    if have != n {
        let t = Instant::now();
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&sqlite_or(url)).await.unwrap();
        sqlx::query("DELETE FROM call_records")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(&insert_sql(sqlite, n))
            .execute(&mut c)
            .await
            .unwrap();
        if sqlite {
            // The one big INSERT leaves a WAL as large as the file; the gateway's
            // own small transactions never do.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        println!("  wrote {n} calls in {:.1} s", t.elapsed().as_secs_f64());
    }
    store
}

fn sqlite_or(url: &str) -> String {
    match url.strip_prefix("sqlite:") {
        Some(p) => format!("sqlite://{p}"),
        None => url.to_string(),
    }
}

async fn run(name: &str, store: &Store, n: i64) {
    for dimension in [Dimension::Line, Dimension::Seats] {
        let mut secs = Vec::new();
        for _ in 0..RUNS {
            let spec = ReportSpec {
                period: PeriodKind::Day,
                dimension,
                from_ms: NOV,
                to_ms: NOV + MONTH_MS,
                zone: Zone {
                    offset_minutes: 480,
                },
                repeat_window_ms: 24 * 3_600_000,
                sla: SlaConfig::default(),
            };
            let t = Instant::now();
            let r = report::run(store, spec).await.unwrap();
            let s = t.elapsed().as_secs_f64();
            let offered: u64 = r.totals.iter().map(|t| t.figures.offered).sum();
            assert!(offered >= n as u64, "{offered} of {n}");
            secs.push(s);
        }
        secs.sort_by(f64::total_cmp);
        println!(
            "{name:>8} {:>6}: month by day, {n} calls: {:.2} s best of {RUNS} ({:.0} calls/s)",
            dimension.as_str(),
            secs[0],
            n as f64 / secs[0]
        );
    }
}

fn main() {
    let n: i64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::path::PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("bench-report");
        let only = std::env::var("HGW_BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only == "sqlite" {
            let sqlite = format!("sqlite:{}/calls-{n}.db", dir.display());
            let store = prepare(&sqlite, true, n).await;
            run("sqlite", &store, n).await;
            store.close().await;
        }
        if !only.is_empty() && only != "postgres" {
            return;
        }
        let admin = "postgres://postgres@127.0.0.1:5432/test";
        use sqlx::Connection;
        match sqlx::PgConnection::connect(admin).await {
            Ok(mut c) => {
                let db = format!("hgw_bench_report_{n}");
                let exists: Option<(i32,)> =
                    sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                        .bind(&db)
                        .fetch_optional(&mut c)
                        .await
                        .unwrap();
                if exists.is_none() {
                    sqlx::query(&format!("CREATE DATABASE {db}"))
                        .execute(&mut c)
                        .await
                        .unwrap();
                }
                let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
                let store = prepare(&url, false, n).await;
                run("postgres", &store, n).await;
            }
            Err(e) => println!("postgres: skipped ({e})"),
        }
    });
}
