//! What the scaling loops tell the NodeGroup controller, the only writer of NodeGroup status: each group's
//! last decision, when it last grew or shrank, a runaway-guard pause and a consolidation's saving. The
//! loops write notes here; the controller folds them into the status it applies on its next pass (woken
//! by [`Notes::waker`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use autoscaler_api::nodegroup::LastDecision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Launches of a group paused by the runaway guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// Launches resume at this time.
    pub until: jiff::Timestamp,
    /// Why, in one sentence (the condition's message).
    pub reason: String,
}

/// What the loops noted about one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupNote {
    /// The last decision about the group.
    pub last_decision: Option<LastDecision>,
    /// When a loop last added nodes to it.
    pub scaled_up: Option<jiff::Timestamp>,
    /// When a loop last removed nodes from it.
    pub scaled_down: Option<jiff::Timestamp>,
    /// The runaway guard's pause, while one holds.
    pub paused: Option<Pause>,
    /// The monthly saving of the group's last consolidation, in USD.
    pub savings: Option<f64>,
}

/// The notes of every group, shared by the loops and the NodeGroup controller. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    groups: Arc<Mutex<HashMap<String, GroupNote>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Notes {
    /// Changes the note of `group` and wakes the NodeGroup controller.
    pub fn update(&self, group: &str, f: impl FnOnce(&mut GroupNote)) {
        {
            let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
            f(groups.entry(group.to_owned()).or_default());
        }
        self.changed.notify_waiters();
    }

    /// Records a decision about `group` in one sentence. The same sentence again (a pod that stays
    /// pending for the same reason, decision after decision) changes nothing, so the status is not
    /// rewritten every pass.
    pub fn decided(&self, group: &str, summary: String, correlation_id: &str, now: jiff::Timestamp) {
        let same = self.get(group).last_decision.is_some_and(|d| d.summary == summary);
        if same {
            return;
        }
        self.update(group, |n| {
            n.last_decision =
                Some(LastDecision { time: Time(now), summary, correlation_id: Some(correlation_id.to_owned()) });
        });
    }

    /// The note of `group` (empty when there is none).
    pub fn get(&self, group: &str) -> GroupNote {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner).get(group).cloned().unwrap_or_default()
    }

    /// What is notified on every change (for [`crate::cluster::Cluster::on_change`]).
    pub fn waker(&self) -> &tokio::sync::Notify {
        &self.changed
    }
}

/// A fresh correlation id for one decision: 12 hex characters, in its log span, Events, audit lines and
/// the status it leaves.
pub fn correlation_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 6];
    // Without randomness the id falls back to the clock: still unique enough to follow one decision.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes.copy_from_slice(&jiff::Timestamp::now().as_nanosecond().to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_kept_per_group_and_ids_differ() {
        let notes = Notes::default();
        let now = jiff::Timestamp::now();
        notes.decided("web", "added 1 x sc-2cpu-4gb for 3 pending pods".into(), "abc", now);
        assert_eq!(notes.get("web").last_decision.map(|d| d.correlation_id), Some(Some("abc".to_owned())));
        notes.decided("web", "added 1 x sc-2cpu-4gb for 3 pending pods".into(), "def", now);
        assert_eq!(
            notes.get("web").last_decision.and_then(|d| d.correlation_id).as_deref(),
            Some("abc"),
            "the same sentence keeps the first decision"
        );
        assert_eq!(notes.get("batch"), GroupNote::default());
        let (a, b) = (correlation_id(), correlation_id());
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }
}
