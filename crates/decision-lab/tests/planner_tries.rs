//! The cheapest expander's tries, on the benchmark's workloads: it keeps the cheapest plan it tried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use autoscaler_decision::groups::Expander;
use autoscaler_decision::simulation::{ADVICE_STEPS, PlannerTry, Strategy, plan_try};
use autoscaler_decision::{ScaleUpInput, plan, verify};
use decision_lab::workloads::{karpenter_diverse, realistic_mix};

#[test]
fn the_cheapest_expander_keeps_its_cheapest_try() {
    let w = realistic_mix(1_000, 42, true);
    let input = ScaleUpInput { nodes: &[], pending: &w.pods, groups: &w.groups, expander: Expander::Cheapest };
    let strategy = Strategy::Planner(Expander::Cheapest);
    let costs: Vec<f64> = ADVICE_STEPS
        .iter()
        .map(|&advice_steps| {
            plan_try(input, strategy, PlannerTry { advice_steps, step_fit: false }).plan.monthly_cost()
        })
        .collect();
    assert!(costs.iter().any(|c| (c - costs[0]).abs() > 1e-6), "every granularity gave the same plan: {costs:?}");
    let cheapest = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let chosen = plan(input);
    assert!((chosen.monthly_cost() - cheapest).abs() < 1e-6, "kept {} of {costs:?}", chosen.monthly_cost());
    assert!(chosen.unplaced.is_empty());
    verify::scale_up_plan(&chosen, &[], &w.pods, &w.groups).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn without_advice_the_cheapest_expander_keeps_the_cheaper_of_first_fit_and_step_fit() {
    // Karpenter's diverse pods: one node shape, 400 sizes.
    let w = karpenter_diverse(1_000, 7);
    let input = ScaleUpInput { nodes: &[], pending: &w.pods, groups: &w.groups, expander: Expander::Cheapest };
    let strategy = Strategy::Planner(Expander::Cheapest);
    let cost = |step_fit: bool| {
        let t = plan_try(input, strategy, PlannerTry { advice_steps: ADVICE_STEPS[0], step_fit });
        assert!(!t.advised);
        verify::scale_up_plan(&t.plan, &[], &w.pods, &w.groups).unwrap_or_else(|e| panic!("{e}"));
        t.plan.monthly_cost()
    };
    let (first, step) = (cost(false), cost(true));
    assert!((first - step).abs() > 1e-6, "the step fit changed nothing ({first})");
    let chosen = plan(input).monthly_cost();
    assert!((chosen - first.min(step)).abs() < 1e-6, "kept {chosen} of first fit {first}, step fit {step}");
}

#[test]
fn the_cluster_autoscaler_runonce_workload_needs_exactly_1000_nodes() {
    let w = decision_lab::workloads::cluster_autoscaler_runonce(50_000);
    let p = plan(ScaleUpInput { nodes: &[], pending: &w.pods, groups: &w.groups, expander: Expander::LeastWaste });
    assert_eq!(p.new_nodes.len(), 1000);
    assert!(p.unplaced.is_empty());
}
