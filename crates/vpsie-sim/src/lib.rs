//! A faithful in-memory VPSie API on real HTTP (axum on 127.0.0.1), for tests, e2e runs and the demo.
//!
//! It serves the paths and shapes of `shared/vpsie-api.md`: both VM path prefixes, both auth styles,
//! the `{"error","data","total"}` envelope, `data:false` for missing objects, HTTP 200 with `error:true`
//! (wrong delete password, offer not of the datacenter, quota), asynchronous VM boot through
//! `/vm/pending`, managed clusters with node groups and nodes.
//!
//! Given a Kubernetes client ([`SimHandle::join_cluster`]), booted VMs register as kwok Nodes the way
//! their kubelet would ([`ClusterJoin`]).
//!
//! Fault injection ([`FaultRule`]), a request log, a state dump and run-time settings are reachable both
//! in-process through [`SimHandle`] and over HTTP under `/__sim/` (see the `routes::admin` docs).
//! Every random choice comes from the seed, so a seeded run is repeatable.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let sim = vpsie_sim::SimHandle::start(vpsie_sim::SimConfig::default()).await?;
//! println!("VPSie simulator at {}", sim.base_url());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod boot;
mod catalog;
mod config;
mod faults;
mod join;
mod rng;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use boot::{BootHook, BootedVm, PoweredVm};
pub use catalog::{Catalog, Category, Datacenter, K8sSize, Offer, OsImage};
pub use config::SimConfig;
pub use faults::{FaultKind, FaultRule};
pub use join::{ClusterJoin, KWOK_ANNOTATION, KubeletArgs, NoJoin, RegisterTaint, VM_ANNOTATION, node_for};
pub use rng::SimRng;
pub use state::{ClusterRec, GroupRec, LoggedRequest, NodeRec, PendingRec, RuntimeSettings, VmRec};

/// How often pending VMs are checked for boot.
const BOOT_TICK: Duration = Duration::from_millis(20);

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener could not bind.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The simulator's shared core.
pub struct Sim {
    state: Mutex<state::State>,
    config: SimConfig,
    hook: RwLock<Option<Arc<dyn BootHook>>>,
}

/// A snapshot of the world for assertions (no secrets, no user data).
#[derive(Debug, Clone, Serialize)]
pub struct StateDump {
    /// Active VMs.
    pub vms: Vec<VmRec>,
    /// Pending creates.
    pub pending: Vec<PendingRec>,
    /// Managed clusters.
    pub clusters: Vec<ClusterRec>,
    /// Managed node groups.
    pub groups: Vec<GroupRec>,
    /// Run-time settings.
    pub settings: RuntimeSettings,
}

impl Sim {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        // State stays consistent across a handler panic: every mutation is a single push/remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hook(&self) -> Option<Arc<dyn BootHook>> {
        self.hook.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn dump(&self) -> StateDump {
        let st = self.lock();
        StateDump {
            vms: st.vms.clone(),
            pending: st.pending.clone(),
            clusters: st.clusters.clone(),
            groups: st.groups.clone(),
            settings: st.settings.clone(),
        }
    }

    fn notify_deleted(&self, vm: &BootedVm) {
        if let Some(h) = self.hook() {
            h.vm_deleted(vm);
        }
    }

    /// Powers a VM off or on (by identifier or host name) and tells the hook; whether one was found.
    fn set_power(&self, identifier_or_hostname: &str, on: bool) -> bool {
        let changed = {
            let mut st = self.lock();
            st.vms
                .iter_mut()
                .find(|v| v.identifier == identifier_or_hostname || v.hostname == identifier_or_hostname)
                .map(|vm| {
                    let was = vm.power;
                    vm.power = on;
                    (was != on).then(|| PoweredVm { identifier: vm.identifier.clone(), hostname: vm.hostname.clone() })
                })
        };
        match changed {
            None => false,
            Some(None) => true,
            Some(Some(vm)) => {
                tracing::info!(identifier = %vm.identifier, hostname = %vm.hostname, on, "VM power changed");
                if let Some(h) = self.hook() {
                    h.vm_powered(&vm, on);
                }
                true
            }
        }
    }

    fn notify_node_deleted(&self, n: &NodeRec) {
        self.notify_deleted(&BootedVm {
            identifier: n.identifier.clone(),
            hostname: n.hostname.clone(),
            default_ip: n.default_ip.clone(),
            private_ip: n.private_ip.clone(),
            user_data: None,
            tags: Vec::new(),
            cpu: 0,
            ram_mib: 0,
            dc_identifier: String::new(),
            offer_identifier: String::new(),
            offer_nickname: String::new(),
            disk_gib: 0,
            join_delay: Duration::ZERO,
            never_joins: false,
            extra_taints: String::new(),
            cluster_identifier: None,
        });
    }

    fn boot_tick(&self) {
        let booted = self.lock().boot_due(tokio::time::Instant::now());
        if booted.is_empty() {
            return;
        }
        let hook = self.hook();
        for vm in &booted {
            tracing::info!(identifier = %vm.identifier, hostname = %vm.hostname, ip = %vm.default_ip, "VM booted");
            if let Some(h) = &hook {
                h.vm_booted(vm);
            }
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SimHandle {
    /// Starts the simulator on `127.0.0.1:config.port` (0: a free port).
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| SimError::Bind { port: config.port, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { port: config.port, source })?;
        let sim = Arc::new(Sim { state: Mutex::new(state::State::new(&config)), config, hook: RwLock::new(None) });
        let app = routes::router(sim.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        let ticker_sim = sim.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(BOOT_TICK);
            loop {
                tick.tick().await;
                ticker_sim.boot_tick();
            }
        });
        tracing::info!(%addr, "VPSie simulator listening");
        Ok(Self { addr, sim, shutdown: Some(tx), tasks: vec![server, ticker] })
    }

    /// Installs the hook called when VMs boot or are deleted.
    pub fn set_boot_hook(&self, hook: Arc<dyn BootHook>) {
        *self.sim.hook.write().unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Makes every VM and managed node that boots from now on register as a kwok Node in the cluster
    /// `client` talks to (see [`ClusterJoin`]); replaces any other boot hook.
    pub fn join_cluster(&self, client: kube::Client) {
        self.set_boot_hook(Arc::new(ClusterJoin::new(client)));
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration it started with.
    pub fn config(&self) -> &SimConfig {
        &self.sim.config
    }

    /// The first long-lived access token accepted now.
    pub fn access_token(&self) -> String {
        self.sim.lock().access_tokens.first().cloned().unwrap_or_default()
    }

    /// Replaces the accepted long-lived access tokens (rotation: the old ones answer 401 from now on).
    pub fn set_access_tokens(&self, tokens: Vec<String>) {
        self.sim.lock().access_tokens = tokens;
    }

    /// The catalog (datacenters, categories, offers, sizes, images).
    pub fn catalog(&self) -> Catalog {
        self.sim.lock().catalog.clone()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        self.sim.lock().faults.push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.sim.lock().faults.clear();
    }

    /// The request log so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.sim.lock().log.clone()
    }

    /// How many logged requests had `method` and a path starting with `path_prefix`.
    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        self.sim.lock().log.iter().filter(|r| r.method == method && r.path.starts_with(path_prefix)).count()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.sim.lock().log.clear();
    }

    /// The current run-time settings.
    pub fn settings(&self) -> RuntimeSettings {
        self.sim.lock().settings.clone()
    }

    /// Changes run-time settings.
    pub fn update_settings(&self, f: impl FnOnce(&mut RuntimeSettings)) {
        f(&mut self.sim.lock().settings);
    }

    /// Invalidates every exchanged token (as if they expired server-side).
    pub fn expire_tokens(&self) {
        self.sim.lock().issued_tokens.clear();
    }

    /// Boots a pending VM now, by identifier or hostname. Returns whether one was pending.
    pub fn force_boot(&self, identifier_or_hostname: &str) -> bool {
        self.sim.lock().force_boot(identifier_or_hostname)
    }

    /// Powers a VM off (`on: false`, as a stop from the VPSie panel or a host failure) or on again, by
    /// identifier or host name, as `POST /vm/stop|start` does. Returns whether the VM exists. A joined
    /// VM's Node follows (see [`ClusterJoin`]).
    pub fn set_power(&self, identifier_or_hostname: &str, on: bool) -> bool {
        self.sim.set_power(identifier_or_hostname, on)
    }

    /// Creates a managed cluster with one master and returns its identifier.
    pub fn create_cluster(&self, name: &str, dc: &str, version: &str) -> Option<String> {
        self.sim.lock().create_cluster(name, dc, version).ok()
    }

    /// A snapshot of the world.
    pub fn dump(&self) -> StateDump {
        self.sim.dump()
    }

    /// Stops serving (connections are refused from now on) but keeps the handle, so a test can watch a
    /// client face an API that is down.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}
