//! ACD scenarios on a virtual clock: no SIP, no sockets; the harness plays the
//! call layer (answers or fails rings, ends calls) and steps time from deadline to
//! deadline the way the real driver does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn queue(name: &str, strategy: Strategy, members: &[&str]) -> QueueConfig {
    QueueConfig {
        name: name.into(),
        strategy,
        ring_timeout: secs(15),
        wrap_up: secs(5),
        max_wait: secs(300),
        overflow: Overflow::Callback,
        skill_widen_after: secs(30),
        auto_pause_after_misses: 3,
        members: members
            .iter()
            .map(|m| Member::Agent(m.to_string()))
            .collect(),
    }
}

fn agent(id: &str, skills: &[(&str, u8)]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        name: format!("agent {id}"),
        skills: skills.iter().map(|(s, p)| (s.to_string(), *p)).collect(),
    }
}

fn config(queues: Vec<QueueConfig>, agents: &[&str]) -> AcdConfig {
    AcdConfig {
        queues,
        agents: agents.iter().map(|id| agent(id, &[])).collect(),
    }
}

const FOUR: [&str; 4] = ["1001", "1002", "1003", "1004"];

/// The ACD plus a virtual clock and everything it has said.
struct H {
    acd: Acd,
    t0: Instant,
    now: Instant,
    events: Vec<AcdEvent>,
}

impl H {
    fn new(cfg: AcdConfig) -> H {
        let t0 = Instant::now();
        H {
            acd: Acd::new(cfg, t0).unwrap(),
            t0,
            now: t0,
            events: Vec::new(),
        }
    }

    fn login(&mut self, ids: &[&str]) {
        for id in ids {
            self.acd
                .login(id, format!("sip:{id}@192.0.2.1"), self.now)
                .unwrap();
        }
    }

    /// Moves the clock, firing each deadline at its own instant.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(at) = self.acd.poll_timeout() {
            if at > until {
                break;
            }
            self.now = at.max(self.now);
            self.acd.handle_timeout(self.now);
        }
        self.now = until;
    }

    fn at(&self) -> Duration {
        self.now - self.t0
    }

    fn take(&mut self) -> Vec<Command> {
        while let Some(e) = self.acd.poll_event() {
            self.events.push(e);
        }
        std::iter::from_fn(|| self.acd.poll_command()).collect()
    }

    /// The rings among the pending commands, which must be nothing else.
    fn rings(&mut self) -> Vec<(CallId, String)> {
        self.take()
            .into_iter()
            .map(|c| match c {
                Command::Ring { call, agent, .. } => (call, agent),
                other => panic!("expected only rings, got {other:?}"),
            })
            .collect()
    }

    fn offer(&mut self, call: CallId, queue: &str) {
        self.acd.offer(self.now, call, queue, None, 5).unwrap();
    }

    fn answer(&mut self, call: CallId, agent: &str) {
        self.acd.answered(self.now, call, agent).unwrap();
    }

    fn state(&self, agent: &str) -> AgentState {
        self.acd.agent_state(agent).cloned().unwrap()
    }
}

/// Runs `n` calls through queue "q" of four agents who answer at once and talk for
/// `talk(i)`; a call arrives every `every`. Returns calls answered per agent.
fn run_load(
    strategy: Strategy,
    n: u64,
    every: Duration,
    talk: impl Fn(u64) -> Duration,
) -> BTreeMap<String, u64> {
    let mut h = H::new(config(vec![queue("q", strategy, &FOUR)], &FOUR));
    h.login(&FOUR);
    let (mut offered, mut next_arrival) = (0, h.now);
    let mut ends: Vec<(Instant, CallId)> = Vec::new();
    let mut served = BTreeMap::new();
    loop {
        for (call, agent) in h.rings() {
            h.answer(call, &agent);
            *served.entry(agent).or_insert(0) += 1;
            ends.push((h.now + talk(call), call));
        }
        let arrival = (offered < n).then_some(next_arrival);
        let end = ends.iter().map(|e| e.0).min();
        let Some(t) = [arrival, end, h.acd.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        h.now = t;
        if arrival == Some(t) {
            h.offer(offered, "q");
            offered += 1;
            next_arrival += every;
        }
        ends.retain(|&(at, call)| {
            if at <= t {
                h.acd.call_ended(t, call).unwrap();
            }
            at > t
        });
        h.acd.handle_timeout(t);
    }
    assert!(h.acd.calls.is_empty(), "every call served");
    served
}

fn assert_even(served: &BTreeMap<String, u64>, total: u64, slack: u64) {
    assert_eq!(served.values().sum::<u64>(), total);
    let even = total / served.len() as u64;
    for (agent, n) in served {
        assert!(
            n.abs_diff(even) <= slack,
            "{agent} got {n}, even is {even}: {served:?}"
        );
    }
}

#[test]
fn round_robin_gives_each_agent_exactly_a_quarter() {
    // One call at a time, and with three calls overlapping.
    for every in [secs(60), secs(10)] {
        let served = run_load(Strategy::RoundRobin, 400, every, |_| secs(25));
        assert_even(&served, 400, 0);
    }
}

#[test]
fn longest_idle_and_fewest_calls_are_fair() {
    for strategy in [Strategy::LongestIdle, Strategy::FewestCalls] {
        for every in [secs(60), secs(10)] {
            let served = run_load(strategy, 400, every, |_| secs(25));
            assert_even(&served, 400, 2);
        }
    }
}

#[test]
fn fewest_calls_balances_uneven_talk_times() {
    // Talk times from 5 s to 64 s, pseudo-random but fixed.
    let talk = |i: u64| secs(5 + (i.wrapping_mul(2_654_435_761) >> 7) % 60);
    let served = run_load(Strategy::FewestCalls, 400, secs(12), talk);
    assert_even(&served, 400, 2);
}

#[test]
fn longest_idle_rings_the_agent_ready_longest() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &FOUR)],
        &FOUR,
    ));
    h.login(&["1003"]);
    h.advance(secs(1));
    h.login(&["1001", "1002"]);
    h.offer(1, "q");
    assert_eq!(h.rings(), [(1, "1003".into())]);
    h.offer(2, "q");
    // 1001 and 1002 logged in at the same instant: the first to log in wins.
    assert_eq!(h.rings(), [(2, "1001".into())]);
}

#[test]
fn round_robin_rotates_over_member_order_skipping_busy_agents() {
    let mut h = H::new(config(vec![queue("q", Strategy::RoundRobin, &FOUR)], &FOUR));
    h.login(&FOUR);
    let mut order = Vec::new();
    for call in 1..=6 {
        h.offer(call, "q");
        let [(c, a)] = h.rings().try_into().unwrap();
        h.answer(c, &a);
        order.push(a);
        // 1002 keeps call 2; the others finish theirs.
        if call != 2 {
            h.acd.call_ended(h.now, c).unwrap();
            h.advance(secs(6));
        }
    }
    assert_eq!(order, ["1001", "1002", "1003", "1004", "1001", "1003"]);
}

#[test]
fn ring_timeout_moves_the_call_to_the_next_agent() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &FOUR[..2])],
        &FOUR,
    ));
    h.login(&["1001", "1002"]);
    h.offer(1, "q");
    assert_eq!(h.rings(), [(1, "1001".into())]);
    h.advance(secs(14));
    assert!(h.take().is_empty());
    h.advance(secs(1));
    let cancel = Command::CancelRing {
        call: 1,
        agent: "1001".into(),
    };
    let ring = Command::Ring {
        call: 1,
        agent: "1002".into(),
        target: "sip:1002@192.0.2.1".into(),
    };
    assert_eq!(h.take(), [cancel, ring]);
    assert_eq!(h.state("1001"), AgentState::Ready);
    assert_eq!(h.acd.agent("1001", h.now).unwrap().missed_in_row, 1);
    // 1002 misses too: every member was tried; a new round rings 1001 again,
    // NEXT_ROUND_DELAY after the last miss.
    h.advance(secs(15));
    assert!(matches!(
        h.take()[..],
        [Command::CancelRing { call: 1, .. }]
    ));
    h.advance(NEXT_ROUND_DELAY);
    assert_eq!(h.rings(), [(1, "1001".into())]);
    assert_eq!(h.at(), secs(32));
}

#[test]
fn a_seat_failing_at_once_is_retried_after_a_delay_not_in_a_loop() {
    let mut q = queue("q", Strategy::LongestIdle, &["1001"]);
    q.auto_pause_after_misses = 0;
    let mut h = H::new(config(vec![q], &FOUR));
    h.login(&["1001"]);
    h.offer(1, "q");
    for _ in 0..5 {
        // The driver fails the ring as it handles the Ring command.
        assert_eq!(h.rings(), [(1, "1001".into())]);
        h.acd.ring_failed(h.now, 1, "1001").unwrap();
        assert!(h.rings().is_empty());
        h.advance(NEXT_ROUND_DELAY);
    }
    assert_eq!(h.state("1001"), AgentState::Ringing { call: 1 });
    assert_eq!(h.acd.agent("1001", h.now).unwrap().missed_in_row, 5);
}

#[test]
fn a_missed_agent_is_not_rung_again_before_the_others() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::RoundRobin, &FOUR[..2])],
        &FOUR,
    ));
    h.login(&["1001", "1002"]);
    h.offer(1, "q");
    h.offer(2, "q");
    assert_eq!(h.rings(), [(1, "1001".into()), (2, "1002".into())]);
    h.acd.ring_failed(h.now, 1, "1001").unwrap();
    // 1001 is Ready, but missed call 1 and 1002 (busy) has not been tried: wait.
    assert!(h.rings().is_empty());
    assert_eq!(h.state("1001"), AgentState::Ready);
    h.answer(2, "1002");
    h.acd.call_ended(h.now, 2).unwrap();
    h.advance(secs(5));
    assert_eq!(h.rings(), [(1, "1002".into())]);
}

#[test]
fn a_failed_ring_puts_the_call_back_at_the_front() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &FOUR[..2])],
        &FOUR,
    ));
    h.login(&["1001", "1002"]);
    h.offer(100, "q");
    h.answer(100, "1001");
    h.offer(1, "q");
    h.advance(secs(1));
    h.offer(2, "q");
    assert_eq!(h.rings(), [(100, "1001".into()), (1, "1002".into())]);
    // 1002 fails call 1, then takes call 2 (call 1 waits for 1001, not yet tried).
    h.acd.ring_failed(h.now, 1, "1002").unwrap();
    assert_eq!(h.rings(), [(2, "1002".into())]);
    h.answer(2, "1002");
    h.offer(3, "q");
    // When 1001 is free, call 1 is still ahead of call 3.
    h.acd.call_ended(h.now, 100).unwrap();
    h.advance(secs(5));
    assert_eq!(h.rings(), [(1, "1001".into())]);
}

#[test]
fn consecutive_misses_auto_pause_the_agent() {
    let mut q = queue("q", Strategy::LongestIdle, &["1001"]);
    q.auto_pause_after_misses = 2;
    let mut h = H::new(config(vec![q], &FOUR));
    h.login(&["1001"]);
    // A miss, an answer (resets the count), then two misses in a row.
    h.offer(1, "q");
    h.acd.ring_failed(h.now, 1, "1001").unwrap();
    h.advance(NEXT_ROUND_DELAY);
    h.answer(1, "1001");
    h.acd.call_ended(h.now, 1).unwrap();
    h.advance(secs(5));
    h.offer(2, "q");
    h.acd.ring_failed(h.now, 2, "1001").unwrap();
    // One miss: still in service, rung again in the next round.
    assert_eq!(h.state("1001"), AgentState::Ready);
    h.advance(NEXT_ROUND_DELAY);
    assert_eq!(h.state("1001"), AgentState::Ringing { call: 2 });
    h.take();
    h.advance(secs(15));
    let reason = "auto: 2 missed calls".to_string();
    assert_eq!(h.state("1001"), AgentState::Paused { reason });
    assert_eq!(
        h.take(),
        [Command::CancelRing {
            call: 2,
            agent: "1001".into()
        }]
    );
    // The caller waits; a supervisor unpauses and the count starts over.
    h.acd.unpause("1001", h.now).unwrap();
    assert_eq!(h.acd.agent("1001", h.now).unwrap().missed_in_row, 0);
    h.advance(NEXT_ROUND_DELAY);
    assert_eq!(h.rings(), [(2, "1001".into())]);
}

#[test]
fn wrap_up_holds_the_agent_for_exactly_its_duration() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &["1001"])],
        &FOUR,
    ));
    h.login(&["1001"]);
    h.offer(1, "q");
    h.rings();
    h.answer(1, "1001");
    h.advance(secs(30));
    h.acd.call_ended(h.now, 1).unwrap();
    let until = h.now + secs(5);
    assert_eq!(h.state("1001"), AgentState::WrapUp { until });
    h.advance(secs(1));
    h.offer(2, "q");
    h.advance(Duration::from_millis(3_999));
    assert!(h.rings().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.rings(), [(2, "1001".into())]);
    assert_eq!(h.at(), secs(35));
}

#[test]
fn skills_prefer_the_best_priority_then_widen_after_the_wait() {
    let mut cfg = config(
        vec![queue("q", Strategy::Skills, &["1001", "1002", "1003"])],
        &[],
    );
    cfg.agents = vec![
        agent("1001", &[("12315", 2)]),
        agent("1002", &[("12315", 1), ("12333", 3)]),
        agent("1003", &[("12333", 1)]),
    ];
    let mut h = H::new(cfg);
    h.login(&["1003", "1001", "1002"]);
    let skill = Some("12315".to_string());
    for call in 1..=3 {
        h.acd.offer(h.now, call, "q", skill.clone(), 5).unwrap();
    }
    // The best skilled agent first, then the next; 1003 lacks the skill.
    assert_eq!(h.rings(), [(1, "1002".into()), (2, "1001".into())]);
    h.advance(secs(14));
    h.answer(1, "1002");
    h.answer(2, "1001");
    assert!(h.rings().is_empty());
    h.advance(secs(15));
    assert!(h.rings().is_empty());
    h.advance(secs(1));
    assert_eq!(h.rings(), [(3, "1003".into())]);
    assert_eq!(h.at(), secs(30));
}

#[test]
fn priority_first_then_first_come_first_served() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &["1001"])],
        &FOUR,
    ));
    for (call, priority) in [(1, 5), (2, 5), (3, 0), (4, 5), (5, 1)] {
        h.acd.offer(h.now, call, "q", None, priority).unwrap();
        h.advance(secs(1));
    }
    h.login(&["1001"]);
    let mut order = Vec::new();
    while let [(call, _)] = h.rings()[..] {
        order.push(call);
        h.answer(call, "1001");
        h.acd.call_ended(h.now, call).unwrap();
        h.advance(secs(5));
    }
    assert_eq!(order, [3, 5, 1, 2, 4]);
}

#[test]
fn max_wait_overflows_to_the_next_queue_keeping_the_offer_time() {
    let mut a = queue("a", Strategy::LongestIdle, &["1001"]);
    a.max_wait = secs(60);
    a.overflow = Overflow::Queue("b".into());
    let b = queue("b", Strategy::LongestIdle, &["1002"]);
    let mut h = H::new(config(vec![a, b], &FOUR));
    h.login(&["1002"]);
    h.offer(100, "b");
    h.answer(100, "1002");
    h.take();
    h.offer(1, "a");
    h.advance(secs(30));
    h.offer(2, "b");
    h.advance(secs(30));
    let overflow = Command::Overflow {
        call: 1,
        from: "a".into(),
        to: "b".into(),
        cause: Cause::MaxWait,
    };
    assert_eq!(overflow.reason_code(), Some("acd.max_wait_overflow"));
    assert_eq!(h.take(), [overflow]);
    assert_eq!(h.acd.call_queue(1), Some("b"));
    let b = &h.acd.queues(h.now)[1];
    assert_eq!((b.waiting, b.longest_wait_ms), (2, 60_000));
    // Call 1 was offered before call 2: it is served first in b.
    h.acd.call_ended(h.now, 100).unwrap();
    h.advance(secs(5));
    assert_eq!(h.rings(), [(1, "1002".into())]);
}

#[test]
fn the_last_queue_expires_to_a_callback() {
    let mut q = queue("q", Strategy::LongestIdle, &["1001"]);
    q.max_wait = secs(120);
    let mut h = H::new(config(vec![q], &FOUR));
    h.offer(1, "q");
    h.advance(secs(119));
    assert!(h.take().is_empty());
    h.advance(secs(1));
    let expire = Command::Expire {
        call: 1,
        queue: "q".into(),
        cause: Cause::MaxWait,
    };
    assert_eq!(expire.reason_code(), Some("acd.max_wait_callback"));
    assert_eq!(h.take(), [expire]);
    assert_eq!(h.acd.abandon(h.now, 1), Err(AcdError::UnknownCall(1)));
    assert_eq!(h.acd.poll_timeout(), None);
}

#[test]
fn max_wait_during_a_ring_lets_the_ring_finish() {
    let mut q = queue("q", Strategy::LongestIdle, &["1001"]);
    q.max_wait = secs(20);
    let mut h = H::new(config(vec![q], &FOUR));
    h.offer(1, "q");
    h.offer(2, "q");
    h.advance(secs(10));
    h.login(&["1001"]);
    assert_eq!(h.rings(), [(1, "1001".into())]);
    h.advance(secs(10));
    // Call 2 (waiting) expires at 20 s; call 1 keeps ringing.
    assert!(matches!(h.take()[..], [Command::Expire { call: 2, .. }]));
    h.advance(secs(5));
    let cmds = h.take();
    assert!(matches!(
        cmds[..],
        [
            Command::CancelRing { call: 1, .. },
            Command::Expire { call: 1, .. }
        ]
    ));
}

#[test]
fn abandon_while_queued_or_ringing_counts_no_miss() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &["1001"])],
        &FOUR,
    ));
    h.offer(1, "q");
    h.acd.abandon(h.now, 1).unwrap();
    assert!(h.take().is_empty());
    assert_eq!(h.acd.queues(h.now)[0].waiting, 0);
    h.login(&["1001"]);
    assert!(h.rings().is_empty());
    h.offer(2, "q");
    h.rings();
    h.acd.abandon(h.now, 2).unwrap();
    let cancel = Command::CancelRing {
        call: 2,
        agent: "1001".into(),
    };
    assert_eq!(h.take(), [cancel]);
    assert_eq!(h.state("1001"), AgentState::Ready);
    assert_eq!(h.acd.agent("1001", h.now).unwrap().missed_in_row, 0);
    // The ring timer of the abandoned call is dead.
    assert_eq!(h.acd.poll_timeout(), None);
}

#[test]
fn logout_or_pause_during_a_call_takes_effect_at_its_end() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &FOUR[..2])],
        &FOUR,
    ));
    h.login(&["1001", "1002"]);
    h.offer(1, "q");
    h.offer(2, "q");
    h.rings();
    h.answer(1, "1001");
    h.answer(2, "1002");
    h.acd.logout("1001", h.now).unwrap();
    h.acd.pause("1002", "lunch".into(), h.now).unwrap();
    assert_eq!(h.state("1001"), AgentState::OnCall { call: 1 });
    assert!(h.acd.agent("1001", h.now).unwrap().change_pending);
    let paused = h.acd.agent("1002", h.now).unwrap();
    assert_eq!(
        (paused.pending_state, paused.pending_reason.as_deref()),
        (Some("paused"), Some("lunch"))
    );
    let out = h.acd.agent("1001", h.now).unwrap();
    assert_eq!(
        (out.pending_state, out.pending_reason),
        (Some("logged_out"), None)
    );
    h.acd.call_ended(h.now, 1).unwrap();
    h.acd.call_ended(h.now, 2).unwrap();
    assert_eq!(h.state("1001"), AgentState::LoggedOut);
    assert!(matches!(h.state("1002"), AgentState::WrapUp { .. }));
    h.advance(secs(5));
    let reason = "lunch".to_string();
    assert_eq!(h.state("1002"), AgentState::Paused { reason });
    h.offer(3, "q");
    assert!(h.rings().is_empty());
}

#[test]
fn static_members_ring_their_uri_one_call_at_a_time() {
    let mut q = queue("q", Strategy::LongestIdle, &[]);
    q.members = vec![Member::Static {
        id: "legacy-1".into(),
        target: "sip:12333@10.0.0.1".into(),
    }];
    let mut h = H::new(config(vec![q], &[]));
    assert_eq!(h.state("legacy-1"), AgentState::Ready);
    assert!(h.acd.agent("legacy-1", h.now).unwrap().is_static);
    h.offer(1, "q");
    h.offer(2, "q");
    let ring = Command::Ring {
        call: 1,
        agent: "legacy-1".into(),
        target: "sip:12333@10.0.0.1".into(),
    };
    assert_eq!(h.take(), [ring]);
    let refused = Err(AcdError::StaticMember("legacy-1".into()));
    assert_eq!(h.acd.login("legacy-1", "sip:x".into(), h.now), refused);
    assert_eq!(h.acd.logout("legacy-1", h.now), refused);
    h.answer(1, "legacy-1");
    h.acd.call_ended(h.now, 1).unwrap();
    h.advance(secs(5));
    assert_eq!(h.rings(), [(2, "legacy-1".into())]);
}

#[test]
fn reload_in_the_middle_of_traffic_keeps_agents_and_callers() {
    let mut side = queue("side", Strategy::LongestIdle, &["1003"]);
    side.overflow = Overflow::Queue("q".into());
    let cfg = config(
        vec![queue("q", Strategy::LongestIdle, &FOUR[..2]), side],
        &FOUR[..3],
    );
    let mut h = H::new(cfg);
    h.login(&["1001", "1002"]);
    h.offer(1, "q");
    h.offer(2, "q");
    h.rings();
    h.answer(1, "1001");
    h.answer(2, "1002");
    for call in 3..=5 {
        h.offer(call, "q");
        h.advance(secs(1));
    }
    h.offer(6, "side");
    h.take();

    // 1002 leaves the config mid-call, 1004 joins; "side" is removed; q gets 1004.
    let mut q = queue("q", Strategy::LongestIdle, &["1001", "1002", "1004"]);
    q.members.retain(|m| m.id() != "1002");
    q.wrap_up = secs(1);
    h.acd
        .reload(config(vec![q], &["1001", "1003", "1004"]), h.now)
        .unwrap();
    let overflow = Command::Overflow {
        call: 6,
        from: "side".into(),
        to: "q".into(),
        cause: Cause::QueueRemoved,
    };
    assert_eq!(h.take(), [overflow]);
    assert_eq!(h.state("1001"), AgentState::OnCall { call: 1 });
    assert_eq!(h.state("1002"), AgentState::OnCall { call: 2 });
    assert_eq!(h.acd.queues(h.now)[0].waiting, 4);

    h.login(&["1004"]);
    assert_eq!(h.rings(), [(3, "1004".into())]);
    h.acd.call_ended(h.now, 2).unwrap();
    assert_eq!(
        h.acd.agent_state("1002"),
        None,
        "removed agent forgotten at call end"
    );
    h.acd.call_ended(h.now, 1).unwrap();
    h.advance(secs(1));
    assert_eq!(h.rings(), [(4, "1001".into())]);
    let ids: Vec<_> = h.acd.agents(h.now).map(|a| a.id).collect();
    assert_eq!(ids, ["1001", "1003", "1004"]);
}

#[test]
fn an_invalid_config_is_refused_and_changes_nothing() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &["1001"])],
        &FOUR,
    ));
    h.login(&["1001"]);
    let mut bad = queue("q", Strategy::LongestIdle, &["1009"]);
    let unknown = AcdError::UnknownMember {
        queue: "q".into(),
        member: "1009".into(),
    };
    assert_eq!(
        h.acd.reload(config(vec![bad.clone()], &FOUR), h.now),
        Err(unknown)
    );
    bad.members.clear();
    bad.overflow = Overflow::Queue("r".into());
    let mut r = queue("r", Strategy::LongestIdle, &[]);
    r.overflow = Overflow::Queue("q".into());
    let err = h.acd.reload(config(vec![bad.clone(), r], &FOUR), h.now);
    assert_eq!(err, Err(AcdError::OverflowCycle("q".into())));
    let err = h.acd.reload(config(vec![bad], &FOUR), h.now).unwrap_err();
    assert!(err.is_config());
    assert_eq!(h.state("1001"), AgentState::Ready);
    h.offer(1, "q");
    assert_eq!(h.rings(), [(1, "1001".into())]);
}

#[test]
fn inputs_naming_the_wrong_thing_are_refused() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &FOUR[..2])],
        &FOUR,
    ));
    h.login(&["1001", "1002"]);
    let err = h.acd.offer(h.now, 1, "nope", None, 0);
    assert_eq!(err, Err(AcdError::UnknownQueue("nope".into())));
    h.offer(1, "q");
    assert_eq!(
        h.acd.offer(h.now, 1, "q", None, 0),
        Err(AcdError::DuplicateCall(1))
    );
    let wrong = Err(AcdError::NotRinging {
        call: 1,
        agent: "1002".into(),
    });
    assert_eq!(h.acd.answered(h.now, 1, "1002"), wrong);
    assert_eq!(
        h.acd.login("9", "sip:9".into(), h.now),
        Err(AcdError::UnknownAgent("9".into()))
    );
    let err = h.acd.pause("1003", "x".into(), h.now);
    assert_eq!(err, Err(AcdError::NotLoggedIn("1003".into())));
    assert_eq!(h.acd.call_ended(h.now, 7), Err(AcdError::UnknownCall(7)));
}

#[test]
fn agent_state_changes_are_reported() {
    let mut h = H::new(config(
        vec![queue("q", Strategy::LongestIdle, &["1001"])],
        &FOUR,
    ));
    h.login(&["1001"]);
    h.offer(1, "q");
    h.answer(1, "1001");
    h.take();
    let states: Vec<_> = h
        .events
        .iter()
        .map(|AcdEvent::AgentState { agent, state }| (agent.as_str(), state.status()))
        .collect();
    let expect = [
        ("1001", AgentStatus::Ready),
        ("1001", AgentStatus::Ringing),
        ("1001", AgentStatus::OnCall),
    ];
    assert_eq!(states, expect);
}

#[test]
fn views_serialize_with_stable_field_names() {
    let mut h = H::new(config(vec![queue("q", Strategy::Skills, &["1001"])], &FOUR));
    h.login(&["1001"]);
    h.acd.pause("1001", "meeting".into(), h.now).unwrap();
    h.offer(1, "q");
    h.advance(secs(2));
    let agent = serde_json::to_value(h.acd.agent("1001", h.now).unwrap()).unwrap();
    let expect = serde_json::json!({
        "id": "1001", "name": "agent 1001", "is_static": false, "state": "paused",
        "call": null, "pause_reason": "meeting", "in_state_ms": 2000,
        "calls_answered": 0, "missed_in_row": 0, "change_pending": false,
        "pending_state": null, "pending_reason": null, "reachable": true,
    });
    assert_eq!(agent, expect);
    let queue = serde_json::to_value(&h.acd.queues(h.now)[0]).unwrap();
    let expect = serde_json::json!({
        "name": "q", "strategy": "skills", "waiting": 1, "ringing": 0, "longest_wait_ms": 2000,
        "agents": {"logged_out": 0, "ready": 0, "ringing": 0, "on_call": 0, "wrap_up": 0, "paused": 1,
            "unreachable": 0},
    });
    assert_eq!(queue, expect);
}
