//! The softphone's audio: sends a tone or a WAV file as G.711 RTP every 20 ms,
//! sends DTMF digits (RFC 4733) when told, and keeps what it hears, so that a
//! test can check end to end that audio flows and arrives intact.

use std::f64::consts::PI;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::media::command::Remote;
use crate::media::{Codec, DtmfSender};

/// 20 ms at 8 kHz.
const FRAME: usize = 160;

/// What the softphone sends and keeps.
#[derive(Debug, Clone, Default)]
pub struct AudioOpts {
    /// A sine tone of this frequency, at -10 dBFS.
    pub tone_hz: Option<f64>,
    /// Or these samples (8 kHz mono), looped.
    pub wav: Option<Arc<Vec<i16>>>,
    /// Digits to send as RFC 4733 events, this long after the audio starts.
    pub digits: Option<(Duration, String)>,
    /// Write what was heard to `<dir>/<prefix>-<call>.wav` (`~2`, `~3`… when
    /// taken: see [`write_new_wav`]).
    pub record_dir: Option<PathBuf>,
    pub record_prefix: String,
}

/// What one call's audio did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioReport {
    pub call: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// The strongest frequency (10 Hz steps, 100–3500 Hz) over the whole call.
    pub peak_hz: Option<u32>,
    /// The call in segments, as the gateway announced them (its greeting and
    /// hold music, the agent, the survey), each with its strongest frequency.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// RMS of everything heard (full scale = 32768).
    pub rms: f64,
    /// RFC 4733 digits heard.
    pub digits_heard: String,
    /// The file of what was heard, when recording.
    pub recording: Option<String>,
    /// Why the file of what was heard could not be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_error: Option<String>,
    /// Packets whose sequence number did not follow the previous one.
    pub sequence_jumps: u64,
    /// Distinct SSRCs seen (1 for one continuous stream).
    pub ssrcs: u64,
}

/// A stretch of a call with one source of audio.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Segment {
    /// `early media`, `gateway` (its greeting and hold music), `agent`, `survey`
    /// (or `call` when the far end says nothing).
    pub name: String,
    /// When it started, from the call's first audio.
    pub from_ms: u64,
    /// Its strongest frequency, as [`AudioReport::peak_hz`].
    pub peak_hz: Option<u32>,
}

/// Runs one call's audio until `stop` fires; returns what happened, and the
/// socket (for the next call). `moves` says where the far end wants its audio
/// (a later SDP may move it).
pub async fn run(
    call: u64,
    sock: UdpSocket,
    moves: tokio::sync::watch::Receiver<Remote>,
    opts: AudioOpts,
    mut stop: oneshot::Receiver<()>,
    segment: tokio::sync::watch::Receiver<&'static str>,
) -> (AudioReport, UdpSocket) {
    let mut report = AudioReport {
        call,
        ..Default::default()
    };
    let mut heard: Vec<i16> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 2048];
    let (ssrc, mut seq, mut ts) = (0x5eed_0000 | call as u32, 1000u16, 160_000u32);
    let mut phase = 0.0f64;
    let mut wav_pos = 0usize;
    let started = tokio::time::Instant::now();
    let mut dtmf: Option<(DtmfSender, u32)> = None;
    let mut digits: Vec<char> = opts
        .digits
        .as_ref()
        .map(|(_, d)| d.chars().rev().collect())
        .unwrap_or_default();
    let digits_at = opts.digits.as_ref().map(|(at, _)| started + *at);
    let mut last_seq: Option<u16> = None;
    let mut ssrcs: Vec<u32> = Vec::new();
    let mut last_event: Option<(u32, u8)> = None;
    // Where the far end is: a later SDP may move it (read once per frame).
    let mut remote = *moves.borrow();
    // Where each segment starts in `heard`, and when.
    let mut marks: Vec<(&'static str, usize, u64)> = Vec::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                remote = *moves.borrow();
                let codec = remote.codec;
                // A digit due: its events replace audio until its end packets.
                if dtmf.is_none()
                    && digits_at.is_some_and(|t| tokio::time::Instant::now() >= t)
                    && let Some(d) = digits.pop()
                    && let Ok(s) = DtmfSender::new(d, 200)
                {
                    dtmf = Some((s, ts));
                }
                let len = if let Some((sender, start_ts)) = dtmf.as_mut() {
                    match sender.next() {
                        Some(p) => {
                            let pt = remote.dtmf_pt.unwrap_or(101);
                            header(&mut buf, pt, p.marker, seq, *start_ts, ssrc);
                            buf[12..16].copy_from_slice(&p.payload);
                            16
                        }
                        None => {
                            dtmf = None;
                            0
                        }
                    }
                } else {
                    0
                };
                let len = if len > 0 {
                    len
                } else {
                    header(&mut buf, codec.payload_type(), false, seq, ts, ssrc);
                    for i in 0..FRAME {
                        let s = match (&opts.wav, opts.tone_hz) {
                            (Some(w), _) if !w.is_empty() => {
                                let s = w[wav_pos % w.len()];
                                wav_pos += 1;
                                s
                            }
                            (_, Some(hz)) => {
                                phase += 2.0 * PI * hz / 8000.0;
                                (phase.sin() * 10_362.0) as i16
                            }
                            _ => 0,
                        };
                        buf[12 + i] = codec.encode_sample(s);
                    }
                    12 + FRAME
                };
                if sock.send_to(&buf[..len], remote.rtp).await.is_ok() {
                    report.packets_sent += 1;
                }
                seq = seq.wrapping_add(1);
                if dtmf.is_none() {
                    ts = ts.wrapping_add(FRAME as u32);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, _from)) = r else { continue };
                if n < 12 || buf[0] >> 6 != 2 {
                    continue;
                }
                report.packets_received += 1;
                let pt = buf[1] & 0x7f;
                let s = u16::from_be_bytes([buf[2], buf[3]]);
                let rx_ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                if !ssrcs.contains(&rx_ssrc) {
                    ssrcs.push(rx_ssrc);
                }
                if let Some(l) = last_seq
                    && s != l.wrapping_add(1)
                {
                    report.sequence_jumps += 1;
                }
                last_seq = Some(s);
                let cc = usize::from(buf[0] & 0x0f);
                let start = 12 + 4 * cc;
                if Some(pt) == remote.dtmf_pt && n >= start + 4 {
                    let ev_ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    let end = buf[start + 1] & 0x80 != 0;
                    if end && last_event != Some((ev_ts, buf[start])) {
                        last_event = Some((ev_ts, buf[start]));
                        if let Some(d) = crate::media::dtmf::digit_for_event(buf[start]) {
                            report.digits_heard.push(d);
                        }
                    }
                } else if let Some(c) = Codec::from_payload_type(pt)
                    && n > start
                {
                    let name = *segment.borrow();
                    if marks.last().is_none_or(|(m, ..)| *m != name) {
                        let at = started.elapsed().as_millis() as u64;
                        marks.push((name, heard.len(), at));
                    }
                    heard.extend(buf[start..n].iter().map(|&b| c.decode_sample(b)));
                }
            }
        }
    }
    report.ssrcs = ssrcs.len() as u64;
    report.rms = rms(&heard);
    report.peak_hz = peak_hz_of(&heard);
    for (i, (name, from, at)) in marks.iter().enumerate() {
        let to = marks.get(i + 1).map_or(heard.len(), |m| m.1);
        report.segments.push(Segment {
            name: name.to_string(),
            from_ms: *at,
            peak_hz: peak_hz_of(&heard[*from..to]),
        });
    }
    if let Some(dir) = &opts.record_dir {
        match write_new_wav(dir, &format!("{}-{call}", opts.record_prefix), &heard) {
            Ok(path) => report.recording = Some(path.display().to_string()),
            Err(e) => report.recording_error = Some(e),
        }
    }
    (report, sock)
}

/// Writes `samples` to `<dir>/<stem>.wav`, or, when that file exists (an
/// earlier run's), to `<stem>~2.wav`, `<stem>~3.wav`…: a recording never
/// overwrites another. The name is claimed atomically (`create_new`), so two
/// softphones writing at once get two files too.
pub fn write_new_wav(
    dir: &std::path::Path,
    stem: &str,
    samples: &[i16],
) -> Result<PathBuf, String> {
    for n in 1..10_000u32 {
        let name = if n == 1 {
            format!("{stem}.wav")
        } else {
            format!("{stem}~{n}.wav")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                return write_wav_to(std::io::BufWriter::new(file), samples)
                    .map(|()| path.clone())
                    .map_err(|e| format!("{}: {e}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "{}: 9,999 recordings named {stem} already",
        dir.display()
    ))
}

fn header(buf: &mut [u8], pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = pt | if marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

const WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 1,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// A mono 8 kHz 16-bit WAV of `samples`, written to `out`.
fn write_wav_to<W: std::io::Write + std::io::Seek>(
    out: W,
    samples: &[i16],
) -> Result<(), hound::Error> {
    let mut w = hound::WavWriter::new(out, WAV_SPEC)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}

/// Root mean square of samples, 0 for none.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// The power of `hz` in `samples` (Goertzel), normalised per sample.
pub fn tone_power(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    p / (samples.len() as f64).powi(2)
}

/// The strongest frequency in 100–3500 Hz, in 10 Hz steps; `None` for silence.
pub fn peak_hz(samples: &[i16]) -> Option<u32> {
    if rms(samples) < 100.0 {
        return None;
    }
    (10..=350)
        .map(|i| i * 10)
        .map(|hz| (hz, tone_power(samples, f64::from(hz))))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(hz, _)| hz)
}

/// As [`peak_hz`], over any length in two passes so that a whole call costs
/// little: the strongest of every 50 Hz over 20 ms pieces (each as wide as a
/// 50 Hz step), then 10 Hz steps around it over 100 ms pieces.
pub fn peak_hz_of(samples: &[i16]) -> Option<u32> {
    if rms(samples) < 100.0 {
        return None;
    }
    let best = |hz: &mut dyn Iterator<Item = u32>, piece: usize| {
        hz.map(|hz| {
            let p: f64 = samples
                .chunks(piece)
                .map(|c| tone_power(c, f64::from(hz)))
                .sum();
            (hz, p)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(hz, _)| hz)
    };
    let coarse = best(&mut (2..=70).map(|i| i * 50), 160)?;
    let around = coarse.saturating_sub(40).max(100)..=(coarse + 40).min(3500);
    best(&mut around.step_by(10), 800)
}

/// Reads a mono 8 kHz 16-bit WAV (what `--send-wav` takes).
pub fn read_wav(path: &std::path::Path) -> Result<Vec<i16>, String> {
    let r = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = r.spec();
    if spec.channels != 1 || spec.sample_rate != 8000 || spec.bits_per_sample != 16 {
        return Err(format!(
            "{}: need mono 8000 Hz 16-bit PCM, got {} ch {} Hz {} bit",
            path.display(),
            spec.channels,
            spec.sample_rate,
            spec.bits_per_sample
        ));
    }
    r.into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Binds the call's RTP socket.
pub async fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(ip, port)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((2.0 * PI * hz * i as f64 / 8000.0).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn a_recording_never_overwrites_an_earlier_one() {
        let dir = std::env::temp_dir().join(format!("hgw-wav-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = write_new_wav(&dir, "13800138000-1", &tone(700.0, 800)).unwrap();
        let second = write_new_wav(&dir, "13800138000-1", &tone(1500.0, 1600)).unwrap();
        let third = write_new_wav(&dir, "13800138000-1", &[]).unwrap();
        assert_eq!(first, dir.join("13800138000-1.wav"));
        assert_eq!(second, dir.join("13800138000-1~2.wav"));
        assert_eq!(third, dir.join("13800138000-1~3.wav"));
        assert_eq!(read_wav(&first).unwrap().len(), 800, "the first is kept");
        assert_eq!(read_wav(&second).unwrap().len(), 1600);
        let err = write_new_wav(&dir.join("missing"), "x", &[]).unwrap_err();
        assert!(err.contains("missing"), "names the path: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_whole_call_and_each_segment_have_their_strongest_frequency() {
        let mut call = tone(700.0, 16_000);
        call.extend(tone(1500.0, 24_000));
        assert_eq!(peak_hz_of(&call), Some(1500), "the longer, louder part");
        assert_eq!(peak_hz_of(&call[..16_000]), Some(700));
        assert_eq!(peak_hz_of(&tone(440.0, 8000)), Some(440));
        assert_eq!(peak_hz_of(&vec![0; 8000]), None);
    }

    #[test]
    fn finds_the_tone() {
        assert_eq!(peak_hz(&tone(1000.0, 8000)), Some(1000));
        assert_eq!(peak_hz(&tone(440.0, 8000)), Some(440));
        assert_eq!(peak_hz(&vec![0; 8000]), None);
        let t = tone(700.0, 8000);
        assert!(tone_power(&t, 700.0) > 100.0 * tone_power(&t, 1500.0));
    }
}
