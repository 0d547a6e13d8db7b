//! `[http]`: where the API listens, who may use it (`[[http.token]]`, kept as
//! SHA-256 hashes), which Host names it answers to, HTTPS (`[http.tls]`) and the
//! CA trusted by the gateway's own HTTPS client (`[http.client]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::http::auth::{Hosts, Role, Token, Tokens, parse_sha256_hex};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Host header values answered (against DNS rebinding): `name`, `name:port`,
    /// `[v6]`… [default: the listen address, 127.0.0.1, localhost, [::1]].
    pub allowed_hosts: Option<Vec<String>>,
    /// `[[http.token]]`: bearer tokens and their roles.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenSection>,
    /// `[http.tls]`: serve HTTPS instead of HTTP.
    pub tls: Option<TlsSection>,
    /// `[http.client]`: the gateway's own requests (ticket delivery, webhooks).
    #[serde(default)]
    pub client: ClientSection,
    /// Connections open at once (each takes a file descriptor); more are
    /// closed as soon as they are accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    #[serde(default = "default_max_per_source")]
    pub max_per_source: usize,
    /// Seconds a connection has to finish its TLS handshake and send a request's
    /// headers, the first or the next one on a kept-alive connection: a
    /// connection that sends nothing that long is closed.
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
}

fn default_max_connections() -> usize {
    crate::transport::fds::HTTP_FDS as usize
}

fn default_max_per_source() -> usize {
    32
}

fn default_header_timeout_s() -> u64 {
    10
}

/// One `[[http.token]]`, as `hotline-gw token` prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Who holds it (in the log and in `403` answers).
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token; the token itself is never written down.
    pub sha256: String,
}

/// `[http.tls]`: PEM files, relative to the config file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[http.client]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// PEM certificates of a private CA trusted for `https://` ticket and webhook
    /// URLs, besides the public roots built into the binary.
    pub ca_file: Option<PathBuf>,
}

impl HttpConfig {
    /// Checks values; the error is (key, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_connections < 4 {
            return Err(("http.max_connections".into(), "must be at least 4".into()));
        }
        if self.max_per_source == 0 || self.max_per_source > self.max_connections {
            return Err((
                "http.max_per_source".into(),
                "must be between 1 and http.max_connections".into(),
            ));
        }
        if self.header_timeout_s == 0 || self.header_timeout_s > 300 {
            return Err((
                "http.header_timeout_s".into(),
                "must be between 1 and 300".into(),
            ));
        }
        if let Some(hosts) = &self.allowed_hosts {
            if hosts.is_empty() {
                return Err((
                    "http.allowed_hosts".into(),
                    "empty: no browser or client could reach the API (leave the key out for \
                     the defaults)"
                        .into(),
                ));
            }
            Hosts::new(hosts).map_err(|e| ("http.allowed_hosts".to_string(), e))?;
        }
        let mut seen: Vec<([u8; 32], &str)> = Vec::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let key = |k: &str| format!("http.token[{i}].{k}");
            if t.name.trim().is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            if seen.iter().any(|(_, n)| *n == t.name) {
                return Err((key("name"), format!("{:?} is used twice", t.name)));
            }
            let Some(h) = parse_sha256_hex(&t.sha256) else {
                return Err((
                    key("sha256"),
                    "must be the 64 hex digits of the token's SHA-256, never the token \
                     itself (`hotline-gw token --role ROLE --name NAME` prints the lines)"
                        .into(),
                ));
            };
            if let Some((_, other)) = seen.iter().find(|(x, _)| *x == h) {
                return Err((
                    key("sha256"),
                    format!("the same token as {other:?}: give each holder a token of their own"),
                ));
            }
            seen.push((h, &t.name));
        }
        Ok(())
    }

    /// The configured tokens (validated: every hash parses).
    pub fn tokens(&self) -> Tokens {
        Tokens(
            self.tokens
                .iter()
                .filter_map(|t| {
                    Some(Token {
                        name: t.name.clone(),
                        role: t.role,
                        sha256: parse_sha256_hex(&t.sha256)?,
                    })
                })
                .collect(),
        )
    }

    /// The Host allow-list, or its defaults (validated: every entry parses).
    pub fn hosts(&self) -> Hosts {
        let list = match &self.allowed_hosts {
            Some(l) => l.clone(),
            None => Hosts::defaults(self.listen),
        };
        Hosts::new(&list).unwrap_or_else(|_| {
            Hosts::new(&Hosts::defaults(self.listen)).expect("the default hosts parse")
        })
    }

    /// The connection limits of the accept loop.
    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_connections: self.max_connections,
            max_per_source: self.max_per_source,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_s),
        }
    }

    /// What the HTTP guard checks against.
    pub fn access(&self) -> crate::http::Access {
        crate::http::Access {
            tokens: self.tokens(),
            hosts: self.hosts(),
        }
    }
}
