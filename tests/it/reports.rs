//! Reports through the real binary: `GET /api/v1/reports` (JSON and CSV) over
//! calls placed with sipp, compared with a count made by hand, on SQLite and on
//! PostgreSQL. Records of every kind, bad parameters and the printable page:
//! `reports_stored.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// 12345 → queue `seats` (a sipp UAS), 12399 → queue `empty` (never answered),
/// 12398 → a department phone that is always busy.
fn plan(seat: &str, busy: &str) -> String {
    format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 50\n\n\
[[queue]]\nname = \"empty\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nagents = [\"9001\"]\n\n\
[[agent]]\nid = \"9001\"\nname = \"Never logs in\"\npassword = \"secret-9001\"\n\n\
[[line]]\nnumber = \"12399\"\nname = \"unstaffed line\"\ntarget = \"queue:empty\"\n\n\
[[line]]\nnumber = \"12398\"\nname = \"busy department\"\ntarget = \"{busy}\"\n"
    )
}

fn sipp_run(sipp: &Path, gw: &Gateway, file: &str, number: &str, n: u32, extra: &[&str]) {
    let mut more = vec!["-r", "20", "-timeout", "60s"];
    more.extend_from_slice(extra);
    let r = Sipp::start(
        sipp,
        file,
        &uac_args(gw, number, n, &more),
        Duration::from_secs(60),
    )
    .finish();
    assert_eq!(
        (r.successful, r.failed),
        (n as u64, 0),
        "{file} {number}: {r:?}\n{}",
        gw.log()
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The report's total for a key.
pub(crate) fn total<'a>(r: &'a Value, key: &str) -> &'a Value {
    r["totals"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key))
        .unwrap_or_else(|| panic!("no total {key}: {r}"))
}

pub(crate) fn row<'a>(r: &'a Value, key: &str, period: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key && t["period"] == period))
        .unwrap_or_else(|| panic!("no row {key} {period}: {r}"))
}

pub(crate) fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

pub(crate) fn rate(v: &Value, k: &str, want: f64) {
    let got = v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!((got - want).abs() < 1e-9, "{k}: {got} ≠ {want} in {v}");
}

pub(crate) fn report(gw: &Gateway, query: &str) -> Value {
    let (code, body) = http_get_as(
        gw.http,
        &format!("/api/v1/reports?{query}"),
        Some(VIEWER_TOKEN),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// 13 calls from one number: 6 answered, 2 short and 2 long abandons, 3 busy.
fn placed_calls(database: Option<String>) {
    let Some(sipp) = sipp() else { return };
    let seat_port = free_port();
    let busy_port = free_port();
    let _seats = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), seat_port.to_string()],
        Duration::from_secs(120),
    );
    let _busy = Sipp::start(
        &sipp,
        "uas_busy.xml",
        &["-p".into(), busy_port.to_string()],
        Duration::from_secs(120),
    );
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = plan(
        &format!("sip:127.0.0.1:{seat_port}"),
        &format!("sip:127.0.0.1:{busy_port}"),
    );
    if let Some(db) = &database {
        opts.extra_config = format!("[store]\ndatabase = \"{db}\"\n");
    }
    let gw = Gateway::start(opts);
    let from = now_ms() - 1000;
    sipp_run(&sipp, &gw, "uac.xml", "12345", 6, &["-d", "200"]);
    sipp_run(&sipp, &gw, "uac_cancel.xml", "12399", 2, &["-d", "1000"]);
    sipp_run(&sipp, &gw, "uac_cancel.xml", "12399", 2, &["-d", "6500"]);
    sipp_run(&sipp, &gw, "uac_expect_486.xml", "12398", 3, &[]);
    let start = Instant::now();
    while gw.health()["store"]["written"].as_u64() != Some(13) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "records not written: {}",
            gw.health()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let to = now_ms() + 1000;

    let r = report(
        &gw,
        &format!("period=range&dimension=overall&from={from}&to={to}"),
    );
    let all = total(&r, "all");
    assert_eq!(
        [
            n(all, "offered"),
            n(all, "counted"),
            n(all, "answered"),
            n(all, "short_abandoned"),
            n(all, "abandoned"),
            n(all, "failed")
        ],
        [13, 11, 6, 2, 2, 3],
        "{all}"
    );
    rate(all, "answer_rate", 6.0 / 11.0);
    assert_eq!(n(all, "answered_within"), 6, "answered at once");
    rate(all, "answered_within_per_counted", 6.0 / 11.0);
    rate(all, "answered_within_per_answered", 1.0);
    assert_eq!(n(all, "callbacks_pending"), 2, "the two long abandons");
    // One number called 11 times (short abandons aside) within 24 h: one caller,
    // answered at the first call.
    assert_eq!(
        (n(all, "callers"), n(all, "callers_answered_first_call")),
        (1, 1)
    );
    assert!(all["talk_avg_s"].as_f64().unwrap() > 0.0, "{all}");

    let r = report(
        &gw,
        &format!("period=range&dimension=line&from={from}&to={to}"),
    );
    let l = total(&r, "12399");
    assert_eq!(
        [n(l, "offered"), n(l, "counted"), n(l, "answered")],
        [4, 2, 0]
    );
    rate(l, "answer_rate", 0.0);
    assert_eq!(n(total(&r, "12345"), "answered"), 6);
    assert_eq!(n(total(&r, "12398"), "failed"), 3);

    let r = report(
        &gw,
        &format!("period=range&dimension=seats&from={from}&to={to}"),
    );
    assert_eq!(n(total(&r, "12345"), "offered"), 10, "both ACD queues");
    assert_eq!(
        n(total(&r, "sip:12398"), "offered"),
        3,
        "the department phone apart"
    );

    // CSV, by parameter and by Accept.
    let a = http_request(
        gw.http,
        "GET",
        &format!("/api/v1/reports?period=range&dimension=line&from={from}&to={to}"),
        &[
            format!("Authorization: Bearer {VIEWER_TOKEN}"),
            "Accept: text/csv".into(),
        ],
        None,
    )
    .unwrap();
    assert_eq!(a.code, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        a.body
            .starts_with("dimension,key,period,start,end,offered,counted,answered"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .lines()
            .any(|l| l.starts_with("line,12399,total,") && l.contains(",4,2,0,")),
        "{}",
        a.body
    );
}

#[test]
fn placed_calls_are_reported_as_counted_by_hand_on_sqlite() {
    placed_calls(None);
}

#[test]
fn placed_calls_are_reported_as_counted_by_hand_on_postgres() {
    if let Some(url) = fresh_postgres("reports") {
        placed_calls(Some(url));
    }
}
