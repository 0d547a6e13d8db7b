//! HTTP Digest for SIP (RFC 7616 with RFC 8760's SHA-256 for SIP): parsing the
//! `Authorization` header, computing responses, writing challenges.
//!
//! Owns the hash arithmetic and the header grammar only; which nonce is valid and
//! whose password it is are decided in `nonce.rs` and `mod.rs`. No I/O.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::RegistrarError;

/// A digest hash algorithm the registrar offers and accepts.
///
/// Why: RFC 8760 lets a SIP server offer SHA-256 next to MD5; each credential says
/// which one it used, and `algorithm` absent means MD5 (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Both algorithms, in the order their challenges are sent (strongest first).
    pub const OFFERED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The token as written in `algorithm=` (case-insensitive on input).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// `H(data)` as lower-case hex.
    pub fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }

    /// `HA1 = H(user:realm:password)`.
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash_hex(&format!("{user}:{realm}:{password}"))
    }

    /// The `response` for qop=auth (RFC 7616 §3.4.1):
    /// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
    pub fn response(self, ha1: &str, c: &ResponseInput<'_>) -> String {
        let ha2 = self.hash_hex(&format!("{}:{}", c.method, c.uri));
        self.hash_hex(&format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            c.nonce, c.nc, c.cnonce, c.qop
        ))
    }
}

/// The request-dependent inputs of a digest response.
///
/// Why: keeps [`Algorithm::response`] readable and lets the known-answer test feed
/// RFC 7616's HTTP example (method `GET`) through the same code as REGISTER.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
    pub qop: &'a str,
}

/// Digest credentials from one `Authorization` header (RFC 7616 §3.4).
///
/// Why: the verifier needs the directives by name, already unquoted; `parse`
/// rejects a malformed header before any hashing is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lower-cased hex, as the comparison expects.
    pub response: String,
    /// `None` when the client named an algorithm this registrar does not offer.
    pub algorithm: Option<Algorithm>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Credentials {
    /// Parses one header value. `Ok(None)`: not the Digest scheme.
    pub fn parse(value: &str) -> Result<Option<Credentials>, RegistrarError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let params = parse_params(rest)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let need = |name: &'static str| get(name).ok_or(malformed(name, "missing"));
        let algorithm = match get("algorithm") {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::from_token(&a),
        };
        Ok(Some(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?.to_ascii_lowercase(),
            algorithm,
            qop: get("qop"),
            nc: get("nc"),
            cnonce: get("cnonce"),
        }))
    }
}

fn malformed(what: &'static str, detail: &str) -> RegistrarError {
    RegistrarError::Malformed {
        what,
        detail: detail.to_string(),
    }
}

/// Splits `k=v, k="quoted, value", k = v` into pairs, unquoting quoted strings.
/// A directive given twice is malformed (RFC 7616 §3.4: "at most once").
fn parse_params(s: &str) -> Result<Vec<(String, String)>, RegistrarError> {
    let err = |d: &str| malformed("Authorization", d);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|(_, c)| c.is_ascii_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_ascii_whitespace()) {
            if c == ',' || c == '"' {
                return Err(err("directive name expected"));
            }
            end = i + c.len_utf8();
        }
        let key = &s[start..end];
        skip_ws(&mut chars);
        if key.is_empty() || chars.next().map(|(_, c)| c) != Some('=') {
            return Err(err("'=' expected after directive name"));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(err("unterminated quoted string")),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(err("unterminated quoted string")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != ',' && !c.is_ascii_whitespace()) {
                value.push(c);
            }
        }
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(err("directive repeated"));
        }
        out.push((key.to_string(), value));
        skip_ws(&mut chars);
        match chars.next() {
            None => break,
            Some((_, ',')) => {}
            Some(_) => return Err(err("',' expected between directives")),
        }
    }
    Ok(out)
}

/// One `WWW-Authenticate` value: `Digest realm="…", nonce="…", algorithm=…, qop="auth"`.
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut v = format!(
        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        quote_escape(realm),
        algorithm.as_str()
    );
    if stale {
        v.push_str(", stale=true");
    }
    v
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub use crate::util::hex::hex;
