//! What the NodeGroup controller decides for one group, as pure functions: which offering a new node
//! gets, which VPSieNodes leave when the group is above `maxNodes`, and the backoff a failure earns.

use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_api::{NodeGroup, VPSieNodePhase};
use autoscaler_decision::groups::NodeGroup as GroupModel;

/// How long an offering is avoided after a node of it failed.
pub const BACKOFF: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The offering a node added to reach `minNodes` gets: the group's preferred instance type when it is
/// offered and not backed off, else the cheapest offering not backed off (the decision core's template
/// holds the group's offerings with prices and backoff). `None` when every offering is backed off.
pub fn offering_for_min(model: &GroupModel, preferred: Option<&str>) -> Option<String> {
    let usable: Vec<_> = model.offerings.iter().filter(|o| !model.backoff.contains(&o.id)).collect();
    if let Some(p) = preferred
        && let Some(o) = usable.iter().find(|o| o.id == p)
    {
        return Some(o.id.clone());
    }
    usable
        .iter()
        .min_by(|a, b| a.monthly_price.total_cmp(&b.monthly_price).then_with(|| a.id.cmp(&b.id)))
        .map(|o| o.id.clone())
}

/// The offering of a managed-cluster group: its VPSie node group has one size, the first of
/// `spec.offeringIDs` (a managed Kubernetes size id).
pub fn managed_offering(group: &NodeGroup) -> Option<String> {
    (group.spec.provisioning.as_ref().map(|p| p.mode) == Some(ProvisioningMode::ManagedCluster))
        .then(|| group.spec.offering_ids.as_ref().and_then(|ids| ids.first().cloned()))
        .flatten()
}

/// A live VPSieNode of the group with what choosing it for removal weighs.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// VPSieNode name.
    pub name: String,
    /// Its phase.
    pub phase: VPSieNodePhase,
    /// Pods bound to its Node that are not DaemonSet pods.
    pub workload_pods: usize,
}

/// The VPSieNodes that leave when the group holds `excess` more than `maxNodes`: nodes not yet Ready
/// first (nothing runs there), then Ready nodes with the fewest workload pods; names break ties so the
/// choice is the same on every pass. Never "the newest" by itself.
pub fn over_max(members: &[Member], excess: usize) -> Vec<String> {
    let mut ranked: Vec<&Member> = members.iter().collect();
    ranked.sort_by_key(|m| (m.phase == VPSieNodePhase::Ready, m.workload_pods, m.name.clone()));
    ranked.into_iter().take(excess).map(|m| m.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_decision::Resources;
    use autoscaler_decision::groups::Offering;

    fn model(prices: &[(&str, f64)], backoff: &[&str]) -> GroupModel {
        GroupModel {
            offerings: prices
                .iter()
                .map(|(id, p)| Offering { id: (*id).to_owned(), allocatable: Resources::default(), monthly_price: *p })
                .collect(),
            backoff: backoff.iter().map(|b| (*b).to_owned()).collect(),
            ..GroupModel::default()
        }
    }

    #[test]
    fn min_nodes_get_the_preferred_then_the_cheapest_offering_not_backed_off() {
        let m = model(&[("big", 40.0), ("small", 10.0), ("mid", 20.0)], &["small"]);
        assert_eq!(offering_for_min(&m, None).as_deref(), Some("mid"));
        assert_eq!(offering_for_min(&m, Some("big")).as_deref(), Some("big"));
        assert_eq!(offering_for_min(&m, Some("small")).as_deref(), Some("mid"), "a backed-off preference is skipped");
        assert_eq!(offering_for_min(&model(&[("a", 1.0)], &["a"]), None), None);
    }

    #[test]
    fn above_max_the_not_ready_then_the_emptiest_nodes_go() {
        let m = |name: &str, phase, workload_pods| Member { name: name.into(), phase, workload_pods };
        let members = vec![
            m("busy", VPSieNodePhase::Ready, 9),
            m("idle", VPSieNodePhase::Ready, 0),
            m("booting", VPSieNodePhase::Provisioning, 0),
            m("light", VPSieNodePhase::Ready, 2),
        ];
        assert_eq!(over_max(&members, 1), vec!["booting"]);
        assert_eq!(over_max(&members, 3), vec!["booting", "idle", "light"]);
    }
}
