//! The continuity rewriter: many incoming RTP streams, one outgoing stream.
//!
//! Why: a B2BUA relay changes the audio a phone hears (greeting prompt → agent →
//! survey prompt). Each source has its own SSRC, sequence numbers and timestamps;
//! a phone that saw them change would reset or drop audio. The rewriter keeps one
//! SSRC per direction and maps every source onto one continuous sequence and
//! timeline (RFC 3550 §5.1, §8.2 for what a receiver expects; RFC 7667 §3.2.1.2
//! for a media-switching middlebox).
//!
//! Rules:
//! - A *switch* is a packet whose [`SourceId`] or incoming SSRC differs from the
//!   previous source's. Its outgoing sequence number is the newest one sent + 1;
//!   its timestamp is the newest one sent plus the wall-clock gap since that packet
//!   in clock-rate units, at least [`MIN_SWITCH_GAP_MS`]; its marker bit is set
//!   (the start of a talkspurt: receivers resynchronise their playout). The
//!   very first packet counts as a switch and gets `first_seq` / `first_ts`.
//! - Within a source, sequence numbers and timestamps keep their differences:
//!   gaps (loss), reordering and the source's own marker bits pass through, with
//!   16-bit and 32-bit wraparound.
//! - A late packet of the current source that predates its first forwarded packet
//!   would take a sequence number the previous source already used:
//!   [`Verdict::DropBeforeSwitch`], and the packet is left untouched.
//!
//! Which source a phone hears is the caller's decision: it passes only the packets
//! it forwards, so a straggler from a source it switched away from is its to drop.
//! No allocation, no clock: `arrival_ms` is the caller's receive time.

use rtp_types::RtpPacketMut;

use super::MediaError;

/// The smallest timestamp advance on a switch: one 20 ms packet (160 at 8 kHz).
pub const MIN_SWITCH_GAP_MS: u64 = 20;

/// Names one audio source feeding a direction (a leg, a prompt player).
///
/// Why: two sources may happen to use the same SSRC; the caller's own id tells
/// them apart. The caller chooses the numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub u32);

/// What the caller does with a packet after [`Rewriter::rewrite`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet was rewritten in place: send it.
    Forward,
    /// A late packet from before the current source's first forwarded one: drop it
    /// (it was not modified).
    DropBeforeSwitch,
}

/// Rewrites SSRC, sequence number and timestamp of one outgoing direction.
///
/// Why: holds the outgoing stream's identity and position across source switches.
#[derive(Debug, Clone)]
pub struct Rewriter {
    /// The SSRC every outgoing packet carries.
    out_ssrc: u32,
    /// Sequence number and timestamp of the very first outgoing packet.
    first_seq: u16,
    first_ts: u32,
    /// The newest packet sent (highest sequence): where the next source continues.
    newest: Option<Newest>,
    /// The source currently mapped, if any packet was forwarded yet.
    segment: Option<Segment>,
}

/// Position of the newest outgoing packet.
#[derive(Debug, Clone, Copy)]
struct Newest {
    seq: u16,
    ts: u32,
    arrival_ms: u64,
}

/// The mapping of the current source onto the outgoing stream.
#[derive(Debug, Clone, Copy)]
struct Segment {
    source: SourceId,
    in_ssrc: u32,
    /// Extended (wrap-counted) incoming sequence number of the first packet.
    first_ext: i64,
    /// Highest extended incoming sequence number seen.
    max_ext: i64,
    /// Outgoing sequence number of the first packet.
    out_first_seq: u16,
    /// Outgoing timestamp = incoming timestamp + this (mod 2^32).
    ts_offset: u32,
}

impl Segment {
    /// Places a 16-bit sequence number within ±2^15 of the highest one seen.
    fn extend(&self, seq: u16) -> i64 {
        let delta = seq.wrapping_sub(self.max_ext as u16) as i16;
        self.max_ext + i64::from(delta)
    }
}

impl Rewriter {
    /// A rewriter whose first outgoing packet gets `out_ssrc`, `first_seq` and
    /// `first_ts` (RFC 3550 §5.1: the latter two should be random).
    pub fn new(out_ssrc: u32, first_seq: u16, first_ts: u32) -> Rewriter {
        Rewriter {
            out_ssrc,
            first_seq,
            first_ts,
            newest: None,
            segment: None,
        }
    }

    /// The SSRC of the outgoing stream.
    pub fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    /// Rewrites `pkt` (one RTP packet from `source`, received at `arrival_ms`, whose
    /// payload runs at `clock_rate` Hz) in place onto the outgoing stream.
    ///
    /// A malformed packet is an error and changes nothing.
    pub fn rewrite(
        &mut self,
        pkt: &mut [u8],
        source: SourceId,
        arrival_ms: u64,
        clock_rate: u32,
    ) -> Result<Verdict, MediaError> {
        if clock_rate == 0 {
            return Err(MediaError::ZeroClockRate);
        }
        let mut rtp = RtpPacketMut::parse(pkt).map_err(MediaError::from_rtp)?;
        let (in_seq, in_ts, in_ssrc) = (rtp.sequence_number(), rtp.timestamp(), rtp.ssrc());

        let segment = match self.segment {
            Some(s) if s.source == source && s.in_ssrc == in_ssrc => s,
            _ => {
                let (seq, ts) = self.switch_position(arrival_ms, clock_rate);
                self.segment = Some(Segment {
                    source,
                    in_ssrc,
                    first_ext: i64::from(in_seq),
                    max_ext: i64::from(in_seq),
                    out_first_seq: seq,
                    ts_offset: ts.wrapping_sub(in_ts),
                });
                self.newest = Some(Newest {
                    seq,
                    ts,
                    arrival_ms,
                });
                rtp.set_ssrc(self.out_ssrc);
                rtp.set_sequence_number(seq);
                rtp.set_timestamp(ts);
                rtp.set_marker_bit(true);
                return Ok(Verdict::Forward);
            }
        };

        let ext = segment.extend(in_seq);
        if ext < segment.first_ext {
            return Ok(Verdict::DropBeforeSwitch);
        }
        // Truncation is the 16-bit wraparound of the outgoing sequence.
        let seq = segment
            .out_first_seq
            .wrapping_add((ext - segment.first_ext) as u16);
        let ts = in_ts.wrapping_add(segment.ts_offset);
        if ext > segment.max_ext {
            self.segment = Some(Segment {
                max_ext: ext,
                ..segment
            });
            self.newest = Some(Newest {
                seq,
                ts,
                arrival_ms,
            });
        }
        rtp.set_ssrc(self.out_ssrc);
        rtp.set_sequence_number(seq);
        rtp.set_timestamp(ts);
        Ok(Verdict::Forward)
    }

    /// Sequence number and timestamp for the first packet of a new source.
    fn switch_position(&self, arrival_ms: u64, clock_rate: u32) -> (u16, u32) {
        let Some(newest) = self.newest else {
            return (self.first_seq, self.first_ts);
        };
        let gap_ms = arrival_ms
            .saturating_sub(newest.arrival_ms)
            .max(MIN_SWITCH_GAP_MS);
        let ticks = u128::from(gap_ms) * u128::from(clock_rate) / 1000;
        // Truncation is the 32-bit wraparound of RTP timestamps.
        (
            newest.seq.wrapping_add(1),
            newest.ts.wrapping_add(ticks as u32),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT_SSRC: u32 = 0xCAFE_F00D;
    const PROMPT: SourceId = SourceId(1);
    const AGENT: SourceId = SourceId(2);

    /// A 12-byte header plus 4 payload bytes; `marker` sets the M bit.
    fn packet(seq: u16, ts: u32, ssrc: u32, marker: bool) -> [u8; 16] {
        let mut p = [0u8; 16];
        p[0] = 0x80;
        p[1] = 8 | if marker { 0x80 } else { 0 };
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p[12..].copy_from_slice(&[1, 2, 3, 4]);
        p
    }

    /// (marker, seq, ts, ssrc) of a packet.
    fn header(p: &[u8]) -> (bool, u16, u32, u32) {
        let r = rtp_types::RtpPacket::parse(p).unwrap();
        (r.marker_bit(), r.sequence_number(), r.timestamp(), r.ssrc())
    }

    /// Feeds (source, in_seq, in_ts, in_ssrc, arrival_ms) at 8 kHz and returns the
    /// outgoing (marker, seq, ts) of each, or None when dropped.
    fn run(
        rw: &mut Rewriter,
        input: &[(SourceId, u16, u32, u32, u64)],
    ) -> Vec<Option<(bool, u16, u32)>> {
        input
            .iter()
            .map(|&(src, seq, ts, ssrc, at)| {
                let mut p = packet(seq, ts, ssrc, false);
                match rw.rewrite(&mut p, src, at, 8000).unwrap() {
                    Verdict::Forward => {
                        let (m, s, t, out_ssrc) = header(&p);
                        assert_eq!(out_ssrc, OUT_SSRC);
                        assert_eq!(&p[12..], &[1, 2, 3, 4], "payload untouched");
                        Some((m, s, t))
                    }
                    Verdict::DropBeforeSwitch => {
                        assert_eq!(p, packet(seq, ts, ssrc, false), "dropped untouched");
                        None
                    }
                }
            })
            .collect()
    }

    #[test]
    fn prompt_agent_prompt_is_one_continuous_stream() {
        let mut rw = Rewriter::new(OUT_SSRC, 1000, 50_000);
        let got = run(
            &mut rw,
            &[
                // Greeting prompt: 3 packets every 20 ms.
                (PROMPT, 7, 900, 0x1111, 0),
                (PROMPT, 8, 1060, 0x1111, 20),
                (PROMPT, 9, 1220, 0x1111, 40),
                // Agent answers 20 ms later: exactly one packet's worth.
                (AGENT, 40_000, 3_000_000, 0x2222, 60),
                (AGENT, 40_001, 3_000_160, 0x2222, 80),
                // Survey prompt (same player, same SSRC) after 100 ms of nothing.
                (PROMPT, 10, 1380, 0x1111, 180),
                (PROMPT, 11, 1540, 0x1111, 200),
            ],
        );
        let want = [
            (true, 1000, 50_000),
            (false, 1001, 50_160),
            (false, 1002, 50_320),
            (true, 1003, 50_480),
            (false, 1004, 50_640),
            (true, 1005, 50_640 + 800),
            (false, 1006, 50_640 + 960),
        ];
        assert_eq!(got, want.map(Some));
    }

    #[test]
    fn switch_advances_timestamp_by_wall_gap_with_a_minimum() {
        // (gap between last old packet and first new one in ms, clock, advance)
        let cases: &[(u64, u32, u32)] = &[
            (0, 8000, 160),
            (5, 8000, 160),
            (20, 8000, 160),
            (35, 8000, 280),
            (1000, 8000, 8000),
            (0, 16_000, 320),
            (40, 48_000, 1920),
        ];
        for &(gap, clock, advance) in cases {
            let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
            let mut a = packet(1, 1, 1, false);
            assert_eq!(
                rw.rewrite(&mut a, PROMPT, 1000, clock),
                Ok(Verdict::Forward)
            );
            let mut b = packet(9, 9, 2, false);
            assert_eq!(
                rw.rewrite(&mut b, AGENT, 1000 + gap, clock),
                Ok(Verdict::Forward)
            );
            assert_eq!(header(&b), (true, 1, advance, OUT_SSRC), "gap {gap} ms");
        }
    }

    #[test]
    fn new_incoming_ssrc_under_the_same_source_is_a_switch() {
        let mut rw = Rewriter::new(OUT_SSRC, 10, 0);
        let got = run(
            &mut rw,
            &[
                (AGENT, 500, 8000, 0xAAAA, 0),
                // The agent's phone restarted its stream (re-INVITE, new SSRC).
                (AGENT, 3, 12, 0xBBBB, 20),
                (AGENT, 4, 172, 0xBBBB, 40),
            ],
        );
        assert_eq!(
            got,
            [(true, 10, 0), (true, 11, 160), (false, 12, 320)].map(Some)
        );
    }

    #[test]
    fn sequence_and_timestamp_wrap_within_a_source() {
        let mut rw = Rewriter::new(OUT_SSRC, 65_534, u32::MAX - 160);
        let got = run(
            &mut rw,
            &[
                (AGENT, 65_535, u32::MAX - 100, 7, 0),
                (AGENT, 0, 59, 7, 20),
                (AGENT, 1, 219, 7, 40),
                (AGENT, 2, 379, 7, 60),
            ],
        );
        let want = [
            (true, 65_534, u32::MAX - 160),
            (false, 65_535, u32::MAX),
            (false, 0, 159),
            (false, 1, 319),
        ];
        assert_eq!(got, want.map(Some));
    }

    #[test]
    fn switch_wraps_sequence_and_timestamp() {
        let mut rw = Rewriter::new(OUT_SSRC, 65_535, u32::MAX - 100);
        let got = run(&mut rw, &[(PROMPT, 1, 1, 1, 0), (AGENT, 1, 1, 2, 20)]);
        assert_eq!(
            got,
            [(true, 65_535, u32::MAX - 100), (true, 0, 59)].map(Some)
        );
    }

    #[test]
    fn loss_and_reordering_keep_relative_sequence() {
        let mut rw = Rewriter::new(OUT_SSRC, 200, 0);
        let got = run(
            &mut rw,
            &[
                (AGENT, 10, 1600, 3, 0),
                (AGENT, 12, 1920, 3, 40), // 11 late
                (AGENT, 11, 1760, 3, 41),
                (AGENT, 15, 2400, 3, 100), // 13, 14 lost
                (AGENT, 14, 2240, 3, 101), // 14 late after all
                (AGENT, 16, 2560, 3, 120),
            ],
        );
        let want = [
            (true, 200, 0),
            (false, 202, 320),
            (false, 201, 160),
            (false, 205, 800),
            (false, 204, 640),
            (false, 206, 960),
        ];
        assert_eq!(got, want.map(Some));
    }

    #[test]
    fn late_packet_after_a_switch_continues_from_the_newest_not_the_latest() {
        // A reordered packet must not pull the switch point backwards.
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        let got = run(
            &mut rw,
            &[
                (PROMPT, 5, 800, 1, 0),
                (PROMPT, 7, 1120, 1, 40),
                (PROMPT, 6, 960, 1, 45), // late
                (AGENT, 90, 9, 2, 60),
            ],
        );
        let want = [
            (true, 0, 0),
            (false, 2, 320),
            (false, 1, 160),
            (true, 3, 480),
        ];
        assert_eq!(got, want.map(Some));
    }

    #[test]
    fn packet_older_than_the_switch_is_dropped_untouched() {
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        let got = run(
            &mut rw,
            &[
                (PROMPT, 1, 0, 1, 0),
                (AGENT, 101, 16_160, 2, 20),
                (AGENT, 100, 16_000, 2, 21), // predates the switch
                (AGENT, 102, 16_320, 2, 40),
            ],
        );
        assert_eq!(
            got,
            [
                Some((true, 0, 0)),
                Some((true, 1, 160)),
                None,
                Some((false, 2, 320))
            ]
        );
    }

    #[test]
    fn long_running_source_keeps_mapping_across_many_wraps() {
        let mut rw = Rewriter::new(OUT_SSRC, 7, 0);
        let (mut seq, mut ts) = (65_000u16, 0u32);
        for i in 0..200_000u32 {
            let mut p = packet(seq, ts, 9, false);
            assert_eq!(
                rw.rewrite(&mut p, AGENT, u64::from(i) * 20, 8000),
                Ok(Verdict::Forward)
            );
            let (_, out_seq, out_ts, _) = header(&p);
            assert_eq!(out_seq, 7u16.wrapping_add(i as u16));
            assert_eq!(out_ts, i.wrapping_mul(160));
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
        }
    }

    #[test]
    fn source_marker_bits_pass_through_within_a_source() {
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        let mut first = packet(1, 0, 5, false);
        assert_eq!(rw.rewrite(&mut first, AGENT, 0, 8000), Ok(Verdict::Forward));
        for marker in [false, true, false] {
            let mut p = packet(2, 160, 5, marker);
            assert_eq!(rw.rewrite(&mut p, AGENT, 20, 8000), Ok(Verdict::Forward));
            assert_eq!(header(&p).0, marker);
        }
    }

    #[test]
    fn keeps_csrc_extension_and_padding_intact() {
        // V=2, P=1, X=1, CC=1; CSRC; extension of 1 word; 2 payload bytes; 2 padding.
        let mut p = vec![0xB1, 0x00, 0, 5, 0, 0, 0, 9, 0, 0, 0, 3];
        p.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension
        p.extend_from_slice(&[0x55, 0x66, 0, 2]); // payload + padding
        let before = p.clone();
        let mut rw = Rewriter::new(OUT_SSRC, 42, 4242);
        assert_eq!(rw.rewrite(&mut p, AGENT, 0, 8000), Ok(Verdict::Forward));
        assert_eq!(header(&p), (true, 42, 4242, OUT_SSRC));
        assert_eq!(p[12..], before[12..]);
    }

    #[test]
    fn malformed_packets_are_errors_and_change_nothing() {
        let cases: &[(&[u8], MediaError)] = &[
            (&[], MediaError::RtpTruncated { needed: 12, len: 0 }),
            (
                &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                MediaError::RtpTruncated {
                    needed: 12,
                    len: 11,
                },
            ),
            // CC=2 but no CSRC list.
            (
                &[0x82, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                MediaError::RtpTruncated {
                    needed: 20,
                    len: 12,
                },
            ),
            (&[0x00; 12], MediaError::RtpVersion(0)),
        ];
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        for (bytes, want) in cases {
            let mut p = bytes.to_vec();
            assert_eq!(
                rw.rewrite(&mut p, AGENT, 0, 8000),
                Err(want.clone()),
                "{bytes:02x?}"
            );
            assert_eq!(&p[..], *bytes);
        }
        // Nothing was forwarded: the next good packet is still the first.
        let mut p = packet(3, 3, 3, false);
        assert_eq!(rw.rewrite(&mut p, AGENT, 0, 8000), Ok(Verdict::Forward));
        assert_eq!(header(&p), (true, 0, 0, OUT_SSRC));
    }

    #[test]
    fn zero_clock_rate_is_a_local_error() {
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        let mut p = packet(1, 1, 1, false);
        assert_eq!(
            rw.rewrite(&mut p, AGENT, 0, 0),
            Err(MediaError::ZeroClockRate)
        );
    }

    #[test]
    fn ssrc_is_constant_whatever_the_source() {
        let mut rw = Rewriter::new(OUT_SSRC, 0, 0);
        for (i, ssrc) in [1u32, 2, 3, 0, u32::MAX, OUT_SSRC].into_iter().enumerate() {
            let mut p = packet(i as u16, 0, ssrc, false);
            assert_eq!(
                rw.rewrite(&mut p, SourceId(ssrc), i as u64 * 20, 8000),
                Ok(Verdict::Forward)
            );
            assert_eq!(header(&p).3, OUT_SSRC);
        }
        assert_eq!(rw.out_ssrc(), OUT_SSRC);
    }
}
