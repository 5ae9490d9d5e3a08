//! Kubernetes Events (events.k8s.io/v1) through kube-runtime's Recorder, which folds repeats into a series.
//!
//! Only the leader publishes: an [`Events`] made [`Events::gated`] drops what a follower would say (the
//! follower logs it instead), so every Event in the cluster comes from one identity. Notes are cut to the
//! 1 KB an Event may hold and never carry a secret value.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::leader::Leadership;

/// The most bytes an Event note may hold.
pub const NOTE_LIMIT: usize = 1024;

/// Publishes Events as `vpsie-autoscaler` with this replica's identity.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    gate: Option<Leadership>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("gated", &self.gate.is_some()).finish_non_exhaustive()
    }
}

/// Cuts `note` to at most [`NOTE_LIMIT`] bytes on a character boundary, marking the cut.
pub fn fit_note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_owned();
    }
    let mut end = NOTE_LIMIT - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

impl Events {
    /// A publisher reporting as `vpsie-autoscaler` / `identity`, not gated.
    pub fn new(client: Client, identity: &str) -> Self {
        let reporter = Reporter { controller: "vpsie-autoscaler".into(), instance: Some(identity.to_owned()) };
        Self { recorder: Recorder::new(client, reporter), gate: None }
    }

    /// The same publisher, silent unless `leadership` says this replica leads.
    pub fn gated(&self, leadership: Leadership) -> Self {
        Self { recorder: self.recorder.clone(), gate: Some(leadership) }
    }

    /// Publishes one Event about `regarding`. Failures are logged, never fatal.
    pub async fn publish(&self, regarding: &ObjectReference, warning: bool, reason: &str, action: &str, note: &str) {
        if self.gate.as_ref().is_some_and(|g| !g.is_leader()) {
            tracing::debug!(reason, note, "not leader: Event not published");
            return;
        }
        let ev = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(fit_note(note)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::warn!(error = %e, reason, "Event not published");
        }
    }

    /// `LeaderElection` on the Lease: this replica became leader.
    pub async fn leader_elected(&self, namespace: &str, lease: &str, identity: &str) {
        let regarding = reference("coordination.k8s.io/v1", "Lease", namespace, lease);
        self.publish(&regarding, false, "LeaderElection", "Elect", &format!("{identity} became leader")).await;
    }

    /// `CredentialsInvalid` on the credentials Secret, naming the problem (a key, never a value).
    pub async fn credentials_problem(&self, namespace: &str, secret: &str, problem: &str) {
        let regarding = reference("v1", "Secret", namespace, secret);
        self.publish(&regarding, true, "CredentialsInvalid", "LoadCredentials", problem).await;
    }
}

/// An object reference by kind and name.
pub fn reference(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
        name: Some(name.to_owned()),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_fit_in_one_kilobyte_on_a_char_boundary() {
        assert_eq!(fit_note("short"), "short");
        let long = "é".repeat(700);
        let fitted = fit_note(&long);
        assert!(fitted.len() <= NOTE_LIMIT && fitted.ends_with("..."));
    }
}
