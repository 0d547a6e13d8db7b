//! The wall clock, read in one place: Unix milliseconds (UTC).

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
