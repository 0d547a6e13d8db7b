//! Table-driven routing: every mode, every source of the called number, the
//! calendar and hours boundaries, effective dates, and untrusted sources.

use std::net::IpAddr;

use super::number::OriginalSource;
use super::time::{local_time, parse_rfc3339};
use super::{CallFacts, Dialplan, Outcome, parse_sources};

const PLAN: &str = r#"
[[trunk]]
name = "carrier"
kind = "carrier"
sources = ["127.0.0.0/8"]

[[trunk]]
name = "legacy"
kind = "legacy"
sources = ["10.9.9.9"]
target = "sip:10.9.9.9:5060"

[[queue]]
name = "main"
static_members = ["sip:127.0.0.1:5070"]

[[line]]
number = "12345"
name = "hotline"
queue = "main"

[[line]]
number = "035112345"
name = "Taiyuan 12345"
queue = "main"

[[line]]
number = "12315"
name = "forwarded"
mode = "call_forwarding"
queue = "main"

[[line]]
number = "03514040000"
name = "merged department"
mode = "direct_merge"
queue = "main"
transfer_number = "03514040001"
effective_from = "2026-03-01"

[[line]]
number = "12333"
name = "parallel"
mode = "parallel"
queue = "main"
legacy_trunk = "legacy"
ring_time_s = 20
hours = ["workdays 08:30-17:30"]

[[transfer]]
number = "03514040001"
name = "department"
target = "sip:127.0.0.1:5080"

[[calendar]]
year = 2026
holidays = ["2026-10-01", "2026-10-02"]
workdays = ["2026-10-10"]
"#;

fn plan() -> Dialplan {
    parse_sources(&[("plan.toml".into(), PLAN.into())]).unwrap()
}

fn facts(
    ruri: Option<&str>,
    to: Option<&str>,
    orig: Option<&str>,
    source: &str,
    at: &str,
) -> CallFacts {
    CallFacts {
        request_uri: ruri.map(str::to_string),
        to: to.map(str::to_string),
        original: orig.map(|o| (o.to_string(), OriginalSource::Diversion)),
        source: source.parse::<IpAddr>().unwrap(),
        from_agent: false,
        at: local_time(parse_rfc3339(at).unwrap(), 480),
    }
}

/// (Request-URI, To, Diversion, source, time, expected line, expected route).
type Case<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
);

/// (Request-URI, To, Diversion, source, time) → (line, route)
#[test]
fn routing_table() {
    let p = plan();
    let workday = "2026-10-09T10:00:00+08:00"; // a Friday
    let cases: &[Case] = &[
        (
            Some("12345"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12345"),
            "queue:main",
        ),
        (
            Some("+8612345"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12345"),
            "queue:main",
        ),
        (
            Some("008612345"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12345"),
            "queue:main",
        ),
        // Another city's 12345 falls back; Taiyuan's own line when dialled with 0351.
        (
            Some("075512345"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12345"),
            "queue:main",
        ),
        (
            Some("035112345"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("035112345"),
            "queue:main",
        ),
        // No number in the Request-URI: the To header decides.
        (
            None,
            Some("12315"),
            None,
            "127.0.0.1",
            workday,
            Some("12315"),
            "queue:main",
        ),
        // Forwarded by the carrier to 12345: Diversion names the line.
        (
            Some("12345"),
            None,
            Some("12315"),
            "127.0.0.1",
            workday,
            Some("12315"),
            "queue:main",
        ),
        (
            Some("12315"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12315"),
            "queue:main",
        ),
        (
            Some("03514040000"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("03514040000"),
            "queue:main",
        ),
        // Not yet in service.
        (
            Some("03514040000"),
            None,
            None,
            "127.0.0.1",
            "2026-02-27T10:00:00+08:00",
            Some("03514040000"),
            "reject 404 (dialplan.line_not_in_service)",
        ),
        // Parallel: open hours → legacy first; boundaries; holiday; make-up Saturday.
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            workday,
            Some("12333"),
            "legacy",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-09T08:29:00+08:00",
            Some("12333"),
            "queue:main",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-09T08:30:00+08:00",
            Some("12333"),
            "legacy",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-09T17:29:00+08:00",
            Some("12333"),
            "legacy",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-09T17:30:00+08:00",
            Some("12333"),
            "queue:main",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-01T10:00:00+08:00",
            Some("12333"),
            "queue:main",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-10T10:00:00+08:00",
            Some("12333"),
            "legacy",
        ),
        (
            Some("12333"),
            None,
            None,
            "127.0.0.1",
            "2026-10-11T10:00:00+08:00",
            Some("12333"),
            "queue:main",
        ),
        // Toll fraud and strangers.
        (
            Some("0044207946000"),
            None,
            None,
            "127.0.0.1",
            workday,
            None,
            "reject 404 (dialplan.no_route)",
        ),
        (
            Some("16800000000"),
            Some("12345"),
            None,
            "127.0.0.1",
            workday,
            None,
            "reject 404 (dialplan.no_route)",
        ),
        (
            Some("12345"),
            None,
            None,
            "192.0.2.1",
            workday,
            None,
            "reject 403 (dialplan.untrusted_source)",
        ),
    ];
    for (ruri, to, orig, src, at, line, route) in cases {
        let d = p.explain(&facts(*ruri, *to, *orig, src, at));
        let v = d.view();
        assert_eq!(
            v.line.as_deref(),
            *line,
            "{ruri:?} {to:?} {orig:?} at {at}: {:?}",
            v.why
        );
        let got = match &d.outcome {
            Outcome::Legacy { .. } => "legacy".to_string(),
            _ => v.route.clone(),
        };
        assert_eq!(&got, route, "{ruri:?} {to:?} {orig:?} at {at}: {:?}", v.why);
    }
}

#[test]
fn a_transfer_number_missing_from_the_directory_is_an_error() {
    let bad = PLAN.replace(
        "[[transfer]]\nnumber = \"03514040001\"",
        "[[transfer]]\nnumber = \"03514040009\"",
    );
    let errors = super::check_sources(&[("plan.toml".into(), bad)]).unwrap_err();
    assert!(
        errors.iter().any(|e| e.key.ends_with("transfer_number")),
        "{errors:?}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let bad = PLAN
        .replace("ring_time_s = 20", "ring_time_s = 0")
        .replace("number = \"12315\"", "number = \"123x5\"");
    let errors = super::check_sources(&[("plan.toml".into(), bad)]).unwrap_err();
    assert!(errors.len() >= 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.file == "plan.toml" || e.file == "-")
    );
}

#[test]
fn the_time_zone_can_be_configured() {
    let p = parse_sources(&[(
        "plan.toml".into(),
        format!("utc_offset = \"+09:00\"\n{PLAN}"),
    )])
    .unwrap();
    assert_eq!(p.utc_offset_minutes, 540);
    assert_eq!(plan().utc_offset_minutes, 480, "Asia/Shanghai by default");
    let bad = super::check_sources(&[("plan.toml".into(), format!("utc_offset = \"8h\"\n{PLAN}"))]);
    assert!(bad.is_err_and(|e| e[0].key == "utc_offset"));
}

#[test]
fn bad_records_in_one_file_are_each_reported_with_their_line() {
    let bad = PLAN
        .replace("mode = \"call_forwarding\"", "mode = \"call_forward\"")
        .replace("ring_time_s = 20", "ring_tme_s = 20");
    let errors = super::check_sources(&[("plan.toml".into(), bad.clone())]).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"line[2].mode"), "{errors:?}");
    assert!(keys.contains(&"line[4].ring_tme_s"), "{errors:?}");
    for e in &errors {
        let text = bad.lines().nth(e.line - 1).unwrap();
        let key = e.key.rsplit('.').next().unwrap();
        assert!(text.contains(key), "{e}: line {} is {text:?}", e.line);
    }
}

#[test]
fn the_embedded_example_province_loads() {
    let plan = super::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.lookup("12333").is_some());
    // Every file of the shipped folder is embedded.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/default");
    let shipped = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(super::DEFAULT_FILES.len(), shipped);
}

#[test]
fn a_direct_merged_line_is_by_default_its_departments_transfer_number() {
    let plan = super::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    let line = plan.lookup("03514040000").expect("the example's 住建 line");
    assert_eq!(line.transfer_number.as_deref(), Some("03514040000"));
    assert_eq!(
        line.queue(),
        Some("hotline"),
        "a citizen dialling it reaches 12345"
    );
    let entry = plan.transfer("03514040000").expect("in the directory");
    assert_eq!(
        entry.target.addr.port(),
        5080,
        "an agent's transfer reaches the department's trunk"
    );
}

/// The keys and lines of mistakes serde finds and of mistakes found by later
/// checks: always the key's own line, the record's index, and the key's name
/// (never the bad value), and no second error for a record that was refused.
#[test]
fn each_mistake_is_reported_at_its_own_key_and_line() {
    let text = "\
[[queue]]
name = \"q\"
agents = [\"1001\"]
overflow = \"queue:nowhere\"

[[agent]]
id = \"1001\"
name = \"A\"
password = \"secret-pw\"

[[agent]]
id = \"1001\"
name = \"B\"
password = \"other-pw\"

[[line]]
number = \"12345\"
name = \"hotline\"
queue = \"q\"

[[line]]
number = \"12346\"
name = \"second\"
deadline_workdays = 0
queue = \"q\"

[[line]]
number = \"12345\"
name = \"copy\"
queue = \"q\"
";
    let found = |errors: &[super::DialplanError]| -> Vec<(usize, String)> {
        errors.iter().map(|e| (e.line, e.key.clone())).collect()
    };
    let errors = super::check_sources(&[("d.toml".into(), text.into())]).unwrap_err();
    assert_eq!(
        found(&errors),
        vec![
            (24, "line[1].deadline_workdays".to_string()),
            (28, "line[2].number".to_string()),
            (12, "agent[1].id".to_string()),
            (4, "queue[0].overflow".to_string()),
        ],
        "{errors:#?}"
    );
    assert!(
        errors[1].message.contains("already defined at d.toml:17"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].message.contains("already defined at d.toml:7"),
        "{}",
        errors[2]
    );

    // A value serde refuses is named by its key, in its record.
    let bad = text.replace("deadline_workdays = 0", "deadline_workdays = -7");
    let errors = super::check_sources(&[("d.toml".into(), bad)]).unwrap_err();
    assert_eq!(
        found(&errors),
        vec![(24, "line[1].deadline_workdays".to_string())]
    );

    // A refused queue is reported once: not again by the lines that use it.
    let bad = text.replace("overflow = \"queue:nowhere\"", "overflow = \"queue:q\"");
    let errors = super::check_sources(&[("d.toml".into(), bad)]).unwrap_err();
    let keys: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
    assert!(
        keys.contains(&"queue[0].overflow".to_string()),
        "{errors:#?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with(".queue")), "{errors:#?}");
}

#[test]
fn a_misspelt_table_name_is_one_error_however_many_records_use_it() {
    let text = "[[lines]]\nnumber = \"1\"\n\n[[lines]]\nnumber = \"2\"\n\n[[queue]]\nname = \"q\"\nstrategy = \"rondrobin\"\n";
    let errors = super::check_sources(&[("d.toml".into(), text.into())]).unwrap_err();
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        found,
        vec![(1, "lines"), (9, "queue[0].strategy")],
        "{errors:#?}"
    );
}

#[test]
fn a_directory_number_can_have_one_entry_per_area_and_a_default() {
    let text = |extra: &str| {
        format!(
            "[[transfer]]\nnumber = \"110\"\nname = \"province\"\ntarget = \"sip:110@192.0.2.1\"\n\n\
[[transfer]]\nnumber = \"110\"\nname = \"Taiyuan\"\ntarget = \"sip:110@192.0.2.2\"\nareas = [\"0351\"]\n\n\
[[transfer]]\nnumber = \"110\"\nname = \"Datong\"\ntarget = \"sip:110@192.0.2.3\"\nareas = [\"0352\"]\nfrom = \"line\"\n{extra}"
        )
    };
    let p = parse_sources(&[("t.toml".into(), text(""))]).unwrap();
    let name = |areas: &[&str]| p.transfer_for("110", areas).map(|t| t.name.clone());
    assert_eq!(name(&["0351"]).as_deref(), Some("Taiyuan"));
    assert_eq!(
        name(&["0999", "0352"]).as_deref(),
        Some("Datong"),
        "then the dialled area"
    );
    assert_eq!(
        name(&["0999"]).as_deref(),
        Some("province"),
        "else the default"
    );
    assert_eq!(name(&[]).as_deref(), Some("province"));
    assert!(p.transfer_for("110", &["0352"]).unwrap().from_line);
    assert!(!p.transfer("110").unwrap().from_line);
    assert!(p.transfer_for("119", &["0351"]).is_none());
    for (extra, key, what) in [
        (
            "\n[[transfer]]\nnumber = \"110\"\nname = \"x\"\ntarget = \"sip:192.0.2.9\"\nareas = [\"0351\"]\n",
            "number",
            "area 0351",
        ),
        (
            "\n[[transfer]]\nnumber = \"110\"\nname = \"x\"\ntarget = \"sip:192.0.2.9\"\n",
            "number",
            "default entry",
        ),
        (
            "\n[[transfer]]\nnumber = \"119\"\nname = \"x\"\ntarget = \"sip:192.0.2.9\"\nareas = [\"351\"]\n",
            "areas",
            "no area code",
        ),
        (
            "\n[[transfer]]\nnumber = \"119\"\nname = \"x\"\ntarget = \"sip:192.0.2.9\"\nfrom = \"agent\"\n",
            "from",
            "\"caller\" or \"line\"",
        ),
    ] {
        let errors = super::check_sources(&[("t.toml".into(), text(extra))]).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.key.ends_with(key) && e.message.contains(what)),
            "{key}: {errors:?}"
        );
    }
    // Listed only per area: a caller from elsewhere still reaches one.
    let only = "[[transfer]]\nnumber = \"120\"\nname = \"Taiyuan\"\ntarget = \"sip:120@192.0.2.2\"\nareas = [\"0351\"]\n";
    let p = parse_sources(&[("t.toml".into(), only.into())]).unwrap();
    assert_eq!(p.transfer_for("120", &["0999"]).unwrap().name, "Taiyuan");
}
