//! Where an SDP body wants its audio: the address, the RTCP address, the first
//! G.711 law offered and the telephone-event payload type. The gateway's call
//! layer and the softphone both read SDP this way; each turns it into its own
//! media settings.

use std::net::SocketAddr;

use super::sdp::Sdp;

/// A G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// PCMA.
    ALaw,
    /// PCMU.
    MuLaw,
}

/// Where a phone wants its audio, as its SDP says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTarget {
    pub rtp: SocketAddr,
    /// `a=rtcp` when given, else the RTP port + 1.
    pub rtcp: SocketAddr,
    /// The first PCMA or PCMU payload of the audio stream, if any.
    pub g711: Option<G711>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub dtmf_pt: Option<u8>,
}

impl Sdp {
    /// The audio stream's target: `None` when held (`c=0.0.0.0`, port 0) or
    /// without an audio stream.
    pub fn audio_target(&self) -> Option<AudioTarget> {
        let (ip, port) = self.audio_endpoint()?;
        let m = self.audio()?;
        let mut g711 = None;
        let mut dtmf_pt = None;
        for pt in m.payload_types() {
            let enc = m.encoding(pt).unwrap_or("").to_ascii_lowercase();
            if g711.is_none() {
                g711 = match (pt, enc.as_str()) {
                    (_, e) if e.starts_with("pcma/8000") => Some(G711::ALaw),
                    (_, e) if e.starts_with("pcmu/8000") => Some(G711::MuLaw),
                    (0, "") => Some(G711::MuLaw),
                    (8, "") => Some(G711::ALaw),
                    _ => None,
                };
            }
            if dtmf_pt.is_none() && enc.starts_with("telephone-event/8000") {
                dtmf_pt = Some(pt);
            }
        }
        let rtcp = match m.rtcp() {
            Some(r) => SocketAddr::new(
                r.address.as_ref().and_then(|a| a.ip()).unwrap_or(ip),
                r.port,
            ),
            None => SocketAddr::new(ip, port.wrapping_add(1)),
        };
        Some(AudioTarget {
            rtp: SocketAddr::new(ip, port),
            rtcp,
            g711,
            dtmf_pt,
        })
    }
}
