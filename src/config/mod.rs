//! Typed configuration: `config/*.toml`, parsed with unknown keys refused, then
//! [`Config::validate`]d. Starting anything is the caller's job.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::registrar::{Algorithm, RegistrarConfig, RegistrarError};
use crate::util::toml_where::KeyLines;

mod cluster;
mod exposure;
mod http;
mod media;
mod sip;
pub use cluster::ClusterSection;
pub use exposure::{Exposure, Listens, cleartext_urls, read_dialplan_files, shipped_password};
pub use http::{ClientSection, HttpConfig, TlsSection, TokenSection};
pub use media::{MediaSection, QueuedMode};
pub use sip::{SipConfig, StrangersConfig, TimersConfig};

/// The default configuration, embedded so the binary runs from anywhere.
pub const DEFAULT_TOML: &str = include_str!("../../config/gateway.toml");

/// A configuration error naming the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", crate::util::toml_where::place(.file, *.line, .key))]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub calls: CallsConfig,
    pub http: HttpConfig,
    pub dialplan: DialplanConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub registrar: RegistrarSection,
    #[serde(default)]
    pub store: StoreSection,
    /// Answer-rate target, windows' rules and the breach webhook.
    #[serde(default)]
    pub sla: crate::sla::SlaConfig,
    /// Work-order stubs: the ticket system's URL, credentials and retries.
    #[serde(default)]
    pub tickets: crate::tickets::deliver::TicketsConfig,
    /// The RTP relay, prompts, survey and recording.
    #[serde(default)]
    pub media: MediaSection,
    /// Several nodes behind a SIP proxy, sharing PostgreSQL (docs/cluster.md).
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    /// Where the file was read from; relative paths are resolved against its folder.
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// Concurrent calls above which new INVITEs get `503`.
    pub max_concurrent: usize,
    /// `Retry-After` seconds sent with that `503`.
    pub retry_after_s: u32,
    /// How long a ringing callee may take to answer.
    pub ring_timeout_s: u64,
    /// Longest call; both legs get BYE after it.
    pub max_duration_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialplanConfig {
    /// Folder of `*.toml` line files, relative to the config file's folder.
    pub dir: PathBuf,
}

/// `[registrar]`: how agents' softphones authenticate. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarSection {
    pub realm: String,
    /// Offered in this order: `["SHA-256", "MD5"]` (RFC 8760 order) by default.
    pub algorithms: Vec<String>,
    pub nonce_ttl_s: u64,
    pub min_expires_s: u32,
    pub max_expires_s: u32,
    pub default_expires_s: u32,
    pub max_contacts: usize,
    /// Failed attempts per account from one source address within
    /// `failure_window_s`; one more refuses that account to that source.
    pub max_failures: u32,
    /// Failed attempts per source address across accounts; one more refuses it.
    pub max_failures_per_source: u32,
    pub failure_window_s: u64,
    pub block_for_s: u64,
    /// Keepalive OPTIONS to each registered contact this often (0: never); an
    /// agent whose phones all leave one unanswered is `unreachable`.
    pub qualify_every_s: u64,
    /// How long a keepalive OPTIONS may take to be answered.
    pub qualify_timeout_ms: u64,
    /// Most keepalive OPTIONS in flight at once.
    pub qualify_max_outstanding: usize,
    /// Proxies in front of the gateway (Kamailio, an SBC) whose REGISTERs may
    /// carry Path (RFC 3327): agents behind them are rung through them, and
    /// their Contacts may name hosts other than the proxy. Empty by default.
    pub path_from: Vec<std::net::IpAddr>,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        let d = RegistrarConfig::default();
        RegistrarSection {
            realm: d.realm,
            algorithms: d
                .algorithms
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
            nonce_ttl_s: d.nonce_ttl.as_secs(),
            min_expires_s: d.min_expires,
            max_expires_s: d.max_expires,
            default_expires_s: d.default_expires,
            max_contacts: d.max_contacts,
            max_failures: d.max_failures,
            max_failures_per_source: d.max_failures_per_source,
            failure_window_s: d.failure_window.as_secs(),
            block_for_s: d.block_for.as_secs(),
            qualify_every_s: d.qualify.every.as_secs(),
            qualify_timeout_ms: d.qualify.timeout.as_millis() as u64,
            qualify_max_outstanding: d.qualify.max_outstanding,
            path_from: d.path_from,
        }
    }
}

impl RegistrarSection {
    /// The registrar's own configuration, checked.
    pub fn to_registrar(&self) -> Result<RegistrarConfig, (String, String)> {
        let mut algorithms = Vec::new();
        for a in &self.algorithms {
            match a.to_ascii_uppercase().as_str() {
                "SHA-256" => algorithms.push(Algorithm::Sha256),
                "MD5" => algorithms.push(Algorithm::Md5),
                other => {
                    return Err((
                        "registrar.algorithms".into(),
                        format!("{other:?} is not SHA-256 or MD5"),
                    ));
                }
            }
        }
        let cfg = RegistrarConfig {
            realm: self.realm.clone(),
            nonce_ttl: Duration::from_secs(self.nonce_ttl_s),
            min_expires: self.min_expires_s,
            max_expires: self.max_expires_s,
            default_expires: self.default_expires_s,
            max_contacts: self.max_contacts,
            max_failures: self.max_failures,
            max_failures_per_source: self.max_failures_per_source,
            failure_window: Duration::from_secs(self.failure_window_s),
            block_for: Duration::from_secs(self.block_for_s),
            algorithms,
            qualify: crate::registrar::QualifyConfig {
                every: Duration::from_secs(self.qualify_every_s),
                timeout: Duration::from_millis(self.qualify_timeout_ms),
                max_outstanding: self.qualify_max_outstanding,
            },
            path_from: self.path_from.clone(),
        };
        cfg.validate().map_err(|e| match e {
            RegistrarError::Config { key, reason } => {
                // The registrar's durations are written with their unit here.
                let written = match key {
                    "min_expires" | "max_expires" | "default_expires" | "nonce_ttl"
                    | "failure_window" | "block_for" => format!("{key}_s"),
                    "qualify_timeout" => "qualify_timeout_ms".into(),
                    other => other.to_string(),
                };
                (format!("registrar.{written}"), reason.to_string())
            }
            other => ("registrar".into(), other.to_string()),
        })?;
        Ok(cfg)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `hotline_gateway=debug`…); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// `[store]`: where call records go, and what happens when the database is slower
/// than the calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite:PATH` (relative paths from the config file's folder) or
    /// `postgres://…`; `none` keeps no records (figures then start from zero at
    /// every restart).
    pub database: String,
    /// Finished calls waiting for the writer. When full, new calls get `503`
    /// (reason `store.backlog`) until half of it has drained; records that do not
    /// fit are held in memory (up to ten times this), see `reporting/`.
    pub queue_capacity: usize,
    /// Most records written per transaction.
    pub batch_max: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            database: "sqlite:data/hotline.db".into(),
            queue_capacity: 20_000,
            batch_max: 1000,
        }
    }
}

impl Config {
    /// Parses and validates a config text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = KeyLines::new(text).locate(&e);
            ConfigError {
                file: file.into(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate(file, text)?;
        Ok(cfg)
    }

    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        let mut cfg = Config::parse(&path.display().to_string(), &text)?;
        cfg.origin = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// The embedded defaults (`config/gateway.toml` at build time).
    pub fn embedded() -> Config {
        Config::parse("<embedded gateway.toml>", DEFAULT_TOML).expect("embedded config is valid")
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        // Read for the one error reported, not on every load.
        let err = |key: &str, message: &str| ConfigError {
            file: file.into(),
            line: KeyLines::new(text).line_or_enclosing(key),
            key: key.into(),
            message: message.into(),
        };
        let t = &self.sip.timers;
        if t.t1_ms == 0 || t.t2_ms < t.t1_ms || t.t4_ms == 0 {
            return Err(err(
                "sip.timers.t1_ms",
                "need 0 < t1_ms <= t2_ms and t4_ms > 0",
            ));
        }
        if !self.sip.udp && !self.sip.tcp {
            return Err(err("sip.udp", "enable at least one of udp and tcp"));
        }
        if self.sip.max_message_bytes < 1024 {
            return Err(err("sip.max_message_bytes", "must be at least 1024"));
        }
        if let Err((key, reason)) = self.check_strangers() {
            return Err(err(key, reason));
        }
        if let Err((key, reason)) = self.check_tcp() {
            return Err(err(key, &reason));
        }
        if self.calls.max_concurrent == 0 {
            return Err(err("calls.max_concurrent", "must be at least 1"));
        }
        if self.calls.ring_timeout_s == 0 || self.calls.max_duration_s == 0 {
            return Err(err("calls.ring_timeout_s", "timeouts must be positive"));
        }
        if self.calls.ring_timeout_s >= 180 {
            return Err(err(
                "calls.ring_timeout_s",
                "must be under 180 s (Timer C ends an INVITE left in Proceeding at 3 min)",
            ));
        }
        if let Err(reason) = check_log_level(&self.log.level) {
            return Err(err("log.level", &reason));
        }
        if let Err((key, reason)) = self.registrar.to_registrar() {
            return Err(err(&key, &reason));
        }
        // These sections' reasons begin with the key they are about.
        let keyed = |section: &str, reason: String| {
            let key = format!("{section}.{}", reason.split(':').next().unwrap_or(""));
            err(&key, &reason)
        };
        if let Err(reason) = self.sla.validate() {
            return Err(keyed("sla", reason));
        }
        if let Err(reason) = self.tickets.validate() {
            return Err(keyed("tickets", reason));
        }
        if let Err((key, reason)) = self.media.validate() {
            return Err(err(&key, &reason));
        }
        if let Err((key, reason)) = self.http.validate() {
            return Err(err(&key, &reason));
        }
        let db = &self.store.database;
        if db != "none"
            && !db.starts_with("sqlite:")
            && !db.starts_with("postgres://")
            && !db.starts_with("postgresql://")
        {
            return Err(err(
                "store.database",
                "use sqlite:PATH, postgres://… or none",
            ));
        }
        if let Some(c) = &self.cluster
            && let Err((key, reason)) = c.validate(db)
        {
            return Err(err(key, &reason));
        }
        if self.cluster.is_some() {
            let at = self.advertise();
            if at.ip().is_unspecified() || at.port() == 0 {
                return Err(err(
                    "sip.advertise",
                    &format!(
                        "a cluster node is reached by its peers at one address, and {at} is none: \
                         set [sip] advertise = \"IP:PORT\" (or listen on one address and port)"
                    ),
                ));
            }
        }
        if self.store.queue_capacity < 2 || self.store.batch_max == 0 {
            return Err(err(
                "store.queue_capacity",
                "queue_capacity must be at least 2 and batch_max at least 1",
            ));
        }
        Ok(())
    }

    /// The prompt folder, resolved against the config file's folder.
    pub fn prompts_dir(&self) -> PathBuf {
        self.resolve(&self.media.prompts)
    }

    /// The recordings folder, resolved against the config file's folder.
    pub fn recordings_dir(&self) -> PathBuf {
        self.resolve(&self.media.recordings)
    }

    /// The dialplan folder, resolved against the config file's folder.
    pub fn dialplan_dir(&self) -> PathBuf {
        self.resolve(&self.dialplan.dir)
    }

    /// [`Config::dialplan_dir`], checked readable: the error names the config
    /// file, line and key the path came from, and where a relative one resolved.
    pub fn readable_dialplan_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = self.dialplan_dir();
        let e = match std::fs::read_dir(&dir) {
            Ok(_) => return Ok(dir),
            Err(e) => e,
        };
        let file = self
            .origin
            .as_deref()
            .unwrap_or(Path::new("(built-in config)"));
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let line = KeyLines::new(&text).line("dialplan.dir").unwrap_or(0);
        let relative = if self.dialplan.dir.is_relative() {
            format!(
                "; a relative path resolves against the config file's folder ({})",
                file.parent()
                    .map_or(".".into(), |p| p.display().to_string())
            )
        } else {
            String::new()
        };
        Err(ConfigError {
            file: file.display().to_string(),
            line,
            key: "dialplan.dir".into(),
            message: format!(
                "cannot read the dialplan directory {:?} ({}): {e}{relative}",
                self.dialplan.dir,
                dir.display()
            ),
        })
    }

    /// `[http.tls]`'s certificate and key files, resolved against the config
    /// file's folder.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let t = self.http.tls.as_ref()?;
        Some((self.resolve(&t.cert), self.resolve(&t.key)))
    }

    /// `[http.client] ca_file`, resolved against the config file's folder.
    pub fn client_ca_file(&self) -> Option<PathBuf> {
        self.http.client.ca_file.as_ref().map(|p| self.resolve(p))
    }

    /// The database URL, a SQLite path resolved against the config file's folder.
    pub fn database_url(&self) -> Option<String> {
        let db = &self.store.database;
        if db == "none" {
            return None;
        }
        match db.strip_prefix("sqlite:") {
            Some(path) if !path.starts_with("//") && path != ":memory:" => Some(format!(
                "sqlite:{}",
                self.resolve(Path::new(path)).display()
            )),
            _ => Some(db.clone()),
        }
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        match (&self.origin, p.is_relative()) {
            (Some(origin), true) => tidy(&origin.parent().unwrap_or(Path::new(".")).join(p)),
            _ => p.to_path_buf(),
        }
    }

    /// The sip timers as durations.
    pub fn timers(&self) -> crate::sip::transaction::timer::TimerConfig {
        let t = &self.sip.timers;
        crate::sip::transaction::timer::TimerConfig {
            t1: Duration::from_millis(t.t1_ms),
            t2: Duration::from_millis(t.t2_ms),
            t4: Duration::from_millis(t.t4_ms),
        }
    }

    /// The address peers should use to reach us.
    pub fn advertise(&self) -> SocketAddr {
        self.sip.advertise.unwrap_or(self.sip.listen)
    }
}

/// `config/../dialplans` → `dialplans`: a `..` cancels the folder written before
/// it, so that paths in messages read as the user would write them. Not after a
/// symbolic link: there `..` is the link target's parent, and is kept.
fn tidy(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match (c, out.last()) {
            (Component::CurDir, _) if !out.is_empty() => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                let so_far: PathBuf = out.iter().collect();
                let link = std::fs::symlink_metadata(&so_far).is_ok_and(|m| m.is_symlink());
                if link {
                    out.push(c);
                } else {
                    out.pop();
                }
            }
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// A log filter: levels, or `target=level` directives, comma-separated. A bare
/// word that is no level would be taken for a target name and silence every
/// other log, so it is refused.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |w: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w.trim()));
    for directive in level.split(',') {
        let ok = match directive.rsplit_once('=') {
            Some((target, lvl)) => !target.trim().is_empty() && is_level(lvl),
            None => is_level(directive),
        };
        if !ok {
            return Err(format!(
                "{directive:?} is not a level ({}) or target=level",
                LEVELS.join(", ")
            ));
        }
    }
    level
        .parse::<tracing_subscriber::EnvFilter>()
        .map(|_| ())
        .map_err(|e| format!("not a valid log filter: {e}"))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tidy_tests {
    use super::tidy;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_parent_step_cancels_the_folder_before_it() {
        let t = |p: &str| tidy(Path::new(p));
        assert_eq!(
            t("config/../dialplans/default"),
            PathBuf::from("dialplans/default")
        );
        assert_eq!(t("./config/../data"), PathBuf::from("./data"));
        assert_eq!(t("../x/../y"), PathBuf::from("../y"));
        assert_eq!(t("/etc/hotline/../lib"), PathBuf::from("/etc/lib"));
        assert_eq!(t("config/.."), PathBuf::from("."));
    }
}
