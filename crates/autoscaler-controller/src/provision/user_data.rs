//! The user data of a VM node: the NodeGroup's template (or the operator's) filled from the join Secret
//! and the node's name, labels and taints.

use autoscaler_api::{NodeGroup, VPSieNodeSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret as K8sSecret};
use kube::Api;
use vpsie_client::Secret;

use super::cloud_init::{self, KubeletTaint, NodeBootstrap};
use super::provider_id_for_hostname;
use crate::context::Context;
use crate::lifecycle::matching::{effect_name, node_labels};

/// Renders the cloud-init of the VM node `spec`; the error names the template, the Secret or the key at
/// fault. The NodeGroup controller calls it before creating a VPSieNode, so a broken template or join
/// Secret stops the group with a clear condition instead of failing one VPSieNode after another.
pub async fn render(ctx: &Context, group: Option<&NodeGroup>, spec: &VPSieNodeSpec) -> Result<Secret, UserDataError> {
    let bad = UserDataError::Configuration;
    let vm = group.and_then(|g| g.spec.provisioning.as_ref()).and_then(|p| p.vm.as_ref());
    let template = match vm.and_then(|v| v.cloud_init_template_ref.as_ref()) {
        Some(r) => {
            let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &r.namespace);
            let map = maps.get_opt(&r.name).await?;
            map.and_then(|m| m.data).and_then(|d| d.get(&r.key).cloned()).ok_or_else(|| {
                bad(format!(
                    "spec.provisioning.vm.cloudInitTemplateRef: ConfigMap {}/{} has no key {:?}",
                    r.namespace, r.name, r.key
                ))
            })?
        }
        None => ctx.config.cloud_init_template.clone().unwrap_or_else(|| cloud_init::DEFAULT_TEMPLATE.to_owned()),
    };
    let (ns, name) = match vm.and_then(|v| v.join_secret_ref.as_ref()) {
        Some(r) => (r.namespace.clone(), r.name.clone()),
        None => (ctx.config.join_secret_namespace.clone(), ctx.config.join_secret_name.clone()),
    };
    let secrets: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = secrets.get_opt(&name).await?.ok_or_else(|| {
        bad(format!("join Secret {ns}/{name} does not exist (spec.provisioning.vm.joinSecretRef or --join-secret)"))
    })?;
    let join = cloud_init::join_values(&secret).map_err(|e| bad(e.to_string()))?;
    let mut taints: Vec<KubeletTaint> = Vec::new();
    for t in group.map(|g| g.spec.taints.iter().chain(g.spec.startup_taints.iter())).into_iter().flatten() {
        taints.push(KubeletTaint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: effect_name(t.effect).to_owned(),
        });
    }
    let bootstrap = NodeBootstrap {
        node_name: spec.hostname.clone(),
        node_group: spec.node_group_name.clone(),
        provider_id: provider_id_for_hostname(&spec.hostname),
        labels: node_labels(group, &spec.node_group_name, spec),
        taints,
        kubernetes_version: ctx.config.kubernetes_version.clone().unwrap_or_default(),
        join,
    };
    bootstrap.render(&template).map_err(|e| bad(format!("{e} ({})", template_source(group))))
}

/// Where the template came from, for error messages.
fn template_source(group: Option<&NodeGroup>) -> String {
    let vm = group.and_then(|g| g.spec.provisioning.as_ref()).and_then(|p| p.vm.as_ref());
    match vm.and_then(|v| v.cloud_init_template_ref.as_ref()) {
        Some(r) => {
            format!("spec.provisioning.vm.cloudInitTemplateRef ConfigMap {}/{} key {}", r.namespace, r.name, r.key)
        }
        None => "the operator's --cloud-init-template or built-in template".to_owned(),
    }
}

/// Why user data could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    /// The template, the ConfigMap or the join Secret is unusable: a person must fix it.
    #[error("{0}")]
    Configuration(String),
    /// Reading the ConfigMap or the Secret failed: retried.
    #[error("reading the cloud-init inputs: {0}")]
    Api(#[from] kube::Error),
}
