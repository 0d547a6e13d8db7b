//! The Grafana dashboard (`deploy/grafana/hotline-gateway.json`) asks only for
//! what the gateway serves: every metric its queries name, with the label
//! values they select, is in a running gateway's `/metrics` once it has
//! taken a call (and its store has a missed call owed a callback).

use std::time::Duration;

use crate::support::*;

/// `(metric, [(label, value)])` for every `name{…}` or bare `hotline_…` in a query.
fn selectors(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("hotline_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches("_bucket").to_string();
        let mut labels = Vec::new();
        let after = &tail[end..];
        if let Some(sel) = after.strip_prefix('{') {
            let close = sel.find('}').unwrap_or(sel.len());
            for pair in sel[..close].split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("label=value");
                labels.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
            }
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_dashboard_query_names_a_metric_the_gateway_serves() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/grafana/hotline-gateway.json"),
    )
    .expect("the dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\n\
max_wait_s = 2\nagents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n"
        .into();
    opts.extra_config = "[store]\ndatabase = \"sqlite:calls.db\"\n".into();
    let gw = Gateway::start(opts);
    // One caller missed (no agent yet: given up at max wait), one answered.
    let call = |hangup: &str| {
        Softphone::start(&[
            "call".into(),
            "12345".into(),
            "--server".into(),
            gw.sip.to_string(),
            "--hangup-after-ms".into(),
            hangup.into(),
            "--max-wait-s".into(),
            "10".into(),
        ])
        .finish(Duration::from_secs(20))
        .expect("caller")
    };
    assert_eq!(call("200")["answered"], 0);
    let _a = agent(&gw, 2001, "secret-2001", &["--answer-after-ms", "100"]);
    gw.wait_until("agent ready", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"]
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["state"] == "ready"))
    });
    assert_eq!(call("300")["answered"], 1);
    gw.wait_json(
        "/api/v1/calls",
        "both calls stored",
        Duration::from_secs(10),
        |v| v["calls"].as_array().is_some_and(|c| c.len() == 2),
    );
    let (code, metrics) = http_get(gw.http, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    let lines: Vec<&str> = metrics.lines().filter(|l| !l.starts_with('#')).collect();
    for expr in &exprs {
        for (name, labels) in selectors(expr) {
            let served = lines.iter().any(|l| {
                let bare = l.starts_with(&format!("{name} "));
                let with = l.starts_with(&format!("{name}{{"))
                    || l.starts_with(&format!("{name}_bucket{{"));
                (bare && labels.is_empty())
                    || (with
                        && labels
                            .iter()
                            .all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
            });
            assert!(
                served,
                "{expr}: {name} {labels:?} is not in /metrics:\n{}",
                lines
                    .iter()
                    .filter(|l| l.starts_with(&name))
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
