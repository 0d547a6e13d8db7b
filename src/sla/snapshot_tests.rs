//! The snapshot's JSON against the contract in docs/sla-api.md.

use std::collections::BTreeSet;

use serde_json::Value;

use super::testkit::{MIN, T0, done, done_on};
use super::{Alert, Figures, Outcome, SlaConfig, Snapshot, Tracker};

const DOC: &str = include_str!("../../docs/sla-api.md");

/// The ```json blocks of the document, in order.
fn doc_blocks() -> Vec<&'static str> {
    DOC.split("```json")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or(""))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

/// The keys of the object written inside the first `[ … ]` on the document line
/// that starts with `"field":`.
fn doc_item_keys(field: &str) -> BTreeSet<String> {
    let line = doc_blocks()[0]
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("\"{field}\":")))
        .unwrap_or_else(|| panic!("{field} in the document"));
    let item = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
    keys(&serde_json::from_str(item).unwrap())
}

/// A tracker with a line in breach, an alert, two intervals and several keys.
fn busy() -> Snapshot {
    let mut t = Tracker::new(SlaConfig::default());
    for _ in 0..20 {
        t.record(&done_on(Outcome::Abandoned, T0, "12315"));
    }
    for _ in 0..30 {
        t.record(&done(Outcome::Answered, T0 + 20 * MIN));
    }
    t.record(&done(Outcome::ShortAbandoned, T0 + 20 * MIN));
    t.snapshot(T0 + 20 * MIN)
}

#[test]
fn top_level_fields_are_the_documented_ones() {
    let documented: BTreeSet<String> = doc_blocks()[0]
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect();
    assert_eq!(documented.len(), 13, "{documented:?}");
    let v = serde_json::to_value(busy()).unwrap();
    assert_eq!(keys(&v), documented);
    assert_eq!(v["windows"], serde_json::json!(["15m", "1h", "24h"]));
    assert_eq!(
        keys(&v["overall"]),
        ["15m", "1h", "24h"].map(String::from).into()
    );
    assert_eq!(v["target"], 0.95);
    assert_eq!(v["generated_at_ms"], T0 + 20 * MIN);
}

#[test]
fn figures_alerts_breaches_and_intervals_match_the_document() {
    let blocks = doc_blocks();
    let figures: Value = serde_json::from_str(blocks[1]).unwrap();
    let alert: Value = serde_json::from_str(blocks[2]).unwrap();
    let v = serde_json::to_value(busy()).unwrap();

    for list in ["lines", "modes", "queues"] {
        for item in v[list].as_array().unwrap() {
            assert_eq!(keys(item), ["key", "windows"].map(String::from).into());
            for w in ["15m", "1h", "24h"] {
                assert_eq!(keys(&item["windows"][w]), keys(&figures), "{list} {w}");
            }
        }
    }
    let lines: Vec<_> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].clone())
        .collect();
    assert_eq!(lines, ["12315", "12345"]);
    let m15 = &v["overall"]["15m"];
    assert_eq!(keys(m15), keys(&figures));
    assert_eq!(
        (m15["offered"].as_u64(), m15["short_abandoned"].as_u64()),
        (Some(31), Some(1))
    );
    assert_eq!(m15["answer_rate"], 1.0, "the abandons ended 20 min ago");
    assert_eq!(v["overall"]["1h"]["answer_rate"], 0.6);
    assert_eq!(v["overall"]["1h"]["breached"], true);

    let a = &v["alerts"][0];
    assert_eq!(keys(a), keys(&alert));
    assert_eq!(
        (a["kind"].as_str(), a["dimension"].as_str()),
        (Some("breach"), Some("overall"))
    );
    assert_eq!(
        (a["key"].as_str(), a["window"].as_str()),
        (Some("all"), Some("1h"))
    );

    let b = &v["breaches"][0];
    assert_eq!(keys(b), doc_item_keys("breaches"));
    assert_eq!(
        (b["dimension"].as_str(), b["window"].as_str()),
        (Some("overall"), Some("1h"))
    );

    let intervals = v["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2);
    assert_eq!(keys(&intervals[0]), doc_item_keys("intervals"));
    assert_eq!(intervals[0]["start_ms"], T0);
    assert_eq!(intervals[1]["start_ms"], T0 + 15 * MIN);

    // The document's examples read back into the types.
    serde_json::from_value::<Figures>(figures).unwrap();
    serde_json::from_value::<Alert>(alert).unwrap();
}

#[test]
fn empty_figures_have_null_rates_and_the_snapshot_round_trips() {
    let empty = Tracker::new(SlaConfig::default()).snapshot(T0);
    let v = serde_json::to_value(&empty).unwrap();
    let f = &v["overall"]["24h"];
    assert_eq!(
        (f["answer_rate"].is_null(), f["service_level"].is_null()),
        (true, true)
    );
    assert_eq!(
        (f["offered"].as_u64(), f["breached"].as_bool()),
        (Some(0), Some(false))
    );
    for list in [
        "lines",
        "modes",
        "queues",
        "breaches",
        "alerts",
        "intervals",
    ] {
        assert_eq!(v[list], serde_json::json!([]), "{list}");
    }
    let busy = busy();
    let back: Snapshot = serde_json::from_str(&serde_json::to_string(&busy).unwrap()).unwrap();
    assert_eq!(back, busy);
}
