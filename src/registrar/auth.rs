//! Checking a request's digest credentials (REGISTER, and INVITE/REFER from
//! agents) and writing challenges: HA1 storage, the decoy for unknown users, nonce
//! freshness and source, and replay. No I/O.

use std::net::IpAddr;
use std::time::Instant;

use crate::sip::message::{Headers, Request, SipUri};

use super::digest::{Algorithm, Credentials, ResponseInput, challenge, constant_time_eq};
use super::nonce::NonceState;
use super::{RegisterReply, Registrar, RegistrarError, malformed};

/// How an agent's secret is configured: a password, or its HA1 hashes
/// (`H(user:realm:password)`, lower-case hex) so that no password is on disk.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Password(String),
    /// At least one of the two; an algorithm without its HA1 is not offered to
    /// this user.
    Ha1 {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Password(_) => "Password(<redacted>)",
            Credential::Ha1 { .. } => "Ha1(<redacted>)",
        })
    }
}

impl From<String> for Credential {
    fn from(password: String) -> Credential {
        Credential::Password(password)
    }
}

/// A user's credentials, kept as HA1 per algorithm so the password itself is not held.
#[derive(Clone)]
pub(super) struct Secret {
    md5: Option<String>,
    sha256: Option<String>,
}

impl Secret {
    pub(super) fn new(user: &str, realm: &str, credential: &Credential) -> Secret {
        match credential {
            Credential::Password(password) => Secret {
                md5: Some(Algorithm::Md5.ha1(user, realm, password)),
                sha256: Some(Algorithm::Sha256.ha1(user, realm, password)),
            },
            Credential::Ha1 { md5, sha256 } => Secret {
                md5: md5.as_ref().map(|h| h.to_ascii_lowercase()),
                sha256: sha256.as_ref().map(|h| h.to_ascii_lowercase()),
            },
        }
    }

    fn ha1(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Md5 => self.md5.as_deref(),
            Algorithm::Sha256 => self.sha256.as_deref(),
        }
    }
}

/// What checking a request's credentials concluded.
#[derive(Debug)]
pub(super) enum Auth {
    /// Authenticated as this user.
    Ok(String),
    /// Answer 401 without counting a failure: an old, foreign or replayed nonce
    /// (`stale` when the password was right), or an algorithm the user has no HA1
    /// for.
    Retry {
        stale: bool,
        user: String,
    },
    /// A wrong response over a fresh nonce we issued to this source: counts
    /// against `user` from this source.
    Failed {
        user: String,
    },
    Malformed(RegistrarError),
}

impl Registrar {
    /// The Digest credentials for our realm in `Authorization` or
    /// `Proxy-Authorization` (softphones answer a 401 or a 407 with either).
    pub(super) fn credentials(&self, req: &Request) -> Result<Option<Credentials>, RegistrarError> {
        let values = req
            .header_all("Authorization")
            .chain(req.header_all("Proxy-Authorization"));
        for value in values {
            match Credentials::parse(value)? {
                Some(c) if c.realm == self.cfg.realm => return Ok(Some(c)),
                _ => {} // another scheme or realm: not for us
            }
        }
        Ok(None)
    }

    /// Checks `c` for `req`, which came from `source`.
    pub(super) fn verify(
        &mut self,
        now: Instant,
        req: &Request,
        c: Credentials,
        source: IpAddr,
    ) -> Auth {
        let Some(alg) = c.algorithm.filter(|a| self.cfg.algorithms.contains(a)) else {
            return Auth::Retry {
                stale: false,
                user: c.username,
            };
        };
        let (Some(qop), Some(nc), Some(cnonce)) = (&c.qop, &c.nc, &c.cnonce) else {
            return Auth::Malformed(malformed("Authorization", "qop, nc and cnonce required"));
        };
        let nc_value = match u32::from_str_radix(nc, 16) {
            Ok(n)
                if qop.eq_ignore_ascii_case("auth")
                    && nc.len() == 8
                    && nc.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                n
            }
            _ => return Auth::Malformed(malformed("Authorization", "qop must be auth, nc 8 hex")),
        };
        if !same_request_uri(&c.uri, &req.uri) {
            return Auth::Malformed(malformed("Authorization", "uri differs from Request-URI"));
        }
        let known = self.users.get(&c.username);
        if known.is_some_and(|s| s.ha1(alg).is_none()) {
            // A user configured with only the other algorithm's HA1.
            return Auth::Retry {
                stale: false,
                user: c.username,
            };
        }
        let decoy = self.decoy.ha1(alg).unwrap_or_default();
        let ha1 = known.and_then(|s| s.ha1(alg)).unwrap_or(decoy);
        let input = ResponseInput {
            method: req.method.as_str(),
            uri: &c.uri,
            nonce: &c.nonce,
            nc,
            cnonce,
            qop,
        };
        let expected = alg.response(ha1, &input);
        let nonce = self.nonces.check(now, &c.nonce, source);
        if known.is_none() || !constant_time_eq(expected.as_bytes(), c.response.as_bytes()) {
            // Counted only over a fresh nonce this source was given: a packet
            // spoofed from someone else's address cannot carry one.
            if nonce == NonceState::Fresh {
                return Auth::Failed { user: c.username };
            }
            return Auth::Retry {
                stale: false,
                user: c.username,
            };
        }
        // The password is right; an old, foreign or replayed nonce only asks the
        // client to retry with a fresh one.
        let fresh = nonce == NonceState::Fresh
            && self.replay.accept(&c.username, &c.nonce, cnonce, nc_value);
        if !fresh {
            return Auth::Retry {
                stale: true,
                user: c.username,
            };
        }
        Auth::Ok(c.username)
    }

    /// A 401 with a fresh nonce for `source`: one `WWW-Authenticate` per algorithm
    /// offered, limited to those `user` (when known) has an HA1 for.
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        source: IpAddr,
        stale: bool,
        user: Option<&str>,
    ) -> RegisterReply {
        let nonce = self.nonces.issue(now, source);
        let mut reply = RegisterReply::new(401, "Unauthorized");
        let secret = user.and_then(|u| self.users.get(u));
        let usable = |alg: Algorithm| secret.is_none_or(|s| s.ha1(alg).is_some());
        let mut algorithms: Vec<Algorithm> = self
            .cfg
            .algorithms
            .iter()
            .copied()
            .filter(|a| usable(*a))
            .collect();
        if algorithms.is_empty() {
            // The user's only HA1 is for an algorithm not offered: offer the
            // configured ones (that agent cannot log in until its file says more).
            algorithms = self.cfg.algorithms.clone();
        }
        for alg in algorithms {
            reply.headers.push((
                "WWW-Authenticate",
                challenge(&self.cfg.realm, &nonce, alg, stale),
            ));
        }
        reply
    }
}

/// Whether the digest `uri` names the Request-URI (RFC 7616 §3.4.6): equal text,
/// or the same scheme, user, host and port.
fn same_request_uri(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri.eq_ignore_ascii_case(request_uri) {
        return true;
    }
    match (SipUri::parse(digest_uri), SipUri::parse(request_uri)) {
        (Ok(a), Ok(b)) => {
            a.scheme == b.scheme
                && a.user == b.user
                && a.host.eq_ignore_ascii_case(&b.host)
                && a.port == b.port
        }
        _ => false,
    }
}
