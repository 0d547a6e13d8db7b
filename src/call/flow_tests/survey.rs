//! The satisfaction survey: the agent of a queued, media-anchored call hangs up
//! first; the caller hears the prompt, rates 1 to 3 by SIP INFO or RFC 4733
//! (or presses nothing), hears thanks, and gets BYE. The agent is free as soon
//! as the survey starts.

use std::time::Duration;

use super::support::*;
use crate::call::tests::*;
use crate::call::{QueuedAudio, Reason};
use crate::media::command::{Leg, MediaEvent};
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method};

/// A survey in progress: the relay's session, the caller's dialog tag, and the
/// number of the survey prompt's playlist.
struct Asking {
    session: u64,
    gw_tag: String,
    prompt: u32,
}

/// A queued call answered by agent 1001, who hangs up first.
fn survey_started(net: &mut Net) -> Asking {
    A1.register(net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    let session = session_of(&commands(net));
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let inv = A1.invite(net);
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(A1.peer(), Method::Ack);
    commands(net);
    net.send(
        A1.peer(),
        &A1.at.request(&inv, "BYE", 1, "z9hG4bKa1bye", &[]),
    );
    net.response(A1.peer(), 200);
    let cmds = commands(net);
    let prompt = played(&cmds, "survey").expect("the survey prompt");
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    assert_eq!(agent_state(net, "1001"), "ready", "free during the survey");
    Asking {
        session,
        gw_tag,
        prompt,
    }
}

/// The caller's BYE after the survey, answered; the call's record.
fn caller_gets_bye(net: &mut Net) -> crate::call::FinishedCall {
    let bye = net.request(net.caller, Method::Bye);
    net.send(
        net.caller,
        &response_to(&bye, 200, "OK", None).finish_empty(),
    );
    net.record()
}

/// Thanks, then BYE when the relay reports the thanks played out.
fn thanked_then_bye(net: &mut Net, s: &Asking) -> crate::call::FinishedCall {
    let thanks = played(&commands(net), "thanks").expect("the thanks prompt");
    net.none_to(net.caller, "BYE during the thanks", is_method(Method::Bye));
    net.core.handle_media(
        net.now,
        MediaEvent::PlayDone {
            session: s.session,
            play: thanks,
        },
    );
    net.collect();
    caller_gets_bye(net)
}

#[test]
fn the_caller_rates_the_call_by_sip_info() {
    for rating in ['1', '2', '3'] {
        let mut net = flow_net(Some(QueuedAudio::Answer));
        let s = survey_started(&mut net);
        net.send(net.caller, &caller_info(&s.gw_tag, 2, rating));
        let ok = net.response(net.caller, 200);
        assert_eq!(ok.cseq(), Some((2, Method::Info)));
        let r = thanked_then_bye(&mut net, &s);
        assert_eq!(r.survey, rating.to_digit(10).map(|d| d as u8));
        assert_eq!(r.reason, Reason::CalleeHangup);
        assert_eq!(
            r.answered_by.map(crate::call::AnsweredBy::as_str),
            Some("12345")
        );
        no_leak(&mut net);
    }
}

#[test]
fn the_caller_rates_the_call_by_rfc_4733_and_other_keys_are_ignored() {
    for rating in ['1', '2', '3'] {
        let mut net = flow_net(Some(QueuedAudio::Answer));
        let s = survey_started(&mut net);
        let digit = |net: &mut Net, digit| {
            net.core.handle_media(
                net.now,
                MediaEvent::Digit {
                    session: s.session,
                    leg: Leg::A,
                    digit,
                },
            );
            net.collect();
        };
        digit(&mut net, '9');
        digit(&mut net, '#');
        assert_eq!(played(&commands(&mut net), "thanks"), None, "not a rating");
        digit(&mut net, rating);
        let r = thanked_then_bye(&mut net, &s);
        assert_eq!(r.survey, rating.to_digit(10).map(|d| d as u8));
        assert_eq!(r.reason, Reason::CalleeHangup);
        no_leak(&mut net);
    }
}

#[test]
fn a_survey_without_a_key_ends_with_bye_and_no_rating() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let s = survey_started(&mut net);
    // The prompt (3 s) plays out; the caller has 5 s more to press a key.
    net.advance(Duration::from_secs(3));
    net.core.handle_media(
        net.now,
        MediaEvent::PlayDone {
            session: s.session,
            play: s.prompt,
        },
    );
    net.collect();
    net.advance(Duration::from_millis(4900));
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    net.advance(Duration::from_millis(200));
    // No rating: no thanks either.
    assert_eq!(played(&commands(&mut net), "thanks"), None);
    let r = caller_gets_bye(&mut net);
    assert_eq!(r.survey, None);
    assert_eq!(r.reason, Reason::CalleeHangup);
    no_leak(&mut net);
}

#[test]
fn the_thanks_ends_with_bye_even_when_the_relay_never_reports_it_played() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let s = survey_started(&mut net);
    net.send(net.caller, &caller_info(&s.gw_tag, 2, '2'));
    net.response(net.caller, 200);
    assert!(played(&commands(&mut net), "thanks").is_some());
    // The thanks lasts 1 s; the guard allows 2 s more.
    net.advance(Duration::from_millis(2900));
    net.none_to(net.caller, "BYE", is_method(Method::Bye));
    net.advance(Duration::from_millis(200));
    let r = caller_gets_bye(&mut net);
    assert_eq!(r.survey, Some(2));
    no_leak(&mut net);
}
