//! B2BUA scenarios on a virtual clock: a scripted caller and callee around one
//! [`Core`], no sockets. Each test is one call flow from DESIGN.md's point of view.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::Transport;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Message, Response, parse};

pub(super) const CALLER: &str = "192.0.2.10:5060";
pub(super) const CALLEE: &str = "127.0.0.1:5070";
const POLICE: &str = "127.0.0.1:5080";

pub(super) struct Net {
    pub(super) core: Core,
    pub(super) now: Instant,
    pub(super) caller: Peer,
    pub(super) callee: Peer,
    /// Messages the gateway sent, not yet taken by the test.
    pub(super) inbox: Vec<(Peer, Message)>,
}

pub(super) fn peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

impl Net {
    pub(super) fn new() -> Net {
        let plan = crate::dialplan::parse_sources(&[(
            "l.toml".into(),
            format!(
                "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"sip:{CALLEE}\"\n\
[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@{POLICE}\"\n"
            ),
        )])
        .unwrap();
        let cfg = CoreConfig {
            max_calls: 10,
            ring_timeout: Duration::from_secs(30),
            max_duration: Duration::from_secs(3600),
            ..Default::default()
        };
        Net::with(cfg, plan)
    }

    /// A core with this configuration and dialplan, the caller and callee peers.
    pub(super) fn with(cfg: CoreConfig, plan: Dialplan) -> Net {
        Net {
            core: Core::new(cfg, Arc::new(plan), 42, Instant::now()),
            now: Instant::now(),
            caller: peer(CALLER),
            callee: peer(CALLEE),
            inbox: Vec::new(),
        }
    }

    pub(super) fn send(&mut self, from: Peer, bytes: &[u8]) {
        self.core.handle_datagram(self.now, bytes, from);
        self.collect();
    }

    pub(super) fn collect(&mut self) {
        while let Some(t) = self.core.poll_transmit() {
            self.inbox.push((t.peer, parse(&t.bytes).unwrap()));
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(at) = self.core.poll_timeout() {
            if at > until {
                break;
            }
            self.now = at.max(self.now);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
    }

    /// Takes the first message sent to `to` matching `pred`.
    pub(super) fn take(
        &mut self,
        to: Peer,
        what: &str,
        pred: impl Fn(&Message) -> bool,
    ) -> Message {
        let i = self
            .inbox
            .iter()
            .position(|(p, m)| *p == to && pred(m))
            .unwrap_or_else(|| panic!("no {what} sent to {to}; inbox: {:#?}", self.summary()));
        self.inbox.remove(i).1
    }

    pub(super) fn request(&mut self, to: Peer, method: Method) -> Request {
        let what = method.to_string();
        match self.take(
            to,
            &what,
            |m| matches!(m, Message::Request(r) if r.method == method),
        ) {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    pub(super) fn response(&mut self, to: Peer, code: u16) -> Response {
        match self.take(
            to,
            &code.to_string(),
            |m| matches!(m, Message::Response(r) if r.code == code),
        ) {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    /// Takes the first final response sent to `to`, whatever its code.
    pub(super) fn response_any(&mut self, to: Peer) -> Response {
        match self.take(
            to,
            "a final response",
            |m| matches!(m, Message::Response(r) if r.code >= 200),
        ) {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    pub(super) fn none_to(&self, to: Peer, what: &str, pred: impl Fn(&Message) -> bool) {
        assert!(
            !self.inbox.iter().any(|(p, m)| *p == to && pred(m)),
            "unexpected {what}: {:#?}",
            self.summary()
        );
    }

    pub(super) fn summary(&self) -> Vec<String> {
        self.inbox
            .iter()
            .map(|(p, m)| match m {
                Message::Request(r) => format!("{p} <- {} {}", r.method, r.uri),
                Message::Response(r) => format!("{p} <- {} {:?}", r.code, r.cseq()),
            })
            .collect()
    }

    pub(super) fn record(&mut self) -> FinishedCall {
        self.core.poll_record().expect("a finished call")
    }

    /// Runs every timer out and checks that nothing is left behind.
    pub(super) fn drained(&mut self) {
        self.advance(Duration::from_secs(600));
        assert_eq!(self.core.transactions(), 0, "leaked transactions");
        assert_eq!(self.core.active_calls(), 0, "leaked calls");
    }
}

pub(super) const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";

pub(super) fn caller_invite() -> Vec<u8> {
    format!(
        "INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKa1\r\n\
Max-Forwards: 70\r\nFrom: \"张三\" <sip:13800138000@192.0.2.10>;tag=ca\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: a-call@192.0.2.10\r\nCSeq: 1 INVITE\r\nContact: <sip:13800138000@{CALLER}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// A request from the caller inside its dialog (To carries the gateway's tag).
pub(super) fn caller_request(method: &str, cseq: u32, branch: &str, gw_tag: &str) -> Vec<u8> {
    format!(
        "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13800138000@192.0.2.10>;tag=ca\r\nTo: <sip:12345@127.0.0.1>;tag={gw_tag}\r\n\
Call-ID: a-call@192.0.2.10\r\nCSeq: {cseq} {method}\r\nContact: <sip:13800138000@{CALLER}>\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The caller's CANCEL for its INVITE (same branch).
pub(super) fn caller_cancel() -> Vec<u8> {
    format!(
        "CANCEL sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKa1\r\n\
Max-Forwards: 70\r\nFrom: \"张三\" <sip:13800138000@192.0.2.10>;tag=ca\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: a-call@192.0.2.10\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The callee's response to a request the gateway sent it.
pub(super) fn callee_reply(
    req: &Request,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut m = response_to(req, code, reason, Some("cb"));
    if code < 300 && code > 100 {
        m.header("Contact", &format!("<sip:agent@{CALLEE}>"));
    }
    for (k, v) in extra {
        m.header(k, v);
    }
    let ct = (!body.is_empty()).then_some("application/sdp");
    m.finish(ct, body.as_bytes()).to_vec()
}

/// A request from the callee inside the B dialog.
pub(super) fn callee_request(b_invite: &Request, method: &str, cseq: u32, branch: &str) -> Vec<u8> {
    let to = b_invite.header("From").unwrap();
    let from = format!("{};tag=cb", b_invite.header("To").unwrap());
    format!(
        "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLEE};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:agent@{CALLEE}>\r\nContent-Length: 0\r\n\r\n",
        b_invite.call_id().unwrap()
    )
    .into_bytes()
}

/// Sets up a ringing call; returns the INVITE the callee got and the gateway's
/// To tag towards the caller.
pub(super) fn ringing(net: &mut Net) -> (Request, String) {
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 100);
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(net.callee, &callee_reply(&b_inv, 180, "Ringing", &[], ""));
    let ringing = net.response(net.caller, 180);
    (b_inv, ringing.to_tag().unwrap())
}

pub(super) fn answered(net: &mut Net) -> (Request, String) {
    let (b_inv, gw_tag) = ringing(net);
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.response(net.caller, 200);
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.request(net.callee, Method::Ack);
    (b_inv, gw_tag)
}

#[test]
fn a_caller_bye_that_overtakes_its_ack_still_acks_the_callee_first() {
    let mut net = Net::new();
    let (b_inv, gw_tag) = ringing(&mut net);
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.response(net.caller, 200);
    // The BYE arrives before the ACK (reordered on the way).
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let i_ack = net
        .inbox
        .iter()
        .position(|(p, m)| {
            *p == net.callee && matches!(m, Message::Request(r) if r.method == Method::Ack)
        })
        .expect("the callee's 200 is acknowledged");
    let i_bye = net
        .inbox
        .iter()
        .position(|(p, m)| {
            *p == net.callee && matches!(m, Message::Request(r) if r.method == Method::Bye)
        })
        .expect("the callee gets a BYE");
    assert!(i_ack < i_bye, "ACK before BYE: {:#?}", net.summary());
    let bye = net.request(net.callee, Method::Bye);
    // The late ACK is absorbed: no second ACK to the callee.
    net.inbox.clear();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.none_to(
        net.callee,
        "a second ACK",
        |m| matches!(m, Message::Request(r) if r.method == Method::Ack),
    );
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    assert_eq!(net.record().reason, Reason::CallerHangup);
    net.drained();
}

#[test]
fn the_callee_leg_shares_nothing_with_the_caller_leg() {
    let mut net = Net::new();
    net.send(net.caller, &caller_invite());
    let b = net.request(net.callee, Method::Invite);
    assert_ne!(b.call_id(), Some("a-call@192.0.2.10"));
    assert_ne!(b.from_tag().as_deref(), Some("ca"));
    assert_eq!(b.via_values().len(), 1, "only the gateway's Via");
    for (name, v) in b.headers.iter().map(|h| (&h.name, &h.value)) {
        assert!(
            !v.contains("192.0.2.10"),
            "{name}: {v} leaks the caller's topology"
        );
    }
    assert_eq!(&*b.uri, "sip:12345@127.0.0.1:5070");
    assert!(
        b.header("From").unwrap().contains("13800138000"),
        "caller number kept"
    );
    assert_eq!(b.body, SDP.as_bytes(), "the offer is passed on");
    assert_eq!(b.max_forwards(), Some(Ok(69)));
}

#[test]
fn a_call_answered_then_ended_by_the_caller() {
    let mut net = Net::new();
    let (b_inv, gw_tag) = ringing(&mut net);
    // Early media: a 183 with SDP reaches the caller with its body.
    net.send(
        net.callee,
        &callee_reply(&b_inv, 183, "Session Progress", &[], SDP),
    );
    let p = net.response(net.caller, 183);
    assert_eq!(p.body, SDP.as_bytes());
    assert_eq!(p.call_id(), Some("a-call@192.0.2.10"));
    assert_eq!(
        p.to_tag().as_deref(),
        Some(gw_tag.as_str()),
        "one To tag for the caller"
    );
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    let ok = net.response(net.caller, 200);
    assert_eq!(
        ok.contact_uri().unwrap().text.as_ref(),
        "sip:gw@127.0.0.1:5060"
    );
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    let ack = net.request(net.callee, Method::Ack);
    assert_eq!(ack.cseq(), Some((1, Method::Ack)));
    assert_eq!(
        &*ack.uri, "sip:agent@127.0.0.1:5070",
        "ACK goes to the callee's Contact"
    );
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(net.callee, Method::Bye);
    assert_eq!(bye.call_id(), b_inv.call_id());
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert!(r.answered_at.is_some());
    net.drained();
}

#[test]
fn the_callee_hangs_up_and_the_caller_gets_bye_at_its_contact() {
    let mut net = Net::new();
    let (b_inv, _) = answered(&mut net);
    net.send(net.callee, &callee_request(&b_inv, "BYE", 1, "z9hG4bKcb1"));
    net.response(net.callee, 200);
    let bye = net.request(net.caller, Method::Bye);
    assert_eq!(&*bye.uri, "sip:13800138000@192.0.2.10:5060");
    assert_eq!(bye.call_id(), Some("a-call@192.0.2.10"));
    assert_eq!(bye.to_tag().as_deref(), Some("ca"));
    let ok = response_to(&bye, 200, "OK", None).finish_empty();
    net.send(net.caller, &ok);
    assert_eq!(net.record().reason, Reason::CalleeHangup);
    net.drained();
}

#[test]
fn cancel_gives_487_and_cancels_the_callee() {
    let mut net = Net::new();
    let (b_inv, _) = ringing(&mut net);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    let cancel = net.request(net.callee, Method::Cancel);
    assert_eq!(
        cancel.top_via().unwrap().branch,
        b_inv.top_via().unwrap().branch
    );
    net.send(net.callee, &callee_reply(&cancel, 200, "OK", &[], ""));
    net.send(
        net.callee,
        &callee_reply(&b_inv, 487, "Request Terminated", &[], ""),
    );
    net.request(net.callee, Method::Ack);
    let r = net.record();
    assert_eq!((r.reason, r.final_code), (Reason::CallerCancelled, 487));
    net.drained();
}

#[test]
fn cancel_racing_the_callees_answer_ends_with_ack_and_bye() {
    let mut net = Net::new();
    let (b_inv, _) = ringing(&mut net);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    net.request(net.callee, Method::Cancel);
    // The callee answered before our CANCEL reached it.
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.request(net.callee, Method::Ack);
    let bye = net.request(net.callee, Method::Bye);
    net.none_to(net.caller, "200 to the caller", |m| {
        matches!(m, Message::Response(r) if r.code == 200 && r.cseq().is_some_and(|c| c.1 == Method::Invite))
    });
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    assert_eq!(net.record().reason, Reason::CallerCancelled);
    net.drained();
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut net = Net::new();
    net.send(net.caller, &caller_invite());
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    net.none_to(
        net.callee,
        "CANCEL",
        |m| matches!(m, Message::Request(r) if r.method == Method::Cancel),
    );
    net.send(net.callee, &callee_reply(&b_inv, 180, "Ringing", &[], ""));
    net.request(net.callee, Method::Cancel);
    net.none_to(
        net.caller,
        "180 after 487",
        |m| matches!(m, Message::Response(r) if r.code == 180),
    );
    net.send(
        net.callee,
        &callee_reply(&b_inv, 487, "Request Terminated", &[], ""),
    );
    assert_eq!(net.record().reason, Reason::CallerCancelled);
    net.drained();
}

#[test]
fn a_failure_is_relayed_with_its_reason() {
    let mut net = Net::new();
    net.send(net.caller, &caller_invite());
    let b_inv = net.request(net.callee, Method::Invite);
    let extra = [("Reason", "Q.850;cause=17;text=\"user busy\"")];
    net.send(
        net.callee,
        &callee_reply(&b_inv, 486, "Busy Here - agent on another call", &extra, ""),
    );
    net.request(net.callee, Method::Ack);
    let busy = net.response(net.caller, 486);
    assert_eq!(&*busy.reason, "Busy Here - agent on another call");
    assert_eq!(
        busy.header("Reason"),
        Some("Q.850;cause=17;text=\"user busy\"")
    );
    assert_eq!(net.record().reason, Reason::CalleeBusy);
    net.drained();
}

#[test]
fn reinvite_and_update_are_relayed_both_ways() {
    let mut net = Net::new();
    let (b_inv, gw_tag) = answered(&mut net);
    // The callee re-INVITEs (hold): the caller sees it on its own dialog.
    net.send(
        net.callee,
        &callee_request(&b_inv, "INVITE", 2, "z9hG4bKre1"),
    );
    let re = net.request(net.caller, Method::Invite);
    assert_eq!(re.call_id(), Some("a-call@192.0.2.10"));
    assert_eq!(re.to_tag().as_deref(), Some("ca"));
    assert_eq!(re.from_tag().as_deref(), Some(gw_tag.as_str()));
    let ok = response_to(&re, 200, "OK", None).finish(Some("application/sdp"), SDP.as_bytes());
    net.send(net.caller, &ok);
    let ok_b = net.response(net.callee, 200);
    assert_eq!(ok_b.cseq(), Some((2, Method::Invite)));
    assert_eq!(ok_b.body, SDP.as_bytes());
    // The callee's ACK for that 2xx reaches the caller with the caller-leg CSeq.
    let ack = callee_request(&b_inv, "ACK", 2, "z9hG4bKre1ack");
    net.send(net.callee, &ack);
    let a_ack = net.request(net.caller, Method::Ack);
    assert_eq!(a_ack.cseq().unwrap().0, re.cseq().unwrap().0);
    // The caller sends UPDATE: relayed to the callee, answered back.
    net.send(
        net.caller,
        &caller_request("UPDATE", 2, "z9hG4bKup1", &gw_tag),
    );
    let up = net.request(net.callee, Method::Update);
    assert_eq!(up.call_id(), b_inv.call_id());
    net.send(net.callee, &callee_reply(&up, 200, "OK", &[], ""));
    net.response(net.caller, 200);
    assert_eq!(net.core.active_calls(), 1);
}

#[test]
fn a_callee_that_rings_too_long_is_cancelled() {
    let mut net = Net::new();
    let (b_inv, _) = ringing(&mut net);
    net.advance(Duration::from_secs(31));
    net.response(net.caller, 408);
    let cancel = net.request(net.callee, Method::Cancel);
    net.send(net.callee, &callee_reply(&cancel, 200, "OK", &[], ""));
    net.send(
        net.callee,
        &callee_reply(&b_inv, 487, "Request Terminated", &[], ""),
    );
    assert_eq!(net.record().reason, Reason::CalleeNoAnswer);
    net.drained();
}

#[test]
fn a_caller_that_never_acks_is_hung_up() {
    let mut net = Net::new();
    let (b_inv, _) = ringing(&mut net);
    net.send(net.callee, &callee_reply(&b_inv, 200, "OK", &[], SDP));
    net.response(net.caller, 200);
    net.advance(Duration::from_secs(33));
    let bye_b = net.request(net.callee, Method::Bye);
    let bye_a = net.request(net.caller, Method::Bye);
    net.send(net.callee, &callee_reply(&bye_b, 200, "OK", &[], ""));
    net.send(
        net.caller,
        &response_to(&bye_a, 200, "OK", None).finish_empty(),
    );
    assert_eq!(net.record().reason, Reason::CallerNoAck);
    net.drained();
}

#[test]
fn unknown_numbers_and_stray_dialogs_are_refused() {
    let mut net = Net::new();
    let to_other = String::from_utf8(caller_invite())
        .unwrap()
        .replace("sip:12345@127.0.0.1 SIP", "sip:00441234@127.0.0.1 SIP");
    net.send(net.caller, to_other.as_bytes());
    net.response(net.caller, 404);
    assert_eq!(net.record().reason, Reason::NoRoute);
    net.none_to(net.callee, "anything", |_| true);
    net.send(net.caller, &caller_request("BYE", 2, "z9hG4bKx", "nope"));
    net.response(net.caller, 481);
    net.drained();
}

#[test]
fn a_callee_silent_after_ringing_and_cancel_leaves_nothing_behind() {
    // Found by the core_input fuzzer: an INVITE transaction stuck in Proceeding.
    let mut net = Net::new();
    ringing(&mut net);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 487);
    net.request(net.callee, Method::Cancel);
    // The callee answers neither the CANCEL nor the INVITE, ever.
    net.advance(Duration::from_secs(60));
    assert_eq!(net.record().reason, Reason::CallerCancelled);
    net.drained();
}

#[test]
fn a_relayed_request_still_pending_when_the_call_ends_is_answered() {
    // Found by the core_input fuzzer: a server transaction nobody answered.
    let mut net = Net::new();
    let (b_inv, gw_tag) = answered(&mut net);
    net.send(
        net.caller,
        &caller_request("INFO", 2, "z9hG4bKinfo1", &gw_tag),
    );
    net.request(net.callee, Method::Info);
    // The callee ignores the INFO and hangs up.
    net.send(net.callee, &callee_request(&b_inv, "BYE", 1, "z9hG4bKcb9"));
    let bye = net.request(net.caller, Method::Bye);
    net.send(
        net.caller,
        &response_to(&bye, 200, "OK", None).finish_empty(),
    );
    let info_answer = net.response(net.caller, 487);
    assert_eq!(info_answer.cseq(), Some((2, Method::Info)));
    assert_eq!(net.record().reason, Reason::CalleeHangup);
    net.drained();
}

/// A REFER from the callee (the agent) inside the B dialog.
pub(super) fn callee_refer(b_invite: &Request, to: &str, cseq: u32) -> Vec<u8> {
    let text = String::from_utf8(callee_request(b_invite, "REFER", cseq, "z9hG4bKref1")).unwrap();
    text.replace(
        "Content-Length: 0",
        &format!("Refer-To: <sip:{to}@127.0.0.1:5060>\r\nContent-Length: 0"),
    )
    .into_bytes()
}

#[test]
fn an_agent_transfers_the_caller_to_110() {
    let mut net = Net::new();
    let police = peer(POLICE);
    let (b_inv, _) = answered(&mut net);
    net.send(net.callee, &callee_refer(&b_inv, "110", 2));
    net.response(net.callee, 202);
    let trying = net.request(net.callee, Method::Notify);
    assert_eq!(trying.header("Event"), Some("refer"));
    assert!(String::from_utf8_lossy(&trying.body).starts_with("SIP/2.0 100"));
    // The new leg: a late offer to the directory's target, with the caller's number.
    let c_inv = net.request(police, Method::Invite);
    assert!(c_inv.body.is_empty(), "late offer");
    assert_eq!(&*c_inv.uri, "sip:110@127.0.0.1:5080");
    assert!(c_inv.header("From").unwrap().contains("13800138000"));
    net.send(police, &callee_reply(&c_inv, 200, "OK", &[], SDP));
    // The caller gets the new leg's offer in a re-INVITE and answers it.
    let re = net.request(net.caller, Method::Invite);
    assert_eq!(re.body, SDP.as_bytes());
    let ok = response_to(&re, 200, "OK", None).finish(Some("application/sdp"), SDP.as_bytes());
    net.send(net.caller, &ok);
    net.request(net.caller, Method::Ack);
    let c_ack = net.request(police, Method::Ack);
    assert_eq!(
        c_ack.body,
        SDP.as_bytes(),
        "the caller's answer completes the new leg"
    );
    let done = net.request(net.callee, Method::Notify);
    assert!(String::from_utf8_lossy(&done.body).starts_with("SIP/2.0 200"));
    assert!(
        done.header("Subscription-State")
            .unwrap()
            .starts_with("terminated")
    );
    // A phone that does not hang up itself gets BYE after a moment (not at
    // once: it could overtake the 202 through a proxy).
    net.none_to(
        net.callee,
        "a BYE at once",
        |m| matches!(m, Message::Request(r) if r.method == Method::Bye),
    );
    net.advance(super::parting::GRACE);
    net.request(net.callee, Method::Bye);
    // The caller now talks to 110: its BYE goes there.
    let gw_tag = re.from_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("BYE", 3, "z9hG4bKbye9", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(police, Method::Bye);
    net.send(police, &callee_reply(&bye, 200, "OK", &[], ""));
    let r = net.record();
    assert_eq!(r.transferred_to.as_deref(), Some("110"));
    assert_eq!(r.reason, Reason::CallerHangup);
    net.drained();
}

#[test]
fn a_transfer_outside_the_directory_is_refused() {
    let mut net = Net::new();
    let (b_inv, _) = answered(&mut net);
    net.send(net.callee, &callee_refer(&b_inv, "0085212345678", 2));
    let r = net.response(net.callee, 403);
    assert_eq!(&*r.reason, "Forbidden (not in the transfer directory)");
    net.none_to(peer(POLICE), "anything", |_| true);
    assert_eq!(net.core.active_calls(), 1, "the call goes on");
}

#[test]
fn a_caller_who_hangs_up_during_a_transfer_cancels_the_new_leg() {
    let mut net = Net::new();
    let police = peer(POLICE);
    let (b_inv, gw_tag) = answered(&mut net);
    net.send(net.callee, &callee_refer(&b_inv, "110", 2));
    net.response(net.callee, 202);
    let c_inv = net.request(police, Method::Invite);
    net.send(police, &callee_reply(&c_inv, 180, "Ringing", &[], ""));
    // The caller leaves while 110 rings: the agent gets BYE, 110 a CANCEL.
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye2", &gw_tag),
    );
    net.response(net.caller, 200);
    let bye = net.request(net.callee, Method::Bye);
    let cancel = net.request(police, Method::Cancel);
    assert_eq!(cancel.call_id(), c_inv.call_id());
    net.send(police, &callee_reply(&cancel, 200, "OK", &[], ""));
    net.send(
        police,
        &callee_reply(&c_inv, 487, "Request Terminated", &[], ""),
    );
    net.request(police, Method::Ack);
    net.send(net.callee, &callee_reply(&bye, 200, "OK", &[], ""));
    let r = net.record();
    assert_eq!(r.reason, Reason::CallerHangup);
    assert_eq!(r.transferred_to, None, "the transfer never completed");
    net.drained();
}

#[test]
fn a_callee_answer_after_the_call_ended_is_counted_not_acted_on() {
    let mut net = Net::new();
    let (b_inv, _) = ringing(&mut net);
    // The caller gives up; the callee ignores the CANCEL, and the CANCEL guard
    // (64·T1) ends the call.
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    net.request(net.callee, Method::Cancel);
    net.advance(Duration::from_secs(33));
    assert_eq!(net.core.active_calls(), 0, "the guard ended the call");
    net.record();
    let before = net.core.stats().stale_events;
    // The INVITE's final answer comes late: acknowledged by the transaction
    // layer, counted, and no call comes back to life.
    net.send(
        net.callee,
        &callee_reply(&b_inv, 487, "Request Terminated", &[], ""),
    );
    net.request(net.callee, Method::Ack);
    assert_eq!(net.core.stats().stale_events, before + 1);
    assert_eq!(net.core.active_calls(), 0);
    assert!(net.core.poll_record().is_none(), "no second record");
    net.drained();
}
