//! The same tests against a real SQLite file and the real PostgreSQL (a fresh
//! database per test). PostgreSQL missing: skipped loudly, or a failure under CI.

use super::*;
use crate::cdr::{CallRecord, Event, EventKind};

/// A scratch folder removed on drop (also when the test panics).
pub(crate) struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SQLite file in a fresh folder (removed when the [`Scratch`] drops), and a
/// fresh PostgreSQL database when the server answers.
pub(crate) async fn backends(name: &str) -> (Scratch, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "hgw-store-{name}-{}-{}",
        std::process::id(),
        crate::util::time::unix_ms()
    ));
    let mut urls = vec![format!("sqlite:{}/calls.db", dir.display())];
    match fresh_postgres(name).await {
        Ok(url) => urls.push(url),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL is required under CI=true: {e}")
        }
        Err(e) => eprintln!(
            "\n*** SKIPPING the PostgreSQL half of store::{name}: {e} ***\n\
             *** (start PostgreSQL on 127.0.0.1:5432 to run it)           ***\n"
        ),
    }
    (Scratch(dir), urls)
}

async fn fresh_postgres(name: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test").await?;
    let db = format!("hgw_{name}_{}", std::process::id());
    // Left by earlier runs; one in use by a concurrent run refuses to go.
    let stale: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT datname FROM pg_database WHERE datname LIKE 'hgw\\_{name}\\_%' AND datname <> '{db}'"
    ))
    .fetch_all(&mut admin)
    .await?;
    for (old,) in stale {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {old}"))
            .execute(&mut admin)
            .await;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    Ok(format!("postgres://postgres@127.0.0.1:5432/{db}"))
}

fn record(id: &str, ended: i64, outcome: &str, callback: bool) -> CallRecord {
    CallRecord {
        id: id.into(),
        sip_call_id: format!("{id}@sipp"),
        caller: "13800000000".into(),
        called: "12345".into(),
        original: Some("12315".into()),
        line: Some("12315".into()),
        mode: Some("call_forwarding".into()),
        department: Some("市场监管".into()),
        trunk: None,
        queue: Some("hotline".into()),
        agent: Some("1001".into()),
        answered_by: Some("12345".into()),
        transferred_to: None,
        outcome: Some(outcome.into()),
        reason: "call.caller_hangup".into(),
        final_code: 200,
        received_at_ms: ended - 60_000,
        offered_at_ms: Some(ended - 59_000),
        answered_at_ms: Some(ended - 50_000),
        ended_at_ms: ended,
        survey: Some(1),
        recording: None,
        callback_pending: callback,
        callback_state: None,
        callback_done_at_ms: None,
        events: vec![Event {
            at_ms: ended - 60_000,
            kind: EventKind::Received,
            detail: Some("12315".into()),
        }],
    }
}

fn write(record: CallRecord, intervals: Vec<IntervalRow>) -> CallWrite {
    CallWrite {
        record,
        intervals,
        ticket: None,
    }
}

fn increment(start: i64, key: &str, answered: i64) -> IntervalRow {
    IntervalRow {
        start_ms: start,
        dimension: "line".into(),
        key: key.into(),
        offered: 1,
        answered,
        ..Default::default()
    }
}

#[tokio::test]
async fn records_round_trip_and_retries_count_nothing_twice() {
    let (_scratch, urls) = backends("roundtrip").await;
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        let batch = vec![
            write(
                record("a-1", 1_000_000, "answered", false),
                vec![increment(900_000, "12315", 1)],
            ),
            write(
                record("a-2", 1_100_000, "abandoned", true),
                vec![increment(900_000, "12315", 0)],
            ),
        ];
        assert_eq!(store.insert_calls(&batch).await.unwrap(), 2, "{url}");
        // The same batch again (a retry after an unclear failure) adds nothing.
        assert_eq!(store.insert_calls(&batch).await.unwrap(), 0, "{url}");
        assert_eq!(store.count_calls().await.unwrap(), 2);
        let all = store
            .calls(&CallFilter {
                limit: 10,
                ascending: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all,
            vec![batch[0].record.clone(), batch[1].record.clone()],
            "{url}"
        );
        let rows = store.intervals(0, 2_000_000, Some("line")).await.unwrap();
        assert_eq!(rows.len(), 1, "{url}");
        assert_eq!((rows[0].offered, rows[0].answered), (2, 1), "{url}");
        // Reopening runs no migration twice.
        drop(store);
        let store = Store::open(&url).await.expect("reopen");
        assert_eq!(store.count_calls().await.unwrap(), 2);
    }
}

#[tokio::test]
async fn filters_and_callbacks() {
    let (_scratch, urls) = backends("filters").await;
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        let mut batch = Vec::new();
        for i in 0..10 {
            let outcome = if i % 3 == 0 { "abandoned" } else { "answered" };
            let mut r = record(&format!("f-{i}"), 1_000_000 + i * 1000, outcome, i % 3 == 0);
            if i >= 5 {
                r.line = Some("12345".into());
            }
            if i == 7 {
                r.trunk = Some("police-110".into());
            }
            batch.push(write(r, Vec::new()));
        }
        store.insert_calls(&batch).await.unwrap();
        let get = |f: CallFilter| {
            let store = store.clone();
            async move {
                let limit = if f.limit == 0 { 100 } else { f.limit };
                let f = CallFilter { limit, ..f };
                store
                    .calls(&f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
            }
        };
        let pending = get(CallFilter {
            callback_pending: Some(true),
            ..Default::default()
        })
        .await;
        assert_eq!(pending, ["f-9", "f-6", "f-3", "f-0"], "{url}");
        // Calls 110 handed to 12345 are read apart by their trunk.
        let from_110 = get(CallFilter {
            trunk: Some("police-110".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(from_110, ["f-7"], "{url}");
        let stored = store
            .calls(&CallFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let trunks: Vec<Option<&str>> = stored.iter().map(|r| r.trunk.as_deref()).collect();
        assert_eq!(trunks.iter().filter(|t| t.is_some()).count(), 1, "{url}");
        let range = get(CallFilter {
            from_ms: Some(1_002_000),
            to_ms: Some(1_005_000),
            line: Some("12315".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(range, ["f-4", "f-3", "f-2"], "{url}");
        let latest = get(CallFilter {
            limit: 2,
            ..Default::default()
        })
        .await;
        assert_eq!(latest, ["f-9", "f-8"], "{url}: newest first, limited");
        let next = get(CallFilter {
            limit: 3,
            after: Some((1_008_000, "f-8".into())),
            ..Default::default()
        })
        .await;
        assert_eq!(next, ["f-7", "f-6", "f-5"], "{url}: the page after f-8");
        let next = get(CallFilter {
            limit: 3,
            ascending: true,
            after: Some((1_008_000, "f-8".into())),
            ..Default::default()
        })
        .await;
        assert_eq!(next, ["f-9"], "{url}: the page after f-8, oldest first");
        assert!(store.clear_callback("f-3").await.unwrap());
        assert!(
            !store.clear_callback("f-3").await.unwrap(),
            "already cleared"
        );
        assert!(!store.clear_callback("f-1").await.unwrap(), "never pending");
        let pending = get(CallFilter {
            callback_pending: Some(true),
            outcome: Some("abandoned".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(pending, ["f-9", "f-6", "f-0"], "{url}");
    }
}

#[tokio::test]
async fn intervals_are_replaced_by_a_recompute_and_alerts_kept() {
    let (_scratch, urls) = backends("recompute").await;
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        let batch = vec![write(
            record("r-1", 1_000_000, "answered", false),
            vec![
                increment(900_000, "12315", 1),
                increment(1_800_000, "12345", 1),
            ],
        )];
        store.insert_calls(&batch).await.unwrap();
        store
            .replace_intervals(0, 1_800_000, &[increment(900_000, "12315", 0)])
            .await
            .unwrap();
        let rows = store.intervals(0, i64::MAX, None).await.unwrap();
        assert_eq!(rows.len(), 2, "{url}: the row outside the range stays");
        assert_eq!(rows[0].answered, 0, "{url}");
        assert_eq!(rows[1].key, "12345", "{url}");
        let alert = AlertRow {
            at_ms: 5,
            kind: "breach".into(),
            dimension: "overall".into(),
            key: "all".into(),
            window: "24h".into(),
            answer_rate: Some(0.9),
            offered: 40,
            target: 0.95,
        };
        store.insert_alert(&alert).await.unwrap();
        assert_eq!(store.alerts(0).await.unwrap(), vec![alert], "{url}");
    }
}

#[test]
fn urls_are_recognised() {
    assert!(matches!(normalise("mysql://x"), Err(StoreError::Url(_))));
    assert!(matches!(normalise("sqlite:"), Err(StoreError::Url(_))));
    let (b, u) = normalise("sqlite::memory:").unwrap();
    assert_eq!(
        (b, u.as_str()),
        (Backend::Sqlite, "sqlite://:memory:?mode=rwc")
    );
    let (_, u) = normalise("sqlite:src/../x.db").unwrap();
    let abs = std::env::current_dir().unwrap().join("src/../x.db");
    assert_eq!(
        u,
        format!("sqlite://{}?mode=rwc", abs.display()),
        "relative paths made absolute"
    );
    let (b, _) = normalise("postgres://postgres@127.0.0.1/test").unwrap();
    assert_eq!(b, Backend::Postgres);
}

fn stub(id: &str, revision: i64, state: &str, deliver: bool) -> TicketWrite {
    TicketWrite {
        id: id.into(),
        line: Some("12345".into()),
        state: state.into(),
        revision,
        at_ms: 1_000 + revision,
        stub: format!("{{\"id\":\"{id}\",\"revision\":{revision},\"state\":\"{state}\"}}"),
        deliver,
    }
}

#[tokio::test]
async fn ticket_outbox_is_in_order_per_stub_and_redrivable() {
    let (_scratch, urls) = backends("outbox").await;
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        assert_eq!(
            store
                .open_tickets(&[stub("t-1", 1, "open", true), stub("t-2", 1, "open", false)])
                .await
                .unwrap(),
            2
        );
        // The call ends: its record and the stub's final revision in one transaction.
        let mut w = write(record("t-1", 5_000, "answered", false), Vec::new());
        w.ticket = Some(stub("t-1", 2, "answered", true));
        store.insert_calls(&[w.clone()]).await.unwrap();
        // An older revision arriving late changes nothing.
        assert_eq!(
            store
                .open_tickets(&[stub("t-1", 1, "open", true)])
                .await
                .unwrap(),
            0
        );
        let due = store.due_outbox(10_000, 10).await.unwrap();
        assert_eq!(
            due.len(),
            1,
            "{url}: revision 2 waits for revision 1: {due:?}"
        );
        assert_eq!((due[0].ticket_id.as_str(), due[0].revision), ("t-1", 1));
        store.outbox_delivered("t-1", 1, 201, 10_000).await.unwrap();
        let due = store.due_outbox(10_000, 10).await.unwrap();
        assert_eq!(
            (due[0].ticket_id.as_str(), due[0].revision),
            ("t-1", 2),
            "{url}"
        );
        // Fails, then is retried later, then dead-lettered.
        store
            .outbox_failed("t-1", 2, Some(500), "HTTP 500", Some(20_000))
            .await
            .unwrap();
        assert!(
            store.due_outbox(10_000, 10).await.unwrap().is_empty(),
            "{url}: not yet"
        );
        assert_eq!(store.due_outbox(20_000, 10).await.unwrap().len(), 1);
        store
            .outbox_failed("t-1", 2, None, "connection refused", None)
            .await
            .unwrap();
        let t = store.ticket("t-1").await.unwrap().unwrap();
        assert_eq!(
            (t.state.as_str(), t.revision, t.delivery.as_str()),
            ("answered", 2, "dead")
        );
        assert_eq!(
            (t.attempts, t.last_error.as_deref()),
            (Some(2), Some("connection refused"))
        );
        assert_eq!(store.outbox_counts().await.unwrap(), (0, 1), "{url}");
        assert_eq!(store.redrive("t-1", 30_000).await.unwrap(), 1);
        assert_eq!(
            store.redrive("t-1", 30_000).await.unwrap(),
            0,
            "nothing dead any more"
        );
        store.outbox_delivered("t-1", 2, 200, 31_000).await.unwrap();
        let t = store.ticket("t-1").await.unwrap().unwrap();
        assert_eq!(t.delivery, "delivered", "{url}");
        // A local stub never enters the outbox; open ones are listed for a restart.
        let local = store.ticket("t-2").await.unwrap().unwrap();
        assert_eq!((local.delivery.as_str(), local.attempts), ("local", None));
        let open = store.open_stubs(10).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].0, "t-2");
        let listed = store
            .tickets(&TicketFilter {
                delivery: Some("delivered".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{url}");
        assert_eq!(listed[0].id, "t-1");
    }
}

/// SQLite's disk troubles (read-only, I/O, full; any extended code of them) are
/// retried like an outage; constraint and other refusals are not.
#[test]
fn sqlite_disk_errors_are_retried() {
    // BUSY, LOCKED, BUSY_SNAPSHOT, READONLY, READONLY_DBMOVED, IOERR, IOERR_WRITE,
    // IOERR_FSYNC, FULL.
    for code in ["5", "6", "517", "8", "1032", "10", "778", "1034", "13"] {
        assert!(sqlite_transient(code), "{code}");
    }
    // ERROR, CORRUPT, CANTOPEN, CONSTRAINT, CONSTRAINT_UNIQUE, not a number.
    for code in ["1", "11", "14", "19", "2067", "23505", ""] {
        assert!(!sqlite_transient(code), "{code}");
    }
}

/// A report read from the store page by page (pages of 2, offers tied on the
/// same millisecond) equals the report over the same records in memory; calls
/// never offered and calls offered outside the range stay out.
#[tokio::test]
async fn reports_read_calls_by_first_offer_in_pages() {
    use crate::reporting::report::{self, Dimension, PeriodKind, ReportSpec, Zone};
    let (_scratch, urls) = backends("reports").await;
    let t0 = 1_793_548_800_000; // 2026-11-02T00:00:00+08:00
    let mut records = Vec::new();
    for i in 0..9i64 {
        // Offered at t0 + i/2 hours (two share each millisecond), answered
        // after i seconds.
        let at = t0 + (i / 2) * 3_600_000;
        let mut r = record(&format!("r-{i}"), at + 60_000, "answered", false);
        r.caller = format!("1380000000{i}");
        r.offered_at_ms = Some(at);
        r.events = vec![
            Event {
                at_ms: at,
                kind: EventKind::Offered,
                detail: Some("hotline".into()),
            },
            Event {
                at_ms: at + i * 1000,
                kind: EventKind::Answered,
                detail: None,
            },
            Event {
                at_ms: at + 60_000,
                kind: EventKind::CallerHungUp,
                detail: None,
            },
        ];
        records.push(r);
    }
    let mut before = records[0].clone();
    before.id = "before".into();
    before.offered_at_ms = Some(t0 - 1);
    for e in &mut before.events {
        e.at_ms -= 1;
    }
    let mut never = records[1].clone();
    never.id = "never".into();
    never.offered_at_ms = None;
    never.events.retain(|e| e.kind != EventKind::Offered);
    let spec = ReportSpec {
        period: PeriodKind::Day,
        dimension: Dimension::Line,
        from_ms: t0,
        to_ms: t0 + 86_400_000,
        zone: Zone {
            offset_minutes: 480,
        },
        repeat_window_ms: 3_600_000,
        sla: crate::sla::SlaConfig::default(),
    };
    let mut every = records.clone();
    every.push(before.clone());
    every.push(never.clone());
    let want = report::build(&every, spec.clone());
    assert_eq!(want.totals[0].figures.offered, 9);
    assert_eq!(
        want.totals[0].figures.callers, 8,
        "r-0 repeats the caller of `before`, offered 1 ms ahead of the range"
    );
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        let mut all: Vec<CallWrite> = records.iter().cloned().map(|r| write(r, vec![])).collect();
        all.push(write(before.clone(), vec![]));
        all.push(write(never.clone(), vec![]));
        store.insert_calls(&all).await.unwrap();
        let got = report::run_paged(&store, spec.clone(), 2).await.unwrap();
        assert_eq!(got, want, "{url}");
    }
}

#[tokio::test]
async fn callback_attempts_move_a_missed_call_to_done_or_given_up() {
    use crate::cdr::{CallbackAttempt, CallbackResult};
    let (_scratch, urls) = backends("callbacks").await;
    let hour = 3_600_000;
    let now = 1_000 * hour;
    for url in urls {
        let store = Store::open(&url).await.expect(&url);
        let mut a = record("m-a", now - 30 * hour, "abandoned", true);
        a.caller = "13800000001".into();
        let mut b = record("m-b", now - 30 * hour, "abandoned", true);
        b.caller = "13800000002".into();
        let c = record("m-c", now - 2 * hour, "abandoned", true);
        store
            .insert_calls(&[write(a, vec![]), write(b, vec![]), write(c, vec![])])
            .await
            .unwrap();
        // The same citizen also missed once more: one answered callback
        // settles both.
        let mut a2 = record("m-a2", now - 29 * hour, "abandoned", true);
        a2.caller = "13800000001".into();
        store.insert_calls(&[write(a2, vec![])]).await.unwrap();
        let list = store.pending_callbacks(now - 48 * hour, 10).await.unwrap();
        assert_eq!(list.len(), 4, "{url}");
        assert_eq!(list[0].1, "m-a", "oldest first: {url}");
        let attempt = |id: &str, missed: &str, at: i64, result| CallbackAttempt {
            id: id.into(),
            missed: missed.into(),
            agent: "1001".into(),
            number: "13800000001".into(),
            at_ms: at,
            result,
        };
        // m-a: no answer, then answered 20 hours after it was missed.
        store.callback_started("m-a").await.unwrap();
        assert_eq!(
            store.callback_of("m-a").await.unwrap(),
            Some((true, Some("in_progress".into()), 0)),
            "{url}"
        );
        let first = attempt("t-1", "m-a", now - 12 * hour, CallbackResult::NoAnswer);
        store.callback_attempt(&first, 3).await.unwrap();
        store.callback_attempt(&first, 3).await.unwrap(); // a retried write
        assert_eq!(
            store.callback_of("m-a").await.unwrap(),
            Some((true, Some("pending".into()), 1)),
            "a retry counts nothing twice: {url}"
        );
        let done = attempt("t-2", "m-a", now - 10 * hour, CallbackResult::Answered);
        store.callback_attempt(&done, 3).await.unwrap();
        assert_eq!(
            store.callback_of("m-a").await.unwrap(),
            Some((false, Some("done".into()), 2)),
            "{url}"
        );
        assert_eq!(
            store.callback_of("m-a2").await.unwrap(),
            Some((false, Some("done".into()), 0)),
            "the citizen's other missed call is settled too: {url}"
        );
        // m-b: three failures, given up.
        for (i, r) in [
            CallbackResult::Busy,
            CallbackResult::NoAnswer,
            CallbackResult::WrongNumber,
        ]
        .into_iter()
        .enumerate()
        {
            let t = attempt(&format!("u-{i}"), "m-b", now - 5 * hour + i as i64, r);
            store.callback_attempt(&t, 3).await.unwrap();
        }
        assert_eq!(
            store.callback_of("m-b").await.unwrap(),
            Some((false, Some("given_up".into()), 3)),
            "{url}"
        );
        let tried = store.callback_attempts("m-b").await.unwrap();
        assert_eq!(tried.len(), 3, "{url}");
        assert_eq!(tried[2].result, CallbackResult::WrongNumber);
        // Only m-c is still owed; of the two whose 24 h are up, one was
        // called back in time.
        let list = store.pending_callbacks(now - 48 * hour, 10).await.unwrap();
        assert_eq!(list, vec![("13800000000".to_string(), "m-c".to_string())]);
        let s = store.callback_summary(now, 24).await.unwrap();
        assert_eq!(
            (s.pending, s.due, s.within_limit),
            (1, 3, 2),
            "{url}: {s:?}"
        );
        assert_eq!(s.within_limit_share, Some(2.0 / 3.0));
        assert_eq!(s.oldest_pending_age_s, Some(2 * 3600));
        assert!(store.callback_of("nope").await.unwrap().is_none());
    }
}
