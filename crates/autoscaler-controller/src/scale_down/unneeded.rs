//! The scale-down clock and choice, as a pure function. A node the decision core would remove is
//! "unneeded since" a time kept on the Node (so a restart does not reset it); it is removed once it has
//! been unneeded for its group's stabilization window, not within the group's cooldown after a scale-up,
//! not within a delay after a failed removal, and only as far as the group's disruption budget, its
//! minimum and the global cap on concurrent removals allow.

use std::collections::BTreeMap;

/// One node the loop looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Node name.
    pub node: String,
    /// Its group.
    pub group: String,
    /// The decision core would remove it (with every other candidate).
    pub unneeded: bool,
    /// Its "unneeded since" annotation.
    pub since: Option<jiff::Timestamp>,
    /// No removal before this time (a failed removal).
    pub retry_at: Option<jiff::Timestamp>,
}

/// One group's limits on this pass.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLimits {
    /// How long a node must stay unneeded.
    pub window: jiff::SignedDuration,
    /// No removal before this time (cooldown after the group's last scale-up).
    pub cooldown_until: Option<jiff::Timestamp>,
    /// Nodes the disruption budget lets be disrupted at once.
    pub budget: usize,
    /// Nodes of the group being removed now.
    pub removing: usize,
    /// VPSieNodes of the group that count (not being removed).
    pub live: usize,
    /// `minNodes`.
    pub min: usize,
}

/// What to do on this pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Nodes whose clock starts now.
    pub start: Vec<String>,
    /// Nodes no longer unneeded: clock cleared.
    pub clear: Vec<String>,
    /// Nodes to remove now, in order.
    pub remove: Vec<String>,
    /// Unneeded nodes whose window has passed but that wait, with a code and a sentence.
    pub waiting: Vec<Waiting>,
}

/// A due node that is not removed on this pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// Node name.
    pub node: String,
    /// Its group.
    pub group: String,
    /// `cooldown`, `retry_delay`, `disruption_budget`, `min_nodes`, `concurrency`.
    pub code: &'static str,
    /// One sentence.
    pub message: String,
}

/// Decides the pass: `nodes` in the order the decision core ranked them (emptiest first), `groups` by
/// name, at most `slots` new removals in all.
pub fn step(nodes: &[Seen], groups: &BTreeMap<String, GroupLimits>, mut slots: usize, now: jiff::Timestamp) -> Step {
    let mut out = Step::default();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    for n in nodes {
        if !n.unneeded {
            if n.since.is_some() {
                out.clear.push(n.node.clone());
            }
            continue;
        }
        let Some(since) = n.since else {
            out.start.push(n.node.clone());
            continue;
        };
        let Some(g) = groups.get(&n.group) else { continue };
        if now.duration_since(since) < g.window {
            continue;
        }
        let wait = |code: &'static str, message: String| Waiting {
            node: n.node.clone(),
            group: n.group.clone(),
            code,
            message,
        };
        let chosen = taken.get(n.group.as_str()).copied().unwrap_or(0);
        if let Some(until) = g.cooldown_until.filter(|u| *u > now) {
            out.waiting.push(wait("cooldown", format!("{} scaled up recently; no scale-down before {until}", n.group)));
        } else if let Some(at) = n.retry_at.filter(|t| *t > now) {
            out.waiting.push(wait("retry_delay", format!("its last removal failed; retrying after {at}")));
        } else if g.removing + chosen >= g.budget {
            let msg = format!(
                "{}'s disruption budget allows {} node(s) at a time and {} are being removed",
                n.group,
                g.budget,
                g.removing + chosen
            );
            out.waiting.push(wait("disruption_budget", msg));
        } else if g.live.saturating_sub(chosen) <= g.min {
            out.waiting.push(wait("min_nodes", format!("{} is at minNodes {}", n.group, g.min)));
        } else if slots == 0 {
            out.waiting.push(wait("concurrency", "the cap on nodes removed at once is reached".to_owned()));
        } else {
            slots -= 1;
            *taken.entry(n.group.as_str()).or_default() += 1;
            out.remove.push(n.node.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn seen(node: &str, unneeded: bool, since: Option<i64>) -> Seen {
        Seen { node: node.into(), group: "web".into(), unneeded, since: since.map(at), retry_at: None }
    }

    fn limits(budget: usize, live: usize, min: usize) -> BTreeMap<String, GroupLimits> {
        let g = GroupLimits {
            window: jiff::SignedDuration::from_secs(60),
            cooldown_until: None,
            budget,
            removing: 0,
            live,
            min,
        };
        [("web".to_owned(), g)].into()
    }

    #[test]
    fn the_clock_starts_runs_and_clears() {
        let nodes = [seen("a", true, None), seen("b", false, Some(900)), seen("c", true, Some(990))];
        let s = step(&nodes, &limits(1, 3, 0), 10, at(1000));
        assert_eq!(s.start, vec!["a"]);
        assert_eq!(s.clear, vec!["b"]);
        assert!(s.remove.is_empty(), "c has been unneeded for 10 s of 60");
        // A restart keeps the annotation: the same node is due 60 s after it was first found unneeded.
        let s = step(&nodes, &limits(1, 3, 0), 10, at(1050));
        assert_eq!(s.remove, vec!["c"]);
    }

    #[test]
    fn budget_minimum_cooldown_and_cap_hold() {
        let due = [seen("a", true, Some(0)), seen("b", true, Some(0)), seen("c", true, Some(0))];
        let s = step(&due, &limits(2, 3, 0), 10, at(1000));
        assert_eq!(s.remove, vec!["a", "b"]);
        assert_eq!(s.waiting.iter().map(|w| w.code).collect::<Vec<_>>(), vec!["disruption_budget"]);
        let s = step(&due, &limits(5, 3, 2), 10, at(1000));
        assert_eq!(s.remove, vec!["a"]);
        assert_eq!(s.waiting.iter().map(|w| w.code).collect::<Vec<_>>(), vec!["min_nodes", "min_nodes"]);
        let s = step(&due, &limits(5, 3, 0), 1, at(1000));
        assert_eq!(s.remove, vec!["a"]);
        let mut cool = limits(5, 3, 0);
        if let Some(g) = cool.get_mut("web") {
            g.cooldown_until = Some(at(2000));
            g.removing = 0;
        }
        let s = step(&due, &cool, 10, at(1000));
        assert!(s.remove.is_empty());
        assert_eq!(s.waiting.first().map(|w| w.code), Some("cooldown"));
        let mut failed = due.clone();
        failed[0].retry_at = Some(at(1100));
        let s = step(&failed, &limits(1, 3, 0), 10, at(1000));
        assert_eq!(s.remove, vec!["b"]);
        assert_eq!(s.waiting.first().map(|w| w.code), Some("retry_delay"));
    }
}
