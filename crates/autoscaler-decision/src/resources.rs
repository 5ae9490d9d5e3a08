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

/// An init container's request, and whether it is a sidecar (`restartPolicy: Always`): a sidecar keeps
/// running beside the app containers once started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InitContainer {
    /// Its requests.
    pub requests: Resources,
    /// Restartable (a native sidecar).
    pub sidecar: bool,
}

/// Pod-level requests (`spec.resources.requests`): each resource named replaces the containers' figure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodLevelRequests {
    /// CPU in millicores.
    pub cpu_milli: Option<i64>,
    /// Memory in bytes.
    pub memory: Option<i64>,
    /// Hugepages by resource name (`hugepages-2Mi`).
    pub hugepages: BTreeMap<String, i64>,
}

/// The effective request of a pod, as kube-scheduler computes it (`resourcehelper.PodRequests`): the app
/// containers' sum plus every sidecar's, or the peak of the init phase if larger (each ordinary init
/// container runs with the sidecars started before it); pod-level requests then replace what they name;
/// plus the pod overhead, plus one pod slot.
pub fn effective_request(
    containers: &[Resources],
    init_containers: &[InitContainer],
    pod_level: &PodLevelRequests,
    overhead: &Resources,
) -> Resources {
    let mut sum = Resources::default();
    for c in containers {
        sum.add(c);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for init in init_containers {
        if init.sidecar {
            sum.add(&init.requests);
            sidecars.add(&init.requests);
            init_peak = init_peak.max(&sidecars);
        } else {
            let mut running = init.requests.clone();
            running.add(&sidecars);
            init_peak = init_peak.max(&running);
        }
    }
    let mut total = sum.max(&init_peak);
    if let Some(cpu) = pod_level.cpu_milli {
        total.cpu_milli = cpu;
    }
    if let Some(memory) = pod_level.memory {
        total.memory = memory;
    }
    for (name, amount) in &pod_level.hugepages {
        total.extended.insert(name.clone(), *amount);
    }
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
        let init = InitContainer { requests: Resources::cpu_mem(1000, GI / 2), sidecar: false };
        let none = PodLevelRequests::default();
        let r = effective_request(&[c.clone(), c], &[init], &none, &Resources::cpu_mem(100, 0));
        assert_eq!(r.cpu_milli, 1100);
        assert_eq!(r.memory, 2 * GI);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn sidecars_add_to_the_running_pod_and_to_later_init_containers() {
        // An app container of 500m/1Gi; a sidecar of 200m/256Mi started first, then an ordinary init
        // container of 1 CPU / 128Mi. Running: 500m + 200m = 700m, 1Gi + 256Mi. Init peak: the init
        // container with the sidecar beside it, 1200m, 384Mi. Before, the sidecar joined the init max and
        // the pod asked 1000m / 1Gi: an under-count of 256Mi for as long as it runs.
        let app = Resources::cpu_mem(500, GI);
        let sidecar = InitContainer { requests: Resources::cpu_mem(200, 256 << 20), sidecar: true };
        let init = InitContainer { requests: Resources::cpu_mem(1000, 128 << 20), sidecar: false };
        let none = PodLevelRequests::default();
        let r = effective_request(
            std::slice::from_ref(&app),
            &[sidecar.clone(), init.clone()],
            &none,
            &Resources::default(),
        );
        assert_eq!((r.cpu_milli, r.memory), (1200, GI + (256 << 20)));
        // An init container that runs before the sidecar starts does not run beside it.
        let r = effective_request(&[app], &[init, sidecar], &none, &Resources::default());
        assert_eq!((r.cpu_milli, r.memory), (1000, GI + (256 << 20)));
    }

    #[test]
    fn pod_level_requests_replace_what_they_name() {
        let app = Resources::cpu_mem(500, GI);
        let pod_level = PodLevelRequests { cpu_milli: Some(2000), ..Default::default() };
        let r = effective_request(&[app.clone(), app], &[], &pod_level, &Resources::cpu_mem(100, 0));
        assert_eq!((r.cpu_milli, r.memory), (2100, 2 * GI), "cpu from the pod level, memory summed");
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
