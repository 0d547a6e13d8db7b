//! Outgoing calls: the INVITE with our offer, its answers (early media,
//! the answer, challenges), and the retry with credentials.

use std::time::Instant;

use bytes::Bytes;

use super::sdp::{announce_media, remote_audio, sdp};
use super::{Role, State, Timer, Ua, UaCall, UaEvent};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Response};
use crate::sip::transaction::TxId;

impl Ua {
    /// Places a call to `number` at the gateway.
    pub fn call(&mut self, now: Instant, number: &str) -> u64 {
        let key = self.next_call;
        self.next_call += 1;
        let tag = self.ids.tag();
        let server = self.server();
        let uri = format!("sip:{number}@{}", self.cfg.server);
        let dialog = Dialog {
            call_id: self.ids.call_id(0).into(),
            local_hdr: format!("<sip:{}@{}>;tag={tag}", self.cfg.user, self.cfg.local),
            local_tag: tag.into(),
            remote_tag: None,
            remote_hdr: format!("<{uri}>"),
            remote_target: uri,
            route: Vec::new(),
            peer: server,
            local_cseq: 1,
        };
        let random = self.ids.next_u64();
        let rtp_port = self.rtp.as_mut().and_then(|p| p.take(random));
        let tx = self.send_invite(now, &dialog, None, rtp_port);
        self.by_call_id.insert(dialog.call_id.to_string(), key);
        self.calls.insert(
            key,
            UaCall {
                dialog,
                state: State::Calling,
                outgoing: true,
                invite_tx: tx,
                incoming: None,
                answered: false,
                heard: false,
                given_up: false,
                answer_at: None,
                hangup_at: None,
                transfer_at: None,
                auth_tries: 0,
                refer_auth_tries: 0,
                consulting: None,
                consult_for: None,
                rtp_port,
                media: None,
            },
        );
        self.by_tx.insert(tx, Role::Invite(key));
        if let Some(p) = rtp_port {
            self.new_rtp_ports.push_back((key, p));
        }
        key
    }

    pub(super) fn send_invite(
        &mut self,
        now: Instant,
        d: &Dialog,
        authorization: Option<String>,
        rtp_port: Option<u16>,
    ) -> TxId {
        let mut req = d.request_with_cseq(
            Method::Invite,
            d.local_cseq,
            Some("application/sdp".into()),
            sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, rtp_port),
        );
        req.extra.push(("Contact".into(), self.contact()));
        // INFO: the gateway says mid-call when an agent takes over (and the survey).
        req.extra.push((
            "Allow".into(),
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE".into(),
        ));
        if let Some(a) = authorization {
            req.extra.push(("Proxy-Authorization".into(), a));
        }
        self.tl.send_request(now, self.server(), req)
    }

    pub(super) fn on_invite_response(&mut self, now: Instant, key: u64, tx: TxId, resp: Response) {
        let code = resp.code;
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        let first = !c.heard;
        c.heard = true;
        if c.given_up && first && code < 200 {
            // The server woke up after we gave up: now the CANCEL may go.
            if let Ok(cancel) = self.tl.cancel(now, c.invite_tx) {
                self.by_tx.insert(cancel, Role::Other);
            }
            return;
        }
        if code < 200 {
            if code > 100 && c.state == State::Calling {
                c.state = State::Ringing;
            }
            if code > 100 {
                // Early media (a 183 with SDP): the greeting of a queued line.
                let remote = remote_audio(resp.content_type(), &resp.body);
                announce_media(&mut self.events, key, c, remote);
            }
            return;
        }
        if code < 300 {
            c.dialog.learn_from_response(&resp);
            let ack =
                c.dialog
                    .request_with_cseq(Method::Ack, c.dialog.local_cseq, None, Bytes::new());
            let peer = c.dialog.peer;
            self.tl.send_ack(Some(tx), peer, ack);
            if c.state == State::Ending {
                // We cancelled, but the answer won the race: hang up properly.
                c.state = State::Confirmed;
                self.hangup(now, key);
                return;
            }
            c.state = State::Confirmed;
            c.answered = true;
            self.events.push_back(UaEvent::Answered { call: key });
            // A server that does not say is taken at its word: the far end.
            let by = resp.header("X-Hotline-Answered-By").unwrap_or("far end");
            self.events.push_back(UaEvent::AnsweredBy {
                call: key,
                by: by.trim().to_string(),
            });
            let remote = remote_audio(resp.content_type(), &resp.body);
            announce_media(&mut self.events, key, c, remote);
            if let Some(orig) = c.consult_for {
                // The consultation is up: hand the caller over to it.
                return self.send_refer(now, orig, None);
            }
            if let Some(t) = self.cfg.talk_for {
                self.arm(key, Timer::Hangup, now + t);
            }
            return;
        }
        if c.given_up {
            return self.end(key, code, true); // no retry for a call given up on
        }
        let retry_auth = (code == 401 || code == 407) && c.auth_tries < 2;
        let by_us = c.state == State::Ending;
        if retry_auth {
            c.auth_tries += 1;
            let uri = c.dialog.remote_target.clone();
            if let Some(a) = self.answer_challenge(&resp, "INVITE", &uri) {
                self.retry_invite(now, key, a);
                return;
            }
        }
        if !by_us {
            self.events.push_back(UaEvent::Refused {
                call: key,
                status: super::register::status_line(&resp),
            });
        }
        self.end(key, code, by_us);
    }

    /// Re-sends an INVITE with credentials (same dialog, next CSeq).
    pub(super) fn retry_invite(&mut self, now: Instant, key: u64, authorization: String) {
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        c.dialog.local_cseq += 1;
        let d = std::mem::replace(&mut c.dialog, Dialog::none());
        let port = c.rtp_port;
        let tx = self.send_invite(now, &d, Some(authorization), port);
        if let Some(c) = self.calls.get_mut(&key) {
            c.dialog = d;
            c.invite_tx = tx;
        }
        self.by_tx.insert(tx, Role::Invite(key));
    }
}
