//! Whether one VPSie listing may be believed about the VMs it lacks.
//!
//! A listing that suddenly lacks many of the VMs this operator has seen running is far more likely a
//! truncated or empty answer (a VPSie failover, a proxy, a paging bug) than that many VMs vanished at once.
//! Acting on it would fail, drain and delete serving nodes, and back off their offerings. Such a listing
//! is distrusted for the pass: no VM it lacks is looked up or counted missing, and the operator says so
//! (Event on each affected NodeGroup, a warning, [`LISTING_DISTRUSTED`]). A VM that a trusted listing
//! lacks is still only a suspicion: the lifecycle looks it up directly and waits out
//! [`super::phase::GONE_GRACE`] before it counts as gone.

use std::collections::BTreeSet;

use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_api::{VPSieNode, VPSieNodePhase};
use kube::{Resource, ResourceExt};

use super::Shared;
use crate::context::Context;
use crate::telemetry::metrics::LISTING_DISTRUSTED;

/// A listing lacking at least this many known VMs ...
pub const DISTRUST_AT_LEAST: usize = 2;
/// ... and at least this share of them (in percent) is not believed.
pub const DISTRUST_PERCENT: usize = 50;
/// At most one Event per NodeGroup per this long while listings stay distrusted.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A VM this operator has seen running, that no deletion or failure is removing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Its host name (how listings name it).
    pub hostname: String,
    /// Its NodeGroup.
    pub group: String,
}

/// A listing not to be believed about what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distrust {
    /// Host names of the known VMs it lacks.
    pub missing: Vec<String>,
    /// How many VMs were known.
    pub known: usize,
    /// The NodeGroups of the VMs it lacks.
    pub groups: BTreeSet<String>,
}

/// The VMs of plain-VM VPSieNodes seen running (an identifier recorded) and not being removed.
pub fn known(all: &[VPSieNode], shared: &Shared) -> Vec<Known> {
    all.iter()
        .filter(|v| v.spec.provisioning_mode == ProvisioningMode::Vm && v.metadata.deletion_timestamp.is_none())
        .filter(|v| {
            let status = shared.status_of(v);
            status.vm_identifier.is_some() && status.phase != VPSieNodePhase::Failed
        })
        .map(|v| Known { hostname: v.spec.hostname.clone(), group: v.spec.node_group_name.clone() })
        .collect()
}

/// Judges a listing by what it lacks of `known` (`listed` says whether it has a host name).
pub fn judge(known: &[Known], listed: impl Fn(&str) -> bool) -> Option<Distrust> {
    let missing: Vec<&Known> = known.iter().filter(|k| !listed(&k.hostname)).collect();
    let too_many = missing.len() >= DISTRUST_AT_LEAST && missing.len() * 100 >= known.len() * DISTRUST_PERCENT;
    too_many.then(|| Distrust {
        missing: missing.iter().map(|k| k.hostname.clone()).collect(),
        known: known.len(),
        groups: missing.iter().map(|k| k.group.clone()).collect(),
    })
}

/// Says that a listing is distrusted: a warning and the metric every time, an Event on each affected
/// NodeGroup at most once per minute.
pub async fn report(ctx: &Context, shared: &Shared, d: &Distrust) {
    metrics::counter!(LISTING_DISTRUSTED).increment(1);
    let note = format!(
        "VPSie's VM list lacks {} of the {} VMs this operator has seen running ({}); it is not believed: no \
         node is failed, drained or deleted on its account, and the next listing is checked again",
        d.missing.len(),
        d.known,
        d.missing.join(", ")
    );
    tracing::warn!(missing = d.missing.len(), known = d.known, "VPSie VM listing distrusted: {note}");
    let due = shared.with(|m| {
        let due = m.distrust_reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if due {
            m.distrust_reported = Some(tokio::time::Instant::now());
        }
        due
    });
    if !due {
        return;
    }
    let groups: Vec<_> = {
        let groups = ctx.cluster.nodegroups.read();
        d.groups.iter().filter_map(|g| groups.get(g.as_str()).map(|e| e.group.object_ref(&()))).collect()
    };
    for group in groups {
        ctx.events.publish(&group, true, "VpsieListingDistrusted", "Lifecycle", &note).await;
    }
    tracing::debug!(groups = ?d.groups.iter().collect::<Vec<_>>(), "distrust reported");
}

/// Whether some VPSieNode's VM is missing from listings right now (the next pass then lists afresh).
pub fn any_missing(shared: &Shared, all: &[VPSieNode]) -> bool {
    shared.with(|m| all.iter().any(|v| v.uid().is_some_and(|uid| m.missing.contains_key(&uid))))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn known(n: usize) -> Vec<Known> {
        (0..n).map(|i| Known { hostname: format!("g-{i}"), group: if i % 2 == 0 { "a" } else { "b" }.into() }).collect()
    }

    #[test]
    fn an_empty_or_half_empty_listing_is_distrusted_and_one_missing_vm_is_not() {
        let six = known(6);
        let empty = judge(&six, |_| false).expect("an empty listing");
        assert_eq!((empty.missing.len(), empty.known), (6, 6));
        assert_eq!(empty.groups.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert!(judge(&six, |h| h != "g-0" && h != "g-1" && h != "g-2").is_some(), "half of them");
        assert_eq!(judge(&six, |h| h != "g-0" && h != "g-1"), None, "a third: each is looked up");
        assert_eq!(judge(&six, |h| h != "g-0"), None, "one VM missing is looked up, not distrusted");
        assert_eq!(judge(&six, |_| true), None);
        // One known VM missing is never "too many": a direct lookup decides.
        assert_eq!(judge(&known(1), |_| false), None);
        assert!(judge(&known(2), |_| false).is_some());
    }
}
