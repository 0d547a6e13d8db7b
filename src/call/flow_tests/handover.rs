//! A draining node hands its waiting callers to the node that took the lease
//! (`call/handover.rs`): the taking node accepts and bridges, refuses, or says
//! nothing; the taking node adopts the call's id and first offer time from a
//! peer, and only from a peer (the attacker test).

use std::time::Duration;

use super::support::*;
use crate::call::tests::*;
use crate::call::{Reason, Serving};
use crate::cdr::EventKind;
use crate::sip::message::{Headers, Method, Request};

/// The other node, as the draining node and the taker know it: on an address
/// that is no trunk (a stranger to the dialplan).
const PEER: Party = Party {
    addr: "198.51.100.7:5060",
    tag: "pb",
};
const WALL_MS: i64 = 1_765_000_000_000;

/// A cluster node (active) on the flow plan, its wall clock set, knowing
/// [`PEER`] as a peer.
fn node_with(queued: Option<crate::call::QueuedAudio>) -> Net {
    let mut net = cluster_net(queued);
    net.core.set_wall_clock(net.now, WALL_MS);
    net.core.set_peers([PEER.peer().addr].into_iter().collect());
    net
}

fn node() -> Net {
    node_with(None)
}

/// A caller of the node's own, queued 5 s ago: its offer.
fn own_caller_waiting(net: &mut Net) -> crate::cdr::Offer {
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 180);
    let own = net.core.poll_offer().unwrap();
    net.advance(Duration::from_secs(5));
    own
}

/// The taking node's answer to handover INVITE `inv`: it adopted the call,
/// so it echoes the claimed id.
fn taken(inv: &Request, code: u16, reason: &str, sdp: &str) -> Vec<u8> {
    let claim = inv.header("X-Hotline-Handover").unwrap();
    let id = claim
        .split(';')
        .find_map(|p| p.strip_prefix("id="))
        .unwrap();
    let text = String::from_utf8(PEER.reply(inv, code, reason, sdp)).unwrap();
    let at = text.find("\r\n").unwrap() + 2;
    format!(
        "{}X-Hotline-Handover-Accepted: {id}\r\n{}",
        &text[..at],
        &text[at..]
    )
    .into_bytes()
}

/// A caller queued at a node without agents, then the node drains and hands
/// it over: the handover INVITE, and the caller's 180's To tag.
fn queued_then_handed_over(net: &mut Net) -> (Request, String, crate::cdr::Offer) {
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 180).to_tag().unwrap();
    let offer = net.core.poll_offer().expect("offered");
    net.advance(Duration::from_secs(10));
    net.core.step_down(net.now, Serving::Draining);
    assert_eq!(net.core.hand_over(net.now, "gw-b", PEER.peer().addr), 1);
    net.collect();
    let inv = net.request(PEER.peer(), Method::Invite);
    (inv, gw_tag, offer)
}

#[test]
fn a_draining_node_hands_its_waiting_caller_over_and_leaves_the_record_to_the_taker() {
    let mut net = node();
    let (inv, gw_tag, offer) = queued_then_handed_over(&mut net);
    assert_eq!(&*inv.uri, "sip:12345@198.51.100.7:5060");
    let claim = inv
        .header("X-Hotline-Handover")
        .expect("the handover header");
    assert_eq!(
        claim,
        format!(
            "id={};offered={};line=12345;queue=agents;trunk=t",
            offer.id, offer.at_ms
        )
    );
    assert!(inv.header("From").unwrap().contains("sip:13800138000@"));
    assert_eq!(inv.body, SDP.as_bytes(), "the caller's offer goes on");
    // Accepted: the taking node queues it (its own ringback is not relayed).
    net.send(PEER.peer(), &taken(&inv, 180, "Ringing", ""));
    net.none_to(net.caller, "a second 180", is_code(180));
    // Accepted calls are not given up on: the taker's queue may take minutes.
    net.advance(Duration::from_secs(60));
    net.none_to(net.caller, "a failure", is_code(503));
    // The taker's agent answers: the caller is bridged through this node.
    let answer = String::from_utf8(taken(&inv, 200, "OK", SDP))
        .unwrap()
        .replace(
            "Content-Type:",
            "X-Hotline-Answered-By: agent\r\nContent-Type:",
        );
    net.send(PEER.peer(), answer.as_bytes());
    let ok = net.response(net.caller, 200);
    assert_eq!(ok.to_tag().as_deref(), Some(gw_tag.as_str()));
    assert_eq!(
        ok.header("X-Hotline-Answered-By"),
        Some("agent"),
        "the caller learns a person answered, there"
    );
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(PEER.peer(), Method::Ack);
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(PEER.peer(), Method::Bye);
    net.send(PEER.peer(), &PEER.reply(&bye, 200, "OK", ""));
    // The taker records the call under the same id; this node writes none.
    no_leak(&mut net);
}

#[test]
fn a_refused_handover_ends_the_call_here_with_a_callback() {
    let mut net = node();
    let (inv, _, offer) = queued_then_handed_over(&mut net);
    net.send(PEER.peer(), &PEER.reply(&inv, 404, "Not Found", ""));
    net.request(PEER.peer(), Method::Ack);
    net.response(net.caller, 503);
    let r = net.record();
    assert_eq!(r.reason, Reason::ClusterHandoverFailed);
    assert_eq!(r.id, offer.id);
    assert!(
        r.to_cdr().callback_pending,
        "a missed caller is called back"
    );
    no_leak(&mut net);
}

#[test]
fn a_silent_taker_is_given_up_on_and_the_caller_called_back() {
    let mut net = node();
    let (inv, _, _) = queued_then_handed_over(&mut net);
    net.advance(Duration::from_secs(9));
    net.response(net.caller, 503);
    assert_eq!(net.record().reason, Reason::ClusterHandoverFailed);
    // Its late 180 gets a CANCEL: the taker does not keep a caller who left.
    net.send(PEER.peer(), &PEER.reply(&inv, 180, "Ringing", ""));
    let cancel = net.request(PEER.peer(), Method::Cancel);
    net.send(PEER.peer(), &PEER.reply(&cancel, 200, "OK", ""));
    net.send(
        PEER.peer(),
        &PEER.reply(&inv, 487, "Request Terminated", ""),
    );
    net.request(PEER.peer(), Method::Ack);
    no_leak(&mut net);
}

#[test]
fn a_caller_hanging_up_during_the_handover_is_cancelled_at_the_taker_too() {
    let mut net = node();
    let (inv, _, _) = queued_then_handed_over(&mut net);
    net.send(PEER.peer(), &taken(&inv, 180, "Ringing", ""));
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    let cancel = net.request(PEER.peer(), Method::Cancel);
    net.send(PEER.peer(), &PEER.reply(&cancel, 200, "OK", ""));
    net.send(
        PEER.peer(),
        &PEER.reply(&inv, 487, "Request Terminated", ""),
    );
    net.request(PEER.peer(), Method::Ack);
    // Accepted by the taker: it records the cancel (same id), not this node.
    no_leak(&mut net);
}

/// A handover INVITE as a peer (or an impostor at `from`) sends it.
fn handover_invite(from: &str, call: &str, claim: &str) -> Vec<u8> {
    format!(
        "INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call}\r\n\
Max-Forwards: 69\r\nFrom: <sip:13900139000@{from}>;tag={call}\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: {call}@{from}\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@{from}>\r\n\
X-Hotline-Handover: {claim}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// A request from the handing peer inside the dialog of handover `call`.
fn peer_request(call: &str, method: &str, gw_tag: &str) -> Vec<u8> {
    let from = PEER.addr;
    format!(
        "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call}{method}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13900139000@{from}>;tag={call}\r\nTo: <sip:12345@127.0.0.1>;tag={gw_tag}\r\n\
Call-ID: {call}@{from}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The agent is rung and answers; the handing peer (handover `call`) ACKs;
/// the agent hangs up. Returns the agent's INVITE.
fn answer_and_end(net: &mut Net, agent: &Agent, call: &str) -> Request {
    let caller = PEER.peer();
    let inv = agent.invite(net);
    net.send(agent.peer(), &agent.reply(&inv, 200, "OK", SDP));
    let ok = net.response(caller, 200);
    net.send(caller, &peer_request(call, "ACK", &ok.to_tag().unwrap()));
    let bye = agent.at.request(&inv, "BYE", 2, "z9hG4bKab", &[]);
    net.request(agent.peer(), Method::Ack);
    net.send(agent.peer(), &bye);
    net.response(agent.peer(), 200);
    let bye_to_caller = net.request(caller, Method::Bye);
    net.send(caller, &PEER.reply(&bye_to_caller, 200, "OK", ""));
    inv
}

#[test]
fn the_taker_adopts_a_peers_call_id_and_first_offer_ahead_of_newer_callers() {
    let mut net = node();
    // A caller of this node's own, waiting already.
    let own = own_caller_waiting(&mut net);
    // The peer's caller first offered a minute ago, there.
    let offered = WALL_MS - 55_000;
    let claim = format!(
        "id=peer0001-9;offered={offered};line=12345;queue=agents;trunk=carrier;original=12315"
    );
    net.send(PEER.peer(), &handover_invite(PEER.addr, "h1", &claim));
    net.response(PEER.peer(), 180);
    let adopted = net.core.poll_offer().unwrap();
    assert_eq!(adopted.id, "peer0001-9", "one call, one work order");
    assert_eq!(adopted.at_ms, offered);
    // The first agent in takes the caller who has waited longest.
    A1.log_in(&mut net);
    let inv = answer_and_end(&mut net, &A1, "h1");
    assert_eq!(inv.header("X-Hotline-Call-Id"), Some("peer0001-9"));
    let r = net.record();
    assert_eq!(r.id, "peer0001-9");
    let first_offer = r.events.iter().find(|e| e.kind == EventKind::Offered);
    assert_eq!(first_offer.map(|e| e.at_ms), Some(offered));
    assert_eq!(r.caller, "13900139000");
    assert_eq!(
        r.trunk.as_deref(),
        Some("carrier"),
        "where it came in, there"
    );
    assert_eq!(r.original.as_deref(), Some("12315"));
    // The own caller is next.
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Call-Id"), Some(own.id.as_str()));
}

#[test]
fn attacker_a_handover_header_from_a_non_peer_claims_nothing() {
    let mut net = node();
    let own = own_caller_waiting(&mut net);
    // From the carrier's trunk range, but no cluster node: an old offer time
    // (to jump the queue) and another call's id (to take its work order).
    let impostor = "192.0.2.66:5060";
    let claim = format!(
        "id={};offered={};line=12345;queue=agents",
        own.id,
        WALL_MS - 3_600_000
    );
    net.send(peer(impostor), &handover_invite(impostor, "x1", &claim));
    net.response(peer(impostor), 180);
    let theirs = net.core.poll_offer().unwrap();
    assert_ne!(theirs.id, own.id, "no stolen id");
    assert_eq!(
        theirs.at_ms,
        WALL_MS + 5_000,
        "offered now, not an hour ago"
    );
    // The first agent in takes the caller who has really waited longest.
    A1.log_in(&mut net);
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Call-Id"), Some(own.id.as_str()));
}

#[test]
fn a_caller_the_draining_node_answered_is_bridged_to_the_takers_answer() {
    let mut net = node_with(Some(crate::call::QueuedAudio::Answer));
    net.send(net.caller, &caller_invite());
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
    let session = session_of(&commands(&mut net));
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.advance(Duration::from_secs(3));
    net.core.step_down(net.now, Serving::Draining);
    assert_eq!(net.core.hand_over(net.now, "gw-b", PEER.peer().addr), 1);
    net.collect();
    let inv = net.request(PEER.peer(), Method::Invite);
    let offer = String::from_utf8_lossy(&inv.body).to_string();
    assert!(
        offer.contains("c=IN IP4 127.0.0.1") && !offer.contains("192.0.2.10"),
        "the taker is offered this node's relay: {offer}"
    );
    // The taker answers at once (its hold music): the offer was this node's,
    // so it acknowledges, and the caller hears the taker from now on.
    net.send(PEER.peer(), &taken(&inv, 200, "OK", &agent_sdp(6100)));
    net.request(PEER.peer(), Method::Ack);
    net.none_to(net.caller, "a second 200", is_code(200));
    assert!(commands(&mut net).contains(&crate::media::command::MediaCommand::Bridge { session }));
    // The taker's agent hangs up there: the caller gets BYE here.
    let bye = PEER.request(&inv, "BYE", 2, "z9hG4bKpb", &[]);
    net.send(PEER.peer(), &bye);
    net.response(PEER.peer(), 200);
    let bye = net.request(net.caller, Method::Bye);
    net.send(net.caller, &PEER.reply(&bye, 200, "OK", ""));
    no_leak(&mut net);
}

#[test]
fn a_handed_over_caller_hears_hold_music_not_the_greeting_again() {
    let mut net = node_with(Some(crate::call::QueuedAudio::Answer));
    let claim = format!(
        "id=peer0001-3;offered={};line=12345;queue=agents",
        WALL_MS - 20_000
    );
    net.send(PEER.peer(), &handover_invite(PEER.addr, "h3", &claim));
    net.response(PEER.peer(), 200);
    let cmds = commands(&mut net);
    assert!(played(&cmds, "greeting").is_none(), "{cmds:?}");
    assert!(
        cmds.iter()
            .any(|c| matches!(c, crate::media::command::MediaCommand::Play { .. })),
        "hold music: {cmds:?}"
    );
    // A caller of this node's own gets the greeting.
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 200);
    assert!(played(&commands(&mut net), "greeting").is_some());
}

#[test]
fn a_provisional_without_the_echo_is_no_adoption_the_leg_is_cancelled() {
    let mut net = node();
    let (inv, _, offer) = queued_then_handed_over(&mut net);
    // The other node took the INVITE as an ordinary call (it does not know
    // this node as a peer): it would record it under an id of its own.
    net.send(PEER.peer(), &PEER.reply(&inv, 180, "Ringing", ""));
    let cancel = net.request(PEER.peer(), Method::Cancel);
    net.send(PEER.peer(), &PEER.reply(&cancel, 200, "OK", ""));
    net.send(
        PEER.peer(),
        &PEER.reply(&inv, 487, "Request Terminated", ""),
    );
    net.request(PEER.peer(), Method::Ack);
    net.response(net.caller, 503);
    let r = net.record();
    assert_eq!(
        (r.reason, r.id.as_str()),
        (Reason::ClusterHandoverFailed, offer.id.as_str())
    );
    no_leak(&mut net);
}

#[test]
fn a_taker_that_ends_an_adopted_call_is_heard_and_records_it_alone() {
    let mut net = node();
    let (inv, _, _) = queued_then_handed_over(&mut net);
    net.send(PEER.peer(), &taken(&inv, 180, "Ringing", ""));
    // Its max wait ran out there: 480, recorded there with a callback.
    net.send(
        PEER.peer(),
        &taken(&inv, 480, "Temporarily Unavailable", ""),
    );
    net.request(PEER.peer(), Method::Ack);
    net.response(net.caller, 480);
    no_leak(&mut net);
}

#[test]
fn a_taker_gone_silent_after_adopting_is_given_up_and_the_call_recorded_here() {
    let mut net = node();
    let (inv, _, offer) = queued_then_handed_over(&mut net);
    net.send(PEER.peer(), &taken(&inv, 180, "Ringing", ""));
    net.advance(std::time::Duration::from_secs(121));
    net.response(net.caller, 503);
    let r = net.record();
    assert_eq!(
        (r.reason, r.id.as_str()),
        (Reason::ClusterHandoverFailed, offer.id.as_str())
    );
}

#[test]
fn the_taker_echoes_the_adopted_id_in_its_answers() {
    let mut net = node();
    let claim = format!(
        "id=peer0001-4;offered={};line=12345;queue=agents",
        WALL_MS - 1000
    );
    net.send(PEER.peer(), &handover_invite(PEER.addr, "h4", &claim));
    let ringing = net.response(PEER.peer(), 180);
    assert_eq!(
        ringing.header("X-Hotline-Handover-Accepted"),
        Some("peer0001-4")
    );
    // An ordinary caller's answers carry no such header.
    net.send(net.caller, &caller_invite());
    let own = net.response(net.caller, 180);
    assert_eq!(own.header("X-Hotline-Handover-Accepted"), None);
}

#[test]
fn attacker_with_a_cluster_secret_a_claim_from_a_peers_address_must_be_signed() {
    let key = b"a-cluster-secret-of-the-province".to_vec();
    let mut net = plan_net(crate::call::CoreConfig {
        max_calls: 10,
        clustered: true,
        cluster_secret: Some(key.clone()),
        ..Default::default()
    });
    net.core.set_wall_clock(net.now, WALL_MS);
    net.core.set_peers([PEER.peer().addr].into_iter().collect());
    // Forged from the peer's address (UDP is easy to spoof), unsigned.
    let forged = format!(
        "id=peer0001-7;offered={};line=12345;queue=agents",
        WALL_MS - 3_600_000
    );
    net.send(PEER.peer(), &handover_invite(PEER.addr, "f1", &forged));
    // Not adopted: an ordinary call from an address that is no trunk, which
    // the dialplan refuses; no work order, no place in the queue.
    net.response(PEER.peer(), 403);
    assert!(net.core.poll_offer().is_none());
    // Signed by the real peer: adopted.
    let claim = super::super::handover::Claim::parse(&format!(
        "id=peer0001-8;offered={};line=12345;queue=agents",
        WALL_MS - 60_000
    ))
    .unwrap()
    .to_signed_header(Some(&key));
    net.send(PEER.peer(), &handover_invite(PEER.addr, "s1", &claim));
    let r = net.response(PEER.peer(), 180);
    assert_eq!(r.header("X-Hotline-Handover-Accepted"), Some("peer0001-8"));
}

#[test]
fn a_taker_that_is_itself_stopping_refuses_without_a_record_of_its_own() {
    let mut net = node();
    net.core.step_down(net.now, Serving::Draining);
    let claim = format!(
        "id=peer0001-5;offered={};line=12345;queue=agents",
        WALL_MS - 1000
    );
    net.send(PEER.peer(), &handover_invite(PEER.addr, "h5", &claim));
    net.response(PEER.peer(), 503);
    assert!(
        net.core.poll_record().is_none(),
        "the handing node records the call, not this one"
    );
}
