//! Criterion benchmarks of the dialplan's pure building blocks: number
//! normalisation, original-called-number extraction, local time, and opening
//! hours over 100 rules. The routing budget is a million decisions per second on
//! one core (issue 4), so each of these must stay far below a microsecond.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_gateway::dialplan::calendar::Calendar;
use hotline_gateway::dialplan::hours::Hours;
use hotline_gateway::dialplan::number::{digits_of, national, original_called};
use hotline_gateway::dialplan::time::{Date, SHANGHAI_OFFSET_MINUTES, local_time, parse_rfc3339};
use hotline_gateway::sip::message::{Message, parse};

/// What carriers and softphones send, in the proportions one sees on a trunk.
const NUMBERS: [&str; 12] = [
    "sip:12345@hotline.example",
    "<sip:+8613800138000@carrier.example>;tag=a3",
    "\"张三\" <sip:13800000000@example.com>;tag=abc",
    "tel:12345;phone-context=+86-351",
    "tel:+86-10-6512-3456",
    "sip:035112345@hotline.example;user=phone",
    "0351-12345",
    "008613800138000",
    "8601065123456",
    "sip:anonymous@anonymous.invalid",
    "+12125551234",
    "sip:%2B8675512345678@carrier.example",
];

fn bench_numbers(c: &mut Criterion) {
    let mut g = c.benchmark_group("number");
    g.throughput(Throughput::Elements(NUMBERS.len() as u64));
    g.bench_function("digits_of + national, 12 mixed numbers", |b| {
        b.iter(|| {
            for raw in NUMBERS {
                if let Some(d) = digits_of(black_box(raw)) {
                    black_box(national(&d));
                }
            }
        })
    });
    g.finish();

    let Ok(Message::Request(req)) = parse(include_bytes!("../tests/corpus/hotline/diversion.dat"))
    else {
        panic!("the corpus sample parses")
    };
    c.bench_function("number/original_called (Diversion + History-Info)", |b| {
        b.iter(|| black_box(original_called(black_box(&req))))
    });
}

/// 99 calendar-blind rules (15 half-hour slots a day, no overlaps) and a
/// `holidays closed` rule: the worst case scans them all.
fn hundred_rules() -> Hours {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut rules: Vec<String> = (0..99)
        .map(|i| format!("{} {:02}:00-{:02}:30", DAYS[i % 7], 6 + i / 7, 6 + i / 7))
        .collect();
    rules.push("holidays closed".into());
    Hours::parse(&rules).expect("valid rules")
}

fn calendar() -> Calendar {
    let d = |s: &str| s.parse::<Date>().unwrap();
    let holidays = (1..=8).map(|day| Date::new(2026, 10, day).unwrap());
    Calendar::new(holidays, [d("2026-09-27"), d("2026-10-10")]).unwrap()
}

fn bench_hours(c: &mut Criterion) {
    let hours = hundred_rules();
    let cal = calendar();
    // Friday 2026-10-09 19:15: inside the last Friday rule (`fri 19:00-19:30`).
    let open = local_time(
        parse_rfc3339("2026-10-09T19:15:00+08:00").unwrap(),
        SHANGHAI_OFFSET_MINUTES,
    );
    // Friday 23:00: no rule opens, every rule is looked at.
    let closed = local_time(
        parse_rfc3339("2026-10-09T23:00:00+08:00").unwrap(),
        SHANGHAI_OFFSET_MINUTES,
    );
    let mut g = c.benchmark_group("hours");
    g.bench_function("is_open, 100 rules, open", |b| {
        b.iter(|| black_box(hours.is_open(black_box(&open), &cal)))
    });
    g.bench_function("is_open, 100 rules, closed", |b| {
        b.iter(|| black_box(hours.is_open(black_box(&closed), &cal)))
    });
    g.bench_function("decide, 100 rules, closed", |b| {
        b.iter(|| black_box(hours.decide(black_box(&closed), &cal)))
    });
    g.finish();
    c.bench_function("time/local_time", |b| {
        b.iter(|| {
            black_box(local_time(
                black_box(1_790_818_200),
                SHANGHAI_OFFSET_MINUTES,
            ))
        })
    });
}

criterion_group!(benches, bench_numbers, bench_hours);
criterion_main!(benches);
