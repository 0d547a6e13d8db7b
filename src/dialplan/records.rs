//! One dialplan record's checks, and the references between records: what
//! serde cannot say about a line, a queue, or a name one record gives another.
//! Pure: records in, definitions or errors (placed by the caller) out.

use super::locate::Origin;
use super::outbound::{self, Outbound};
use super::schema::{LineFile, QueueFile, TrunkFile};
use super::seats::{AgentDef, Overflow, QueueDef};
use super::values::{parse_target, placeholder_target};
use super::{DialplanError, Line, Mode, Route, Transfer, TrunkKind};
use crate::util::toml_where::KeyLines;

/// Checks a line's values; `err` places an error at one of its keys.
pub(super) fn line_def(
    l: LineFile,
    err: &dyn Fn(&str, String) -> DialplanError,
    defined_at: String,
) -> Result<Line, DialplanError> {
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
    if l.deadline_workdays.is_some_and(|d| d == 0 || d > 365) {
        return Err(err("deadline_workdays", "must be 1 to 365".into()));
    }
    if l.mode != Mode::Parallel && (l.legacy_trunk.is_some() || !l.hours.is_empty()) {
        return Err(err(
            "legacy_trunk",
            "legacy_trunk and hours apply to parallel lines only".into(),
        ));
    }
    let hours = super::hours::Hours::parse(&l.hours).map_err(|e| err("hours", e.to_string()))?;
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
    Ok(Line {
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
        deadline_workdays: l
            .deadline_workdays
            .unwrap_or(super::DEFAULT_DEADLINE_WORKDAYS),
        survey: l.survey,
        record: l.record,
        defined_at,
    })
}

/// Checks a queue's values.
pub(super) fn queue_def(q: QueueFile) -> Result<QueueDef, (&'static str, String)> {
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

/// References between records (a line's queue and transfer number, a queue's
/// overflow and agents) must resolve; each unresolved one is reported at the key
/// that names it, unless the record it names was itself refused.
pub(super) struct References<'a> {
    pub keys: &'a [KeyLines],
    pub refused: &'a [String],
}

impl References<'_> {
    pub fn was_refused(&self, kind: &str, name: &str) -> bool {
        let want = format!("{kind} {name}");
        self.refused.contains(&want)
    }

    pub fn check(
        &self,
        lines: &[(Line, Origin)],
        queues: &[(QueueDef, Origin)],
        agents: &[(AgentDef, Origin)],
        transfers: &[Transfer],
        errors: &mut Vec<DialplanError>,
    ) {
        let queue_exists = |n: &str| queues.iter().any(|(q, _)| q.name == n);
        for (l, o) in lines {
            let keys = &self.keys[o.source];
            let queue = match &l.route {
                Route::Queue(q) | Route::Parallel { queue: q, .. } => Some(q),
                Route::Sip(_) => None,
            };
            if let Some(q) = queue
                && !queue_exists(q)
                && !self.was_refused("queue", q)
            {
                // Named by `queue = …` or by `target = "queue:…"`.
                let key = match keys.line(&format!("{}.queue", o.record)) {
                    Some(_) => "queue",
                    None => "target",
                };
                errors.push(o.error(keys, key, format!("queue {q:?} is not defined")));
            }
            if let Some(n) = &l.transfer_number
                && !transfers.iter().any(|t| &t.number == n)
                && !self.was_refused("transfer", n)
            {
                errors.push(o.error(
                    keys,
                    "transfer_number",
                    format!("{n} is not in the transfer directory ([[transfer]])"),
                ));
            }
        }
        for (q, o) in queues {
            let keys = &self.keys[o.source];
            if let Overflow::Queue(to) = &q.overflow
                && !queue_exists(to)
                && !self.was_refused("queue", to)
            {
                errors.push(o.error(keys, "overflow", format!("queue {to:?} is not defined")));
            }
            let missing = q.agents.iter().find(|a| {
                !agents.iter().any(|(x, _)| &x.id == *a) && !self.was_refused("agent", a)
            });
            if let Some(a) = missing {
                errors.push(o.error(keys, "agents", format!("agent {a:?} is not defined")));
            }
        }
    }
}

/// An outbound trunk's settings (`None` for other kinds, which may not have
/// them), or the key at fault and why.
pub(super) fn outbound_trunk(
    kind: TrunkKind,
    t: &TrunkFile,
) -> Result<Option<Outbound>, (&'static str, String)> {
    if kind != TrunkKind::Outbound {
        for (key, set) in [
            ("caller_id", t.caller_id.is_some()),
            ("allow", !t.allow.is_empty()),
            ("max_concurrent", t.max_concurrent.is_some()),
            ("cps", t.cps.is_some()),
        ] {
            if set {
                return Err((key, format!("only an outbound trunk has {key}")));
            }
        }
        return Ok(None);
    }
    if !t.sources.is_empty() {
        return Err((
            "sources",
            "an outbound trunk only places calls; calls in come over a carrier trunk".into(),
        ));
    }
    let caller_id = match &t.caller_id {
        Some(c) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => c.clone(),
        Some(c) => return Err(("caller_id", format!("{c:?} must be digits only"))),
        None => {
            return Err((
                "caller_id",
                "an outbound trunk needs the number citizens see (e.g. \"12345\")".into(),
            ));
        }
    };
    if t.allow.is_empty() {
        return Err((
            "allow",
            "an outbound trunk needs the number patterns it may dial (e.g. [\"1XXXXXXXXXX\"])"
                .into(),
        ));
    }
    for p in &t.allow {
        outbound::check_pattern(p).map_err(|m| ("allow", m))?;
    }
    let max_concurrent = t.max_concurrent.unwrap_or(outbound::DEFAULT_MAX_CONCURRENT);
    let cps = t.cps.unwrap_or(outbound::DEFAULT_CPS);
    if max_concurrent == 0 || cps == 0 {
        let key = if max_concurrent == 0 {
            "max_concurrent"
        } else {
            "cps"
        };
        return Err((key, "must be at least 1".into()));
    }
    Ok(Some(Outbound {
        caller_id,
        allow: t.allow.clone(),
        max_concurrent,
        cps,
    }))
}
