//! Media through the real binary: softphones with real audio as caller and agent,
//! the greeting and hold music a queued caller hears, the satisfaction survey,
//! recordings, and the media timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use hotline_gateway::media::Codec;
use hotline_gateway::softphone::audio::{read_wav, tone_power};

use crate::support::*;

/// Line 12345 → queue `q` of agent 2001 (password `secret-2001`); line 12315 is
/// call-forwarded to the same queue and plays the `forwarded` prompt first.
fn gateway(media: &str) -> Gateway {
    gateway_queued("answer", media)
}

/// The same, with `[media] queued` set to `queued` (answer | early_media).
fn gateway_queued(queued: &str, media: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\n\
agents = [\"2001\"]\n\n[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[line]]\nnumber = \"12315\"\nname = \"12315\"\nmode = \"call_forwarding\"\nqueue = \"q\"\n\
prompt = \"forwarded\"\n"
        .into();
    opts.extra_config = format!("[media]\nqueued = \"{queued}\"\n{media}\n");
    Gateway::start(opts)
}

fn agent(gw: &Gateway, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = [
        "agent",
        "--user",
        "2001",
        "--password",
        "secret-2001",
        "--server",
        &gw.sip.to_string(),
        "--calls",
        "1",
        "--run-s",
        "30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

fn caller(gw: &Gateway, number: &str, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = ["call", number, "--server", &gw.sip.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

fn wait_agent_ready(gw: &Gateway) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let v = gw.get_json("/api/v1/agents");
        if v["agents"][0]["state"] == "ready" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("agent never registered: {}", gw.log());
}

/// The one call record, once written.
fn call_record(gw: &Gateway) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let v = gw.get_json("/api/v1/calls");
        if let Some(c) = v["calls"].as_array().and_then(|a| a.first()) {
            return c.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no call record: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The softphones' recording folder, removed when the test ends (or panics).
fn tmp(tag: &str) -> TempDir {
    TempDir::new(&format!("media-{tag}"))
}

/// A shipped prompt as the caller hears it (through A-law).
fn prompt(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("prompts/{name}.wav"));
    read_wav(&path)
        .unwrap()
        .into_iter()
        .map(|s| Codec::Pcma.decode_sample(Codec::Pcma.encode_sample(s)))
        .collect()
}

/// Where in a prompt the tests look for it: 2 s in.
const MID: usize = 16_000;

/// Normalised correlation of `want` with `heard` at `lag` (every 2nd sample).
fn corr(want: &[i16], heard: &[i16], lag: usize) -> f64 {
    let Some(h) = heard.get(lag..lag + want.len()) else {
        return 0.0;
    };
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (x, y) in want.iter().zip(h).step_by(2) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        xy += x * y;
        xx += x * x;
        yy += y * y;
    }
    if xx == 0.0 || yy == 0.0 {
        0.0
    } else {
        xy / (xx * yy).sqrt()
    }
}

/// Where in `heard` (searching `range`) a window of `want` starts, and how well
/// it matches.
fn locate(want: &[i16], heard: &[i16], range: std::ops::Range<usize>) -> (usize, f64) {
    range
        .map(|lag| (lag, corr(want, heard, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

fn samples(path: &str) -> Vec<i16> {
    read_wav(Path::new(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// What a softphone heard on its first call (`who` names it in a failure,
/// which says what was missing: the audio report, or its recording).
fn heard(who: &str, summary: &serde_json::Value) -> Vec<i16> {
    let Some(report) = summary["audio"].as_array().and_then(|a| a.first()) else {
        panic!(
            "the {who}'s summary has no audio report: its call's audio never started \
             (its RTP port could not be bound?) or the run ended before the call: {summary}"
        );
    };
    match report["recording"].as_str() {
        Some(path) => samples(path),
        None => panic!(
            "the {who}'s audio report names no recording ({}): {report}",
            report["recording_error"]
                .as_str()
                .unwrap_or("no --record-dir?")
        ),
    }
}

#[test]
fn a_caller_and_an_agent_hear_each_other_and_the_call_is_recorded() {
    let gw = gateway("record = true\nsurvey = false");
    let dir = tmp("talk");
    let d = dir.0.display().to_string();
    let a = agent(
        &gw,
        &[
            "--answer-after-ms",
            "300",
            "--tone-hz",
            "1500",
            "--record-dir",
            &d,
        ],
    );
    wait_agent_ready(&gw);
    let c = caller(
        &gw,
        "12345",
        &[
            "--hangup-after-ms",
            "3500",
            "--tone-hz",
            "700",
            "--record-dir",
            &d,
        ],
    );
    let cs = c.finish(Duration::from_secs(20)).expect("caller");
    let asum = a.finish(Duration::from_secs(30)).expect("agent");
    let (ca, aa) = (&cs["audio"][0], &asum["audio"][0]);
    assert_eq!(asum["answered"], 1, "{asum}");
    // Each side hears the other's tone, and not its own.
    let agent_heard = heard("agent", &asum);
    assert!(agent_heard.len() > 8000, "the agent heard audio: {aa}");
    let (p700, p1500) = (
        tone_power(&agent_heard, 700.0),
        tone_power(&agent_heard, 1500.0),
    );
    assert!(
        p700 > 100.0 * p1500,
        "agent hears the caller's 700 Hz: {p700} vs {p1500}"
    );
    let caller_heard = heard("caller", &cs);
    let tail = &caller_heard[caller_heard.len() - 8000..];
    let (p1500, p700) = (tone_power(tail, 1500.0), tone_power(tail, 700.0));
    assert!(
        p1500 > 100.0 * p700,
        "caller hears the agent's 1500 Hz: {p1500} vs {p700}"
    );
    assert_eq!(ca["ssrcs"], 1, "one stream from greeting to agent: {ca}");
    assert_eq!(ca["sequence_jumps"], 0, "{ca}");
    // The relay's counters are exported.
    let (code, metrics) = http_get(gw.http, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    let relayed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hotline_media_packets_in_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("hotline_media_packets_in_total");
    assert!(relayed > 100, "{relayed} packets counted");
    assert!(metrics.contains("hotline_media_recording_dropped_total 0"));
    // The recording: stereo, caller left, agent right, listed with the call.
    let rec = call_record(&gw);
    let name = rec["recording"].as_str().expect("recording on the record");
    assert_eq!(name, format!("{}.wav", rec["id"].as_str().unwrap()));
    // The work-order stub names it too.
    let stub = gw.get_json(&format!("/api/v1/tickets/{}", rec["id"].as_str().unwrap()));
    assert_eq!(stub["stub"]["recording"], name, "{stub}");
    let path = gw.dir.0.join("data/recordings").join(name);
    let start = Instant::now();
    while hound::WavReader::open(&path).map_or(true, |r| r.duration() == 0) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no recording at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = hound::WavReader::open(&path).unwrap();
    assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 8000));
    let all: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    assert!(left.len() > 16_000, "at least 2 s recorded");
    assert!(
        tone_power(&left, 700.0) > 100.0 * tone_power(&left, 1500.0),
        "caller on the left"
    );
    assert!(
        tone_power(&right, 1500.0) > 100.0 * tone_power(&right, 700.0),
        "agent on the right"
    );
}

#[test]
fn a_queued_caller_hears_the_greeting_then_hold_music() {
    // No agent logs in: the caller waits and listens.
    let gw = gateway("hold_message_every_s = 600");
    let dir = tmp("hold");
    let d = dir.0.display().to_string();
    let c = caller(
        &gw,
        "12345",
        &["--hangup-after-ms", "9000", "--record-dir", &d],
    );
    let cs = c.finish(Duration::from_secs(20)).expect("caller");
    assert_eq!(
        cs["answered"], 1,
        "the gateway answers a queued caller: {cs}"
    );
    let heard = heard("caller", &cs);
    let greeting = prompt("greeting");
    // The greeting's first words, at the start of what was heard (the softphone
    // binds its RTP socket with the offer: nothing is lost). A quarter of a
    // second: a longer stretch may hold a frame the relay skipped when the
    // machine is loaded.
    let (at, score) = locate(&greeting[800..2800], &heard, 0..1200);
    assert!(
        score > 0.9,
        "the greeting is heard from its start (correlation {score:.3} at {at})"
    );
    // ...and a second of it from 2 s in (give or take frames the relay skipped
    // on a loaded machine).
    let (at, score) = locate(&greeting[MID..MID + 8000], &heard, at..at + MID + 8000);
    assert!(
        score > 0.9,
        "the greeting is heard (correlation {score:.3} at {at})"
    );
    // Then the hold music starts where the greeting ends.
    let hold = prompt("hold");
    let end = at + greeting.len() - MID;
    let (at, score) = locate(&hold[..4000], &heard, end.saturating_sub(400)..end + 800);
    assert!(
        score > 0.9,
        "hold music follows (correlation {score:.3} at {at}, greeting ended at {end})"
    );
    let rec = call_record(&gw);
    assert_eq!(
        rec["outcome"], "abandoned",
        "the gateway's answer is not an agent's: {rec}"
    );
    assert!(rec["answered_at_ms"].is_null(), "{rec}");
}

#[test]
fn with_early_media_a_queued_caller_hears_the_greeting_from_its_start_before_any_answer() {
    let gw = gateway_queued("early_media", "hold_message_every_s = 600");
    let dir = tmp("early");
    let d = dir.0.display().to_string();
    // Nobody answers: the caller gives up after 7 s of ringing.
    let c = caller(&gw, "12345", &["--max-wait-s", "7", "--record-dir", &d]);
    let cs = c.finish(Duration::from_secs(20)).expect("caller");
    assert_eq!(cs["answered"], 0, "early media is not an answer: {cs}");
    let heard = heard("caller", &cs);
    // The softphone binds its RTP socket with the offer, so the greeting's first
    // words are there, at the very start of what was heard.
    let greeting = prompt("greeting");
    let (at, score) = locate(&greeting[800..2800], &heard, 0..1200);
    assert!(
        score > 0.9,
        "the greeting is heard from its start (correlation {score:.3} at {at}): {cs}"
    );
    let rec = call_record(&gw);
    assert!(rec["answered_at_ms"].is_null(), "{rec}");
}

#[test]
fn a_call_forwarded_line_plays_its_prompt_before_the_agent_rings() {
    let gw = gateway("");
    let dir = tmp("fwd");
    let d = dir.0.display().to_string();
    let a = agent(&gw, &["--answer-after-ms", "200", "--talk-ms", "500"]);
    wait_agent_ready(&gw);
    let c = caller(
        &gw,
        "12315",
        &["--hangup-after-ms", "8000", "--record-dir", &d],
    );
    let cs = c.finish(Duration::from_secs(20)).expect("caller");
    let asum = a.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(asum["answered"], 1, "{asum}");
    let heard = heard("caller", &cs);
    let fwd = prompt("forwarded");
    let (_, score) = locate(&fwd[MID..MID + 8000], &heard, 0..MID + 8000);
    assert!(score > 0.9, "the line's prompt is heard first ({score:.3})");
    let rec = call_record(&gw);
    assert_eq!(rec["line"], "12315");
    let at = |kind: &str| {
        rec["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .and_then(|e| e["at_ms"].as_i64())
            .unwrap_or_else(|| panic!("no {kind} event: {rec}"))
    };
    let waited = at("agent_ringing") - at("received");
    assert!(
        waited >= (fwd.len() / 8) as i64 - 100,
        "the agent rings after the {} ms prompt, not after {waited} ms",
        fwd.len() / 8
    );
}

#[test]
fn a_survey_digit_ends_up_on_the_call_record_and_its_stub() {
    let gw = gateway("survey = true\nsurvey_timeout_s = 5");
    let a = agent(
        &gw,
        &["--answer-after-ms", "200", "--talk-ms", "800", "--audio"],
    );
    wait_agent_ready(&gw);
    // The agent hangs up first, ~1 s in; the caller presses 2 during the survey.
    let c = caller(
        &gw,
        "12345",
        &[
            "--hangup-after-ms",
            "20000",
            "--send-digits",
            "2",
            "--digits-after-ms",
            "3000",
        ],
    );
    let cs = c.finish(Duration::from_secs(30)).expect("caller");
    a.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(
        cs["ended_by_far_end"], 1,
        "the gateway hangs up after the survey: {cs}"
    );
    let rec = call_record(&gw);
    assert_eq!(rec["survey"], 2, "{rec}");
    assert_eq!(rec["reason"], "call.callee_hangup");
    assert_eq!(rec["outcome"], "answered");
    let id = rec["id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let t = gw.get_json(&format!("/api/v1/tickets/{id}"));
        if t["stub"]["survey"] == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stub has no survey: {t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_dead_call_is_ended_by_the_media_timeout() {
    // sipp sends no RTP: the call is dead as far as media goes.
    let Some(sipp) = sipp() else { return };
    let uas_port = free_port();
    let mut opts = GwOpts::to(format!("sip:127.0.0.1:{uas_port}"));
    opts.extra_config = "[media]\ntimeout_s = 2\n".into();
    let gw = Gateway::start(opts);
    let uas = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), uas_port.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(30),
    );
    let uac = Sipp::start(
        &sipp,
        "uac_wait_bye.xml",
        &uac_args(&gw, "12345", 1, &[]),
        Duration::from_secs(30),
    );
    let r = uac.finish();
    drop(uas);
    assert_eq!(
        r.successful, 1,
        "the caller got BYE from the gateway: {r:?}"
    );
    let rec = call_record(&gw);
    assert_eq!(rec["reason"], "media.timeout", "{rec}");
    let talk = rec["ended_at_ms"].as_i64().unwrap() - rec["answered_at_ms"].as_i64().unwrap();
    assert!(
        (1500..6000).contains(&talk),
        "ended about 2 s after the answer: {talk} ms"
    );
}

/// A retired line is answered with the announcement (the number has changed,
/// call 12345), which the caller hears, then hung up; the call counts nowhere.
#[test]
fn a_retired_line_announces_the_change_and_hangs_up() {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nagents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[line]]\nnumber = \"12366\"\nname = \"an old hotline\"\nqueue = \"q\"\neffective_until = \"2025-12-31\"\n"
        .into();
    opts.extra_config = "[store]\ndatabase = \"sqlite:calls.db\"\n".into();
    let gw = Gateway::start(opts);
    let s = caller(
        &gw,
        "12366",
        &[
            "--audio",
            "--max-wait-s",
            "10",
            "--hangup-after-ms",
            "20000",
        ],
    )
    .finish(Duration::from_secs(30))
    .expect("caller");
    assert_eq!(s["answered_by_gateway"], 1, "{s}");
    assert_eq!(s["ended_by_far_end"], 1, "the gateway hung up: {s}");
    let heard = s["audio"][0]["packets_received"].as_u64().unwrap_or(0);
    assert!(heard > 50, "the announcement was heard: {s}");
    gw.wait_until("the call recorded", Duration::from_secs(10), || {
        gw.records()
            .iter()
            .any(|r| r["reason"] == "dialplan.line_not_in_service")
    });
    let r = gw
        .records()
        .into_iter()
        .find(|r| r["reason"] == "dialplan.line_not_in_service")
        .unwrap();
    assert!(r["outcome"].is_null(), "counted nowhere: {r}");
    assert_eq!(gw.get_json("/api/v1/sla")["overall"]["24h"]["offered"], 0);
}
