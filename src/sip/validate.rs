//! Request checks before a request reaches a transaction (RFC 3261 §8.2, §16.3).
//!
//! Why: bad input must get the answer its content deserves (DESIGN.md §6): `400`
//! with a reason for malformed requests, `505`, `416`, `420`, `415`, `483`. The
//! checks are pure functions of the parsed request, listed in the order they apply.

use super::message::{Headers, Method, Request, SipUri, addr_spec, split_list};

/// A request the gateway refuses, with the response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: u16,
    pub reason: String,
    /// Extra headers for the response (`Unsupported`, `Accept`…).
    pub headers: Vec<(&'static str, String)>,
}

impl Reject {
    fn new(code: u16, reason: impl Into<String>) -> Reject {
        Reject {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn bad(detail: impl std::fmt::Display) -> Reject {
        Reject::new(400, format!("Bad Request ({detail})"))
    }
}

/// Option tags the gateway supports in `Require`.
const SUPPORTED_OPTIONS: &[&str] = &[];
/// Body types the gateway accepts.
const ACCEPTED_BODIES: &[&str] = &[
    "application/sdp",
    "multipart/mixed",
    "multipart/alternative",
    "application/dtmf-relay",
    "application/dtmf",
    "message/sipfrag",
];

/// Headers that may appear once only (RFC 3261 §7.3.1, §20).
const SINGLE: &[&str] = &[
    "Call-ID",
    "From",
    "To",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Expires",
];

/// Checks a request; `Ok` means it may enter the transaction layer. Max-Forwards 0
/// is reported last, so that a malformed request is a `400` whatever its hop count.
pub fn check_request(req: &Request) -> Result<(), Reject> {
    if &*req.version != "SIP/2.0" {
        return Err(Reject::new(505, "Version Not Supported"));
    }
    let uri = req
        .parsed_uri()
        .map_err(|e| Reject::bad(format!("Request-URI: {e}")))?;
    // Max-Forwards is optional for a UAS: RFC 2543 peers never send it.
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if req.header(name).is_none() {
            return Err(Reject::bad(format!("missing {name}")));
        }
    }
    for name in SINGLE {
        let values: usize = req.header_all(name).map(|v| list_len(name, v)).sum();
        if values > 1 {
            return Err(Reject::bad(format!("more than one {name} value")));
        }
    }
    check_vias(req)?;
    let (_, cseq_method) = req
        .cseq()
        .filter(|(n, _)| *n < 1 << 31)
        .ok_or_else(|| Reject::bad("CSeq is not 'number method'"))?;
    if cseq_method != req.method {
        return Err(Reject::bad("CSeq method differs from the request method"));
    }
    check_name_addr("From", req.header("From").unwrap_or_default())?;
    check_name_addr("To", req.header("To").unwrap_or_default())?;
    for contact in req.header_all("Contact").flat_map(split_list) {
        if contact != "*" {
            check_name_addr("Contact", contact)?;
        }
    }
    check_scalars(req)?;
    if let Some(date) = req.header("Date")
        && !date.trim_end().ends_with("GMT")
    {
        return Err(Reject::bad("Date must be in GMT"));
    }
    if !matches!(&*uri.scheme, "sip" | "sips" | "tel") {
        return Err(Reject::new(416, "Unsupported URI Scheme"));
    }
    let host_part = uri.text.rsplit('@').next().unwrap_or("");
    if host_part.contains('?') && uri.scheme.starts_with("sip") {
        return Err(Reject::bad("Request-URI may not carry headers"));
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        check_require(req)?;
        check_body(req)?;
    }
    if let Some(Ok(0)) = req.max_forwards() {
        return Err(Reject::new(483, "Too Many Hops"));
    }
    Ok(())
}

/// Number of comma-separated values in a single-value header line. Call-ID and CSeq
/// have no list syntax, so a comma there is itself a second value.
fn list_len(name: &str, value: &str) -> usize {
    match name {
        "Call-ID" | "CSeq" | "Max-Forwards" => 1 + value.matches(',').count(),
        "Content-Type" | "Expires" => 1,
        _ => split_list(value).count(),
    }
}

fn check_vias(req: &Request) -> Result<(), Reject> {
    for via in req.via_values() {
        let ok = via.split(';').next().is_some_and(|head| {
            let head = head.trim();
            head.split('/').count() == 3
                && head
                    .rsplit(|c: char| c.is_whitespace())
                    .next()
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'))
        }) && via
            .split(';')
            .skip(1)
            .all(|p| !p.trim().is_empty() && !p.contains(','));
        if !ok {
            return Err(Reject::bad("malformed Via"));
        }
    }
    if req.top_via().is_none() {
        return Err(Reject::bad("malformed Via"));
    }
    Ok(())
}

fn check_name_addr(name: &str, value: &str) -> Result<(), Reject> {
    if value.matches('"').count() % 2 == 1 && !value.contains("\\\"") {
        return Err(Reject::bad(format!("unterminated quote in {name}")));
    }
    let spec = addr_spec(value);
    if spec.is_empty() || spec.contains(char::is_whitespace) {
        return Err(Reject::bad(format!("malformed address in {name}")));
    }
    let bracketed = value.contains('<');
    if !bracketed && (spec.contains('?') || spec.contains(',')) {
        return Err(Reject::bad(format!("{name} URI with headers must use <>")));
    }
    if bracketed && !value.contains('>') {
        return Err(Reject::bad(format!("unclosed <> in {name}")));
    }
    if bracketed && (value.contains("< ") || value.contains(" >")) {
        return Err(Reject::bad(format!("whitespace inside <> in {name}")));
    }
    // A display name before '<' must be a quoted string or tokens.
    if let Some(open) = value.find('<') {
        let display = value[..open].trim();
        if !display.starts_with('"')
            && !display
                .split_whitespace()
                .all(|t| t.bytes().all(super::message::is_token_char))
        {
            return Err(Reject::bad(format!(
                "display name in {name} must be quoted"
            )));
        }
    }
    if spec.starts_with("sip") && SipUri::parse(spec).is_err() {
        return Err(Reject::bad(format!("malformed URI in {name}")));
    }
    Ok(())
}

fn check_scalars(req: &Request) -> Result<(), Reject> {
    if let Some(mf) = req.max_forwards() {
        match mf {
            Ok(n) if n <= 255 => {}
            _ => return Err(Reject::bad("Max-Forwards must be 0-255")),
        }
    }
    if let Some(e) = req.header("Expires")
        && e.trim().parse::<u32>().is_err()
    {
        return Err(Reject::bad("Expires is not a 32-bit number"));
    }
    for contact in req.header_all("Contact").flat_map(split_list) {
        if let Some(e) = super::message::param(contact.rsplit('>').next().unwrap_or(""), "expires")
            && e.parse::<u32>().is_err()
        {
            return Err(Reject::bad("Contact expires is not a 32-bit number"));
        }
    }
    Ok(())
}

fn check_require(req: &Request) -> Result<(), Reject> {
    let unknown: Vec<&str> = req
        .header_all("Require")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !SUPPORTED_OPTIONS.contains(t))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut r = Reject::new(420, "Bad Extension");
    r.headers.push(("Unsupported", unknown.join(", ")));
    Err(r)
}

fn check_body(req: &Request) -> Result<(), Reject> {
    if !req.body.is_empty() {
        let ct = req.content_type().unwrap_or("application/sdp");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED_BODIES.contains(&mime.as_str()) {
            let mut r = Reject::new(415, "Unsupported Media Type");
            r.headers.push(("Accept", "application/sdp".into()));
            return Err(r);
        }
    }
    if req.method == Method::Invite
        && let Some(accept) = req.header("Accept")
    {
        let ok = accept.split(',').any(|a| {
            let m = a
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            m == "application/sdp" || m == "application/*" || m == "*/*"
        });
        if !ok {
            let mut r = Reject::new(406, "Not Acceptable");
            r.headers.push(("Accept", "application/sdp".into()));
            return Err(r);
        }
    }
    Ok(())
}
