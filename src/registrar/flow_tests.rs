//! Where a TCP agent is rung, on a virtual clock: through the connection its
//! REGISTER came over while that is open, then at its Contact's port on the same
//! IP (never at a host it did not register from). UDP agents: always the source.

use super::tests::*;
use super::*;
use crate::sip::Transport;

fn tcp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: addr.parse().unwrap(),
    }
}

fn ring_at(lab: &Lab) -> Vec<Peer> {
    lab.reg
        .lookup(lab.now, AGENT)
        .iter()
        .map(|b| b.ring_at())
        .collect()
}

#[test]
fn a_tcp_agent_is_rung_through_its_connection_then_at_its_contact_port() {
    let mut lab = Lab::new();
    let conn = tcp("192.0.2.20:49152");
    lab.src = conn;
    let r = Reg::new(AGENT).contacts(&["<sip:agent1001@10.1.2.3:5062;transport=tcp>"]);
    assert_eq!(lab.register(r.clone()).code, 200);
    assert_eq!(ring_at(&lab), vec![conn]);
    // Another connection closing (a stranger's, from elsewhere or the same IP)
    // changes nothing.
    lab.reg.connection_closed(tcp("192.0.2.20:49153"));
    lab.reg.connection_closed(tcp("198.51.100.7:49152"));
    lab.reg.connection_closed(peer("192.0.2.20:49152"));
    assert_eq!(ring_at(&lab), vec![conn]);
    // Its own closing: the Contact's port, on the IP it registered from.
    lab.reg.connection_closed(conn);
    assert_eq!(ring_at(&lab), vec![tcp("192.0.2.20:5062")]);
    // A new REGISTER over a new connection: rung through that one.
    let again = tcp("192.0.2.20:49170");
    lab.src = again;
    assert_eq!(lab.register(r).code, 200);
    assert_eq!(ring_at(&lab), vec![again]);
}

#[test]
fn a_contact_without_a_port_means_5060_and_udp_keeps_its_source() {
    let mut lab = Lab::new();
    let conn = tcp("192.0.2.20:49152");
    lab.src = conn;
    let r = Reg::new(AGENT).contacts(&["<sip:agent1001@10.1.2.3;transport=tcp>"]);
    assert_eq!(lab.register(r).code, 200);
    lab.reg.connection_closed(conn);
    assert_eq!(ring_at(&lab), vec![tcp("192.0.2.20:5060")]);
    // UDP: the source address, whatever closes.
    let mut lab = Lab::new();
    let r = Reg::new(AGENT).contacts(&["<sip:agent1001@10.1.2.3:5062>"]);
    assert_eq!(lab.register(r).code, 200);
    lab.reg.connection_closed(tcp("192.0.2.20:5060"));
    assert_eq!(ring_at(&lab), vec![peer("192.0.2.20:5060")]);
}
