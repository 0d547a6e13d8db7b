//! Incoming requests: a new call (ringing, auto-answer), in-dialog requests
//! (BYE, INFO, NOTIFY), answering, and blind transfer with REFER.

use std::time::Instant;

use bytes::Bytes;

use super::sdp::{announce_media, remote_audio, sdp};
use super::{Role, State, Timer, TransferMode, Ua, UaCall, UaEvent};
use crate::sip::Peer;
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::transaction::TxId;

impl Ua {
    pub(super) fn on_request(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let known = req.call_id().and_then(|c| self.by_call_id.get(c).copied());
        match (req.method.clone(), known) {
            (Method::Invite, None) if req.to_tag().is_none() => self.incoming(now, tx, req, peer),
            (Method::Bye, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                self.end(key, 200, false);
            }
            (Method::Cancel, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                if let Some(c) = self.calls.get_mut(&key)
                    && let Some(inv) = c.incoming.take()
                {
                    let bytes =
                        response_to(&inv, 487, "Request Terminated", Some(&c.dialog.local_tag))
                            .finish_empty();
                    let _ = self.tl.respond(now, c.invite_tx, 487, bytes);
                    self.end(key, 487, false);
                }
            }
            (Method::Invite, Some(key)) => {
                // A re-INVITE (e.g. the gateway moving us after a transfer): answer
                // its offer.
                let port = self.calls.get(&key).and_then(|c| c.rtp_port);
                let body = sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, port);
                if let Some(c) = self.calls.get_mut(&key) {
                    // The far end may have moved (a new relay port).
                    let remote = remote_audio(req.content_type(), &req.body);
                    announce_media(&mut self.events, key, c, remote);
                }
                let mut ok = response_to(&req, 200, "OK", None);
                ok.header("Contact", &self.contact());
                let _ = self
                    .tl
                    .respond(now, tx, 200, ok.finish(Some("application/sdp"), &body));
            }
            (Method::Notify, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                let terminated = req
                    .header("Subscription-State")
                    .is_some_and(|s| s.starts_with("terminated"));
                let code = std::str::from_utf8(&req.body)
                    .ok()
                    .and_then(|b| b.strip_prefix("SIP/2.0 "))
                    .and_then(|b| b.get(..3))
                    .and_then(|c| c.parse().ok());
                if let (true, Some(code)) = (terminated, code) {
                    self.events
                        .push_back(UaEvent::TransferDone { call: key, code });
                }
            }
            (Method::Options | Method::Info | Method::Update, Some(key)) => {
                let bytes = response_to(&req, 200, "OK", None).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
                if req.method == Method::Info {
                    if let Some(by) = req.header("X-Hotline-Answered-By") {
                        self.events.push_back(UaEvent::AnsweredBy {
                            call: key,
                            by: by.trim().to_string(),
                        });
                    }
                    if req.header("X-Hotline-Survey").is_some() {
                        self.events.push_back(UaEvent::SurveyStarted { call: key });
                    }
                }
            }
            (Method::Options, None) => {
                let bytes = response_to(&req, 200, "OK", Some(&self.ids.tag())).finish_empty();
                let _ = self.tl.respond(now, tx, 200, bytes);
            }
            _ => {
                let tag = self.ids.tag();
                let bytes = response_to(&req, 481, "Call/Transaction Does Not Exist", Some(&tag))
                    .finish_empty();
                let _ = self.tl.respond(now, tx, 481, bytes);
            }
        }
    }

    pub(super) fn incoming(&mut self, now: Instant, tx: TxId, req: Request, peer: Peer) {
        let key = self.next_call;
        self.next_call += 1;
        let dialog = Dialog::uas(&req, peer, self.ids.tag());
        let screen_pop = req
            .headers
            .iter()
            .filter(|h| h.name.to_ascii_lowercase().starts_with("x-hotline-"))
            .map(|h| (h.name.to_string(), h.value.clone()))
            .collect();
        let from = req.header("From").unwrap_or_default().to_string();
        let ringing = response_to(&req, 180, "Ringing", Some(&dialog.local_tag));
        let mut ringing = ringing;
        ringing.header("Contact", &self.contact());
        let _ = self.tl.respond(now, tx, 180, ringing.finish_empty());
        self.by_call_id.insert(dialog.call_id.to_string(), key);
        self.calls.insert(
            key,
            UaCall {
                dialog,
                state: State::Ringing,
                outgoing: false,
                invite_tx: tx,
                incoming: Some(Box::new(req)),
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
                rtp_port: None,
                media: None,
            },
        );
        self.events.push_back(UaEvent::Incoming {
            call: key,
            from,
            screen_pop,
        });
        if let Some(d) = self.cfg.answer_after {
            self.arm(key, Timer::Answer, now + d);
        }
    }

    /// Answers a ringing incoming call.
    pub fn answer(&mut self, now: Instant, key: u64) {
        let contact = self.contact();
        let random = self.ids.next_u64();
        let rtp_port = self.rtp.as_mut().and_then(|p| p.take(random));
        let body = sdp(self.cfg.local, self.ids.next_u64() % 1_000_000, rtp_port);
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(req) = c.incoming.take() else {
            if let (Some(p), Some(pool)) = (rtp_port, self.rtp.as_mut()) {
                pool.give_back(p);
            }
            return;
        };
        c.rtp_port = rtp_port;
        if let Some(p) = rtp_port {
            self.new_rtp_ports.push_back((key, p));
        }
        let remote = remote_audio(req.content_type(), &req.body);
        announce_media(&mut self.events, key, c, remote);
        let mut ok = response_to(&req, 200, "OK", Some(&c.dialog.local_tag));
        ok.header("Contact", &contact);
        let _ = self.tl.respond(
            now,
            c.invite_tx,
            200,
            ok.finish(Some("application/sdp"), &body),
        );
        c.state = State::Confirmed;
        c.answered = true;
        self.events.push_back(UaEvent::Answered { call: key });
        if let Some(t) = self.cfg.talk_for {
            self.arm(key, Timer::Hangup, now + t);
        }
        if self.cfg.transfer_to.is_some() {
            self.arm(key, Timer::Transfer, now + self.cfg.transfer_after);
        }
    }

    /// Transfers a call to the configured number as `transfer_mode` says: a
    /// REFER (blind, or adding a third party), or first a consultation call
    /// whose answer sends the REFER with Replaces.
    pub fn transfer(&mut self, now: Instant, key: u64) {
        if let Some(c) = self.calls.get_mut(&key) {
            c.refer_auth_tries = 0;
        }
        if self.cfg.transfer_mode == TransferMode::Attended {
            let Some(number) = self.cfg.transfer_to.clone() else {
                return;
            };
            let consult = self.call(now, &number);
            if let Some(c) = self.calls.get_mut(&consult) {
                c.consult_for = Some(key);
            }
            if let Some(c) = self.calls.get_mut(&key) {
                c.consulting = Some(consult);
            }
            return;
        }
        self.send_refer(now, key, None);
    }

    /// Sends the REFER, with `authorization` when answering a challenge.
    pub(super) fn send_refer(&mut self, now: Instant, key: u64, authorization: Option<String>) {
        let Some(number) = self.cfg.transfer_to.clone() else {
            return;
        };
        let server = self.cfg.server;
        let refer_to = match self.cfg.transfer_mode {
            TransferMode::Blind => format!("<sip:{number}@{server}>"),
            TransferMode::Conference => format!("<sip:{number}@{server};hotline=conference>"),
            TransferMode::Attended => {
                let consult = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.consulting)
                    .and_then(|k| self.calls.get(&k))
                    .filter(|c| c.state == State::Confirmed);
                let Some(d) = consult.map(|c| &c.dialog) else {
                    return;
                };
                // The consultation as its recipient (the gateway) sees it.
                let replaces = format!(
                    "{};to-tag={};from-tag={}",
                    d.call_id,
                    d.remote_tag.as_deref().unwrap_or_default(),
                    d.local_tag
                );
                format!("<sip:{number}@{server}?Replaces={}>", escape(&replaces))
            }
        };
        let referred_by = self.contact();
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if c.state != State::Confirmed {
            return;
        }
        let mut req = c.dialog.request(Method::Refer, None, Bytes::new());
        req.extra.push(("Refer-To".into(), refer_to));
        req.extra.push(("Referred-By".into(), referred_by));
        if let Some(a) = authorization {
            req.extra.push(("Authorization".into(), a));
        }
        let peer = c.dialog.peer;
        let tx = self.tl.send_request(now, peer, req);
        self.by_tx.insert(tx, Role::Refer(key));
    }

    /// The gateway's answer to our REFER: a challenge is answered once or twice
    /// (a stale nonce), with the same credentials as our REGISTER.
    pub(super) fn on_refer_response(&mut self, now: Instant, key: u64, resp: &Response) {
        if !matches!(resp.code, 401 | 407) {
            return;
        }
        let Some(c) = self.calls.get_mut(&key) else {
            return;
        };
        if c.refer_auth_tries >= 2 || c.state != State::Confirmed {
            return;
        }
        c.refer_auth_tries += 1;
        let uri = c.dialog.remote_target.clone();
        if let Some(a) = self.answer_challenge(resp, "REFER", &uri) {
            self.send_refer(now, key, Some(a));
        }
    }
}

/// A URI header value escaped (RFC 3261 §19.1.2): all but unreserved characters.
fn escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
