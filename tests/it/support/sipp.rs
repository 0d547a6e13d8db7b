//! sipp as a real SIP peer: finding it, running a scenario, reading its statistics.

use super::*;

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
        // Already reaped by `finish` (or gone by itself): its pid may be
        // someone else's now, and `kill` would only complain.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
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
