//! Attacker tests: agents over TCP. A TCP agent is rung over the connection its
//! REGISTER came on while that is open, then at its Contact's port on the address
//! it registered from (never at a dead ephemeral port, never at another host).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::agents::{Ua, WAIT, answer, gateway, invite};
use super::raw_sip::Msg as Got;
use crate::support::*;

/// A TCP connection to `to` from the loopback address `ip`.
fn tcp_from(ip: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let from: std::net::IpAddr = ip.parse().unwrap();
    s.bind(&SocketAddr::new(from, 0).into()).unwrap();
    s.connect_timeout(&to.into(), WAIT).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads one SIP message off `s`; `buf` keeps whatever follows it.
fn read_sip(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let body = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    let k = k.trim();
                    (k.eq_ignore_ascii_case("Content-Length") || k.eq_ignore_ascii_case("l"))
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + body {
                let msg: Vec<u8> = buf.drain(..end + 4 + body).collect();
                return String::from_utf8_lossy(&msg).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("a SIP message in time");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Registers 2002 over a new TCP connection from `ip`, naming `contact`; the
/// connection, still open.
fn register_tcp(gw: &Gateway, ip: &str, contact: &str) -> TcpStream {
    let mut s = tcp_from(ip, gw.sip);
    let local = s.local_addr().unwrap();
    let uri = format!("sip:{}", gw.sip);
    let mut buf = Vec::new();
    let mut auth: Option<String> = None;
    for cseq in 1..=2 {
        let mut text = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-t{cseq}-{port}\r\n\
Max-Forwards: 70\r\nFrom: <sip:2002@{gw}>;tag=t{port}\r\nTo: <sip:2002@{gw}>\r\n\
Call-ID: tcp-reg-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: 600\r\n",
            port = local.port(),
            gw = gw.sip
        );
        if let Some(a) = &auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        s.write_all(text.as_bytes()).unwrap();
        let got = Got {
            text: read_sip(&mut s, &mut buf),
            from: gw.sip,
        };
        match got.status() {
            Some(401) if auth.is_none() => {
                auth = Some(answer(&got, "2002", "secret-2002", "REGISTER", &uri));
            }
            Some(200) => return s,
            _ => panic!("REGISTER over TCP refused:\n{}", got.text),
        }
    }
    unreachable!()
}

/// Waits until the gateway holds `n` TCP connections.
fn wait_tcp_connections(gw: &Gateway, n: u64) {
    let end = Instant::now() + WAIT;
    loop {
        let (_, text) = http_get(gw.http, "/metrics").expect("metrics");
        let open = text.lines().find_map(|l| {
            l.strip_prefix("hotline_sip_tcp_connections ")?
                .trim()
                .parse::<u64>()
                .ok()
        });
        if open == Some(n) {
            return;
        }
        assert!(Instant::now() < end, "TCP connections: {open:?}, want {n}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 14 review: a TCP agent was rung at its REGISTER's ephemeral port,
/// which means nothing once that connection is gone.
#[test]
fn a_tcp_agent_is_rung_over_its_connection_then_at_its_contact_port() {
    let transfer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::bind("127.0.0.9:0").unwrap();
    let contact = format!("sip:2002@{};transport=tcp", listener.local_addr().unwrap());

    // While the REGISTER's connection is open: the INVITE comes over it.
    let gw = gateway(&transfer);
    let mut conn = register_tcp(&gw, "127.0.0.9", &contact);
    let caller = Ua::new("127.0.0.1", &gw);
    invite(&caller, "13912345678", "citizen-tcp-1", 1, None);
    let rung = read_sip(&mut conn, &mut Vec::new());
    assert!(rung.starts_with(&format!("INVITE {contact} ")), "{rung}");
    drop((conn, caller, gw));

    // Once it has closed: a new connection to the Contact's port, same address.
    let gw = gateway(&transfer);
    let conn = register_tcp(&gw, "127.0.0.9", &contact);
    drop(conn);
    wait_tcp_connections(&gw, 0);
    let caller = Ua::new("127.0.0.1", &gw);
    invite(&caller, "13912345678", "citizen-tcp-2", 1, None);
    listener.set_nonblocking(true).unwrap();
    let end = Instant::now() + WAIT;
    let mut back = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < end,
                    "the gateway never connected to the Contact's port"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    back.set_nonblocking(false).unwrap();
    back.set_read_timeout(Some(WAIT)).unwrap();
    let rung = read_sip(&mut back, &mut Vec::new());
    assert!(rung.starts_with(&format!("INVITE {contact} ")), "{rung}");
}
