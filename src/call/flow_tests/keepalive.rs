//! Keepalive OPTIONS to a registered agent, played against a stranger who
//! answers them for a dead phone.

use std::time::Duration;

use super::support::*;
use crate::call::CoreConfig;
use crate::call::tests::peer;
use crate::sip::message::{Headers, Message, Method};

#[test]
fn a_forged_answer_to_a_keepalive_does_not_keep_a_dead_agent_ready() {
    let mut net = plan_net(CoreConfig {
        max_calls: 10,
        ..Default::default()
    });
    A1.register(&mut net);
    // The agent's phone dies; the gateway's first keepalive is due within 30 s.
    net.advance(Duration::from_secs(31));
    let probe = net.request(A1.peer(), Method::Options);
    // A stranger on another host answers it 200 OK, as the phone would.
    let stranger = peer("127.0.0.99:5071");
    net.send(stranger, &A1.reply(&probe, 200, "OK", ""));
    assert!(
        net.core.stats().foreign_responses >= 1,
        "the forged answer is counted"
    );
    // The probe's own timeout passes: the agent is unreachable, not kept ready.
    net.advance(Duration::from_secs(6));
    assert_eq!(agent_state(&net, A1.id), "unreachable");
    // The real phone answers the next probe (the first one's transaction ends
    // at Timer F, then the next is due): ready again.
    net.advance(Duration::from_secs(60));
    let next = net
        .inbox
        .iter()
        .rev()
        .find_map(|(to, m)| match m {
            Message::Request(r) if *to == A1.peer() && r.method == Method::Options => {
                Some(r.clone())
            }
            _ => None,
        })
        .expect("a later keepalive");
    assert_ne!(next.call_id(), probe.call_id(), "a new probe");
    net.send(A1.peer(), &A1.reply(&next, 200, "OK", ""));
    assert_eq!(agent_state(&net, A1.id), "ready");
}
