//! The client side of HTTP digest (RFC 7616, RFC 8760 for SIP): answering a
//! `401`'s challenge with an `Authorization` header.

pub use crate::registrar::Algorithm;
use crate::registrar::ResponseInput;
use crate::sip::message::{param, split_list};

/// A challenge picked from `WWW-Authenticate` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    pub opaque: Option<String>,
    pub qop_auth: bool,
}

/// The strongest digest challenge among the header values (SHA-256 over MD5).
pub fn pick<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for v in values {
        let Some(params) = v.trim().strip_prefix("Digest").map(str::trim) else {
            continue;
        };
        let get = |name: &str| {
            split_list(params).find_map(|p| {
                param(&format!(";{p}"), name).map(|v| v.trim_matches('"').to_string())
            })
        };
        let algorithm = match get("algorithm").as_deref() {
            None | Some("MD5") | Some("md5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(_) => continue,
        };
        let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else {
            continue;
        };
        let c = Challenge {
            realm,
            nonce,
            algorithm,
            opaque: get("opaque"),
            qop_auth: get("qop").is_some_and(|q| q.split(',').any(|t| t.trim() == "auth")),
        };
        if best.as_ref().is_none_or(|b| b.algorithm == Algorithm::Md5) {
            best = Some(c);
        }
    }
    best
}

/// The `Authorization` value answering `c` for a request.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = c.algorithm;
    let ha1 = alg.ha1(user, &c.realm, password);
    let nc = format!("{nc:08x}");
    let mut v = if c.qop_auth {
        let input = ResponseInput {
            method,
            uri,
            nonce: &c.nonce,
            nc: &nc,
            cnonce,
            qop: "auth",
        };
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
response=\"{}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            c.realm,
            c.nonce,
            alg.response(&ha1, &input),
            alg.as_str()
        )
    } else {
        // RFC 2069 compatibility: no qop.
        let ha2 = alg.hash_hex(&format!("{method}:{uri}"));
        let response = alg.hash_hex(&format!("{ha1}:{}:{ha2}", c.nonce));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
response=\"{response}\", algorithm={}",
            c.realm,
            c.nonce,
            alg.as_str()
        )
    };
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_sha256_and_matches_rfc7616_example() {
        let c = pick(
            [
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"n1\"",
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let a = authorization(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
    }
}
