//! Heap per held call in the call core, with media anchored: 1,000 calls
//! through a direct line, answered, acknowledged and held past 64·T1 (their
//! set-up transactions gone), counted with dhat. Its own test binary: the
//! counting allocator is global to the process.
//!
//! The bound is a regression guard for the core's share of a held call's
//! memory (issue 20's goal is ≤ 8 KiB for the whole process: core, relay,
//! transport); the measured figure is printed. 2026-12-08: 7,290 B before
//! the call table held boxed calls, parsed SDP kept no spare room and the
//! transaction tables gave back a burst's room; 3,465 B after.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_gateway::call::{CoreConfig, MediaConfig, QueuedAudio};
use hotline_gateway::media::Prompts;
use hotline_gateway::sip::message::{self, Headers, Message};
use hotline_gateway::sip::{Peer, Transport};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CALLS: usize = 1000;
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

fn peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse::<SocketAddr>().unwrap(),
    }
}

fn invite(i: usize) -> Vec<u8> {
    format!(
        "INVITE sip:12300@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKc{i}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1380013{i:04}@192.0.2.10>;tag=f{i}\r\nTo: <sip:12300@127.0.0.1>\r\n\
Call-ID: held-{i}@192.0.2.10\r\nCSeq: 1 INVITE\r\nContact: <sip:c@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

#[test]
fn a_held_call_with_media_costs_the_core_little_heap() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let plan = hotline_gateway::dialplan::parse_sources(&[(
        "p.toml".into(),
        "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"192.0.2.0/24\"]\n\n\
[[line]]\nnumber = \"12300\"\nname = \"direct\"\ntarget = \"sip:127.0.0.1:5070\"\n"
            .into(),
    )])
    .unwrap();
    let media = MediaConfig {
        address: "127.0.0.1".parse().unwrap(),
        ports: (10_000, 60_000),
        queued: QueuedAudio::Answer,
        prompts: Arc::new(Prompts::default()),
        greeting: None,
        hold_music: None,
        hold_message: None,
        hold_message_every: Duration::from_secs(30),
        survey: false,
        survey_prompt: "survey".into(),
        survey_thanks: None,
        not_in_service: None,
        survey_timeout: Duration::from_secs(5),
        record: false,
    };
    let cfg = CoreConfig {
        max_calls: CALLS * 2,
        media: Some(media),
        ..Default::default()
    };
    let mut now = Instant::now();
    let mut core = hotline_gateway::call::Core::new(cfg, Arc::new(plan), 7u64, now);
    let (caller, callee) = (peer("192.0.2.10:5060"), peer("127.0.0.1:5070"));
    let drain = |core: &mut hotline_gateway::call::Core| {
        let mut out = Vec::new();
        while let Some(t) = core.poll_transmit() {
            out.push(t);
        }
        while core.poll_media().is_some() {}
        while core.poll_record().is_some() {}
        while core.poll_offer().is_some() {}
        out
    };
    // Warm up: one call set up and ended, so one-off allocations are made.
    let place = |core: &mut hotline_gateway::call::Core, i: usize, now: Instant| {
        core.handle_datagram(now, &invite(i), caller);
        for t in drain(core) {
            let Ok(Message::Request(r)) = message::parse(&t.bytes) else {
                continue;
            };
            if t.peer == callee && r.method == message::Method::Invite {
                let ok = hotline_gateway::sip::builder::response_to(&r, 200, "OK", Some("cb"))
                    .finish(Some("application/sdp"), SDP.as_bytes());
                core.handle_datagram(now, &ok, callee);
            }
        }
        for t in drain(core) {
            let Ok(Message::Response(r)) = message::parse(&t.bytes) else {
                continue;
            };
            if t.peer == caller && r.code == 200 {
                let to = r.header("To").unwrap().to_string();
                let ack = format!(
                    "ACK sip:12300@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa{i}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1380013{i:04}@192.0.2.10>;tag=f{i}\r\nTo: {to}\r\n\
Call-ID: held-{i}@192.0.2.10\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                );
                core.handle_datagram(now, ack.as_bytes(), caller);
            }
        }
        drain(core);
    };
    place(&mut core, 99_999, now);
    let settle = |core: &mut hotline_gateway::call::Core, now: &mut Instant| {
        let until = *now + Duration::from_secs(40);
        while let Some(at) = core.poll_timeout() {
            if at > until {
                break;
            }
            *now = at.max(*now);
            core.handle_timeout(*now);
            drain(core);
        }
        *now = until;
    };
    settle(&mut core, &mut now);
    let before = dhat::HeapStats::get();
    for i in 0..CALLS {
        place(&mut core, i, now);
    }
    assert_eq!(core.active_calls(), CALLS + 1, "every call is up");
    let set_up = dhat::HeapStats::get();
    settle(&mut core, &mut now);
    assert_eq!(core.active_calls(), CALLS + 1, "every call is still up");
    let held = dhat::HeapStats::get();
    let per = |s: &dhat::HeapStats| (s.curr_bytes as f64 - before.curr_bytes as f64) / CALLS as f64;
    eprintln!(
        "core heap per call: {:.0} B just set up, {:.0} B held (set-up transactions gone)",
        per(&set_up),
        per(&held)
    );
    assert!(
        per(&held) < 4.5 * 1024.0,
        "{:.0} B per held call",
        per(&held)
    );
}
