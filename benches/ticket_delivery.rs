//! Ticket delivery throughput: stubs delivered per second from the store's outbox
//! to a local receiver (axum, in-process, answering 201), through the real
//! delivery loop (`tickets::deliver::run`), on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench ticket_delivery [-- STUBS]` (default 10 000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hotline_gateway::store::{Store, TicketWrite};
use hotline_gateway::tickets::deliver::{self, DeliveryStats, TicketsConfig};

const RUNS: usize = 3;

async fn receiver() -> (String, Arc<AtomicU64>) {
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let app = Router::new().route(
        "/tickets",
        post(move |_body: String| {
            let g = g.clone();
            async move {
                g.fetch_add(1, Ordering::Relaxed);
                StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tickets", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn stub(run: usize, i: usize) -> TicketWrite {
    let id = format!("bench{run}-{i}");
    TicketWrite {
        stub: format!(
            "{{\"schema\":\"hotline.ticket-stub/v1\",\"id\":\"{id}\",\"revision\":1,\"state\":\"open\",\
\"call_id\":\"{i}@bench\",\"line\":\"12345\",\"line_name\":\"12345\",\"mode\":\"hotline\",\"caller\":\"13800000000\",\
\"called\":\"12345\",\"queue\":\"hotline\",\"offered_at\":\"2026-11-27T06:00:00.000Z\",\"deadline\":\"2026-12-04\"}}"
        ),
        id,
        line: Some("12345".into()),
        state: "open".into(),
        revision: 1,
        at_ms: 0,
        deliver: true,
    }
}

async fn measure(name: &str, url: &str, n: usize) {
    let store = Store::open(url).await.expect("open the store");
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let stubs: Vec<TicketWrite> = (0..n).map(|i| stub(run, i)).collect();
        for chunk in stubs.chunks(1000) {
            store.open_tickets(chunk).await.unwrap();
        }
        let (target, got) = receiver().await;
        let cfg = TicketsConfig {
            url: Some(target),
            ..TicketsConfig::default()
        };
        let stats = Arc::new(DeliveryStats::default());
        let start = Instant::now();
        let task = tokio::spawn(deliver::run(store.clone(), cfg, stats.clone()));
        while stats.delivered.load(Ordering::Relaxed) < n as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        task.abort();
        let rate = n as f64 / secs;
        println!(
            "{name}: run {}: {n} stubs in {secs:.2} s = {rate:.0} stubs/s (receiver saw {})",
            run + 1,
            got.load(Ordering::Relaxed)
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("{name}: median {:.0} stubs/s", rates[RUNS / 2]);
}

async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .ok()?;
    let db = format!("hgw_bench_tk_{}", std::process::id());
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

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("hgw-bench-tk-{}", std::process::id()));
        measure("sqlite", &format!("sqlite:{}/t.db", dir.display()), n).await;
        let _ = std::fs::remove_dir_all(&dir);
        match fresh_postgres().await {
            Some(url) => {
                measure("postgres", &url, n).await;
                let db = url.rsplit('/').next().unwrap_or_default().to_string();
                if let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(
                    "postgres://postgres@127.0.0.1:5432/test",
                )
                .await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            }
            None => println!("postgres: SKIPPED (no server on 127.0.0.1:5432)"),
        }
    });
}
