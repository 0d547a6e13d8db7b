//! The dialplan: which numbers the gateway answers and where each one goes.
//!
//! Pure: [`Dialplan::route`] is a function of the plan and the called number; files
//! are read by [`load`], which the caller runs outside the signalling path. For now
//! a line is a number and a SIP target; the integration modes of DESIGN.md §1 build
//! on this registry.

mod file;
pub mod seats;

use std::collections::HashMap;
use std::net::SocketAddr;

pub use file::{load, parse_sources};
pub use seats::{AgentDef, Overflow, QueueDef, Strategy};

/// The example dialplan (`dialplans/default/`), embedded for running outside a
/// checkout.
pub const DEFAULT_FILES: [(&str, &str); 3] = [
    (
        "agents.toml",
        include_str!("../../dialplans/default/agents.toml"),
    ),
    (
        "lines.toml",
        include_str!("../../dialplans/default/lines.toml"),
    ),
    (
        "queues.toml",
        include_str!("../../dialplans/default/queues.toml"),
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
#[error("{file}:{line}: {key}: {message}")]
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
}

/// One number the gateway answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: String,
    pub name: String,
    pub route: Route,
}

/// A number agents may transfer calls to (110/119/120/122, departments, parallel
/// hotlines). Nothing else can be dialled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub number: String,
    pub name: String,
    pub target: Target,
}

/// The loaded line registry, with the agents, queues and transfer directory.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    lines: HashMap<String, Line>,
    pub queues: Vec<QueueDef>,
    pub agents: Vec<AgentDef>,
    pub transfers: Vec<Transfer>,
}

impl Dialplan {
    pub fn new(lines: Vec<Line>) -> Dialplan {
        Dialplan {
            lines: lines.into_iter().map(|l| (l.number.clone(), l)).collect(),
            queues: Vec::new(),
            agents: Vec::new(),
            transfers: Vec::new(),
        }
    }

    /// The transfer-directory entry for a dialled number, if it is one.
    pub fn transfer(&self, number: &str) -> Option<&Transfer> {
        let digits = normalize(number);
        self.transfers.iter().find(|t| t.number == digits)
    }

    /// The line a called number reaches, if any. Visual separators (`-`, `.`,
    /// spaces, parentheses) in the dialled string are ignored.
    pub fn route(&self, called: &str) -> Option<&Line> {
        if let Some(line) = self.lines.get(called) {
            return Some(line);
        }
        let digits = normalize(called);
        self.lines.get(&digits)
    }

    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Drops visual separators (RFC 3966 `visual-separator`) from a dialled number.
pub fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')'))
        .collect()
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
        assert_eq!(plan.route("12345").unwrap().name, "hotline");
        assert_eq!(plan.route("123-45").unwrap().name, "hotline");
        assert!(plan.route("12346").is_none());
        assert!(plan.route("0012345").is_none());
    }
}
