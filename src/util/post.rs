//! A small HTTP/1.1 client for the gateway's outbound calls to internal services
//! (the SLA webhook, the ticket API): one POST per connection, a timeout on the
//! whole exchange, plain `http://` only (internal networks; put a TLS-terminating
//! proxy in front of anything else).

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

/// POSTs a JSON body with extra headers.
pub async fn post_json(
    url: &str,
    body: Bytes,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Answer, PostError> {
    let (authority, path) = split(url)?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|source| PostError::Connect {
                addr: authority.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::post(path)
            .header("host", &authority)
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
        driver.abort();
        Ok(Answer {
            status,
            retry_after_s,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| PostError::Timeout(timeout))?
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
