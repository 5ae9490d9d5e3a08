//! The workloads the harness commands run: one Deployment (and optionally its PodDisruptionBudget) whose
//! pods fit nowhere until the operator adds nodes.

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::stack::{MANAGER, Stack};

/// A Deployment `app` in `namespace` whose pods each request `cpu` and `memory`.
pub(crate) struct Workload {
    /// Namespace (created on first apply).
    pub(crate) namespace: &'static str,
    /// Deployment name and `app` label.
    pub(crate) app: &'static str,
    /// CPU request per pod (`500m`).
    pub(crate) cpu: &'static str,
    /// Memory request per pod (`512Mi`).
    pub(crate) memory: &'static str,
}

/// What the workload's PodDisruptionBudget allows.
pub(crate) enum Budget {
    /// `maxUnavailable`.
    MaxUnavailable(i32),
    /// `minAvailable`.
    MinAvailable(i32),
}

impl Workload {
    /// Creates the namespace, the budget (if any), then the Deployment with `replicas`.
    pub(crate) async fn apply(&self, stack: &Stack, replicas: i32, budget: Option<Budget>) -> anyhow::Result<()> {
        testenv::create_namespace(&stack.admin, self.namespace).await?;
        let pp = PatchParams::apply(MANAGER).force();
        if let Some(budget) = budget {
            let rule = match budget {
                Budget::MaxUnavailable(n) => json!({"maxUnavailable": n}),
                Budget::MinAvailable(n) => json!({"minAvailable": n}),
            };
            let mut spec = json!({"selector": {"matchLabels": {"app": self.app}}});
            if let (Some(s), Some(r)) = (spec.as_object_mut(), rule.as_object()) {
                s.extend(r.clone());
            }
            let pdb: PodDisruptionBudget = serde_json::from_value(json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": self.app, "namespace": self.namespace}, "spec": spec
            }))?;
            Api::<PodDisruptionBudget>::namespaced(stack.admin.clone(), self.namespace)
                .patch(self.app, &pp, &Patch::Apply(&pdb))
                .await
                .context("applying the PodDisruptionBudget")?;
        }
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.app, "namespace": self.namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": self.app}},
                "template": {"metadata": {"labels": {"app": self.app}},
                    "spec": {"containers": [{"name": self.app, "image": format!("registry.example.com/{}:1", self.app),
                        "resources": {"requests": {"cpu": self.cpu, "memory": self.memory}}}]}}}
        }))?;
        Api::<Deployment>::namespaced(stack.admin.clone(), self.namespace)
            .patch(self.app, &pp, &Patch::Apply(&deployment))
            .await
            .context("applying the Deployment")?;
        Ok(())
    }

    /// Sets the Deployment's replicas.
    pub(crate) async fn scale(&self, stack: &Stack, replicas: i32) -> anyhow::Result<()> {
        Api::<Deployment>::namespaced(stack.admin.clone(), self.namespace)
            .patch(self.app, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": replicas}})))
            .await
            .context("scaling the Deployment")?;
        Ok(())
    }

    /// Pods of the workload that are Running.
    pub(crate) async fn running(&self, stack: &Stack) -> anyhow::Result<usize> {
        let pods = Api::<Pod>::namespaced(stack.admin.clone(), self.namespace).list(&Default::default()).await?;
        Ok(pods.items.iter().filter(|p| is_running(p)).count())
    }
}

/// Running and not being deleted.
pub(crate) fn is_running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}
