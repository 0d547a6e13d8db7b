//! Dialog state (RFC 3261 §12): Call-ID, tags, CSeq, route set and remote target,
//! and the in-dialog requests built from them. Used by the B2BUA for each leg and
//! by the softphone for its calls.

use bytes::Bytes;

use crate::sip::Peer;
use crate::sip::message::Headers;
use crate::sip::message::{Method, Request, Response, addr_spec, split_list};
use crate::sip::transaction::OutRequest;

/// One dialog, seen from the gateway's end.
#[derive(Debug)]
pub struct Dialog {
    pub call_id: Box<str>,
    /// Our tag on this leg (A: the To tag we add; B: our From tag).
    pub local_tag: Box<str>,
    /// The far end's tag, once known (B: from its first response with a tag).
    pub remote_tag: Option<Box<str>>,
    /// Our header with our tag: the To on A, the From on B.
    pub local_hdr: String,
    /// The far end's header with its tag: the From on A, the To on B.
    pub remote_hdr: String,
    /// Request-URI of in-dialog requests (the far end's Contact).
    pub remote_target: String,
    /// Route set for in-dialog requests, in sending order.
    pub route: Vec<String>,
    /// Where this leg's messages go (for A: where its requests came from).
    pub peer: Peer,
    pub local_cseq: u32,
}

impl Dialog {
    /// No dialog yet: the callee leg of a call still waiting in a queue.
    pub fn none() -> Dialog {
        Dialog {
            call_id: "".into(),
            local_tag: "".into(),
            remote_tag: None,
            local_hdr: String::new(),
            remote_hdr: String::new(),
            remote_target: String::new(),
            route: Vec::new(),
            peer: Peer {
                transport: super::Transport::Udp,
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            },
            local_cseq: 0,
        }
    }

    /// The dialog a UAS forms with the sender of an INVITE.
    pub fn uas(req: &Request, peer: Peer, local_tag: String) -> Dialog {
        let to = req.header("To").unwrap_or_default();
        Dialog {
            call_id: req.call_id().unwrap_or_default().into(),
            local_hdr: format!("{to};tag={local_tag}"),
            local_tag: local_tag.into(),
            remote_tag: req.from_tag().map(Into::into),
            remote_hdr: req.header("From").unwrap_or_default().to_string(),
            remote_target: req
                .contact_uri()
                .map(|u| u.text.to_string())
                .unwrap_or_else(|| addr_spec(req.header("From").unwrap_or_default()).into()),
            // A UAS keeps Record-Route in order (RFC 3261 §12.1.1).
            route: req
                .header_all("Record-Route")
                .flat_map(split_list)
                .map(Into::into)
                .collect(),
            peer,
            local_cseq: 0,
        }
    }

    /// Learns the callee's tag, target and route set from a response to our INVITE.
    /// The route set comes from the first response with a tag (an early
    /// dialog), and again from the 2xx that confirms it (RFC 3261 §13.2.2.4).
    pub fn learn_from_response(&mut self, resp: &Response) {
        let first = self.remote_tag.is_none() && resp.to_tag().is_some();
        if let (true, Some(tag)) = (first, resp.to_tag()) {
            self.remote_tag = Some(tag.into());
            self.remote_hdr = resp.header("To").unwrap_or_default().to_string();
        }
        if first || (200..300).contains(&resp.code) {
            // A UAC reverses Record-Route (RFC 3261 §12.1.2).
            let mut route: Vec<String> = resp
                .header_all("Record-Route")
                .flat_map(split_list)
                .map(Into::into)
                .collect();
            route.reverse();
            self.route = route;
        }
        if let Some(contact) = resp.contact_uri() {
            self.remote_target = contact.text.to_string();
        }
    }

    /// A new in-dialog request on this leg (takes the next CSeq).
    pub fn request(
        &mut self,
        method: Method,
        content_type: Option<String>,
        body: Bytes,
    ) -> OutRequest {
        self.local_cseq += 1;
        self.request_with_cseq(method, self.local_cseq, content_type, body)
    }

    /// An in-dialog request with a given CSeq (ACK repeats its INVITE's).
    pub fn request_with_cseq(
        &self,
        method: Method,
        cseq: u32,
        content_type: Option<String>,
        body: Bytes,
    ) -> OutRequest {
        OutRequest {
            method: Some(method),
            uri: self.remote_target.clone(),
            from: self.local_hdr.clone(),
            to: self.remote_hdr.clone(),
            call_id: self.call_id.to_string(),
            cseq,
            max_forwards: 70,
            route: self.route.clone(),
            extra: Vec::new(),
            content_type,
            body,
        }
    }
}
