//! The SIP message facade: the only file that touches `rsipstack`'s `sip` types.
//!
//! Why: rsipstack's parser is the most robust one available (DESIGN.md §3), but its
//! API churns between releases. Everything else in the crate sees [`Request`],
//! [`Response`] and [`Method`] from here, so an upgrade is a one-file change.
//!
//! The facade also fills two gaps of the underlying parser: extension methods
//! (rsipstack knows only the 14 standard ones) and header values kept verbatim,
//! so that a B2BUA can relay them byte for byte.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use rsipstack::sip as rs;

use super::framing;
pub use super::header_value::{addr_spec, first_list_value, param, split_list, tag_of};

/// Why a datagram or stream frame is not a SIP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("framing: {0}")]
    Framing(#[from] framing::FrameError),
    #[error("start line: {0}")]
    StartLine(String),
    #[error("header {name}: {reason}")]
    Header { name: &'static str, reason: String },
}

/// A SIP method, including extension methods the parser library does not know.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Update,
    Info,
    Prack,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    /// An extension method token (RFC 3261 §25.1 `extension-method`).
    Other(Box<str>),
}

impl Method {
    /// Parses a method token; anything that is a valid token but not standard is
    /// `Other`. Method names are case-sensitive (RFC 3261 §7.1): `options` is an
    /// extension method, not OPTIONS.
    pub fn from_token(token: &str) -> Option<Method> {
        if token.is_empty() || !token.bytes().all(is_token_char) {
            return None;
        }
        Some(match rs::Method::try_from(token).map(Self::from_rs) {
            Ok(m) if m.as_str() == token => m,
            _ => Method::Other(token.into()),
        })
    }

    fn from_rs(m: rs::Method) -> Method {
        match m {
            rs::Method::Ack => Method::Ack,
            rs::Method::Bye => Method::Bye,
            rs::Method::Cancel => Method::Cancel,
            rs::Method::Info => Method::Info,
            rs::Method::Invite => Method::Invite,
            rs::Method::Message => Method::Message,
            rs::Method::Notify => Method::Notify,
            rs::Method::Options => Method::Options,
            rs::Method::PRack => Method::Prack,
            rs::Method::Publish => Method::Publish,
            rs::Method::Refer => Method::Refer,
            rs::Method::Register => Method::Register,
            rs::Method::Subscribe => Method::Subscribe,
            rs::Method::Update => Method::Update,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(t) => t,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// One header as it appeared on the wire (compact names expanded, value trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: Cow<'static, str>,
    pub value: String,
}

/// The parts of a URI the gateway routes on. The full text is kept for relaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// Lower-case scheme: `sip`, `sips`, `tel`, or whatever the sender wrote.
    pub scheme: Box<str>,
    pub user: Option<Box<str>>,
    pub host: Box<str>,
    pub port: Option<u16>,
    /// `transport=` parameter, lower-case.
    pub transport: Option<Box<str>>,
    /// The URI exactly as written, without enclosing `<>`.
    pub text: Box<str>,
}

impl SipUri {
    /// Parses a URI; `tel:` URIs keep their number in `user` and an empty host.
    pub fn parse(text: &str) -> Result<SipUri, String> {
        let text = text
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let colon = text
            .find(':')
            .ok_or_else(|| format!("no scheme in {text:?}"))?;
        let scheme = text[..colon].to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(format!("bad scheme in {text:?}"));
        }
        if scheme == "tel" {
            let rest = &text[colon + 1..];
            let number = rest.split(';').next().unwrap_or_default();
            return Ok(SipUri {
                scheme: scheme.into(),
                user: Some(number.into()),
                host: "".into(),
                port: None,
                transport: None,
                text: text.into(),
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return Ok(SipUri {
                scheme: scheme.into(),
                user: None,
                host: "".into(),
                port: None,
                transport: None,
                text: text.into(),
            });
        }
        let uri = rs::parse_uri(text).map_err(|e| e.to_string())?;
        let transport = uri.params.iter().find_map(|p| match p {
            rs::Param::Transport(t) => Some(t.to_string().to_ascii_lowercase().into_boxed_str()),
            _ => None,
        });
        let host = match &uri.host_with_port.host {
            rs::Host::Domain(d) => d.to_string(),
            rs::Host::IpAddr(ip) => ip.to_string(),
        };
        Ok(SipUri {
            scheme: scheme.into(),
            user: uri.auth.as_ref().map(|a| a.user.as_str().into()),
            host: host.into(),
            port: uri.host_with_port.port.as_ref().map(|p| p.value()),
            transport,
            text: text.into(),
        })
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

/// The top Via of a message, as the transaction layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopVia {
    /// `UDP`, `TCP`, … as written (upper-cased).
    pub transport: Box<str>,
    /// `host[:port]` as written.
    pub sent_by: Box<str>,
    pub branch: Option<Box<str>>,
}

/// A parsed SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The Request-URI as written.
    pub uri: Box<str>,
    /// `SIP/2.0`, or what the sender wrote instead.
    pub version: Box<str>,
    pub headers: Vec<HeaderField>,
    pub body: Vec<u8>,
}

/// A parsed SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub code: u16,
    /// The reason phrase exactly as the sender wrote it.
    pub reason: Box<str>,
    pub version: Box<str>,
    pub headers: Vec<HeaderField>,
    pub body: Vec<u8>,
}

/// Either kind of message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Header lookup shared by requests and responses.
pub trait Headers {
    fn fields(&self) -> &[HeaderField];

    /// The first value of a header by its full name (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.fields()
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &*h.value)
    }

    /// Every line of a header, in order.
    fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields()
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &*h.value)
    }

    /// How many lines of a header appear.
    fn header_count(&self, name: &str) -> usize {
        self.fields()
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }

    fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq number and method.
    fn cseq(&self) -> Option<(u32, Method)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_ascii_whitespace();
        let seq = it.next()?.parse::<u32>().ok()?;
        let method = Method::from_token(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some((seq, method))
    }

    #[allow(clippy::wrong_self_convention)] // "From tag" is the SIP term
    fn from_tag(&self) -> Option<String> {
        tag_of(self.header("From")?)
    }

    fn to_tag(&self) -> Option<String> {
        tag_of(self.header("To")?)
    }

    /// The first Via value, parsed.
    fn top_via(&self) -> Option<TopVia> {
        let first = first_list_value(self.header("Via")?);
        parse_via(first)
    }

    /// Every Via value in order, splitting comma-separated lines.
    fn via_values(&self) -> Vec<&str> {
        self.header_all("Via").flat_map(split_list).collect()
    }

    fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }
}

impl Headers for Request {
    fn fields(&self) -> &[HeaderField] {
        &self.headers
    }
}

impl Headers for Response {
    fn fields(&self) -> &[HeaderField] {
        &self.headers
    }
}

impl Request {
    /// The Request-URI, parsed.
    pub fn parsed_uri(&self) -> Result<SipUri, String> {
        SipUri::parse(&self.uri)
    }

    /// Max-Forwards, if present and numeric.
    pub fn max_forwards(&self) -> Option<Result<u32, ()>> {
        self.header("Max-Forwards")
            .map(|v| v.trim().parse::<u32>().map_err(|_| ()))
    }

    /// The URI of the first Contact, when it has one.
    pub fn contact_uri(&self) -> Option<SipUri> {
        let v = self.header("Contact")?;
        let first = first_list_value(v);
        SipUri::parse(addr_spec(first)).ok()
    }
}

impl Response {
    /// The URI of the first Contact, when it has one.
    pub fn contact_uri(&self) -> Option<SipUri> {
        let v = self.header("Contact")?;
        SipUri::parse(addr_spec(first_list_value(v))).ok()
    }
}

/// Parses one complete message. `data` must be exactly one frame (see [`framing`]).
pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
    let line_end =
        memchr::memchr(b'\n', data).ok_or(ParseError::StartLine("no line end".into()))?;
    let start = std::str::from_utf8(&data[..line_end])
        .map_err(|_| ParseError::StartLine("not UTF-8".into()))?
        .trim_end_matches('\r');
    if start.starts_with("SIP/") {
        return parse_response(data, start);
    }
    parse_request(data, start)
}

fn parse_request(data: &[u8], start: &str) -> Result<Message, ParseError> {
    let mut parts = start.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine(
            "Request-Line must be 'METHOD SP Request-URI SP SIP-Version'".into(),
        ));
    };
    let method = Method::from_token(method)
        .ok_or_else(|| ParseError::StartLine(format!("method {method:?} is not a token")))?;
    if uri.is_empty() || uri.starts_with('<') {
        return Err(ParseError::StartLine("Request-URI is malformed".into()));
    }
    if !version.starts_with("SIP/") {
        return Err(ParseError::StartLine(format!(
            "bad SIP-Version {version:?}"
        )));
    }
    // rsipstack knows only the standard methods and SIP/2.0; parse the rest of the
    // message with a stand-in start line and keep what the sender actually wrote.
    let standard = !matches!(method, Method::Other(_)) && version == "SIP/2.0";
    let parsed = if standard {
        rs::parser::parse_message(data)
    } else {
        let mut copy = Vec::with_capacity(data.len() + 16);
        copy.extend_from_slice(b"OPTIONS sip:x SIP/2.0");
        let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
        copy.extend_from_slice(b"\r");
        copy.extend_from_slice(&data[line_end..]);
        rs::parser::parse_message(&copy)
    };
    let msg = parsed.map_err(|e| ParseError::StartLine(e.to_string()))?;
    let rs::SipMessage::Request(req) = msg else {
        return Err(ParseError::StartLine("expected a request".into()));
    };
    Ok(Message::Request(Request {
        method,
        uri: uri.into(),
        version: version.into(),
        headers: convert_headers(req.headers),
        body: req.body,
    }))
}

fn parse_response(data: &[u8], start: &str) -> Result<Message, ParseError> {
    let mut parts = start.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::StartLine(format!("bad status code {code:?}")));
    }
    let code: u16 = code.parse().unwrap_or_default();
    if !(100..700).contains(&code) {
        return Err(ParseError::StartLine(format!(
            "status code {code} out of range"
        )));
    }
    let msg = rs::parser::parse_message(data).map_err(|e| ParseError::StartLine(e.to_string()))?;
    let rs::SipMessage::Response(resp) = msg else {
        return Err(ParseError::StartLine("expected a response".into()));
    };
    Ok(Message::Response(Response {
        code,
        reason: reason.into(),
        version: version.into(),
        headers: convert_headers(resp.headers),
        body: resp.body,
    }))
}

fn convert_headers(headers: rs::Headers) -> Vec<HeaderField> {
    headers.0.into_iter().map(into_field).collect()
}

/// Moves a parsed header's name and value out without copying the value.
fn into_field(h: rs::Header) -> HeaderField {
    macro_rules! known {
        ($($variant:ident => $name:literal,)*) => {
            match h {
                $(rs::Header::$variant(v) => (Cow::Borrowed($name), v.0),)*
                rs::Header::Other(n, v) => match expand_compact(&n) {
                    Some(full) => (Cow::Borrowed(full), v),
                    None => (Cow::Owned(n), v),
                },
            }
        };
    }
    let (name, mut value) = known! {
        Accept => "Accept",
        AcceptEncoding => "Accept-Encoding",
        AcceptLanguage => "Accept-Language",
        AlertInfo => "Alert-Info",
        Allow => "Allow",
        AuthenticationInfo => "Authentication-Info",
        Authorization => "Authorization",
        CSeq => "CSeq",
        CallId => "Call-ID",
        CallInfo => "Call-Info",
        Contact => "Contact",
        ContentDisposition => "Content-Disposition",
        ContentEncoding => "Content-Encoding",
        ContentLanguage => "Content-Language",
        ContentLength => "Content-Length",
        ContentType => "Content-Type",
        Date => "Date",
        ErrorInfo => "Error-Info",
        Event => "Event",
        Expires => "Expires",
        From => "From",
        InReplyTo => "In-Reply-To",
        MaxForwards => "Max-Forwards",
        MimeVersion => "Mime-Version",
        MinExpires => "Min-Expires",
        Organization => "Organization",
        Priority => "Priority",
        ProxyAuthenticate => "Proxy-Authenticate",
        ProxyAuthorization => "Proxy-Authorization",
        ProxyRequire => "Proxy-Require",
        RecordRoute => "Record-Route",
        ReplyTo => "Reply-To",
        Require => "Require",
        RetryAfter => "Retry-After",
        Route => "Route",
        ServiceRoute => "Service-Route",
        Server => "Server",
        Subject => "Subject",
        SubscriptionState => "Subscription-State",
        Supported => "Supported",
        Timestamp => "Timestamp",
        To => "To",
        Unsupported => "Unsupported",
        UserAgent => "User-Agent",
        Via => "Via",
        Warning => "Warning",
        WwwAuthenticate => "WWW-Authenticate",
        Reason => "Reason",
        ReferTo => "Refer-To",
        ReferredBy => "Referred-By",
        SessionExpires => "Session-Expires",
        MinSE => "Min-SE",
        PAssertedIdentity => "P-Asserted-Identity",
        PPreferredIdentity => "P-Preferred-Identity",
        Replaces => "Replaces",
        RSeq => "RSeq",
        RAck => "RAck",
        Privacy => "Privacy",
        Path => "Path",
        Identity => "Identity",
        UserToUser => "User-to-User",
        SessionId => "Session-ID",
        HistoryInfo => "History-Info",
        Diversion => "Diversion",
    };
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        value = value.trim().to_string();
    }
    HeaderField { name, value }
}

/// Compact forms rsipstack leaves as `Other` (RFC 3261 §7.3.3 and later RFCs).
fn expand_compact(name: &str) -> Option<&'static str> {
    Some(match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "s" | "S" => "Subject",
        "k" | "K" => "Supported",
        "o" | "O" => "Event",
        "r" | "R" => "Refer-To",
        "b" | "B" => "Referred-By",
        "x" | "X" => "Session-Expires",
        "u" | "U" => "Allow-Events",
        _ => return None,
    })
}

fn parse_via(value: &str) -> Option<TopVia> {
    // "SIP / 2.0 / UDP host:port;params" with optional LWS around the slashes.
    let (proto, rest) = {
        let mut slashes = 0;
        let mut idx = None;
        for (i, c) in value.char_indices() {
            if c == '/' {
                slashes += 1;
            } else if slashes == 2 && !c.is_whitespace() {
                let tail = &value[i..];
                let end = tail.find(|c: char| c.is_whitespace()).unwrap_or(tail.len());
                idx = Some((i, i + end));
                break;
            }
        }
        let (s, e) = idx?;
        (&value[s..e], value[e..].trim())
    };
    let (sent_by, params) = match rest.find(';') {
        Some(i) => (rest[..i].trim(), &rest[i..]),
        None => (rest, ""),
    };
    if sent_by.is_empty() {
        return None;
    }
    Some(TopVia {
        transport: proto.to_ascii_uppercase().into(),
        sent_by: sent_by.split_whitespace().collect::<String>().into(),
        branch: param(params, "branch").map(Into::into),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:12345@gw.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a1;rport\r\n\
v: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK-a0\r\n\
Max-Forwards: 70\r\n\
f: \"张三\" <sip:13800000000@example.com>;tag=abc\r\n\
To: <sip:12345@gw.example>\r\n\
i: c1@192.0.2.1\r\n\
CSeq: 7 INVITE\r\n\
l: 0\r\n\r\n";

    #[test]
    fn parses_compact_headers_and_keys() {
        let Message::Request(r) = parse(INVITE.as_bytes()).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.call_id(), Some("c1@192.0.2.1"));
        assert_eq!(r.cseq(), Some((7, Method::Invite)));
        assert_eq!(r.from_tag().as_deref(), Some("abc"));
        assert_eq!(r.to_tag(), None);
        let via = r.top_via().unwrap();
        assert_eq!(&*via.branch.unwrap(), "z9hG4bK-a1");
        assert_eq!(&*via.sent_by, "192.0.2.1:5060");
        assert_eq!(r.via_values().len(), 2);
    }

    #[test]
    fn extension_method_is_kept() {
        let text = INVITE.replacen("INVITE sip", "NEWMETHOD sip", 1);
        let Message::Request(r) = parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, Method::Other("NEWMETHOD".into()));
    }

    #[test]
    fn method_names_are_case_sensitive() {
        assert_eq!(Method::from_token("OPTIONS"), Some(Method::Options));
        assert_eq!(
            Method::from_token("options"),
            Some(Method::Other("options".into()))
        );
        assert_eq!(
            Method::from_token("Invite"),
            Some(Method::Other("Invite".into()))
        );
        let text = INVITE.replacen("INVITE sip", "invite sip", 1);
        let Message::Request(r) = parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, Method::Other("invite".into()));
    }

    #[test]
    fn tel_uri() {
        let u = SipUri::parse("tel:+86-351-12345;phone-context=+86").unwrap();
        assert_eq!(&*u.scheme, "tel");
        assert_eq!(u.user.as_deref(), Some("+86-351-12345"));
    }
}
