//! Callbacks dialled through the API (third-party call control): the agent's
//! phone rings first; when it answers, the citizen is called over the outbound
//! trunk as for a callback from the softphone, and the attempt is recorded.
//! An agent who does not answer costs the citizen nothing; a busy citizen is
//! an attempt; the API refuses what it cannot do without dialling anything.

use super::callback::{D1, OUT, SBC};
use super::support::*;
use crate::call::api::ApiError;
use crate::call::tests::*;
use crate::cdr::{CallbackEvent, CallbackResult};
use crate::media::command::MediaCommand;
use crate::sip::message::{Headers, Method, Request};

/// The flow plan with the outbound trunk and media; 13800138000 owed a
/// callback for missed call `missed-1`; agent 1001 registered at its desk.
fn net() -> Net {
    let mut net = flow_net_media_with(OUT);
    net.core
        .set_callbacks(vec![("13800138000".into(), "missed-1".into())]);
    D1.register(&mut net);
    net
}

/// The API dials missed-1 with agent 1001: the gateway's INVITE to its phone.
fn agent_rung(net: &mut Net) -> Request {
    let now = net.now;
    let v = net
        .core
        .dial_callback_api(now, "missed-1", "1001")
        .expect("dialled");
    assert_eq!(v["state"], "ringing_agent");
    net.collect();
    let inv = net.request(D1.peer(), Method::Invite);
    assert_eq!(inv.header("X-Hotline-Callback"), Some("missed-1"));
    assert_eq!(inv.header("X-Hotline-Caller"), Some("13800138000"));
    assert!(
        String::from_utf8_lossy(&inv.body).contains("PCMA/8000"),
        "the gateway's own offer"
    );
    net.none_to(
        SBC.peer(),
        "the citizen's INVITE",
        is_method(Method::Invite),
    );
    inv
}

#[test]
fn the_agents_phone_rings_first_then_the_citizen_and_the_attempt_is_recorded() {
    let mut net = net();
    let inv = agent_rung(&mut net);
    net.send(D1.peer(), &D1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(D1.peer(), Method::Ack);
    let out = net.request(SBC.peer(), Method::Invite);
    assert_eq!(&*out.uri, "sip:13800138000@127.0.0.1:5095");
    assert!(out.header("From").unwrap().contains("<sip:12345@"));
    assert!(
        out.header("P-Asserted-Identity")
            .unwrap()
            .contains("<sip:12345@")
    );
    let offer = String::from_utf8_lossy(&out.body).to_string();
    assert!(
        offer.contains("PCMA/8000") && !offer.contains("PCMU/8000"),
        "the law the agent chose: {offer}"
    );
    net.send(SBC.peer(), &SBC.reply(&out, 200, "OK", &agent_sdp(7000)));
    net.request(SBC.peer(), Method::Ack);
    assert!(
        commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::Bridge { .. }))
    );
    // The agent hangs up: the citizen gets BYE.
    net.send(
        D1.peer(),
        &D1.at.request(&inv, "BYE", 1, "z9hG4bKd1bye", &[]),
    );
    net.response(D1.peer(), 200);
    let bye = net.request(SBC.peer(), Method::Bye);
    net.send(SBC.peer(), &SBC.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.line, None, "offered to nobody");
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert!(r.answered_at.is_some());
    let ended = std::iter::from_fn(|| net.core.poll_callback())
        .find_map(|e| match e {
            CallbackEvent::Ended(a) => Some(a),
            _ => None,
        })
        .expect("the attempt ended");
    assert_eq!(ended.result, CallbackResult::Answered);
    assert_eq!(
        (ended.missed.as_str(), ended.agent.as_str()),
        ("missed-1", "1001")
    );
    // Called back: the API has nothing left to dial.
    let now = net.now;
    let e = net
        .core
        .dial_callback_api(now, "missed-1", "1001")
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Party("no_pending_callback", _)),
        "{e:?}"
    );
    no_leak(&mut net);
}

#[test]
fn an_agent_who_does_not_answer_costs_the_citizen_nothing() {
    let mut net = net();
    let inv = agent_rung(&mut net);
    net.send(D1.peer(), &D1.reply(&inv, 486, "Busy Here", ""));
    net.request(D1.peer(), Method::Ack);
    net.none_to(
        SBC.peer(),
        "the citizen's INVITE",
        is_method(Method::Invite),
    );
    let r = net.record();
    assert_eq!(r.line, None);
    assert!(
        std::iter::from_fn(|| net.core.poll_callback())
            .next()
            .is_none(),
        "no attempt was made"
    );
    // The ring timeout: the agent's phone is cancelled, the citizen never rung.
    let inv = agent_rung(&mut net);
    net.send(D1.peer(), &D1.reply(&inv, 180, "Ringing", ""));
    net.advance(std::time::Duration::from_secs(61));
    let cancel = net.request(D1.peer(), Method::Cancel);
    net.send(D1.peer(), &D1.reply(&cancel, 200, "OK", ""));
    net.send(D1.peer(), &D1.reply(&inv, 487, "Request Terminated", ""));
    net.none_to(
        SBC.peer(),
        "the citizen's INVITE",
        is_method(Method::Invite),
    );
    net.record();
    // The agent answers just as the gateway cancels: released, not connected.
    let inv = agent_rung(&mut net);
    net.send(D1.peer(), &D1.reply(&inv, 180, "Ringing", ""));
    net.advance(std::time::Duration::from_secs(61));
    let cancel = net.request(D1.peer(), Method::Cancel);
    net.send(D1.peer(), &D1.reply(&cancel, 200, "OK", ""));
    net.send(D1.peer(), &D1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(D1.peer(), Method::Ack);
    let bye = net.request(D1.peer(), Method::Bye);
    net.send(D1.peer(), &D1.reply(&bye, 200, "OK", ""));
    net.none_to(
        SBC.peer(),
        "the citizen's INVITE",
        is_method(Method::Invite),
    );
    assert_eq!(net.record().reason, crate::call::Reason::CalleeNoAnswer);
    no_leak(&mut net);
}

#[test]
fn a_busy_citizen_is_an_attempt_and_the_agent_hears_so_by_bye() {
    let mut net = net();
    let inv = agent_rung(&mut net);
    net.send(D1.peer(), &D1.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(D1.peer(), Method::Ack);
    let out = net.request(SBC.peer(), Method::Invite);
    net.send(SBC.peer(), &SBC.reply(&out, 486, "Busy Here", ""));
    net.request(SBC.peer(), Method::Ack);
    let bye = net.request(D1.peer(), Method::Bye);
    net.send(D1.peer(), &D1.reply(&bye, 200, "OK", ""));
    net.record();
    let ended = std::iter::from_fn(|| net.core.poll_callback())
        .find_map(|e| match e {
            CallbackEvent::Ended(a) => Some(a),
            _ => None,
        })
        .expect("the attempt ended");
    assert_eq!(ended.result, CallbackResult::Busy);
    no_leak(&mut net);
}

#[test]
fn the_api_refuses_what_it_cannot_dial_and_nothing_goes_out() {
    let mut net = net();
    let now = net.now;
    let e = net
        .core
        .dial_callback_api(now, "missed-9", "1001")
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Party("no_pending_callback", _)),
        "{e:?}"
    );
    let e = net
        .core
        .dial_callback_api(now, "missed-1", "nobody")
        .unwrap_err();
    assert!(matches!(e, ApiError::UnknownAgent(_)), "{e:?}");
    // Agent 1002 exists but has no phone registered.
    let e = net
        .core
        .dial_callback_api(now, "missed-1", "1002")
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Party("agent_not_registered", _)),
        "{e:?}"
    );
    net.collect();
    net.none_to(SBC.peer(), "INVITE", is_method(Method::Invite));
    net.none_to(D1.peer(), "INVITE", is_method(Method::Invite));
    // A number the trunk's patterns do not allow, though owed a callback.
    net.core
        .set_callbacks(vec![("0085212345678".into(), "missed-2".into())]);
    let e = net
        .core
        .dial_callback_api(now, "missed-2", "1001")
        .unwrap_err();
    assert!(matches!(e, ApiError::Party("not_allowed", _)), "{e:?}");
    // Without media the gateway has no SDP of its own to offer the agent.
    let mut plain = flow_net_with(OUT);
    plain
        .core
        .set_callbacks(vec![("13800138000".into(), "missed-1".into())]);
    D1.register(&mut plain);
    let now = plain.now;
    let e = plain
        .core
        .dial_callback_api(now, "missed-1", "1001")
        .unwrap_err();
    assert!(matches!(e, ApiError::Party("no_media", _)), "{e:?}");
}
