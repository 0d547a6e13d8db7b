//! Agent seats through the real binary: softphone agents registering with digest
//! auth, softphone citizens calling in, the ACD distributing, and the API.

use std::time::{Duration, Instant};

use crate::support::*;

/// A queue `q` of agents 2001..=2000+n with password `secret-<id>`, line 12345 → q.
fn seats(n: u32, strategy: &str, extra: &str) -> String {
    let ids: Vec<String> = (1..=n).map(|i| format!("\"{}\"", 2000 + i)).collect();
    let mut s = format!(
        "[[queue]]\nname = \"q\"\nstrategy = \"{strategy}\"\nring_timeout_s = 3\nwrap_up_s = 0\n\
max_wait_s = 60\nauto_pause_after_misses = 2\nagents = [{}]\n{extra}\n",
        ids.join(", ")
    );
    for i in 1..=n {
        let id = 2000 + i;
        s.push_str(&format!(
            "\n[[agent]]\nid = \"{id}\"\nname = \"Agent {id}\"\npassword = \"secret-{id}\"\n"
        ));
    }
    s
}

fn gateway(n: u32, strategy: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = seats(n, strategy, "");
    Gateway::start(opts)
}

fn callers(gw: &Gateway, count: u32, rate: impl ToString, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = vec![
        "call".into(),
        "12345".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--count".into(),
        count.to_string(),
        "--rate".into(),
        rate.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

fn agents_view(gw: &Gateway) -> serde_json::Value {
    let (code, body) = http_get(gw.http, "/api/v1/agents").expect("agents API");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_registered(gw: &Gateway, n: usize) {
    let start = Instant::now();
    loop {
        let v = agents_view(gw);
        let ready = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["registered"] == true && a["state"] == "ready")
            .count();
        if ready >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "agents never registered: {v}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ten_agents_answer_two_hundred_calls_evenly() {
    let gw = gateway(10, "round_robin");
    let agents: Vec<Softphone> = (2001..=2010)
        .map(|id| {
            agent(
                &gw,
                id,
                &format!("secret-{id}"),
                &["--answer-after-ms", "50", "--run-s", "30"],
            )
        })
        .collect();
    wait_registered(&gw, 10);
    let calls =
        callers(&gw, 200, 25, &["--hangup-after-ms", "200"]).finish(Duration::from_secs(60));
    let calls = calls.unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
    assert_eq!(calls["answered"], 200, "{calls}");
    assert_eq!(calls["failed"], 0, "{calls}");
    let v = agents_view(&gw);
    let answered: Vec<u64> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["calls_answered"].as_u64().unwrap())
        .collect();
    assert_eq!(answered.iter().sum::<u64>(), 200, "{v}");
    // Round robin's promise: an even share, give or take the calls in flight.
    for n in &answered {
        assert!((17..=23).contains(n), "uneven shares {answered:?}");
    }
    drop(agents);
}

#[test]
fn the_agent_sees_the_screen_pop_headers() {
    let gw = gateway(1, "longest_idle");
    let a = agent(
        &gw,
        2001,
        "secret-2001",
        &["--answer-after-ms", "50", "--calls", "1", "--run-s", "20"],
    );
    wait_registered(&gw, 1);
    let c = callers(&gw, 1, 1, &["--hangup-after-ms", "100"])
        .finish(Duration::from_secs(20))
        .unwrap();
    assert_eq!(c["answered"], 1, "{c}");
    let s = a.finish(Duration::from_secs(25)).unwrap();
    for h in [
        "X-Hotline-Caller",
        "X-Hotline-Line",
        "X-Hotline-Mode",
        "X-Hotline-Call-Id",
        "X-Hotline-Ticket",
    ] {
        assert_eq!(s["screen_pop_seen"][h], 1, "{h} missing: {s}");
    }
}

#[test]
fn a_caller_who_gives_up_while_queued_leaves_the_queue() {
    let gw = gateway(1, "longest_idle");
    // Nobody is logged in: the caller waits with ringback, then hangs up.
    let c = callers(&gw, 1, 1, &["--max-wait-s", "2"])
        .finish(Duration::from_secs(20))
        .unwrap();
    assert_eq!(c["answered"], 0, "{c}");
    gw.wait_health("the abandon recorded", Duration::from_secs(5), |h| {
        h["calls_ended"]["call.caller_cancelled"] == 1 && h["active_calls"] == 0
    });
    let (_, q) = http_get(gw.http, "/api/v1/queues").unwrap();
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q["queues"][0]["waiting"], 0, "{q}");
}

#[test]
fn an_agent_who_never_answers_is_skipped_then_paused() {
    let gw = gateway(2, "round_robin");
    let _sleepy = agent(
        &gw,
        2001,
        "secret-2001",
        &["--answer-after-ms", "600000", "--run-s", "40"],
    );
    let _awake = agent(
        &gw,
        2002,
        "secret-2002",
        &["--answer-after-ms", "50", "--run-s", "40"],
    );
    wait_registered(&gw, 2);
    // One call at a time (every 4 s): round robin tries the sleepy agent first each
    // time, it misses (3 s ring timeout), and the other agent answers.
    let c = callers(&gw, 2, 0.25, &["--hangup-after-ms", "100"]);
    let c = c.finish(Duration::from_secs(40)).unwrap();
    assert_eq!(
        c["answered"], 2,
        "every call reached the agent who answers: {c}"
    );
    let v = agents_view(&gw);
    let sleepy = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "2001")
        .unwrap()
        .clone();
    assert_eq!(
        sleepy["state"], "paused",
        "auto-paused after two misses: {sleepy}"
    );
    // The API makes the agent ready again.
    let (code, body) =
        http_post(gw.http, "/api/v1/agents/2001/state", r#"{"state":"ready"}"#).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"state\":\"ready\""), "{body}");
    let (code, _) =
        http_post(gw.http, "/api/v1/agents/9999/state", r#"{"state":"ready"}"#).unwrap();
    assert_eq!(code, 404);
}

#[test]
fn a_wrong_password_gets_401_then_the_source_is_blocked() {
    let mut gw = gateway(1, "longest_idle");
    // At info level, where failed registrations are logged.
    let conf = gw.dir.0.join("gateway.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("level = \"warn\"", "level = \"info\"")).unwrap();
    gw.kill9();
    gw.restart();
    let mut codes = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..4 {
        let r =
            agent(&gw, 2001, "not-the-password", &["--run-s", "5"]).finish(Duration::from_secs(10));
        let err = r.expect_err("registration must fail");
        errors.push(err.clone());
        codes.push(if err.contains("403") {
            403
        } else if err.contains("401") {
            401
        } else {
            0
        });
    }
    assert_eq!(codes[0], 401, "{codes:?}");
    assert_eq!(
        *codes.last().unwrap(),
        403,
        "blocked after repeated failures: {codes:?}"
    );
    // The softphone shows the gateway's whole status line, reason and all.
    assert!(
        errors[0].contains(
            "registration failed: SIP/2.0 401 Unauthorized (wrong password or unknown account)"
        ),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("registration failed: SIP/2.0 403 Forbidden (too many failed attempts)"),
        "{errors:?}"
    );
    // The gateway logged each wrong answer at info, naming the account.
    let log = gw.log();
    let failures = log
        .lines()
        .filter(|l| l.contains("registration failed") && l.contains("account=2001"))
        .count();
    assert!(failures >= 1, "no failed registration logged:\n{log}");
    // Even the right password is refused while the source is blocked.
    let r = agent(&gw, 2001, "secret-2001", &["--run-s", "5"]).finish(Duration::from_secs(10));
    assert!(r.is_err_and(|e| e.contains("403")));
}

#[test]
fn a_dialplan_reload_keeps_agents_logged_in() {
    let gw = gateway(2, "longest_idle");
    let _a = agent(
        &gw,
        2001,
        "secret-2001",
        &["--answer-after-ms", "50", "--run-s", "30"],
    );
    wait_registered(&gw, 1);
    // A broken file is refused with file, line and key; the running plan stays.
    let seats = gw.dir.0.join("dialplans/seats.toml");
    let good = std::fs::read_to_string(&seats).unwrap();
    std::fs::write(&seats, good.replace("ring_timeout_s", "ring_timout_s")).unwrap();
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("seats.toml") && body.contains("ring_timout_s"),
        "{body}"
    );
    std::fs::write(
        &seats,
        good.replace("ring_timeout_s = 3", "ring_timeout_s = 5"),
    )
    .unwrap();
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 200, "{body}");
    wait_registered(&gw, 1);
    let c = callers(&gw, 2, 2, &["--hangup-after-ms", "100"])
        .finish(Duration::from_secs(20))
        .unwrap();
    assert_eq!(c["answered"], 2, "{c}");
}

#[test]
fn softphone_callers_reach_a_room_of_sipp_seats() {
    let Some(sipp_bin) = sipp() else { return };
    let uas_port = free_port();
    let _uas = Sipp::start(
        &sipp_bin,
        "uas.xml",
        &["-p".into(), uas_port.to_string()],
        Duration::from_secs(60),
    );
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nwrap_up_s = 0\n\
static_members = [\"sip:127.0.0.1:{uas_port}\"]\nstatic_seats = 20\n"
    );
    let gw = Gateway::start(opts);
    let c = callers(&gw, 40, 20, &["--hangup-after-ms", "300"]);
    let c = c.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(
        (c["answered"].as_u64(), c["failed"].as_u64()),
        (Some(40), Some(0)),
        "{c}"
    );
}

#[test]
fn sipp_callers_reach_a_softphone_agent() {
    let Some(sipp_bin) = sipp() else { return };
    let gw = gateway(1, "longest_idle");
    let _agent = agent(
        &gw,
        2001,
        "secret-2001",
        &[
            "--answer-after-ms",
            "50",
            "--talk-ms",
            "200",
            "--run-s",
            "40",
        ],
    );
    wait_registered(&gw, 1);
    // The agent answers, then hangs up: the sipp caller gets the BYE.
    let args = uac_args(&gw, "12345", 5, &["-r", "1", "-timeout", "30s"]);
    let r = Sipp::start(
        &sipp_bin,
        "uac_wait_bye.xml",
        &args,
        Duration::from_secs(40),
    )
    .finish();
    assert_eq!((r.successful, r.failed), (5, 0), "{r:?}\n{}", gw.log());
}

#[test]
fn an_agent_transfers_a_caller_to_110() {
    let Some(sipp_bin) = sipp() else { return };
    // sipp plays 110: it answers the gateway's late-offer INVITE.
    let police = free_port();
    let uas = Sipp::start(
        &sipp_bin,
        "uas.xml",
        &["-p".into(), police.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(60),
    );
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = seats(1, "longest_idle", "")
        + &format!(
            "\n[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@127.0.0.1:{police}\"\n"
        );
    let gw = Gateway::start(opts);
    let a = agent(
        &gw,
        2001,
        "secret-2001",
        &[
            "--answer-after-ms",
            "50",
            "--transfer-to",
            "110",
            "--transfer-after-ms",
            "300",
            "--calls",
            "1",
            "--run-s",
            "30",
        ],
    );
    wait_registered(&gw, 1);
    let c = callers(&gw, 1, 1, &["--hangup-after-ms", "2000"]);
    let c = c.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(
        (c["answered"].as_u64(), c["failed"].as_u64()),
        (Some(1), Some(0)),
        "{c}"
    );
    let s = a.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(
        s["transfers_by_code"]["200"], 1,
        "the agent heard the transfer succeed: {s}"
    );
    let r = uas.finish();
    assert_eq!(
        (r.successful, r.failed),
        (1, 0),
        "110 answered and the caller hung up on it: {r:?}\n{}",
        gw.log()
    );
}

/// A test script sees from the exit status that calls failed: 3, with the
/// summary (404 for a number no line has) still printed.
#[test]
fn a_softphone_run_with_unanswered_calls_exits_3_with_its_summary() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .args(["softphone", "call", "99999", "--json", "--server"])
        .arg(gw.sip.to_string())
        .output()
        .expect("run the softphone");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("a JSON summary");
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(summary["failures_by_code"]["404"], 1, "{summary}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 of 1 call(s) not answered"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--max-wait-s` gives up on a call the server never answered at all (the
/// server is down): the run ends with 408 then, not when the INVITE transaction
/// would time out (32 s).
#[test]
fn a_softphone_gives_up_on_a_silent_server_after_max_wait() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never read
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .args([
            "softphone",
            "call",
            "12345",
            "--json",
            "--max-wait-s",
            "1",
            "--server",
        ])
        .arg(silent.local_addr().unwrap().to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the softphone");
    // Far below Timer B's 32 s, far above the 1 s asked for.
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the softphone still waited for a server that never answered");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(summary["failures_by_code"]["408"], 1, "{summary}");
}
