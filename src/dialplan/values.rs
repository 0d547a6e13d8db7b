//! Parsing the values written in dialplan files: SIP targets, networks and
//! UTC offsets.

use std::net::{IpAddr, SocketAddr};

use super::Target;
use crate::sip::Transport;
use crate::sip::message::SipUri;

/// A stand-in until the named trunk is resolved.
pub(super) fn placeholder_target(_trunk: &str) -> Target {
    Target {
        uri: String::new(),
        user: None,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        transport: Transport::Udp,
    }
}

/// `+08:00` → 480 minutes east of UTC.
pub(super) fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// `127.0.0.0/8`, `198.51.100.7`, `::1`.
pub(super) fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (text, None),
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{text:?}: bad prefix length"))?,
        None => max,
    };
    Ok((ip, bits))
}

pub(super) fn parse_target(text: &str) -> Result<Target, String> {
    let uri = SipUri::parse(text)?;
    if &*uri.scheme != "sip" {
        return Err(format!("{text:?}: only sip: targets are supported"));
    }
    let ip: IpAddr = uri.ip().ok_or_else(|| {
        format!("{text:?}: the host must be an IP address (DNS lookups are not supported)")
    })?;
    let transport = match uri.transport.as_deref() {
        None | Some("udp") => Transport::Udp,
        Some("tcp") => Transport::Tcp,
        Some(other) => return Err(format!("{text:?}: transport {other:?} is not supported")),
    };
    Ok(Target {
        uri: text.to_string(),
        user: uri.user.map(|u| u.to_string()),
        addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)),
        transport,
    })
}
