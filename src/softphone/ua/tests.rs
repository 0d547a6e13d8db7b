//! The softphone's UA on a virtual clock, against a scripted server.

use std::time::{Duration, Instant};

use super::{Ua, UaConfig, UaEvent};
use crate::sip::builder::response_to;
use crate::sip::message::{Message, Request, parse};
use crate::sip::transaction::timer::TimerConfig;
use crate::sip::{Peer, Transport};

fn ua() -> Ua {
    let cfg = UaConfig {
        local: "127.0.0.1:40000".parse().unwrap(),
        server: "127.0.0.1:5060".parse().unwrap(),
        user: "13800138000".into(),
        password: None,
        timers: TimerConfig::default(),
        answer_after: None,
        talk_for: None,
        register_expires: 0,
        transfer_to: None,
        transfer_after: Duration::ZERO,
        transfer_mode: Default::default(),
        rtp_ports: None,
    };
    Ua::new(cfg, 7)
}

/// Requests the UA sent, in order.
fn sent(ua: &mut Ua) -> Vec<Request> {
    let mut out = Vec::new();
    while let Some(t) = ua.poll_transmit() {
        if let Ok(Message::Request(r)) = parse(&t.bytes) {
            out.push(r);
        }
    }
    out
}

fn server() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5060".parse().unwrap(),
    }
}

fn events(ua: &mut Ua) -> Vec<UaEvent> {
    std::iter::from_fn(|| ua.poll_event()).collect()
}

#[test]
fn a_call_given_up_on_a_silent_server_ends_at_once_and_cancels_only_once_it_hears() {
    let mut ua = ua();
    let t0 = Instant::now();
    let key = ua.call(t0, "12345");
    let invite = sent(&mut ua).pop().expect("an INVITE");
    assert_eq!(ua.active_calls(), 1);

    ua.give_up(t0 + Duration::from_secs(1), key);
    assert_eq!(
        events(&mut ua),
        vec![UaEvent::Ended {
            call: key,
            code: 408,
            by_us: true
        }]
    );
    assert_eq!(ua.active_calls(), 0, "the run need not wait for Timer B");
    let methods: Vec<String> = sent(&mut ua).iter().map(|r| r.method.to_string()).collect();
    assert!(
        !methods.contains(&"CANCEL".to_string()),
        "no CANCEL before a provisional: {methods:?}"
    );

    // The server wakes up: its 180 gets the CANCEL, a 2xx racing it gets ACK and BYE.
    let t1 = t0 + Duration::from_secs(2);
    let ringing = response_to(&invite, 180, "Ringing", Some("srv")).finish_empty();
    ua.handle_datagram(t1, &ringing, server());
    let methods: Vec<String> = sent(&mut ua).iter().map(|r| r.method.to_string()).collect();
    assert!(methods.contains(&"CANCEL".to_string()), "{methods:?}");
    let mut ok = response_to(&invite, 200, "OK", Some("srv"));
    ok.header("Contact", "<sip:gw@127.0.0.1:5060>");
    ua.handle_datagram(t1, &ok.finish_empty(), server());
    let methods: Vec<String> = sent(&mut ua).iter().map(|r| r.method.to_string()).collect();
    assert!(methods.contains(&"ACK".to_string()), "{methods:?}");
    assert!(methods.contains(&"BYE".to_string()), "{methods:?}");
    assert!(
        events(&mut ua).is_empty(),
        "the call was reported once, when given up"
    );
}

#[test]
fn a_refused_call_reports_the_servers_whole_status_line_before_it_ends() {
    let mut ua = ua();
    let t0 = Instant::now();
    let key = ua.call(t0, "12345");
    let invite = sent(&mut ua).pop().expect("an INVITE");
    let refused = response_to(&invite, 403, "Forbidden (no such line here)", Some("srv"));
    ua.handle_datagram(t0, &refused.finish_empty(), server());
    assert_eq!(
        events(&mut ua),
        vec![
            UaEvent::Refused {
                call: key,
                status: "403 Forbidden (no such line here)".into()
            },
            UaEvent::Ended {
                call: key,
                code: 403,
                by_us: false
            }
        ]
    );
}
