//! Starting the media plane: prompts loaded and checked, the recorder and the
//! relay threads started, and the core's `[media]` settings.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::info;

use super::TransportError;
use crate::call::MediaConfig;
use crate::config::Config;
use crate::dialplan::Dialplan;
use crate::media::command::MediaEvent;
use crate::media::record::{RecordConfig, RecordTap};
use crate::media::relay::{self, MediaHandle, RelayConfig};
use crate::media::{Prompts, prompt::PromptError};

/// Events in flight from the relay to the core.
const EVENTS: usize = 8192;

/// The running relay, as the core task sees it.
#[derive(Debug)]
pub(crate) struct MediaPlane {
    pub handle: MediaHandle,
    pub events: mpsc::Receiver<MediaEvent>,
}

/// The prompts of `[media] prompts`, or the built-in ones when that folder
/// does not exist.
pub fn load_prompts(cfg: &Config) -> Result<Prompts, PromptError> {
    let dir = cfg.prompts_dir();
    if dir.is_dir() {
        Prompts::from_dir(&dir)
    } else {
        Ok(Prompts::embedded())
    }
}

/// Every prompt name the config and the dialplan use that `prompts` lacks, as
/// an error message naming where it is used.
pub fn missing_prompts(cfg: &Config, plan: &Dialplan, prompts: &Prompts) -> Vec<String> {
    let mut out = Vec::new();
    for (key, name) in cfg.media.prompt_names() {
        if prompts.get(name).is_none() {
            out.push(format!("[media] {key}: no prompt named {name:?}"));
        }
    }
    out.extend(crate::call::missing_line_prompts(plan, prompts));
    out
}

/// Loads the prompts and starts the recorder and the relay; `None` when
/// `[media] enabled = false`.
pub(crate) fn start(
    cfg: &Config,
    plan: &Dialplan,
) -> Result<Option<(MediaConfig, MediaPlane)>, TransportError> {
    let m = &cfg.media;
    if !m.enabled {
        return Ok(None);
    }
    let prompts = load_prompts(cfg).map_err(|e| TransportError::Media(e.to_string()))?;
    let missing = missing_prompts(cfg, plan, &prompts);
    if !missing.is_empty() {
        return Err(TransportError::Media(missing.join("; ")));
    }
    let address = m.address.unwrap_or(cfg.advertise().ip());
    let tap = RecordTap::start(RecordConfig {
        dir: cfg.recordings_dir(),
        max_bytes: m.recordings_max_mb.saturating_mul(1 << 20),
        max_age: Duration::from_secs(m.recordings_max_age_days * 86_400),
    })?;
    let (tx, rx) = mpsc::channel(EVENTS);
    let handle = relay::spawn(
        RelayConfig {
            bind: address,
            timeout: Duration::from_secs(m.timeout_s),
            coalesce: Duration::from_micros(m.relay_coalesce_us),
        },
        tap,
        tx,
    )?;
    info!(%address, ports = %format!("{}-{}", m.rtp_port_min, m.rtp_port_max), prompts = prompts.len(), "media relay running");
    let core = core_media_config(m, address, Arc::new(prompts));
    Ok(Some((core, MediaPlane { handle, events: rx })))
}

/// The core's media settings from `[media]`, for SDP naming `address` and
/// with these prompts.
pub fn core_media_config(
    m: &crate::config::MediaSection,
    address: std::net::IpAddr,
    prompts: Arc<crate::media::Prompts>,
) -> MediaConfig {
    MediaConfig {
        address,
        ports: (m.rtp_port_min, m.rtp_port_max),
        queued: match m.queued {
            crate::config::QueuedMode::Answer => crate::call::QueuedAudio::Answer,
            crate::config::QueuedMode::EarlyMedia => crate::call::QueuedAudio::EarlyMedia,
        },
        prompts,
        greeting: m.greeting.clone(),
        hold_music: m.hold_music.clone(),
        hold_message: m.hold_message.clone(),
        hold_message_every: Duration::from_secs(m.hold_message_every_s),
        survey: m.survey,
        survey_prompt: m.survey_prompt.clone(),
        survey_thanks: m.survey_thanks.clone(),
        not_in_service: m.not_in_service.clone(),
        survey_timeout: Duration::from_secs(m.survey_timeout_s),
        record: m.record,
    }
}
