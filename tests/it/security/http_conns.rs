//! Attacker tests: HTTP connections (DESIGN.md §7, "an HTTP client"). Before,
//! any client could hold connections open for ever (idle keep-alive, or never a
//! request) until the process ran out of file descriptors and RTP, SIP TCP and
//! SQLite failed. Now the connections open at once are capped in total and per
//! source address (`[http] max_connections`, `max_per_source`), and one whose
//! request headers are late (`header_timeout_s`) is closed; normal clients,
//! including kept-alive ones that keep asking, are served throughout.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::*;

/// A TCP connection to `to` from the loopback address `ip` ("another host").
fn connect_from(ip: [u8; 4], to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect from {ip:?}: {e}"));
    s.into()
}

/// Whether the gateway has closed `s` (end of stream or reset), without waiting.
fn closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    let gone = match (&*s).read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    s.set_nonblocking(false).unwrap();
    gone
}

/// Polls a condition every 50 ms for up to 20 s.
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An authorised GET from 127.0.0.1, as the wallboard or a scraper makes it.
fn viewer_get(gw: &Gateway, path: &str) -> Option<u16> {
    http_get_as(gw.http, path, Some(VIEWER_TOKEN)).map(|(code, _)| code)
}

/// The value of one metric line without labels.
fn metric(gw: &Gateway, name: &str) -> f64 {
    let (code, body) = http_get_as(gw.http, "/metrics", Some(VIEWER_TOKEN)).expect("/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
}

fn gateway(http_keys: &str) -> Gateway {
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.http_keys = http_keys.into();
    Gateway::start(opts)
}

#[test]
fn connections_over_the_caps_are_closed_at_once() {
    let gw = gateway("max_connections = 24\nmax_per_source = 8\nheader_timeout_s = 120\n");
    assert_eq!(viewer_get(&gw, "/api/v1/sla"), Some(200));

    // One host opens more than its share: the extra ones are closed at once,
    // its first eight stay open (their header deadline is far away).
    let mut first: Vec<TcpStream> = (0..12)
        .map(|_| connect_from([127, 0, 0, 2], gw.http))
        .collect();
    wait_until("4 of 12 connections from 127.0.0.2 closed", || {
        first.iter().filter(|s| closed(s)).count() == 4
    });
    first.retain(|s| !closed(s));
    assert_eq!(first.len(), 8, "the first eight are kept");
    // Everyone else is still served.
    assert_eq!(viewer_get(&gw, "/api/v1/sla"), Some(200));
    wait_until("8 open, 4 refused in /metrics", || {
        metric(&gw, "hotline_http_connections") == 9.0
            && metric(&gw, "hotline_http_refused_total") == 4.0
    });

    // Two more hosts fill the total (8 + 8 + 8 = 24): a fourth host is refused,
    // and so is, for now, an authorised client.
    let more: Vec<TcpStream> = [3, 4]
        .iter()
        .flat_map(|&n| (0..8).map(move |_| n))
        .map(|n| connect_from([127, 0, 0, n], gw.http))
        .collect();
    let late = connect_from([127, 0, 0, 5], gw.http);
    wait_until("the connection over the total closed", || closed(&late));
    assert!(
        more.iter().chain(&first).all(|s| !closed(s)),
        "the 24 under the caps stay open"
    );
    assert_eq!(viewer_get(&gw, "/healthz"), None, "full: closed at once");

    // As soon as the hosts let go, the API answers again.
    drop(more);
    wait_until("an authorised GET answered again", || {
        viewer_get(&gw, "/api/v1/sla") == Some(200)
    });
    // 4 + the fourth host + the client while full (+ any retry before the
    // gateway saw the hosts go).
    assert!(metric(&gw, "hotline_http_refused_total") >= 6.0);
    drop(first);
    wait_until("only the scraper's connection open", || {
        metric(&gw, "hotline_http_connections") == 1.0
    });
}

/// Writes a keep-alive GET and reads its answer (status and `Content-Length` body).
fn keep_alive_get(s: &mut TcpStream, addr: SocketAddr, path: &str) -> Option<u16> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {VIEWER_TOKEN}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            if raw.len() >= end + 4 + len {
                return head.split_whitespace().nth(1)?.parse().ok();
            }
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_connection_that_sends_no_request_is_closed_after_the_header_deadline() {
    let gw = gateway("header_timeout_s = 2\n");
    // A client that keeps asking on its kept-alive connection, as the wallboard
    // does; opened first, it outlives every idle one below: the deadline is per
    // request, not per connection.
    let mut poller = TcpStream::connect(gw.http).unwrap();
    assert_eq!(
        keep_alive_get(&mut poller, gw.http, "/api/v1/sla"),
        Some(200)
    );
    // Silent ones, one that stops in the middle of its headers, one that asks
    // once and then idles with keep-alive.
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| connect_from([127, 0, 0, 2], gw.http))
        .collect();
    let mut half = connect_from([127, 0, 0, 3], gw.http);
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    idle.push(half);
    let mut asked = connect_from([127, 0, 0, 4], gw.http);
    assert_eq!(keep_alive_get(&mut asked, gw.http, "/healthz"), Some(200));
    idle.push(asked);

    let start = Instant::now();
    let mut answered = 1;
    while !idle.iter().all(closed) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "idle connections still open after 20 s"
        );
        assert_eq!(
            keep_alive_get(&mut poller, gw.http, "/api/v1/sla"),
            Some(200),
            "request {answered} on the kept-alive connection"
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        keep_alive_get(&mut poller, gw.http, "/api/v1/sla"),
        Some(200),
        "the poller's connection outlived the idle ones"
    );
    wait_until("the 6 late ones counted", || {
        metric(&gw, "hotline_http_timeouts_total") >= 6.0
    });
    assert_eq!(metric(&gw, "hotline_http_refused_total"), 0.0);
}
