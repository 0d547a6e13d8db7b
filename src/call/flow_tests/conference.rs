//! Three-party calls: the agent of a media-anchored call adds 110 by REFER
//! (`;hotline=conference`) or through the API; 110 rings on a third leg and,
//! on answer, the relay mixes all three. The agent may leave (110 takes its
//! place), 110 may leave (back to two); refusals and strangers change nothing.

use super::support::*;
use crate::call::tests::*;
use crate::call::{QueuedAudio, Reason};
use crate::cdr::EventKind;
use crate::media::command::{Leg, MediaCommand};
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Message, Method, Request};

/// A queued, media-anchored call answered by agent 1001: the caller's dialog
/// tag and the agent's INVITE.
fn connected(net: &mut Net) -> (String, Request) {
    A1.register(net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let inv = A1.invite(net);
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(A1.peer(), Method::Ack);
    commands(net);
    (gw_tag, inv)
}

/// The agent's REFER adding 110 (`;hotline=conference`), answered with digest.
fn refer_conference(net: &mut Net, inv: &Request) -> u16 {
    let to = ("Refer-To", "<sip:110@127.0.0.1:5060;hotline=conference>");
    net.send(
        A1.peer(),
        &A1.at.request(inv, "REFER", 2, "z9hG4bKrc2", &[to]),
    );
    let challenge = net.response(A1.peer(), 401);
    let auth = A1.digest(&challenge, "REFER", "sip:gw@127.0.0.1:5060");
    let headers = [to, ("Authorization", auth.as_str())];
    net.send(
        A1.peer(),
        &A1.at.request(inv, "REFER", 3, "z9hG4bKrc3", &headers),
    );
    net.response_any(A1.peer()).code
}

/// A NOTIFY to the agent: its sipfrag, answered 200.
fn notified(net: &mut Net) -> String {
    let n = net.request(A1.peer(), Method::Notify);
    net.send(A1.peer(), &A1.at.reply(&n, 200, "OK", ""));
    String::from_utf8_lossy(&n.body).trim_end().to_string()
}

/// 110 answers the third leg's INVITE; the relay's orders that follow.
fn police_answers(net: &mut Net) -> (Request, Vec<MediaCommand>) {
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    net.send(
        POLICE.peer(),
        &POLICE.reply(&c_inv, 200, "OK", &agent_sdp(7000)),
    );
    net.request(POLICE.peer(), Method::Ack);
    (c_inv, commands(net))
}

fn third_port(cmds: &[MediaCommand]) -> u16 {
    cmds.iter()
        .find_map(|c| match c {
            MediaCommand::AddLeg { port, .. } => Some(*port),
            _ => None,
        })
        .expect("a third leg bound")
}

#[test]
fn an_agent_adds_110_all_three_are_mixed_then_the_agent_leaves_110_with_the_caller() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, inv) = connected(&mut net);
    assert_eq!(refer_conference(&mut net, &inv), 202);
    assert_eq!(notified(&mut net), "SIP/2.0 100 Trying");
    let port = third_port(&commands(&mut net));
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    let offer = String::from_utf8_lossy(&c_inv.body).to_string();
    assert!(
        offer.contains(&format!("m=audio {port} ")),
        "110 is offered the third port: {offer}"
    );
    assert_eq!(
        c_inv.header("P-Asserted-Identity"),
        Some("<sip:13800138000@127.0.0.1:5060>"),
        "110 learns the citizen's number"
    );
    net.send(
        POLICE.peer(),
        &POLICE.reply(&c_inv, 200, "OK", &agent_sdp(7000)),
    );
    net.request(POLICE.peer(), Method::Ack);
    let cmds = commands(&mut net);
    assert!(cmds.iter().any(|c| matches!(
        c,
        MediaCommand::Remote { leg: Leg::C, remote, .. } if remote.rtp.port() == 7000
    )));
    assert!(cmds.contains(&MediaCommand::Mix {
        session: session_key(&cmds),
        on: true
    }));
    assert_eq!(notified(&mut net), "SIP/2.0 200 OK");
    // The agent hangs up: 110 stays with the caller; nobody else gets a BYE.
    net.send(A1.peer(), &A1.at.request(&inv, "BYE", 4, "z9hG4bKab4", &[]));
    net.response(A1.peer(), 200);
    let cmds = commands(&mut net);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, MediaCommand::Promote { .. })),
        "{cmds:?}"
    );
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    assert!(
        played(&cmds, "survey").is_none(),
        "no survey: the call goes on"
    );
    net.none_to(POLICE.peer(), "BYE", is_method(Method::Bye));
    assert_eq!(agent_state(&net, "1001"), "ready", "the agent is free");
    // The caller and 110 talk; the caller hangs up.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(POLICE.peer(), Method::Bye);
    assert_eq!(bye.call_id(), c_inv.call_id());
    net.send(POLICE.peer(), &POLICE.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to.as_deref(), Some("110"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert!(has_event(&r, EventKind::PartyJoined, "110"));
    assert!(has_event(&r, EventKind::PartyLeft, "1001"));
    let joined = r.events.iter().filter(|e| e.kind == EventKind::Answered);
    assert_eq!(
        joined.count(),
        1,
        "answered once: the SLA counts the call once"
    );
    no_leak(&mut net);
}

/// The session id in the relay orders.
fn session_key(cmds: &[MediaCommand]) -> u64 {
    cmds.first().map(MediaCommand::session).expect("an order")
}

#[test]
fn when_110_leaves_the_caller_and_the_agent_go_on_talking() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, inv) = connected(&mut net);
    assert_eq!(refer_conference(&mut net, &inv), 202);
    notified(&mut net);
    let (c_inv, _) = police_answers(&mut net);
    notified(&mut net);
    // A BYE on the third leg with a forged tag ends nothing.
    let forged = String::from_utf8(POLICE.request(&c_inv, "BYE", 1, "z9hG4bKpf", &[]))
        .unwrap()
        .replace(";tag=po", ";tag=evil");
    net.send(POLICE.peer(), forged.as_bytes());
    net.response(POLICE.peer(), 481);
    assert!(
        !commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::DropLeg { .. })),
        "still three"
    );
    // 110 hangs up: the mix ends, the two others go on.
    net.send(
        POLICE.peer(),
        &POLICE.request(&c_inv, "BYE", 2, "z9hG4bKpb", &[]),
    );
    net.response(POLICE.peer(), 200);
    let cmds = commands(&mut net);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, MediaCommand::DropLeg { leg: Leg::C, .. }))
    );
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    net.none_to(A1.peer(), "BYE", is_method(Method::Bye));
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.at.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to, None);
    assert!(has_event(&r, EventKind::PartyJoined, "110"));
    assert!(has_event(&r, EventKind::PartyLeft, "110"));
    no_leak(&mut net);
}

#[test]
fn a_busy_110_is_reported_to_the_agent_and_the_call_goes_on() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, inv) = connected(&mut net);
    assert_eq!(refer_conference(&mut net, &inv), 202);
    notified(&mut net);
    let port = third_port(&commands(&mut net));
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    net.send(POLICE.peer(), &POLICE.reply(&c_inv, 486, "Busy Here", ""));
    assert_eq!(notified(&mut net), "SIP/2.0 486 Busy Here");
    assert!(
        commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::DropLeg { leg: Leg::C, .. }))
    );
    // The port went back to the pool, and a second try may ring again.
    assert_eq!(refer_again(&mut net, &inv), 202);
    notified(&mut net);
    let _ = port;
    let c2 = net.request(POLICE.peer(), Method::Invite);
    assert_ne!(c2.call_id(), c_inv.call_id());
    // The caller hangs up while 110 rings: it is cancelled (after its first
    // provisional: RFC 3261 §9.1).
    net.send(POLICE.peer(), &POLICE.reply(&c2, 180, "Ringing", ""));
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let cancel = net.request(POLICE.peer(), Method::Cancel);
    net.send(
        POLICE.peer(),
        &response_to(&cancel, 200, "OK", None).finish_empty(),
    );
    net.send(
        POLICE.peer(),
        &POLICE.reply(&c2, 487, "Request Terminated", ""),
    );
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.at.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert!(!r.events.iter().any(|e| e.kind == EventKind::PartyJoined));
    no_leak(&mut net);
}

/// A second REFER (CSeq 5), with a fresh challenge answered.
fn refer_again(net: &mut Net, inv: &Request) -> u16 {
    let to = ("Refer-To", "<sip:110@127.0.0.1:5060;hotline=conference>");
    net.send(
        A1.peer(),
        &A1.at.request(inv, "REFER", 5, "z9hG4bKrc5", &[to]),
    );
    let challenge = net.response(A1.peer(), 401);
    let auth = A1.digest(&challenge, "REFER", "sip:gw@127.0.0.1:5060");
    let headers = [to, ("Authorization", auth.as_str())];
    net.send(
        A1.peer(),
        &A1.at.request(inv, "REFER", 6, "z9hG4bKrc6", &headers),
    );
    net.response_any(A1.peer()).code
}

#[test]
fn without_anchored_media_a_three_party_call_is_refused_and_nothing_rings() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 180).to_tag().unwrap();
    let inv = A1.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", SDP));
    net.response(net.caller, 200);
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(A1.peer(), Method::Ack);
    assert_eq!(refer_conference(&mut net, &inv), 488);
    net.none_to(POLICE.peer(), "INVITE", is_method(Method::Invite));
}

#[test]
fn the_api_adds_a_party_to_a_call_it_names_and_only_from_the_directory() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (_gw_tag, _inv) = connected(&mut net);
    let now = net.now;
    let e = net.core.add_party_api(now, "nope-1", "110").unwrap_err();
    assert!(matches!(e, crate::call::api::ApiError::UnknownCall(_)));
    let id = net.core.poll_offer().expect("the call was offered").id;
    let e = net.core.add_party_api(now, &id, "13900000000").unwrap_err();
    assert!(
        matches!(e, crate::call::api::ApiError::NotInDirectory(_)),
        "toll fraud stays closed: {e:?}"
    );
    net.none_to(POLICE.peer(), "INVITE", is_method(Method::Invite));
    let v = net.core.add_party_api(now, &id, "110").unwrap();
    assert_eq!(v["state"], "ringing");
    net.collect();
    let (c_inv, _) = police_answers(&mut net);
    assert!(c_inv.header("Referred-By").is_some());
    // A second party while one is on: refused.
    let e = net.core.add_party_api(now, &id, "110").unwrap_err();
    assert!(matches!(
        e,
        crate::call::api::ApiError::Party("call_busy", _)
    ));
    // 110 cannot transfer the call anywhere.
    net.send(
        POLICE.peer(),
        &POLICE.request(
            &c_inv,
            "REFER",
            3,
            "z9hG4bKpr",
            &[("Refer-To", "<sip:999@127.0.0.1>")],
        ),
    );
    net.response(POLICE.peer(), 403);
}

#[test]
fn a_silent_110_given_up_on_never_disturbs_the_next_try() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, _inv) = connected(&mut net);
    let id = net.core.poll_offer().expect("offered").id;
    let now = net.now;
    net.core.add_party_api(now, &id, "110").unwrap();
    net.collect();
    let first = net.request(POLICE.peer(), Method::Invite);
    // 110 never answers: given up at 30 s (no CANCEL before a provisional).
    net.advance(crate::call::conference::PARTY_RING + std::time::Duration::from_millis(10));
    let now = net.now;
    net.core.add_party_api(now, &id, "110").unwrap();
    net.collect();
    // (The first INVITE's retransmissions are still in the inbox.)
    let first_id = first.call_id().map(str::to_string);
    let second = match net.take(POLICE.peer(), "a second INVITE", |m| {
        matches!(m, Message::Request(r) if r.method == Method::Invite
            && r.call_id().map(str::to_string) != first_id)
    }) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    };
    // A late 200 to the first INVITE is released, not joined.
    net.send(
        POLICE.peer(),
        &POLICE.reply(&first, 200, "OK", &agent_sdp(7002)),
    );
    let is_first = |m: &Message| match m {
        Message::Request(r) => r.call_id().map(str::to_string) == first_id,
        Message::Response(r) => r.call_id().map(str::to_string) == first_id,
    };
    let ack = net.take(POLICE.peer(), "the late 200's ACK", |m| {
        matches!(m, Message::Request(r) if r.method == Method::Ack) && is_first(m)
    });
    let bye = match net.take(POLICE.peer(), "the late 200's BYE", |m| {
        matches!(m, Message::Request(r) if r.method == Method::Bye) && is_first(m)
    }) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    };
    let _ = ack;
    net.send(POLICE.peer(), &POLICE.reply(&bye, 200, "OK", ""));
    // The first INVITE's Timer B time passes: the second still rings.
    net.advance(std::time::Duration::from_secs(3));
    net.send(
        POLICE.peer(),
        &POLICE.reply(&second, 200, "OK", &agent_sdp(7000)),
    );
    assert!(
        commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::Mix { on: true, .. })),
        "the second try joined"
    );
    // The caller hangs up: the agent and the joined 110 get BYE.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    for to in [A1.peer(), POLICE.peer()] {
        let bye = net.request(to, Method::Bye);
        net.send(to, &response_to(&bye, 200, "OK", None).finish_empty());
    }
    let r = net.record();
    assert!(has_event(&r, EventKind::PartyJoined, "110"));
    no_leak(&mut net);
}

#[test]
fn a_third_port_the_relay_cannot_bind_drops_the_party_not_the_call() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (_gw_tag, inv) = connected(&mut net);
    assert_eq!(refer_conference(&mut net, &inv), 202);
    notified(&mut net);
    let cmds = commands(&mut net);
    let (session, port) = (session_key(&cmds), third_port(&cmds));
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    net.core.handle_media(
        net.now,
        crate::media::command::MediaEvent::Failed { session, port },
    );
    net.collect();
    net.send(POLICE.peer(), &POLICE.reply(&c_inv, 180, "Ringing", ""));
    net.request(POLICE.peer(), Method::Cancel);
    assert_eq!(notified(&mut net), "SIP/2.0 503 Service Unavailable");
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    net.none_to(A1.peer(), "BYE", is_method(Method::Bye));
}
