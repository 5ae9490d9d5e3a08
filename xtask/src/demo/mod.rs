//! `cargo xtask demo [--keep] [--replicas N]`: the whole system on this machine, shown live.
//!
//! Builds the operator (and, on first use, the Kubernetes binaries), starts the local control plane and
//! vpsie-sim (whose VMs join as kwok Nodes), installs the CRDs, RBAC and Secrets, runs the operator binary as
//! its own process under its ServiceAccount, applies `deploy/examples/nodegroup-general-purpose.yaml`
//! unchanged, then a Deployment that does not fit, and scales it down again. Ends with a timeline and a check
//! against the simulator's own VM list (no VM leaked, none doubled). `--keep` leaves everything running
//! until Ctrl-C. Ctrl-C at any moment stops every process the demo started.

mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::json;

use crate::progress::{self, Timeline};
use crate::stack::{CloudTiming, OperatorProcess, Stack, VmCall};
use crate::workload::{Budget, Workload};
use view::View;

/// The example every user sees first; applied unchanged.
const EXAMPLE: &str = "deploy/examples/nodegroup-general-purpose.yaml";
/// The workload that does not fit: 500m CPU, 512Mi per pod.
const WORKLOAD: Workload = Workload { namespace: "demo", app: "web", cpu: "500m", memory: "512Mi" };
/// Replicas after the scale-down.
const REPLICAS_AFTER: i32 = 2;
/// The demo's scale-down window (the example's is 10 minutes, too long to watch).
const DEMO_SCALE_DOWN_WINDOW_SECONDS: i32 = 20;
const DEMO_COOLDOWN_SECONDS: i32 = 10;

/// What the command line chose.
pub(crate) struct DemoOptions {
    /// Leave everything running at the end, until Ctrl-C.
    pub(crate) keep: bool,
    /// Replicas of the workload that does not fit.
    pub(crate) replicas: i32,
}

/// Everything the demo started; dropping it stops every process.
struct Running {
    // Field order is drop order: the operator stops before the cluster it talks to.
    operator: OperatorProcess,
    stack: Stack,
}

/// Runs the demo; Ctrl-C at any point stops what it started.
pub(crate) async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    if opts.replicas <= REPLICAS_AFTER {
        bail!("--replicas must be more than {REPLICAS_AFTER} (the demo scales down to {REPLICAS_AFTER})");
    }
    // The demo future is dropped when Ctrl-C wins, and with it every process it started.
    let outcome = tokio::select! {
        r = demo(&opts) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(running) = outcome else {
        progress::clear_line();
        println!("\ninterrupted: stopped every process the demo started");
        std::process::exit(130);
    };
    let running = running?;
    if opts.keep {
        keep_running(&running).await?;
    }
    drop(running);
    println!("stopped the operator, vpsie-sim and the control plane");
    Ok(())
}

async fn demo(opts: &DemoOptions) -> anyhow::Result<Running> {
    let mut timeline = Timeline::new();
    println!("vpsie-autoscaler demo: a local control plane, a simulated VPSie cloud and the operator\n");

    let begun = Instant::now();
    println!("  .. building the operator (cargo build -p vpsie-autoscaler)");
    let binary = build_operator().await?;
    timeline.mark("operator built", begun);

    timeline
        .step("Kubernetes binaries (first run: built with Go, about 6 minutes on 2 cores)", async {
            Ok(tokio::task::spawn_blocking(testenv::binaries::ensure).await??)
        })
        .await?;
    let timing = CloudTiming { boot: Duration::from_secs(3), join: Duration::from_secs(2) };
    let stack = timeline
        .step(
            "control plane (etcd, apiserver, scheduler, controller-manager, kwok), vpsie-sim, CRDs, RBAC, Secrets",
            Stack::start(&timing, crate::ci::target_dir().join("demo")),
        )
        .await?;
    let mut operator = timeline
        .step("operator running as ServiceAccount kube-system/vpsie-autoscaler, ready", async {
            let mut op = OperatorProcess::start(&stack, &binary, &[])?;
            op.wait_ready(Duration::from_secs(120)).await?;
            Ok(op)
        })
        .await?;
    println!("     its log: {}", operator.log.display());
    println!(
        "     simulated VMs take {}s to boot and {}s more to join as Nodes\n",
        timing.boot.as_secs(),
        timing.join.as_secs()
    );

    let group = apply_example(&stack).await?;
    let mut view = View::new(&stack, &group.name, WORKLOAD.namespace, Instant::now());
    let begun = Instant::now();
    let min = group.min_nodes;
    view.until(&format!("{min} Ready Nodes (minNodes)"), Duration::from_secs(180), &mut operator, |o| {
        o.nodes_ready >= min && o.vpsienodes == min
    })
    .await?;
    timeline.mark(format!("NodeGroup at minNodes: {min} Nodes Ready"), begun);

    println!("\n==> a Deployment of {} pods (500m CPU, 512Mi each) that does not fit, with a PDB", opts.replicas);
    let applied_ms = epoch_ms();
    let begun = Instant::now();
    WORKLOAD.apply(&stack, opts.replicas, Some(Budget::MaxUnavailable(1))).await?;
    let replicas = usize::try_from(opts.replicas).unwrap_or_default();
    let up = view
        .until("all pods Running", Duration::from_secs(240), &mut operator, |o| {
            o.running_pods == replicas && o.pending_pods == 0
        })
        .await?;
    timeline.mark(format!("all {replicas} pods Running on {} Nodes", up.nodes_ready), begun);
    if let Some(first) = first_create_after(&stack, applied_ms) {
        println!("     first VPSie create request {first} ms after the Deployment was applied");
    }
    let begun = Instant::now();
    let settled = view
        .until("the new nodes to settle", Duration::from_secs(120), &mut operator, |o| {
            o.phases.keys().all(|p| p == "Ready") && o.nodes_ready == o.vpsienodes
        })
        .await?;
    timeline.mark(format!("scale-up settled: {} Nodes Ready", settled.nodes_ready), begun);
    let peak_cost = settled.monthly_cost;

    println!(
        "\n==> scaling the Deployment to {REPLICAS_AFTER}: nodes unneeded for {DEMO_SCALE_DOWN_WINDOW_SECONDS}s are \
         drained (Eviction API, PDB respected) and their VMs deleted"
    );
    let begun = Instant::now();
    WORKLOAD.scale(&stack, REPLICAS_AFTER).await?;
    let after = usize::try_from(REPLICAS_AFTER).unwrap_or_default();
    let down = view
        .until("the group back at minNodes", Duration::from_secs(300), &mut operator, |o| {
            o.vpsienodes == min && o.nodes == min && o.running_pods == after
        })
        .await?;
    timeline.mark(format!("scaled down: {} Nodes, {after} pods Running", down.nodes), begun);

    let vms = check_cloud(&stack, down.vpsienodes)?;
    timeline.print();
    println!(
        "\nVM create requests: {}, deletes: {}; VMs now: {}, one per VPSieNode (no leak, no duplicate)",
        vms.created, vms.deleted, vms.now
    );
    if let (Some(peak), Some(end)) = (peak_cost, down.monthly_cost) {
        println!("Monthly cost of the group: ${peak:.2} at the peak, ${end:.2} after the scale-down");
    }
    Ok(Running { operator, stack })
}

/// Builds the operator binary (debug: the demo needs no speed, and the build reuses xtask's own).
async fn build_operator() -> anyhow::Result<PathBuf> {
    let status = tokio::task::spawn_blocking(|| {
        crate::ci::cargo().args(["build", "--locked", "-p", "vpsie-autoscaler"]).status()
    })
    .await?
    .context("running cargo build")?;
    if !status.success() {
        crate::ci::print_free_disk();
        bail!("building the operator failed ({status})");
    }
    Ok(crate::ci::target_dir().join("debug").join("vpsie-autoscaler"))
}

/// The example group as applied.
struct AppliedGroup {
    name: String,
    min_nodes: usize,
}

/// Applies the example NodeGroup unchanged, then shortens its scale-down window and cooldown (printed as
/// the patch a user would type) so the demo need not wait ten minutes.
async fn apply_example(stack: &Stack) -> anyhow::Result<AppliedGroup> {
    let path = crate::ci::root().join(EXAMPLE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let group: autoscaler_api::NodeGroup =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let name = group.metadata.name.clone().context("the example NodeGroup has no metadata.name")?;
    let min_nodes = usize::try_from(group.spec.min_nodes).context("spec.minNodes")?;
    println!("==> kubectl apply -f {EXAMPLE}");
    stack.kubectl(&["apply", "-f", &path.display().to_string()])?;
    let patch = json!({"spec": {"cooldownSeconds": DEMO_COOLDOWN_SECONDS,
                                "scaleDownPolicy": {"stabilizationWindowSeconds": DEMO_SCALE_DOWN_WINDOW_SECONDS}}});
    println!(
        "==> kubectl patch nodegroup {name} --type merge -p '{patch}'\n    (the example waits 10 minutes before removing \
         an unneeded node; the demo waits {DEMO_SCALE_DOWN_WINDOW_SECONDS}s)"
    );
    stack.kubectl(&["patch", "nodegroup", &name, "--type", "merge", "-p", &patch.to_string()])?;
    let offerings = group.spec.offering_ids.as_deref().unwrap_or_default().join(", ");
    println!(
        "    {name}: {}..{} nodes of [{offerings}] in {}\n",
        group.spec.min_nodes, group.spec.max_nodes, group.spec.datacenter_id
    );
    Ok(AppliedGroup { name, min_nodes })
}

fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds from `since_ms` to the first VM create request the simulator received after it.
fn first_create_after(stack: &Stack, since_ms: i64) -> Option<i64> {
    stack
        .vm_calls(VmCall::Create)
        .iter()
        .filter(|r| r.received_at_ms >= since_ms)
        .map(|r| r.received_at_ms - since_ms)
        .min()
}

/// The simulator's account of VMs.
struct CloudCount {
    created: usize,
    deleted: usize,
    now: usize,
}

/// The ground truth: the simulator's own VM list must hold exactly one VM per VPSieNode.
fn check_cloud(stack: &Stack, vpsienodes: usize) -> anyhow::Result<CloudCount> {
    let dump = stack.sim.dump();
    let count = CloudCount {
        created: stack.vm_calls(VmCall::Create).len(),
        deleted: stack.vm_calls(VmCall::Delete).len(),
        now: dump.vms.len() + dump.pending.len(),
    };
    if count.now != vpsienodes {
        bail!("the simulator holds {} VMs but there are {vpsienodes} VPSieNodes", count.now);
    }
    Ok(count)
}

async fn keep_running(running: &Running) -> anyhow::Result<()> {
    let kubeconfig = running.stack.cp.kubeconfig_path().display();
    let kubectl = running.stack.cp.binaries().kubectl.display();
    println!("\nEverything keeps running until Ctrl-C. In another terminal:");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  alias kubectl={kubectl}");
    println!("  kubectl get nodegroups,vpsienodes,nodes");
    println!(
        "  kubectl -n {} scale deployment {} --replicas=30   # and watch it scale",
        WORKLOAD.namespace, WORKLOAD.app
    );
    println!("  kubectl get events -A --field-selector reason=TriggeredScaleUp");
    println!("  curl -s 127.0.0.1:{}/metrics | grep ^vpsie_autoscaler_", running.operator.metrics_port);
    println!("  tail -f {}", running.operator.log.display());
    println!("  cat {}   # the audit log, one line per VM asked for or removed", running.operator.audit.display());
    println!("  simulated VPSie API: {} (token demo-token)", running.stack.sim.base_url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    progress::clear_line();
    println!("\nCtrl-C: stopping");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use vpsie_sim::{Catalog, SimConfig, SimRng};

    /// The example must apply unchanged against the simulator (the demo applies it as it is): every
    /// offering it names exists in its datacenter, by identifier or nickname, and so does its image.
    #[test]
    fn the_example_nodegroup_names_what_the_simulator_offers() {
        let path = crate::ci::root().join(super::EXAMPLE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let group: autoscaler_api::NodeGroup = serde_saphyr::from_str(&text).expect("the example parses");
        let config = SimConfig::default();
        let catalog = Catalog::generate(&mut SimRng::new(config.seed), config.datacenters);
        let dc = &group.spec.datacenter_id;
        for id in group.spec.offering_ids.as_deref().unwrap_or_default() {
            assert!(
                catalog.offers.iter().any(|o| &o.dc == dc && (&o.identifier == id || &o.nickname == id)),
                "offering {id} is not in the simulator's {dc}"
            );
        }
        assert!(catalog.os_images.iter().any(|i| i.identifier == group.spec.os_image_id));
        assert!(!group.spec.offering_ids.unwrap_or_default().is_empty());
    }
}
