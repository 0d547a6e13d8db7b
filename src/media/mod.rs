//! Media: the RTP side of the gateway (DESIGN.md §2, issue 7).
//!
//! Owns: the RTP/RTCP relay between the legs of a call (latching, the port pool),
//! playout of prompts and music on hold, RFC 4733 DTMF, and recording. This file
//! and the modules below are its pure foundation; the socket-owning relay task is
//! built on top of them:
//!
//! - [`rewrite`]: the continuity rewriter. When the audio towards a phone switches
//!   source (greeting prompt → agent → survey prompt), the phone must still see one
//!   RTP stream: one SSRC, one continuous sequence, one timeline.
//! - [`dtmf`]: RFC 4733 telephone-event payloads, a receiver that yields each digit
//!   exactly once, and a sender for one digit.
//! - [`g711`]: PCMA (A-law) and PCMU (μ-law) per ITU-T G.711.
//!
//! Everything here is pure: no sockets, no clock (every function that depends on
//! time takes `now_ms` / `arrival_ms`, milliseconds on the caller's clock) and no
//! allocation per packet: packets are edited in place.
//!
//! RTP headers are read and edited through `rtp-types` (DESIGN.md §3); only this
//! module imports it, and its errors become [`MediaError`] here.
//!
//! Must not: parse or build SIP or SDP (the call layer hands over what SDP agreed:
//! payload types, clock rates, addresses), read the clock, or decide which source
//! a phone hears (the call layer does; media only makes the switch seamless).

pub mod command;
pub mod dtmf;
pub mod g711;
pub mod mix;
pub mod pool;
pub mod prompt;
pub mod record;
pub mod relay;
pub mod rewrite;

pub use dtmf::{Completed, DtmfDigit, DtmfPacket, DtmfReceiver, DtmfSender, TelephoneEvent};
pub use g711::Codec;
pub use prompt::{Prompt, Prompts};
pub use rewrite::{Rewriter, SourceId, Verdict};

/// What went wrong in the media layer.
///
/// Why: one error per layer (CONVENTIONS.md 5), tagged with the failing side:
/// `peer:` errors describe a packet that came off the network (count it, drop it,
/// never crash); `local:` errors mean this gateway asked for something impossible
/// (a bug or a bad configuration value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The packet is shorter than its own RTP header says (RFC 3550 §5.1).
    #[error("peer: RTP packet of {len} bytes, its header needs {needed}")]
    RtpTruncated { needed: usize, len: usize },
    /// Not RTP version 2.
    #[error("peer: RTP version {0}, only 2 is supported")]
    RtpVersion(u8),
    /// The padding count (last byte) is zero, which RFC 3550 §5.1 forbids.
    #[error("peer: RTP padding count {0} is invalid")]
    RtpPadding(u8),
    /// A telephone-event payload that is not the 4 bytes of RFC 4733 §2.3.
    #[error("peer: telephone-event payload of {0} bytes, RFC 4733 §2.3 needs 4")]
    DtmfPayloadLength(usize),
    /// A clock rate of 0 Hz was given for a stream.
    #[error("local: RTP clock rate 0")]
    ZeroClockRate,
    /// The character is not one of the 16 DTMF digits.
    #[error("local: {0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    NotADigit(char),
    /// A DTMF duration outside what one RFC 4733 event at 8 kHz can carry.
    #[error("local: DTMF duration of {0} ms, must be 1..=8191 ms")]
    DtmfDuration(u32),
    /// The relay's command queue is full (the relay thread is stalled).
    #[error("local: the media relay is not keeping up with commands")]
    RelayBusy,
    /// The relay thread has stopped.
    #[error("local: the media relay has stopped")]
    RelayGone,
}

impl MediaError {
    /// True when the input came off the network, false when the gateway misused
    /// this layer.
    pub fn is_peer(&self) -> bool {
        match self {
            MediaError::RtpTruncated { .. }
            | MediaError::RtpVersion(_)
            | MediaError::RtpPadding(_)
            | MediaError::DtmfPayloadLength(_) => true,
            MediaError::ZeroClockRate
            | MediaError::NotADigit(_)
            | MediaError::DtmfDuration(_)
            | MediaError::RelayBusy
            | MediaError::RelayGone => false,
        }
    }

    /// Keeps `rtp-types` out of this layer's public API.
    fn from_rtp(e: rtp_types::RtpParseError) -> MediaError {
        use rtp_types::RtpParseError as E;
        match e {
            E::Truncated { expected, actual } => MediaError::RtpTruncated {
                needed: expected,
                len: actual,
            },
            E::UnsupportedVersion(v) => MediaError::RtpVersion(v),
            E::PaddingInvalid(p) => MediaError::RtpPadding(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_parse_errors_become_peer_errors() {
        let cases: &[(&[u8], MediaError)] = &[
            (
                &[0x80, 0, 0, 1],
                MediaError::RtpTruncated { needed: 12, len: 4 },
            ),
            (&[0x40; 12], MediaError::RtpVersion(1)),
            // Padding bit set, padding count 0.
            (
                &[0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                MediaError::RtpPadding(0),
            ),
        ];
        for (bytes, want) in cases {
            let got = rtp_types::RtpPacket::parse(bytes)
                .map(|_| ())
                .map_err(MediaError::from_rtp);
            assert_eq!(got, Err(want.clone()), "{bytes:02x?}");
            assert!(want.is_peer());
        }
    }

    #[test]
    fn local_errors_are_not_peer_errors() {
        for e in [
            MediaError::ZeroClockRate,
            MediaError::NotADigit('x'),
            MediaError::DtmfDuration(0),
        ] {
            assert!(!e.is_peer(), "{e}");
            assert!(e.to_string().starts_with("local: "));
        }
    }
}
