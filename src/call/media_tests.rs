//! The call core's media decisions on a virtual clock: SDP anchored at the relay
//! both ways (offer, answer, re-INVITE with a new port, hold), refused codecs, a
//! queued caller answered by the gateway, the media timeout and the survey.
//! The relay itself is played by the test: it reads the commands and feeds events.

use std::sync::Arc;
use std::time::Duration;

use super::tests::*;
use super::*;
use crate::media::command::{Leg, MediaCommand, MediaEvent};
use crate::media::{Prompt, Prompts};
use crate::sip::message::{Headers, Message, Response};
use crate::sip::sdp::{Direction, Sdp};

const PORTS: (u16, u16) = (30_000, 30_099);

pub(super) fn media_cfg(queued: QueuedAudio) -> MediaConfig {
    let mut prompts = Prompts::default();
    for (name, ms) in [
        ("greeting", 2000),
        ("hold", 4000),
        ("survey", 3000),
        ("thanks", 1000),
        ("number-changed", 3000),
    ] {
        prompts.insert(Prompt::from_pcm(name, &vec![500; ms * 8]));
    }
    MediaConfig {
        address: "127.0.0.1".parse().unwrap(),
        ports: PORTS,
        queued,
        prompts: Arc::new(prompts),
        greeting: Some("greeting".into()),
        hold_music: Some("hold".into()),
        hold_message: None,
        hold_message_every: Duration::from_secs(30),
        survey: true,
        survey_prompt: "survey".into(),
        survey_thanks: Some("thanks".into()),
        not_in_service: Some("number-changed".into()),
        survey_timeout: Duration::from_secs(5),
        record: false,
    }
}

/// A core whose line 12345 goes to `target` (a SIP URI or `queue:q`, a queue
/// with one static seat at the callee's address).
pub(super) fn net(target: &str, queued: QueuedAudio) -> Net {
    let plan = crate::dialplan::parse_sources(&[(
        "l.toml".into(),
        format!(
            "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n\
[[line]]\nnumber = \"12345\"\nname = \"h\"\ntarget = \"{target}\"\n\
[[queue]]\nname = \"q\"\nring_timeout_s = 10\nstatic_members = [\"sip:{CALLEE}\"]\n\
[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@127.0.0.1:5080\"\n"
        ),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        media: Some(media_cfg(queued)),
        ..Default::default()
    };
    Net::with(cfg, plan)
}

fn commands(net: &mut Net) -> Vec<MediaCommand> {
    std::iter::from_fn(|| net.core.poll_media()).collect()
}

fn sdp_of(body: &[u8]) -> Sdp {
    Sdp::parse(std::str::from_utf8(body).unwrap()).unwrap()
}

fn callee_sdp(port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=agent 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

/// A request with an SDP body from the callee inside the B dialog.
fn callee_reinvite(b_invite: &crate::sip::message::Request, cseq: u32, body: &str) -> Vec<u8> {
    let plain = String::from_utf8(callee_request(b_invite, "INVITE", cseq, "z9hG4bKre")).unwrap();
    plain
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .into_bytes()
}

fn ports_of(cmds: &[MediaCommand]) -> [u16; 2] {
    cmds.iter()
        .find_map(|c| match c {
            MediaCommand::Open { ports, .. } => Some(*ports),
            _ => None,
        })
        .expect("an Open command")
}

fn remote_of(cmds: &[MediaCommand], leg: Leg) -> Option<std::net::SocketAddr> {
    cmds.iter().rev().find_map(|c| match c {
        MediaCommand::Remote { leg: l, remote, .. } if *l == leg => Some(remote.rtp),
        _ => None,
    })
}

/// A call to a direct route, answered by the callee (PCMA at 127.0.0.1:6000)
/// and acknowledged: the callee's INVITE, the gateway's tag towards the caller
/// and the call's ports. The relay's commands so far are drained.
fn direct_call(net: &mut Net) -> (crate::sip::message::Request, String, [u16; 2]) {
    net.send(net.caller, &caller_invite());
    let ports = ports_of(&commands(net));
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(
        net.callee,
        &callee_reply(&b_inv, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    commands(net);
    (b_inv, gw_tag, ports)
}

#[test]
fn a_direct_call_is_anchored_at_the_relay_both_ways() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    net.send(net.caller, &caller_invite());
    let cmds = commands(&mut net);
    let ports = ports_of(&cmds);
    assert!((PORTS.0..=PORTS.1).contains(&ports[0]) && ports[0].is_multiple_of(2));
    assert_eq!(
        remote_of(&cmds, Leg::A),
        Some("192.0.2.10:4000".parse().unwrap())
    );
    // The callee is offered the relay's callee-side port, not the caller's address.
    let b_inv = net.request(net.callee, Method::Invite);
    let offer = sdp_of(&b_inv.body);
    assert_eq!(
        offer.audio_endpoint(),
        Some(("127.0.0.1".parse().unwrap(), ports[1]))
    );
    assert_eq!(offer.origin.username, "hotline");
    assert!(
        !String::from_utf8_lossy(&b_inv.body).contains("192.0.2.10"),
        "topology hidden"
    );
    // Its answer reaches the caller anchored at the caller-side port.
    net.send(
        net.callee,
        &callee_reply(&b_inv, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    let ok: Response = net.response(net.caller, 200);
    let answer = sdp_of(&ok.body);
    assert_eq!(
        answer.audio_endpoint(),
        Some(("127.0.0.1".parse().unwrap(), ports[0]))
    );
    let cmds = commands(&mut net);
    assert_eq!(
        remote_of(&cmds, Leg::B),
        Some("127.0.0.1:6000".parse().unwrap())
    );
    assert!(
        cmds.contains(&MediaCommand::Bridge { session: 1 }),
        "{cmds:?}"
    );
}

#[test]
fn a_reinvite_with_a_new_port_moves_the_relay_and_hold_passes_through() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    net.send(net.caller, &caller_invite());
    let ports = ports_of(&commands(&mut net));
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(
        net.callee,
        &callee_reply(&b_inv, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    let ok = net.response(net.caller, 200);
    let first_version = sdp_of(&ok.body).origin.version;
    commands(&mut net);
    // The agent's phone moves to port 7000 and puts the caller on hold.
    net.send(
        net.callee,
        &callee_reinvite(&b_inv, 2, &callee_sdp(7000, "sendonly")),
    );
    let cmds = commands(&mut net);
    assert_eq!(
        remote_of(&cmds, Leg::B),
        Some("127.0.0.1:7000".parse().unwrap())
    );
    let re = net.request(net.caller, Method::Invite);
    let sdp = sdp_of(&re.body);
    assert_eq!(
        sdp.audio_endpoint().map(|e| e.1),
        Some(ports[0]),
        "the caller's port never changes"
    );
    assert_eq!(
        sdp.direction(),
        Some(Direction::SendOnly),
        "hold reaches the caller"
    );
    assert!(sdp.origin.version > first_version, "o= version bumped");
    assert_eq!(sdp.origin.session_id, sdp_of(&ok.body).origin.session_id);
}

#[test]
fn an_offer_without_g711_is_refused_with_488() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    let invite = String::from_utf8(caller_invite())
        .unwrap()
        .replace("RTP/AVP 8", "RTP/AVP 18");
    net.send(net.caller, invite.as_bytes());
    net.response(net.caller, 488);
    net.none_to(net.callee, "INVITE", |m| matches!(m, Message::Request(_)));
    let rec = net.record();
    assert_eq!(rec.reason, Reason::MediaNoCodec);
    // The caller reached a line and was not served: offered, missed, owed a
    // call back, and its work-order stub opened.
    let cdr = rec.to_cdr();
    assert_eq!(cdr.offered_at_ms, Some(cdr.received_at_ms));
    assert!(cdr.callback_pending, "a refused caller is called back");
    let sla = crate::sla::classify(&cdr, &crate::sla::SlaConfig::default()).expect("counted");
    assert_eq!(sla.outcome, crate::sla::Outcome::Failed);
    let offer = net.core.poll_offer().expect("a stub opens");
    assert_eq!(offer.offered_to, format!("sip:{}", "12345"));
    net.drained();
}

#[test]
fn a_queued_caller_is_answered_by_the_gateway_and_the_seat_gets_its_codec() {
    let mut net = net("queue:q", QueuedAudio::Answer);
    net.send(net.caller, &caller_invite());
    // The gateway's own 200 with an SDP answer, then the greeting and hold music.
    let ok = net.response(net.caller, 200);
    let answer = sdp_of(&ok.body);
    let cmds = commands(&mut net);
    let ports = ports_of(&cmds);
    assert_eq!(answer.audio_endpoint().map(|e| e.1), Some(ports[0]));
    assert_eq!(answer.audio().unwrap().payload_types(), vec![8]);
    let play = cmds.iter().find_map(|c| match c {
        MediaCommand::Play { playlist, .. } => Some(playlist.clone()),
        _ => None,
    });
    let play = play.expect("the caller hears something");
    assert_eq!(play.once[0].name, "greeting");
    assert_eq!(play.hold.as_ref().unwrap().music.name, "hold");
    let gw_tag = ok.to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    // The seat is offered the caller's codec at the callee-side port.
    let seat = net.request(net.callee, Method::Invite);
    let offer = sdp_of(&seat.body);
    assert_eq!(offer.audio_endpoint().map(|e| e.1), Some(ports[1]));
    net.send(
        net.callee,
        &callee_reply(&seat, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    net.request(net.callee, Method::Ack);
    net.none_to(
        net.caller,
        "a second 200",
        |m| matches!(m, Message::Response(r) if r.code == 200),
    );
    let cmds = commands(&mut net);
    assert!(cmds.contains(&MediaCommand::Bridge { session: 1 }));
    // The seat hangs up first: a 12345 answer, so the survey starts; the caller rates 3.
    net.send(net.callee, &callee_request(&seat, "BYE", 2, "z9hG4bKbye"));
    net.response(net.callee, 200);
    net.none_to(
        net.caller,
        "BYE",
        |m| matches!(m, Message::Request(r) if r.method == Method::Bye),
    );
    let played = |cmds: &[MediaCommand], name: &str| {
        cmds.iter().find_map(|c| match c {
            MediaCommand::Play { play, playlist, .. } if playlist.once[0].name == name => {
                Some(*play)
            }
            _ => None,
        })
    };
    let survey = played(&commands(&mut net), "survey").expect("the survey prompt");
    // The caller presses 3 while the prompt still plays: thanks, then the hang-up.
    net.core.handle_media(
        net.now,
        MediaEvent::Digit {
            session: 1,
            leg: Leg::A,
            digit: '3',
        },
    );
    let thanks = played(&commands(&mut net), "thanks").expect("the thanks prompt");
    assert_ne!(survey, thanks);
    // The survey prompt's own end, in flight when the digit came, does not cut
    // the thanks short.
    net.core.handle_media(
        net.now,
        MediaEvent::PlayDone {
            session: 1,
            play: survey,
        },
    );
    net.collect();
    net.none_to(
        net.caller,
        "BYE before the thanks is over",
        |m| matches!(m, Message::Request(r) if r.method == Method::Bye),
    );
    net.core.handle_media(
        net.now,
        MediaEvent::PlayDone {
            session: 1,
            play: thanks,
        },
    );
    net.collect();
    net.request(net.caller, Method::Bye);
    net.advance(Duration::from_secs(40));
    let rec = net.record();
    assert_eq!(rec.survey, Some(3));
    assert_eq!(rec.reason, Reason::CalleeHangup);
    assert!(rec.answered_at.is_some(), "answered when the seat answered");
    assert!(commands(&mut net).contains(&MediaCommand::Close { session: 1 }));
}

#[test]
fn a_caller_who_hangs_up_in_the_queue_abandons() {
    let mut net = net("queue:q", QueuedAudio::Answer);
    // No seat answers: the static seat rings and stays silent.
    net.send(net.caller, &caller_invite());
    let ok = net.response(net.caller, 200);
    let gw_tag = ok.to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    let rec = net.record();
    assert_eq!(rec.reason, Reason::CallerCancelled);
    assert!(rec.answered_at.is_none());
    assert!(
        rec.events
            .iter()
            .any(|e| e.kind == crate::cdr::EventKind::CallerHungUp),
        "{:?}",
        rec.events
    );
    net.drained();
}

#[test]
fn silence_on_the_relay_ends_an_answered_call() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    direct_call(&mut net);
    net.core
        .handle_media(net.now, MediaEvent::Timeout { session: 1 });
    net.collect();
    net.request(net.caller, Method::Bye);
    net.request(net.callee, Method::Bye);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.record().reason, Reason::MediaTimeout);
}

#[test]
fn a_call_the_relay_never_heard_of_is_refused_with_503() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    net.send(net.caller, &caller_invite());
    assert!(matches!(
        commands(&mut net).first(),
        Some(MediaCommand::Open { session: 1, .. })
    ));
    // The transport could not queue the Open (the relay is overloaded).
    net.core
        .handle_media(net.now, MediaEvent::Refused { session: 1 });
    net.collect();
    net.response(net.caller, 503);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.record().reason, Reason::MediaRelayBusy);
    assert!(commands(&mut net).contains(&MediaCommand::Close { session: 1 }));
}

#[test]
fn early_media_mode_keeps_the_caller_unanswered_until_the_seat_answers() {
    let mut net = net("queue:q", QueuedAudio::EarlyMedia);
    net.send(net.caller, &caller_invite());
    let progress = net.response(net.caller, 183);
    let early = progress.body.clone();
    net.none_to(
        net.caller,
        "200",
        |m| matches!(m, Message::Response(r) if r.code == 200),
    );
    let seat = net.request(net.callee, Method::Invite);
    net.send(
        net.callee,
        &callee_reply(&seat, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    let ok = net.response(net.caller, 200);
    assert_eq!(ok.body, early, "the 200 repeats the 183's answer");
    assert!(
        commands(&mut net).contains(&MediaCommand::Bridge { session: 1 }),
        "the caller hears the seat, not the hold music"
    );
}

#[test]
fn a_transfer_keeps_the_callers_media_and_moves_the_relay_to_the_new_leg() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    let police = peer("127.0.0.1:5080");
    let (b_inv, _, ports) = direct_call(&mut net);
    net.send(net.callee, &callee_refer(&b_inv, "110", 2));
    net.response(net.callee, 202);
    // The new leg is offered the relay's callee-side port, in the caller's codec.
    let c_inv = net.request(police, Method::Invite);
    let offer = sdp_of(&c_inv.body);
    assert_eq!(offer.audio_endpoint().map(|e| e.1), Some(ports[1]));
    assert_eq!(offer.audio().unwrap().payload_types(), vec![8]);
    net.send(
        police,
        &callee_reply(&c_inv, 200, "OK", &[], &callee_sdp(7100, "sendrecv")),
    );
    net.request(police, Method::Ack);
    // No re-INVITE of the caller: its session with the relay does not change.
    net.none_to(
        net.caller,
        "re-INVITE",
        |m| matches!(m, Message::Request(r) if r.method == Method::Invite),
    );
    let cmds = commands(&mut net);
    assert_eq!(
        remote_of(&cmds, Leg::B),
        Some("127.0.0.1:7100".parse().unwrap())
    );
    net.advance(super::parting::GRACE);
    net.request(net.callee, Method::Bye);
    assert_eq!(
        net.core
            .calls
            .get(&1)
            .and_then(|c| c.transferred_to.clone())
            .as_deref(),
        Some("110")
    );
}

#[test]
fn a_hold_with_a_null_address_keeps_the_bridge() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    let (b_inv, _, _) = direct_call(&mut net);
    let held = callee_sdp(6000, "sendrecv").replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    net.send(net.callee, &callee_reinvite(&b_inv, 2, &held));
    let cmds = commands(&mut net);
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, MediaCommand::DropLeg { .. })),
        "RFC 2543 hold does not tear the leg down: {cmds:?}"
    );
    let re = net.request(net.caller, Method::Invite);
    assert!(sdp_of(&re.body).is_hold(), "the caller is told it is held");
}

#[test]
fn a_sip_info_digit_reaches_an_rfc_4733_phone_as_telephone_events() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    // The callee takes telephone-event (101); the caller's offer had none.
    let (b_inv, gw_tag, _) = direct_call(&mut net);
    let info = String::from_utf8(caller_request("INFO", 2, "z9hG4bKinfo", &gw_tag))
        .unwrap()
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=7\r\n",
        );
    net.send(net.caller, info.as_bytes());
    net.response(net.caller, 200);
    net.none_to(
        net.callee,
        "INFO",
        |m| matches!(m, Message::Request(r) if r.method == Method::Info),
    );
    assert!(
        commands(&mut net).contains(&MediaCommand::Dtmf {
            session: 1,
            leg: Leg::B,
            digit: '7'
        }),
        "the digit goes to the relay"
    );
    // The other way the caller takes no telephone-event: the INFO is relayed.
    let info = String::from_utf8(callee_request(&b_inv, "INFO", 2, "z9hG4bKi2"))
        .unwrap()
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=4\r\n",
        );
    net.send(net.callee, info.as_bytes());
    net.request(net.caller, Method::Info);
}

/// The signalling IP last given to the relay for `leg` (strict latching).
fn signal_of(cmds: &[MediaCommand], leg: Leg) -> Option<std::net::IpAddr> {
    cmds.iter().rev().find_map(|c| match c {
        MediaCommand::Remote { leg: l, signal, .. } if *l == leg => *signal,
        _ => None,
    })
}

#[test]
fn each_legs_signalling_ip_goes_to_the_relay_with_its_sdp() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    net.send(net.caller, &caller_invite());
    let cmds = commands(&mut net);
    // The caller's INVITE came from 192.0.2.10: its RTP may come from any port there.
    assert_eq!(
        signal_of(&cmds, Leg::A),
        Some("192.0.2.10".parse().unwrap())
    );
    let b_inv = net.request(net.callee, Method::Invite);
    net.send(
        net.callee,
        &callee_reply(&b_inv, 200, "OK", &[], &callee_sdp(6000, "sendrecv")),
    );
    net.collect();
    let cmds = commands(&mut net);
    assert_eq!(signal_of(&cmds, Leg::B), Some("127.0.0.1".parse().unwrap()));
}

#[test]
fn a_pair_the_relay_cannot_bind_ends_the_call_with_503_and_goes_back_to_the_pool() {
    let mut net = net(&format!("sip:{CALLEE}"), QueuedAudio::Answer);
    let capacity = net.core.sh.ports.capacity();
    net.send(net.caller, &caller_invite());
    let ports = ports_of(&commands(&mut net));
    assert_eq!(net.core.sh.ports.in_use(), 2);
    net.core.handle_media(
        net.now,
        MediaEvent::Failed {
            session: 1,
            port: ports[1],
        },
    );
    net.collect();
    net.response(net.caller, 503);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.record().reason, Reason::MediaPortUnavailable);
    assert_eq!(net.core.sh.ports.in_use(), 0, "both pairs given back");
    assert_eq!(net.core.sh.ports.capacity(), capacity, "none retired");
}

/// A core whose line 12345 went out of service at the end of 2025.
fn retired_line_net(media: bool) -> Net {
    let plan = crate::dialplan::parse_sources(&[(
        "l.toml".into(),
        format!(
            "[[trunk]]\nname = \"t\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\", \"192.0.2.0/24\"]\n\
[[line]]\nnumber = \"12345\"\nname = \"old\"\ntarget = \"sip:{CALLEE}\"\neffective_until = \"2025-12-31\"\n"
        ),
    )])
    .unwrap();
    let cfg = CoreConfig {
        max_calls: 10,
        media: media.then(|| media_cfg(QueuedAudio::Answer)),
        ..Default::default()
    };
    let mut net = Net::with(cfg, plan);
    net.core.set_wall_clock(net.now, 1_780_000_000_000); // 2026-05
    net
}

#[test]
fn a_line_out_of_service_is_announced_then_hung_up_and_counted_nowhere() {
    let mut net = retired_line_net(true);
    net.send(net.caller, &caller_invite());
    let ok = net.response(net.caller, 200);
    assert_eq!(ok.header("X-Hotline-Answered-By"), Some("gateway"));
    let gw_tag = ok.to_tag().unwrap();
    let cmds = commands(&mut net);
    let play = cmds
        .iter()
        .find_map(|c| match c {
            MediaCommand::Play { play, playlist, .. }
                if playlist
                    .once
                    .first()
                    .is_some_and(|p| p.name == "number-changed") =>
            {
                Some(*play)
            }
            _ => None,
        })
        .expect("the announcement plays");
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.none_to(
        net.callee,
        "an INVITE to the old line",
        |m| matches!(m, Message::Request(r) if r.method == Method::Invite),
    );
    net.core.handle_media(
        net.now,
        MediaEvent::PlayDone {
            session: cmds[0].session(),
            play,
        },
    );
    net.collect();
    let bye = net.request(net.caller, Method::Bye);
    let ok = response_to(&bye, 200, "OK", None).finish_empty();
    net.send(net.caller, &ok);
    let r = net.record();
    assert_eq!(r.reason, Reason::LineNotInService);
    assert!(
        r.events.iter().all(|e| e.kind != cdr::EventKind::Offered),
        "offered to nobody: {:?}",
        r.events
    );
    assert!(net.core.poll_offer().is_none(), "no work order");
}

#[test]
fn a_caller_hanging_up_on_the_announcement_ends_the_call() {
    let mut net = retired_line_net(true);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.send(
        net.caller,
        &caller_request("BYE", 2, "z9hG4bKbye1", &gw_tag),
    );
    net.response(net.caller, 200);
    assert_eq!(net.record().reason, Reason::LineNotInService);
    assert_eq!(net.core.active_calls(), 0);
}

#[test]
fn without_media_a_line_out_of_service_is_a_404() {
    let mut net = retired_line_net(false);
    net.send(net.caller, &caller_invite());
    net.response(net.caller, 404);
    assert_eq!(net.record().reason, Reason::LineNotInService);
}

#[test]
fn a_callers_info_during_the_announcement_is_answered_here() {
    let mut net = retired_line_net(true);
    net.send(net.caller, &caller_invite());
    let gw_tag = net.response(net.caller, 200).to_tag().unwrap();
    net.send(
        net.caller,
        &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
    );
    net.send(
        net.caller,
        &caller_request("INFO", 2, "z9hG4bKinfo2", &gw_tag),
    );
    net.response(net.caller, 200);
}
