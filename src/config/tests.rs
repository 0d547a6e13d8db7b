//! Every shipped config and dialplan loads; typos fail with file, line and key.

use std::path::Path;

use super::*;

fn shipped_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_config_and_its_dialplan_loads() {
    let configs = shipped_configs();
    assert!(configs.len() >= 2, "gateway.toml and lab.toml");
    for path in configs {
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let plan = crate::dialplan::load(&cfg.dialplan_dir()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.lookup("12345").is_some(),
            "{} routes 12345",
            path.display()
        );
    }
    let _ = Config::embedded();
}

#[test]
fn a_typo_in_any_key_is_refused_with_its_line() {
    let text = DEFAULT_TOML.replace("ring_timeout_s", "ring_timout_s");
    let e = Config::parse("gw.toml", &text).unwrap_err();
    assert_eq!(e.key, "calls.ring_timout_s");
    let expected = text
        .lines()
        .position(|l| l.starts_with("ring_timout_s"))
        .unwrap()
        + 1;
    assert_eq!(e.line, expected, "{e}");
}

#[test]
fn bad_values_are_refused() {
    let text = DEFAULT_TOML.replace("t1_ms = 500", "t1_ms = 0");
    let e = Config::parse("gw.toml", &text).unwrap_err();
    assert_eq!(e.key, "sip.timers.t1_ms");
    let text = DEFAULT_TOML.replace("127.0.0.1:5060", "localhost");
    assert!(Config::parse("gw.toml", &text).is_err());
}

/// Each mistake is reported at the line it is written on, with the key's full
/// path, whether serde or a later check finds it.
#[test]
fn a_bad_value_names_its_key_and_line() {
    let cases = [
        ("queued = \"answer\"", "queued = \"anwser\"", "media.queued"),
        (
            "max_concurrent = 2000",
            "max_concurrent = -5",
            "calls.max_concurrent",
        ),
        (
            "max_concurrent = 2000",
            "max_concurrent = \"lots\"",
            "calls.max_concurrent",
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1\"",
            "http.listen",
        ),
        ("target = 0.95", "target = 95", "sla.target"),
        (
            "min_expires_s = 60",
            "min_expires_s = 0",
            "registrar.min_expires_s",
        ),
        ("level = \"info\"", "level = \"verbose\"", "log.level"),
        (
            "ring_timeout_s = 60",
            "ring_timeout_s = 600",
            "calls.ring_timeout_s",
        ),
        (
            "role = \"supervisor\"",
            "role = \"root\"",
            "http.token[1].role",
        ),
        (
            "name = \"dev-admin\"",
            "name = \"dev-viewer\"",
            "http.token[2].name",
        ),
        (
            "sha256 = \"de72d648",
            "sha256 = \"dev-admin\" #",
            "http.token[2].sha256",
        ),
        (
            "sha256 = \"de72d648",
            "sha256 = \"6f6879ccfe4c11471c7ddb39e1a0a0469b2bc6371a29fc8496b12ade05ffa1e7\" #",
            "http.token[2].sha256",
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1:8080\"\nallowed_hosts = [\"http://x\"]",
            "http.allowed_hosts",
        ),
        ("tcp_idle_s = 10800", "tcp_idle_s = 3600", "sip.tcp_idle_s"),
        (
            "tcp_max_per_source = 64",
            "tcp_max_per_source = 5000",
            "sip.tcp_max_per_source",
        ),
        (
            "tcp_first_message_s = 10",
            "tcp_first_message_s = 0",
            "sip.tcp_first_message_s",
        ),
        (
            "tcp_max_connections = 4096",
            "tcp_max_connections = 2",
            "sip.tcp_max_connections",
        ),
        (
            "max_connections = 256",
            "max_connections = 3",
            "http.max_connections",
        ),
        (
            "max_per_source = 32",
            "max_per_source = 300",
            "http.max_per_source",
        ),
        (
            "header_timeout_s = 10",
            "header_timeout_s = 0",
            "http.header_timeout_s",
        ),
    ];
    for (from, to, key) in cases {
        assert!(DEFAULT_TOML.contains(from), "{from}");
        let text = DEFAULT_TOML.replacen(from, to, 1);
        let e = Config::parse("gw.toml", &text).unwrap_err();
        let first = to.lines().last().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let line = lines.iter().rposition(|l| l.starts_with(first)).unwrap() + 1;
        assert_eq!((e.key.as_str(), e.line), (key, line), "{to}: {e}");
    }
}

#[test]
fn http_keys_are_checked() {
    let cfg = Config::embedded();
    assert_eq!(cfg.http.tokens().0.len(), 3, "the dev tokens");
    assert_eq!(cfg.http.tokens().dev_tokens().len(), 3);
    assert!(cfg.http.hosts().allows("localhost:8080"));
    assert!(!cfg.http.hosts().allows("evil.example"));
    let text = DEFAULT_TOML.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\nallowed_hosts = []",
    );
    let e = Config::parse("gw.toml", &text).unwrap_err();
    assert_eq!(e.key, "http.allowed_hosts", "{e}");
    let text = DEFAULT_TOML.replace("# [http.tls]\n# cert", "[http.tls]\ncert");
    let e = Config::parse("gw.toml", &text).unwrap_err();
    assert_eq!(e.key, "http.tls.key", "a cert needs its key: {e}");
    let text = DEFAULT_TOML
        .replace("# [http.tls]\n# cert", "[http.tls]\ncert")
        .replace("# key = \"tls/key.pem\"", "key = \"tls/key.pem\"");
    let mut cfg = Config::parse("gw.toml", &text).unwrap();
    cfg.origin = Some(PathBuf::from("/etc/hotline/gateway.toml"));
    assert_eq!(
        cfg.tls_files(),
        Some((
            PathBuf::from("/etc/hotline/tls/cert.pem"),
            PathBuf::from("/etc/hotline/tls/key.pem")
        ))
    );
}

#[test]
fn log_levels_and_directives_are_accepted_and_a_bare_word_is_not() {
    for ok in [
        "info",
        "WARN",
        "hotline_gateway=debug,info",
        "off",
        "sqlx=warn, info",
    ] {
        assert!(super::check_log_level(ok).is_ok(), "{ok}");
    }
    for bad in ["verbose", "", "info,", "x=loud", "=debug"] {
        assert!(super::check_log_level(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn tcp_limits_have_defaults_and_the_idle_time_outlasts_calls_and_registrations() {
    let text: String = DEFAULT_TOML
        .lines()
        .filter(|l| !l.starts_with("tcp_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = Config::parse("gw.toml", &text).unwrap();
    assert_eq!(cfg.sip.tcp_max_connections, 4096);
    assert_eq!(
        cfg.http.limits(),
        crate::http::Limits::default(),
        "the shipped [http] caps are the defaults"
    );
    assert_eq!(cfg.sip.tcp_max_per_source, 64);
    assert_eq!(cfg.sip.tcp_first_message_s, 10);
    assert_eq!(cfg.sip.tcp_idle_s, 10_800);
    let longer_calls = DEFAULT_TOML.replace("max_duration_s = 7200", "max_duration_s = 20000");
    let e = Config::parse("gw.toml", &longer_calls).unwrap_err();
    assert_eq!(e.key, "sip.tcp_idle_s");
    assert!(e.message.contains("20000 s"), "{e}");
}

#[test]
fn stranger_limits_that_cannot_work_are_refused_at_their_key() {
    for (from, to, key) in [
        (
            "per_source_per_s = 20",
            "per_source_per_s = -1",
            "sip.strangers.per_source_per_s",
        ),
        (
            "total_per_s = 2000",
            "total_per_s = nan",
            "sip.strangers.total_per_s",
        ),
        (
            "per_source_burst = 100",
            "per_source_burst = 0.5",
            "sip.strangers.per_source_burst",
        ),
    ] {
        assert!(DEFAULT_TOML.contains(from), "{from}");
        let e = Config::parse("gw.toml", &DEFAULT_TOML.replace(from, to)).unwrap_err();
        assert_eq!(e.key, key, "{to}: {e}");
    }
    let text = DEFAULT_TOML.replace("per_source_burst = 100", "per_source_burst = 0");
    let cfg = Config::parse("gw.toml", &text).expect("0 refuses strangers outright");
    assert_eq!(cfg.sip.strangers.to_guard().per_source_burst, 0.0);
}
