//! Call recording: stereo WAV files (caller left, callee right), written by their
//! own thread so that the relay never waits for a disk.
//!
//! Why: the relay hands each received audio payload over a bounded channel by
//! value ([`Chunk`], no allocation); when the writer falls behind, chunks are
//! dropped and counted, never queued without bound. The writer places each
//! channel's audio on the call's timeline by arrival time (gaps become silence)
//! and keeps the folder within its size and age limits.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tracing::{debug, warn};

use super::Codec;
use super::command::SessionId;
use super::prompt::FRAME;

/// Samples per millisecond at 8 kHz.
const PER_MS: u64 = 8;
/// A channel that arrives this far behind the other is padded with silence.
const LAG_MS: u64 = 400;
/// Chunks in flight between the relay and the writer.
const CHANNEL: usize = 16_384;
/// Largest payload kept per packet: 60 ms of G.711.
const MAX_PAYLOAD: usize = FRAME * 3;
/// A gap longer than this (a long hold) is written as silence at once.
const GAP_SAMPLES: u64 = 8000;

/// What the relay sends the writer.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    session: SessionId,
    /// 0 = left (caller), 1 = right (callee).
    channel: u8,
    /// Arrival, in ms since the session opened.
    at_ms: u64,
    codec: Codec,
    len: u16,
    data: [u8; MAX_PAYLOAD],
}

impl Chunk {
    /// Received audio of a session (the payload is cut at 60 ms).
    pub fn audio(
        session: SessionId,
        channel: u8,
        at_ms: u64,
        codec: Codec,
        payload: &[u8],
    ) -> Chunk {
        let mut data = [0u8; MAX_PAYLOAD];
        let n = payload.len().min(data.len());
        data[..n].copy_from_slice(&payload[..n]);
        Chunk {
            session,
            channel,
            at_ms,
            codec,
            len: n as u16,
            data,
        }
    }
}

/// Where recordings go and how long they stay.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub dir: PathBuf,
    /// The folder's size limit; the oldest files go first.
    pub max_bytes: u64,
    /// Files older than this are removed.
    pub max_age: Duration,
}

/// The relay's end of the channel.
#[derive(Debug, Clone)]
pub struct RecordTap {
    tx: Option<SyncSender<Chunk>>,
    opens: Arc<Mutex<Vec<(SessionId, PathBuf)>>>,
    ends: Arc<Mutex<Vec<SessionId>>>,
    pub dropped: Arc<AtomicU64>,
    dir: Option<PathBuf>,
}

impl RecordTap {
    /// A tap that records nothing (no recording folder configured).
    pub fn none() -> RecordTap {
        RecordTap {
            tx: None,
            opens: Default::default(),
            ends: Default::default(),
            dropped: Default::default(),
            dir: None,
        }
    }

    /// Starts the writer thread (the folder is made with the first recording).
    pub fn start(cfg: RecordConfig) -> std::io::Result<RecordTap> {
        let (tx, rx) = sync_channel(CHANNEL);
        let opens: Arc<Mutex<Vec<(SessionId, PathBuf)>>> = Default::default();
        let ends: Arc<Mutex<Vec<SessionId>>> = Default::default();
        let dir = cfg.dir.clone();
        let (o, e) = (opens.clone(), ends.clone());
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || Writer::new(cfg, rx, o, e).run())?;
        Ok(RecordTap {
            tx: Some(tx),
            opens,
            ends,
            dropped: Default::default(),
            dir: Some(dir),
        })
    }

    /// Whether recordings are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Starts a recording named `name` (no extension); the file's path.
    pub fn open(&self, session: SessionId, name: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.wav"));
        if let Ok(mut o) = self.opens.lock() {
            o.push((session, path.clone()));
        }
        Some(path)
    }

    pub fn send(&self, chunk: Chunk) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Finishes a recording. Never lost to a full channel: the end goes by a
    /// list the writer checks every 200 ms, after the chunks already queued.
    pub fn close(&self, session: SessionId) {
        if self.tx.is_none() {
            return;
        }
        if let Ok(mut e) = self.ends.lock() {
            e.push(session);
        }
    }
}

/// One recording being written.
struct Open {
    path: PathBuf,
    wav: hound::WavWriter<BufWriter<File>>,
    /// Stereo frames written so far.
    written: u64,
    /// Per channel: decoded samples not yet written, starting at `written`.
    pending: [Vec<i16>; 2],
    /// Per channel: where the next chunk goes if it arrives on time.
    next: [u64; 2],
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Open({})", self.path.display())
    }
}

impl Open {
    fn place(&mut self, channel: usize, at_ms: u64, samples: &[i16]) {
        let arrival = at_ms * PER_MS;
        let n = samples.len() as u64;
        // On time (within a jitter allowance): right after the previous chunk.
        // Late after a gap: at its arrival time. Never before what is written.
        let expected = self.next[channel];
        let start = if arrival > expected + 80 * PER_MS {
            arrival
        } else {
            expected
        }
        .max(self.written);
        if start - self.written > GAP_SAMPLES {
            // A long silence (hold): write what is pending, then the gap as
            // silence, instead of holding it in memory.
            let _ = self.flush(true);
            while self.written < start {
                let ok = self
                    .wav
                    .write_sample(0i16)
                    .and_then(|_| self.wav.write_sample(0i16));
                if ok.is_err() {
                    break;
                }
                self.written += 1;
            }
        }
        let start = start.max(self.written);
        let offset = (start - self.written) as usize;
        let buf = &mut self.pending[channel];
        if buf.len() < offset {
            buf.resize(offset, 0);
        }
        let end = offset + samples.len();
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset..end].copy_from_slice(samples);
        self.next[channel] = start + n;
    }

    /// Writes what both channels have; a channel lagging more than `LAG_MS`
    /// behind the other (silent phone) is padded.
    fn flush(&mut self, all: bool) -> Result<(), hound::Error> {
        let [l, r] = [self.pending[0].len(), self.pending[1].len()];
        let lag = (LAG_MS * PER_MS) as usize;
        let n = if all {
            l.max(r)
        } else {
            l.min(r).max(l.max(r).saturating_sub(lag))
        };
        if n == 0 {
            return Ok(());
        }
        for ch in 0..2 {
            if self.pending[ch].len() < n {
                self.pending[ch].resize(n, 0);
            }
        }
        for i in 0..n {
            self.wav.write_sample(self.pending[0][i])?;
            self.wav.write_sample(self.pending[1][i])?;
        }
        for ch in 0..2 {
            self.pending[ch].drain(..n);
        }
        self.written += n as u64;
        Ok(())
    }
}

struct Writer {
    cfg: RecordConfig,
    rx: Receiver<Chunk>,
    opens: Arc<Mutex<Vec<(SessionId, PathBuf)>>>,
    ends: Arc<Mutex<Vec<SessionId>>>,
    files: HashMap<SessionId, Open>,
    last_sweep: Option<std::time::Instant>,
    last_ends: std::time::Instant,
}

impl Writer {
    fn new(
        cfg: RecordConfig,
        rx: Receiver<Chunk>,
        opens: Arc<Mutex<Vec<(SessionId, PathBuf)>>>,
        ends: Arc<Mutex<Vec<SessionId>>>,
    ) -> Writer {
        Writer {
            cfg,
            rx,
            opens,
            ends,
            last_ends: std::time::Instant::now(),
            files: HashMap::new(),
            last_sweep: None,
        }
    }

    fn run(mut self) {
        loop {
            self.take_opens();
            let sweep_due = self
                .last_sweep
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(600));
            if sweep_due {
                self.last_sweep = Some(std::time::Instant::now());
                retention(&self.cfg);
            }
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(chunk) => self.on_chunk(chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.last_ends.elapsed() >= Duration::from_millis(200) {
                self.take_ends();
            }
        }
        for (_, f) in self.files.drain() {
            finish(f);
        }
    }

    /// Closes the recordings whose calls ended, once the chunks queued before
    /// the end have been written (they are ahead of it in the channel).
    fn take_ends(&mut self) {
        self.last_ends = std::time::Instant::now();
        let ends = match self.ends.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => return,
        };
        if ends.is_empty() {
            return;
        }
        while let Ok(chunk) = self.rx.try_recv() {
            self.on_chunk(chunk);
        }
        for session in ends {
            if let Some(f) = self.files.remove(&session) {
                finish(f);
            }
        }
    }

    fn take_opens(&mut self) {
        let opens = match self.opens.lock() {
            Ok(mut o) => std::mem::take(&mut *o),
            Err(_) => return,
        };
        if !opens.is_empty()
            && let Err(e) = std::fs::create_dir_all(&self.cfg.dir)
        {
            warn!(dir = %self.cfg.dir.display(), error = %e, "cannot create the recordings folder");
        }
        for (session, path) in opens {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            match hound::WavWriter::create(&path, spec) {
                Ok(wav) => {
                    self.files.insert(
                        session,
                        Open {
                            path,
                            wav,
                            written: 0,
                            pending: [Vec::new(), Vec::new()],
                            next: [0, 0],
                        },
                    );
                }
                Err(e) => warn!(path = %path.display(), error = %e, "cannot create the recording"),
            }
        }
    }

    fn on_chunk(&mut self, chunk: Chunk) {
        if !self.files.contains_key(&chunk.session) {
            self.take_opens();
        }
        let Some(f) = self.files.get_mut(&chunk.session) else {
            return;
        };
        let mut pcm = [0i16; MAX_PAYLOAD];
        let n = chunk
            .codec
            .decode(&chunk.data[..usize::from(chunk.len)], &mut pcm);
        f.place(usize::from(chunk.channel.min(1)), chunk.at_ms, &pcm[..n]);
        if let Err(e) = f.flush(false) {
            warn!(path = %f.path.display(), error = %e, "recording write failed");
        }
    }
}

fn finish(mut f: Open) {
    let path = f.path.clone();
    if let Err(e) = f.flush(true).and_then(|_| f.wav.finalize()) {
        warn!(path = %path.display(), error = %e, "recording not finished");
    } else {
        debug!(path = %path.display(), "recording written");
    }
}

/// Removes recordings older than the age limit, then the oldest ones until the
/// folder fits its size limit.
pub fn retention(cfg: &RecordConfig) {
    let Ok(entries) = std::fs::read_dir(&cfg.dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (modified, len, path) in files {
        let old = now.duration_since(modified).unwrap_or_default() > cfg.max_age;
        if (old || total > cfg.max_bytes) && std::fs::remove_file(&path).is_ok() {
            debug!(path = %path.display(), "recording removed by the retention limit");
            total = total.saturating_sub(len);
        }
    }
}

/// The recording folder's files, for tests and tools.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hgw-rec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn two_channels_on_one_timeline() {
        let dir = tmp("stereo");
        let tap = RecordTap::start(RecordConfig {
            dir: dir.clone(),
            max_bytes: u64::MAX,
            max_age: Duration::from_secs(3600),
        })
        .unwrap();
        let path = tap.open(7, "call-7").unwrap();
        let left = [Codec::Pcma.encode_sample(8000); FRAME];
        let right = [Codec::Pcma.encode_sample(-8000); FRAME];
        // 10 frames of caller audio; the callee starts 100 ms later.
        for i in 0..10u64 {
            tap.send(Chunk::audio(7, 0, i * 20, Codec::Pcma, &left));
        }
        for i in 0..5u64 {
            tap.send(Chunk::audio(7, 1, 100 + i * 20, Codec::Pcma, &right));
        }
        tap.close(7);
        let mut reader = None;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            if let Ok(r) = hound::WavReader::open(&path)
                && r.duration() > 0
            {
                reader = Some(r);
                break;
            }
        }
        let r = reader.expect("the recording is finished");
        assert_eq!(r.spec().channels, 2);
        assert_eq!(r.duration(), 1600, "200 ms of stereo");
        let s: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
        let (l, rr): (Vec<i16>, Vec<i16>) = (
            s.iter().step_by(2).copied().collect(),
            s.iter().skip(1).step_by(2).copied().collect(),
        );
        assert!(l.iter().all(|&x| x > 7000), "caller on the left throughout");
        assert!(
            rr[..800].iter().all(|&x| x == 0),
            "callee silent for 100 ms"
        );
        assert!(rr[800..].iter().all(|&x| x < -7000), "then on the right");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_removes_the_oldest_over_the_size_limit() {
        let dir = tmp("retention");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, name) in ["a.wav", "b.wav", "c.wav"].iter().enumerate() {
            std::fs::write(dir.join(name), vec![0u8; 1000]).unwrap();
            let t = SystemTime::now() - Duration::from_secs(100 - i as u64 * 10);
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "kept").unwrap();
        retention(&RecordConfig {
            dir: dir.clone(),
            max_bytes: 2000,
            max_age: Duration::from_secs(3600),
        });
        let names: Vec<String> = list(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["b.wav", "c.wav", "notes.txt"]);
        retention(&RecordConfig {
            dir: dir.clone(),
            max_bytes: u64::MAX,
            max_age: Duration::from_secs(85),
        });
        let names: Vec<String> = list(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["c.wav", "notes.txt"], "b is older than 85 s");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
