//! Reading dialplan files: `*.toml` in the dialplan directory, each holding
//! `[[line]]`, `[[queue]]` and `[[agent]]` tables in any mix. Unknown keys are
//! errors, and every error names file:line:key.

use std::path::Path;

use super::locate::{Origin, diagnose};
use super::records::{References, line_def, queue_def};
use super::schema::DialplanFile;
use super::seats::{AgentDef, QueueDef};
use super::values::{parse_network, parse_offset, parse_target};
use super::{Dialplan, DialplanError, Line, Mode, Route, Transfer, Trunk, TrunkKind};
use crate::util::toml_where::KeyLines;

/// Loads every `*.toml` file of a directory, in name order.
pub fn load(dir: &Path) -> Result<Dialplan, DialplanError> {
    check(dir).map_err(|mut errors| errors.remove(0))
}

/// Like [`load`], reporting every error found.
pub fn check(dir: &Path) -> Result<Dialplan, Vec<DialplanError>> {
    let whole = |message: String| DialplanError {
        file: dir.display().to_string(),
        line: 0,
        key: "-".into(),
        message,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| vec![whole(format!("cannot read the dialplan directory: {e}"))])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![whole("no *.toml dialplan files".into())]);
    }
    let mut sources = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| {
            vec![DialplanError {
                file: p.display().to_string(),
                line: 0,
                key: "-".into(),
                message: format!("cannot read: {e}"),
            }]
        })?;
        sources.push((p.display().to_string(), text));
    }
    check_sources(&sources)
}

/// Parses and validates dialplan sources given as (file name, text).
pub fn parse_sources(sources: &[(String, String)]) -> Result<Dialplan, DialplanError> {
    check_sources(sources).map_err(|mut errors| errors.remove(0))
}

/// Parses and validates dialplan sources, reporting every error found (one per
/// record at most; a file that is not valid TOML reports its first syntax error).
pub fn check_sources(sources: &[(String, String)]) -> Result<Dialplan, Vec<DialplanError>> {
    let mut lines: Vec<(Line, Origin)> = Vec::new();
    let mut queues: Vec<(QueueDef, Origin)> = Vec::new();
    let mut agents: Vec<(AgentDef, Origin)> = Vec::new();
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut trunks: Vec<Trunk> = Vec::new();
    let mut holidays = Vec::new();
    let mut workdays = Vec::new();
    let mut years: Vec<i32> = Vec::new();
    let mut errors: Vec<DialplanError> = Vec::new();
    let mut utc_offset: Option<(i32, String)> = None;
    // Parallel lines name their legacy trunk; resolved once every file is read:
    // (trunk, the line's origin, its index in `lines`).
    let mut pending_trunks: Vec<(String, Origin, usize)> = Vec::new();
    // Names of records refused: a reference to one is not reported again as
    // "not defined" (the user fixes the record, not the reference).
    let mut refused: Vec<String> = Vec::new();
    // A file serde refused defines nothing we know of: references are not checked.
    let mut unreadable = false;
    let all_keys: Vec<KeyLines> = sources.iter().map(|(_, t)| KeyLines::new(t)).collect();
    for (source, (file, text)) in sources.iter().enumerate() {
        let keys = &all_keys[source];
        let origin = |record: String, id_key: &str| Origin {
            file: file.clone(),
            source,
            line: keys.line_or_enclosing(&format!("{record}.{id_key}")),
            record,
        };
        let parsed: Result<DialplanFile, _> = toml::from_str(text).map_err(|e| {
            let (line, key) = keys.locate(&e);
            DialplanError {
                file: file.clone(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        });
        let parsed = match parsed {
            Ok(p) => p,
            Err(first) => {
                unreadable = true;
                // Serde stops at the first problem; look at each record on its own
                // so that every bad record of the file is reported.
                let all = diagnose(file, text, keys);
                if all.is_empty() {
                    errors.push(first);
                } else {
                    errors.extend(all);
                }
                continue;
            }
        };
        if let Some(text_offset) = &parsed.utc_offset {
            let at = keys.line("utc_offset").unwrap_or(0);
            match parse_offset(text_offset) {
                Some(m) => match &utc_offset {
                    Some((other, f)) if *other != m => errors.push(DialplanError {
                        file: file.clone(),
                        line: at,
                        key: "utc_offset".into(),
                        message: format!("{text_offset} differs from the offset set in {f}"),
                    }),
                    _ => utc_offset = Some((m, file.clone())),
                },
                None => errors.push(DialplanError {
                    file: file.clone(),
                    line: at,
                    key: "utc_offset".into(),
                    message: format!("{text_offset:?} is not like \"+08:00\""),
                }),
            }
        }
        for (i, l) in parsed.line.into_iter().enumerate() {
            let o = origin(format!("line[{i}]"), "number");
            let legacy = (l.mode == Mode::Parallel)
                .then(|| l.legacy_trunk.clone())
                .flatten();
            let record = || -> Result<(), DialplanError> {
                let line = line_def(l, &|key, message| o.error(keys, key, message), o.at())?;
                if let Some((_, other)) = lines.iter().find(|(x, _)| x.number == line.number) {
                    return Err(o.error(
                        keys,
                        "number",
                        format!("{} is already defined at {}", line.number, other.at()),
                    ));
                }
                // Only a line that passed every check has its trunk resolved.
                if let Some(legacy) = legacy {
                    pending_trunks.push((legacy, o.clone(), lines.len()));
                }
                lines.push((line, o.clone()));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, q) in parsed.queue.into_iter().enumerate() {
            let o = origin(format!("queue[{i}]"), "name");
            let name = q.name.clone();
            let record = || -> Result<(), DialplanError> {
                let def = queue_def(q).map_err(|(key, message)| o.error(keys, key, message))?;
                if let Some((_, other)) = queues.iter().find(|(x, _)| x.name == def.name) {
                    return Err(o.error(
                        keys,
                        "name",
                        format!("queue {:?} is already defined at {}", def.name, other.at()),
                    ));
                }
                queues.push((def, o.clone()));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
                refused.push(format!("queue {name}"));
            }
        }
        for (i, a) in parsed.agent.into_iter().enumerate() {
            let o = origin(format!("agent[{i}]"), "id");
            let id = a.id.clone();
            let record = || -> Result<(), DialplanError> {
                let err = |key: &str, message: String| o.error(keys, key, message);
                let id_ok = !a.id.is_empty()
                    && a.id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !id_ok {
                    return Err(err(
                        "id",
                        format!(
                            "{:?} must be a SIP user name (letters, digits, . _ -)",
                            a.id
                        ),
                    ));
                }
                let (ha1_md5, ha1_sha256) = (hex_hash(&a.ha1_md5, 32), hex_hash(&a.ha1_sha256, 64));
                match (&a.password, &a.ha1_md5, &a.ha1_sha256) {
                    (None, None, None) => {
                        return Err(err(
                            "id",
                            "give the agent a password, or ha1_md5 and/or ha1_sha256".into(),
                        ));
                    }
                    (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                        return Err(err(
                            "password",
                            "give either a password or HA1 hashes, not both".into(),
                        ));
                    }
                    (Some(p), None, None) if p.chars().count() < MIN_PASSWORD => {
                        return Err(err(
                            "password",
                            format!(
                                "must be at least {MIN_PASSWORD} characters (or give ha1_md5 / ha1_sha256)"
                            ),
                        ));
                    }
                    _ => {}
                }
                if ha1_md5.is_err() {
                    return Err(err(
                        "ha1_md5",
                        "must be 32 hex digits: MD5 of id:realm:password".into(),
                    ));
                }
                if ha1_sha256.is_err() {
                    return Err(err(
                        "ha1_sha256",
                        "must be 64 hex digits: SHA-256 of id:realm:password".into(),
                    ));
                }
                if let Some((s, _)) = a.skills.iter().find(|(_, p)| **p == 0) {
                    return Err(err(
                        "skills",
                        format!("priority of {s:?} must be 1 or more (1 is best)"),
                    ));
                }
                if let Some((_, other)) = agents.iter().find(|(x, _)| x.id == a.id) {
                    return Err(err(
                        "id",
                        format!("agent {} is already defined at {}", a.id, other.at()),
                    ));
                }
                agents.push((
                    AgentDef {
                        id: a.id,
                        name: a.name,
                        password: a.password.unwrap_or_default(),
                        ha1_md5: ha1_md5.unwrap_or_default(),
                        ha1_sha256: ha1_sha256.unwrap_or_default(),
                        skills: a.skills,
                    },
                    o.clone(),
                ));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
                refused.push(format!("agent {id}"));
            }
        }
        for (i, t) in parsed.trunk.into_iter().enumerate() {
            let o = origin(format!("trunk[{i}]"), "name");
            let name = t.name.clone();
            let record = || -> Result<(), DialplanError> {
                let err = |key: &str, message: String| o.error(keys, key, message);
                let kind = match t.kind.as_str() {
                    "carrier" => TrunkKind::Carrier,
                    "legacy" => TrunkKind::Legacy,
                    "outbound" => TrunkKind::Outbound,
                    other => {
                        return Err(err(
                            "kind",
                            format!("{other:?}: use \"carrier\", \"legacy\" or \"outbound\""),
                        ));
                    }
                };
                let outbound =
                    super::records::outbound_trunk(kind, &t).map_err(|(k, m)| err(k, m))?;
                let mut sources = Vec::new();
                for src in &t.sources {
                    sources.push(parse_network(src).map_err(|m| err("sources", m))?);
                }
                let target = match &t.target {
                    Some(x) => Some(parse_target(x).map_err(|m| err("target", m))?),
                    None if kind == TrunkKind::Legacy => {
                        return Err(err(
                            "target",
                            "a legacy trunk needs the platform's SIP target".into(),
                        ));
                    }
                    None if kind == TrunkKind::Outbound => {
                        return Err(err(
                            "target",
                            "an outbound trunk needs the SIP target calls go out to".into(),
                        ));
                    }
                    None => None,
                };
                if trunks.iter().any(|x| x.name == t.name) {
                    return Err(err("name", format!("trunk {:?} is defined twice", t.name)));
                }
                trunks.push(Trunk {
                    name: t.name,
                    kind,
                    sources,
                    target,
                    trusted: t.trusted,
                    outbound,
                });
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
                refused.push(format!("trunk {name}"));
            }
        }
        for (i, c) in parsed.calendar.into_iter().enumerate() {
            let o = origin(format!("calendar[{i}]"), "year");
            let mut record = || -> Result<(), DialplanError> {
                let err = |key: &str, message: String| o.error(keys, key, message);
                if years.contains(&c.year) {
                    return Err(err("year", format!("{} is listed twice", c.year)));
                }
                years.push(c.year);
                for (key, list, out) in [
                    ("holidays", &c.holidays, &mut holidays),
                    ("workdays", &c.workdays, &mut workdays),
                ] {
                    for d in list {
                        let date = super::time::parse_date(d)
                            .map_err(|_| err(key, format!("{d:?} is not a YYYY-MM-DD date")))?;
                        if date.year() != c.year {
                            return Err(err(key, format!("{d} is not in {}", c.year)));
                        }
                        out.push(date);
                    }
                }
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, t) in parsed.transfer.into_iter().enumerate() {
            let o = origin(format!("transfer[{i}]"), "number");
            let number = t.number.clone();
            let record = || -> Result<(), DialplanError> {
                let err = |key: &str, message: String| o.error(keys, key, message);
                if t.number.is_empty() || !t.number.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("number", format!("{:?} must be digits only", t.number)));
                }
                for a in &t.areas {
                    let ok = a.starts_with('0')
                        && (3..=4).contains(&a.len())
                        && a.bytes().all(|b| b.is_ascii_digit());
                    if !ok {
                        return Err(err(
                            "areas",
                            format!("{a:?} is no area code (0 and 2-3 digits: \"010\", \"0351\")"),
                        ));
                    }
                }
                let clash = transfers.iter().filter(|x| x.number == t.number).find(|x| {
                    (x.areas.is_empty() && t.areas.is_empty())
                        || x.areas.iter().any(|a| t.areas.contains(a))
                });
                if let Some(x) = clash {
                    let which = match x.areas.iter().find(|a| t.areas.contains(a)) {
                        Some(a) => format!("for area {a}"),
                        None => "without areas (the default entry)".to_string(),
                    };
                    return Err(err(
                        "number",
                        format!("{} is listed twice {which}", t.number),
                    ));
                }
                let from_line = match t.from.as_deref() {
                    None | Some("caller") => false,
                    Some("line") => true,
                    Some(other) => {
                        return Err(err(
                            "from",
                            format!("{other:?}: use \"caller\" or \"line\""),
                        ));
                    }
                };
                let target = parse_target(&t.target).map_err(|m| err("target", m))?;
                transfers.push(Transfer {
                    number: t.number,
                    name: t.name,
                    target,
                    areas: t.areas,
                    from_line,
                });
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
                refused.push(format!("transfer {number}"));
            }
        }
    }
    if !unreadable {
        let refs = References {
            keys: &all_keys,
            refused: &refused,
        };
        refs.check(&lines, &queues, &agents, &transfers, &mut errors);
        // A direct-merged department's old number is 12345's transfer number
        // for it (the seed's definition): dialled by a citizen it reaches the
        // queue; transferred to by an agent, the directory's entry (its trunk).
        for (line, _) in &mut lines {
            if line.mode == super::Mode::DirectMerge
                && line.transfer_number.is_none()
                && transfers.iter().any(|t| t.number == line.number)
            {
                line.transfer_number = Some(line.number.clone());
            }
        }
        // Resolve parallel lines' legacy trunks.
        for (name, o, at) in &pending_trunks {
            let (line, _) = &mut lines[*at];
            match trunks
                .iter()
                .find(|t| &t.name == name)
                .and_then(|t| t.target.clone())
            {
                Some(target) => {
                    if let Route::Parallel { legacy, .. } = &mut line.route {
                        *legacy = target;
                    }
                }
                None if refs.was_refused("trunk", name) => {}
                None => errors.push(o.error(
                    &all_keys[o.source],
                    "legacy_trunk",
                    format!("trunk {name:?} is not defined, or has no target"),
                )),
            }
        }
    }
    let mut plan = Dialplan::new(lines.into_iter().map(|(l, _)| l).collect());
    plan.transfers = transfers;
    plan.trunks = trunks;
    match super::calendar::Calendar::new(holidays, workdays) {
        Ok(c) => plan.calendar = c,
        Err(e) => errors.push(DialplanError {
            file: sources.first().map(|(f, _)| f.clone()).unwrap_or_default(),
            line: 0,
            key: "calendar".into(),
            message: e.to_string(),
        }),
    }
    plan.queues = queues.into_iter().map(|(q, _)| q).collect();
    plan.agents = agents.into_iter().map(|(a, _)| a).collect();
    if let Some((m, _)) = utc_offset {
        plan.utc_offset_minutes = m;
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Shortest plain agent password accepted.
pub const MIN_PASSWORD: usize = 8;

/// An optional HA1 as written: `digits` hex digits, returned lower-cased.
fn hex_hash(v: &Option<String>, digits: usize) -> Result<Option<String>, ()> {
    match v {
        None => Ok(None),
        Some(h) if h.len() == digits && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(h.to_ascii_lowercase()))
        }
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn one(text: &str) -> Result<Dialplan, DialplanError> {
        parse_sources(&[("d.toml".into(), text.into())])
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let e = one("[[line]]\nnumber = \"12345\"\nname = \"x\"\ntagret = \"sip:127.0.0.1\"\n")
            .unwrap_err();
        assert_eq!(e.file, "d.toml");
        assert_eq!(e.line, 4);
        assert_eq!(e.key, "line[0].tagret");
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
