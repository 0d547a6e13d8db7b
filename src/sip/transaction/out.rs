//! Requests the gateway originates, kept in parts so that the transaction layer can
//! build the ACK and CANCEL that belong to them (RFC 3261 §17.1.1.3, §9.1).

use bytes::Bytes;

use crate::sip::builder::MessageBuf;
use crate::sip::message::Method;

/// An outgoing request before the transaction layer adds its Via.
#[derive(Debug, Clone, Default)]
pub struct OutRequest {
    pub method: Option<Method>,
    pub uri: String,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    pub max_forwards: u32,
    /// Route header values, in order.
    pub route: Vec<String>,
    /// Other headers (Contact, Supported, relayed ones…), in order.
    pub extra: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl OutRequest {
    pub fn method(&self) -> &Method {
        self.method.as_ref().unwrap_or(&Method::Options)
    }

    /// Serialises with the given Via value on top.
    pub fn write(&self, via: &str) -> Bytes {
        self.write_as(self.method(), self.cseq, via, &self.to, true)
    }

    /// Serialises a variant: used for ACK (non-2xx) and CANCEL, which repeat the
    /// request's identity but carry no extra headers and no body.
    pub fn write_as(&self, method: &Method, cseq: u32, via: &str, to: &str, full: bool) -> Bytes {
        let mut m = MessageBuf::request(method, &self.uri);
        m.header("Via", via);
        m.header("Max-Forwards", &self.max_forwards.to_string());
        m.header("From", &self.from);
        m.header("To", to);
        m.header("Call-ID", &self.call_id);
        m.header("CSeq", &format!("{cseq} {method}"));
        for r in &self.route {
            m.header("Route", r);
        }
        if !full {
            return m.finish_empty();
        }
        for (name, value) in &self.extra {
            m.header(name, value);
        }
        m.finish(self.content_type.as_deref(), &self.body)
    }
}
