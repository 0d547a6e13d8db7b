//! Attacker tests: media (see mod.rs). Issue 14 hole 5: the relay latched onto
//! the first source after each SDP and let anyone take a silent leg over, so a
//! stranger who sprayed RTP at the relay's ports could listen in or inject
//! audio. Now a leg hears only its SDP's address or its signalling IP.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hotline_gateway::media::Codec;
use hotline_gateway::softphone::audio::{read_wav, tone_power};

use crate::support::*;

/// The frequency the attacker injects; the phones send 700 and 1500 Hz.
const INJECTED_HZ: f64 = 3000.0;

fn gateway() -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\n\
agents = [\"2001\"]\n\n[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"pw2001-secret\"\n"
        .into();
    opts.extra_config = "[media]\nqueued = \"answer\"\nsurvey = false\n".into();
    Gateway::start(opts)
}

fn softphone(gw: &Gateway, args: &[&str]) -> Softphone {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--server".to_string(), gw.sip.to_string()]);
    Softphone::start(&v)
}

fn wait_agent_ready(gw: &Gateway) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if gw.get_json("/api/v1/agents")["agents"][0]["state"] == "ready" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("agent never registered: {}", gw.log());
}

/// The gateway's RTP range, from the config the test wrote.
fn rtp_range(gw: &Gateway) -> (u16, u16) {
    let text = std::fs::read_to_string(gw.dir.0.join("gateway.toml")).unwrap();
    let key = |k: &str| -> u16 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)?
                    .trim()
                    .strip_prefix('=')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{k} in the test config"))
    };
    (key("rtp_port_min"), key("rtp_port_max"))
}

/// UDP ports the gateway process `pid` has bound on 127.0.0.1 inside `range`
/// right now: the relay's sockets (matched by socket inode, so that gateways of
/// other test processes on this machine are left alone).
fn bound_ports(pid: u32, range: (u16, u16)) -> Vec<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.ok()?.path()).ok()?;
            let l = link.to_str()?;
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ip, port) = f.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ours = inodes.contains(*f.get(9)?);
            (ours && ip == "0100007F" && (range.0..=range.1).contains(&port)).then_some(port)
        })
        .collect()
}

/// 20 ms of the injected tone as an RTP packet in `codec`.
fn injected(codec: Codec, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, codec.payload_type()];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(0x0bad_cafe_u32.to_be_bytes());
    for i in 0..160u32 {
        let t = f64::from(u32::from(seq) * 160 + i) / 8000.0;
        let s = (12_000.0 * (2.0 * std::f64::consts::PI * INJECTED_HZ * t).sin()) as i16;
        p.push(codec.encode_sample(s));
    }
    p
}

/// What the sprayer did and got.
#[derive(Default)]
struct Spray {
    sent: AtomicU64,
    received: AtomicU64,
    /// Distinct relay ports it found bound.
    targets: AtomicU64,
}

/// From 127.0.0.2 ("another host"), every 20 ms until `stop`: RTP with the
/// injected tone (both G.711 laws) and RTCP at every port the gateway `pid`'s
/// relay has bound in its range and at their neighbours; counts whatever comes
/// back.
fn spray(pid: u32, range: (u16, u16), stop: Arc<AtomicBool>, out: Arc<Spray>) {
    let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut buf = [0u8; 2048];
    let mut seq = 0u16;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut ports = std::collections::BTreeSet::new();
        for p in bound_ports(pid, range) {
            seen.insert(p);
            for q in p.saturating_sub(2)..=p.saturating_add(3) {
                if (range.0..=range.1).contains(&q) {
                    ports.insert(q);
                }
            }
        }
        let codec = if seq.is_multiple_of(2) {
            Codec::Pcma
        } else {
            Codec::Pcmu
        };
        let rtp = injected(codec, seq);
        let mut rtcp = vec![0x80, 200, 0, 6];
        rtcp.extend([0x0b, 0xad, 0xca, 0xfe]);
        rtcp.extend([0u8; 20]);
        for q in ports {
            let to = SocketAddr::from(([127, 0, 0, 1], q));
            let pkt = if q.is_multiple_of(2) { &rtp } else { &rtcp };
            if sock.send_to(pkt, to).is_ok() {
                out.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        seq = seq.wrapping_add(1);
        loop {
            match sock.recv_from(&mut buf) {
                Ok(_) => {
                    out.received.fetch_add(1, Ordering::Relaxed);
                }
                // Nothing more, or ICMP port unreachable from an unbound neighbour.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out.targets.store(seen.len() as u64, Ordering::Relaxed);
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    let (code, text) = http_get(gw.http, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[test]
fn rtp_sprayed_at_the_relay_from_a_third_host_is_not_relayed() {
    let gw = gateway();
    let dir = TempDir::new("spray");
    let d = dir.0.display().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let spray_out = Arc::new(Spray::default());
    let sprayer = {
        let (pid, range) = (gw.pid(), rtp_range(&gw));
        let (stop, out) = (stop.clone(), spray_out.clone());
        std::thread::spawn(move || spray(pid, range, stop, out))
    };
    let agent = agent(
        &gw,
        "2001",
        "pw2001-secret",
        &[
            "--calls",
            "1",
            "--run-s",
            "30",
            "--answer-after-ms",
            "300",
            "--tone-hz",
            "1500",
            "--record-dir",
            &d,
        ],
    );
    wait_agent_ready(&gw);
    let caller = softphone(
        &gw,
        &[
            "call",
            "12345",
            "--hangup-after-ms",
            "4000",
            "--tone-hz",
            "700",
            "--record-dir",
            &d,
        ],
    );
    let cs = caller.finish(Duration::from_secs(30)).expect("caller");
    let asum = agent.finish(Duration::from_secs(30)).expect("agent");
    stop.store(true, Ordering::Relaxed);
    sprayer.join().unwrap();
    assert_eq!(asum["answered"], 1, "{asum}");
    // The attack was real: the relay's ports were found and sprayed, and the
    // relay saw (and dropped) the attacker's packets.
    assert!(
        spray_out.targets.load(Ordering::Relaxed) >= 4,
        "the sprayer found the call's four relay ports"
    );
    assert!(spray_out.sent.load(Ordering::Relaxed) > 100);
    // The sprayer heard nothing of the call.
    assert_eq!(
        spray_out.received.load(Ordering::Relaxed),
        0,
        "no audio reached the sprayer"
    );
    // The parties heard each other and no injected tone.
    let heard = |who: &serde_json::Value| -> Vec<i16> {
        let path = who["audio"][0]["recording"].as_str().expect("recording");
        read_wav(std::path::Path::new(path)).unwrap()
    };
    let agent_heard = heard(&asum);
    assert!(agent_heard.len() > 16_000, "the agent heard 2 s or more");
    let (p700, p_inj) = (
        tone_power(&agent_heard, 700.0),
        tone_power(&agent_heard, INJECTED_HZ),
    );
    assert!(
        p700 > 100.0 * p_inj,
        "the agent hears the caller, not the attacker: {p700} vs {p_inj}"
    );
    let caller_heard = heard(&cs);
    let tail = &caller_heard[caller_heard.len().saturating_sub(16_000)..];
    let (p1500, p_inj) = (tone_power(tail, 1500.0), tone_power(tail, INJECTED_HZ));
    assert!(
        p1500 > 100.0 * p_inj,
        "the caller hears the agent, not the attacker: {p1500} vs {p_inj}"
    );
    assert!(
        metric(&gw, "hotline_media_dropped_foreign_total") > 0,
        "the relay dropped the sprayed packets"
    );
}
