//! Sustained call-record write throughput of the store, on SQLite (a file, WAL)
//! and on PostgreSQL (127.0.0.1:5432, a fresh database), the way the writer task
//! uses it: batches of `batch_max` records, each with its raw events and interval
//! increments, one transaction per batch. Prints records/s per run and the median.
//!
//! `cargo bench --bench store_writer [-- RECORDS [BATCH]]` (defaults 50 000 and 1 000).

use std::time::Instant;

use hotline_gateway::cdr::{CallRecord, Event, EventKind};
use hotline_gateway::sla::{self, SlaConfig, Tracker};
use hotline_gateway::store::{CallWrite, IntervalRow, Store};

const RUNS: usize = 3;

fn record(run: usize, i: usize, now: i64) -> CallRecord {
    let t0 = now - 60_000 + i as i64;
    let ev = |dt: i64, kind, detail: Option<&str>| Event {
        at_ms: t0 + dt,
        kind,
        detail: detail.map(str::to_string),
    };
    let abandoned = i.is_multiple_of(20);
    let mut events = vec![
        ev(0, EventKind::Received, Some("12345")),
        ev(2, EventKind::Offered, Some("hotline")),
        ev(3, EventKind::Ringback, None),
        ev(5, EventKind::AgentRinging, Some("1001")),
    ];
    if abandoned {
        events.push(ev(
            9_000,
            EventKind::CallerHungUp,
            Some("call.caller_cancelled"),
        ));
    } else {
        events.push(ev(4_000, EventKind::Answered, Some("1001")));
        events.push(ev(
            50_000,
            EventKind::CallerHungUp,
            Some("call.caller_hangup"),
        ));
    }
    CallRecord {
        id: format!("bench{run}-{i}"),
        sip_call_id: format!("{i}-bench@127.0.0.1"),
        caller: format!("138{:08}", i),
        called: "12345".into(),
        original: None,
        line: Some("12345".into()),
        mode: Some("hotline".into()),
        department: None,
        trunk: None,
        queue: Some("hotline".into()),
        agent: Some("1001".into()),
        answered_by: (!abandoned).then(|| "12345".into()),
        transferred_to: None,
        outcome: None,
        reason: "call.caller_hangup".into(),
        final_code: 200,
        received_at_ms: t0,
        offered_at_ms: Some(t0 + 2),
        answered_at_ms: (!abandoned).then_some(t0 + 4_000),
        ended_at_ms: t0 + 50_000,
        survey: None,
        recording: None,
        callback_pending: abandoned,
        callback_state: None,
        callback_done_at_ms: None,
        events,
    }
}

fn rows(r: &CallRecord, cfg: &SlaConfig) -> Vec<IntervalRow> {
    let Some(c) = sla::classify(r, cfg) else {
        return Vec::new();
    };
    Tracker::interval_rows(&c)
        .into_iter()
        .map(|x| IntervalRow {
            start_ms: x.start_ms,
            dimension: x.dimension.as_str().into(),
            key: x.key,
            offered: x.counters.offered as i64,
            answered: x.counters.answered as i64,
            answered_within: x.counters.answered_within as i64,
            abandoned: x.counters.abandoned as i64,
            short_abandoned: x.counters.short_abandoned as i64,
            transferred_out: x.counters.transferred_out as i64,
            failed: x.counters.failed as i64,
            overflowed: x.counters.overflowed as i64,
        })
        .collect()
}

async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .ok()?;
    let db = format!("hgw_bench_{}", std::process::id());
    let stale: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'hgw\\_bench\\_%'")
            .fetch_all(&mut admin)
            .await
            .ok()?;
    for (old,) in stale {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {old}"))
            .execute(&mut admin)
            .await;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await
        .ok()?;
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .ok()?;
    Some(format!("postgres://postgres@127.0.0.1:5432/{db}"))
}

async fn measure(name: &str, url: &str, n: usize, batch: usize) {
    let store = Store::open(url).await.expect("open the store");
    let cfg = SlaConfig::default();
    let now = hotline_gateway::util::time::unix_ms();
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let items: Vec<CallWrite> = (0..n)
            .map(|i| {
                let record = record(run, i, now);
                let intervals = rows(&record, &cfg);
                CallWrite {
                    record,
                    intervals,
                    ticket: None,
                }
            })
            .collect();
        let start = Instant::now();
        let mut written = 0;
        for chunk in items.chunks(batch) {
            written += store.insert_calls(chunk).await.expect("insert");
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(written, n);
        let rate = n as f64 / secs;
        println!(
            "{name}: run {}: {n} records in {secs:.2} s = {rate:.0} records/s",
            run + 1
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{name}: median {:.0} records/s (batch {batch})",
        rates[RUNS / 2]
    );
    store.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let batch: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("hgw-bench-{}", std::process::id()));
        measure(
            "sqlite",
            &format!("sqlite:{}/calls.db", dir.display()),
            n,
            batch,
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        match fresh_postgres().await {
            Some(url) => measure("postgres", &url, n, batch).await,
            None => println!("postgres: SKIPPED (no server on 127.0.0.1:5432)"),
        }
    });
}
