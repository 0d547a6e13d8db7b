use super::*;

fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .to_bytes()
}

/// Feeds (rtp_ts, event, end, duration, now_ms) and returns the digits.
fn receive(rx: &mut DtmfReceiver, packets: &[(u32, u8, bool, u16, u64)]) -> String {
    let mut s = String::new();
    for &(ts, ev, end, dur, now) in packets {
        s.extend(rx.poll(now).map(|d| d.digit));
        let done = rx.on_packet(ts, &payload(ev, end, dur), now).unwrap();
        s.extend(done.map(|d| d.digit));
    }
    s
}

#[test]
fn parses_payload_fields() {
    let cases: &[([u8; 4], TelephoneEvent)] = &[
        (
            [0x05, 0x0A, 0x01, 0x40],
            TelephoneEvent {
                event: 5,
                end: false,
                volume: 10,
                duration: 320,
            },
        ),
        (
            [0x0B, 0x8A, 0x03, 0x20],
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800,
            },
        ),
        // Reserved bit set: ignored.
        (
            [0x10, 0x7F, 0xFF, 0xFF],
            TelephoneEvent {
                event: 16,
                end: false,
                volume: 63,
                duration: 65_535,
            },
        ),
    ];
    for (bytes, want) in cases {
        let got = TelephoneEvent::parse(bytes).unwrap();
        assert_eq!(got, *want, "{bytes:02x?}");
        let mut clean = *bytes;
        clean[1] &= !0x40;
        assert_eq!(got.to_bytes(), clean);
    }
}

#[test]
fn malformed_payloads_are_errors() {
    for len in [0, 1, 3, 5, 8] {
        let bytes = vec![0u8; len];
        assert_eq!(
            TelephoneEvent::parse(&bytes),
            Err(MediaError::DtmfPayloadLength(len))
        );
        let mut rx = DtmfReceiver::default();
        assert!(rx.on_packet(0, &bytes, 0).is_err());
        assert_eq!(rx.poll_timeout(), None, "state unchanged");
    }
}

#[test]
fn digits_map_to_events() {
    for (event, digit) in "0123456789*#ABCD".chars().enumerate() {
        assert_eq!(event_for_digit(digit), Some(event as u8));
        assert_eq!(digit_for_event(event as u8), Some(digit));
    }
    assert_eq!(event_for_digit('a'), Some(12));
    assert_eq!(event_for_digit('E'), None);
    assert_eq!(digit_for_event(16), None);
}

#[test]
fn receiver_table() {
    // (name, packets, digits)
    type Packet = (u32, u8, bool, u16, u64);
    let cases: &[(&str, &[Packet], &str)] = &[
        (
            "an event spanning packets, with its three ends",
            &[
                (1000, 5, false, 160, 0),
                (1000, 5, false, 320, 20),
                (1000, 5, false, 480, 40),
                (1000, 5, true, 640, 60),
                (1000, 5, true, 640, 60),
                (1000, 5, true, 640, 80),
            ],
            "5",
        ),
        (
            "only end packets arrive",
            &[(1000, 9, true, 800, 0), (1000, 9, true, 800, 20)],
            "9",
        ),
        (
            "lost end, next event yields it",
            &[
                (1000, 1, false, 160, 0),
                (1000, 1, false, 320, 20),
                (2000, 2, false, 160, 200),
                (2000, 2, true, 480, 240),
            ],
            "12",
        ),
        (
            "lost end and the next event is only its end",
            &[(1000, 1, false, 160, 0), (2000, 2, true, 480, 100)],
            "12",
        ),
        (
            "same digit twice, new timestamp",
            &[
                (1000, 7, false, 160, 0),
                (1000, 7, true, 800, 100),
                (1000, 7, true, 800, 100),
                (2600, 7, false, 160, 200),
                (2600, 7, true, 800, 300),
                (2600, 7, true, 800, 300),
            ],
            "77",
        ),
        (
            "late redundant end of the previous event",
            &[
                (1000, 3, true, 800, 0),
                (2600, 4, false, 160, 20),
                (1000, 3, true, 800, 25),
                (2600, 4, true, 640, 80),
            ],
            "34",
        ),
        (
            "duplicated and reordered updates",
            &[
                (1000, 11, false, 320, 0),
                (1000, 11, false, 160, 1),
                (1000, 11, false, 320, 2),
                (1000, 11, true, 480, 20),
            ],
            "#",
        ),
        (
            "timestamps wrap",
            &[
                (u32::MAX - 10, 10, true, 800, 0),
                (790, 0, true, 800, 100),
                (u32::MAX - 10, 10, true, 800, 110),
            ],
            "*0",
        ),
        (
            "non-digit events are tracked, not reported",
            &[
                (1000, 16, false, 160, 0),
                (1000, 16, true, 800, 100),
                (2000, 2, true, 800, 200),
            ],
            "2",
        ),
        (
            "lost end, the timeout yields it",
            &[
                (1000, 8, false, 160, 0),
                (1000, 8, false, 320, 20),
                (1000, 8, true, 320, 500), // too late: already reported
            ],
            "8",
        ),
    ];
    for (name, packets, want) in cases {
        let mut rx = DtmfReceiver::new(250);
        assert_eq!(receive(&mut rx, packets), *want, "{name}");
    }
}

#[test]
fn timeout_yields_digit_once_at_the_deadline() {
    let mut rx = DtmfReceiver::new(250);
    assert_eq!(rx.poll_timeout(), None);
    let none = rx.on_packet(1000, &payload(6, false, 160), 0).unwrap();
    assert_eq!(none.count(), 0);
    let none = rx.on_packet(1000, &payload(6, false, 320), 20).unwrap();
    assert_eq!(none.count(), 0);
    assert_eq!(rx.poll_timeout(), Some(270));
    assert_eq!(rx.poll(269), None);
    let d = rx.poll(270).unwrap();
    assert_eq!(
        d,
        DtmfDigit {
            digit: '6',
            rtp_ts: 1000,
            duration: 320,
            end_seen: false
        }
    );
    assert_eq!(rx.poll(10_000), None);
    assert_eq!(rx.poll_timeout(), None);
}

#[test]
fn end_packet_reports_duration_and_end_seen() {
    let mut rx = DtmfReceiver::default();
    let _ = rx.on_packet(4242, &payload(12, false, 160), 0).unwrap();
    let got: Vec<_> = rx
        .on_packet(4242, &payload(12, true, 960), 120)
        .unwrap()
        .collect();
    assert_eq!(
        got,
        [DtmfDigit {
            digit: 'A',
            rtp_ts: 4242,
            duration: 960,
            end_seen: true
        }]
    );
}

#[test]
fn same_timestamp_after_the_timeout_is_still_the_same_event() {
    // A long pause inside one event (the sender stalled): its late end is
    // redundant once the timeout reported the digit.
    let mut rx = DtmfReceiver::new(100);
    let s = receive(
        &mut rx,
        &[(50, 4, false, 160, 0), (50, 4, true, 9600, 1200)],
    );
    assert_eq!(s, "4");
}

#[test]
fn older_timestamp_long_after_is_a_new_event() {
    // The far end restarted its stream: a lower timestamp, seconds later.
    let mut rx = DtmfReceiver::new(250);
    let s = receive(
        &mut rx,
        &[(90_000, 1, true, 800, 0), (500, 2, true, 800, 5_000)],
    );
    assert_eq!(s, "12");
}

#[test]
fn sender_packets() {
    // (duration_ms, durations in the updates, total)
    let cases: &[(u32, &[u16], u16)] = &[
        (100, &[160, 320, 480, 640], 800),
        (90, &[160, 320, 480, 640], 720),
        (20, &[], 160),
        (5, &[], 40),
        (8191, &[], 65_528),
    ];
    for &(ms, updates, total) in cases {
        let sender = DtmfSender::new('#', ms).unwrap();
        let n = sender.len();
        let packets: Vec<_> = sender.collect();
        assert_eq!(packets.len(), n, "{ms} ms: size_hint");
        let evs: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        assert!(packets[0].marker, "{ms} ms: marker on first");
        assert!(packets[1..].iter().all(|p| !p.marker), "{ms} ms");
        assert!(evs.iter().all(|e| e.event == 11 && e.volume == 10));
        if ms == 8191 {
            assert_eq!(evs.len(), 409 + 3);
            continue;
        }
        let want_updates: Vec<_> = updates.iter().map(|&d| (false, d)).collect();
        let want: Vec<_> = want_updates.into_iter().chain([(true, total); 3]).collect();
        let got: Vec<_> = evs.iter().map(|e| (e.end, e.duration)).collect();
        assert_eq!(got, want, "{ms} ms");
    }
}

#[test]
fn sender_rejects_bad_input() {
    assert_eq!(
        DtmfSender::new('x', 100).unwrap_err(),
        MediaError::NotADigit('x')
    );
    assert_eq!(
        DtmfSender::new('1', 0).unwrap_err(),
        MediaError::DtmfDuration(0)
    );
    assert_eq!(
        DtmfSender::new('1', 8192).unwrap_err(),
        MediaError::DtmfDuration(8192)
    );
    let loud = DtmfSender::new('1', 40).unwrap().with_volume(99);
    for p in loud {
        assert_eq!(TelephoneEvent::parse(&p.payload).unwrap().volume, 63);
    }
}

#[test]
fn sender_round_trips_through_receiver() {
    let mut rx = DtmfReceiver::default();
    let mut heard = String::new();
    let (mut now, mut ts) = (0u64, 0u32);
    for digit in "0123456789*#ABCD77".chars() {
        for p in DtmfSender::new(digit, 120).unwrap() {
            heard.extend(rx.on_packet(ts, &p.payload, now).unwrap().map(|d| {
                assert!(d.end_seen);
                assert_eq!(d.duration, 960);
                d.digit
            }));
            now += 20;
        }
        // 60 ms pause between digits; the next event starts later.
        now += 60;
        ts = ts.wrapping_add((8 * (120 + 60 + 40)) as u32);
    }
    assert_eq!(heard, "0123456789*#ABCD77");
    assert_eq!(rx.poll(u64::MAX), None);
}
