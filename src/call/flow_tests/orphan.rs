//! The orphan 200/CANCEL race: the ACD's ring timeout gives up on an agent, and
//! that agent's 200 arrives afterwards. The agent gets ACK and BYE, never the
//! caller; the call goes to the next agent or waits for the same one again.

use std::time::Duration;

use super::support::*;
use crate::call::Reason;
use crate::call::tests::*;
use crate::sip::message::{Headers, Method};

/// The queue's ring timeout (`ring_timeout_s` in the flow plan).
const RING: Duration = Duration::from_secs(15);

/// Both agents logged in, 1001 idle the longest (it is rung first).
fn two_agents(net: &mut Net) {
    A1.register(net);
    net.advance(Duration::from_secs(1));
    A2.register(net);
}

#[test]
fn an_agent_answering_after_its_ring_timed_out_gets_ack_and_bye_and_the_next_agent_takes_the_call()
{
    let mut net = flow_net(None);
    two_agents(&mut net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 180).to_tag().unwrap();
    let first = A1.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&first, 180, "Ringing", ""));
    net.advance(RING);
    let cancel = net.request(A1.peer(), Method::Cancel);
    let second = A2.invite(&mut net);
    // 1001's answer crosses the CANCEL.
    net.send(A1.peer(), &A1.reply(&first, 200, "OK", SDP));
    net.request(A1.peer(), Method::Ack);
    let bye = net.request(A1.peer(), Method::Bye);
    assert_eq!(bye.call_id(), first.call_id());
    net.send(A1.peer(), &A1.reply(&cancel, 200, "OK", ""));
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    net.none_to(net.caller, "the orphan's 200", is_code(200));
    assert_eq!(net.core.active_calls(), 1);
    assert_eq!(agent_state(&net, "1001"), "ready", "a miss, then ready");
    assert_eq!(agent_state(&net, "1002"), "ringing");
    // 1002 answers: the caller gets its 200.
    net.send(A2.peer(), &A2.reply(&second, 200, "OK", SDP));
    net.response(net.caller, 200);
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(A2.peer(), Method::Ack);
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A2.peer(), Method::Bye);
    assert_eq!(bye.call_id(), second.call_id());
    net.send(A2.peer(), &A2.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.agent.as_deref(), Some("1002"));
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("12345")
    );
    assert_eq!(r.queue.as_deref(), Some("agents"));
    no_leak(&mut net);
}

#[test]
fn an_agent_that_never_rang_and_answers_after_its_ring_timed_out_gets_ack_and_bye_without_cancel() {
    let mut net = flow_net(None);
    two_agents(&mut net);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 180);
    let first = A1.invite(&mut net);
    net.advance(RING);
    // No provisional from 1001: there is nothing to CANCEL yet.
    net.none_to(A1.peer(), "CANCEL", is_method(Method::Cancel));
    let second = A2.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&first, 200, "OK", SDP));
    net.request(A1.peer(), Method::Ack);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    net.none_to(net.caller, "the orphan's 200", is_code(200));
    // The caller gives up while 1002 rings.
    net.send(A2.peer(), &A2.reply(&second, 180, "Ringing", ""));
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    let cancel = net.request(A2.peer(), Method::Cancel);
    net.send(A2.peer(), &A2.reply(&cancel, 200, "OK", ""));
    net.send(A2.peer(), &A2.reply(&second, 487, "Request Terminated", ""));
    net.request(A2.peer(), Method::Ack);
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerCancelled);
    assert_eq!(r.final_code, 487);
    assert_eq!(r.queue.as_deref(), Some("agents"));
    assert!(r.answered_at.is_none());
    assert_eq!(agent_state(&net, "1002"), "ready");
    no_leak(&mut net);
}

#[test]
fn an_orphan_answer_with_no_other_agent_leaves_the_caller_queued_for_the_next_round() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 180).to_tag().unwrap();
    let first = A1.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&first, 180, "Ringing", ""));
    net.advance(RING);
    let cancel = net.request(A1.peer(), Method::Cancel);
    net.send(A1.peer(), &A1.reply(&first, 200, "OK", SDP));
    net.request(A1.peer(), Method::Ack);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&cancel, 200, "OK", ""));
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    net.none_to(
        net.caller,
        "a final response",
        |m| matches!(m, crate::sip::message::Message::Response(r) if r.code >= 200),
    );
    assert_eq!(net.core.active_calls(), 1, "the caller still waits");
    // The ACD's next round rings the same agent again, on a new dialog.
    net.advance(Duration::from_secs(3));
    let again = A1.invite(&mut net);
    assert_ne!(again.call_id(), first.call_id());
    net.send(A1.peer(), &A1.reply(&again, 200, "OK", SDP));
    net.response(net.caller, 200);
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
    assert_eq!(bye.call_id(), again.call_id());
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.agent.as_deref(), Some("1001"));
    no_leak(&mut net);
}
