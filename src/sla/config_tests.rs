//! `[sla]` configuration: defaults, unknown keys refused, ranges checked.

use super::SlaConfig;

#[test]
fn defaults_are_the_design_figures() {
    let cfg = SlaConfig::default();
    assert_eq!(cfg.target, 0.95);
    assert_eq!(
        (cfg.answer_within_s, cfg.short_abandon_s, cfg.min_offered),
        (15, 5, 20)
    );
    assert_eq!(cfg.recover_margin, 0.01);
    assert_eq!(cfg.webhook, None);
    assert_eq!(cfg.validate(), Ok(()));
    // An empty section is the defaults.
    assert_eq!(toml::from_str::<SlaConfig>("").unwrap(), cfg);
}

#[test]
fn a_partial_section_keeps_the_other_defaults() {
    let cfg: SlaConfig =
        toml::from_str("target = 0.9\nwebhook = \"http://127.0.0.1:9000/sla\"").unwrap();
    assert_eq!(cfg.target, 0.9);
    assert_eq!(cfg.webhook.as_deref(), Some("http://127.0.0.1:9000/sla"));
    assert_eq!(cfg.answer_within_s, 15);
    assert_eq!(cfg.validate(), Ok(()));
}

#[test]
fn a_typo_is_refused() {
    let err = toml::from_str::<SlaConfig>("answer_within = 15").unwrap_err();
    assert!(err.to_string().contains("answer_within"), "{err}");
}

#[test]
fn out_of_range_values_name_their_key() {
    let table: [(&str, SlaConfig); 10] = [
        (
            "target",
            SlaConfig {
                target: 0.0,
                ..SlaConfig::default()
            },
        ),
        (
            "target",
            SlaConfig {
                target: 1.01,
                ..SlaConfig::default()
            },
        ),
        (
            "target",
            SlaConfig {
                target: f64::NAN,
                ..SlaConfig::default()
            },
        ),
        (
            "recover_margin",
            SlaConfig {
                recover_margin: -0.01,
                ..SlaConfig::default()
            },
        ),
        (
            "recover_margin",
            SlaConfig {
                recover_margin: 0.5,
                ..SlaConfig::default()
            },
        ),
        (
            "recover_margin",
            SlaConfig {
                target: 1.0,
                ..SlaConfig::default()
            },
        ),
        (
            "answer_within_s",
            SlaConfig {
                answer_within_s: 0,
                ..SlaConfig::default()
            },
        ),
        (
            "short_abandon_s",
            SlaConfig {
                short_abandon_s: 3601,
                ..SlaConfig::default()
            },
        ),
        (
            "min_offered",
            SlaConfig {
                min_offered: 0,
                ..SlaConfig::default()
            },
        ),
        (
            "webhook",
            SlaConfig {
                webhook: Some("ops.example".into()),
                ..SlaConfig::default()
            },
        ),
    ];
    for (key, cfg) in table {
        let err = cfg.validate().unwrap_err();
        assert!(err.starts_with(key), "{key}: {err}");
    }
    let full = SlaConfig {
        target: 1.0,
        recover_margin: 0.0,
        ..SlaConfig::default()
    };
    assert_eq!(full.validate(), Ok(()));
}
