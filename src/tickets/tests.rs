use super::deliver::{TicketsConfig, Verdict, backoff_ms, verdict};
use super::*;
use crate::cdr::{Event, EventKind};

fn offer() -> Offer {
    Offer {
        id: "abc-7".into(),
        sip_call_id: "7@sipp".into(),
        caller: "13800000000".into(),
        called: "12345".into(),
        original: Some("12315".into()),
        line: "12315".into(),
        line_name: "12315 市场监管".into(),
        mode: "call_forwarding".into(),
        department: Some("市场监督管理局".into()),
        trunk: Some("police-110".into()),
        transfer_number: Some("03514040000".into()),
        offered_to: "hotline".into(),
        at_ms: 1_795_000_000_000,
        deadline: Some("2026-12-04".into()),
    }
}

fn record(events: &[(i64, EventKind, &str)], outcome: &str) -> CallRecord {
    let t0 = 1_795_000_000_000;
    let events: Vec<Event> = events
        .iter()
        .map(|(dt, kind, d)| Event {
            at_ms: t0 + dt,
            kind: *kind,
            detail: Some(d.to_string()),
        })
        .collect();
    let answered = events.iter().find(|e| e.kind == EventKind::Answered);
    CallRecord {
        id: "abc-7".into(),
        sip_call_id: "7@sipp".into(),
        caller: "13800000000".into(),
        called: "12345".into(),
        original: None,
        line: Some("12315".into()),
        mode: Some("call_forwarding".into()),
        department: None,
        trunk: None,
        queue: Some("hotline".into()),
        agent: Some("1001".into()),
        answered_by: answered.map(|e| {
            if e.detail.as_deref() == Some("legacy") {
                "legacy"
            } else {
                "12345"
            }
            .to_string()
        }),
        transferred_to: None,
        outcome: Some(outcome.into()),
        reason: "call.caller_hangup".into(),
        final_code: 200,
        received_at_ms: t0,
        offered_at_ms: Some(t0 + 1),
        answered_at_ms: answered.map(|e| e.at_ms),
        ended_at_ms: events.last().map_or(t0, |e| e.at_ms),
        survey: None,
        recording: None,
        callback_pending: outcome == "abandoned",
        callback_state: None,
        callback_done_at_ms: None,
        events,
    }
}

#[test]
fn an_open_stub_carries_the_offer() {
    let s = open(&offer());
    assert_eq!((s.revision, s.state), (1, StubState::Open));
    assert_eq!(s.schema, SCHEMA);
    assert_eq!(s.offered_at, "2026-11-18T11:06:40.000Z");
    assert_eq!(s.deadline.as_deref(), Some("2026-12-04"));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["state"], "open");
    assert_eq!(json["line_name"], "12315 市场监管");
    assert_eq!(json["trunk"], "police-110", "where the call came in from");
    assert_eq!(json["transfer_number"], "03514040000");
}

#[test]
fn final_states_follow_the_outcome() {
    use EventKind::*;
    type Case<'a> = (&'a [(i64, EventKind, &'a str)], &'a str, StubState);
    let cases: [Case; 5] = [
        (
            &[
                (0, Received, "12345"),
                (1, Offered, "hotline"),
                (3000, Answered, "1001"),
                (9000, CallerHungUp, "x"),
            ],
            "answered",
            StubState::Answered,
        ),
        (
            &[
                (0, Received, "12345"),
                (1, Offered, "hotline"),
                (9000, CallerHungUp, "x"),
            ],
            "abandoned",
            StubState::Callback,
        ),
        (
            &[
                (0, Received, "12345"),
                (1, Offered, "legacy:12333"),
                (2000, Answered, "legacy"),
                (9000, CalleeHungUp, "x"),
            ],
            "answered",
            StubState::LegacyAnswered,
        ),
        (
            &[
                (0, Received, "12345"),
                (1, Offered, "hotline"),
                (2000, Answered, "1001"),
                (5000, TransferredOut, "110"),
                (9000, CalleeHungUp, "x"),
            ],
            "transferred_out",
            StubState::Transferred,
        ),
        (
            &[
                (0, Received, "12345"),
                (1, Offered, "sip:12398"),
                (100, GatewayEnded, "leg.callee_busy"),
            ],
            "failed",
            StubState::Failed,
        ),
    ];
    for (events, outcome, want) in cases {
        let r = record(events, outcome);
        let s = complete(&r, Some("n".into()), Some("2026-12-04".into())).unwrap();
        assert_eq!(s.state, want, "{outcome}: {events:?}");
        assert_eq!(s.revision, 2);
        assert_eq!(s.outcome.as_deref(), Some(outcome));
        assert_eq!(s.answered_at.is_some(), r.answered_at_ms.is_some());
    }
    let mut never = record(&[(0, EventKind::Received, "0085212345")], "x");
    never.outcome = None;
    assert!(
        complete(&never, None, None).is_none(),
        "no work order for a call never offered"
    );
}

#[test]
fn an_interrupted_stub_is_the_next_revision() {
    let s = interrupted(&open(&offer()), 1_795_000_060_000);
    assert_eq!((s.revision, s.state), (2, StubState::Interrupted));
    assert_eq!(s.reason.as_deref(), Some("gateway.restart"));
    assert_eq!(s.ended_at.as_deref(), Some("2026-11-18T11:07:40.000Z"));
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
    let cfg = TicketsConfig::default();
    for (attempts, lo, hi) in [
        (1, 250, 500),
        (2, 500, 1000),
        (3, 1000, 2000),
        (20, 30_000, 60_000),
    ] {
        for random in [0, 7, 12_345, u64::MAX] {
            let b = backoff_ms(&cfg, attempts, None, random);
            assert!(
                (lo..=hi).contains(&b),
                "attempt {attempts}: {b} not in {lo}..={hi}"
            );
        }
    }
    assert_eq!(
        backoff_ms(&cfg, 1, Some(30), 0),
        30_000,
        "Retry-After wins when longer"
    );
}

#[test]
fn status_codes_are_judged() {
    for (code, v) in [
        (200, Verdict::Delivered),
        (201, Verdict::Delivered),
        (409, Verdict::Delivered),
        (429, Verdict::Retry),
        (500, Verdict::Retry),
        (503, Verdict::Retry),
        (408, Verdict::Retry),
        (400, Verdict::Reject),
        (401, Verdict::Retry),
        (404, Verdict::Retry),
        (422, Verdict::Reject),
    ] {
        assert_eq!(verdict(code), v, "{code}");
    }
}

#[test]
fn config_rejects_bad_values() {
    assert_eq!(TicketsConfig::default().validate(), Ok(()));
    let tls = TicketsConfig {
        url: Some("https://tickets.example/".into()),
        ..Default::default()
    };
    assert_eq!(tls.validate(), Ok(()), "https:// is delivered with rustls");
    let bad = TicketsConfig {
        url: Some("ftp://tickets.example/".into()),
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().starts_with("url"));
    let bad = TicketsConfig {
        max_attempts: 0,
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    assert!(
        toml::from_str::<TicketsConfig>("urll = \"http://x\"").is_err(),
        "typos refused"
    );
}

#[test]
fn stubs_match_the_published_json_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/ticket-stub.schema.json")).unwrap();
    assert_eq!(schema["$id"], SCHEMA);
    let props = schema["properties"].as_object().unwrap();
    let stub = serde_json::to_value(open(&offer())).unwrap();
    let fields = stub.as_object().unwrap();
    let mut missing: Vec<&String> = fields.keys().filter(|k| !props.contains_key(*k)).collect();
    missing.extend(props.keys().filter(|k| !fields.contains_key(*k)));
    assert!(missing.is_empty(), "schema and Stub differ on {missing:?}");
    for r in schema["required"].as_array().unwrap() {
        assert!(!stub[r.as_str().unwrap()].is_null(), "required {r} is null");
    }
    let states = schema["properties"]["state"]["enum"].as_array().unwrap();
    assert_eq!(states.len(), StubState::ALL.len(), "{states:?}");
    for s in StubState::ALL {
        assert!(states.contains(&serde_json::json!(s.as_str())), "{s:?}");
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
}
