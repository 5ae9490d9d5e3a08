//! The chaos scenarios R1, R2, R3 and R7.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use vpsie_sim::{FaultKind, FaultRule};

use super::truth::{BudgetWatch, Cloud, DuplicateSampler, converge, vms_created, vms_deleted};
use super::{Convergence, Outcome};
use crate::progress::seconds;
use crate::stack::{CloudTiming, MANAGER, OperatorProcess, Stack};
use crate::workload::{Budget, Workload};

/// Every scenario: id and what it does.
pub(super) const ALL: &[(&str, &str)] = &[
    (
        "R1",
        "VPSie fault storm (about 30% of calls: 5xx, 429, timeouts, HTML 502) for 3 minutes of scale-up and scale-down",
    ),
    ("R2", "kill -9 of the operator at 50 random moments of scale-up and scale-down, restarted each time"),
    ("R3", "two replicas, the leader killed during a scale-up"),
    ("R7", "nodes that come up with an unknown taint, for 5 minutes"),
];
/// Pass: settled this soon after the faults stop.
pub(super) const CONVERGE_LIMIT: Duration = Duration::from_secs(120);
/// How long a run waits for convergence before it reports "not converged".
pub(super) const CONVERGE_WAIT: Duration = Duration::from_secs(180);
/// Pass for R7: at most this many VMs launched in 5 minutes (Karpenter's chaos test allows fewer than 35).
pub(super) const R7_MOST_LAUNCHES: usize = 10;

const GROUP: &str = "chaos";
const WORKLOAD: Workload = Workload { namespace: "chaos", app: "web", cpu: "500m", memory: "512Mi" };
const UP: i32 = 30;
const DOWN: i32 = 8;
const MIN_AVAILABLE: i32 = 7;
const FLAGS: &[&str] = &["--scale-down-interval-seconds", "2", "--drain-timeout-seconds", "20"];

pub(super) async fn run(id: &'static str, binary: &Path) -> anyhow::Result<Outcome> {
    match id {
        "R1" => r1_fault_storm(binary).await,
        "R2" => r2_kill_loop(binary).await,
        "R3" => r3_leader_killed(binary).await,
        "R7" => r7_unknown_taint(binary).await,
        other => bail!("no scenario {other}"),
    }
}

fn title(id: &str) -> String {
    ALL.iter().find(|(i, _)| *i == id).map(|(_, t)| (*t).to_owned()).unwrap_or_default()
}

/// A fresh stack (VMs boot in 1 s and join 1 s later) with the chaos group.
async fn setup(id: &str) -> anyhow::Result<Stack> {
    let timing = CloudTiming { boot: Duration::from_secs(1), join: Duration::from_secs(1) };
    let dir = crate::ci::target_dir().join("chaos").join(id.to_ascii_lowercase());
    let stack =
        crate::progress::spin("control plane, vpsie-sim, CRDs, RBAC, Secrets", Stack::start(&timing, dir)).await?;
    let group: autoscaler_api::NodeGroup = serde_json::from_value(json!({
        "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": GROUP},
        "spec": {"minNodes": 0, "maxNodes": 20, "datacenterID": "dc-us-east-1",
                 "offeringIDs": ["sc-2cpu-4gb", "sc-4cpu-8gb"], "osImageID": "ubuntu-22.04-lts",
                 "scaleUpPolicy": {"cpuThreshold": 100, "memoryThreshold": 100},
                 "scaleDownPolicy": {"stabilizationWindowSeconds": 15}, "cooldownSeconds": 5,
                 "disruption": {"budgets": [{"nodes": "3"}]}}
    }))?;
    Api::<autoscaler_api::NodeGroup>::all(stack.admin.clone())
        .patch(GROUP, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&group))
        .await
        .context("applying the chaos NodeGroup")?;
    println!("     logs: {}", stack.dir.display());
    Ok(stack)
}

/// One replica without leader election, ready, with the catalog loaded.
async fn single(stack: &Stack, binary: &Path) -> anyhow::Result<OperatorProcess> {
    let flags: Vec<&str> = FLAGS.iter().copied().chain(["--leader-elect=false"]).collect();
    let mut op = OperatorProcess::start_as(stack, binary, "vpsie-autoscaler-0", "operator", &flags)?;
    op.wait_ready(Duration::from_secs(60)).await?;
    op.wait_catalog(Duration::from_secs(60)).await?;
    Ok(op)
}

/// The figures every scenario reports from the ground truth.
async fn outcome(
    id: &'static str,
    stack: &Stack,
    dups: &DuplicateSampler,
    budget: Option<&BudgetWatch>,
    converged: Convergence,
    note: String,
) -> anyhow::Result<Outcome> {
    let cloud = Cloud::read(stack, GROUP).await?;
    Ok(Outcome {
        id,
        what: title(id),
        vms_created: vms_created(stack),
        duplicates: dups.most().max(cloud.duplicates()),
        leaked: cloud.leaked(),
        pdb_violations: budget.map_or(0, BudgetWatch::violations),
        converged,
        note,
        failure: None,
    })
}

async fn settle(stack: &Stack, replicas: i32) -> anyhow::Result<Convergence> {
    let replicas = usize::try_from(replicas)?;
    Ok(match converge(stack, GROUP, &WORKLOAD, replicas, CONVERGE_WAIT).await? {
        Some(t) => Convergence::After(t),
        None => Convergence::NotWithin,
    })
}

/// R1: about 30% of all VPSie calls fail (rules are tried in order, the first that fires wins) while 30
/// pods scale up and then down to 8 under a budget; then the faults stop.
async fn r1_fault_storm(binary: &Path) -> anyhow::Result<Outcome> {
    let stack = setup("R1").await?;
    let mut op = single(&stack, binary).await?;
    let budget = BudgetWatch::start(&stack, &WORKLOAD, usize::try_from(MIN_AVAILABLE)?);
    let mut dups = DuplicateSampler::default();
    for rule in [
        FaultRule::new(None, "", FaultKind::InternalError).with_rate(0.08),
        FaultRule::new(None, "", FaultKind::RateLimited { retry_after_secs: 2 }).with_rate(0.08),
        // Longer than the client's 30 s request timeout: a call that never answers.
        FaultRule::new(None, "", FaultKind::LatencyOnly).with_rate(0.03).with_latency_ms(31_000),
        FaultRule::new(None, "", FaultKind::BadGateway).with_rate(0.14),
        FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::FailAfterEffect).with_rate(0.05),
    ] {
        stack.sim.add_fault(rule);
    }
    WORKLOAD.apply(&stack, UP, Some(Budget::MinAvailable(MIN_AVAILABLE))).await?;
    println!("     storm on; {UP} pods applied");
    dups.wait(&stack, Duration::from_secs(90)).await;
    op.check_alive()?;
    WORKLOAD.scale(&stack, DOWN).await?;
    println!("     scaled to {DOWN}; storm goes on");
    dups.wait(&stack, Duration::from_secs(90)).await;
    op.check_alive()?;
    stack.sim.clear_faults();
    let requests = stack.sim.requests();
    let faulted = requests.iter().filter(|r| r.fault.is_some()).count();
    println!("     storm off after {faulted} faulted calls; waiting for convergence");
    let converged = settle(&stack, DOWN).await?;
    let share = 100.0 * faulted as f64 / requests.len().max(1) as f64;
    let note = format!(
        "{faulted} of {} calls faulted ({share:.0}%); {} VMs deleted by scale-down",
        requests.len(),
        vms_deleted(&stack)
    );
    outcome("R1", &stack, &dups, Some(&budget), converged, note).await
}

/// A small deterministic generator for the kill moments (the run is repeatable).
struct Moments(u64);

impl Moments {
    /// The next pause, 300..3000 ms.
    fn next(&mut self) -> Duration {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(300 + (self.0 >> 33) % 2_700)
    }
}

/// R2: 50 kill -9s at random moments, 25 during the scale-up and 25 during the scale-down.
async fn r2_kill_loop(binary: &Path) -> anyhow::Result<Outcome> {
    const KILLS: usize = 50;
    let stack = setup("R2").await?;
    let mut op = single(&stack, binary).await?;
    let budget = BudgetWatch::start(&stack, &WORKLOAD, usize::try_from(MIN_AVAILABLE)?);
    let mut dups = DuplicateSampler::default();
    let mut moments = Moments(42);
    WORKLOAD.apply(&stack, UP, Some(Budget::MinAvailable(MIN_AVAILABLE))).await?;
    let flags: Vec<&str> = FLAGS.iter().copied().chain(["--leader-elect=false"]).collect();
    for kill in 0..KILLS {
        if kill == KILLS / 2 {
            WORKLOAD.scale(&stack, DOWN).await?;
            println!("     scaled to {DOWN}");
        }
        dups.wait(&stack, moments.next()).await;
        op.kill9();
        op = OperatorProcess::start_as(&stack, binary, "vpsie-autoscaler-0", "operator", &flags)?;
        op.wait_ready(Duration::from_secs(60)).await?;
        if (kill + 1) % 10 == 0 {
            println!("     {} kills", kill + 1);
        }
    }
    let converged = settle(&stack, DOWN).await?;
    let note = format!("{KILLS} kills; {} VMs deleted by scale-down", vms_deleted(&stack));
    outcome("R2", &stack, &dups, Some(&budget), converged, note).await
}

/// R3: two replicas with leader election; the leader is killed once the scale-up has created its first
/// VPSieNode. Takeover time, and no create twice.
async fn r3_leader_killed(binary: &Path) -> anyhow::Result<Outcome> {
    let stack = setup("R3").await?;
    let mut a = OperatorProcess::start_as(&stack, binary, "replica-a", "replica-a", FLAGS)?;
    let mut b = OperatorProcess::start_as(&stack, binary, "replica-b", "replica-b", FLAGS)?;
    a.wait_ready(Duration::from_secs(60)).await?;
    b.wait_ready(Duration::from_secs(60)).await?;
    let started = Instant::now();
    let a_leads = loop {
        if a.leads().await {
            break true;
        }
        if b.leads().await {
            break false;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("no replica became leader within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (leader, standby) = if a_leads { (&mut a, &mut b) } else { (&mut b, &mut a) };
    leader.wait_catalog(Duration::from_secs(60)).await?;
    let mut dups = DuplicateSampler::default();
    WORKLOAD.apply(&stack, UP, None).await?;
    let started = Instant::now();
    while Cloud::read(&stack, GROUP).await?.vpsienodes.is_empty() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the scale-up created no VPSieNode within 30 s");
        }
        dups.wait(&stack, Duration::from_millis(50)).await;
    }
    leader.kill9();
    let killed = Instant::now();
    while !standby.leads().await {
        if killed.elapsed() > Duration::from_secs(60) {
            bail!("the standby did not take over within 60 s");
        }
        dups.wait(&stack, Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    println!("     leader killed mid scale-up; the standby took over after {}", seconds(takeover));
    let converged = settle(&stack, UP).await?;
    let mut result = outcome("R3", &stack, &dups, None, converged, format!("takeover {}", seconds(takeover))).await?;
    // No scale-down in R3: every create must still be a node (a second create for one plan would show).
    let nodes = Cloud::read(&stack, GROUP).await?.vpsienodes.len();
    if result.vms_created != nodes {
        result.failure = Some(format!("{} VM creates for {nodes} nodes", result.vms_created));
    }
    Ok(result)
}

/// R7: every Node the simulator registers carries a taint nobody removes; 6 pending pods for 5 minutes.
async fn r7_unknown_taint(binary: &Path) -> anyhow::Result<Outcome> {
    let stack = setup("R7").await?;
    stack.sim.update_settings(|s| s.join_taints = "example.com/agent-missing:NoSchedule".into());
    let _op = single(&stack, binary).await?;
    let mut dups = DuplicateSampler::default();
    WORKLOAD.apply(&stack, 6, None).await?;
    println!("     6 pods that no node will take; watching launches for 5 minutes");
    dups.wait(&stack, Duration::from_secs(300)).await;
    let mut result = outcome("R7", &stack, &dups, None, Convergence::NotApplicable, String::new()).await?;
    result.note = format!("{} launches in 5 min", result.vms_created);
    if result.vms_created > R7_MOST_LAUNCHES {
        result.failure = Some(format!("{} launches (at most {R7_MOST_LAUNCHES})", result.vms_created));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_moments_are_repeatable_and_in_range() {
        let (mut a, mut b) = (Moments(42), Moments(42));
        for _ in 0..100 {
            let m = a.next();
            assert_eq!(m, b.next());
            assert!((Duration::from_millis(300)..Duration::from_millis(3000)).contains(&m), "{m:?}");
        }
    }
}
