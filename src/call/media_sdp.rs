//! Small translations between the call layer and the relay: which relay leg a
//! side is, codec names, where an SDP wants its audio, SIP INFO digits, and the
//! line prompts a dialplan names that the gateway lacks.

use super::Side;
use crate::media::command::{Leg, Remote};
use crate::media::{Codec, Prompts};
use crate::sip::sdp::Sdp;
use crate::sip::sdp_audio::G711;

pub(super) fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

pub(super) fn leg_of(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

pub(super) fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Pcma => "PCMA/8000",
        Codec::Pcmu => "PCMU/8000",
    }
}

/// Where a phone wants its audio, from its SDP: `None` when held (`c=0.0.0.0`,
/// port 0) or without a relayed codec (then `fallback` is used if given).
pub(super) fn remote_of(sdp: &Sdp, fallback: Option<Codec>) -> Option<Remote> {
    let t = sdp.audio_target()?;
    Some(Remote {
        rtp: t.rtp,
        rtcp: t.rtcp,
        codec: t.g711.map(codec_of).or(fallback)?,
        dtmf_pt: t.dtmf_pt,
    })
}

/// The relay's codec for a G.711 law.
fn codec_of(law: G711) -> Codec {
    match law {
        G711::ALaw => Codec::Pcma,
        G711::MuLaw => Codec::Pcmu,
    }
}

/// Every line prompt of `plan` that `prompts` lacks, as an error message naming
/// the line (and the prompts there are).
pub fn missing_line_prompts(plan: &crate::dialplan::Dialplan, prompts: &Prompts) -> Vec<String> {
    plan.lines()
        .filter_map(|l| {
            let p = l.prompt.as_ref().filter(|p| prompts.get(p).is_none())?;
            Some(format!(
                "{}: line {}: prompt: no prompt named {p:?} (known: {})",
                l.defined_at,
                l.number,
                prompts.names().collect::<Vec<_>>().join(", ")
            ))
        })
        .collect()
}

/// The digit of a SIP INFO (`application/dtmf-relay`: `Signal=5`, or
/// `application/dtmf`: `5`).
pub(super) fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let ct = content_type?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match ct.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let c = value.chars().next()?;
    (value.len() == 1 && (c.is_ascii_digit() || "*#ABCDabcd".contains(c))).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_digits() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_digit(relay, b"Signal=2\r\nDuration=160\r\n"),
            Some('2')
        );
        assert_eq!(info_digit(relay, b"signal = #\r\n"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"3"), Some('3'));
        assert_eq!(info_digit(relay, b"Duration=160\r\n"), None);
        assert_eq!(info_digit(relay, b"Signal=12\r\n"), None);
        assert_eq!(info_digit(Some("text/plain"), b"1"), None);
        assert_eq!(info_digit(None, b"1"), None);
    }

    #[test]
    fn remotes_from_sdp() {
        let sdp = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=rtcp:4009\r\n",
        )
        .unwrap();
        let r = remote_of(&sdp, None).unwrap();
        assert_eq!(r.rtp, "10.0.0.1:4000".parse().unwrap());
        assert_eq!(r.rtcp, "10.0.0.1:4009".parse().unwrap());
        assert_eq!(r.codec, Codec::Pcmu, "the first offered codec");
        assert_eq!(r.dtmf_pt, Some(101));
        let held = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 8\r\n",
        )
        .unwrap();
        assert_eq!(remote_of(&held, None), None, "c=0.0.0.0 is hold");
        let g729 = Sdp::parse(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 18\r\n",
        )
        .unwrap();
        assert_eq!(remote_of(&g729, None), None);
        assert_eq!(
            remote_of(&g729, Some(Codec::Pcma)).map(|r| r.codec),
            Some(Codec::Pcma)
        );
    }
}
