//! Keepalive probes (`qualify.rs`) on a virtual clock: through the registrar
//! (REGISTERs written as text), and the prober alone for its limits.

use std::collections::VecDeque;
use std::time::Duration;

use super::qualify::{Qualifier, QualifyConfig};
use super::tests::{AGENT, Lab, Reg, peer};
use super::*;

const EVERY: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the registrar's timers up to `lab.now`.
fn tick(lab: &mut Lab) {
    while let Some(at) = lab.reg.poll_timeout() {
        if at > lab.now {
            break;
        }
        lab.reg.handle_timeout(lab.now);
    }
}

fn probes(lab: &mut Lab) -> Vec<Probe> {
    std::iter::from_fn(|| lab.reg.poll_probe()).collect()
}

fn changes(lab: &mut Lab) -> Vec<(String, bool)> {
    std::iter::from_fn(|| lab.reg.poll_reachability())
        .map(|r| (r.user, r.reachable))
        .collect()
}

/// A lab with agent1001 registered from its softphone.
fn registered() -> Lab {
    let mut lab = Lab::new();
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    lab.events();
    lab
}

#[test]
fn a_registered_contact_is_probed_every_interval_at_the_address_it_registered_from() {
    let mut lab = registered();
    lab.advance(EVERY - Duration::from_millis(1));
    tick(&mut lab);
    assert!(probes(&mut lab).is_empty(), "not before the interval");
    lab.advance(Duration::from_millis(1));
    tick(&mut lab);
    let p = probes(&mut lab);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].user, AGENT);
    assert_eq!(p[0].contact, "sip:agent1001@192.0.2.20:5060");
    assert_eq!(p[0].peer, lab.src);
    // Answered: still reachable, probed again an interval after the answer.
    lab.advance(Duration::from_millis(20));
    lab.reg.probe_answered(lab.now, p[0].id);
    assert!(changes(&mut lab).is_empty());
    assert!(!lab.reg.is_unreachable(AGENT));
    assert_eq!(lab.reg.poll_timeout().map(|t| t - lab.now), Some(EVERY));
}

#[test]
fn an_unanswered_probe_makes_the_agent_unreachable_and_an_answer_brings_it_back() {
    let mut lab = registered();
    lab.advance(EVERY);
    tick(&mut lab);
    let p = probes(&mut lab);
    lab.advance(TIMEOUT - Duration::from_millis(1));
    tick(&mut lab);
    assert!(changes(&mut lab).is_empty(), "reachable until the timeout");
    lab.advance(Duration::from_millis(1));
    tick(&mut lab);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), false)]);
    assert!(lab.reg.is_unreachable(AGENT));
    // No second probe while the first one's transaction runs (Timer F).
    lab.advance(Duration::from_secs(27));
    tick(&mut lab);
    assert!(probes(&mut lab).is_empty());
    lab.reg.probe_lost(lab.now, p[0].id);
    assert!(changes(&mut lab).is_empty(), "still unreachable");
    lab.advance(EVERY);
    tick(&mut lab);
    let p = probes(&mut lab);
    assert_eq!(p.len(), 1, "probed again an interval later");
    lab.reg.probe_answered(lab.now, p[0].id);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), true)]);
    assert!(!lab.reg.is_unreachable(AGENT));
}

#[test]
fn a_late_answer_and_a_register_refresh_each_prove_the_phone_alive() {
    let mut lab = registered();
    lab.advance(EVERY);
    tick(&mut lab);
    let p = probes(&mut lab);
    lab.advance(TIMEOUT);
    tick(&mut lab);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), false)]);
    // The answer comes after the timeout, before Timer F: it counts.
    lab.reg.probe_answered(lab.now, p[0].id);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), true)]);
    // Unreachable again, then the phone refreshes its registration.
    lab.advance(EVERY);
    tick(&mut lab);
    assert_eq!(probes(&mut lab).len(), 1);
    lab.advance(TIMEOUT);
    tick(&mut lab);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), false)]);
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), true)]);
}

#[test]
fn an_agent_is_unreachable_only_when_all_its_bindings_are() {
    let mut lab = Lab::new();
    let both = Reg::new(AGENT).contacts(&[
        "<sip:agent1001@192.0.2.20:5060>",
        "<sip:agent1001@192.0.2.20:5062>",
    ]);
    assert_eq!(lab.register(both).code, 200);
    lab.advance(EVERY);
    tick(&mut lab);
    let p = probes(&mut lab);
    assert_eq!(p.len(), 2, "{p:?}");
    lab.reg.probe_answered(lab.now, p[0].id);
    lab.advance(TIMEOUT);
    tick(&mut lab);
    assert!(changes(&mut lab).is_empty(), "one binding still answers");
    assert!(!lab.reg.is_unreachable(AGENT));
    // Removing the binding that answers leaves only the silent one.
    let gone = Reg::new(AGENT)
        .contacts(&["<sip:agent1001@192.0.2.20:5060>"])
        .expires("0");
    assert_eq!(lab.register(gone).code, 200);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), false)]);
    // And removing that one too leaves nothing to be unreachable.
    let gone = Reg::new(AGENT)
        .contacts(&["<sip:agent1001@192.0.2.20:5062>"])
        .expires("0");
    assert_eq!(lab.register(gone).code, 200);
    assert_eq!(changes(&mut lab), vec![(AGENT.to_string(), true)]);
    assert!(!lab.reg.is_unreachable(AGENT));
}

#[test]
fn an_expired_or_removed_binding_is_probed_no_more() {
    let mut lab = Lab::new();
    assert_eq!(lab.register(Reg::new(AGENT).expires("60")).code, 200);
    lab.advance(Duration::from_secs(61));
    tick(&mut lab);
    assert!(
        lab.events()
            .iter()
            .any(|e| matches!(e, RegistrarEvent::Expired { .. }))
    );
    // Probes due before the expiry went out; none after it.
    for p in probes(&mut lab) {
        lab.reg.probe_answered(lab.now, p.id);
    }
    lab.advance(Duration::from_secs(3600));
    tick(&mut lab);
    assert!(probes(&mut lab).is_empty());
    assert_eq!(lab.reg.probes_outstanding(), 0);
}

#[test]
fn attacker_strangers_registering_without_a_password_make_the_gateway_probe_nobody() {
    let mut lab = Lab::new();
    for i in 0..200 {
        lab.src = peer(&format!("198.51.100.{}:5060", i % 250));
        let mut r = Reg::new(AGENT).contacts(&[&format!("<sip:x@198.51.100.{}:5060>", i % 250)]);
        r.cseq = i + 1;
        r.auth = Some(
            "Digest username=\"agent1001\", realm=\"hotline.test\", nonce=\"forged\", \
             uri=\"sip:gw.example\", response=\"00\", algorithm=MD5"
                .into(),
        );
        let code = lab.send(&r).code;
        assert_ne!(code, 200);
    }
    lab.advance(Duration::from_secs(7200));
    tick(&mut lab);
    assert!(probes(&mut lab).is_empty());
    assert_eq!(lab.reg.probes_outstanding(), 0);
}

#[test]
fn attacker_probes_in_flight_never_exceed_the_bound_and_the_rest_wait_their_turn() {
    let cfg = QualifyConfig {
        every: EVERY,
        timeout: TIMEOUT,
        max_outstanding: 3,
    };
    let mut q = Qualifier::new(cfg);
    let t0 = std::time::Instant::now();
    for i in 0..10 {
        let contact = format!("sip:a{i}@192.0.2.{i}:5060");
        q.bound(
            t0,
            &format!("a{i}"),
            &contact,
            peer(&format!("192.0.2.{i}:5060")),
        );
    }
    let mut now = t0 + EVERY;
    q.handle_timeout(now);
    let first: Vec<Probe> = std::iter::from_fn(|| q.poll_probe()).collect();
    assert_eq!(first.len(), 3, "only as many as the bound");
    assert_eq!(q.outstanding(), 3);
    // The silent ones time out but keep their slots until their transactions end.
    now += TIMEOUT;
    q.handle_timeout(now);
    assert!(q.poll_probe().is_none());
    assert_eq!(q.outstanding(), 3);
    // Each transaction that ends lets one waiting binding go, oldest first.
    let mut sent = first.len();
    let mut queue: VecDeque<Probe> = first.into();
    while let Some(p) = queue.pop_front() {
        now += Duration::from_millis(10);
        q.lost(now, p.id);
        let next: Vec<Probe> = std::iter::from_fn(|| q.poll_probe()).collect();
        assert!(next.len() <= 1, "{next:?}");
        sent += next.len();
        queue.extend(next);
        assert!(q.outstanding() <= 3);
    }
    assert_eq!(sent, 10, "every binding is probed in turn");
    // Unknown and repeated probe ids change nothing.
    q.answered(now, 9_999);
    q.lost(now, 0);
    assert_eq!(q.outstanding(), 0);
}

#[test]
fn zero_turns_probing_off_and_bad_settings_name_their_key() {
    let mut q = Qualifier::new(QualifyConfig {
        every: Duration::ZERO,
        ..QualifyConfig::default()
    });
    let t0 = std::time::Instant::now();
    q.bound(t0, "a", "sip:a@192.0.2.1", peer("192.0.2.1:5060"));
    assert_eq!(q.poll_timeout(), None);
    let cfg = RegistrarConfig {
        qualify: QualifyConfig {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_outstanding: 1,
        },
        ..RegistrarConfig::default()
    };
    let err = cfg.validate().unwrap_err();
    assert!(err.to_string().contains("qualify_timeout"), "{err}");
}
