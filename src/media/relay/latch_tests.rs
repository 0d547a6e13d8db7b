//! Strict latching with real sockets on loopback: a leg hears RTP and RTCP only
//! from its SDP's address or from its signalling IP (any port, for NAT). Other
//! loopback addresses (127.0.0.2, 127.0.0.3) stand for other hosts.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::tests::{NATTED, Relay, SIGNAL, phone, phone_at, recv, remote, rtp};
use crate::media::Codec;
use crate::media::command::{Leg, Remote};

/// The address a phone behind NAT writes in its SDP: private, unreachable.
fn private_sdp() -> Remote {
    Remote {
        rtp: "192.168.1.20:40000".parse().unwrap(),
        rtcp: "192.168.1.20:40001".parse().unwrap(),
        codec: Codec::Pcma,
        dtmf_pt: None,
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// A sender report from `ssrc` (RFC 3550 §6.4.1), 28 bytes.
fn rtcp_sr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend(ssrc.to_be_bytes());
    p.extend([0u8; 20]);
    p
}

fn quiet(s: &UdpSocket, ms: u64) {
    s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
}

#[test]
fn a_third_address_is_neither_relayed_nor_latched() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone(), phone());
    r.bridged(&a, &b, None);
    let sprayer = phone_at("127.0.0.2");
    // First, before either phone has sent (the old rules latched the first source).
    for i in 0..5u16 {
        for leg in [Leg::A, Leg::B] {
            let p = rtp(8, i, 160 * u32::from(i), 0x5eed, &[0x77; 160]);
            sprayer.send_to(&p, r.port(leg)).unwrap();
        }
    }
    assert_eq!(Relay::wait_count(&r.handle.stats.dropped_foreign, 10), 10);
    quiet(&a, 200);
    quiet(&b, 200);
    assert!(recv(&b).is_none(), "nothing reaches the callee");
    assert!(recv(&a).is_none(), "nothing reaches the caller");
    // The phones are heard, and hear each other.
    quiet(&a, 500);
    quiet(&b, 500);
    a.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(recv(&b).map(|p| p[12]), Some(1));
    b.send_to(&rtp(8, 1, 0, 2, &[2; 160]), r.port(Leg::B))
        .unwrap();
    assert_eq!(recv(&a).map(|p| p[12]), Some(2));
    // Spraying on: never relayed, and nothing is sent to the sprayer.
    for leg in [Leg::A, Leg::B] {
        let p = rtp(8, 9, 1440, 0x5eed, &[0x77; 160]);
        sprayer.send_to(&p, r.port(leg)).unwrap();
    }
    quiet(&a, 200);
    quiet(&b, 200);
    assert!(recv(&b).is_none());
    assert!(recv(&a).is_none());
    quiet(&sprayer, 200);
    assert!(recv(&sprayer).is_none(), "the sprayer receives nothing");
    assert_eq!(super::Stats::get(&r.handle.stats.packets_out), 2);
}

#[test]
fn a_phone_behind_nat_is_latched_from_its_signalling_ip() {
    let r = Relay::start(Duration::from_secs(30));
    let b = phone();
    // The caller signals from 127.0.0.3 and its SDP names a private address;
    // its RTP comes from another port of 127.0.0.3 (its NAT's mapping).
    let nat = phone_at("127.0.0.3");
    r.bridged_with(
        [private_sdp(), remote(&b, None)],
        [ip("127.0.0.3"), Some(SIGNAL)],
    );
    nat.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(recv(&b).map(|p| p[12]), Some(1), "the NAT'd phone is heard");
    b.send_to(&rtp(8, 1, 0, 2, &[2; 160]), r.port(Leg::B))
        .unwrap();
    assert_eq!(
        recv(&nat).map(|p| p[12]),
        Some(2),
        "and hears the callee where it sends from"
    );
    // A third host is not heard.
    let sprayer = phone_at("127.0.0.2");
    sprayer
        .send_to(&rtp(8, 2, 160, 9, &[0x77; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(Relay::wait_count(&r.handle.stats.dropped_foreign, 1), 1);
    quiet(&b, 200);
    assert!(recv(&b).is_none());
}

#[test]
fn after_silence_only_an_allowed_source_takes_over() {
    let r = Relay::start(Duration::from_secs(30));
    let b = phone();
    let (nat, moved) = (phone_at("127.0.0.3"), phone_at("127.0.0.3"));
    let sprayer = phone_at("127.0.0.2");
    r.bridged_with(
        [private_sdp(), remote(&b, None)],
        [ip("127.0.0.3"), Some(SIGNAL)],
    );
    nat.send_to(&rtp(8, 1, 0, 1, &[1; 160]), r.port(Leg::A))
        .unwrap();
    assert_eq!(recv(&b).map(|p| p[12]), Some(1));
    // The phone falls silent; the sprayer keeps sending past the re-latch time
    // and is never heard.
    quiet(&b, 50);
    let silent_since = Instant::now();
    let mut seq = 2u16;
    while silent_since.elapsed() < super::leg::RELATCH_AFTER + Duration::from_millis(500) {
        let p = rtp(8, seq, 160 * u32::from(seq), 9, &[0x77; 160]);
        sprayer.send_to(&p, r.port(Leg::A)).unwrap();
        seq += 1;
        assert!(recv(&b).is_none(), "the sprayer is never relayed");
    }
    // The phone's NAT mapping changed (a new port of the same IP): it takes over.
    quiet(&b, 200);
    let end = Instant::now() + Duration::from_secs(6);
    let heard = loop {
        let p = rtp(8, seq, 160 * u32::from(seq), 1, &[4; 160]);
        moved.send_to(&p, r.port(Leg::A)).unwrap();
        seq += 1;
        if let Some(p) = recv(&b) {
            break Some(p[12]);
        }
        if Instant::now() > end {
            break None;
        }
    };
    assert_eq!(heard, Some(4), "the phone's new port takes the leg");
    b.send_to(&rtp(8, 2, 160, 2, &[5; 160]), r.port(Leg::B))
        .unwrap();
    assert_eq!(recv(&moved).map(|p| p[12]), Some(5), "audio follows it");
    quiet(&sprayer, 200);
    assert!(recv(&sprayer).is_none(), "the sprayer never got audio");
}

#[test]
fn rtcp_is_heard_only_from_the_sdp_or_the_signalling_ip() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b) = (phone_at(NATTED), phone());
    let (a_rtcp, b_rtcp) = (phone_at(NATTED), phone());
    let with_rtcp = |rtp_sock: &UdpSocket, rtcp: &UdpSocket| Remote {
        rtcp: rtcp.local_addr().unwrap(),
        ..remote(rtp_sock, None)
    };
    r.bridged_with(
        [with_rtcp(&a, &a_rtcp), with_rtcp(&b, &b_rtcp)],
        [Some(SIGNAL); 2],
    );
    let rtcp_port = |leg: Leg| SocketAddr::new(r.port(leg).ip(), r.port(leg).port() + 1);
    // A third host's report is dropped and latches nothing.
    let sprayer = phone_at("127.0.0.2");
    sprayer.send_to(&rtcp_sr(9), rtcp_port(Leg::A)).unwrap();
    assert_eq!(Relay::wait_count(&r.handle.stats.dropped_foreign, 1), 1);
    quiet(&b_rtcp, 200);
    assert!(recv(&b_rtcp).is_none(), "not relayed");
    // The SDP's RTCP address is relayed both ways.
    quiet(&b_rtcp, 500);
    a_rtcp.send_to(&rtcp_sr(1), rtcp_port(Leg::A)).unwrap();
    let got = recv(&b_rtcp).expect("the caller's report reaches the callee");
    assert_eq!(got[1], 200);
    b_rtcp.send_to(&rtcp_sr(2), rtcp_port(Leg::B)).unwrap();
    assert!(recv(&a_rtcp).is_some(), "and back");
    // Another port of the signalling IP is held off while the latched one is fresh.
    let other = phone();
    other.send_to(&rtcp_sr(3), rtcp_port(Leg::A)).unwrap();
    quiet(&b_rtcp, 200);
    assert!(recv(&b_rtcp).is_none());
    assert!(Relay::wait_count(&r.handle.stats.dropped_unknown, 1) >= 1);
}

#[test]
fn rtcp_of_a_phone_behind_nat_comes_from_its_signalling_ip() {
    let r = Relay::start(Duration::from_secs(30));
    let (b, b_rtcp) = (phone(), phone());
    let nat_rtcp = phone_at("127.0.0.3");
    let b_remote = Remote {
        rtcp: b_rtcp.local_addr().unwrap(),
        ..remote(&b, None)
    };
    r.bridged_with([private_sdp(), b_remote], [ip("127.0.0.3"), Some(SIGNAL)]);
    let rtcp_port = |leg: Leg| SocketAddr::new(r.port(leg).ip(), r.port(leg).port() + 1);
    nat_rtcp.send_to(&rtcp_sr(1), rtcp_port(Leg::A)).unwrap();
    assert!(
        recv(&b_rtcp).is_some(),
        "the NAT'd phone's report is relayed"
    );
    b_rtcp.send_to(&rtcp_sr(2), rtcp_port(Leg::B)).unwrap();
    assert!(
        recv(&nat_rtcp).is_some(),
        "and the callee's goes where it came from"
    );
    let sprayer = phone_at("127.0.0.2");
    sprayer.send_to(&rtcp_sr(9), rtcp_port(Leg::A)).unwrap();
    assert_eq!(Relay::wait_count(&r.handle.stats.dropped_foreign, 1), 1);
    quiet(&b_rtcp, 200);
    assert!(recv(&b_rtcp).is_none());
}
