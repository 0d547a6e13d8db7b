//! The three-party mixer's arithmetic: per party, a short queue of decoded
//! audio; every 20 ms one frame from each, and for each party the sum of the
//! others (never its own voice back).
//!
//! Why pure and here: the relay thread owns the sockets and the clock; this
//! owns only samples, so that "each hears the other two" and the bounds on
//! delay are tested without a socket. G.711 is decoded on arrival (either law,
//! per party) and encoded per listener in its own law, so parties with
//! different laws hear each other: the mixer is also the transcoder.

use super::Codec;
use super::prompt::FRAME;

/// Parties a mix holds: the caller, the agent, and the one the agent added.
pub const PARTIES: usize = 3;
/// Audio queued per party at most (80 ms): a phone that sends in bursts is
/// absorbed, one that runs fast loses its oldest audio rather than building
/// up delay.
const QUEUE: usize = FRAME * 4;

/// One party's audio waiting to be mixed.
#[derive(Debug, Clone)]
struct Queue {
    samples: [i16; QUEUE],
    /// Index of the oldest sample.
    head: usize,
    len: usize,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            samples: [0; QUEUE],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, s: i16) {
        if self.len == QUEUE {
            // Full: the oldest sample goes.
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
        }
        self.samples[(self.head + self.len) % QUEUE] = s;
        self.len += 1;
    }

    /// The next frame; silence where the party sent nothing.
    fn pop_frame(&mut self, out: &mut [i16; FRAME]) {
        let n = self.len.min(FRAME);
        for (i, o) in out.iter_mut().enumerate() {
            *o = if i < n {
                self.samples[(self.head + i) % QUEUE]
            } else {
                0
            };
        }
        self.head = (self.head + n) % QUEUE;
        self.len -= n;
    }
}

/// A mix of up to [`PARTIES`] parties, by index (0 caller, 1 agent, 2 added).
#[derive(Debug, Clone)]
pub struct Mix {
    queues: [Queue; PARTIES],
    /// This tick's frame of each party.
    frames: [[i16; FRAME]; PARTIES],
    /// The mix's own RTP stream (the relay's rewriter maps it onto each
    /// listener's stream): sequence number and timestamp of the next frame.
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

impl Mix {
    pub fn new(seq: u16, ts: u32, ssrc: u32) -> Mix {
        Mix {
            queues: [Queue::new(), Queue::new(), Queue::new()],
            frames: [[0; FRAME]; PARTIES],
            seq,
            ts,
            ssrc,
        }
    }

    /// Audio from party `p` in its law; other parties' queues are untouched.
    pub fn push(&mut self, p: usize, codec: Codec, payload: &[u8]) {
        let Some(q) = self.queues.get_mut(p) else {
            return;
        };
        for &b in payload {
            q.push(codec.decode_sample(b));
        }
    }

    /// Forgets what party `p` has queued (it left, or it was replaced).
    pub fn clear(&mut self, p: usize) {
        if let Some(q) = self.queues.get_mut(p) {
            *q = Queue::new();
        }
    }

    /// Takes this tick's frame from every party (silence where none came) and
    /// advances the mix's stream by one frame.
    pub fn tick(&mut self) {
        for (q, f) in self.queues.iter_mut().zip(self.frames.iter_mut()) {
            q.pop_frame(f);
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
    }

    /// What party `listener` hears this tick, encoded in `codec` into `out`
    /// (`FRAME` bytes): the other parties summed, clipped to 16 bits.
    pub fn encode_for(&self, listener: usize, codec: Codec, out: &mut [u8]) -> usize {
        let n = out.len().min(FRAME);
        for (i, o) in out.iter_mut().take(n).enumerate() {
            let sum: i32 = (0..PARTIES)
                .filter(|&p| p != listener)
                .map(|p| i32::from(self.frames[p][i]))
                .sum();
            *o = codec.encode_sample(sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, n: usize, phase: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (i + phase) as f64 / 8000.0;
                (6000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    fn encoded(codec: Codec, pcm: &[i16]) -> Vec<u8> {
        let mut out = vec![0; pcm.len()];
        codec.encode(pcm, &mut out);
        out
    }

    fn decoded(codec: Codec, b: &[u8]) -> Vec<i16> {
        let mut out = vec![0; b.len()];
        codec.decode(b, &mut out);
        out
    }

    #[test]
    fn each_party_hears_the_other_two_and_never_itself() {
        let freqs = [700.0, 1100.0, 1700.0];
        let laws = [Codec::Pcma, Codec::Pcmu, Codec::Pcma];
        let mut mix = Mix::new(1, 1, 1);
        let mut heard: [Vec<i16>; 3] = Default::default();
        for frame in 0..25 {
            for p in 0..3 {
                let pcm = tone(freqs[p], FRAME, frame * FRAME);
                mix.push(p, laws[p], &encoded(laws[p], &pcm));
            }
            mix.tick();
            for (p, h) in heard.iter_mut().enumerate() {
                let mut out = [0u8; FRAME];
                assert_eq!(mix.encode_for(p, laws[p], &mut out), FRAME);
                h.extend(decoded(laws[p], &out));
            }
        }
        for (p, h) in heard.iter().enumerate() {
            let power = |hz| crate::softphone::audio::tone_power(h, hz);
            let own = power(freqs[p]);
            for (q, &f) in freqs.iter().enumerate() {
                if q != p {
                    assert!(
                        power(f) > 100.0 * own,
                        "party {p} hears party {q} ({}) well above itself ({own})",
                        power(f)
                    );
                }
            }
        }
    }

    #[test]
    fn a_silent_party_is_silence_and_loud_sums_clip() {
        let mut mix = Mix::new(0, 0, 7);
        let loud = vec![30_000i16; FRAME];
        mix.push(0, Codec::Pcmu, &encoded(Codec::Pcmu, &loud));
        mix.push(1, Codec::Pcmu, &encoded(Codec::Pcmu, &loud));
        mix.tick();
        let mut out = [0u8; FRAME];
        mix.encode_for(2, Codec::Pcmu, &mut out);
        let d = decoded(Codec::Pcmu, &out);
        assert!(
            d.iter().all(|&s| s > 30_000),
            "clipped, not wrapped: {:?}",
            &d[..4]
        );
        mix.encode_for(0, Codec::Pcmu, &mut out);
        assert!(
            decoded(Codec::Pcmu, &out).iter().all(|&s| s > 28_000),
            "the caller hears the agent alone"
        );
        // Nothing queued: the next tick is silence for everyone.
        mix.tick();
        mix.encode_for(2, Codec::Pcmu, &mut out);
        assert!(decoded(Codec::Pcmu, &out).iter().all(|&s| s.abs() < 16));
        assert_eq!((mix.seq, mix.ts), (2, 2 * FRAME as u32));
    }

    #[test]
    fn a_party_sending_too_fast_keeps_only_the_newest_80_ms() {
        let mut mix = Mix::new(0, 0, 7);
        for i in 0..10 {
            let frame = vec![i as i16 * 1000; FRAME];
            mix.push(1, Codec::Pcma, &encoded(Codec::Pcma, &frame));
        }
        let mut out = [0u8; FRAME];
        let mut levels = Vec::new();
        for _ in 0..5 {
            mix.tick();
            mix.encode_for(0, Codec::Pcma, &mut out);
            levels.push(decoded(Codec::Pcma, &out)[80]);
        }
        assert!(
            (5800..6200).contains(&levels[0]),
            "oldest kept is frame 6: {levels:?}"
        );
        assert!((8800..9300).contains(&levels[3]), "{levels:?}");
        assert!(levels[4].abs() < 16, "then silence: {levels:?}");
        // A party that leaves is forgotten at once.
        mix.push(2, Codec::Pcma, &encoded(Codec::Pcma, &[5000; FRAME]));
        mix.clear(2);
        mix.tick();
        mix.encode_for(0, Codec::Pcma, &mut out);
        assert!(decoded(Codec::Pcma, &out).iter().all(|&s| s.abs() < 16));
    }
}
