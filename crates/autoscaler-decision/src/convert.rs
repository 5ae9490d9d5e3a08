//! Conversion of k8s-openapi objects into the model (feature `k8s`).
//!
//! Requests follow kube-scheduler: restartable (sidecar) init containers run beside the app containers,
//! pod-level `resources.requests` replace the containers' sum for the resources they name. `matchLabelKeys`
//! (spread and affinity) and `mismatchLabelKeys` are merged into their selectors with the pod's own values;
//! a `namespaceSelector` is kept for the caller to resolve against namespace labels
//! ([`Pod::resolve_namespace_selectors`]).
//!
//! Known approximations: `matchFields` on `metadata.name` becomes a requirement on the hostname label;
//! only DoNotSchedule spread constraints are kept (ScheduleAnyway ones only rank nodes); a required
//! constraint on a topology key other than hostname and zone is left out and named in `Pod::unmodelled`,
//! so the pod still counts where it runs but is never placed or moved by a plan. The eviction fields
//! (`do_not_disrupt`, `safe_to_evict`, a mirror pod's `Node` owner, `finished`) are read here, by the rules of
//! [`crate::eviction`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use crate::model::{
    HostPort, Inclusion, LABEL_HOSTNAME, LABEL_ZONE, Namespaces, Node, Pdb, Pod, PodAffinityTerm, Protocol,
    TopologyKey, TopologySpread,
};
use crate::quantity;
use crate::resources::{InitContainer, PodLevelRequests, Resources, effective_request};
use crate::selectors::{
    LabelSelector, NodeSelectorTerm, Operator, Requirement, Taint, TaintEffect, Toleration, TolerationOperator,
};

/// What the conversion cannot represent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// A quantity that does not parse.
    Quantity(String),
    /// An operator or effect the API does not define.
    Unknown(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Quantity(q) => write!(f, "malformed quantity {q:?}"),
            ConvertError::Unknown(v) => write!(f, "unknown value {v:?}"),
        }
    }
}

impl std::error::Error for ConvertError {}

type Result<T> = std::result::Result<T, ConvertError>;

fn resources(map: Option<&BTreeMap<String, Quantity>>) -> Result<Resources> {
    let mut r = Resources::default();
    for (name, q) in map.into_iter().flatten() {
        let bad = || ConvertError::Quantity(format!("{name}={}", q.0));
        match name.as_str() {
            "cpu" => r.cpu_milli = quantity::cpu_milli(&q.0).ok_or_else(bad)?,
            "memory" => r.memory = quantity::integer(&q.0).ok_or_else(bad)?,
            "ephemeral-storage" => r.ephemeral_storage = quantity::integer(&q.0).ok_or_else(bad)?,
            "pods" => r.pods = quantity::integer(&q.0).ok_or_else(bad)?,
            other => {
                r.extended.insert(other.to_owned(), quantity::integer(&q.0).ok_or_else(bad)?);
            }
        }
    }
    Ok(r)
}

fn operator(op: &str) -> Result<Operator> {
    Ok(match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::Gt,
        "Lt" => Operator::Lt,
        other => return Err(ConvertError::Unknown(other.to_owned())),
    })
}

fn effect(e: &str) -> Result<TaintEffect> {
    Ok(match e {
        "NoSchedule" => TaintEffect::NoSchedule,
        "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
        "NoExecute" => TaintEffect::NoExecute,
        other => return Err(ConvertError::Unknown(other.to_owned())),
    })
}

/// The model's key for a topology label; `None` for any other label, which the model cannot represent.
fn topology(key: &str) -> Option<TopologyKey> {
    match key {
        LABEL_HOSTNAME => Some(TopologyKey::Hostname),
        LABEL_ZONE => Some(TopologyKey::Zone),
        _ => None,
    }
}

/// The sentence a constraint on an unmodelled topology key leaves on its pod.
fn unmodelled(what: &str, key: &str) -> String {
    format!("{what} on topology key {key:?} (only {LABEL_HOSTNAME} and {LABEL_ZONE} are modelled)")
}

fn label_selector(s: Option<&meta::LabelSelector>) -> Result<LabelSelector> {
    let Some(s) = s else {
        // A term without a selector selects nothing; an impossible requirement says so.
        return Ok(LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement::new("", Operator::In, &[])],
        });
    };
    let match_expressions = s
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            Ok(Requirement {
                key: e.key.clone(),
                operator: operator(&e.operator)?,
                values: e.values.clone().unwrap_or_default(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(LabelSelector { match_labels: s.match_labels.clone().unwrap_or_default(), match_expressions })
}

/// Adds `key In [pod's value]` (or `NotIn` for mismatch keys) for each key the pod carries, as
/// kube-apiserver and kube-scheduler merge `matchLabelKeys`; a key the pod lacks is ignored.
fn merge_label_keys(selector: &mut LabelSelector, keys: Option<&Vec<String>>, op: Operator, pod: &meta::ObjectMeta) {
    let labels = pod.labels.as_ref();
    for key in keys.into_iter().flatten() {
        if let Some(value) = labels.and_then(|l| l.get(key)) {
            selector.match_expressions.push(Requirement {
                key: key.clone(),
                operator: op,
                values: vec![value.clone()],
            });
        }
    }
}

/// Which namespaces a term reads: the list and the selector together; neither means the pod's own.
fn namespaces(t: &k8s::PodAffinityTerm) -> Result<Namespaces> {
    let listed = t.namespaces.clone().unwrap_or_default();
    Ok(match &t.namespace_selector {
        None if listed.is_empty() => Namespaces::Own,
        None => Namespaces::Listed(listed),
        Some(s)
            if s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && s.match_expressions.as_ref().is_none_or(Vec::is_empty) =>
        {
            Namespaces::All
        }
        Some(s) => Namespaces::Selector { listed, selector: label_selector(Some(s))? },
    })
}

/// The terms the model can represent; each other one adds a sentence to `left_out`.
fn affinity_terms(
    terms: Option<&Vec<k8s::PodAffinityTerm>>,
    pod: &meta::ObjectMeta,
    what: &str,
    left_out: &mut Vec<String>,
) -> Result<Vec<PodAffinityTerm>> {
    let mut out = Vec::new();
    for t in terms.into_iter().flatten() {
        let Some(topology) = topology(&t.topology_key) else {
            left_out.push(unmodelled(what, &t.topology_key));
            continue;
        };
        let mut selector = label_selector(t.label_selector.as_ref())?;
        if t.label_selector.is_some() {
            merge_label_keys(&mut selector, t.match_label_keys.as_ref(), Operator::In, pod);
            merge_label_keys(&mut selector, t.mismatch_label_keys.as_ref(), Operator::NotIn, pod);
        }
        out.push(PodAffinityTerm { selector, namespaces: namespaces(t)?, topology });
    }
    Ok(out)
}

fn inclusion(policy: Option<&str>, default: Inclusion) -> Result<Inclusion> {
    match policy {
        None | Some("") => Ok(default),
        Some("Honor") => Ok(Inclusion::Honor),
        Some("Ignore") => Ok(Inclusion::Ignore),
        Some(other) => Err(ConvertError::Unknown(other.to_owned())),
    }
}

/// The containers' requests by kube-scheduler's rules, with pod-level requests replacing the sum for the
/// resources they name (cpu, memory, hugepages).
fn requests(spec: &k8s::PodSpec) -> Result<Resources> {
    let requests_of = |c: &k8s::Container| resources(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let containers: Vec<Resources> = spec.containers.iter().map(requests_of).collect::<Result<_>>()?;
    let inits: Vec<InitContainer> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            Ok(InitContainer { requests: requests_of(c)?, sidecar: c.restart_policy.as_deref() == Some("Always") })
        })
        .collect::<Result<_>>()?;
    let overhead = resources(spec.overhead.as_ref())?;
    let named = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut at_pod_level = resources(named).map_err(|e| match e {
        ConvertError::Quantity(q) => ConvertError::Quantity(format!("spec.resources.requests {q}")),
        other => other,
    })?;
    let has = |name: &str| named.is_some_and(|m| m.contains_key(name));
    // The API accepts only cpu, memory and hugepages at pod level.
    at_pod_level.extended.retain(|k, _| k.starts_with("hugepages-"));
    let pod_level = PodLevelRequests {
        cpu_milli: has("cpu").then_some(at_pod_level.cpu_milli),
        memory: has("memory").then_some(at_pod_level.memory),
        hugepages: at_pod_level.extended,
    };
    Ok(effective_request(&containers, &inits, &pod_level, &overhead))
}

fn node_terms(affinity: Option<&k8s::NodeAffinity>) -> Result<Vec<NodeSelectorTerm>> {
    let Some(required) = affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()) else {
        return Ok(Vec::new());
    };
    required
        .node_selector_terms
        .iter()
        .map(|t| {
            let mut requirements = Vec::new();
            for e in t.match_expressions.iter().flatten() {
                requirements.push(Requirement {
                    key: e.key.clone(),
                    operator: operator(&e.operator)?,
                    values: e.values.clone().unwrap_or_default(),
                });
            }
            for f in t.match_fields.iter().flatten().filter(|f| f.key == "metadata.name") {
                requirements.push(Requirement {
                    key: LABEL_HOSTNAME.to_owned(),
                    operator: operator(&f.operator)?,
                    values: f.values.clone().unwrap_or_default(),
                });
            }
            Ok(NodeSelectorTerm { requirements })
        })
        .collect()
}

/// A pod as the model sees it.
pub fn pod(p: &k8s::Pod) -> Result<Pod> {
    let spec = p.spec.clone().unwrap_or_default();
    let tolerations = spec
        .tolerations
        .iter()
        .flatten()
        .map(|t| {
            Ok(Toleration {
                key: t.key.clone().unwrap_or_default(),
                operator: if t.operator.as_deref() == Some("Exists") {
                    TolerationOperator::Exists
                } else {
                    TolerationOperator::Equal
                },
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.as_deref().filter(|e| !e.is_empty()).map(effect).transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    let affinity = spec.affinity.as_ref();
    let mut left_out = Vec::new();
    let mut topology_spread = Vec::new();
    for c in spec.topology_spread_constraints.iter().flatten().filter(|c| c.when_unsatisfiable == "DoNotSchedule") {
        let Some(topology) = topology(&c.topology_key) else {
            left_out.push(unmodelled("topology spread", &c.topology_key));
            continue;
        };
        let mut selector = label_selector(c.label_selector.as_ref())?;
        if c.label_selector.is_some() {
            merge_label_keys(&mut selector, c.match_label_keys.as_ref(), Operator::In, &p.metadata);
        }
        topology_spread.push(TopologySpread {
            max_skew: c.max_skew,
            topology,
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            node_affinity: inclusion(c.node_affinity_policy.as_deref(), Inclusion::Honor)?,
            node_taints: inclusion(c.node_taints_policy.as_deref(), Inclusion::Ignore)?,
        });
    }
    let pod_affinity = affinity_terms(
        affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        &p.metadata,
        "pod affinity",
        &mut left_out,
    )?;
    let pod_anti_affinity = affinity_terms(
        affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        &p.metadata,
        "pod anti-affinity",
        &mut left_out,
    )?;
    let host_ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let hp = port.host_port.filter(|p| *p > 0)?;
            let protocol = match port.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            Some(HostPort {
                port: u16::try_from(hp).ok()?,
                protocol,
                host_ip: port.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    Ok(Pod {
        labels: p.metadata.labels.clone().unwrap_or_default(),
        requests: requests(&spec)?,
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        node_affinity: node_terms(affinity.and_then(|a| a.node_affinity.as_ref()))?,
        tolerations,
        pod_affinity,
        pod_anti_affinity,
        topology_spread,
        host_ports,
        priority: spec.priority.unwrap_or(0),
        unmodelled: left_out,
        ..eviction_facts(p)
    })
}

/// What the eviction rules ([`crate::eviction`]) read of a pod, and nothing else: name, namespace, the
/// controlling owner's kind (`Node` for a static pod's mirror, by its annotation), local storage, the
/// safe-to-evict and do-not-disrupt annotations, and whether it finished. Never fails: the drain
/// classifies pods whose requests it need not parse.
pub fn eviction_facts(p: &k8s::Pod) -> Pod {
    let annotations = p.metadata.annotations.clone().unwrap_or_default();
    let volumes = p.spec.as_ref().and_then(|s| s.volumes.as_ref());
    Pod {
        name: p.metadata.name.clone().unwrap_or_default(),
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        owner_kind: if annotations.contains_key(crate::eviction::ANNOTATION_MIRROR) {
            // A static pod's mirror: the kubelet owns it, whatever its owner references say.
            Some("Node".to_owned())
        } else {
            p.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)).map(|o| o.kind.clone())
        },
        local_storage: volumes.is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some() || v.host_path.is_some())),
        safe_to_evict: crate::eviction::safe_to_evict(&annotations),
        do_not_disrupt: crate::eviction::do_not_disrupt(&annotations),
        finished: matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")),
        ..Pod::default()
    }
}

/// A node with the given pods bound to it.
pub fn node(n: &k8s::Node, pods: Vec<Pod>) -> Result<Node> {
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let taints = spec
        .taints
        .iter()
        .flatten()
        .map(|t| {
            Ok(Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default(), effect: effect(&t.effect)? })
        })
        .collect::<Result<_>>()?;
    Ok(Node {
        name: n.metadata.name.clone().unwrap_or_default(),
        labels: n.metadata.labels.clone().unwrap_or_default(),
        allocatable: resources(status.allocatable.as_ref())?,
        taints,
        unschedulable: spec.unschedulable.unwrap_or(false),
        ready: status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True"),
        group: None,
        offering: None,
        created_at: n.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        pods,
    })
}

/// A PodDisruptionBudget. `disruptionsAllowed` is read from its status: a budget the disruption controller
/// has not computed yet allows none, as the Eviction API would refuse until it has. A budget without a
/// selector covers no pod; an empty selector covers every pod of its namespace (policy/v1).
pub fn pdb(p: &k8s_openapi::api::policy::v1::PodDisruptionBudget) -> Result<Pdb> {
    let selector = p.spec.as_ref().and_then(|s| s.selector.as_ref());
    Ok(Pdb {
        name: p.metadata.name.clone().unwrap_or_default(),
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        selector: label_selector(selector)?,
        disruptions_allowed: p.status.as_ref().and_then(|s| s.disruptions_allowed).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::policy::v1::PodDisruptionBudget;

    use super::*;

    fn budget(json: serde_json::Value) -> Result<Pdb> {
        pdb(&serde_json::from_value::<PodDisruptionBudget>(json).unwrap())
    }

    #[test]
    fn a_pdb_converts_with_its_selector_and_allowed_disruptions() {
        let b = budget(serde_json::json!({
            "metadata": {"name": "web-pdb", "namespace": "shop"},
            "spec": {"minAvailable": 2, "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["canary"]}]
            }},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}
        }))
        .unwrap();
        assert_eq!((b.name.as_str(), b.namespace.as_str(), b.disruptions_allowed), ("web-pdb", "shop", 1));
        let mut web = Pod::new("shop", "web-0", 100, 1 << 20);
        web.labels.insert("app".into(), "web".into());
        assert!(b.covers(&web));
        web.labels.insert("tier".into(), "canary".into());
        assert!(!b.covers(&web), "NotIn canary");
        let mut other_namespace = Pod::new("platform", "web-0", 100, 1 << 20);
        other_namespace.labels.insert("app".into(), "web".into());
        assert!(!b.covers(&other_namespace));
    }

    #[test]
    fn selectors_and_status_follow_policy_v1() {
        let pod = Pod::new("shop", "any", 100, 1 << 20);
        let empty = budget(serde_json::json!({
            "metadata": {"name": "all", "namespace": "shop"}, "spec": {"selector": {}}
        }))
        .unwrap();
        assert!(empty.covers(&pod), "an empty selector covers the whole namespace");
        assert_eq!(empty.disruptions_allowed, 0, "no status yet: nothing may be disrupted");
        let none = budget(serde_json::json!({"metadata": {"name": "none", "namespace": "shop"}, "spec": {}})).unwrap();
        assert!(!none.covers(&pod), "no selector covers no pod");
        let bad = budget(serde_json::json!({
            "metadata": {"name": "bad", "namespace": "shop"},
            "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}}
        }));
        assert_eq!(bad, Err(ConvertError::Unknown("Near".into())));
    }

    fn converted(json: serde_json::Value) -> Pod {
        pod(&serde_json::from_value::<k8s::Pod>(json).unwrap()).unwrap()
    }

    #[test]
    fn sidecars_and_pod_level_requests_are_counted_as_the_scheduler_counts_them() {
        let p = converted(serde_json::json!({
            "metadata": {"name": "mesh", "namespace": "shop"},
            "spec": {
                "initContainers": [
                    {"name": "proxy", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}}},
                    {"name": "migrate", "resources": {"requests": {"cpu": "1", "memory": "128Mi"}}}
                ],
                "containers": [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]
            }
        }));
        // The sidecar runs beside the app (memory 1Gi + 256Mi) and beside the migration (cpu 1 + 200m).
        assert_eq!((p.requests.cpu_milli, p.requests.memory), (1200, (1 << 30) + (256 << 20)));
        let p = converted(serde_json::json!({
            "metadata": {"name": "pooled", "namespace": "shop"},
            "spec": {
                "resources": {"requests": {"cpu": "3"}},
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"memory": "1Gi"}}}
                ]
            }
        }));
        assert_eq!((p.requests.cpu_milli, p.requests.memory), (3000, 2 << 30), "pod-level cpu, summed memory");
    }

    #[test]
    fn affinity_namespaces_and_label_keys_are_read() {
        let p = converted(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {
                "containers": [{"name": "app"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                     "matchLabelKeys": ["pod-template-hash"], "namespaceSelector": {"matchLabels": {"team": "a"}}},
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                     "namespaceSelector": {}},
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                     "namespaces": ["other"], "mismatchLabelKeys": ["pod-template-hash"]}
                ]}},
                "topologySpreadConstraints": [{
                    "maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash", "absent"],
                    "minDomains": 3, "nodeAffinityPolicy": "Ignore", "nodeTaintsPolicy": "Honor"
                }]
            }
        }));
        let [with_selector, every, listed] = &p.pod_anti_affinity[..] else { panic!("three terms") };
        let Namespaces::Selector { listed: names, selector } = &with_selector.namespaces else { panic!("a selector") };
        assert!(names.is_empty());
        assert!(selector.matches(&[("team".to_owned(), "a".to_owned())].into()));
        assert!(
            with_selector.selector.match_expressions.contains(&Requirement::new(
                "pod-template-hash",
                Operator::In,
                &["abc"]
            )),
            "matchLabelKeys merged with the pod's own value"
        );
        assert_eq!(every.namespaces, Namespaces::All, "an empty namespaceSelector selects every namespace");
        assert_eq!(listed.namespaces, Namespaces::Listed(vec!["other".into()]));
        assert!(listed.selector.match_expressions.contains(&Requirement::new(
            "pod-template-hash",
            Operator::NotIn,
            &["abc"]
        )));
        let spread = &p.topology_spread[0];
        assert_eq!(
            (spread.max_skew, spread.min_domains, spread.node_affinity, spread.node_taints),
            (2, 3, Inclusion::Ignore, Inclusion::Honor)
        );
        assert_eq!(
            spread.selector.match_expressions,
            vec![Requirement::new("pod-template-hash", Operator::In, &["abc"])],
            "a key the pod does not carry is ignored"
        );
    }

    #[test]
    fn a_constraint_on_another_topology_key_is_left_out_and_named_not_the_pod() {
        // Before, the whole pod failed to convert and the controller left it out of every plan: its node
        // looked emptier than it is.
        let p = converted(serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "shop", "labels": {"app": "db"}},
            "spec": {
                "containers": [{"name": "db", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "example.com/rack"},
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
                ]}},
                "topologySpreadConstraints": [{
                    "maxSkew": 1, "topologyKey": "topology.kubernetes.io/region", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": "db"}}
                }]
            }
        }));
        assert_eq!((p.requests.cpu_milli, p.requests.memory), (2000, 4 << 30), "it still counts in full");
        assert_eq!(p.pod_anti_affinity.len(), 1, "the hostname term is kept");
        assert!(p.topology_spread.is_empty());
        assert_eq!(p.unmodelled.len(), 2, "{:?}", p.unmodelled);
        assert!(p.unmodelled[0].starts_with("topology spread on topology key \"topology.kubernetes.io/region\""));
        assert!(p.unmodelled[1].starts_with("pod anti-affinity on topology key \"example.com/rack\""));
    }

    #[test]
    fn match_fields_name_the_node_by_its_hostname_and_schedule_anyway_only_ranks() {
        let p = converted(serde_json::json!({
            "metadata": {"name": "pinned", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n1"]}
                    ]}]
                }}},
                "topologySpreadConstraints": [{
                    "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": "web"}}
                }]
            }
        }));
        let n1 = Node::new("n1", 4000, 8 << 30);
        let n2 = Node::new("n2", 4000, 8 << 30);
        assert!(crate::feasible(&p, &n1, std::slice::from_ref(&n1)).is_ok());
        assert!(crate::feasible(&p, &n2, std::slice::from_ref(&n2)).is_err(), "only the named node");
        // A node whose hostname label is not its name is refused: the safe side (less room, never more).
        let mut renamed = Node::new("n1", 4000, 8 << 30);
        renamed.labels.insert(LABEL_HOSTNAME.into(), "n1.example.com".into());
        assert!(crate::feasible(&p, &renamed, std::slice::from_ref(&renamed)).is_err());
        // ScheduleAnyway only ranks nodes: no constraint is kept, so no node is refused for it.
        assert!(p.topology_spread.is_empty());
        let mut crowded = Node::new("n1", 4000, 8 << 30);
        crowded.pods.push(p.clone());
        assert!(crate::feasible(&p, &crowded, std::slice::from_ref(&crowded)).is_ok());
    }
}
