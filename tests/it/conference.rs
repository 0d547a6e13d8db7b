//! Three-party calls and attended transfer with the real binary and real
//! audio: a citizen (700 Hz) from the carrier, agent 2001 (1100 Hz) at its
//! desk, and 110 (1700 Hz), a softphone answering at the transfer directory's
//! address. Each party records what it hears; the tones say who heard whom.

use std::time::{Duration, Instant};

use hotline_gateway::softphone::audio::{read_wav, tone_power};

use crate::support::*;

const CARRIER: &str = "127.0.0.2";
const DESK: &str = "127.0.0.3";
const CALLER_HZ: f64 = 700.0;
const AGENT_HZ: f64 = 1100.0;
const POLICE_HZ: f64 = 1700.0;

/// The gateway: line 12345 → queue q of agent 2001; 110 at `police`.
fn gateway(police: u16) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.trunk_sources = vec![format!("{CARRIER}/32")];
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\nagents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@127.0.0.1:{police}\"\n"
    );
    opts.extra_config = "[media]\nrecord = true\nsurvey = false\n".into();
    Gateway::start(opts)
}

/// The gateway, a folder for the recordings, and 110 answering at the
/// directory's address.
fn setup(tag: &str) -> (Gateway, TempDir, Softphone) {
    let port = free_port();
    let gw = gateway(port);
    let dir = TempDir::new(tag);
    let p = police(port, &dir.0.display().to_string());
    (gw, dir, p)
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// 110: answers the one call that reaches it, sends its tone, records.
fn police(port: u16, dir: &str) -> Softphone {
    Softphone::answering("110", port, 30, &["--tone-hz", "1700", "--record-dir", dir])
}

fn agent(gw: &Gateway, dir: &str, extra: &[&str]) -> Softphone {
    let mut a = args(&[
        "agent",
        "--user",
        "2001",
        "--password",
        "secret-2001",
        "--server",
        &gw.sip.to_string(),
        "--listen",
        &format!("{DESK}:0"),
        "--answer-after-ms",
        "200",
        "--calls",
        "1",
        "--run-s",
        "30",
        "--tone-hz",
        "1100",
        "--record-dir",
        dir,
    ]);
    a.extend(args(extra));
    Softphone::start(&a)
}

fn caller(gw: &Gateway, dir: &str, hangup_ms: u64) -> Softphone {
    Softphone::start(&args(&[
        "call",
        "12345",
        "--from",
        "13800138000",
        "--listen",
        &format!("{CARRIER}:0"),
        "--server",
        &gw.sip.to_string(),
        "--hangup-after-ms",
        &hangup_ms.to_string(),
        "--tone-hz",
        "700",
        "--record-dir",
        dir,
    ]))
}

/// Agent 2001 (with `extra`) takes a citizen's call that lasts `hangup_ms`;
/// the agent's REFER must succeed and 110 answer. The summaries of the
/// citizen, the agent and 110.
fn talk(
    gw: &Gateway,
    dir: &str,
    police: Softphone,
    extra: &[&str],
    hangup_ms: u64,
) -> [serde_json::Value; 3] {
    let a = agent(gw, dir, extra);
    wait_ready(gw);
    let c = caller(gw, dir, hangup_ms);
    let cs = c.finish(Duration::from_secs(30)).expect("caller");
    let asum = a.finish(Duration::from_secs(30)).expect("agent");
    let ps = police.finish(Duration::from_secs(30)).expect("110");
    assert_eq!(
        asum["transfers_by_code"]["200"], 1,
        "the REFER succeeded: {asum}"
    );
    assert_eq!(ps["answered"], 1, "{ps}");
    [cs, asum, ps]
}

fn wait_ready(gw: &Gateway) {
    gw.wait_until("agent 2001 ready", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"][0]["state"] == "ready"
    });
}

/// What a softphone heard on its first call (its recording).
fn heard(who: &str, summary: &serde_json::Value) -> Vec<i16> {
    let path = summary["audio"][0]["recording"]
        .as_str()
        .unwrap_or_else(|| panic!("the {who} recorded nothing: {summary}"));
    read_wav(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `window` (samples at 8 kHz) of `pcm` from `from_s` seconds in.
fn window(pcm: &[i16], from_s: f64, secs: f64) -> &[i16] {
    let a = ((from_s * 8000.0) as usize).min(pcm.len());
    let b = (a + (secs * 8000.0) as usize).min(pcm.len());
    &pcm[a..b]
}

/// Whether `pcm` carries `hz` well above `own` (a party never hears itself).
fn hears(pcm: &[i16], hz: f64, own: f64) -> bool {
    tone_power(pcm, hz) > 30.0 * tone_power(pcm, own).max(1.0)
}

/// The one call record of the citizen's call, once written.
fn citizen_record(gw: &Gateway) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let found = gw
            .records()
            .into_iter()
            .find(|r| r["line"] == "12345" && r["caller"] == "13800138000");
        if let Some(r) = found {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no record: {}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_agent_adds_110_everyone_hears_the_other_two_then_the_agent_leaves() {
    let (gw, dir, p) = setup("conf3");
    let d = dir.0.display().to_string();
    // The agent answers, adds 110 after 1 s (REFER ;hotline=conference),
    // talks 5 s in all, then hangs up: 110 stays with the citizen.
    let [cs, asum, ps] = talk(
        &gw,
        &d,
        p,
        &[
            "--conference-with",
            "110",
            "--transfer-after-ms",
            "1000",
            "--talk-ms",
            "5000",
        ],
        9000,
    );
    // The agent, between 110's answer and its own hang-up, hears both others.
    let agent_heard = heard("agent", &asum);
    let mid = window(&agent_heard, 2.5, 2.0);
    assert!(
        hears(mid, CALLER_HZ, AGENT_HZ),
        "the agent hears the citizen"
    );
    assert!(hears(mid, POLICE_HZ, AGENT_HZ), "the agent hears 110");
    // 110 hears the citizen and the agent while all three are on.
    let police_heard = heard("110", &ps);
    let both = window(&police_heard, 0.5, 2.0);
    assert!(hears(both, CALLER_HZ, POLICE_HZ), "110 hears the citizen");
    assert!(hears(both, AGENT_HZ, POLICE_HZ), "110 hears the agent");
    // After the agent left: 110 still hears the citizen, no longer the agent.
    let after = window(&police_heard, police_heard.len() as f64 / 8000.0 - 2.0, 1.5);
    assert!(
        hears(after, CALLER_HZ, POLICE_HZ),
        "110 stays with the citizen"
    );
    assert!(
        tone_power(after, CALLER_HZ) > 30.0 * tone_power(after, AGENT_HZ),
        "the agent is gone"
    );
    // The citizen heard the agent and 110.
    let caller_heard = heard("citizen", &cs);
    let conf = window(&caller_heard, 4.0, 2.0);
    assert!(hears(conf, AGENT_HZ, CALLER_HZ) && hears(conf, POLICE_HZ, CALLER_HZ));
    // The record: answered once, by the agent; 110 joined, the agent left.
    let r = citizen_record(&gw);
    assert_eq!(r["agent"], "2001", "{r}");
    assert_eq!(r["transferred_to"], "110", "{r}");
    let kinds: Vec<(String, String)> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["detail"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("party_joined".into(), "110".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("party_left".into(), "2001".into())),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|(k, _)| k == "answered").count(), 1);
    // The recording follows the mix: the callee channel holds 110 and the agent.
    let rec = r["recording"].as_str().expect("recorded");
    let path = gw.dir.0.join("data/recordings").join(rec);
    gw.wait_until("the recording", Duration::from_secs(5), || {
        hound::WavReader::open(&path).is_ok_and(|w| w.duration() > 16_000)
    });
    let all: Vec<i16> = hound::WavReader::open(&path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    assert!(hears(&right, POLICE_HZ, CALLER_HZ) && hears(&right, AGENT_HZ, CALLER_HZ));
}

#[test]
fn the_api_adds_110_to_a_call_and_refuses_a_number_outside_the_directory() {
    let (gw, dir, p) = setup("confapi");
    let d = dir.0.display().to_string();
    let a = agent(&gw, &d, &[]);
    wait_ready(&gw);
    let c = caller(&gw, &d, 6000);
    let mut id = String::new();
    gw.wait_until("the agent on the call", Duration::from_secs(10), || {
        let v = gw.get_json("/api/v1/agents");
        let agent = &v["agents"][0];
        id = agent["call_id"].as_str().unwrap_or_default().to_string();
        agent["state"] == "on_call" && !id.is_empty()
    });
    let path = format!("/api/v1/calls/{id}/parties");
    // Without a credential, and with a viewer's: nothing rings.
    let (code, _) = http_post_as(gw.http, &path, r#"{"number":"110"}"#, None).unwrap();
    assert_eq!(code, 401);
    // Anything outside the directory: 403, nothing dialled.
    let (code, body) = http_post(gw.http, &path, r#"{"number":"13900000000"}"#).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not_in_directory"), "{body}");
    let (code, body) = http_post(
        gw.http,
        "/api/v1/calls/nope-1/parties",
        r#"{"number":"110"}"#,
    )
    .unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = http_post(gw.http, &path, r#"{"number":"110"}"#).unwrap();
    assert_eq!(code, 202, "{body}");
    c.finish(Duration::from_secs(30)).expect("caller");
    a.finish(Duration::from_secs(30)).expect("agent");
    let ps = p.finish(Duration::from_secs(30)).expect("110");
    assert_eq!(ps["answered"], 1, "{ps}");
    let police_heard = heard("110", &ps);
    assert!(
        hears(&police_heard, CALLER_HZ, POLICE_HZ) && hears(&police_heard, AGENT_HZ, POLICE_HZ)
    );
    let r = citizen_record(&gw);
    assert!(
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "party_joined"),
        "{r}"
    );
}

#[test]
fn the_softphone_consults_110_then_transfers_the_citizen_to_it() {
    let (gw, dir, p) = setup("attended");
    let d = dir.0.display().to_string();
    // The agent answers, calls 110 after 1 s, and when 110 answers REFERs the
    // citizen's call with Replaces naming that consultation.
    let [cs, _, ps] = talk(
        &gw,
        &d,
        p,
        &[
            "--consult-transfer-to",
            "110",
            "--transfer-after-ms",
            "1000",
        ],
        7000,
    );
    // The citizen ends up hearing 110, and 110 the citizen, on the same ports
    // 110 first answered on.
    let caller_heard = heard("citizen", &cs);
    let tail = window(&caller_heard, caller_heard.len() as f64 / 8000.0 - 2.0, 1.5);
    assert!(
        hears(tail, POLICE_HZ, AGENT_HZ),
        "the citizen hears 110 at the end"
    );
    let police_heard = heard("110", &ps);
    let tail = window(&police_heard, police_heard.len() as f64 / 8000.0 - 2.0, 1.5);
    assert!(
        hears(tail, CALLER_HZ, AGENT_HZ),
        "110 hears the citizen at the end"
    );
    let r = citizen_record(&gw);
    assert_eq!(r["transferred_to"], "110", "{r}");
    assert_eq!(r["agent"], "2001", "{r}");
    let consult = gw
        .records()
        .into_iter()
        .find(|r| r["reason"] == "call.consult_transferred")
        .unwrap_or_else(|| panic!("the consultation's record: {:?}", gw.records()));
    assert!(consult["line"].is_null(), "offered to nobody: {consult}");
}
