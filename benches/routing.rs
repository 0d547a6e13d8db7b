//! Routing decisions per second with 10,000 lines and 100 time rules: routing must
//! never be what limits the call rate.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_gateway::dialplan::{CallFacts, Dialplan, parse_sources, time};

/// 10,000 lines: 9,900 queued, 100 parallel lines each with its own time rule.
fn big_plan() -> Dialplan {
    let mut text = String::from(
        "[[trunk]]\nname = \"carrier\"\nkind = \"carrier\"\nsources = [\"127.0.0.0/8\"]\n\n\
[[trunk]]\nname = \"legacy\"\nkind = \"legacy\"\ntarget = \"sip:127.0.0.1:5081\"\n\n\
[[queue]]\nname = \"main\"\nstatic_members = [\"sip:127.0.0.1:5070\"]\n\n\
[[calendar]]\nyear = 2026\nholidays = [\"2026-10-01\", \"2026-10-02\"]\nworkdays = [\"2026-10-10\"]\n",
    );
    for i in 0..10_000u32 {
        let number = 3_510_000_000u64 + u64::from(i) * 7;
        if i % 100 == 0 {
            let start = 6 + (i / 100) % 4;
            text.push_str(&format!(
                "\n[[line]]\nnumber = \"0{number}\"\nname = \"p{i}\"\nmode = \"parallel\"\nqueue = \"main\"\n\
legacy_trunk = \"legacy\"\nhours = [\"workdays {start:02}:00-17:30\", \"sat 09:00-12:00\"]\n"
            ));
        } else {
            text.push_str(&format!(
                "\n[[line]]\nnumber = \"0{number}\"\nname = \"l{i}\"\nqueue = \"main\"\n"
            ));
        }
    }
    parse_sources(&[("big.toml".into(), text)]).expect("the generated plan loads")
}

fn bench_decide(c: &mut Criterion) {
    let plan = big_plan();
    let at = time::local_time(
        time::parse_rfc3339("2026-10-09T10:00:00+08:00").unwrap(),
        480,
    );
    let numbers: Vec<String> = (0..1000u64)
        .map(|i| format!("+86{}", 3_510_000_000u64 + i * 70))
        .collect();
    let source = "127.0.0.1".parse().unwrap();
    let mut g = c.benchmark_group("routing, 10,000 lines and 100 time rules");
    g.throughput(Throughput::Elements(numbers.len() as u64));
    g.bench_function("decide (normalise + line + mode + hours)", |b| {
        b.iter(|| {
            for n in &numbers {
                let facts = CallFacts::dialled(n, source, at);
                black_box(plan.decide(black_box(&facts)).outcome);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
