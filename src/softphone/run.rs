//! Running the softphone over a real socket: the `agent` and `call` modes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::audio::{AudioOpts, AudioReport};
use super::driver::Driver;
use super::ua::{UaConfig, UaEvent};
use crate::sip::transaction::timer::TimerConfig;

/// How many refused calls `softphone call` prints one by one.
const REFUSALS_SHOWN: u64 = 20;

/// Why the softphone stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SoftphoneError {
    #[error("cannot bind {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        /// In the message, not a `source()`: printed once, not twice.
        error: std::io::Error,
    },
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not registered after {0} s: the gateway has not answered the REGISTER yet")]
    NeverRegistered(u64),
    #[error("registration failed: SIP/2.0 {0}")]
    Register(String),
}

/// Options of `softphone agent`.
#[derive(Debug, Clone)]
pub struct AgentOpts {
    pub server: SocketAddr,
    pub listen: SocketAddr,
    pub user: String,
    pub password: Option<String>,
    pub answer_after: Duration,
    /// `None`: wait for the caller to hang up.
    pub talk_for: Option<Duration>,
    /// Stop after this many answered calls (0: run until `run_for` or Ctrl-C).
    pub calls: u64,
    pub run_for: Option<Duration>,
    pub quiet: bool,
    /// Transfer every answered call to this number after `transfer_after`.
    pub transfer_to: Option<String>,
    pub transfer_after: Duration,
    /// Blind transfer, three-party call, or attended transfer.
    pub transfer_mode: super::ua::TransferMode,
    /// Answer calls at `listen` without registering (a phone on a fixed
    /// address: a 110 desk, a department's phone).
    pub no_register: bool,
    /// Real audio (RTP) on every call.
    pub audio: Option<AudioOpts>,
}

/// Options of `softphone call`.
#[derive(Debug, Clone)]
pub struct CallOpts {
    pub server: SocketAddr,
    pub listen: SocketAddr,
    pub number: String,
    pub from: String,
    /// Answer digest challenges as `from` (an agent dialling out).
    pub password: Option<String>,
    pub count: u64,
    /// Calls per second.
    pub rate: f64,
    /// Hang up this long after answer (`None` with `hangup_on_answer`: at once).
    pub hangup_after: Option<Duration>,
    /// Give up on a call not answered within this time.
    pub max_wait: Duration,
    pub quiet: bool,
    /// A call only counts as answered when a person took it (the caller's
    /// exit code): the gateway's own answer is not enough.
    pub expect_agent: bool,
    /// Real audio (RTP) on every call.
    pub audio: Option<AudioOpts>,
}

/// What a run did, printed at the end (as JSON with `--json`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub placed: u64,
    pub answered: u64,
    /// Caller: calls a person took (an agent, a parallel line's legacy seats,
    /// a department's phone; a 200 that does not say who answered counts).
    pub answered_by_agent: u64,
    /// Caller: calls the gateway answered itself, to play its greeting and
    /// hold music (an agent may have taken them after).
    pub answered_by_gateway: u64,
    /// Caller: mean time from the INVITE to a person's answer.
    pub mean_agent_answer_ms: u64,
    pub failed: u64,
    /// Final status codes of calls that were not answered.
    pub failures_by_code: BTreeMap<u16, u64>,
    /// Calls hung up by the far end after answer.
    pub ended_by_far_end: u64,
    pub mean_answer_ms: u64,
    /// Screen-pop headers seen on incoming calls (agent mode), by name.
    pub screen_pop_seen: BTreeMap<String, u64>,
    /// Transfers that finished, by the final sipfrag status (agent mode).
    pub transfers_by_code: BTreeMap<u16, u64>,
    pub elapsed_ms: u64,
    /// Per call, what its audio did (with `--audio`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<AudioReport>,
}

/// How long a stopping agent waits for its calls to hang up, and then for the
/// gateway to answer its unregistration.
const GOODBYE: Duration = Duration::from_secs(2);

/// Registers and answers calls until told to stop: after `--calls`, at
/// `--run-s`, or when `stop` completes (Ctrl-C). Either way the calls still up
/// are hung up (their audio reported), the binding is removed (`Expires: 0`)
/// and the summary covers everything that happened.
pub async fn agent(
    opts: AgentOpts,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Summary, SoftphoneError> {
    let cfg = UaConfig {
        local: opts.listen,
        server: opts.server,
        user: opts.user.clone(),
        password: opts.password.clone(),
        timers: TimerConfig::default(),
        answer_after: Some(opts.answer_after),
        talk_for: opts.talk_for,
        register_expires: 300,
        transfer_to: opts.transfer_to.clone(),
        transfer_after: opts.transfer_after,
        transfer_mode: opts.transfer_mode,
        rtp_ports: None,
    };
    let mut d = Driver::new(cfg, opts.audio.clone()).await?;
    let start = Instant::now();
    let end = opts.run_for.map(|r| start + r);
    if !opts.no_register {
        d.ua.register(start, 300);
        if !opts.quiet {
            eprintln!("registering {} at {}…", opts.user, opts.server);
        }
    } else if !opts.quiet {
        eprintln!("answering calls at {}", d.sock.local_addr()?);
    }
    let mut a = AgentRun {
        summary: Summary::default(),
        registered: opts.no_register,
        unregistered: false,
        quiet: opts.quiet,
        user: opts.user.clone(),
        server: opts.server,
    };
    let mut stop = std::pin::pin!(stop);
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e)
            || (opts.calls > 0 && a.summary.answered >= opts.calls && d.ua.active_calls() == 0)
        {
            break;
        }
        let stopped = tokio::select! {
            r = d.step(end.unwrap_or(now + Duration::from_secs(1))) => { r?; false }
            _ = &mut stop => true,
        };
        a.drain(&mut d).await?;
        if stopped {
            if !opts.quiet {
                eprintln!("stopping: hanging up and unregistering {}", opts.user);
            }
            break;
        }
    }
    if !a.registered {
        return Err(SoftphoneError::NeverRegistered(start.elapsed().as_secs()));
    }
    // Calls still up are hung up, so that their audio is reported.
    d.ua.hangup_all(Instant::now());
    let bye = Instant::now() + GOODBYE;
    while d.ua.active_calls() > 0 && Instant::now() < bye {
        d.step(bye).await?;
        a.drain(&mut d).await?;
    }
    d.stop_all_audio(&mut a.summary).await;
    if opts.no_register {
        a.summary.elapsed_ms = start.elapsed().as_millis() as u64;
        return Ok(a.summary);
    }
    // Unregister, and wait for the gateway's answer (a challenge is answered).
    d.ua.register(Instant::now(), 0);
    let bye = Instant::now() + GOODBYE;
    while !a.unregistered && Instant::now() < bye {
        d.step(bye).await?;
        a.drain(&mut d).await?;
    }
    if !opts.quiet {
        if a.unregistered {
            eprintln!("unregistered {} at {}", opts.user, opts.server);
        } else {
            eprintln!(
                "no answer to the unregistration of {} within {} s: the gateway keeps \
                 the binding until it expires",
                opts.user,
                GOODBYE.as_secs()
            );
        }
    }
    a.summary.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(a.summary)
}

/// What an agent run has seen so far.
#[derive(Debug)]
struct AgentRun {
    summary: Summary,
    registered: bool,
    /// The gateway confirmed the binding's removal (`Expires: 0`).
    unregistered: bool,
    quiet: bool,
    user: String,
    server: SocketAddr,
}

impl AgentRun {
    /// Takes in every event the UA has for us.
    async fn drain(&mut self, d: &mut Driver) -> Result<(), SoftphoneError> {
        while let Some(ev) = d.ua.poll_event() {
            let summary = &mut self.summary;
            match ev {
                UaEvent::Registered { expires: 0 } => self.unregistered = true,
                UaEvent::Registered { expires } => {
                    if !self.registered && !self.quiet {
                        eprintln!("registered {} at {} ({expires} s)", self.user, self.server);
                    }
                    self.registered = true;
                }
                // A failed unregistration leaves the binding to expire.
                UaEvent::RegisterFailed { .. } if self.registered => {}
                UaEvent::RegisterFailed { status } => return Err(SoftphoneError::Register(status)),
                UaEvent::Incoming {
                    call,
                    from,
                    screen_pop,
                } => {
                    summary.placed += 1;
                    if !self.quiet {
                        eprintln!("incoming call {call} from {from}");
                        for (name, value) in &screen_pop {
                            eprintln!("  {name}: {value}");
                        }
                    }
                    for (name, _) in screen_pop {
                        *summary.screen_pop_seen.entry(name).or_default() += 1;
                    }
                }
                UaEvent::Answered { .. } => summary.answered += 1,
                // Agents place no calls of their own.
                UaEvent::Refused { .. }
                | UaEvent::AnsweredBy { .. }
                | UaEvent::SurveyStarted { .. } => {}
                UaEvent::TransferDone { code, .. } => {
                    *summary.transfers_by_code.entry(code).or_default() += 1;
                }
                UaEvent::Media {
                    call,
                    local_port,
                    remote,
                } => d.start_audio(call, local_port, remote).await,
                UaEvent::Ended { call, code, by_us } => {
                    d.stop_audio(call, summary).await;
                    if code != 200 {
                        summary.failed += 1;
                        *summary.failures_by_code.entry(code).or_default() += 1;
                    } else if !by_us {
                        summary.ended_by_far_end += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Places `count` calls at `rate` per second and reports how they went.
pub async fn call(opts: CallOpts) -> Result<Summary, SoftphoneError> {
    let cfg = UaConfig {
        local: opts.listen,
        server: opts.server,
        user: opts.from.clone(),
        password: opts.password.clone(),
        timers: TimerConfig::default(),
        answer_after: None,
        talk_for: opts.hangup_after,
        register_expires: 0,
        transfer_to: None,
        transfer_after: Duration::ZERO,
        transfer_mode: Default::default(),
        rtp_ports: None,
    };
    let mut d = Driver::new(cfg, opts.audio.clone()).await?;
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(0.001));
    let mut summary = Summary::default();
    let mut started: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut answer_ms_total = 0u128;
    let mut agent_ms_total = 0u128;
    // When each call was placed, and the calls a person took.
    let mut placed_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut by_person: std::collections::BTreeSet<u64> = Default::default();
    let mut next = start;
    let mut last_progress = start;
    // The bar is redrawn in place on a terminal; elsewhere (a log, a pipe) only
    // its last state is written.
    let drawn = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while summary.placed < opts.count || d.ua.active_calls() > 0 {
        let now = Instant::now();
        if summary.placed < opts.count && now >= next {
            let key = d.ua.call(now, &opts.number);
            started.insert(key, now);
            placed_at.insert(key, now);
            summary.placed += 1;
            next += interval;
        }
        // Give up on calls that were never answered in time.
        let stale: Vec<u64> = started
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > opts.max_wait)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            started.remove(&k);
            d.ua.give_up(now, k);
        }
        let until = if summary.placed < opts.count {
            next
        } else {
            now + Duration::from_millis(200)
        };
        d.step(until).await?;
        while let Some(ev) = d.ua.poll_event() {
            match ev {
                UaEvent::Answered { call } => {
                    summary.answered += 1;
                    if let Some(t) = started.remove(&call) {
                        answer_ms_total += t.elapsed().as_millis();
                    }
                    if opts.hangup_after.is_none() {
                        d.ua.hangup(Instant::now(), call);
                    }
                }
                UaEvent::AnsweredBy { call, by } => {
                    if by == "gateway" {
                        summary.answered_by_gateway += 1;
                        d.set_segment(call, "gateway");
                    } else if by_person.insert(call) {
                        summary.answered_by_agent += 1;
                        if let Some(t) = placed_at.get(&call) {
                            agent_ms_total += t.elapsed().as_millis();
                        }
                        d.set_segment(call, segment_of(&by));
                    }
                }
                UaEvent::SurveyStarted { call } => d.set_segment(call, "survey"),
                UaEvent::Media {
                    call,
                    local_port,
                    remote,
                } => {
                    // Audio before any answer: the gateway's early media.
                    if !d.segments.contains_key(&call) {
                        d.set_segment(call, "early media");
                    }
                    d.start_audio(call, local_port, remote).await
                }
                UaEvent::Refused { call, status } => {
                    // Every refusal up to a screenful; the rest only in the summary.
                    if !opts.quiet && summary.failed < REFUSALS_SHOWN {
                        eprintln!("\rcall {call} refused: SIP/2.0 {status}");
                    } else if !opts.quiet && summary.failed == REFUSALS_SHOWN {
                        eprintln!("\r(further refusals are only counted in the summary)");
                    }
                }
                UaEvent::Ended { call, code, by_us } => {
                    d.stop_audio(call, &mut summary).await;
                    started.remove(&call);
                    placed_at.remove(&call);
                    if code != 200 {
                        summary.failed += 1;
                        *summary.failures_by_code.entry(code).or_default() += 1;
                    } else if !by_us {
                        summary.ended_by_far_end += 1;
                    }
                }
                _ => {}
            }
        }
        if !opts.quiet && drawn && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            eprint!("\r{}", progress(&summary, opts.count));
        }
    }
    if !opts.quiet {
        eprintln!("\r{}", progress(&summary, opts.count));
    }
    summary.mean_answer_ms = (answer_ms_total / u128::from(summary.answered.max(1))) as u64;
    summary.mean_agent_answer_ms =
        (agent_ms_total / u128::from(summary.answered_by_agent.max(1))) as u64;
    summary.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(summary)
}

/// The segment a call's audio enters when `by` answers it.
fn segment_of(by: &str) -> &'static str {
    match by {
        "agent" => "agent",
        "legacy" => "legacy seats",
        "direct" => "callee",
        _ => "far end",
    }
}

fn progress(s: &Summary, total: u64) -> String {
    let width = 30;
    let done = (s.answered + s.failed).min(total);
    let filled = (done * width / total.max(1)) as usize;
    format!(
        "[{}{}] {done}/{total} answered {} failed {}",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        s.answered,
        s.failed
    )
}
