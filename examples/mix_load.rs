//! Three-party mixer load: how many three-party calls the relay thread (one
//! core) mixes with no loss (`scripts/bench-mix.sh` runs it at several sizes).
//!
//! ```text
//! mix_load --calls N [--seconds S] [--coalesce-us U]
//! ```
//!
//! The relay runs in this process, as in the gateway (its own thread, the
//! same orders the call core gives a three-party call: Open, Remote ×3,
//! Bridge, AddLeg, Mix). Each call's three phones (a socket each, on
//! loopback) send 50 packets/s of 160-byte PCMA, a tone per party, and count
//! what the mix sends back: 50 packets/s each when the relay keeps up. Loss
//! is the share of expected mix packets that did not arrive over the
//! measured window (after a 2 s warm-up); CPU is the relay thread's own
//! utime+stime from /proc over the window. Prints one JSON line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hotline_gateway::media::Codec;
use hotline_gateway::media::command::{Leg, MediaCommand, Remote};
use hotline_gateway::media::record::RecordTap;
use hotline_gateway::media::relay::{RelayConfig, spawn};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

const PTIME: Duration = Duration::from_millis(20);
const BASE_PORT: u16 = 20_000;
const WARMUP: Duration = Duration::from_secs(2);

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

/// utime + stime of this process's thread named `name`, in clock ticks.
fn thread_ticks(name: &str) -> Option<u64> {
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        return Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?);
    }
    None
}

fn main() {
    let calls: usize = arg("--calls").and_then(|v| v.parse().ok()).unwrap_or(300);
    let seconds: u64 = arg("--seconds").and_then(|v| v.parse().ok()).unwrap_or(10);
    let coalesce: u64 = arg("--coalesce-us")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1024);
    let cfg = RelayConfig {
        bind: lo,
        timeout: Duration::from_secs(3600),
        coalesce: Duration::from_micros(coalesce),
    };
    let relay = spawn(cfg, RecordTap::none(), events_tx).expect("relay");
    // Three phones per call; each phone's relay port.
    let mut phones: Vec<(std::net::UdpSocket, SocketAddr)> = Vec::with_capacity(calls * 3);
    for c in 0..calls {
        let base = BASE_PORT + (c as u16) * 6;
        let session = c as u64 + 1;
        relay
            .send(MediaCommand::Open {
                session,
                ports: [base, base + 2],
                record: None,
            })
            .expect("open");
        relay
            .send(MediaCommand::AddLeg {
                session,
                port: base + 4,
            })
            .expect("add leg");
        for (i, leg) in [Leg::A, Leg::B, Leg::C].into_iter().enumerate() {
            let sock = std::net::UdpSocket::bind((lo, 0)).expect("phone socket");
            let at = sock.local_addr().unwrap();
            relay
                .send(MediaCommand::Remote {
                    session,
                    leg,
                    remote: Remote {
                        rtp: at,
                        rtcp: SocketAddr::new(lo, at.port() + 1),
                        codec: Codec::Pcma,
                        dtmf_pt: None,
                    },
                    signal: Some(lo),
                })
                .expect("remote");
            phones.push((sock, SocketAddr::new(lo, base + 2 * i as u16)));
        }
        relay
            .send(MediaCommand::Bridge { session })
            .expect("bridge");
        relay
            .send(MediaCommand::Mix { session, on: true })
            .expect("mix");
        if c % 64 == 0 {
            relay.flush();
        }
    }
    relay.flush();
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(ev) = events_rx.try_recv() {
        eprintln!("relay reported {ev:?} (ports {BASE_PORT}+ in use?)");
        std::process::exit(1);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    // The receiver: every phone's socket on one poll.
    let mut rx: Vec<UdpSocket> = phones
        .iter()
        .map(|(s, _)| {
            let c = s.try_clone().unwrap();
            c.set_nonblocking(true).unwrap();
            UdpSocket::from_std(c)
        })
        .collect();
    let receiver = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut poll = Poll::new().unwrap();
            for (i, s) in rx.iter_mut().enumerate() {
                poll.registry()
                    .register(s, Token(i), Interest::READABLE)
                    .unwrap();
            }
            let mut events = Events::with_capacity(4096);
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
                for ev in events.iter() {
                    while rx[ev.token().0].recv_from(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // The senders' tones: 700, 1100 and 1700 Hz, one frame per 20 ms each.
    let frame = |hz: f64, n: u64| -> Vec<u8> {
        (0..160)
            .map(|i| {
                let t = (n * 160 + i) as f64 / 8000.0;
                Codec::Pcma
                    .encode_sample((5000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
            })
            .collect()
    };
    let tones: Vec<Vec<Vec<u8>>> = [700.0, 1100.0, 1700.0]
        .iter()
        .map(|&hz| (0..50).map(|n| frame(hz, n)).collect())
        .collect();
    let start = Instant::now();
    let mut measured: Option<(Instant, u64, u64, u64)> = None;
    let end = start + WARMUP + Duration::from_secs(seconds);
    let mut n: u64 = 0;
    let mut pkt = vec![0u8; 172];
    while Instant::now() < end {
        let due = start + PTIME * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if measured.is_none() && Instant::now() >= start + WARMUP {
            measured = Some((
                Instant::now(),
                received.load(Ordering::Relaxed),
                thread_ticks("media-relay").unwrap_or(0),
                relay.stats.packets_in.load(Ordering::Relaxed),
            ));
        }
        for (i, (sock, to)) in phones.iter().enumerate() {
            pkt[0] = 0x80;
            pkt[1] = 8;
            pkt[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&((n * 160) as u32).to_be_bytes());
            pkt[8..12].copy_from_slice(&(i as u32).to_be_bytes());
            pkt[12..].copy_from_slice(&tones[i % 3][(n % 50) as usize]);
            let _ = sock.send_to(&pkt, to);
        }
        n += 1;
    }
    let (t0, r0, c0, i0) = measured.expect("a measured window");
    let (t1, r1, c1, i1) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        thread_ticks("media-relay").unwrap_or(0),
        relay.stats.packets_in.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let secs = t1.duration_since(t0).as_secs_f64();
    let expected = (calls * 3) as f64 * 50.0 * secs;
    let got = (r1 - r0) as f64;
    let hz = 100.0; // USER_HZ
    let cpu_s = (c1 - c0) as f64 / hz;
    let frames = got.max(1.0);
    println!(
        "{{\"calls\":{calls},\"seconds\":{secs:.1},\"mix_packets_per_s\":{:.0},\"expected_per_s\":{:.0},\"loss\":{:.5},\"input_loss\":{:.5},\"relay_cpu_share\":{:.3},\"cpu_us_per_mixed_packet\":{:.2}}}",
        got / secs,
        expected / secs,
        (1.0 - got / expected).max(0.0),
        (1.0 - (i1 - i0) as f64 / expected).max(0.0),
        cpu_s / secs,
        cpu_s * 1e6 / frames
    );
}
