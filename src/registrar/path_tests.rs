//! Path (RFC 3327): a proxy in front of the gateway (Kamailio) adds itself to
//! the REGISTERs it relays; the gateway stores that Path with the binding, rings
//! the agent through it, and echoes it to a UA that supports it. Only proxies
//! the operator named (`registrar.path_from`) may do so.

use super::tests::*;
use super::*;
use crate::sip::Transport;

const PROXY: &str = "192.0.2.5:5060";
const PATH: &str = "Path: <sip:192.0.2.5:5060;lr;received=sip:198.51.100.7:41000>";

fn lab_behind_proxy() -> Lab {
    let mut lab = Lab::new();
    let cfg = RegistrarConfig {
        realm: REALM.into(),
        path_from: vec![PROXY.parse::<std::net::SocketAddr>().unwrap().ip()],
        ..RegistrarConfig::default()
    };
    lab.reg = Registrar::new(cfg, [7; 32], lab.now);
    lab.reg
        .set_users([(AGENT.to_string(), PASSWORD.to_string())]);
    lab.src = peer(PROXY);
    lab
}

/// An agent on a public address behind the proxy (its Contact names neither
/// the proxy nor a private network).
fn behind(extra: &[&str]) -> Reg {
    let mut r = Reg::new(AGENT).contacts(&["<sip:agent1001@198.51.100.7:41000>"]);
    r.extra = extra.iter().map(|s| s.to_string()).collect();
    r
}

#[test]
fn a_trusted_proxy_path_is_stored_and_echoed_to_a_ua_that_supports_it() {
    let mut lab = lab_behind_proxy();
    let reply = lab.register(behind(&[PATH, "Supported: path, replaces"]));
    assert_eq!(reply.code, 200, "{reply:?}");
    let echoed: Vec<_> = reply.headers.iter().filter(|(n, _)| *n == "Path").collect();
    assert_eq!(echoed.len(), 1, "{reply:?}");
    assert_eq!(
        echoed[0].1,
        "<sip:192.0.2.5:5060;lr;received=sip:198.51.100.7:41000>"
    );
    let b = lab.reg.lookup(lab.now, AGENT);
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].path,
        vec![echoed[0].1.clone()],
        "stored as the route set"
    );
    assert_eq!(b[0].ring_at(), peer(PROXY), "rung through the proxy");
}

#[test]
fn a_path_is_not_echoed_without_supported_path() {
    let mut lab = lab_behind_proxy();
    let reply = lab.register(behind(&[PATH]));
    assert_eq!(reply.code, 200, "{reply:?}");
    assert!(reply.headers.iter().all(|(n, _)| *n != "Path"), "{reply:?}");
    assert_eq!(
        lab.reg.lookup(lab.now, AGENT)[0].path.len(),
        1,
        "but stored"
    );
}

#[test]
fn attacker_a_path_from_anyone_else_is_ignored() {
    // A softphone that writes a Path of its own cannot make the gateway preload
    // Route lines (nor send elsewhere than where its REGISTER came from), and
    // its Contact must still name its own host.
    let mut lab = Lab::new();
    let mut r = Reg::new(AGENT);
    r.extra = vec![
        "Path: <sip:203.0.113.66;lr>".into(),
        "Supported: path".into(),
    ];
    let reply = lab.register(r);
    assert_eq!(reply.code, 200, "{reply:?}");
    assert!(reply.headers.iter().all(|(n, _)| *n != "Path"), "{reply:?}");
    let b = lab.reg.lookup(lab.now, AGENT);
    assert!(b[0].path.is_empty());
    assert_eq!(b[0].ring_at(), lab.src);
    let foreign = behind(&["Path: <sip:203.0.113.66;lr>"]);
    let reply = lab.register(foreign);
    assert_eq!(
        reply.code, 403,
        "a public Contact of another host: {reply:?}"
    );
}

#[test]
fn over_tcp_a_closed_proxy_connection_is_reopened_to_the_path_address() {
    let mut lab = lab_behind_proxy();
    let conn = Peer {
        transport: Transport::Tcp,
        addr: "192.0.2.5:38000".parse().unwrap(),
    };
    lab.src = conn;
    let reply = lab.register(behind(&["Path: <sip:192.0.2.5:5061;transport=tcp;lr>"]));
    assert_eq!(reply.code, 200, "{reply:?}");
    assert_eq!(lab.reg.lookup(lab.now, AGENT)[0].ring_at(), conn);
    lab.reg.connection_closed(conn);
    let again = lab.reg.lookup(lab.now, AGENT)[0].ring_at();
    assert_eq!(again.transport, Transport::Tcp);
    assert_eq!(
        again.addr,
        "192.0.2.5:5061".parse().unwrap(),
        "the proxy's port, not the agent's"
    );
}

#[test]
fn attacker_a_guesser_behind_the_proxy_blocks_itself_not_the_agents_behind_it() {
    // Every REGISTER comes from the proxy's address; Kamailio's Path says
    // where each really came from. A guesser's failures count against its
    // own address: an agent behind the same proxy still logs in.
    let mut lab = lab_behind_proxy();
    let guesser = "Path: <sip:192.0.2.5:5060;lr;received=sip:203.0.113.66:5060>";
    let cfg = RegistrarConfig::default();
    let mut blocked = false;
    for i in 0..cfg.max_failures_per_source + 2 {
        let mut r = behind(&[guesser]);
        r.call_id = format!("guess-{i}");
        r.cseq = lab.next_cseq();
        let challenge = lab.send(&r);
        if challenge.code == 403 {
            blocked = true;
            break;
        }
        let nonce = nonce_of(&challenge);
        r.cseq = lab.next_cseq();
        r.auth = Some(authorization("SHA-256", AGENT, "wrong", &nonce, "00000001"));
        let reply = lab.send(&r);
        assert!(matches!(reply.code, 401 | 403), "{reply:?}");
    }
    assert!(blocked, "the guesser's own address ends up refused");
    let reply = lab.register(behind(&[PATH]));
    assert_eq!(
        reply.code, 200,
        "the real agent is not locked out: {reply:?}"
    );
}

#[test]
fn the_received_address_is_read_from_kamailio_s_path_forms() {
    for (entry, want) in [
        (
            "<sip:10.0.0.10;lr;received=sip:198.51.100.7:41000>",
            "198.51.100.7:41000",
        ),
        (
            "<sip:10.0.0.10;lr;received=sip:198.51.100.7:41000%3Btransport%3Dtcp>",
            "198.51.100.7:41000",
        ),
        (
            "<sip:10.0.0.10;lr;received=sip:[2001:db8::7]:5062>",
            "[2001:db8::7]:5062",
        ),
    ] {
        assert_eq!(
            super::path_received(entry),
            Some(want.parse().unwrap()),
            "{entry}"
        );
    }
    assert_eq!(super::path_received("<sip:10.0.0.10;lr>"), None);
}
