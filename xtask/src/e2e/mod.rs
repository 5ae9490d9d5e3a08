//! `cargo xtask e2e [--smoke] [--only TEXT] [--kubeconfig PATH]`: the end-to-end scenarios, one by one, with
//! a table of results.
//!
//! Each scenario is an integration test of `bins/vpsie-autoscaler/tests/` that runs the operator binary as a
//! process under its own ServiceAccount (RBAC of `deploy/rbac/` enforced by the apiserver), against a real
//! control plane and vpsie-sim, and checks the simulator's own VM list for doubled or leaked VMs. By default
//! each scenario starts a local control plane of its own; with `--kubeconfig` all run against that existing
//! cluster ([`existing`]). `cargo xtask ci` runs them all (local) as part of `cargo test --workspace`; this
//! command runs them by name and prints what passed and how long each took.

mod existing;

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::progress::seconds;

/// One scenario: the test that shows it.
struct Scenario {
    /// What the scenario shows.
    name: &'static str,
    /// The test binary (file in `bins/vpsie-autoscaler/tests/`).
    suite: &'static str,
    /// The test function.
    test: &'static str,
    /// Part of the short smoke run.
    smoke: bool,
    /// Why it runs only on the local control plane the harness starts, never against `--kubeconfig`.
    local_only: Option<&'static str>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "scale-up, then scale-down under a PodDisruptionBudget",
        suite: "autoscaling",
        test: "pending_pods_get_one_batch_of_planned_nodes_and_idle_nodes_go_without_breaking_a_budget",
        smoke: true,
        local_only: None,
    },
    Scenario {
        name: "consolidation onto cheaper nodes",
        suite: "autoscaling",
        test: "consolidation_replaces_half_empty_nodes_with_cheaper_ones_ready_before_any_eviction",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "restart (kill -9) mid scale-up and mid scale-down",
        suite: "autoscaling",
        test: "a_restart_mid_scale_up_and_mid_scale_down_duplicates_nothing_and_keeps_the_clock",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "crash at each of five points of a VM create",
        suite: "lifecycle",
        test: "a_crash_at_any_point_leaves_exactly_one_vm_per_node",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "leader failover (kill -9 of the leader)",
        suite: "runtime",
        test: "only_the_leader_acts_and_a_standby_takes_over_after_kill_9",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "VPSie outage during scale-up and scale-down",
        suite: "outage",
        test: "a_vpsie_outage_during_scale_up_and_down_doubles_and_leaks_nothing_and_recovers",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "a VM restarted, another stopped 2 minutes, every VM listing empty 20 s: no serving node harmed",
        suite: "serving",
        test: "a_restarted_vm_and_an_empty_vm_listing_fail_drain_and_delete_nothing",
        smoke: false,
        local_only: Some("a powered-off VM's Node stops heartbeating only with testenv's gated kwok stages"),
    },
    Scenario {
        name: "node repair at maxNodes, 3 of 5 dead blocks repair, NodeGroup deleted with unevictable pods by its deadline",
        suite: "serving",
        test: "broken_nodes_are_repaired_too_many_block_repair_and_a_deleted_group_goes_by_its_deadline",
        smoke: false,
        local_only: Some("a powered-off VM's Node stops heartbeating only with testenv's gated kwok stages"),
    },
    Scenario {
        name: "kube-apiserver frozen 30 s during scale-up",
        suite: "outage",
        test: "a_frozen_apiserver_during_a_scale_up_doubles_and_leaks_nothing_and_every_pod_runs",
        smoke: false,
        local_only: Some("it freezes the control plane's own kube-apiserver"),
    },
    Scenario {
        name: "credential rotation and a missing Secret",
        suite: "runtime",
        test: "credentials_rotate_without_a_restart_and_a_missing_secret_is_not_ready",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "nodes that never take their pods (runaway guard)",
        suite: "autoscaling",
        test: "a_group_whose_nodes_never_take_their_pods_stops_launching",
        smoke: false,
        local_only: None,
    },
    Scenario {
        name: "a drain blocked by a PDB keeps the VM",
        suite: "lifecycle",
        test: "a_drain_blocked_by_a_pdb_keeps_the_vm_and_the_node_cordoned",
        smoke: false,
        local_only: None,
    },
];

/// The outcome of one scenario.
struct Outcome {
    name: &'static str,
    passed: bool,
    took: std::time::Duration,
}

pub(crate) async fn run(smoke: bool, only: Option<&str>, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let chosen: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| !smoke || s.smoke)
        .filter(|s| only.is_none_or(|o| s.name.contains(o) || s.test.contains(o)))
        .filter(|s| match s.local_only {
            Some(why) if kubeconfig.is_some() => {
                println!("==> skipped against an existing cluster: {} ({why})", s.name);
                false
            }
            _ => true,
        })
        .collect();
    if chosen.is_empty() {
        bail!(
            "no scenario matches; the scenarios are:\n  {}",
            SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join("\n  ")
        );
    }
    println!("==> building the operator and the scenario tests");
    let mut build = crate::ci::cargo();
    build.args(["test", "--locked", "-p", "vpsie-autoscaler", "--no-run"]);
    if !build.status().context("cargo test --no-run")?.success() {
        bail!("building the scenario tests failed");
    }
    let cluster = match kubeconfig {
        Some(path) => Some(existing::ExistingCluster::prepare(path).await?),
        None => None,
    };
    let mut outcomes = Vec::new();
    for s in &chosen {
        println!("==> {} ({}::{})", s.name, s.suite, s.test);
        let begun = Instant::now();
        let mut test = crate::ci::cargo();
        test.args(["test", "--locked", "-p", "vpsie-autoscaler", "--test", s.suite, "--", "--exact", s.test])
            .stdin(Stdio::null());
        if let Some(c) = &cluster {
            let cleaning = Instant::now();
            c.clean().await?;
            println!("    the cluster cleaned of earlier runs in {}", seconds(cleaning.elapsed()));
            test.env(existing::EXISTING_CLUSTER, c.kubeconfig());
        }
        let status =
            tokio::task::spawn_blocking(move || test.status()).await?.with_context(|| format!("running {}", s.test))?;
        outcomes.push(Outcome { name: s.name, passed: status.success(), took: begun.elapsed() });
    }
    if let Some(c) = cluster {
        c.remove().await?;
    }
    println!("\n| Scenario | Result | Time |\n|---|---|---|");
    for o in &outcomes {
        println!("| {} | {} | {} |", o.name, if o.passed { "pass" } else { "FAIL" }, seconds(o.took));
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    if failed > 0 {
        bail!("{failed} of {} scenarios failed (their output is above)", outcomes.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A renamed or removed test would make a scenario run nothing ("0 passed" is a success for cargo):
    /// every scenario names a test function of its suite.
    #[test]
    fn every_scenario_names_an_existing_test() {
        let dir = crate::ci::root().join("bins/vpsie-autoscaler/tests");
        for s in SCENARIOS {
            let source = std::fs::read_to_string(dir.join(format!("{}.rs", s.suite))).unwrap_or_default();
            assert!(source.contains(&format!("async fn {}()", s.test)), "{}::{} does not exist", s.suite, s.test);
        }
        assert_eq!(SCENARIOS.iter().filter(|s| s.smoke).count(), 1);
    }
}
