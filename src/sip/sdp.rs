//! SDP (RFC 8866) for a B2BUA that anchors media (issue 7): a tolerant parser, a
//! printer, and the offer/answer rewrites (RFC 3264) the call layer applies when
//! it relays audio through the gateway.
//!
//! Owns: the session description as text. Must not: choose ports or addresses
//! (the media port pool does), decide what to offer or answer (the call layer
//! does), touch sockets or the clock.
//!
//! Tolerant where it can be, strict where a rewrite depends on it. Every line the
//! parser does not model is kept verbatim and printed back in place, so that a
//! rewritten offer keeps the peer's unknown attributes. The lines a rewrite reads
//! or changes (o=, c=, m=, and in RTP media a=rtpmap, a=fmtp, a=rtcp) must be well
//! formed, or the body is refused: rewriting a half-understood line could leak an
//! address or mislabel a codec. Errors name the line number, never its content
//! (addresses are personal data).
//!
//! "The audio stream" below is the first m=audio section with a non-zero port,
//! else the first m=audio section: the gateway relays one audio stream per leg.

use std::fmt;
use std::net::IpAddr;

/// Why a body is not SDP we can use, or a rewrite cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("empty SDP body")]
    Empty,
    #[error("the first line is not v=")]
    MissingVersion,
    #[error("unsupported SDP version (only v=0 exists)")]
    UnsupportedVersion,
    #[error("no o= line")]
    MissingOrigin,
    #[error("SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("no active audio stream")]
    NoAudio,
    #[error("no audio codec in common")]
    NoCommonCodec,
}

/// The address family of an SDP address (RFC 8866 §5.7 addrtype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
}

/// `IN IP4 <host>`: the address part shared by o=, c= and a=rtcp lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub addr_type: AddrType,
    /// As written: an IP literal, a host name, or multicast `addr/ttl[/count]`.
    pub host: String,
}

impl Address {
    pub fn from_ip(ip: IpAddr) -> Address {
        let (ip6, host) = (ip.is_ipv6(), ip.to_string());
        let addr_type = if ip6 { AddrType::Ip6 } else { AddrType::Ip4 };
        Address { addr_type, host }
    }

    /// The IP literal, if the host is one (a multicast suffix is ignored).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.split('/').next()?.parse().ok()
    }

    /// `0.0.0.0` (RFC 2543 hold) or `::`: nothing can be sent there.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }

    fn parse<'a>(mut f: impl Iterator<Item = &'a str>) -> Result<Address, &'static str> {
        let addr_type = match (f.next(), f.next()) {
            (Some("IN"), Some("IP4")) => AddrType::Ip4,
            (Some("IN"), Some("IP6")) => AddrType::Ip6,
            _ => return Err("address is not IN IP4|IP6 <host>"),
        };
        let (Some(host), None) = (f.next(), f.next()) else {
            return Err("address is not IN IP4|IP6 <host>");
        };
        let host = host.to_owned();
        Ok(Address { addr_type, host })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip6 = self.addr_type == AddrType::Ip6;
        write!(f, "IN {} {}", if ip6 { "IP6" } else { "IP4" }, self.host)
    }
}

/// The o= line: who made the session, and which version of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as written (RFC 8866 says numeric; only its identity matters).
    pub session_id: String,
    /// Incremented on every change within a session (RFC 3264 §8).
    pub version: u64,
    pub address: Address,
}

/// A stream's direction attribute (RFC 3264 §5.1); sendrecv when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn from_attr(name: &str) -> Option<Direction> {
        use Direction::*;
        [SendRecv, SendOnly, RecvOnly, Inactive]
            .into_iter()
            .find(|d| d.as_str() == name)
    }

    /// The direction an answer takes to this offered one (RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// This direction minus receiving: what an RFC 2543 `c=0.0.0.0` hold meant.
    pub fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

/// `a=rtpmap:<pt> <encoding>` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    pub pt: u8,
    /// `<name>/<clock rate>[/<channels>]`, e.g. `telephone-event/8000`.
    pub encoding: String,
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub address: Option<Address>,
}

/// One line of a section. `Other` is any line not modelled, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// Where the o= line stands; its value is [`Sdp::origin`].
    Origin,
    Connection(Address),
    Direction(Direction),
    Rtpmap(Rtpmap),
    /// `a=fmtp:<pt> <params>`, params verbatim.
    Fmtp(u8, String),
    Rtcp(Rtcp),
    Ptime(u32),
    Other(String),
}

impl Line {
    fn write(&self, f: &mut fmt::Formatter<'_>, o: &Origin) -> fmt::Result {
        match self {
            Line::Origin => {
                let (user, id, version) = (&o.username, &o.session_id, o.version);
                write!(f, "o={user} {id} {version} {}", o.address)
            }
            Line::Connection(a) => write!(f, "c={a}"),
            Line::Direction(d) => write!(f, "a={}", d.as_str()),
            Line::Rtpmap(r) => write!(f, "a=rtpmap:{} {}", r.pt, r.encoding),
            Line::Fmtp(pt, params) if params.is_empty() => write!(f, "a=fmtp:{pt}"),
            Line::Fmtp(pt, params) => write!(f, "a=fmtp:{pt} {params}"),
            Line::Rtcp(Rtcp { port, address }) => match address {
                None => write!(f, "a=rtcp:{port}"),
                Some(a) => write!(f, "a=rtcp:{port} {a}"),
            },
            Line::Ptime(ms) => write!(f, "a=ptime:{ms}"),
            Line::Other(s) => f.write_str(s),
        }?;
        f.write_str("\r\n")
    }
}

/// The first line matching a pattern, mapped: the typed accessors below.
macro_rules! find_line {
    ($lines:expr, $pat:pat $(if $guard:expr)? => $out:expr) => {
        $lines.iter().find_map(|l| match l {
            $pat $(if $guard)? => Some($out),
            _ => None,
        })
    };
}

/// One media section: the m= line (public fields) and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`, …
    pub kind: String,
    /// 0 for a rejected or disabled stream (RFC 3264 §6, §8.2).
    pub port: u16,
    /// The `/<n>` of `m=audio 4000/2`: several consecutive port pairs.
    pub port_count: Option<u16>,
    pub proto: String,
    /// Payload types (0-127) for an RTP profile, as written for others.
    pub formats: Vec<String>,
    lines: Vec<Line>,
}

/// Static audio payload types in use (RFC 3551 §6), when no a=rtpmap names them.
#[rustfmt::skip]
const STATIC_AUDIO: [(u8, &str); 8] = [
    (0, "PCMU/8000"), (3, "GSM/8000"), (4, "G723/8000"), (8, "PCMA/8000"),
    (9, "G722/8000"), (13, "CN/8000"), (15, "G728/8000"), (18, "G729/8000"),
];

impl Media {
    /// The numeric formats in offer order (all of them for an RTP profile).
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats.iter().filter_map(|f| parse_pt(f)).collect()
    }
    /// The media-level c= line (the first, if layered multicast gives several).
    pub fn connection(&self) -> Option<&Address> {
        find_line!(self.lines, Line::Connection(a) => a)
    }
    pub fn rtpmap(&self, pt: u8) -> Option<&Rtpmap> {
        find_line!(self.lines, Line::Rtpmap(r) if r.pt == pt => r)
    }
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        find_line!(self.lines, Line::Fmtp(p, params) if *p == pt => params.as_str())
    }
    /// The encoding of a payload type: its a=rtpmap, else the static table.
    pub fn encoding(&self, pt: u8) -> Option<&str> {
        let fixed = || STATIC_AUDIO.iter().find(|(p, _)| *p == pt).map(|(_, e)| *e);
        self.rtpmap(pt).map(|r| r.encoding.as_str()).or_else(fixed)
    }
    /// This section's own direction attribute (see [`Sdp::direction`]).
    pub fn direction(&self) -> Option<Direction> {
        find_line!(self.lines, Line::Direction(d) => *d)
    }
    /// Replaces this section's direction attribute, or appends one.
    pub fn set_direction(&mut self, dir: Direction) {
        let mut seen = false;
        self.lines.retain_mut(|l| match l {
            Line::Direction(d) if !seen => {
                (*d, seen) = (dir, true);
                true
            }
            Line::Direction(_) => false,
            _ => true,
        });
        if !seen {
            self.lines.push(Line::Direction(dir));
        }
    }
    pub fn rtcp(&self) -> Option<&Rtcp> {
        find_line!(self.lines, Line::Rtcp(r) => r)
    }
    pub fn ptime(&self) -> Option<u32> {
        find_line!(self.lines, Line::Ptime(ms) => *ms)
    }

    fn is_rtp(&self) -> bool {
        self.proto.split('/').any(|p| p == "RTP")
    }

    /// `m=<media> <port>[/<count>] <proto> <fmt> …`
    fn parse(value: &str) -> Result<Media, &'static str> {
        let mut it = value.split_whitespace();
        let (Some(kind), Some(ports), Some(proto)) = (it.next(), it.next(), it.next()) else {
            return Err("m= needs <media> <port> <proto> <formats>");
        };
        let (port, count) = ports.split_once('/').unzip();
        let port = port.unwrap_or(ports).parse();
        let port_count = count.map(str::parse).transpose();
        let m = Media {
            kind: kind.to_owned(),
            port: port.map_err(|_| "m= port is not a number 0-65535")?,
            port_count: port_count.map_err(|_| "m= port count is not a number")?,
            proto: proto.to_owned(),
            formats: it.map(str::to_owned).collect(),
            lines: Vec::new(),
        };
        if m.formats.is_empty() {
            return Err("m= has no formats");
        }
        if m.is_rtp() && m.formats.iter().any(|f| parse_pt(f).is_none()) {
            return Err("m= RTP payload type is not a number 0-127");
        }
        Ok(m)
    }
}

fn parse_pt(s: &str) -> Option<u8> {
    s.parse().ok().filter(|pt| *pt <= 127)
}

/// A session description: session-level lines, then media sections, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub origin: Origin,
    session: Vec<Line>,
    pub media: Vec<Media>,
}

impl Sdp {
    /// Parses an SDP body; CRLF or LF line ends, blank lines ignored.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        let (mut origin, mut session, mut media) = (None, Vec::new(), Vec::<Media>::new());
        let mut lines = (text.split('\n').enumerate())
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next().map(|(_, l)| l.split_once('=')) {
            None => return Err(SdpError::Empty),
            Some(Some(("v", v))) if v.trim() == "0" => session.push(Line::Other("v=0".into())),
            Some(Some(("v", _))) => return Err(SdpError::UnsupportedVersion),
            Some(_) => return Err(SdpError::MissingVersion),
        }
        for (n, line) in lines {
            let bad = |reason| SdpError::Malformed { line: n, reason };
            let b = line.as_bytes();
            if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
                return Err(bad("not a <type>=<value> line"));
            }
            let value = &line[2..];
            let rtp = media.last().map(Media::is_rtp);
            let parsed = match b[0] {
                b'v' => return Err(bad("v= after the first line")),
                b'm' => {
                    media.push(Media::parse(value).map_err(bad)?);
                    continue;
                }
                b'o' if rtp.is_none() && origin.is_some() => return Err(bad("a second o= line")),
                b'o' if rtp.is_none() => {
                    origin = Some(parse_origin(value).map_err(bad)?);
                    Some(Line::Origin)
                }
                b'c' => Some(Line::Connection(
                    Address::parse(value.split_whitespace()).map_err(bad)?,
                )),
                b'a' => parse_attribute(value, rtp == Some(true)).map_err(bad)?,
                _ => None,
            };
            let parsed = parsed.unwrap_or_else(|| Line::Other(line.to_owned()));
            match media.last_mut() {
                Some(m) => m.lines.push(parsed),
                None => session.push(parsed),
            }
        }
        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        // A call keeps its caller's offer for its whole life: no spare room
        // (a Vec's first growth holds four).
        session.shrink_to_fit();
        media.shrink_to_fit();
        for m in &mut media {
            m.lines.shrink_to_fit();
            m.formats.shrink_to_fit();
        }
        Ok(Sdp {
            origin,
            session,
            media,
        })
    }

    /// The session-level c= line.
    pub fn connection(&self) -> Option<&Address> {
        find_line!(self.session, Line::Connection(a) => a)
    }
    /// The session-level direction attribute, the default for every stream.
    pub fn session_direction(&self) -> Option<Direction> {
        find_line!(self.session, Line::Direction(d) => *d)
    }
    /// The audio stream the gateway relays (see the module docs).
    pub fn audio(&self) -> Option<&Media> {
        self.audio_index().map(|i| &self.media[i])
    }

    fn audio_index(&self) -> Option<usize> {
        let audio = |active: bool| {
            let f = |m: &Media| m.kind == "audio" && (m.port != 0 || !active);
            self.media.iter().position(f)
        };
        audio(true).or_else(|| audio(false))
    }

    /// Where a stream's media goes: its own c=, else the session's.
    fn connection_of<'a>(&'a self, m: &'a Media) -> Option<&'a Address> {
        m.connection().or_else(|| self.connection())
    }

    /// The audio stream's effective direction: its attribute, else the
    /// session's, else sendrecv. `None` without an audio stream.
    pub fn direction(&self) -> Option<Direction> {
        let own = self.audio()?.direction().or(self.session_direction());
        Some(own.unwrap_or(Direction::SendRecv))
    }

    /// Sets the direction attribute of every audio stream.
    pub fn set_direction(&mut self, dir: Direction) {
        let audio = self.media.iter_mut().filter(|m| m.kind == "audio");
        audio.for_each(|m| m.set_direction(dir));
    }

    /// The audio stream is on hold: sendonly or inactive, or the RFC 2543 style
    /// `c=0.0.0.0` (RFC 3264 §8.4).
    pub fn is_hold(&self) -> bool {
        let Some(m) = self.audio() else { return false };
        let held = matches!(
            self.direction(),
            Some(Direction::SendOnly | Direction::Inactive)
        );
        held || self.connection_of(m).is_some_and(Address::is_unspecified)
    }

    /// Where the relay sends the audio: `None` when there is no active audio
    /// stream, or its address is not an IP literal or is unspecified (held).
    pub fn audio_endpoint(&self) -> Option<(IpAddr, u16)> {
        let m = self.audio().filter(|m| m.port != 0)?;
        let ip = self.connection_of(m)?.ip()?;
        (!ip.is_unspecified()).then_some((ip, m.port))
    }

    /// Anchors media at the gateway: every c= (and o=) names `addr`; the audio
    /// stream uses `port` and its a=rtcp `port + 1` (dropped when that does not
    /// fit); port 0 stays 0. A stream held with `c=0.0.0.0` keeps its hold as a
    /// direction instead. Other streams keep their ports. `origin_version_bump`:
    /// this is a changed SDP within the session (RFC 3264 §8).
    pub fn anchor(&mut self, addr: IpAddr, port: u16, origin_version_bump: bool) {
        let gw = Address::from_ip(addr);
        let held = |m: &Media| self.connection_of(m).is_some_and(Address::is_unspecified);
        let old_hold: Vec<bool> = self.media.iter().map(|m| m.port != 0 && held(m)).collect();
        let media_lines = self.media.iter_mut().flat_map(|m| m.lines.iter_mut());
        for line in self.session.iter_mut().chain(media_lines) {
            if let Line::Connection(a) = line {
                *a = gw.clone();
            }
        }
        self.origin.address = gw.clone();
        if origin_version_bump {
            // Wraps only after 2^64 changes; never seen in one call.
            self.origin.version = self.origin.version.wrapping_add(1);
        }
        let (audio, session_dir) = (self.audio_index(), self.session_direction());
        for (i, m) in self.media.iter_mut().enumerate() {
            if old_hold[i] {
                let dir = m.direction().or(session_dir).unwrap_or(Direction::SendRecv);
                m.set_direction(dir.without_receive());
            }
            if Some(i) != audio || m.port == 0 {
                continue;
            }
            (m.port, m.port_count) = (port, None);
            let rtcp_port = port.checked_add(1).filter(|_| port != 0);
            m.lines.retain_mut(|l| match (l, rtcp_port) {
                (Line::Rtcp(r), Some(p)) => {
                    r.port = p;
                    r.address = r.address.as_ref().map(|_| gw.clone());
                    true
                }
                (Line::Rtcp(_), None) => false,
                _ => true,
            });
        }
    }

    /// Keeps in the audio stream only the payload types whose encoding is
    /// allowed (`"PCMA/8000"`, `"telephone-event/8000"`, or a bare name for any
    /// clock rate; case-insensitive), with their a=rtpmap, a=fmtp and a=rtcp-fb
    /// lines. Returns the kept payload types in offer order. `NoCommonCodec`
    /// (and nothing changed) when no audio codec would remain: telephone-event
    /// and comfort noise alone do not carry speech.
    pub fn restrict_codecs(&mut self, allowed: &[&str]) -> Result<Vec<u8>, SdpError> {
        let i = self.audio_index().filter(|&i| self.media[i].port != 0);
        let m = &mut self.media[i.ok_or(SdpError::NoAudio)?];
        let is = |pt: u8, names: &[&str]| {
            let enc = m.encoding(pt);
            enc.is_some_and(|e| names.iter().any(|a| encoding_is(e, a)))
        };
        let kept: Vec<u8> = m
            .payload_types()
            .into_iter()
            .filter(|&pt| is(pt, allowed))
            .collect();
        if kept.iter().all(|&pt| is(pt, &["telephone-event", "CN"])) {
            return Err(SdpError::NoCommonCodec);
        }
        m.formats
            .retain(|f| parse_pt(f).is_some_and(|pt| kept.contains(&pt)));
        m.lines.retain(|l| match l {
            Line::Rtpmap(Rtpmap { pt, .. }) | Line::Fmtp(pt, _) => kept.contains(pt),
            Line::Other(s) => rtcp_fb_pt(s).is_none_or(|pt| kept.contains(&pt)),
            _ => true,
        });
        Ok(kept)
    }
}

/// Is `encoding` (`name/rate[/channels]`) the allowed `name[/rate[/channels]]`?
fn encoding_is(encoding: &str, allowed: &str) -> bool {
    let (mut e, mut a) = (encoding.split('/'), allowed.split('/'));
    let (name, rate, channels) = (e.next(), e.next(), e.next().unwrap_or("1"));
    let same_name = a
        .next()
        .zip(name)
        .is_some_and(|(a, n)| a.eq_ignore_ascii_case(n));
    same_name && a.next().is_none_or(|r| Some(r) == rate) && a.next().is_none_or(|c| c == channels)
}

/// The payload type of an `a=rtcp-fb:<pt> …` line (RFC 4585), not `*`.
fn rtcp_fb_pt(line: &str) -> Option<u8> {
    let rest = line.strip_prefix("a=rtcp-fb:")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `o=<username> <sess-id> <sess-version> IN IP4 <address>`
fn parse_origin(value: &str) -> Result<Origin, &'static str> {
    let mut it = value.split_whitespace();
    let (Some(username), Some(session_id), Some(version)) = (it.next(), it.next(), it.next())
    else {
        return Err("o= needs six fields");
    };
    let version = version
        .parse()
        .map_err(|_| "o= session version is not a number");
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        version: version?,
        address: Address::parse(it)?,
    })
}

/// A modelled attribute, `None` for one kept verbatim. a=rtpmap, a=fmtp,
/// a=rtcp and a=ptime are modelled in RTP media sections only.
fn parse_attribute(value: &str, rtp: bool) -> Result<Option<Line>, &'static str> {
    if let Some(d) = Direction::from_attr(value.trim()) {
        return Ok(Some(Line::Direction(d)));
    }
    let (name, val) = value.split_once(':').unwrap_or((value, ""));
    let val = val.trim();
    let (first, rest) = val.split_once(char::is_whitespace).unwrap_or((val, ""));
    let rest = rest.trim();
    let pt = || parse_pt(first).ok_or("a=rtpmap/fmtp payload type is not a number 0-127");
    Ok(Some(match name {
        _ if !rtp => return Ok(None),
        "fmtp" => Line::Fmtp(pt()?, rest.to_owned()),
        "rtpmap" => {
            let pt = pt()?;
            let mut parts = rest.split('/');
            let named = parts.next().is_some_and(|n| !n.is_empty());
            if !named || parts.next().and_then(|r| r.parse::<u32>().ok()).is_none() {
                return Err("a=rtpmap encoding is not <name>/<clock rate>");
            }
            let encoding = rest.to_owned();
            Line::Rtpmap(Rtpmap { pt, encoding })
        }
        "rtcp" => {
            let port = first
                .parse()
                .map_err(|_| "a=rtcp port is not a number 0-65535")?;
            let address = (!rest.is_empty()).then(|| Address::parse(rest.split_whitespace()));
            Line::Rtcp(Rtcp {
                port,
                address: address.transpose()?,
            })
        }
        "ptime" => return Ok(val.parse().ok().map(Line::Ptime)),
        _ => return Ok(None),
    }))
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.session {
            line.write(f, &self.origin)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.kind, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {} {}\r\n", m.proto, m.formats.join(" "))?;
            for line in &m.lines {
                line.write(f, &self.origin)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
