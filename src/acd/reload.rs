//! Applying a new configuration to a running ACD.
//!
//! Nobody is logged out and no caller is dropped because of a reload, except:
//! - an agent (or static member) gone from the configuration is logged out (and
//!   forgotten) now if idle, else when its current ring or call ends;
//! - a queue gone from the configuration hands its unanswered callers on as if
//!   their max wait had passed, using the OLD configuration's overflow: into the
//!   named queue if the new configuration still has it (`Overflow`, cause
//!   `QueueRemoved`, keeping their offer time and place), otherwise out with a
//!   callback (`Expire`, cause `QueueRemoved`). A ring in progress for such a call is
//!   cancelled without counting a miss. Answered calls are untouched.
//!
//! Kept queues keep their callers, order and round-robin pointer; when a queue's
//! `max_wait`, strategy or `skill_widen_after` changed, its callers' deadlines are
//! recomputed from when they entered the queue (a deadline already past fires at
//! the next `handle_timeout`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::config::Member;
use super::{Acd, AcdConfig, AcdError, Agent, AgentId, AgentState, Cause, Pending, Queue, Seat};

impl Acd {
    /// Replaces the configuration (see the module doc). An invalid configuration is
    /// refused and changes nothing.
    pub fn reload(&mut self, cfg: AcdConfig, now: Instant) -> Result<(), AcdError> {
        cfg.validate()?;
        let seats = seats(&cfg);

        let mut old: HashMap<String, Queue> = self
            .queues
            .drain(..)
            .map(|q| (q.cfg.name.clone(), q))
            .collect();
        self.queue_index.clear();
        let mut rearm = Vec::new();
        for (i, qc) in cfg.queues.into_iter().enumerate() {
            let prev = old.remove(&qc.name);
            let changed = prev.as_ref().is_some_and(|p| {
                p.cfg.max_wait != qc.max_wait
                    || p.cfg.strategy != qc.strategy
                    || p.cfg.skill_widen_after != qc.skill_widen_after
            });
            if changed {
                rearm.push(qc.name.clone());
            }
            self.queue_index.insert(qc.name.clone(), i);
            self.queues.push(Queue {
                rr_last: prev.and_then(|p| p.rr_last),
                cfg: qc,
            });
        }

        self.reload_seats(seats, now);

        // Callers of removed queues move on, in their order.
        let mut orphans: Vec<_> = self
            .calls
            .values()
            .filter(|c| c.is_queued() && !self.queue_index.contains_key(&c.queue))
            .map(|c| c.key)
            .collect();
        orphans.sort();
        for key in orphans {
            let overflow = self
                .calls
                .get(&key.call)
                .and_then(|c| old.get(&c.queue))
                .map(|q| q.cfg.overflow.clone());
            self.leave_to(now, key.call, Cause::QueueRemoved, overflow);
        }

        let mut moved: Vec<_> = self
            .calls
            .iter()
            .filter(|(_, c)| c.is_queued() && rearm.contains(&c.queue))
            .map(|(id, _)| *id)
            .collect();
        moved.sort();
        for call in moved {
            if let Some(c) = self.calls.get_mut(&call) {
                c.max_wait_due = false;
            }
            self.arm_queue_timers(call);
        }

        self.dispatch(now);
        Ok(())
    }

    /// Adds, updates and removes agents and static members.
    fn reload_seats(&mut self, mut seats: BTreeMap<AgentId, NewSeat>, now: Instant) {
        let ids: Vec<AgentId> = self.agents.keys().cloned().collect();
        for id in ids {
            let Some(new) = seats.remove(&id) else {
                self.remove_seat(&id, now);
                continue;
            };
            let a = self.agents.get_mut(&id).expect("listed above");
            a.name = new.name;
            a.skills = new.skills;
            a.removed = false;
            match (new.target, &mut a.seat) {
                (Some(t), Seat::Static { target }) => *target = t,
                (None, Seat::Agent { .. }) => {}
                (Some(target), seat @ Seat::Agent { .. }) => {
                    // Now a static member: always logged in.
                    *seat = Seat::Static { target };
                    a.pending = None;
                    if a.state == AgentState::LoggedOut {
                        self.make_ready(&id, now, true);
                    }
                }
                (None, seat @ Seat::Static { .. }) => {
                    // Now an agent: logged out until it logs in.
                    *seat = Seat::Agent { contact: None };
                    if a.state.is_busy() {
                        a.pending = Some(Pending::Logout);
                    } else {
                        self.set_state(&id, AgentState::LoggedOut, now);
                    }
                }
            }
        }
        for (id, new) in seats {
            let is_static = new.target.is_some();
            let seat = match new.target {
                Some(target) => Seat::Static { target },
                None => Seat::Agent { contact: None },
            };
            self.agents
                .insert(id.clone(), Agent::new(new.name, new.skills, seat, now));
            if is_static {
                self.make_ready(&id, now, true);
            }
        }
    }

    /// A seat gone from the configuration: logged out and forgotten once idle.
    fn remove_seat(&mut self, id: &str, now: Instant) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        a.removed = true;
        match &a.state {
            AgentState::LoggedOut => {
                self.agents.remove(id);
            }
            s if s.is_busy() => {}
            _ => self.set_state(id, AgentState::LoggedOut, now),
        }
    }
}

/// A seat as the new configuration describes it.
#[derive(Debug)]
struct NewSeat {
    name: String,
    skills: Vec<(String, u8)>,
    /// `Some` for a static member.
    target: Option<String>,
}

fn seats(cfg: &AcdConfig) -> BTreeMap<AgentId, NewSeat> {
    let mut seats: BTreeMap<AgentId, NewSeat> = cfg
        .agents
        .iter()
        .map(|a| {
            let seat = NewSeat {
                name: a.name.clone(),
                skills: a.skills.clone(),
                target: None,
            };
            (a.id.clone(), seat)
        })
        .collect();
    for m in cfg.queues.iter().flat_map(|q| &q.members) {
        if let Member::Static { id, target } = m {
            seats.entry(id.clone()).or_insert_with(|| NewSeat {
                name: id.clone(),
                skills: Vec::new(),
                target: Some(target.clone()),
            });
        }
    }
    seats
}
