//! Transaction scenarios on a virtual clock: loss, duplication and reordering are
//! scripted by what the test feeds in and when; nothing here sleeps.

use std::time::{Duration, Instant};

use super::*;
use crate::sip::Transport;
use crate::sip::builder::response_to;
use crate::sip::message::{Method, parse};

const T1: Duration = Duration::from_millis(500);

fn layer() -> TransactionLayer {
    TransactionLayer::new(
        LayerConfig {
            timers: TimerConfig::default(),
            sent_by: "127.0.0.1:5060".into(),
        },
        IdGen::new(1),
    )
}

fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().unwrap(),
    }
}

fn tcp() -> Peer {
    Peer {
        transport: Transport::Tcp,
        ..udp()
    }
}

fn request(method: &str, branch: &str, to_tag: Option<&str>, cseq: u32) -> Request {
    let to = match to_tag {
        Some(t) => format!("<sip:12345@gw>;tag={t}"),
        None => "<sip:12345@gw>".into(),
    };
    let text = format!(
        "{method} sip:12345@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
From: <sip:caller@h>;tag=f1\r\nTo: {to}\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn out_request(method: Method) -> OutRequest {
    OutRequest {
        method: Some(method),
        uri: "sip:12345@127.0.0.1:5070".into(),
        from: "<sip:gw@127.0.0.1>;tag=g1".into(),
        to: "<sip:12345@127.0.0.1>".into(),
        call_id: "b-leg".into(),
        cseq: 1,
        max_forwards: 70,
        ..Default::default()
    }
}

/// A response to a request the layer sent, parsed back from the wire.
fn response_for(sent: &Transmit, code: u16, to_tag: &str) -> Message {
    let Message::Request(req) = parse(&sent.bytes).unwrap() else {
        panic!("not a request")
    };
    let bytes = response_to(&req, code, "x", Some(to_tag)).finish_empty();
    parse(&bytes).unwrap()
}

fn drain(l: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// Runs timers until `until`, recording when each transmit happened.
fn run_until(
    l: &mut TransactionLayer,
    start: Instant,
    until: Instant,
) -> Vec<(Duration, Transmit)> {
    let mut sent = Vec::new();
    while let Some(at) = l.poll_timeout() {
        if at > until {
            break;
        }
        l.handle_timeout(at);
        for t in drain(l) {
            sent.push((at - start, t));
        }
    }
    sent
}

fn first_line(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.bytes)
        .lines()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn lost_invite_is_retransmitted_with_doubling_then_times_out_with_timer_b() {
    let mut l = layer();
    let t0 = Instant::now();
    let tx = l.send_request(t0, udp(), out_request(Method::Invite));
    assert_eq!(drain(&mut l).len(), 1);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    let times: Vec<u128> = sent.iter().map(|(d, _)| d.as_millis()).collect();
    // Timer A: T1, 2T1, 4T1, … after the first send; Timer B at 64·T1 = 32 s.
    assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500]);
    let ev = events(&mut l);
    assert!(matches!(ev.as_slice(), [TxEvent::Timeout { tx: t }] if *t == tx));
    assert!(l.is_empty(), "the timed-out transaction is gone");
}

#[test]
fn provisional_stops_invite_retransmission() {
    let mut l = layer();
    let t0 = Instant::now();
    l.send_request(t0, udp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    l.handle_message(t0 + T1 / 2, response_for(&invite, 180, "b1"), udp());
    assert!(run_until(&mut l, t0, t0 + Duration::from_secs(60)).is_empty());
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Response { .. }]
    ));
}

#[test]
fn non_2xx_final_is_acked_by_the_layer_and_retransmissions_reacked() {
    let mut l = layer();
    let t0 = Instant::now();
    l.send_request(t0, udp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    let busy = response_for(&invite, 486, "b1");
    l.handle_message(t0, busy.clone(), udp());
    let acks = drain(&mut l);
    assert_eq!(first_line(&acks[0]), "ACK sip:12345@127.0.0.1:5070 SIP/2.0");
    let ack_text = String::from_utf8_lossy(&acks[0].bytes).to_string();
    let inv_text = String::from_utf8_lossy(&invite.bytes).to_string();
    let via = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Via:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        via(&ack_text),
        via(&inv_text),
        "ACK reuses the INVITE's branch"
    );
    assert!(
        ack_text.contains(";tag=b1"),
        "ACK's To carries the response tag"
    );
    // A duplicate of the final response: ACK again, no second event.
    l.handle_message(t0 + T1, busy, udp());
    assert_eq!(drain(&mut l).len(), 1);
    assert_eq!(events(&mut l).len(), 1);
    run_until(&mut l, t0, t0 + Duration::from_secs(33));
    assert!(l.is_empty(), "Timer D ended the transaction");
}

#[test]
fn client_2xx_enters_accepted_and_retransmitted_2xx_is_reacked() {
    let mut l = layer();
    let t0 = Instant::now();
    let tx = l.send_request(t0, udp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    let ok = response_for(&invite, 200, "b1");
    l.handle_message(t0, ok.clone(), udp());
    assert_eq!(events(&mut l).len(), 1);
    // Before the dialog sends its ACK, a retransmitted 2xx is absorbed silently.
    l.handle_message(t0, ok.clone(), udp());
    assert!(drain(&mut l).is_empty());
    let mut ack = out_request(Method::Ack);
    ack.to = "<sip:12345@127.0.0.1>;tag=b1".into();
    l.send_ack(Some(tx), udp(), ack);
    assert_eq!(drain(&mut l).len(), 1);
    l.handle_message(t0 + T1, ok, udp());
    let again = drain(&mut l);
    assert_eq!(again.len(), 1);
    assert!(first_line(&again[0]).starts_with("ACK "));
    assert!(
        events(&mut l).is_empty(),
        "2xx retransmissions do not reach the TU"
    );
    run_until(&mut l, t0, t0 + Duration::from_secs(33));
    assert!(l.is_empty(), "Timer M ended the transaction");
}

#[test]
fn server_invite_absorbs_duplicates_and_retransmits_final_until_ack() {
    let mut l = layer();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKa", None, 1);
    l.handle_message(t0, Message::Request(inv.clone()), udp());
    assert_eq!(drain(&mut l).len(), 1, "100 Trying at once");
    let ev = events(&mut l);
    let TxEvent::Request { tx, .. } = ev[0] else {
        panic!()
    };
    // Duplicated INVITE: the 100 again, no second event.
    l.handle_message(t0, Message::Request(inv.clone()), udp());
    assert_eq!(drain(&mut l).len(), 1);
    assert!(events(&mut l).is_empty());
    let busy = response_to(&inv, 486, "Busy Here", Some("t1")).finish_empty();
    l.respond(t0, tx, 486, busy).unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    // Lost: Timer G retransmits at T1, 2T1, 4T1, then T2 (4 s) until the ACK.
    let sent = run_until(&mut l, t0, t0 + Duration::from_millis(11_600));
    let times: Vec<u128> = sent.iter().map(|(d, _)| d.as_millis()).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 11500]);
    l.handle_message(
        t0 + Duration::from_secs(12),
        Message::Request(request("ACK", "z9hG4bKa", Some("t1"), 1)),
        udp(),
    );
    assert!(
        events(&mut l).is_empty(),
        "ACK for a non-2xx stays in the layer"
    );
    assert!(run_until(&mut l, t0, t0 + Duration::from_secs(20)).is_empty());
    assert!(l.is_empty(), "Timer I ended the transaction");
}

#[test]
fn server_invite_without_ack_gives_up_at_timer_h() {
    let mut l = layer();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKb", None, 1);
    l.handle_message(t0, Message::Request(inv.clone()), udp());
    let TxEvent::Request { tx, .. } = events(&mut l).remove(0) else {
        panic!()
    };
    l.respond(
        t0,
        tx,
        404,
        response_to(&inv, 404, "Not Found", Some("t")).finish_empty(),
    )
    .unwrap();
    run_until(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::AckTimeout { .. }]
    ));
    assert!(l.is_empty());
}

#[test]
fn server_2xx_is_retransmitted_until_its_ack_rfc6026() {
    let mut l = layer();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKc", None, 5);
    l.handle_message(t0, Message::Request(inv.clone()), udp());
    let TxEvent::Request { tx, .. } = events(&mut l).remove(0) else {
        panic!()
    };
    drain(&mut l);
    l.respond(
        t0,
        tx,
        200,
        response_to(&inv, 200, "OK", Some("t")).finish_empty(),
    )
    .unwrap();
    drain(&mut l);
    let sent = run_until(&mut l, t0, t0 + Duration::from_millis(1600));
    assert_eq!(sent.len(), 2, "2xx resent at T1 and 2T1");
    // The ACK for a 2xx is a new transaction (new branch), matched by Call-ID+CSeq.
    let ack = request("ACK", "z9hG4bKother", Some("t"), 5);
    l.handle_message(
        t0 + Duration::from_millis(1700),
        Message::Request(ack.clone()),
        udp(),
    );
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::Ack { tx: Some(t), .. }] if *t == tx));
    assert!(run_until(&mut l, t0, t0 + Duration::from_secs(10)).is_empty());
    // A duplicated INVITE in Accepted is absorbed; a duplicate ACK reaches nobody twice.
    l.handle_message(t0 + Duration::from_secs(11), Message::Request(inv), udp());
    l.handle_message(t0 + Duration::from_secs(11), Message::Request(ack), udp());
    assert_eq!(events(&mut l).len(), 0);
    run_until(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(events(&mut l).is_empty(), "acknowledged: no AckTimeout");
    assert!(l.is_empty(), "Timer L ended the transaction");
}

#[test]
fn non_invite_server_absorbs_then_replays_final_until_timer_j() {
    let mut l = layer();
    let t0 = Instant::now();
    let bye = request("BYE", "z9hG4bKd", Some("t"), 2);
    l.handle_message(t0, Message::Request(bye.clone()), udp());
    let TxEvent::Request { tx, .. } = events(&mut l).remove(0) else {
        panic!()
    };
    l.handle_message(t0, Message::Request(bye.clone()), udp());
    assert!(
        drain(&mut l).is_empty(),
        "Trying absorbs duplicates silently"
    );
    l.respond(
        t0,
        tx,
        200,
        response_to(&bye, 200, "OK", None).finish_empty(),
    )
    .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    l.handle_message(t0 + T1, Message::Request(bye), udp());
    assert_eq!(drain(&mut l).len(), 1, "Completed replays the final");
    assert!(events(&mut l).is_empty());
    run_until(&mut l, t0, t0 + Duration::from_secs(33));
    assert!(l.is_empty(), "Timer J ended the transaction");
}

#[test]
fn lost_non_invite_backs_off_to_t2_then_timer_f() {
    let mut l = layer();
    let t0 = Instant::now();
    l.send_request(t0, udp(), out_request(Method::Bye));
    drain(&mut l);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    let times: Vec<u128> = sent.iter().map(|(d, _)| d.as_millis()).collect();
    assert_eq!(&times[..5], &[500, 1500, 3500, 7500, 11500]);
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Timeout { .. }]
    ));
    assert!(l.is_empty());
}

#[test]
fn cancel_matches_its_invite() {
    let mut l = layer();
    let t0 = Instant::now();
    l.handle_message(
        t0,
        Message::Request(request("INVITE", "z9hG4bKe", None, 1)),
        udp(),
    );
    let TxEvent::Request { tx: invite, .. } = events(&mut l).remove(0) else {
        panic!()
    };
    l.handle_message(
        t0,
        Message::Request(request("CANCEL", "z9hG4bKe", None, 1)),
        udp(),
    );
    let ev = events(&mut l);
    assert!(matches!(ev.as_slice(), [TxEvent::Request { cancels: Some(i), .. }] if *i == invite));
    // A CANCEL with another branch matches nothing: 481 at once, statelessly.
    let before = l.len();
    l.handle_message(
        t0,
        Message::Request(request("CANCEL", "z9hG4bKz", None, 1)),
        udp(),
    );
    assert!(events(&mut l).is_empty());
    assert_eq!(l.len(), before, "no transaction for a CANCEL of nothing");
    let sent = std::iter::from_fn(|| l.poll_transmit()).last().unwrap();
    assert!(sent.bytes.starts_with(b"SIP/2.0 481"));
    // So is one with an INVITE's branch from another address: only the
    // INVITE's sender may cancel it.
    l.handle_message(
        t0,
        Message::Request(request("INVITE", "z9hG4bKf", None, 1)),
        udp(),
    );
    events(&mut l);
    let other = Peer {
        transport: Transport::Udp,
        addr: "198.51.100.9:5060".parse().unwrap(),
    };
    l.handle_message(
        t0,
        Message::Request(request("CANCEL", "z9hG4bKf", None, 1)),
        other,
    );
    assert!(events(&mut l).is_empty());
    let sent = std::iter::from_fn(|| l.poll_transmit()).last().unwrap();
    assert_eq!(sent.peer, other);
    assert!(sent.bytes.starts_with(b"SIP/2.0 481"));
}

#[test]
fn client_cancel_reuses_the_invite_branch() {
    let mut l = layer();
    let t0 = Instant::now();
    let tx = l.send_request(t0, udp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    l.handle_message(t0, response_for(&invite, 180, "b"), udp());
    l.cancel(t0, tx).unwrap();
    let cancel = drain(&mut l).remove(0);
    let via = |b: &bytes::Bytes| {
        String::from_utf8_lossy(b)
            .lines()
            .find(|l| l.starts_with("Via:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(via(&cancel.bytes), via(&invite.bytes));
    assert!(first_line(&cancel).starts_with("CANCEL "));
}

#[test]
fn merged_request_gets_482() {
    let mut l = layer();
    let t0 = Instant::now();
    l.handle_message(
        t0,
        Message::Request(request("INVITE", "z9hG4bKf", None, 1)),
        udp(),
    );
    drain(&mut l);
    events(&mut l);
    // Same From tag, Call-ID and CSeq over another path (another branch).
    l.handle_message(
        t0,
        Message::Request(request("INVITE", "z9hG4bKg", None, 1)),
        udp(),
    );
    let out = drain(&mut l);
    assert_eq!(first_line(&out[0]), "SIP/2.0 482 Loop Detected");
    assert!(events(&mut l).is_empty());
}

#[test]
fn reordered_provisional_after_2xx_is_ignored() {
    let mut l = layer();
    let t0 = Instant::now();
    l.send_request(t0, udp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    l.handle_message(t0, response_for(&invite, 200, "b"), udp());
    l.handle_message(t0, response_for(&invite, 180, "b"), udp());
    let ev = events(&mut l);
    assert_eq!(ev.len(), 1);
    assert!(matches!(&ev[0], TxEvent::Response { response, .. } if response.code == 200));
}

#[test]
fn reliable_transport_never_retransmits() {
    let mut l = layer();
    let t0 = Instant::now();
    l.send_request(t0, tcp(), out_request(Method::Invite));
    drain(&mut l);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    assert!(sent.is_empty());
    assert!(matches!(
        events(&mut l).as_slice(),
        [TxEvent::Timeout { .. }]
    ));
    // Timer D is zero on TCP: a 486 ends the transaction at once.
    let tx = l.send_request(t0, tcp(), out_request(Method::Invite));
    let invite = drain(&mut l).remove(0);
    l.handle_message(t0, response_for(&invite, 486, "b"), tcp());
    assert!(l.is_empty(), "{tx:?} ended immediately");
}
