//! The wall clock, read in one place: Unix milliseconds (UTC).

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-11-27T05:35:41.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let t = crate::dialplan::time::local_time(secs, 0);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.minute_of_day / 60,
        t.minute_of_day % 60,
        secs.rem_euclid(60),
        ms.rem_euclid(1000)
    )
}
