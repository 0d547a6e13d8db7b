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
    assert_eq!(e.key, "ring_timout_s");
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
