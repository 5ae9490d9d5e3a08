//! The runtime's one error type. Each variant has a short `metric_label()` used as the `error` label of
//! `vpsie_autoscaler_controller_reconcile_errors_total` (kube-rs controller-rs keeps the same shape).

/// Everything the runtime and its controllers can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A VPSie API call failed.
    #[error("VPSie API: {0}")]
    Vpsie(#[from] vpsie_client::Error),
    /// The credentials Secret is missing, lacks a key or holds an unusable value. Names the Secret and the
    /// key, never a value.
    #[error("credentials Secret {namespace}/{name}: {reason}")]
    Credentials {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong (the key that is missing, or why a value is refused).
        reason: String,
    },
    /// The CustomResourceDefinitions are not installed.
    #[error("CRD {0} is not installed: apply deploy/crds/ first (kubectl apply -f deploy/crds/)")]
    CrdMissing(String),
    /// Flags or configuration that cannot work together.
    #[error("configuration: {0}")]
    Config(String),
    /// An object could not be converted into the decision core's model.
    #[error("converting {object}: {source}")]
    Convert {
        /// `namespace/name` or name of the object.
        object: String,
        /// Why.
        source: autoscaler_decision::convert::ConvertError,
    },
    /// The audit log could not be written or read.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An HTTP listener could not bind.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Telemetry (metrics recorder, tracing, OTLP exporter) could not be installed.
    #[error("telemetry: {0}")]
    Telemetry(String),
    /// Leader election failed.
    #[error("leader election: {0}")]
    Leader(String),
    /// A blocking task (a plan) panicked or was cancelled.
    #[error("background task: {0}")]
    Task(String),
}

impl Error {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Vpsie(e) => e.kind(),
            Error::Credentials { .. } => "credentials",
            Error::CrdMissing(_) => "crd_missing",
            Error::Config(_) => "config",
            Error::Convert { .. } => "convert",
            Error::Audit { .. } => "audit",
            Error::Listen { .. } => "listen",
            Error::Telemetry(_) => "telemetry",
            Error::Leader(_) => "leader",
            Error::Task(_) => "task",
        }
    }
}

/// The runtime's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_messages_name_the_cause() {
        let e = Error::Credentials {
            namespace: "kube-system".into(),
            name: "vpsie-secret".into(),
            reason: "no key `token`".into(),
        };
        assert_eq!(e.metric_label(), "credentials");
        assert_eq!(e.to_string(), "credentials Secret kube-system/vpsie-secret: no key `token`");
        let crd = Error::CrdMissing("nodegroups.autoscaler.vpsie.com".into());
        assert!(crd.to_string().contains("apply deploy/crds/"));
        assert_eq!(Error::Vpsie(vpsie_client::Error::Config("x".into())).metric_label(), "config");
    }
}
