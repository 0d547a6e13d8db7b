//! Registration: REGISTER with digest authentication, and re-registering
//! before the binding expires.

use std::time::{Duration, Instant};

use super::{REGISTER_KEY, Role, Timer, Ua, UaEvent};
use crate::sip::message::{self, Headers, Method, Response};
use crate::sip::transaction::OutRequest;
use crate::softphone::digest;

impl Ua {
    /// Registers (or refreshes); `expires` 0 unregisters.
    pub fn register(&mut self, now: Instant, expires: u32) {
        self.reg_auth_tries = 0;
        self.cfg.register_expires = expires;
        self.send_register(now, None);
    }

    pub(super) fn send_register(&mut self, now: Instant, authorization: Option<String>) {
        self.reg_cseq += 1;
        let tag = self.ids.tag();
        let mut req = OutRequest {
            method: Some(Method::Register),
            uri: format!("sip:{}", self.cfg.server),
            from: format!("{};tag={tag}", self.aor()),
            to: self.aor(),
            call_id: self.reg_call_id.clone(),
            cseq: self.reg_cseq,
            max_forwards: 70,
            extra: vec![
                ("Contact".into(), self.contact()),
                ("Expires".into(), self.cfg.register_expires.to_string()),
                ("User-Agent".into(), "hotline-gw softphone".into()),
            ],
            ..Default::default()
        };
        if let Some(a) = authorization {
            req.extra.push(("Authorization".into(), a));
        }
        let tx = self.tl.send_request(now, self.server(), req);
        self.by_tx.insert(tx, Role::Register);
    }

    pub(super) fn on_register_response(&mut self, now: Instant, resp: &Response) {
        match resp.code {
            100..=199 => {}
            200..=299 => {
                let expires = resp
                    .header("Expires")
                    .and_then(|e| e.trim().parse().ok())
                    .or_else(|| {
                        resp.header("Contact").and_then(|c| {
                            message::param(c.rsplit('>').next().unwrap_or(""), "expires")
                                .and_then(|e| e.parse().ok())
                        })
                    })
                    .unwrap_or(self.cfg.register_expires);
                self.events.push_back(UaEvent::Registered { expires });
                if expires > 0 {
                    let refresh = Duration::from_secs(u64::from(expires) * 3 / 4);
                    self.arm(REGISTER_KEY, Timer::Reregister, now + refresh);
                }
            }
            401 | 407 if self.reg_auth_tries < 2 => {
                self.reg_auth_tries += 1;
                match self.answer_challenge(resp, "REGISTER", &format!("sip:{}", self.cfg.server)) {
                    Some(a) => self.send_register(now, Some(a)),
                    None => self.events.push_back(UaEvent::RegisterFailed {
                        status: status_line(resp),
                    }),
                }
            }
            _ => self.events.push_back(UaEvent::RegisterFailed {
                status: status_line(resp),
            }),
        }
    }

    pub(super) fn answer_challenge(
        &mut self,
        resp: &Response,
        method: &str,
        uri: &str,
    ) -> Option<String> {
        let password = self.cfg.password.clone()?;
        let name = if resp.code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let c = digest::pick(resp.header_all(name))?;
        let cnonce = format!("{:016x}", self.ids.next_u64());
        Some(digest::authorization(
            &c,
            &self.cfg.user,
            &password,
            method,
            uri,
            &cnonce,
            1,
        ))
    }
}

/// A response's status line as the server wrote it (`401 Unauthorized (…)`):
/// the reason phrase often says why, the code alone does not.
pub(super) fn status_line(resp: &Response) -> String {
    format!("{} {}", resp.code, resp.reason)
}
