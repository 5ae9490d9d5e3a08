//! Evicting one pod through the Eviction API until it is accepted or the deadline passes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, ListParams, Preconditions};
use tokio::time::Instant;

use crate::policy::DrainPolicy;

/// How an eviction ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evicted {
    /// The API accepted it; the pod is terminating.
    Accepted,
    /// The pod was already gone (or replaced by a new pod of the same name).
    AlreadyGone,
    /// Still refused by PodDisruptionBudgets at the deadline.
    Budget(Vec<String>),
    /// Still failing for another reason at the deadline.
    Failed(String),
}

/// One pod's eviction, with how many times a budget made it wait.
#[derive(Debug, Clone)]
pub(crate) struct PodEviction {
    pub(crate) pod: String,
    pub(crate) result: Evicted,
    pub(crate) budget_waits: u32,
}

/// Whether a label selector matches a label set (matchLabels and matchExpressions).
pub(crate) fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector.match_labels.as_ref().is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let exprs_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// Whether the pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The preconditions to delete `pod` with when a fresh read shows it (same UID) not Ready; `None` when it
/// is Ready now, gone, or cannot be read.
async fn unready_now(pods: &Api<Pod>, name: &str, pod: &Pod) -> Option<Preconditions> {
    let current = pods.get_opt(name).await.ok().flatten()?;
    let same = current.metadata.uid.is_some() && current.metadata.uid == pod.metadata.uid;
    (same && !pod_ready(&current)).then(|| Preconditions {
        uid: current.metadata.uid.clone(),
        resource_version: current.metadata.resource_version,
    })
}

/// Names of the PodDisruptionBudgets in the pod's namespace that select it.
async fn budgets_for(pdbs: &Api<PodDisruptionBudget>, pod: &Pod) -> Vec<String> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    match pdbs.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|s| selector_matches(s, &labels)))
            .filter_map(|p| p.metadata.name)
            .collect(),
        Err(e) => vec![format!("(budgets unknown: {e})")],
    }
}

/// What a 429 answer to an eviction means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A PodDisruptionBudget does not allow it now (the Eviction API's `DisruptionBudget` cause).
    Budget,
    /// The API server is throttling (API Priority and Fairness): retry after the given wait.
    Throttled(Duration),
}

/// Tells a budget's refusal from API throttling. Both are 429; only the budget's carries the
/// `DisruptionBudget` cause (or, from older servers, a message naming the disruption budget).
pub(crate) fn refusal(status: &kube::core::Status) -> Refusal {
    let details = status.details.as_ref();
    let budget_cause = details.is_some_and(|d| d.causes.iter().any(|c| c.reason == "DisruptionBudget"));
    if budget_cause || status.message.contains("disruption budget") {
        return Refusal::Budget;
    }
    let secs = details.map_or(0, |d| d.retry_after_seconds).max(1);
    Refusal::Throttled(Duration::from_secs(u64::from(secs)))
}

/// Evicts `pod`, retrying refusals with exponential backoff until `deadline`. A 429 (a budget says no)
/// is never success. The pod's own terminationGracePeriodSeconds applies (no override), and the UID
/// precondition keeps a replacement pod of the same name from being evicted by mistake.
pub(crate) async fn evict_until(
    pods: &Api<Pod>,
    pdbs: &Api<PodDisruptionBudget>,
    pod: &Pod,
    deadline: Instant,
    policy: &DrainPolicy,
) -> PodEviction {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let full = format!("{}/{name}", pod.metadata.namespace.as_deref().unwrap_or_default());
    let params = EvictParams {
        delete_options: Some(DeleteParams {
            preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
            ..DeleteParams::default()
        }),
        ..EvictParams::default()
    };
    let mut backoff = policy.min_backoff;
    let mut budget_waits = 0;
    loop {
        let outcome = match pods.evict(&name, &params).await {
            Ok(_) => return PodEviction { pod: full, result: Evicted::Accepted, budget_waits },
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return PodEviction { pod: full, result: Evicted::AlreadyGone, budget_waits };
            }
            // The UID precondition failed: the pod of that name is a new one, ours is gone.
            Err(kube::Error::Api(s)) if s.code == 409 && s.message.contains("UID") => {
                return PodEviction { pod: full, result: Evicted::AlreadyGone, budget_waits };
            }
            Err(kube::Error::Api(s)) if s.code == 429 => match refusal(&s) {
                // Not Ready: it serves nothing, so deleting it takes no healthy pod from its budget. Read
                // again now (the wave's list may be minutes old) and deleted only as read: a pod that turned
                // Ready since fails the resourceVersion precondition and is evicted as any other.
                Refusal::Budget if policy.delete_unready_pods => match unready_now(pods, &name, pod).await {
                    Some(precondition) => {
                        let delete = DeleteParams { preconditions: Some(precondition), ..DeleteParams::default() };
                        match pods.delete(&name, &delete).await {
                            Ok(_) => {
                                tracing::info!(pod = %full, "a budget refused evicting a pod that is not Ready; deleted it");
                                return PodEviction { pod: full, result: Evicted::Accepted, budget_waits };
                            }
                            Err(kube::Error::Api(s)) if s.code == 404 => {
                                return PodEviction { pod: full, result: Evicted::AlreadyGone, budget_waits };
                            }
                            Err(e) => Evicted::Failed(e.to_string()),
                        }
                    }
                    None => {
                        budget_waits += 1;
                        Evicted::Budget(budgets_for(pdbs, pod).await)
                    }
                },
                Refusal::Budget => {
                    budget_waits += 1;
                    Evicted::Budget(budgets_for(pdbs, pod).await)
                }
                // The API server is shedding load: not a budget's answer. Wait as it asks, then resend.
                Refusal::Throttled(wait) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return PodEviction {
                            pod: full,
                            result: Evicted::Failed(
                                "the API server throttled the eviction (429) until the deadline".into(),
                            ),
                            budget_waits,
                        };
                    }
                    tracing::debug!(pod = %full, wait_ms = wait.as_millis() as u64, "eviction throttled by the API server");
                    tokio::time::sleep(wait.min(deadline - now)).await;
                    continue;
                }
            },
            Err(e) => Evicted::Failed(e.to_string()),
        };
        let now = Instant::now();
        if now >= deadline {
            return PodEviction { pod: full, result: outcome, budget_waits };
        }
        tracing::debug!(pod = %full, ?outcome, wait_ms = backoff.as_millis() as u64, "eviction refused; retrying");
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(policy.max_backoff).max(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn status(message: &str, cause: Option<&str>, retry_after_seconds: u32) -> kube::core::Status {
        kube::core::Status {
            status: None,
            code: 429,
            message: message.to_owned(),
            metadata: None,
            reason: "TooManyRequests".to_owned(),
            details: Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: cause
                    .map(|c| {
                        vec![kube::core::response::StatusCause {
                            reason: c.into(),
                            message: String::new(),
                            field: String::new(),
                        }]
                    })
                    .unwrap_or_default(),
                retry_after_seconds,
            }),
        }
    }

    #[test]
    fn a_budget_refusal_is_told_from_api_throttling() {
        let budget =
            status("Cannot evict pod as it would violate the pod's disruption budget.", Some("DisruptionBudget"), 0);
        assert_eq!(refusal(&budget), Refusal::Budget);
        assert_eq!(refusal(&status("would violate the pod's disruption budget", None, 0)), Refusal::Budget);
        let apf = status("Too many requests, please try again later.", None, 3);
        assert_eq!(refusal(&apf), Refusal::Throttled(Duration::from_secs(3)));
        assert_eq!(refusal(&status("Too many requests", None, 0)), Refusal::Throttled(Duration::from_secs(1)));
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let labels: BTreeMap<String, String> = [("app".into(), "web".into()), ("tier".into(), "fe".into())].into();
        let by_labels =
            LabelSelector { match_labels: Some([("app".into(), "web".into())].into()), ..Default::default() };
        assert!(selector_matches(&by_labels, &labels));
        let req = |op: &str, values: &[&str]| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
            }]),
            ..Default::default()
        };
        assert!(selector_matches(&req("In", &["fe", "be"]), &labels));
        assert!(!selector_matches(&req("NotIn", &["fe"]), &labels));
        assert!(selector_matches(&req("Exists", &[]), &labels));
        assert!(!selector_matches(&req("DoesNotExist", &[]), &labels));
        assert!(selector_matches(&LabelSelector::default(), &labels), "an empty selector matches everything");
    }
}
