//! What `softphone call` reports: the gateway's own answer and a person's apart
//! (`X-Hotline-Answered-By` on the 200, an INFO when an agent takes over),
//! `--expect-agent`, what was heard per segment, and recordings that never
//! overwrite each other.

use std::time::{Duration, Instant};

use crate::support::*;

/// Line 12345 → queue `q` of agent 2001, with `[media]` keys `media`.
fn gateway(media: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\n\
agents = [\"2001\"]\n\n[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n"
        .into();
    opts.extra_config = format!("[media]\n{media}\n");
    Gateway::start(opts)
}

fn caller(gw: &Gateway, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = ["call", "12345", "--server", &gw.sip.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

fn wait_ready(gw: &Gateway) {
    gw.wait_json(
        "/api/v1/agents",
        "agent 2001 ready",
        Duration::from_secs(15),
        |v| v["agents"][0]["state"] == "ready",
    );
}

#[test]
fn with_nobody_to_answer_the_gateways_answer_is_not_a_persons_and_expect_agent_fails() {
    let gw = gateway("queued = \"answer\"\nhold_message_every_s = 600");
    let dir = TempDir::new("caller-none");
    let d = dir.0.display().to_string();
    let args = [
        "--hangup-after-ms",
        "1500",
        "--tone-hz",
        "700",
        "--record-dir",
        &d,
    ];
    let (code, s) = caller(&gw, &args)
        .finish_with_code(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(
        code,
        Some(0),
        "answered (by the gateway) without --expect-agent: {s}"
    );
    assert_eq!(
        (
            &s["answered"],
            &s["answered_by_gateway"],
            &s["answered_by_agent"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{s}"
    );
    let segments = s["audio"][0]["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 1, "{s}");
    assert_eq!(segments[0]["name"], "gateway", "{s}");
    let first = s["audio"][0]["recording"].as_str().unwrap().to_string();
    // The same call again, now expecting a person: exit 3, and its recording
    // does not overwrite the first one's.
    let mut args = args.to_vec();
    args.push("--expect-agent");
    let (code, again) = caller(&gw, &args)
        .finish_with_code(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(code, Some(3), "no person answered: {again}");
    let second = again["audio"][0]["recording"].as_str().unwrap().to_string();
    assert_ne!(
        first, second,
        "a second call must not overwrite the first's recording"
    );
    assert!(std::path::Path::new(&first).exists() && std::path::Path::new(&second).exists());
}

#[test]
fn an_agent_taking_a_call_the_gateway_answered_is_reported_with_each_segment_heard() {
    let gw = gateway(
        "queued = \"answer\"\nhold_message_every_s = 600\nsurvey = true\nsurvey_timeout_s = 2",
    );
    let a = agent(
        &gw,
        2001,
        "secret-2001",
        &[
            "--answer-after-ms",
            "1500",
            "--talk-ms",
            "2500",
            "--tone-hz",
            "1500",
            "--calls",
            "1",
            "--run-s",
            "30",
        ],
    );
    wait_ready(&gw);
    let start = Instant::now();
    let (code, s) = caller(
        &gw,
        &[
            "--hangup-after-ms",
            "20000",
            "--tone-hz",
            "700",
            "--expect-agent",
        ],
    )
    .finish_with_code(Duration::from_secs(30))
    .expect("caller");
    a.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(code, Some(0), "a person answered: {s}");
    assert_eq!(
        (&s["answered_by_gateway"], &s["answered_by_agent"]),
        (&1.into(), &1.into()),
        "{s}"
    );
    let agent_ms = s["mean_agent_answer_ms"].as_u64().unwrap();
    assert!(
        agent_ms >= 1500 && agent_ms < start.elapsed().as_millis() as u64,
        "a person's answer comes after the agent's ring: {s}"
    );
    let segments = s["audio"][0]["segments"].as_array().expect("segments");
    let names: Vec<&str> = segments
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gateway", "agent", "survey"], "{s}");
    assert_eq!(segments[1]["peak_hz"], 1500, "the agent's tone: {s}");
    assert!(s["audio"][0]["peak_hz"].is_u64(), "the whole call's: {s}");
}

#[test]
fn with_early_media_the_answer_is_the_agents() {
    let gw = gateway("queued = \"early_media\"\nsurvey = false");
    let a = agent(
        &gw,
        2001,
        "secret-2001",
        &["--answer-after-ms", "300", "--calls", "1", "--run-s", "30"],
    );
    wait_ready(&gw);
    let (code, s) = caller(&gw, &["--hangup-after-ms", "500", "--expect-agent"])
        .finish_with_code(Duration::from_secs(20))
        .expect("caller");
    a.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(
        (&s["answered_by_gateway"], &s["answered_by_agent"]),
        (&0.into(), &1.into()),
        "{s}"
    );
}
