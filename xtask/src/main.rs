//! Project automation. `cargo xtask ci` is the single test entry point.

mod bench;
mod chaos;
mod ci;
mod cluster;
mod crdgen;
mod demo;
mod e2e;
mod memory;
mod progress;
mod stack;
mod workload;

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
    /// The whole system, shown live: control plane, simulated cloud, the operator, a workload scaled up and
    /// down.
    Demo {
        /// Leave everything running at the end (until Ctrl-C) and print how to explore it.
        #[arg(long)]
        keep: bool,
        /// Replicas of the workload that does not fit (500m CPU, 512Mi each).
        #[arg(long, default_value_t = 20)]
        replicas: i32,
    },
    /// The end-to-end scenarios one by one (operator binary under its ServiceAccount, local control plane,
    /// vpsie-sim), with a table of results.
    E2e {
        /// Only the short smoke: scale-up then scale-down.
        #[arg(long)]
        smoke: bool,
        /// Only scenarios whose name or test contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Run against this existing cluster (kwok installed, no other schedulable node) instead of a local
        /// control plane per scenario; what the run installs there it removes at the end.
        #[arg(long)]
        kubeconfig: Option<std::path::PathBuf>,
    },
    /// The operator's reaction (P2) and scale-up (P4) figures beside the anchors, written to
    /// target/bench/bench.json.
    Bench {
        /// Pods of the workload that fits nowhere. P2 needs at least 200 of them marked Unschedulable before
        /// a node takes them (about three in four of 1,000 here).
        #[arg(long, default_value_t = 1000)]
        pods: usize,
        /// Fail when a figure is worse than this earlier bench.json by more than the tolerance.
        #[arg(long)]
        check: Option<std::path::PathBuf>,
    },
    /// The operator under faults (R1 fault storm, R2 kill -9 loop, R3 leader killed, R7 unknown taints): VMs
    /// created, duplicates, leaks, budget violations and convergence, one table.
    Chaos {
        /// Only this scenario (R1, R2, R3 or R7).
        #[arg(long)]
        only: Option<String>,
    },
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
    /// Freeze one component with SIGSTOP (etcd, apiserver, controller-manager, scheduler, kwok).
    Freeze {
        /// The component.
        component: String,
    },
    /// Resume a frozen component with SIGCONT.
    Resume {
        /// The component.
        component: String,
    },
    /// Kill one component with SIGKILL; its supervisor restarts it after its backoff.
    Kill {
        /// The component.
        component: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci { no_deny } => ci::run(!no_deny),
        Command::Example => ci::example(),
        Command::Bench { pods, check } => bench::run(pods, check.as_deref()).await,
        Command::Chaos { only } => chaos::run(only.as_deref()).await,
        Command::E2e { smoke, only, kubeconfig } => e2e::run(smoke, only.as_deref(), kubeconfig.as_deref()).await,
        Command::Demo { keep, replicas } => demo::run(demo::DemoOptions { keep, replicas }).await,
        Command::Crdgen { check } => crdgen::run(check),
        Command::Memory { nodes, pods } => memory::run(nodes, pods).await,
        Command::Cluster { action } => match action {
            ClusterAction::Build => cluster::build(),
            ClusterAction::Up => cluster::up().await,
            ClusterAction::Down => cluster::down(),
            ClusterAction::Status => cluster::status().await,
            ClusterAction::Kubeconfig => cluster::kubeconfig(),
            ClusterAction::Freeze { component } => cluster::signal(&component, testenv::Signal::Stop),
            ClusterAction::Resume { component } => cluster::signal(&component, testenv::Signal::Cont),
            ClusterAction::Kill { component } => cluster::signal(&component, testenv::Signal::Kill),
        },
    }
}
