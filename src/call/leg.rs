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
