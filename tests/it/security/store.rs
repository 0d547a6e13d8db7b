//! Attacker tests: store (see mod.rs). Issue 14 item 9: a full disk is an outage
//! like an unreachable database. The records wait (and new calls get `503
//! store.backlog` while the backlog is full), none is lost once space returns,
//! and no caller number reaches the log meanwhile.
//!
//! The real binary keeps its SQLite file on a small tmpfs that the test fills with
//! a ballast file. Mounting needs root: without it the test is skipped, loudly,
//! except under `CI=true`, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The caller number of every call placed: it must never appear in the log.
const CALLER: &str = "13900001111";
const CALLS: u64 = 12;

/// A tmpfs mounted for the test; unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount(8) syntax) at `dir`; `None` (loudly) when
    /// this process may not mount, a failure under `CI=true`.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("mounting a tmpfs is required under CI=true (run as root): {why}");
                }
                eprintln!(
                    "\n========================================================\n\
                     SKIPPED (disk-full store test): cannot mount a tmpfs: {why}\n\
                     Run the tests as root to include it.\n\
                     ========================================================\n"
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [64 * 1024, 4096, 512] {
        let block = vec![0x5au8; chunk];
        // A tmpfs of a few MiB: bounded by its size.
        while f.write_all(&block).is_ok() && f.flush().is_ok() {
            written += chunk as u64;
        }
    }
    written
}

/// Rows in the call-record table of the SQLite file at `db`.
fn stored_calls(db: &Path) -> i64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection;
            let url = format!("sqlite://{}?mode=ro", db.display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM call_records")
                .fetch_one(&mut c)
                .await
                .unwrap()
        })
}

#[test]
fn a_full_disk_loses_no_call_record_and_logs_no_caller_number() {
    let scratch = TempDir::new("store-full");
    let Some(disk) = Tmpfs::mount(&scratch.0.join("disk"), "2m") else {
        return;
    };
    let db = disk.0.join("calls.db");
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nagents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent\"\npassword = \"secret-2001\"\n"
        .into();
    // A small queue, so that the backlog (and its 503) comes within a few calls.
    opts.extra_config = format!(
        "[store]\ndatabase = \"sqlite:{}\"\nqueue_capacity = 4\nbatch_max = 2\n",
        db.display()
    );
    let gw = Gateway::start(opts);
    let agent = agent(
        &gw,
        "2001",
        "secret-2001",
        &["--answer-after-ms", "20", "--run-s", "60"],
    );
    gw.wait_json(
        "/api/v1/agents",
        "the agent to register",
        Duration::from_secs(15),
        |v| v["agents"][0]["registered"] == true,
    );

    // The disk fills up.
    let ballast = disk.0.join("ballast");
    assert!(fill(&ballast) > 0, "nothing could be written to the tmpfs");

    let calls = Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--from".into(),
        CALLER.into(),
        "--server".into(),
        gw.sip.to_string(),
        "--count".into(),
        CALLS.to_string(),
        "--rate".into(),
        "4".into(),
        "--hangup-after-ms".into(),
        "100".into(),
    ])
    .finish(Duration::from_secs(60))
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
    let answered = calls["answered"].as_u64().unwrap();
    assert_eq!(
        answered + calls["failed"].as_u64().unwrap(),
        CALLS,
        "{calls}"
    );
    // The writer met the full disk and kept the records; later callers were
    // turned away with 503 while the backlog was full, and counted.
    gw.wait_health(
        "write errors on the full disk",
        Duration::from_secs(20),
        |h| h["store"]["write_errors"].as_u64().unwrap_or(0) > 0,
    );
    let h = gw.health();
    assert!(h["store"]["backlog"] == true, "{h}");
    assert!(gw.ended("store.backlog") >= 1, "{h}");
    assert_eq!(h["store"]["dropped"], 0, "{h}");

    // Space returns: every call placed is written, answered or turned away.
    std::fs::remove_file(&ballast).unwrap();
    gw.wait_health(
        "every record written, calls taken again",
        Duration::from_secs(60),
        |h| {
            h["store"]["written"].as_u64() == Some(CALLS)
                && h["store"]["held"] == 0
                && h["store"]["queued"] == 0
                && h["store"]["backlog"] == false
        },
    );
    assert_eq!(stored_calls(&db), CALLS as i64);
    let h = gw.health();
    assert_eq!(h["store"]["dropped"], 0, "{h}");

    let log = gw.log();
    assert!(
        log.contains("database write failed; retrying"),
        "the full disk was not met:\n{log}"
    );
    assert!(!log.contains(CALLER), "a caller number in the log:\n{log}");
    assert!(!log.contains("refuses the write"), "{log}");
    drop(agent);
    drop(gw);
}
