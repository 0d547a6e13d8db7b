//! The softphone's SDP: its PCMA/PCMU offer or answer, and where the far end
//! wants audio.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;

use super::{UaCall, UaEvent};
use crate::sip::sdp_audio::G711;

/// Tells the driver where a call's audio goes, when a new SDP names a new place.
pub(super) fn announce_media(
    events: &mut VecDeque<UaEvent>,
    key: u64,
    c: &mut UaCall,
    remote: Option<crate::media::command::Remote>,
) {
    let (Some(local_port), Some(remote)) = (c.rtp_port, remote) else {
        return;
    };
    if remote.rtp.ip().is_unspecified() || remote.rtp.port() == 0 {
        return; // a hold (RFC 3264 §8.4): keep sending where we did
    }
    if c.media == Some(remote) {
        return;
    }
    c.media = Some(remote);
    events.push_back(UaEvent::Media {
        call: key,
        local_port,
        remote,
    });
}

/// Where the far end wants our audio, from an SDP body.
pub(super) fn remote_audio(
    content_type: Option<&str>,
    body: &[u8],
) -> Option<crate::media::command::Remote> {
    let is_sdp = content_type.is_some_and(|c| c.trim().eq_ignore_ascii_case("application/sdp"));
    if !is_sdp {
        return None;
    }
    let sdp = crate::sip::sdp::Sdp::parse(std::str::from_utf8(body).ok()?).ok()?;
    let t = sdp.audio_target()?;
    let codec = match t.g711? {
        G711::ALaw => crate::media::Codec::Pcma,
        G711::MuLaw => crate::media::Codec::Pcmu,
    };
    Some(crate::media::command::Remote {
        rtp: t.rtp,
        rtcp: t.rtcp,
        codec,
        dtmf_pt: t.dtmf_pt,
    })
}

/// A PCMA/PCMU offer or answer for our address: on `rtp_port` with real audio,
/// else on a placeholder port nothing listens on.
pub(super) fn sdp(local: SocketAddr, session: u64, rtp_port: Option<u16>) -> Bytes {
    let ip = local.ip();
    let port = rtp_port.unwrap_or(10_000 + (session % 20_000) as u16 / 2 * 2);
    Bytes::from(format!(
        "v=0\r\no=softphone {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    ))
}
