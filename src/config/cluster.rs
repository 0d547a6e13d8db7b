//! `[cluster]`: this node's name and the lease that decides which node of a pair
//! answers calls (docs/cluster.md). Without the section the gateway runs alone.

use serde::Deserialize;

/// `[cluster]`, present only when the gateway runs as one of several nodes on
/// one PostgreSQL behind a SIP proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This node's name, unique in the cluster (letters, digits, `-`, `_`).
    pub node: String,
    /// How long the ACD lease lasts without renewal (database clock). A node
    /// that dies is replaced after at most this long.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// How often the holder renews the lease and every node beats its heart;
    /// also how often the standby tries to take a lapsed lease.
    #[serde(default = "default_renew_every_ms")]
    pub renew_every_ms: u64,
    /// After SIGTERM, how long calls in progress may go on before they are ended.
    #[serde(default = "default_drain_s")]
    pub drain_s: u64,
    /// How long a standby holds a new INVITE (100 Trying sent) in case it is
    /// about to take the lease: the proxy sends it calls only when the active
    /// node stopped answering. Past it, `503`. 0: refuse at once.
    #[serde(default = "default_standby_hold_ms")]
    pub standby_hold_ms: u64,
    /// A secret every node shares (16+ characters): a stopping node signs the
    /// callers it hands over with it, and the taking node accepts only signed
    /// ones. Without it a handover is trusted by the peer's source address.
    pub secret: Option<String>,
}

fn default_lease_ttl_ms() -> u64 {
    3000
}
fn default_renew_every_ms() -> u64 {
    500
}
fn default_drain_s() -> u64 {
    300
}
fn default_standby_hold_ms() -> u64 {
    // The lease lapses within its TTL; the standby asks every renewal period.
    default_lease_ttl_ms() + 2 * default_renew_every_ms()
}

impl ClusterSection {
    /// `(key, reason)` of the first bad setting.
    pub fn validate(&self, database: &str) -> Result<(), (&'static str, String)> {
        let name_ok = !self.node.is_empty()
            && self.node.len() <= 64
            && self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err((
                "cluster.node",
                "1-64 letters, digits, '-' or '_', unique in the cluster".into(),
            ));
        }
        if !(database.starts_with("postgres://") || database.starts_with("postgresql://")) {
            return Err((
                "cluster.node",
                "a cluster shares PostgreSQL: set store.database = \"postgres://…\"".into(),
            ));
        }
        if self.lease_ttl_ms < 500 {
            return Err(("cluster.lease_ttl_ms", "must be at least 500".into()));
        }
        if self.renew_every_ms == 0 || self.renew_every_ms * 3 > self.lease_ttl_ms {
            return Err((
                "cluster.renew_every_ms",
                "must be positive and at most a third of lease_ttl_ms (two renewals may fail before the lease lapses)".into(),
            ));
        }
        if self.standby_hold_ms > 30_000 {
            return Err((
                "cluster.standby_hold_ms",
                "at most 30000 (a caller waits that long in silence)".into(),
            ));
        }
        if self.drain_s == 0 {
            return Err(("cluster.drain_s", "must be at least 1".into()));
        }
        if self.secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err((
                "cluster.secret",
                "at least 16 characters (the same on every node)".into(),
            ));
        }
        Ok(())
    }
}
