//! Attacker tests: SIP signalling. A stranger who can send packets to the gateway
//! (and, here, even one on a trunk's network) cannot predict its identifiers, end,
//! transfer or re-route someone else's call, forge a callee's answer, or make the
//! gateway keep state or records for him.

use std::time::Duration;

use super::raw_sip::*;
use crate::support::*;

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
                m.is_status(200) && m.header("Call-ID") == Some(format!("opt{i}@probe").as_str())
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
    let seat_call_id = seat_inv.header("Call-ID").unwrap_or_default().to_string();
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
            format!("CSeq: {}", m.header("CSeq").unwrap_or_default()) == cseq && !m.is_status(100)
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
