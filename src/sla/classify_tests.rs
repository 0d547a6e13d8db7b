//! Classification of single calls from their event logs.

use crate::cdr::EventKind::{
    AgentRinging, Answered, CalleeHungUp, CallerHungUp, GatewayEnded, Offered, Overflowed,
    Received, Ringback, TransferredOut,
};

use super::testkit::{SEC, T0, classified, record};
use super::{Counters, Dimension, Outcome, SlaConfig, Window, classify};

#[test]
fn a_call_never_offered_to_a_person_does_not_count() {
    let refused = [
        (0, Received, "12399"),
        (5, GatewayEnded, "dialplan.no_route"),
    ];
    assert_eq!(classified(&refused), None);
    assert_eq!(classified(&[]), None);
    // An overflow without an offer is no offer either.
    assert_eq!(classified(&[(0, Overflowed, "hotline")]), None);
}

#[test]
fn short_abandon_is_measured_from_the_first_offer_inclusive() {
    let table = [
        (0, Outcome::ShortAbandoned),
        (4_999, Outcome::ShortAbandoned),
        (5_000, Outcome::ShortAbandoned),
        (5_001, Outcome::Abandoned),
        (60_000, Outcome::Abandoned),
    ];
    for (hangup, want) in table {
        let c = classified(&[
            (-2_000, Received, "12345"),
            (0, Offered, "hotline"),
            (hangup, CallerHungUp, "caller.hung_up"),
        ])
        .unwrap();
        assert_eq!(c.outcome, want, "hang-up {hangup} ms after the offer");
        assert_eq!(c.visits[0].outcome, want);
        assert_eq!(c.ended_ms, T0 + hangup);
        assert_eq!((c.wait_ms, c.answered_within), (None, false));
    }
}

#[test]
fn answered_within_is_inclusive_at_answer_within_s() {
    let table = [(0, true), (14_999, true), (15_000, true), (15_001, false)];
    for (answer, within) in table {
        let c = classified(&[
            (0, Offered, "hotline"),
            (1, Ringback, ""),
            (2, AgentRinging, "1001"),
            (answer, Answered, "1001"),
            (answer + 90_000, CallerHungUp, "caller.hung_up"),
        ])
        .unwrap();
        assert_eq!(c.outcome, Outcome::Answered);
        assert_eq!(c.wait_ms, Some(answer));
        assert_eq!(c.answered_within, within, "answer at {answer} ms");
        assert_eq!(c.visits[0].answered_within, within);
        assert_eq!(c.ended_ms, T0 + answer + 90_000);
    }
}

#[test]
fn unanswered_calls_not_ended_by_the_caller_failed() {
    let ends = [
        vec![
            (0, Offered, "hotline"),
            (300_000, GatewayEnded, "acd.max_wait_overflow"),
        ],
        vec![
            (0, Offered, "legacy:12333"),
            (3_000, CalleeHungUp, "leg.callee_busy"),
        ],
        // The caller's hang-up after the gateway ended it does not make an abandon.
        vec![
            (0, Offered, "hotline"),
            (9_000, GatewayEnded, "shutdown"),
            (9_001, CallerHungUp, ""),
        ],
        // No end event at all.
        vec![(0, Offered, "hotline")],
    ];
    for events in ends {
        assert_eq!(
            classified(&events).unwrap().outcome,
            Outcome::Failed,
            "{events:?}"
        );
    }
}

#[test]
fn a_transfer_after_answer_is_served_not_abandoned() {
    let c = classified(&[
        (0, Offered, "hotline"),
        (10_000, Answered, "1001"),
        (40_000, TransferredOut, "110"),
        (41_000, CalleeHungUp, "agent.transferred"),
        (100_000, CallerHungUp, "caller.hung_up"),
    ])
    .unwrap();
    assert_eq!(c.outcome, Outcome::TransferredOut);
    assert!(c.answered_within);
    let mut total = Counters::default();
    total.add(&c.contributions()[0].counters);
    assert_eq!(
        (total.abandoned, total.answered, total.transferred_out),
        (0, 0, 1)
    );
    assert_eq!(total.answer_rate(), Some(1.0));
    assert_eq!(total.service_level(), Some(1.0));
}

#[test]
fn an_overflowed_call_counts_on_each_queue_and_once_overall() {
    let c = classified(&[
        (0, Offered, "hotline"),
        (60_000, Overflowed, "backup"),
        (70_000, Answered, "2001"),
        (200_000, CallerHungUp, ""),
    ])
    .unwrap();
    assert_eq!(c.outcome, Outcome::Answered);
    assert!(c.overflowed);
    assert_eq!(c.wait_ms, Some(70_000));
    assert!(!c.answered_within, "70 s from the first offer");
    let visits: Vec<_> = c
        .visits
        .iter()
        .map(|v| {
            (
                v.queue.as_str(),
                v.offered_ms - T0,
                v.outcome,
                v.answered_within,
            )
        })
        .collect();
    assert_eq!(
        visits,
        [
            ("hotline", 0, Outcome::Overflowed, false),
            ("backup", 60_000, Outcome::Answered, true),
        ]
    );
    let rows: Vec<_> = c
        .contributions()
        .iter()
        .map(|x| (x.dimension, x.key, x.counters))
        .collect();
    let call = Counters {
        offered: 1,
        answered: 1,
        overflowed: 1,
        ..Counters::default()
    };
    let left = Counters {
        offered: 1,
        overflowed: 1,
        ..Counters::default()
    };
    let reached = Counters {
        offered: 1,
        answered: 1,
        answered_within: 1,
        ..Counters::default()
    };
    assert_eq!(
        rows,
        [
            (Dimension::Overall, "all", call),
            (Dimension::Line, "12345", call),
            (Dimension::Mode, "hotline", call),
            (Dimension::Queue, "hotline", left),
            (Dimension::Queue, "backup", reached),
        ]
    );
}

#[test]
fn parallel_call_answered_by_the_legacy_seat() {
    let rec = record(
        Some("12333"),
        Some("parallel"),
        &[
            (0, Received, "12333"),
            (100, Offered, "legacy:12333"),
            (8_100, Answered, "legacy"),
            (120_000, CalleeHungUp, "legacy.hung_up"),
        ],
    );
    let c = classify(&rec, &SlaConfig::default()).unwrap();
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(
        (c.line.as_deref(), c.mode.as_deref()),
        (Some("12333"), Some("parallel"))
    );
    assert_eq!(
        (c.wait_ms, c.answered_within, c.overflowed),
        (Some(8_000), true, false)
    );
    assert_eq!(c.visits.len(), 1);
    assert_eq!(c.visits[0].queue, "legacy:12333");
    assert_eq!(c.visits[0].outcome, Outcome::Answered);
}

#[test]
fn parallel_call_overflowed_from_legacy_to_the_12345_queue() {
    let events = |end| {
        vec![
            (0, Offered, "legacy:12333"),
            (20_000, Overflowed, "hotline"),
            end,
        ]
    };
    let rec = |end| record(Some("12333"), Some("parallel"), &events(end));
    let cfg = SlaConfig::default();

    let answered = classify(&rec((32_000, Answered, "1001")), &cfg).unwrap();
    assert_eq!(answered.outcome, Outcome::Answered);
    assert!(answered.overflowed);
    assert_eq!(answered.wait_ms, Some(32_000));
    assert!(!answered.answered_within, "32 s after the first offer");
    assert_eq!(answered.visits[0].outcome, Outcome::Overflowed);
    assert_eq!(answered.visits[1].queue, "hotline");
    assert!(
        answered.visits[1].answered_within,
        "12 s after reaching the queue"
    );

    // Hanging up 3 s after the overflow is 23 s after the first offer: an abandon.
    let gone = classify(&rec((23_000, CallerHungUp, "")), &cfg).unwrap();
    assert_eq!(gone.outcome, Outcome::Abandoned);
    let outcomes: Vec<_> = gone.visits.iter().map(|v| v.outcome).collect();
    assert_eq!(outcomes, [Outcome::Overflowed, Outcome::Abandoned]);
}

#[test]
fn a_repeated_offer_to_the_same_place_is_one_visit() {
    let c = classified(&[
        (0, Offered, "hotline"),
        (1_000, Offered, "hotline"),
        (2_000, Answered, "1001"),
    ])
    .unwrap();
    assert_eq!(c.visits.len(), 1);
    assert!(!c.overflowed);
    // An offer elsewhere moves the call like an overflow.
    let moved = classified(&[(0, Offered, "hotline"), (1_000, Offered, "backup")]).unwrap();
    assert!(moved.overflowed);
    assert_eq!(moved.visits[0].outcome, Outcome::Overflowed);
}

#[test]
fn events_after_the_end_or_the_answer_do_not_change_the_outcome() {
    // An answer logged after the caller hung up came too late.
    let late = classified(&[
        (0, Offered, "hotline"),
        (9_000, CallerHungUp, ""),
        (9_100, Answered, "1001"),
    ]);
    assert_eq!(late.unwrap().outcome, Outcome::Abandoned);
    // An overflow after the answer is ignored.
    let c = classified(&[
        (0, Offered, "hotline"),
        (3_000, Answered, "1001"),
        (4_000, Overflowed, "x"),
    ]);
    let c = c.unwrap();
    assert_eq!(
        (c.outcome, c.overflowed, c.visits.len()),
        (Outcome::Answered, false, 1)
    );
}

#[test]
fn classification_uses_the_events_not_the_derived_fields() {
    let mut rec = record(
        Some("12345"),
        None,
        &[(0, Offered, ""), (60 * SEC, CallerHungUp, "")],
    );
    rec.outcome = Some("answered".into());
    rec.answered_at_ms = Some(T0 + 1);
    rec.queue = Some("elsewhere".into());
    let c = classify(&rec, &SlaConfig::default()).unwrap();
    assert_eq!(c.outcome, Outcome::Abandoned);
    assert_eq!(c.visits[0].queue, "unknown");
    // No mode: no mode contribution.
    let dims: Vec<_> = c.contributions().iter().map(|x| x.dimension).collect();
    assert_eq!(
        dims,
        [Dimension::Overall, Dimension::Line, Dimension::Queue]
    );
}

#[test]
fn configured_thresholds_apply() {
    let cfg = SlaConfig {
        answer_within_s: 20,
        short_abandon_s: 0,
        ..SlaConfig::default()
    };
    let rec = record(None, None, &[(0, Offered, "q"), (20_000, Answered, "1")]);
    assert!(classify(&rec, &cfg).unwrap().answered_within);
    let rec = record(None, None, &[(0, Offered, "q"), (1, CallerHungUp, "")]);
    assert_eq!(classify(&rec, &cfg).unwrap().outcome, Outcome::Abandoned);
}

#[test]
fn stable_names_round_trip() {
    for o in Outcome::ALL {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
        assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
    }
    for d in Dimension::ALL {
        assert_eq!(Dimension::parse(d.as_str()), Some(d));
        assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
    }
    for w in Window::ALL {
        assert_eq!(Window::parse(w.as_str()), Some(w));
        assert_eq!(serde_json::to_value(w).unwrap(), w.as_str());
    }
    assert_eq!(Outcome::parse("answered_late"), None);
    let ms: Vec<_> = Window::ALL.iter().map(|w| w.duration_ms()).collect();
    assert_eq!(ms, [900_000, 3_600_000, 86_400_000]);
}

#[test]
fn the_offer_clock_starts_at_arrival_or_at_the_queue_as_configured() {
    use crate::cdr::EventKind::Queued;
    // A forwarded line: offered, 6 s of announcement, queued, answered 12 s later.
    let events = [
        (0, Received, "12315"),
        (100, Offered, "hotline"),
        (6_100, Queued, "hotline"),
        (18_100, Answered, "1001"),
        (60_000, CallerHungUp, "call.caller_hangup"),
    ];
    let arrival = classified(&events).unwrap();
    assert_eq!(arrival.wait_ms, Some(18_000));
    assert!(!arrival.answered_within, "18 s from the offer");
    let cfg = SlaConfig {
        offer_clock: super::OfferClock::Queue,
        ..SlaConfig::default()
    };
    let queue = classify(
        &record(Some("12315"), Some("call_forwarding"), &events),
        &cfg,
    )
    .unwrap();
    assert_eq!(queue.wait_ms, Some(12_000));
    assert!(queue.answered_within, "12 s from the queue");
    // A call that never reached a queue counts from its offer either way.
    let direct = [
        (0, Offered, "sip:12398"),
        (20_000, Answered, "direct"),
        (30_000, CalleeHungUp, "call.callee_hangup"),
    ];
    let c = classify(&record(Some("12398"), Some("hotline"), &direct), &cfg).unwrap();
    assert_eq!(c.wait_ms, Some(20_000));
}
