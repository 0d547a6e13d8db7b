//! Checking a REGISTER's digest credentials and writing challenges: HA1 storage,
//! the decoy for unknown users, nonce freshness and replay. No I/O.

use std::time::Instant;

use crate::sip::message::{Headers, Request, SipUri};

use super::digest::{Algorithm, Credentials, ResponseInput, challenge, constant_time_eq};
use super::nonce::NonceState;
use super::{RegisterReply, Registrar, RegistrarError, malformed};

/// A user's credentials, kept as HA1 per algorithm so the password itself is not held.
#[derive(Clone)]
pub(super) struct Secret {
    md5: String,
    sha256: String,
}

impl Secret {
    pub(super) fn new(user: &str, realm: &str, password: &str) -> Secret {
        Secret {
            md5: Algorithm::Md5.ha1(user, realm, password),
            sha256: Algorithm::Sha256.ha1(user, realm, password),
        }
    }

    fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

/// What checking a REGISTER's credentials concluded.
pub(super) enum Auth {
    /// Authenticated as this user.
    Ok(String),
    /// Answer 401; `failure` counts against the source IP.
    Challenge {
        stale: bool,
        failure: bool,
    },
    Malformed(RegistrarError),
}

impl Registrar {
    pub(super) fn authenticate(&mut self, now: Instant, req: &Request) -> Auth {
        let mut creds = None;
        for value in req.header_all("Authorization") {
            match Credentials::parse(value) {
                Ok(Some(c)) if c.realm == self.cfg.realm => {
                    creds = Some(c);
                    break;
                }
                Ok(_) => {} // another scheme or realm: not for us
                Err(e) => return Auth::Malformed(e),
            }
        }
        let Some(c) = creds else {
            return Auth::Challenge {
                stale: false,
                failure: false,
            };
        };
        let Some(alg) = c.algorithm.filter(|a| self.cfg.algorithms.contains(a)) else {
            return Auth::Challenge {
                stale: false,
                failure: false,
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
        let ha1 = known.unwrap_or(&self.decoy).ha1(alg);
        let input = ResponseInput {
            method: "REGISTER",
            uri: &c.uri,
            nonce: &c.nonce,
            nc,
            cnonce,
            qop,
        };
        let expected = alg.response(ha1, &input);
        if known.is_none() || !constant_time_eq(expected.as_bytes(), c.response.as_bytes()) {
            return Auth::Challenge {
                stale: false,
                failure: true,
            };
        }
        // The password is right; an old, foreign or replayed nonce only asks the
        // client to retry with a fresh one.
        let fresh = self.nonces.check(now, &c.nonce) == NonceState::Fresh
            && self.replay.accept(&c.username, &c.nonce, cnonce, nc_value);
        if !fresh {
            return Auth::Challenge {
                stale: true,
                failure: false,
            };
        }
        Auth::Ok(c.username)
    }

    pub(super) fn challenge(&mut self, now: Instant, stale: bool) -> RegisterReply {
        let nonce = self.nonces.issue(now);
        let mut reply = RegisterReply::new(401, "Unauthorized");
        for &alg in &self.cfg.algorithms {
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
