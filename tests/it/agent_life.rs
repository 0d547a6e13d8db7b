//! An agent's life seen from the gateway: a softphone stopped with Ctrl-C
//! reports what it did and logs out; a phone that dies without a word is found
//! by the keepalive OPTIONS and no longer rung.

use std::time::{Duration, Instant};

use crate::support::*;

/// Line 12345 → queue `q` of agent 2001 (password `secret-2001`), no wrap-up.
fn gateway(extra_config: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\n\
max_wait_s = 60\nagents = [\"2001\"]\n\n[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\n\
password = \"secret-2001\"\n"
        .into();
    opts.extra_config = extra_config.into();
    Gateway::start(opts)
}

/// Agent 2001 as the API shows it.
fn agent_2001(gw: &Gateway) -> serde_json::Value {
    gw.get_json("/api/v1/agents")["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "2001").cloned())
        .expect("agent 2001 in /api/v1/agents")
}

/// Waits until agent 2001 satisfies `pred`.
fn wait_agent(
    gw: &Gateway,
    what: &str,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    let start = Instant::now();
    loop {
        let a = agent_2001(gw);
        if pred(&a) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting for agent 2001 to be {what}: {a}\nlog:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn caller(gw: &Gateway, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = ["call", "12345", "--server", &gw.sip.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

#[test]
fn an_agent_stopped_with_ctrl_c_reports_its_calls_hangs_up_and_logs_out() {
    // No survey: the caller is hung up on when the agent hangs up.
    let gw = gateway("[media]\nqueued = \"early_media\"\nsurvey = false\n");
    // No --calls, no --run-s: it runs until Ctrl-C.
    let a = agent(
        &gw,
        2001,
        "secret-2001",
        &["--answer-after-ms", "100", "--tone-hz", "1500"],
    );
    wait_agent(&gw, "ready", Duration::from_secs(15), |a| {
        a["state"] == "ready"
    });
    // A first call ends by itself.
    let first = caller(&gw, &["--hangup-after-ms", "1500", "--tone-hz", "700"])
        .finish(Duration::from_secs(20))
        .expect("first caller");
    assert_eq!(first["answered"], 1, "{first}");
    wait_agent(
        &gw,
        "ready after the first call",
        Duration::from_secs(10),
        |a| a["state"] == "ready" && a["calls_answered"] == 1,
    );
    // A second one is still up when the agent is stopped.
    let second = caller(&gw, &["--hangup-after-ms", "30000", "--tone-hz", "700"]);
    wait_agent(&gw, "on a call", Duration::from_secs(10), |a| {
        a["state"] == "on_call"
    });
    // Let its audio flow first: the answer's state comes before the first
    // packet relayed (on a loaded machine, by more than a packet time).
    std::thread::sleep(Duration::from_millis(800));
    a.signal("INT");
    let s = a
        .finish(Duration::from_secs(10))
        .expect("the agent's summary");
    assert_eq!(s["placed"], 2, "both calls counted: {s}");
    assert_eq!(s["answered"], 2, "{s}");
    let audio = s["audio"].as_array().expect("audio reports");
    assert_eq!(audio.len(), 2, "each call's audio reported: {s}");
    for r in audio {
        assert_eq!(r["peak_hz"], 700, "heard the caller: {r}");
    }
    // The call in progress was hung up by the agent...
    let second = second
        .finish(Duration::from_secs(10))
        .expect("second caller");
    assert_eq!(second["ended_by_far_end"], 1, "{second}");
    // ...and the agent unregistered: logged out at once, not at expiry.
    wait_agent(&gw, "logged out", Duration::from_secs(5), |a| {
        a["state"] == "logged_out" && a["registered"] == false
    });
}

#[test]
fn an_agent_killed_without_unregistering_is_unreachable_within_the_keepalive_and_not_rung() {
    // Keepalive every second, answered within half a second; registrations of
    // at most 8 s (the softphone asks 300 s and refreshes at 3/4 of what it got).
    let gw = gateway(
        "[registrar]\nqualify_every_s = 1\nqualify_timeout_ms = 500\n\
min_expires_s = 1\nmax_expires_s = 8\ndefault_expires_s = 8\n",
    );
    let a = agent(&gw, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    wait_agent(&gw, "ready", Duration::from_secs(15), |a| {
        a["state"] == "ready"
    });
    // It answers the probes: still ready, and reachable, after a few intervals
    // (the first caller below is answered by it).
    let first = caller(&gw, &["--hangup-after-ms", "200", "--max-wait-s", "10"])
        .finish(Duration::from_secs(20))
        .expect("first caller");
    assert_eq!(first["answered"], 1, "the live agent answers: {first}");
    wait_agent(&gw, "ready after the call", Duration::from_secs(10), |a| {
        a["state"] == "ready" && a["reachable"] == true
    });
    // Killed: no unregistration, no BYE, nothing.
    a.signal("KILL");
    drop(a);
    // Unreachable within the interval and the probe's timeout (slack for a
    // loaded machine): every second a probe, half a second to answer.
    wait_agent(&gw, "unreachable", Duration::from_secs(5), |a| {
        a["state"] == "unreachable" && a["reachable"] == false && a["registered"] == true
    });
    let q = gw.get_json("/api/v1/queues");
    assert_eq!(q["queues"][0]["agents"]["unreachable"], 1, "{q}");
    // The next caller waits for nobody instead of being rung to the dead phone.
    let second = caller(&gw, &["--max-wait-s", "2"])
        .finish(Duration::from_secs(20))
        .expect("second caller");
    assert_eq!(second["answered"], 0, "{second}");
    let start = Instant::now();
    let rec = loop {
        let recs = gw.records();
        if recs.len() >= 2 {
            break recs
                .into_iter()
                .find(|r| r["answered_at_ms"].is_null())
                .expect("the second call's record");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no second record: {recs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rung = rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "agent_ringing");
    assert!(!rung, "the unreachable agent was rung: {rec}");
    // Its registration runs out: logged out of the ACD.
    wait_agent(&gw, "logged out at expiry", Duration::from_secs(15), |a| {
        a["state"] == "logged_out" && a["registered"] == false
    });
    // A phone that registers again is ready again.
    let _b = agent(&gw, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    wait_agent(&gw, "ready again", Duration::from_secs(15), |a| {
        a["state"] == "ready" && a["reachable"] == true
    });
}
