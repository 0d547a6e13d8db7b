//! Criterion benchmarks of the SIP core, no sockets: parsing, and one whole call
//! (INVITE, 180, 200, ACK, BYE, 200 on both legs) through the B2BUA core.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_gateway::call::{Core, CoreConfig};
use hotline_gateway::sip::builder::response_to;
use hotline_gateway::sip::message::{Headers, Message, Request, Response, parse};
use hotline_gateway::sip::{Peer, Transport};

const INVITE: &str = "INVITE sip:12345@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{N};rport\r\n\
Max-Forwards: 70\r\n\
From: \"sipp\" <sip:13800138000@127.0.0.1:5090>;tag={N}SIPpTag00\r\n\
To: <sip:12345@127.0.0.1:5060>\r\n\
Call-ID: {N}-bench@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5090>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn core() -> Core {
    let plan = hotline_gateway::dialplan::parse_sources(&[(
        "l.toml".into(),
        "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"sip:127.0.0.1:5070\"\n".into(),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 1_000_000,
        ..Default::default()
    };
    Core::new(cfg, Arc::new(plan), 7, Instant::now())
}

fn udp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

/// Sorts what the gateway sent: the last request to the callee, the last
/// response to the caller.
fn drain(core: &mut Core) -> (Option<Request>, Option<Response>) {
    let (mut req, mut resp) = (None, None);
    while let Some(t) = core.poll_transmit() {
        match parse(&t.bytes) {
            Ok(Message::Request(r)) if t.peer.addr.port() == 5070 => req = Some(r),
            Ok(Message::Response(r)) if t.peer.addr.port() == 5090 => resp = Some(r),
            _ => {}
        }
    }
    (req, resp)
}

/// One complete call: INVITE, 180, 200, ACK, BYE, 200 on both legs.
fn one_call(core: &mut Core, n: u64, now: Instant) {
    let caller = udp("127.0.0.1:5090");
    let callee = udp("127.0.0.1:5070");
    let invite = INVITE.replace("{N}", &n.to_string());
    core.handle_datagram(now, invite.as_bytes(), caller);
    let b = drain(core).0.expect("INVITE to the callee");
    let mut ok = None;
    for (code, reason) in [(180, "Ringing"), (200, "OK")] {
        let mut m = response_to(&b, code, reason, Some("callee"));
        m.header("Contact", "<sip:agent@127.0.0.1:5070>");
        core.handle_datagram(now, &m.finish_empty(), callee);
        ok = drain(core).1;
    }
    let gw_tag = ok.and_then(|r| r.to_tag()).expect("200 to the caller");
    let dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{method}-{n}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13800138000@127.0.0.1:5090>;tag={n}SIPpTag00\r\n\
To: <sip:12345@127.0.0.1:5060>;tag={gw_tag}\r\nCall-ID: {n}-bench@127.0.0.1\r\n\
CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    core.handle_datagram(now, dialog("ACK", 1).as_bytes(), caller);
    core.handle_datagram(now, dialog("BYE", 2).as_bytes(), caller);
    let bye = drain(core).0.expect("BYE to the callee");
    let m = response_to(&bye, 200, "OK", None);
    core.handle_datagram(now, &m.finish_empty(), callee);
    drain(core);
}

fn bench_parse(c: &mut Criterion) {
    let invite = INVITE.replace("{N}", "1");
    c.bench_function("parse INVITE", |b| {
        b.iter(|| black_box(parse(black_box(invite.as_bytes())).unwrap()))
    });
}

fn bench_call(c: &mut Criterion) {
    let mut core = core();
    let mut now = Instant::now();
    let mut n = 0u64;
    // Each call advances the virtual clock 0.2 ms (5,000 calls/s), so timers fire
    // and finished transactions linger for their RFC lifetimes as in production.
    c.bench_function(
        "B2BUA call (INVITE…BYE, both legs) at a steady 5,000 calls/s",
        |b| {
            b.iter(|| {
                n += 1;
                now += Duration::from_micros(200);
                core.handle_timeout(now);
                one_call(&mut core, n, now);
            })
        },
    );
}

criterion_group!(benches, bench_parse, bench_call);
criterion_main!(benches);
