use super::*;
use std::net::Ipv6Addr;

/// Fixtures are written with LF for reading; on the wire SDP uses CRLF.
fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn sdp(s: &str) -> Sdp {
    Sdp::parse(&crlf(s)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const GW: &str = "203.0.113.5";

/// An agent softphone's offer: media-level c=, G.729 with annex B off, RFC 3605.
const SOFTPHONE: &str = "v=0
o=agent1 3905442107 3905442107 IN IP4 192.168.10.21
s=SIP Call
t=0 0
m=audio 40000 RTP/AVP 0 8 18 101
c=IN IP4 192.168.10.21
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtcp:40001
a=ptime:20
a=X-nat:0
a=sendrecv
";

/// A carrier's offer: session-level c=, static payload type 0 without rtpmap.
const CARRIER: &str = "v=0
o=- 1680000000 1680000001 IN IP4 10.20.30.40
s=-
c=IN IP4 10.20.30.40
t=0 0
m=audio 16384 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=maxptime:40
";

/// The softphone holds the call with a re-INVITE (RFC 3264 §8.4).
const HOLD: &str = "v=0
o=agent1 3905442107 3905442108 IN IP4 192.168.10.21
s=SIP Call
t=0 0
m=audio 40000 RTP/AVP 8 101
c=IN IP4 192.168.10.21
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendonly
";

/// An old PBX holds the call RFC 2543 style.
const OLD_HOLD: &str = "v=0
o=pbx 77 78 IN IP4 10.1.1.9
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 20000 RTP/AVP 8
";

/// An answer that rejects the only stream.
const REJECTED: &str = "v=0
o=- 5 5 IN IP4 10.20.30.40
s=-
c=IN IP4 10.20.30.40
t=0 0
m=audio 0 RTP/AVP 0
";

/// A video softphone: opus first, video with its own c= and RTCP feedback.
const VIDEO: &str = "v=0
o=linphone 1 1 IN IP4 192.168.10.30
s=Talk
c=IN IP4 192.168.10.30
t=0 0
m=audio 7078 RTP/AVP 96 8 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtcp-fb:96 nack
a=rtpmap:101 telephone-event/8000
m=video 9078 RTP/AVP 97
c=IN IP4 192.168.10.31
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42e01f
a=rtcp-fb:97 nack pli
";

/// A trunk on IPv6, with an explicit RTCP address.
const IPV6: &str = "v=0
o=- 42 1 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
a=rtcp:30001 IN IP6 2001:db8::10
";

const ALL: [&str; 7] = [SOFTPHONE, CARRIER, HOLD, OLD_HOLD, REJECTED, VIDEO, IPV6];

const G711_DTMF: [&str; 3] = ["PCMA/8000", "PCMU/8000", "telephone-event/8000"];

#[test]
fn parse_then_print_gives_the_body_back_with_crlf() {
    for text in ALL {
        assert_eq!(Sdp::parse(&crlf(text)).unwrap().to_string(), crlf(text));
        assert_eq!(Sdp::parse(text).unwrap().to_string(), crlf(text), "LF in");
    }
}

#[test]
fn typed_access_to_a_softphone_offer() {
    let s = sdp(SOFTPHONE);
    let o = &s.origin;
    assert_eq!(o.username, "agent1");
    assert_eq!(o.session_id, "3905442107");
    assert_eq!(o.version, 3_905_442_107);
    assert_eq!(o.address.ip(), Some(ip("192.168.10.21")));
    assert_eq!(s.connection(), None);
    let a = s.audio().unwrap();
    assert_eq!((a.kind.as_str(), a.port), ("audio", 40000));
    assert_eq!(a.proto, "RTP/AVP");
    assert_eq!(a.payload_types(), [0, 8, 18, 101]);
    assert_eq!(a.rtpmap(101).unwrap().encoding, "telephone-event/8000");
    assert_eq!(a.fmtp(101), Some("0-16"));
    assert_eq!(a.fmtp(18), Some("annexb=no"));
    assert_eq!(a.fmtp(0), None);
    let rtcp = a.rtcp().unwrap();
    assert_eq!((rtcp.port, &rtcp.address), (40001, &None));
    assert_eq!(
        (a.ptime(), a.direction()),
        (Some(20), Some(Direction::SendRecv))
    );
    assert_eq!(a.connection().unwrap().ip(), Some(ip("192.168.10.21")));
    // Static payload types need no rtpmap; dynamic ones do.
    let carrier = sdp(CARRIER);
    let a = carrier.audio().unwrap();
    assert_eq!(a.encoding(0), Some("PCMU/8000"));
    assert_eq!(a.encoding(8), Some("PCMA/8000"));
    assert_eq!(a.encoding(96), None);
}

#[test]
fn direction_hold_and_endpoint_of_each_offer() {
    use Direction::*;
    let table = [
        (SOFTPHONE, SendRecv, false, Some(("192.168.10.21", 40000))),
        (CARRIER, SendRecv, false, Some(("10.20.30.40", 16384))),
        (HOLD, SendOnly, true, Some(("192.168.10.21", 40000))),
        (OLD_HOLD, SendRecv, true, None),
        (REJECTED, SendRecv, false, None),
        (VIDEO, SendRecv, false, Some(("192.168.10.30", 7078))),
        (IPV6, SendRecv, false, Some(("2001:db8::10", 30000))),
    ];
    for (text, dir, hold, endpoint) in table {
        let s = sdp(text);
        assert_eq!((s.direction(), s.is_hold()), (Some(dir), hold), "{text}");
        let endpoint = endpoint.map(|(a, p)| (ip(a), p));
        assert_eq!(s.audio_endpoint(), endpoint, "{text}");
    }
}

#[test]
fn a_session_level_direction_applies_unless_the_stream_overrides_it() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\na=inactive\n\
                m=audio 4000 RTP/AVP 0\n";
    let mut s = sdp(text);
    assert_eq!(s.session_direction(), Some(Direction::Inactive));
    assert!(s.is_hold());
    s.set_direction(Direction::SendRecv);
    assert!(!s.is_hold());
    assert_eq!(
        s.session_direction(),
        Some(Direction::Inactive),
        "session line kept"
    );
}

#[test]
fn set_direction_replaces_or_appends_and_answers_reverse() {
    let mut s = sdp(SOFTPHONE);
    s.set_direction(Direction::SendOnly);
    assert_eq!(
        s.to_string(),
        crlf(&SOFTPHONE.replace("a=sendrecv", "a=sendonly"))
    );
    let mut s = sdp(CARRIER);
    s.set_direction(Direction::Inactive);
    assert_eq!(s.to_string(), crlf(&format!("{CARRIER}a=inactive\n")));
    assert!(s.is_hold());
    use Direction::*;
    let answers = [
        (SendRecv, SendRecv),
        (SendOnly, RecvOnly),
        (RecvOnly, SendOnly),
        (Inactive, Inactive),
    ];
    for (offer, answer) in answers {
        assert_eq!(offer.reversed(), answer);
    }
}

#[test]
fn anchor_rewrites_addresses_and_ports_and_keeps_everything_else() {
    let mut s = sdp(SOFTPHONE);
    s.anchor(ip(GW), 30000, false);
    let expected = (SOFTPHONE.replace("192.168.10.21", GW))
        .replace("m=audio 40000", "m=audio 30000")
        .replace("a=rtcp:40001", "a=rtcp:30001");
    assert_eq!(s.to_string(), crlf(&expected));
    assert_eq!(s.audio_endpoint(), Some((ip(GW), 30000)));
}

#[test]
fn anchor_bumps_the_origin_version_only_when_asked() {
    for (bump, version) in [(false, 1_680_000_001), (true, 1_680_000_002)] {
        let mut s = sdp(CARRIER);
        s.anchor(ip(GW), 30000, bump);
        assert_eq!(
            (s.origin.version, s.origin.session_id.as_str()),
            (version, "1680000000")
        );
        assert!(
            s.to_string().contains("a=maxptime:40\r\n"),
            "unknown attribute kept"
        );
    }
}

#[test]
fn anchor_changes_only_the_address_of_a_video_stream() {
    let mut s = sdp(VIDEO);
    s.anchor(ip(GW), 30000, true);
    let expected = (VIDEO.replace("o=linphone 1 1", "o=linphone 1 2"))
        .replace("192.168.10.30", GW)
        .replace("192.168.10.31", GW)
        .replace("m=audio 7078", "m=audio 30000");
    assert_eq!(s.to_string(), crlf(&expected));
    assert_eq!(s.media[1].port, 9078);
}

#[test]
fn anchor_keeps_a_rejected_stream_rejected() {
    let mut s = sdp(REJECTED);
    s.anchor(ip(GW), 30000, false);
    assert_eq!((s.audio().unwrap().port, s.audio_endpoint()), (0, None));
    assert_eq!(s.connection().unwrap().ip(), Some(ip(GW)));
}

#[test]
fn anchor_moves_rtcp_with_the_port_or_drops_it() {
    let gw6: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99).into();
    let mut s = sdp(IPV6);
    s.anchor(gw6, 40000, false);
    let rtcp = s.audio().unwrap().rtcp().unwrap();
    assert_eq!(
        (rtcp.port, rtcp.address.as_ref().unwrap().ip()),
        (40001, Some(gw6))
    );
    assert!(s.to_string().contains("c=IN IP6 2001:db8::99\r\n"));
    // RTP on the last port leaves no room for RTCP on the next one.
    let mut s = sdp(SOFTPHONE);
    s.anchor(ip(GW), u16::MAX, false);
    assert_eq!(s.audio().unwrap().rtcp(), None);
    // An IPv4 offer anchored on an IPv6 gateway says IP6.
    let mut s = sdp(CARRIER);
    s.anchor(gw6, 30000, false);
    let out = s.to_string();
    assert!(out.contains("\r\nc=IN IP6 2001:db8::99\r\n"), "{out}");
    assert!(
        out.contains("\r\no=- 1680000000 1680000001 IN IP6 2001:db8::99\r\n"),
        "{out}"
    );
}

#[test]
fn anchor_carries_an_old_style_hold_as_a_direction() {
    let mut s = sdp(OLD_HOLD);
    s.anchor(ip(GW), 30000, false);
    assert_eq!(
        (s.direction(), s.is_hold()),
        (Some(Direction::SendOnly), true)
    );
    assert_eq!(s.audio_endpoint(), Some((ip(GW), 30000)));
}

#[test]
fn a_reinvite_with_a_new_port_moves_the_endpoint() {
    let offer = sdp(CARRIER);
    let reinvite = sdp(&CARRIER
        .replace("16384", "16500")
        .replace("1680000001", "1680000002"));
    assert_eq!(offer.audio_endpoint(), Some((ip("10.20.30.40"), 16384)));
    assert_eq!(reinvite.audio_endpoint(), Some((ip("10.20.30.40"), 16500)));
    assert_eq!(reinvite.origin.version, offer.origin.version + 1);
}

#[test]
fn restrict_codecs_keeps_the_allowed_ones_in_offer_order() {
    #[rustfmt::skip]
    let table: [(&str, &[&str], &[u8], &str); 4] = [
        (SOFTPHONE, &G711_DTMF, &[0, 8, 101], "m=audio 40000 RTP/AVP 0 8 101\r\n"),
        (CARRIER, &G711_DTMF, &[8, 0, 101], "m=audio 16384 RTP/AVP 8 0 101\r\n"),
        (VIDEO, &G711_DTMF, &[8, 101], "m=audio 7078 RTP/AVP 8 101\r\n"),
        (SOFTPHONE, &["pcma", "TELEPHONE-EVENT/8000"], &[8, 101], "RTP/AVP 8 101\r\n"),
    ];
    for (text, allowed, kept, m_line) in table {
        let mut s = sdp(text);
        assert_eq!(s.restrict_codecs(allowed).unwrap(), kept, "{text}");
        let out = s.to_string();
        assert!(out.contains(m_line), "{out}");
        for gone in ["G729", "annexb", "opus", "useinbandfec", "a=rtcp-fb:96"] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
    }
    // The video section's payload-type lines are not the audio's.
    let mut s = sdp(VIDEO);
    s.restrict_codecs(&G711_DTMF).unwrap();
    let video = "a=fmtp:97 profile-level-id=42e01f\r\na=rtcp-fb:97 nack pli\r\n";
    assert!(s.to_string().contains(video));
}

#[test]
fn restrict_codecs_without_a_speech_codec_fails_and_changes_nothing() {
    let only_g729 = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                     m=audio 4000 RTP/AVP 18 101\na=rtpmap:18 G729/8000\n\
                     a=rtpmap:101 telephone-event/8000\n";
    #[rustfmt::skip]
    let table: [(&str, &[&str], SdpError); 4] = [
        (only_g729, &G711_DTMF, SdpError::NoCommonCodec),
        (SOFTPHONE, &["telephone-event/8000", "CN/8000"], SdpError::NoCommonCodec),
        (SOFTPHONE, &["PCMA/16000"], SdpError::NoCommonCodec),
        (REJECTED, &G711_DTMF, SdpError::NoAudio),
    ];
    for (text, allowed, err) in table {
        let mut s = sdp(text);
        assert_eq!(s.restrict_codecs(allowed), Err(err), "{text}");
        assert_eq!(s, sdp(text), "unchanged");
    }
}

#[test]
fn bodies_that_are_not_sdp_are_refused() {
    #[rustfmt::skip]
    let table = [
        ("", SdpError::Empty),
        ("\r\n\r\n", SdpError::Empty),
        ("o=- 1 1 IN IP4 10.0.0.1\ns=-\n", SdpError::MissingVersion),
        ("INVITE sip:12345@gw SIP/2.0\n", SdpError::MissingVersion),
        ("v=1\no=- 1 1 IN IP4 10.0.0.1\n", SdpError::UnsupportedVersion),
        ("v=0\ns=-\nt=0 0\n", SdpError::MissingOrigin),
    ];
    for (text, err) in table {
        assert_eq!(Sdp::parse(text), Err(err), "{text:?}");
    }
}

#[test]
fn malformed_lines_are_refused_with_their_number() {
    // Each body is a valid head (lines 1-4), then the lines below from line 5.
    let head = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n";
    let m = "m=audio 4000 RTP/AVP 8\n";
    #[rustfmt::skip]
    let table = [
        ("garbage".to_owned(), 5, "not a <type>=<value> line"),
        ("v=0".into(), 5, "v= after the first line"),
        ("o=- 2 2 IN IP4 10.0.0.1".into(), 5, "a second o= line"),
        ("c=IN IP5 10.0.0.1".into(), 5, "address is not IN IP4|IP6 <host>"),
        ("c=IN IP4".into(), 5, "address is not IN IP4|IP6 <host>"),
        ("m=audio 4000 RTP/AVP".into(), 5, "m= has no formats"),
        ("m=audio".into(), 5, "m= needs <media> <port> <proto> <formats>"),
        ("m=audio abc RTP/AVP 0".into(), 5, "m= port is not a number 0-65535"),
        ("m=audio 70000 RTP/AVP 0".into(), 5, "m= port is not a number 0-65535"),
        ("m=audio 4000/x RTP/AVP 0".into(), 5, "m= port count is not a number"),
        ("m=audio 4000 RTP/AVP 0 PCMA".into(), 5, "m= RTP payload type is not a number 0-127"),
        ("m=audio 4000 RTP/AVP 128".into(), 5, "m= RTP payload type is not a number 0-127"),
        (format!("{m}a=rtpmap:8 PCMA"), 6, "a=rtpmap encoding is not <name>/<clock rate>"),
        (format!("{m}a=fmtp:x 0-16"), 6, "a=rtpmap/fmtp payload type is not a number 0-127"),
        (format!("{m}a=rtcp:port"), 6, "a=rtcp port is not a number 0-65535"),
        (format!("{m}\na=rtcp:1 IN"), 7, "address is not IN IP4|IP6 <host>"),
    ];
    for (rest, line, reason) in table {
        let text = format!("{head}{rest}\n");
        let err = SdpError::Malformed { line, reason };
        assert_eq!(Sdp::parse(&text), Err(err), "{rest:?}");
    }
    let o = |o: &str| Sdp::parse(&format!("v=0\no={o}\n"));
    let bad_o = |reason| Err(SdpError::Malformed { line: 2, reason });
    let bad_version = "o= session version is not a number";
    assert_eq!(o("- 1 x IN IP4 10.0.0.1"), bad_o(bad_version));
    assert_eq!(o("- 1"), bad_o("o= needs six fields"));
    assert_eq!(o("- 1 1 IN IP4"), bad_o("address is not IN IP4|IP6 <host>"));
}

#[test]
fn oddities_are_tolerated_and_kept() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=\u{653f}\u{52a1}\nc=IN IP4 gw.example.net\nt=0 0\n\n\
                a=tool:somepbx 1.2\nm=audio  4000/2  RTP/AVP 8 \na=ptime:20.0\na=rtpmap:8  PCMA/8000\n\
                m=image 0 udptl t38\na=T38FaxVersion:0\na=fmtp:t38 x\n";
    let s = Sdp::parse(text).unwrap();
    let a = s.audio().unwrap();
    assert_eq!((a.port, a.port_count), (4000, Some(2)));
    assert_eq!(a.ptime(), None, "a fractional ptime is kept verbatim");
    assert_eq!(a.rtpmap(8).unwrap().encoding, "PCMA/8000");
    assert_eq!(s.audio_endpoint(), None, "a host name is not an endpoint");
    assert_eq!(s.media[1].formats, ["t38"]);
    let printed = s.to_string();
    let kept = [
        "s=\u{653f}\u{52a1}",
        "a=tool:somepbx 1.2",
        "a=ptime:20.0",
        "a=fmtp:t38 x",
    ];
    for kept in kept {
        assert!(
            printed.contains(&format!("\r\n{kept}\r\n")),
            "{kept:?} in {printed}"
        );
    }
    assert!(printed.contains("\r\nm=audio 4000/2 RTP/AVP 8\r\n"));
    assert_eq!(Sdp::parse(&printed), Ok(s.clone()), "reparses the same");
    let mut anchored = s;
    anchored.anchor(ip(GW), 30000, false);
    let anchored = anchored.to_string();
    assert!(
        anchored.contains("\r\nm=audio 30000 RTP/AVP 8\r\n"),
        "count dropped"
    );
}

/// A cheap, deterministic stand-in for a fuzzer: every prefix of every fixture
/// and every one-byte corruption of one parses or fails, never panics, and
/// whatever parses prints to a form that parses to the same value.
#[test]
fn truncated_or_corrupted_bodies_never_panic() {
    let check = |text: &str| {
        let Ok(mut s) = Sdp::parse(text) else { return };
        assert_eq!(Sdp::parse(&s.to_string()).as_ref(), Ok(&s), "{text:?}");
        s.anchor(ip(GW), 2000, true);
        let _ = s.restrict_codecs(&G711_DTMF);
        let _ = (
            s.is_hold(),
            s.audio_endpoint(),
            s.direction(),
            s.to_string(),
        );
    };
    for text in ALL.map(crlf) {
        for end in 0..=text.len() {
            check(&text[..end]);
        }
        for i in 0..text.len() {
            for byte in [b' ', b'=', b'/', b':', b'\n', b'0', b'x'] {
                let mut bytes = text.clone().into_bytes();
                bytes[i] = byte;
                check(&String::from_utf8(bytes).unwrap());
            }
        }
    }
}
