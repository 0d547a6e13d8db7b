//! Attended transfer: the agent consults 110 through the gateway, then REFERs
//! the citizen's call with Replaces naming the consultation; the citizen ends
//! up with 110 on the same relay ports, the agent is released from both. Only
//! the agent's own consultation can be named (the attacker tests).

use super::callback::{D1, D2, agent_invite};
use super::support::*;
use crate::call::tests::*;
use crate::call::{QueuedAudio, Reason};
use crate::cdr::EventKind;
use crate::media::command::MediaCommand;
use crate::sip::message::{Headers, Method, Request, Response};

/// A citizen's media-anchored call answered by `a`: the caller's dialog tag
/// and the agent's INVITE.
fn connected(net: &mut Net, a: &Agent) -> (String, Request) {
    a.register(net);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let inv = a.invite(net);
    net.send(a.peer(), &a.reply(&inv, 200, "OK", &agent_sdp(6000)));
    net.request(a.peer(), Method::Ack);
    (gw_tag, inv)
}

/// Agent `a` consults 110 (INVITE with digest, CSeq `cseq` + 1); 110
/// answers. The gateway's 200 to the agent, 110's INVITE, and the ACK text.
fn consult(net: &mut Net, a: &Agent, cseq: u32) -> (Response, Request, String) {
    net.send(a.peer(), &agent_invite(a, "110", cseq, None));
    let challenge = net.response(a.peer(), 401);
    let auth = a.digest_nc(&challenge, "INVITE", "sip:110@127.0.0.1", cseq);
    net.send(a.peer(), &agent_invite(a, "110", cseq + 1, Some(&auth)));
    let out = net.request(POLICE.peer(), Method::Invite);
    net.send(
        POLICE.peer(),
        &POLICE.reply(&out, 200, "OK", &agent_sdp(7000)),
    );
    let ok = net.response(a.peer(), 200);
    let n = cseq + 1;
    let ack = String::from_utf8(agent_invite(a, "110", n, None))
        .unwrap()
        .replace("INVITE sip:110@", "ACK sip:110@")
        .replace(&format!("CSeq: {n} INVITE"), &format!("CSeq: {n} ACK"))
        .replace(
            "To: <sip:110@127.0.0.1>",
            &format!("To: {}", ok.header("To").unwrap()),
        )
        .replace(&format!("branch=z9hG4bKai110{n}"), "branch=z9hG4bKcack");
    net.send(a.peer(), ack.as_bytes());
    net.request(POLICE.peer(), Method::Ack);
    (ok, out, ack)
}

/// The Refer-To of an attended transfer to the consultation `ok` answered.
fn replaces(ok: &Response, from_tag: &str) -> String {
    let to_tag = ok.to_tag().unwrap();
    format!(
        "<sip:110@127.0.0.1?Replaces={}%3Bto-tag%3D{to_tag}%3Bfrom-tag%3D{from_tag}>",
        escaped_call_id(ok)
    )
}

/// The same without tags: the Call-ID alone (softphones before RFC 3891's tags).
fn replaces_call_id_only(ok: &Response) -> String {
    format!("<sip:110@127.0.0.1?Replaces={}>", escaped_call_id(ok))
}

/// The consultation's Call-ID as a URI header value carries it.
fn escaped_call_id(ok: &Response) -> String {
    ok.call_id()
        .unwrap()
        .replace('@', "%40")
        .replace(':', "%3A")
}

/// Agent `a`'s REFER on the citizen's call, with digest; its final response.
fn refer(net: &mut Net, a: &Agent, inv: &Request, refer_to: &str) -> u16 {
    refer_at(net, a, inv, refer_to, 2)
}

/// [`refer`] with CSeq `cseq` (and `cseq` + 1 with the credentials).
fn refer_at(net: &mut Net, a: &Agent, inv: &Request, refer_to: &str, cseq: u32) -> u16 {
    let to = ("Refer-To", refer_to);
    let branch = format!("z9hG4bKar{cseq}");
    net.send(a.peer(), &a.at.request(inv, "REFER", cseq, &branch, &[to]));
    let challenge = net.response(a.peer(), 401);
    let auth = a.digest(&challenge, "REFER", "sip:gw@127.0.0.1:5060");
    let headers = [to, ("Authorization", auth.as_str())];
    let branch = format!("z9hG4bKar{}", cseq + 1);
    net.send(
        a.peer(),
        &a.at.request(inv, "REFER", cseq + 1, &branch, &headers),
    );
    net.response_any(a.peer()).code
}

#[test]
fn the_agent_consults_110_then_joins_it_to_the_citizen_on_the_same_ports() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, inv) = connected(&mut net, &D1);
    let x = session_of(&commands(&mut net));
    let (ok, police_inv, ack) = consult(&mut net, &D1, 2);
    let y = session_of(&commands(&mut net));
    assert_ne!(x, y, "the consultation has its own media");
    assert_eq!(refer(&mut net, &D1, &inv, &replaces(&ok, "ai3")), 202);
    let n = net.request(D1.peer(), Method::Notify);
    assert_eq!(
        String::from_utf8_lossy(&n.body).trim_end(),
        "SIP/2.0 200 OK"
    );
    net.send(D1.peer(), &D1.at.reply(&n, 200, "OK", ""));
    assert!(
        commands(&mut net).contains(&MediaCommand::Splice {
            session: x,
            from: y,
            mix: false
        }),
        "the relay swaps the two callee legs"
    );
    // The agent's consultation is ended by the gateway; 110 is not.
    let bye = net.request(D1.peer(), Method::Bye);
    assert_eq!(bye.call_id(), ok.call_id());
    net.send(D1.peer(), &D1.at.reply(&bye, 200, "OK", ""));
    net.none_to(POLICE.peer(), "BYE", is_method(Method::Bye));
    let consultation = net.record();
    assert_eq!(consultation.reason, Reason::ConsultTransferred);
    assert_eq!(consultation.line, None, "offered to nobody");
    // The agent hangs up its leg of the citizen's call itself.
    net.send(D1.peer(), &D1.at.request(&inv, "BYE", 4, "z9hG4bKab4", &[]));
    net.response(D1.peer(), 200);
    assert_eq!(agent_state(&net, "1001"), "ready");
    let _ = ack;
    // The citizen and 110 talk; the citizen hangs up, 110 gets the BYE.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(POLICE.peer(), Method::Bye);
    assert_eq!(bye.call_id(), police_inv.call_id());
    net.send(POLICE.peer(), &POLICE.reply(&bye, 200, "OK", ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to.as_deref(), Some("110"));
    assert!(has_event(&r, EventKind::TransferredOut, "110"));
    no_leak(&mut net);
}

#[test]
fn replaces_naming_another_agents_consultation_or_a_wrong_tag_changes_nothing() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (_gw_tag, inv) = connected(&mut net, &D1);
    // Agent 1002 consults 110 (it knows nothing of 1001's citizen).
    D2.register(&mut net);
    let (ok, _, _) = consult(&mut net, &D2, 2);
    commands(&mut net);
    // 1001 names 1002's consultation by its Call-ID alone (as softphones
    // before RFC 3891's tags do): refused, it is not 1001's.
    let bare = replaces_call_id_only(&ok);
    assert_eq!(refer(&mut net, &D1, &inv, &bare), 403);
    net.inbox.clear();
    // 1001 names 1002's consultation, tags and all: refused.
    assert_eq!(
        refer_at(&mut net, &D1, &inv, &replaces(&ok, "ai3"), 20),
        403
    );
    assert!(
        !commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::Splice { .. }))
    );
    net.none_to(D2.peer(), "BYE", is_method(Method::Bye));
    net.none_to(POLICE.peer(), "BYE", is_method(Method::Bye));
    // Its own consultation with a guessed tag: refused too.
    let (ok1, _, _) = consult(&mut net, &D1, 10);
    let wrong = replaces(&ok1, "guess");
    assert_eq!(refer_at(&mut net, &D1, &inv, &wrong, 30), 403);
    assert_eq!(
        agent_state(&net, "1001"),
        "on_call",
        "still with its citizen"
    );
    // The same consultation named right: the transfer goes through.
    net.inbox.clear();
    assert_eq!(
        refer_at(&mut net, &D1, &inv, &replaces(&ok1, "ai11"), 40),
        202
    );
    assert_eq!(agent_state(&net, "1001"), "ready");
}

#[test]
fn a_softphone_that_names_its_consultation_by_call_id_alone_is_understood() {
    let mut net = flow_net(Some(QueuedAudio::Answer));
    let (gw_tag, inv) = connected(&mut net, &D1);
    let (ok, police_inv, _) = consult(&mut net, &D1, 2);
    commands(&mut net);
    let bare = replaces_call_id_only(&ok);
    assert_eq!(refer(&mut net, &D1, &inv, &bare), 202);
    assert!(
        commands(&mut net)
            .iter()
            .any(|c| matches!(c, MediaCommand::Splice { .. }))
    );
    let n = net.request(D1.peer(), Method::Notify);
    net.send(D1.peer(), &D1.at.reply(&n, 200, "OK", ""));
    let bye = net.request(D1.peer(), Method::Bye);
    net.send(D1.peer(), &D1.at.reply(&bye, 200, "OK", ""));
    net.record();
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(POLICE.peer(), Method::Bye);
    assert_eq!(bye.call_id(), police_inv.call_id());
    net.send(POLICE.peer(), &POLICE.reply(&bye, 200, "OK", ""));
    assert_eq!(net.record().transferred_to.as_deref(), Some("110"));
    net.advance(crate::call::parting::GRACE + std::time::Duration::from_millis(10));
    let bye = net.request(D1.peer(), Method::Bye);
    net.send(D1.peer(), &D1.at.reply(&bye, 200, "OK", ""));
    no_leak(&mut net);
}
