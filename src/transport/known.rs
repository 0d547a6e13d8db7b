//! The sources the core serves statefully (trunks' networks and the IPs agents
//! registered from), copied where the TCP acceptor and connections can ask
//! without reaching the core task: a known source is exempt from the per-source
//! connection cap, and its connections earn the long idle time.
//!
//! The core task refreshes the copy after each turn, only when the registrar's
//! set of sources changed (a generation number), and on a dialplan reload.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::call::Core;
use crate::dialplan::Dialplan;

/// Trunk networks and registered agents' IPs, shared read-mostly.
///
/// Why: `Core::known_source` lives in the core task; accepting a connection
/// must not wait for that task (a flood fills its queue first).
#[derive(Debug)]
pub(crate) struct KnownSources {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    plan: Arc<Dialplan>,
    registered: HashSet<IpAddr>,
    /// The registrar's generation `registered` was copied at.
    generation: Option<u64>,
}

impl KnownSources {
    pub fn new(plan: Arc<Dialplan>) -> Arc<KnownSources> {
        Arc::new(KnownSources {
            inner: RwLock::new(Inner {
                plan,
                registered: HashSet::new(),
                generation: None,
            }),
        })
    }

    /// Whether `ip` is a trunk's or an IP an agent registered from.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.registered.contains(&ip) || inner.plan.trunk_for(ip).is_some()
    }

    /// The dialplan the core now runs (its trunks).
    pub fn set_plan(&self, plan: Arc<Dialplan>) {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).plan = plan;
    }

    /// Copies the core's registered sources when they changed since the last copy.
    pub fn sync(&self, core: &Core) {
        let (generation, ips) = core.registered_sources();
        let current = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation;
        if current == Some(generation) {
            return;
        }
        // Built outside the lock; readers wait only for the swap.
        let registered: HashSet<IpAddr> = ips.collect();
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.registered = registered;
        inner.generation = Some(generation);
    }
}
