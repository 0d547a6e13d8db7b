//! The relay thread with real sockets on loopback: latching, forwarding with
//! continuity across source switches, telephone-event digits, timeouts.
//! Strict latching (strangers, NAT, take-over, RTCP) is in `latch_tests.rs`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{RelayConfig, spawn, spawn_with_queue};
use crate::media::command::{Leg, MediaCommand, MediaEvent, Playlist, Remote};
use crate::media::record::RecordTap;
use crate::media::{Codec, Prompt};

/// A block of free even ports for one test (the relay binds them), below the
/// ephemeral range where the phones' own sockets land.
fn ports(n: u16) -> u16 {
    // Tests run in parallel: each call takes the next block.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let pid = std::process::id() as u16;
    for _ in 0..400u16 {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 12_000 + ((pid.wrapping_mul(7) + i * 37) % 190) * 40;
        let free = (base..base + n * 2).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free ports");
}

/// The relay on loopback with this media timeout.
fn config(timeout: Duration) -> RelayConfig {
    RelayConfig {
        bind: "127.0.0.1".parse().unwrap(),
        timeout,
        coalesce: Duration::ZERO,
    }
}

/// The phones' signalling source in these tests: loopback, like the phones.
/// The address a phone behind NAT writes in its SDP (its private one): not the
/// IP its signalling comes from ([`SIGNAL`]), which is what lets the relay take
/// its audio from any port of the signalling IP.
pub(super) const NATTED: &str = "127.0.0.5";
pub(super) const SIGNAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

pub(super) fn phone() -> UdpSocket {
    phone_at("127.0.0.1")
}

/// A phone (or an attacker) on another loopback address: "another host".
pub(super) fn phone_at(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

pub(super) fn remote(sock: &UdpSocket, dtmf: Option<u8>) -> Remote {
    let a = sock.local_addr().unwrap();
    Remote {
        rtp: a,
        rtcp: SocketAddr::new(a.ip(), a.port() + 1),
        codec: Codec::Pcma,
        dtmf_pt: dtmf,
    }
}

pub(super) fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend(seq.to_be_bytes());
    p.extend(ts.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend(payload);
    p
}

pub(super) fn recv(sock: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| buf[..n].to_vec())
}

pub(super) struct Relay {
    pub(super) handle: super::MediaHandle,
    events: tokio::sync::mpsc::Receiver<MediaEvent>,
    pub(super) base: u16,
}

impl Relay {
    pub(super) fn start(timeout: Duration) -> Relay {
        let (tx, events) = tokio::sync::mpsc::channel(64);
        let cfg = RelayConfig {
            coalesce: Duration::from_micros(500),
            ..config(timeout)
        };
        let handle = spawn(cfg, RecordTap::none(), tx).unwrap();
        Relay {
            handle,
            events,
            base: ports(2),
        }
    }

    pub(super) fn send(&self, cmd: MediaCommand) {
        self.handle.send(cmd).unwrap();
        self.handle.flush();
    }

    pub(super) fn port(&self, leg: Leg) -> SocketAddr {
        let p = self.base + if leg == Leg::A { 0 } else { 2 };
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    /// Opens session 1 with both phones known, bridged; both signal from
    /// loopback ([`SIGNAL`]).
    pub(super) fn bridged(&self, a: &UdpSocket, b: &UdpSocket, dtmf: Option<u8>) {
        self.bridged_with([remote(a, dtmf), remote(b, dtmf)], [Some(SIGNAL); 2]);
    }

    /// Opens session 1 with these SDPs and signalling sources, bridged.
    pub(super) fn bridged_with(&self, remotes: [Remote; 2], signal: [Option<IpAddr>; 2]) {
        self.send(MediaCommand::Open {
            session: 1,
            ports: [self.base, self.base + 2],
            record: None,
        });
        for (i, leg) in [Leg::A, Leg::B].into_iter().enumerate() {
            self.send(MediaCommand::Remote {
                session: 1,
                leg,
                remote: remotes[i],
                signal: signal[i],
            });
        }
        self.send(MediaCommand::Bridge { session: 1 });
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Waits (up to 2 s) for `counter` to reach `n`; its value.
    pub(super) fn wait_count(counter: &std::sync::atomic::AtomicU64, n: u64) -> u64 {
        let end = Instant::now() + Duration::from_secs(2);
        while super::Stats::get(counter) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        super::Stats::get(counter)
    }

    fn event(&mut self, within: Duration) -> Option<MediaEvent> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(e) = self.events.try_recv() {
                return Some(e);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

#[test]
fn a_bridged_call_relays_both_ways_with_the_gateways_own_ssrc() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone(), phone());
    r.bridged(&a, &b, None);
    for i in 0..5u16 {
        a.send_to(
            &rtp(8, 100 + i, 1000 + u32::from(i) * 160, 0xaaaa, &[0xd5; 160]),
            r.port(Leg::A),
        )
        .unwrap();
        let got = recv(&b).expect("the callee gets the caller's packet");
        assert_eq!(got.len(), 172);
        assert_eq!(&got[12..], &[0xd5; 160][..], "payload intact");
        assert_ne!(
            &got[8..12],
            &0xaaaau32.to_be_bytes(),
            "SSRC is the gateway's"
        );
        b.send_to(
            &rtp(8, 7 + i, 50 + u32::from(i) * 160, 0xbbbb, &[0x55; 160]),
            r.port(Leg::B),
        )
        .unwrap();
        let back = recv(&a).expect("and the caller the callee's");
        assert_eq!(&back[12..], &[0x55; 160][..]);
    }
    // The counter moves just after the send.
    let end = Instant::now() + Duration::from_secs(1);
    while super::Stats::get(&r.handle.stats.packets_out) < 10 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(super::Stats::get(&r.handle.stats.packets_out), 10);
}

#[test]
fn latching_follows_a_phone_behind_nat_and_holds_against_other_ports() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone_at(NATTED), phone());
    // The caller's SDP names `a`, but it sends from `nat` (another port of the
    // IP its signalling came from).
    let nat = phone();
    r.bridged(&a, &b, None);
    nat.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert!(recv(&b).is_some());
    b.send_to(&rtp(8, 1, 0, 2, &[2; 160]), r.port(Leg::B))
        .unwrap();
    assert!(
        recv(&nat).is_some(),
        "audio goes where the caller sends from"
    );
    // Another port of that IP, while the latched one is fresh, is not relayed.
    let other = phone();
    other
        .send_to(&rtp(8, 9, 0, 3, &[3; 160]), r.port(Leg::A))
        .unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(recv(&b).is_none(), "another port's packet is dropped");
    assert!(Relay::wait_count(&r.handle.stats.dropped_unknown, 1) >= 1);
}

#[test]
fn another_port_that_latches_first_gives_way_to_the_phone_of_the_sdp() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone_at(NATTED), phone());
    r.bridged(&a, &b, None);
    // Allowed (the signalling IP), but not the SDP's address.
    let stranger = phone();
    // Junk never latches.
    stranger.send_to(b"not rtp", r.port(Leg::A)).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    while super::Stats::get(&r.handle.stats.dropped_malformed) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(super::Stats::get(&r.handle.stats.dropped_malformed), 1);
    stranger
        .send_to(&rtp(8, 1, 0, 9, &[9; 160]), r.port(Leg::A))
        .unwrap();
    assert!(recv(&b).is_some(), "the first source latches");
    // The phone the caller's SDP names sends: it takes the leg back at once.
    a.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(recv(&b).map(|p| p[12]), Some(1));
    b.send_to(&rtp(8, 1, 0, 2, &[2; 160]), r.port(Leg::B))
        .unwrap();
    assert!(recv(&a).is_some(), "audio goes to the real phone");
    stranger
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(recv(&stranger).is_none(), "not to the stranger");
    // The stranger is not heard any more (the kernel drops its packets: the
    // leg's socket is connected to the real phone).
    stranger
        .send_to(&rtp(8, 2, 160, 9, &[9; 160]), r.port(Leg::A))
        .unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(recv(&b).is_none(), "the stranger is not relayed");
}

#[test]
fn a_phone_that_moves_without_a_new_sdp_is_heard_after_its_old_address_falls_silent() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone_at(NATTED), phone());
    r.bridged(&a, &b, None);
    // The phone of the SDP latches (the relay connects the leg's socket to it).
    a.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(recv(&b).map(|p| p[12]), Some(1));
    b.send_to(&rtp(8, 1, 0, 2, &[2; 160]), r.port(Leg::B))
        .unwrap();
    assert_eq!(recv(&a).map(|p| p[12]), Some(2));
    // The same phone from a new port (it restarted), no new SDP: not heard while
    // the old address is fresh...
    let moved = phone();
    moved
        .send_to(&rtp(8, 2, 160, 1, &[3; 160]), r.port(Leg::A))
        .unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(recv(&b).is_none(), "the latched address holds the leg");
    // ...and heard once it has been silent for the re-latch time.
    let end = Instant::now() + Duration::from_secs(6);
    let mut seq = 3;
    let heard = loop {
        moved
            .send_to(
                &rtp(8, seq, 160 * u32::from(seq), 1, &[4; 160]),
                r.port(Leg::A),
            )
            .unwrap();
        seq += 1;
        if let Some(p) = recv(&b) {
            break Some(p);
        }
        if Instant::now() > end {
            break None;
        }
    };
    assert_eq!(heard.map(|p| p[12]), Some(4), "the moved phone latches");
    b.send_to(&rtp(8, 2, 160, 2, &[5; 160]), r.port(Leg::B))
        .unwrap();
    assert_eq!(
        recv(&moved).map(|p| p[12]),
        Some(5),
        "audio follows the phone to its new address"
    );
}

#[test]
fn prompt_then_agent_is_one_continuous_stream_for_the_caller() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone(), phone());
    r.send(MediaCommand::Open {
        session: 1,
        ports: [r.base, r.base + 2],
        record: None,
    });
    r.send(MediaCommand::Remote {
        session: 1,
        leg: Leg::A,
        remote: remote(&a, None),
        signal: Some(SIGNAL),
    });
    let prompt = Arc::new(Prompt::from_pcm("p", &vec![1000i16; 8000]));
    r.send(MediaCommand::Play {
        session: 1,
        play: 1,
        playlist: Playlist {
            once: vec![prompt],
            hold: None,
        },
    });
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(recv(&a).expect("the prompt plays"));
    }
    r.send(MediaCommand::Remote {
        session: 1,
        leg: Leg::B,
        remote: remote(&b, None),
        signal: Some(SIGNAL),
    });
    r.send(MediaCommand::Bridge { session: 1 });
    std::thread::sleep(Duration::from_millis(30));
    // Drain what the player sent before the switch.
    a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    while let Some(p) = recv(&a) {
        seen.push(p);
    }
    a.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for i in 0..3u16 {
        b.send_to(
            &rtp(
                8,
                40_000 + i,
                7_000_000 + u32::from(i) * 160,
                0xb0b,
                &[0x2a; 160],
            ),
            r.port(Leg::B),
        )
        .unwrap();
        seen.push(recv(&a).expect("the agent's audio"));
    }
    let ssrc: Vec<&[u8]> = seen.iter().map(|p| &p[8..12]).collect();
    assert!(ssrc.windows(2).all(|w| w[0] == w[1]), "one SSRC throughout");
    let seqs: Vec<u16> = seen
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "sequence continues across the switch: {seqs:?}"
    );
    let ts: Vec<u32> = seen
        .iter()
        .map(|p| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
        .collect();
    assert!(
        ts.windows(2).all(|w| w[1] > w[0]),
        "timestamps move forward: {ts:?}"
    );
    assert_eq!(&seen.last().unwrap()[12..], &[0x2a; 160][..]);
}

#[test]
fn a_telephone_event_from_the_caller_is_one_digit() {
    let mut r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone(), phone());
    r.bridged(&a, &b, Some(101));
    // '5' over three packets, then its end three times (RFC 4733 §2.5.1.4).
    let ev = |end: bool, dur: u16| {
        [
            5u8,
            if end { 0x80 } else { 0 } | 10,
            (dur >> 8) as u8,
            dur as u8,
        ]
    };
    let steps = [
        (false, 160),
        (false, 320),
        (false, 480),
        (true, 640),
        (true, 640),
        (true, 640),
    ];
    for (seq, (end, dur)) in (10u16..).zip(steps) {
        a.send_to(&rtp(101, seq, 8000, 0xd7, &ev(end, dur)), r.port(Leg::A))
            .unwrap();
    }
    match r.event(Duration::from_secs(2)) {
        Some(MediaEvent::Digit {
            session: 1,
            leg: Leg::A,
            digit: '5',
        }) => {}
        other => panic!("expected digit 5, got {other:?}"),
    }
    assert_eq!(
        r.event(Duration::from_millis(300)),
        None,
        "one event, one digit"
    );
    // The events also reach the callee (it may run its own IVR).
    assert!(recv(&b).is_some());
}

#[test]
fn silence_ends_in_a_timeout_event() {
    let mut r = Relay::start(Duration::from_secs(1));
    let (a, b) = (phone(), phone());
    r.bridged(&a, &b, None);
    match r.event(Duration::from_secs(4)) {
        Some(MediaEvent::Timeout { session: 1 }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn ports_taken_by_another_program_fail_the_session() {
    let mut r = Relay::start(Duration::from_secs(30));
    let squatter = UdpSocket::bind(("127.0.0.1", r.base + 2)).unwrap();
    r.send(MediaCommand::Open {
        session: 9,
        ports: [r.base, r.base + 2],
        record: None,
    });
    match r.event(Duration::from_secs(2)) {
        Some(MediaEvent::Failed { session: 9, port }) => assert_eq!(port, r.base + 2),
        other => panic!("expected a bind failure, got {other:?}"),
    }
    drop(squatter);
}

#[test]
fn a_close_that_finds_the_queue_full_still_unbinds_the_call() {
    let (tx, _events) = tokio::sync::mpsc::channel(64);
    let handle =
        spawn_with_queue(config(Duration::from_secs(30)), RecordTap::none(), tx, 2).unwrap();
    let base = ports(2);
    let open = MediaCommand::Open {
        session: 1,
        ports: [base, base + 2],
        record: None,
    };
    handle.send(open).unwrap();
    handle.flush();
    let bound = |p: u16| UdpSocket::bind(("127.0.0.1", p)).is_err();
    let end = Instant::now() + Duration::from_secs(2);
    while !bound(base) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(bound(base), "the relay binds the call's ports");
    // The queue fills up (the relay is not woken meanwhile): other orders are
    // refused, the call's Close is kept.
    let bridge = MediaCommand::Bridge { session: 1 };
    handle.send(bridge.clone()).unwrap();
    handle.send(bridge.clone()).unwrap();
    assert!(matches!(
        handle.send(bridge),
        Err(crate::media::MediaError::RelayBusy)
    ));
    handle.send(MediaCommand::Close { session: 1 }).unwrap();
    handle.flush();
    let end = Instant::now() + Duration::from_secs(2);
    while (bound(base) || bound(base + 2)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!bound(base) && !bound(base + 2), "the ports are free again");
    assert_eq!(super::Stats::get(&handle.stats.sessions), 0);
    assert_eq!(super::Stats::get(&handle.stats.commands_dropped), 1);
}

#[test]
fn a_close_that_overtakes_its_open_leaves_nothing_bound() {
    let (tx, _events) = tokio::sync::mpsc::channel(64);
    let handle =
        spawn_with_queue(config(Duration::from_secs(30)), RecordTap::none(), tx, 1).unwrap();
    let base = ports(2);
    // The Open fills the queue; the Close waits aside and is taken first.
    handle
        .send(MediaCommand::Open {
            session: 1,
            ports: [base, base + 2],
            record: None,
        })
        .unwrap();
    handle.send(MediaCommand::Close { session: 1 }).unwrap();
    handle.flush();
    // Then a marker: once it is bound, the relay has been through both.
    let marker = ports(2);
    let open = MediaCommand::Open {
        session: 2,
        ports: [marker, marker + 2],
        record: None,
    };
    let end = Instant::now() + Duration::from_secs(2);
    while handle.send(open.clone()).is_err() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5)); // the queue is still full
    }
    handle.flush();
    let bound = |p: u16| UdpSocket::bind(("127.0.0.1", p)).is_err();
    let end = Instant::now() + Duration::from_secs(2);
    while !bound(marker) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(bound(marker), "the relay took the orders");
    assert!(
        !bound(base) && !bound(base + 2),
        "the closed call's ports stay free"
    );
    assert_eq!(super::Stats::get(&handle.stats.sessions), 1);
}

#[test]
fn a_generated_digit_reaches_the_phone_as_telephone_events_and_mutes_audio() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone(), phone());
    r.bridged(&a, &b, Some(101));
    r.send(MediaCommand::Dtmf {
        session: 1,
        leg: Leg::B,
        digit: '9',
    });
    let mut events = Vec::new();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Some(p) = recv(&b) {
        if p[1] & 0x7f == 101 {
            events.push(p);
        }
    }
    assert!(events.len() >= 4, "{} event packets", events.len());
    assert_eq!(events[0][1] & 0x80, 0x80, "the first has the marker bit");
    assert!(events.iter().all(|p| p[12] == 9), "event 9");
    let ts: Vec<&[u8]> = events.iter().map(|p| &p[4..8]).collect();
    assert!(
        ts.windows(2).all(|w| w[0] == w[1]),
        "one timestamp for the event"
    );
    let ends = events.iter().filter(|p| p[13] & 0x80 != 0).count();
    assert_eq!(ends, 3, "the end packet is sent three times");
    let mut rx = crate::media::DtmfReceiver::new(300);
    let digits: Vec<char> = events
        .iter()
        .flat_map(|p| {
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            rx.on_packet(ts, &p[12..16], 0).unwrap()
        })
        .map(|d| d.digit)
        .collect();
    assert_eq!(digits, vec!['9']);
}
