//! Reports through the real binary: `GET /api/v1/reports` (JSON, CSV, the
//! viewer token, bad parameters) and the printable page in headless Chromium,
//! compared with a count made by hand: once over calls placed with sipp, once
//! over records of every kind written into a real store before the start. On
//! SQLite and on PostgreSQL.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hotline_gateway::cdr::{CallRecord, Event, EventKind as K};
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
fn total<'a>(r: &'a Value, key: &str) -> &'a Value {
    r["totals"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key))
        .unwrap_or_else(|| panic!("no total {key}: {r}"))
}

fn row<'a>(r: &'a Value, key: &str, period: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key && t["period"] == period))
        .unwrap_or_else(|| panic!("no row {key} {period}: {r}"))
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn rate(v: &Value, k: &str, want: f64) {
    let got = v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!((got - want).abs() < 1e-9, "{k}: {got} ≠ {want} in {v}");
}

fn report(gw: &Gateway, query: &str) -> Value {
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

fn ms(s: &str) -> i64 {
    hotline_gateway::dialplan::time::parse_rfc3339(s).unwrap() * 1000
}

/// A record of a call on `line` offered at `at` to `place`, then `rest`
/// (offsets in seconds).
fn rec(
    id: &str,
    caller: &str,
    line: &str,
    place: &str,
    at: &str,
    rest: &[(i64, K, &str)],
) -> CallRecord {
    let at = ms(at);
    let mut events = vec![Event {
        at_ms: at,
        kind: K::Offered,
        detail: Some(place.into()),
    }];
    for (s, kind, d) in rest {
        events.push(Event {
            at_ms: at + s * 1000,
            kind: *kind,
            detail: (!d.is_empty()).then(|| d.to_string()),
        });
    }
    let answered = events
        .iter()
        .find(|e| e.kind == K::Answered)
        .map(|e| e.at_ms);
    let ended = events.last().unwrap().at_ms;
    let (mode, dept) = if line == "12333" {
        ("parallel", Some("人社".to_string()))
    } else {
        ("hotline", None)
    };
    CallRecord {
        id: id.into(),
        sip_call_id: format!("{id}@it"),
        caller: caller.into(),
        called: line.into(),
        original: None,
        line: Some(line.into()),
        mode: Some(mode.into()),
        department: dept,
        queue: Some(place.into()),
        agent: None,
        answered_by: answered.map(|_| {
            if place.starts_with("legacy:") && rest.iter().all(|e| e.1 != K::Overflowed) {
                "legacy".into()
            } else {
                "12345".into()
            }
        }),
        transferred_to: None,
        outcome: None,
        reason: if rest.iter().any(|e| e.1 == K::CalleeHungUp) {
            "call.callee_hangup".into()
        } else {
            "call.caller_hangup".into()
        },
        final_code: 200,
        received_at_ms: at,
        offered_at_ms: Some(at),
        answered_at_ms: answered,
        ended_at_ms: ended,
        survey: None,
        recording: None,
        callback_pending: false,
        events,
    }
}

/// Two days of November 2026 (Asia/Shanghai), written into the store before
/// the gateway starts.
fn stored() -> Vec<CallRecord> {
    let mut v = vec![
        // 09:00 answered after 4 s by an agent who hangs up first; rated 1.
        rec(
            "r1",
            "c1",
            "12345",
            "seats",
            "2026-11-02T09:00:00+08:00",
            &[(4, K::Answered, "a"), (64, K::CalleeHungUp, "")],
        ),
        // 09:30 answered after 30 s (late), the caller hangs up.
        rec(
            "r2",
            "c2",
            "12345",
            "seats",
            "2026-11-02T09:30:00+08:00",
            &[(30, K::Answered, "a"), (90, K::CallerHungUp, "")],
        ),
        // 10:00 abandoned after 20 s: a callback is owed.
        rec(
            "r3",
            "c3",
            "12345",
            "seats",
            "2026-11-02T10:00:00+08:00",
            &[(20, K::CallerHungUp, "")],
        ),
        // 10:10 short abandon after 2 s.
        rec(
            "r4",
            "c4",
            "12345",
            "seats",
            "2026-11-02T10:10:00+08:00",
            &[(2, K::CallerHungUp, "")],
        ),
        // 11:00 parallel line answered by the legacy seats after 5 s.
        rec(
            "r5",
            "c5",
            "12333",
            "legacy:12333",
            "2026-11-02T11:00:00+08:00",
            &[(5, K::Answered, "legacy"), (65, K::CalleeHungUp, "")],
        ),
        // 11:30 parallel line overflowed to 12345 after 20 s, answered 3 s later; rated 3.
        rec(
            "r6",
            "c6",
            "12333",
            "legacy:12333",
            "2026-11-02T11:30:00+08:00",
            &[
                (20, K::Overflowed, "seats"),
                (23, K::Answered, "a"),
                (83, K::CalleeHungUp, ""),
            ],
        ),
        // Day 2, 09:15: c3 again, 23 h after r3 (the same caller episode), answered after 2 s.
        rec(
            "r7",
            "c3",
            "12345",
            "seats",
            "2026-11-03T09:15:00+08:00",
            &[(2, K::Answered, "a"), (32, K::CallerHungUp, "")],
        ),
    ];
    v[0].survey = Some(1);
    v[5].survey = Some(3);
    v[2].callback_pending = true;
    v
}

fn stored_records(database: Option<String>) {
    let opts = GwOpts::to("sip:127.0.0.1:9");
    let dir = TempDir::new("report-store");
    let url = database
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}/calls.db", dir.0.display()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = hotline_gateway::store::Store::open(&url).await.unwrap();
        let sla = hotline_gateway::sla::SlaConfig::default();
        let writes: Vec<_> = stored()
            .into_iter()
            .map(|mut record| {
                record.outcome = hotline_gateway::sla::classify(&record, &sla)
                    .map(|c| c.outcome.as_str().to_string());
                hotline_gateway::store::CallWrite {
                    record,
                    intervals: vec![],
                    ticket: None,
                }
            })
            .collect();
        assert_eq!(store.insert_calls(&writes).await.unwrap(), 7);
        store.close().await;
    });
    let mut opts = opts;
    opts.extra_config = format!("[store]\ndatabase = \"{url}\"\n");
    let gw = Gateway::start(opts);

    let q = "period=day&dimension=overall&from=2026-11-02&to=2026-11-03";
    let r = report(&gw, q);
    assert_eq!(r["from"], "2026-11-02T00:00:00+08:00");
    assert_eq!(
        r["to"], "2026-11-04T00:00:00+08:00",
        "a date `to` is included whole"
    );
    let d1 = row(&r, "all", "2026-11-02");
    // r1..r6: 6 offered, r4 short, 4 answered (r1 r2 r5 r6), r3 abandoned.
    assert_eq!(
        [
            n(d1, "offered"),
            n(d1, "counted"),
            n(d1, "answered"),
            n(d1, "abandoned")
        ],
        [6, 5, 4, 1]
    );
    // Within 15 s of the first offer: r1 (4 s), r5 (5 s); r2 30 s, r6 23 s.
    assert_eq!(n(d1, "answered_within"), 2);
    rate(d1, "answer_rate", 4.0 / 5.0);
    rate(d1, "answered_within_per_counted", 2.0 / 5.0);
    rate(d1, "answered_within_per_answered", 2.0 / 4.0);
    rate(d1, "wait_avg_s", (4.0 + 30.0 + 5.0 + 23.0) / 4.0);
    assert_eq!(n(d1, "wait_p90_s"), 30);
    rate(d1, "talk_avg_s", (60.0 + 60.0 + 60.0 + 60.0) / 4.0);
    // Rated: r1 1, r6 3; asked (a 12345 agent hung up first): r1, r6.
    assert_eq!(
        [
            n(d1, "surveyed"),
            n(d1, "survey_eligible"),
            n(d1, "satisfied"),
            n(d1, "dissatisfied")
        ],
        [2, 2, 1, 1]
    );
    rate(d1, "survey_response_rate", 1.0);
    rate(d1, "satisfied_share", 0.5);
    assert_eq!(
        [n(d1, "callbacks_owed"), n(d1, "callbacks_pending")],
        [1, 1]
    );
    assert_eq!(
        [
            n(d1, "callers"),
            n(d1, "callers_answered_first_call"),
            n(d1, "callers_answered")
        ],
        [5, 4, 5],
        "c3 answered on day 2 within 24 h"
    );
    let d2 = row(&r, "all", "2026-11-03");
    assert_eq!(
        [n(d2, "offered"), n(d2, "answered"), n(d2, "callers")],
        [1, 1, 0],
        "r7 repeats r3"
    );
    let t = total(&r, "all");
    assert_eq!(
        (t["peak_hour"].as_u64(), n(t, "offered")),
        (Some(9), 7),
        "09: r1 r2 r7"
    );

    let r = report(&gw, "period=month&dimension=seats&from=2026-11&to=2026-11");
    let s = row(&r, "12345", "2026-11");
    // 12345's seats: r1 r2 r3 r4 r7 and r6 from its overflow (wait 3 s: within).
    assert_eq!(
        [n(s, "offered"), n(s, "answered"), n(s, "answered_within")],
        [6, 4, 3]
    );
    let l = row(&r, "legacy:12333", "2026-11");
    assert_eq!(
        [n(l, "offered"), n(l, "answered"), n(l, "overflowed")],
        [2, 1, 1]
    );
    let r = report(
        &gw,
        "period=range&dimension=department&from=2026-11&to=2026-11",
    );
    assert_eq!(n(total(&r, "人社"), "offered"), 2);

    // The test dialplan has no holiday calendar: the metrics say so.
    let (code, metrics) = http_get_as(gw.http, "/metrics", Some(VIEWER_TOKEN)).unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("\nhotline_calendar_last_year 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nhotline_calendar_next_year_missing 1\n"),
        "{metrics}"
    );
    assert!(
        gw.log().contains("no [[calendar]] for"),
        "warned at start: {}",
        gw.log()
    );

    // The attacker: no token, a wrong one, bad parameters.
    let path = format!("/api/v1/reports?{q}");
    assert_eq!(http_get_as(gw.http, &path, None).unwrap().0, 401);
    assert_eq!(http_get_as(gw.http, &path, Some("guess")).unwrap().0, 401);
    for (query, code) in [
        ("dimension=agent", "bad_dimension"),
        ("period=year", "bad_period"),
        ("from=2026-11-05&to=2026-11-01", "bad_range"),
        ("from=2020-01-01&to=2026-01-01", "bad_range"),
        ("from=tomorrow", "bad_time"),
        ("format=xlsx", "bad_format"),
        ("sql=1", "bad_query"),
    ] {
        let a = http_request(
            gw.http,
            "GET",
            &format!("/api/v1/reports?{query}"),
            &[format!("Authorization: Bearer {VIEWER_TOKEN}")],
            None,
        )
        .unwrap();
        assert_eq!(
            (a.code, a.error_code().as_deref()),
            (400, Some(code)),
            "{query}: {}",
            a.body
        );
    }

    // The page, in headless Chromium.
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let profile = TempDir::new("chromium");
    let url = format!(
        "http://{}/reports?period=day&dimension=overall&from=2026-11-02&to=2026-11-03#token={VIEWER_TOKEN}",
        gw.http
    );
    let out = Command::new("timeout")
        .arg("90")
        .arg(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dom.contains("id=\"report-status\" data-state=\"ok\"")
            || dom.contains("data-state=\"ok\" id=\"report-status\""),
        "{dom}"
    );
    let section = &dom[dom
        .find("<section class=\"key\" data-key=\"all\"")
        .expect("a section for all")..];
    let day1 = &section[section.find("data-period=\"2026-11-02\"").unwrap()..];
    assert!(
        day1.contains("data-field=\"offered\" data-value=\"6\""),
        "{day1}"
    );
    assert!(
        day1.contains("data-field=\"answer_rate\" data-value=\"0.8\" class=\"bad\">80.00%"),
        "{day1}"
    );
    assert!(
        day1.contains("data-field=\"answered_within_per_answered\" data-value=\"0.5\">50.00%"),
        "{day1}"
    );
    assert!(
        section.contains("data-field=\"peak_hour\">9:00"),
        "{section}"
    );
    assert!(
        dom.contains("一次接通率") && dom.contains("@media print"),
        "bilingual, printable"
    );
}

#[test]
fn stored_records_of_every_kind_are_reported_and_printed_on_sqlite() {
    stored_records(None);
}

#[test]
fn stored_records_of_every_kind_are_reported_and_printed_on_postgres() {
    if let Some(url) = fresh_postgres("report_rec") {
        stored_records(Some(url));
    }
}
