//! The relay's three-party orders with real sockets on loopback: a third leg
//! mixed in (each phone hears the other two, never itself, across laws), the
//! third party taking the callee's place, leaving, and two sessions
//! exchanging their callee legs (attended transfer).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::tests::{Relay, SIGNAL, phone, recv, remote, rtp};
use crate::media::Codec;
use crate::media::command::{Leg, MediaCommand, Remote};
use crate::softphone::audio::tone_power;

/// A free even port pair of its own, for the third leg.
fn third_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port() & !1;
        drop(s);
        if p > 1024
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
}

fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn with_codec(mut r: Remote, codec: Codec) -> Remote {
    r.codec = codec;
    r
}

fn tone(hz: f64, frame: usize, codec: Codec) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let t = (frame * 160 + i) as f64 / 8000.0;
            codec.encode_sample((6000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// Everything `sock` has received so far, decoded in `codec`.
fn drain(sock: &UdpSocket, codec: Codec, into: &mut Vec<i16>) -> usize {
    sock.set_nonblocking(true).unwrap();
    let mut n = 0;
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        into.extend(buf[12..len].iter().map(|&b| codec.decode_sample(b)));
        n += 1;
    }
    sock.set_nonblocking(false).unwrap();
    n
}

/// Three phones talk for `frames` × 20 ms, each its own tone; what each heard.
fn talk(
    r: &Relay,
    phones: [(&UdpSocket, SocketAddr, Codec, f64); 3],
    frames: usize,
) -> [Vec<i16>; 3] {
    let mut heard: [Vec<i16>; 3] = Default::default();
    for f in 0..frames {
        for (i, (sock, to, codec, hz)) in phones.iter().enumerate() {
            let pkt = rtp(
                codec.payload_type(),
                f as u16,
                (f * 160) as u32,
                0x1000 + i as u32,
                &tone(*hz, f, *codec),
            );
            sock.send_to(&pkt, to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        for (i, (sock, _, codec, _)) in phones.iter().enumerate() {
            drain(sock, *codec, &mut heard[i]);
        }
    }
    let _ = r;
    heard
}

#[test]
fn a_third_party_is_mixed_in_and_each_phone_hears_the_other_two() {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b, c) = (phone(), phone(), phone());
    // The caller speaks A-law, the agent and 110 µ-law: the mix transcodes.
    r.bridged_with(
        [remote(&a, None), with_codec(remote(&b, None), Codec::Pcmu)],
        [Some(SIGNAL); 2],
    );
    let port = third_port();
    r.send(MediaCommand::AddLeg { session: 1, port });
    r.send(MediaCommand::Remote {
        session: 1,
        leg: Leg::C,
        remote: with_codec(remote(&c, None), Codec::Pcmu),
        signal: Some(SIGNAL),
    });
    r.send(MediaCommand::Mix {
        session: 1,
        on: true,
    });
    std::thread::sleep(Duration::from_millis(50));
    let freqs = [700.0, 1100.0, 1700.0];
    let heard = talk(
        &r,
        [
            (&a, r.port(Leg::A), Codec::Pcma, freqs[0]),
            (&b, r.port(Leg::B), Codec::Pcmu, freqs[1]),
            (&c, at(port), Codec::Pcmu, freqs[2]),
        ],
        60,
    );
    for (p, h) in heard.iter().enumerate() {
        assert!(
            h.len() > 40 * 160,
            "phone {p} heard a steady stream: {}",
            h.len()
        );
        let own = tone_power(h, freqs[p]);
        for (q, &f) in freqs.iter().enumerate() {
            if q != p {
                let other = tone_power(h, f);
                assert!(
                    other > 100.0 * own,
                    "phone {p} hears {q}: {other} vs own {own}"
                );
            }
        }
    }
}

/// Session 1 bridged between two phones, a third phone added and mixed in:
/// the relay, the phones (caller, agent, third) and the third leg's port.
fn three_party() -> (Relay, [UdpSocket; 3], u16) {
    let r = Relay::start(Duration::from_secs(30));
    let (a, b, c) = (phone(), phone(), phone());
    r.bridged(&a, &b, None);
    let port = third_port();
    r.send(MediaCommand::AddLeg { session: 1, port });
    r.send(MediaCommand::Remote {
        session: 1,
        leg: Leg::C,
        remote: remote(&c, None),
        signal: Some(SIGNAL),
    });
    r.send(MediaCommand::Mix {
        session: 1,
        on: true,
    });
    std::thread::sleep(Duration::from_millis(60));
    (r, [a, b, c], port)
}

#[test]
fn the_third_party_takes_the_callees_place_when_the_agent_leaves() {
    let (r, [a, b, c], port) = three_party();
    r.send(MediaCommand::Promote { session: 1 });
    std::thread::sleep(Duration::from_millis(60));
    for s in [&a, &b, &c] {
        drain(s, Codec::Pcma, &mut Vec::new());
    }
    // Relayed again, packet for packet, between the caller and 110.
    a.send_to(&rtp(8, 1, 160, 0xa, &[0x11; 160]), r.port(Leg::A))
        .unwrap();
    let got = recv(&c).expect("110 gets the caller's packet");
    assert_eq!(&got[12..], &[0x11; 160][..], "relayed, not mixed");
    c.send_to(&rtp(8, 1, 160, 0xc, &[0x22; 160]), at(port))
        .unwrap();
    let back = recv(&a).expect("the caller gets 110's packet");
    assert_eq!(&back[12..], &[0x22; 160][..]);
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(recv(&b).is_none(), "the agent who left hears nothing");
    // Its old port is closed: the gateway may hand it to the next call.
    let old_b = r.port(Leg::B);
    assert!(UdpSocket::bind(old_b).is_ok(), "{old_b} is free again");
}

#[test]
fn when_the_third_party_leaves_the_caller_and_agent_hear_each_other_again() {
    let (r, [a, b, c], port) = three_party();
    r.send(MediaCommand::DropLeg {
        session: 1,
        leg: Leg::C,
    });
    std::thread::sleep(Duration::from_millis(60));
    for s in [&a, &b, &c] {
        drain(s, Codec::Pcma, &mut Vec::new());
    }
    a.send_to(&rtp(8, 1, 160, 0xa, &[0x33; 160]), r.port(Leg::A))
        .unwrap();
    let got = recv(&b).expect("the agent gets the caller's packet");
    assert_eq!(&got[12..], &[0x33; 160][..]);
    assert!(
        UdpSocket::bind(at(port)).is_ok(),
        "the third port is free again"
    );
}

#[test]
fn spliced_sessions_exchange_their_callees() {
    let r = Relay::start(Duration::from_secs(30));
    let (citizen, agent1) = (phone(), phone());
    r.bridged(&citizen, &agent1, None);
    // The agent's consultation: session 2, agent (A) ↔ 110 (B).
    let (agent2, police) = (phone(), phone());
    let (p2a, p2b) = (third_port(), third_port());
    r.send(MediaCommand::Open {
        session: 2,
        ports: [p2a, p2b],
        record: None,
    });
    for (leg, sock) in [(Leg::A, &agent2), (Leg::B, &police)] {
        r.send(MediaCommand::Remote {
            session: 2,
            leg,
            remote: remote(sock, None),
            signal: Some(SIGNAL),
        });
    }
    r.send(MediaCommand::Bridge { session: 2 });
    r.send(MediaCommand::Splice {
        session: 1,
        from: 2,
        mix: false,
    });
    std::thread::sleep(Duration::from_millis(60));
    // 110 keeps sending to the port it knows; the citizen hears it.
    police
        .send_to(&rtp(8, 1, 160, 0xb, &[0x44; 160]), at(p2b))
        .unwrap();
    let got = recv(&citizen).expect("the citizen hears 110");
    assert_eq!(&got[12..], &[0x44; 160][..]);
    citizen
        .send_to(&rtp(8, 1, 160, 0xa, &[0x55; 160]), r.port(Leg::A))
        .unwrap();
    let got = recv(&police).expect("110 hears the citizen");
    assert_eq!(&got[12..], &[0x55; 160][..]);
    // Session 2 now holds the agent's old callee leg: closing it frees that port.
    r.send(MediaCommand::Close { session: 2 });
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        UdpSocket::bind(r.port(Leg::B)).is_ok(),
        "the agent's old port is free"
    );
    assert!(
        UdpSocket::bind(at(p2b)).is_err(),
        "110's port stays with the call"
    );
}
