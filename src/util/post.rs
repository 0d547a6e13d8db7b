//! A small HTTP/1.1 client for the gateway's outbound calls to internal services
//! (the SLA webhook, the ticket API): a timeout on the whole exchange, plain
//! `http://` only (internal networks; put a TLS-terminating proxy in front of
//! anything else). [`post_json`] uses one connection per POST; a [`Client`] keeps
//! connections alive and reuses them (thousands of POSTs a second would otherwise
//! each leave a socket in TIME_WAIT and run the machine out of ports).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Why a POST did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("unsupported URL {0:?}: only http://host:port/path")]
    Url(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// An answered POST.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after_s: Option<u64>,
    pub body: Bytes,
}

/// Splits `http://host:port/path` into (authority, path).
fn split(url: &str) -> Result<(String, String), PostError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| PostError::Url(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(PostError::Url(url.to_string()));
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// POSTs a JSON body with extra headers, on a connection of its own.
pub async fn post_json(
    url: &str,
    body: Bytes,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Answer, PostError> {
    let (authority, path) = split(url)?;
    let once = async {
        let mut conn = connect(&authority).await?;
        exchange(&mut conn, &authority, &path, body, headers).await
    };
    tokio::time::timeout(timeout, once)
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

/// A connection the pool may hand out again.
type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Keep-alive connections by authority, reused for later POSTs.
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
        let (authority, path) = split(url)?;
        let exchange = async {
            if let Some(conn) = self.take(&authority)
                && let Ok(a) = self
                    .send(conn, &authority, &path, body.clone(), headers)
                    .await
            {
                return Ok(a);
            }
            let conn = connect(&authority).await?;
            self.send(conn, &authority, &path, body, headers).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(timeout))?
    }

    fn take(&self, authority: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(authority)?;
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
        authority: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, String)],
    ) -> Result<Answer, PostError> {
        conn.ready().await?;
        let answer = exchange(&mut conn, authority, path, body, headers).await?;
        if !conn.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(authority.to_string()).or_default();
            if list.len() < MAX_IDLE {
                list.push(conn);
            }
        }
        Ok(answer)
    }
}

/// Opens a connection and drives it in the background.
async fn connect(authority: &str) -> Result<Conn, PostError> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| PostError::Connect {
            addr: authority.to_string(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request and its whole answer.
async fn exchange(
    sender: &mut Conn,
    authority: &str,
    path: &str,
    body: Bytes,
    headers: &[(&str, String)],
) -> Result<Answer, PostError> {
    let mut req = Request::post(path)
        .header("host", authority)
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
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        retry_after_s,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split("http://127.0.0.1:9000/hooks/sla").unwrap(),
            ("127.0.0.1:9000".into(), "/hooks/sla".into())
        );
        assert_eq!(
            split("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(split("https://x/").is_err());
        assert!(split("http:///x").is_err());
    }
}
