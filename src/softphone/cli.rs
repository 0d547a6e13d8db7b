//! The `hotline-gw softphone` subcommands: their options, and running them.
//!
//! Why here and not in the binary: the options map one to one onto
//! [`run::AgentOpts`] and [`run::CallOpts`], and the audio options onto
//! [`AudioOpts`](super::audio::AudioOpts); keeping them together keeps the
//! binary's `main.rs` to the gateway's own commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::run;
use super::ua::TransferMode;

#[derive(Debug, Subcommand)]
pub enum SoftphoneCommand {
    /// Register as an agent and answer calls.
    Agent(AgentArgs),
    /// Call a number, once or many times at a rate. Exits 0 when every call was
    /// answered (with --expect-agent: by a person), 3 when some were not (the
    /// summary says why), 1 on an error.
    Call(CallArgs),
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Agent id (SIP user).
    #[arg(long)]
    user: String,
    /// The agent's password (digest auth), as in the dialplan's `[[agent]]`.
    #[arg(long)]
    password: Option<String>,
    /// The gateway.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// Local SIP address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Answer after this many milliseconds of ringing.
    #[arg(long, default_value_t = 500)]
    answer_after_ms: u64,
    /// Hang up this many milliseconds after answering [default: wait for the caller].
    #[arg(long)]
    talk_ms: Option<u64>,
    /// Stop after this many answered calls (0: run until Ctrl-C or --run-s).
    #[arg(long, default_value_t = 0)]
    calls: u64,
    /// Stop after this many seconds.
    #[arg(long)]
    run_s: Option<u64>,
    /// Blind-transfer each answered call (REFER) to this number, e.g. 110.
    #[arg(long, conflicts_with_all = ["conference_with", "consult_transfer_to"])]
    transfer_to: Option<String>,
    /// Add this number (e.g. 110) to each answered call: a three-party call
    /// (REFER with ;hotline=conference). With --talk-ms the agent then leaves
    /// the caller with it.
    #[arg(long, conflicts_with = "consult_transfer_to")]
    conference_with: Option<String>,
    /// Call this number (e.g. 110) after answering (a consultation), and once
    /// it answers transfer the caller to it (REFER with Replaces: attended
    /// transfer).
    #[arg(long)]
    consult_transfer_to: Option<String>,
    /// How long after answering to transfer, add or consult.
    #[arg(long, default_value_t = 500)]
    transfer_after_ms: u64,
    /// Do not register: answer calls that reach --listen directly (a phone on
    /// a fixed address, such as the transfer directory's 110 in tests).
    #[arg(long)]
    no_register: bool,
    #[command(flatten)]
    audio: AudioArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Real audio on the softphone's calls.
#[derive(Debug, clap::Args)]
pub struct AudioArgs {
    /// Send and receive RTP (a 1000 Hz tone unless --tone-hz or --send-wav).
    #[arg(long)]
    audio: bool,
    /// Send a sine tone of this frequency (50 to 3900 Hz: G.711 carries up to 4 kHz).
    #[arg(long)]
    tone_hz: Option<f64>,
    /// Send this WAV file (mono 8 kHz 16-bit), looped.
    #[arg(long)]
    send_wav: Option<PathBuf>,
    /// Send these DTMF digits (RFC 4733: 0-9, *, #, A-D), one after another.
    #[arg(long)]
    send_digits: Option<String>,
    /// When to send --send-digits: this many milliseconds after the call's audio starts.
    #[arg(long, default_value_t = 1000)]
    digits_after_ms: u64,
    /// Write what each call heard to DIR/<agent id or caller number>-<call>.wav
    /// (an existing file is kept: the new one is named …~2.wav, …~3.wav).
    #[arg(long)]
    record_dir: Option<PathBuf>,
}

impl AudioArgs {
    fn to_opts(&self, prefix: &str) -> Result<Option<super::audio::AudioOpts>> {
        use super::audio;
        let on = self.audio
            || self.tone_hz.is_some()
            || self.send_wav.is_some()
            || self.send_digits.is_some()
            || self.record_dir.is_some();
        if !on {
            return Ok(None);
        }
        if let Some(hz) = self.tone_hz
            && !(50.0..=3900.0).contains(&hz)
        {
            bail!("--tone-hz {hz}: use 50 to 3900 Hz (8 kHz G.711 carries up to 4 kHz)");
        }
        if let Some(d) = &self.send_digits
            && let Some(bad) = d
                .chars()
                .find(|c| crate::media::dtmf::event_for_digit(*c).is_none())
        {
            bail!("--send-digits {d:?}: {bad:?} is no DTMF key (0-9, *, #, A-D)");
        }
        let wav = match &self.send_wav {
            Some(p) => Some(std::sync::Arc::new(
                audio::read_wav(p).map_err(|e| anyhow::anyhow!(e))?,
            )),
            None => None,
        };
        if let Some(d) = &self.record_dir {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(Some(audio::AudioOpts {
            tone_hz: self
                .tone_hz
                .or(if wav.is_none() { Some(1000.0) } else { None }),
            wav,
            digits: self
                .send_digits
                .clone()
                .map(|d| (std::time::Duration::from_millis(self.digits_after_ms), d)),
            record_dir: self.record_dir.clone(),
            record_prefix: prefix.to_string(),
        }))
    }
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The number to call (e.g. 12345).
    number: String,
    /// The caller's number (an agent id with --password).
    #[arg(long, default_value = "13800138000")]
    from: String,
    /// Dial as agent --from with this password (digest auth): how an agent
    /// calls a citizen back (漏接回拨) from the command line. Call from the
    /// address the agent registered from: the gateway challenges only there.
    #[arg(long)]
    password: Option<String>,
    /// The gateway.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// Local SIP address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// How many calls.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Calls per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Hang up this many milliseconds after answer [default: at once].
    #[arg(long)]
    hangup_after_ms: Option<u64>,
    /// Give up on a call not answered within this many seconds.
    #[arg(long, default_value_t = 60)]
    max_wait_s: u64,
    /// Count a call as answered only when a person took it (an agent, legacy
    /// seats, a department's phone), not when the gateway answered it itself
    /// to play its greeting: exit 3 unless every call reached a person.
    #[arg(long)]
    expect_agent: bool,
    #[command(flatten)]
    audio: AudioArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `hotline-gw softphone` subcommand to its end and prints its summary.
pub fn run(command: SoftphoneCommand) -> Result<()> {
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let agent = matches!(command, SoftphoneCommand::Agent(_));
    let mut expect_agent = false;
    let (summary, json) = match command {
        SoftphoneCommand::Agent(a) => {
            let audio = a.audio.to_opts(&a.user)?;
            let opts = run::AgentOpts {
                audio,
                server: a.server,
                listen: a.listen,
                user: a.user,
                password: a.password,
                answer_after: Duration::from_millis(a.answer_after_ms),
                talk_for: a.talk_ms.map(Duration::from_millis),
                calls: a.calls,
                run_for: a.run_s.map(Duration::from_secs),
                quiet: a.json,
                transfer_mode: if a.conference_with.is_some() {
                    TransferMode::Conference
                } else if a.consult_transfer_to.is_some() {
                    TransferMode::Attended
                } else {
                    TransferMode::Blind
                },
                transfer_to: a
                    .transfer_to
                    .or(a.conference_with)
                    .or(a.consult_transfer_to),
                transfer_after: Duration::from_millis(a.transfer_after_ms),
                no_register: a.no_register,
            };
            let s = rt.block_on(run::agent(opts, stop_signal()))?;
            (s, a.json)
        }
        SoftphoneCommand::Call(c) => {
            if c.count == 0 || c.rate <= 0.0 {
                bail!("--count and --rate must be positive");
            }
            let audio = c.audio.to_opts(&c.from)?;
            let opts = run::CallOpts {
                audio,
                server: c.server,
                listen: c.listen,
                number: c.number,
                from: c.from,
                password: c.password,
                count: c.count,
                rate: c.rate,
                hangup_after: c.hangup_after_ms.map(Duration::from_millis),
                max_wait: Duration::from_secs(c.max_wait_s),
                quiet: c.json,
                expect_agent: c.expect_agent,
            };
            expect_agent = c.expect_agent;
            (rt.block_on(run::call(opts))?, c.json)
        }
    };
    let failed = if agent {
        0
    } else if expect_agent {
        summary.placed.saturating_sub(summary.answered_by_agent)
    } else {
        summary.placed.saturating_sub(summary.answered)
    };
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!(
            "{}",
            describe(&summary, if agent { "taken" } else { "placed" })
        );
    }
    if failed > 0 {
        return Err(CallsNotAnswered {
            failed,
            placed: summary.placed,
            by: if expect_agent { " by a person" } else { "" },
        }
        .into());
    }
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM: the agent then hangs up, unregisters
/// and prints its summary. Never completes if no handler can be installed.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A caller run whose calls were not all answered: the summary is printed, and
/// the process exits with [`CallsNotAnswered::EXIT_CODE`] so that a script sees it.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {placed} call(s) not answered{by}")]
pub struct CallsNotAnswered {
    pub failed: u64,
    pub placed: u64,
    /// What counted as an answer (` by a person` with `--expect-agent`).
    pub by: &'static str,
}

impl CallsNotAnswered {
    /// Distinct from 1 (the softphone itself failed): the calls ran, some failed.
    pub const EXIT_CODE: u8 = 3;
}

/// `486 ×2, 503 ×1`.
fn counts<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, u64>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    parts.join(", ")
}

/// The summary for a person: one line of counts, then one line per thing that
/// happened (failures by status, screen pops, transfers, each call's audio).
/// `verb` says what the softphone did with its calls: an agent has `taken` them.
fn describe(s: &run::Summary, verb: &str) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{verb} {}, answered {}, failed {}, hung up by the far end {}; mean answer {} ms; {} ms in all\n",
        s.placed, s.answered, s.failed, s.ended_by_far_end, s.mean_answer_ms, s.elapsed_ms
    );
    if verb == "placed" && s.answered > 0 {
        let _ = writeln!(
            out,
            "  answered by the gateway itself (greeting, hold music) {}, by a person {}; \
             mean answer by a person {} ms",
            s.answered_by_gateway, s.answered_by_agent, s.mean_agent_answer_ms
        );
    }
    if !s.failures_by_code.is_empty() {
        let _ = writeln!(
            out,
            "  failed calls by final status: {}",
            counts(&s.failures_by_code)
        );
    }
    if !s.screen_pop_seen.is_empty() {
        let _ = writeln!(
            out,
            "  screen-pop headers seen: {}",
            counts(&s.screen_pop_seen)
        );
    }
    if !s.transfers_by_code.is_empty() {
        let _ = writeln!(
            out,
            "  transfers by final status: {}",
            counts(&s.transfers_by_code)
        );
    }
    for a in &s.audio {
        let heard = a
            .peak_hz
            .map_or_else(|| "nothing".to_string(), |hz| format!("{hz} Hz"));
        let _ = write!(
            out,
            "  call {} audio: sent {} packets, received {}; heard {heard} (rms {:.3}); \
             digits {:?}; {} SSRC(s), {} sequence jump(s)",
            a.call,
            a.packets_sent,
            a.packets_received,
            a.rms / 32768.0,
            a.digits_heard,
            a.ssrcs,
            a.sequence_jumps
        );
        match (&a.recording, &a.recording_error) {
            (Some(path), _) => {
                let _ = writeln!(out, "; heard audio in {path}");
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "; no recording: {e}");
            }
            (None, None) => out.push('\n'),
        }
        if a.segments.len() > 1 {
            let parts: Vec<String> = a
                .segments
                .iter()
                .map(|g| {
                    let hz = g
                        .peak_hz
                        .map_or_else(|| "nothing".into(), |hz| format!("{hz} Hz"));
                    format!("{} from {} ms: {hz}", g.name, g.from_ms)
                })
                .collect();
            let _ = writeln!(out, "    heard per segment: {}", parts.join("; "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_as_sentences_and_names_each_calls_audio() {
        let mut s = run::Summary {
            placed: 3,
            answered: 2,
            answered_by_agent: 1,
            answered_by_gateway: 2,
            mean_agent_answer_ms: 4000,
            failed: 1,
            ended_by_far_end: 1,
            mean_answer_ms: 40,
            elapsed_ms: 5000,
            ..Default::default()
        };
        s.failures_by_code.insert(486, 1);
        s.audio.push(super::super::audio::AudioReport {
            call: 1,
            packets_sent: 150,
            packets_received: 149,
            peak_hz: Some(1500),
            rms: 3276.8,
            digits_heard: "1".into(),
            recording: Some("/tmp/x-1.wav".into()),
            recording_error: None,
            segments: vec![
                super::super::audio::Segment {
                    name: "gateway".into(),
                    from_ms: 0,
                    peak_hz: Some(440),
                },
                super::super::audio::Segment {
                    name: "agent".into(),
                    from_ms: 3900,
                    peak_hz: Some(1500),
                },
            ],
            sequence_jumps: 0,
            ssrcs: 1,
        });
        s.audio.push(super::super::audio::AudioReport {
            call: 2,
            ..Default::default()
        });
        assert_eq!(
            describe(&s, "placed"),
            "placed 3, answered 2, failed 1, hung up by the far end 1; mean answer 40 ms; 5000 ms in all\n\
             \x20 answered by the gateway itself (greeting, hold music) 2, by a person 1; \
             mean answer by a person 4000 ms\n\
             \x20 failed calls by final status: 486 ×1\n\
             \x20 call 1 audio: sent 150 packets, received 149; heard 1500 Hz (rms 0.100); digits \"1\"; \
             1 SSRC(s), 0 sequence jump(s); heard audio in /tmp/x-1.wav\n\
             \x20   heard per segment: gateway from 0 ms: 440 Hz; agent from 3900 ms: 1500 Hz\n\
             \x20 call 2 audio: sent 0 packets, received 0; heard nothing (rms 0.000); digits \"\"; \
             0 SSRC(s), 0 sequence jump(s)\n"
        );
    }
}
