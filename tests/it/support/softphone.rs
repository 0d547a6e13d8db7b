//! The project's softphone as a peer: `hotline-gw softphone …` as a child process.

use super::*;

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

    /// A phone that does not register: it answers (after 200 ms) the one
    /// call that reaches `127.0.0.1:port`, as user `user` (110 of the
    /// transfer directory, a citizen behind the outbound trunk), and stops
    /// after `run_s` seconds. `extra`: more options (audio, …).
    pub fn answering(user: &str, port: u16, run_s: u64, extra: &[&str]) -> Softphone {
        let mut args: Vec<String> = [
            "agent",
            "--no-register",
            "--user",
            user,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--answer-after-ms",
            "200",
            "--calls",
            "1",
            "--run-s",
            &run_s.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Softphone::start(&args)
    }

    /// Sends it a signal (`INT` as Ctrl-C does, `KILL`…).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for it to exit; returns its summary, or its stderr as the error.
    pub fn finish(self, limit: Duration) -> Result<serde_json::Value, String> {
        self.finish_with_code(limit).map(|(_, summary)| summary)
    }

    /// As [`finish`](Self::finish), with the exit code (0, or 3: not every call
    /// was answered).
    pub fn finish_with_code(
        mut self,
        limit: Duration,
    ) -> Result<(Option<i32>, serde_json::Value), String> {
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
                // 3: the run finished and printed its summary, but not every
                // call was answered (tests that expect failures read the summary).
                if !status.success() && status.code() != Some(3) {
                    return Err(format!("softphone exited with {status}: {err}"));
                }
                let line = out.lines().last().unwrap_or_default();
                return serde_json::from_str(line)
                    .map(|v| (status.code(), v))
                    .map_err(|e| format!("{e}: {out}"));
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                return Err("softphone did not finish in time".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `hotline-gw softphone agent --user U --password P --server <gw> <extra…>`:
/// an agent seat registering at the gateway.
pub fn agent(gw: &Gateway, user: impl ToString, password: &str, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--user".into(),
        user.to_string(),
        "--password".into(),
        password.into(),
        "--server".into(),
        gw.sip.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Softphone::start(&args)
}

impl Drop for Softphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
