//! Who may use the HTTP API (DESIGN.md §7): bearer tokens with roles, kept in the
//! config as SHA-256 hashes, and the Host allow-list against DNS rebinding. The
//! pure checks (role order, token match, host match) are here with their tests;
//! `guard.rs` applies them to requests. Never logs a token or its hash.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do; each role may do everything the roles before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The wallboard's data, answer rates, intervals, reports, metrics, queues, the agents list.
    Viewer,
    /// And: agent state changes, callback marking, call records (CSV too), tickets.
    Supervisor,
    /// And: dialplan reload, ticket redrive.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The tokens shipped in `config/gateway.toml` and `config/lab.toml` for a first
/// run on loopback. Their values are published, so they are refused off loopback.
pub const DEV_TOKENS: [&str; 3] = ["dev-viewer", "dev-supervisor", "dev-admin"];

/// The SHA-256 of a token's value: what the config keeps.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub use crate::util::hex::hex;

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// One configured token.
#[derive(Clone)]
pub struct Token {
    /// Who holds it: named in the log and in `403` answers, never the value.
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for Token {
    /// Leaves the hash out: it is as good as a password to a brute-force search.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(pub Vec<Token>);

impl Tokens {
    /// The token a presented value is, if any. The value is hashed and compared with
    /// every entry in constant time (no early exit), so the answer's timing says
    /// nothing about how close a guess came.
    pub fn check(&self, presented: &str) -> Option<&Token> {
        let h = token_sha256(presented);
        let mut found = None;
        for t in &self.0 {
            if bool::from(t.sha256.ct_eq(&h)) {
                found = Some(t);
            }
        }
        found
    }

    /// Whether a shipped development token (value published) is configured.
    pub fn dev_tokens(&self) -> Vec<&Token> {
        self.0
            .iter()
            .filter(|t| DEV_TOKENS.iter().any(|d| token_sha256(d) == t.sha256))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The token in an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A host and optional port, as written in a Host header or an allow-list entry:
/// `name`, `name:port`, `1.2.3.4`, `[::1]`, `[::1]:8080`. Names are lower-cased,
/// a trailing dot dropped; `None` for anything else (a path, a bare IPv6 address).
pub fn split_host(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{addr}]"), port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    ok.then_some((host, port))
}

/// The Host header values the API answers to: a browser tricked by DNS rebinding
/// sends the attacker's name, which is on no list.
#[derive(Debug, Clone)]
pub struct Hosts(Vec<(String, Option<u16>)>);

impl Hosts {
    /// From `[http] allowed_hosts` entries; an entry without a port allows any port.
    pub fn new(entries: &[String]) -> Result<Hosts, String> {
        let mut out = Vec::new();
        for e in entries {
            out.push(
                split_host(e).ok_or_else(|| {
                    format!("{e:?} is not host, host:port, [ipv6] or [ipv6]:port")
                })?,
            );
        }
        Ok(Hosts(out))
    }

    /// The default list: the listen address (unless it is 0.0.0.0 or ::),
    /// `127.0.0.1`, `localhost` and `[::1]`, each with any port.
    pub fn defaults(listen: SocketAddr) -> Vec<String> {
        let mut v = Vec::new();
        if !listen.ip().is_unspecified() {
            v.push(match listen.ip() {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            });
        }
        for h in ["127.0.0.1", "localhost", "[::1]"] {
            if !v.iter().any(|x| x == h) {
                v.push(h.to_string());
            }
        }
        v
    }

    /// Whether a Host header value is on the list.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        self.0
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Supervisor && Role::Supervisor < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Admin"), None, "names are lower case");
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_token_matches_only_its_hash() {
        let entry = |name: &str, role, value: &str| Token {
            name: name.into(),
            role,
            sha256: token_sha256(value),
        };
        let tokens = Tokens(vec![
            entry("alice", Role::Admin, "s3cret-a"),
            entry("wall", Role::Viewer, "s3cret-w"),
        ]);
        assert_eq!(tokens.check("s3cret-a").map(|t| t.role), Some(Role::Admin));
        assert_eq!(tokens.check("s3cret-w").map(|t| &*t.name), Some("wall"));
        assert!(tokens.check("s3cret-").is_none());
        assert!(tokens.check("").is_none());
        assert!(Tokens::default().check("s3cret-a").is_none());
        assert!(tokens.dev_tokens().is_empty());
        let dev = Tokens(vec![entry("x", Role::Viewer, "dev-admin")]);
        assert_eq!(dev.dev_tokens().len(), 1);
    }

    #[test]
    fn hashes_print_and_parse_as_hex() {
        let h = token_sha256("abc");
        let hx = hex(&h);
        assert_eq!(
            hx,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_sha256_hex(&hx), Some(h));
        assert_eq!(parse_sha256_hex(&hx.to_uppercase()), Some(h));
        assert_eq!(parse_sha256_hex(&hx[1..]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &hx[2..])), None);
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic YWxhZGRpbg=="), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn hosts_on_the_list_with_or_without_port() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let d = Hosts::defaults(listen);
        assert_eq!(d, ["127.0.0.1", "localhost", "[::1]"]);
        let h = Hosts::new(&d).unwrap();
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "localhost.",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost:99999",
            "",
            "127.0.0.2",
            "::1",
            "localhost/x",
            "[::2]:8080",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let wide = Hosts::defaults("0.0.0.0:8080".parse().unwrap());
        assert_eq!(wide, ["127.0.0.1", "localhost", "[::1]"]);
        let lan = Hosts::defaults("10.1.2.3:8080".parse().unwrap());
        assert_eq!(lan[0], "10.1.2.3");
        let v6 = Hosts::defaults("[fd00::1]:8080".parse().unwrap());
        assert_eq!(v6[0], "[fd00::1]");
    }

    #[test]
    fn an_entry_with_a_port_allows_only_that_port() {
        let h = Hosts::new(&["hotline.example.gov.cn:8443".into()]).unwrap();
        assert!(h.allows("hotline.example.gov.cn:8443"));
        assert!(!h.allows("hotline.example.gov.cn"));
        assert!(!h.allows("hotline.example.gov.cn:8080"));
        assert!(Hosts::new(&["http://x".into()]).is_err());
        assert!(Hosts::new(&["::1".into()]).is_err());
        assert!(Hosts::new(&["".into()]).is_err());
    }
}
