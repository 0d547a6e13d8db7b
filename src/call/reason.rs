//! Stable reason codes: every call ends with exactly one (CONVENTIONS.md point 5).
//!
//! The strings are part of the public interface: they are stored in call records,
//! exported as metric labels and matched by operators' alerting. Never rename one;
//! add a new code instead.

use std::fmt;

/// Why a call ended, and which side it is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The caller hung up (BYE from the caller) after the call was answered.
    CallerHangup,
    /// The callee hung up (BYE from the callee) after the call was answered.
    CalleeHangup,
    /// The caller cancelled before an answer (CANCEL, or BYE on an early dialog).
    CallerCancelled,
    /// The call reached its configured maximum duration.
    MaxDuration,
    /// No dialplan line for the called number: `404`.
    NoRoute,
    /// Over the concurrent-call limit: `503` with `Retry-After`.
    Overload,
    /// The callee answered `486`/`600`.
    CalleeBusy,
    /// The callee refused with another final response (relayed with its reason).
    CalleeRejected,
    /// The callee never answered the INVITE at all (Timer B): `408`.
    CalleeTimeout,
    /// The callee rang but did not answer within the ring timeout.
    CalleeNoAnswer,
    /// The callee could not be reached (transport failure).
    CalleeUnreachable,
    /// The caller never acknowledged the `200 OK` (Timer L).
    CallerNoAck,
    /// The gateway refused the request as malformed or unsupported (`4xx` of its own).
    InvalidRequest,
    /// The caller waited the queue's maximum and gets a callback (漏接回拨).
    QueueCallback,
    /// The caller's queue was removed by a reload and had no overflow.
    QueueRemoved,
    /// The INVITE came from no trunk and no authenticated agent: `403`.
    UntrustedSource,
    /// The line exists but is not in service on this date: `404`.
    LineNotInService,
    /// New calls refused while finished calls wait for the database.
    StoreBacklog,
    /// The gateway was stopped with the call in progress.
    Shutdown,
    /// No RTP from either phone for `[media] timeout_s`: a dead call.
    MediaTimeout,
    /// The caller's offer has no codec the gateway can relay and play prompts in
    /// (PCMA, PCMU): `488`.
    MediaNoCodec,
    /// Every RTP port of `[media] rtp_ports` is in use: `503`.
    MediaNoPorts,
    /// The relay could not bind the call's ports (another program holds them).
    MediaPortUnavailable,
    /// The relay did not take an order for the call's media (its command queue
    /// was full, or the relay has stopped): `503` while unanswered, else BYE.
    MediaRelayBusy,
    /// The caller's INVITE outlived the gateway's guard on it (Timer C, 3 min
    /// without a provisional): it can no longer be answered. Never expected, as
    /// a pending INVITE's provisional is repeated every 50 s.
    CallerTimeout,
    /// A standby node (it does not hold the cluster's ACD lease) refused a new
    /// call with `503`, for the proxy to try the active node.
    ClusterStandby,
    /// A node stopping (SIGTERM) refused a new call with `503`, for the proxy
    /// to try another node.
    ClusterDraining,
    /// The node that held the call died; another node closed its record.
    ClusterNodeLost,
    /// A stopping node could not hand a waiting caller to the active node
    /// (refused, or no answer): the call ended there, with a callback owed.
    ClusterHandoverFailed,
    /// An agent dialled a number that is no line and not owed a callback (or
    /// that the outbound trunk does not allow): `403`, nothing dialled out.
    CallbackNotListed,
    /// An agent dialled a number that is no line and no outbound trunk is
    /// configured: `403`.
    CallbackNoTrunk,
    /// The outbound trunk is at its calls at once or per second: `503`.
    CallbackTrunkBusy,
    /// An agent's consultation call ended by joining its far end to the
    /// agent's citizen (attended transfer): the consultation's own record.
    ConsultTransferred,
}

impl Reason {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CallerHangup => "call.caller_hangup",
            Reason::CalleeHangup => "call.callee_hangup",
            Reason::CallerCancelled => "call.caller_cancelled",
            Reason::MaxDuration => "call.max_duration",
            Reason::NoRoute => "dialplan.no_route",
            Reason::Overload => "gateway.overload",
            Reason::CalleeBusy => "leg.callee_busy",
            Reason::CalleeRejected => "leg.callee_rejected",
            Reason::CalleeTimeout => "leg.callee_timeout",
            Reason::CalleeNoAnswer => "leg.callee_no_answer",
            Reason::CalleeUnreachable => "leg.callee_unreachable",
            Reason::CallerNoAck => "leg.caller_no_ack",
            Reason::InvalidRequest => "request.invalid",
            Reason::QueueCallback => "acd.max_wait_callback",
            Reason::QueueRemoved => "acd.queue_removed_callback",
            Reason::UntrustedSource => "dialplan.untrusted_source",
            Reason::LineNotInService => "dialplan.line_not_in_service",
            Reason::StoreBacklog => "store.backlog",
            Reason::Shutdown => "gateway.shutdown",
            Reason::MediaTimeout => "media.timeout",
            Reason::MediaNoCodec => "media.no_common_codec",
            Reason::MediaNoPorts => "media.no_ports",
            Reason::MediaPortUnavailable => "media.port_unavailable",
            Reason::MediaRelayBusy => "media.relay_busy",
            Reason::CallerTimeout => "leg.caller_timeout",
            Reason::ClusterStandby => "cluster.standby",
            Reason::ClusterDraining => "cluster.draining",
            Reason::ClusterNodeLost => "cluster.node_lost",
            Reason::ClusterHandoverFailed => "cluster.handover_failed",
            Reason::CallbackNotListed => "callback.not_listed",
            Reason::CallbackNoTrunk => "callback.no_trunk",
            Reason::CallbackTrunkBusy => "callback.trunk_busy",
            Reason::ConsultTransferred => "call.consult_transferred",
        }
    }

    /// Every code, for documentation and metrics pre-registration.
    pub const ALL: [Reason; 33] = [
        Reason::CallerHangup,
        Reason::CalleeHangup,
        Reason::CallerCancelled,
        Reason::MaxDuration,
        Reason::NoRoute,
        Reason::Overload,
        Reason::CalleeBusy,
        Reason::CalleeRejected,
        Reason::CalleeTimeout,
        Reason::CalleeNoAnswer,
        Reason::CalleeUnreachable,
        Reason::CallerNoAck,
        Reason::InvalidRequest,
        Reason::QueueCallback,
        Reason::QueueRemoved,
        Reason::UntrustedSource,
        Reason::LineNotInService,
        Reason::StoreBacklog,
        Reason::Shutdown,
        Reason::MediaTimeout,
        Reason::MediaNoCodec,
        Reason::MediaNoPorts,
        Reason::MediaPortUnavailable,
        Reason::MediaRelayBusy,
        Reason::CallerTimeout,
        Reason::ClusterStandby,
        Reason::ClusterDraining,
        Reason::ClusterNodeLost,
        Reason::ClusterHandoverFailed,
        Reason::CallbackNotListed,
        Reason::CallbackNoTrunk,
        Reason::CallbackTrunkBusy,
        Reason::ConsultTransferred,
    ];

    /// The reason with this stable code.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// The reason a callee's final failure response maps to.
    pub fn from_callee_status(code: u16) -> Reason {
        match code {
            486 | 600 => Reason::CalleeBusy,
            408 => Reason::CalleeTimeout,
            _ => Reason::CalleeRejected,
        }
    }

    /// Whether a caller who reached a line and ended this way is owed a
    /// callback (besides an abandon, which the answer-rate rules decide):
    /// given up at the queue's max wait, or turned away for the gateway's
    /// reasons (its load, its store, its RTP ports, no codec in common, a
    /// failed handover between cluster nodes).
    pub fn owes_callback(self) -> bool {
        matches!(
            self,
            Reason::QueueCallback
                | Reason::QueueRemoved
                | Reason::ClusterHandoverFailed
                | Reason::Overload
                | Reason::StoreBacklog
                | Reason::MediaNoPorts
                | Reason::MediaNoCodec
        )
    }

    /// Whether the call was answered before it ended this way.
    pub fn is_answered(self) -> bool {
        matches!(
            self,
            Reason::CallerHangup | Reason::CalleeHangup | Reason::MaxDuration | Reason::CallerNoAck
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason is in `ALL` (metrics count by it, stored codes parse by
    /// it): `as_str` names every variant (its match is exhaustive), so a
    /// reason missing from `ALL` is a code no member of `ALL` has.
    #[test]
    fn all_holds_every_reason() {
        let src = include_str!("reason.rs");
        let body = &src[src.find("pub fn as_str").unwrap()..src.find("pub const ALL").unwrap()];
        let codes: Vec<&str> = body
            .lines()
            .filter_map(|l| l.split("=> \"").nth(1)?.split('"').next())
            .collect();
        assert!(codes.len() >= Reason::ALL.len(), "{codes:?}");
        for code in codes {
            assert!(
                Reason::from_code(code).is_some(),
                "{code} is a reason missing from Reason::ALL"
            );
        }
    }

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "duplicate {r}");
            assert!(r.as_str().contains('.'), "{r} has no layer prefix");
        }
    }
}
