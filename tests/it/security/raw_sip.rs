//! A raw SIP endpoint for the attacker tests: a UDP socket on a loopback address
//! of its own, messages written and read as text (no parser of the gateway's).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A raw SIP endpoint on a loopback address of its own.
pub(super) struct Phone {
    sock: UdpSocket,
    pub(super) addr: SocketAddr,
}

impl Phone {
    pub(super) fn on(ip: &str) -> Phone {
        Phone::with(UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}")))
    }

    /// A phone on a socket bound elsewhere (a seat the dialplan names).
    pub(super) fn with(sock: UdpSocket) -> Phone {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        Phone { sock, addr }
    }

    pub(super) fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).unwrap();
    }

    /// The next message whose first line and headers satisfy `pred`, within `limit`.
    pub(super) fn expect(&self, what: &str, limit: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        self.wait(limit, pred)
            .unwrap_or_else(|| panic!("{} got no {what} within {limit:?}", self.addr))
    }

    pub(super) fn wait(&self, limit: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let start = Instant::now();
        let mut buf = [0u8; 65_536];
        while start.elapsed() < limit {
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let m = Msg {
                    text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                    from,
                };
                if pred(&m) {
                    return Some(m);
                }
            }
        }
        None
    }
}

/// A received message, as text, and where it came from.
#[derive(Debug, Clone)]
pub(super) struct Msg {
    pub(super) text: String,
    pub(super) from: SocketAddr,
}

impl Msg {
    /// The status code of a response.
    pub(super) fn status(&self) -> Option<u16> {
        self.text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// A response's reason phrase.
    pub(super) fn reason(&self) -> &str {
        self.first_line().get(12..).unwrap_or_default()
    }

    /// The first value of header `name` (long form; case-insensitive).
    pub(super) fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers(name).next()
    }

    pub(super) fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.text.lines().filter_map(move |l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub(super) fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    pub(super) fn is_status(&self, code: u16) -> bool {
        self.first_line().starts_with(&format!("SIP/2.0 {code} "))
    }

    pub(super) fn is_request(&self, method: &str) -> bool {
        self.first_line().starts_with(&format!("{method} "))
    }

    pub(super) fn tag(&self, header: &str) -> String {
        let h = self.header(header).unwrap_or_default();
        h.split(";tag=")
            .nth(1)
            .map(|t| t.split(';').next().unwrap().to_string())
            .unwrap_or_default()
    }

    pub(super) fn cseq_method(&self) -> String {
        self.header("CSeq")
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .into()
    }

    /// A response to this request, with the given status and our `tag` on To.
    pub(super) fn reply(
        &self,
        code: u16,
        phrase: &str,
        tag: &str,
        contact: SocketAddr,
        sdp: &str,
    ) -> String {
        let mut out = format!("SIP/2.0 {code} {phrase}\r\n");
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            for l in self.text.lines() {
                if l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                {
                    out.push_str(l);
                    out.push_str("\r\n");
                }
            }
        }
        let to = self.header("To").unwrap_or_default();
        if to.contains(";tag=") {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={tag}\r\n"));
        }
        out.push_str(&format!("Contact: <sip:seat@{contact}>\r\n"));
        if sdp.is_empty() {
            out.push_str("Content-Length: 0\r\n\r\n");
        } else {
            out.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            ));
        }
        out
    }
}

pub(super) fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

pub(super) fn invite(from: &Phone, gw: SocketAddr, call_id: &str, branch: &str) -> String {
    let body = sdp(&from.addr.ip().to_string(), 40_000);
    format!(
        "INVITE sip:12345@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13800138000@{}>;tag=caller1\r\nTo: <sip:12345@{gw}>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:13800138000@{}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        from.addr,
        from.addr.ip(),
        from.addr,
        body.len()
    )
}

/// A request inside a dialog, with the given Call-ID and tags.
#[allow(clippy::too_many_arguments)]
pub(super) fn in_dialog(
    method: &str,
    from: &Phone,
    gw: SocketAddr,
    call_id: &str,
    from_tag: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} sip:gw@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{method}{cseq}{from_tag}\r\n\
Max-Forwards: 70\r\nFrom: <sip:x@{}>;tag={from_tag}\r\nTo: <sip:y@{gw}>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:x@{}>\r\n{extra}Content-Length: 0\r\n\r\n",
        from.addr,
        from.addr.ip(),
        from.addr,
    )
}
