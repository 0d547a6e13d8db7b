//! The registrar against an attacker, on a virtual clock: nonces bound to the
//! source they were issued to, failures counted per (account, source) and per
//! source, contacts that name another host, digest on INVITE and REFER, and
//! agents configured by HA1 instead of a password.

use std::time::Duration;

use super::tests::*;
use super::*;
use crate::sip::message::{Message, parse};

/// An attacker's address, and an agent colleague's behind the same office NAT.
const ELSEWHERE: &str = "198.51.100.7:5060";

/// A REGISTER of the agent from [`ELSEWHERE`], naming that address.
fn elsewhere() -> Reg {
    Reg::new(AGENT).contacts(&[&format!("<sip:{AGENT}@{ELSEWHERE}>")])
}

/// `n` wrong-password REGISTERs for `user`, each over a fresh nonce from `lab.src`.
fn fail(lab: &mut Lab, user: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| {
            lab.register_as(Reg::new(user), user, "guess-pw", "MD5")
                .code
        })
        .collect()
}

#[test]
fn a_nonce_only_verifies_from_the_source_it_was_issued_to() {
    let mut lab = Lab::new();
    let nonce = lab.nonce(&Reg::new(AGENT));
    // The right password over a nonce issued to another address: retry, no failure.
    lab.src = peer(ELSEWHERE);
    let mut r = Reg::new(AGENT);
    r.cseq = 50;
    r.auth = Some(authorization("MD5", AGENT, PASSWORD, &nonce, "00000001"));
    assert!(is_stale(&lab.send(&r)));
    assert_eq!(lab.reg.limiter.tracked(), 0);
    // The same credentials from the address the nonce was issued to work.
    lab.src = peer("192.0.2.20:5070");
    r.cseq = 51;
    assert_eq!(lab.send(&r).code, 200);
}

#[test]
fn spoofed_bad_registers_do_not_count_and_lock_nobody_out() {
    let mut lab = Lab::new();
    // An attacker who can only spoof the agent's address never sees a challenge:
    // he sends invented nonces, and nonces he got at his own address.
    let mut own = lab.reg.nonces.issue(lab.now, peer(ELSEWHERE).addr.ip());
    for i in 0..30 {
        let nonce = if i % 2 == 0 {
            format!("{i:056x}")
        } else {
            std::mem::take(&mut own)
        };
        let mut r = Reg::new(AGENT);
        r.cseq = 100 + i;
        r.auth = Some(authorization("MD5", AGENT, "guess-pw", &nonce, "00000001"));
        assert_eq!(lab.send(&r).code, 401, "attempt {i}");
        own = lab.reg.nonces.issue(lab.now, peer(ELSEWHERE).addr.ip());
    }
    assert_eq!(lab.reg.limiter.tracked(), 0);
    assert!(lab.events().is_empty());
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
}

#[test]
fn repeated_failures_lock_one_account_for_one_source_only() {
    let mut lab = Lab::new();
    assert_eq!(fail(&mut lab, AGENT, 6), vec![401, 401, 401, 401, 401, 403]);
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Blocked {
            ip: lab.src.addr.ip(),
            user: Some(AGENT.into()),
        }]
    );
    let blocked_at = lab.now;
    // That account from that source: 403 without a challenge, even rightly.
    let reply = lab.send(&Reg::new(AGENT));
    assert_eq!((reply.code, reply.headers.len()), (403, 0));
    // Another account from the same source (a colleague behind the same NAT).
    let reply = lab.register_as(Reg::new("agent1002"), "agent1002", "other-pw", "MD5");
    assert_eq!(reply.code, 200);
    // The same account from anywhere else.
    let desk = lab.src;
    lab.src = peer(ELSEWHERE);
    assert_eq!(lab.register(elsewhere()).code, 200);
    // Until the block ends.
    lab.src = desk;
    lab.now = blocked_at + Duration::from_secs(299);
    assert_eq!(lab.send(&Reg::new(AGENT)).code, 403);
    lab.now = blocked_at + Duration::from_secs(300);
    lab.reg.handle_timeout(lab.now);
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
}

#[test]
fn a_source_trying_many_accounts_is_refused_as_a_whole() {
    let mut lab = Lab::new();
    // 20 failures over 10 names (two each: no account reaches its own limit).
    for i in 0..10 {
        assert_eq!(fail(&mut lab, &format!("name{i}"), 2), vec![401, 401]);
    }
    assert!(lab.events().is_empty());
    assert_eq!(fail(&mut lab, "name10", 1), vec![403]);
    assert_eq!(
        lab.events(),
        vec![RegistrarEvent::Blocked {
            ip: lab.src.addr.ip(),
            user: None,
        }]
    );
    // Every account is refused to that source, none elsewhere.
    assert_eq!(lab.send(&Reg::new("agent1002")).code, 403);
    lab.src = peer(ELSEWHERE);
    assert_eq!(lab.register(elsewhere()).code, 200);
}

#[test]
fn a_blocked_source_still_serves_the_agents_who_proved_their_password_there() {
    let mut lab = Lab::new();
    // An agent works behind the office NAT; a colleague's machine starts guessing.
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    for i in 0..10 {
        fail(&mut lab, &format!("name{i}"), 2);
    }
    assert_eq!(fail(&mut lab, "name10", 1), vec![403]);
    let src = lab.src;
    assert_eq!(
        lab.events().last(),
        Some(&RegistrarEvent::Blocked {
            ip: src.addr.ip(),
            user: None,
        })
    );
    // The agent's refresh is challenged and accepted, as are its INVITEs.
    lab.advance(Duration::from_secs(60));
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    assert_eq!(
        lab.reg
            .authenticate_request(lab.now, &invite(None), src, Some(AGENT)),
        RequestAuth::Absent
    );
    let nonce = nonce_of(&lab.reg.challenge_request(lab.now, src, Some(AGENT)));
    let req = invite(Some((
        "Proxy-Authorization",
        invite_auth(PASSWORD, &nonce, "00000001"),
    )));
    assert_eq!(
        lab.reg.authenticate_request(lab.now, &req, src, None),
        RequestAuth::Agent(AGENT.into())
    );
    // An account that never authenticated there stays refused (not even
    // challenged), and so does a request naming nobody.
    let reply = lab.send(&Reg::new("agent1002"));
    assert_eq!((reply.code, reply.headers.len()), (403, 0));
    match lab
        .reg
        .authenticate_request(lab.now, &invite(None), src, None)
    {
        RequestAuth::Reply(r) => assert_eq!(r.code, 403),
        other => panic!("{other:?}"),
    }
    // The trusted account still has its own limit: the guesser cannot use the
    // exemption to try its password without end.
    assert_eq!(fail(&mut lab, AGENT, 6), vec![401, 401, 401, 401, 401, 403]);
    assert_eq!(lab.send(&Reg::new(AGENT)).code, 403);
}

#[test]
fn an_agents_login_does_not_reset_the_sources_count() {
    let mut lab = Lab::new();
    for i in 0..5 {
        fail(&mut lab, &format!("name{i}"), 4);
        // A colleague logs in from the same NAT in between.
        assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    }
    assert_eq!(fail(&mut lab, "name9", 1), vec![403]);
}

#[test]
fn a_contact_naming_another_public_host_is_refused() {
    let mut lab = Lab::new();
    for contact in [
        "<sip:agent1001@203.0.113.9:5060>",
        "<sip:agent1001@pbx.example.org>",
    ] {
        let reply = lab.register(Reg::new(AGENT).contacts(&[contact]));
        assert_eq!(
            (reply.code, reply.reason.as_str()),
            (
                403,
                "Forbidden (Contact names another host than the REGISTER came from)"
            ),
            "{contact}"
        );
    }
    assert!(lab.reg.lookup(lab.now, AGENT).is_empty());
    // A private or loopback address is a phone behind NAT: accepted, and the
    // binding keeps where the REGISTER came from (where the agent is rung).
    for contact in [
        "<sip:agent1001@10.1.2.3:5062>",
        "<sip:agent1001@127.0.0.3:5062>",
        "<sip:agent1001@[fd00::5]:5062>",
    ] {
        let reply = lab.register(Reg::new(AGENT).contacts(&[contact]));
        assert_eq!(reply.code, 200, "{contact}");
    }
    let b = lab.reg.lookup(lab.now, AGENT);
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|b| b.source == lab.src));
}

/// An INVITE from an agent's softphone, with `auth` under `header`.
fn invite(auth: Option<(&str, String)>) -> Request {
    let mut t = String::from(
        "INVITE sip:12345@gw.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-inv\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:agent1001@gw.example>;tag=ft\r\n\
         To: <sip:12345@gw.example>\r\n\
         Call-ID: inv-1@192.0.2.20\r\n\
         CSeq: 1 INVITE\r\n",
    );
    if let Some((header, value)) = auth {
        t.push_str(&format!("{header}: {value}\r\n"));
    }
    t.push_str("Content-Length: 0\r\n\r\n");
    match parse(t.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn invite_auth(password: &str, nonce: &str, nc: &str) -> String {
    let uri = "sip:12345@gw.example";
    let cnonce = "c0ffee";
    let resp = client_response(
        "SHA-256", AGENT, REALM, password, "INVITE", uri, nonce, nc, cnonce,
    );
    format!(
        "Digest username=\"{AGENT}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm=SHA-256, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

#[test]
fn invite_digest_in_either_header_names_the_agent() {
    let mut lab = Lab::new();
    let src = lab.src;
    assert_eq!(
        lab.reg
            .authenticate_request(lab.now, &invite(None), src, Some(AGENT)),
        RequestAuth::Absent
    );
    let challenge = lab.reg.challenge_request(lab.now, src, Some(AGENT));
    assert_eq!(challenge.code, 401);
    let nonce = nonce_of(&challenge);
    for (i, header) in ["Proxy-Authorization", "Authorization"].iter().enumerate() {
        let nc = format!("{:08x}", i + 1);
        let req = invite(Some((header, invite_auth(PASSWORD, &nonce, &nc))));
        assert_eq!(
            lab.reg.authenticate_request(lab.now, &req, src, None),
            RequestAuth::Agent(AGENT.into()),
            "{header}"
        );
    }
    // The method is part of the digest: a REGISTER's response does not pass.
    let mut as_register = invite_auth(PASSWORD, &nonce, "00000009");
    let register_resp = client_response(
        "SHA-256",
        AGENT,
        REALM,
        PASSWORD,
        "REGISTER",
        "sip:12345@gw.example",
        &nonce,
        "00000009",
        "c0ffee",
    );
    let start = as_register.find("response=\"").unwrap() + 10;
    as_register.replace_range(start..start + 64, &register_resp);
    let req = invite(Some(("Proxy-Authorization", as_register)));
    match lab.reg.authenticate_request(lab.now, &req, src, None) {
        RequestAuth::Reply(r) => assert_eq!(r.code, 401),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_invite_credentials_count_like_registers() {
    let mut lab = Lab::new();
    let src = lab.src;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let nonce = nonce_of(&lab.reg.challenge_request(lab.now, src, None));
        let req = invite(Some((
            "Proxy-Authorization",
            invite_auth("guess-pw", &nonce, "00000001"),
        )));
        match lab.reg.authenticate_request(lab.now, &req, src, None) {
            RequestAuth::Reply(r) => codes.push(r.code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes, vec![401, 401, 401, 401, 401, 403]);
    // The account is now refused to this source on REGISTER too.
    assert_eq!(lab.send(&Reg::new(AGENT)).code, 403);
}

#[test]
fn an_agent_configured_by_ha1_registers_and_is_offered_only_its_algorithms() {
    let mut lab = Lab::new();
    let md5 = h("MD5", &format!("{AGENT}:{REALM}:{PASSWORD}"));
    lab.reg.set_users([(
        AGENT.to_string(),
        Credential::Ha1 {
            md5: Some(md5.to_uppercase()),
            sha256: None,
        },
    )]);
    let reply = lab.send(&Reg::new(AGENT));
    assert_eq!(reply.headers.len(), 1, "{reply:?}");
    assert!(reply.headers[0].1.contains("algorithm=MD5"));
    assert_eq!(
        lab.register_as(Reg::new(AGENT), AGENT, PASSWORD, "MD5")
            .code,
        200
    );
    // Answering with SHA-256 (which it has no HA1 for) is no failure.
    for _ in 0..10 {
        let reply = lab.register_as(Reg::new(AGENT), AGENT, PASSWORD, "SHA-256");
        assert_eq!(reply.code, 401);
    }
    assert_eq!(lab.reg.limiter.tracked(), 0);
    let shown = format!(
        "{:?}",
        Credential::Ha1 {
            md5: Some(md5.clone()),
            sha256: None
        }
    );
    assert!(!shown.contains(&md5), "{shown}");
}

#[test]
fn the_registered_sources_follow_bindings_as_they_come_and_go() {
    let mut lab = Lab::new();
    let ip = lab.src.addr.ip();
    assert!(!lab.reg.is_registered_source(ip));
    let r = Reg::new(AGENT).contacts(&["<sip:a@192.0.2.20>", "<sip:b@10.0.0.2>"]);
    assert_eq!(lab.register(r).code, 200);
    assert!(lab.reg.is_registered_source(ip));
    // One of two removed: still registered from there; both: not.
    let one = Reg::new(AGENT).contacts(&["<sip:a@192.0.2.20>;expires=0"]);
    assert_eq!(lab.register(one).code, 200);
    assert!(lab.reg.is_registered_source(ip));
    let all = Reg::new(AGENT).contacts(&["*"]).expires("0");
    assert_eq!(lab.register(all).code, 200);
    assert!(!lab.reg.is_registered_source(ip));
    // Expiry and removal of the user by a reload end it too.
    assert_eq!(lab.register(Reg::new(AGENT).expires("60")).code, 200);
    lab.advance(Duration::from_secs(60));
    lab.reg.handle_timeout(lab.now);
    assert!(!lab.reg.is_registered_source(ip));
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    lab.reg
        .set_users([("agent1002".to_string(), "other-pw".to_string())]);
    assert!(!lab.reg.is_registered_source(ip));
}

#[test]
fn a_guesser_behind_the_agents_nat_blocks_the_account_but_not_the_agents_own_phone() {
    let mut lab = Lab::new();
    let phone = lab.src;
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    // A colleague's machine behind the same NAT: same public IP, another port.
    let mut guesser = phone;
    guesser.addr.set_port(phone.addr.port() + 1000);
    lab.src = guesser;
    assert_eq!(fail(&mut lab, AGENT, 6), vec![401, 401, 401, 401, 401, 403]);
    // The account is blocked at that IP: the guesser gets 403 even unchallenged...
    assert_eq!(lab.send(&Reg::new(AGENT)).code, 403);
    // ...while the agent's own phone, from the flow that proved the password,
    // keeps its registration.
    lab.src = phone;
    assert_eq!(lab.register(Reg::new(AGENT)).code, 200);
    // A wrong answer from that flow is refused, and ends its waiver: the flow
    // cannot be used to keep guessing the blocked account.
    let wrong = lab.register_as(Reg::new(AGENT), AGENT, "guess-pw", "MD5");
    assert!(matches!(wrong.code, 401 | 403), "{wrong:?}");
    assert_eq!(lab.send(&Reg::new(AGENT)).code, 403);
}
