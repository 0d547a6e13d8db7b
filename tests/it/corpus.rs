//! The RFC 4475 torture corpus and the hotline samples: parsed directly, answered
//! by the pure core, and sent to the running binary inside a private network
//! namespace (the messages name foreign hosts; nothing may leave the machine).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_gateway::call::{Core, CoreConfig};
use hotline_gateway::sip::{Peer, Transport, framing, message};

use crate::support::*;

struct Case {
    set: &'static str,
    file: String,
    valid: bool,
    data: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let mut out = Vec::new();
    for set in ["rfc4475", "hotline"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(set);
        let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            out.push(Case {
                set,
                file: cols[0].to_string(),
                valid: cols[1] == "valid",
                data: std::fs::read(dir.join(cols[0])).unwrap(),
            });
        }
    }
    out
}

/// The status code each message deserves, or `None` for a silent drop (responses
/// matching no transaction, and requests no response can be addressed to).
/// For hotline INVITEs to 12345 the answer is `100` and a callee leg.
fn expected(file: &str) -> Option<u16> {
    Some(match file {
        // Valid requests: what the dialplan and the method say.
        "wsinv.dat" => 481,                 // carries a To tag: an unknown dialog
        "intmeth.dat" | "esc02.dat" => 501, // extension methods
        "esc01.dat" | "longreq.dat" | "inv2543.dat" => 404, // INVITEs to numbers not in the plan
        // REGISTER without credentials: the registrar's digest challenge.
        "escnull.dat" | "dblreq.dat" | "unksm2.dat" | "regaut01.dat" | "cparam01.dat"
        | "cparam02.dat" | "regescrt.dat" => 401,
        "mpart01.dat" => 405, // MESSAGE: not a method the gateway serves
        "lwsdisp.dat" | "semiuri.dat" | "transports.dat" | "badbranch.dat" => 200, // OPTIONS
        "unkscm.dat" | "novelsc.dat" => 416,
        "bext01.dat" => 420,
        "invut.dat" => 415,
        "sdp01.dat" => 406,
        "zeromf.dat" => 483,
        "insuf.dat" | "multi01.dat" | "mcl01.dat" => 400,
        "badvers.dat" => 505,
        "info_dtmf.dat" | "multi_via.dat" => 481, // in-dialog, no such dialog
        "tel_ruri.dat" | "utf8_display.dat" | "diversion.dat" | "compact.dat" | "ipv6.dat" => 100,
        // Responses to no transaction of ours, and unaddressable garbage: dropped.
        "unreason.dat" | "noreason.dat" | "bcast.dat" | "scalarlg.dat" | "bigcode.dat"
        | "test.dat" | "prack183.dat" | "reason_cn.dat" => return None,
        // Every other invalid request: 400 with a reason phrase.
        _ => 400,
    })
}

/// The only valid messages allowed not to parse, and why.
const KNOWN_PARSE_FAILURES: &[(&str, &str)] = &[(
    "mcl01.dat",
    "two Content-Length values: the framer refuses it (RFC 4475 §3.3.9 allows the parser to flag it) and the gateway answers 400",
)];

#[test]
fn valid_messages_parse() {
    let mut failures = Vec::new();
    let mut valid = 0;
    for c in corpus().iter().filter(|c| c.valid) {
        valid += 1;
        let r = framing::frame_datagram(&c.data, 65_535)
            .map_err(|e| e.to_string())
            .and_then(|n| message::parse(&c.data[..n]).map_err(|e| e.to_string()));
        if let Err(e) = r {
            failures.push((c.file.clone(), e));
        }
    }
    for (file, why) in &failures {
        eprintln!("valid message not parsed: {file}: {why}");
    }
    assert!(failures.len() <= 3, "too many failures: {failures:?}");
    let names: Vec<&str> = failures.iter().map(|(f, _)| f.as_str()).collect();
    let known: Vec<&str> = KNOWN_PARSE_FAILURES.iter().map(|(f, _)| *f).collect();
    assert_eq!(names, known, "the documented failures, no others");
    assert_eq!(valid, 30 + 9);
}

fn core() -> Core {
    // The same plan as the socket test: 12345 straight to a SIP target.
    let plan = hotline_gateway::dialplan::parse_sources(&[(
        "lines.toml".into(),
        "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"sip:127.0.0.1:9\"\n".into(),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        max_duration: Duration::from_secs(600),
        ..Default::default()
    };
    Core::new(cfg, Arc::new(plan), 1, Instant::now())
}

/// The first final answer, else `100` when the request is proceeding.
fn disposition(codes: impl Iterator<Item = u16>) -> Option<u16> {
    let mut got = None;
    for code in codes {
        if code >= 200 {
            return Some(code);
        }
        got = Some(code);
    }
    got
}

fn status_code(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

#[test]
fn every_message_gets_the_answer_it_deserves_from_the_core() {
    for c in corpus() {
        let mut core = core();
        let now = Instant::now();
        let peer = Peer {
            transport: Transport::Udp,
            addr: "127.0.0.1:40000".parse().unwrap(),
        };
        core.handle_datagram(now, &c.data, peer);
        let answers: Vec<_> = std::iter::from_fn(|| core.poll_transmit())
            .filter(|t| status_code(&t.bytes).is_some())
            .collect();
        let got = disposition(answers.iter().filter_map(|t| status_code(&t.bytes)));
        assert_eq!(got, expected(&c.file), "{}/{}", c.set, c.file);
        for t in &answers {
            assert_eq!(t.peer, peer, "answers go back where the request came from");
            let line = String::from_utf8_lossy(&t.bytes)
                .lines()
                .next()
                .unwrap()
                .to_string();
            assert!(
                line.len() > "SIP/2.0 400 ".len(),
                "{}: a reason phrase: {line}",
                c.file
            );
        }
        // Then run every timer out: nothing may stay behind.
        let mut t = now;
        while let Some(at) = core.poll_timeout() {
            t = at.max(t);
            core.handle_timeout(t);
            while core.poll_transmit().is_some() {}
            assert!(
                t < now + Duration::from_secs(600),
                "{}: timers never end",
                c.file
            );
        }
        assert_eq!(core.transactions(), 0, "{}: leaked transaction", c.file);
        assert_eq!(core.active_calls(), 0, "{}: leaked call", c.file);
    }
}

/// Runs the socket test inside `unshare --net` with only loopback up.
#[test]
fn every_message_over_a_socket_in_a_private_network_namespace() {
    if std::env::var_os("HGW_IN_NETNS").is_some() {
        return over_socket();
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && exec '{}' --exact corpus::every_message_over_a_socket_in_a_private_network_namespace --nocapture --test-threads 1",
            exe.display()
        ))
        .env("HGW_IN_NETNS", "1")
        .status();
    match status {
        Ok(s) => assert!(s.success(), "the namespaced run failed: {s}"),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("unshare is needed (util-linux) and CI=true: {e}")
        }
        Err(e) => {
            eprintln!("\nSKIPPED: cannot run unshare --net ({e}); needs root or user namespaces\n")
        }
    }
}

fn over_socket() {
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.t1_ms = 10; // so that every timer (64·T1 = 640 ms) runs out quickly
    let mut gw = Gateway::start(opts);
    let mut branches = std::collections::HashSet::new();
    for c in corpus() {
        // Messages that reuse a branch are retransmissions to the transaction layer:
        // let the earlier transaction end first.
        let text = String::from_utf8_lossy(&c.data);
        let branch = text
            .split("branch=")
            .nth(1)
            .map(|b| b.split([';', '\r', ',']).next().unwrap_or("").to_string());
        if let Some(b) = branch
            && !branches.insert(b)
        {
            gw.wait_health("earlier transactions ended", Duration::from_secs(10), |h| {
                h["transactions"] == 0
            });
        }
        // A socket per message: retransmitted finals of earlier ones go elsewhere.
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A message that deserves an answer may wait for it on a busy machine; one
        // that deserves silence is given a short while to prove it.
        let wait = if expected(&c.file).is_some() {
            3000
        } else {
            300
        };
        s.set_read_timeout(Some(Duration::from_millis(wait)))
            .unwrap();
        s.send_to(&c.data, gw.sip).unwrap();
        let mut buf = vec![0u8; 70_000];
        let mut codes = Vec::new();
        // UDP: a client retransmits a request left unanswered (RFC 3261 §17.1), and
        // so does this test, once, for a message that deserves an answer. (Seen in
        // CI under load: one REGISTER unanswered for 3 s; see the closing note.)
        if expected(&c.file).is_some() && s.peek_from(&mut buf).is_err() {
            eprintln!(
                "{}/{}: no answer within {wait} ms; retransmitting",
                c.set, c.file
            );
            s.send_to(&c.data, gw.sip).unwrap();
        }
        // The first answer, and a final one if it follows at once.
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            codes.extend(status_code(&buf[..n]));
            if codes.last().is_some_and(|c| *c >= 200) {
                break;
            }
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
        }
        let got = disposition(codes.into_iter());
        assert_eq!(got, expected(&c.file), "{}/{} over UDP", c.set, c.file);
    }
    assert!(gw.alive(), "the gateway survived the corpus");
    gw.wait_health(
        "no transaction or call left",
        Duration::from_secs(10),
        |h| h["transactions"] == 0 && h["active_calls"] == 0,
    );
}
