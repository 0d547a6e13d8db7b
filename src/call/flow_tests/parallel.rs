//! Parallel answering: a line's legacy seats ring first, and 12345's queue takes
//! the call when they ring too long, are busy, or never answer at all (Timer B);
//! or the legacy seats answer and the queue never hears of the call.

use std::time::Duration;

use super::support::*;
use crate::call::Reason;
use crate::call::tests::*;
use crate::cdr::EventKind;
use crate::sip::message::{Headers, Method, Request};

/// The caller of a parallel line whose legacy seats got the INVITE.
fn legacy_rung(net: &mut Net, line: &str) -> Request {
    net.send(net.caller, &invite_to(line));
    let inv = net.request(LEGACY.peer(), Method::Invite);
    assert_eq!(&*inv.uri, format!("sip:{line}@{}", LEGACY.addr));
    inv
}

/// The queue's agent answers an overflowed call and the caller hangs up.
fn agent_answers_then_caller_hangs_up(net: &mut Net, line: &str) {
    let inv = A1.invite(net);
    assert_eq!(inv.header("X-Hotline-Line"), Some(line));
    assert_eq!(inv.header("X-Hotline-Mode"), Some("parallel"));
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", SDP));
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
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
}

fn assert_overflowed_and_answered(r: &crate::call::FinishedCall) {
    assert_eq!(r.reason, Reason::CallerHangup);
    assert!(r.overflowed);
    assert_eq!(r.mode, Some("parallel"));
    assert_eq!(r.queue.as_deref(), Some("agents"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("12345")
    );
    assert!(
        has_event(r, EventKind::Overflowed, "agents"),
        "{:?}",
        r.events
    );
    assert!(has_event(r, EventKind::Answered, "1001"));
}

#[test]
fn legacy_seats_ringing_past_the_lines_ring_time_overflow_to_12345() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    let legacy = legacy_rung(&mut net, "12333");
    net.send(LEGACY.peer(), &LEGACY.reply(&legacy, 180, "Ringing", ""));
    net.response(net.caller, 180);
    net.advance(Duration::from_secs(19));
    net.none_to(LEGACY.peer(), "CANCEL", is_method(Method::Cancel));
    net.none_to(A1.peer(), "INVITE", is_method(Method::Invite));
    net.advance(Duration::from_secs(1));
    // 20 s: the legacy seats are cancelled, the queue's agent rung.
    let cancel = net.request(LEGACY.peer(), Method::Cancel);
    net.send(LEGACY.peer(), &LEGACY.reply(&cancel, 200, "OK", ""));
    net.send(
        LEGACY.peer(),
        &LEGACY.reply(&legacy, 487, "Request Terminated", ""),
    );
    net.request(LEGACY.peer(), Method::Ack);
    agent_answers_then_caller_hangs_up(&mut net, "12333");
    let r = net.record();
    assert_overflowed_and_answered(&r);
    assert!(has_event(&r, EventKind::Offered, "legacy:12333"));
    // The stub opened when the legacy seats were offered the call, not again.
    one_offer(&mut net, "legacy:12333", &r);
    no_leak(&mut net);
}

#[test]
fn busy_legacy_seats_overflow_to_12345_at_once() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    let legacy = legacy_rung(&mut net, "12333");
    net.send(LEGACY.peer(), &LEGACY.reply(&legacy, 486, "Busy Here", ""));
    net.request(LEGACY.peer(), Method::Ack);
    net.none_to(net.caller, "the legacy's 486", is_code(486));
    net.response(net.caller, 180);
    let inv = A1.invite(&mut net);
    net.send(A1.peer(), &A1.reply(&inv, 180, "Ringing", ""));
    // The caller gives up while the agent rings.
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    let cancel = net.request(A1.peer(), Method::Cancel);
    net.send(A1.peer(), &A1.reply(&cancel, 200, "OK", ""));
    net.send(A1.peer(), &A1.reply(&inv, 487, "Request Terminated", ""));
    net.request(A1.peer(), Method::Ack);
    net.none_to(LEGACY.peer(), "CANCEL", is_method(Method::Cancel));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerCancelled);
    assert!(r.overflowed);
    assert_eq!(r.queue.as_deref(), Some("agents"));
    assert!(r.answered_by.is_none());
    assert!(has_event(&r, EventKind::Overflowed, "agents"));
    no_leak(&mut net);
}

#[test]
fn legacy_seats_that_never_answer_overflow_to_12345_on_timer_b() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    // Ring time 60 s: Timer B (64·T1 = 32 s) comes first.
    legacy_rung(&mut net, "12328");
    net.advance(Duration::from_secs(31));
    net.none_to(A1.peer(), "INVITE", is_method(Method::Invite));
    net.advance(Duration::from_secs(2));
    net.none_to(
        LEGACY.peer(),
        "CANCEL of a finished INVITE",
        is_method(Method::Cancel),
    );
    net.response(net.caller, 180);
    agent_answers_then_caller_hangs_up(&mut net, "12328");
    let r = net.record();
    assert_overflowed_and_answered(&r);
    no_leak(&mut net);
}

#[test]
fn legacy_seats_that_answer_keep_the_call_and_the_queue_never_rings() {
    let mut net = flow_net(None);
    A1.register(&mut net);
    let legacy = legacy_rung(&mut net, "12333");
    net.send(LEGACY.peer(), &LEGACY.reply(&legacy, 180, "Ringing", ""));
    net.response(net.caller, 180);
    net.send(LEGACY.peer(), &LEGACY.reply(&legacy, 200, "OK", SDP));
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(LEGACY.peer(), Method::Ack);
    // Past the ring time: nothing overflows.
    net.advance(Duration::from_secs(25));
    net.none_to(LEGACY.peer(), "CANCEL", is_method(Method::Cancel));
    net.none_to(A1.peer(), "INVITE", is_method(Method::Invite));
    // The legacy seat hangs up.
    net.send(
        LEGACY.peer(),
        &LEGACY.request(&legacy, "BYE", 1, "z9hG4bKlg1", &[]),
    );
    net.response(LEGACY.peer(), 200);
    let bye = net.request(net.caller, Method::Bye);
    net.send(
        net.caller,
        &crate::sip::builder::response_to(&bye, 200, "OK", None).finish_empty(),
    );
    let r = net.record();
    assert_eq!(r.reason, Reason::CalleeHangup);
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("legacy")
    );
    assert!(!r.overflowed);
    assert_eq!(r.queue, None);
    assert!(has_event(&r, EventKind::Answered, "legacy"));
    assert_eq!(agent_state(&net, "1001"), "ready");
    no_leak(&mut net);
}

#[test]
fn a_legacy_seat_hands_its_caller_to_12345_and_an_agent_takes_it_over() {
    let mut net = flow_net(Some(crate::call::QueuedAudio::Answer));
    A1.register(&mut net);
    net.send(net.caller, &invite_to("12333"));
    let leg_inv = net.request(LEGACY.peer(), Method::Invite);
    net.send(
        LEGACY.peer(),
        &LEGACY.reply(&leg_inv, 200, "OK", &agent_sdp(6200)),
    );
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(LEGACY.peer(), Method::Ack);
    let session = session_of(&commands(&mut net));
    // The legacy seat: "this is for 12345".
    let refer = LEGACY.request(
        &leg_inv,
        "REFER",
        2,
        "z9hG4bKlr2",
        &[("Refer-To", "<sip:12345@127.0.0.1:5060>")],
    );
    net.send(LEGACY.peer(), &refer);
    net.response(LEGACY.peer(), 202);
    let notify = net.request(LEGACY.peer(), Method::Notify);
    assert!(String::from_utf8_lossy(&notify.body).contains("200 OK"));
    net.send(LEGACY.peer(), &LEGACY.reply(&notify, 200, "OK", ""));
    let bye = net.request(LEGACY.peer(), Method::Bye);
    net.send(LEGACY.peer(), &LEGACY.reply(&bye, 200, "OK", ""));
    // The caller waits with music for 12345's agent, who is rung at once.
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Queue"), Some("agents"));
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(A1.peer(), Method::Ack);
    assert!(commands(&mut net).contains(&crate::media::command::MediaCommand::Bridge { session }));
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(A1.peer(), Method::Bye);
    net.send(A1.peer(), &A1.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.transferred_to.as_deref(), Some("12345"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert!(has_event(&r, EventKind::TransferredOut, "12345"));
    assert!(
        has_event(&r, EventKind::Answered, "legacy"),
        "served there first"
    );
}

#[test]
fn without_media_a_legacy_seats_transfer_to_12345_is_refused_and_the_call_goes_on() {
    let mut net = flow_net(None);
    net.send(net.caller, &invite_to("12333"));
    let leg_inv = net.request(LEGACY.peer(), Method::Invite);
    net.send(LEGACY.peer(), &LEGACY.reply(&leg_inv, 200, "OK", SDP));
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(LEGACY.peer(), Method::Ack);
    let refer = LEGACY.request(
        &leg_inv,
        "REFER",
        2,
        "z9hG4bKlr2",
        &[("Refer-To", "<sip:12345@127.0.0.1:5060>")],
    );
    net.send(LEGACY.peer(), &refer);
    net.response(LEGACY.peer(), 488);
    net.none_to(LEGACY.peer(), "a BYE", is_method(Method::Bye));
}
