//! Which Ready member a queue rings: the four strategies as one ranking.
//!
//! Why a separate file: the choice is the part supervisors argue about; here it is
//! a pure function of the candidates, readable and testable on its own. Which
//! agents are candidates (Ready, members, not yet tried this round, skilled) is
//! decided by the caller (`dispatch.rs`).

use std::time::Instant;

use super::config::Strategy;

/// A Ready member that may take the call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    pub id: &'a str,
    /// Position in the queue's member list.
    pub member_index: usize,
    /// When the agent last became Ready after work (login, wrap-up, unpause).
    pub idle_since: Instant,
    /// Tie-break for equal `idle_since`: the order in which agents became Ready.
    pub ready_seq: u64,
    /// Calls answered since login.
    pub answered: u64,
    /// The agent's priority for the call's skill, if the agent has it.
    pub skill_priority: Option<u8>,
}

/// Picks the candidate to ring. `rr_last` is the member index rung last by this
/// queue (the round-robin pointer); `members` the length of the member list.
pub(super) fn pick<'a>(
    strategy: Strategy,
    candidates: &[Candidate<'a>],
    rr_last: Option<usize>,
    members: usize,
) -> Option<&'a str> {
    let idle = |c: &Candidate| (c.idle_since, c.ready_seq);
    let best = match strategy {
        Strategy::LongestIdle => candidates.iter().min_by_key(|c| idle(c)),
        Strategy::FewestCalls => candidates.iter().min_by_key(|c| (c.answered, idle(c))),
        Strategy::Skills => candidates.iter().min_by_key(|c| {
            // Skilled first (None sorts after every Some), best priority, longest idle.
            (c.skill_priority.is_none(), c.skill_priority, idle(c))
        }),
        Strategy::RoundRobin => {
            let start = rr_last.map_or(0, |i| i + 1);
            candidates
                .iter()
                .min_by_key(|c| (c.member_index + members - start % members) % members)
        }
    };
    best.map(|c| c.id)
}
