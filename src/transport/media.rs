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
    let core = MediaConfig::from_section(m, address, Arc::new(prompts));
    Ok(Some((core, MediaPlane { handle, events: rx })))
}
