//! Answering requests the parser rejected.
//!
//! Why: a request that cannot be parsed still deserves a `400` when its Via, From,
//! To, Call-ID and CSeq can be found (DESIGN.md §6); without them no response can be
//! addressed and the message is dropped. This scanner is deliberately simpler than
//! the parser: it only unfolds lines and matches header names.

use bytes::Bytes;

use super::builder::MessageBuf;

/// The header lines a response must echo, found by a forgiving scan.
#[derive(Debug, Default)]
struct Echo {
    via: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

/// A `400` for an unparseable request, or `None` when it cannot be answered
/// (a response, or a request missing what a response needs).
pub fn bad_request(data: &[u8], detail: &str) -> Option<Bytes> {
    error_response(data, 400, &format!("Bad Request ({detail})"))
}

/// Any error response to an unparseable request, when one can be addressed.
pub fn error_response(data: &[u8], code: u16, reason: &str) -> Option<Bytes> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = unfold(head).into_iter();
    let start = lines.next()?;
    if start.starts_with("SIP/") || start.trim().is_empty() {
        return None;
    }
    let mut echo = Echo::default();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => echo.via.push(value),
            "from" | "f" => echo.from = echo.from.or(Some(value)),
            "to" | "t" => echo.to = echo.to.or(Some(value)),
            "call-id" | "i" => echo.call_id = echo.call_id.or(Some(value)),
            "cseq" => echo.cseq = echo.cseq.or(Some(value)),
            _ => {}
        }
    }
    let (Some(from), Some(to), Some(call_id), Some(cseq)) =
        (echo.from, echo.to, echo.call_id, echo.cseq)
    else {
        return None;
    };
    if echo.via.is_empty() {
        return None;
    }
    let mut m = MessageBuf::response(code, reason);
    for via in &echo.via {
        m.header("Via", via);
    }
    m.header("From", &from)
        .header("To", &to)
        .header("Call-ID", &call_id)
        .header("CSeq", &cseq);
    Some(m.finish_empty())
}

fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        match (line.starts_with([' ', '\t']), out.last_mut()) {
            (true, Some(last)) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_when_it_can_and_drops_responses() {
        let req = b"INVITE sip:a  SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        let resp = bad_request(req, "bad Request-Line").unwrap();
        assert!(resp.starts_with(b"SIP/2.0 400 Bad Request (bad Request-Line)\r\n"));
        assert!(bad_request(b"SIP/2.0 200 OK\r\n\r\n", "x").is_none());
        assert!(bad_request(b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n", "x").is_none());
    }
}
