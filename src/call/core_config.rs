//! What the core needs to know about its deployment.

use std::time::Duration;

use super::{GuardConfig, MediaConfig};
use crate::registrar::RegistrarConfig;
use crate::sip::transaction::LayerConfig;

/// What the core needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub layer: LayerConfig,
    /// `host:port` for our Contact header.
    pub contact_host: String,
    pub max_calls: usize,
    pub retry_after_s: u32,
    pub ring_timeout: Duration,
    pub max_duration: Duration,
    pub max_message_bytes: usize,
    /// This core's shard number, embedded in outgoing Call-IDs.
    pub shard: u16,
    /// How agents' REGISTERs are authenticated.
    pub registrar: RegistrarConfig,
    /// Work-order stubs are kept: the agent's INVITE names the call's stub
    /// (`X-Hotline-Ticket`).
    pub tickets: bool,
    /// Anchor RTP at the gateway's relay; `None` relays SDP end to end.
    pub media: Option<MediaConfig>,
    /// What sources that are neither trunks nor registered agents may send.
    pub strangers: GuardConfig,
    /// A node of a cluster: every answered REGISTER's bindings and every answer
    /// go out (`Core::poll_registration`, `Core::poll_answer`) for the database
    /// the nodes share.
    pub clustered: bool,
    /// Start as a standby (a cluster node takes calls once it holds the lease).
    pub start_standby: bool,
    /// How long a standby holds a new INVITE in case it takes the lease
    /// (`None`: refuse at once).
    pub standby_hold: Option<Duration>,
    /// The cluster's shared secret: a handover claim must be signed with it
    /// (HMAC-SHA256), so a forged source address claims nothing.
    pub cluster_secret: Option<Vec<u8>>,
}

impl Default for CoreConfig {
    /// A core on 127.0.0.1:5060 with RFC timers and the shipped call limits.
    fn default() -> Self {
        CoreConfig {
            layer: LayerConfig {
                timers: Default::default(),
                sent_by: "127.0.0.1:5060".into(),
            },
            contact_host: "127.0.0.1:5060".into(),
            max_calls: 2000,
            retry_after_s: 30,
            ring_timeout: Duration::from_secs(60),
            max_duration: Duration::from_secs(7200),
            max_message_bytes: 65_535,
            shard: 0,
            registrar: RegistrarConfig::default(),
            tickets: true,
            media: None,
            strangers: GuardConfig::default(),
            clustered: false,
            start_standby: false,
            standby_hold: None,
            cluster_secret: None,
        }
    }
}
