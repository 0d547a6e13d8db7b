//! What the calls share and their handlers use: time and ids, answers on server
//! transactions, relay orders, the event log and timers of one call, and the
//! queue of calls that are done.

use std::cmp::Reverse;
use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{Call, CallKey, CallTimer, Role, Shared};
use crate::cdr;
use crate::media::command::MediaCommand;
use crate::registrar::RegisterReply;
use crate::sip::Transport;
use crate::sip::builder::response_to;
use crate::sip::dialog::Dialog;
use crate::sip::message::Method;
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

impl Shared {
    /// Unix milliseconds at `now`.
    pub(crate) fn unix_ms(&self, now: Instant) -> i64 {
        let (at, unix) = self.wall;
        match now.checked_duration_since(at) {
            Some(d) => unix + d.as_millis() as i64,
            None => unix - at.duration_since(now).as_millis() as i64,
        }
    }

    /// Local time (the dialplan's UTC offset) at `now`.
    pub(super) fn local_time(&self, now: Instant) -> crate::dialplan::time::LocalTime {
        let secs = self.unix_ms(now).div_euclid(1000);
        crate::dialplan::time::local_time(secs, self.dialplan.utc_offset_minutes)
    }

    /// The id of a call: the record's, the stub's and the screen pop's.
    pub(super) fn call_id_of(&self, key: CallKey) -> String {
        if let Some(id) = self.adopted.get(&key) {
            return id.clone();
        }
        format!("{}-{key}", self.id_prefix)
    }

    /// The local date `workdays` working days after `now`, on the calendar.
    pub(super) fn deadline(&self, now: Instant, workdays: u32) -> Option<String> {
        let today = self.local_time(now).date();
        Some(
            self.dialplan
                .calendar
                .add_working_days(today, workdays)
                .to_string(),
        )
    }

    /// Ends a leg the call no longer wants (already acknowledged): BYE, whose
    /// answer changes nothing.
    pub(super) fn bye_leg(&mut self, now: Instant, key: CallKey, dialog: &mut Dialog) {
        let bye = dialog.request(Method::Bye, None, Bytes::new());
        let tx = self.tl.send_request(now, dialog.peer, bye);
        self.by_tx.insert(tx, (key, Role::Fire));
    }

    /// Sends a plain response on a server transaction.
    pub(super) fn reply(&mut self, now: Instant, tx: TxId, req: &Request, code: u16, reason: &str) {
        let tag = self.ids.tag();
        let bytes = response_to(req, code, reason, Some(&tag)).finish_empty();
        self.respond(now, tx, code, bytes);
    }

    pub(super) fn respond(&mut self, now: Instant, tx: TxId, code: u16, bytes: Bytes) {
        if let Err(e) = self.tl.respond(now, tx, code, bytes) {
            debug!(error = %e, "response not sent");
        }
    }

    /// `503` with a short Retry-After from a node that does not answer calls
    /// now (standby or draining): the proxy in front tries the active node.
    pub(super) fn not_active(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        serving: super::Serving,
    ) {
        let tag = self.ids.tag();
        let phrase = match serving {
            super::Serving::Draining => "Service Unavailable (draining)",
            _ => "Service Unavailable (standby)",
        };
        let mut m = response_to(req, 503, phrase, Some(&tag));
        m.header(
            "Retry-After",
            &super::serving::NOT_ACTIVE_RETRY_AFTER_S.to_string(),
        );
        self.respond(now, tx, 503, m.finish_empty());
    }

    /// Sends the registrar's answer (to a REGISTER, or a challenge or refusal of
    /// an agent's INVITE or REFER) on `tx`.
    pub(super) fn send_registrar_reply(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        reply: &RegisterReply,
    ) {
        let tag = self.ids.tag();
        let mut m = response_to(req, reply.code, &reply.reason, Some(&tag));
        for (name, value) in &reply.headers {
            m.header(name, value);
        }
        self.respond(now, tx, reply.code, m.finish_empty());
    }

    /// Our Contact for a leg on `transport`.
    pub(super) fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:gw@{}>", self.cfg.contact_host),
            Transport::Tcp => format!("<sip:gw@{};transport=tcp>", self.cfg.contact_host),
        }
    }

    pub(super) fn media_cmd(&mut self, cmd: MediaCommand) {
        self.media_out.push_back(cmd);
    }

    /// The call is over: the core removes it and emits its record once the
    /// event being handled has settled.
    pub(super) fn finish_later(&mut self, key: CallKey) {
        if !self.finished.contains(&key) {
            self.finished.push(key);
        }
    }
}

impl Call {
    /// Adds an event to the call's log; the first offer opens its work-order stub.
    pub(super) fn note(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        kind: cdr::EventKind,
        detail: Option<String>,
    ) {
        let first_offer = kind == cdr::EventKind::Offered && !self.offer_noted;
        // A call handed over by another node was first offered there.
        let at_ms = match self.adopted_offer_ms {
            Some(ms) if first_offer => ms,
            _ => sh.unix_ms(now),
        };
        match kind {
            cdr::EventKind::Offered => self.offer_noted = true,
            cdr::EventKind::Ringback => self.ringback_noted = true,
            cdr::EventKind::CallerHungUp
            | cdr::EventKind::CalleeHungUp
            | cdr::EventKind::GatewayEnded => self.end_noted = true,
            _ => {}
        }
        if first_offer {
            sh.offers.push_back(cdr::Offer {
                id: sh.call_id_of(self.key),
                sip_call_id: self.a.call_id.to_string(),
                caller: self.caller.clone(),
                called: self.called.clone(),
                original: self.original.clone(),
                line: self.line.clone(),
                line_name: self.line_name.clone(),
                mode: self.mode.as_str().to_string(),
                department: self.department.clone(),
                trunk: self.trunk.clone(),
                transfer_number: self.transfer_number.clone(),
                offered_to: detail.clone().unwrap_or_default(),
                at_ms,
                deadline: self.deadline.clone(),
            });
        }
        if kind == cdr::EventKind::Answered
            && sh.cfg.clustered
            && !self
                .events
                .iter()
                .any(|e| e.kind == cdr::EventKind::Answered)
        {
            sh.answers.push_back(cdr::Answer {
                id: sh.call_id_of(self.key),
                agent: self.agent.clone(),
                answered_by: self.answered_by.map_or("12345", |b| b.as_str()).to_string(),
                at_ms,
            });
        }
        self.events.push(cdr::Event {
            at_ms,
            kind,
            detail,
        });
    }

    /// Ties a transaction to this call, in a role.
    pub(super) fn track(&mut self, sh: &mut Shared, tx: TxId, role: Role) {
        sh.by_tx.insert(tx, (self.key, role));
        self.txs.push(tx);
    }

    /// Arms one of the call's timers (replacing its deadline).
    pub(super) fn arm(&mut self, sh: &mut Shared, timer: CallTimer, at: Instant) {
        self.timers.set(timer, at);
        sh.timers.push(Reverse((at, self.key, timer)));
    }

    /// Asks the core to remove the call once the current event has settled.
    pub(super) fn finish(&mut self, sh: &mut Shared) {
        sh.finish_later(self.key);
    }
}
