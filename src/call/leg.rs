//! One side of a B2BUA call: a dialog of its own (Call-ID, tags, CSeq, route set,
//! remote target), never sharing an identifier with the other side.

use bytes::Bytes;

use crate::sip::Peer;
use crate::sip::message::Headers;
use crate::sip::message::{Method, Request, Response, addr_spec, split_list};
use crate::sip::transaction::OutRequest;

/// Which side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller: the leg the gateway answers as a UAS.
    A,
    /// The callee: the leg the gateway places as a UAC.
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Dialog state of one leg.
#[derive(Debug)]
pub struct Leg {
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

impl Leg {
    /// The caller's leg, from its INVITE.
    pub fn caller(req: &Request, peer: Peer, local_tag: String) -> Leg {
        let to = req.header("To").unwrap_or_default();
        Leg {
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
    pub fn learn_from_response(&mut self, resp: &Response) {
        if let (None, Some(tag)) = (&self.remote_tag, resp.to_tag()) {
            self.remote_tag = Some(tag.into());
            self.remote_hdr = resp.header("To").unwrap_or_default().to_string();
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
