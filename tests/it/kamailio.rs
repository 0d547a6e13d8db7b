//! The gateway behind Kamailio (deploy/kamailio/kamailio.cfg, run by
//! scripts/kamailio-lab.sh): callers and agents reach it only through the
//! proxy, which record-routes and adds Path to agents' REGISTERs. Each end's
//! BYE must come back through the proxy (RFC 3261 §12.1.1: the gateway copies
//! Record-Route into its answers) and the agent is rung through it (RFC 3327).
//! In front of an active/standby pair, the dispatcher sends calls to whichever
//! node answers its OPTIONS with 200, and fails over when one dies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Queue `q` of agents 2001-2006 (password `secret-<id>`), no wrap-up.
fn plan() -> String {
    let ids: Vec<String> = (2001..=2006).map(|n| format!("\"{n}\"")).collect();
    let mut p = format!(
        "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\nmax_wait_s = 60\nagents = [{}]\n",
        ids.join(", ")
    );
    for n in 2001..=2006 {
        p.push_str(&format!(
            "\n[[agent]]\nid = \"{n}\"\nname = \"Agent {n}\"\npassword = \"secret-{n}\"\n"
        ));
    }
    p
}

/// Kamailio in front of `gateways`, on a free loopback port; stopped on drop.
struct Kamailio {
    child: Child,
    sip: std::net::SocketAddr,
    dir: TempDir,
}

impl Kamailio {
    fn start(gateways: &[std::net::SocketAddr]) -> Option<Kamailio> {
        let bin = PathBuf::from("/usr/sbin/kamailio");
        let bin = if bin.is_file() {
            bin
        } else {
            tool("kamailio", "kamailio")?
        };
        let dir = TempDir::new("kamailio");
        let sip: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kamailio-lab.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .args(["--listen", &sip.to_string()])
            .args(["--run-dir", &dir.0.display().to_string()])
            .args(["--kamailio", &bin.display().to_string()]);
        for g in gateways {
            cmd.args(["--gateway", &g.to_string()]);
        }
        let log = std::fs::File::create(dir.0.join("kamailio.log")).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kamailio-lab.sh");
        let k = Kamailio { child, sip, dir };
        // Ready once it answers on its port (an OPTIONS for itself).
        std::thread::sleep(Duration::from_millis(1500));
        Some(k)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(extra: &str) -> Gateway {
    gateway_with(extra, "")
}

fn gateway_with(extra: &str, extra_plan: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = plan() + extra_plan;
    opts.extra_config = format!(
        "[registrar]\npath_from = [\"127.0.0.1\"]\n{extra}\
[media]\nqueued = \"early_media\"\nsurvey = false\n"
    );
    Gateway::start(opts)
}

/// Nodes `a` (active once this returns) and `b` of a cluster on `db`, 2 s lease.
fn pair(db: &str) -> (Gateway, Gateway) {
    let cluster = |name: &str| {
        format!(
            "[store]\ndatabase = \"{db}\"\n[cluster]\nnode = \"{name}\"\n\
lease_ttl_ms = 2000\nrenew_every_ms = 400\ndrain_s = 20\n"
        )
    };
    let a = gateway(&cluster("a"));
    a.wait_until("A active", Duration::from_secs(10), || {
        a.health()["node"]["role"] == "active"
    });
    (a, gateway(&cluster("b")))
}

fn via(k: &Kamailio, args: &[&str]) -> Softphone {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend(["--server".to_string(), k.sip.to_string()]);
    Softphone::start(&a)
}

fn agent_via(k: &Kamailio, id: &str, extra: &[&str]) -> Softphone {
    let pw = format!("secret-{id}");
    let mut args = vec!["agent", "--user", id, "--password", &pw];
    args.extend(extra);
    via(k, &args)
}

/// Agent `id` registered through the proxy and ready at `gw`.
fn seated(k: &Kamailio, gw: &Gateway, id: &str, extra: &[&str]) -> Softphone {
    let phone = agent_via(k, id, extra);
    gw.wait_until(
        &format!("agent {id} ready"),
        Duration::from_secs(15),
        || agents_ready(gw, &[id]),
    );
    phone
}

fn agents_ready(gw: &Gateway, ids: &[&str]) -> bool {
    gw.get_json("/api/v1/agents")["agents"]
        .as_array()
        .is_some_and(|a| {
            ids.iter()
                .all(|id| a.iter().any(|x| x["id"] == *id && x["state"] == "ready"))
        })
}

fn reasons(gw: &Gateway) -> Vec<String> {
    gw.get_json("/api/v1/calls")["calls"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|r| r["reason"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn through_kamailio_both_ends_hang_up_and_the_agent_is_rung_by_its_path() {
    let gw = gateway("");
    let Some(k) = Kamailio::start(&[gw.sip]) else {
        return;
    };
    // The agent registers through the proxy (Path) and is rung through it.
    let agent = seated(
        &k,
        &gw,
        "2001",
        &["--answer-after-ms", "100", "--talk-ms", "60000"],
    );
    // 1. The caller hangs up: its BYE reaches the gateway through the proxy.
    let c = via(&k, &["call", "12345", "--hangup-after-ms", "1500"])
        .finish(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(c["answered"], 1, "{c}\n{}\n{}", gw.log(), k.log());
    gw.wait_until("caller hang-up recorded", Duration::from_secs(10), || {
        reasons(&gw).iter().any(|r| r == "call.caller_hangup")
    });
    drop(agent);
    // 2. The agent hangs up: the gateway's BYE to the caller goes through the
    // proxy (the route set it learnt from Record-Route), and the agent's BYE
    // to the gateway came through it too.
    let _agent = seated(
        &k,
        &gw,
        "2002",
        &["--answer-after-ms", "100", "--talk-ms", "1000"],
    );
    let c = via(&k, &["call", "12345", "--hangup-after-ms", "20000"])
        .finish(Duration::from_secs(30))
        .expect("caller");
    assert_eq!(c["answered"], 1, "{c}");
    assert_eq!(
        c["ended_by_far_end"], 1,
        "the agent's hang-up reached the caller: {c}"
    );
    gw.wait_until("callee hang-up recorded", Duration::from_secs(10), || {
        reasons(&gw).iter().any(|r| r == "call.callee_hangup")
    });
    let log = k.log();
    assert!(
        !log.contains("answered 404"),
        "the proxy answered 404 somewhere:\n{log}"
    );
}

#[test]
fn kamailio_fails_over_to_the_standby_when_the_active_node_is_killed() {
    let Some(db) = fresh_postgres("kamailio_failover") else {
        return;
    };
    let (mut a, b) = pair(&db);
    let Some(k) = Kamailio::start(&[a.sip, b.sip]) else {
        return;
    };
    let _a1 = agent_via(&k, "2001", &["--answer-after-ms", "100"]);
    let _a2 = agent_via(&k, "2002", &["--answer-after-ms", "100"]);
    a.wait_until("agents ready at A", Duration::from_secs(15), || {
        agents_ready(&a, &["2001", "2002"])
    });
    let c = via(&k, &["call", "12345", "--hangup-after-ms", "500"])
        .finish(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(c["answered"], 1, "{c}\n{}", k.log());
    a.kill9();
    let killed = Instant::now();
    // Callers keep dialling the proxy; the first one answered after the kill
    // marks the failover.
    let mut answered_at = None;
    while killed.elapsed() < Duration::from_secs(20) {
        let c = via(&k, &["call", "12345", "--hangup-after-ms", "300"])
            .finish(Duration::from_secs(20))
            .expect("caller");
        if c["answered"] == 1 {
            answered_at = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = answered_at.unwrap_or_else(|| {
        panic!(
            "no call answered through the proxy after the kill\n{}\n{}",
            b.log(),
            k.log()
        )
    });
    eprintln!("failover through kamailio: first call answered {took:?} after kill -9");
    assert_eq!(b.health()["node"]["role"], "active");
}

#[test]
fn a_kill_under_load_loses_no_call_without_a_record_and_seats_no_agent_twice() {
    let Some(sipp) = sipp() else {
        return;
    };
    let Some(db) = fresh_postgres("kamailio_load") else {
        return;
    };
    let (mut a, b) = pair(&db);
    let Some(k) = Kamailio::start(&[a.sip, b.sip]) else {
        return;
    };
    let ids: Vec<String> = (2001..=2006).map(|n| n.to_string()).collect();
    let _agents: Vec<Softphone> = ids
        .iter()
        .map(|id| agent_via(&k, id, &["--answer-after-ms", "50"]))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    a.wait_until("agents ready at A", Duration::from_secs(20), || {
        agents_ready(&a, &id_refs)
    });
    // 200 calls at 20 per second through the proxy, each talking 200 ms; a
    // call that hears nothing for 15 s fails (those the dead node held).
    let args: Vec<String> = [
        &k.sip.to_string(),
        "-s",
        "12345",
        "-p",
        &free_port().to_string(),
        "-m",
        "200",
        "-r",
        "20",
        "-d",
        "200",
        "-l",
        "150",
        "-recv_timeout",
        "15000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = Sipp::start(&sipp, "uac.xml", &args, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(5));
    a.kill9();
    let killed_ms = hotline_gateway::util::time::unix_ms();
    let r = run.finish();
    assert_eq!(r.successful + r.failed, 200, "{r:?}");
    // Let the survivor close the dead node's calls and write its records.
    b.wait_until(
        "the dead node's calls closed",
        Duration::from_secs(15),
        || {
            b.health()["store"]["queued"] == 0
                && b.records()
                    .iter()
                    .all(|r| r["reason"] != serde_json::Value::Null)
                && b.get_json("/api/v1/tickets?state=open&limit=10000")["count"] == 0
        },
    );
    let records = b.records();
    // Every call sipp placed has a record with a reason, answered or not: the
    // dead node's as cluster.node_lost, the standby's refusals as
    // cluster.standby, the rest their own. (Counting only the records of
    // unfinished calls undercounts: a call whose BYE the node answered just
    // before dying is recorded as call.caller_hangup, yet sipp saw it fail.)
    let with_record: std::collections::HashSet<&str> = records
        .iter()
        .filter(|r| r["reason"].is_string())
        .filter_map(|r| r["sip_call_id"].as_str())
        .collect();
    assert_eq!(
        with_record.len(),
        200,
        "{} failed calls; calls without a record: {records:?}",
        r.failed
    );
    // One stub per offered call, none left open.
    let tickets = b.get_json("/api/v1/tickets?limit=10000");
    let stub_ids: Vec<&str> = tickets["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    let distinct: std::collections::HashSet<&&str> = stub_ids.iter().collect();
    assert_eq!(distinct.len(), stub_ids.len(), "a stub duplicated");
    // No agent seated with two callers at once, across both nodes.
    for id in &ids {
        let mut spans: Vec<(i64, i64)> = records
            .iter()
            .filter(|r| r["agent"] == id.as_str())
            .filter_map(|r| Some((r["answered_at_ms"].as_i64()?, r["ended_at_ms"].as_i64()?)))
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[1].0 >= w[0].1, "agent {id} had two calls at once: {w:?}");
        }
    }
    let after = records
        .iter()
        .filter(|r| r["answered_at_ms"].as_i64().is_some_and(|t| t > killed_ms))
        .count();
    let lost = records
        .iter()
        .filter(|r| r["reason"] == "cluster.node_lost")
        .count();
    eprintln!(
        "kill under load: sipp {} answered, {} failed; {} answered after the kill; {} lost with the node",
        r.successful, r.failed, after, lost
    );
    assert!(after > 0, "no call answered after the kill");
}

#[test]
fn through_kamailio_a_reinvite_and_a_refer_reach_the_far_end() {
    let Some(sipp_bin) = sipp() else {
        return;
    };
    // sipp plays 110 (the transfer directory's police): it answers the
    // gateway's INVITE and takes the caller's BYE.
    let police = free_port();
    let uas = Sipp::start(
        &sipp_bin,
        "uas.xml",
        &["-p".into(), police.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(60),
    );
    let gw = gateway_with(
        "",
        &format!(
            "\n[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@127.0.0.1:{police}\"\n"
        ),
    );
    let Some(k) = Kamailio::start(&[gw.sip]) else {
        return;
    };
    let agent = seated(
        &k,
        &gw,
        "2001",
        &[
            "--answer-after-ms",
            "50",
            "--transfer-to",
            "110",
            "--transfer-after-ms",
            "1500",
            "--calls",
            "1",
            "--run-s",
            "30",
        ],
    );
    // The caller re-INVITEs (a hold) 300 ms after the answer: the gateway
    // relays it to the agent through the proxy, and the 200 back. Then the
    // agent's REFER (through the proxy) hands the caller to 110; the caller
    // hangs up on 110 3 s after its re-INVITE.
    let args: Vec<String> = [
        &k.sip.to_string(),
        "-s",
        "12345",
        "-p",
        &free_port().to_string(),
        "-m",
        "1",
        "-d",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let caller = Sipp::start(
        &sipp_bin,
        "uac_reinvite.xml",
        &args,
        Duration::from_secs(40),
    )
    .finish();
    assert_eq!(
        (caller.successful, caller.failed),
        (1, 0),
        "{caller:?}\n{}\n{}",
        gw.log(),
        k.log()
    );
    let s = agent.finish(Duration::from_secs(30)).unwrap();
    // The agent hears the REFER's 202 and then the gateway's BYE; Kamailio's
    // parallel workers may deliver the BYE first, and the phone then drops
    // the late 202. Either way the gateway took the REFER (110 and the record
    // below say so).
    assert!(
        s["transfers_by_code"]["200"] == 1 || s["ended_by_far_end"] == 1,
        "the REFER went through: {s}\n{}",
        gw.log()
    );
    let r = uas.finish();
    assert_eq!(
        (r.successful, r.failed),
        (1, 0),
        "110 got the caller: {r:?}"
    );
    gw.wait_until("the transfer recorded", Duration::from_secs(10), || {
        gw.get_json("/api/v1/calls")["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|r| r["transferred_to"] == "110"))
    });
    assert!(!k.log().contains("answered 404"), "{}", k.log());
}
