//! Node repair as a pure function: which members of a group are broken (their Node NotReady or Unknown for
//! longer than the group's `repairAfterSeconds`) and whether repair may replace them now. Repair never
//! touches more than [`REPAIR_SHARE_PERCENT`] of a group's nodes at once: when more are broken, something
//! cluster-wide is wrong (a network partition, a dead control-plane path), and deleting nodes would not fix
//! it; the group then says `RepairBlocked` instead.

use autoscaler_api::VPSieNodePhase;
use jiff::{SignedDuration, Timestamp};

/// The largest share of a group's nodes repair replaces at once, in percent (rounded up, so a group of
/// fewer than five nodes may still repair one).
pub const REPAIR_SHARE_PERCENT: usize = 20;

/// One member of the group as repair sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// VPSieNode name.
    pub name: String,
    /// Its phase (only `Ready` members are repaired: earlier phases have their own timeouts).
    pub phase: VPSieNodePhase,
    /// Since when its Node has not been Ready; `None` while Ready, or without a Node.
    pub not_ready_since: Option<Timestamp>,
    /// Its removal already began.
    pub removing: bool,
}

/// What repair does for the group this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Nothing is broken long enough.
    Nothing,
    /// Replace these members (not yet being removed).
    Replace(Vec<String>),
    /// Too many are NotReady: none is touched.
    Blocked {
        /// Members NotReady now (being removed or not), however long.
        unhealthy: usize,
        /// The most repair may handle at once.
        allowed: usize,
        /// Members counted.
        members: usize,
    },
}

/// The most members of `members` repair may handle at once: [`REPAIR_SHARE_PERCENT`], rounded up.
pub fn allowed(members: usize) -> usize {
    (members * REPAIR_SHARE_PERCENT).div_ceil(100)
}

/// The share of all the autoscaler's nodes NotReady, in percent, above which repair is off in every group:
/// kube-controller-manager's `--unhealthy-zone-threshold` (0.55), above which it too stops acting on
/// NotReady nodes.
pub const CLUSTER_SHARE_PERCENT: usize = 55;

/// Why repair is off in every group, if it is: more than [`CLUSTER_SHARE_PERCENT`] of all the autoscaler's
/// Ready-phase members are NotReady (single-node groups, which the per-group share cannot protect, would
/// otherwise each repair their one node during a partition between the apiserver and every kubelet).
pub fn cluster_blocked(unhealthy: usize, members: usize) -> Option<String> {
    (unhealthy * 100 > members * CLUSTER_SHARE_PERCENT).then(|| {
        format!(
            "{unhealthy} of the {members} nodes of all NodeGroups are NotReady, more than {CLUSTER_SHARE_PERCENT}%: \
             repair is off everywhere while this many are (a cluster-wide problem is not fixed by deleting nodes)"
        )
    })
}

/// Decides repair for one group's members at `now` with the group's repair period. The share is taken of
/// the members NotReady now, however long: nodes failing one after another (a partition spreading) must not
/// be repaired one by one as each passes the period.
pub fn plan(members: &[Health], period: SignedDuration, now: Timestamp) -> Repair {
    let unhealthy: Vec<&Health> = members
        .iter()
        .filter(|m| m.phase == VPSieNodePhase::Ready || m.removing)
        .filter(|m| m.not_ready_since.is_some())
        .collect();
    let broken: Vec<&Health> = unhealthy
        .iter()
        .copied()
        .filter(|m| m.not_ready_since.is_some_and(|t| now.duration_since(t) >= period))
        .collect();
    if broken.is_empty() {
        return Repair::Nothing;
    }
    let allowed = allowed(members.len());
    if unhealthy.len() > allowed {
        return Repair::Blocked { unhealthy: unhealthy.len(), allowed, members: members.len() };
    }
    let mut replace: Vec<String> = broken.iter().filter(|m| !m.removing).map(|m| m.name.clone()).collect();
    replace.sort();
    if replace.is_empty() { Repair::Nothing } else { Repair::Replace(replace) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn member(name: &str, not_ready_since: Option<i64>) -> Health {
        Health {
            name: name.into(),
            phase: VPSieNodePhase::Ready,
            not_ready_since: not_ready_since.map(at),
            removing: false,
        }
    }

    const PERIOD: SignedDuration = SignedDuration::from_secs(900);

    #[test]
    fn a_node_not_ready_past_the_period_is_replaced_and_not_before() {
        let members = vec![member("a", Some(0)), member("b", None), member("c", None)];
        assert_eq!(plan(&members, PERIOD, at(899)), Repair::Nothing, "within the period");
        assert_eq!(plan(&members, PERIOD, at(900)), Repair::Replace(vec!["a".into()]));
        // Already being removed: not replaced twice, and still counted against the share.
        let mut going = members.clone();
        going[0].removing = true;
        assert_eq!(plan(&going, PERIOD, at(900)), Repair::Nothing);
        // A node still starting has its own timeouts.
        let mut joining = members;
        joining[0].phase = VPSieNodePhase::Joining;
        assert_eq!(plan(&joining, PERIOD, at(900)), Repair::Nothing);
    }

    #[test]
    fn more_than_55_percent_of_all_nodes_not_ready_turns_repair_off_everywhere() {
        assert!(cluster_blocked(1, 1).is_some(), "the only node: nothing says it is not the network");
        assert_eq!(cluster_blocked(1, 2), None);
        assert_eq!(cluster_blocked(5, 10), None);
        let why = cluster_blocked(6, 10).unwrap_or_default();
        assert!(why.starts_with("6 of the 10 nodes of all NodeGroups are NotReady"), "{why}");
        assert!(cluster_blocked(10, 10).is_some(), "ten one-node groups partitioned at once");
    }

    #[test]
    fn more_than_a_fifth_of_the_group_broken_blocks_repair() {
        let five = |broken: usize| -> Vec<Health> {
            (0..5).map(|i| member(&format!("n{i}"), (i < broken).then_some(0))).collect()
        };
        assert_eq!(plan(&five(1), PERIOD, at(1000)), Repair::Replace(vec!["n0".into()]));
        assert_eq!(plan(&five(3), PERIOD, at(1000)), Repair::Blocked { unhealthy: 3, allowed: 1, members: 5 });
        // One past the period while two more just turned NotReady: blocked too, not repaired one by one.
        let mut spreading = five(1);
        spreading[1].not_ready_since = Some(at(990));
        spreading[2].not_ready_since = Some(at(995));
        assert!(matches!(plan(&spreading, PERIOD, at(1000)), Repair::Blocked { unhealthy: 3, .. }));
        // Rounded up: a group of two may repair one of them.
        let two = vec![member("a", Some(0)), member("b", None)];
        assert_eq!(plan(&two, PERIOD, at(1000)), Repair::Replace(vec!["a".into()]));
        let both = vec![member("a", Some(0)), member("b", Some(0))];
        assert!(matches!(plan(&both, PERIOD, at(1000)), Repair::Blocked { unhealthy: 2, allowed: 1, .. }));
    }
}
