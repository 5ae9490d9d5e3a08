//! Headroom from `scaleUpPolicy`: when the requested (not used) CPU or memory of a group's nodes passes
//! the policy's percentage of their allocatable, one node is added ahead of demand (at most once per
//! stabilization window, which the loop keeps). Scale-down asks the same question before removing a node,
//! so a headroom node is not removed only to be added again. Pure.

use autoscaler_decision::{Node, Resources};

/// A group's headroom thresholds as fractions (from `scaleUpPolicy` percentages); 1.0 or more never fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// CPU fraction.
    pub cpu: f64,
    /// Memory fraction.
    pub memory: f64,
}

impl Thresholds {
    /// From the policy's percentages.
    pub fn from_percent(cpu: i32, memory: i32) -> Self {
        Self { cpu: f64::from(cpu) / 100.0, memory: f64::from(memory) / 100.0 }
    }
}

fn totals<'a>(members: impl Iterator<Item = &'a Node>) -> (Resources, Resources, usize) {
    let (mut requested, mut allocatable, mut count) = (Resources::default(), Resources::default(), 0);
    for n in members {
        let r = n.requested();
        requested.cpu_milli += r.cpu_milli;
        requested.memory += r.memory;
        allocatable.cpu_milli += n.allocatable.cpu_milli;
        allocatable.memory += n.allocatable.memory;
        count += 1;
    }
    (requested, allocatable, count)
}

fn over(t: Thresholds, requested: &Resources, allocatable: &Resources) -> Option<String> {
    let frac = |r: i64, a: i64| if a > 0 { r as f64 / a as f64 } else { 0.0 };
    let (cpu, mem) = (frac(requested.cpu_milli, allocatable.cpu_milli), frac(requested.memory, allocatable.memory));
    if t.cpu < 1.0 && cpu > t.cpu {
        Some(format!(
            "requested CPU is {:.0}% of the group's allocatable (threshold {:.0}%)",
            cpu * 100.0,
            t.cpu * 100.0
        ))
    } else if t.memory < 1.0 && mem > t.memory {
        Some(format!(
            "requested memory is {:.0}% of the group's allocatable (threshold {:.0}%)",
            mem * 100.0,
            t.memory * 100.0
        ))
    } else {
        None
    }
}

/// Why `group` needs a headroom node now, given every node (existing and in-flight) with its pods, or
/// `None`. A group without Ready nodes gets none. Whether the group has room for one more (`maxNodes`,
/// limits) is the caller's question, answered by the group's usage, which counts every member.
pub fn wanted(group: &str, t: Thresholds, nodes: &[Node]) -> Option<String> {
    let (requested, allocatable, count) =
        totals(nodes.iter().filter(|n| n.group.as_deref() == Some(group) && n.ready && !n.unschedulable));
    if count == 0 {
        return None;
    }
    over(t, &requested, &allocatable)
}

/// Why removing `node` would put `group` over its headroom thresholds (and so add a node again), or `None`.
pub fn needed_after_removing(group: &str, node: &str, t: Thresholds, nodes: &[Node]) -> Option<String> {
    let members = || nodes.iter().filter(|n| n.group.as_deref() == Some(group) && n.ready && !n.unschedulable);
    let (requested, _, _) = totals(members());
    let (_, allocatable, count) = totals(members().filter(|n| n.name != node));
    if count == 0 {
        return None;
    }
    over(t, &requested, &allocatable).map(|why| format!("without {node}, {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_decision::Pod;

    fn node(name: &str, used_cpu: i64) -> Node {
        let mut n = Node::new(name, 4000, 8 << 30);
        n.group = Some("web".into());
        n.pods.push(Pod::new("shop", &format!("{name}-p"), used_cpu, 1 << 30));
        n
    }

    #[test]
    fn a_busy_group_wants_one_more_and_keeps_its_spare() {
        let t = Thresholds::from_percent(80, 80);
        let busy = vec![node("a", 3600), node("b", 3400)];
        let why = wanted("web", t, &busy).unwrap_or_default();
        assert_eq!(why, "requested CPU is 88% of the group's allocatable (threshold 80%)");
        assert_eq!(wanted("web", Thresholds::from_percent(100, 100), &busy), None, "100% never fires");
        // With a third, empty node the group is at 58%: no more headroom, and the spare stays.
        let with_spare = vec![node("a", 3600), node("b", 3400), node("c", 0)];
        assert_eq!(wanted("web", t, &with_spare), None);
        assert!(needed_after_removing("web", "c", t, &with_spare).is_some());
        let idle = vec![node("a", 500), node("b", 500), node("c", 0)];
        assert_eq!(needed_after_removing("web", "c", t, &idle), None);
    }
}
