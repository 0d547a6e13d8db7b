//! No allocation per packet on the RTP path (CONVENTIONS.md 8): the relay thread
//! relays thousands of packets of a bridged call, with DTMF detection and the
//! rewriter in the path, and the heap sees no more blocks than it did for a few.
//!
//! Its own test binary: the counting allocator (dhat) is global to the process.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hotline_gateway::media::Codec;
use hotline_gateway::media::command::{Leg, MediaCommand, Remote};
use hotline_gateway::media::record::RecordTap;
use hotline_gateway::media::relay::{RelayConfig, Stats, spawn};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn free_base() -> u16 {
    let pid = std::process::id() as u16;
    (0..200u16)
        .map(|i| 10_000 + ((pid.wrapping_add(i * 13)) % 50) * 40)
        .find(|b| (*b..b + 4).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()))
        .expect("free ports")
}

fn remote(s: &UdpSocket) -> Remote {
    let a = s.local_addr().unwrap();
    Remote {
        rtp: a,
        rtcp: SocketAddr::new(a.ip(), a.port() + 1),
        codec: Codec::Pcma,
        dtmf_pt: Some(101),
    }
}

/// Sends `n` packets each way through the relay and waits until all are relayed.
fn pump(a: &UdpSocket, b: &UdpSocket, to: [SocketAddr; 2], stats: &Stats, seq: &mut u16, n: u64) {
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[1] = 8;
    let mut buf = [0u8; 2048];
    let target = Stats::get(&stats.packets_out) + 2 * n;
    for i in 0..n {
        // In bursts of 50, each relayed before the next (the sockets' buffers
        // hold a few hundred packets; phones send 50 a second).
        if i % 50 == 0 {
            let want = target - 2 * n + 2 * i;
            let end = Instant::now() + Duration::from_secs(5);
            while Stats::get(&stats.packets_out) < want && Instant::now() < end {
                while a.recv_from(&mut buf).is_ok() {}
                while b.recv_from(&mut buf).is_ok() {}
                std::thread::yield_now();
            }
        }
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&(u32::from(*seq) * 160).to_be_bytes());
        *seq = seq.wrapping_add(1);
        a.send_to(&pkt, to[0]).unwrap();
        b.send_to(&pkt, to[1]).unwrap();
        // Read what has arrived so the sockets never fill up.
        while a.recv_from(&mut buf).is_ok() {}
        while b.recv_from(&mut buf).is_ok() {}
    }
    let end = Instant::now() + Duration::from_secs(10);
    while Stats::get(&stats.packets_out) < target && Instant::now() < end {
        while a.recv_from(&mut buf).is_ok() {}
        while b.recv_from(&mut buf).is_ok() {}
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        Stats::get(&stats.packets_out),
        target,
        "every packet relayed"
    );
}

#[test]
fn relaying_packets_allocates_nothing_per_packet() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (tx, _events) = tokio::sync::mpsc::channel(64);
    let cfg = RelayConfig {
        bind: "127.0.0.1".parse().unwrap(),
        timeout: Duration::from_secs(60),
        coalesce: Duration::ZERO,
    };
    let handle = spawn(cfg, RecordTap::none(), tx).unwrap();
    let base = free_base();
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    for cmd in [
        MediaCommand::Open {
            session: 1,
            ports: [base, base + 2],
            record: None,
        },
        MediaCommand::Remote {
            session: 1,
            leg: Leg::A,
            remote: remote(&a),
            // Latching checks the signalling IP on every packet: in the path.
            signal: Some("127.0.0.1".parse().unwrap()),
        },
        MediaCommand::Remote {
            session: 1,
            leg: Leg::B,
            remote: remote(&b),
            // Latching checks the signalling IP on every packet: in the path.
            signal: Some("127.0.0.1".parse().unwrap()),
        },
        MediaCommand::Bridge { session: 1 },
    ] {
        handle.send(cmd).unwrap();
    }
    handle.flush();
    std::thread::sleep(Duration::from_millis(50));
    let to = [
        SocketAddr::from(([127, 0, 0, 1], base)),
        SocketAddr::from(([127, 0, 0, 1], base + 2)),
    ];
    let mut seq = 0u16;
    // Warm up: latching, the first rewrite, lazily built state.
    pump(&a, &b, to, &handle.stats, &mut seq, 200);
    let before = dhat::HeapStats::get();
    pump(&a, &b, to, &handle.stats, &mut seq, 5_000);
    let after = dhat::HeapStats::get();
    let blocks = after.total_blocks - before.total_blocks;
    eprintln!("heap blocks allocated while relaying 10,000 packets: {blocks}");
    // 10,000 packets relayed: a per-packet allocation would show thousands.
    assert!(
        blocks < 20,
        "{blocks} heap blocks allocated while relaying 10,000 packets"
    );
}
