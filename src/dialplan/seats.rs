//! Agents and queues as the dialplan files declare them: plain data, checked by
//! the loader, turned into the ACD's own configuration by the call layer.

use std::collections::BTreeMap;

use crate::acd::Strategy;

/// Where a caller goes after the queue's maximum wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// End the call with a callback record (missed calls are called back).
    Callback,
    /// Move the caller to another queue.
    Queue(String),
}

/// One queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDef {
    pub name: String,
    /// How the queue picks the next agent: the ACD's own type (not re-exported
    /// here), named in files as `longest_idle` (the default), `round_robin`,
    /// `fewest_calls` or `skills`.
    pub strategy: Strategy,
    pub ring_timeout_s: u64,
    pub wrap_up_s: u64,
    pub max_wait_s: u64,
    pub overflow: Overflow,
    pub skill_widen_after_s: u64,
    pub auto_pause_after_misses: u32,
    /// Member agents by id.
    pub agents: Vec<String>,
    /// Seats that need no REGISTER: SIP URIs with an IP host.
    pub static_members: Vec<String>,
    /// Concurrent calls each static member takes.
    pub static_seats: u32,
}

/// One agent.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentDef {
    pub id: String,
    pub name: String,
    /// The digest password; empty when the file gives HA1 hashes instead.
    pub password: String,
    /// `H(id:realm:password)` in hex (MD5: 32 digits, SHA-256: 64), lower case.
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
    /// Skill (usually a line number) → priority, 1 being the best.
    pub skills: BTreeMap<String, u8>,
}

impl std::fmt::Debug for AgentDef {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentDef")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("ha1_md5", &self.ha1_md5.as_ref().map(|_| "<redacted>"))
            .field(
                "ha1_sha256",
                &self.ha1_sha256.as_ref().map(|_| "<redacted>"),
            )
            .field("skills", &self.skills)
            .finish()
    }
}
