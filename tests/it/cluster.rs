//! Two gateways on one PostgreSQL (issue 16): one holds the ACD lease and
//! answers; the other stands by (OPTIONS, REGISTER and INVITE get 503). Killing
//! the active node hands the lease over within a few seconds; the survivor
//! rings the agents registered at the dead node without waiting for them to
//! register again, and closes the calls the dead node held with a record.

use std::time::{Duration, Instant};

use crate::support::*;

const PLAN: &str = "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\n\
max_wait_s = 60\nagents = [\"2001\", \"2002\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[agent]]\nid = \"2002\"\nname = \"Agent 2002\"\npassword = \"secret-2002\"\n";

/// A node named `name` of the cluster on database `db` (2 s lease).
fn node(name: &str, db: &str) -> Gateway {
    node_with(name, db, 2000, 400)
}

fn node_with(name: &str, db: &str, ttl_ms: u64, renew_ms: u64) -> Gateway {
    node_opts(name, db, ttl_ms, renew_ms, GwOpts::to("queue:q"))
}

/// A node whose only trunk is the carrier at 127.0.0.2 (callers place calls
/// from there): the other node, at 127.0.0.1, is no trunk to it.
fn node_apart(name: &str, db: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.trunk_sources = vec!["127.0.0.2/32".into()];
    node_opts(name, db, 2000, 400, opts)
}

fn node_opts(name: &str, db: &str, ttl_ms: u64, renew_ms: u64, mut opts: GwOpts) -> Gateway {
    opts.extra_dialplan = PLAN.into();
    opts.extra_config = format!(
        "[store]\ndatabase = \"{db}\"\n\
[cluster]\nnode = \"{name}\"\nlease_ttl_ms = {ttl_ms}\nrenew_every_ms = {renew_ms}\ndrain_s = 20\nsecret = \"cluster-test-secret-0001\"\n\
[media]\nqueued = \"early_media\"\nsurvey = false\n"
    );
    Gateway::start(opts)
}

fn role(gw: &Gateway) -> String {
    gw.health()["node"]["role"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn wait_role(gw: &Gateway, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    gw.wait_until(&format!("role {want}"), limit, || role(gw) == want);
    start.elapsed()
}

fn caller(gw: &Gateway, hangup_ms: u64) -> Softphone {
    Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--hangup-after-ms".into(),
        hangup_ms.to_string(),
    ])
}

/// Agent `id` as `/api/v1/agents` on `gw` shows it (null if absent).
fn agent_json(gw: &Gateway, id: &str) -> serde_json::Value {
    gw.get_json("/api/v1/agents")["agents"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["id"] == id).cloned())
        .unwrap_or_default()
}

/// Waits until an agent at `gw` is on a call.
fn wait_on_call(gw: &Gateway) {
    gw.wait_until("a call answered", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["state"] == "on_call"))
    });
}

fn agent_ready(gw: &Gateway, id: &str) -> bool {
    gw.get_json("/api/v1/agents")["agents"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["id"] == id && a["state"] == "ready"))
}

#[test]
fn the_standby_takes_over_a_killed_active_node_with_its_agents_and_closes_its_calls() {
    let Some(db) = fresh_postgres("cluster_failover") else {
        return;
    };
    let mut a = node("a", &db);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node("b", &db);
    // B stands by: it answers nothing while A holds the lease.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(role(&b), "standby", "{}", b.health());
    let refused = caller(&b, 500)
        .finish(Duration::from_secs(15))
        .expect("caller");
    assert_eq!(refused["answered"], 0, "the standby answered: {refused}");
    b.wait_until("the refusal counted", Duration::from_secs(5), || {
        b.ended("cluster.standby") == 1
    });

    // Two agents register at A (the only node they know); A rings them.
    let _a1 = agent(&a, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    let _a2 = agent(&a, 2002, "secret-2002", &["--answer-after-ms", "100"]);
    a.wait_until("agents ready at A", Duration::from_secs(15), || {
        agent_ready(&a, "2001") && agent_ready(&a, "2002")
    });
    // The standby's API and wallboard show the active node's ACD (its copy
    // in the database), and refuse agent changes.
    b.wait_until("A's agents seen at B", Duration::from_secs(5), || {
        agent_ready(&b, "2001") && agent_ready(&b, "2002")
    });
    let view = http_request(
        b.http,
        "GET",
        "/api/v1/queues",
        &[format!("Authorization: Bearer {VIEWER_TOKEN}")],
        None,
    )
    .expect("queues at B");
    assert_eq!(view.code, 200, "{}", view.body);
    assert_eq!(
        view.header("x-hotline-view-of"),
        Some("a"),
        "{:?}",
        view.headers
    );
    let change = http_request(
        b.http,
        "POST",
        "/api/v1/agents/2001/state",
        &[
            format!("Authorization: Bearer {SUPERVISOR_TOKEN}"),
            "Content-Type: application/json".into(),
        ],
        Some(r#"{"state": "paused"}"#),
    )
    .expect("agent change at B");
    assert_eq!(change.code, 409, "{}", change.body);
    assert_eq!(change.error_code().as_deref(), Some("not_active"));
    // A call in progress at A when it dies.
    let _held = caller(&a, 60_000);
    a.wait_until("a call answered at A", Duration::from_secs(10), || {
        a.get_json("/api/v1/agents")["agents"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["state"] == "on_call"))
    });

    // The answer reaches the call's live row through the writer (batched,
    // within milliseconds); an answer in the last instant before a crash may
    // be lost, and the record then says unanswered.
    std::thread::sleep(Duration::from_millis(500));
    a.kill9();
    let killed = Instant::now();
    let took = wait_role(&b, "active", Duration::from_secs(10));
    // B knows the agents from the database: no REGISTER reached it.
    b.wait_until("an agent ready at B", Duration::from_secs(5), || {
        agent_ready(&b, "2001") || agent_ready(&b, "2002")
    });
    // A new call is answered by B (by the agent that is free: the other
    // phone may still be on the dead node's call and answer 486).
    let after = caller(&b, 1000)
        .finish(Duration::from_secs(30))
        .expect("caller");
    let answered_after = killed.elapsed();
    assert_eq!(
        after["answered"],
        1,
        "no agent answered at B: {after}\n{}",
        b.log()
    );
    // The call A held is closed by B: a record with a reason, a callback owed.
    b.wait_until("the lost call recorded", Duration::from_secs(10), || {
        b.records()
            .iter()
            .any(|r| r["reason"] == "cluster.node_lost" && r["callback_pending"] == true)
    });
    let lost: Vec<_> = b
        .records()
        .into_iter()
        .filter(|r| r["reason"] == "cluster.node_lost")
        .collect();
    assert_eq!(lost.len(), 1, "exactly the one call A held: {lost:?}");
    // B's live figures count the calls A took (rebuilt from the store when B
    // took over): the answer rate reads the same on either node.
    let offered = b.get_json("/api/v1/sla")["overall"]["24h"]["offered"]
        .as_u64()
        .unwrap_or(0);
    let stored = b
        .records()
        .iter()
        .filter(|r| !r["offered_at_ms"].is_null())
        .count() as u64;
    assert_eq!(offered, stored, "B's 24 h window counts every offered call");
    assert!(offered >= 2, "A's lost call and B's own: {offered}");
    // It had been answered (A noted the answer on its live row): the record
    // says so, and who had it.
    assert!(lost[0]["answered_at_ms"].is_i64(), "{:?}", lost[0]);
    assert!(lost[0]["agent"].is_string(), "{:?}", lost[0]);
    let stub = b.get_json(&format!(
        "/api/v1/tickets/{}",
        lost[0]["id"].as_str().unwrap()
    ));
    assert_eq!(stub["state"], "interrupted", "{stub}");
    eprintln!(
        "failover: standby active {:?} after the kill; first new call answered {:?} after it",
        took, answered_after
    );

    // A comes back: it stands by and leaves B's calls alone.
    a.restart();
    wait_role(&a, "standby", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(role(&b), "active");
    assert_eq!(
        b.records()
            .iter()
            .filter(|r| r["reason"] == "cluster.node_lost")
            .count(),
        1,
        "a restarting node closes only its own calls"
    );
}

#[test]
fn sigterm_drains_the_active_node_hands_the_lease_over_and_lets_its_call_finish() {
    let Some(db) = fresh_postgres("cluster_drain") else {
        return;
    };
    let mut a = node("a", &db);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node("b", &db);
    let _a1 = agent(&a, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    a.wait_until("agent ready at A", Duration::from_secs(15), || {
        agent_ready(&a, "2001")
    });
    let talking = caller(&a, 4000);
    wait_on_call(&a);
    a.signal("TERM");
    // The lease goes over at once (released, not lapsed).
    let took = wait_role(&b, "active", Duration::from_secs(3));
    assert_eq!(role(&a), "draining");
    // B knows the agent from the database, but the agent is on A's call: B
    // does not offer it calls until that call ends.
    let state_at_b = || {
        agent_json(&b, "2001")["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    b.wait_until("agent 2001 held back at B", Duration::from_secs(3), || {
        state_at_b() == "logged_out"
    });
    // New calls at the draining node are refused for the proxy to retry.
    let refused = caller(&a, 300)
        .finish(Duration::from_secs(10))
        .expect("caller");
    assert_eq!(refused["answered"], 0, "{refused}");
    // The call in progress finishes normally, then the node exits by itself.
    let s = talking
        .finish(Duration::from_secs(15))
        .expect("talking caller");
    assert_eq!(s["answered"], 1, "{s}");
    assert!(
        a.wait_exit(Duration::from_secs(10)),
        "drained node did not exit"
    );
    // Its call over, the agent is offered calls at B (no new REGISTER).
    b.wait_until("agent 2001 ready at B", Duration::from_secs(5), || {
        state_at_b() == "ready"
    });
    let records = b.records();
    assert!(
        records.iter().any(|r| r["reason"] == "call.caller_hangup"),
        "the drained call's record is in the shared store: {records:?}"
    );
    assert!(
        records.iter().all(|r| r["reason"] != "cluster.node_lost"),
        "nothing was lost: {records:?}"
    );
    eprintln!("drain: standby active {took:?} after SIGTERM");
}

#[test]
fn sigterm_hands_a_waiting_caller_to_the_new_active_node_with_its_place_and_work_order() {
    let Some(db) = fresh_postgres("cluster_handover") else {
        return;
    };
    // As on a LAN: the carrier (127.0.0.2), the agents' phones (127.0.0.3)
    // and the nodes (127.0.0.1) apart, so that B takes A's handover as a
    // cluster peer's, not as a trunk's or an agent's request.
    let mut a = node_apart("a", &db);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node_apart("b", &db);
    let phone = ["--answer-after-ms", "100", "--listen", "127.0.0.3:0"];
    let _a1 = agent(&a, 2001, "secret-2001", &phone);
    let _a2 = agent(&a, 2002, "secret-2002", &phone);
    a.wait_until("agents ready at A", Duration::from_secs(15), || {
        agent_ready(&a, "2001") && agent_ready(&a, "2002")
    });
    // 2002 goes on a break at A: it stays on it at B.
    let pause = http_request(
        a.http,
        "POST",
        "/api/v1/agents/2002/state",
        &[
            format!("Authorization: Bearer {SUPERVISOR_TOKEN}"),
            "Content-Type: application/json".into(),
        ],
        Some(r#"{"state": "paused", "reason": "lunch"}"#),
    )
    .expect("pause at A");
    assert_eq!(pause.code, 200, "{}", pause.body);
    // The one agent left talks; a second caller waits in A's queue.
    let call_from = |from: &str, hangup_ms: &str| {
        Softphone::start(&[
            "call".into(),
            "12345".into(),
            "--from".into(),
            from.into(),
            "--listen".into(),
            "127.0.0.2:0".into(),
            "--server".into(),
            a.sip.to_string(),
            "--hangup-after-ms".into(),
            hangup_ms.into(),
            "--expect-agent".into(),
        ])
    };
    let talking = call_from("13800138000", "5000");
    wait_on_call(&a);
    let waiting = call_from("13700137000", "1500");
    a.wait_health("two calls at A", Duration::from_secs(10), |h| {
        h["active_calls"] == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let before_term_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    a.signal("TERM");
    wait_role(&b, "active", Duration::from_secs(3));
    let paused = agent_json(&b, "2002");
    assert_eq!(
        paused["state"], "paused",
        "the break carried over: {paused}"
    );
    assert_eq!(paused["pause_reason"], "lunch", "{paused}");
    // The waiting caller goes to B, and is answered there once the agent's
    // call at A ends (B holds the agent back until then).
    let s = talking
        .finish(Duration::from_secs(20))
        .expect("talking caller");
    assert_eq!(s["answered"], 1, "{s}");
    let w = waiting
        .finish(Duration::from_secs(30))
        .expect("waiting caller");
    assert_eq!(w["answered_by_agent"], 1, "a person answered at B: {w}");
    assert!(
        a.wait_exit(Duration::from_secs(10)),
        "drained node did not exit"
    );
    // One record for it, written by B under A's id, with its first offer at A.
    let records = b.records();
    let handed: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["caller"] == "13700137000")
        .collect();
    assert_eq!(handed.len(), 1, "one record per call: {records:?}");
    let r = handed[0];
    assert_eq!(r["outcome"], "answered", "{r}");
    assert_eq!(r["agent"], "2001", "{r}");
    let offered = r["offered_at_ms"].as_i64().unwrap();
    assert!(
        offered < before_term_ms,
        "its wait counts from its offer at A ({offered} < {before_term_ms}): {r}"
    );
    let id = r["id"].as_str().unwrap();
    assert!(
        records.iter().all(|r| r["reason"] != "cluster.handover_failed"
            && r["reason"] != "cluster.node_lost"),
        "nothing lost: {records:?}"
    );
    // One work order, opened at A and completed at B.
    let tickets = b.get_json("/api/v1/tickets?limit=10000");
    let mine: Vec<&serde_json::Value> = tickets["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["id"] == id)
        .collect();
    assert_eq!(mine.len(), 1, "{tickets}");
    assert_eq!(mine[0]["state"], "answered", "{tickets}");
    let mut ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no id twice: {records:?}");
}

#[test]
fn one_reload_request_reaches_every_node() {
    let Some(db) = fresh_postgres("cluster_reload") else {
        return;
    };
    let a = node("a", &db);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node("b", &db);
    let version = |gw: &Gateway| {
        gw.health()["node"]["plan_version"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(version(&a), version(&b), "same files, same version");
    let before = version(&a);
    // The operator changes the files on both nodes (config management) and
    // asks one node to reload.
    for gw in [&a, &b] {
        let f = gw.dir.0.join("dialplans/seats.toml");
        let mut text = std::fs::read_to_string(&f).unwrap();
        text.push_str("\n[[queue]]\nname = \"q2\"\nagents = [\"2001\"]\n");
        std::fs::write(&f, text).unwrap();
    }
    let (code, body) = http_post(a.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 200, "{body}");
    let after = version(&a);
    assert_ne!(after, before, "A runs the new plan");
    b.wait_until("B reloads too", Duration::from_secs(5), || {
        version(&b) == after
    });
    b.wait_until("B's ACD has the new queue", Duration::from_secs(5), || {
        b.get_json("/api/v1/queues")["queues"]
            .as_array()
            .is_some_and(|q| q.iter().any(|q| q["name"] == "q2"))
    });
}

#[test]
fn postgres_away_for_a_moment_under_load_costs_no_call_and_no_record() {
    let Some(sipp) = sipp() else {
        return;
    };
    let Some(url) = fresh_postgres("cluster_pg_away") else {
        return;
    };
    // Both nodes reach PostgreSQL through a forwarder that can cut it away
    // (a PostgreSQL restart, as the nodes see it).
    let proxy = Forwarder::new("127.0.0.1:5432");
    proxy.open();
    let db = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    // The shipped lease (3 s, renewed every 0.5 s): the active node keeps it
    // through an outage of up to about 1.9 s.
    let a = node_with("a", &db, 3000, 500);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node_with("b", &db, 3000, 500);
    let _agents: Vec<Softphone> = (2001..=2002)
        .map(|n| agent(&a, n, &format!("secret-{n}"), &["--answer-after-ms", "50"]))
        .collect();
    a.wait_until("agents ready", Duration::from_secs(15), || {
        agent_ready(&a, "2001") && agent_ready(&a, "2002")
    });
    // 60 calls at 10 per second; the database goes away for 1 s in the
    // middle (a restart as the nodes see it: every connection cut).
    let args = uac_args(&a, "12345", 60, &["-r", "10", "-d", "100", "-l", "40"]);
    let run = Sipp::start(&sipp, "uac.xml", &args, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    proxy.close();
    std::thread::sleep(Duration::from_millis(1000));
    proxy.open();
    let r = run.finish();
    assert_eq!((r.successful, r.failed), (60, 0), "calls went on: {r:?}");
    assert_eq!(role(&a), "active", "the active node kept the lease");
    assert_eq!(role(&b), "standby");
    // The records held meanwhile are written once it is back.
    a.wait_until("every record written", Duration::from_secs(30), || {
        a.health()["store"]["written"].as_u64() == Some(60)
    });
    assert_eq!(b.get_json("/api/v1/calls?outcome=answered")["count"], 60);
}

#[test]
fn attacker_a_node_cut_off_from_postgres_steps_down_before_the_other_takes_over() {
    // A split brain: the active node loses the database, the standby does
    // not. The active node must stop answering before the standby may take
    // the lease, so that two nodes never ring agents at once.
    let Some(url) = fresh_postgres("cluster_split") else {
        return;
    };
    let cut = Forwarder::new("127.0.0.1:5432");
    cut.open();
    let via_cut = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", cut.port));
    // The shipped lease (3 s): A stops 0.6 s before the lease can lapse.
    let a = node_with("a", &via_cut, 3000, 500);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node_with("b", &url, 3000, 500);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(role(&b), "standby");
    cut.close();
    // Sample both roles until B has taken over.
    let start = Instant::now();
    let mut a_stood_down = None;
    loop {
        let (ra, rb) = (role(&a), role(&b));
        assert!(
            !(ra == "active" && rb == "active"),
            "both nodes active {:?} after the cut",
            start.elapsed()
        );
        if ra != "active" && a_stood_down.is_none() {
            a_stood_down = Some(start.elapsed());
        }
        if rb == "active" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B never took over\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let down = a_stood_down.expect("A stepped down first");
    eprintln!("split brain: A stood down {down:?} after the cut, B active {took:?} after it");
    assert!(down < took);
    // The database comes back for A: it stays standby, B keeps the lease.
    cut.open();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (role(&a).as_str(), role(&b).as_str()),
        ("standby", "active")
    );
}

/// The wallboard works against either node: served by the standby, it shows
/// the active node's agents and the calls it took.
#[test]
fn the_wallboard_served_by_the_standby_shows_the_active_nodes_figures() {
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let Some(db) = fresh_postgres("cluster_wallboard") else {
        return;
    };
    let a = node("a", &db);
    wait_role(&a, "active", Duration::from_secs(10));
    let b = node("b", &db);
    let _a1 = agent(&a, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    let _a2 = agent(&a, 2002, "secret-2002", &["--answer-after-ms", "100"]);
    a.wait_until("agents ready at A", Duration::from_secs(15), || {
        agent_ready(&a, "2001") && agent_ready(&a, "2002")
    });
    let s = caller(&a, 300)
        .finish(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(s["answered"], 1, "{s}");
    // The standby rebuilds its windows from the store every 30 lease periods.
    b.wait_json(
        "/api/v1/sla",
        "A's call counted at B",
        Duration::from_secs(20),
        |v| v["overall"]["24h"]["offered"] == 1,
    );
    b.wait_until("A's agents seen at B", Duration::from_secs(5), || {
        agent_ready(&b, "2001") && agent_ready(&b, "2002")
    });
    assert_eq!(role(&b), "standby");
    let dom = crate::wallboard::render(&chromium, &b, 3000);
    use crate::wallboard::{attr, text};
    assert_eq!(attr(&dom, "status", "data-state"), "ok", "{dom}");
    assert_eq!(attr(&dom, "agents-ready", "data-value"), "2", "{dom}");
    assert_eq!(attr(&dom, "overall-offered-24h", "data-value"), "1");
    assert_eq!(text(&dom, "overall-rate-24h"), "100.0%");
}
