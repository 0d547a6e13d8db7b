//! Registrar scenarios on a virtual clock: REGISTERs written as text, parsed by the
//! real parser, answered by a [`Registrar`]; client digests computed here with an
//! independent helper (plain `md5`/`sha2` calls, not the registrar's code).

use std::time::{Duration, Instant};

use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::*;
use crate::sip::Transport;
use crate::sip::message::{Message, parse};

pub(super) const REALM: &str = "hotline.test";
pub(super) const AGENT: &str = "agent1001";
pub(super) const PASSWORD: &str = "s3cret-pw";

/// The client side's hash, written without the registrar's helpers.
pub(super) fn h(alg: &str, data: &str) -> String {
    let bytes: Vec<u8> = match alg {
        "MD5" => Md5::digest(data.as_bytes()).to_vec(),
        "SHA-256" => Sha256::digest(data.as_bytes()).to_vec(),
        other => panic!("no such algorithm {other}"),
    };
    crate::util::hex::hex(&bytes)
}

/// What a client puts in `response=` for qop=auth.
#[allow(clippy::too_many_arguments)]
pub(super) fn client_response(
    alg: &str,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = h(alg, &format!("{user}:{realm}:{password}"));
    let ha2 = h(alg, &format!("{method}:{uri}"));
    h(alg, &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

pub(super) fn peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

/// One REGISTER to write.
#[derive(Clone)]
pub(super) struct Reg {
    pub(super) aor: String,
    pub(super) contacts: Vec<String>,
    pub(super) expires: Option<String>,
    pub(super) call_id: String,
    pub(super) cseq: u32,
    pub(super) auth: Option<String>,
    /// Further header lines, written as they are (`Path: <sip:p;lr>`).
    pub(super) extra: Vec<String>,
}

impl Reg {
    pub(super) fn new(aor: &str) -> Reg {
        Reg {
            aor: aor.into(),
            contacts: vec![format!("<sip:{aor}@192.0.2.20:5060>")],
            expires: None,
            call_id: "reg-1@192.0.2.20".into(),
            cseq: 1,
            auth: None,
            extra: Vec::new(),
        }
    }

    pub(super) fn contacts(mut self, c: &[&str]) -> Reg {
        self.contacts = c.iter().map(|s| s.to_string()).collect();
        self
    }

    pub(super) fn expires(mut self, e: &str) -> Reg {
        self.expires = Some(e.into());
        self
    }

    pub(super) fn text(&self) -> String {
        let mut t = format!(
            "REGISTER sip:gw.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-{cseq}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{aor}@gw.example>;tag=ft\r\n\
             To: <sip:{aor}@gw.example>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\n",
            aor = self.aor,
            cid = self.call_id,
            cseq = self.cseq
        );
        for c in &self.contacts {
            t.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = &self.expires {
            t.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &self.auth {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        for line in &self.extra {
            t.push_str(&format!("{line}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        t
    }

    pub(super) fn request(&self) -> Request {
        match parse(self.text().as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }
}

/// A registrar, a virtual clock and one softphone's credentials.
pub(super) struct Lab {
    pub(super) reg: Registrar,
    pub(super) now: Instant,
    pub(super) src: Peer,
    /// Next CSeq the softphone uses.
    pub(super) cseq: u32,
}

impl Lab {
    pub(super) fn new() -> Lab {
        let t0 = Instant::now();
        let cfg = RegistrarConfig {
            realm: REALM.into(),
            ..RegistrarConfig::default()
        };
        cfg.validate().unwrap();
        let mut reg = Registrar::new(cfg, [7; 32], t0);
        reg.set_users([
            (AGENT.to_string(), PASSWORD.to_string()),
            ("agent1002".to_string(), "other-pw".to_string()),
        ]);
        Lab {
            reg,
            now: t0,
            src: peer("192.0.2.20:5060"),
            cseq: 1,
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    pub(super) fn send(&mut self, r: &Reg) -> RegisterReply {
        self.reg.handle_register(self.now, &r.request(), self.src)
    }

    /// Sends `r` without credentials and returns the nonce of the challenge.
    pub(super) fn nonce(&mut self, r: &Reg) -> String {
        let mut r = r.clone();
        r.auth = None;
        r.cseq = self.next_cseq();
        let reply = self.send(&r);
        assert_eq!(reply.code, 401, "{reply:?}");
        nonce_of(&reply)
    }

    pub(super) fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// The full exchange: challenge, then `r` with credentials for (user, password).
    pub(super) fn register_as(
        &mut self,
        r: Reg,
        user: &str,
        password: &str,
        alg: &str,
    ) -> RegisterReply {
        let nonce = self.nonce(&r);
        let mut r = r;
        r.cseq = self.next_cseq();
        r.auth = Some(authorization(alg, user, password, &nonce, "00000001"));
        self.send(&r)
    }

    pub(super) fn register(&mut self, r: Reg) -> RegisterReply {
        self.register_as(r, AGENT, PASSWORD, "SHA-256")
    }

    pub(super) fn events(&mut self) -> Vec<RegistrarEvent> {
        std::iter::from_fn(|| self.reg.poll_event()).collect()
    }
}

pub(super) fn authorization(
    alg: &str,
    user: &str,
    password: &str,
    nonce: &str,
    nc: &str,
) -> String {
    let cnonce = "0a4f113b";
    let uri = "sip:gw.example";
    let resp = client_response(
        alg, user, REALM, password, "REGISTER", uri, nonce, nc, cnonce,
    );
    format!(
        "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

pub(super) fn nonce_of(reply: &RegisterReply) -> String {
    let (_, v) = &reply.headers[0];
    let start = v.find("nonce=\"").unwrap() + 7;
    v[start..start + v[start..].find('"').unwrap()].to_string()
}

pub(super) fn contacts(reply: &RegisterReply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| *n == "Contact")
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(super) fn is_stale(reply: &RegisterReply) -> bool {
    reply.code == 401 && reply.headers.iter().all(|(_, v)| v.ends_with("stale=true"))
}

#[test]
fn rfc7616_known_answers() {
    let input = ResponseInput {
        method: "GET",
        uri: "/dir/index.html",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc: "00000001",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        qop: "auth",
    };
    let (user, realm, pw) = ("Mufasa", "http-auth@example.org", "Circle of Life");
    let sha = Algorithm::Sha256;
    assert_eq!(
        sha.response(&sha.ha1(user, realm, pw), &input),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    let md5 = Algorithm::Md5;
    assert_eq!(
        md5.response(&md5.ha1(user, realm, pw), &input),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    // The test's own client helper agrees with the RFC too.
    let client = |alg| {
        client_response(
            alg,
            user,
            realm,
            pw,
            "GET",
            input.uri,
            input.nonce,
            input.nc,
            input.cnonce,
        )
    };
    assert_eq!(client("MD5"), "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn hmac_sha256_rfc4231_case_2() {
    let mac = nonce::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        digest::hex(&mac),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn challenge_offers_sha256_then_md5() {
    let mut lab = Lab::new();
    let reply = lab.send(&Reg::new(AGENT));
    assert_eq!((reply.code, reply.reason.as_str()), (401, "Unauthorized"));
    assert_eq!(reply.headers.len(), 2);
    let nonce = nonce_of(&reply);
    let (n0, v0) = &reply.headers[0];
    let (n1, v1) = &reply.headers[1];
    assert_eq!((*n0, *n1), ("WWW-Authenticate", "WWW-Authenticate"));
    assert_eq!(
        v0,
        &format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\"")
    );
    assert_eq!(
        v1,
        &format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"")
    );
}

#[test]
fn md5_and_sha256_both_register() {
    for alg in ["MD5", "SHA-256"] {
        let mut lab = Lab::new();
        let reply = lab.register_as(Reg::new(AGENT), AGENT, PASSWORD, alg);
        assert_eq!(reply.code, 200, "{alg}: {reply:?}");
        assert_eq!(
            contacts(&reply),
            vec!["<sip:agent1001@192.0.2.20:5060>;expires=3600"]
        );
        let b = lab.reg.lookup(lab.now, AGENT);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].source, lab.src);
        assert_eq!(
            lab.events(),
            vec![RegistrarEvent::Registered {
                user: AGENT.into(),
                contact: "sip:agent1001@192.0.2.20:5060".into()
            }]
        );
    }
}

#[test]
fn absent_algorithm_means_md5_and_params_parse_robustly() {
    let mut lab = Lab::new();
    let nonce = lab.nonce(&Reg::new(AGENT));
    let uri = "sip:gw.example";
    let cnonce = "a, \"quoted\" cnonce";
    let resp = client_response(
        "MD5", AGENT, REALM, PASSWORD, "REGISTER", uri, &nonce, "00000001", cnonce,
    );
    let mut r = Reg::new(AGENT);
    r.cseq = 10;
    r.auth = Some(format!(
        "digest   username = \"{AGENT}\" ,realm=\"{REALM}\",nonce=\"{nonce}\" , \
         uri=\"{uri}\",qop=\"auth\", nc=00000001,cnonce=\"a, \\\"quoted\\\" cnonce\", \
         opaque=\"\", response=\"{}\"",
        resp.to_uppercase()
    ));
    assert_eq!(lab.send(&r).code, 200);
}

#[test]
fn wrong_password_gets_a_fresh_challenge() {
    let mut lab = Lab::new();
    let reply = lab.register_as(Reg::new(AGENT), AGENT, "guess", "SHA-256");
    assert_eq!(reply.code, 401);
    assert_eq!(reply.headers.len(), 2);
    assert!(!is_stale(&reply));
    assert!(lab.reg.lookup(lab.now, AGENT).is_empty());
}

#[test]
fn unknown_user_is_indistinguishable_from_wrong_password() {
    let mut lab = Lab::new();
    let nonce = lab.nonce(&Reg::new(AGENT));
    let mut wrong = Reg::new(AGENT);
    wrong.auth = Some(authorization("MD5", AGENT, "guess", &nonce, "00000001"));
    let mut unknown = Reg::new("nobody");
    unknown.auth = Some(authorization("MD5", "nobody", "guess", &nonce, "00000001"));
    // Identical but for the (always fresh) nonce.
    let masked = |r: RegisterReply| {
        let n = nonce_of(&r);
        let headers: Vec<_> = r
            .headers
            .iter()
            .map(|(k, v)| (*k, v.replace(&n, "N")))
            .collect();
        (r.code, r.reason, headers)
    };
    let (w, u) = (lab.send(&wrong), lab.send(&unknown));
    assert_ne!(nonce_of(&w), nonce_of(&u));
    assert_eq!(masked(w), masked(u));
    // Both counted, per account: four more unknown-user tries reach the limit,
    // the next blocks that name (and only it) for this source.
    for _ in 0..4 {
        assert_eq!(lab.send(&unknown).code, 401);
    }
    assert_eq!(lab.send(&unknown).code, 403);
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Blocked {
            ip: lab.src.addr.ip(),
            user: Some("nobody".into()),
        }]
    );
}

#[test]
fn stale_nonce_asks_to_retry_and_is_no_failure() {
    let mut lab = Lab::new();
    let old = lab.nonce(&Reg::new(AGENT));
    lab.advance(Duration::from_secs(301));
    for i in 0..10 {
        let mut r = Reg::new(AGENT);
        r.cseq = 100 + i;
        r.auth = Some(authorization("SHA-256", AGENT, PASSWORD, &old, "00000001"));
        let reply = lab.send(&r);
        assert!(is_stale(&reply), "{reply:?}");
        assert_ne!(nonce_of(&reply), old);
    }
    // Ten stale answers and no block: a fresh nonce works.
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
}

#[test]
fn nonce_reuse_with_higher_nc_but_replay_is_refused() {
    let mut lab = Lab::new();
    let nonce = lab.nonce(&Reg::new(AGENT));
    let mut r = Reg::new(AGENT);
    r.cseq = 10;
    r.auth = Some(authorization(
        "SHA-256", AGENT, PASSWORD, &nonce, "00000001",
    ));
    assert_eq!(lab.send(&r).code, 200);
    // An eavesdropper replays the credentials with its own contact.
    let mut replay = r.clone().contacts(&["<sip:agent1001@203.0.113.66:5060>"]);
    replay.cseq = 11;
    assert!(is_stale(&lab.send(&replay)));
    // The softphone itself reuses the nonce with the next nc.
    r.cseq = 12;
    r.auth = Some(authorization(
        "SHA-256", AGENT, PASSWORD, &nonce, "00000002",
    ));
    assert_eq!(lab.send(&r).code, 200);
    let b = lab.reg.lookup(lab.now, AGENT);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, "sip:agent1001@192.0.2.20:5060");
}

#[test]
fn foreign_nonce_with_right_password_is_stale_not_failure() {
    // E.g. a nonce from before a restart with a new secret.
    let mut lab = Lab::new();
    let mut other = Registrar::new(lab.reg.cfg.clone(), [9; 32], lab.now);
    let foreign = other.nonces.issue(lab.now, lab.src.addr.ip());
    let mut r = Reg::new(AGENT);
    r.auth = Some(authorization("MD5", AGENT, PASSWORD, &foreign, "00000001"));
    assert!(is_stale(&lab.send(&r)));
    assert_eq!(lab.reg.limiter.tracked(), 0);
}

#[test]
fn blocks_after_max_failures_until_block_for_passes() {
    let mut lab = Lab::new();
    for _ in 0..5 {
        let reply = lab.register_as(Reg::new(AGENT), AGENT, "guess", "MD5");
        assert_eq!(reply.code, 401);
    }
    let reply = lab.register_as(Reg::new(AGENT), AGENT, "guess", "MD5");
    assert_eq!(reply.code, 403);
    assert!(reply.headers.is_empty());
    let blocked_at = lab.now;
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Blocked {
            ip: lab.src.addr.ip(),
            user: Some(AGENT.into()),
        }]
    );
    // Even the right password and an unauthenticated REGISTER get 403, no challenge.
    lab.advance(Duration::from_secs(10));
    let reply = lab.send(&Reg::new(AGENT));
    assert_eq!(
        (reply.code, reply.reason.as_str(), reply.headers.len()),
        (403, "Forbidden (too many failed attempts)", 0)
    );
    // Another address is not affected.
    let mine = lab.src;
    lab.src = peer("192.0.2.99:5060");
    let there = Reg::new(AGENT).contacts(&["<sip:agent1001@192.0.2.99:5060>"]);
    assert_eq!(lab.register(there).code, 200);
    lab.src = mine;
    let unblock = blocked_at + Duration::from_secs(300);
    assert!(lab.reg.poll_timeout().unwrap() <= unblock);
    lab.now = unblock;
    lab.reg.handle_timeout(lab.now);
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
}

#[test]
fn failures_spread_beyond_the_window_or_reset_by_success_do_not_block() {
    let mut lab = Lab::new();
    for _ in 0..12 {
        assert_eq!(
            lab.register_as(Reg::new(AGENT), AGENT, "x", "MD5").code,
            401
        );
        lab.advance(Duration::from_secs(13));
    }
    lab.advance(Duration::from_secs(60));
    for _ in 0..5 {
        assert_eq!(
            lab.register_as(Reg::new(AGENT), AGENT, "x", "MD5").code,
            401
        );
    }
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    for _ in 0..5 {
        assert_eq!(
            lab.register_as(Reg::new(AGENT), AGENT, "x", "MD5").code,
            401
        );
    }
    assert!(
        lab.events()
            .iter()
            .all(|e| !matches!(e, RegistrarEvent::Blocked { .. }))
    );
}

#[test]
fn bindings_expire_with_an_event() {
    let mut lab = Lab::new();
    let reply = lab.register(Reg::new(AGENT).expires("120"));
    assert_eq!(
        contacts(&reply),
        vec!["<sip:agent1001@192.0.2.20:5060>;expires=120"]
    );
    lab.events();
    let at = lab.now + Duration::from_secs(120);
    // The wake-up comes no later (the keepalive's first probe comes before).
    assert!(lab.reg.poll_timeout().unwrap() <= at);
    lab.reg.handle_timeout(at - Duration::from_millis(1));
    assert!(lab.events().is_empty());
    assert_eq!(
        lab.reg.lookup(at - Duration::from_millis(1), AGENT).len(),
        1
    );
    assert!(lab.reg.lookup(at, AGENT).is_empty());
    lab.reg.handle_timeout(at);
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Expired {
            user: AGENT.into(),
            contact: "sip:agent1001@192.0.2.20:5060".into()
        }]
    );
    assert_eq!(lab.reg.poll_timeout(), None);
}

#[test]
fn several_contacts_ordered_by_q_then_recency_and_queried() {
    let mut lab = Lab::new();
    let r = Reg::new(AGENT).contacts(&[
        "<sip:a@192.0.2.20:5060>;q=0.5",
        "\"Desk, phone\" <sip:b@10.0.0.21:5060;transport=tcp>;expires=600, <sip:c@192.168.1.22>",
    ]);
    let reply = lab.register(r);
    assert_eq!(reply.code, 200, "{reply:?}");
    assert_eq!(
        contacts(&reply),
        vec![
            "<sip:b@10.0.0.21:5060;transport=tcp>;expires=600",
            "<sip:c@192.168.1.22>;expires=3600",
            "<sip:a@192.0.2.20:5060>;expires=3600;q=0.5",
        ]
    );
    assert_eq!(lab.events().len(), 3);
    // A later refresh of `c` makes it the most recent of the q=1 bindings.
    lab.advance(Duration::from_secs(100));
    let reply = lab.register(Reg::new(AGENT).contacts(&["<sip:c@192.168.1.22>"]));
    assert_eq!(contacts(&reply)[0], "<sip:c@192.168.1.22>;expires=3600");
    assert!(lab.events().is_empty(), "a refresh is silent");
    // No Contact: a query.
    lab.advance(Duration::from_secs(50));
    let reply = lab.register(Reg::new(AGENT).contacts(&[]));
    assert_eq!(
        contacts(&reply),
        vec![
            "<sip:c@192.168.1.22>;expires=3550",
            "<sip:b@10.0.0.21:5060;transport=tcp>;expires=450",
            "<sip:a@192.0.2.20:5060>;expires=3450;q=0.5",
        ]
    );
}

#[test]
fn unregister_one_contact_then_all() {
    let mut lab = Lab::new();
    let r = Reg::new(AGENT).contacts(&["<sip:a@192.0.2.20>", "<sip:b@192.0.2.20>"]);
    assert_eq!(lab.register(r).code, 200);
    lab.events();
    let reply = lab.register(Reg::new(AGENT).contacts(&["<sip:a@192.0.2.20>;expires=0"]));
    assert_eq!(contacts(&reply), vec!["<sip:b@192.0.2.20>;expires=3600"]);
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Unregistered {
            user: AGENT.into(),
            contact: "sip:a@192.0.2.20".into()
        }]
    );
    // `*` needs Expires: 0.
    let star = Reg::new(AGENT).contacts(&["*"]);
    assert_eq!(lab.register(star.clone().expires("60")).code, 400);
    assert_eq!(lab.register(star.clone()).code, 400);
    let reply = lab.register(star.expires("0"));
    assert_eq!((reply.code, reply.headers.len()), (200, 0));
    assert_eq!(lab.events().len(), 1);
    assert!(lab.reg.lookup(lab.now, AGENT).is_empty());
    assert_eq!(lab.reg.poll_timeout(), None);
}

#[test]
fn too_brief_is_423_and_too_long_is_clamped() {
    let mut lab = Lab::new();
    let reply = lab.register(Reg::new(AGENT).expires("30"));
    assert_eq!(
        (reply.code, reply.reason.as_str()),
        (423, "Interval Too Brief")
    );
    assert_eq!(reply.headers, vec![("Min-Expires", "60".to_string())]);
    // All-or-nothing: one brief contact rejects the others too.
    let r = Reg::new(AGENT).contacts(&["<sip:a@h>", "<sip:b@h>;expires=10"]);
    assert_eq!(lab.register(r).code, 423);
    assert!(lab.reg.lookup(lab.now, AGENT).is_empty());
    let reply = lab.register(Reg::new(AGENT).expires("99999999999999999999"));
    assert_eq!(
        contacts(&reply),
        vec!["<sip:agent1001@192.0.2.20:5060>;expires=3600"]
    );
}

#[test]
fn digest_user_must_be_the_aor_user() {
    let mut lab = Lab::new();
    let reply = lab.register_as(Reg::new("agent1002"), AGENT, PASSWORD, "SHA-256");
    assert_eq!(
        (reply.code, reply.reason.as_str()),
        (403, "Forbidden (username does not match AOR)")
    );
    assert!(lab.reg.lookup(lab.now, "agent1002").is_empty());
}

#[test]
fn too_many_contacts_is_403() {
    let mut lab = Lab::new();
    let five: Vec<String> = (0..5).map(|i| format!("<sip:p{i}@192.0.2.20>")).collect();
    let five: Vec<&str> = five.iter().map(String::as_str).collect();
    assert_eq!(lab.register(Reg::new(AGENT).contacts(&five)).code, 200);
    let reply = lab.register(Reg::new(AGENT).contacts(&["<sip:p5@192.0.2.20>"]));
    assert_eq!(
        (reply.code, reply.reason.as_str()),
        (403, "Forbidden (too many contacts)")
    );
    assert_eq!(lab.reg.lookup(lab.now, AGENT).len(), 5);
}

#[test]
fn same_call_id_with_old_cseq_is_rejected() {
    let mut lab = Lab::new();
    let nonce = lab.nonce(&Reg::new(AGENT));
    let mut r = Reg::new(AGENT);
    r.cseq = 20;
    r.auth = Some(authorization("MD5", AGENT, PASSWORD, &nonce, "00000001"));
    assert_eq!(lab.send(&r).code, 200);
    let mut older = r.clone().expires("0");
    older.cseq = 19;
    older.auth = Some(authorization("MD5", AGENT, PASSWORD, &nonce, "00000002"));
    let reply = lab.send(&older);
    assert_eq!(
        (reply.code, reply.reason.as_str()),
        (400, "Bad Request (stale CSeq)")
    );
    assert_eq!(lab.reg.lookup(lab.now, AGENT).len(), 1);
}

#[test]
fn escaped_headers_in_contact_are_not_stored() {
    // RFC 4475 §3.1.2.6 (regescrt).
    let mut lab = Lab::new();
    let r = Reg::new(AGENT).contacts(&["<sip:user@192.0.2.20?Route=%3Csip:sip.example.com%3E>"]);
    let reply = lab.register(r);
    assert_eq!(contacts(&reply), vec!["<sip:user@192.0.2.20>;expires=3600"]);
    assert_eq!(
        lab.reg.lookup(lab.now, AGENT)[0].contact,
        "sip:user@192.0.2.20"
    );
}

#[test]
fn malformed_credentials_and_contacts_get_400() {
    let mut lab = Lab::new();
    let mut r = Reg::new(AGENT);
    r.auth = Some("Digest username=\"agent1001\", realm=\"unterminated".into());
    assert_eq!(lab.send(&r).code, 400);
    r.auth = Some(format!(
        "Digest username=\"{AGENT}\", realm=\"{REALM}\", nonce=\"n\", uri=\"sip:gw.example\", \
         response=\"00\""
    ));
    assert_eq!(lab.send(&r).code, 400, "no qop");
    let reply = lab.register(Reg::new(AGENT).contacts(&["<not a uri>"]));
    assert_eq!(reply.code, 400);
}

#[test]
fn other_schemes_and_realms_are_challenged_without_counting() {
    let mut lab = Lab::new();
    let mut r = Reg::new(AGENT);
    r.auth = Some("Basic YWdlbnQ6cHc=".into());
    for _ in 0..10 {
        assert_eq!(lab.send(&r).code, 401);
    }
    r.auth =
        Some(authorization("MD5", AGENT, PASSWORD, "x", "00000001").replace(REALM, "elsewhere"));
    for _ in 0..10 {
        assert_eq!(lab.send(&r).code, 401);
    }
    assert_eq!(lab.reg.limiter.tracked(), 0);
}

#[test]
fn reload_keeps_bindings_of_remaining_users() {
    let mut lab = Lab::new();
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    let reply = lab.register_as(Reg::new("agent1002"), "agent1002", "other-pw", "MD5");
    assert_eq!(reply.code, 200);
    lab.events();
    lab.reg
        .set_users([(AGENT.to_string(), "new-password".to_string())]);
    assert_eq!(lab.reg.lookup(lab.now, AGENT).len(), 1);
    assert!(lab.reg.lookup(lab.now, "agent1002").is_empty());
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Unregistered {
            user: "agent1002".into(),
            contact: "sip:agent1002@192.0.2.20:5060".into()
        }]
    );
    // The new password is in force.
    assert_eq!(lab.register(Reg::new(AGENT)).code, 401);
    assert_eq!(
        lab.register_as(Reg::new(AGENT), AGENT, "new-password", "MD5")
            .code,
        200
    );
}

#[test]
fn debug_output_never_shows_passwords_or_hashes() {
    let lab = Lab::new();
    let shown = format!("{:?} {:#?}", lab.reg, lab.reg);
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains("other-pw"), "{shown}");
    let ha1 = h("MD5", &format!("{AGENT}:{REALM}:{PASSWORD}"));
    assert!(!shown.contains(&ha1), "{shown}");
    assert!(!shown.contains("[7, 7"), "nonce secret shown: {shown}");
}

#[test]
fn config_validation_names_the_key() {
    let cfg = RegistrarConfig {
        min_expires: 7200,
        ..RegistrarConfig::default()
    };
    let err = cfg.validate().unwrap_err();
    assert!(err.to_string().contains("registrar.min_expires"), "{err}");
}
