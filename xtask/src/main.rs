//! Project automation. `cargo xtask ci` is the single test entry point.

mod ci;
mod cluster;
mod crdgen;
mod memory;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "vpsie-autoscaler project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, tests, docs, the client example against the simulator, cargo-deny.
    Ci {
        /// Skip `cargo deny` (when it is not installed).
        #[arg(long)]
        no_deny: bool,
    },
    /// Write deploy/crds/*.yaml from the Rust types (`--check`: fail when they are stale).
    Crdgen {
        /// Only check; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Run the vpsie-client example against a freshly started simulator.
    Example,
    /// The operator's peak resident memory on a large cluster (kwok nodes, bound pods), printed and written
    /// to target/bench/memory.json.
    Memory {
        /// Nodes to create.
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        /// Pods to create (bound to the nodes round-robin).
        #[arg(long, default_value_t = 30000)]
        pods: usize,
    },
    /// The local Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Build (or find cached) binaries only.
    Build,
    /// Start the control plane and leave it running.
    Up,
    /// Stop it.
    Down,
    /// Show whether it runs and is ready.
    Status,
    /// Print the admin kubeconfig path.
    Kubeconfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci { no_deny } => ci::run(!no_deny),
        Command::Example => ci::example(),
        Command::Crdgen { check } => crdgen::run(check),
        Command::Memory { nodes, pods } => memory::run(nodes, pods).await,
        Command::Cluster { action } => match action {
            ClusterAction::Build => cluster::build(),
            ClusterAction::Up => cluster::up().await,
            ClusterAction::Down => cluster::down(),
            ClusterAction::Status => cluster::status().await,
            ClusterAction::Kubeconfig => cluster::kubeconfig(),
        },
    }
}
