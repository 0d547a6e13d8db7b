//! Writes realistic `core_input` seeds: calls to 12345 whose callee (127.0.0.1:5070)
//! answers the gateway's own INVITE, BYE, CANCEL, PRACK and relayed requests.
//!
//! The gateway's branches, tags and Call-IDs come from its seeded generator, so the
//! script runs the same harness the fuzz target runs, reads what the gateway sent
//! and writes the callee's (and caller's) answers from it. Each seed is then
//! replayed from its bytes, as the fuzz target would, and checked for leaks.
//!
//! Usage (from fuzz/): `cargo run --example gen_seeds [OUT_DIR [FAIL_DIR]]`
//! (defaults: `seeds/core_input`, `artifacts-report`). Seeds that break the
//! leak invariant go to FAIL_DIR instead, so that fuzzing can start at all.

use std::path::PathBuf;

use hotline_gateway::sip::Transmit;
use hotline_gateway::sip::message::{self, Headers, Message};
use hotline_gateway_fuzz::{CALLEE, CALLER, Harness, PEERS, encode, op};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const CALLER_URI: &str = "sip:13800138000@127.0.0.1:40000";
const CALLEE_CONTACT: &str = "<sip:12345@127.0.0.1:5070>";

/// A script: operations applied to a live harness, kept for the seed file.
struct Script {
    h: Harness,
    ops: Vec<Vec<u8>>,
    /// Every message the gateway sent, in order.
    sent: Vec<Transmit>,
    branch: u32,
    /// What went in and out, for `HGW_SEEDS_VERBOSE=1`.
    log: String,
}

impl Script {
    fn new() -> Script {
        Script {
            h: Harness::new(),
            ops: Vec::new(),
            sent: Vec::new(),
            branch: 0,
            log: String::new(),
        }
    }

    fn op(&mut self, op: Vec<u8>) -> Vec<Transmit> {
        let out = self.h.apply(&op);
        if std::env::var_os("HGW_SEEDS_VERBOSE").is_some() {
            let first = |b: &[u8]| {
                String::from_utf8_lossy(b)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            };
            let what = match op[0] & 3 {
                0 | 1 => format!(
                    "in  {}: {}",
                    hotline_gateway_fuzz::PEERS[usize::from(op[0] >> 2) & 3],
                    first(&op[1..])
                ),
                _ => format!("clock +{:?}", self.h.now - self.h.start),
            };
            self.log += &format!("  {what}\n");
            for t in &out {
                self.log += &format!("    out {}: {}\n", t.peer, first(&t.bytes));
            }
        }
        self.ops.push(op);
        self.sent.extend(out.iter().cloned());
        out
    }

    fn udp(&mut self, peer: usize, msg: &str) -> Vec<Transmit> {
        self.op(op::udp(peer, msg.as_bytes()))
    }

    fn tcp(&mut self, peer: usize, msg: &str) -> Vec<Transmit> {
        self.op(op::tcp(peer, msg.as_bytes()))
    }

    fn advance(&mut self, step: usize) -> Vec<Transmit> {
        self.op(op::advance(step))
    }

    fn next_timers(&mut self, n: usize) -> Vec<Transmit> {
        self.op(op::next_timers(n))
    }

    fn new_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bK-seed-{}", self.branch)
    }

    /// The last request with `method` the gateway sent to `peer`.
    fn last_request(&self, peer: usize, method: &str) -> String {
        let addr: std::net::SocketAddr = PEERS[peer].parse().unwrap();
        self.sent
            .iter()
            .rev()
            .filter(|t| t.peer.addr == addr)
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .find(|s| s.starts_with(&format!("{method} ")))
            .unwrap_or_else(|| panic!("the gateway sent no {method} to {}", PEERS[peer]))
    }

    /// The last response with `code` the gateway sent to `peer`.
    fn last_response(&self, peer: usize, code: u16) -> String {
        let addr: std::net::SocketAddr = PEERS[peer].parse().unwrap();
        self.sent
            .iter()
            .rev()
            .filter(|t| t.peer.addr == addr)
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .find(|s| s.starts_with(&format!("SIP/2.0 {code} ")))
            .unwrap_or_else(|| panic!("the gateway sent no {code} to {}", PEERS[peer]))
    }
}

fn parsed(text: &str) -> Message {
    message::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn header<'a>(m: &'a Message, name: &str) -> &'a str {
    let v = match m {
        Message::Request(r) => r.header(name),
        Message::Response(r) => r.header(name),
    };
    v.unwrap_or_else(|| panic!("no {name}"))
}

/// A response to a request the gateway sent (or any request text): Vias, From, To
/// (with `to_tag` added when it has none), Call-ID and CSeq copied.
fn answer(req: &str, code: u16, reason: &str, to_tag: &str, extra: &[&str], body: &str) -> String {
    let m = parsed(req);
    let Message::Request(r) = &m else {
        panic!("not a request")
    };
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in r.header_all("Via") {
        s += &format!("Via: {v}\r\n");
    }
    let to = r.header("To").unwrap();
    let to = if r.to_tag().is_some() || code == 100 {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    s += &format!("From: {}\r\nTo: {to}\r\n", r.header("From").unwrap());
    s += &format!(
        "Call-ID: {}\r\nCSeq: {}\r\n",
        r.header("Call-ID").unwrap(),
        r.header("CSeq").unwrap()
    );
    for e in extra {
        s += e;
        s += "\r\n";
    }
    if !body.is_empty() {
        s += "Content-Type: application/sdp\r\n";
    }
    s += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    s
}

/// The caller: an INVITE to `number`, and in-dialog requests once it knows the
/// gateway's tag.
struct Caller {
    call_id: String,
    tag: String,
    transport: &'static str,
    cseq: u32,
    /// The gateway's tag on the A leg (from a response with a To tag).
    gw_to: Option<String>,
}

impl Caller {
    fn new(n: u32, transport: &'static str) -> Caller {
        Caller {
            call_id: format!("seed-{n}@127.0.0.1"),
            tag: format!("caller{n}"),
            transport,
            cseq: 1,
            gw_to: None,
        }
    }

    fn invite(&self, branch: &str, number: &str) -> String {
        let body = SDP;
        format!(
            "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/{} 127.0.0.1:40000;branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller\" <{CALLER_URI}>;tag={}\r\n\
             To: <sip:{number}@127.0.0.1:5060>\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <{CALLER_URI}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.transport,
            self.tag,
            self.call_id,
            body.len()
        )
    }

    /// CANCEL or non-2xx ACK of the INVITE: same branch and CSeq number.
    fn same_tx(&self, method: &str, branch: &str, to: &str) -> String {
        format!(
            "{method} sip:12345@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/{} 127.0.0.1:40000;branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller\" <{CALLER_URI}>;tag={}\r\n\
             To: {to}\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n",
            self.transport, self.tag, self.call_id
        )
    }

    fn learn(&mut self, resp: &str) {
        let m = parsed(resp);
        self.gw_to = Some(header(&m, "To").to_string());
    }

    /// An in-dialog request (ACK repeats CSeq 1).
    fn in_dialog(&mut self, method: &str, branch: &str, extra: &[&str], body: &str) -> String {
        let cseq = if method == "ACK" {
            1
        } else {
            self.cseq += 1;
            self.cseq
        };
        let mut s = format!(
            "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/{} 127.0.0.1:40000;branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller\" <{CALLER_URI}>;tag={}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <{CALLER_URI}>\r\n",
            self.transport,
            self.tag,
            self.gw_to.as_deref().expect("the gateway's To tag"),
            self.call_id
        );
        for e in extra {
            s += e;
            s += "\r\n";
        }
        if !body.is_empty() {
            s += "Content-Type: application/sdp\r\n";
        }
        s += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        s
    }
}

/// The callee, answering the gateway's B leg.
struct Callee {
    tag: String,
    cseq: u32,
    /// The gateway's B-leg INVITE.
    invite: String,
}

impl Callee {
    fn answer_invite(&self, code: u16, reason: &str, extra: &[&str], body: &str) -> String {
        let mut e = vec![format!("Contact: {CALLEE_CONTACT}")];
        e.extend(extra.iter().map(|s| s.to_string()));
        let e: Vec<&str> = e.iter().map(String::as_str).collect();
        answer(&self.invite, code, reason, &self.tag, &e, body)
    }

    /// An in-dialog request from the callee to the gateway (ACK repeats `ack_cseq`).
    fn in_dialog(&mut self, method: &str, branch: &str, ack_cseq: u32, body: &str) -> String {
        let inv = parsed(&self.invite);
        let cseq = if method == "ACK" {
            ack_cseq
        } else {
            self.cseq += 1;
            self.cseq
        };
        let mut s = format!(
            "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {};tag={}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: {CALLEE_CONTACT}\r\n",
            header(&inv, "To"),
            self.tag,
            header(&inv, "From"),
            header(&inv, "Call-ID"),
        );
        if !body.is_empty() {
            s += "Content-Type: application/sdp\r\n";
        }
        s += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        s
    }
}

/// Caller INVITE to 12345 (caller `n`), returning the callee's view of the B leg.
fn start_call(s: &mut Script, c: &Caller, tcp: bool) -> (String, Callee) {
    let branch = s.new_branch();
    let inv = c.invite(&branch, "12345");
    if tcp {
        s.tcp(CALLER, &inv);
    } else {
        s.udp(CALLER, &inv);
    }
    let invite = s.last_request(CALLEE, "INVITE");
    (
        branch,
        Callee {
            tag: "callee1".into(),
            cseq: 100,
            invite,
        },
    )
}

/// Callee 180 and 200, caller ACK: a confirmed call.
fn confirm(s: &mut Script, c: &mut Caller, b: &Callee, tcp: bool) {
    s.udp(CALLEE, &b.answer_invite(100, "Trying", &[], ""));
    s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
    s.advance(6);
    s.udp(CALLEE, &b.answer_invite(200, "OK", &[], SDP));
    let ok = s.last_response(CALLER, 200);
    c.learn(&ok);
    let br = s.new_branch();
    let ack = c.in_dialog("ACK", &br, &[], "");
    send_caller(s, &ack, tcp);
}

fn send_caller(s: &mut Script, msg: &str, tcp: bool) {
    if tcp {
        s.tcp(CALLER, msg);
    } else {
        s.udp(CALLER, msg);
    }
}

/// The caller hangs up; the callee answers the gateway's BYE.
fn caller_bye(s: &mut Script, c: &mut Caller, tcp: bool) {
    let br = s.new_branch();
    let bye = c.in_dialog("BYE", &br, &[], "");
    send_caller(s, &bye, tcp);
    let gw_bye = s.last_request(CALLEE, "BYE");
    s.udp(CALLEE, &answer(&gw_bye, 200, "OK", "x", &[], ""));
}

/// The callee hangs up; the caller answers the gateway's BYE.
fn callee_bye(s: &mut Script, b: &mut Callee, tcp: bool) {
    let br = s.new_branch();
    let bye = b.in_dialog("BYE", &br, 0, "");
    s.udp(CALLEE, &bye);
    let gw_bye = s.last_request(CALLER, "BYE");
    send_caller(s, &answer(&gw_bye, 200, "OK", "x", &[], ""), tcp);
}

fn scenarios() -> Vec<(&'static str, Script)> {
    let mut out = Vec::new();

    // Out of dialog: OPTIONS, an INVITE to a number not in the plan (404 + ACK).
    {
        let mut s = Script::new();
        let br = s.new_branch();
        s.udp(
            CALLER,
            &format!(
                "OPTIONS sip:12345@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch={br}\r\nMax-Forwards: 70\r\nFrom: <{CALLER_URI}>;tag=o1\r\nTo: <sip:12345@127.0.0.1:5060>\r\nCall-ID: opt-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ),
        );
        let c = Caller::new(2, "UDP");
        let br = s.new_branch();
        s.udp(CALLER, &c.invite(&br, "99999"));
        let nf = s.last_response(CALLER, 404);
        let to = header(&parsed(&nf), "To").to_string();
        s.udp(CALLER, &c.same_tx("ACK", &br, &to));
        out.push(("options_and_404", s));
    }

    // INVITE, nobody answers: Timer B, 408 to the caller, which never ACKs.
    {
        let mut s = Script::new();
        let c = Caller::new(1, "UDP");
        start_call(&mut s, &c, false);
        s.next_timers(16);
        s.advance(11);
        s.advance(12);
        out.push(("invite_no_answer", s));
    }

    // 180, 200, ACK, caller BYE.
    for tcp in [false, true] {
        let mut s = Script::new();
        let mut c = Caller::new(1, if tcp { "TCP" } else { "UDP" });
        let (_, b) = start_call(&mut s, &c, tcp);
        confirm(&mut s, &mut c, &b, tcp);
        s.advance(8);
        caller_bye(&mut s, &mut c, tcp);
        out.push((
            if tcp {
                "call_tcp_caller_bye"
            } else {
                "call_caller_bye"
            },
            s,
        ));
    }

    // 200, ACK, callee BYE.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, mut b) = start_call(&mut s, &c, false);
        confirm(&mut s, &mut c, &b, false);
        s.advance(9);
        callee_bye(&mut s, &mut b, false);
        out.push(("call_callee_bye", s));
    }

    // Retransmissions everywhere: INVITE twice, 180 twice, 200 twice, ACK twice.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let br = s.new_branch();
        let inv = c.invite(&br, "12345");
        s.udp(CALLER, &inv);
        let invite = s.last_request(CALLEE, "INVITE");
        let b = Callee {
            tag: "callee1".into(),
            cseq: 100,
            invite,
        };
        s.advance(4);
        s.udp(CALLER, &inv);
        s.advance(5);
        let ringing = b.answer_invite(180, "Ringing", &[], "");
        s.udp(CALLEE, &ringing);
        s.udp(CALLEE, &ringing);
        s.advance(4);
        let ok = b.answer_invite(200, "OK", &[], SDP);
        s.udp(CALLEE, &ok);
        s.advance(4);
        s.udp(CALLEE, &ok);
        let ok_a = s.last_response(CALLER, 200);
        c.learn(&ok_a);
        let br = s.new_branch();
        let ack = c.in_dialog("ACK", &br, &[], "");
        s.udp(CALLER, &ack);
        s.udp(CALLER, &ack);
        s.udp(CALLEE, &ok);
        caller_bye(&mut s, &mut c, false);
        out.push(("call_retransmissions", s));
    }

    // 180, caller CANCEL: 487 to the caller, CANCEL to the callee, 487 from it.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (br, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
        let ringing = s.last_response(CALLER, 180);
        c.learn(&ringing);
        s.udp(
            CALLER,
            &c.same_tx("CANCEL", &br, "<sip:12345@127.0.0.1:5060>"),
        );
        let cancel = s.last_request(CALLEE, "CANCEL");
        s.udp(CALLEE, &answer(&cancel, 200, "OK", &b.tag, &[], ""));
        s.udp(CALLEE, &b.answer_invite(487, "Request Terminated", &[], ""));
        let term = s.last_response(CALLER, 487);
        let to = header(&parsed(&term), "To").to_string();
        s.udp(CALLER, &c.same_tx("ACK", &br, &to));
        out.push(("call_caller_cancel", s));
    }

    // CANCEL before any provisional: the CANCEL waits for the callee's first 1xx.
    {
        let mut s = Script::new();
        let c = Caller::new(1, "UDP");
        let (br, b) = start_call(&mut s, &c, false);
        s.udp(
            CALLER,
            &c.same_tx("CANCEL", &br, "<sip:12345@127.0.0.1:5060>"),
        );
        s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
        let cancel = s.last_request(CALLEE, "CANCEL");
        s.udp(CALLEE, &answer(&cancel, 200, "OK", &b.tag, &[], ""));
        s.udp(CALLEE, &b.answer_invite(487, "Request Terminated", &[], ""));
        let term = s.last_response(CALLER, 487);
        let to = header(&parsed(&term), "To").to_string();
        s.udp(CALLER, &c.same_tx("ACK", &br, &to));
        out.push(("call_cancel_before_provisional", s));
    }

    // CANCEL/200 race: the callee answers 200 after our CANCEL; ACK and BYE it.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (br, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
        c.learn(&s.last_response(CALLER, 180));
        s.udp(
            CALLER,
            &c.same_tx("CANCEL", &br, "<sip:12345@127.0.0.1:5060>"),
        );
        s.udp(CALLEE, &b.answer_invite(200, "OK", &[], SDP));
        let cancel = s.last_request(CALLEE, "CANCEL");
        s.udp(
            CALLEE,
            &answer(
                &cancel,
                481,
                "Call/Transaction Does Not Exist",
                &b.tag,
                &[],
                "",
            ),
        );
        let bye = s.last_request(CALLEE, "BYE");
        s.udp(CALLEE, &answer(&bye, 200, "OK", &b.tag, &[], ""));
        out.push(("call_cancel_200_race", s));
    }

    // Busy: 100, 486 relayed, caller ACKs.
    {
        let mut s = Script::new();
        let c = Caller::new(1, "UDP");
        let (br, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(100, "Trying", &[], ""));
        s.udp(
            CALLEE,
            &b.answer_invite(486, "Busy Here", &["Retry-After: 30"], ""),
        );
        let busy = s.last_response(CALLER, 486);
        let to = header(&parsed(&busy), "To").to_string();
        s.udp(CALLER, &c.same_tx("ACK", &br, &to));
        out.push(("call_busy", s));
    }

    // Ring timeout: 180, then 60 s of ringing: 408 to the caller, CANCEL to the callee.
    {
        let mut s = Script::new();
        let c = Caller::new(1, "UDP");
        let (br, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
        s.advance(13);
        let cancel = s.last_request(CALLEE, "CANCEL");
        s.udp(CALLEE, &answer(&cancel, 200, "OK", &b.tag, &[], ""));
        s.udp(CALLEE, &b.answer_invite(487, "Request Terminated", &[], ""));
        let timeout = s.last_response(CALLER, 408);
        let to = header(&parsed(&timeout), "To").to_string();
        s.udp(CALLER, &c.same_tx("ACK", &br, &to));
        out.push(("call_ring_timeout", s));
    }

    // A BYE from the caller while the call is still ringing.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(180, "Ringing", &[], ""));
        c.learn(&s.last_response(CALLER, 180));
        let br = s.new_branch();
        s.udp(CALLER, &c.in_dialog("BYE", &br, &[], ""));
        let cancel = s.last_request(CALLEE, "CANCEL");
        s.udp(CALLEE, &answer(&cancel, 200, "OK", &b.tag, &[], ""));
        s.udp(CALLEE, &b.answer_invite(487, "Request Terminated", &[], ""));
        out.push(("call_early_bye", s));
    }

    // 200 that the caller never ACKs: Timer L ends it with BYEs.
    {
        let mut s = Script::new();
        let c = Caller::new(1, "UDP");
        let (_, b) = start_call(&mut s, &c, false);
        s.udp(CALLEE, &b.answer_invite(200, "OK", &[], SDP));
        s.next_timers(16);
        s.advance(11);
        let bye = s.last_request(CALLEE, "BYE");
        s.udp(CALLEE, &answer(&bye, 200, "OK", &b.tag, &[], ""));
        out.push(("call_no_ack", s));
    }

    // Reliable provisional: 183 with 100rel, our PRACK, its 200, then the call.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, b) = start_call(&mut s, &c, false);
        s.udp(
            CALLEE,
            &b.answer_invite(
                183,
                "Session Progress",
                &["Require: 100rel", "RSeq: 1"],
                SDP,
            ),
        );
        let prack = s.last_request(CALLEE, "PRACK");
        s.udp(CALLEE, &answer(&prack, 200, "OK", &b.tag, &[], ""));
        s.udp(CALLEE, &b.answer_invite(200, "OK", &[], SDP));
        c.learn(&s.last_response(CALLER, 200));
        let br = s.new_branch();
        let ack = c.in_dialog("ACK", &br, &[], "");
        s.udp(CALLER, &ack);
        caller_bye(&mut s, &mut c, false);
        out.push(("call_100rel", s));
    }

    // In-dialog INFO from the caller, relayed and answered; then the caller hangs up.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, b) = start_call(&mut s, &c, false);
        confirm(&mut s, &mut c, &b, false);
        let br = s.new_branch();
        s.udp(
            CALLER,
            &c.in_dialog("INFO", &br, &["Info-Package: dtmf"], ""),
        );
        let info = s.last_request(CALLEE, "INFO");
        s.udp(CALLEE, &answer(&info, 200, "OK", &b.tag, &[], ""));
        caller_bye(&mut s, &mut c, false);
        out.push(("call_info", s));
    }

    // Re-INVITE from the callee, relayed to the caller, answered, ACKed end to end.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, mut b) = start_call(&mut s, &c, false);
        confirm(&mut s, &mut c, &b, false);
        let br = s.new_branch();
        let reinv = b.in_dialog("INVITE", &br, 0, SDP);
        let reinv_cseq = b.cseq;
        s.udp(CALLEE, &reinv);
        let relayed = s.last_request(CALLER, "INVITE");
        s.udp(
            CALLER,
            &answer(
                &relayed,
                200,
                "OK",
                "x",
                &[&format!("Contact: <{CALLER_URI}>")],
                SDP,
            ),
        );
        let br = s.new_branch();
        s.udp(CALLEE, &b.in_dialog("ACK", &br, reinv_cseq, ""));
        s.advance(6);
        callee_bye(&mut s, &mut b, false);
        out.push(("call_reinvite", s));
    }

    // A confirmed call nobody hangs up: the 600 s limit sends BYE both ways.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, b) = start_call(&mut s, &c, false);
        confirm(&mut s, &mut c, &b, false);
        s.advance(15);
        let bye_b = s.last_request(CALLEE, "BYE");
        s.udp(CALLEE, &answer(&bye_b, 200, "OK", &b.tag, &[], ""));
        let bye_a = s.last_request(CALLER, "BYE");
        s.udp(CALLER, &answer(&bye_a, 200, "OK", "x", &[], ""));
        out.push(("call_max_duration", s));
    }

    // An INFO relayed to the callee that the callee never answers before hanging up.
    {
        let mut s = Script::new();
        let mut c = Caller::new(1, "UDP");
        let (_, mut b) = start_call(&mut s, &c, false);
        confirm(&mut s, &mut c, &b, false);
        let br = s.new_branch();
        s.udp(
            CALLER,
            &c.in_dialog("INFO", &br, &["Info-Package: dtmf"], ""),
        );
        callee_bye(&mut s, &mut b, false);
        out.push(("call_info_unanswered_then_bye", s));
    }

    // Two calls at once.
    {
        let mut s = Script::new();
        let mut c1 = Caller::new(1, "UDP");
        let (_, b1) = start_call(&mut s, &c1, false);
        let c2 = Caller::new(2, "UDP");
        let (br2, b2) = start_call(&mut s, &c2, false);
        confirm(&mut s, &mut c1, &b1, false);
        s.udp(CALLEE, &b2.answer_invite(603, "Decline", &[], ""));
        let dec = s.last_response(CALLER, 603);
        let to = header(&parsed(&dec), "To").to_string();
        s.udp(CALLER, &c2.same_tx("ACK", &br2, &to));
        caller_bye(&mut s, &mut c1, false);
        out.push(("two_calls", s));
    }

    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("seeds/core_input", String::as_str));
    let fail_dir = PathBuf::from(args.get(2).map_or("artifacts-report", String::as_str));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = 0;
    for (name, mut s) in scenarios() {
        if std::env::var_os("HGW_SEEDS_VERBOSE").is_some() {
            eprint!("== {name}\n{}", s.log);
        }
        let bytes = encode(&s.ops);
        // The interactive run and a replay from the bytes must agree.
        let live = s.h.finish();
        let mut replay = Harness::new();
        let mut replay_sent = Vec::new();
        for chunk in hotline_gateway_fuzz::split(&bytes) {
            replay_sent.extend(replay.apply(chunk));
        }
        assert_eq!(
            replay_sent.len(),
            s.sent.len(),
            "{name}: the replay differs from the live run"
        );
        let replayed = replay.finish();
        assert_eq!(
            live, replayed,
            "{name}: the replay differs from the live run"
        );
        let path = match &live {
            Ok(()) => dir.join(format!("{name}.bin")),
            Err(e) => {
                failures += 1;
                eprintln!("INVARIANT FAILS: {name}: {e}");
                std::fs::create_dir_all(&fail_dir).unwrap();
                fail_dir.join(format!("core_input-{name}.bin"))
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        println!(
            "{}: {} ops, {} messages sent, {} records -> {}",
            name,
            s.ops.len(),
            s.sent.len(),
            s.h.records,
            path.display()
        );
    }
    if failures > 0 {
        eprintln!(
            "{failures} scenario(s) break the leak invariant (written to {})",
            fail_dir.display()
        );
    }
}
