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

const PLAN: &str = "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\n\
max_wait_s = 60\nagents = [\"2001\", \"2002\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[agent]]\nid = \"2002\"\nname = \"Agent 2002\"\npassword = \"secret-2002\"\n";

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
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = PLAN.into();
    opts.extra_config = format!(
        "[registrar]\npath_from = [\"127.0.0.1\"]\n{extra}\
[media]\nqueued = \"early_media\"\nsurvey = false\n"
    );
    Gateway::start(opts)
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
    let _agent = agent_via(
        &k,
        "2001",
        &["--answer-after-ms", "100", "--talk-ms", "60000"],
    );
    gw.wait_until("agent 2001 ready", Duration::from_secs(15), || {
        agents_ready(&gw, &["2001"])
    });
    // 1. The caller hangs up: its BYE reaches the gateway through the proxy.
    let c = via(&k, &["call", "12345", "--hangup-after-ms", "1500"])
        .finish(Duration::from_secs(20))
        .expect("caller");
    assert_eq!(c["answered"], 1, "{c}\n{}\n{}", gw.log(), k.log());
    gw.wait_until("caller hang-up recorded", Duration::from_secs(10), || {
        reasons(&gw).iter().any(|r| r == "call.caller_hangup")
    });
    drop(_agent);
    // 2. The agent hangs up: the gateway's BYE to the caller goes through the
    // proxy (the route set it learnt from Record-Route), and the agent's BYE
    // to the gateway came through it too.
    let _agent = agent_via(
        &k,
        "2002",
        &["--answer-after-ms", "100", "--talk-ms", "1000"],
    );
    gw.wait_until("agent 2002 ready", Duration::from_secs(15), || {
        agents_ready(&gw, &["2002"])
    });
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
    let cluster = |name: &str| {
        format!(
            "[store]\ndatabase = \"{db}\"\n[cluster]\nnode = \"{name}\"\n\
lease_ttl_ms = 2000\nrenew_every_ms = 400\ndrain_s = 20\n"
        )
    };
    let mut a = gateway(&cluster("a"));
    a.wait_until("A active", Duration::from_secs(10), || {
        a.health()["node"]["role"] == "active"
    });
    let b = gateway(&cluster("b"));
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
