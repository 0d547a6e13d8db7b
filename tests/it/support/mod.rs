//! Shared test support: start the real `hotline-gw` binary on free loopback ports
//! with a config written for the test, run sipp against it, read its statistics.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod gateway;
mod peers;
mod sipp;
mod softphone;

pub use gateway::*;
pub use peers::*;
pub use sipp::*;
pub use softphone::*;

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A scratch folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("hgw-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The test gateway's API tokens (their hashes are in the config it is given).
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const SUPERVISOR_TOKEN: &str = "test-supervisor-token";
pub const VIEWER_TOKEN: &str = "test-viewer-token";

/// An HTTP answer: status, headers (names lower-cased) and body (de-chunked).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON `error` code of the body, if it has one.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v["error"].as_str().map(str::to_string)
    }
}

/// One HTTP/1.1 request, written as given: `headers` are whole lines
/// (`"Authorization: Bearer x"`); a `Host` line is added unless one is given.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Option<HttpAnswer> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        head += &format!("Host: {addr}\r\n");
    }
    for h in headers {
        head += h;
        head += "\r\n";
    }
    if let Some(b) = body {
        head += &format!("Content-Length: {}\r\n", b.len());
    }
    head += "Connection: close\r\n\r\n";
    s.write_all(head.as_bytes()).ok()?;
    if let Some(b) = body {
        s.write_all(b.as_bytes()).ok()?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    parse_answer(&raw)
}

/// Reads a whole HTTP/1.1 answer (`Connection: close`).
pub fn parse_answer(raw: &[u8]) -> Option<HttpAnswer> {
    let resp = String::from_utf8_lossy(raw);
    let (head, rest) = resp.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_string()
    };
    Some(HttpAnswer {
        code,
        headers,
        body,
    })
}

/// A chunked body's data; `None` when it is cut short (no last chunk).
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out += after.get(..size)?;
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// A GET with the admin token, returning status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_as(addr, path, Some(ADMIN_TOKEN))
}

/// A GET with a chosen token (or none), returning status and body.
pub fn http_get_as(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth: Vec<String> = token
        .map(|t| format!("Authorization: Bearer {t}"))
        .into_iter()
        .collect();
    let a = http_request(addr, "GET", path, &auth, None)?;
    Some((a.code, a.body))
}

/// A POST of a JSON body with the admin token, returning status and body.
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> Option<(u16, String)> {
    http_post_as(addr, path, body, Some(ADMIN_TOKEN))
}

/// A POST of a JSON body with a chosen token (or none), returning status and body.
pub fn http_post_as(
    addr: SocketAddr,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Option<(u16, String)> {
    let mut headers = vec!["Content-Type: application/json".to_string()];
    headers.extend(token.map(|t| format!("Authorization: Bearer {t}")));
    let a = http_request(addr, "POST", path, &headers, Some(body))?;
    Some((a.code, a.body))
}
