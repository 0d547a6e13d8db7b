//! Message framing: where one SIP message ends, by Content-Length (RFC 3261 §18.3).
//!
//! Why: the same rules serve UDP (one datagram, which must hold the whole body) and
//! TCP (a byte stream, where "not yet" is a normal answer, as in mini-redis's
//! `Frame::check`). Pure: no I/O.

/// What the framer found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete message of this many bytes (headers and body).
    Complete(usize),
    /// More bytes are needed.
    Incomplete,
    /// The header section ends at `len` bytes but cannot be framed: the caller answers
    /// `400` and skips `len` bytes (treating the body as empty) to stay in sync.
    Invalid { len: usize, error: FrameError },
}

/// Why a message cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("no empty line ends the header section")]
    NoHeaderEnd,
    #[error("Content-Length is not a non-negative number")]
    BadContentLength,
    #[error("Content-Length appears more than once")]
    MultipleContentLength,
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    ContentLengthTooLarge { declared: usize, available: usize },
}

/// The body length a complete header section declares (`Content-Length`), for a
/// stream reader that must skip the body of a message it refused as too large.
pub fn declared_body(head: &[u8]) -> Option<usize> {
    content_length(head).ok().flatten()
}

/// Frames the next message of a TCP stream. Leading CRLFs (keep-alives) are the
/// caller's to skip with [`skip_keepalive`].
pub fn frame_stream(buf: &[u8], limit: usize) -> Frame {
    let Some(head_end) = header_end(buf) else {
        if buf.len() > limit {
            return Frame::Invalid {
                len: buf.len(),
                error: FrameError::TooLarge { limit },
            };
        }
        return Frame::Incomplete;
    };
    match content_length(&buf[..head_end]) {
        Ok(cl) => {
            let total = head_end + cl.unwrap_or(0);
            if total > limit {
                Frame::Invalid {
                    len: head_end,
                    error: FrameError::TooLarge { limit },
                }
            } else if buf.len() < total {
                Frame::Incomplete
            } else {
                Frame::Complete(total)
            }
        }
        Err(error) => Frame::Invalid {
            len: head_end,
            error,
        },
    }
}

/// Frames a UDP datagram: the whole message must be inside it. Returns the length of
/// the message; any bytes after it are ignored (RFC 3261 §18.3).
pub fn frame_datagram(buf: &[u8], limit: usize) -> Result<usize, FrameError> {
    if buf.len() > limit {
        return Err(FrameError::TooLarge { limit });
    }
    let head_end = header_end(buf).ok_or(FrameError::NoHeaderEnd)?;
    let available = buf.len() - head_end;
    match content_length(&buf[..head_end])? {
        None => Ok(buf.len()),
        Some(declared) if declared > available => Err(FrameError::ContentLengthTooLarge {
            declared,
            available,
        }),
        Some(declared) => Ok(head_end + declared),
    }
}

/// Number of CRLF keep-alive bytes at the start of a stream buffer.
pub fn skip_keepalive(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// Offset just past the empty line that ends the header section.
fn header_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// The Content-Length of a header section (`Content-Length` or compact `l`).
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = value
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        if found.is_some() {
            return Err(FrameError::MultipleContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nl: 4\r\n\r\n";

    #[test]
    fn stream_waits_for_body_then_frames() {
        assert_eq!(frame_stream(HEAD, 1000), Frame::Incomplete);
        let mut full = HEAD.to_vec();
        full.extend_from_slice(b"abcdEXTRA");
        assert_eq!(frame_stream(&full, 1000), Frame::Complete(HEAD.len() + 4));
    }

    #[test]
    fn datagram_rejects_short_body() {
        let err = frame_datagram(HEAD, 1000).unwrap_err();
        assert_eq!(
            err,
            FrameError::ContentLengthTooLarge {
                declared: 4,
                available: 0
            }
        );
    }

    #[test]
    fn negative_and_duplicate_lengths_are_invalid() {
        let neg = b"X sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n";
        assert_eq!(frame_datagram(neg, 1000), Err(FrameError::BadContentLength));
        let dup = b"X sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 0\r\n\r\n";
        assert_eq!(
            frame_datagram(dup, 1000),
            Err(FrameError::MultipleContentLength)
        );
        assert!(matches!(frame_stream(neg, 1000), Frame::Invalid { .. }));
    }

    #[test]
    fn size_cap() {
        assert_eq!(
            frame_datagram(HEAD, 10),
            Err(FrameError::TooLarge { limit: 10 })
        );
        let junk = vec![b'a'; 100];
        assert!(matches!(frame_stream(&junk, 50), Frame::Invalid { .. }));
    }
}
