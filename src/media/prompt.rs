//! Prompts: WAV files converted once, at load time, into the G.711 bytes the relay
//! plays (greeting, music on hold, the survey).
//!
//! Why: the relay must never decode or resample per packet. A prompt is held as
//! A-law and μ-law both, so that playout is a copy of 160 bytes into the packet.
//! Prompts are mono, 8 kHz, 16-bit PCM WAV files (`prompts/` in a checkout; the
//! shipped ones are also embedded in the binary).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::Codec;

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{file}: cannot read the WAV file: {source}")]
    Read { file: String, source: hound::Error },
    #[error("{file}: {what}; prompts must be mono, 8000 Hz, 16-bit PCM WAV")]
    Format { file: String, what: String },
    #[error("{file}: the prompt is empty")]
    Empty { file: String },
    #[error("cannot list the prompt folder {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
}

/// One prompt, ready to play.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    pub name: String,
    alaw: Arc<[u8]>,
    ulaw: Arc<[u8]>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prompt({:?}, {} ms)", self.name, self.duration_ms())
    }
}

impl Prompt {
    /// A prompt from 8 kHz linear samples.
    pub fn from_pcm(name: &str, pcm: &[i16]) -> Prompt {
        let enc = |c: Codec| {
            pcm.iter()
                .map(|&s| c.encode_sample(s))
                .collect::<Arc<[u8]>>()
        };
        Prompt {
            name: name.to_string(),
            alaw: enc(Codec::Pcma),
            ulaw: enc(Codec::Pcmu),
        }
    }

    /// A prompt from the bytes of a WAV file; `file` names it in errors.
    pub fn from_wav(name: &str, file: &str, bytes: &[u8]) -> Result<Prompt, PromptError> {
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|source| {
            PromptError::Read {
                file: file.to_string(),
                source,
            }
        })?;
        let spec = reader.spec();
        let format = |what: String| PromptError::Format {
            file: file.to_string(),
            what,
        };
        if spec.channels != 1 {
            return Err(format(format!("{} channels", spec.channels)));
        }
        if spec.sample_rate != 8000 {
            return Err(format(format!("{} Hz", spec.sample_rate)));
        }
        if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
            return Err(format(format!(
                "{}-bit {:?} samples",
                spec.bits_per_sample, spec.sample_format
            )));
        }
        let pcm = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .map_err(|source| PromptError::Read {
                file: file.to_string(),
                source,
            })?;
        if pcm.is_empty() {
            return Err(PromptError::Empty {
                file: file.to_string(),
            });
        }
        Ok(Prompt::from_pcm(name, &pcm))
    }

    /// Its length in samples (8 kHz).
    pub fn len(&self) -> usize {
        self.alaw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alaw.is_empty()
    }

    pub fn duration_ms(&self) -> u64 {
        self.len() as u64 / 8
    }

    /// The encoded samples from `pos` on, at most one frame.
    pub fn frame(&self, codec: Codec, pos: usize) -> &[u8] {
        let all = match codec {
            Codec::Pcma => &self.alaw,
            Codec::Pcmu => &self.ulaw,
        };
        let start = pos.min(all.len());
        &all[start..(start + FRAME).min(all.len())]
    }
}

/// The prompts by name (a file's stem: `greeting.wav` is `greeting`).
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    by_name: BTreeMap<String, Arc<Prompt>>,
}

/// The prompts shipped in `prompts/`, embedded for a binary run outside a checkout.
const EMBEDDED: &[(&str, &[u8])] = &[
    ("greeting", include_bytes!("../../prompts/greeting.wav")),
    ("forwarded", include_bytes!("../../prompts/forwarded.wav")),
    ("survey", include_bytes!("../../prompts/survey.wav")),
    ("thanks", include_bytes!("../../prompts/thanks.wav")),
    ("hold", include_bytes!("../../prompts/hold.wav")),
    (
        "still-waiting",
        include_bytes!("../../prompts/still-waiting.wav"),
    ),
    (
        "number-changed",
        include_bytes!("../../prompts/number-changed.wav"),
    ),
];

impl Prompts {
    /// Every `*.wav` in `dir`; the first bad file is an error naming it.
    pub fn from_dir(dir: &Path) -> Result<Prompts, PromptError> {
        let entries = std::fs::read_dir(dir).map_err(|source| PromptError::Dir {
            dir: dir.display().to_string(),
            source,
        })?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
            .collect();
        files.sort();
        let mut out = Prompts::default();
        for path in files {
            let file = path.display().to_string();
            let bytes = std::fs::read(&path).map_err(|e| PromptError::Read {
                file: file.clone(),
                source: hound::Error::IoError(e),
            })?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.insert(Prompt::from_wav(&name, &file, &bytes)?);
        }
        Ok(out)
    }

    /// The prompts shipped with the gateway.
    pub fn embedded() -> Prompts {
        let mut out = Prompts::default();
        for (name, bytes) in EMBEDDED {
            match Prompt::from_wav(name, &format!("(embedded) {name}.wav"), bytes) {
                Ok(p) => out.insert(p),
                Err(e) => tracing::error!(error = %e, "embedded prompt refused"),
            }
        }
        out
    }

    pub fn insert(&mut self, p: Prompt) {
        self.by_name.insert(p.name.clone(), Arc::new(p));
    }

    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, samples: &[i16]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        buf.into_inner()
    }

    #[test]
    fn a_wav_becomes_both_laws() {
        let pcm: Vec<i16> = (0..400).map(|i| (i * 50) as i16).collect();
        let p = Prompt::from_wav("t", "t.wav", &wav(1, 8000, &pcm)).unwrap();
        assert_eq!(p.len(), 400);
        assert_eq!(p.duration_ms(), 50);
        assert_eq!(p.frame(Codec::Pcma, 0).len(), FRAME);
        assert_eq!(p.frame(Codec::Pcmu, 320).len(), 80, "the tail is short");
        assert!(p.frame(Codec::Pcma, 999).is_empty());
        assert_eq!(p.frame(Codec::Pcma, 0)[3], Codec::Pcma.encode_sample(150));
        assert_eq!(p.frame(Codec::Pcmu, 0)[3], Codec::Pcmu.encode_sample(150));
    }

    #[test]
    fn wrong_formats_name_the_file_and_the_problem() {
        let e = Prompt::from_wav("t", "x/16k.wav", &wav(1, 16000, &[1, 2])).unwrap_err();
        assert!(e.to_string().contains("x/16k.wav: 16000 Hz"), "{e}");
        let e = Prompt::from_wav("t", "st.wav", &wav(2, 8000, &[1, 2])).unwrap_err();
        assert!(e.to_string().contains("2 channels"), "{e}");
        let e = Prompt::from_wav("t", "e.wav", &wav(1, 8000, &[])).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = Prompt::from_wav("t", "junk.wav", b"RIFFjunk").unwrap_err();
        assert!(e.to_string().starts_with("junk.wav: cannot read"), "{e}");
    }

    #[test]
    fn the_shipped_prompts_load() {
        let p = Prompts::embedded();
        assert_eq!(p.len(), EMBEDDED.len(), "every embedded prompt loads");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let from_dir = Prompts::from_dir(&dir).unwrap();
        for (name, _) in EMBEDDED {
            let a = p.get(name).unwrap();
            assert!(a.duration_ms() > 500, "{name} is real audio");
            assert_eq!(from_dir.get(name).as_deref(), Some(&*a), "{name}");
        }
        assert_eq!(
            from_dir.len(),
            EMBEDDED.len(),
            "the folder holds just these"
        );
    }
}
