//! The RTP port pool: which local port pairs the relay may use.
//!
//! Why: every anchored leg needs an even RTP port and the odd RTCP port above it
//! (RFC 3550 §11), taken from the configured range. The pool is pure: the call
//! layer takes a pair when it writes an SDP and gives it back when the call ends;
//! the relay thread binds what it is handed. Freed pairs go to the back of the
//! queue, so a port is not reused while late packets of its last call may still
//! arrive.

use std::collections::VecDeque;

/// Even RTP ports of a configured range, handed out oldest-freed first.
#[derive(Debug, Clone)]
pub struct PortPool {
    free: VecDeque<u16>,
    /// Ports handed out and not yet given back, for a cheap double-free check.
    used: std::collections::HashSet<u16>,
}

impl PortPool {
    /// A pool of the even ports in `first..=last` whose odd neighbour is in range too.
    pub fn new(first: u16, last: u16) -> PortPool {
        let start = first + (first % 2);
        let free = (start..last).step_by(2).collect();
        PortPool {
            free,
            used: Default::default(),
        }
    }

    /// How many pairs the pool holds in all.
    pub fn capacity(&self) -> usize {
        self.free.len() + self.used.len()
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// An RTP port (its RTCP port is the next one), or `None` when all are in use.
    pub fn take(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        self.used.insert(port);
        Some(port)
    }

    /// Gives a pair back; a port the pool did not hand out is ignored.
    pub fn give_back(&mut self, port: u16) {
        if self.used.remove(&port) {
            self.free.push_back(port);
        }
    }

    /// Takes a pair out of service for good (the relay could not bind it: another
    /// program holds it).
    pub fn retire(&mut self, port: u16) {
        self.used.remove(&port);
        self.free.retain(|p| *p != port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_even_ports_inside_the_range() {
        let mut p = PortPool::new(20001, 20010);
        let got: Vec<u16> = std::iter::from_fn(|| p.take()).collect();
        assert_eq!(got, vec![20002, 20004, 20006, 20008]);
        assert_eq!(p.capacity(), 4);
        assert_eq!(p.take(), None);
    }

    #[test]
    fn freed_ports_wait_at_the_back() {
        let mut p = PortPool::new(30000, 30007);
        let a = p.take().unwrap();
        p.give_back(a);
        assert_ne!(p.take(), Some(a), "a just-freed port is not reused first");
        p.give_back(a); // not in use any more: ignored
        assert_eq!(p.in_use(), 1);
    }

    #[test]
    fn retired_ports_never_come_back() {
        let mut p = PortPool::new(40000, 40003);
        let a = p.take().unwrap();
        p.retire(a);
        assert_eq!(p.capacity(), 1);
        assert_ne!(p.take(), Some(a));
        assert_eq!(p.take(), None);
    }
}
