//! Attacker tests: SIP signalling. A stranger who can send packets to the gateway
//! (and, here, even one on a trunk's network) cannot predict its identifiers, end,
//! transfer or re-route someone else's call, forge a callee's answer, or make the
//! gateway keep state or records for him.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::*;

/// A raw SIP endpoint on a loopback address of its own.
struct Phone {
    sock: UdpSocket,
    addr: SocketAddr,
}

impl Phone {
    fn on(ip: &str) -> Phone {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        Phone { sock, addr }
    }

    fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).unwrap();
    }

    /// The next message whose first line and headers satisfy `pred`, within `limit`.
    fn expect(&self, what: &str, limit: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        self.wait(limit, pred)
            .unwrap_or_else(|| panic!("{} got no {what} within {limit:?}", self.addr))
    }

    fn wait(&self, limit: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let start = Instant::now();
        let mut buf = [0u8; 65_536];
        while start.elapsed() < limit {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = Msg {
                    text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                };
                if pred(&m) {
                    return Some(m);
                }
            }
        }
        None
    }
}

/// A received message, as text.
#[derive(Debug, Clone)]
struct Msg {
    text: String,
}

impl Msg {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    fn is_status(&self, code: u16) -> bool {
        self.first_line().starts_with(&format!("SIP/2.0 {code} "))
    }

    fn is_request(&self, method: &str) -> bool {
        self.first_line().starts_with(&format!("{method} "))
    }

    fn header(&self, name: &str) -> String {
        self.text
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }

    fn tag(&self, header: &str) -> String {
        let h = self.header(header);
        h.split(";tag=")
            .nth(1)
            .map(|t| t.split(';').next().unwrap().to_string())
            .unwrap_or_default()
    }

    fn cseq_method(&self) -> String {
        self.header("CSeq")
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .into()
    }

    /// A response to this request, with the given status and our `tag` on To.
    fn reply(&self, code: u16, phrase: &str, tag: &str, contact: SocketAddr, sdp: &str) -> String {
        let mut out = format!("SIP/2.0 {code} {phrase}\r\n");
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            for l in self.text.lines() {
                if l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                {
                    out.push_str(l);
                    out.push_str("\r\n");
                }
            }
        }
        let to = self.header("To");
        if to.contains(";tag=") {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={tag}\r\n"));
        }
        out.push_str(&format!("Contact: <sip:seat@{contact}>\r\n"));
        if sdp.is_empty() {
            out.push_str("Content-Length: 0\r\n\r\n");
        } else {
            out.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            ));
        }
        out
    }
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

fn invite(from: &Phone, gw: SocketAddr, call_id: &str, branch: &str) -> String {
    let body = sdp(&from.addr.ip().to_string(), 40_000);
    format!(
        "INVITE sip:12345@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13800138000@{}>;tag=caller1\r\nTo: <sip:12345@{gw}>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:13800138000@{}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        from.addr,
        from.addr.ip(),
        from.addr,
        body.len()
    )
}

/// A request inside a dialog, with the given Call-ID and tags.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    from: &Phone,
    gw: SocketAddr,
    call_id: &str,
    from_tag: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} sip:gw@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{method}{cseq}{from_tag}\r\n\
Max-Forwards: 70\r\nFrom: <sip:x@{}>;tag={from_tag}\r\nTo: <sip:y@{gw}>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:x@{}>\r\n{extra}Content-Length: 0\r\n\r\n",
        from.addr,
        from.addr.ip(),
        from.addr,
    )
}

/// The gateway's tags in OPTIONS answers, one after the other.
fn option_tags(gw: &Gateway, phone: &Phone, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let req = format!(
                "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKopt{i}\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@{1}>;tag=p{i}\r\nTo: <sip:{0}>\r\nCall-ID: opt{i}@probe\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                gw.sip, phone.addr
            );
            phone.send(gw.sip, &req);
            let ok = phone.expect("200 to OPTIONS", Duration::from_secs(5), |m| {
                m.is_status(200) && m.header("Call-ID") == format!("opt{i}@probe")
            });
            u64::from_str_radix(&ok.tag("To"), 16).expect("a hex tag")
        })
        .collect()
}

/// The old generator's step and output function (splitmix64) and its inverse:
/// what an attacker who knew the design would try.
mod splitmix {
    pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    const M1: u64 = 0xBF58_476D_1CE4_E5B9;
    const M2: u64 = 0x94D0_49BB_1331_11EB;

    pub fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(M1);
        z = (z ^ (z >> 27)).wrapping_mul(M2);
        z ^ (z >> 31)
    }

    fn inv_mul(a: u64) -> u64 {
        // Newton's iteration for the inverse modulo 2^64 (a is odd).
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    }

    fn unshift(z: u64, s: u32) -> u64 {
        let mut x = z;
        let mut k = s;
        while k < 64 {
            x = z ^ (x >> s);
            k += s;
        }
        x
    }

    pub fn unmix(z: u64) -> u64 {
        let mut x = unshift(z, 31);
        x = unshift(x.wrapping_mul(inv_mul(M2)), 27);
        unshift(x.wrapping_mul(inv_mul(M1)), 30)
    }

    #[test]
    fn unmix_inverts_mix() {
        for s in [0u64, 1, 42, u64::MAX, GAMMA] {
            assert_eq!(unmix(mix(s)), s);
        }
    }
}

#[test]
fn the_next_tag_cannot_be_predicted_from_earlier_ones() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let phone = Phone::on("127.0.0.1");
    let tags = option_tags(&gw, &phone, 8);
    let mut distinct = tags.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), tags.len(), "tags repeat: {tags:x?}");
    // With the old generator, the state after a tag was unmix(tag), and the next
    // tag mix(state + GAMMA): one OPTIONS answer gave every later identifier.
    for pair in tags.windows(2) {
        let predicted = splitmix::mix(splitmix::unmix(pair[0]).wrapping_add(splitmix::GAMMA));
        assert_ne!(predicted, pair[1], "the next tag was predicted: {tags:x?}");
    }
}

/// A call from `caller` answered by `seat` (a raw endpoint); returns the seat's
/// INVITE and the caller's 200.
fn established(gw: &Gateway, caller: &Phone, seat: &Phone, call_id: &str) -> (Msg, Msg) {
    caller.send(gw.sip, &invite(caller, gw.sip, call_id, "z9hG4bKinv1"));
    let seat_inv = seat.expect("the seat's INVITE", Duration::from_secs(5), |m| {
        m.is_request("INVITE")
    });
    let seat_sdp = sdp("127.0.0.1", 42_000);
    seat.send(
        gw.sip,
        &seat_inv.reply(200, "OK", "seat1", seat.addr, &seat_sdp),
    );
    let ok = caller.expect("200 for the caller", Duration::from_secs(5), |m| {
        m.is_status(200) && m.cseq_method() == "INVITE"
    });
    caller.send(
        gw.sip,
        &in_dialog(
            "ACK",
            caller,
            gw.sip,
            call_id,
            "caller1",
            &ok.tag("To"),
            1,
            "",
        ),
    );
    seat.expect("the seat's ACK", Duration::from_secs(5), |m| {
        m.is_request("ACK")
    });
    (seat_inv, ok)
}

#[test]
fn bye_refer_and_reinvite_with_a_known_call_id_but_wrong_tags_get_481_and_the_call_lives_on() {
    let seat = Phone::on("127.0.0.1");
    let gw = Gateway::start(GwOpts::to(format!("sip:{}", seat.addr)));
    let caller = Phone::on("127.0.0.1");
    let (seat_inv, ok) = established(&gw, &caller, &seat, "victim-1@caller");
    // The attacker knows both Call-IDs (they travel in clear) and the caller's
    // tag, but not the gateway's tags.
    let attacker = Phone::on("127.0.0.3");
    let seat_call_id = seat_inv.header("Call-ID");
    let gw_tag_a = ok.tag("To");
    let gw_tag_b = seat_inv.tag("From");
    let attempts = [
        // Towards the caller leg: right Call-ID and From tag, guessed To tag.
        in_dialog(
            "BYE",
            &attacker,
            gw.sip,
            "victim-1@caller",
            "caller1",
            "guess",
            10,
            "",
        ),
        in_dialog(
            "INVITE",
            &attacker,
            gw.sip,
            "victim-1@caller",
            "caller1",
            "0000000000000000",
            11,
            "",
        ),
        // Towards the seat leg: the gateway's Call-ID, guessed tags.
        in_dialog(
            "BYE",
            &attacker,
            gw.sip,
            &seat_call_id,
            "seat-guess",
            &gw_tag_b,
            12,
            "",
        ),
        in_dialog(
            "BYE",
            &attacker,
            gw.sip,
            &seat_call_id,
            "seat1",
            "guess",
            13,
            "",
        ),
        in_dialog(
            "REFER",
            &attacker,
            gw.sip,
            &seat_call_id,
            "seat-guess",
            &gw_tag_b,
            14,
            &format!("Refer-To: <sip:110@{}>\r\n", gw.sip),
        ),
    ];
    for a in &attempts {
        attacker.send(gw.sip, a);
        let cseq = a
            .lines()
            .find(|l| l.starts_with("CSeq:"))
            .unwrap()
            .to_string();
        let r = attacker.expect("a final answer", Duration::from_secs(5), |m| {
            format!("CSeq: {}", m.header("CSeq")) == cseq && !m.is_status(100)
        });
        assert!(r.is_status(481), "{} got {}", cseq, r.first_line());
    }
    assert!(
        caller
            .wait(Duration::from_millis(500), |m| m.is_request("BYE")
                || m.is_request("INVITE"))
            .is_none(),
        "the caller was touched"
    );
    assert!(
        seat.wait(Duration::from_millis(200), |m| m.is_request("BYE"))
            .is_none(),
        "the seat was touched"
    );
    let h = gw.health();
    assert_eq!(h["active_calls"], 1, "the call lives on: {h}");
    assert_eq!(h["calls_ended"]["call.caller_hangup"], 0);
    // Its real parties still end it.
    caller.send(
        gw.sip,
        &in_dialog(
            "BYE",
            &caller,
            gw.sip,
            "victim-1@caller",
            "caller1",
            &gw_tag_a,
            2,
            "",
        ),
    );
    caller.expect("200 to BYE", Duration::from_secs(5), |m| {
        m.is_status(200) && m.cseq_method() == "BYE"
    });
    let bye = seat.expect("BYE at the seat", Duration::from_secs(5), |m| {
        m.is_request("BYE")
    });
    seat.send(gw.sip, &bye.reply(200, "OK", "seat1", seat.addr, ""));
    gw.wait_health(
        "the call ended by its caller",
        Duration::from_secs(10),
        |h| h["active_calls"] == 0 && h["calls_ended"]["call.caller_hangup"] == 1,
    );
}

#[test]
fn a_forged_answer_from_another_address_is_ignored() {
    let seat = Phone::on("127.0.0.1");
    let gw = Gateway::start(GwOpts::to(format!("sip:{}", seat.addr)));
    let caller = Phone::on("127.0.0.1");
    caller.send(
        gw.sip,
        &invite(&caller, gw.sip, "forge-1@caller", "z9hG4bKinv2"),
    );
    let seat_inv = seat.expect("the seat's INVITE", Duration::from_secs(5), |m| {
        m.is_request("INVITE")
    });
    // The attacker has seen the seat's INVITE (branch, Call-ID, tags) and answers
    // first, from another address: a 200 that would take the audio, then a 486.
    let attacker = Phone::on("127.0.0.3");
    let forged_sdp = sdp("127.0.0.3", 43_000);
    attacker.send(
        gw.sip,
        &seat_inv.reply(200, "OK", "forged", attacker.addr, &forged_sdp),
    );
    attacker.send(
        gw.sip,
        &seat_inv.reply(486, "Busy Here", "forged", attacker.addr, ""),
    );
    assert!(
        caller
            .wait(Duration::from_millis(700), |m| m
                .first_line()
                .starts_with("SIP/2.0 2")
                || m.first_line().starts_with("SIP/2.0 4"))
            .is_none(),
        "a forged answer reached the caller"
    );
    let metrics = http_get(gw.http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert!(
        metrics.contains("hotline_sip_foreign_responses_total 2"),
        "{metrics}"
    );
    // The seat's own answer is taken.
    let seat_sdp = sdp("127.0.0.1", 42_002);
    seat.send(
        gw.sip,
        &seat_inv.reply(200, "OK", "seat1", seat.addr, &seat_sdp),
    );
    let ok = caller.expect("the seat's 200", Duration::from_secs(5), |m| {
        m.is_status(200) && m.cseq_method() == "INVITE"
    });
    assert!(!ok.text.contains("127.0.0.3"), "{}", ok.text);
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// How long the flood lasts (the issue asks for a minute; `HGW_FLOOD_S` shortens
/// it on a laptop).
fn flood_duration() -> Duration {
    Duration::from_secs(
        std::env::var("HGW_FLOOD_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

#[test]
fn a_minute_of_invites_from_a_stranger_leaves_trunk_calls_answered_memory_bounded_and_no_records() {
    let Some(sipp) = sipp() else { return };
    let uas_port = free_port();
    let _uas = Sipp::start(
        &sipp,
        "uas.xml",
        &[
            "-p".into(),
            uas_port.to_string(),
            "-i".into(),
            "127.0.0.1".into(),
        ],
        Duration::from_secs(180),
    );
    let mut opts = GwOpts::to(format!("sip:127.0.0.1:{uas_port}"));
    // The trunk is 127.0.0.1 alone: 127.0.0.9 is a stranger.
    opts.trunk_sources = vec!["127.0.0.1/32".into()];
    let gw = Gateway::start(opts);
    let pid = gw.pid();
    let records_before = gw.get_json("/api/v1/calls?limit=1000")["calls"]
        .as_array()
        .map_or(0, |a| a.len());
    let rss_before = vm_rss_kib(pid);
    // The flood: INVITEs from a stranger, each a new call, 5,000 a second at most.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        let target = gw.sip;
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.9:0").unwrap();
            let me = s.local_addr().unwrap();
            let start = Instant::now();
            let limit = flood_duration();
            let mut sent = 0u64;
            while start.elapsed() < limit && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..50 {
                    let msg = format!(
                        "INVITE sip:12345@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKfl{sent}\r\n\
Max-Forwards: 70\r\nFrom: <sip:13900000000@127.0.0.9>;tag=f{sent}\r\nTo: <sip:12345@{target}>\r\n\
Call-ID: flood{sent}@127.0.0.9\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{me}>\r\nContent-Length: 0\r\n\r\n"
                    );
                    let _ = s.send_to(msg.as_bytes(), target);
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        })
    };
    // Meanwhile the trunk places calls; every one must be answered.
    std::thread::sleep(Duration::from_secs(1));
    let calls = (flood_duration().as_secs() as u32).max(10) * 2;
    let args = uac_args(
        &gw,
        "12345",
        calls,
        &["-i", "127.0.0.1", "-r", "2", "-timeout", "150s"],
    );
    let r = Sipp::start(&sipp, "uac.xml", &args, Duration::from_secs(170)).finish();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flooder.join().unwrap();
    assert_eq!(
        (r.successful, r.failed),
        (u64::from(calls), 0),
        "{r:?}\n{}",
        gw.log()
    );
    assert!(sent > 10_000, "the flood sent only {sent}");
    let rss_after = vm_rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB under the flood"
    );
    let h = gw.health();
    // The trunk's calls keep a few transactions each for Timer J/K; the flood's
    // hundreds of thousands of INVITEs would keep one each for 32 s.
    assert!(h["transactions"].as_u64().unwrap() < 2000, "{h}");
    let want = records_before + calls as usize;
    gw.wait_json(
        "/api/v1/calls?limit=1000",
        "the trunk's calls, and only those, recorded",
        Duration::from_secs(20),
        |v| v["count"].as_u64() == Some(want as u64),
    );
    let metrics = http_get(gw.http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (refused, dropped) = (
        counter("hotline_sip_strangers_refused_total"),
        counter("hotline_sip_strangers_dropped_total"),
    );
    assert!(
        dropped > 0 && refused > 0,
        "{refused} refused, {dropped} dropped"
    );
    // No log line per packet: a handful of summary lines at most.
    let lines = gw.log().lines().count();
    assert!(
        lines < 50,
        "{lines} log lines for {sent} packets:\n{}",
        gw.log()
    );
}

#[test]
fn an_agent_answer_after_a_200_s_queue_wait_reaches_the_caller() {
    // No agent is logged in for 200 s: the caller waits in the queue, past Timer C
    // (3 min) of any proxy on the way, with its INVITE unanswered (early media).
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nring_timeout_s = 10\nwrap_up_s = 0\n\
max_wait_s = 300\nagents = [\"2001\"]\n\n[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\n\
password = \"secret-2001\"\n"
        .into();
    let gw = Gateway::start(opts);
    let caller = Phone::on("127.0.0.1");
    caller.send(
        gw.sip,
        &invite(&caller, gw.sip, "patient-1@caller", "z9hG4bKpat1"),
    );
    let first = caller.expect("183", Duration::from_secs(5), |m| m.is_status(183));
    let start = Instant::now();
    let mut repeats = 0;
    while start.elapsed() < Duration::from_secs(200) {
        if let Some(m) = caller.wait(Duration::from_secs(1), |m| {
            m.first_line().starts_with("SIP/2.0 ")
        }) {
            assert!(
                m.is_status(183),
                "while queued the caller got {}",
                m.first_line()
            );
            assert_eq!(m.tag("To"), first.tag("To"), "the same early dialog");
            repeats += 1;
        }
    }
    assert!(
        repeats >= 3,
        "the 183 was repeated {repeats} times in 200 s"
    );
    // Now an agent logs in and answers at once.
    let agent = Softphone::start(&[
        "agent".into(),
        "--user".into(),
        "2001".into(),
        "--password".into(),
        "secret-2001".into(),
        "--server".into(),
        gw.sip.to_string(),
    ]);
    let ok = caller.expect("the agent's 200", Duration::from_secs(20), |m| {
        m.is_status(200) && m.cseq_method() == "INVITE"
    });
    assert_eq!(ok.tag("To"), first.tag("To"));
    caller.send(
        gw.sip,
        &in_dialog(
            "ACK",
            &caller,
            gw.sip,
            "patient-1@caller",
            "caller1",
            &ok.tag("To"),
            1,
            "",
        ),
    );
    caller.send(
        gw.sip,
        &in_dialog(
            "BYE",
            &caller,
            gw.sip,
            "patient-1@caller",
            "caller1",
            &ok.tag("To"),
            2,
            "",
        ),
    );
    caller.expect("200 to BYE", Duration::from_secs(5), |m| {
        m.is_status(200) && m.cseq_method() == "BYE"
    });
    gw.wait_health(
        "the call answered and ended",
        Duration::from_secs(10),
        |h| h["active_calls"] == 0 && h["calls_ended"]["call.caller_hangup"] == 1,
    );
    drop(agent);
}
