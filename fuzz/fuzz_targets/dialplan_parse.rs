//! The dialplan parser and checker on arbitrary text: never a panic, and a plan
//! that loads must also answer routing questions without panicking.
#![no_main]

use hotline_gateway::dialplan::{CallFacts, check_sources, time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two files: the fuzzed one and a fixed one, so cross-file checks run too.
    let fixed = "[[queue]]\nname = \"main\"\nstatic_members = [\"sip:127.0.0.1:5070\"]\n";
    let sources = [
        ("fuzz.toml".to_string(), text.to_string()),
        ("fixed.toml".to_string(), fixed.to_string()),
    ];
    let Ok(plan) = check_sources(&sources) else {
        return;
    };
    for (n, at) in [("12345", 0i64), ("+8612345", 1_790_000_000), ("035112345", 1_800_000_000)] {
        let at = time::local_time(at, plan.utc_offset_minutes);
        let facts = CallFacts::dialled(n, "127.0.0.1".parse().unwrap(), at);
        let _ = plan.decide(&facts).view();
    }
});
