//! `vpsie-sim`: run the VPSie API simulator by hand.
//!
//! ```text
//! cargo run -p vpsie-sim -- --port 8080 --boot-delay-ms 2000
//! curl -H 'Vpsie-Auth: sim-token' http://127.0.0.1:8080/apps/v2/datacenter
//! # booted VMs register as kwok Nodes in a cluster:
//! cargo run -p vpsie-sim -- --kubeconfig "$(cargo xtask cluster kubeconfig)"
//! ```

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use vpsie_sim::{SimConfig, SimHandle};

/// A VPSie API simulator on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the address is printed).
    #[arg(long, env = "VPSIE_SIM_PORT", default_value_t = 8080)]
    port: u16,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long created VMs stay pending, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    boot_delay_ms: u64,
    /// Accepted long-lived access token (repeatable).
    #[arg(long = "token", default_value = "sim-token")]
    tokens: Vec<String>,
    /// Accepted client id for the credentials exchange.
    #[arg(long, default_value = "sim-client")]
    client_id: String,
    /// Accepted client secret.
    #[arg(long, env = "VPSIE_SIM_CLIENT_SECRET", default_value = "sim-secret", hide_env_values = true)]
    client_secret: String,
    /// Account password that VM delete checks.
    #[arg(long, env = "VPSIE_SIM_PASSWORD", default_value = "sim-password", hide_env_values = true)]
    password: String,
    /// Lifetime of exchanged tokens in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
    /// VM quota of the account.
    #[arg(long)]
    max_vms: Option<usize>,
    /// Number of datacenters.
    #[arg(long, default_value_t = 3)]
    datacenters: usize,
    /// Create a managed cluster of this name in the first datacenter at start.
    #[arg(long)]
    cluster: Option<String>,
    /// Join booted VMs to the cluster of this kubeconfig as kwok Nodes (kwok must manage Nodes annotated
    /// `kwok.x-k8s.io/node=fake`).
    #[arg(long, env = "VPSIE_SIM_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// How long after boot a VM's Node registers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    join_delay_ms: u64,
}

async fn kube_client(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading the kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("building the Kubernetes client")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let a = Args::parse();
    let config = SimConfig {
        seed: a.seed,
        port: a.port,
        boot_delay: Duration::from_millis(a.boot_delay_ms),
        access_tokens: a.tokens,
        client_id: a.client_id,
        client_secret: a.client_secret,
        token_ttl: Duration::from_secs(a.token_ttl_secs),
        account_password: a.password,
        max_vms: a.max_vms,
        datacenters: a.datacenters,
    };
    let sim = SimHandle::start(config).await.context("starting the simulator")?;
    sim.update_settings(|s| s.join_delay_ms = a.join_delay_ms);
    if let Some(path) = &a.kubeconfig {
        sim.join_cluster(kube_client(path).await?);
        println!("booted VMs join the cluster of {}", path.display());
    }
    if let Some(name) = a.cluster {
        let dc = sim.catalog().datacenters.first().map(|d| d.identifier.clone()).unwrap_or_default();
        let id = sim.create_cluster(&name, &dc, "1.36.3").context("creating the managed cluster")?;
        println!("managed cluster {name}: {id}");
    }
    // Printed on stdout so scripts (xtask) can read the address.
    println!("vpsie-sim listening on {}", sim.base_url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
