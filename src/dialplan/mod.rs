//! The dialplan: which numbers the gateway answers and where each one goes.
//!
//! Pure: [`Dialplan::route`] is a function of the plan and the called number; files
//! are read by [`load`], which the caller runs outside the signalling path. For now
//! a line is a number and a SIP target; the integration modes of DESIGN.md §1 build
//! on this registry.

#[cfg(test)]
mod agent_tests;
pub mod calendar;
mod file;
pub mod hours;
mod locate;
pub mod number;
pub mod outbound;
mod records;
mod route;
#[cfg(test)]
mod route_tests;
mod schema;
pub mod seats;
pub mod time;
mod values;
mod warnings;

use std::collections::HashMap;
use std::net::SocketAddr;

pub use file::{MIN_PASSWORD, check, check_sources, load, parse_sources};
pub use route::{CallFacts, Decision, DecisionView, Outcome};
pub use seats::{AgentDef, Overflow, QueueDef};
pub use warnings::{calendar_last_year, warnings};

/// The example dialplan (`dialplans/default/`), embedded for running outside a
/// checkout.
pub const DEFAULT_FILES: [(&str, &str); 6] = [
    (
        "agents.toml",
        include_str!("../../dialplans/default/agents.toml"),
    ),
    (
        "calendar.toml",
        include_str!("../../dialplans/default/calendar.toml"),
    ),
    (
        "lines.toml",
        include_str!("../../dialplans/default/lines.toml"),
    ),
    (
        "queues.toml",
        include_str!("../../dialplans/default/queues.toml"),
    ),
    (
        "transfers.toml",
        include_str!("../../dialplans/default/transfers.toml"),
    ),
    (
        "trunks.toml",
        include_str!("../../dialplans/default/trunks.toml"),
    ),
];

/// The embedded example dialplan, parsed.
pub fn embedded_default() -> Result<Dialplan, DialplanError> {
    let sources: Vec<(String, String)> = DEFAULT_FILES
        .iter()
        .map(|(n, t)| (format!("<embedded {n}>"), t.to_string()))
        .collect();
    parse_sources(&sources)
}

use crate::sip::Transport;

/// A dialplan error that names the file, line and key an engineer must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", crate::util::toml_where::place(.file, *.line, .key))]
pub struct DialplanError {
    pub file: String,
    /// 1-based line, 0 when the error concerns the whole file.
    pub line: usize,
    /// The offending key (`line[2].target`), or `-` when none applies.
    pub key: String,
    pub message: String,
}

/// Where a line's calls go: a SIP URI whose host is an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URI as configured.
    pub uri: String,
    /// The user part to put in the Request-URI; the called number when absent.
    pub user: Option<String>,
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// Where a line's calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to a SIP target.
    Sip(Target),
    /// Into an ACD queue (`queue:NAME`).
    Queue(String),
    /// Parallel answering: the legacy seats first, the 12345 queue as overflow
    /// (on busy, failure, no answer within `ring_time`, or outside the hours).
    Parallel {
        legacy: Target,
        ring_time: std::time::Duration,
        queue: String,
    },
}

/// How an old hotline is integrated (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The main number itself.
    #[default]
    Hotline,
    /// 直接合并: a department's local number absorbed into 12345.
    DirectMerge,
    /// 来电转移: a national number forwarded to 12345 (dialled, or via Diversion).
    CallForwarding,
    /// 并行接听: legacy seats first, 12345 as overflow.
    Parallel,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Hotline,
        Mode::DirectMerge,
        Mode::CallForwarding,
        Mode::Parallel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hotline => "hotline",
            Mode::DirectMerge => "direct_merge",
            Mode::CallForwarding => "call_forwarding",
            Mode::Parallel => "parallel",
        }
    }
}

/// One number the gateway answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: String,
    pub name: String,
    pub route: Route,
    pub mode: Mode,
    pub department: Option<String>,
    /// The department's transfer number (direct merge): agents transfer to it.
    pub transfer_number: Option<String>,
    /// The name of a prompt (a WAV under `prompts/`, without `.wav`) played
    /// before the caller is queued: "this line is now served by 12345".
    pub prompt: Option<String>,
    /// Opening hours of the legacy seats (parallel), parsed at load.
    pub hours: hours::Hours,
    /// The days the line is in service, inclusive (`YYYY-MM-DD`), as written.
    pub effective_from: Option<String>,
    pub effective_until: Option<String>,
    /// Working days a work order from this line has, on the holiday calendar.
    pub deadline_workdays: u32,
    /// Satisfaction survey after the agent hangs up; `None`: the gateway's default.
    pub survey: Option<bool>,
    /// Record calls; `None`: the gateway's default.
    pub record: Option<bool>,
    /// Where the line is written (`lines.toml:23`), for errors found later
    /// (a prompt the running gateway has not loaded).
    pub defined_at: String,
}

/// A work order's deadline when the line sets none: five working days.
pub const DEFAULT_DEADLINE_WORKDAYS: u32 = 5;

impl Line {
    /// The queue a line's callers wait in (also a parallel line's overflow).
    pub fn queue(&self) -> Option<&str> {
        match &self.route {
            Route::Queue(q) | Route::Parallel { queue: q, .. } => Some(q),
            Route::Sip(_) => None,
        }
    }
}

/// A carrier or legacy platform allowed to send calls, by source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    pub kind: TrunkKind,
    /// Source networks (`127.0.0.0/8`, `198.51.100.7`).
    pub sources: Vec<(std::net::IpAddr, u8)>,
    /// Where calls to this trunk go (legacy platforms).
    pub target: Option<Target>,
    /// Take the caller from P-Asserted-Identity on calls from this trunk.
    pub trusted: bool,
    /// What an outbound trunk allows (only for `kind = "outbound"`).
    pub outbound: Option<outbound::Outbound>,
}

/// What a trunk connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkKind {
    /// A carrier: citizens' calls come in over it.
    Carrier,
    /// An old department platform (a parallel line's legacy seats).
    Legacy,
    /// The way out for callbacks to citizens (`target`, `caller_id`, `allow`).
    Outbound,
}

impl TrunkKind {
    /// The name in dialplan files.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkKind::Carrier => "carrier",
            TrunkKind::Legacy => "legacy",
            TrunkKind::Outbound => "outbound",
        }
    }
}

impl std::fmt::Display for TrunkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Trunk {
    /// Whether `ip` is one of the trunk's source addresses.
    pub fn admits(&self, ip: std::net::IpAddr) -> bool {
        self.sources
            .iter()
            .any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// Whether `ip` is inside `net/bits`.
fn in_network(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (ip, net) {
        (V4(a), V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (V6(a), V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A number agents may transfer calls to (110/119/120/122, departments, parallel
/// hotlines). Nothing else can be dialled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub number: String,
    pub name: String,
    pub target: Target,
    /// The area codes whose callers this entry serves; empty: the default.
    pub areas: Vec<String>,
    /// `From` shows the hotline's line number, not the citizen's.
    pub from_line: bool,
}

/// The loaded line registry, with the agents, queues and transfer directory.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    lines: HashMap<String, Line>,
    pub queues: Vec<QueueDef>,
    pub agents: Vec<AgentDef>,
    pub transfers: Vec<Transfer>,
    pub trunks: Vec<Trunk>,
    /// Public holidays and make-up working days (`[[calendar]]`).
    pub calendar: calendar::Calendar,
    /// Minutes east of UTC for time rules (Asia/Shanghai: +480, no DST).
    pub utc_offset_minutes: i32,
}

impl Dialplan {
    pub fn new(lines: Vec<Line>) -> Dialplan {
        Dialplan {
            lines: lines.into_iter().map(|l| (l.number.clone(), l)).collect(),
            queues: Vec::new(),
            agents: Vec::new(),
            transfers: Vec::new(),
            trunks: Vec::new(),
            calendar: calendar::Calendar::default(),
            utc_offset_minutes: 480,
        }
    }

    /// The trunk a source address belongs to, if any.
    pub fn trunk_for(&self, ip: std::net::IpAddr) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.admits(ip))
    }

    /// A trunk by name.
    pub fn trunk(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The outbound trunk callbacks go out over (the first one listed).
    pub fn outbound_trunk(&self) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.kind == TrunkKind::Outbound)
    }

    /// The transfer-directory entry for a dialled number, if it is one (its
    /// default entry, for a number listed per area).
    pub fn transfer(&self, number: &str) -> Option<&Transfer> {
        self.transfer_for(number, &[])
    }

    /// The entry for a dialled number serving the first of `areas` (the
    /// caller's area code, then the one it dialled) that one serves; else the
    /// number's default entry; else its first (a number listed only per area:
    /// a caller from elsewhere still reaches someone).
    pub fn transfer_for(&self, number: &str, areas: &[&str]) -> Option<&Transfer> {
        let digits = number::digits_of(number)?;
        let mut entries = self.transfers.iter().filter(|t| t.number == digits);
        let first = entries.clone().next()?;
        areas
            .iter()
            .find_map(|a| entries.clone().find(|t| t.areas.iter().any(|x| x == a)))
            .or_else(|| entries.find(|t| t.areas.is_empty()))
            .or(Some(first))
    }

    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// What a plan holds, in one line (`dialplan check`): lines per mode, queues,
    /// agents, trunks, transfer numbers and the calendar's years.
    pub fn summary(&self) -> String {
        let modes: Vec<String> = Mode::ALL
            .iter()
            .map(|m| (m, self.lines().filter(|l| l.mode == *m).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(m, n)| format!("{n} {}", m.as_str()))
            .collect();
        let years: Vec<String> = self
            .calendar
            .years()
            .iter()
            .map(|y| y.to_string())
            .collect();
        format!(
            "{} line(s) ({}), {} queue(s), {} agent(s), {} trunk(s), {} transfer number(s), calendar {}",
            self.len(),
            if modes.is_empty() {
                "none".into()
            } else {
                modes.join(", ")
            },
            self.queues.len(),
            self.agents.len(),
            self.trunks.len(),
            self.transfers.len(),
            if years.is_empty() {
                "empty".into()
            } else {
                years.join(", ")
            },
        )
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_known_numbers_only() {
        let plan = parse_sources(&[(
            "lines.toml".into(),
            "[[line]]\nnumber = \"12345\"\nname = \"hotline\"\ntarget = \"sip:127.0.0.1:5070\"\n"
                .into(),
        )])
        .unwrap();
        assert_eq!(plan.lookup("12345").unwrap().name, "hotline");
        assert_eq!(plan.lookup("+8612345").unwrap().name, "hotline");
        assert_eq!(
            plan.lookup("0351-12345").unwrap().name,
            "hotline",
            "another city's 12345 falls back"
        );
        assert!(plan.lookup("12346").is_none());
    }
}
