//! Errors of the test environment.

use std::path::{Path, PathBuf};

/// Everything that can go wrong starting or using a control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or locating a binary failed.
    #[error("building control-plane binaries: {0}")]
    Build(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),
    /// A component exited or did not become ready.
    #[error("{component} {problem}; last lines of {log}:\n{tail}")]
    Component {
        /// The component.
        component: &'static str,
        /// What happened.
        problem: String,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// The component is not part of this control plane (or has not started yet).
    #[error("{component} is not running in this control plane")]
    NotRunning {
        /// The component.
        component: &'static str,
    },
    /// A signal could not be sent.
    #[error("sending SIG{signal} to {component} (pid {pid}) failed")]
    Signal {
        /// The component.
        component: &'static str,
        /// The signal's name.
        signal: String,
        /// The process.
        pid: u32,
    },
    /// The Kubernetes client failed.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// A kubeconfig could not be loaded.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A wait timed out.
    #[error("timed out after {seconds}s waiting for {what}; last observed: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
        /// The last state seen.
        last: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
