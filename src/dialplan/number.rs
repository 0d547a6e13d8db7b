//! Chinese telephone numbers as they arrive in SIP: from URIs and headers to
//! `(area code, number)`, and who is calling.
//!
//! Owns the extraction of dialled digits from `sip:`/`tel:` URIs (RFC 3966
//! `phone-context` included), the +86 / 0086 / 86 prefixes, the split of China's
//! area codes (`010` and `02X` are three digits, other `0XXX` codes four), the
//! caller classification, and where a forwarded call's original number is found
//! (`Diversion`, RFC 5806; `History-Info`, RFC 7044). Pure: it never looks a number
//! up in the line registry and never decides whether a header is trusted — the
//! router does both.

use std::fmt;

use crate::sip::message::{Headers, Request, addr_spec, param, split_list};

/// A number split the way China's numbering plan reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct National {
    /// The area code with its leading 0 (`010`, `021`, `0351`, `0755`…), when the
    /// number was dialled or sent with one. Mobile and non-geographic numbers have
    /// none; neither have service numbers (12345, 110) dialled without one.
    pub area: Option<String>,
    /// The number within the area (`12345`, `62345678`), a mobile number
    /// (`13800138000`), or a foreign number in `+CC…` form.
    pub number: String,
}

impl National {
    /// The number as dialled inside China: area code and number run together
    /// (`035112345`), or the number alone.
    pub fn national_format(&self) -> String {
        match &self.area {
            Some(area) => format!("{area}{}", self.number),
            None => self.number.clone(),
        }
    }
}

impl fmt::Display for National {
    /// `0351-12345`, or the number alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.area {
            Some(area) => write!(f, "{area}-{}", self.number),
            None => f.write_str(&self.number),
        }
    }
}

/// What kind of party is calling: decides callback handling and reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerKind {
    /// An 11-digit mobile number (1[3-9]…).
    Mobile,
    /// A fixed line, with or without its area code.
    Landline,
    /// A short or non-geographic number: 110, 12345, 95588, 400/800 numbers.
    Service,
    /// A number outside China (+CC other than +86).
    International,
    /// No usable number: absent, withheld (`anonymous`, `unknown`,
    /// `restricted`) or not numeric.
    Anonymous,
}

/// Which part of the request the called number came from (for trace and CDRs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginalSource {
    Diversion,
    HistoryInfo,
    To,
    RequestUri,
}

impl OriginalSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OriginalSource::Diversion => "Diversion",
            OriginalSource::HistoryInfo => "History-Info",
            OriginalSource::To => "To",
            OriginalSource::RequestUri => "Request-URI",
        }
    }
}

impl fmt::Display for OriginalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dialled digits in a SIP URI's user part, a `tel:` URI, a name-addr
/// (`"x" <sip:…>;tag=…`) or a bare number. Visual separators `-.() ` are dropped
/// and a leading `+` is kept. A local `tel:` number with `phone-context=+86-351`
/// (or `+86351`) becomes `035112345`; with `phone-context=+86` it stays as is.
/// `None` when there is no number: no user part, `anonymous`, letters, `*`/`#`.
pub fn digits_of(uri_or_number: &str) -> Option<String> {
    let s = uri_or_number.trim();
    let s = if s.contains('<') { addr_spec(s) } else { s };
    let user = match s.split_once(':') {
        Some((scheme, rest)) if is_scheme(scheme) => {
            if scheme.eq_ignore_ascii_case("tel") {
                rest
            } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
                sip_user(rest)?
            } else {
                return None;
            }
        }
        _ => s,
    };
    let (number, params) = user.split_once(';').unwrap_or((user, ""));
    let digits = if number.contains('%') {
        clean(&percent_decode(number))?
    } else {
        clean(number)?
    };
    match param(params, "phone-context") {
        Some(ctx) if !digits.starts_with('+') => Some(with_context(digits, ctx)),
        _ => Some(digits),
    }
}

/// Splits dialled digits into area code and number, dropping China's country code.
///
/// `+86` and `0086` are always stripped; a bare `86` only when what follows is a
/// full national number (an 11-digit mobile, or `0` + area code + number), since
/// `86…` is also how many local numbers start. After a country code the national
/// number normally has no trunk `0` (`+86 351 …`, `+86 10 …`); carriers that keep
/// it (`+86 0351 …`) are understood too. Foreign numbers come back whole, as
/// `+CC…` (`00` turned into `+`). Anything unrecognised is returned as the number.
pub fn national(digits: &str) -> National {
    let whole = || National {
        area: None,
        number: digits.to_string(),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'+') {
        return whole();
    }
    if let Some(nsn) = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
    {
        return after_country_code(nsn);
    }
    if let Some(foreign) = digits
        .strip_prefix('+')
        .or_else(|| digits.strip_prefix("00"))
    {
        return National {
            area: None,
            number: format!("+{foreign}"),
        };
    }
    if let Some(rest) = digits.strip_prefix("86")
        && (is_mobile(rest) || split_area(rest).is_some_and(|n| rest.len() >= n + 3))
    {
        return after_country_code(rest);
    }
    if digits.starts_with('0') {
        return domestic(digits).unwrap_or_else(whole);
    }
    whole()
}

/// Classifies the calling party from a From/P-Asserted-Identity value or number.
pub fn caller_kind(raw: Option<&str>) -> CallerKind {
    let Some(digits) = raw.and_then(digits_of) else {
        return CallerKind::Anonymous;
    };
    let n = national(&digits);
    if n.number.starts_with('+') {
        CallerKind::International
    } else if is_mobile(&n.number) {
        CallerKind::Mobile
    } else if is_service(&n) {
        CallerKind::Service
    } else {
        CallerKind::Landline
    }
}

/// Whether `number` is an 11-digit Chinese mobile number (1[3-9] and 9 digits).
pub fn is_mobile(number: &str) -> bool {
    let b = number.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && all_digits(number)
}

/// The number a forwarded call was originally placed to: from `Diversion` (the
/// bottom-most entry, i.e. the first redirection, RFC 5806 §4), else from
/// `History-Info` (the entry with the lowest index, i.e. the first target, RFC 7044
/// §10). Entries without a usable number are skipped. `None` when the request
/// carries neither: then the called number is [`request_uri_digits`] or
/// [`to_digits`].
pub fn original_called(req: &Request) -> Option<(String, OriginalSource)> {
    if let Some(d) = diversion_original(req) {
        return Some((d, OriginalSource::Diversion));
    }
    history_info_original(req).map(|d| (d, OriginalSource::HistoryInfo))
}

/// The digits of the Request-URI's user part (or of a `tel:` Request-URI).
pub fn request_uri_digits(req: &Request) -> Option<String> {
    digits_of(&req.uri)
}

/// The digits of the To header's URI.
pub fn to_digits(req: &Request) -> Option<String> {
    req.header("To").and_then(digits_of)
}

/// The digits of the From header's URI: the caller as the sender claims it.
pub fn from_digits(req: &Request) -> Option<String> {
    req.header("From").and_then(digits_of)
}

/// The caller's digits from P-Asserted-Identity (RFC 3325): the first `tel:` entry
/// when there is one (a network may assert both a `sip:` and a `tel:` identity),
/// else the first entry with a number. Trusting it is the router's decision.
pub fn asserted_caller(req: &Request) -> Option<String> {
    let entries = || {
        req.header_all("P-Asserted-Identity")
            .flat_map(split_list)
            .map(addr_spec)
    };
    entries()
        .filter(|uri| uri.len() > 4 && uri[..4].eq_ignore_ascii_case("tel:"))
        .find_map(digits_of)
        .or_else(|| entries().find_map(digits_of))
}

fn diversion_original(req: &Request) -> Option<String> {
    req.header_all("Diversion")
        .flat_map(split_list)
        .filter_map(digits_of)
        .last()
}

fn history_info_original(req: &Request) -> Option<String> {
    let mut best: Option<(Option<Vec<u32>>, String)> = None;
    for entry in req.header_all("History-Info").flat_map(split_list) {
        let Some(digits) = digits_of(entry) else {
            continue;
        };
        let index = param(after_addr(entry), "index").and_then(parse_index);
        let better = match (&best, &index) {
            (None, _) => true,
            // An indexed entry beats unindexed ones; a lower index beats a higher;
            // ties keep the first listed.
            (Some((None, _)), Some(_)) => true,
            (Some((Some(b), _)), Some(i)) => i < b,
            (Some(_), None) => false,
        };
        if better {
            best = Some((index, digits));
        }
    }
    best.map(|(_, d)| d)
}

/// `1.2.1` → `[1, 2, 1]`, which orders as RFC 7044 indices do.
fn parse_index(index: &str) -> Option<Vec<u32>> {
    index.split('.').map(|p| p.trim().parse().ok()).collect()
}

/// The header parameters after a name-addr's `>` (or after an addr-spec's first
/// `;`).
fn after_addr(value: &str) -> &str {
    match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value.find(';').map_or("", |i| &value[i..]),
    }
}

/// A URI scheme token (RFC 3986: a letter, then letters, digits, `+-.`).
fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
}

/// The user part of a `sip:`/`sips:` URI after the scheme, without a password or
/// `?headers`; `None` when the URI has no user part.
fn sip_user(rest: &str) -> Option<&str> {
    let rest = rest.split('?').next().unwrap_or(rest);
    let (userinfo, _host) = rest.split_once('@')?;
    Some(userinfo.split(':').next().unwrap_or(userinfo))
}

/// Drops visual separators and keeps one leading `+`; `None` unless the rest is
/// at least one digit.
fn clean(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '0'..='9' => out.push(c),
            '+' if out.is_empty() => out.push('+'),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    (out.len() > usize::from(out.starts_with('+'))).then_some(out)
}

/// Applies an RFC 3966 `phone-context` to a local number. Domain-name contexts
/// carry no digits and are ignored.
fn with_context(local: String, ctx: &str) -> String {
    let Some(ctx) = clean(ctx).filter(|c| c.starts_with('+')) else {
        return local;
    };
    match ctx.strip_prefix("+86") {
        Some(area) => {
            let area = area.trim_start_matches('0');
            if area.is_empty() || local.starts_with('0') || is_mobile(&local) {
                local
            } else {
                format!("0{area}{local}")
            }
        }
        None => format!("{ctx}{local}"),
    }
}

/// Decodes `%XX` escapes (RFC 3261 allows them in user parts); bad escapes stay.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The national significant number after +86 / 0086 / 86.
fn after_country_code(nsn: &str) -> National {
    let whole = || National {
        area: None,
        number: nsn.to_string(),
    };
    if nsn.starts_with('0') {
        // The sender kept the trunk prefix: +86 0351 …
        return domestic(nsn).unwrap_or_else(whole);
    }
    if is_mobile(nsn) || is_non_geographic(nsn) {
        return whole();
    }
    let area_digits = match nsn.as_bytes() {
        // Beijing is 10; a "10" with a short tail is a carrier service (10086).
        [b'1', b'0', ..] if nsn.len() >= 7 => 2,
        [b'1', ..] => return whole(),
        [b'2', ..] => 2,
        [b'3'..=b'9', ..] => 3,
        _ => return whole(),
    };
    if nsn.len() <= area_digits {
        return whole();
    }
    National {
        area: Some(format!("0{}", &nsn[..area_digits])),
        number: nsn[area_digits..].to_string(),
    }
}

/// A domestic number starting with the trunk prefix `0`: `0` + mobile, or area
/// code + number. `None` when no valid area code starts it.
fn domestic(digits: &str) -> Option<National> {
    if digits.len() == 12 && is_mobile(&digits[1..]) {
        // Mobiles used to be dialled with a 0 from another city.
        return Some(National {
            area: None,
            number: digits[1..].to_string(),
        });
    }
    let len = split_area(digits)?;
    Some(National {
        area: Some(digits[..len].to_string()),
        number: digits[len..].to_string(),
    })
}

/// The length of the area code at the start of `digits` (which starts with `0`)
/// when a number follows it: 3 for `010` and `02X`, 4 for `03XX`–`09XX`.
fn split_area(digits: &str) -> Option<usize> {
    let len = match digits.as_bytes() {
        [b'0', b'1', b'0', ..] => 3,
        [b'0', b'2', ..] => 3,
        [b'0', b'3'..=b'9', ..] => 4,
        _ => return None,
    };
    (digits.len() > len && all_digits(digits)).then_some(len)
}

/// 400 and 800 numbers: ten digits, no area.
fn is_non_geographic(n: &str) -> bool {
    n.len() == 10 && (n.starts_with("400") || n.starts_with("800"))
}

/// Service and short numbers: 110, 12345, 10086, 95588, 96xxx (with or without an
/// area code), 400/800 numbers, and, without an area code, anything else starting
/// with 1 that is not a mobile (no local fixed-line number starts with 1).
fn is_service(n: &National) -> bool {
    let number = n.number.as_str();
    number.len() <= 6 || is_non_geographic(number) || (n.area.is_none() && number.starts_with('1'))
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[path = "number_tests.rs"]
mod tests;
