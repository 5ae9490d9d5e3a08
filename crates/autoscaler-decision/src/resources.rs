//! Resource quantities in integer units: millicores, bytes, pod slots, and named extended resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An amount of every schedulable resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_milli: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Pod slots.
    pub pods: i64,
    /// Extended resources (`nvidia.com/gpu`, hugepages, …) in their integer units.
    pub extended: BTreeMap<String, i64>,
}

/// A resource name, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceName {
    /// CPU.
    Cpu,
    /// Memory.
    Memory,
    /// Ephemeral storage.
    EphemeralStorage,
    /// Pod slots.
    Pods,
    /// An extended resource.
    Extended(String),
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceName::Cpu => f.write_str("cpu"),
            ResourceName::Memory => f.write_str("memory"),
            ResourceName::EphemeralStorage => f.write_str("ephemeral-storage"),
            ResourceName::Pods => f.write_str("pods"),
            ResourceName::Extended(n) => f.write_str(n),
        }
    }
}

impl Resources {
    /// CPU and memory only.
    pub fn cpu_mem(cpu_milli: i64, memory: i64) -> Self {
        Self { cpu_milli, memory, ..Self::default() }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        self.cpu_milli += other.cpu_milli;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.extended {
            *self.extended.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self` (results may go negative; callers check fit first).
    pub fn sub(&mut self, other: &Resources) {
        self.cpu_milli -= other.cpu_milli;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.extended {
            *self.extended.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each component the maximum of the two (the init-container rule).
    pub fn max(&self, other: &Resources) -> Resources {
        let mut extended = self.extended.clone();
        for (k, v) in &other.extended {
            let e = extended.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
        Resources {
            cpu_milli: self.cpu_milli.max(other.cpu_milli),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
            pods: self.pods.max(other.pods),
            extended,
        }
    }

    /// The first resource of `self` that exceeds `available`, with both amounts.
    pub fn first_shortfall(&self, available: &Resources) -> Option<(ResourceName, i64, i64)> {
        let basic = [
            (ResourceName::Cpu, self.cpu_milli, available.cpu_milli),
            (ResourceName::Memory, self.memory, available.memory),
            (ResourceName::EphemeralStorage, self.ephemeral_storage, available.ephemeral_storage),
            (ResourceName::Pods, self.pods, available.pods),
        ];
        if let Some(s) = basic.into_iter().find(|(_, need, have)| need > have) {
            return Some(s);
        }
        self.extended
            .iter()
            .filter(|(_, need)| **need > 0)
            .map(|(k, need)| {
                (ResourceName::Extended(k.clone()), *need, available.extended.get(k).copied().unwrap_or(0))
            })
            .find(|(_, need, have)| need > have)
    }

    /// Whether `self` fits in `available`.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.first_shortfall(available).is_none()
    }
}

/// The effective request of a pod, as kube-scheduler computes it: the larger of the sum of its
/// containers' requests and the largest init container's request, plus the pod overhead, plus one pod slot.
pub fn effective_request(containers: &[Resources], init_containers: &[Resources], overhead: &Resources) -> Resources {
    let mut sum = Resources::default();
    for c in containers {
        sum.add(c);
    }
    let init_max = init_containers.iter().fold(Resources::default(), |acc, c| acc.max(c));
    let mut total = sum.max(&init_max);
    total.add(overhead);
    total.pods = 1;
    total
}

/// Formats millicores as a human amount (`"1.5"`, `"250m"`).
pub fn format_cpu(milli: i64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else if milli > 1000 {
        format!("{:.1}", milli as f64 / 1000.0)
    } else {
        format!("{milli}m")
    }
}

/// Formats bytes as a human amount in binary units.
pub fn format_memory(bytes: i64) -> String {
    const GI: i64 = 1 << 30;
    const MI: i64 = 1 << 20;
    if bytes >= GI && bytes % GI == 0 {
        format!("{}Gi", bytes / GI)
    } else if bytes >= GI {
        format!("{:.1}Gi", bytes as f64 / GI as f64)
    } else {
        format!("{}Mi", bytes / MI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: i64 = 1 << 30;

    #[test]
    fn init_container_max_rule_and_overhead() {
        // Two containers of 200m/1Gi; an init container of 1 CPU; overhead 100m. Request = max(400m, 1000m) + 100m.
        let c = Resources::cpu_mem(200, GI);
        let init = Resources::cpu_mem(1000, GI / 2);
        let r = effective_request(&[c.clone(), c], &[init], &Resources::cpu_mem(100, 0));
        assert_eq!(r.cpu_milli, 1100);
        assert_eq!(r.memory, 2 * GI);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn shortfalls_name_the_resource() {
        let mut need = Resources::cpu_mem(2000, GI);
        need.extended.insert("nvidia.com/gpu".into(), 1);
        let have = Resources { cpu_milli: 4000, memory: 8 * GI, pods: 110, ..Default::default() };
        assert_eq!(need.first_shortfall(&have), Some((ResourceName::Extended("nvidia.com/gpu".into()), 1, 0)));
        assert!(Resources::cpu_mem(4000, GI).fits_in(&have));
        assert_eq!(Resources::cpu_mem(4001, GI).first_shortfall(&have).map(|s| s.0), Some(ResourceName::Cpu));
    }

    #[test]
    fn formats() {
        assert_eq!(format_cpu(4000), "4");
        assert_eq!(format_cpu(1500), "1.5");
        assert_eq!(format_cpu(250), "250m");
        assert_eq!(format_memory(8 * GI), "8Gi");
        assert_eq!(format_memory(512 << 20), "512Mi");
    }
}
