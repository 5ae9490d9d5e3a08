//! Label selectors, node-selector requirements, taints and tolerations, with kube-scheduler's semantics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels of a node or pod.
pub type Labels = BTreeMap<String, String>;

/// A requirement operator. `Gt` and `Lt` are for node selectors only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label's value, as an integer, is greater than the single value.
    Gt,
    /// The label's value, as an integer, is less than the single value.
    Lt,
}

/// One requirement on a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (one for `Gt`/`Lt`, none for `Exists`/`DoesNotExist`).
    pub values: Vec<String>,
}

impl Requirement {
    /// A requirement.
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Self {
        Self { key: key.to_owned(), operator, values: values.iter().map(|v| (*v).to_owned()).collect() }
    }

    /// Whether `labels` satisfy it.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        let int_cmp = |want_greater: bool| -> bool {
            let (Some(v), [bound]) = (value, self.values.as_slice()) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) => {
                    if want_greater {
                        v > b
                    } else {
                        v < b
                    }
                }
                _ => false,
            }
        };
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt => int_cmp(true),
            Operator::Lt => int_cmp(false),
        }
    }
}

/// A pod label selector: all of `match_labels` and all of `match_expressions`. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelSelector {
    /// Exact labels.
    pub match_labels: Labels,
    /// Requirements.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// A selector on exact labels.
    pub fn labels(pairs: &[(&str, &str)]) -> Self {
        Self {
            match_labels: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            match_expressions: Vec::new(),
        }
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// A node selector term: all requirements must hold. An empty term matches no node (as in Kubernetes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeSelectorTerm {
    /// Requirements on node labels.
    pub requirements: Vec<Requirement>,
}

impl NodeSelectorTerm {
    /// Whether a node with `labels` satisfies the term.
    pub fn matches(&self, labels: &Labels) -> bool {
        !self.requirements.is_empty() && self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// Taint effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// Blocks scheduling of pods that do not tolerate it.
    NoSchedule,
    /// A soft preference; never blocks scheduling.
    PreferNoSchedule,
    /// Blocks scheduling and evicts running pods that do not tolerate it.
    NoExecute,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// Effect.
    pub effect: TaintEffect,
}

impl Taint {
    /// A taint.
    pub fn new(key: &str, value: &str, effect: TaintEffect) -> Self {
        Self { key: key.to_owned(), value: value.to_owned(), effect }
    }
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{:?}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{:?}", self.key, self.value, self.effect)
        }
    }
}

/// Toleration operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// Key and value must match.
    Equal,
    /// Key must match (any key when the key is empty).
    Exists,
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Toleration {
    /// Key; empty with `Exists` tolerates every taint.
    pub key: String,
    /// Operator.
    pub operator: TolerationOperator,
    /// Value, for `Equal`.
    pub value: String,
    /// Effect; `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// `key=value:effect` with operator Equal.
    pub fn equal(key: &str, value: &str, effect: Option<TaintEffect>) -> Self {
        Self { key: key.to_owned(), operator: TolerationOperator::Equal, value: value.to_owned(), effect }
    }

    /// `key` with operator Exists.
    pub fn exists(key: &str, effect: Option<TaintEffect>) -> Self {
        Self { key: key.to_owned(), operator: TolerationOperator::Exists, value: String::new(), effect }
    }

    /// Whether this toleration tolerates `taint` (Kubernetes `ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            // An empty key with Equal is invalid in the API; treat it as matching nothing.
            TolerationOperator::Equal => !self.key.is_empty() && self.value == taint.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn requirement_operators_follow_kubernetes() {
        let l = labels(&[("zone", "a"), ("cpu", "8")]);
        let cases = [
            (Requirement::new("zone", Operator::In, &["a", "b"]), true),
            (Requirement::new("zone", Operator::In, &["c"]), false),
            (Requirement::new("missing", Operator::In, &["a"]), false),
            (Requirement::new("zone", Operator::NotIn, &["a"]), false),
            (Requirement::new("missing", Operator::NotIn, &["a"]), true),
            (Requirement::new("zone", Operator::Exists, &[]), true),
            (Requirement::new("zone", Operator::DoesNotExist, &[]), false),
            (Requirement::new("missing", Operator::DoesNotExist, &[]), true),
            (Requirement::new("cpu", Operator::Gt, &["4"]), true),
            (Requirement::new("cpu", Operator::Gt, &["8"]), false),
            (Requirement::new("cpu", Operator::Lt, &["16"]), true),
            (Requirement::new("zone", Operator::Gt, &["1"]), false),
            (Requirement::new("missing", Operator::Lt, &["1"]), false),
            (Requirement::new("cpu", Operator::Gt, &["1", "2"]), false),
        ];
        for (req, want) in cases {
            assert_eq!(req.matches(&l), want, "{req:?}");
        }
    }

    #[test]
    fn empty_selector_matches_all_but_empty_node_term_matches_none() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(!NodeSelectorTerm::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn tolerations_follow_kubernetes() {
        let t = Taint::new("dedicated", "gpu", TaintEffect::NoSchedule);
        let cases = [
            (Toleration::equal("dedicated", "gpu", Some(TaintEffect::NoSchedule)), true),
            (Toleration::equal("dedicated", "gpu", None), true),
            (Toleration::equal("dedicated", "cpu", None), false),
            (Toleration::equal("dedicated", "gpu", Some(TaintEffect::NoExecute)), false),
            (Toleration::exists("dedicated", None), true),
            (Toleration::exists("", None), true),
            (Toleration::exists("", Some(TaintEffect::NoExecute)), false),
            (Toleration::exists("other", None), false),
        ];
        for (tol, want) in cases {
            assert_eq!(tol.tolerates(&t), want, "{tol:?}");
        }
    }
}
