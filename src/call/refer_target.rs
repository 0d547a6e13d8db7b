//! What an agent's REFER asks for, read from its Refer-To: a number, whether
//! to add it as a third party (`;hotline=conference`, `conference.rs`), and
//! the dialog a `?Replaces=` names (an attended transfer, `attended.rs`).
//!
//! Pure parsing, apart from the call: the Refer-To is the agent's input, so
//! what it may name is bounded here (both tags or none, escapes decoded).

use crate::sip::message::{SipUri, addr_spec};

/// What a REFER's Refer-To asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReferTarget {
    /// The user part: a directory number.
    pub number: String,
    /// `;hotline=conference`: add, do not transfer.
    pub conference: bool,
    /// `?Replaces=…` (RFC 3891): an attended transfer.
    pub replaces: Option<Replaces>,
}

/// The dialog a Replaces names (RFC 3891 §6.1): the recipient compares
/// `to-tag` with its local tag and `from-tag` with the remote one. Softphones
/// before RFC 3891's tags (baresip before 3.22) send the Call-ID alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Replaces {
    pub call_id: String,
    /// `(to-tag, from-tag)`, when given.
    pub tags: Option<(String, String)>,
}

impl ReferTarget {
    /// Reads a Refer-To header value; `None` if it is not a SIP URI with a user.
    pub fn parse(value: &str) -> Option<ReferTarget> {
        let spec = addr_spec(value);
        let uri = SipUri::parse(spec).ok()?;
        let number = uri.user?.to_string();
        let (before, headers) = match spec.split_once('?') {
            Some((b, h)) => (b, Some(h)),
            None => (spec, None),
        };
        // On the URI (`<sip:110@gw;hotline=conference>`), or, from a phone
        // that writes the URI without brackets, where it lands: a parameter
        // of the header.
        let outside = match value.rfind('>') {
            Some(i) => &value[i + 1..],
            None => value,
        };
        let conference = before
            .split(';')
            .skip(1)
            .chain(outside.split(';').skip(1))
            .any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("hotline")
                        && v.trim().eq_ignore_ascii_case("conference")
                })
            });
        let replaces = headers.and_then(|h| {
            h.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.eq_ignore_ascii_case("replaces")
                    .then(|| Replaces::parse(&unescape(v)))
                    .flatten()
            })
        });
        Some(ReferTarget {
            number,
            conference,
            replaces,
        })
    }
}

impl Replaces {
    /// `call-id;to-tag=…;from-tag=…` (`early-only` and others are ignored);
    /// one tag without the other names no dialog.
    pub fn parse(v: &str) -> Option<Replaces> {
        let mut parts = v.split(';');
        let call_id = parts.next()?.trim().to_string();
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "to-tag" => to_tag = Some(val.trim().to_string()),
                    "from-tag" => from_tag = Some(val.trim().to_string()),
                    _ => {}
                }
            }
        }
        let tags = match (to_tag, from_tag) {
            (Some(t), Some(f)) => Some((t, f)),
            (None, None) => None,
            _ => return None,
        };
        (!call_id.is_empty()).then_some(Replaces { call_id, tags })
    }
}

/// `%XX` escapes of a URI header value, decoded (RFC 3261 §19.1.2).
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = v.get(i + 1..i + 3)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_says_conference_or_replaces_or_neither() {
        let t = ReferTarget::parse("<sip:110@gw.example;hotline=conference>").unwrap();
        assert_eq!(
            (t.number.as_str(), t.conference, t.replaces),
            ("110", true, None)
        );
        let t = ReferTarget::parse("<sip:110@gw.example>").unwrap();
        assert!(!t.conference && t.replaces.is_none());
        let t = ReferTarget::parse(
            "<sip:110@gw.example?Replaces=abc%40host%3Bto-tag%3Dgw1%3Bfrom-tag%3Dag2>",
        )
        .unwrap();
        assert_eq!(
            t.replaces,
            Some(Replaces {
                call_id: "abc@host".into(),
                tags: Some(("gw1".into(), "ag2".into())),
            })
        );
        assert!(!t.conference);
        // One tag without the other names no dialog; none at all is the
        // Call-ID alone (older softphones).
        let t = ReferTarget::parse("<sip:110@gw?Replaces=abc%3Bto-tag%3Dx>").unwrap();
        assert_eq!(t.replaces, None);
        let t = ReferTarget::parse("<sip:110@gw?Replaces=abc>").unwrap();
        assert_eq!(
            t.replaces,
            Some(Replaces {
                call_id: "abc".into(),
                tags: None
            })
        );
        assert!(ReferTarget::parse("<tel:110>").is_some_and(|t| t.number == "110"));
        assert!(ReferTarget::parse("garbage").is_none());
        // Without brackets the parameter is the header's: the same request.
        let t = ReferTarget::parse("sip:110@gw.example;hotline=conference").unwrap();
        assert!(t.conference && t.number == "110");
        // Another parameter's value is not the mode.
        let t = ReferTarget::parse("<sip:110@gw;user=phone;x=conference>").unwrap();
        assert!(!t.conference);
    }
}
