//! Helpers for tests: kwok nodes of a given size, and waiting with a clear message.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::error::{Error, Result};

/// The annotation kwok manages nodes by.
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// A fake node for kwok to run: capacity, labels, taints.
#[derive(Debug, Clone)]
pub struct KwokNode {
    name: String,
    cpu: String,
    memory: String,
    pods: String,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
}

impl KwokNode {
    /// A node with `cpu` (e.g. `"4"`) and `memory` (e.g. `"8Gi"`), 110 pods.
    pub fn new(name: impl Into<String>, cpu: impl Into<String>, memory: impl Into<String>) -> Self {
        let name = name.into();
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_owned(), name.clone());
        labels.insert("kubernetes.io/os".to_owned(), "linux".to_owned());
        labels.insert("kubernetes.io/arch".to_owned(), "amd64".to_owned());
        labels.insert("type".to_owned(), "kwok".to_owned());
        Self { name, cpu: cpu.into(), memory: memory.into(), pods: "110".into(), labels, taints: Vec::new() }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a taint (`effect`: NoSchedule, PreferNoSchedule or NoExecute).
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(Taint {
            key: key.to_owned(),
            value: Some(value.to_owned()).filter(|v| !v.is_empty()),
            effect: effect.to_owned(),
            ..Default::default()
        });
        self
    }

    /// Sets the pod capacity.
    pub fn pods(mut self, pods: u32) -> Self {
        self.pods = pods.to_string();
        self
    }

    /// The Node object.
    pub fn to_node(&self) -> Node {
        let resources: BTreeMap<String, Quantity> = [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("pods", &self.pods),
            ("ephemeral-storage", &"100Gi".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.clone())))
        .collect();
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(self.labels.clone()),
                annotations: Some([(KWOK_ANNOTATION.0.to_owned(), KWOK_ANNOTATION.1.to_owned())].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec { taints: Some(self.taints.clone()).filter(|t| !t.is_empty()), ..Default::default() }),
            status: Some(NodeStatus {
                allocatable: Some(resources.clone()),
                capacity: Some(resources),
                ..Default::default()
            }),
        }
    }

    /// Creates the node and waits until kwok reports it Ready.
    pub async fn create(&self, client: &Client) -> Result<Node> {
        let nodes: Api<Node> = Api::all(client.clone());
        nodes.create(&PostParams::default(), &self.to_node()).await?;
        let name = self.name.clone();
        wait_for(&format!("node {name} Ready"), Duration::from_secs(60), || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move {
                let node = nodes.get(&name).await?;
                let ready = node_ready(&node);
                Ok(if ready { Ok(node) } else { Err(format!("conditions: {:?}", conditions(&node))) })
            }
        })
        .await
    }
}

/// Whether a node's Ready condition is True.
pub fn node_ready(node: &Node) -> bool {
    conditions(node).iter().any(|(t, s)| t == "Ready" && s == "True")
}

fn conditions(node: &Node) -> Vec<(String, String)> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().map(|c| (c.type_.clone(), c.status.clone())).collect())
        .unwrap_or_default()
}

/// Polls `check` every 250 ms until it yields `Ok(value)`, or fails with [`Error::Timeout`] naming `what`
/// and the last state `check` described with `Err(description)`. API errors are retried until the
/// deadline (the control plane may be briefly busy).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(state)) => state,
            Err(e) => format!("error: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout { what: what.to_owned(), seconds: timeout.as_secs(), last });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates a namespace (tests sharing a control plane each use their own).
pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
    Ok(())
}
