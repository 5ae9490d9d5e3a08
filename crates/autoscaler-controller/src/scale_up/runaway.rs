//! The runaway guard: nodes we launched that never become usable for the pods they were for (a startup
//! taint nobody removes, a kubelet that never joins) must not lead to launch after launch. When the plan
//! wants yet another node of a group that already has `limit` such nodes launched within `window`, the
//! group stops launching for `backoff`. Pure: the loop gathers the launches and the time.

use std::time::Duration;

use autoscaler_api::NodeGroup;
use autoscaler_api::nodegroup::ConditionType;

use crate::decisions::Pause;

/// Condition reason of a group the runaway guard paused.
pub const RUNAWAY_REASON: &str = "RunawayGuard";

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Unusable launches within the window that pause the group.
    pub limit: usize,
    /// How far back launches count.
    pub window: Duration,
    /// How long launches stay paused.
    pub backoff: Duration,
}

impl Default for Guard {
    fn default() -> Self {
        Self { limit: 3, window: Duration::from_secs(600), backoff: Duration::from_secs(300) }
    }
}

/// One node the autoscaler launched for a group, as seen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// VPSieNode name.
    pub name: String,
    /// When its VPSieNode was created.
    pub created: jiff::Timestamp,
    /// When its Node registered, if it has.
    pub registered: Option<jiff::Timestamp>,
    /// Its Node carries a `NoSchedule`/`NoExecute` taint the group does not declare (neither a group taint
    /// nor a startup taint nor one the node lifecycle sets): no pod of the plan can land on it.
    pub foreign_taint: bool,
    /// Its Node runs a pod that is not a DaemonSet pod.
    pub runs_workload: bool,
    /// It failed (never active, never joined).
    pub failed: bool,
}

impl Launch {
    /// Whether it shows the runaway signature while the plan asks for another node of its group: it
    /// failed, or it registered and runs no workload pod although it carries a taint nobody declared or
    /// has been registered for [`SETTLE`] (the scheduler binds pods to a usable node within a second or
    /// two; a usable node would have taken the pending pods instead of a new one).
    pub fn unusable(&self, now: jiff::Timestamp) -> bool {
        let settled = self.registered.is_some_and(|at| now.duration_since(at) >= SETTLE);
        self.failed || (self.registered.is_some() && !self.runs_workload && (self.foreign_taint || settled))
    }
}

/// How long a registered node may stay empty before it counts as unusable.
pub const SETTLE: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);

/// Why the group must stop launching, when its launches within the window show `limit` unusable nodes.
pub fn trips(guard: &Guard, launches: &[Launch], now: jiff::Timestamp) -> Option<String> {
    let window = jiff::SignedDuration::try_from(guard.window).unwrap_or(jiff::SignedDuration::MAX);
    let since = now.checked_sub(window).unwrap_or(jiff::Timestamp::MIN);
    let bad: Vec<&str> =
        launches.iter().filter(|l| l.created >= since && l.unusable(now)).map(|l| l.name.as_str()).collect();
    (bad.len() >= guard.limit.max(1)).then(|| {
        format!(
            "{} node(s) launched in the last {}s never took the pods they were for ({}); launches paused for {}s",
            bad.len(),
            guard.window.as_secs(),
            bad.join(", "),
            guard.backoff.as_secs()
        )
    })
}

/// The pause a group's status still records (condition `ScaleUpBlocked`, reason [`RUNAWAY_REASON`], set less
/// than `backoff` ago): how a restarted process keeps a pause its predecessor began.
pub fn pause_from_status(group: &NodeGroup, backoff: Duration, now: jiff::Timestamp) -> Option<Pause> {
    let c = group.status.iter().flat_map(|s| s.conditions.iter()).find(|c| {
        c.type_ == ConditionType::ScaleUpBlocked.as_str() && c.status == "True" && c.reason == RUNAWAY_REASON
    })?;
    let until = c.last_transition_time.0.checked_add(jiff::SignedDuration::try_from(backoff).ok()?).ok()?;
    // The condition's message ends with the "(until …)" the status writer adds; the reason is what precedes it.
    let reason = c.message.rsplit_once(" (until ").map_or(c.message.as_str(), |(r, _)| r).to_owned();
    (until > now).then_some(Pause { until, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// A launch `age_s` old; `registered` seconds ago (or never), tainted or not.
    fn launch(name: &str, age_s: i64, registered: Option<i64>, runs_workload: bool, failed: bool) -> Launch {
        let (created, registered) = (at(10_000 - age_s), registered.map(|r| at(10_000 - r)));
        Launch { name: name.into(), created, registered, foreign_taint: false, runs_workload, failed }
    }

    #[test]
    fn three_empty_or_failed_launches_in_the_window_trip_the_guard() {
        let now = at(10_000);
        let g = Guard::default();
        let mut ls = vec![
            launch("a", 30, Some(25), false, false), // empty 25 s after registering
            launch("b", 20, None, false, true),      // failed
            launch("c", 10, Some(8), true, false),   // took its pods: usable
            launch("d", 5, None, false, false),      // still starting: not counted yet
            launch("e", 4, Some(2), false, false),   // registered 2 s ago: the scheduler may still bind
        ];
        assert_eq!(trips(&g, &ls, now), None);
        // A taint nobody declared marks it at once.
        ls[4].foreign_taint = true;
        let why = trips(&g, &ls, now).unwrap_or_default();
        assert!(
            why.starts_with("3 node(s) launched in the last 600s never took the pods they were for (a, b, e)"),
            "{why}"
        );
        // Outside the window they no longer count.
        ls[0] = launch("a", 700, Some(600), false, false);
        assert_eq!(trips(&g, &ls, now), None);
    }

    #[test]
    fn a_pause_in_the_status_outlives_a_restart_until_its_backoff_ends() {
        let group: NodeGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": "web"},
            "spec": {"minNodes": 0, "maxNodes": 5, "datacenterID": "dc", "offeringIDs": ["a"], "osImageID": "os"},
            "status": {"conditions": [{"type": "ScaleUpBlocked", "status": "True", "reason": RUNAWAY_REASON,
                "message": "3 node(s) launched in the last 600s never took the pods they were for (a, b, c); launches paused for 300s (until 1970-01-01T02:51:40Z)",
                "lastTransitionTime": "1970-01-01T02:46:40Z"}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let backoff = Duration::from_secs(300);
        let p = pause_from_status(&group, backoff, at(10_100));
        assert_eq!(p.as_ref().map(|p| p.until), Some(at(10_300)));
        assert!(p.is_some_and(|p| p.reason.ends_with("launches paused for 300s")), "the until is not repeated");
        assert_eq!(pause_from_status(&group, backoff, at(10_300)), None, "the backoff is over");
    }
}
