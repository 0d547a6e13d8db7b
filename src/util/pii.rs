//! Keeping phone numbers and addresses out of logs.
//!
//! Why: callers' numbers are personal data. At `info` and above they go through
//! [`Pii`], which shows only the last four characters; set
//! `HOTLINE_LOG_PII=1` (for lab debugging) to log them in full.

use std::fmt;
use std::sync::OnceLock;

/// A value that is redacted when displayed.
#[derive(Debug, Clone, Copy)]
pub struct Pii<T>(pub T);

fn reveal() -> bool {
    static REVEAL: OnceLock<bool> = OnceLock::new();
    *REVEAL.get_or_init(|| std::env::var("HOTLINE_LOG_PII").is_ok_and(|v| v == "1"))
}

impl<T: fmt::Display> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.to_string();
        if reveal() {
            return f.write_str(&s);
        }
        let n = s.chars().count();
        if n <= 4 {
            return f.write_str(&"*".repeat(n));
        }
        let tail: String = s.chars().skip(n - 4).collect();
        write!(f, "{}{}", "*".repeat(n - 4), tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_the_last_four() {
        assert_eq!(Pii("13800138000").to_string(), "*******8000");
        assert_eq!(Pii("110").to_string(), "***");
    }
}
