//! Attacker tests: limits (see mod.rs). Issue 14 hole 3: TCP accepts had no
//! cap and idle connections no deadline, so anyone could hold the gateway's
//! file descriptors (and memory) with connections that never say anything.
//! Now connections are capped per source and in all, and a stranger's connection
//! is closed `sip.tcp_first_message_s` after its last message (one OPTIONS does
//! not buy it hours). Known sources (trunks, agents' addresses) pass the
//! per-source cap, and their connections stay up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hotline_gateway::softphone::digest;

use crate::support::*;

/// Accepted connections from one IP, in the gateway under test.
const PER_SOURCE: usize = 64;
/// Greeting attackers: 16 source IPs × 85 connections (21 over the cap each).
const GREETING_IPS: u8 = 16;
const GREETING_EACH: usize = 85;
/// Silent attackers: 10 source IPs × 64 (all accepted, none ever speaks).
const SILENT_IPS: u8 = 10;
/// A connection's memory in the gateway at most (its 16 KiB read buffer, its
/// two tasks, its write queue), for the RSS bound.
const KIB_PER_CONNECTION: u64 = 64;

fn raise_own_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        soft >= 2_500,
        "this test opens 2,000 connections: raise the hard open-file limit ({soft})"
    );
}

fn gateway(extra_sip: &str) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    // Only 127.0.0.1 is a trunk (a known source); 127.0.x.y play strangers.
    opts.trunk_sources = vec!["127.0.0.1/32".into()];
    // 2002 (registered over TCP by the test, which answers no call) is in a
    // queue of its own: calls to 12345 ring 2001 only.
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\n\
agents = [\"2001\"]\n\n[[queue]]\nname = \"q2\"\nagents = [\"2002\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"pw2001-secret\"\n\n\
[[agent]]\nid = \"2002\"\nname = \"Agent 2002\"\npassword = \"pw2002-secret\"\n"
        .into();
    opts.extra_sip = extra_sip.into();
    Gateway::start(opts)
}

/// A TCP connection to `to` from the loopback address `ip` ("another host").
fn connect_from(ip: [u8; 4], to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect from {ip:?}: {e}"));
    s.into()
}

fn options(tag: &str, local: SocketAddr) -> String {
    format!(
        "OPTIONS sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{tag}\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=t{tag}\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: {tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Answered,
    Closed,
}

/// Reads until a `200 OK` or the end of the stream (waiting at most 15 s).
fn fate(s: &mut TcpStream) -> Fate {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Fate::Closed,
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&got).contains("SIP/2.0 200 OK") {
                    return Fate::Answered;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Fate::Closed;
            }
            Err(e) => panic!("neither answered nor closed within 15 s: {e}"),
        }
    }
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    let (code, text) = http_get(gw.http, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

fn wait_metric(gw: &Gateway, name: &str, want: u64) {
    let end = Instant::now() + Duration::from_secs(20);
    while metric(gw, name) != want {
        assert!(
            Instant::now() < end,
            "{name} = {}, want {want}",
            metric(gw, name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// REGISTER over a new TCP connection with digest auth; the final status code.
fn register_over_tcp(gw: &Gateway, user: &str, password: &str) -> u16 {
    register_over_tcp_from([127, 0, 0, 1], gw, user, password).0
}

/// REGISTER over a new TCP connection from `ip`; the final status code and the
/// connection, still open.
fn register_over_tcp_from(
    ip: [u8; 4],
    gw: &Gateway,
    user: &str,
    password: &str,
) -> (u16, TcpStream) {
    let mut s = connect_from(ip, gw.sip);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = s.local_addr().unwrap();
    let uri = format!("sip:{}", gw.sip);
    let request = |cseq: u32, auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKreg{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@{gw}>;tag=r{cseq}\r\nTo: <sip:{user}@{gw}>\r\n\
Call-ID: reg-{user}-tcp\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local};transport=tcp>\r\n\
Expires: 600\r\n{auth}Content-Length: 0\r\n\r\n",
            gw = gw.sip
        )
    };
    let read_response = |s: &mut TcpStream| -> String {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = s.read(&mut chunk).expect("a response to REGISTER");
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&got).to_string()
    };
    s.write_all(request(1, None).as_bytes()).unwrap();
    let challenge = read_response(&mut s);
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let values = challenge.lines().filter_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("WWW-Authenticate")
            .then_some(value.trim())
    });
    let c = digest::pick(values).expect("a digest challenge");
    let auth = digest::authorization(&c, user, password, "REGISTER", &uri, "0a4f113b", 1);
    s.write_all(request(2, Some(&auth)).as_bytes()).unwrap();
    let answer = read_response(&mut s);
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    (code, s)
}

#[test]
fn two_thousand_idle_tcp_connections_leave_calls_and_tcp_registration_working() {
    raise_own_fd_limit();
    let gw = gateway(&format!(
        "tcp_max_per_source = {PER_SOURCE}\ntcp_first_message_s = 2\n"
    ));
    let rss_before = vm_rss_kib(gw.pid());
    // 2,000 connections from strangers: 1,360 that send one OPTIONS and then
    // idle, 640 that never send anything.
    let mut greeting = Vec::new();
    for ip in 0..GREETING_IPS {
        for i in 0..GREETING_EACH {
            let mut s = connect_from([127, 0, 1, 10 + ip], gw.sip);
            let local = s.local_addr().unwrap();
            // A connection closed at once may refuse the write: that is its fate.
            let _ = s.write_all(options(&format!("g{ip}x{i}"), local).as_bytes());
            greeting.push((ip, s));
        }
    }
    let mut silent: Vec<TcpStream> = (0..SILENT_IPS)
        .flat_map(|ip| (0..PER_SOURCE).map(move |_| ip))
        .map(|ip| connect_from([127, 0, 2, 10 + ip], gw.sip))
        .collect();
    assert_eq!(greeting.len() + silent.len(), 2000);

    // Beyond the per-source cap: closed at once; within it: answered.
    let mut answered = vec![0usize; usize::from(GREETING_IPS)];
    for (ip, s) in &mut greeting {
        if fate(s) == Fate::Answered {
            answered[usize::from(*ip)] += 1;
        }
    }
    assert!(
        answered.iter().all(|n| *n == PER_SOURCE),
        "{PER_SOURCE} per source stay: {answered:?}"
    );
    // At most this many were ever open at once.
    let held = u64::from(GREETING_IPS + SILENT_IPS) * PER_SOURCE as u64;
    let rss_held = vm_rss_kib(gw.pid());
    eprintln!(
        "gateway VmRSS: {rss_before} KiB before, {rss_held} KiB with up to {held} connections"
    );
    assert!(
        rss_held.saturating_sub(rss_before) < held * KIB_PER_CONNECTION,
        "memory stays bounded: {rss_before} KiB → {rss_held} KiB for {held} connections"
    );
    // The silent ones are closed after the first-message deadline, and those
    // that spoke once after the same time since: a stranger's OPTIONS buys no
    // hours of a connection.
    for s in &mut silent {
        assert_eq!(fate(s), Fate::Closed, "a silent connection is closed");
    }
    for (_, s) in &mut greeting {
        assert_eq!(
            fate(s),
            Fate::Closed,
            "a stranger's idle connection is closed"
        );
    }
    wait_metric(&gw, "hotline_sip_tcp_connections", 0);
    assert_eq!(
        metric(&gw, "hotline_sip_tcp_refused_total"),
        u64::from(GREETING_IPS) * (GREETING_EACH - PER_SOURCE) as u64
    );
    assert_eq!(metric(&gw, "hotline_sip_tcp_closed_silent_total"), held);

    // Then: an agent registers over TCP, another over UDP takes a call placed
    // over UDP.
    assert_eq!(register_over_tcp(&gw, "2002", "pw2002-secret"), 200);
    let agent = agent(
        &gw,
        "2001",
        "pw2001-secret",
        &["--calls", "1", "--run-s", "30", "--answer-after-ms", "200"],
    );
    let end = Instant::now() + Duration::from_secs(15);
    while !gw.get_json("/api/v1/agents")["agents"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["id"] == "2001" && x["state"] == "ready"))
    {
        assert!(Instant::now() < end, "agent 2001 never registered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let caller = Softphone::start(
        &["call", "12345", "--hangup-after-ms", "300", "--server"]
            .iter()
            .map(|s| s.to_string())
            .chain([gw.sip.to_string()])
            .collect::<Vec<_>>(),
    );
    let cs = caller.finish(Duration::from_secs(30)).expect("caller");
    assert_eq!(cs["answered"], 1, "the call over UDP is answered: {cs}");
    let asum = agent.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(asum["answered"], 1, "{asum}");

    let rss_after = vm_rss_kib(gw.pid());
    assert!(
        rss_after.saturating_sub(rss_before) < held * KIB_PER_CONNECTION,
        "memory stays bounded: {rss_before} KiB → {rss_after} KiB"
    );
}

/// Issue 14 review: the per-source cap closed an office's 65th TCP phone, and
/// one OPTIONS held a stranger's connection for hours. An address an agent
/// registered from passes the cap, and its connections stay; a stranger's are
/// capped and closed after the short deadline.
#[test]
fn an_agents_address_passes_the_per_source_cap_and_keeps_its_connections() {
    let gw = gateway("tcp_max_per_source = 4\ntcp_first_message_s = 2\n");
    let office = [127, 0, 4, 10];
    let (code, mut agent) = register_over_tcp_from(office, &gw, "2002", "pw2002-secret");
    assert_eq!(code, 200);
    // More phones behind the same address than the cap: all served.
    let mut phones: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut s = connect_from(office, gw.sip);
            let local = s.local_addr().unwrap();
            s.write_all(options(&format!("phone{i}"), local).as_bytes())
                .unwrap();
            assert_eq!(fate(&mut s), Fate::Answered, "phone {i}");
            s
        })
        .collect();
    // A stranger: four answered, the fifth closed at once; all four closed
    // once they idle past the short deadline.
    let mut stranger: Vec<TcpStream> = (0..5)
        .map(|i| {
            let mut s = connect_from([127, 0, 4, 11], gw.sip);
            let local = s.local_addr().unwrap();
            let _ = s.write_all(options(&format!("stranger{i}"), local).as_bytes());
            s
        })
        .collect();
    let fates: Vec<Fate> = stranger.iter_mut().map(fate).collect();
    assert_eq!(
        fates.iter().filter(|f| **f == Fate::Answered).count(),
        4,
        "{fates:?}"
    );
    for s in &mut stranger {
        assert_eq!(fate(s), Fate::Closed);
    }
    // The agent's connection, quiet for longer than the stranger's, is still
    // up and served, as are the office's other phones.
    let local = agent.local_addr().unwrap();
    agent
        .write_all(options("agent-again", local).as_bytes())
        .unwrap();
    assert_eq!(fate(&mut agent), Fate::Answered);
    let phone = &mut phones[7];
    let local = phone.local_addr().unwrap();
    phone
        .write_all(options("phone-again", local).as_bytes())
        .unwrap();
    assert_eq!(fate(phone), Fate::Answered);
}

#[test]
fn connections_over_the_total_cap_are_closed_at_once() {
    raise_own_fd_limit();
    // 64 in all, of which 56 may be accepted (an eighth kept for outgoing ones).
    // Strangers' connections stay up for a minute after their OPTIONS here, so
    // that the count below is of open connections, not of ones yet to close.
    let gw =
        gateway("tcp_max_connections = 64\ntcp_max_per_source = 64\ntcp_first_message_s = 60\n");
    let mut conns = Vec::new();
    for ip in 0..4u8 {
        for i in 0..20 {
            let mut s = connect_from([127, 0, 3, 10 + ip], gw.sip);
            let local = s.local_addr().unwrap();
            let _ = s.write_all(options(&format!("t{ip}x{i}"), local).as_bytes());
            conns.push(s);
        }
    }
    let mut answered: Vec<TcpStream> = conns
        .into_iter()
        .filter_map(|mut s| (fate(&mut s) == Fate::Answered).then_some(s))
        .collect();
    assert_eq!(answered.len(), 56);
    assert_eq!(metric(&gw, "hotline_sip_tcp_refused_total"), 80 - 56);
    wait_metric(&gw, "hotline_sip_tcp_connections", 56);
    // A place freed is a place taken again.
    answered.truncate(54);
    wait_metric(&gw, "hotline_sip_tcp_connections", 54);
    let mut s = connect_from([127, 0, 3, 20], gw.sip);
    let local = s.local_addr().unwrap();
    s.write_all(options("after", local).as_bytes()).unwrap();
    assert_eq!(fate(&mut s), Fate::Answered);
}

/// The shipped config with its relative paths made absolute, free ports, no
/// store, and `tcp_max_connections` replaced.
fn shipped_config_with(dir: &TempDir, tcp_max: u64) -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("config/gateway.toml"))
        .unwrap()
        .replace("\"../", &format!("\"{}/", repo.display()))
        .replace(
            "database = \"sqlite:../data/hotline.db\"",
            "database = \"none\"",
        )
        .replace(
            "listen = \"127.0.0.1:5060\"",
            &format!("listen = \"127.0.0.1:{}\"", free_port()),
        )
        .replace(
            "listen = \"127.0.0.1:8080\"",
            &format!("listen = \"127.0.0.1:{}\"", free_port()),
        )
        .replace(
            "tcp_max_connections = 4096",
            &format!("tcp_max_connections = {tcp_max}"),
        )
        .replace(
            "recordings = \"../data/recordings\"",
            &format!("recordings = \"{}\"", dir.0.join("rec").display()),
        );
    let path = dir.0.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_config_that_cannot_fit_the_open_file_limit_is_refused_at_start() {
    let dir = TempDir::new("fds");
    // 100 million TCP connections fit no open-file limit (Linux caps it at 2^30,
    // and no system here comes near).
    let path = shipped_config_with(&dir, 100_000_000);
    let (code, err) = run_until_exit(&["--config".into(), path.display().to_string()]);
    assert_ne!(code, Some(0), "{err}");
    for needle in [
        "open-file limit is",
        "sip.tcp_max_connections",
        "calls.max_concurrent",
        "media.rtp_port_min",
        "ulimit -Hn",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
}
