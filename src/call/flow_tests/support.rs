//! What the flow tests share: a dialplan with a queue of two agents, two
//! parallel lines, a line with a prompt and a transfer directory; agents that
//! REGISTER with digest like a softphone; parties answering and sending requests
//! from their own addresses; the relay's side; and the leak check.

use std::time::Duration;

use md5::{Digest as _, Md5};

use crate::call::media_tests::media_cfg;
use crate::call::tests::{Net, caller_request, peer};
use crate::call::{CoreConfig, QueuedAudio};
use crate::cdr::EventKind;
use crate::dialplan::Dialplan;
use crate::media::command::MediaCommand;
use crate::sip::Peer;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Message, Method, Request, Response};

/// The legacy platform of the parallel lines.
pub(super) const LEGACY: Party = Party {
    addr: "127.0.0.1:5090",
    tag: "lg",
};
/// The transfer directory's 110 (as in `Net::new`'s plan).
pub(super) const POLICE: Party = Party {
    addr: "127.0.0.1:5080",
    tag: "po",
};
pub(super) const A1: Agent = Agent {
    id: "1001",
    password: "pw-1001-secret",
    at: Party {
        addr: "127.0.0.1:5071",
        tag: "a1",
    },
};
pub(super) const A2: Agent = Agent {
    id: "1002",
    password: "pw-1002-secret",
    at: Party {
        addr: "127.0.0.1:5072",
        tag: "a2",
    },
};

/// 12345 queues for agents 1001 and 1002 (ring timeout 15 s, no wrap-up);
/// 12333 and 12328 are parallel lines whose legacy seats ring 20 s and 60 s
/// first; 12315 plays the "greeting" prompt before queueing.
const PLAN: &str = r#"
[[trunk]]
name = "t"
kind = "carrier"
sources = ["127.0.0.0/8", "192.0.2.0/24"]

[[trunk]]
name = "legacy"
kind = "legacy"
sources = ["127.0.0.1"]
target = "sip:127.0.0.1:5090"

[[line]]
number = "12345"
name = "hotline"
queue = "agents"

[[line]]
number = "12333"
name = "parallel, 20 s"
mode = "parallel"
queue = "agents"
legacy_trunk = "legacy"
ring_time_s = 20

[[line]]
number = "12328"
name = "parallel, 60 s"
mode = "parallel"
queue = "agents"
legacy_trunk = "legacy"
ring_time_s = 60

[[line]]
number = "12315"
name = "forwarded, with a prompt"
mode = "call_forwarding"
queue = "agents"
prompt = "greeting"

[[queue]]
name = "agents"
ring_timeout_s = 15
wrap_up_s = 0
max_wait_s = 300
agents = ["1001", "1002"]

[[agent]]
id = "1001"
name = "Agent 1001"
password = "pw-1001-secret"

[[agent]]
id = "1002"
name = "Agent 1002"
password = "pw-1002-secret"

[[transfer]]
number = "110"
name = "Police"
target = "sip:110@127.0.0.1:5080"
"#;

/// 12345 straight to the callee, as in `Net::new`.
const DIRECT: &str = r#"
[[trunk]]
name = "t"
kind = "carrier"
sources = ["127.0.0.0/8", "192.0.2.0/24"]

[[line]]
number = "12345"
name = "h"
target = "sip:127.0.0.1:5070"

[[transfer]]
number = "110"
name = "Police"
target = "sip:110@127.0.0.1:5080"
"#;

fn parse(text: &str) -> Dialplan {
    crate::dialplan::parse_sources(&[("flows.toml".into(), text.into())]).unwrap()
}

/// A core on the flow plan; media anchored when `queued` says how.
pub(super) fn flow_net(queued: Option<QueuedAudio>) -> Net {
    Net::with(flow_cfg(queued), parse(PLAN))
}

/// [`flow_net`] as one node of a cluster (active).
pub(super) fn cluster_net(queued: Option<QueuedAudio>) -> Net {
    let cfg = CoreConfig {
        clustered: true,
        ..flow_cfg(queued)
    };
    Net::with(cfg, parse(PLAN))
}

fn flow_cfg(queued: Option<QueuedAudio>) -> CoreConfig {
    CoreConfig {
        max_calls: 10,
        media: queued.map(media_cfg),
        // Keepalive probes have tests of their own (registrar::qualify_tests):
        // here they would be transactions the leak check counts.
        registrar: crate::registrar::RegistrarConfig {
            qualify: crate::registrar::QualifyConfig {
                every: Duration::ZERO,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// [`flow_net`] (no media) on the flow plan and `extra` dialplan text.
pub(super) fn flow_net_with(extra: &str) -> Net {
    Net::with(flow_cfg(None), parse(&format!("{PLAN}\n{extra}")))
}

/// [`flow_net_with`] with media anchored (callers answered by the gateway).
pub(super) fn flow_net_media_with(extra: &str) -> Net {
    Net::with(
        flow_cfg(Some(QueuedAudio::Answer)),
        parse(&format!("{PLAN}\n{extra}")),
    )
}

/// A core on the flow plan with this configuration (keepalive probes on by default).
pub(super) fn plan_net(cfg: CoreConfig) -> Net {
    Net::with(cfg, parse(PLAN))
}

/// A core whose 12345 goes straight to the callee, with this configuration.
pub(super) fn direct_net(cfg: CoreConfig) -> Net {
    Net::with(cfg, parse(DIRECT))
}

/// The caller's INVITE (as `caller_invite`) to another number.
pub(super) fn invite_to(number: &str) -> Vec<u8> {
    String::from_utf8(crate::call::tests::caller_invite())
        .unwrap()
        .replace("12345@", &format!("{number}@"))
        .into_bytes()
}

/// An INFO from the caller carrying one DTMF digit (`application/dtmf-relay`).
pub(super) fn caller_info(gw_tag: &str, cseq: u32, digit: char) -> Vec<u8> {
    String::from_utf8(caller_request("INFO", cseq, "z9hG4bKinfo", gw_tag))
        .unwrap()
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal={digit}\r\n"
            ),
        )
        .into_bytes()
}

/// A phone the gateway talks to as a UAS: an agent's softphone, the legacy
/// platform, a transfer target.
#[derive(Debug, Clone, Copy)]
pub(super) struct Party {
    pub(super) addr: &'static str,
    /// Its To tag on the dialogs it answers.
    pub(super) tag: &'static str,
}

impl Party {
    pub(super) fn peer(&self) -> Peer {
        peer(self.addr)
    }

    /// Its answer to a request the gateway sent it (SDP when `sdp` is not empty).
    pub(super) fn reply(&self, req: &Request, code: u16, reason: &str, sdp: &str) -> Vec<u8> {
        let mut m = response_to(req, code, reason, Some(self.tag));
        if (101..300).contains(&code) && req.method == Method::Invite {
            m.header("Contact", &format!("<sip:party@{}>", self.addr));
        }
        let ct = (!sdp.is_empty()).then_some("application/sdp");
        m.finish(ct, sdp.as_bytes()).to_vec()
    }

    /// A request inside the dialog of `invite` (the gateway's INVITE to it).
    pub(super) fn request(
        &self,
        invite: &Request,
        method: &str,
        cseq: u32,
        branch: &str,
        headers: &[(&str, &str)],
    ) -> Vec<u8> {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        format!(
            "{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: {to};tag={tag}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:party@{addr}>\r\n{extra}Content-Length: 0\r\n\r\n",
            addr = self.addr,
            tag = self.tag,
            to = invite.header("To").unwrap(),
            from = invite.header("From").unwrap(),
            call_id = invite.call_id().unwrap(),
        )
        .into_bytes()
    }
}

/// An agent of the flow plan with its softphone.
#[derive(Debug, Clone, Copy)]
pub(super) struct Agent {
    pub(super) id: &'static str,
    pub(super) password: &'static str,
    pub(super) at: Party,
}

impl Agent {
    pub(super) fn peer(&self) -> Peer {
        self.at.peer()
    }

    /// REGISTERs as a softphone does: challenged, then digest (MD5) on the nonce.
    pub(super) fn register(&self, net: &mut Net) {
        self.log_in(net);
        assert_eq!(agent_state(net, self.id), "ready", "{} logged in", self.id);
    }

    /// [`Agent::register`] when a caller waits: the agent is rung at once.
    pub(super) fn log_in(&self, net: &mut Net) {
        net.send(self.peer(), &self.register_text(1, None));
        let challenge = net.response(self.peer(), 401);
        let auth = self.digest(&challenge, "REGISTER", "sip:127.0.0.1");
        net.send(self.peer(), &self.register_text(2, Some(&auth)));
        net.response(self.peer(), 200);
    }

    fn register_text(&self, cseq: u32, auth: Option<&str>) -> Vec<u8> {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKreg{id}{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{id}@127.0.0.1>;tag=r{id}\r\nTo: <sip:{id}@127.0.0.1>\r\n\
Call-ID: reg-{id}@{addr}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{id}@{addr}>\r\n{auth}\
Content-Length: 0\r\n\r\n",
            addr = self.at.addr,
            id = self.id,
        )
        .into_bytes()
    }

    /// The `Authorization` value answering `challenge`'s MD5 nonce for a
    /// request `method uri`, computed here with plain MD5 (RFC 7616, qop=auth).
    pub(super) fn digest(&self, challenge: &Response, method: &str, uri: &str) -> String {
        self.digest_nc(challenge, method, uri, 1)
    }

    /// [`Agent::digest`] with nonce count `nc` (a phone counts its uses of a nonce).
    pub(super) fn digest_nc(
        &self,
        challenge: &Response,
        method: &str,
        uri: &str,
        nc: u32,
    ) -> String {
        let www = challenge
            .header_all("WWW-Authenticate")
            .find(|v| v.contains("algorithm=MD5"))
            .expect("an MD5 challenge");
        let param = |name: &str| {
            www.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap()
                .to_string()
        };
        let (realm, nonce) = (param("realm"), param("nonce"));
        let md5 = |s: String| crate::util::hex::hex(&Md5::digest(s.as_bytes()));
        let ha1 = md5(format!("{}:{realm}:{}", self.id, self.password));
        let ha2 = md5(format!("{method}:{uri}"));
        let (nc, cnonce) = (format!("{nc:08x}"), "0a4f113b");
        let response = md5(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            self.id
        )
    }

    /// The INVITE the gateway rang this agent with.
    pub(super) fn invite(&self, net: &mut Net) -> Request {
        let inv = net.request(self.peer(), Method::Invite);
        assert_eq!(&*inv.uri, format!("sip:{}@{}", self.id, self.at.addr));
        inv
    }

    pub(super) fn reply(&self, req: &Request, code: u16, reason: &str, sdp: &str) -> Vec<u8> {
        self.at.reply(req, code, reason, sdp)
    }
}

/// An agent's state as `GET /api/v1/agents` shows it (`ready`, `on_call`…).
pub(super) fn agent_state(net: &Net, id: &str) -> String {
    let view = net.core.agents_view(net.now);
    view["agents"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["id"] == id))
        .and_then(|a| a["state"].as_str())
        .unwrap_or_else(|| panic!("no agent {id} in {view}"))
        .to_string()
}

/// A message that is a response with this status.
pub(super) fn is_code(code: u16) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::Response(r) if r.code == code)
}

/// A message that is a request with this method.
pub(super) fn is_method(method: Method) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::Request(r) if r.method == method)
}

/// How many messages sent to `to` match.
pub(super) fn count(net: &Net, to: Peer, pred: impl Fn(&Message) -> bool) -> usize {
    net.inbox
        .iter()
        .filter(|(p, m)| *p == to && pred(m))
        .count()
}

/// The orders the relay got since the last look.
pub(super) fn commands(net: &mut Net) -> Vec<MediaCommand> {
    std::iter::from_fn(|| net.core.poll_media()).collect()
}

/// The session the relay was told to open.
pub(super) fn session_of(cmds: &[MediaCommand]) -> u64 {
    cmds.iter()
        .find_map(|c| match c {
            MediaCommand::Open { session, .. } => Some(*session),
            _ => None,
        })
        .expect("an Open command")
}

/// The number of the playlist starting with prompt `name`, if one was sent.
pub(super) fn played(cmds: &[MediaCommand], name: &str) -> Option<u32> {
    cmds.iter().find_map(|c| match c {
        MediaCommand::Play { play, playlist, .. }
            if playlist.once.first().is_some_and(|p| p.name == name) =>
        {
            Some(*play)
        }
        _ => None,
    })
}

/// An agent's SDP answer at 127.0.0.1:`port` (PCMA).
pub(super) fn agent_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=agent 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

/// The one work-order offer a call made (its stub opens then): offered to
/// `to`, with the record's id.
pub(super) fn one_offer(net: &mut Net, to: &str, record: &crate::call::FinishedCall) {
    let offer = net.core.poll_offer().expect("the call was offered");
    assert_eq!(offer.offered_to, to);
    assert_eq!(offer.id, record.id);
    assert_eq!(offer.sip_call_id, record.call_id);
    assert!(net.core.poll_offer().is_none(), "one offer per call");
}

/// Whether the record has an event of this kind with this detail.
pub(super) fn has_event(r: &crate::call::FinishedCall, kind: EventKind, detail: &str) -> bool {
    r.events
        .iter()
        .any(|e| e.kind == kind && e.detail.as_deref() == Some(detail))
}

/// The leak check after a flow: the call is gone, and 64·T1 later (every
/// transaction's longest wait) no transaction is left.
pub(super) fn no_leak(net: &mut Net) {
    let t64 = CoreConfig::default().layer.timers.timeout();
    no_leak_within(net, t64 + Duration::from_secs(1));
}

/// [`no_leak`] with a longer wait for the transactions to go.
pub(super) fn no_leak_within(net: &mut Net, wait: Duration) {
    assert_eq!(net.core.active_calls(), 0, "a call outlived its end");
    net.advance(wait);
    assert_eq!(
        net.core.transactions(),
        0,
        "leaked transactions; inbox: {:#?}",
        net.summary()
    );
    assert_eq!(net.core.active_calls(), 0);
    assert_eq!(
        net.core.index_sizes(),
        [0; 4],
        "index entries (by_a, by_b, orphans, by_tx) outlived their calls"
    );
    assert!(net.core.poll_record().is_none(), "one record per call");
}
