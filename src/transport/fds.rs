//! File descriptors: the open-file limit raised at start, and the number a
//! configuration may need checked against it.
//!
//! Why: every anchored call holds four UDP sockets in the relay (RTP and RTCP
//! per leg), and a recorded one a WAV file too; every SIP TCP connection holds
//! one. With the usual soft limit of 1,024 the relay's binds would fail at about
//! 250 calls. `hotline-gw run` raises the soft limit to the hard one, then
//! refuses a configuration whose budget does not fit, naming the keys to change.

use std::fmt;

use tracing::{info, warn};

use super::TransportError;
use crate::config::Config;

/// Sockets the relay binds per anchored call (RTP + RTCP for each of two legs).
pub const SOCKETS_PER_CALL: u64 = 4;
/// HTTP connections open at once by default (`[http] max_connections`: the API,
/// the wallboard, /metrics scrapers); the accept loop closes any over it.
pub const HTTP_FDS: u64 = 256;
/// The store's pool (SQLite: 4 connections of 3 files; PostgreSQL: 8 sockets).
pub const STORE_FDS: u64 = 12;
/// Everything else: standard streams, the SIP sockets and listeners, the HTTP
/// listener, event loops and wakers, prompts being read, logs, the SLA webhook.
pub const OTHER_FDS: u64 = 64;

/// The file descriptors a configuration may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Calls that can be anchored at once: `calls.max_concurrent`, or fewer
    /// when the RTP port range runs out first (two pairs per call).
    pub anchored_calls: u64,
    /// Descriptors per anchored call: its sockets, and a WAV file if recorded.
    pub per_call: u64,
    /// `sip.tcp_max_connections` (0 with TCP off).
    pub tcp: u64,
    /// `http.max_connections`.
    pub http: u64,
    /// The store's pool and the ticket deliveries in flight.
    pub store: u64,
    pub other: u64,
}

impl Budget {
    /// The budget of `cfg`; `recording` when any call may be recorded (the
    /// `[media] record` default or a line's `record = true`).
    pub fn of(cfg: &Config, recording: bool) -> Budget {
        let m = &cfg.media;
        let anchored_calls = if m.enabled {
            let pairs = port_pairs(m.rtp_port_min, m.rtp_port_max);
            (cfg.calls.max_concurrent as u64).min(pairs / 2)
        } else {
            0
        };
        Budget {
            anchored_calls,
            per_call: SOCKETS_PER_CALL + u64::from(recording),
            tcp: if cfg.sip.tcp {
                cfg.sip.tcp_max_connections as u64
            } else {
                0
            },
            http: cfg.http.max_connections as u64,
            store: STORE_FDS + cfg.tickets.concurrency as u64,
            other: OTHER_FDS,
        }
    }

    pub fn total(&self) -> u64 {
        self.anchored_calls * self.per_call + self.tcp + self.http + self.store + self.other
    }

    /// Whether the budget fits an open-file limit of `limit`; the error says
    /// which keys to change.
    pub fn check(&self, limit: u64) -> Result<(), String> {
        if self.total() <= limit {
            return Ok(());
        }
        Err(format!(
            "this configuration may need {self} file descriptors, but the open-file limit is \
             {limit}: lower calls.max_concurrent or narrow media.rtp_port_min..rtp_port_max \
             (each anchored call takes {} descriptors), or lower sip.tcp_max_connections or http.max_connections; or \
             raise the hard limit (`ulimit -Hn`, LimitNOFILE= in a systemd unit, nofile in \
             /etc/security/limits.conf)",
            self.per_call
        ))
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} per call × {} anchored calls + {} TCP + {} HTTP + {} store + {} other",
            self.total(),
            self.per_call,
            self.anchored_calls,
            self.tcp,
            self.http,
            self.store,
            self.other
        )
    }
}

/// RTP/RTCP pairs in `first..=last`: even ports whose odd neighbour is in
/// range (as `media::pool::PortPool` hands them out).
pub fn port_pairs(first: u16, last: u16) -> u64 {
    let start = u64::from(first) + u64::from(first % 2);
    let last = u64::from(last);
    if last <= start {
        0
    } else {
        (last - start).div_ceil(2)
    }
}

/// At start: raises the open-file limit, checks `cfg`'s budget against it
/// (with `plan`'s lines, which may record) and logs both.
pub fn prepare(cfg: &Config, plan: &crate::dialplan::Dialplan) -> Result<Budget, TransportError> {
    let recording = cfg.media.record || plan.lines().any(|l| l.record == Some(true));
    let budget = Budget::of(cfg, recording);
    let (before, limit) = match raise_limit() {
        Ok(limits) => limits,
        Err(e) => {
            let (soft, _) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .map_err(|e| TransportError::Io(e.into()))?;
            warn!(error = %e, limit = soft, "the open-file limit could not be raised");
            (soft, soft)
        }
    };
    budget
        .check(limit)
        .map_err(TransportError::FileDescriptors)?;
    info!(budget = %budget, limit, raised_from = before, "file descriptors");
    Ok(budget)
}

/// Raises the soft open-file limit to the hard limit; returns `(before, now)`.
pub fn raise_limit() -> std::io::Result<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    let (now, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    Ok((soft, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = crate::config::DEFAULT_TOML.to_string() + extra;
        Config::parse("test.toml", &text).unwrap()
    }

    #[test]
    fn pairs_match_the_port_pool() {
        for (lo, hi) in [
            (20000, 29999),
            (20001, 20010),
            (10000, 32767),
            (30000, 30007),
        ] {
            let pool = crate::media::pool::PortPool::new(lo, hi);
            assert_eq!(port_pairs(lo, hi), pool.capacity() as u64, "{lo}..={hi}");
        }
        assert_eq!(port_pairs(5000, 5000), 0);
        assert_eq!(port_pairs(65534, 65535), 1);
    }

    #[test]
    fn the_default_configuration_needs_about_twelve_thousand() {
        let b = Budget::of(&config(""), false);
        // 2,000 calls (the ports would allow 2,500), 4 sockets each.
        assert_eq!(b.anchored_calls, 2000);
        assert_eq!(b.per_call, 4);
        assert_eq!(b.tcp, 4096);
        assert_eq!(
            b.total(),
            8000 + 4096 + HTTP_FDS + STORE_FDS + 8 + OTHER_FDS
        );
        assert!(b.check(1024).is_err());
        assert!(b.check(b.total()).is_ok());
        assert_eq!(
            b.to_string(),
            "12436 = 4 per call × 2000 anchored calls + 4096 TCP + 256 HTTP + 20 store + 64 other"
        );
    }

    #[test]
    fn the_port_range_caps_the_anchored_calls_and_recording_adds_a_file() {
        let mut cfg = config("");
        cfg.calls.max_concurrent = 20_000;
        cfg.media.rtp_port_min = 10_000;
        cfg.media.rtp_port_max = 32_767;
        let b = Budget::of(&cfg, true);
        assert_eq!(b.anchored_calls, 11_384 / 2);
        assert_eq!(b.per_call, 5);
        cfg.media.enabled = false;
        cfg.sip.tcp = false;
        let b = Budget::of(&cfg, true);
        assert_eq!((b.anchored_calls, b.tcp), (0, 0));
    }

    #[test]
    fn the_lab_profile_fits_a_hard_limit_of_twenty_thousand() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lab.toml");
        let cfg = Config::load(&path).unwrap();
        let b = Budget::of(&cfg, false);
        // As its comment says: 4,192 anchored calls, 18,132 in all.
        assert_eq!(b.anchored_calls, 4192);
        assert_eq!(b.total(), 18_132);
        assert!(b.check(20_000).is_ok());
    }

    #[test]
    fn an_over_budget_config_is_told_what_to_change() {
        let b = Budget::of(&config(""), false);
        let e = b.check(1024).unwrap_err();
        for key in [
            "calls.max_concurrent",
            "media.rtp_port_min",
            "sip.tcp_max_connections",
            "limit is 1024",
            "12436",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
    }
}
