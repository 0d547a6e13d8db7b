//! Calling citizens back (漏接回拨): an agent dials a number owed a callback
//! and the call goes out over the outbound trunk, presenting the hotline's
//! number; its attempt is reported with its result. Anything else an agent
//! dials is refused and nothing leaves (the attacker tests: toll fraud).

use super::support::*;
use crate::call::Reason;
use crate::call::tests::*;
use crate::cdr::{CallbackEvent, CallbackResult};
use crate::sip::message::{Headers, Method};

/// The carrier's SBC for calls out.
pub(super) const SBC: Party = Party {
    addr: "127.0.0.1:5095",
    tag: "sb",
};

/// The flow plan's agents, at desks on an office network (no trunk's).
pub(super) const D1: Agent = Agent {
    id: "1001",
    password: "pw-1001-secret",
    at: Party {
        addr: "198.51.100.21:5060",
        tag: "d1",
    },
};
pub(super) const D2: Agent = Agent {
    id: "1002",
    password: "pw-1002-secret",
    at: Party {
        addr: "198.51.100.22:5060",
        tag: "d2",
    },
};

pub(super) const OUT: &str = r#"
[[trunk]]
name = "out"
kind = "outbound"
target = "sip:127.0.0.1:5095"
caller_id = "12345"
allow = ["1XXXXXXXXXX", "0351XXXXXXX"]
max_concurrent = 2
cps = 5
"#;

/// An INVITE from agent `a`'s phone to `number`, with credentials when given.
pub(super) fn agent_invite(a: &Agent, number: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |v| format!("Authorization: {v}\r\n"));
    format!(
        "INVITE sip:{number}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKai{number}{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{id}@127.0.0.1>;tag=ai{cseq}\r\nTo: <sip:{number}@127.0.0.1>\r\n\
Call-ID: dial-{number}-{cseq}@{addr}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{id}@{addr}>\r\n{auth}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len(),
        addr = a.at.addr,
        id = a.id,
    )
    .into_bytes()
}

/// Agent `a` dials `number`: challenged, then with digest. Returns the code
/// of the first response past 100 to the INVITE with credentials (100 when
/// none yet: the call is going out).
fn dial(net: &mut Net, a: &Agent, number: &str, cseq: u32) -> u16 {
    net.send(a.peer(), &agent_invite(a, number, cseq, None));
    let challenge = net.response(a.peer(), 401);
    let auth = a.digest_nc(
        &challenge,
        "INVITE",
        &format!("sip:{number}@127.0.0.1"),
        cseq,
    );
    net.send(a.peer(), &agent_invite(a, number, cseq + 1, Some(&auth)));
    net.collect();
    net.inbox
        .iter()
        .filter(|(p, _)| *p == a.peer())
        .find_map(|(_, m)| match m {
            crate::sip::message::Message::Response(r)
                if r.code > 100 && r.cseq().is_some_and(|(n, _)| n == cseq + 1) =>
            {
                Some(r.code)
            }
            _ => None,
        })
        .unwrap_or(100)
}

#[test]
fn an_agent_calls_a_citizen_back_over_the_outbound_trunk_and_the_attempt_is_reported() {
    let mut net = flow_net_with(OUT);
    net.core
        .set_callbacks(vec![("13800138000".into(), "missed-1".into())]);
    D1.register(&mut net);
    net.send(D1.peer(), &agent_invite(&D1, "13800138000", 1, None));
    let challenge = net.response(D1.peer(), 401);
    let auth = D1.digest(&challenge, "INVITE", "sip:13800138000@127.0.0.1");
    net.send(D1.peer(), &agent_invite(&D1, "13800138000", 2, Some(&auth)));
    let out = net.request(SBC.peer(), Method::Invite);
    assert_eq!(&*out.uri, "sip:13800138000@127.0.0.1:5095");
    assert!(
        out.header("From").unwrap().contains("<sip:12345@"),
        "the hotline's number"
    );
    assert!(
        out.header("P-Asserted-Identity")
            .unwrap()
            .contains("<sip:12345@")
    );
    // The citizen answers; the agent talks, then hangs up.
    net.send(SBC.peer(), &SBC.reply(&out, 200, "OK", SDP));
    let ok = net.response(D1.peer(), 200);
    let ack = String::from_utf8(agent_invite(&D1, "13800138000", 2, None))
        .unwrap()
        .replace(
            "INVITE sip:13800138000@127.0.0.1",
            "ACK sip:13800138000@127.0.0.1",
        )
        .replace("CSeq: 2 INVITE", "CSeq: 2 ACK")
        .replace(
            "To: <sip:13800138000@127.0.0.1>",
            &format!("To: {}", ok.header("To").unwrap()),
        )
        .replace("branch=z9hG4bKai138001380002", "branch=z9hG4bKack2");
    net.send(D1.peer(), ack.as_bytes());
    net.request(SBC.peer(), Method::Ack);
    let bye = ack
        .replace("ACK sip:", "BYE sip:")
        .replace("CSeq: 2 ACK", "CSeq: 3 BYE")
        .replace("branch=z9hG4bKack2", "branch=z9hG4bKbye3");
    net.send(D1.peer(), bye.as_bytes());
    net.response(D1.peer(), 200);
    let bye = net.request(SBC.peer(), Method::Bye);
    net.send(SBC.peer(), &SBC.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.line, None, "offered to nobody: not in the answer rate");
    assert_eq!(r.trunk.as_deref(), Some("out"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert!(r.to_cdr().offered_at_ms.is_none());
    let events: Vec<CallbackEvent> = std::iter::from_fn(|| net.core.poll_callback()).collect();
    assert!(
        matches!(&events[0], CallbackEvent::Started { missed, .. } if missed == "missed-1"),
        "{events:?}"
    );
    let CallbackEvent::Ended(a) = &events[1] else {
        panic!("{events:?}");
    };
    assert_eq!(
        (
            a.missed.as_str(),
            a.agent.as_str(),
            a.number.as_str(),
            a.result
        ),
        ("missed-1", "1001", "13800138000", CallbackResult::Answered)
    );
    assert_eq!(a.id, r.id, "the attempt is its own call record");
    // Called back: off the list.
    net.inbox.clear();
    assert_eq!(dial(&mut net, &D1, "13800138000", 10), 403);
    net.none_to(SBC.peer(), "a second call out", is_method(Method::Invite));
}

#[test]
fn a_busy_citizen_is_an_attempt_and_the_number_stays_owed() {
    let mut net = flow_net_with(OUT);
    net.core
        .set_callbacks(vec![("13800138000".into(), "missed-1".into())]);
    D1.register(&mut net);
    assert_eq!(dial(&mut net, &D1, "13800138000", 1), 100);
    let out = net.request(SBC.peer(), Method::Invite);
    net.send(SBC.peer(), &SBC.reply(&out, 486, "Busy Here", ""));
    net.request(SBC.peer(), Method::Ack);
    net.response(D1.peer(), 486);
    let r = net.record();
    let ended = std::iter::from_fn(|| net.core.poll_callback())
        .find_map(|e| match e {
            CallbackEvent::Ended(a) => Some(a),
            _ => None,
        })
        .expect("the attempt ended");
    assert_eq!(ended.result, CallbackResult::Busy);
    assert_eq!(ended.id, r.id);
    net.inbox.clear();
    // Still owed: the agent may try again.
    assert_eq!(dial(&mut net, &D1, "13800138000", 10), 100);
    net.request(SBC.peer(), Method::Invite);
}

#[test]
fn attacker_an_agent_dials_out_anything_else_and_nothing_leaves() {
    let mut net = flow_net_with(OUT);
    // Owed a callback, but the trunk's patterns do not allow it (a premium
    // or foreign number slipped into a record).
    net.core.set_callbacks(vec![
        ("13800138000".into(), "missed-1".into()),
        ("0085212345678".into(), "missed-2".into()),
    ]);
    D1.register(&mut net);
    for (number, cseq) in [
        ("16900000000", 1),
        ("0085212345678", 3),
        ("119", 5),
        ("00", 7),
    ] {
        assert_eq!(dial(&mut net, &D1, number, cseq), 403, "{number}");
        let r = net.record();
        assert_eq!(r.reason, Reason::CallbackNotListed, "{number}");
        net.inbox.clear();
    }
    net.none_to(SBC.peer(), "any INVITE out", is_method(Method::Invite));
    // A transfer-directory number is a consultation: it goes to the
    // directory's target (110's own trunk), never out of the outbound trunk.
    assert_eq!(dial(&mut net, &D1, "110", 11), 100);
    net.request(POLICE.peer(), Method::Invite);
    net.none_to(SBC.peer(), "any INVITE out", is_method(Method::Invite));
    // A stranger (no agent) dialling the owed number: the dialplan's answer,
    // never the trunk.
    let stranger = peer("192.0.2.77:5060");
    let text = String::from_utf8(agent_invite(&D1, "13800138000", 9, None))
        .unwrap()
        .replace(D1.at.addr, "192.0.2.77:5060");
    net.send(stranger, text.as_bytes());
    net.collect();
    net.none_to(
        SBC.peer(),
        "an INVITE for a stranger",
        is_method(Method::Invite),
    );
    // Nor is a stranger's call to 110 a consultation: only an agent's is.
    let text = String::from_utf8(agent_invite(&D1, "110", 13, None))
        .unwrap()
        .replace(D1.at.addr, "192.0.2.77:5060");
    net.send(stranger, text.as_bytes());
    net.none_to(POLICE.peer(), "an INVITE to 110", is_method(Method::Invite));
    assert!(net.core.poll_callback().is_none(), "no attempt started");
}

#[test]
fn the_outbound_trunk_holds_its_calls_at_once() {
    let mut net = flow_net_with(OUT);
    net.core.set_callbacks(vec![
        ("13800000001".into(), "m1".into()),
        ("13800000002".into(), "m2".into()),
        ("13800000003".into(), "m3".into()),
    ]);
    D1.register(&mut net);
    D2.register(&mut net);
    assert_eq!(dial(&mut net, &D1, "13800000001", 1), 100);
    assert_eq!(dial(&mut net, &D2, "13800000002", 1), 100);
    net.inbox.clear();
    // max_concurrent = 2: the third waits (503, Retry-After).
    net.advance(std::time::Duration::from_secs(2));
    let code = dial(&mut net, &D1, "13800000003", 3);
    assert_eq!(code, 503, "{:#?}", net.summary());
    let busy = std::iter::from_fn(|| net.core.poll_record())
        .find(|r| r.reason == Reason::CallbackTrunkBusy);
    assert!(busy.is_some());
}

#[test]
fn without_an_outbound_trunk_an_agent_dials_nothing_out() {
    let mut net = flow_net(None);
    net.core
        .set_callbacks(vec![("13800138000".into(), "missed-1".into())]);
    D1.register(&mut net);
    assert_eq!(dial(&mut net, &D1, "13800138000", 1), 403);
    assert_eq!(net.record().reason, Reason::CallbackNoTrunk);
}

#[test]
fn a_number_owed_in_international_form_is_called_back_as_dialled_nationally() {
    let mut net = flow_net_with(OUT);
    // A trusted carrier asserted +86…: the agent dials the national number.
    assert_eq!(
        crate::call::callback::normalized("+8613800138000"),
        "13800138000"
    );
    net.core
        .set_callbacks(vec![("+8613800138000".into(), "missed-9".into())]);
    D1.register(&mut net);
    let code = dial(&mut net, &D1, "13800138000", 1);
    assert_eq!(code, 100, "{:?}", net.core.poll_record().map(|r| r.reason));
    let out = net.request(SBC.peer(), Method::Invite);
    assert_eq!(&*out.uri, "sip:13800138000@127.0.0.1:5095");
    assert!(
        !out.header("From").unwrap().contains('"'),
        "no agent's name shown to the citizen"
    );
}
