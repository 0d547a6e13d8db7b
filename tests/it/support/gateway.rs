//! The gateway under test: the real binary on free loopback ports, with a config
//! written for the test and a block of RTP ports of its own.

use super::*;

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
/// Across test processes (two `cargo test` runs at once) the block's first
/// port, bound by the lease and left out of the gateway's range, says it is
/// taken.
struct RtpBlock {
    index: usize,
    _sentinel: UdpSocket,
}

impl RtpBlock {
    fn lease() -> RtpBlock {
        let start = Instant::now();
        loop {
            {
                let mut leased = RTP_LEASED.lock().unwrap_or_else(|e| e.into_inner());
                for (index, taken) in leased.iter_mut().enumerate() {
                    if *taken {
                        continue;
                    }
                    let lo = 20_000 + index as u32 * RTP_BLOCK;
                    if let Ok(sentinel) = UdpSocket::bind(("127.0.0.1", lo as u16)) {
                        *taken = true;
                        return RtpBlock {
                            index,
                            _sentinel: sentinel,
                        };
                    }
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
        let lo = 20_000 + self.index as u32 * RTP_BLOCK;
        // The first pair is the lease's sentinel.
        format!(
            "rtp_port_min = {}\nrtp_port_max = {}\n",
            lo + 2,
            lo + RTP_BLOCK - 1
        )
    }
}

impl Drop for RtpBlock {
    fn drop(&mut self) {
        RTP_LEASED.lock().unwrap_or_else(|e| e.into_inner())[self.index] = false;
    }
}

/// `[[http.token]]` lines for the test tokens, one per role.
pub fn test_tokens() -> String {
    [
        ("test-viewer", "viewer", VIEWER_TOKEN),
        ("test-supervisor", "supervisor", SUPERVISOR_TOKEN),
        ("test-admin", "admin", ADMIN_TOKEN),
    ]
    .iter()
    .map(|(name, role, value)| {
        let hash = hotline_gateway::http::auth::token_sha256(value);
        format!(
            "[[http.token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
            hotline_gateway::http::auth::hex(&hash)
        )
    })
    .collect()
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
    /// More `[sip]` keys (lines), e.g. the TCP caps.
    pub extra_sip: String,
    /// More `[http]` keys (`allowed_hosts`, `[[http.token]]`…), written right
    /// after its `listen` and before the test tokens.
    pub http_keys: String,
    /// The host written as `[http] listen` instead of 127.0.0.1 (tests still
    /// connect to `Gateway::http`), e.g. `[::ffff:127.0.0.1]`.
    pub http_listen_host: Option<String>,
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
            extra_sip: String::new(),
            http_keys: String::new(),
            http_listen_host: None,
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
        let gw = Gateway::spawn(opts);
        gw.wait_ready();
        gw
    }

    /// Starts the binary without waiting for it to answer on plain HTTP (a test
    /// that serves HTTPS, or expects a refusal, waits its own way).
    pub fn spawn(opts: GwOpts) -> Gateway {
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
                "[sip]\nlisten = \"{sip}\"\nmax_message_bytes = {}\n{}[sip.timers]\nt1_ms = {t1}\nt2_ms = {}\nt4_ms = {}\n\
[calls]\nmax_concurrent = {}\nretry_after_s = 7\nring_timeout_s = {}\nmax_duration_s = 3600\n\
[http]\nlisten = \"{}\"\n{}{}[dialplan]\ndir = \"dialplans\"\n[log]\nlevel = \"warn\"\n{}{}",
                opts.max_message,
                opts.extra_sip,
                (t1 * 8).max(t1),
                (t1 * 10).max(1),
                opts.max_calls,
                opts.ring_timeout_s,
                match &opts.http_listen_host {
                    Some(host) => format!("{host}:{}", http.port()),
                    None => http.to_string(),
                },
                opts.http_keys,
                test_tokens(),
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
        Gateway {
            child,
            sip,
            http,
            dir,
            _rtp: rtp,
        }
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

    /// The gateway's process id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Waits until `done` holds, checking every 50 ms; after `timeout` the test
    /// fails naming `what`, with the gateway's log. For conditions not in a
    /// JSON answer (the log, what a peer received, a call that now routes).
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}\nlog:\n{}", self.log());
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

    /// The call records so far (`/api/v1/calls`, up to 10,000), newest first.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.get_json("/api/v1/calls?limit=10000")["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
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

/// Runs `hotline-gw run` with these arguments and waits (bounded: 20 s) for it
/// to exit, as a gateway that refuses to start does; its exit code and stderr.
pub fn run_until_exit(args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
        .arg("run")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hotline-gw");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("still running after 20 s; stderr:\n{err}"));
    (status.code(), err)
}
