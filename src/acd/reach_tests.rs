//! Agents whose phones stop answering the keepalive (`Acd::set_reachable`), on a
//! virtual clock.

use std::time::{Duration, Instant};

use super::*;

fn acd(t0: Instant) -> Acd {
    let cfg = AcdConfig {
        queues: vec![QueueConfig {
            name: "q".into(),
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::from_secs(5),
            max_wait: Duration::from_secs(300),
            overflow: Overflow::Callback,
            skill_widen_after: Duration::from_secs(30),
            auto_pause_after_misses: 3,
            members: vec![Member::Agent("1001".into())],
        }],
        agents: vec![AgentConfig {
            id: "1001".into(),
            name: "agent 1001".into(),
            skills: Vec::new(),
        }],
    };
    let mut acd = Acd::new(cfg, t0).unwrap();
    acd.login("1001", "sip:1001@192.0.2.1".into(), t0).unwrap();
    acd
}

fn rings(acd: &mut Acd) -> Vec<(CallId, String)> {
    std::iter::from_fn(|| acd.poll_command())
        .filter_map(|c| match c {
            Command::Ring { call, agent, .. } => Some((call, agent)),
            _ => None,
        })
        .collect()
}

fn status(acd: &Acd) -> AgentStatus {
    acd.agent_state("1001").unwrap().status()
}

#[test]
fn an_unreachable_agent_is_never_rung_and_is_rung_once_it_answers_again() {
    let t0 = Instant::now();
    let mut acd = acd(t0);
    acd.set_reachable("1001", false, t0).unwrap();
    assert_eq!(status(&acd), AgentStatus::Unreachable);
    acd.offer(t0, 1, "q", None, 0).unwrap();
    assert!(rings(&mut acd).is_empty(), "nobody to ring");
    let view = acd.agent("1001", t0).unwrap();
    assert_eq!(
        (view.state, view.reachable),
        (AgentStatus::Unreachable, false)
    );
    assert_eq!(acd.queues(t0)[0].agents.unreachable, 1);
    assert_eq!(acd.queues(t0)[0].waiting, 1);
    let t1 = t0 + Duration::from_secs(40);
    acd.set_reachable("1001", true, t1).unwrap();
    assert_eq!(rings(&mut acd), vec![(1, "1001".to_string())]);
    assert_eq!(status(&acd), AgentStatus::Ringing);
}

#[test]
fn a_call_in_progress_goes_on_and_its_end_leads_to_unreachable() {
    let t0 = Instant::now();
    let mut acd = acd(t0);
    acd.offer(t0, 1, "q", None, 0).unwrap();
    assert_eq!(rings(&mut acd).len(), 1);
    acd.answered(t0, 1, "1001").unwrap();
    acd.set_reachable("1001", false, t0).unwrap();
    assert_eq!(status(&acd), AgentStatus::OnCall);
    assert!(!acd.agent("1001", t0).unwrap().reachable);
    acd.call_ended(t0, 1).unwrap();
    assert_eq!(status(&acd), AgentStatus::WrapUp);
    let t1 = acd.poll_timeout().unwrap();
    acd.handle_timeout(t1);
    assert_eq!(status(&acd), AgentStatus::Unreachable, "not Ready");
    // A call that comes now waits.
    acd.offer(t1, 2, "q", None, 0).unwrap();
    assert!(rings(&mut acd).is_empty());
}

#[test]
fn pause_logout_and_login_while_unreachable() {
    let t0 = Instant::now();
    let mut acd = acd(t0);
    acd.set_reachable("1001", false, t0).unwrap();
    acd.pause("1001", "lunch".into(), t0).unwrap();
    assert_eq!(status(&acd), AgentStatus::Paused);
    acd.unpause("1001", t0).unwrap();
    assert_eq!(
        status(&acd),
        AgentStatus::Unreachable,
        "unpaused, still silent"
    );
    acd.logout("1001", t0).unwrap();
    assert_eq!(status(&acd), AgentStatus::LoggedOut);
    // A new registration is a sign of life.
    acd.login("1001", "sip:1001@192.0.2.1".into(), t0).unwrap();
    assert_eq!(status(&acd), AgentStatus::Ready);
    assert!(acd.agent("1001", t0).unwrap().reachable);
}
