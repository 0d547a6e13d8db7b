//! ACD: queues, agents and distribution strategies (being built; see issue 3).
