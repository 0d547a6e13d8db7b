//! Reading dialplan files: `*.toml` in the dialplan directory, each holding
//! `[[line]]`, `[[queue]]` and `[[agent]]` tables in any mix. Unknown keys are
//! errors, and every error names file:line:key.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::seats::{AgentDef, Overflow, QueueDef, Strategy};
use super::{Dialplan, DialplanError, Line, Mode, Route, Target, Transfer, Trunk};
use crate::sip::Transport;
use crate::sip::message::SipUri;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialplanFile {
    /// Offset of local time for time rules, `+08:00` (Asia/Shanghai) by default.
    utc_offset: Option<String>,
    #[serde(default)]
    line: Vec<LineFile>,
    #[serde(default)]
    queue: Vec<QueueFile>,
    #[serde(default)]
    agent: Vec<AgentFile>,
    #[serde(default)]
    transfer: Vec<TransferFile>,
    #[serde(default)]
    trunk: Vec<TrunkFile>,
    #[serde(default)]
    calendar: Vec<CalendarFile>,
}

/// One year of the working-day calendar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: i32,
    /// Where the dates come from, or a warning that they are unverified.
    #[allow(dead_code)]
    note: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    /// Make-up working days on weekends (调休).
    #[serde(default)]
    workdays: Vec<String>,
}

/// An entry of the transfer directory: the only numbers agents may transfer to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferFile {
    /// As the agent dials it: 110, 119, 120, 122, a department's number…
    number: String,
    name: String,
    /// `sip:[user@]IP[:port][;transport=tcp]` of the trunk or platform.
    target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFile {
    name: String,
    #[serde(default)]
    strategy: Strategy,
    #[serde(default = "default_ring_timeout")]
    ring_timeout_s: u64,
    #[serde(default = "default_wrap_up")]
    wrap_up_s: u64,
    #[serde(default = "default_max_wait")]
    max_wait_s: u64,
    /// `callback` or `queue:NAME`.
    #[serde(default = "default_overflow")]
    overflow: String,
    #[serde(default = "default_widen")]
    skill_widen_after_s: u64,
    #[serde(default = "default_misses")]
    auto_pause_after_misses: u32,
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    static_members: Vec<String>,
    /// Concurrent calls each static member takes (a sipp UAS is a room of seats).
    #[serde(default = "one")]
    static_seats: u32,
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
struct AgentFile {
    id: String,
    name: String,
    password: String,
    /// Skill → priority (1 is best), e.g. `{ "12345" = 1, "12315" = 2 }`.
    #[serde(default)]
    skills: BTreeMap<String, u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFile {
    /// The number as callers dial it (digits only).
    number: String,
    /// A human name for logs and the wallboard.
    name: String,
    /// `hotline` (default), `direct_merge`, `call_forwarding`, `parallel`.
    #[serde(default)]
    mode: Mode,
    department: Option<String>,
    /// The ACD queue callers wait in (for parallel lines: the overflow queue).
    queue: Option<String>,
    /// Instead of a queue: `sip:[user@]IP[:port][;transport=tcp]`, or `queue:NAME`.
    target: Option<String>,
    prompt: Option<String>,
    transfer_number: Option<String>,
    /// Parallel lines: the legacy platform's trunk, rung first.
    legacy_trunk: Option<String>,
    /// Parallel lines: how long the legacy seats ring before 12345 takes over.
    ring_time_s: Option<u64>,
    /// Parallel lines: when the legacy seats answer at all.
    #[serde(default)]
    hours: Vec<String>,
    effective_from: Option<String>,
    effective_until: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrunkFile {
    name: String,
    /// `carrier` or `legacy`.
    kind: String,
    /// Source addresses or networks the trunk sends from.
    #[serde(default)]
    sources: Vec<String>,
    target: Option<String>,
    #[serde(default)]
    trusted: bool,
}

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
    let mut lines: Vec<(Line, String, usize)> = Vec::new();
    let mut queues: Vec<(QueueDef, String, usize)> = Vec::new();
    let mut agents: Vec<(AgentDef, String, usize)> = Vec::new();
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut trunks: Vec<Trunk> = Vec::new();
    let mut holidays = Vec::new();
    let mut workdays = Vec::new();
    let mut years: Vec<i32> = Vec::new();
    let mut errors: Vec<DialplanError> = Vec::new();
    let mut utc_offset: Option<(i32, String)> = None;
    // Parallel lines name their legacy trunk; resolved once every file is read:
    // (trunk, index in file, line in file, file, line number).
    let mut pending_trunks: Vec<(String, usize, usize, String, String)> = Vec::new();
    for (file, text) in sources {
        let parsed: Result<DialplanFile, _> = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            DialplanError {
                file: file.clone(),
                line,
                key: key_of_error(e.message()),
                message: e.message().to_string(),
            }
        });
        let parsed = match parsed {
            Ok(p) => p,
            Err(first) => {
                // Serde stops at the first problem; look at each record on its own
                // so that every bad record of the file is reported.
                let all = diagnose(file, text);
                if all.is_empty() {
                    errors.push(first);
                } else {
                    errors.extend(all);
                }
                continue;
            }
        };
        if let Some(text_offset) = &parsed.utc_offset {
            let at = text
                .lines()
                .position(|l| l.trim_start().starts_with("utc_offset"))
                .map_or(0, |n| n + 1);
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
            let record = || -> Result<(), DialplanError> {
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
                let route = match (&l.queue, &l.target, l.mode) {
                    (Some(q), None, Mode::Parallel) => {
                        let legacy = l.legacy_trunk.clone().ok_or_else(|| {
                            err(
                                "legacy_trunk",
                                "a parallel line needs the legacy platform's trunk".into(),
                            )
                        })?;
                        pending_trunks.push((
                            legacy.clone(),
                            i,
                            at,
                            file.clone(),
                            l.number.clone(),
                        ));
                        Route::Parallel {
                            legacy: placeholder_target(&legacy),
                            ring_time: std::time::Duration::from_secs(l.ring_time_s.unwrap_or(20)),
                            queue: q.clone(),
                        }
                    }
                    (_, _, Mode::Parallel) => {
                        return Err(err(
                            "queue",
                            "a parallel line needs a queue (and no target)".into(),
                        ));
                    }
                    (Some(q), None, _) => Route::Queue(q.clone()),
                    (None, Some(t), _) => match t.strip_prefix("queue:") {
                        Some(q) => Route::Queue(q.to_string()),
                        None => Route::Sip(parse_target(t).map_err(|m| err("target", m))?),
                    },
                    (Some(_), Some(_), _) => {
                        return Err(err(
                            "target",
                            "give either queue or target, not both".into(),
                        ));
                    }
                    (None, None, _) => {
                        return Err(err("queue", "a line needs a queue or a target".into()));
                    }
                };
                if l.ring_time_s.is_some_and(|r| r == 0 || r > 120) {
                    return Err(err("ring_time_s", "must be 1 to 120".into()));
                }
                if l.mode != Mode::Parallel && (l.legacy_trunk.is_some() || !l.hours.is_empty()) {
                    return Err(err(
                        "legacy_trunk",
                        "legacy_trunk and hours apply to parallel lines only".into(),
                    ));
                }
                let hours = super::hours::Hours::parse(&l.hours)
                    .map_err(|e| err("hours", e.to_string()))?;
                for (key, date) in [
                    ("effective_from", &l.effective_from),
                    ("effective_until", &l.effective_until),
                ] {
                    if let Some(d) = date
                        && super::time::parse_date(d).is_err()
                    {
                        return Err(err(key, format!("{d:?} is not a YYYY-MM-DD date")));
                    }
                }
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
                        route,
                        mode: l.mode,
                        department: l.department,
                        transfer_number: l.transfer_number,
                        prompt: l.prompt,
                        hours,
                        effective_from: l.effective_from,
                        effective_until: l.effective_until,
                    },
                    file.clone(),
                    at,
                ));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, q) in parsed.queue.into_iter().enumerate() {
            let record = || -> Result<(), DialplanError> {
                let at = find_key_line(text, "name", &q.name);
                let def = queue_def(q).map_err(|(key, message)| DialplanError {
                    file: file.clone(),
                    line: at,
                    key: format!("queue[{i}].{key}"),
                    message,
                })?;
                if let Some((_, f, l)) = queues.iter().find(|(x, _, _)| x.name == def.name) {
                    return Err(DialplanError {
                        file: file.clone(),
                        line: at,
                        key: format!("queue[{i}].name"),
                        message: format!("queue {:?} is already defined at {f}:{l}", def.name),
                    });
                }
                queues.push((def, file.clone(), at));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, a) in parsed.agent.into_iter().enumerate() {
            let record = || -> Result<(), DialplanError> {
                let at = find_key_line(text, "id", &a.id);
                let err = |key: &str, message: String| DialplanError {
                    file: file.clone(),
                    line: at,
                    key: format!("agent[{i}].{key}"),
                    message,
                };
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
                if a.password.len() < 3 {
                    return Err(err("password", "must be at least 3 characters".into()));
                }
                if let Some((s, _)) = a.skills.iter().find(|(_, p)| **p == 0) {
                    return Err(err(
                        "skills",
                        format!("priority of {s:?} must be 1 or more (1 is best)"),
                    ));
                }
                if let Some((_, f, l)) = agents.iter().find(|(x, _, _)| x.id == a.id) {
                    return Err(err(
                        "id",
                        format!("agent {} is already defined at {f}:{l}", a.id),
                    ));
                }
                agents.push((
                    AgentDef {
                        id: a.id,
                        name: a.name,
                        password: a.password,
                        skills: a.skills,
                    },
                    file.clone(),
                    at,
                ));
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, t) in parsed.trunk.into_iter().enumerate() {
            let record = || -> Result<(), DialplanError> {
                let at = find_key_line(text, "name", &t.name);
                let err = |key: &str, message: String| DialplanError {
                    file: file.clone(),
                    line: at,
                    key: format!("trunk[{i}].{key}"),
                    message,
                };
                if t.kind != "carrier" && t.kind != "legacy" {
                    return Err(err(
                        "kind",
                        format!("{:?}: use \"carrier\" or \"legacy\"", t.kind),
                    ));
                }
                let mut sources = Vec::new();
                for src in &t.sources {
                    sources.push(parse_network(src).map_err(|m| err("sources", m))?);
                }
                let target = match &t.target {
                    Some(x) => Some(parse_target(x).map_err(|m| err("target", m))?),
                    None if t.kind == "legacy" => {
                        return Err(err(
                            "target",
                            "a legacy trunk needs the platform's SIP target".into(),
                        ));
                    }
                    None => None,
                };
                if trunks.iter().any(|x| x.name == t.name) {
                    return Err(err("name", format!("trunk {:?} is defined twice", t.name)));
                }
                trunks.push(Trunk {
                    name: t.name,
                    kind: t.kind,
                    sources,
                    target,
                    trusted: t.trusted,
                });
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
        for (i, c) in parsed.calendar.into_iter().enumerate() {
            let mut record = || -> Result<(), DialplanError> {
                let at = text
                    .lines()
                    .position(|l| {
                        l.trim_start().starts_with("year") && l.contains(&c.year.to_string())
                    })
                    .map_or(0, |n| n + 1);
                let err = |key: &str, message: String| DialplanError {
                    file: file.clone(),
                    line: at,
                    key: format!("calendar[{i}].{key}"),
                    message,
                };
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
            let record = || -> Result<(), DialplanError> {
                let at = find_key_line(text, "number", &t.number);
                let err = |key: &str, message: String| DialplanError {
                    file: file.clone(),
                    line: at,
                    key: format!("transfer[{i}].{key}"),
                    message,
                };
                if t.number.is_empty() || !t.number.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("number", format!("{:?} must be digits only", t.number)));
                }
                if transfers.iter().any(|x| x.number == t.number) {
                    return Err(err("number", format!("{} is listed twice", t.number)));
                }
                let target = parse_target(&t.target).map_err(|m| err("target", m))?;
                transfers.push(Transfer {
                    number: t.number,
                    name: t.name,
                    target,
                });
                Ok(())
            };
            if let Err(e) = record() {
                errors.push(e);
            }
        }
    }
    if let Err(e) = cross_check(&lines, &queues, &agents) {
        errors.push(e);
    }
    // Resolve parallel lines' legacy trunks.
    for (name, i, at, file, number) in &pending_trunks {
        let Some((line, _, _)) = lines.iter_mut().find(|(l, _, _)| &l.number == number) else {
            continue; // the line itself was refused
        };
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
            None => errors.push(DialplanError {
                file: file.clone(),
                line: *at,
                key: format!("line[{i}].legacy_trunk"),
                message: format!("trunk {name:?} is not defined, or has no target"),
            }),
        }
    }
    let mut plan = Dialplan::new(lines.into_iter().map(|(l, _, _)| l).collect());
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
    plan.queues = queues.into_iter().map(|(q, _, _)| q).collect();
    plan.agents = agents.into_iter().map(|(a, _, _)| a).collect();
    if let Some((m, _)) = utc_offset {
        plan.utc_offset_minutes = m;
    }
    check_transfer_numbers(&plan, &mut errors);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// A direct-merge line's transfer number must be in the transfer directory, or
/// agents could not reach the department.
fn check_transfer_numbers(plan: &Dialplan, errors: &mut Vec<DialplanError>) {
    for line in plan.lines() {
        if let Some(n) = &line.transfer_number
            && plan.transfer(n).is_none()
        {
            errors.push(DialplanError {
                file: "-".into(),
                line: 0,
                key: format!("line {}.transfer_number", line.number),
                message: format!("{n} is not in the transfer directory ([[transfer]])"),
            });
        }
    }
}

/// Checks a queue's values.
fn queue_def(q: QueueFile) -> Result<QueueDef, (&'static str, String)> {
    let name_ok = !q.name.is_empty()
        && q.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if !name_ok {
        return Err((
            "name",
            format!("{:?} must be letters, digits, _ or -", q.name),
        ));
    }
    if q.ring_timeout_s == 0 || q.ring_timeout_s > 120 {
        return Err(("ring_timeout_s", "must be 1 to 120".into()));
    }
    if q.max_wait_s == 0 {
        return Err(("max_wait_s", "must be positive".into()));
    }
    let overflow = match q.overflow.as_str() {
        "callback" => Overflow::Callback,
        o => match o.strip_prefix("queue:") {
            Some(name) if name != q.name => Overflow::Queue(name.to_string()),
            Some(_) => return Err(("overflow", "a queue cannot overflow into itself".into())),
            None => {
                return Err((
                    "overflow",
                    format!("{o:?}: use \"callback\" or \"queue:NAME\""),
                ));
            }
        },
    };
    for m in &q.static_members {
        parse_target(m).map_err(|e| ("static_members", e))?;
    }
    if q.static_seats == 0 || q.static_seats > 10_000 {
        return Err(("static_seats", "must be 1 to 10000".into()));
    }
    if q.agents.is_empty() && q.static_members.is_empty() {
        return Err(("agents", "a queue needs agents or static_members".into()));
    }
    Ok(QueueDef {
        name: q.name,
        strategy: q.strategy,
        ring_timeout_s: q.ring_timeout_s,
        wrap_up_s: q.wrap_up_s,
        max_wait_s: q.max_wait_s,
        overflow,
        skill_widen_after_s: q.skill_widen_after_s,
        auto_pause_after_misses: q.auto_pause_after_misses,
        agents: q.agents,
        static_members: q.static_members,
        static_seats: q.static_seats,
    })
}

/// References between lines, queues and agents must resolve.
fn cross_check(
    lines: &[(Line, String, usize)],
    queues: &[(QueueDef, String, usize)],
    agents: &[(AgentDef, String, usize)],
) -> Result<(), DialplanError> {
    let queue_exists = |n: &str| queues.iter().any(|(q, _, _)| q.name == n);
    for (i, (l, f, at)) in lines.iter().enumerate() {
        if let Route::Queue(q) = &l.route
            && !queue_exists(q)
        {
            return Err(DialplanError {
                file: f.clone(),
                line: *at,
                key: format!("line[{i}].target"),
                message: format!("queue {q:?} is not defined"),
            });
        }
    }
    for (q, f, at) in queues {
        if let Overflow::Queue(o) = &q.overflow
            && !queue_exists(o)
        {
            return Err(DialplanError {
                file: f.clone(),
                line: *at,
                key: format!("queue {:?}.overflow", q.name),
                message: format!("queue {o:?} is not defined"),
            });
        }
        let missing = q
            .agents
            .iter()
            .find(|a| !agents.iter().any(|(x, _, _)| &x.id == *a));
        if let Some(a) = missing {
            return Err(DialplanError {
                file: f.clone(),
                line: *at,
                key: format!("queue {:?}.agents", q.name),
                message: format!("agent {a:?} is not defined"),
            });
        }
    }
    Ok(())
}

/// The line where `key = "value"` appears, for error messages.
fn find_key_line(text: &str, key: &str, value: &str) -> usize {
    let needle = format!("\"{value}\"");
    text.lines()
        .position(|l| l.trim_start().starts_with(key) && l.contains(&needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// A stand-in until the named trunk is resolved.
fn placeholder_target(_trunk: &str) -> Target {
    Target {
        uri: String::new(),
        user: None,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        transport: Transport::Udp,
    }
}

/// Every record-level error of a file that did not deserialize as a whole.
fn diagnose(file: &str, text: &str) -> Vec<DialplanError> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(_) => return Vec::new(), // a syntax error: the caller reports it
    };
    fn each<T: serde::de::DeserializeOwned>(
        file: &str,
        text: &str,
        name: &str,
        value: &toml::Value,
        out: &mut Vec<DialplanError>,
    ) {
        let Some(items) = value.as_array() else {
            out.push(DialplanError {
                file: file.into(),
                line: 0,
                key: name.into(),
                message: format!("use [[{name}]] tables"),
            });
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = T::deserialize(item.clone()) {
                let mut key = key_of_error(e.message());
                let mut line = record_line(text, name, i, &key);
                // "unknown variant `x`" names the value: find the key written with it.
                if e.message().starts_with("unknown variant") {
                    let needle = format!("\"{key}\"");
                    if let Some((n, k)) = record_lines(text, name, i)
                        .find(|(_, l)| l.contains(&needle))
                        .and_then(|(n, l)| {
                            l.split_once('=').map(|(k, _)| (n, k.trim().to_string()))
                        })
                    {
                        line = n;
                        key = k;
                    }
                }
                out.push(DialplanError {
                    file: file.into(),
                    line,
                    key: format!("{name}[{i}].{key}"),
                    message: e.message().trim().to_string(),
                });
            }
        }
    }
    let mut out = Vec::new();
    for (name, value) in &table {
        match name.as_str() {
            "line" => each::<LineFile>(file, text, name, value, &mut out),
            "queue" => each::<QueueFile>(file, text, name, value, &mut out),
            "agent" => each::<AgentFile>(file, text, name, value, &mut out),
            "transfer" => each::<TransferFile>(file, text, name, value, &mut out),
            "trunk" => each::<TrunkFile>(file, text, name, value, &mut out),
            "calendar" => each::<CalendarFile>(file, text, name, value, &mut out),
            "utc_offset" => {}
            other => out.push(DialplanError {
                file: file.into(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with(other) || l.contains(&format!("[{other}]")))
                    .map_or(0, |n| n + 1),
                key: other.into(),
                message: format!(
                    "unknown table or key `{other}` (expected line, queue, agent, transfer, trunk, calendar, utc_offset)"
                ),
            }),
        }
    }
    out
}

/// The lines (1-based number, text) of the `i`-th `[[table]]` of a file, header first.
fn record_lines<'a>(
    text: &'a str,
    table: &str,
    i: usize,
) -> impl Iterator<Item = (usize, &'a str)> {
    let header = format!("[[{table}]]");
    let start = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(i)
        .map(|(n, _)| n);
    text.lines()
        .enumerate()
        .skip(start.unwrap_or(usize::MAX))
        .take_while(move |(n, l)| Some(*n) == start || !l.trim_start().starts_with("[["))
        .map(|(n, l)| (n + 1, l))
}

/// The line of `key` inside the `i`-th `[[table]]` of a file (or of the table
/// header when the key is not written there).
fn record_line(text: &str, table: &str, i: usize, key: &str) -> usize {
    let mut lines = record_lines(text, table, i);
    let Some((header, _)) = lines.next() else {
        return 0;
    };
    lines
        .find(|(_, l)| l.trim_start().starts_with(key))
        .map_or(header, |(n, _)| n)
}

/// `+08:00` → 480 minutes east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// `127.0.0.0/8`, `198.51.100.7`, `::1`.
fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (text, None),
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{text:?}: bad prefix length"))?,
        None => max,
    };
    Ok((ip, bits))
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
