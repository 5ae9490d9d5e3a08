//! The cloud-init user data a plain VM joins the cluster with: a template with `{{variable}}` slots,
//! filled per node. A slot the renderer does not know, or a join value the Secret lacks, is an error that
//! names it, so a typo never becomes a VM that boots and never joins.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use vpsie_client::Secret;

/// Secret key: the API server address kubeadm joins (`host:port`).
pub const KEY_ENDPOINT: &str = "apiServerEndpoint";
/// Secret key: the bootstrap token.
pub const KEY_TOKEN: &str = "token";
/// Secret key: the discovery CA certificate hash (`sha256:...`).
pub const KEY_CA_CERT_HASH: &str = "caCertHash";

/// The built-in template: installs kubeadm and the kubelet of the cluster's version when the image lacks
/// them, then joins with the node's provider id, labels and taints as kubelet flags.
pub const DEFAULT_TEMPLATE: &str = r#"#!/bin/bash
# vpsie-autoscaler node bootstrap: NodeGroup {{nodeGroup}}, node {{nodeName}}
set -euo pipefail
hostnamectl set-hostname {{nodeName}}
if ! command -v kubeadm >/dev/null 2>&1; then
  version={{kubernetesVersion}}
  minor=$(echo "${version#v}" | cut -d. -f1,2)
  mkdir -p /etc/apt/keyrings
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key" | gpg --dearmor -o /etc/apt/keyrings/kubernetes.gpg
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /" > /etc/apt/sources.list.d/kubernetes.list
  apt-get update -q && apt-get install -y -q containerd kubelet kubeadm
fi
cat > /etc/default/kubelet <<'KUBELET'
KUBELET_EXTRA_ARGS="--provider-id={{providerID}} --node-labels={{labels}} --register-with-taints={{taints}}"
KUBELET
kubeadm join {{apiServerEndpoint}} --token {{joinToken}} --discovery-token-ca-cert-hash {{caCertHash}} --node-name {{nodeName}}
"#;

/// The kubeadm join values, read from the join Secret.
#[derive(Clone)]
pub struct JoinValues {
    /// `host:port` of the API server.
    pub endpoint: String,
    /// Bootstrap token.
    pub token: Secret,
    /// `sha256:<hex>` of the cluster CA.
    pub ca_cert_hash: String,
}

impl std::fmt::Debug for JoinValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinValues").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// What goes wrong filling a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{name}}` the renderer does not know.
    #[error("the cloud-init template uses {{{{{0}}}}}, which is not a known variable (known: {1})")]
    UnknownVariable(String, String),
    /// A `{{` without its `}}`.
    #[error("the cloud-init template has an unclosed {{{{ at byte {0}")]
    Unclosed(usize),
    /// The join Secret lacks a key (or holds an empty or non-UTF-8 value).
    #[error("join Secret {secret} has no usable key `{key}`")]
    MissingJoinKey {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: &'static str,
    },
}

/// Reads the join values from a Secret; the error names the Secret and the key, never a value.
pub fn join_values(secret: &K8sSecret) -> Result<JoinValues, TemplateError> {
    let name = format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let data = secret.data.clone().unwrap_or_default();
    let read = |key: &'static str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TemplateError::MissingJoinKey { secret: name.clone(), key })
    };
    Ok(JoinValues {
        endpoint: read(KEY_ENDPOINT)?,
        token: Secret::new(read(KEY_TOKEN)?),
        ca_cert_hash: read(KEY_CA_CERT_HASH)?,
    })
}

/// A taint as the kubelet's `--register-with-taints` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletTaint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// Effect.
    pub effect: String,
}

/// Everything one node's user data is rendered from.
#[derive(Debug, Clone)]
pub struct NodeBootstrap {
    /// Node (and host) name.
    pub node_name: String,
    /// NodeGroup name.
    pub node_group: String,
    /// The provider id the kubelet registers with.
    pub provider_id: String,
    /// Labels the Node registers with.
    pub labels: BTreeMap<String, String>,
    /// Taints and startup taints the Node registers with.
    pub taints: Vec<KubeletTaint>,
    /// The cluster's Kubernetes version (`v1.36.3`).
    pub kubernetes_version: String,
    /// The join values.
    pub join: JoinValues,
}

const VARIABLES: [&str; 9] = [
    "nodeName",
    "nodeGroup",
    "providerID",
    "labels",
    "taints",
    "kubernetesVersion",
    "apiServerEndpoint",
    "joinToken",
    "caCertHash",
];

impl NodeBootstrap {
    fn value(&self, name: &str) -> Option<String> {
        Some(match name {
            "nodeName" => self.node_name.clone(),
            "nodeGroup" => self.node_group.clone(),
            "providerID" => self.provider_id.clone(),
            "labels" => self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            "taints" => self
                .taints
                .iter()
                .map(|t| {
                    if t.value.is_empty() {
                        format!("{}:{}", t.key, t.effect)
                    } else {
                        format!("{}={}:{}", t.key, t.value, t.effect)
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
            "kubernetesVersion" => self.kubernetes_version.clone(),
            "apiServerEndpoint" => self.join.endpoint.clone(),
            "joinToken" => self.join.token.expose().to_owned(),
            "caCertHash" => self.join.ca_cert_hash.clone(),
            _ => return None,
        })
    }

    /// Fills `template`. The result holds the join token, so it is a [`Secret`].
    pub fn render(&self, template: &str) -> Result<Secret, TemplateError> {
        let mut out = String::with_capacity(template.len() + 256);
        let mut rest = template;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed(offset + start))?;
            let name = after[..end].trim();
            let value = self
                .value(name)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_owned(), VARIABLES.join(", ")))?;
            let _ = write!(out, "{value}");
            offset += start + 2 + end + 2;
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(Secret::new(out))
    }
}

/// Checks a template without rendering it for a node: every variable known, every `{{` closed.
pub fn check(template: &str) -> Result<(), TemplateError> {
    let probe = NodeBootstrap {
        node_name: String::new(),
        node_group: String::new(),
        provider_id: String::new(),
        labels: BTreeMap::new(),
        taints: Vec::new(),
        kubernetes_version: String::new(),
        join: JoinValues { endpoint: String::new(), token: Secret::new(""), ca_cert_hash: String::new() },
    };
    probe.render(template).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bootstrap() -> NodeBootstrap {
        NodeBootstrap {
            node_name: "general-x7k2p".into(),
            node_group: "general".into(),
            provider_id: "vpsie://general-x7k2p".into(),
            labels: [
                ("autoscaler.vpsie.com/nodegroup".to_owned(), "general".to_owned()),
                ("team".to_owned(), "web".to_owned()),
            ]
            .into(),
            taints: vec![
                KubeletTaint { key: "dedicated".into(), value: "web".into(), effect: "NoSchedule".into() },
                KubeletTaint {
                    key: "autoscaler.vpsie.com/initializing".into(),
                    value: String::new(),
                    effect: "NoSchedule".into(),
                },
            ],
            kubernetes_version: "v1.36.3".into(),
            join: JoinValues {
                endpoint: "10.0.0.1:6443".into(),
                token: Secret::new("abcdef.0123456789abcdef"),
                ca_cert_hash: "sha256:00ff".into(),
            },
        }
    }

    #[test]
    fn the_default_template_renders_the_kubelet_flags_and_the_join() {
        let text = bootstrap().render(DEFAULT_TEMPLATE).unwrap();
        let text = text.expose();
        assert!(text.contains("--provider-id=vpsie://general-x7k2p"));
        assert!(text.contains("--node-labels=autoscaler.vpsie.com/nodegroup=general,team=web"));
        assert!(
            text.contains(
                "--register-with-taints=dedicated=web:NoSchedule,autoscaler.vpsie.com/initializing:NoSchedule"
            )
        );
        assert!(text.contains(
            "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff"
        ));
        assert!(text.contains("version=v1.36.3"));
        assert!(!text.contains("{{"), "every slot filled");
        assert!(check(DEFAULT_TEMPLATE).is_ok());
    }

    /// What the simulator's kubelet (and a real one) reads back from the rendered default template, with
    /// taints and with none (an empty `--register-with-taints=` closing the quoted string).
    #[test]
    fn the_rendered_default_template_is_read_back_by_a_kubelet() {
        let mut b = bootstrap();
        let args = vpsie_sim::KubeletArgs::parse(b.render(DEFAULT_TEMPLATE).unwrap().expose()).unwrap();
        assert_eq!(args.provider_id, "vpsie://general-x7k2p");
        assert_eq!(args.labels, b.labels);
        assert_eq!(args.taints.len(), 2);
        b.taints.clear();
        let args = vpsie_sim::KubeletArgs::parse(b.render(DEFAULT_TEMPLATE).unwrap().expose()).unwrap();
        assert!(args.taints.is_empty());
        assert_eq!(args.labels, b.labels);
    }

    #[test]
    fn unknown_variables_and_missing_join_keys_are_named() {
        let err = check("kubeadm join {{apiServer}}").unwrap_err();
        assert!(err.to_string().contains("{{apiServer}}, which is not a known variable"), "{err}");
        assert_eq!(check("x {{nodeName"), Err(TemplateError::Unclosed(2)));
        let secret = K8sSecret {
            metadata: kube::api::ObjectMeta {
                name: Some("join".into()),
                namespace: Some("kube-system".into()),
                ..Default::default()
            },
            data: Some(
                [
                    (KEY_ENDPOINT.to_owned(), k8s_openapi::ByteString(b"1.2.3.4:6443".to_vec())),
                    (KEY_TOKEN.to_owned(), k8s_openapi::ByteString(b" ".to_vec())),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let err = join_values(&secret).unwrap_err();
        assert_eq!(err.to_string(), "join Secret kube-system/join has no usable key `token`");
    }
}
