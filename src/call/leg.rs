//! The legs of a B2BUA call: which side a message belongs to, and [`Leg`], one
//! dialog the gateway placed as a UAC with everything its INVITE has seen.

use bytes::Bytes;

use crate::sip::dialog::Dialog;
use crate::sip::message::Method;
use crate::sip::transaction::{OutRequest, TxId};

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

/// A leg the gateway placed with an INVITE (a callee, an agent, a legacy seat,
/// a transfer target): its dialog, the INVITE's transaction and what it has
/// seen so far. A call without a callee has no `Leg`, never a stand-in.
#[derive(Debug)]
pub(super) struct Leg {
    pub dialog: Dialog,
    /// The INVITE's client transaction; kept after its final response for the
    /// ACK of a 2xx.
    pub invite: TxId,
    /// The INVITE awaits its final response.
    pub pending: bool,
    /// The INVITE's CSeq (its ACK and PRACKs' RAck repeat it).
    pub invite_cseq: u32,
    /// A provisional response has come (a CANCEL may be sent: RFC 3261 §9.1).
    pub provisional: bool,
    /// A CANCEL is wanted but waits for the first provisional response.
    pub cancel_pending: bool,
}

impl Leg {
    /// A leg whose INVITE (CSeq 1) just went out on `invite`.
    pub fn placed(dialog: Dialog, invite: TxId) -> Leg {
        Leg {
            dialog,
            invite,
            pending: true,
            invite_cseq: 1,
            provisional: false,
            cancel_pending: false,
        }
    }

    /// The ACK of the INVITE's 2xx, with an answer in it when the offer was ours.
    pub fn ack(&self, content_type: Option<String>, body: Bytes) -> OutRequest {
        self.dialog
            .request_with_cseq(Method::Ack, self.invite_cseq, content_type, body)
    }

    /// The far end has sent a response with its tag (an early or a confirmed
    /// dialog): in-dialog requests can reach it.
    pub fn has_dialog(&self) -> bool {
        self.dialog.remote_tag.is_some()
    }
}

/// A leg's id within its call: never reused by that call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct LegId(u16);

/// The legs a call has placed and not yet let go, addressed by id. A call
/// usually holds one (the callee), two during a transfer; the table has room
/// for the three-party calls and consultations to come.
#[derive(Debug, Default)]
pub(super) struct Legs {
    next: u16,
    legs: Vec<(LegId, Leg)>,
}

impl Legs {
    /// Adds a leg; its id is new to this call.
    pub fn add(&mut self, leg: Leg) -> LegId {
        let id = LegId(self.next);
        self.next = self.next.wrapping_add(1);
        // Most calls hold one leg at a time: no room for four (Vec's first growth).
        self.legs.reserve_exact(1);
        self.legs.push((id, leg));
        id
    }

    pub fn get(&self, id: LegId) -> Option<&Leg> {
        self.legs.iter().find(|(i, _)| *i == id).map(|(_, l)| l)
    }

    pub fn get_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|(i, _)| *i == id).map(|(_, l)| l)
    }

    /// Takes a leg out of the table.
    pub fn remove(&mut self, id: LegId) -> Option<Leg> {
        let i = self.legs.iter().position(|(l, _)| *l == id)?;
        Some(self.legs.swap_remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Peer;

    fn leg(n: u64) -> Leg {
        let dialog = Dialog {
            call_id: format!("leg-{n}").into(),
            local_tag: format!("t{n}").into(),
            remote_tag: None,
            local_hdr: String::new(),
            remote_hdr: String::new(),
            remote_target: "sip:a@127.0.0.1".into(),
            route: Vec::new(),
            peer: Peer {
                transport: crate::sip::Transport::Udp,
                addr: "127.0.0.1:5060".parse().expect("an address"),
            },
            local_cseq: 1,
        };
        Leg::placed(dialog, TxId(n))
    }

    #[test]
    fn ids_are_never_reused_and_removal_keeps_the_others() {
        let mut legs = Legs::default();
        let a = legs.add(leg(1));
        let b = legs.add(leg(2));
        assert_ne!(a, b);
        assert_eq!(legs.remove(a).map(|l| l.invite), Some(TxId(1)));
        assert!(legs.get(a).is_none(), "a removed leg is gone");
        let c = legs.add(leg(3));
        assert!(c != a && c != b, "a new leg gets a new id");
        assert_eq!(legs.get(b).map(|l| &*l.dialog.call_id), Some("leg-2"));
        assert!(legs.get(c).is_some());
        assert!(legs.remove(a).is_none());
    }
}
