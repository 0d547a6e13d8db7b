//! A cluster node's part, on a virtual clock: a standby refuses OPTIONS and
//! REGISTER, holds a new INVITE while it may be taking over and serves it once
//! active, refuses it when its time is up or at once while draining, and
//! records each refusal. An attacker (a trunk flooding the standby) cannot make
//! it hold more than its bound.

use std::time::Duration;

use super::tests::*;
use super::*;
use crate::sip::message::{Headers, Message, Method};

const HOLD: Duration = Duration::from_secs(3);

fn standby() -> Net {
    let mut net = Net::new();
    let plan = crate::dialplan::parse_sources(&[(
        "l.toml".into(),
        format!(
            "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n\
[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"sip:{CALLEE}\"\n"
        ),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        clustered: true,
        start_standby: true,
        standby_hold: Some(HOLD),
        ..Default::default()
    };
    let caller = net.caller;
    net = Net::with(cfg, plan);
    net.caller = caller;
    net
}

fn invite(n: u32) -> Vec<u8> {
    String::from_utf8(caller_invite())
        .unwrap()
        .replace("a-call@", &format!("a-call-{n}@"))
        .replace("z9hG4bKa1", &format!("z9hG4bKp{n}"))
        .into_bytes()
}

#[test]
fn a_standby_answers_options_with_503_and_holds_an_invite_until_active() {
    let mut net = standby();
    assert_eq!(net.core.serving(), Serving::Standby);
    let options = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKo1\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@192.0.2.10>;tag=p1\r\nTo: <sip:127.0.0.1>\r\n\
Call-ID: probe@192.0.2.10\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    net.send(net.caller, options.as_bytes());
    let r = net.response(net.caller, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    net.send(net.caller, &invite(1));
    net.response(net.caller, 100);
    net.none_to(net.callee, "INVITE", |m| matches!(m, Message::Request(_)));
    // The lease comes 1 s later: the held call is served.
    net.advance(Duration::from_secs(1));
    net.core.activate(net.now, Vec::new(), &[]);
    net.collect();
    net.request(net.callee, Method::Invite);
    assert_eq!(net.core.active_calls(), 1);
}

#[test]
fn a_held_invite_is_refused_with_a_record_when_no_lease_comes() {
    let mut net = standby();
    net.send(net.caller, &invite(1));
    net.response(net.caller, 100);
    net.advance(HOLD + Duration::from_millis(10));
    let r = net.response(net.caller, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    let rec = net.record();
    assert_eq!(rec.reason, Reason::ClusterStandby);
    net.drained();
}

#[test]
fn a_cancel_for_a_held_invite_gets_487_and_a_record() {
    let mut net = standby();
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 100);
    net.send(net.caller, &caller_cancel());
    net.response(net.caller, 200);
    net.response(net.caller, 487);
    assert_eq!(net.record().reason, Reason::CallerCancelled);
    // Taking the lease later serves nothing.
    net.core.activate(net.now, Vec::new(), &[]);
    net.collect();
    net.none_to(net.callee, "INVITE", |m| matches!(m, Message::Request(_)));
    net.drained();
}

#[test]
fn a_draining_node_refuses_new_calls_at_once() {
    let mut net = Net::new();
    net.core.step_down(net.now, Serving::Draining);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 503);
    assert_eq!(net.record().reason, Reason::ClusterDraining);
    net.drained();
}

#[test]
fn attacker_a_flood_at_the_standby_is_held_only_up_to_its_bound() {
    let mut net = standby();
    let n = super::serving::MAX_PARKED as u32 + 50;
    for i in 0..n {
        net.send(net.caller, &invite(i));
    }
    let refused_now = net
        .inbox
        .iter()
        .filter(|(_, m)| matches!(m, Message::Response(r) if r.code == 503))
        .count();
    assert_eq!(refused_now, 50, "beyond the bound: refused at once");
    assert_eq!(net.core.parked.len(), super::serving::MAX_PARKED);
    net.inbox.clear();
    net.advance(HOLD + Duration::from_millis(10));
    assert!(
        net.core.parked.is_empty(),
        "every held INVITE answered in time"
    );
}
