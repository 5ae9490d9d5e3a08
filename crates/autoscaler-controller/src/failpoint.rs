//! Crash points for the crash-safety tests: with `VPSIE_AUTOSCALER_FAILPOINT=<name>` in its environment
//! the process exits at once (no cleanup, no Lease release, as `kill -9` would leave things) the first
//! time it reaches that point. Without the variable a crash point costs one comparison.
//!
//! Points: `create:after-intent` (intent written, create not sent), `create:after-request` (create sent,
//! nothing recorded since), `advance:<Phase>` (the move to `Provisioning` (adopting), `Provisioned`,
//! `Joining` or `Ready` observed, not written), `drain:started` (phase Terminating written, node not yet
//! cordoned), `delete:after-node` (Node deleted, VM not), `delete:after-vm` (VM delete sent, finalizer
//! kept).

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "VPSIE_AUTOSCALER_FAILPOINT";
/// The exit code of a crash point, so a test tells it from any other exit.
pub const EXIT_CODE: i32 = 97;

/// Exits the process here when `VPSIE_AUTOSCALER_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if chosen.as_deref() == Some(point) {
        eprintln!("vpsie-autoscaler: crash point {point} reached; exiting");
        std::process::exit(EXIT_CODE);
    }
}
