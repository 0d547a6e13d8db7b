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
#[path = "dtmf_tests.rs"]
mod tests;
