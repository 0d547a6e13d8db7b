//! The line registry through the real binary: call forwarding recognised from
//! Diversion, parallel lines with their legacy seats, hours, toll-fraud refusals,
//! and reloads under load.

use std::net::UdpSocket;
use std::time::Duration;

use crate::support::*;

/// A UDP socket that plays an agent seat: it records the INVITEs it is sent.
struct Seat {
    sock: UdpSocket,
}

impl Seat {
    fn new() -> Seat {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Seat { sock }
    }

    fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.sock.local_addr().unwrap().port())
    }

    /// The first INVITE received within `wait`, as text.
    fn invite(&self, wait: Duration) -> Option<String> {
        let start = std::time::Instant::now();
        let mut buf = [0u8; 8192];
        while start.elapsed() < wait {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.starts_with("INVITE ") {
                    return Some(text);
                }
            }
        }
        None
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

/// An INVITE to `to` from a caller socket, with extra header lines.
fn invite(caller: &UdpSocket, gw: &Gateway, to: &str, call_id: &str, extra: &str) {
    let local = caller.local_addr().unwrap();
    let msg = format!(
        "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13912345678@127.0.0.1>;tag=c{call_id}\r\nTo: <sip:{to}@127.0.0.1>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    caller.send_to(msg.as_bytes(), gw.sip).unwrap();
}

/// The first final status the caller socket receives.
fn final_status(caller: &UdpSocket, wait: Duration) -> Option<u16> {
    caller
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 8192];
    while start.elapsed() < wait {
        if let Ok((n, _)) = caller.recv_from(&mut buf) {
            let code: u16 = String::from_utf8_lossy(&buf[..n])
                .get(8..11)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if code >= 200 {
                return Some(code);
            }
        }
    }
    None
}

fn plan(seat: &Seat, extra: &str) -> String {
    format!(
        "[[queue]]\nname = \"main\"\nwrap_up_s = 0\nstatic_members = [\"{}\"]\nstatic_seats = 10\n\n\
[[line]]\nnumber = \"12315\"\nname = \"12315\"\ndepartment = \"市场监管\"\nmode = \"call_forwarding\"\nqueue = \"main\"\n\n{extra}",
        seat.uri()
    )
}

#[test]
fn a_diversion_forwarded_12315_call_reaches_the_queue_tagged_12315() {
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = plan(&seat, "");
    let gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The carrier forwards 12315 to 12345: the original number is in Diversion.
    invite(
        &caller,
        &gw,
        "12345",
        "div1",
        "Diversion: <tel:12315>;reason=unconditional;counter=1\r\n",
    );
    let inv = seat
        .invite(Duration::from_secs(5))
        .expect("the seat is rung");
    assert_eq!(header(&inv, "X-Hotline-Line"), Some("12315"), "{inv}");
    assert_eq!(
        header(&inv, "X-Hotline-Mode"),
        Some("call_forwarding"),
        "{inv}"
    );
    assert_eq!(
        header(&inv, "X-Hotline-Department"),
        Some("市场监管"),
        "{inv}"
    );
    // Dialled directly, the same line is found by its own number.
    invite(&caller, &gw, "12315", "div2", "");
    let inv = seat
        .invite(Duration::from_secs(5))
        .expect("the seat is rung");
    assert_eq!(header(&inv, "X-Hotline-Line"), Some("12315"), "{inv}");
}

#[test]
fn toll_fraud_probes_are_refused() {
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = plan(&seat, "");
    let gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    // International, premium-rate and an agent's extension, from a trusted trunk.
    for (n, to) in [
        "0044207946000",
        "00861390000000",
        "16800000000",
        "1001",
        "900123",
    ]
    .iter()
    .enumerate()
    {
        invite(&caller, &gw, to, &format!("fraud{n}"), "");
        assert_eq!(
            final_status(&caller, Duration::from_secs(3)),
            Some(404),
            "{to}"
        );
    }
    assert!(
        seat.invite(Duration::from_millis(300)).is_none(),
        "nothing was rung"
    );
    assert_eq!(gw.ended("dialplan.no_route"), 5);
}

#[test]
fn calls_from_unknown_sources_get_403() {
    let seat = Seat::new();
    let dir_plan = format!(
        "[[queue]]\nname = \"main\"\nstatic_members = [\"{}\"]\n",
        seat.uri()
    );
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = dir_plan;
    opts.trunk_sources = vec!["127.0.0.2".into()];
    let gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    invite(&caller, &gw, "12345", "unknown1", "");
    assert_eq!(final_status(&caller, Duration::from_secs(3)), Some(403));
    assert!(seat.invite(Duration::from_millis(300)).is_none());
    // A stranger is answered statelessly: no call record, no transaction; the
    // refusal is counted in /metrics (tests/it/security/sip.rs floods it).
    assert_eq!(gw.ended("dialplan.untrusted_source"), 0);
    assert_eq!(gw.health()["transactions"], 0);
    let (_, metrics) = http_get(gw.http, "/metrics").unwrap();
    assert!(
        metrics.contains("hotline_sip_strangers_refused_total 1"),
        "{metrics}"
    );
}

fn parallel_plan(seat: &Seat, legacy_port: u16, hours: &str) -> String {
    plan(
        seat,
        &format!(
            "[[trunk]]\nname = \"legacy\"\nkind = \"legacy\"\ntarget = \"sip:127.0.0.1:{legacy_port}\"\n\n\
[[line]]\nnumber = \"12333\"\nname = \"12333\"\nmode = \"parallel\"\nqueue = \"main\"\n\
legacy_trunk = \"legacy\"\nring_time_s = 3\n{hours}\n"
        ),
    )
}

#[test]
fn a_busy_legacy_platform_overflows_to_12345_within_the_ring_time() {
    let Some(sipp_bin) = sipp() else { return };
    let legacy = free_port();
    let _uas = Sipp::start(
        &sipp_bin,
        "uas_busy.xml",
        &["-p".into(), legacy.to_string()],
        Duration::from_secs(60),
    );
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = parallel_plan(&seat, legacy, "");
    let gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    invite(&caller, &gw, "12333", "par1", "");
    let inv = seat
        .invite(Duration::from_secs(3))
        .expect("12345 takes the call within the ring time");
    assert_eq!(header(&inv, "X-Hotline-Line"), Some("12333"));
    assert_eq!(header(&inv, "X-Hotline-Mode"), Some("parallel"));
}

#[test]
fn a_legacy_platform_that_answers_keeps_the_call() {
    let Some(sipp_bin) = sipp() else { return };
    let legacy = free_port();
    let uas = Sipp::start(
        &sipp_bin,
        "uas.xml",
        &["-p".into(), legacy.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(60),
    );
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = parallel_plan(&seat, legacy, "");
    let gw = Gateway::start(opts);
    let c = Softphone::start(&[
        "call".into(),
        "12333".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--hangup-after-ms".into(),
        "300".into(),
    ])
    .finish(Duration::from_secs(20))
    .unwrap();
    assert_eq!(c["answered"], 1, "{c}");
    assert!(
        seat.invite(Duration::from_millis(300)).is_none(),
        "12345 was never rung"
    );
    assert_eq!(uas.finish().successful, 1);
}

#[test]
fn out_of_hours_a_parallel_call_goes_straight_to_12345() {
    let seat = Seat::new();
    // Nothing listens at the legacy target: were it rung, the call would wait.
    let legacy = free_port();
    // Hours on a weekday that is not today (UTC+8), so the seats are closed now.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 8 * 3600;
    let today = ((secs / 86_400 + 3) % 7) as usize; // 0 = Monday
    let other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today + 3) % 7];
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan =
        parallel_plan(&seat, legacy, &format!("hours = [\"{other} 00:00-24:00\"]"));
    let gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    invite(&caller, &gw, "12333", "ooh1", "");
    let inv = seat
        .invite(Duration::from_millis(1500))
        .expect("straight to 12345");
    assert_eq!(header(&inv, "X-Hotline-Line"), Some("12333"));
}

/// Calls ended so far, whatever their reason.
fn calls_ended(gw: &Gateway) -> u64 {
    gw.health()["calls_ended"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
}

#[test]
fn a_reload_under_load_drops_no_call() {
    let Some(sipp_bin) = sipp() else { return };
    let seats = free_port();
    let _uas = Sipp::start(
        &sipp_bin,
        "uas.xml",
        &["-p".into(), seats.to_string()],
        Duration::from_secs(90),
    );
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"main\"\nwrap_up_s = 0\nstatic_members = [\"sip:127.0.0.1:{seats}\"]\nstatic_seats = 100\n"
    );
    let gw = Gateway::start(opts);
    let args = uac_args(
        &gw,
        "12345",
        400,
        &["-r", "100", "-d", "200", "-timeout", "60s"],
    );
    let uac = Sipp::start(&sipp_bin, "uac.xml", &args, Duration::from_secs(70));
    // Eight reloads spread over the run: each once 40 more calls have ended.
    let mut ended = 0;
    for n in 1..=8 {
        gw.wait_until(
            &format!("{} calls ended before reload {n}", ended + 40),
            Duration::from_secs(30),
            || {
                let now = calls_ended(&gw);
                let go = now >= ended + 40;
                if go {
                    ended = now;
                }
                go
            },
        );
        let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let r = uac.finish();
    assert_eq!((r.successful, r.failed), (400, 0), "{r:?}\n{}", gw.log());
}

#[test]
fn sighup_reloads_the_dialplan_and_a_broken_one_is_refused() {
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = plan(&seat, "");
    let mut gw = Gateway::start(opts);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    invite(&caller, &gw, "12369", "hup1", "");
    assert_eq!(
        final_status(&caller, Duration::from_secs(3)),
        Some(404),
        "not a line yet"
    );
    // A broken file first: the running plan stays, the gateway stays up.
    let extra = gw.dir.0.join("dialplans/extra.toml");
    std::fs::write(
        &extra,
        "[[line]]\nnumber = \"12369\"\nname = \"x\"\nqueue = \"nope\"\n",
    )
    .unwrap();
    gw.signal("HUP");
    gw.wait_until("the broken plan refused", Duration::from_secs(10), || {
        gw.log().contains("dialplan refused")
    });
    assert!(gw.alive());
    // Then a good one: 12369 now reaches the queue.
    std::fs::write(&extra, "[[line]]\nnumber = \"12369\"\nname = \"x\"\nmode = \"call_forwarding\"\nqueue = \"main\"\n").unwrap();
    gw.signal("HUP");
    // Until the reload is in, a call to 12369 gets 404: call again until one
    // rings the seat.
    let mut rung = None;
    let mut attempt = 0;
    gw.wait_until(
        "the new line to ring the seat",
        Duration::from_secs(10),
        || {
            attempt += 1;
            invite(&caller, &gw, "12369", &format!("hup2-{attempt}"), "");
            rung = seat.invite(Duration::from_millis(300));
            rung.is_some()
        },
    );
    let inv = rung.unwrap();
    assert_eq!(header(&inv, "X-Hotline-Line"), Some("12369"));
}

#[test]
fn a_reload_naming_an_unknown_prompt_is_refused_and_the_running_plan_stays() {
    let seat = Seat::new();
    let mut opts = GwOpts::to("queue:main");
    opts.extra_dialplan = plan(&seat, "");
    let gw = Gateway::start(opts);
    let extra = gw.dir.0.join("dialplans/extra.toml");
    let line = |prompt: &str| {
        format!(
            "[[line]]\nnumber = \"12369\"\nname = \"x\"\nmode = \"call_forwarding\"\nqueue = \"main\"\nprompt = \"{prompt}\"\n"
        )
    };
    // The folder loads, but the gateway has no prompt named "nope".
    std::fs::write(&extra, line("nope")).unwrap();
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "dialplan_refused", "{body}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("line 12369") && msg.contains("\"nope\""),
        "{msg}"
    );
    assert!(
        msg.contains("forwarded"),
        "the known prompts are listed: {msg}"
    );
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    invite(&caller, &gw, "12369", "prompt1", "");
    assert_eq!(
        final_status(&caller, Duration::from_secs(3)),
        Some(404),
        "the running plan stays"
    );
    // With a prompt the gateway has, the same line goes in.
    std::fs::write(&extra, line("forwarded")).unwrap();
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 200, "{body}");
}

/// `hotline-gw dialplan check --config <file>`: (success, stdout, stderr).
fn dialplan_check(config: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .args(["dialplan", "check", "--config"])
        .arg(config)
        .output()
        .expect("run hotline-gw dialplan check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dialplan_check_says_what_it_checked() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, out, err) = dialplan_check(&root.join("config/gateway.toml"));
    assert!(ok, "{err}");
    for part in [
        "7 line(s) (1 hotline, 2 direct_merge, 2 call_forwarding, 2 parallel)",
        "1 queue(s)",
        "3 agent(s)",
        "3 trunk(s)",
        "calendar 2026",
    ] {
        assert!(out.contains(part), "{part:?} missing from: {out}");
    }
    // Warnings, not errors: 12333 rings its legacy seats 20 s (> 15 s), and the
    // shipped calendar stops at 2026.
    assert!(
        err.contains("warning: ")
            && err.contains("lines.toml:")
            && err.contains("ring_time_s: line 12333")
            && err.contains("longer than the service level ([sla] answer_within_s = 15)"),
        "{err}"
    );
    assert!(
        !err.contains("line 12328"),
        "ring_time_s = 15 meets 15 s: {err}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let year = hotline_gateway::dialplan::time::local_time(now, 480).year;
    if year >= 2026 {
        let missing = format!("warning: calendar: no [[calendar]] for {}", year + 1);
        assert!(err.contains(&missing), "{missing:?} missing from: {err}");
    }
    let (ok, out, err) = dialplan_check(&root.join("config/lab.toml"));
    assert!(ok, "{err}");
    assert!(
        out.contains("3 line(s) (3 hotline), 2 queue(s), 20 agent(s)"),
        "{out}"
    );
}

#[test]
fn a_config_copied_elsewhere_names_the_key_its_dialplan_path_came_from() {
    let dir = TempDir::new("copied-config");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = dir.0.join("gateway.toml");
    std::fs::copy(root.join("config/gateway.toml"), &copy).unwrap();
    let (ok, out, err) = dialplan_check(&copy);
    assert!(!ok, "a missing dialplan folder must fail: {out}");
    let line = std::fs::read_to_string(&copy)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("dir = "))
        .expect("the [dialplan] dir line")
        + 1;
    let place = format!("{}:{line}: dialplan.dir:", copy.display());
    assert!(err.contains(&place), "{place:?} missing from: {err}");
    assert!(
        err.contains("cannot read the dialplan directory \"../dialplans/default\""),
        "{err}"
    );
    let folder = format!(
        "a relative path resolves against the config file's folder ({})",
        dir.0.display()
    );
    assert!(err.contains(&folder), "{folder:?} missing from: {err}");
}
