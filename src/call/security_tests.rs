//! A stranger against the B2BUA core, on a virtual clock: in-dialog requests with
//! a known Call-ID but wrong tags, forged responses, stateless answers to strangers,
//! and a queued caller kept alive past Timer C (DESIGN.md §7).

use std::time::Duration;

use super::media_tests::media_cfg;
use super::tests::*;
use super::*;
use crate::sip::message::Headers;
use crate::sip::message::Message;

const STRANGER: &str = "198.51.100.7:5060";

fn is_response(code: u16) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::Response(r) if r.code == code)
}

/// `text` with one header's tag replaced.
fn with_tag(text: &[u8], header: &str, tag: &str) -> Vec<u8> {
    let s = String::from_utf8(text.to_vec()).unwrap();
    let out: Vec<String> = s
        .split("\r\n")
        .map(|l| match l.split_once(": ") {
            Some((name, v)) if name == header => {
                let base = v.split(";tag=").next().unwrap();
                format!("{name}: {base};tag={tag}")
            }
            _ => l.to_string(),
        })
        .collect();
    out.join("\r\n").into_bytes()
}

#[test]
fn a_bye_with_the_right_call_id_but_wrong_tags_gets_481_and_the_call_lives_on() {
    let mut net = Net::new();
    let (b_inv, gw_tag) = answered(&mut net);
    // Towards the callee leg: the Call-ID is the gateway's, the tags are guessed.
    let bye = callee_request(&b_inv, "BYE", 5, "z9hG4bKx1");
    net.send(net.callee, &with_tag(&bye, "From", "guess"));
    net.response(net.callee, 481);
    let bye = callee_request(&b_inv, "BYE", 6, "z9hG4bKx2");
    net.send(net.callee, &with_tag(&bye, "To", "guess"));
    net.response(net.callee, 481);
    // Towards the caller leg: the caller's own Call-ID and tag, a wrong To tag.
    net.send(net.caller, &caller_request("BYE", 7, "z9hG4bKx3", "guess"));
    net.response(net.caller, 481);
    let refer = callee_refer(&b_inv, "110", 8);
    net.send(net.callee, &with_tag(&refer, "From", "guess"));
    net.response(net.callee, 481);
    let reinvite = callee_request(&b_inv, "INVITE", 9, "z9hG4bKx4");
    net.send(net.callee, &with_tag(&reinvite, "To", "guess"));
    net.response(net.callee, 481);
    net.none_to(
        net.caller,
        "BYE",
        |m| matches!(m, Message::Request(r) if r.method == Method::Bye),
    );
    assert_eq!(net.core.active_calls(), 1, "the call lives on");
    assert!(net.core.poll_record().is_none());
    // The real caller still ends it.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(net.callee, Method::Bye);
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    assert_eq!(net.record().reason, Reason::CallerHangup);
    net.drained();
}

#[test]
fn a_forged_answer_from_another_address_is_ignored() {
    let mut net = Net::new();
    net.send(net.caller, &caller_invite());
    let b_inv = net.request(net.callee, Method::Invite);
    let forger = peer("127.0.0.2:5070");
    // Same branch, Call-ID and tags as the seat would send: only the address differs.
    net.send(forger, &callee_reply(&b_inv, 486, "Busy Here", &[], ""));
    net.send(forger, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.none_to(
        net.caller,
        "a forged final",
        |m| matches!(m, Message::Response(r) if r.code >= 200),
    );
    assert_eq!(net.core.stats().foreign_responses, 2);
    // The seat's own answer goes through.
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.response(net.caller, 200);
}

#[test]
fn a_cancel_from_another_address_does_not_end_the_call() {
    let mut net = Net::new();
    let (_b_inv, _) = ringing(&mut net);
    net.send(peer("192.0.2.99:5060"), &caller_cancel());
    net.response(peer("192.0.2.99:5060"), 481);
    net.none_to(net.caller, "487", is_response(487));
    net.none_to(
        net.callee,
        "CANCEL",
        |m| matches!(m, Message::Request(r) if r.method == Method::Cancel),
    );
    // The caller's own CANCEL works.
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
}

#[test]
fn a_stranger_is_answered_statelessly_and_costs_no_record_and_no_transaction() {
    let mut net = Net::new();
    let stranger = peer(STRANGER);
    let invite = String::from_utf8(caller_invite())
        .unwrap()
        .replace("192.0.2.10:5060", STRANGER);
    net.send(stranger, invite.as_bytes());
    net.response(stranger, 403);
    assert_eq!(net.core.transactions(), 0, "no transaction for a stranger");
    assert_eq!(net.core.active_calls(), 0);
    assert!(net.core.poll_record().is_none(), "no stored record");
    // Its retransmissions are answered again, never by a retransmitting 403.
    net.advance(Duration::from_secs(40));
    net.none_to(stranger, "a retransmitted 403", is_response(403));
    // A flood: the burst is answered, the rest dropped and counted.
    for i in 0..500 {
        let inv = invite.replace("z9hG4bKa1", &format!("z9hG4bKf{i}"));
        net.send(stranger, inv.as_bytes());
    }
    let answered = net.inbox.iter().filter(|(p, _)| *p == stranger).count();
    assert!(answered < 150, "{answered} answers to a flood of 500");
    let s = net.core.stats().strangers;
    assert_eq!(s.refused + s.dropped, 501);
    assert!(s.dropped >= 350);
    assert_eq!(net.core.transactions(), 0);
    // A trunk's call still goes through.
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 100);
    net.request(net.callee, Method::Invite);
}

#[test]
fn a_queued_caller_answered_after_200_s_gets_the_answer() {
    // A queue whose seat rings 100 s before the ACD tries again.
    let plan = crate::dialplan::parse_sources(&[(
        "l.toml".into(),
        format!(
            "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n\
[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"queue:q\"\n\
[[queue]]\nname = \"q\"\nring_timeout_s = 100\nmax_wait_s = 300\nstatic_members = [\"sip:{CALLEE}\"]\n"
        ),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        ring_timeout: Duration::from_secs(170),
        media: Some(media_cfg(QueuedAudio::EarlyMedia)),
        ..Default::default()
    };
    let mut net = Net::with(cfg, plan);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 183);
    let start = net.now;
    let mut current: Option<Request> = None;
    let mut refreshed = 0;
    // The seat rings and does not answer for 200 s: its first ring is cancelled
    // after the queue's ring timeout (100 s) and the seat rung again.
    while net.now.duration_since(start) < Duration::from_secs(200) {
        net.advance(Duration::from_secs(1));
        let inbox = std::mem::take(&mut net.inbox);
        for (to, m) in inbox {
            match m {
                Message::Response(r) if to == net.caller && r.code == 183 => refreshed += 1,
                Message::Request(r) if to == net.callee && r.method == Method::Invite => {
                    net.send(net.callee, &callee_reply(&r, 180, "Ringing", &[], ""));
                    current = Some(r);
                }
                Message::Request(r) if to == net.callee && r.method == Method::Cancel => {
                    net.send(net.callee, &callee_reply(&r, 200, "OK", &[], ""));
                    let inv = current.take().expect("a ringing INVITE");
                    net.send(
                        net.callee,
                        &callee_reply(&inv, 487, "Request Terminated", &[], ""),
                    );
                }
                Message::Response(r) if to == net.caller && r.code >= 300 => {
                    panic!("the caller got {} while queued", r.code)
                }
                _ => {}
            }
        }
    }
    assert!(
        refreshed >= 3,
        "the 183 is repeated while queued ({refreshed})"
    );
    // The seat rings once more and answers: the caller gets the 200.
    let inv = match current.take() {
        Some(inv) => inv,
        None => {
            net.advance(Duration::from_secs(15));
            net.request(net.callee, Method::Invite)
        }
    };
    let sdp = "v=0\r\no=agent 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n";
    net.send(net.callee, &callee_reply(&inv, 200, "OK", &[], sdp));
    net.response(net.caller, 200);
}

#[test]
fn an_ack_with_the_right_call_id_and_cseq_but_wrong_tags_does_not_confirm_the_call() {
    let mut net = Net::new();
    let (b_inv, gw_tag) = ringing(&mut net);
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.response(net.caller, 200);
    // A forged ACK (it would carry the attacker's SDP in a late-offer call).
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKfake", "guess"),
    );
    let from_elsewhere = peer("192.0.2.66:5060");
    let forged = with_tag(
        &caller_request("ACK", 1, "z9hG4bKfake2", &gw_tag),
        "From",
        "nope",
    );
    net.send(from_elsewhere, &forged);
    net.none_to(
        net.callee,
        "ACK",
        |m| matches!(m, Message::Request(r) if r.method == Method::Ack),
    );
    // The caller's own ACK still confirms the call.
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(net.callee, Method::Ack);
}

/// A core whose only trunk is 192.0.2.0/24: the seat at 127.0.0.1 is no trunk.
fn net_with_a_seat_that_is_no_trunk() -> Net {
    let plan = crate::dialplan::parse_sources(&[(
        "l.toml".into(),
        format!(
            "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"192.0.2.0/24\"]\n\
[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"sip:{CALLEE}\"\n"
        ),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        ..Default::default()
    };
    Net::with(cfg, plan)
}

#[test]
fn a_party_to_a_call_that_is_no_trunk_is_served_and_a_guess_is_answered_statelessly() {
    let mut net = net_with_a_seat_that_is_no_trunk();
    let (b_inv, _) = answered(&mut net);
    // A BYE with a guessed tag from the seat's address: 481, and no transaction
    // (no 481 retransmitted for 32 s towards a spoofed address).
    let before = net.core.transactions();
    let guess = callee_request(&b_inv, "BYE", 5, "z9hG4bKg1");
    net.send(net.callee, &with_tag(&guess, "From", "guess"));
    net.response(net.callee, 481);
    assert_eq!(net.core.transactions(), before);
    assert_eq!(net.core.stats().strangers.refused, 1);
    // The seat's own BYE names the dialog: served statefully, not rate-limited.
    net.send(net.callee, &callee_request(&b_inv, "BYE", 1, "z9hG4bKcb1"));
    net.response(net.callee, 200);
    let bye = net.request(net.caller, Method::Bye);
    net.send(
        net.caller,
        &response_to(&bye, 200, "OK", None).finish_empty(),
    );
    assert_eq!(net.record().reason, Reason::CalleeHangup);
    // Its retransmission is absorbed by the transaction, as for anyone.
    net.send(net.callee, &callee_request(&b_inv, "BYE", 1, "z9hG4bKcb1"));
    net.response(net.callee, 200);
}

fn register_from(addr: &str, n: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKreg{n}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=r{n}\r\nTo: <sip:1001@127.0.0.1>\r\n\
Call-ID: reg{n}@{addr}\r\nCSeq: {n} REGISTER\r\nContact: <sip:1001@{addr}>\r\n{auth}\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_spoofed_register_flood_does_not_keep_out_a_register_that_answers_our_nonce() {
    let mut net = Net::new();
    // An agent's phone (not a trunk's address) is challenged once.
    let phone = peer("203.0.113.5:5060");
    net.send(phone, &register_from("203.0.113.5:5060", 1, None));
    let challenge = net.response(phone, 401);
    let www = challenge.header("WWW-Authenticate").unwrap().to_string();
    let nonce = www
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // REGISTERs from 10,000 spoofed addresses drain the strangers' REGISTER budget.
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0xC633_6400u32 + i);
        let addr = format!("{ip}:5060");
        net.core
            .handle_datagram(net.now, &register_from(&addr, i + 10, None), peer(&addr));
    }
    while net.core.poll_transmit().is_some() {}
    assert!(net.core.stats().strangers.dropped > 5_000);
    // Another newcomer without credentials is dropped now...
    let late = peer("203.0.113.9:5060");
    net.send(late, &register_from("203.0.113.9:5060", 2, None));
    net.none_to(late, "an answer", |_| true);
    // ...but the phone answering the nonce it was given is still heard.
    let auth = format!(
        "Digest username=\"1001\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"00000000000000000000000000000000\", algorithm=MD5"
    );
    net.send(phone, &register_from("203.0.113.5:5060", 3, Some(&auth)));
    assert!(
        net.inbox
            .iter()
            .any(|(p, m)| *p == phone && matches!(m, Message::Response(_))),
        "the phone's REGISTER was dropped: {:?}",
        net.summary()
    );
}
