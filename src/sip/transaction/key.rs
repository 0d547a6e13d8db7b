//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).

use crate::sip::message::{Headers, Method, Request, Response, TopVia};

/// RFC 3261's magic cookie: a branch that starts with it is globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a server transaction. ACK maps to the INVITE it acknowledges; CANCEL
/// stays distinct, so a CANCEL and its INVITE share every field but the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// RFC 3261: branch, sent-by, method.
    Rfc3261 {
        branch: Box<str>,
        sent_by: Box<str>,
        method: Method,
    },
    /// RFC 2543 peers with no magic cookie: the request's identifying fields.
    Rfc2543 { fields: Box<str>, method: Method },
}

impl ServerKey {
    /// The key of a request; `None` when it has no top Via.
    pub fn of(req: &Request, via: &TopVia) -> ServerKey {
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        match &via.branch {
            Some(b) if b.starts_with(MAGIC_COOKIE) => ServerKey::Rfc3261 {
                branch: b.clone(),
                sent_by: via.sent_by.to_ascii_lowercase().into(),
                method,
            },
            _ => {
                let cseq = req.cseq().map(|(n, _)| n).unwrap_or_default();
                let fields = format!(
                    "{}|{}|{}|{}|{}",
                    req.uri,
                    req.from_tag().unwrap_or_default(),
                    req.call_id().unwrap_or_default(),
                    cseq,
                    via.sent_by
                );
                ServerKey::Rfc2543 {
                    fields: fields.into(),
                    method,
                }
            }
        }
    }

    /// The key of the same transaction with another method (CANCEL → its INVITE).
    pub fn with_method(&self, method: Method) -> ServerKey {
        match self.clone() {
            ServerKey::Rfc3261 {
                branch, sent_by, ..
            } => ServerKey::Rfc3261 {
                branch,
                sent_by,
                method,
            },
            ServerKey::Rfc2543 { fields, .. } => ServerKey::Rfc2543 { fields, method },
        }
    }
}

/// Identifies a client transaction: our own branch and the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: Box<str>,
    pub method: Method,
}

impl ClientKey {
    /// The key a response belongs to.
    pub fn of_response(resp: &Response) -> Option<ClientKey> {
        let branch = resp.top_via()?.branch?;
        let (_, method) = resp.cseq()?;
        let method = if method == Method::Ack {
            Method::Invite
        } else {
            method
        };
        Some(ClientKey { branch, method })
    }
}

/// Identifies a request for merged-request detection (RFC 3261 §8.2.2.2): the same
/// request arriving over two paths has these equal but a different branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MergeKey {
    pub from_tag: Box<str>,
    pub call_id: Box<str>,
    pub cseq: u32,
    pub method: Method,
}

impl MergeKey {
    /// Only out-of-dialog requests (no To tag) are checked.
    pub fn of(req: &Request) -> Option<MergeKey> {
        if req.to_tag().is_some() || matches!(req.method, Method::Ack | Method::Cancel) {
            return None;
        }
        let (cseq, method) = req.cseq()?;
        Some(MergeKey {
            from_tag: req.from_tag()?.into(),
            call_id: req.call_id()?.into(),
            cseq,
            method,
        })
    }
}
