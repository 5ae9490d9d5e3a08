//! `cargo xtask chaos [--only R1|R2|R3|R7]`: the operator under faults, one table.
//!
//! Each scenario runs the release operator binary under its ServiceAccount against a fresh local control
//! plane and vpsie-sim, a group `chaos` of `sc-2cpu-4gb`/`sc-4cpu-8gb` (0..20, scale-down after 15 s) and a
//! Deployment of 500m-CPU pods with a PodDisruptionBudget. The ground truth is the simulator's VM list
//! against the VPSieNodes, sampled all along for duplicates, and a watch on the pods for budget violations.
//! Pass: 0 duplicates, 0 leaked VMs, 0 budget violations, converged within 2 minutes after the faults
//! stop (R7: at most [`scenarios::R7_MOST_LAUNCHES`] launches in 5 minutes).

mod scenarios;
mod truth;

use std::time::Duration;

use anyhow::bail;

use crate::progress::seconds;

/// How a scenario ended after its faults.
pub(crate) enum Convergence {
    /// Settled this long after the faults stopped.
    After(Duration),
    /// Not settled within [`scenarios::CONVERGE_WAIT`].
    NotWithin,
    /// The scenario does not wait for it (R7 keeps its faults on).
    NotApplicable,
}

/// What one scenario measured.
pub(crate) struct Outcome {
    /// `R1` ...
    id: &'static str,
    /// What it did.
    what: String,
    /// VM create requests the simulator carried out.
    vms_created: usize,
    /// The most duplicate host names seen in the simulator's VM list at once.
    duplicates: usize,
    /// VMs without a VPSieNode at the end.
    leaked: usize,
    /// Times the workload fell below its budget.
    pdb_violations: usize,
    /// From the end of the faults to a settled cluster.
    converged: Convergence,
    /// A figure of its own (takeover time, launches).
    note: String,
    /// Why it failed, if it did.
    failure: Option<String>,
}

impl Outcome {
    fn judge(mut self, converge_limit: Duration) -> Self {
        let mut why = Vec::new();
        if self.duplicates > 0 {
            why.push(format!("{} duplicate VM(s)", self.duplicates));
        }
        if self.leaked > 0 {
            why.push(format!("{} leaked VM(s)", self.leaked));
        }
        if self.pdb_violations > 0 {
            why.push(format!("{} budget violation(s)", self.pdb_violations));
        }
        match self.converged {
            Convergence::After(t) if t > converge_limit => why.push(format!("converged after {}", seconds(t))),
            Convergence::NotWithin => {
                why.push(format!("not converged within {}", seconds(scenarios::CONVERGE_WAIT)));
            }
            _ => {}
        }
        if let Some(f) = self.failure.take() {
            why.push(f);
        }
        self.failure = (!why.is_empty()).then(|| why.join("; "));
        self
    }
}

pub(crate) async fn run(only: Option<&str>) -> anyhow::Result<()> {
    let binary = crate::ci::build_release_operator()?;
    let wanted = |id: &str| only.is_none_or(|o| o.eq_ignore_ascii_case(id));
    let mut outcomes = Vec::new();
    for (id, title) in scenarios::ALL {
        if !wanted(id) {
            continue;
        }
        println!("\n==> {id}: {title}");
        let outcome = match scenarios::run(id, &binary).await {
            Ok(o) => o,
            // A scenario that could not run at all still gets its line, saying why.
            Err(e) => Outcome {
                id,
                what: (*title).to_owned(),
                vms_created: 0,
                duplicates: 0,
                leaked: 0,
                pdb_violations: 0,
                converged: Convergence::NotApplicable,
                note: String::new(),
                failure: Some(format!("did not run to the end: {e:#}")),
            },
        };
        outcomes.push(outcome.judge(scenarios::CONVERGE_LIMIT));
    }
    if outcomes.is_empty() {
        bail!("no scenario is called {}; the scenarios are R1, R2, R3, R7", only.unwrap_or_default());
    }
    println!(
        "\n| Scenario | VMs created | Duplicates | Leaked VMs | PDB violations | Converged after faults | Other | Result |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} {} | {} | {} | {} | {} | {} | {} | {} |",
            o.id,
            o.what,
            o.vms_created,
            o.duplicates,
            o.leaked,
            o.pdb_violations,
            match o.converged {
                Convergence::After(t) => seconds(t),
                Convergence::NotWithin => "no".to_owned(),
                Convergence::NotApplicable => "-".to_owned(),
            },
            o.note,
            o.failure.as_deref().map_or_else(|| "pass".to_owned(), |f| format!("FAIL: {f}"))
        );
    }
    println!("(date {}, {} cores)", crate::ci::today(), std::thread::available_parallelism().map_or(0, |n| n.get()));
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    if failed > 0 {
        bail!("{failed} of {} chaos scenarios failed", outcomes.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            id: "R1",
            what: "storm".into(),
            vms_created: 5,
            duplicates: 0,
            leaked: 0,
            pdb_violations: 0,
            converged: Convergence::After(Duration::from_secs(30)),
            note: String::new(),
            failure: None,
        }
    }

    #[test]
    fn any_duplicate_leak_violation_or_slow_convergence_fails_and_says_why() {
        let limit = Duration::from_secs(120);
        assert!(outcome().judge(limit).failure.is_none());
        let slow = Outcome { converged: Convergence::After(Duration::from_secs(150)), ..outcome() }.judge(limit);
        assert_eq!(slow.failure.as_deref(), Some("converged after 2m 30s"));
        let bad =
            Outcome { duplicates: 1, leaked: 2, pdb_violations: 1, converged: Convergence::NotWithin, ..outcome() }
                .judge(limit);
        let why = bad.failure.unwrap_or_default();
        assert!(
            why.contains("1 duplicate")
                && why.contains("2 leaked")
                && why.contains("1 budget")
                && why.contains("not converged"),
            "{why}"
        );
    }
}
