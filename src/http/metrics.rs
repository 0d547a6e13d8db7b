//! `GET /metrics`: Prometheus text exposition (version 0.0.4), written by hand from
//! the SIP core's status, the reporting service's counters and the live SLA
//! figures. Metric and label names are stable once shipped.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::ConnStats;
use crate::reporting::Shared;
use crate::reporting::telemetry::Histogram;
use crate::sla::{Snapshot, Window};
use crate::transport::Status;

/// Renders every metric. `queues` and `agents` are the core's JSON views.
pub fn render(
    status: &Status,
    conns: &ConnStats,
    rep: &Shared,
    snap: &Snapshot,
    queues: &Value,
    agents: &Value,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let o = &mut out;
    let t = &rep.telemetry;

    head(
        o,
        "hotline_calls_total",
        "counter",
        "Finished calls by SLA outcome (not_offered: refused before any offer).",
    );
    for (outcome, n) in t.outcome_counts() {
        let _ = writeln!(o, "hotline_calls_total{{outcome=\"{outcome}\"}} {n}");
    }
    head(
        o,
        "hotline_calls_ended_total",
        "counter",
        "Finished calls by reason code.",
    );
    for (reason, n) in status.ended_by_reason() {
        let _ = writeln!(o, "hotline_calls_ended_total{{reason=\"{reason}\"}} {n}");
    }
    gauge(
        o,
        "hotline_active_calls",
        "Calls in progress.",
        status.active_calls.load(Ordering::Relaxed) as f64,
    );
    gauge(
        o,
        "hotline_sip_transactions",
        "SIP transactions in progress.",
        status.transactions.load(Ordering::Relaxed) as f64,
    );
    counter(
        o,
        "hotline_sip_messages_total",
        "SIP messages received.",
        status.messages_in.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_sip_parse_errors_total",
        "SIP messages that could not be parsed.",
        status.parse_errors.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_sip_strangers_refused_total",
        "Requests from sources that are neither trunks nor registered agents, answered statelessly.",
        status.strangers_refused.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_sip_strangers_dropped_total",
        "Requests from strangers dropped unanswered over the [sip.strangers] rate limits.",
        status.strangers_dropped.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_sip_foreign_responses_total",
        "Responses dropped because they came from another address than their request went to.",
        status.foreign_responses.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_call_stale_events_total",
        "Transaction events that arrived for a call that had already ended (ignored).",
        status.stale_events.load(Ordering::Relaxed),
    );
    gauge(
        o,
        "hotline_sip_tcp_connections",
        "SIP TCP connections open (accepted and opened).",
        status.tcp_open.load(Ordering::Relaxed) as f64,
    );
    counter(
        o,
        "hotline_sip_tcp_refused_total",
        "SIP TCP connections closed at once: over sip.tcp_max_connections or sip.tcp_max_per_source.",
        status.tcp_refused.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_sip_tcp_closed_silent_total",
        "SIP TCP connections closed for silence: no message within sip.tcp_first_message_s, or idle for sip.tcp_idle_s.",
        status.tcp_closed_silent.load(Ordering::Relaxed),
    );

    gauge(
        o,
        "hotline_sla_target",
        "The answer-rate target.",
        snap.target,
    );
    let dims = std::iter::once(("overall", "all", &snap.overall))
        .chain(
            snap.lines
                .iter()
                .map(|k| ("line", k.key.as_str(), &k.windows)),
        )
        .chain(
            snap.modes
                .iter()
                .map(|k| ("mode", k.key.as_str(), &k.windows)),
        )
        .chain(
            snap.queues
                .iter()
                .map(|k| ("queue", k.key.as_str(), &k.windows)),
        );
    let dims: Vec<_> = dims.collect();
    for (name, help, pick) in [
        (
            "hotline_sla_answer_rate",
            "Answer rate over the rolling window (absent when nothing counts yet).",
            0,
        ),
        (
            "hotline_sla_service_level",
            "Share answered within answer_within_s over the rolling window.",
            1,
        ),
        (
            "hotline_sla_offered",
            "Calls offered in the rolling window.",
            2,
        ),
        (
            "hotline_sla_breached",
            "1 while the window is in breach.",
            3,
        ),
    ] {
        head(o, name, "gauge", help);
        for (dim, key, windows) in &dims {
            for w in [Window::M15, Window::H1, Window::H24] {
                let f = windows.get(w);
                let v = match pick {
                    0 => f.answer_rate,
                    1 => f.service_level,
                    2 => Some(f.offered as f64),
                    _ => Some(if f.breached { 1.0 } else { 0.0 }),
                };
                if let Some(v) = v {
                    let _ = writeln!(
                        o,
                        "{name}{{dimension=\"{dim}\",key=\"{}\",window=\"{}\"}} {v}",
                        esc(key),
                        w.as_str()
                    );
                }
            }
        }
    }
    head(
        o,
        "hotline_sla_alerts_total",
        "counter",
        "Breach and recovery transitions.",
    );
    let _ = writeln!(
        o,
        "hotline_sla_alerts_total{{kind=\"breach\"}} {}",
        t.alerts_breach.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "hotline_sla_alerts_total{{kind=\"recovery\"}} {}",
        t.alerts_recovery.load(Ordering::Relaxed)
    );
    counter(
        o,
        "hotline_sla_webhook_failures_total",
        "Alerts the webhook did not take.",
        t.webhook_failures.load(Ordering::Relaxed),
    );
    let last_year = t.calendar_last_year.load(Ordering::Relaxed);
    gauge(
        o,
        "hotline_calendar_last_year",
        "The last year the dialplan's holiday calendar has days for (0: none).",
        last_year as f64,
    );
    let this_year = i64::from(rep.zone.date(crate::util::time::unix_ms()).year());
    gauge(
        o,
        "hotline_calendar_next_year_missing",
        "1 when the holiday calendar lacks next year (deadlines crossing into it ignore its holidays).",
        if last_year > this_year { 0.0 } else { 1.0 },
    );

    head(
        o,
        "hotline_calls_waiting",
        "gauge",
        "Callers waiting in a queue.",
    );
    let empty = Vec::new();
    let qs = queues["queues"].as_array().unwrap_or(&empty);
    for q in qs {
        let _ = writeln!(
            o,
            "hotline_calls_waiting{{queue=\"{}\"}} {}",
            esc(q["name"].as_str().unwrap_or("")),
            q["waiting"].as_u64().unwrap_or(0)
        );
    }
    head(
        o,
        "hotline_longest_wait_seconds",
        "gauge",
        "Longest current wait in a queue.",
    );
    for q in qs {
        let _ = writeln!(
            o,
            "hotline_longest_wait_seconds{{queue=\"{}\"}} {}",
            esc(q["name"].as_str().unwrap_or("")),
            q["longest_wait_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
        );
    }
    head(o, "hotline_agents", "gauge", "Agents and seats by state.");
    let mut states: std::collections::BTreeMap<String, u64> = [
        "ready",
        "ringing",
        "on_call",
        "wrap_up",
        "paused",
        "unreachable",
        "logged_out",
    ]
    .iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    for a in agents["agents"].as_array().unwrap_or(&empty) {
        *states
            .entry(a["state"].as_str().unwrap_or("unknown").to_string())
            .or_default() += 1;
    }
    for (state, n) in states {
        let _ = writeln!(o, "hotline_agents{{state=\"{}\"}} {n}", esc(&state));
    }

    histogram(
        o,
        "hotline_wait_seconds",
        "From offer to answer, of answered calls.",
        &t.wait,
    );
    histogram(
        o,
        "hotline_post_dial_delay_seconds",
        "From the caller's INVITE to its first ringback.",
        &t.post_dial_delay,
    );

    let tk = &rep.tickets;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(
        o,
        "hotline_tickets_delivered_total",
        "Stub revisions the ticket system took.",
        n(&tk.delivered),
    );
    counter(
        o,
        "hotline_tickets_failed_attempts_total",
        "Delivery attempts that failed (each retried until dead-lettered).",
        n(&tk.failed_attempts),
    );
    counter(
        o,
        "hotline_tickets_dead_total",
        "Stub revisions dead-lettered (an alert each).",
        n(&tk.dead),
    );
    gauge(
        o,
        "hotline_tickets_pending",
        "Stub revisions waiting for delivery.",
        n(&tk.pending) as f64,
    );
    gauge(
        o,
        "hotline_tickets_dead_letters",
        "Stub revisions dead-lettered and not re-driven.",
        n(&tk.dead_letters) as f64,
    );

    if let Some(m) = status.media.get() {
        use crate::media::relay::Stats as S;
        for (name, help, v) in [
            (
                "hotline_media_packets_in_total",
                "RTP and RTCP packets the relay received.",
                S::get(&m.packets_in),
            ),
            (
                "hotline_media_packets_out_total",
                "Packets the relay sent (relayed and played).",
                S::get(&m.packets_out),
            ),
            (
                "hotline_media_played_total",
                "Packets of prompts and hold music sent.",
                S::get(&m.played),
            ),
            (
                "hotline_media_dropped_unknown_total",
                "Packets from an allowed address while another holds the leg, or before its SDP.",
                S::get(&m.dropped_unknown),
            ),
            (
                "hotline_media_dropped_foreign_total",
                "Packets from neither the leg's SDP address nor its signalling IP (never relayed).",
                S::get(&m.dropped_foreign),
            ),
            (
                "hotline_media_dropped_malformed_total",
                "Packets that are not RTP version 2.",
                S::get(&m.dropped_malformed),
            ),
            (
                "hotline_media_dropped_send_total",
                "Packets the kernel would not send (buffer full, unreachable).",
                S::get(&m.dropped_send),
            ),
            (
                "hotline_media_commands_dropped_total",
                "Orders to the relay lost because its queue was full.",
                S::get(&m.commands_dropped),
            ),
            (
                "hotline_media_events_dropped_total",
                "Relay events (digits, timeouts) lost because the core's queue was full.",
                S::get(&m.events_dropped),
            ),
            (
                "hotline_media_recording_dropped_total",
                "Recorded audio chunks dropped because the recording writer fell behind.",
                S::get(&m.record_dropped),
            ),
        ] {
            counter(o, name, help, v);
        }
        gauge(
            o,
            "hotline_media_sessions",
            "Calls whose media is anchored at the relay.",
            S::get(&m.sessions) as f64,
        );
    }
    counter(
        o,
        "hotline_store_written_total",
        "Call records committed to the database.",
        t.written.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_store_write_errors_total",
        "Failed database writes (each retried).",
        t.write_errors.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_store_dropped_total",
        "Records of refused requests dropped while the store queue was full.",
        t.dropped.load(Ordering::Relaxed),
    );
    gauge(
        o,
        "hotline_store_queued",
        "Records waiting in the writer's queue.",
        t.queued.load(Ordering::Relaxed) as f64,
    );
    gauge(
        o,
        "hotline_store_held",
        "Records held in memory because the queue was full.",
        t.held.load(Ordering::Relaxed) as f64,
    );
    gauge(
        o,
        "hotline_store_backlog",
        "1 while new calls are refused for the store backlog.",
        if t.backlogged.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        },
    );
    gauge(
        o,
        "hotline_http_connections",
        "HTTP connections open (at most [http] max_connections).",
        conns.open.load(Ordering::Relaxed) as f64,
    );
    counter(
        o,
        "hotline_http_refused_total",
        "HTTP connections closed at once, over [http] max_connections or max_per_source.",
        conns.refused.load(Ordering::Relaxed),
    );
    counter(
        o,
        "hotline_http_timeouts_total",
        "HTTP connections closed for a TLS handshake or request headers later than [http] header_timeout_s (idle keep-alive included).",
        conns.timed_out.load(Ordering::Relaxed),
    );
    out
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: f64) {
    head(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {v}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    head(o, name, "counter", help);
    let _ = writeln!(o, "{name} {v}");
}

fn histogram(o: &mut String, name: &str, help: &str, h: &Histogram) {
    head(o, name, "histogram", help);
    let (buckets, sum) = h.cumulative();
    let mut count = 0;
    for (le, n) in buckets {
        count = n;
        match le {
            Some(le) => {
                let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {n}");
            }
            None => {
                let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {n}");
            }
        }
    }
    let _ = writeln!(o, "{name}_sum {sum}\n{name}_count {count}");
}

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The callbacks' gauges (漏接回拨), when the store answered.
pub fn callbacks(out: &mut String, c: &crate::store::CallbackSummary) {
    use std::fmt::Write as _;
    let mut gauge = |name: &str, help: &str, v: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        );
    };
    gauge(
        "hotline_callbacks_pending",
        "Missed calls still owed a callback.",
        c.pending as f64,
    );
    gauge(
        "hotline_callback_oldest_pending_seconds",
        "How long the oldest missed call owed a callback has waited.",
        c.oldest_pending_age_s.unwrap_or(0) as f64,
    );
    gauge(
        "hotline_callbacks_due",
        "Missed calls of the last 7 days owed a callback whose limit (callback_within_h) has passed.",
        c.due as f64,
    );
    gauge(
        "hotline_callbacks_within_limit",
        "Of those, called back within the limit.",
        c.within_limit as f64,
    );
    if let Some(share) = c.within_limit_share {
        gauge(
            "hotline_callbacks_within_limit_ratio",
            "hotline_callbacks_within_limit / hotline_callbacks_due (absent with none due).",
            share,
        );
    }
}
