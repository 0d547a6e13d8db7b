//! G.711: PCMA (A-law) and PCMU (μ-law), the codecs every phone and carrier in
//! the hotline's path speaks (RTP payload types 8 and 0, RFC 3551 §4.5.14).
//!
//! Why here: prompts are stored as linear PCM (WAV) and played out in whichever
//! law the call negotiated; recordings mix both legs in linear PCM.
//!
//! Written from the definition in ITU-T G.711 (Tables 1a/1b, 2a/2b): a sample is
//! a sign, a 3-bit segment (chord) and a 4-bit step within it. Linear samples here
//! are 16-bit; A-law uses their top 13 bits, μ-law their top 14.
//!
//! - A-law: the 12-bit magnitude is split into segments 0-7; segments 0 and 1 have
//!   a step of 2, segment `s >= 1` covers `[16 << s, 32 << s)` with a step of
//!   `1 << s`. Decoding gives the middle of the step. The sign bit is 1 for
//!   positive samples; even bits are then inverted (XOR 0x55).
//! - μ-law: the 13-bit magnitude plus a bias of 33 lies in `[32 << s, 64 << s)`
//!   for segment `s`, with a step of `2 << s`; decoding gives the middle of the
//!   step less the bias. The sign bit is 0 for positive samples; all bits are
//!   then inverted (so 0xFF is positive zero).
//!
//! Decoding goes through 256-entry tables built at compile time; encoding is a
//! few integer operations. No allocation.

/// The A-law byte of silence (positive zero).
pub const ALAW_SILENCE: u8 = 0xD5;
/// The μ-law byte of silence (positive zero).
pub const ULAW_SILENCE: u8 = 0xFF;

/// μ-law bias, in 14-bit units.
const ULAW_BIAS: i32 = 33;
/// Largest magnitude, in 14-bit units, inside segment 7 (8191 after the bias);
/// louder samples clip to it.
const ULAW_MAX: i32 = 8158;

/// A G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 Table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The byte that decodes to silence.
    pub fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => ULAW_SILENCE,
            Codec::Pcma => ALAW_SILENCE,
        }
    }

    pub fn encode_sample(self, pcm: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(pcm),
            Codec::Pcma => linear_to_alaw(pcm),
        }
    }

    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_to_linear(code),
            Codec::Pcma => alaw_to_linear(code),
        }
    }

    /// Encodes `min(pcm.len(), out.len())` samples; returns how many.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &s) in out.iter_mut().zip(pcm) {
            *o = self.encode_sample(s);
        }
        n
    }

    /// Decodes `min(codes.len(), out.len())` samples; returns how many.
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = self.decode_sample(c);
        }
        n
    }
}

/// Encodes one 16-bit sample to A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    // 13-bit sample; negative values use one's-complement magnitude, so that
    // the decision levels are symmetric around -1/2 as in G.711 Table 1a.
    let x = i32::from(pcm) >> 3;
    let (sign, mag) = if x >= 0 { (0x80, x) } else { (0x00, -x - 1) };
    let mag = mag.min(0xFFF) as u32;
    // Segment 0 is [0, 32), segment s >= 1 is [16 << s, 32 << s).
    let seg = (27 - mag.leading_zeros() as i32).max(0) as u32;
    let step_shift = seg.max(1);
    let mantissa = (mag >> step_shift) & 0x0F;
    (sign | (seg << 4) as u8 | mantissa as u8) ^ 0x55
}

/// Decodes one A-law byte to a 16-bit sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

/// Encodes one 16-bit sample to μ-law.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    // Sign and 13-bit magnitude (the top 14 bits of the sample, truncated
    // towards zero so that the quantiser is odd-symmetric).
    let sign = if pcm < 0 { 0x80 } else { 0x00 };
    let mag = i32::from(pcm).abs() >> 2;
    let biased = (mag.min(ULAW_MAX) + ULAW_BIAS) as u32;
    // Segment s is [32 << s, 64 << s) after the bias.
    let seg = 26 - biased.leading_zeros();
    let mantissa = (biased >> (seg + 1)) & 0x0F;
    !(sign | (seg << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte to a 16-bit sample.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

static ALAW_TABLE: [i16; 256] = alaw_table();
static ULAW_TABLE: [i16; 256] = ulaw_table();

const fn alaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let c = (i as u8) ^ 0x55;
        let seg = ((c >> 4) & 0x07) as i32;
        let mantissa = (c & 0x0F) as i32;
        // Middle of the step, 12-bit magnitude.
        let mag = if seg == 0 {
            (mantissa << 1) + 1
        } else {
            ((0x10 | mantissa) << seg) + (1 << (seg - 1))
        };
        let v = mag << 3;
        t[i] = if c & 0x80 != 0 { v as i16 } else { -v as i16 };
        i += 1;
    }
    t
}

const fn ulaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let c = !(i as u8);
        let seg = ((c >> 4) & 0x07) as i32;
        let mantissa = (c & 0x0F) as i32;
        // Middle of the step less the bias, 13-bit magnitude.
        let mag = (((mantissa << 1) + ULAW_BIAS) << seg) - ULAW_BIAS;
        let v = mag << 2;
        t[i] = if c & 0x80 == 0 { v as i16 } else { -v as i16 };
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // (pcm, A-law, A-law decoded, μ-law, μ-law decoded)
        let cases: &[(i16, u8, i16, u8, i16)] = &[
            (0, 0xD5, 8, 0xFF, 0),
            (-1, 0x55, -8, 0x7F, 0),
            (8, 0xD5, 8, 0xFE, 8),
            (-8, 0x55, -8, 0x7E, -8),
            (16, 0xD4, 24, 0xFD, 16),
            (1000, 0xFA, 1008, 0xCE, 988),
            (-1000, 0x7A, -1008, 0x4E, -988),
            (4096, 0x85, 4224, 0xAF, 4092),
            (i16::MAX, 0xAA, 32_256, 0x80, 32_124),
            (i16::MIN, 0x2A, -32_256, 0x00, -32_124),
        ];
        for &(pcm, a, a_dec, u, u_dec) in cases {
            assert_eq!(linear_to_alaw(pcm), a, "A-law of {pcm}");
            assert_eq!(alaw_to_linear(a), a_dec, "A-law {a:#04x}");
            assert_eq!(linear_to_ulaw(pcm), u, "μ-law of {pcm}");
            assert_eq!(ulaw_to_linear(u), u_dec, "μ-law {u:#04x}");
        }
    }

    #[test]
    fn silence_bytes_decode_to_near_zero() {
        assert_eq!(Codec::Pcma.silence(), 0xD5);
        assert_eq!(Codec::Pcmu.silence(), 0xFF);
        assert_eq!(alaw_to_linear(ALAW_SILENCE), 8); // A-law has no zero level
        assert_eq!(ulaw_to_linear(ULAW_SILENCE), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0); // μ-law's negative zero
        for codec in [Codec::Pcma, Codec::Pcmu] {
            assert_eq!(codec.encode_sample(0), codec.silence());
        }
    }

    /// Largest round-trip error allowed for `pcm`: half a quantisation step.
    fn alaw_bound(pcm: i16) -> i32 {
        // The step is 16 below 512, then doubles per segment: half a step is at
        // most 8, or 1/32 of the segment's lower end.
        let m = i32::from(pcm).abs();
        (m / 32).max(8) + 1
    }

    #[test]
    fn round_trip_error_is_within_half_a_step_over_the_whole_range() {
        for pcm in i16::MIN..=i16::MAX {
            let m = i32::from(pcm).abs();
            let a = i32::from(alaw_to_linear(linear_to_alaw(pcm)));
            assert!(
                (a - i32::from(pcm)).abs() <= alaw_bound(pcm),
                "A-law {pcm} -> {a}"
            );
            let code = linear_to_ulaw(pcm);
            if m < 4 * (ULAW_MAX + 1) {
                // Half a step: 1/32 of the biased segment start, at least 4.
                let u = i32::from(ulaw_to_linear(code));
                let bound = (m + 4 * ULAW_BIAS) / 32 + 1;
                assert!((u - i32::from(pcm)).abs() <= bound, "μ-law {pcm} -> {u}");
            } else {
                // Beyond segment 7: the loudest code of the sign.
                assert_eq!(code, if pcm < 0 { 0x00 } else { 0x80 }, "μ-law {pcm}");
            }
        }
    }

    #[test]
    fn quantisers_are_monotonic_and_odd() {
        let (mut prev_a, mut prev_u) = (i16::MIN, i16::MIN);
        for pcm in i16::MIN..=i16::MAX {
            let a = alaw_to_linear(linear_to_alaw(pcm));
            let u = ulaw_to_linear(linear_to_ulaw(pcm));
            assert!(a >= prev_a && u >= prev_u, "at {pcm}");
            (prev_a, prev_u) = (a, u);
        }
        for code in 0..=255u8 {
            assert_eq!(alaw_to_linear(code), -alaw_to_linear(code ^ 0x80));
            assert_eq!(ulaw_to_linear(code), -ulaw_to_linear(code ^ 0x80));
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A {code:#04x}");
            let want = if code == 0x7F { 0xFF } else { code }; // -0 becomes +0
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), want, "μ {code:#04x}");
        }
    }

    #[test]
    fn levels_are_distinct_per_sign() {
        // 128 distinct levels per sign for A-law; μ-law's two zeros coincide.
        let mut a: Vec<_> = (0..=255u8).map(alaw_to_linear).collect();
        let mut u: Vec<_> = (0..=255u8).map(ulaw_to_linear).collect();
        a.sort_unstable();
        a.dedup();
        u.sort_unstable();
        u.dedup();
        assert_eq!((a.len(), u.len()), (256, 255));
    }

    #[test]
    fn codec_slices_and_payload_types() {
        let pcm = [0i16, 1000, -1000, i16::MAX];
        let mut out = [0u8; 3];
        assert_eq!(Codec::Pcma.encode(&pcm, &mut out), 3);
        assert_eq!(out, [0xD5, 0xFA, 0x7A]);
        let mut back = [0i16; 8];
        assert_eq!(Codec::Pcma.decode(&out, &mut back), 3);
        assert_eq!(back[..3], [8, 1008, -1008]);
        assert_eq!(Codec::Pcmu.encode(&pcm, &mut out), 3);
        assert_eq!(out, [0xFF, 0xCE, 0x4E]);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(codec.payload_type()), Some(codec));
        }
        assert_eq!(Codec::from_payload_type(9), None);
    }
}
