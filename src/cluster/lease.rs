//! The ACD lease as this node sees it: a pure state machine driven by `now` and
//! the database's answers, so its timing is tested on a virtual clock.
//!
//! ```text
//!  Standby ──acquire granted──► Active ──renew granted──► Active (deadline moves)
//!     ▲                           │ renew refused (another holder)
//!     │                           │ or no renewal before the deadline
//!     └───────────────────────────┘
//!  any ──drain──► Draining (the lease is released; never taken again)
//! ```
//!
//! The deadline is counted from when the granting request was *sent*, minus a
//! margin, on this node's monotonic clock. The database counts the lease's
//! expiry from when it *ran* the statement, which is later: so this node stops
//! ringing agents before any other node can be granted the lease, whatever the
//! two nodes' wall clocks say (clock rates are assumed to agree within the
//! margin).

use std::time::{Duration, Instant};

/// What the node should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask the database for the lease (take it, or renew it).
    Acquire,
    /// Nothing until [`Lease::next_at`].
    Wait,
}

/// A change of role the node must carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The lease is ours (at this epoch): answer calls.
    BecameActive { epoch: i64 },
    /// The lease is lost or lapsed: stop ringing agents.
    LostLease,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standby,
    Active { epoch: i64, valid_until: Instant },
    Draining,
}

/// The lease keeper.
#[derive(Debug)]
pub struct Lease {
    ttl: Duration,
    every: Duration,
    role: Role,
    next_at: Instant,
}

impl Lease {
    /// A keeper that starts as a standby and asks at once.
    pub fn new(now: Instant, ttl: Duration, every: Duration) -> Lease {
        Lease {
            ttl,
            every,
            role: Role::Standby,
            next_at: now,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// When to call [`Lease::poll`] next.
    pub fn next_at(&self) -> Instant {
        match self.role {
            Role::Active { valid_until, .. } => self.next_at.min(valid_until),
            _ => self.next_at,
        }
    }

    /// What to do at `now`; a lapsed deadline comes back as `LostLease`.
    pub fn poll(&mut self, now: Instant) -> (Step, Option<Change>) {
        let mut change = None;
        if let Role::Active { valid_until, .. } = self.role
            && now >= valid_until
        {
            self.role = Role::Standby;
            change = Some(Change::LostLease);
        }
        if self.role == Role::Draining || now < self.next_at {
            return (Step::Wait, change);
        }
        self.next_at = now + self.every;
        (Step::Acquire, change)
    }

    /// The database answered a request sent at `sent_at`: `Ok(Some(epoch))`
    /// granted, `Ok(None)` another node holds it, `Err(())` no answer (the
    /// database is away: the deadline decides).
    pub fn answered(
        &mut self,
        now: Instant,
        sent_at: Instant,
        answer: Result<Option<i64>, ()>,
    ) -> Option<Change> {
        if self.role == Role::Draining {
            return None;
        }
        // Stopping ringing a little before the database would let the lease go.
        let margin = self.ttl / 5;
        let valid_until = sent_at + self.ttl - margin;
        match (self.role, answer) {
            (_, Ok(Some(_))) if valid_until <= now => {
                // Granted, but the answer came too late to rely on: ask again.
                self.next_at = now;
                None
            }
            (Role::Active { epoch, .. }, Ok(Some(e))) if e == epoch => {
                self.role = Role::Active { epoch, valid_until };
                None
            }
            (_, Ok(Some(epoch))) => {
                // (A new epoch while active: another node held it in between,
                // so this node takes over afresh.)
                self.role = Role::Active { epoch, valid_until };
                Some(Change::BecameActive { epoch })
            }
            (Role::Active { .. }, Ok(None)) => {
                self.role = Role::Standby;
                Some(Change::LostLease)
            }
            (_, Ok(None)) | (_, Err(())) => None,
        }
    }

    /// Stops taking the lease (SIGTERM); returns the epoch to release, if held.
    pub fn drain(&mut self) -> Option<i64> {
        let held = match self.role {
            Role::Active { epoch, .. } => Some(epoch),
            _ => None,
        };
        self.role = Role::Draining;
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(3000);
    const EVERY: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_standby_asks_every_period_and_becomes_active_when_granted() {
        let t0 = Instant::now();
        let mut l = Lease::new(t0, TTL, EVERY);
        assert_eq!(l.poll(t0), (Step::Acquire, None));
        assert_eq!(l.answered(t0 + ms(5), t0, Ok(None)), None, "held elsewhere");
        assert_eq!(l.poll(t0 + ms(100)), (Step::Wait, None));
        assert_eq!(l.poll(t0 + ms(500)), (Step::Acquire, None));
        let c = l.answered(t0 + ms(505), t0 + ms(500), Ok(Some(7)));
        assert_eq!(c, Some(Change::BecameActive { epoch: 7 }));
        let Role::Active { valid_until, .. } = l.role() else {
            panic!("{:?}", l.role())
        };
        assert_eq!(
            valid_until,
            t0 + ms(500) + TTL - TTL / 5,
            "counted from the send"
        );
    }

    #[test]
    fn renewals_move_the_deadline_and_silence_past_it_steps_down() {
        let t0 = Instant::now();
        let mut l = Lease::new(t0, TTL, EVERY);
        l.poll(t0);
        l.answered(t0, t0, Ok(Some(1)));
        l.poll(t0 + EVERY);
        assert_eq!(l.answered(t0 + EVERY, t0 + EVERY, Ok(Some(1))), None);
        // The database goes away: requests go unanswered.
        let mut now = t0 + EVERY;
        let deadline = t0 + EVERY + TTL - TTL / 5;
        while now < deadline {
            now += ms(100);
            let (_, change) = l.poll(now);
            if now < deadline {
                assert_eq!(change, None, "still ours at {:?}", now - t0);
                l.answered(now, now, Err(()));
            } else {
                assert_eq!(change, Some(Change::LostLease), "fenced at the deadline");
            }
        }
        assert_eq!(l.role(), Role::Standby);
    }

    #[test]
    fn another_holder_answering_takes_the_role_at_once() {
        let t0 = Instant::now();
        let mut l = Lease::new(t0, TTL, EVERY);
        l.poll(t0);
        l.answered(t0, t0, Ok(Some(1)));
        l.poll(t0 + EVERY);
        assert_eq!(
            l.answered(t0 + EVERY, t0 + EVERY, Ok(None)),
            Some(Change::LostLease)
        );
    }

    #[test]
    fn a_grant_that_arrives_after_its_own_deadline_is_not_trusted() {
        let t0 = Instant::now();
        let mut l = Lease::new(t0, TTL, EVERY);
        l.poll(t0);
        // The database was slow: the answer took longer than the lease.
        assert_eq!(l.answered(t0 + TTL, t0, Ok(Some(3))), None);
        assert_eq!(l.role(), Role::Standby);
        assert_eq!(l.poll(t0 + TTL).0, Step::Acquire, "asks again at once");
    }

    #[test]
    fn draining_releases_and_never_asks_again() {
        let t0 = Instant::now();
        let mut l = Lease::new(t0, TTL, EVERY);
        l.poll(t0);
        l.answered(t0, t0, Ok(Some(4)));
        assert_eq!(l.drain(), Some(4));
        assert_eq!(l.poll(t0 + ms(10_000)), (Step::Wait, None));
        assert_eq!(l.answered(t0, t0, Ok(Some(4))), None);
    }
}
