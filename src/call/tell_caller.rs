//! Telling the caller's phone who it is talking to: the gateway's own answer
//! carries `X-Hotline-Answered-By: gateway`, a relayed answer `agent`, `legacy`
//! or `direct`. On a call the gateway answered itself, when an agent takes it
//! over and when the satisfaction survey starts, the caller gets a bodiless
//! INFO (RFC 6086 legacy usage) naming it, but only if its INVITE's `Allow`
//! lists INFO: a phone or carrier that did not say it takes INFO mid-call gets
//! none (a strict UA would drop the call over it). The project's softphone
//! says so, and reports the answers apart and its audio per segment.

use std::time::Instant;

use bytes::Bytes;

use super::{AnsweredBy, Call, Role, Shared};
use crate::sip::message::{Headers, Method};

/// The header naming who answered (on a 2xx, or an INFO).
pub(super) const ANSWERED_BY: &str = "X-Hotline-Answered-By";
/// The header of the INFO sent when the survey starts.
pub(super) const SURVEY: &str = "X-Hotline-Survey";

/// What `X-Hotline-Answered-By` says for who answered.
pub(super) fn answered_by_value(by: AnsweredBy) -> &'static str {
    match by {
        AnsweredBy::Legacy => "legacy",
        AnsweredBy::Direct => "direct",
        AnsweredBy::Seats12345 => "agent",
    }
}

impl Call {
    /// Sends the caller an INFO carrying `header: value`; its answer is ignored.
    pub(super) fn tell_caller(&mut self, sh: &mut Shared, now: Instant, header: &str, value: &str) {
        let allows_info = self.answered_invite.as_ref().is_some_and(|r| {
            r.header_all("Allow")
                .flat_map(|v| v.split(','))
                .any(|m| m.trim().eq_ignore_ascii_case("INFO"))
        });
        if self.a.remote_tag.is_none() || !allows_info {
            return;
        }
        let mut info = self.a.request(Method::Info, None, Bytes::new());
        info.extra.push((header.to_string(), value.to_string()));
        let peer = self.a.peer;
        let tx = sh.tl.send_request(now, peer, info);
        self.track(sh, tx, Role::Fire);
    }
}

#[cfg(test)]
mod tests {
    use super::super::media_tests::net;
    use super::super::tests::*;
    use crate::call::QueuedAudio;
    use crate::sip::message::{Headers, Message, Method};

    #[test]
    fn the_caller_learns_who_answered_and_gets_an_info_only_if_it_allows_info() {
        for allow in [false, true] {
            let mut net = net("queue:q", QueuedAudio::Answer);
            let mut invite = String::from_utf8(caller_invite()).unwrap();
            if allow {
                invite = invite.replace(
                    "Content-Type:",
                    "Allow: INVITE, ACK, BYE, CANCEL, INFO\r\nContent-Type:",
                );
            }
            net.send(net.caller, invite.as_bytes());
            let ok = net.response(net.caller, 200);
            assert_eq!(ok.header(super::ANSWERED_BY), Some("gateway"));
            let gw_tag = ok.to_tag().unwrap();
            net.send(
                net.caller,
                &caller_request("ACK", 1, "z9hG4bKack1", &gw_tag),
            );
            let seat = net.request(net.callee, Method::Invite);
            let sdp = "v=0\r\no=agent 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
            net.send(net.callee, &callee_reply(&seat, 200, "OK", &[], sdp));
            net.request(net.callee, Method::Ack);
            if allow {
                let info = net.request(net.caller, Method::Info);
                assert_eq!(info.header(super::ANSWERED_BY), Some("agent"));
                assert!(info.body.is_empty());
            } else {
                net.none_to(
                    net.caller,
                    "an INFO it did not allow",
                    |m| matches!(m, Message::Request(r) if r.method == Method::Info),
                );
            }
        }
    }
}
