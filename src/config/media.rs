//! `[media]`: the RTP relay, the prompts a queued caller hears, the survey and
//! recording defaults.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// How a queued caller is treated (`queued` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedMode {
    /// The gateway answers (200) and plays the greeting, then hold music.
    Answer,
    /// The same audio as early media (183): unanswered until an agent answers.
    EarlyMedia,
}

/// `[media]`. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// Anchor RTP at the gateway (SDP rewritten to the relay). Off: SDP is
    /// relayed end to end and queued callers hear ringback only.
    pub enabled: bool,
    /// The address the relay binds and SDP names; the SIP listen address when unset.
    pub address: Option<IpAddr>,
    /// RTP ports, inclusive: each call takes two pairs (RTP + RTCP per leg).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A call with no RTP from either phone for this long ends (`media.timeout`).
    pub timeout_s: u64,
    /// Interrupt moderation: after a wake-up with packets the relay waits this
    /// many microseconds before looking again (fewer wake-ups under load, at
    /// most this much added delay). 0 wakes for every packet.
    pub relay_coalesce_us: u64,
    pub queued: QueuedMode,
    /// Folder of the prompts (`*.wav`, mono 8 kHz 16-bit); the prompts built
    /// into the binary when it does not exist.
    pub prompts: PathBuf,
    /// Prompt names (file stems): what a queued caller hears first, then the
    /// music on hold, with `hold_message` every `hold_message_every_s`.
    pub greeting: Option<String>,
    pub hold_music: Option<String>,
    pub hold_message: Option<String>,
    pub hold_message_every_s: u64,
    /// Satisfaction survey when the agent hangs up first (lines may override).
    pub survey: bool,
    pub survey_prompt: String,
    pub survey_thanks: Option<String>,
    /// Seconds to press 1, 2 or 3 after the survey prompt.
    pub survey_timeout_s: u64,
    /// What a caller hears on a line out of service (before its
    /// `effective_from`, after its `effective_until`) before the gateway hangs
    /// up: the number has changed, call 12345 (国办函〔2025〕66号). Without it
    /// (or without media) such a call gets `404`.
    pub not_in_service: Option<String>,
    /// Record calls (lines may override), as stereo WAV in `recordings`.
    pub record: bool,
    pub recordings: PathBuf,
    /// Retention: the folder's size limit and the files' age limit.
    pub recordings_max_mb: u64,
    pub recordings_max_age_days: u64,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            enabled: true,
            address: None,
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            timeout_s: 60,
            relay_coalesce_us: 0,
            queued: QueuedMode::Answer,
            prompts: PathBuf::from("prompts"),
            greeting: Some("greeting".into()),
            hold_music: Some("hold".into()),
            hold_message: Some("still-waiting".into()),
            hold_message_every_s: 30,
            survey: true,
            survey_prompt: "survey".into(),
            survey_thanks: Some("thanks".into()),
            survey_timeout_s: 8,
            not_in_service: Some("number-changed".into()),
            record: false,
            recordings: PathBuf::from("data/recordings"),
            recordings_max_mb: 10_240,
            recordings_max_age_days: 90,
        }
    }
}

impl MediaSection {
    /// Checks serde cannot express: `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((format!("media.{k}"), m.to_string()));
        if self.rtp_port_min < 1024 || self.rtp_port_max <= self.rtp_port_min {
            return e("rtp_port_min", "need 1024 <= rtp_port_min < rtp_port_max");
        }
        if (self.rtp_port_max - self.rtp_port_min) < 7 {
            return e(
                "rtp_port_max",
                "the range must hold at least two calls (8 ports)",
            );
        }
        if self.timeout_s == 0 || self.survey_timeout_s == 0 || self.hold_message_every_s == 0 {
            return e("timeout_s", "timeouts and intervals must be positive");
        }
        if self.relay_coalesce_us > 10_000 {
            return e(
                "relay_coalesce_us",
                "at most 10000 (10 ms): more would be heard as jitter",
            );
        }
        if self.recordings_max_mb == 0 || self.recordings_max_age_days == 0 {
            return e("recordings_max_mb", "retention limits must be positive");
        }
        Ok(())
    }

    /// The prompt names the section refers to, with their keys.
    pub fn prompt_names(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![("survey_prompt", self.survey_prompt.as_str())];
        for (k, n) in [
            ("greeting", &self.greeting),
            ("hold_music", &self.hold_music),
            ("hold_message", &self.hold_message),
            ("survey_thanks", &self.survey_thanks),
            ("not_in_service", &self.not_in_service),
        ] {
            if let Some(n) = n {
                v.push((k, n.as_str()));
            }
        }
        v
    }
}
