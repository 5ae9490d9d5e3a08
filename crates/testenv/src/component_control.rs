//! Freezing, resuming and killing one component of a running control plane, for tests of what a slow,
//! paused or restarting control plane does to the code under test.

use std::time::{Duration, Instant};

use crate::control_plane::ControlPlane;
use crate::error::{Error, Result};
use crate::supervisor::{self, Component, Exit, Signal};

impl ControlPlane {
    fn started(&self, component: Component) -> Result<()> {
        if self.procs.iter().any(|p| p.component == component) {
            Ok(())
        } else {
            Err(Error::NotRunning { component: component.name() })
        }
    }

    /// The pid of the component's current run (it changes when the supervisor restarts it); an error
    /// while the component is down waiting for its restart.
    pub fn pid(&self, component: Component) -> Result<u32> {
        self.started(component)?;
        supervisor::current_pid(self.dir(), component).ok_or(Error::NotRunning { component: component.name() })
    }

    /// Stops the component with SIGSTOP, as a long pause or an overloaded host would: its sockets stay
    /// open, so clients connect and then wait. Returns the frozen pid. [`ControlPlane::resume`] undoes it.
    pub fn freeze(&self, component: Component) -> Result<u32> {
        self.started(component)?;
        supervisor::send(self.dir(), component, Signal::Stop)
    }

    /// Resumes a component frozen by [`ControlPlane::freeze`] with SIGCONT.
    pub fn resume(&self, component: Component) -> Result<u32> {
        self.started(component)?;
        supervisor::send(self.dir(), component, Signal::Cont)
    }

    /// Kills the component's current run with SIGKILL; its supervisor starts it again after its backoff
    /// (10 s for the first exit). Returns the killed pid.
    pub fn kill(&self, component: Component) -> Result<u32> {
        self.started(component)?;
        supervisor::send(self.dir(), component, Signal::Kill)
    }

    /// Kills the component and waits until its supervisor has started a new run; returns the new pid.
    /// Takes the supervisor's backoff (10 s the first time). Readiness of the new run is the caller's
    /// to check (a controller-manager, for one, must first wait for its predecessor's Lease to expire).
    pub async fn restart(&self, component: Component, within: Duration) -> Result<u32> {
        let old = self.kill(component)?;
        self.wait_new_run(component, old, within).await
    }

    /// Waits until the component runs under a pid other than `old`; returns it.
    pub async fn wait_new_run(&self, component: Component, old: u32, within: Duration) -> Result<u32> {
        let deadline = Instant::now() + within;
        loop {
            // No pid while the supervisor waits out its backoff.
            if let Some(now) = supervisor::current_pid(self.dir(), component).filter(|now| *now != old) {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{component} to be restarted"),
                    seconds: within.as_secs(),
                    last: format!("no run after pid {old}; exits: {:?}", self.exits(component)?),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every exit of the component its supervisor recorded, oldest first.
    pub fn exits(&self, component: Component) -> Result<Vec<Exit>> {
        self.started(component)?;
        Ok(supervisor::recorded_exits(self.dir(), component))
    }
}
