//! The answer rate through the real binary: scripted traffic with known outcomes,
//! the exact figures in `/api/v1/sla` and `/metrics`, the breach webhook, the call
//! records and their CSV export, a `kill -9` and restart, a recompute from the raw
//! events, and a database that stalls. On SQLite and on PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// 12345 → queue `seats` (a sipp UAS), 12399 → queue `empty` (its only agent never
/// logs in), 12398 → a department phone that is always busy.
fn plan(seat: &str, busy: &str) -> String {
    format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 200\n\n\
[[queue]]\nname = \"empty\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nagents = [\"9001\"]\n\n\
[[agent]]\nid = \"9001\"\nname = \"Never logs in\"\npassword = \"secret-9001\"\n\n\
[[line]]\nnumber = \"12399\"\nname = \"unstaffed line\"\ntarget = \"queue:empty\"\n\n\
[[line]]\nnumber = \"12398\"\nname = \"busy department\"\ntarget = \"{busy}\"\n"
    )
}

fn uas(sipp: &Path, scenario_file: &str) -> (Sipp, String) {
    let port = free_port();
    let args = vec!["-p".into(), port.to_string()];
    let s = Sipp::start(sipp, scenario_file, &args, Duration::from_secs(120));
    (s, format!("sip:127.0.0.1:{port}"))
}

fn callers(sipp: &Path, gw: &Gateway, file: &str, number: &str, n: u32, extra: &[&str]) -> Sipp {
    let mut more = vec!["-r", "50", "-timeout", "60s"];
    more.extend_from_slice(extra);
    Sipp::start(
        sipp,
        file,
        &uac_args(gw, number, n, &more),
        Duration::from_secs(60),
    )
}

fn wait_for(what: &str, gw: &Gateway, limit: Duration, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; health {}\n{}",
            gw.health(),
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn figures(sla: &Value, dim: &str, key: &str) -> Value {
    let list = match dim {
        "overall" => return sla["overall"]["24h"].clone(),
        "line" => &sla["lines"],
        "mode" => &sla["modes"],
        _ => &sla["queues"],
    };
    list.as_array()
        .and_then(|l| l.iter().find(|k| k["key"] == key))
        .map(|k| k["windows"]["24h"].clone())
        .unwrap_or_else(|| panic!("no {dim} {key} in {sla}"))
}

fn counts(f: &Value) -> [u64; 7] {
    [
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "transferred_out",
        "failed",
        "overflowed",
    ]
    .map(|k| f[k].as_u64().unwrap_or(u64::MAX))
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// 100 offered: 93 answered, 4 abandoned of which 2 short, 3 failed.
fn scripted_traffic(database: Option<String>) {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = uas(&sipp, "uas.xml");
    let (_busy, busy) = uas(&sipp, "uas_busy.xml");
    let hook = WebhookSink::start();
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = plan(&seat, &busy);
    opts.extra_config = format!("[sla]\nmin_offered = 20\nwebhook = \"{}\"\n", hook.url);
    if let Some(db) = &database {
        opts.extra_config += &format!("[store]\ndatabase = \"{db}\"\n");
    }
    let mut gw = Gateway::start(opts);

    // The answered calls first, so that the rate crosses the target only once, at
    // the end: 93/93, then at worst 93/96 (above the 96% recovery level), then 93/98.
    let answered = callers(&sipp, &gw, "uac.xml", "12345", 93, &["-d", "200"]).finish();
    assert_eq!(
        (answered.successful, answered.failed),
        (93, 0),
        "{answered:?}\n{}",
        gw.log()
    );
    let failed = callers(&sipp, &gw, "uac_expect_486.xml", "12398", 3, &[]);
    let short = callers(&sipp, &gw, "uac_cancel.xml", "12399", 2, &["-d", "1000"]);
    let long = callers(&sipp, &gw, "uac_cancel.xml", "12399", 2, &["-d", "6500"]);
    for (what, s, n) in [
        ("failed", failed, 3),
        ("short", short, 2),
        ("long", long, 2),
    ] {
        let r = s.finish();
        assert_eq!(
            (r.successful, r.failed),
            (n, 0),
            "{what}: {r:?}\n{}",
            gw.log()
        );
    }
    wait_for("100 records written", &gw, Duration::from_secs(20), || {
        gw.health()["store"]["written"].as_u64() == Some(100)
    });

    let sla = gw.get_json("/api/v1/sla");
    let rate = 93.0 / 98.0;
    let overall = figures(&sla, "overall", "all");
    assert_eq!(counts(&overall), [100, 93, 2, 2, 0, 3, 0], "{overall}");
    assert!(
        (overall["answer_rate"].as_f64().unwrap() - rate).abs() < 1e-9,
        "{overall}"
    );
    assert_eq!(
        overall["breached"], true,
        "93/98 < 95% with 98 ≥ 20 counted: {overall}"
    );
    assert_eq!(
        counts(&figures(&sla, "line", "12345")),
        [93, 93, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        counts(&figures(&sla, "line", "12399")),
        [4, 0, 2, 2, 0, 0, 0]
    );
    assert_eq!(
        counts(&figures(&sla, "line", "12398")),
        [3, 0, 0, 0, 0, 3, 0]
    );
    assert_eq!(
        counts(&figures(&sla, "queue", "seats")),
        [93, 93, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        counts(&figures(&sla, "queue", "empty")),
        [4, 0, 2, 2, 0, 0, 0]
    );
    assert_eq!(
        counts(&figures(&sla, "mode", "hotline")),
        [100, 93, 2, 2, 0, 3, 0]
    );

    let (code, text) = http_get(gw.http, "/metrics").unwrap();
    assert_eq!(code, 200);
    for (series, want) in [
        ("hotline_calls_total{outcome=\"answered\"}", 93.0),
        ("hotline_calls_total{outcome=\"abandoned\"}", 2.0),
        ("hotline_calls_total{outcome=\"short_abandoned\"}", 2.0),
        ("hotline_calls_total{outcome=\"failed\"}", 3.0),
        (
            "hotline_sla_breached{dimension=\"overall\",key=\"all\",window=\"24h\"}",
            1.0,
        ),
        ("hotline_wait_seconds_count", 93.0),
        ("hotline_store_written_total", 100.0),
    ] {
        assert_eq!(metric(&text, series), Some(want), "{series}\n{text}");
    }
    let m_rate = metric(
        &text,
        "hotline_sla_answer_rate{dimension=\"overall\",key=\"all\",window=\"24h\"}",
    );
    assert!((m_rate.unwrap() - rate).abs() < 1e-9, "{text}");

    // One breach alert per window for the overall figure, posted once each.
    wait_for("the breach webhook", &gw, Duration::from_secs(10), || {
        hook.received()
            .iter()
            .any(|a| a["dimension"] == "overall" && a["window"] == "24h")
    });
    // The three windows' alerts are in, and every alert the gateway raised (its
    // own count) has reached the hook: a repeat would show in either.
    let raised = || {
        let (_, text) = http_get(gw.http, "/metrics").unwrap();
        ["breach", "recovery"]
            .iter()
            .filter_map(|k| metric(&text, &format!("hotline_sla_alerts_total{{kind=\"{k}\"}}")))
            .sum::<f64>() as usize
    };
    gw.wait_until("every alert raised posted", Duration::from_secs(10), || {
        let got = hook.received();
        let overall = got.iter().filter(|a| a["dimension"] == "overall").count();
        overall >= 3 && got.len() == raised()
    });
    let overall_alerts: Vec<Value> = hook
        .received()
        .into_iter()
        .filter(|a| a["dimension"] == "overall")
        .collect();
    assert_eq!(
        overall_alerts.len(),
        3,
        "15m, 1h, 24h once each: {overall_alerts:?}"
    );
    assert!(
        overall_alerts
            .iter()
            .all(|a| a["kind"] == "breach" && a["target"] == 0.95)
    );

    // The call records: the callback list holds the two real abandons.
    let pending = gw.get_json("/api/v1/calls?callback=pending");
    assert_eq!(pending["count"], 2, "{pending}");
    for c in pending["calls"].as_array().unwrap() {
        assert_eq!(c["outcome"], "abandoned");
        assert_eq!(c["line"], "12399");
        let kinds: Vec<&str> = c["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"received"), "{kinds:?}");
        assert!(
            kinds.contains(&"offered") && kinds.last() == Some(&"caller_hung_up"),
            "{kinds:?}"
        );
    }
    let answered_calls = gw.get_json("/api/v1/calls?outcome=answered&limit=1000");
    assert_eq!(answered_calls["count"], 93);
    let c = &answered_calls["calls"][0];
    assert_eq!(
        (c["queue"].as_str(), c["answered_by"].as_str()),
        (Some("seats"), Some("12345")),
        "{c}"
    );
    assert!(c["answered_at_ms"].as_i64() >= c["offered_at_ms"].as_i64());
    let (code, csv) = http_get(gw.http, "/api/v1/calls?format=csv&order=asc").unwrap();
    assert_eq!(code, 200);
    assert_eq!(csv.lines().count(), 101, "header + 100 calls");
    assert!(csv.starts_with("id,sip_call_id,caller,called,"));
    let (code, body) = http_get(gw.http, "/api/v1/calls?frm=1").unwrap();
    assert_eq!(code, 400, "a misspelt filter is refused: {body}");

    // kill -9, restart: every finished call is still there, the 24 h figures too.
    let intervals_before = gw.get_json("/api/v1/sla/intervals");
    gw.kill9();
    gw.restart();
    let after = gw.get_json("/api/v1/sla");
    assert_eq!(
        after["overall"]["24h"], overall,
        "24 h figure survives a kill -9"
    );
    assert_eq!(
        counts(&figures(&after, "line", "12399")),
        [4, 0, 2, 2, 0, 0, 0]
    );
    assert_eq!(gw.get_json("/api/v1/calls?limit=1000")["count"], 100);
    assert_eq!(gw.get_json("/api/v1/sla/intervals"), intervals_before);

    // Recompute from the raw events gives the same intervals.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .args(["sla", "recompute", "--config"])
        .arg(gw.dir.0.join("gateway.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from 100 calls"));
    assert_eq!(gw.get_json("/api/v1/sla/intervals"), intervals_before);

    // An operator calls one citizen back.
    let id = pending["calls"][0]["id"].as_str().unwrap();
    let (code, _) = http_post(gw.http, &format!("/api/v1/calls/{id}/callback"), "{}").unwrap();
    assert_eq!(code, 200);
    assert_eq!(gw.get_json("/api/v1/calls?callback=pending")["count"], 1);
}

#[test]
fn scripted_traffic_gives_exact_figures_on_sqlite() {
    scripted_traffic(None);
}

#[test]
fn scripted_traffic_gives_exact_figures_on_postgres() {
    if let Some(url) = fresh_postgres("sla") {
        scripted_traffic(Some(url));
    }
}

/// The database stalls (another process holds SQLite's write lock): finished calls
/// wait in memory, new calls get 503 `store.backlog`, and once the lock goes every
/// answered call is written; none is lost.
#[test]
fn a_stalled_database_loses_no_finished_call() {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = uas(&sipp, "uas.xml");
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = plan(&seat, "sip:127.0.0.1:9");
    opts.extra_config = "[store]\nqueue_capacity = 4\nbatch_max = 2\n".into();
    let gw = Gateway::start(opts);
    let db = gw.dir.0.join("data/hotline.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lock = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        c
    });
    let r = callers(&sipp, &gw, "uac.xml", "12345", 40, &["-r", "20"]).finish();
    let h = gw.health();
    assert!(
        r.successful >= 1 && r.failed >= 1,
        "some calls are refused while stalled: {r:?}"
    );
    assert_eq!(r.successful + r.failed, 40, "{r:?}");
    assert_eq!(
        h["calls_ended"]["store.backlog"].as_u64(),
        Some(r.failed),
        "{h}"
    );
    assert_eq!(h["store"]["backlog"], true, "{h}");
    assert_eq!(h["store"]["written"], 0, "{h}");
    rt.block_on(async {
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    });
    wait_for("the backlog to drain", &gw, Duration::from_secs(30), || {
        let h = gw.health();
        let written = h["store"]["written"].as_u64().unwrap_or(0);
        let dropped = h["store"]["dropped"].as_u64().unwrap_or(0);
        h["store"]["backlog"] == false && written + dropped == 40
    });
    // The callers turned away count against the line and wait for a callback.
    let overall = figures(&gw.get_json("/api/v1/sla"), "overall", "all");
    assert_eq!(overall["failed"].as_u64(), Some(r.failed), "{overall}");
    assert_eq!(overall["offered"].as_u64(), Some(40), "{overall}");
    let answered = gw.get_json("/api/v1/calls?outcome=answered&limit=1000");
    assert_eq!(
        answered["count"].as_u64(),
        Some(r.successful),
        "every answered call written: {r:?} {}",
        gw.health()
    );
    assert_eq!(
        figures(&gw.get_json("/api/v1/sla"), "overall", "all")["answered"].as_u64(),
        Some(r.successful)
    );
    // Accepting calls again.
    let again = callers(&sipp, &gw, "uac.xml", "12345", 5, &[]).finish();
    assert_eq!((again.successful, again.failed), (5, 0), "{again:?}");
}

/// `kill -9` in the middle of load: after the restart every call the store had
/// taken is there exactly once, and the live figures are rebuilt from them.
#[test]
fn a_kill_in_the_middle_of_load_keeps_every_written_call() {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = uas(&sipp, "uas.xml");
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = plan(&seat, "sip:127.0.0.1:9");
    let mut gw = Gateway::start(opts);
    let load = callers(
        &sipp,
        &gw,
        "uac.xml",
        "12345",
        2000,
        &["-r", "100", "-d", "100"],
    );
    wait_for("calls under way", &gw, Duration::from_secs(20), || {
        gw.health()["store"]["written"].as_u64() >= Some(100)
    });
    let written_before = gw.health()["store"]["written"].as_u64().unwrap();
    gw.kill9();
    drop(load);
    gw.restart();
    let calls = gw.get_json("/api/v1/calls?limit=100000");
    let list = calls["calls"].as_array().unwrap();
    assert!(
        list.len() as u64 >= written_before,
        "{} stored < {written_before} acknowledged before the kill",
        list.len()
    );
    let ids: std::collections::HashSet<&str> =
        list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), list.len(), "no call stored twice");
    let offered = list.iter().filter(|c| !c["outcome"].is_null()).count() as u64;
    let answered = list.iter().filter(|c| c["outcome"] == "answered").count() as u64;
    let sla = gw.get_json("/api/v1/sla");
    let overall = figures(&sla, "overall", "all");
    assert_eq!(overall["offered"].as_u64(), Some(offered), "{overall}");
    assert_eq!(overall["answered"].as_u64(), Some(answered), "{overall}");
    // And it takes calls again.
    let r = callers(&sipp, &gw, "uac.xml", "12345", 20, &[]).finish();
    assert_eq!((r.successful, r.failed), (20, 0), "{r:?}");
    wait_for(
        "the new calls written",
        &gw,
        Duration::from_secs(10),
        || gw.health()["store"]["written"].as_u64() == Some(20),
    );
    let after = figures(&gw.get_json("/api/v1/sla"), "overall", "all");
    assert_eq!(after["answered"].as_u64(), Some(answered + 20), "{after}");
}

/// Stopping the gateway (SIGTERM) with callers waiting: each call ends with a
/// record (`gateway.shutdown`), written before the process exits.
#[test]
fn a_shutdown_records_the_calls_in_progress() {
    let Some(sipp) = sipp() else { return };
    let mut opts = GwOpts::to("queue:empty");
    opts.extra_dialplan = plan("sip:127.0.0.1:9", "sip:127.0.0.1:9");
    let mut gw = Gateway::start(opts);
    let waiting = callers(&sipp, &gw, "uac_cancel.xml", "12399", 5, &["-d", "30000"]);
    gw.wait_health("5 callers queued", Duration::from_secs(10), |h| {
        h["active_calls"] == 5
    });
    gw.signal("TERM");
    assert!(
        gw.wait_exit(Duration::from_secs(15)),
        "gateway did not stop\n{}",
        gw.log()
    );
    drop(waiting);
    gw.restart();
    let calls = gw.get_json("/api/v1/calls?limit=100");
    assert_eq!(calls["count"], 5, "{calls}");
    for c in calls["calls"].as_array().unwrap() {
        assert_eq!(c["reason"], "gateway.shutdown", "{c}");
        assert_eq!(c["outcome"], "failed", "{c}");
        assert_eq!(c["final_code"], 503, "{c}");
    }
}

/// PostgreSQL unreachable when the gateway starts: it takes calls anyway, and the
/// records reach the database once it answers.
#[test]
fn a_database_down_at_start_gets_the_records_later() {
    let Some(sipp) = sipp() else { return };
    let Some(url) = fresh_postgres("late") else {
        return;
    };
    let proxy = Forwarder::new("127.0.0.1:5432");
    let late = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let (_seats, seat) = uas(&sipp, "uas.xml");
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = plan(&seat, "sip:127.0.0.1:9");
    opts.extra_config = format!("[store]\ndatabase = \"{late}\"\n");
    let gw = Gateway::start(opts);
    let r = callers(&sipp, &gw, "uac.xml", "12345", 10, &[]).finish();
    assert_eq!((r.successful, r.failed), (10, 0), "calls are taken: {r:?}");
    assert_eq!(gw.health()["store"]["written"], 0);
    let (code, _) = http_get(gw.http, "/api/v1/calls").unwrap();
    assert_eq!(code, 503, "no store yet");
    proxy.open();
    wait_for("the records written", &gw, Duration::from_secs(30), || {
        gw.health()["store"]["written"].as_u64() == Some(10)
    });
    assert_eq!(gw.get_json("/api/v1/calls?outcome=answered")["count"], 10);
}
