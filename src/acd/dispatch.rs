//! Matching waiting calls to Ready agents.
//!
//! Calls are served in [`WaitKey`](super::queue::WaitKey) order across all queues
//! (priority, then original offer time). For each call, the candidates are the
//! Ready members of its queue that qualify (with `Skills` and a skill, before
//! widening: only members having the skill) and were not yet rung for it in this
//! round. A round ends when every qualifying logged-in, unpaused member has been
//! rung: then, [`NEXT_ROUND_DELAY`] after the last miss, the missers may be rung
//! again. Meanwhile later callers may take those agents. The queue's strategy
//! picks among the candidates (`strategy.rs`).

use std::time::Instant;

use super::config::Strategy;
use super::strategy::{self, Candidate};
use super::timer::NEXT_ROUND_DELAY;
use super::{Acd, AgentId, AgentState, CallId, CallState, Command, Timer};

impl Acd {
    /// Rings Ready agents for waiting calls until no more pairs match.
    pub(super) fn dispatch(&mut self, now: Instant) {
        let mut ready = self
            .agents
            .values()
            .filter(|a| a.state == AgentState::Ready)
            .count();
        if ready == 0 || self.waiting.is_empty() {
            return;
        }
        let order: Vec<_> = self.waiting.iter().map(|k| k.call).collect();
        for call in order {
            if ready == 0 {
                break;
            }
            if let Some(agent) = self.choose(now, call) {
                self.ring(now, call, agent);
                ready -= 1;
            }
        }
    }

    /// The agent to ring for `call`, starting a new round if this one is over.
    fn choose(&mut self, now: Instant, call: CallId) -> Option<AgentId> {
        let c = self.calls.get(&call)?;
        let q = self.queue(&c.queue)?;
        let skill = match q.cfg.strategy {
            Strategy::Skills => c.skill.as_deref(),
            _ => None,
        };
        let must_have_skill = skill.is_some() && !c.widened;
        let qualifies = |id: &str| {
            self.agents.get(id).filter(|a| {
                a.is_available()
                    && a.target().is_some()
                    && (!must_have_skill || skill.is_some_and(|s| a.skill_priority(s).is_some()))
            })
        };
        let round_over = !c.tried.is_empty()
            && q.cfg
                .members
                .iter()
                .filter(|m| qualifies(m.id()).is_some())
                .all(|m| c.tried.iter().any(|t| t == m.id()));
        if round_over
            && let Some(at) = c.last_miss.map(|t| t + NEXT_ROUND_DELAY)
            && now < at
        {
            if c.next_round_at != Some(at)
                && let Some(c) = self.calls.get_mut(&call)
            {
                c.next_round_at = Some(at);
                self.timers.push(at, Timer::NextRound(call));
            }
            return None;
        }
        let tried: &[AgentId] = if round_over { &[] } else { &c.tried };
        let candidates: Vec<Candidate> = q
            .cfg
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| !tried.iter().any(|t| t == m.id()))
            .filter_map(|(i, m)| {
                let a = qualifies(m.id()).filter(|a| a.state == AgentState::Ready)?;
                Some(Candidate {
                    id: m.id(),
                    member_index: i,
                    idle_since: a.idle_since,
                    ready_seq: a.ready_seq,
                    answered: a.answered,
                    skill_priority: skill.and_then(|s| a.skill_priority(s)),
                })
            })
            .collect();
        let rr_last = q.rr_last.as_deref().and_then(|id| q.member_index(id));
        let chosen = strategy::pick(q.cfg.strategy, &candidates, rr_last, q.cfg.members.len())
            .map(str::to_owned);
        if round_over && let Some(c) = self.calls.get_mut(&call) {
            c.tried.clear();
        }
        chosen
    }

    /// Rings `agent` for `call`.
    fn ring(&mut self, now: Instant, call: CallId, agent: AgentId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(&qi) = self.queue_index.get(&c.queue) else {
            return;
        };
        let q = &mut self.queues[qi];
        let until = now + q.cfg.ring_timeout;
        q.rr_last = Some(agent.clone());
        self.waiting.remove(&c.key);
        c.state = CallState::Ringing {
            agent: agent.clone(),
            until,
        };
        c.tried.push(agent.clone());
        self.timers.push(until, Timer::Ring(call));
        let target = self
            .agents
            .get(&agent)
            .and_then(|a| a.target())
            .unwrap_or_default()
            .to_owned();
        self.set_state(&agent, AgentState::Ringing { call }, now);
        self.commands.push_back(Command::Ring {
            call,
            agent,
            target,
        });
    }
}
