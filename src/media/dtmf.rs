//! RFC 4733 telephone-events: DTMF digits carried in RTP.
//!
//! Why: callers and agents press keys (survey rating, transfer codes); with RFC
//! 4733 the digits travel as events, not tones, and must be read exactly once.
//!
//! An event is one key press. Its packets all carry the RTP timestamp of the
//! event's start; each reports the duration so far (§2.5.1.2); the last one has
//! the E bit and is sent three times (§2.5.1.4). Any of them may be lost,
//! duplicated or reordered. [`DtmfReceiver`] turns that stream into one
//! [`DtmfDigit`] per event; [`DtmfSender`] produces the payloads of one digit.
//!
//! Payload (§2.3):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Pure: the caller passes the RTP timestamp, the payload and `now_ms`.

use super::MediaError;

/// The digits of events 0-15 (RFC 4733 §3.2, Table 3).
const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The RTP clock rate of telephone-event as the sender uses it.
pub const SENDER_CLOCK_RATE: u32 = 8000;
/// The sender's packet interval: 20 ms at 8 kHz.
pub const SENDER_STEP_TICKS: u16 = 160;
/// How many times the sender repeats the end packet (§2.5.1.4).
pub const END_REPEATS: u8 = 3;
/// The sender's default volume: -10 dBm0.
pub const DEFAULT_VOLUME: u8 = 10;
/// A receiver's default: an event without packets for this long has ended.
pub const DEFAULT_END_TIMEOUT_MS: u64 = 250;

/// The event code of a DTMF digit (case-insensitive for A-D).
pub fn event_for_digit(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&c| c == d).map(|i| i as u8)
}

/// The digit of an event code, for events 0-15.
pub fn digit_for_event(event: u8) -> Option<char> {
    DIGITS.get(usize::from(event)).copied()
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code: 0-15 are DTMF digits, others are tones and signals.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP clock ticks since the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a 4-byte payload. The reserved bit is ignored, as §2.3 asks.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, MediaError> {
        let &[event, flags, d0, d1] = payload else {
            return Err(MediaError::DtmfPayloadLength(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The payload bytes (volume above 63 is cut to 6 bits; R is sent as 0).
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let end = if self.end { 0x80 } else { 0 };
        [self.event, end | (self.volume & 0x3F), d0, d1]
    }

    /// The digit, when the event is a DTMF digit.
    pub fn digit(self) -> Option<char> {
        digit_for_event(self.event)
    }
}

/// A key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    pub digit: char,
    /// The event's RTP timestamp (its start).
    pub rtp_ts: u32,
    /// The longest duration reported, in RTP clock ticks.
    pub duration: u16,
    /// False when no end packet arrived: the end was inferred from a new event or
    /// from the timeout.
    pub end_seen: bool,
}

/// The digits one packet completed: at most two (an unfinished event ended by
/// the start of a new one that is itself an end packet).
#[must_use]
#[derive(Debug, Clone, Default)]
pub struct Completed {
    digits: [Option<DtmfDigit>; 2],
    next: usize,
}

impl Completed {
    fn push(&mut self, digit: Option<DtmfDigit>) {
        if let Some(slot) = self.digits.iter_mut().find(|d| d.is_none()) {
            *slot = digit;
        }
    }
}

impl Iterator for Completed {
    type Item = DtmfDigit;

    fn next(&mut self) -> Option<DtmfDigit> {
        while self.next < self.digits.len() {
            self.next += 1;
            if let Some(d) = self.digits[self.next - 1] {
                return Some(d);
            }
        }
        None
    }
}

/// The event being received or just finished.
#[derive(Debug, Clone, Copy)]
struct Current {
    ts: u32,
    event: u8,
    duration: u16,
    last_packet_ms: u64,
    /// Reported already: further packets of this event are redundant.
    done: bool,
    end_seen: bool,
}

impl Current {
    /// Marks the event done; the digit, when it is one.
    fn finish(&mut self) -> Option<DtmfDigit> {
        self.done = true;
        digit_for_event(self.event).map(|digit| DtmfDigit {
            digit,
            rtp_ts: self.ts,
            duration: self.duration,
            end_seen: self.end_seen,
        })
    }
}

/// Turns telephone-event packets of one RTP stream into digits, each once.
///
/// Why: an event spans many packets, its end is sent three times, and any
/// packet may be lost; a digit must be neither lost nor repeated.
///
/// Events that are not digits (flash, tones) are tracked the same way but not
/// reported. Drive it with [`on_packet`](Self::on_packet) for every packet and
/// [`poll`](Self::poll) at [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    /// An unfinished event with no packet for this long has ended.
    end_timeout_ms: u64,
    current: Option<Current>,
}

impl Default for DtmfReceiver {
    fn default() -> Self {
        DtmfReceiver::new(DEFAULT_END_TIMEOUT_MS)
    }
}

impl DtmfReceiver {
    pub fn new(end_timeout_ms: u64) -> DtmfReceiver {
        DtmfReceiver {
            end_timeout_ms,
            current: None,
        }
    }

    /// Takes one packet: its RTP timestamp, its payload and the receive time.
    pub fn on_packet(
        &mut self,
        rtp_ts: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Completed, MediaError> {
        let ev = TelephoneEvent::parse(payload)?;
        let mut out = Completed::default();
        if let Some(cur) = self.current.as_mut() {
            if cur.ts == rtp_ts {
                // Same event: an update, a duplicate or a redundant end.
                if !cur.done {
                    cur.duration = cur.duration.max(ev.duration);
                    cur.last_packet_ms = now_ms;
                    if ev.end {
                        cur.end_seen = true;
                        out.push(cur.finish());
                    }
                }
                return Ok(out);
            }
            let older = (rtp_ts.wrapping_sub(cur.ts) as i32) < 0;
            let recent = now_ms.saturating_sub(cur.last_packet_ms) < self.end_timeout_ms;
            if older && recent {
                // A straggler of an earlier event (a late redundant end).
                return Ok(out);
            }
            if !cur.done {
                out.push(cur.finish());
            }
        }
        let mut new = Current {
            ts: rtp_ts,
            event: ev.event,
            duration: ev.duration,
            last_packet_ms: now_ms,
            done: false,
            end_seen: ev.end,
        };
        if ev.end {
            out.push(new.finish());
        }
        self.current = Some(new);
        Ok(out)
    }

    /// Ends an event whose packets stopped without an end packet, once
    /// `end_timeout_ms` has passed since its last packet.
    pub fn poll(&mut self, now_ms: u64) -> Option<DtmfDigit> {
        let deadline = self.poll_timeout()?;
        if now_ms < deadline {
            return None;
        }
        self.current.as_mut()?.finish()
    }

    /// When [`poll`](Self::poll) next has something to do, if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.current {
            Some(c) if !c.done => Some(c.last_packet_ms.saturating_add(self.end_timeout_ms)),
            _ => None,
        }
    }
}

/// The payload of one outgoing telephone-event packet, and whether its RTP
/// header gets the marker bit (the first packet of the event, §2.5.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    pub payload: [u8; 4],
    pub marker: bool,
}

/// Produces the packets of one digit at 8 kHz, one per 20 ms, ending with
/// three end packets (§2.5.1.4).
///
/// Why: the softphone and IVR transfers send digits; the caller owns the RTP
/// header: every packet gets the same timestamp (the event's start), its own
/// sequence number, and goes out 20 ms after the previous one.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    /// The whole duration, in ticks: the end packets carry it.
    total: u16,
    /// Duration in the last packet produced (0 before the first).
    sent: u16,
    ends_sent: u8,
}

impl DtmfSender {
    /// The packets of `digit` (0-9, *, #, A-D) held for `duration_ms`
    /// (1..=8191 ms: one event's 16-bit duration at 8 kHz), at -10 dBm0.
    pub fn new(digit: char, duration_ms: u32) -> Result<DtmfSender, MediaError> {
        let event = event_for_digit(digit).ok_or(MediaError::NotADigit(digit))?;
        let ticks = u64::from(duration_ms) * u64::from(SENDER_CLOCK_RATE) / 1000;
        let total = u16::try_from(ticks)
            .ok()
            .filter(|&t| t > 0)
            .ok_or(MediaError::DtmfDuration(duration_ms))?;
        Ok(DtmfSender {
            event,
            volume: DEFAULT_VOLUME,
            total,
            sent: 0,
            ends_sent: 0,
        })
    }

    /// The same digit at another volume (-dBm0, 0-63; higher values are cut).
    pub fn with_volume(self, volume: u8) -> DtmfSender {
        DtmfSender {
            volume: volume.min(63),
            ..self
        }
    }
}

impl Iterator for DtmfSender {
    type Item = DtmfPacket;

    fn next(&mut self) -> Option<DtmfPacket> {
        if self.ends_sent == END_REPEATS {
            return None;
        }
        let marker = self.sent == 0 && self.ends_sent == 0;
        let step = self.sent.saturating_add(SENDER_STEP_TICKS);
        let (end, duration) = if step < self.total {
            self.sent = step;
            (false, step)
        } else {
            self.ends_sent += 1;
            (true, self.total)
        };
        let ev = TelephoneEvent {
            event: self.event,
            end,
            volume: self.volume,
            duration,
        };
        Some(DtmfPacket {
            payload: ev.to_bytes(),
            marker,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let updates = if self.ends_sent > 0 {
            0
        } else {
            (self.total - 1) / SENDER_STEP_TICKS - self.sent / SENDER_STEP_TICKS
        };
        let n = usize::from(updates) + usize::from(END_REPEATS - self.ends_sent);
        (n, Some(n))
    }
}

impl ExactSizeIterator for DtmfSender {}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// Feeds (rtp_ts, event, end, duration, now_ms) and returns the digits.
    fn receive(rx: &mut DtmfReceiver, packets: &[(u32, u8, bool, u16, u64)]) -> String {
        let mut s = String::new();
        for &(ts, ev, end, dur, now) in packets {
            s.extend(rx.poll(now).map(|d| d.digit));
            let done = rx.on_packet(ts, &payload(ev, end, dur), now).unwrap();
            s.extend(done.map(|d| d.digit));
        }
        s
    }

    #[test]
    fn parses_payload_fields() {
        let cases: &[([u8; 4], TelephoneEvent)] = &[
            (
                [0x05, 0x0A, 0x01, 0x40],
                TelephoneEvent {
                    event: 5,
                    end: false,
                    volume: 10,
                    duration: 320,
                },
            ),
            (
                [0x0B, 0x8A, 0x03, 0x20],
                TelephoneEvent {
                    event: 11,
                    end: true,
                    volume: 10,
                    duration: 800,
                },
            ),
            // Reserved bit set: ignored.
            (
                [0x10, 0x7F, 0xFF, 0xFF],
                TelephoneEvent {
                    event: 16,
                    end: false,
                    volume: 63,
                    duration: 65_535,
                },
            ),
        ];
        for (bytes, want) in cases {
            let got = TelephoneEvent::parse(bytes).unwrap();
            assert_eq!(got, *want, "{bytes:02x?}");
            let mut clean = *bytes;
            clean[1] &= !0x40;
            assert_eq!(got.to_bytes(), clean);
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for len in [0, 1, 3, 5, 8] {
            let bytes = vec![0u8; len];
            assert_eq!(
                TelephoneEvent::parse(&bytes),
                Err(MediaError::DtmfPayloadLength(len))
            );
            let mut rx = DtmfReceiver::default();
            assert!(rx.on_packet(0, &bytes, 0).is_err());
            assert_eq!(rx.poll_timeout(), None, "state unchanged");
        }
    }

    #[test]
    fn digits_map_to_events() {
        for (event, digit) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(event_for_digit(digit), Some(event as u8));
            assert_eq!(digit_for_event(event as u8), Some(digit));
        }
        assert_eq!(event_for_digit('a'), Some(12));
        assert_eq!(event_for_digit('E'), None);
        assert_eq!(digit_for_event(16), None);
    }

    #[test]
    fn receiver_table() {
        // (name, packets, digits)
        type Packet = (u32, u8, bool, u16, u64);
        let cases: &[(&str, &[Packet], &str)] = &[
            (
                "an event spanning packets, with its three ends",
                &[
                    (1000, 5, false, 160, 0),
                    (1000, 5, false, 320, 20),
                    (1000, 5, false, 480, 40),
                    (1000, 5, true, 640, 60),
                    (1000, 5, true, 640, 60),
                    (1000, 5, true, 640, 80),
                ],
                "5",
            ),
            (
                "only end packets arrive",
                &[(1000, 9, true, 800, 0), (1000, 9, true, 800, 20)],
                "9",
            ),
            (
                "lost end, next event yields it",
                &[
                    (1000, 1, false, 160, 0),
                    (1000, 1, false, 320, 20),
                    (2000, 2, false, 160, 200),
                    (2000, 2, true, 480, 240),
                ],
                "12",
            ),
            (
                "lost end and the next event is only its end",
                &[(1000, 1, false, 160, 0), (2000, 2, true, 480, 100)],
                "12",
            ),
            (
                "same digit twice, new timestamp",
                &[
                    (1000, 7, false, 160, 0),
                    (1000, 7, true, 800, 100),
                    (1000, 7, true, 800, 100),
                    (2600, 7, false, 160, 200),
                    (2600, 7, true, 800, 300),
                    (2600, 7, true, 800, 300),
                ],
                "77",
            ),
            (
                "late redundant end of the previous event",
                &[
                    (1000, 3, true, 800, 0),
                    (2600, 4, false, 160, 20),
                    (1000, 3, true, 800, 25),
                    (2600, 4, true, 640, 80),
                ],
                "34",
            ),
            (
                "duplicated and reordered updates",
                &[
                    (1000, 11, false, 320, 0),
                    (1000, 11, false, 160, 1),
                    (1000, 11, false, 320, 2),
                    (1000, 11, true, 480, 20),
                ],
                "#",
            ),
            (
                "timestamps wrap",
                &[
                    (u32::MAX - 10, 10, true, 800, 0),
                    (790, 0, true, 800, 100),
                    (u32::MAX - 10, 10, true, 800, 110),
                ],
                "*0",
            ),
            (
                "non-digit events are tracked, not reported",
                &[
                    (1000, 16, false, 160, 0),
                    (1000, 16, true, 800, 100),
                    (2000, 2, true, 800, 200),
                ],
                "2",
            ),
            (
                "lost end, the timeout yields it",
                &[
                    (1000, 8, false, 160, 0),
                    (1000, 8, false, 320, 20),
                    (1000, 8, true, 320, 500), // too late: already reported
                ],
                "8",
            ),
        ];
        for (name, packets, want) in cases {
            let mut rx = DtmfReceiver::new(250);
            assert_eq!(receive(&mut rx, packets), *want, "{name}");
        }
    }

    #[test]
    fn timeout_yields_digit_once_at_the_deadline() {
        let mut rx = DtmfReceiver::new(250);
        assert_eq!(rx.poll_timeout(), None);
        let none = rx.on_packet(1000, &payload(6, false, 160), 0).unwrap();
        assert_eq!(none.count(), 0);
        let none = rx.on_packet(1000, &payload(6, false, 320), 20).unwrap();
        assert_eq!(none.count(), 0);
        assert_eq!(rx.poll_timeout(), Some(270));
        assert_eq!(rx.poll(269), None);
        let d = rx.poll(270).unwrap();
        assert_eq!(
            d,
            DtmfDigit {
                digit: '6',
                rtp_ts: 1000,
                duration: 320,
                end_seen: false
            }
        );
        assert_eq!(rx.poll(10_000), None);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn end_packet_reports_duration_and_end_seen() {
        let mut rx = DtmfReceiver::default();
        let _ = rx.on_packet(4242, &payload(12, false, 160), 0).unwrap();
        let got: Vec<_> = rx
            .on_packet(4242, &payload(12, true, 960), 120)
            .unwrap()
            .collect();
        assert_eq!(
            got,
            [DtmfDigit {
                digit: 'A',
                rtp_ts: 4242,
                duration: 960,
                end_seen: true
            }]
        );
    }

    #[test]
    fn same_timestamp_after_the_timeout_is_still_the_same_event() {
        // A long pause inside one event (the sender stalled): its late end is
        // redundant once the timeout reported the digit.
        let mut rx = DtmfReceiver::new(100);
        let s = receive(
            &mut rx,
            &[(50, 4, false, 160, 0), (50, 4, true, 9600, 1200)],
        );
        assert_eq!(s, "4");
    }

    #[test]
    fn older_timestamp_long_after_is_a_new_event() {
        // The far end restarted its stream: a lower timestamp, seconds later.
        let mut rx = DtmfReceiver::new(250);
        let s = receive(
            &mut rx,
            &[(90_000, 1, true, 800, 0), (500, 2, true, 800, 5_000)],
        );
        assert_eq!(s, "12");
    }

    #[test]
    fn sender_packets() {
        // (duration_ms, durations in the updates, total)
        let cases: &[(u32, &[u16], u16)] = &[
            (100, &[160, 320, 480, 640], 800),
            (90, &[160, 320, 480, 640], 720),
            (20, &[], 160),
            (5, &[], 40),
            (8191, &[], 65_528),
        ];
        for &(ms, updates, total) in cases {
            let sender = DtmfSender::new('#', ms).unwrap();
            let n = sender.len();
            let packets: Vec<_> = sender.collect();
            assert_eq!(packets.len(), n, "{ms} ms: size_hint");
            let evs: Vec<_> = packets
                .iter()
                .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
                .collect();
            assert!(packets[0].marker, "{ms} ms: marker on first");
            assert!(packets[1..].iter().all(|p| !p.marker), "{ms} ms");
            assert!(evs.iter().all(|e| e.event == 11 && e.volume == 10));
            if ms == 8191 {
                assert_eq!(evs.len(), 409 + 3);
                continue;
            }
            let want_updates: Vec<_> = updates.iter().map(|&d| (false, d)).collect();
            let want: Vec<_> = want_updates.into_iter().chain([(true, total); 3]).collect();
            let got: Vec<_> = evs.iter().map(|e| (e.end, e.duration)).collect();
            assert_eq!(got, want, "{ms} ms");
        }
    }

    #[test]
    fn sender_rejects_bad_input() {
        assert_eq!(
            DtmfSender::new('x', 100).unwrap_err(),
            MediaError::NotADigit('x')
        );
        assert_eq!(
            DtmfSender::new('1', 0).unwrap_err(),
            MediaError::DtmfDuration(0)
        );
        assert_eq!(
            DtmfSender::new('1', 8192).unwrap_err(),
            MediaError::DtmfDuration(8192)
        );
        let loud = DtmfSender::new('1', 40).unwrap().with_volume(99);
        for p in loud {
            assert_eq!(TelephoneEvent::parse(&p.payload).unwrap().volume, 63);
        }
    }

    #[test]
    fn sender_round_trips_through_receiver() {
        let mut rx = DtmfReceiver::default();
        let mut heard = String::new();
        let (mut now, mut ts) = (0u64, 0u32);
        for digit in "0123456789*#ABCD77".chars() {
            for p in DtmfSender::new(digit, 120).unwrap() {
                heard.extend(rx.on_packet(ts, &p.payload, now).unwrap().map(|d| {
                    assert!(d.end_seen);
                    assert_eq!(d.duration, 960);
                    d.digit
                }));
                now += 20;
            }
            // 60 ms pause between digits; the next event starts later.
            now += 60;
            ts = ts.wrapping_add((8 * (120 + 60 + 40)) as u32);
        }
        assert_eq!(heard, "0123456789*#ABCD77");
        assert_eq!(rx.poll(u64::MAX), None);
    }
}
