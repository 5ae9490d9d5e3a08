//! What the simulation counts per pod and per node, by name: CPU, memory, ephemeral storage and pod
//! slots ([`Amounts`]), and the three that estimates of nodes needed count ([`Demand`]).

use crate::resources::Resources;

/// CPU (millicores), memory and ephemeral storage (bytes) and pod slots: a pod's request or what a node
/// can carry. Extended resources are kept beside it, as maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Amounts {
    pub(crate) cpu: i64,
    pub(crate) memory: i64,
    pub(crate) storage: i64,
    pub(crate) pods: i64,
}

impl Amounts {
    /// The four amounts of `r`.
    pub(crate) fn of(r: &Resources) -> Self {
        Self { cpu: r.cpu_milli, memory: r.memory, storage: r.ephemeral_storage, pods: r.pods }
    }

    /// Every amount is at most `cap`'s.
    pub(crate) fn fits_in(self, cap: Amounts) -> bool {
        self.cpu <= cap.cpu && self.memory <= cap.memory && self.storage <= cap.storage && self.pods <= cap.pods
    }

    /// The sum.
    pub(crate) fn plus(self, o: Amounts) -> Self {
        Self {
            cpu: self.cpu + o.cpu,
            memory: self.memory + o.memory,
            storage: self.storage + o.storage,
            pods: self.pods + o.pods,
        }
    }

    /// The difference.
    pub(crate) fn minus(self, o: Amounts) -> Self {
        Self {
            cpu: self.cpu - o.cpu,
            memory: self.memory - o.memory,
            storage: self.storage - o.storage,
            pods: self.pods - o.pods,
        }
    }

    /// CPU, memory and pod slots.
    pub(crate) fn demand(self) -> Demand {
        Demand { cpu: self.cpu, memory: self.memory, pods: self.pods }
    }

    /// Into `r`'s four fields (its extended resources untouched).
    pub(crate) fn write_to(self, r: &mut Resources) {
        r.cpu_milli = self.cpu;
        r.memory = self.memory;
        r.ephemeral_storage = self.storage;
        r.pods = self.pods;
    }
}

/// CPU, memory and pod slots still to place or wanted on nodes: what estimates of nodes needed count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Demand {
    pub(crate) cpu: i64,
    pub(crate) memory: i64,
    pub(crate) pods: i64,
}

impl Demand {
    /// Adds `sign` times `d`.
    pub(crate) fn shift(&mut self, d: Demand, sign: i64) {
        self.cpu += sign * d.cpu;
        self.memory += sign * d.memory;
        self.pods += sign * d.pods;
    }
}
