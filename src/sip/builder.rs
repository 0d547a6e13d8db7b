//! Serialising outgoing messages.
//!
//! Why: the gateway writes every message it sends itself (never re-serialising a
//! parsed one), so relayed reason phrases and header values stay byte-exact and the
//! hot path is one buffer per message.

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Headers, Method, Request};

/// A message being written: start line, then headers, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct MessageBuf {
    buf: BytesMut,
}

impl MessageBuf {
    pub fn request(method: &Method, uri: &str) -> MessageBuf {
        let mut buf = BytesMut::with_capacity(768);
        buf.put_slice(method.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(uri.as_bytes());
        buf.put_slice(b" SIP/2.0\r\n");
        MessageBuf { buf }
    }

    pub fn response(code: u16, reason: &str) -> MessageBuf {
        let mut buf = BytesMut::with_capacity(768);
        buf.put_slice(b"SIP/2.0 ");
        buf.put_slice(code.to_string().as_bytes());
        buf.put_u8(b' ');
        // A reason phrase may not contain CR or LF.
        for b in reason.bytes() {
            buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        buf.put_slice(b"\r\n");
        MessageBuf { buf }
    }

    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(value.as_bytes());
        self.buf.put_slice(b"\r\n");
        self
    }

    /// Writes Content-Type (when there is a body), Content-Length and the body.
    pub fn finish(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if let (Some(ct), false) = (content_type, body.is_empty()) {
            self.header("Content-Type", ct);
        }
        self.buf.put_slice(b"Content-Length: ");
        self.buf.put_slice(body.len().to_string().as_bytes());
        self.buf.put_slice(b"\r\n\r\n");
        self.buf.put_slice(body);
        self.buf.freeze()
    }

    /// Finishes a message without a body.
    pub fn finish_empty(self) -> Bytes {
        self.finish(None, &[])
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// Starts a response to `req` (RFC 3261 §8.2.6.2): Via lines, From, To (with
/// `to_tag` added when the request's To has none), Call-ID and CSeq copied.
/// A provisional (101–199) or success response also copies the request's
/// Record-Route lines in order (RFC 3261 §12.1.1): when it forms a dialog, the
/// far end learns from them to send its ACK, BYE and re-INVITE back through the
/// proxies that record-routed (Kamailio, a carrier's SBC); on a response that
/// forms none they are ignored.
pub fn response_to(req: &Request, code: u16, reason: &str, to_tag: Option<&str>) -> MessageBuf {
    let mut m = MessageBuf::response(code, reason);
    for via in req.header_all("Via") {
        m.header("Via", via);
    }
    if (101..300).contains(&code) {
        for rr in req.header_all("Record-Route") {
            m.header("Record-Route", rr);
        }
    }
    if let Some(from) = req.header("From") {
        m.header("From", from);
    }
    if let Some(to) = req.header("To") {
        match to_tag {
            Some(tag) if req.to_tag().is_none() && code > 100 => {
                m.header("To", &format!("{to};tag={tag}"));
            }
            _ => {
                m.header("To", to);
            }
        }
    }
    if let Some(cid) = req.call_id() {
        m.header("Call-ID", cid);
    }
    if let Some(cseq) = req.header("CSeq") {
        m.header("CSeq", cseq);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, parse};

    #[test]
    fn response_round_trips_through_the_parser() {
        let req = "INVITE sip:12345@gw SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:12345@gw>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let Message::Request(req) = parse(req.as_bytes()).unwrap() else {
            panic!()
        };
        let bytes = response_to(&req, 486, "Busy Here", Some("gw1")).finish_empty();
        let Message::Response(resp) = parse(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(resp.code, 486);
        assert_eq!(&*resp.reason, "Busy Here");
        assert_eq!(resp.to_tag().as_deref(), Some("gw1"));
        assert_eq!(resp.cseq(), Some((1, Method::Invite)));
    }

    #[test]
    fn dialog_forming_responses_copy_record_route_in_order() {
        let req = "INVITE sip:12345@gw SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK2\r\n\
Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr;ftag=x>, <sip:p3;lr>\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:12345@gw>\r\nCall-ID: rr\r\nCSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let Message::Request(req) = parse(req.as_bytes()).unwrap() else {
            panic!()
        };
        let rr = |code| {
            let bytes = response_to(&req, code, "x", Some("gw1")).finish_empty();
            let Message::Response(resp) = parse(&bytes).unwrap() else {
                panic!()
            };
            resp.header_all("Record-Route")
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let copied = vec!["<sip:p1;lr>", "<sip:p2;lr;ftag=x>, <sip:p3;lr>"];
        assert_eq!(rr(200), copied, "a 200 copies every value, in order");
        assert_eq!(
            rr(180),
            copied,
            "so does a 180 with a tag (an early dialog)"
        );
        assert!(rr(100).is_empty(), "100 Trying forms no dialog");
        assert!(rr(486).is_empty(), "nor does a failure");
    }
}
