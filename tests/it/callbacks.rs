//! Calling citizens back (漏接回拨) with the real binary: three callers are
//! missed (the queue gives up on them), then an agent calls each back from
//! its softphone over the outbound trunk, where sipp answers, is busy, and
//! rings until given up on; each attempt is recorded with its result and the
//! missed call's state follows. An agent dialling anything else gets 403 and
//! nothing goes out (the trunk's sipp sees no INVITE).

use std::time::Duration;

use crate::support::*;

const CARRIER: &str = "127.0.0.2";
const DESK: &str = "127.0.0.3";

fn gateway(sbc_port: u16) -> Gateway {
    let mut opts = GwOpts::to("queue:q");
    // The carrier and the agents' desks apart: an agent is no trunk.
    opts.trunk_sources = vec![format!("{CARRIER}/32")];
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\nmax_wait_s = 1\n\
agents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[trunk]]\nname = \"out\"\nkind = \"outbound\"\ntarget = \"sip:127.0.0.1:{sbc_port}\"\n\
caller_id = \"12345\"\nallow = [\"1XXXXXXXXXX\"]\nmax_concurrent = 2\ncps = 5\n"
    );
    opts.extra_config = "[store]\ndatabase = \"sqlite:calls.db\"\n".into();
    Gateway::start(opts)
}

/// A citizen calls from the carrier and is given up on at the queue's max wait.
fn missed(gw: &Gateway, from: &str) {
    let s = Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--from".into(),
        from.into(),
        "--listen".into(),
        format!("{CARRIER}:0"),
        "--server".into(),
        gw.sip.to_string(),
        "--max-wait-s".into(),
        "10".into(),
    ])
    .finish(Duration::from_secs(20))
    .expect("caller");
    assert_eq!(s["answered"], 0, "{s}");
}

/// Agent 2001 dials `number` from its desk; its summary.
fn dial(gw: &Gateway, number: &str) -> serde_json::Value {
    Softphone::start(&[
        "call".into(),
        number.into(),
        "--from".into(),
        "2001".into(),
        "--password".into(),
        "secret-2001".into(),
        "--listen".into(),
        format!("{DESK}:0"),
        "--server".into(),
        gw.sip.to_string(),
        "--hangup-after-ms".into(),
        "300".into(),
        "--max-wait-s".into(),
        "3".into(),
    ])
    .finish(Duration::from_secs(20))
    .expect("agent dialling")
}

#[test]
fn an_agent_calls_missed_citizens_back_and_each_attempt_is_recorded() {
    let Some(sipp) = sipp() else { return };
    let sbc = free_port();
    let gw = gateway(sbc);
    for from in ["13700000001", "13700000002", "13700000003"] {
        missed(&gw, from);
    }
    let records = gw.records();
    let id_of = |from: &str| {
        records
            .iter()
            .find(|r| r["caller"] == from)
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no record of {from}: {records:?}"))
            .to_string()
    };
    let ids = ["13700000001", "13700000002", "13700000003"].map(id_of);
    assert!(
        records.iter().all(|r| r["callback_pending"] == true),
        "{records:?}"
    );
    // The agent's phone registers at its desk.
    let _desk = agent(
        &gw,
        2001,
        "secret-2001",
        &[
            "--listen",
            &format!("{DESK}:0"),
            "--answer-after-ms",
            "60000",
        ],
    );
    gw.wait_until("agent 2001 registered", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"]
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["id"] == "2001" && a["state"] == "ready"))
    });
    // Anything else: 403, and nothing reaches the trunk (no sipp runs there
    // yet: an INVITE out would time out, not be refused).
    let refused = dial(&gw, "16900000000");
    assert_eq!(refused["failures_by_code"]["403"], 1, "{refused}");
    // The gateway reads the owed numbers from the store every 5 s.
    std::thread::sleep(Duration::from_secs(6));

    // 1: the citizen answers.
    let uas = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), sbc.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(30),
    );
    let s = dial(&gw, "13700000001");
    assert_eq!(s["answered"], 1, "{s}");
    let r = uas.finish();
    assert_eq!(r.successful, 1, "{r:?}");
    // 2: busy.
    let uas = Sipp::start(
        &sipp,
        "uas_busy.xml",
        &["-p".into(), sbc.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(30),
    );
    let s = dial(&gw, "13700000002");
    assert_eq!(s["failures_by_code"]["486"], 1, "{s}");
    drop(uas);
    // 3: rings until the agent gives up (3 s).
    let _uas = Sipp::start(
        &sipp,
        "uas_ring_forever.xml",
        &["-p".into(), sbc.to_string(), "-m".into(), "1".into()],
        Duration::from_secs(30),
    );
    let s = dial(&gw, "13700000003");
    assert_eq!(s["answered"], 0, "{s}");

    let standing = |id: &str| gw.get_json(&format!("/api/v1/calls/{id}/callback"));
    gw.wait_until("three attempts recorded", Duration::from_secs(10), || {
        ids.iter().all(|id| {
            standing(id)["attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        })
    });
    let (a, b, c) = (standing(&ids[0]), standing(&ids[1]), standing(&ids[2]));
    assert_eq!(a["attempts"][0]["result"], "answered", "{a}");
    assert_eq!(a["attempts"][0]["agent"], "2001", "{a}");
    assert_eq!(a["callback_state"], "done", "{a}");
    assert_eq!(a["callback_pending"], false, "{a}");
    assert_eq!(b["attempts"][0]["result"], "busy", "{b}");
    assert_eq!(b["callback_state"], "pending", "{b}");
    assert_eq!(c["attempts"][0]["result"], "no_answer", "{c}");
    assert_eq!(c["callback_pending"], true, "{c}");
    // The figures: two still owed.
    let sla = gw.get_json("/api/v1/sla");
    assert_eq!(sla["callbacks"]["pending"], 2, "{}", sla["callbacks"]);
    let metrics = http_get(gw.http, "/metrics").expect("metrics").1;
    assert!(
        metrics.contains("hotline_callbacks_pending 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("callback"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The API dials a callback: the agent's softphone rings first and answers,
/// then the citizen (a softphone at the outbound trunk's address) is called
/// with the hotline's number, and the attempt is on the missed call.
#[test]
fn the_api_rings_the_agent_first_then_calls_the_citizen_back() {
    let sbc = free_port();
    let mut opts = GwOpts::to("queue:q");
    opts.trunk_sources = vec![format!("{CARRIER}/32")];
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"q\"\nring_timeout_s = 5\nwrap_up_s = 0\nmax_wait_s = 1\n\
agents = [\"2001\"]\n\n\
[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"secret-2001\"\n\n\
[[trunk]]\nname = \"out\"\nkind = \"outbound\"\ntarget = \"sip:127.0.0.1:{sbc}\"\n\
caller_id = \"12345\"\nallow = [\"1XXXXXXXXXX\"]\nmax_concurrent = 2\ncps = 5\n"
    );
    opts.extra_config =
        "[store]\ndatabase = \"sqlite:calls.db\"\n[media]\nqueued = \"early_media\"\nsurvey = false\n"
            .into();
    let gw = Gateway::start(opts);
    missed(&gw, "13700000001");
    let id = gw.records()[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/calls/{id}/callback/dial");
    // The citizen's phone, behind the outbound trunk.
    let citizen = Softphone::answering("13700000001", sbc, 30, &[]);
    // Before the agent's phone is registered: refused, nothing dialled.
    let body = r#"{"agent":"2001"}"#;
    let (code, text) = http_post(gw.http, &path, body).unwrap();
    assert!(code == 409 || code == 404, "{code} {text}");
    let desk = Softphone::start(&[
        "agent".into(),
        "--user".into(),
        "2001".into(),
        "--password".into(),
        "secret-2001".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--listen".into(),
        format!("{DESK}:0"),
        "--answer-after-ms".into(),
        "300".into(),
        "--talk-ms".into(),
        "1500".into(),
        "--calls".into(),
        "1".into(),
        "--run-s".into(),
        "30".into(),
    ]);
    gw.wait_until("agent 2001 ready", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"][0]["state"] == "ready"
    });
    // Without a credential: 401, nothing rings.
    let (code, _) = http_post_as(gw.http, &path, body, None).unwrap();
    assert_eq!(code, 401);
    // The owed numbers reach the core from the store every few seconds.
    let mut answer = (0, String::new());
    gw.wait_until("the callback dialled", Duration::from_secs(15), || {
        answer = http_post(gw.http, &path, body).unwrap();
        answer.0 != 404
    });
    assert_eq!(answer.0, 202, "{}", answer.1);
    let d = desk.finish(Duration::from_secs(30)).expect("agent");
    assert_eq!(d["answered"], 1, "the agent's phone rang first: {d}");
    let c = citizen.finish(Duration::from_secs(30)).expect("citizen");
    assert_eq!(c["answered"], 1, "{c}");
    assert_eq!(
        c["screen_pop_seen"].as_object().map(|m| m.len()),
        Some(0),
        "{c}"
    );
    gw.wait_until("the attempt recorded", Duration::from_secs(10), || {
        let s = gw.get_json(&format!("/api/v1/calls/{id}/callback"));
        s["callback_state"] == "done"
            && s["attempts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["result"] == "answered" && x["agent"] == "2001")
            })
    });
}
