//! Queued ringback: a caller queued for agents who registered with digest,
//! without media (the gateway's own 180) and with it (the gateway answers, or
//! sends early media, and bridges the agent in).

use super::support::*;
use crate::call::tests::*;
use crate::call::{QueuedAudio, Reason};
use crate::cdr::EventKind;
use crate::media::command::MediaCommand;
use crate::sip::message::{Headers, Method};

#[test]
fn a_queued_caller_hears_ringback_until_the_agent_answers_and_the_record_names_both() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    let ringback = net.response(net.caller, 180);
    let gw_tag = ringback.to_tag().unwrap();
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Queue"), Some("agents"));
    assert_eq!(inv.header("X-Hotline-Line"), Some("12345"));
    assert_eq!(inv.header("X-Hotline-Caller"), Some("13800138000"));
    assert_eq!(
        inv.body,
        SDP.as_bytes(),
        "without media the offer is the caller's"
    );
    assert_eq!(agent_state(&net, "1001"), "ringing");
    // The agent's own ringing is not relayed: the caller already hears ringback.
    net.send(A1.peer(), &A1.reply(&inv, 180, "Ringing", ""));
    net.none_to(net.caller, "a second 180", is_code(180));
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", SDP));
    let ok = net.response(net.caller, 200);
    assert_eq!(ok.to_tag().as_deref(), Some(gw_tag.as_str()), "one dialog");
    assert_eq!(ok.body, SDP.as_bytes());
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(A1.peer(), Method::Ack);
    assert_eq!(agent_state(&net, "1001"), "on_call");
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.final_code, 200);
    assert_eq!(r.queue.as_deref(), Some("agents"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("12345")
    );
    assert!(!r.overflowed);
    assert!(r.answered_at.is_some());
    assert!(
        has_event(&r, EventKind::Offered, "agents"),
        "{:?}",
        r.events
    );
    assert!(has_event(&r, EventKind::AgentRinging, "1001"));
    assert!(has_event(&r, EventKind::Answered, "1001"));
    assert!(r.events.iter().any(|e| e.kind == EventKind::Ringback));
    assert_eq!(
        agent_state(&net, "1001"),
        "ready",
        "no wrap-up: ready again"
    );
    one_offer(&mut net, "agents", &r);
    no_leak(&mut net);
}

#[test]
fn a_queued_caller_answered_by_the_gateway_is_bridged_to_the_agent() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
    let cmds = commands(&mut net);
    let session = session_of(&cmds);
    assert!(played(&cmds, "greeting").is_some(), "{cmds:?}");
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let inv = A1.invite(&mut net);
    let offer = String::from_utf8_lossy(&inv.body).to_string();
    assert!(
        offer.contains("c=IN IP4 127.0.0.1") && !offer.contains("192.0.2.10"),
        "the agent is offered the relay: {offer}"
    );
    net.send(A1.peer(), &A1.reply(&inv, 180, "Ringing", ""));
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    // The offer was the gateway's: it acknowledges the agent itself.
    net.request(A1.peer(), Method::Ack);
    net.none_to(net.caller, "a second 200", is_code(200));
    assert!(commands(&mut net).contains(&MediaCommand::Bridge { session }));
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.queue.as_deref(), Some("agents"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("12345")
    );
    assert_eq!(r.survey, None, "the caller hung up first: no survey");
    assert!(r.answered_at.is_some());
    assert!(has_event(&r, EventKind::Answered, "1001"));
    assert!(commands(&mut net).contains(&MediaCommand::Close { session }));
    no_leak(&mut net);
}

#[test]
fn a_queued_caller_on_early_media_gets_the_agents_answer_and_the_agent_its_ack() {
    let mut net = flow_net(Some(QueuedAudio::EarlyMedia));
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    let progress = net.response(net.caller, 183);
    net.none_to(net.caller, "200", is_code(200));
    let inv = A1.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    let ok = net.response(net.caller, 200);
    assert_eq!(ok.body, progress.body, "the 200 repeats the 183's answer");
    let gw_tag = ok.to_tag().unwrap();
    net.none_to(A1.peer(), "ACK before the caller's", is_method(Method::Ack));
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(A1.peer(), Method::Ack);
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.final_code, 200);
    assert_eq!(
        (
            r.queue.as_deref(),
            r.agent.as_deref(),
            r.answered_by.map(crate::call::AnsweredBy::as_str)
        ),
        (Some("agents"), Some("1001"), Some("12345"))
    );
    no_leak(&mut net);
}

#[test]
fn a_caller_reaching_a_queue_nobody_staffs_is_noted_for_7x24_coverage() {
    let mut net = flow_net(None);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 180);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    let r = net.record();
    assert!(
        has_event(&r, EventKind::Unstaffed, "agents"),
        "{:?}",
        r.events
    );
    // With an agent logged in (even one busy or paused), it is not.
    let mut net = flow_net(None);
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 180);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    let r = net.record();
    assert!(r.events.iter().all(|e| e.kind != EventKind::Unstaffed));
}
