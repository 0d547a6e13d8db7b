//! A small HTTP/1.1 client for the gateway's outbound calls to other services
//! (the SLA webhook, the ticket API): `http://` or `https://` (rustls, the public
//! roots built into the binary plus `[http.client] ca_file`), a timeout on the
//! whole exchange, and an answer body read up to [`MAX_ANSWER_BYTES`] only.
//! [`post_json`] uses one connection per POST; a [`Client`] keeps connections
//! alive and reuses them (thousands of POSTs a second would otherwise each leave
//! a socket in TIME_WAIT and run the machine out of ports).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The most of an answer's body that is read: the services answer a status and
/// a short reason; a larger body is a fault or an attack, and is refused.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a POST did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("unsupported URL {0:?}: use http://host[:port]/path or https://host[:port]/path")]
    Url(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the answer's body is over {MAX_ANSWER_BYTES} bytes")]
    AnswerTooLarge,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{file}: {message} ([http.client] ca_file)")]
    CaFile { file: String, message: String },
}

/// An answered POST.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after_s: Option<u64>,
    pub body: Bytes,
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    /// `host:port`, for connecting and the Host header.
    authority: String,
    path: String,
}

impl Target {
    /// The pool's key: the scheme too, so a plain and a TLS connection to the
    /// same authority are never mixed up.
    fn key(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// Splits `http(s)://host[:port]/path`.
fn split(url: &str) -> Result<Target, PostError> {
    let bad = || PostError::Url(url.to_string());
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let end = v6.find(']').ok_or_else(bad)?;
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (&authority[..end + 2], port)
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None if tls => 443,
        None => 80,
    };
    Ok(Target {
        tls,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        authority: format!("{host}:{port}"),
        path: path.to_string(),
    })
}

/// The TLS primitives, for the server (`http/tls.rs`) and this client: ring, which
/// builds with a C compiler alone (aws-lc-rs needs cmake and doubles the build).
/// rustls 0.23.48 deprecates it only for having no post-quantum key exchange.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client side of TLS, made once: built-in public roots, plus the CA file
/// given to [`trust_ca_file`] at start.
static CLIENT_TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

fn client_tls(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in extra {
        roots.add(c.clone()).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Trusts a private CA (PEM certificates) for `https://` URLs, besides the
/// public roots. Called once at start, before any POST.
pub fn trust_ca_file(file: &Path) -> Result<(), PostError> {
    let err = |message: String| PostError::CaFile {
        file: file.display().to_string(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| err(format!("cannot read: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE in the file".into()));
    }
    let config = client_tls(&certs).map_err(err)?;
    CLIENT_TLS
        .set(config)
        .map_err(|_| err("set after the first HTTPS request".into()))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    CLIENT_TLS
        .get_or_init(|| client_tls(&[]).expect("the built-in roots are valid"))
        .clone()
}

/// POSTs a JSON body with extra headers, on a connection of its own.
pub async fn post_json(
    url: &str,
    body: Bytes,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Answer, PostError> {
    let target = split(url)?;
    let once = async {
        let mut conn = connect(&target).await?;
        exchange(&mut conn, &target, body, headers).await
    };
    tokio::time::timeout(timeout, once)
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

/// A connection the pool may hand out again.
type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Keep-alive connections by scheme and authority, reused for later POSTs.
#[derive(Debug, Default)]
pub struct Client {
    idle: std::sync::Mutex<std::collections::HashMap<String, Vec<Conn>>>,
}

/// Idle connections kept per authority.
const MAX_IDLE: usize = 32;

impl Client {
    /// POSTs a JSON body with extra headers, over a kept-alive connection when one
    /// is idle. A reused connection that fails before an answer (the server closed
    /// it meanwhile) is replaced once by a new one; receivers get an idempotency
    /// key, so a repeat is harmless.
    pub async fn post_json(
        &self,
        url: &str,
        body: Bytes,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Answer, PostError> {
        let target = split(url)?;
        let exchange = async {
            if let Some(conn) = self.take(&target.key())
                && let Ok(a) = self.send(conn, &target, body.clone(), headers).await
            {
                return Ok(a);
            }
            let conn = connect(&target).await?;
            self.send(conn, &target, body, headers).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(timeout))?
    }

    fn take(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some(c) = list.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    async fn send(
        &self,
        mut conn: Conn,
        target: &Target,
        body: Bytes,
        headers: &[(&str, String)],
    ) -> Result<Answer, PostError> {
        conn.ready().await?;
        let answer = exchange(&mut conn, target, body, headers).await?;
        if !conn.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(target.key()).or_default();
            if list.len() < MAX_IDLE {
                list.push(conn);
            }
        }
        Ok(answer)
    }
}

/// Opens a connection (TLS for `https://`) and drives it in the background.
async fn connect(target: &Target) -> Result<Conn, PostError> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|source| PostError::Connect {
            addr: target.authority.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    if !target.tls {
        return handshake(stream).await;
    }
    let tls_err = |source| PostError::Tls {
        addr: target.authority.clone(),
        source,
    };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| tls_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let stream = tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, stream)
        .await
        .map_err(tls_err)?;
    handshake(stream).await
}

async fn handshake<S>(io: S) -> Result<Conn, PostError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request and its answer (the body up to [`MAX_ANSWER_BYTES`]).
async fn exchange(
    sender: &mut Conn,
    target: &Target,
    body: Bytes,
    headers: &[(&str, String)],
) -> Result<Answer, PostError> {
    let mut req = Request::post(&target.path)
        .header("host", &target.authority)
        .header("content-type", "application/json")
        .header("user-agent", "hotline-gateway");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = sender.send_request(req.body(Full::new(body))?).await?;
    let status = resp.status().as_u16();
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(e) => PostError::Http(*e),
            Err(_) => PostError::AnswerTooLarge,
        })?
        .to_bytes();
    Ok(Answer {
        status,
        retry_after_s,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (bool, String, String, String) {
        let t = split(url).unwrap();
        (t.tls, t.host, t.authority, t.path)
    }

    #[test]
    fn urls() {
        let s = |s: &str| s.to_string();
        assert_eq!(
            parts("http://127.0.0.1:9000/hooks/sla"),
            (false, s("127.0.0.1"), s("127.0.0.1:9000"), s("/hooks/sla"))
        );
        assert_eq!(
            parts("http://localhost"),
            (false, s("localhost"), s("localhost:80"), s("/"))
        );
        assert_eq!(
            parts("https://tickets.example.gov.cn/api"),
            (
                true,
                s("tickets.example.gov.cn"),
                s("tickets.example.gov.cn:443"),
                s("/api")
            )
        );
        assert_eq!(
            parts("https://[::1]:8443/x"),
            (true, s("::1"), s("[::1]:8443"), s("/x"))
        );
        assert!(split("ftp://x/").is_err());
        assert!(split("http:///x").is_err());
        assert!(split("http://x:port/").is_err());
        assert!(split("https://user:pw@x/").is_err());
    }

    #[tokio::test]
    async fn a_large_answer_is_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = vec![b'x'; MAX_ANSWER_BYTES + 1];
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
        });
        let url = format!("http://{addr}/");
        let r = post_json(&url, Bytes::from_static(b"{}"), &[], Duration::from_secs(5)).await;
        assert!(matches!(r, Err(PostError::AnswerTooLarge)), "{r:?}");
    }
}
