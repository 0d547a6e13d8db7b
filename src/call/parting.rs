//! An agent released by a blind transfer is given a moment to hang up itself
//! (RFC 5589 §6: the transferor ends its dialog once told the transfer
//! succeeded) before the gateway sends BYE. Sent at once, the BYE can
//! overtake the REFER's `202` on the way (a proxy's parallel workers reorder
//! them) and the phone drops the late `202`. Meanwhile its leg is kept apart
//! from the call: a BYE on it is answered, anything else gets `481`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::leg::Leg;
use super::{CallKey, Core, Shared};
use crate::sip::message::{Headers, Method, Request};
use crate::sip::transaction::TxId;

/// How long a released agent has to hang up itself.
pub(super) const GRACE: Duration = Duration::from_millis(1500);

/// A released agent's leg, by its Call-ID.
#[derive(Debug)]
pub(super) struct Parting {
    leg: Leg,
    key: CallKey,
    until: Instant,
}

/// Released agents' legs waiting for their BYE.
#[derive(Debug, Default)]
pub(super) struct Partings(HashMap<Box<str>, Parting>);

impl Shared {
    /// Keeps `leg` (an agent a transfer released) until it hangs up, or BYEs
    /// it after [`GRACE`].
    pub(super) fn part(&mut self, now: Instant, key: CallKey, leg: Leg) {
        self.by_b.remove(&leg.dialog.call_id);
        let id = leg.dialog.call_id.clone();
        self.partings.0.insert(
            id,
            Parting {
                leg,
                key,
                until: now + GRACE,
            },
        );
    }

    /// When the next released agent's grace is up.
    pub(super) fn parting_deadline(&self) -> Option<Instant> {
        self.partings.0.values().map(|p| p.until).min()
    }

    /// BYEs the released agents whose grace is up.
    pub(super) fn expire_partings(&mut self, now: Instant) {
        let due: Vec<Box<str>> = self
            .partings
            .0
            .iter()
            .filter(|(_, p)| p.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            if let Some(mut p) = self.partings.0.remove(&id) {
                self.bye_leg(now, p.key, &mut p.leg.dialog);
            }
        }
    }
}

impl Core {
    /// An in-dialog request on a released agent's leg: its BYE is answered
    /// and the leg forgotten; anything else gets `481`. `false`: not one.
    pub(super) fn on_parting_request(&mut self, now: Instant, tx: TxId, req: &Request) -> bool {
        let Some(call_id) = req.call_id() else {
            return false;
        };
        let tags = (req.from_tag(), req.to_tag());
        let Some(p) = self.sh.partings.0.get(call_id) else {
            return false;
        };
        let d = &p.leg.dialog;
        let ours = tags.0.as_deref() == d.remote_tag.as_deref()
            && tags.1.as_deref() == Some(&*d.local_tag);
        if !ours {
            return false;
        }
        if req.method == Method::Bye {
            self.sh.partings.0.remove(call_id);
            self.sh.reply(now, tx, req, 200, "OK");
        } else {
            self.sh
                .reply(now, tx, req, 481, "Call/Transaction Does Not Exist");
        }
        true
    }
}
