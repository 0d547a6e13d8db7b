//! The core as a dispatcher: each transaction event finds its call once and the
//! call handles it; then what the handlers set in motion settles (ACD commands
//! carried out, finished calls removed and recorded) before the next event.

use std::time::Instant;

use tracing::debug;

use super::{ALLOW, Core};
use crate::sip::Peer;
use crate::sip::builder::response_to;
use crate::sip::message::{Headers, Method, Request};
use crate::sip::transaction::{TxEvent, TxId};

impl Core {
    /// Handles every transaction event, letting each settle.
    pub(crate) fn process_events(&mut self, now: Instant) {
        self.settle(now);
        while let Some(ev) = self.sh.tl.poll_event() {
            match ev {
                TxEvent::Request {
                    tx,
                    request,
                    peer,
                    cancels,
                } => self.on_request(now, tx, request, peer, cancels),
                TxEvent::Ack { tx, request, .. } => self.on_ack(tx, &request),
                TxEvent::Response { tx, response } if self.probes.owns(tx) => {
                    self.on_probe_response(now, tx, &response)
                }
                TxEvent::Response { tx, response } => self.on_response(now, tx, response),
                TxEvent::Timeout { tx } if self.probes.owns(tx) => self.on_probe_lost(now, tx),
                TxEvent::Timeout { tx } => self.on_timeout(now, tx),
                TxEvent::AckTimeout { tx } => self.on_ack_timeout(now, tx),
            }
            self.settle(now);
        }
    }

    /// Carries out the ACD's commands and removes the calls their handlers
    /// finished, until neither is left. A command can finish a call, and a
    /// finished call can free an agent for the next caller.
    pub(super) fn settle(&mut self, now: Instant) {
        loop {
            if let Some(cmd) = self.sh.acd.poll_command() {
                self.on_acd_command(now, cmd);
                continue;
            }
            if let Some(key) = self.sh.finished.pop() {
                self.finish(now, key);
                continue;
            }
            break;
        }
        while let Some(crate::acd::AcdEvent::AgentState { agent, state }) = self.sh.acd.poll_event()
        {
            debug!(agent, ?state, "agent state");
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        peer: Peer,
        cancels: Option<TxId>,
    ) {
        match req.method {
            Method::Cancel => self.on_cancel(now, tx, &req, cancels),
            Method::Invite if req.to_tag().is_none() => self.new_call(now, tx, req, peer),
            _ if req.to_tag().is_some() => self.in_dialog(now, tx, req, peer),
            Method::Register | Method::Options if self.serving != super::Serving::Active => {
                self.sh.not_active(now, tx, &req, self.serving);
            }
            Method::Register => self.on_register(now, tx, &req, peer),
            Method::Options => {
                let mut m = response_to(&req, 200, "OK", Some(&self.sh.ids.tag()));
                m.header("Allow", ALLOW)
                    .header("Accept", "application/sdp")
                    .header("Supported", "");
                self.sh.respond(now, tx, 200, m.finish_empty());
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Invite => {
                let phrase = "Call/Transaction Does Not Exist";
                self.sh.reply(now, tx, &req, 481, phrase);
            }
            Method::Other(_) => self.sh.reply(now, tx, &req, 501, "Not Implemented"),
            _ => {
                let mut m = response_to(&req, 405, "Method Not Allowed", Some(&self.sh.ids.tag()));
                m.header("Allow", ALLOW);
                self.sh.respond(now, tx, 405, m.finish_empty());
            }
        }
    }
}
