//! `[sip]`: listen address, message size, timers, TCP caps and what strangers may
//! send, with their checks.

use std::net::SocketAddr;

use serde::Deserialize;

use super::Config;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    #[serde(default = "yes")]
    pub udp: bool,
    #[serde(default = "yes")]
    pub tcp: bool,
    /// Address written into Via and Contact; the listen address when unset.
    pub advertise: Option<SocketAddr>,
    /// Largest message accepted, in bytes.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    #[serde(default)]
    pub timers: TimersConfig,
    /// Rate limits for sources that are neither trunks nor registered agents.
    #[serde(default)]
    pub strangers: StrangersConfig,
    /// TCP connections open at once, accepted and opened by the gateway (an
    /// eighth is kept for the ones it opens). Each takes a file descriptor.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: usize,
    /// Accepted TCP connections open at once from one IP address (one IPv6
    /// /64); trunks and addresses agents registered from are exempt.
    #[serde(default = "default_tcp_max_per_source")]
    pub tcp_max_per_source: usize,
    /// Seconds an accepted TCP connection may go without a complete message
    /// until it has carried one from a trunk or an agent's address.
    #[serde(default = "default_tcp_first_message_s")]
    pub tcp_first_message_s: u64,
    /// Seconds a TCP connection may receive nothing before it is closed; longer
    /// than `registrar.max_expires_s` and `calls.max_duration_s`.
    #[serde(default = "default_tcp_idle_s")]
    pub tcp_idle_s: u64,
}

/// `[sip.strangers]`: what a source that is neither a trunk nor a registered
/// agent may send (requests per second, sustained and in a burst). Over it,
/// requests are dropped unanswered and counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrangersConfig {
    pub per_source_per_s: f64,
    pub per_source_burst: f64,
    pub total_per_s: f64,
    pub total_burst: f64,
}

impl Default for StrangersConfig {
    fn default() -> Self {
        let d = crate::call::GuardConfig::default();
        StrangersConfig {
            per_source_per_s: d.per_source_rate,
            per_source_burst: d.per_source_burst,
            total_per_s: d.total_rate,
            total_burst: d.total_burst,
        }
    }
}

impl StrangersConfig {
    pub fn to_guard(&self) -> crate::call::GuardConfig {
        crate::call::GuardConfig {
            per_source_rate: self.per_source_per_s,
            per_source_burst: self.per_source_burst,
            total_rate: self.total_per_s,
            total_burst: self.total_burst,
            ..crate::call::GuardConfig::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimersConfig {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_max_message() -> usize {
    65_535
}

fn default_tcp_max_connections() -> usize {
    4096
}

fn default_tcp_max_per_source() -> usize {
    64
}

fn default_tcp_first_message_s() -> u64 {
    10
}

fn default_tcp_idle_s() -> u64 {
    10_800
}

impl Config {
    /// The `[sip] tcp_*` keys: `Err((key, message))`.
    pub(super) fn check_tcp(&self) -> Result<(), (&'static str, String)> {
        let s = &self.sip;
        if s.tcp_max_connections < 8 {
            return Err(("sip.tcp_max_connections", "must be at least 8".into()));
        }
        if s.tcp_max_per_source == 0 || s.tcp_max_per_source > s.tcp_max_connections {
            return Err((
                "sip.tcp_max_per_source",
                "must be between 1 and sip.tcp_max_connections".into(),
            ));
        }
        if s.tcp_first_message_s == 0 {
            return Err(("sip.tcp_first_message_s", "must be at least 1".into()));
        }
        let longest = u64::from(self.registrar.max_expires_s).max(self.calls.max_duration_s);
        if s.tcp_idle_s <= longest {
            return Err((
                "sip.tcp_idle_s",
                format!(
                    "must be longer than registrar.max_expires_s and calls.max_duration_s \
                     ({longest} s): a registered agent or a call in progress may say nothing that long"
                ),
            ));
        }
        Ok(())
    }

    /// The `[sip.strangers]` keys: `Err((key, message))`.
    pub(super) fn check_strangers(&self) -> Result<(), (&'static str, &'static str)> {
        let st = &self.sip.strangers;
        for (key, v) in [
            ("sip.strangers.per_source_per_s", st.per_source_per_s),
            ("sip.strangers.per_source_burst", st.per_source_burst),
            ("sip.strangers.total_per_s", st.total_per_s),
            ("sip.strangers.total_burst", st.total_burst),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err((key, "must be a number >= 0"));
            }
        }
        if st.per_source_burst > 0.0 && st.per_source_burst < 1.0
            || st.total_burst > 0.0 && st.total_burst < 1.0
        {
            return Err((
                "sip.strangers.per_source_burst",
                "a burst under 1 admits nothing: use 0 to refuse strangers outright, or at least 1",
            ));
        }
        Ok(())
    }
}
