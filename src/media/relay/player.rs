//! Playout of a playlist towards the caller: one 20 ms G.711 frame per tick.
//!
//! Why: the greeting, the music on hold with its periodic message, and the
//! survey prompt are all "what the caller hears from the gateway"; this keeps
//! where in the playlist the caller is, and writes the next frame into a packet
//! buffer without allocating.

use std::sync::Arc;

use crate::media::command::Playlist;
use crate::media::prompt::FRAME;
use crate::media::{Codec, Prompt};

/// What the player is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `once[i]`.
    Once(usize),
    Music,
    Message,
    Done,
}

/// A playlist being played.
#[derive(Debug)]
pub(super) struct Player {
    list: Playlist,
    part: Part,
    /// Sample position inside the current prompt.
    pos: usize,
    /// Music samples played since the last message.
    since_message: usize,
    /// The `once` part has ended and the next tick says so.
    announce_done: bool,
    /// The player's own RTP stream (the relay's rewriter maps it onto the caller's).
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

/// What one tick produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tick {
    /// A frame of this many payload bytes was written.
    Frame(usize),
    /// The `once` part just ended and nothing follows.
    Done,
    /// Nothing to play.
    Idle,
}

impl Player {
    pub fn new(list: Playlist, ssrc: u32, seq: u16, ts: u32) -> Player {
        let part = if !list.once.is_empty() {
            Part::Once(0)
        } else if list.hold.is_some() {
            Part::Music
        } else {
            Part::Done
        };
        Player {
            list,
            part,
            pos: 0,
            since_message: 0,
            announce_done: false,
            seq,
            ts,
            ssrc,
        }
    }

    fn prompt(&self) -> Option<&Arc<Prompt>> {
        match self.part {
            Part::Once(i) => self.list.once.get(i),
            Part::Music => self.list.hold.as_ref().map(|h| &h.music),
            Part::Message => self.list.hold.as_ref().and_then(|h| h.message.as_ref()),
            Part::Done => None,
        }
    }

    /// The part after the current prompt ended.
    fn advance(&mut self) {
        self.pos = 0;
        self.part = match self.part {
            Part::Once(i) if i + 1 < self.list.once.len() => Part::Once(i + 1),
            Part::Once(_) if self.list.hold.is_some() => Part::Music,
            Part::Once(_) | Part::Done => Part::Done,
            Part::Music => self.after_music(),
            Part::Message => {
                self.since_message = 0;
                Part::Music
            }
        };
    }

    fn after_music(&self) -> Part {
        match &self.list.hold {
            Some(h) if h.message.is_some() && self.message_due(h.every) => Part::Message,
            _ => Part::Music,
        }
    }

    fn message_due(&self, every: std::time::Duration) -> bool {
        self.since_message as u64 >= every.as_millis() as u64 * 8
    }

    /// Writes the next frame (exactly [`FRAME`] bytes, the tail padded with
    /// silence) into `out`.
    pub fn tick(&mut self, codec: Codec, out: &mut [u8]) -> Tick {
        if self.part == Part::Done {
            return if std::mem::take(&mut self.announce_done) {
                Tick::Done
            } else {
                Tick::Idle
            };
        }
        let mut filled = 0;
        // At most two prompt ends per frame (a very short prompt could hit more;
        // the rest of the frame is then silence).
        for _ in 0..4 {
            let Some(prompt) = self.prompt().cloned() else {
                break;
            };
            let chunk = prompt.frame(codec, self.pos);
            let n = chunk.len().min(FRAME - filled);
            out[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            self.pos += n;
            if self.part == Part::Music {
                self.since_message += n;
                // Cut the music for a message that is due.
                if let Some(h) = &self.list.hold
                    && h.message.is_some()
                    && self.message_due(h.every)
                {
                    self.part = Part::Message;
                    self.pos = 0;
                }
            }
            if self.pos >= prompt.len() {
                let was_once = matches!(self.part, Part::Once(_));
                self.advance();
                if was_once && self.part == Part::Done {
                    if filled == 0 {
                        return Tick::Done;
                    }
                    self.announce_done = true;
                    break;
                }
            }
            if filled == FRAME {
                break;
            }
        }
        if filled == 0 {
            return Tick::Idle;
        }
        out[filled..FRAME].fill(codec.silence());
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        Tick::Frame(FRAME)
    }

    /// True once the `once` part has ended with nothing after it.
    #[cfg(test)]
    pub fn finished(&self) -> bool {
        self.part == Part::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::command::Hold;
    use std::time::Duration;

    fn prompt(name: &str, samples: usize, value: i16) -> Arc<Prompt> {
        Arc::new(Prompt::from_pcm(name, &vec![value; samples]))
    }

    fn run(p: &mut Player, ticks: usize) -> Vec<(Tick, u8)> {
        let mut out = [0u8; FRAME];
        (0..ticks)
            .map(|_| {
                let t = p.tick(Codec::Pcma, &mut out);
                (t, out[0])
            })
            .collect()
    }

    #[test]
    fn once_then_done() {
        let g = prompt("g", 400, 1000);
        let mut p = Player::new(
            Playlist {
                once: vec![g],
                hold: None,
            },
            1,
            0,
            0,
        );
        let got = run(&mut p, 5);
        let code = Codec::Pcma.encode_sample(1000);
        assert_eq!(got[0], (Tick::Frame(FRAME), code));
        assert_eq!(got[1], (Tick::Frame(FRAME), code));
        // 400 = 2.5 frames: the third is half prompt, half silence.
        assert_eq!(got[2], (Tick::Frame(FRAME), code));
        assert_eq!(got[3].0, Tick::Done);
        assert_eq!(got[4].0, Tick::Idle);
        assert!(p.finished());
        assert_eq!((p.seq, p.ts), (3, 480), "three frames were sent");
    }

    #[test]
    fn greeting_then_music_with_a_periodic_message() {
        let g = prompt("g", 320, 1000);
        let music = prompt("m", 160 * 3, 2000);
        let msg = prompt("w", 160, 3000);
        let mut p = Player::new(
            Playlist {
                once: vec![g],
                hold: Some(Hold {
                    music,
                    message: Some(msg),
                    every: Duration::from_millis(100), // 5 frames of music
                }),
            },
            1,
            0,
            0,
        );
        let codes: Vec<i16> = run(&mut p, 16)
            .into_iter()
            .map(|(t, c)| {
                assert_eq!(t, Tick::Frame(FRAME));
                Codec::Pcma.decode_sample(c) / 100 * 100
            })
            .collect();
        let (g, m, w) = (
            Codec::Pcma.decode_sample(Codec::Pcma.encode_sample(1000)) / 100 * 100,
            Codec::Pcma.decode_sample(Codec::Pcma.encode_sample(2000)) / 100 * 100,
            Codec::Pcma.decode_sample(Codec::Pcma.encode_sample(3000)) / 100 * 100,
        );
        assert_eq!(
            codes,
            vec![g, g, m, m, m, m, m, w, m, m, m, m, m, w, m, m],
            "greeting, 5 frames of looping music, the message, music again"
        );
        assert!(!p.finished(), "hold music never ends by itself");
    }
}
