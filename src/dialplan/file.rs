//! Reading dialplan files: `*.toml` in the dialplan directory, each holding
//! `[[line]]` tables. Unknown keys are errors, and every error names file:line:key.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use super::{Dialplan, DialplanError, Line, Target};
use crate::sip::Transport;
use crate::sip::message::SipUri;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialplanFile {
    #[serde(default)]
    line: Vec<LineFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFile {
    /// The number as callers dial it (digits only).
    number: String,
    /// A human name for logs and the wallboard.
    name: String,
    /// `sip:[user@]IP[:port][;transport=tcp]`.
    target: String,
}

/// Loads every `*.toml` file of a directory, in name order.
pub fn load(dir: &Path) -> Result<Dialplan, DialplanError> {
    let whole = |message: String| DialplanError {
        file: dir.display().to_string(),
        line: 0,
        key: "-".into(),
        message,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| whole(format!("cannot read the dialplan directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(whole("no *.toml dialplan files".into()));
    }
    let mut sources = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| DialplanError {
            file: p.display().to_string(),
            line: 0,
            key: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        sources.push((p.display().to_string(), text));
    }
    parse_sources(&sources)
}

/// Parses and validates dialplan sources given as (file name, text).
pub fn parse_sources(sources: &[(String, String)]) -> Result<Dialplan, DialplanError> {
    let mut lines: Vec<(Line, String, usize)> = Vec::new();
    for (file, text) in sources {
        let parsed: DialplanFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            DialplanError {
                file: file.clone(),
                line,
                key: key_of_error(e.message()),
                message: e.message().to_string(),
            }
        })?;
        for (i, l) in parsed.line.into_iter().enumerate() {
            let at = find_line(text, &l.number);
            let err = |key: &str, message: String| DialplanError {
                file: file.clone(),
                line: at,
                key: format!("line[{i}].{key}"),
                message,
            };
            if l.number.is_empty() || !l.number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("number", format!("{:?} must be digits only", l.number)));
            }
            if l.name.trim().is_empty() {
                return Err(err("name", "must not be empty".into()));
            }
            let target = parse_target(&l.target).map_err(|m| err("target", m))?;
            if let Some((_, other_file, other_line)) =
                lines.iter().find(|(x, _, _)| x.number == l.number)
            {
                return Err(err(
                    "number",
                    format!(
                        "{} is already defined at {other_file}:{other_line}",
                        l.number
                    ),
                ));
            }
            lines.push((
                Line {
                    number: l.number,
                    name: l.name,
                    target,
                },
                file.clone(),
                at,
            ));
        }
    }
    Ok(Dialplan::new(
        lines.into_iter().map(|(l, _, _)| l).collect(),
    ))
}

fn parse_target(text: &str) -> Result<Target, String> {
    let uri = SipUri::parse(text)?;
    if &*uri.scheme != "sip" {
        return Err(format!("{text:?}: only sip: targets are supported"));
    }
    let ip: IpAddr = uri.ip().ok_or_else(|| {
        format!("{text:?}: the host must be an IP address (DNS lookups are not supported)")
    })?;
    let transport = match uri.transport.as_deref() {
        None | Some("udp") => Transport::Udp,
        Some("tcp") => Transport::Tcp,
        Some(other) => return Err(format!("{text:?}: transport {other:?} is not supported")),
    };
    Ok(Target {
        uri: text.to_string(),
        user: uri.user.map(|u| u.to_string()),
        addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)),
        transport,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where a number is defined, for error messages about it.
fn find_line(text: &str, number: &str) -> usize {
    let needle = format!("\"{number}\"");
    text.lines()
        .position(|l| l.contains("number") && l.contains(&needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Pulls the key out of serde messages like "unknown field `tagret`, expected …".
fn key_of_error(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Dialplan, DialplanError> {
        parse_sources(&[("d.toml".into(), text.into())])
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let e = one("[[line]]\nnumber = \"12345\"\nname = \"x\"\ntagret = \"sip:127.0.0.1\"\n")
            .unwrap_err();
        assert_eq!(e.file, "d.toml");
        assert_eq!(e.line, 4);
        assert_eq!(e.key, "tagret");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = one("[[line]]\nnumber = \"12a45\"\nname = \"x\"\ntarget = \"sip:127.0.0.1\"\n")
            .unwrap_err();
        assert_eq!(e.key, "line[0].number");
        let e = one("[[line]]\nnumber = \"1\"\nname = \"x\"\ntarget = \"sip:pbx.example\"\n")
            .unwrap_err();
        assert!(e.message.contains("IP address"), "{e}");
        let dup = "[[line]]\nnumber = \"1\"\nname = \"x\"\ntarget = \"sip:127.0.0.1\"\n";
        let e = parse_sources(&[("a.toml".into(), dup.into()), ("b.toml".into(), dup.into())])
            .unwrap_err();
        assert!(e.message.contains("a.toml:2"), "{e}");
    }

    #[test]
    fn tcp_target() {
        let t = parse_target("sip:127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.addr.port(), 5070);
    }
}
