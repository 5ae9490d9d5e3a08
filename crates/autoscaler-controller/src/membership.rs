//! Who belongs to a NodeGroup and how its members count, defined once for every reader (the NodeGroup
//! controller, its status, scale-down's minimum and budgets, group deletion): a member is *live* while it
//! is neither failed nor being deleted, and *removing* once its deletion began (it still holds the group's
//! disruption budget and the removal cap until its finalizer goes).

use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase};

/// Whether a VPSieNode counts toward its group's size (not failed, not being deleted).
pub fn is_live(vn: &VPSieNode) -> bool {
    !is_removing(vn) && vn.status.as_ref().is_none_or(|s| s.phase != VPSieNodePhase::Failed)
}

/// Whether a VPSieNode's removal began (its deletion timestamp is set).
pub fn is_removing(vn: &VPSieNode) -> bool {
    vn.metadata.deletion_timestamp.is_some()
}

/// A group's members by how they count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Live members.
    pub live: usize,
    /// Members being removed.
    pub removing: usize,
}

/// Counts `members` (one group's VPSieNodes).
pub fn counts<'a>(members: impl IntoIterator<Item = &'a VPSieNode>) -> Counts {
    members.into_iter().fold(Counts::default(), |mut c, v| {
        if is_removing(v) {
            c.removing += 1;
        } else if is_live(v) {
            c.live += 1;
        }
        c
    })
}

/// How many more members of `group` may start a removal now: what its disruption budget allows beyond the
/// removals in progress, and no more than the cluster-wide cap (`--max-concurrent-removals`) leaves after
/// `removing_total` removals in progress in every group.
pub fn removal_slots(group: &NodeGroup, c: Counts, removing_total: usize, cap: usize, now: jiff::Timestamp) -> usize {
    let budget = crate::cluster::snapshot::max_disruptions(group, c.live, now);
    budget.saturating_sub(c.removing).min(cap.saturating_sub(removing_total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn vn(phase: VPSieNodePhase, deleting: bool) -> VPSieNode {
        let mut v: VPSieNode = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "VPSieNode", "metadata": {"name": "n"},
            "spec": {"nodeGroupName": "g", "offeringID": "a", "datacenterID": "dc", "osImageID": "os", "hostname": "n"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        v.status = Some(autoscaler_api::VPSieNodeStatus { phase, ..Default::default() });
        if deleting {
            v.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        }
        v
    }

    fn group(budget: &str) -> NodeGroup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": "g"},
            "spec": {"minNodes": 0, "maxNodes": 10, "datacenterID": "dc", "offeringIDs": ["a"], "osImageID": "os",
                     "disruption": {"budgets": [{"nodes": budget}]}}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn failed_and_deleted_members_do_not_count_as_live_and_removals_hold_the_budget() {
        let members = [
            vn(VPSieNodePhase::Ready, false),
            vn(VPSieNodePhase::Provisioning, false),
            vn(VPSieNodePhase::Failed, false),
            vn(VPSieNodePhase::Terminating, true),
            vn(VPSieNodePhase::Failed, true),
        ];
        let c = counts(&members);
        assert_eq!(c, Counts { live: 2, removing: 2 });
        let now = jiff::Timestamp::UNIX_EPOCH;
        assert_eq!(removal_slots(&group("3"), c, 2, 10, now), 1, "the budget of 3 less the 2 in progress");
        assert_eq!(removal_slots(&group("3"), c, 10, 10, now), 0, "the cluster-wide cap is used up");
        assert_eq!(removal_slots(&group("50%"), c, 2, 10, now), 0, "50% of 2 live is 1, and 2 are in progress");
    }
}
