//! Synthetic, seeded workloads: the two anchor benchmarks exactly as Karpenter and the Cluster
//! Autoscaler define them, and our own realistic mixes. The benchmark and the property tests use them;
//! they are public so simulations can compare on the same work.

use autoscaler_decision::groups::{NodeGroup, Offering};
use autoscaler_decision::model::{LABEL_ZONE, Namespaces, Pod, PodAffinityTerm, TopologyKey, TopologySpread};
use autoscaler_decision::resources::Resources;
use autoscaler_decision::selectors::{LabelSelector, Taint, TaintEffect, Toleration};

const MI: i64 = 1 << 20;
const GI: i64 = 1 << 30;

/// A small deterministic generator (SplitMix64), so workloads need no dependency and never change. It is
/// the generator of `vpsie-sim`'s `SimRng`; the lab does not pull in the VPSie simulator for eight lines.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One element of a non-empty slice.
    pub fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A workload: the groups that may grow and the pending pods.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Name for reports.
    pub name: String,
    /// Groups (no existing nodes: every anchor workload starts from an empty cluster).
    pub groups: Vec<NodeGroup>,
    /// Pending pods.
    pub pods: Vec<Pod>,
}

fn pod(name: String, cpu_milli: i64, memory: i64) -> Pod {
    Pod::new("default", &name, cpu_milli, memory)
}

fn term(key: &str, value: &str, topology: TopologyKey) -> PodAffinityTerm {
    PodAffinityTerm { selector: LabelSelector::labels(&[(key, value)]), namespaces: Namespaces::Own, topology }
}

fn spread(key: &str, value: &str, topology: TopologyKey, max_skew: i32) -> TopologySpread {
    TopologySpread::new(max_skew, topology, LabelSelector::labels(&[(key, value)]))
}

/// W1, Karpenter's "diverse pods" benchmark: 400 instance types `fake-it-i` (CPU i+1, memory 2(i+1) GiB,
/// 10(i+1) pods, 100m CPU and 10Mi reserved, price 0.1·cpu + 0.1·GB) in three zones, one NodeGroup per
/// zone; `n` pods, a fifth each generic, zone spread, hostname spread, zone affinity and one-per-node
/// anti-affinity, topped up with generic pods.
pub fn karpenter_diverse(n: usize, seed: u64) -> Workload {
    let offerings: Vec<Offering> = (0..400i64)
        .map(|i| {
            let cpu = i + 1;
            let mem = 2 * (i + 1) * GI;
            let mut allocatable = Resources::cpu_mem(cpu * 1000 - 100, mem - 10 * MI);
            allocatable.pods = 10 * (i + 1);
            Offering {
                id: format!("fake-it-{i}"),
                allocatable,
                monthly_price: 0.1 * cpu as f64 + 0.1 * mem as f64 / 1e9,
            }
        })
        .collect();
    let groups = ["test-zone-1", "test-zone-2", "test-zone-3"]
        .iter()
        .map(|z| NodeGroup {
            name: (*z).to_owned(),
            max_nodes: 100_000,
            offerings: offerings.clone(),
            zone: Some((*z).to_owned()),
            ..NodeGroup::default()
        })
        .collect();
    let mut rng = Rng::new(seed);
    let labels = ["a", "b", "c", "d", "e", "f", "g"];
    let cpus = [100, 250, 500, 1000, 1500];
    let mems = [100, 256, 512, 1024, 2048, 4096];
    let mut pods = Vec::with_capacity(n);
    let per_kind = n / 5;
    for kind in 0..5 {
        for k in 0..per_kind {
            let mut p = pod(format!("k{kind}-{k}"), *rng.pick(&cpus), rng.pick(&mems) * MI);
            match kind {
                1 | 2 => {
                    p.labels.insert("my-label".into(), (*rng.pick(&labels)).into());
                    let topology = if kind == 1 { TopologyKey::Zone } else { TopologyKey::Hostname };
                    p.topology_spread.push(spread("my-label", rng.pick::<&str>(&labels), topology, 1));
                }
                3 => {
                    let v = format!("aff-{}", rng.pick(&labels));
                    p.labels.insert("my-affinity".into(), v.clone());
                    p.pod_affinity.push(term("my-affinity", &v, TopologyKey::Zone));
                }
                4 => {
                    p.labels.insert("app".into(), "nginx".into());
                    p.pod_anti_affinity.push(term("app", "nginx", TopologyKey::Hostname));
                }
                _ => {
                    p.labels.insert("my-label".into(), (*rng.pick(&labels)).into());
                }
            }
            pods.push(p);
        }
    }
    for k in pods.len()..n {
        let mut p = pod(format!("top-{k}"), *rng.pick(&cpus), rng.pick(&mems) * MI);
        p.labels.insert("my-label".into(), (*rng.pick(&labels)).into());
        pods.push(p);
    }
    Workload { name: format!("W1 karpenter-diverse {n}"), groups, pods }
}

/// W2, the Cluster Autoscaler's RunOnce scale-up benchmark: one template of 10 CPU, 10,000 bytes of
/// memory and 100 pods; `n` identical pods of 200m and 200 bytes without owner (50,000 expect 1,000 nodes).
pub fn cluster_autoscaler_runonce(n: usize) -> Workload {
    let mut allocatable = Resources::cpu_mem(10_000, 10_000);
    allocatable.pods = 100;
    let group = NodeGroup {
        name: "ng".into(),
        max_nodes: 100_000,
        offerings: vec![Offering { id: "template".into(), allocatable, monthly_price: 1.0 }],
        ..NodeGroup::default()
    };
    let pods = (0..n)
        .map(|i| {
            let mut p = pod(format!("p-{i}"), 200, 200);
            p.owner_kind = None;
            p
        })
        .collect();
    Workload { name: format!("W2 cluster-autoscaler-runonce {n}"), groups: vec![group], pods }
}

/// A family of VPSie-like offerings: (name, GiB per vCPU, USD per vCPU-month, USD per GiB-month).
const FAMILIES: [(&str, i64, f64, f64); 5] = [
    ("general", 2, 6.0, 2.0),
    ("cpu", 1, 7.5, 2.2),
    ("memory", 8, 5.0, 1.6),
    ("storage", 4, 6.5, 1.8),
    ("burst", 2, 4.5, 1.9),
];
const SIZES: [i64; 20] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96];
const ZONES: [&str; 3] = ["dc-us-east-1", "dc-us-west-1", "dc-eu-central-1"];

/// Our realistic fleet: 20 NodeGroups of 20 offerings each (400 in all): five families in three zones,
/// plus GPU, batch (tainted), infra and ARM-like groups. Prices vary by family and size (bigger machines
/// are a little cheaper per unit, with seeded noise), nodes reserve system resources, and every group
/// runs two DaemonSets.
pub fn vpsie_fleet(seed: u64) -> Vec<NodeGroup> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut groups = Vec::new();
    let make = |name: String, family: usize, zone: &str, rng: &mut Rng| {
        let (fam, ratio, per_cpu, per_gib) = FAMILIES[family];
        let offerings = SIZES
            .iter()
            .map(|&cpu| {
                let mem = cpu * ratio * GI;
                let reserved_cpu = 100 + cpu * 10;
                let reserved_mem = 256 * MI + mem / 50;
                let mut allocatable = Resources::cpu_mem(cpu * 1000 - reserved_cpu, mem - reserved_mem);
                allocatable.pods = 110;
                let discount = 1.0 - 0.04 * (cpu as f64).log2() / (96f64).log2();
                let noise = 0.97 + 0.06 * (rng.below(1000) as f64 / 1000.0);
                let price = (per_cpu * cpu as f64 + per_gib * (cpu * ratio) as f64) * discount * noise;
                Offering {
                    id: format!("{fam}-{cpu}c-{}g-{zone}", cpu * ratio),
                    allocatable,
                    monthly_price: (price * 100.0).round() / 100.0,
                }
            })
            .collect();
        let mut g = NodeGroup {
            name,
            max_nodes: 5_000,
            offerings,
            zone: Some(zone.to_owned()),
            daemonset_pods: vec![pod("ds-node-exporter".into(), 50, 64 * MI), pod("ds-cni".into(), 100, 128 * MI)],
            ..NodeGroup::default()
        };
        for d in &mut g.daemonset_pods {
            d.namespace = "kube-system".into();
            d.owner_kind = Some("DaemonSet".into());
        }
        g.labels.insert("vpsie.com/family".into(), fam.to_owned());
        g
    };
    for (f, fam) in FAMILIES.iter().enumerate() {
        for z in ZONES {
            groups.push(make(format!("{}-{z}", fam.0), f, z, &mut rng));
        }
    }
    let mut gpu = make(format!("gpu-{}", ZONES[0]), 0, ZONES[0], &mut rng);
    gpu.labels.insert("vpsie.com/family".into(), "gpu".into());
    gpu.taints.push(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule));
    for o in &mut gpu.offerings {
        o.allocatable.extended.insert("nvidia.com/gpu".into(), (o.allocatable.cpu_milli / 8000).max(1));
        o.monthly_price = (o.monthly_price * 3.0 * 100.0).round() / 100.0;
    }
    let mut batch = make(format!("batch-{}", ZONES[1]), 1, ZONES[1], &mut rng);
    batch.labels.insert("vpsie.com/family".into(), "batch".into());
    batch.taints.push(Taint::new("workload", "batch", TaintEffect::NoSchedule));
    let mut infra = make(format!("infra-{}", ZONES[2]), 0, ZONES[2], &mut rng);
    infra.labels.insert("vpsie.com/family".into(), "infra".into());
    infra.labels.insert("pool".into(), "infra".into());
    let arm = make(format!("arm-{}", ZONES[0]), 4, ZONES[0], &mut rng);
    let mut arm = arm;
    arm.labels.insert("kubernetes.io/arch".into(), "arm64".into());
    arm.taints.push(Taint::new("kubernetes.io/arch", "arm64", TaintEffect::NoSchedule));
    groups.extend([gpu, batch, infra, arm]);
    groups
}

/// Our realistic pending-pod mix of `n` pods: Deployments of 1 to 300 replicas shaped like web servers,
/// APIs, workers, caches, JVM services, batch jobs and inference servers, with the constraints they
/// commonly carry (zone spread, hostname spread, one-per-node anti-affinity, node selectors, GPU and batch
/// tolerations, affinity to another app). `services` tilts the mix toward small services; otherwise it
/// leans toward batch and memory-heavy work.
pub fn realistic_mix(n: usize, seed: u64, services: bool) -> Workload {
    let groups = vpsie_fleet(seed);
    let mut rng = Rng::new(seed);
    // (kind, cpu m, memory Mi, weight in the services mix, weight in the batch mix)
    let shapes: [(&str, i64, i64, u64, u64); 8] = [
        ("web", 250, 512, 30, 10),
        ("api", 500, 1024, 25, 10),
        ("worker", 1000, 2048, 15, 15),
        ("cache", 500, 4096, 8, 15),
        ("jvm", 1000, 3072, 12, 10),
        ("batch", 2000, 2048, 4, 25),
        ("sidecar-heavy", 150, 256, 5, 5),
        ("inference", 4000, 8192, 1, 10),
    ];
    let weight = |s: &(&str, i64, i64, u64, u64)| if services { s.3 } else { s.4 };
    let total: u64 = shapes.iter().map(weight).sum();
    let mut pods = Vec::with_capacity(n);
    let mut apps: Vec<(String, String)> = Vec::new();
    let mut d = 0;
    while pods.len() < n {
        let mut roll = rng.below(total);
        let shape = shapes.iter().find(|s| {
            let w = weight(s);
            if roll < w {
                true
            } else {
                roll -= w;
                false
            }
        });
        let Some(&(kind, cpu, mem, _, _)) = shape else { break };
        let app = format!("{kind}-{d}");
        d += 1;
        // Requests vary by deployment, in the steps people write them in.
        let cpu = (cpu * (50 + rng.below(100) as i64) / 100 / 50).max(1) * 50;
        let mem = (mem * (50 + rng.below(100) as i64) / 100 / 64).max(1) * 64 * MI;
        let replicas = (1u64 << rng.below(9)).min(300) as usize + rng.below(8) as usize;
        let mut template = Pod::new(if rng.chance(0.5) { "shop" } else { "platform" }, &app, cpu, mem);
        template.labels.insert("app".into(), app.clone());
        let mut replicas = replicas.min(n - pods.len());
        match rng.below(100) {
            0..15 => template.topology_spread.push(spread("app", &app, TopologyKey::Zone, 1)),
            15..23 => template.topology_spread.push(spread("app", &app, TopologyKey::Hostname, 2)),
            23..31 => {
                template.pod_anti_affinity.push(term("app", &app, TopologyKey::Hostname));
                replicas = replicas.min(20);
            }
            31..36 if !apps.is_empty() => {
                let (other, namespace) = rng.pick(&apps).clone();
                let mut t = term("app", &other, TopologyKey::Zone);
                t.namespaces = Namespaces::Listed(vec![namespace]);
                template.pod_affinity.push(t);
            }
            36..40 => {
                template.node_selector.insert(LABEL_ZONE.into(), (*rng.pick(&ZONES)).into());
            }
            _ => {}
        }
        match kind {
            "cache" if rng.chance(0.5) => {
                template.node_selector.insert("vpsie.com/family".into(), "memory".into());
            }
            "batch" => {
                template.owner_kind = Some("Job".into());
                if rng.chance(0.6) {
                    template.tolerations.push(Toleration::equal("workload", "batch", Some(TaintEffect::NoSchedule)));
                    template.node_selector.insert("vpsie.com/family".into(), "batch".into());
                }
            }
            "inference" if rng.chance(0.5) => {
                template.tolerations.push(Toleration::equal("dedicated", "gpu", Some(TaintEffect::NoSchedule)));
                template.requests.extended.insert("nvidia.com/gpu".into(), 1);
            }
            _ => {}
        }
        if template.pod_affinity.is_empty() {
            apps.push((app.clone(), template.namespace.clone()));
        }
        for r in 0..replicas.max(1) {
            let mut p = template.clone();
            p.name = format!("{app}-{r}");
            pods.push(p);
        }
    }
    pods.truncate(n);
    let flavour = if services { "services" } else { "batch-heavy" };
    Workload { name: format!("realistic {flavour} {n}"), groups, pods }
}
