//! Reports over records of every kind (legacy answered, overflowed to 12345,
//! rated, abandoned with a callback, repeat callers across days) written into a
//! real store before the gateway starts, compared with a count made by hand; bad
//! parameters and missing tokens; the printable page in headless Chromium. On
//! SQLite and on PostgreSQL.

use std::process::Command;

use hotline_gateway::cdr::{CallRecord, Event, EventKind as K};

use crate::reports::{n, rate, report, row, total};
use crate::support::*;

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
        trunk: None,
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
        callback_state: None,
        callback_done_at_ms: None,
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
    // The same report as an Excel workbook, over HTTP…
    let x = http_request(
        gw.http,
        "GET",
        &format!("/api/v1/reports?{q}&format=xlsx"),
        &[format!("Authorization: Bearer {VIEWER_TOKEN}")],
        None,
    )
    .expect("xlsx");
    assert_eq!(x.code, 200, "{}", x.body);
    assert_eq!(
        x.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    // …and the month's from the command line, without the gateway's help.
    let book = dir.0.join("report.xlsx");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .args(["report", "--month", "2026-11", "--out"])
        .arg(&book)
        .args(["--database", &url])
        .output()
        .expect("hotline-gw report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use calamine::{Data, Reader, Xlsx};
        let mut wb: Xlsx<_> = calamine::open_workbook(&book).expect("the workbook reads back");
        assert_eq!(wb.sheet_names().len(), 7, "a cover and six dimensions");
        let sheet = wb.worksheet_range("overall day").unwrap();
        let header: Vec<String> = sheet
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let day = sheet
            .rows()
            .find(|r| r[0] == "all" && r[1] == "2026-11-02")
            .expect("2026-11-02");
        assert_eq!(day[col("offered")], Data::Float(6.0));
        assert_eq!(day[col("answered")], Data::Float(4.0));
        let seats = wb.worksheet_range("seats day").unwrap();
        assert!(seats.rows().any(|r| r[0] == "12345"));
    }
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
        // Times that would wrap the range arithmetic into 10^11 days of periods.
        (
            "from=-4611686018427387904&to=4611686018427387904",
            "bad_time",
        ),
        ("format=pdf", "bad_format"),
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
