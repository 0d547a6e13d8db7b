//! An outbound trunk (`[[trunk]] kind = "outbound"`): the one way out of the
//! gateway, for calling citizens back (漏接回拨). Only numbers matching its
//! patterns may be dialled over it, at most so many at once and per second,
//! and only numbers owed a callback (the call core checks that): nothing else
//! leaves, so the gateway cannot be used for toll fraud.

/// What an outbound trunk allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The number the called citizen sees (From and P-Asserted-Identity).
    pub caller_id: String,
    /// Number patterns: digits, and `X` for any one digit; a number must match
    /// one whole.
    pub allow: Vec<String>,
    /// Calls over the trunk at once.
    pub max_concurrent: usize,
    /// New calls per second.
    pub cps: u32,
}

/// Default calls at once over an outbound trunk.
pub const DEFAULT_MAX_CONCURRENT: usize = 10;
/// Default new calls per second over an outbound trunk.
pub const DEFAULT_CPS: u32 = 2;

impl Outbound {
    /// Whether `number` matches one of the patterns.
    pub fn allows(&self, number: &str) -> bool {
        self.allow.iter().any(|p| matches(p, number))
    }
}

/// `pattern` (digits and `X`) against all of `number`.
fn matches(pattern: &str, number: &str) -> bool {
    pattern.len() == number.len()
        && pattern
            .bytes()
            .zip(number.bytes())
            .all(|(p, n)| n.is_ascii_digit() && (p == b'X' || p == n))
}

/// Checks one pattern: `Err` says what is wrong with it.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 20 || !p.bytes().all(|b| b.is_ascii_digit() || b == b'X') {
        return Err(format!(
            "{p:?}: a pattern is 1-20 digits or X (any digit), e.g. \"1XXXXXXXXXX\" for mobiles"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_numbers_only() {
        let o = Outbound {
            caller_id: "12345".into(),
            allow: vec!["1XXXXXXXXXX".into(), "0351XXXXXXX".into()],
            max_concurrent: 1,
            cps: 1,
        };
        assert!(o.allows("13800138000"));
        assert!(o.allows("03517654321"));
        for no in [
            "1380013800",
            "138001380001",
            "0105678901",
            "00861380013800",
            "1380013800x",
            "",
        ] {
            assert!(!o.allows(no), "{no}");
        }
        assert!(check_pattern("1XXXXXXXXXX").is_ok());
        for bad in ["", "1xx", "1X-X", "+86XXX", &"X".repeat(21)] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
