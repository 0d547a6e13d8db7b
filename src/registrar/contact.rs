//! Reading the Contact and Expires headers of a REGISTER (RFC 3261 §10.2, §10.3
//! steps 6–7) into a list of requested binding changes, and checking that they
//! name no other host than the one the REGISTER came from. No I/O, no state.

use std::net::IpAddr;

use crate::sip::message::{Headers, Request, SipUri, addr_spec, param, split_list};

use super::{RegistrarConfig, RegistrarError};

/// What the Contact headers of a REGISTER ask for.
///
/// Why: the registrar validates every contact before it changes anything, so that
/// a REGISTER is applied all-or-nothing (RFC 3261 §10.3 step 7).
#[derive(Debug, Clone, PartialEq)]
pub enum ContactRequest {
    /// No Contact: a query for the current bindings.
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding of the AOR.
    RemoveAll,
    /// One entry per contact, in order.
    Update(Vec<ContactUpdate>),
}

/// One contact of a REGISTER.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactUpdate {
    /// The URI without enclosing `<>` and without `?headers` (RFC 4475 §3.1.2.6).
    pub uri: String,
    /// Requested lifetime in seconds before clamping; 0 removes the binding.
    pub expires: u32,
    pub q: Option<f32>,
}

/// Why a REGISTER's contacts cannot be applied as asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactReject {
    Malformed(RegistrarError),
    /// A lifetime below the minimum: answer 423 with this `Min-Expires`.
    TooBrief(u32),
}

impl From<RegistrarError> for ContactReject {
    fn from(e: RegistrarError) -> Self {
        ContactReject::Malformed(e)
    }
}

fn malformed(what: &'static str, detail: impl Into<String>) -> ContactReject {
    ContactReject::Malformed(RegistrarError::Malformed {
        what,
        detail: detail.into(),
    })
}

/// Parses the Contact and Expires headers of `req` under `cfg`'s limits.
pub fn parse_contacts(
    req: &Request,
    cfg: &RegistrarConfig,
) -> Result<ContactRequest, ContactReject> {
    let values: Vec<&str> = req.header_all("Contact").flat_map(split_list).collect();
    let expires_header = req.header("Expires").map(str::trim);
    if values.is_empty() {
        return Ok(ContactRequest::Query);
    }
    if values.iter().any(|v| v.trim() == "*") {
        if values.len() != 1 {
            return Err(malformed("Contact", "'*' must be the only contact"));
        }
        if expires_header != Some("0") {
            return Err(malformed("Contact", "'*' requires Expires: 0"));
        }
        return Ok(ContactRequest::RemoveAll);
    }
    // RFC 3261 §20.19: a malformed Expires is treated as the default.
    let header_default = expires_header.and_then(parse_delta);
    let mut updates = Vec::with_capacity(values.len());
    for v in values {
        let (uri, params) = split_contact(v);
        let uri = uri.split('?').next().unwrap_or_default().trim();
        SipUri::parse(uri).map_err(|e| malformed("Contact", e))?;
        let expires = param(params, "expires")
            .and_then(parse_delta)
            .or(header_default)
            .unwrap_or(cfg.default_expires);
        if expires != 0 && expires < cfg.min_expires {
            return Err(ContactReject::TooBrief(cfg.min_expires));
        }
        let q = match param(params, "q") {
            None => None,
            Some(q) => Some(
                q.parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .ok_or_else(|| malformed("Contact", format!("q={q}")))?,
            ),
        };
        updates.push(ContactUpdate {
            uri: uri.to_string(),
            expires: expires.min(cfg.max_expires),
            q,
        });
    }
    Ok(ContactRequest::Update(updates))
}

/// `delta-seconds`, saturating at `u32::MAX` (RFC 3261 §20.19 allows huge values).
fn parse_delta(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: the only parse error left is overflow.
    Some(
        s.parse::<u64>()
            .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)),
    )
}

/// Splits a contact value into its URI and its contact parameters.
///
/// With `<>` the parameters follow `>`; without, everything after the first `;`
/// is a contact parameter (RFC 3261 §20.10), not a URI parameter.
fn split_contact(value: &str) -> (&str, &str) {
    let uri = addr_spec(value);
    // `uri` borrows from `value`: its end is where the parameters start.
    let end = (uri.as_ptr() as usize)
        .checked_sub(value.as_ptr() as usize)
        .map(|start| start + uri.len());
    let Some(rest) = end.and_then(|e| value.get(e..)) else {
        return (uri, "");
    };
    let after = rest.trim_start();
    let after = after.strip_prefix('>').unwrap_or(after);
    (uri, after.trim())
}

/// Whether a contact to bind names a host other than `source`: a public IP
/// address that is not the source's, or a host name. A private, loopback or
/// link-local address is a phone behind NAT and is accepted (the gateway rings
/// every agent at the address its REGISTER came from, whatever its Contact says).
/// Removals (`expires=0`) are not checked: they only remove.
pub fn foreign_host(updates: &[ContactUpdate], source: IpAddr) -> bool {
    updates.iter().filter(|u| u.expires > 0).any(|u| {
        match SipUri::parse(&u.uri).ok().and_then(|uri| uri.ip()) {
            Some(ip) => ip.to_canonical() != source.to_canonical() && !is_local(ip),
            None => true,
        }
    })
}

/// Addresses that name no host on the public network: RFC 1918, CGNAT (RFC 6598),
/// loopback, link-local, unspecified; IPv6 unique-local and link-local.
fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || (o0 == 100 && (64..128).contains(&o1))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
        }
    }
}
