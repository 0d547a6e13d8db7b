//! Values inside SIP header lines: comma-separated lists, the addr-spec of a
//! name-addr, `;name=value` parameters and the `tag` of From/To.
//!
//! Why apart from the message facade: these read plain `&str` header values that
//! the facade keeps verbatim, never `rsipstack` types, and the registrar, the
//! dialplan's number reading and the softphone's digest all use them.

/// Splits a header line into its comma-separated values, respecting quotes and `<>`.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let s = rest?;
        let (mut quoted, mut angle, mut escaped) = (false, false, false);
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '<' if !quoted => angle = true,
                '>' if !quoted => angle = false,
                ',' if !quoted && !angle => {
                    rest = Some(&s[i + 1..]);
                    return Some(s[..i].trim());
                }
                _ => {}
            }
        }
        rest = None;
        Some(s.trim())
    })
    .filter(|v| !v.is_empty())
}

/// The first value of a comma-separated header line.
pub fn first_list_value(value: &str) -> &str {
    split_list(value).next().unwrap_or("")
}

/// The addr-spec inside a name-addr (`"Name" <sip:x>;tag=1` → `sip:x`).
pub fn addr_spec(value: &str) -> &str {
    if let Some(open) = find_unquoted(value, b'<') {
        let rest = &value[open + 1..];
        if let Some(close) = rest.find('>') {
            return rest[..close].trim();
        }
    }
    value.split(';').next().unwrap_or("").trim()
}

fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b if b == needle && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The header parameters after the addr-spec of a name-addr (`;tag=1;x=y`).
fn header_params(value: &str) -> &str {
    let after = match find_unquoted(value, b'<') {
        Some(open) => match value[open..].find('>') {
            Some(close) => &value[open + close + 1..],
            None => "",
        },
        None => value.find(';').map(|i| &value[i..]).unwrap_or(""),
    };
    after.trim()
}

/// The value of a `name=value` parameter in a `;`-separated list.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `tag` parameter of a From or To value.
pub fn tag_of(value: &str) -> Option<String> {
    param(header_params(value), "tag")
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_list_respects_quotes_and_brackets() {
        let v: Vec<_> = split_list("\"a,b\" <sip:x,y@h>, <sip:z@h>").collect();
        assert_eq!(v, vec!["\"a,b\" <sip:x,y@h>", "<sip:z@h>"]);
    }

    #[test]
    fn addr_spec_skips_display_names_with_brackets_in_quotes() {
        assert_eq!(addr_spec("\"A <b>\" <sip:x@h>;tag=1"), "sip:x@h");
        assert_eq!(addr_spec("sip:y@h;tag=2"), "sip:y@h");
    }

    #[test]
    fn params_and_tags() {
        assert_eq!(param(";a=1; B = 2 ;c", "b"), Some("2"));
        assert_eq!(param(";a=1;c", "c"), Some(""));
        assert_eq!(param(";a=1", "tag"), None);
        assert_eq!(
            tag_of("\"x;tag=no\" <sip:a@h;tag=uri>;tag=yes").as_deref(),
            Some("yes")
        );
        assert_eq!(tag_of("<sip:a@h>;tag="), None);
        assert_eq!(tag_of("sip:a@h;tag=t1"), Some("t1".into()));
        assert_eq!(first_list_value(" , <sip:a@h>, <sip:b@h>"), "<sip:a@h>");
    }
}
