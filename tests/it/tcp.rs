//! Wire-level behaviour over raw sockets: TCP framing and its recovery from bad
//! input, the message size cap, and overload answered with `503` + `Retry-After`.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::support::*;

fn options(call_id: &str, transport: &str, via_host: &str) -> String {
    format!(
        "OPTIONS sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {via_host};branch=z9hG4bK{call_id}\r\n\
Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag=t{call_id}\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
    )
}

fn invite(call_id: &str, via_host: &str) -> String {
    format!(
        "INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{call_id}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13800138000@127.0.0.1>;tag=t{call_id}\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{via_host}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads responses off a TCP stream until `n` status lines have arrived.
fn read_status_lines(s: &mut TcpStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&buf).matches("SIP/2.0 ").count() < n {
        let k = s.read(&mut chunk).expect("response before timeout");
        assert!(k > 0, "connection closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .filter(|l| l.starts_with("SIP/2.0 "))
        .map(str::to_string)
        .collect()
}

#[test]
fn tcp_bad_message_gets_400_and_the_connection_lives_on() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let mut s = TcpStream::connect(gw.sip).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    // A request line with two spaces: framed fine, unparseable, answerable.
    let bad = options("bad1", "TCP", &local).replacen("OPTIONS sip", "OPTIONS  sip", 1);
    // A keep-alive, then two messages in one write, the second split in two writes.
    let good = options("good1", "TCP", &local);
    let (head, tail) = good.split_at(40);
    s.write_all(b"\r\n\r\n").unwrap();
    s.write_all(format!("{bad}{head}").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(tail.as_bytes()).unwrap();
    let lines = read_status_lines(&mut s, 2);
    assert!(lines[0].starts_with("SIP/2.0 400 Bad Request"), "{lines:?}");
    assert_eq!(lines[1], "SIP/2.0 200 OK");
    // A bad Content-Length: skipped with a 400, then the stream is in sync again.
    let neg = options("neg1", "TCP", &local).replace("l: 0", "l: -5");
    s.write_all(format!("{neg}{}", options("good2", "TCP", &local)).as_bytes())
        .unwrap();
    let lines = read_status_lines(&mut s, 2);
    assert!(lines[0].starts_with("SIP/2.0 400"), "{lines:?}");
    assert_eq!(lines[1], "SIP/2.0 200 OK");
}

#[test]
fn an_oversized_tcp_message_body_is_skipped_not_read_as_the_next_message() {
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.max_message = 4096;
    let gw = Gateway::start(opts);
    let mut s = TcpStream::connect(gw.sip).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    // A body over the limit that is itself a request: were it read as the next
    // message, it would get its own 200 (a smuggled request).
    let smuggled = options("smuggled1", "TCP", &local);
    let padding = "x".repeat(8_000);
    let body = format!("{padding}{smuggled}");
    let big = options("big2", "TCP", &local).replace(
        "l: 0\r\n",
        &format!("Content-Type: text/plain\r\nl: {}\r\n", body.len()),
    );
    // Sent in pieces: the body arrives after the refusal.
    s.write_all(big.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(body.as_bytes()).unwrap();
    s.write_all(options("after1", "TCP", &local).as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("Call-ID: after1") {
        let k = s.read(&mut chunk).expect("an answer to the message after");
        assert!(k > 0, "connection closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.contains("smuggled1"),
        "the body was read as a message: {text}"
    );
    assert!(
        text.starts_with("SIP/2.0 4") || text.starts_with("SIP/2.0 5"),
        "{text}"
    );
}

#[test]
fn oversized_datagram_gets_513() {
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.max_message = 4096;
    let gw = Gateway::start(opts);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    let big = options("big1", "UDP", &local).replace(
        "l: 0\r\n",
        &format!("X-Padding: {}\r\nl: 0\r\n", "a".repeat(10_000)),
    );
    s.send_to(big.as_bytes(), gw.sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 513 Message Too Large"));
}

#[test]
fn over_the_limit_a_new_call_gets_503_with_retry_after() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut opts = GwOpts::to(format!(
        "sip:127.0.0.1:{}",
        silent.local_addr().unwrap().port()
    ));
    opts.max_calls = 1;
    let gw = Gateway::start(opts);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    let mut buf = [0u8; 4096];
    s.send_to(invite("hold1", &local).as_bytes(), gw.sip)
        .unwrap();
    let (n, _) = s.recv_from(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 100 Trying"));
    s.send_to(invite("over1", &local).as_bytes(), gw.sip)
        .unwrap();
    let mut text = String::new();
    // The status line, not any "503" (a Via's port may hold one).
    while !text.starts_with("SIP/2.0 503") {
        let (n, _) = s.recv_from(&mut buf).unwrap();
        text = String::from_utf8_lossy(&buf[..n]).to_string();
    }
    assert!(
        text.starts_with("SIP/2.0 503 Service Unavailable"),
        "{text}"
    );
    assert!(text.contains("Retry-After: 7\r\n"), "{text}");
    assert!(text.contains("Call-ID: over1"), "{text}");
}

/// A message begun and never finished closes its connection after 64·T1 (here
/// 50 ms × 64 = 3.2 s); a connection that is merely idle stays up.
#[test]
fn a_tcp_message_never_finished_closes_the_connection_and_an_idle_one_stays() {
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.t1_ms = 50;
    let gw = Gateway::start(opts);
    let mut idle = TcpStream::connect(gw.sip).unwrap();
    let mut stalled = TcpStream::connect(gw.sip).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let local = stalled.local_addr().unwrap().to_string();
    let msg = options("stall1", "TCP", &local);
    stalled.write_all(&msg.as_bytes()[..60]).unwrap();
    let started = std::time::Instant::now();
    let mut chunk = [0u8; 256];
    let n = stalled
        .read(&mut chunk)
        .expect("closed before the read timeout");
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&chunk[..n]));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "closed too soon"
    );

    // The idle connection was open all along and still answers.
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = idle.local_addr().unwrap().to_string();
    idle.write_all(options("idle1", "TCP", &local).as_bytes())
        .unwrap();
    assert_eq!(read_status_lines(&mut idle, 1), vec!["SIP/2.0 200 OK"]);
}
