//! The dialplan files' schema: what serde reads, before any checking.
//! Unknown keys are refused here (`deny_unknown_fields`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Mode;
use crate::acd::Strategy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DialplanFile {
    /// Offset of local time for time rules, `+08:00` (Asia/Shanghai) by default.
    pub(super) utc_offset: Option<String>,
    #[serde(default)]
    pub(super) line: Vec<LineFile>,
    #[serde(default)]
    pub(super) queue: Vec<QueueFile>,
    #[serde(default)]
    pub(super) agent: Vec<AgentFile>,
    #[serde(default)]
    pub(super) transfer: Vec<TransferFile>,
    #[serde(default)]
    pub(super) trunk: Vec<TrunkFile>,
    #[serde(default)]
    pub(super) calendar: Vec<CalendarFile>,
}

/// One year of the working-day calendar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CalendarFile {
    pub(super) year: i32,
    /// Where the dates come from, or a warning that they are unverified.
    #[allow(dead_code)]
    pub(super) note: Option<String>,
    #[serde(default)]
    pub(super) holidays: Vec<String>,
    /// Make-up working days on weekends (调休).
    #[serde(default)]
    pub(super) workdays: Vec<String>,
}

/// An entry of the transfer directory: the only numbers agents may transfer to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferFile {
    /// As the agent dials it: 110, 119, 120, 122, a department's number…
    pub(super) number: String,
    pub(super) name: String,
    /// `sip:[user@]IP[:port][;transport=tcp]` of the trunk or platform.
    pub(super) target: String,
    /// The area codes (`0351`, `0571`…) whose callers this entry serves: 110
    /// of the caller's city. Empty: every caller no other entry of the same
    /// number serves.
    #[serde(default)]
    pub(super) areas: Vec<String>,
    /// What `From` shows the target: `caller` (the citizen's number, the
    /// default) or `line` (the hotline's number). `P-Asserted-Identity`
    /// carries the citizen's number either way.
    #[serde(default)]
    pub(super) from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueueFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) strategy: Strategy,
    #[serde(default = "default_ring_timeout")]
    pub(super) ring_timeout_s: u64,
    #[serde(default = "default_wrap_up")]
    pub(super) wrap_up_s: u64,
    #[serde(default = "default_max_wait")]
    pub(super) max_wait_s: u64,
    /// `callback` or `queue:NAME`.
    #[serde(default = "default_overflow")]
    pub(super) overflow: String,
    #[serde(default = "default_widen")]
    pub(super) skill_widen_after_s: u64,
    #[serde(default = "default_misses")]
    pub(super) auto_pause_after_misses: u32,
    #[serde(default)]
    pub(super) agents: Vec<String>,
    #[serde(default)]
    pub(super) static_members: Vec<String>,
    /// Concurrent calls each static member takes (a sipp UAS is a room of seats).
    #[serde(default = "one")]
    pub(super) static_seats: u32,
}

fn one() -> u32 {
    1
}

fn default_ring_timeout() -> u64 {
    15
}
fn default_wrap_up() -> u64 {
    5
}
fn default_max_wait() -> u64 {
    300
}
fn default_overflow() -> String {
    "callback".into()
}
fn default_widen() -> u64 {
    30
}
fn default_misses() -> u32 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentFile {
    pub(super) id: String,
    pub(super) name: String,
    /// The digest password (8 characters or more); or, so that no password is
    /// kept on disk, `ha1_md5` and/or `ha1_sha256`: the hex of
    /// `H(id:realm:password)` with the registrar's realm.
    pub(super) password: Option<String>,
    pub(super) ha1_md5: Option<String>,
    pub(super) ha1_sha256: Option<String>,
    /// Skill → priority (1 is best), e.g. `{ "12345" = 1, "12315" = 2 }`.
    #[serde(default)]
    pub(super) skills: BTreeMap<String, u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LineFile {
    /// The number as callers dial it (digits only).
    pub(super) number: String,
    /// A human name for logs and the wallboard.
    pub(super) name: String,
    /// `hotline` (default), `direct_merge`, `call_forwarding`, `parallel`.
    #[serde(default)]
    pub(super) mode: Mode,
    pub(super) department: Option<String>,
    /// The ACD queue callers wait in (for parallel lines: the overflow queue).
    pub(super) queue: Option<String>,
    /// Instead of a queue: `sip:[user@]IP[:port][;transport=tcp]`, or `queue:NAME`.
    pub(super) target: Option<String>,
    pub(super) prompt: Option<String>,
    pub(super) transfer_number: Option<String>,
    /// Parallel lines: the legacy platform's trunk, rung first.
    pub(super) legacy_trunk: Option<String>,
    /// Parallel lines: how long the legacy seats ring before 12345 takes over.
    pub(super) ring_time_s: Option<u64>,
    /// Parallel lines: when the legacy seats answer at all.
    #[serde(default)]
    pub(super) hours: Vec<String>,
    pub(super) effective_from: Option<String>,
    pub(super) effective_until: Option<String>,
    /// Working days a work order from this line has (on the holiday calendar);
    /// [`DEFAULT_DEADLINE_WORKDAYS`](super::DEFAULT_DEADLINE_WORKDAYS) when unset.
    pub(super) deadline_workdays: Option<u32>,
    /// Ask the caller for a satisfaction rating when the agent hangs up first;
    /// `[media] survey` when unset.
    pub(super) survey: Option<bool>,
    /// Record the line's calls; `[media] record` when unset.
    pub(super) record: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrunkFile {
    pub(super) name: String,
    /// `carrier` or `legacy`.
    pub(super) kind: String,
    /// Source addresses or networks the trunk sends from.
    #[serde(default)]
    pub(super) sources: Vec<String>,
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) trusted: bool,
    /// Outbound trunks: the number citizens see.
    pub(super) caller_id: Option<String>,
    /// Outbound trunks: the number patterns that may be dialled.
    #[serde(default)]
    pub(super) allow: Vec<String>,
    /// Outbound trunks: calls at once.
    pub(super) max_concurrent: Option<usize>,
    /// Outbound trunks: new calls per second.
    pub(super) cps: Option<u32>,
}
