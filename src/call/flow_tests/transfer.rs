//! Blind transfer by REFER to the transfer directory: a registered agent proves
//! who it is and the caller moves to 110; a busy target and a silent one are
//! reported to the agent by NOTIFY and the call goes on as it was.

use std::time::Duration;

use super::support::*;
use crate::call::tests::*;
use crate::call::{CoreConfig, Reason};
use crate::cdr::EventKind;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};

/// The callee of `Net::new`'s direct line (it answers with To tag `cb`).
const CALLEE_PHONE: Party = Party {
    addr: "127.0.0.1:5070",
    tag: "cb",
};

/// The agent's REFER to 110 inside its dialog, with credentials when given.
fn refer(agent: &Agent, inv: &Request, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let mut headers = vec![("Refer-To", "<sip:110@127.0.0.1:5060>")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let branch = format!("z9hG4bKref{cseq}");
    agent.at.request(inv, "REFER", cseq, &branch, &headers)
}

/// A NOTIFY's sipfrag and whether it ends the subscription, answered 200.
fn notified(net: &mut Net, to: Party) -> (String, bool) {
    let n = net.request(to.peer(), Method::Notify);
    assert_eq!(n.header("Event"), Some("refer"));
    net.send(to.peer(), &to.reply(&n, 200, "OK", ""));
    let last = n
        .header("Subscription-State")
        .is_some_and(|s| s.starts_with("terminated"));
    (
        String::from_utf8_lossy(&n.body).trim_end().to_string(),
        last,
    )
}

#[test]
fn an_agent_proves_who_it_is_transfers_a_queued_caller_to_110_and_is_freed() {
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
    // A REFER without credentials is challenged, like the agent's REGISTER.
    net.send(A1.peer(), &refer(&A1, &inv, 2, None));
    let challenge = net.response(A1.peer(), 401);
    net.none_to(POLICE.peer(), "INVITE", is_method(Method::Invite));
    let auth = A1.digest(&challenge, "REFER", "sip:gw@127.0.0.1:5060");
    net.send(A1.peer(), &refer(&A1, &inv, 3, Some(&auth)));
    net.response(A1.peer(), 202);
    assert_eq!(
        notified(&mut net, A1.at),
        ("SIP/2.0 100 Trying".into(), false)
    );
    // Without media: a late offer to 110; its offer goes to the caller.
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    assert!(c_inv.body.is_empty(), "late offer");
    assert!(c_inv.header("Referred-By").unwrap().contains("1001"));
    // 110 learns the citizen's number: asserted, and shown.
    assert_eq!(
        c_inv.header("P-Asserted-Identity"),
        Some("<sip:13800138000@127.0.0.1:5060>")
    );
    assert!(c_inv.header("From").unwrap().contains("<sip:13800138000@"));
    net.send(POLICE.peer(), &POLICE.reply(&c_inv, 200, "OK", SDP));
    let re = net.request(net.caller, Method::Invite);
    assert_eq!(re.from_tag().as_deref(), Some(gw_tag.as_str()));
    let ok = response_to(&re, 200, "OK", None).finish(Some("application/sdp"), SDP.as_bytes());
    net.send(net.caller, &ok);
    net.request(net.caller, Method::Ack);
    let c_ack = net.request(POLICE.peer(), Method::Ack);
    assert_eq!(c_ack.body, SDP.as_bytes(), "the caller's answer");
    assert_eq!(notified(&mut net, A1.at), ("SIP/2.0 200 OK".into(), true));
    // Told the transfer succeeded, the agent's phone hangs up itself (RFC
    // 5589): the gateway answers, and sends no BYE of its own.
    // A BYE on that leg with a wrong tag (a stranger guessing) ends nothing.
    let forged = String::from_utf8(A1.at.request(&inv, "BYE", 4, "z9hG4bKfb4", &[]))
        .unwrap()
        .replace(";tag=a1", ";tag=evil");
    net.send(A1.peer(), forged.as_bytes());
    net.response(A1.peer(), 481);
    net.send(A1.peer(), &A1.at.request(&inv, "BYE", 4, "z9hG4bKab4", &[]));
    net.response(A1.peer(), 200);
    net.advance(crate::call::parting::GRACE + Duration::from_millis(10));
    net.none_to(A1.peer(), "the gateway's BYE", is_method(Method::Bye));
    assert_eq!(agent_state(&net, "1001"), "ready", "freed by the transfer");
    // The caller talks to 110 now, and hangs up.
    net.send(
        net.caller,
        &caller_request("BYE", 3, "z9hG4bKbye3", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(POLICE.peer(), Method::Bye);
    assert_eq!(bye.call_id(), c_inv.call_id());
    net.send(POLICE.peer(), &POLICE.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to.as_deref(), Some("110"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(
        r.answered_by.map(crate::call::AnsweredBy::as_str),
        Some("12345")
    );
    assert!(has_event(&r, EventKind::TransferredOut, "110"));
    assert_eq!(r.trunk.as_deref(), Some("t"), "it came in over the carrier");
    assert_eq!(r.to_cdr().trunk.as_deref(), Some("t"));
    no_leak(&mut net);
}

/// A direct call answered by the callee, who REFERs it to 110 (a static seat
/// is trusted by network: no digest); the 110 INVITE it caused.
fn referred(net: &mut Net) -> (Request, String, Request) {
    let (b_inv, gw_tag) = answered(net);
    net.send(net.callee, &callee_refer(&b_inv, "110", 2));
    net.response(net.callee, 202);
    assert_eq!(
        notified(net, CALLEE_PHONE),
        ("SIP/2.0 100 Trying".into(), false)
    );
    let c_inv = net.request(POLICE.peer(), Method::Invite);
    (b_inv, gw_tag, c_inv)
}

/// The call goes on as before the REFER: the caller's BYE reaches the callee.
fn call_goes_on(net: &mut Net, gw_tag: &str) {
    net.none_to(net.caller, "re-INVITE", is_method(Method::Invite));
    net.none_to(net.callee, "BYE", is_method(Method::Bye));
    assert_eq!(net.core.active_calls(), 1);
    net.send(net.caller, &caller_request("BYE", 2, "z9hG4bKbye1", gw_tag));
    net.response(net.caller, 200);
    let bye = net.request(net.callee, Method::Bye);
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to, None);
    assert!(!r.events.iter().any(|e| e.kind == EventKind::TransferredOut));
}

fn direct() -> Net {
    direct_net(CoreConfig {
        max_calls: 10,
        ..Default::default()
    })
}

#[test]
fn a_busy_transfer_target_is_reported_by_notify_and_the_call_stays() {
    let mut net = direct();
    let (_b_inv, gw_tag, c_inv) = referred(&mut net);
    net.send(POLICE.peer(), &POLICE.reply(&c_inv, 486, "Busy Here", ""));
    net.request(POLICE.peer(), Method::Ack);
    assert_eq!(
        notified(&mut net, CALLEE_PHONE),
        ("SIP/2.0 486 Busy Here".into(), true)
    );
    call_goes_on(&mut net, &gw_tag);
    no_leak(&mut net);
}

#[test]
fn a_silent_transfer_target_is_reported_as_408_after_timer_b_and_the_call_stays() {
    let mut net = direct();
    let (_b_inv, gw_tag, _c_inv) = referred(&mut net);
    net.advance(Duration::from_secs(31));
    net.none_to(net.callee, "a final NOTIFY", is_method(Method::Notify));
    net.advance(Duration::from_secs(2));
    assert_eq!(
        notified(&mut net, CALLEE_PHONE),
        ("SIP/2.0 408 Request Timeout".into(), true)
    );
    call_goes_on(&mut net, &gw_tag);
    no_leak(&mut net);
}

#[test]
fn the_110_of_the_callers_city_gets_the_call_with_the_citizens_number_asserted() {
    let plan = crate::dialplan::parse_sources(&[(
        "t.toml".into(),
        r#"
[[trunk]]
name = "t"
kind = "carrier"
sources = ["127.0.0.0/8", "192.0.2.0/24"]

[[line]]
number = "12345"
name = "h"
target = "sip:127.0.0.1:5070"

[[transfer]]
number = "110"
name = "Police (the province's)"
target = "sip:110@127.0.0.1:5080"

[[transfer]]
number = "110"
name = "Police, Hangzhou"
target = "sip:110@127.0.0.1:5081"
areas = ["0571"]
from = "line"
"#
        .into(),
    )])
    .unwrap();
    let mut net = Net::with(
        CoreConfig {
            max_calls: 10,
            ..Default::default()
        },
        plan,
    );
    // A landline of Hangzhou calls.
    let invite = String::from_utf8(caller_invite())
        .unwrap()
        .replace("13800138000@", "057187654321@");
    net.send(net.caller, invite.as_bytes());
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(net.callee, Method::Ack);
    net.send(net.callee, &callee_refer(&b_inv, "110", 2));
    net.response(net.callee, 202);
    let hangzhou = peer("127.0.0.1:5081");
    let c_inv = net.request(hangzhou, Method::Invite);
    net.none_to(
        POLICE.peer(),
        "the province's 110",
        is_method(Method::Invite),
    );
    assert!(
        c_inv.header("From").unwrap().contains("<sip:12345@"),
        "this entry shows the hotline's number"
    );
    assert_eq!(
        c_inv.header("P-Asserted-Identity"),
        Some("<sip:057187654321@127.0.0.1:5060>"),
        "and asserts the citizen's"
    );
}

#[test]
fn a_direct_merged_departments_old_number_reaches_12345_and_is_its_transfer_number() {
    let dept = peer("127.0.0.1:5086");
    let mut net = flow_net_with(
        r#"
[[line]]
number = "03514040000"
name = "住建服务电话"
department = "住房和城乡建设厅"
mode = "direct_merge"
queue = "agents"

[[transfer]]
number = "03514040000"
name = "住房和城乡建设厅"
target = "sip:127.0.0.1:5086"
"#,
    );
    A1.register(&mut net);
    // A citizen dials the old number: the 12345 queue, and the agent is told
    // the department's transfer number.
    net.send(net.caller, &super::support::invite_to("03514040000"));
    let gw_tag = net.response(net.caller, 180).to_tag().unwrap();
    let inv = A1.invite(&mut net);
    assert_eq!(inv.header("X-Hotline-Transfer-Number"), Some("03514040000"));
    assert_eq!(inv.header("X-Hotline-Mode"), Some("direct_merge"));
    net.send(A1.peer(), &A1.reply(&inv, 200, "OK", SDP));
    net.response(net.caller, 200);
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(A1.peer(), Method::Ack);
    // The agent transfers to that same number: the department's own phone,
    // never the queue again.
    let refer_to = "<sip:03514040000@127.0.0.1:5060>";
    let text = |cseq: u32, auth: Option<&str>| {
        let mut h = vec![("Refer-To", refer_to)];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        A1.at
            .request(&inv, "REFER", cseq, &format!("z9hG4bKdm{cseq}"), &h)
    };
    net.send(A1.peer(), &text(2, None));
    let challenge = net.response(A1.peer(), 401);
    let auth = A1.digest(&challenge, "REFER", "sip:gw@127.0.0.1:5060");
    net.send(A1.peer(), &text(3, Some(&auth)));
    net.response(A1.peer(), 202);
    let to_dept = net.request(dept, Method::Invite);
    assert_eq!(&*to_dept.uri, "sip:03514040000@127.0.0.1:5086");
    assert_eq!(
        agent_state(&net, "1002"),
        "logged_out",
        "no agent rung again"
    );
}
