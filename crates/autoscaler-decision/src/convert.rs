//! Conversion of k8s-openapi objects into the model (feature `k8s`).
//!
//! Known approximations: `matchFields` on `metadata.name` becomes a requirement on the hostname label;
//! restartable (sidecar) init containers are treated as ordinary init containers; pod affinity
//! `namespaceSelector` is ignored; only DoNotSchedule spread constraints are kept. The eviction fields
//! (`do_not_disrupt`, `safe_to_evict`, a mirror pod's `Node` owner, `finished`) are read here, by the rules of
//! [`crate::eviction`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use crate::model::{
    HostPort, LABEL_HOSTNAME, LABEL_ZONE, Node, Pdb, Pod, PodAffinityTerm, Protocol, TopologyKey, TopologySpread,
};
use crate::quantity;
use crate::resources::{Resources, effective_request};
use crate::selectors::{
    LabelSelector, NodeSelectorTerm, Operator, Requirement, Taint, TaintEffect, Toleration, TolerationOperator,
};

/// What the conversion cannot represent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// A topology key other than hostname and zone.
    TopologyKey(String),
    /// A quantity that does not parse.
    Quantity(String),
    /// An operator or effect the API does not define.
    Unknown(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::TopologyKey(k) => {
                write!(f, "unsupported topology key {k:?} (only {LABEL_HOSTNAME} and {LABEL_ZONE})")
            }
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

fn topology(key: &str) -> Result<TopologyKey> {
    match key {
        LABEL_HOSTNAME => Ok(TopologyKey::Hostname),
        LABEL_ZONE => Ok(TopologyKey::Zone),
        other => Err(ConvertError::TopologyKey(other.to_owned())),
    }
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

fn affinity_terms(terms: Option<&Vec<k8s::PodAffinityTerm>>) -> Result<Vec<PodAffinityTerm>> {
    terms
        .into_iter()
        .flatten()
        .map(|t| {
            Ok(PodAffinityTerm {
                selector: label_selector(t.label_selector.as_ref())?,
                namespaces: t.namespaces.clone().unwrap_or_default(),
                topology: topology(&t.topology_key)?,
            })
        })
        .collect()
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
    let containers: Vec<Resources> = spec
        .containers
        .iter()
        .map(|c| resources(c.resources.as_ref().and_then(|r| r.requests.as_ref())))
        .collect::<Result<_>>()?;
    let inits: Vec<Resources> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| resources(c.resources.as_ref().and_then(|r| r.requests.as_ref())))
        .collect::<Result<_>>()?;
    let overhead = resources(spec.overhead.as_ref())?;
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
    let topology_spread = spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .map(|c| {
            Ok(TopologySpread {
                max_skew: c.max_skew,
                topology: topology(&c.topology_key)?,
                selector: label_selector(c.label_selector.as_ref())?,
            })
        })
        .collect::<Result<_>>()?;
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
        requests: effective_request(&containers, &inits, &overhead),
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        node_affinity: node_terms(affinity.and_then(|a| a.node_affinity.as_ref()))?,
        tolerations,
        pod_affinity: affinity_terms(
            affinity
                .and_then(|a| a.pod_affinity.as_ref())
                .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        )?,
        pod_anti_affinity: affinity_terms(
            affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        )?,
        topology_spread,
        host_ports,
        priority: spec.priority.unwrap_or(0),
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
}
