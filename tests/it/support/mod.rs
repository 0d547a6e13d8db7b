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

/// RTP port blocks below the kernel's ephemeral ports (32768+), where sipp's
/// and the tests' own sockets land: 12 blocks of 1024 ports (256 calls at once;
/// a loaded machine slows sipp's calls down and more of them overlap).
const RTP_BLOCKS: usize = 12;
const RTP_BLOCK: u32 = 1024;

/// The blocks leased by this process's running gateways.
static RTP_LEASED: std::sync::Mutex<[bool; RTP_BLOCKS]> =
    std::sync::Mutex::new([false; RTP_BLOCKS]);

/// A gateway's own RTP ports, leased for its life: gateways of parallel tests
/// never share one, and a block goes back only once its gateway has exited.
struct RtpBlock(usize);

impl RtpBlock {
    fn lease() -> RtpBlock {
        let start = Instant::now();
        loop {
            {
                let mut leased = RTP_LEASED.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = leased.iter().position(|l| !l) {
                    leased[i] = true;
                    return RtpBlock(i);
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "more than {RTP_BLOCKS} test gateways at once"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `[media]` keys.
    fn config(&self) -> String {
        let lo = 20_000 + self.0 as u32 * RTP_BLOCK;
        format!(
            "rtp_port_min = {lo}\nrtp_port_max = {}\n",
            lo + RTP_BLOCK - 1
        )
    }
}

impl Drop for RtpBlock {
    fn drop(&mut self) {
        RTP_LEASED.lock().unwrap_or_else(|e| e.into_inner())[self.0] = false;
    }
}

/// How a test gateway is set up.
pub struct GwOpts {
    /// The target of line 12345.
    pub target: String,
    pub t1_ms: u64,
    pub max_calls: usize,
    pub ring_timeout_s: u64,
    pub max_message: usize,
    /// More dialplan (queues, agents, lines), written beside the line file.
    pub extra_dialplan: String,
    /// More gateway config (whole sections), appended to the file.
    pub extra_config: String,
    /// Source networks of the carrier trunk (loopback by default).
    pub trunk_sources: Vec<String>,
}

impl GwOpts {
    pub fn to(target: impl Into<String>) -> GwOpts {
        GwOpts {
            target: target.into(),
            t1_ms: 500,
            max_calls: 5000,
            ring_timeout_s: 60,
            max_message: 65_535,
            extra_dialplan: String::new(),
            extra_config: String::new(),
            trunk_sources: vec!["127.0.0.0/8".into()],
        }
    }
}

/// The real binary, running on its own ports; killed on drop.
pub struct Gateway {
    child: Child,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: TempDir,
    /// Declared last: dropped after the process has been killed and reaped.
    _rtp: RtpBlock,
}

impl Gateway {
    pub fn start(opts: GwOpts) -> Gateway {
        let dir = TempDir::new("gw");
        let rtp = RtpBlock::lease();
        let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        std::fs::create_dir_all(dir.0.join("dialplans")).unwrap();
        std::fs::write(
            dir.0.join("dialplans/lines.toml"),
            format!(
                "[[trunk]]\nname = \"loopback\"\nkind = \"carrier\"\nsources = [{}]\n\n\
[[line]]\nnumber = \"12345\"\nname = \"test hotline\"\ntarget = \"{}\"\n",
                opts.trunk_sources
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                opts.target
            ),
        )
        .unwrap();
        if !opts.extra_dialplan.is_empty() {
            std::fs::write(dir.0.join("dialplans/seats.toml"), &opts.extra_dialplan).unwrap();
        }
        let t1 = opts.t1_ms;
        std::fs::write(
            dir.0.join("gateway.toml"),
            format!(
                "[sip]\nlisten = \"{sip}\"\nmax_message_bytes = {}\n[sip.timers]\nt1_ms = {t1}\nt2_ms = {}\nt4_ms = {}\n\
[calls]\nmax_concurrent = {}\nretry_after_s = 7\nring_timeout_s = {}\nmax_duration_s = 3600\n\
[http]\nlisten = \"{http}\"\n[dialplan]\ndir = \"dialplans\"\n[log]\nlevel = \"warn\"\n{}{}",
                opts.max_message,
                (t1 * 8).max(t1),
                (t1 * 10).max(1),
                opts.max_calls,
                opts.ring_timeout_s,
                // Gateways of parallel tests must not share RTP ports.
                opts.extra_config.replace("[media]\n", &format!("[media]\n{}", rtp.config())),
                // The signalling tests place callers that cannot tell the gateway's
                // own answer from an agent's: they keep queued callers unanswered
                // (early media). The media tests set their own [media].
                if opts.extra_config.contains("[media]") {
                    String::new()
                } else {
                    format!(
                        "\n[media]\n{}queued = \"early_media\"\nrecordings = \"{}\"\n",
                        rtp.config(),
                        dir.0.join("recordings").display()
                    )
                },
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.0.join("gw.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
            .args(["run", "--config"])
            .arg(dir.0.join("gateway.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hotline-gw");
        let gw = Gateway {
            child,
            sip,
            http,
            dir,
            _rtp: rtp,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if http_get(self.http, "/healthz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("gw.log")).unwrap_or_default()
    }

    /// `/healthz` as JSON.
    pub fn health(&self) -> serde_json::Value {
        let (code, body) = http_get(self.http, "/healthz").expect("healthz answers");
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// Calls ended with a reason code so far.
    pub fn ended(&self, reason: &str) -> u64 {
        self.health()["calls_ended"][reason].as_u64().unwrap_or(0)
    }

    /// Waits until a predicate on `/healthz` holds.
    pub fn wait_health(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        self.wait_json("/healthz", what, timeout, pred);
    }

    /// Waits until a predicate on the JSON at `path` holds.
    pub fn wait_json(
        &self,
        path: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let v = self.get_json(path);
            if pred(&v) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for {what}; {path}: {v}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends the gateway a signal (`HUP`, `TERM`…).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Kills the gateway with SIGKILL (no chance to flush anything) and waits.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().unwrap();
    }

    /// Starts the gateway again on the same config, database and ports.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.0.join("gw.log"))
            .unwrap();
        self.child = Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
            .args(["run", "--config"])
            .arg(self.dir.0.join("gateway.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart hotline-gw");
        self.wait_ready();
    }

    /// A JSON API answer that must be 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(self.http, path).unwrap_or_else(|| panic!("GET {path}"));
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Waits for the process to exit by itself; false if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET, returning status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A minimal HTTP/1.1 POST of a JSON body, returning status and body.
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// sipp arguments for a caller: `calls` calls to `number` at the gateway, from a
/// free local port, then `extra`.
pub fn uac_args(gw: &Gateway, number: &str, calls: u32, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        gw.sip.to_string(),
        "-s".into(),
        number.into(),
        "-p".into(),
        free_port().to_string(),
        "-m".into(),
        calls.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A `hotline-gw softphone …` process; its JSON summary is read at the end.
pub struct Softphone {
    child: Child,
}

impl Softphone {
    /// Starts `hotline-gw softphone <args> --json`.
    pub fn start(args: &[String]) -> Softphone {
        let child = Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
            .arg("softphone")
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the softphone");
        Softphone { child }
    }

    /// Waits for it to exit; returns its summary, or its stderr as the error.
    pub fn finish(mut self, limit: Duration) -> Result<serde_json::Value, String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                let mut err = String::new();
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                if !status.success() {
                    return Err(format!("softphone exited with {status}: {err}"));
                }
                let line = out.lines().last().unwrap_or_default();
                return serde_json::from_str(line).map_err(|e| format!("{e}: {out}"));
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                return Err("softphone did not finish in time".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Softphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tool from Debian's packages, or `None` (loudly) outside CI; under `CI=true` a
/// missing one fails the test (`.ci/run` installs it).
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is not installed, and CI=true: apt-get install -y {package}");
        }
        eprintln!(
            "\n========================================================\n\
             SKIPPED: {name} is not installed; this test needs it.\n\
             Install it with: apt-get install -y {package}\n\
             ========================================================\n"
        );
    }
    found
}

/// The sipp binary, or `None` (loudly) outside CI. Under `CI=true` a missing sipp
/// fails the test: CI must install it (`apt-get install -y sip-tester`).
pub fn sipp() -> Option<PathBuf> {
    tool("sipp", "sip-tester")
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A running sipp process; killed on drop.
pub struct Sipp {
    child: Child,
    pub stat: PathBuf,
    errors: PathBuf,
    _dir: TempDir,
}

/// sipp's final counters.
#[derive(Debug)]
pub struct SippResult {
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
    pub exit: Option<i32>,
    /// The start of sipp's own error log (`-trace_err`): why calls failed.
    pub errors: String,
    pub raw: HashMap<String, String>,
}

impl Sipp {
    /// Starts sipp with a scenario; `args` are appended.
    pub fn start(bin: &Path, scenario_file: &str, args: &[String], limit: Duration) -> Sipp {
        let dir = TempDir::new("sipp");
        let stat = dir.0.join("stat.csv");
        let errors = dir.0.join("errors.log");
        let mut cmd = Command::new("timeout");
        cmd.arg("-k")
            .arg("2")
            .arg(format!("{}", limit.as_secs().max(1)))
            .arg(bin)
            .arg("-sf")
            .arg(scenario(scenario_file))
            .args(["-i", "127.0.0.1", "-trace_stat", "-stf"])
            .arg(&stat)
            .args([
                "-fd",
                "1",
                "-nostdin",
                "-buff_size",
                "4194304",
                "-trace_err",
            ])
            .arg("-error_file")
            .arg(&errors)
            .args(args)
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start sipp");
        Sipp {
            child,
            stat,
            errors,
            _dir: dir,
        }
    }

    /// Waits for sipp to exit and returns its counters.
    pub fn finish(mut self) -> SippResult {
        let status = self.child.wait().unwrap();
        let raw = last_stat_row(&self.stat);
        let get = |k: &str| raw.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        SippResult {
            successful: get("SuccessfulCall(C)"),
            failed: get("FailedCall(C)"),
            retransmissions: get("Retransmissions(C)"),
            exit: status.code(),
            errors: std::fs::read_to_string(&self.errors)
                .unwrap_or_default()
                .chars()
                .take(4000)
                .collect(),
            raw,
        }
    }
}

impl Drop for Sipp {
    /// TERM goes to `timeout`, which passes it on to sipp (a KILL would orphan
    /// sipp); KILL only if it has not gone after two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_stat_row(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let Some(last) = lines.last() else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Transport flags for sipp.
pub fn sipp_transport(tcp: bool) -> &'static str {
    if tcp { "t1" } else { "u1" }
}

/// A fresh PostgreSQL database on 127.0.0.1:5432, as a URL; `None` (loudly) when
/// the server does not answer, a failure under `CI=true`.
pub fn fresh_postgres(name: &str) -> Option<String> {
    let db = format!("hgw_it_{name}_{}", std::process::id());
    let made = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection;
            let mut admin =
                sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test").await?;
            // Databases left by earlier runs (a test killed mid-way); one still in
            // use by a concurrent run refuses to go, which is fine.
            let stale: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'hgw\\_it\\_%'")
                    .fetch_all(&mut admin)
                    .await?;
            // Never this process's: its other tests run at the same time.
            let mine = format!("_{}", std::process::id());
            for (name,) in stale.into_iter().filter(|(n,)| !n.ends_with(&mine)) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut admin)
                    .await;
            }
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&mut admin)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
    match made {
        Ok(()) => Some(format!("postgres://postgres@127.0.0.1:5432/{db}")),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!(
                "\n========================================================\n\
                 SKIPPED (PostgreSQL half): {e}\n\
                 Start PostgreSQL on 127.0.0.1:5432 (user postgres, trust).\n\
                 ========================================================\n"
            );
            None
        }
    }
}

/// An HTTP receiver standing in for a webhook: answers 200 and keeps each body.
pub struct WebhookSink {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(body) = read_request_body(&mut conn) {
                    keep.lock().unwrap().push(body);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            }
        });
        WebhookSink { url, bodies }
    }

    /// The JSON bodies received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}

/// Reads one HTTP/1.1 request and returns its body (Content-Length framing).
fn read_request_body(conn: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body[..len].to_string());
            }
        }
    }
}

/// A TCP forwarder from a free loopback port to `target`, started on demand: the
/// port refuses connections until [`Forwarder::open`], and [`Forwarder::close`]
/// cuts every connection and refuses again (a database that goes away and comes
/// back).
pub struct Forwarder {
    pub port: u16,
    target: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    pub fn new(target: &str) -> Forwarder {
        Forwarder {
            port: free_port(),
            target: target.parse().unwrap(),
            open: Default::default(),
            conns: Default::default(),
        }
    }

    /// Starts accepting and forwarding.
    pub fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let target = self.target;
        self.open.store(true, Ordering::SeqCst);
        let (open, conns) = (self.open.clone(), self.conns.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !open.load(Ordering::SeqCst) {
                    return; // drops the listener: the port refuses again
                }
                let Ok(a) = conn else { continue };
                let Ok(b) = TcpStream::connect(target) else {
                    continue;
                };
                {
                    let mut c = conns.lock().unwrap();
                    c.push(a.try_clone().unwrap());
                    c.push(b.try_clone().unwrap());
                }
                for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
    }

    /// Cuts every forwarded connection and stops listening.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
