//! Work-order stubs through the real binary to a real HTTP receiver started by the
//! test: down for part of the run, answering 500 for another part, and the
//! gateway killed (`kill -9`) once in the middle. In the end every call has
//! exactly one stub at the receiver, with the right outcome. SQLite and PostgreSQL.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline_gateway::util::hmac::{hex, hmac_sha256};
use serde_json::Value;

use crate::support::*;

const SECRET: &str = "s3cret";
const TOKEN: &str = "tok-12345";

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    /// Deliveries by idempotency key (a repeat is counted, not applied twice).
    by_key: HashMap<String, u32>,
    /// The latest revision of each stub.
    stubs: HashMap<String, Value>,
    bad_auth: u32,
}

/// The ticket system: an HTTP server that can be down, failing, or taking stubs.
struct Receiver {
    port: u16,
    /// 0: take stubs; otherwise answer this status.
    status: Arc<AtomicU16>,
    up: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    /// The port, bound but not listening until `start`: connections are
    /// refused meanwhile, and no other socket can take the port.
    reserved: Mutex<Option<socket2::Socket>>,
}

impl Receiver {
    fn new() -> Receiver {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a TCP socket");
        sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind the receiver's port");
        let port = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the receiver's port");
        Receiver {
            port,
            status: Arc::default(),
            up: Arc::default(),
            seen: Arc::default(),
            reserved: Mutex::new(Some(sock)),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/tickets", self.port)
    }

    /// Starts listening (connections were refused until now).
    fn start(&self) {
        let sock = self
            .reserved
            .lock()
            .unwrap()
            .take()
            .expect("the receiver starts once");
        sock.listen(128).expect("listen on the receiver's port");
        let listener: TcpListener = sock.into();
        self.up.store(true, Ordering::SeqCst);
        let (status, up, seen) = (self.status.clone(), self.up.clone(), self.seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !up.load(Ordering::SeqCst) {
                    return; // drops the listener: the port refuses again
                }
                let Ok(conn) = conn else { continue };
                let (status, seen) = (status.clone(), seen.clone());
                std::thread::spawn(move || serve(conn, &status, &seen));
            }
        });
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

fn serve(mut conn: TcpStream, status: &AtomicU16, seen: &Mutex<Seen>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head, body) = loop {
        let Ok(n) = conn.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = header(head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if body.len() >= len {
                break (head.to_string(), body[..len].to_string());
            }
        }
    };
    let code = status.load(Ordering::SeqCst);
    let reply = |conn: &mut TcpStream, code: u16| {
        let _ = write!(
            conn,
            "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
    };
    if code != 0 {
        return reply(&mut conn, code);
    }
    let sig = format!(
        "sha256={}",
        hex(&hmac_sha256(SECRET.as_bytes(), body.as_bytes()))
    );
    let authorised = header(&head, "authorization") == Some(format!("Bearer {TOKEN}"))
        && header(&head, "x-hotline-signature") == Some(sig);
    let mut seen = seen.lock().unwrap();
    if !authorised {
        seen.bad_auth += 1;
        drop(seen);
        return reply(&mut conn, 401);
    }
    let key = header(&head, "idempotency-key").unwrap_or_default();
    let repeat = seen.by_key.contains_key(&key);
    *seen.by_key.entry(key).or_default() += 1;
    if !repeat {
        let stub: Value = serde_json::from_str(&body).unwrap();
        let id = stub["id"].as_str().unwrap().to_string();
        let newer = seen
            .stubs
            .get(&id)
            .is_none_or(|old| old["revision"].as_u64() < stub["revision"].as_u64());
        if newer {
            seen.stubs.insert(id, stub);
        }
    }
    drop(seen);
    reply(&mut conn, if repeat { 200 } else { 201 });
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn seats(sipp: &std::path::Path) -> (Sipp, String) {
    let port = free_port();
    let s = Sipp::start(
        sipp,
        "uas.xml",
        &["-p".into(), port.to_string()],
        Duration::from_secs(180),
    );
    (s, format!("sip:127.0.0.1:{port}"))
}

fn load(sipp: &std::path::Path, gw: &Gateway, n: u32) -> Sipp {
    let args = uac_args(
        gw,
        "12345",
        n,
        &["-r", "50", "-d", "300", "-timeout", "30s"],
    );
    Sipp::start(sipp, "uac.xml", &args, Duration::from_secs(40))
}

fn nothing_lost(database: Option<String>) {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = seats(&sipp);
    let receiver = Receiver::new();
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 200\n"
    );
    opts.extra_config = format!(
        "[tickets]\nurl = \"{}\"\nbearer_token = \"{TOKEN}\"\nhmac_secret = \"{SECRET}\"\n\
timeout_ms = 1000\nbackoff_first_ms = 100\nbackoff_max_ms = 1000\nmax_attempts = 1000\n",
        receiver.url()
    );
    if let Some(db) = &database {
        opts.extra_config += &format!("[store]\ndatabase = \"{db}\"\n");
    }
    let mut gw = Gateway::start(opts);

    // 250 calls while the ticket system is down.
    let first = load(&sipp, &gw, 250).finish();
    assert_eq!((first.successful, first.failed), (250, 0), "{first:?}");
    // It comes back answering 500; 250 more calls, and the gateway is killed
    // (kill -9) in the middle of them.
    receiver.answer(500);
    receiver.start();
    let second = load(&sipp, &gw, 250);
    // Killed once the second batch is under way (its first stubs stored), not
    // after a fixed time: a loaded machine may be slow to start sipp.
    gw.wait_json(
        "/api/v1/tickets?limit=10000",
        "the second batch's first stubs",
        Duration::from_secs(30),
        |v| v["count"].as_u64() >= Some(260),
    );
    std::thread::sleep(Duration::from_millis(500));
    gw.kill9();
    drop(second);
    gw.restart();
    // The ticket system recovers.
    receiver.answer(0);
    let start = Instant::now();
    loop {
        let pending = gw.get_json("/api/v1/tickets?delivery=pending&limit=10000")["count"].as_u64();
        let tickets = gw.get_json("/api/v1/tickets?limit=10000")["count"].as_u64();
        if pending == Some(0) && tickets > Some(250) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stubs still pending: {pending:?}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let tickets = gw.get_json("/api/v1/tickets?limit=10000");
    let tickets = tickets["tickets"].as_array().unwrap();
    let calls = gw.get_json("/api/v1/calls?limit=10000");
    let outcome: HashMap<&str, &str> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["outcome"].is_null())
        .map(|c| (c["id"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    let reason: HashMap<&str, &str> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(
        seen.bad_auth, 0,
        "every delivery carried the token and a valid signature"
    );
    assert!(tickets.len() > 250, "{} stubs", tickets.len());
    assert_eq!(
        seen.stubs.len(),
        tickets.len(),
        "one stub at the receiver per call"
    );
    let mut interrupted = 0;
    for t in tickets {
        let id = t["id"].as_str().unwrap();
        assert_eq!(t["delivery"], "delivered", "{t}");
        let got = &seen.stubs[id];
        assert_eq!(
            got["revision"], t["revision"],
            "the receiver has the last revision: {t}"
        );
        assert_eq!(got["schema"], "hotline.ticket-stub/v1");
        match outcome.get(id) {
            Some(&"answered") => {
                assert_eq!(got["state"], "answered", "{got}");
                assert!(
                    got["agent"].is_string() && got["answered_at"].is_string(),
                    "{got}"
                );
            }
            // In progress when the gateway was killed: closed when it started
            // again, with a record and a callback.
            Some(&"failed") if reason.get(id) == Some(&"cluster.node_lost") => {
                assert_eq!(got["state"], "interrupted", "{got}");
                assert_eq!(got["reason"], "cluster.node_lost", "{got}");
                interrupted += 1;
            }
            Some(o) => panic!("unexpected outcome {o} for {id}: {got}"),
            None => panic!("a stub without a call record: {got}"),
        }
        assert!(
            got["deadline"].as_str().is_some_and(|d| d.len() == 10),
            "{got}"
        );
    }
    let answered = outcome.values().filter(|o| **o == "answered").count();
    assert_eq!(answered + interrupted, tickets.len());
    assert!(
        answered >= 250,
        "the first 250 calls and some of the second half"
    );
    // At least once: repeats are possible (a reply lost to the kill), never applied twice.
    let deliveries: u32 = seen.by_key.values().sum();
    assert!(deliveries as usize >= seen.by_key.len());
}

#[test]
fn every_call_gets_exactly_one_stub_on_sqlite() {
    nothing_lost(None);
}

#[test]
fn every_call_gets_exactly_one_stub_on_postgres() {
    if let Some(url) = fresh_postgres("tickets") {
        nothing_lost(Some(url));
    }
}

/// With no ticket URL the stubs stay in the gateway: served by the API, and the
/// agent's INVITE carries the stub id.
#[test]
fn without_a_ticket_system_stubs_stay_local() {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = seats(&sipp);
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 10\n"
    );
    let gw = Gateway::start(opts);
    let r = load(&sipp, &gw, 5).finish();
    assert_eq!(r.successful, 5, "{r:?}");
    let start = Instant::now();
    while gw.get_json("/api/v1/tickets?state=answered")["count"] != 5 {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", gw.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = gw.get_json("/api/v1/tickets");
    let t = &list["tickets"][0];
    assert_eq!(
        (t["delivery"].as_str(), t["revision"].as_i64()),
        (Some("local"), Some(2))
    );
    let one = gw.get_json(&format!("/api/v1/tickets/{}", t["id"].as_str().unwrap()));
    assert_eq!(one["stub"]["state"], "answered");
    let (code, body) = http_get(gw.http, "/api/v1/tickets/nope").unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, _) = http_post(gw.http, "/api/v1/tickets/nope/redrive", "{}").unwrap();
    assert_eq!(code, 404);
    let (code, _) = http_get(gw.http, "/api/v1/tickets?delivery=lost").unwrap();
    assert_eq!(code, 400, "a bad filter is refused");
}

/// A ticket system that refuses a stub for good (400) dead-letters it at once: an
/// alert is posted, the API lists it, and an operator re-drives it once fixed.
#[test]
fn a_refused_stub_is_dead_lettered_alerted_and_redriven() {
    let Some(sipp) = sipp() else { return };
    let (_seats, seat) = seats(&sipp);
    let receiver = Receiver::new();
    receiver.answer(400);
    receiver.start();
    let alerts = WebhookSink::start();
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 10\n"
    );
    opts.extra_config = format!(
        "[tickets]\nurl = \"{}\"\nbearer_token = \"{TOKEN}\"\nhmac_secret = \"{SECRET}\"\n\
backoff_first_ms = 100\nalert_webhook = \"{}\"\n",
        receiver.url(),
        alerts.url
    );
    let gw = Gateway::start(opts);
    let r = load(&sipp, &gw, 1).finish();
    assert_eq!(r.successful, 1, "{r:?}");
    // Both revisions (opened, then ended) are refused and dead-lettered.
    let start = Instant::now();
    let t = loop {
        let list = gw.get_json("/api/v1/tickets?delivery=dead");
        let t = list["tickets"][0].clone();
        if t["revision"] == 2 {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{list}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (t["attempts"].as_i64(), t["last_status"].as_i64()),
        (Some(1), Some(400)),
        "{t}"
    );
    let start = Instant::now();
    while !alerts
        .received()
        .iter()
        .any(|a| a["kind"] == "ticket_dead_letter")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no alert\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, metrics) = http_get(gw.http, "/metrics").unwrap();
    assert!(
        metrics.contains("hotline_tickets_dead_total 2"),
        "{metrics}"
    );
    // Fixed on the other side: re-drive.
    receiver.answer(0);
    let id = t["id"].as_str().unwrap();
    let (code, body) = http_post(gw.http, &format!("/api/v1/tickets/{id}/redrive"), "{}").unwrap();
    assert_eq!(code, 200, "{body}");
    let start = Instant::now();
    while gw.get_json(&format!("/api/v1/tickets/{id}"))["delivery"] != "delivered" {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", gw.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(
        seen.stubs[id]["revision"], 2,
        "the receiver ends with the final revision"
    );
}

/// PostgreSQL goes away for a few seconds in the middle of the calls (every
/// connection cut, new ones refused) and comes back: every call still ends with its
/// record and exactly one stub at the receiver.
#[test]
fn a_database_outage_mid_run_loses_no_stub() {
    let Some(sipp) = sipp() else { return };
    let Some(url) = fresh_postgres("outage") else {
        return;
    };
    let proxy = Forwarder::new("127.0.0.1:5432");
    proxy.open();
    let via_proxy = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let (_seats, seat) = seats(&sipp);
    let receiver = Receiver::new();
    receiver.start();
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"{seat}\"]\nstatic_seats = 200\n"
    );
    opts.extra_config = format!(
        "[store]\ndatabase = \"{via_proxy}\"\n[tickets]\nurl = \"{}\"\nbearer_token = \"{TOKEN}\"\n\
hmac_secret = \"{SECRET}\"\nbackoff_first_ms = 100\nbackoff_max_ms = 1000\nmax_attempts = 1000\n",
        receiver.url()
    );
    let gw = Gateway::start(opts);
    let calls = load(&sipp, &gw, 200);
    std::thread::sleep(Duration::from_millis(1000));
    proxy.close();
    std::thread::sleep(Duration::from_millis(3000));
    proxy.open();
    let r = calls.finish();
    assert_eq!(r.successful + r.failed, 200, "{r:?}");
    let start = Instant::now();
    loop {
        let h = gw.health();
        let written = h["store"]["written"].as_u64().unwrap_or(0);
        let pending = gw.get_json("/api/v1/tickets?delivery=pending&limit=10000")["count"].as_u64();
        if written >= r.successful && pending == Some(0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{h}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let answered = gw.get_json("/api/v1/calls?outcome=answered&limit=10000")["count"].as_u64();
    assert_eq!(answered, Some(r.successful), "every answered call recorded");
    let tickets = gw.get_json("/api/v1/tickets?limit=10000");
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(
        seen.stubs.len() as u64,
        tickets["count"].as_u64().unwrap(),
        "one stub per call"
    );
    for t in tickets["tickets"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        assert_eq!(seen.stubs[id]["revision"], t["revision"], "{t}");
        assert_eq!(t["delivery"], "delivered", "{t}");
    }
}
