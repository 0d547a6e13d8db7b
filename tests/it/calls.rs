//! Calls through the real binary with sipp as caller and callee, over UDP and TCP.

use std::net::UdpSocket;
use std::time::Duration;

use crate::support::*;

/// Starts a sipp UAS on a free port; returns it with the target URI to route to.
fn uas(sipp: &std::path::Path, scenario_file: &str, tcp: bool) -> (Sipp, String) {
    let port = free_port();
    let args = vec![
        "-p".into(),
        port.to_string(),
        "-t".into(),
        sipp_transport(tcp).into(),
    ];
    let s = Sipp::start(sipp, scenario_file, &args, Duration::from_secs(120));
    let transport = if tcp { ";transport=tcp" } else { "" };
    (s, format!("sip:127.0.0.1:{port}{transport}"))
}

/// Runs a sipp UAC against the gateway: `calls` calls at `rate` per second.
fn uac(
    sipp: &std::path::Path,
    gw: &Gateway,
    scenario_file: &str,
    tcp: bool,
    calls: u32,
    rate: u32,
    extra: &[&str],
) -> SippResult {
    let mut args: Vec<String> = vec![
        gw.sip.to_string(),
        "-s".into(),
        "12345".into(),
        "-p".into(),
        free_port().to_string(),
        "-t".into(),
        sipp_transport(tcp).into(),
        "-m".into(),
        calls.to_string(),
        "-r".into(),
        rate.to_string(),
        "-timeout".into(),
        "60s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Sipp::start(sipp, scenario_file, &args, Duration::from_secs(90)).finish()
}

fn thousand_calls(tcp: bool) {
    let Some(sipp) = sipp() else { return };
    let (_uas, target) = uas(&sipp, "uas.xml", tcp);
    let gw = Gateway::start(GwOpts::to(target));
    let r = uac(&sipp, &gw, "uac.xml", tcp, 1000, 200, &[]);
    assert_eq!((r.successful, r.failed), (1000, 0), "{r:?}\n{}", gw.log());
    gw.wait_health("all calls ended", Duration::from_secs(10), |h| {
        h["active_calls"] == 0 && h["calls_ended"]["call.caller_hangup"] == 1000
    });
}

#[test]
fn thousand_calls_over_udp() {
    thousand_calls(false);
}

#[test]
fn thousand_calls_over_tcp() {
    thousand_calls(true);
}

#[test]
fn caller_cancel_gets_487_and_callee_gets_cancel() {
    let Some(sipp) = sipp() else { return };
    let (_uas, target) = uas(&sipp, "uas_ring_forever.xml", false);
    let gw = Gateway::start(GwOpts::to(target));
    let r = uac(&sipp, &gw, "uac_cancel.xml", false, 20, 20, &["-d", "300"]);
    assert_eq!((r.successful, r.failed), (20, 0), "{r:?}\n{}", gw.log());
    gw.wait_health("cancelled calls recorded", Duration::from_secs(10), |h| {
        h["active_calls"] == 0 && h["calls_ended"]["call.caller_cancelled"] == 20
    });
}

#[test]
fn callee_hangs_up_first() {
    let Some(sipp) = sipp() else { return };
    let (_uas, target) = uas(&sipp, "uas_bye.xml", false);
    let gw = Gateway::start(GwOpts::to(target));
    let r = uac(&sipp, &gw, "uac_wait_bye.xml", false, 20, 20, &[]);
    assert_eq!((r.successful, r.failed), (20, 0), "{r:?}\n{}", gw.log());
    gw.wait_health("callee hang-ups recorded", Duration::from_secs(10), |h| {
        h["active_calls"] == 0 && h["calls_ended"]["call.callee_hangup"] == 20
    });
}

#[test]
fn callee_busy_is_relayed() {
    let Some(sipp) = sipp() else { return };
    let (_uas, target) = uas(&sipp, "uas_busy.xml", false);
    let gw = Gateway::start(GwOpts::to(target));
    let r = uac(&sipp, &gw, "uac_expect_486.xml", false, 20, 20, &[]);
    assert_eq!((r.successful, r.failed), (20, 0), "{r:?}\n{}", gw.log());
    assert_eq!(gw.ended("leg.callee_busy"), 20);
}

#[test]
fn silent_callee_gives_408_within_timer_b() {
    let Some(sipp) = sipp() else { return };
    // A bound socket that never answers: the callee is silent, not unreachable.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("sip:127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut opts = GwOpts::to(target);
    opts.t1_ms = 50; // Timer B = 64·T1 = 3.2 s
    let gw = Gateway::start(opts);
    let r = uac(&sipp, &gw, "uac_expect_408.xml", false, 3, 10, &[]);
    assert_eq!((r.successful, r.failed), (3, 0), "{r:?}\n{}", gw.log());
    assert_eq!(gw.ended("leg.callee_timeout"), 3);
}

#[test]
fn unknown_number_gets_404_and_nothing_is_sent_on() {
    let Some(sipp) = sipp() else { return };
    let never = UdpSocket::bind("127.0.0.1:0").unwrap();
    never
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let target = format!("sip:127.0.0.1:{}", never.local_addr().unwrap().port());
    let gw = Gateway::start(GwOpts::to(target));
    let args = uac_args(&gw, "0085212345", 5, &["-trace_counts", "-timeout", "20s"]);
    let r = Sipp::start(
        &sipp,
        "uac_expect_error.xml",
        &args,
        Duration::from_secs(30),
    )
    .finish();
    assert_eq!((r.successful, r.failed), (5, 0), "{r:?}");
    assert_eq!(gw.ended("dialplan.no_route"), 5);
    let mut buf = [0u8; 2048];
    assert!(
        never.recv_from(&mut buf).is_err(),
        "nothing reached the target"
    );
}

#[test]
fn over_the_call_limit_gets_503_with_retry_after() {
    let Some(sipp) = sipp() else { return };
    let (_uas, target) = uas(&sipp, "uas_ring_forever.xml", false);
    let mut opts = GwOpts::to(target);
    opts.max_calls = 2;
    let gw = Gateway::start(opts);
    // Two calls ring forever and hold the limit; the next five are refused.
    let hold_args = uac_args(&gw, "12345", 2, &["-d", "30000"]);
    let _hold = Sipp::start(&sipp, "uac_cancel.xml", &hold_args, Duration::from_secs(60));
    gw.wait_health("two calls ringing", Duration::from_secs(10), |h| {
        h["active_calls"] == 2
    });
    let args = uac_args(&gw, "12345", 5, &["-timeout", "20s"]);
    let r = Sipp::start(
        &sipp,
        "uac_expect_error.xml",
        &args,
        Duration::from_secs(30),
    )
    .finish();
    assert_eq!((r.successful, r.failed), (5, 0), "{r:?}");
    assert_eq!(gw.ended("gateway.overload"), 5);
}
