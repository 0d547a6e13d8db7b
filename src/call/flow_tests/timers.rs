//! Each call timer's expiry, one flow each: the ring timeout (408 and CANCEL),
//! the 64·T1 guard after a CANCEL the callee never answers, the maximum
//! duration, the repeated provisional of a pending INVITE, and the guard of a
//! line prompt whose end the relay never reports. (The ACD's ring timeout is in
//! `orphan.rs`, a parallel line's ring time in `parallel.rs`, the survey's
//! timers in `survey.rs`.)

use std::time::Duration;

use super::support::*;
use crate::call::tests::*;
use crate::call::{CoreConfig, QueuedAudio, Reason};
use crate::cdr::EventKind;
use crate::media::command::MediaCommand;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method};

fn direct(ring_timeout: u64, max_duration: u64) -> Net {
    direct_net(CoreConfig {
        max_calls: 10,
        ring_timeout: Duration::from_secs(ring_timeout),
        max_duration: Duration::from_secs(max_duration),
        ..Default::default()
    })
}

#[test]
fn the_ring_timeout_answers_the_caller_408_and_cancels_the_callee() {
    let mut net = direct(30, 3600);
    let (b_inv, _) = ringing(&mut net);
    net.advance(Duration::from_millis(29_900));
    net.none_to(net.caller, "408", is_code(408));
    net.advance(Duration::from_millis(200));
    net.response(net.caller, 408);
    let cancel = net.request(net.callee, Method::Cancel);
    net.send(net.callee, &callee_reply(&cancel, 200, "OK", &[], ""));
    net.send(
        net.callee,
        &callee_reply(&b_inv, 487, "Request Terminated", &[], ""),
    );
    net.request(net.callee, Method::Ack);
    let r = net.record();
    assert_eq!((r.reason, r.final_code), (Reason::CalleeNoAnswer, 408));
    assert!(has_event(
        &r,
        EventKind::GatewayEnded,
        "leg.callee_no_answer"
    ));
    no_leak(&mut net);
}

#[test]
fn the_64_t1_guard_ends_a_call_whose_callee_never_answers_the_cancel() {
    let mut net = direct(30, 3600);
    ringing(&mut net);
    net.advance(Duration::from_secs(30));
    net.response(net.caller, 408);
    net.request(net.callee, Method::Cancel);
    // The callee answers neither the CANCEL nor the INVITE.
    net.advance(Duration::from_millis(31_900));
    assert_eq!(net.core.active_calls(), 1, "waiting for the INVITE's final");
    assert!(net.core.poll_record().is_none());
    net.advance(Duration::from_millis(200));
    let r = net.record();
    assert_eq!((r.reason, r.final_code), (Reason::CalleeNoAnswer, 408));
    // The callee's INVITE transaction, still Proceeding, is not the call's to
    // end: today the transaction layer keeps it until Timer C (3 min after the
    // 180), not 64·T1 after the CANCEL as RFC 3261 §9.1 suggests. Bounded either way.
    no_leak_within(
        &mut net,
        crate::sip::transaction::timer::TimerConfig::TIMER_C,
    );
}

#[test]
fn the_maximum_duration_hangs_up_both_legs() {
    let mut net = direct(30, 120);
    let (_b_inv, _gw_tag) = answered(&mut net);
    net.advance(Duration::from_millis(119_900));
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    net.advance(Duration::from_millis(200));
    let bye_a = net.request(net.caller, Method::Bye);
    let bye_b = net.request(net.callee, Method::Bye);
    net.send(
        net.caller,
        &response_to(&bye_a, 200, "OK", None).finish_empty(),
    );
    assert_eq!(net.core.active_calls(), 1, "until both BYEs are answered");
    net.send(net.callee, &callee_reply(&bye_b, 200, "OK", &[], ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::MaxDuration);
    assert_eq!(r.final_code, 200);
    assert!(r.answered_at.is_some());
    no_leak(&mut net);
}

#[test]
fn a_pending_invite_has_its_provisional_repeated_every_50_s() {
    // Queued with no agent logged in: the caller's INVITE stays pending.
    let mut net = flow_net(None);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 180);
    for round in 1..=3 {
        net.advance(Duration::from_millis(49_900));
        net.none_to(net.caller, "180 before 50 s", is_code(180));
        net.advance(Duration::from_millis(100));
        let again = net.response(net.caller, 180);
        assert_eq!(again.cseq(), Some((1, Method::Invite)), "round {round}");
        assert_eq!(count(&net, net.caller, is_code(180)), 0, "once per round");
    }
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerCancelled);
    assert_eq!(r.queue.as_deref(), Some("agents"));
    no_leak(&mut net);
}

#[test]
fn a_line_prompt_whose_end_the_relay_never_reports_still_queues_the_caller() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    A1.register(&mut net);
    net.send(net.caller, &invite_to("12315"));
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let cmds = commands(&mut net);
    assert!(played(&cmds, "greeting").is_some(), "the line's prompt");
    let holds = |cmds: &[MediaCommand]| {
        cmds.iter()
            .any(|c| matches!(c, MediaCommand::Play { playlist, .. } if playlist.hold.is_some()))
    };
    assert!(!holds(&cmds), "no hold music during the prompt");
    // The prompt lasts 2 s; the guard allows 2 s more.
    net.advance(Duration::from_millis(3900));
    net.none_to(
        A1.peer(),
        "INVITE during the prompt",
        is_method(Method::Invite),
    );
    net.advance(Duration::from_millis(200));
    assert!(holds(&commands(&mut net)), "hold music once queued");
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Line"), Some("12315"));
    net.send(A1.peer(), &A1.reply(&inv, 180, "Ringing", ""));
    // The caller hangs up while the agent rings.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let cancel = net.request(A1.peer(), Method::Cancel);
    net.send(A1.peer(), &A1.reply(&cancel, 200, "OK", ""));
    net.send(A1.peer(), &A1.reply(&inv, 487, "Request Terminated", ""));
    net.request(A1.peer(), Method::Ack);
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerCancelled);
    assert!(r.answered_at.is_none());
    assert_eq!(agent_state(&net, "1001"), "ready");
    no_leak(&mut net);
}
