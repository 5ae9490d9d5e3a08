//! Starting, reaching and stopping one control plane.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::binaries::{self, Binaries};
use crate::error::{Error, Result};
use crate::pki::{Pki, write_kubeconfig};
use crate::process::{Proc, free_port, http_status, signal_group, watchdog};
use crate::supervisor::Component;

/// How long each component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Chooses the optional components of a control plane.
#[derive(Debug, Clone)]
pub struct Builder {
    controller_manager: bool,
    scheduler: bool,
    kwok: bool,
    persistent_dir: Option<PathBuf>,
    extra_flags: Vec<ExtraFlag>,
}

/// A flag added to one component's command line.
#[derive(Debug, Clone)]
struct ExtraFlag {
    component: Component,
    flag: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self { controller_manager: true, scheduler: true, kwok: true, persistent_dir: None, extra_flags: Vec::new() }
    }
}

impl Builder {
    /// Do not start kube-controller-manager.
    pub fn without_controller_manager(mut self) -> Self {
        self.controller_manager = false;
        self
    }

    /// Do not start kube-scheduler.
    pub fn without_scheduler(mut self) -> Self {
        self.scheduler = false;
        self
    }

    /// Do not start kwok (no fake kubelets).
    pub fn without_kwok(mut self) -> Self {
        self.kwok = false;
        self
    }

    /// Adds `flag` (e.g. `--v=4`) to `component`'s command line, after the flags testenv sets; the
    /// supervisor restarts it with the same flags.
    pub fn flag(mut self, component: Component, flag: impl Into<String>) -> Self {
        self.extra_flags.push(ExtraFlag { component, flag: flag.into() });
        self
    }

    /// `component`'s command line: `base`, then the flags [`Builder::flag`] added.
    fn command_line(&self, component: Component, base: &[&str]) -> Vec<String> {
        let added = self.extra_flags.iter().filter(|f| f.component == component).map(|f| f.flag.clone());
        base.iter().map(|s| (*s).to_owned()).chain(added).collect()
    }

    /// Keep the control plane running after this process exits, in `dir` (for `cargo xtask cluster up`).
    pub fn persistent(mut self, dir: impl Into<PathBuf>) -> Self {
        self.persistent_dir = Some(dir.into());
        self
    }

    /// Builds missing binaries (first use only), then starts every component and waits until each is
    /// ready.
    pub async fn start(self) -> Result<ControlPlane> {
        let bins = tokio::task::spawn_blocking(binaries::ensure)
            .await
            .map_err(|e| Error::Build(format!("binary build task: {e}")))??;
        ControlPlane::launch(self, bins).await
    }
}

/// A running control plane. Dropping it stops every process it started (and prints their logs' tails
/// when the thread is panicking, so a failing test shows why).
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    server: String,
    kubeconfig: PathBuf,
    pki: Pki,
    pub(crate) procs: Vec<Proc>,
    group: u32,
    persistent: bool,
    /// Whether dropping it removes its directory (a temporary instance; a persistent one's directory is
    /// kept, with its logs, even after a failed start).
    remove_dir: bool,
    watchdog: Option<std::process::Child>,
    binaries: Binaries,
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

fn instance_dir() -> PathBuf {
    let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("vpsie-testenv-{}-{n}", std::process::id()))
}

impl ControlPlane {
    /// A builder with every component on.
    pub fn builder() -> Builder {
        Builder::default()
    }

    async fn launch(opts: Builder, bins: Binaries) -> Result<Self> {
        let persistent = opts.persistent_dir.is_some();
        let dir = opts.persistent_dir.clone().unwrap_or_else(instance_dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let pki = Pki::generate(&dir.join("pki"))?;
        let started = Instant::now();

        // etcd leads the process group every other component joins.
        let (etcd_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Proc::spawn(
            Component::Etcd,
            &bins.etcd,
            &opts.command_line(
                Component::Etcd,
                &[
                    "--name=testenv",
                    &format!("--data-dir={}", dir.join("etcd").display()),
                    &format!("--listen-client-urls={etcd_url}"),
                    &format!("--advertise-client-urls={etcd_url}"),
                    &format!("--listen-peer-urls={peer_url}"),
                    &format!("--initial-advertise-peer-urls={peer_url}"),
                    &format!("--initial-cluster=testenv={peer_url}"),
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
            ),
            &dir,
            0,
            &[],
        )?;
        let group = etcd.supervisor.id();
        let mut cp = Self {
            server: String::new(),
            kubeconfig: dir.join("admin.kubeconfig"),
            watchdog: None,
            dir,
            pki,
            procs: vec![etcd],
            group,
            // Detached only once ready: a start that fails stops what it started, persistent or not
            // (a supervisor left behind would restart a broken component forever).
            persistent: false,
            remove_dir: !persistent,
            binaries: bins,
        };
        if !persistent {
            cp.watchdog = Some(watchdog(std::process::id(), group, &cp.dir)?);
        }
        cp.wait_http(Component::Etcd, etcd_port, "/health").await?;

        let api_port = free_port()?;
        cp.server = format!("https://127.0.0.1:{api_port}");
        let p = &cp.pki;
        let apiserver_args = opts.command_line(
            Component::KubeApiserver,
            &[
                &format!("--etcd-servers={etcd_url}"),
                &format!("--cert-dir={}", cp.dir.join("apiserver-certs").display()),
                &format!("--tls-cert-file={}", p.serving_cert.display()),
                &format!("--tls-private-key-file={}", p.serving_key.display()),
                &format!("--secure-port={api_port}"),
                "--bind-address=127.0.0.1",
                // Loopback may only be advertised with no endpoint reconciler (the kubernetes Service's
                // endpoints would be invalid); see shared/control-plane-notes.md, pitfall 1.
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                &format!("--client-ca-file={}", p.ca_cert.display()),
                &format!("--service-account-issuer=https://127.0.0.1:{api_port}"),
                &format!("--service-account-key-file={}", p.sa_pub.display()),
                &format!("--service-account-signing-key-file={}", p.sa_key.display()),
                // As envtest: pods need not wait for the default ServiceAccount (pitfall 4).
                "--disable-admission-plugins=ServiceAccount",
            ],
        );
        let apiserver =
            Proc::spawn(Component::KubeApiserver, &cp.binaries.kube_apiserver, &apiserver_args, &cp.dir, group, &[])?;
        cp.procs.push(apiserver);
        write_kubeconfig(&cp.kubeconfig, &cp.server, &cp.pki.ca_cert, &cp.pki.admin)?;
        cp.wait_apiserver().await?;

        if opts.controller_manager {
            let kc = cp.dir.join("kube-controller-manager.kubeconfig");
            write_kubeconfig(&kc, &cp.server, &cp.pki.ca_cert, &cp.pki.controller_manager)?;
            let a = opts.command_line(
                Component::KubeControllerManager,
                &[
                    &format!("--kubeconfig={}", kc.display()),
                    // Its own identity may only list/watch; each controller uses its ServiceAccount.
                    "--use-service-account-credentials=true",
                    &format!("--service-account-private-key-file={}", cp.pki.sa_key.display()),
                    &format!("--root-ca-file={}", cp.pki.ca_cert.display()),
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                    "--leader-elect=true",
                    "--node-monitor-period=5s",
                    "--node-monitor-grace-period=40s",
                ],
            );
            let bin = cp.binaries.kube_controller_manager.clone();
            cp.procs.push(Proc::spawn(Component::KubeControllerManager, &bin, &a, &cp.dir, group, &[])?);
        }
        if opts.scheduler {
            let kc = cp.dir.join("kube-scheduler.kubeconfig");
            write_kubeconfig(&kc, &cp.server, &cp.pki.ca_cert, &cp.pki.scheduler)?;
            let a = opts.command_line(
                Component::KubeScheduler,
                &[
                    &format!("--kubeconfig={}", kc.display()),
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                    "--leader-elect=true",
                ],
            );
            let bin = cp.binaries.kube_scheduler.clone();
            cp.procs.push(Proc::spawn(Component::KubeScheduler, &bin, &a, &cp.dir, group, &[])?);
        }
        let mut kwok_port = None;
        if opts.kwok {
            let kc = cp.dir.join("kwok.kubeconfig");
            let upstream = std::fs::read_to_string(&cp.binaries.kwok_stages)
                .map_err(|e| Error::io(&cp.binaries.kwok_stages, e))?;
            let stages = cp.dir.join("kwok-stages.yaml");
            std::fs::write(&stages, crate::kwok_stages::gated(&upstream)?).map_err(|e| Error::io(&stages, e))?;
            write_kubeconfig(&kc, &cp.server, &cp.pki.ca_cert, &cp.pki.kwok)?;
            let port = free_port()?;
            let a = opts.command_line(
                Component::Kwok,
                &[
                    &format!("--kubeconfig={}", kc.display()),
                    &format!("--config={}", stages.display()),
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    &format!("--server-address=127.0.0.1:{port}"),
                    "--node-lease-duration-seconds=0",
                    "--cidr=10.244.0.0/16",
                ],
            );
            let bin = cp.binaries.kwok.clone();
            // HOME points into the instance so a stray ~/.kwok/kwok.yaml is never loaded (pitfall 8).
            let home = cp.dir.clone();
            cp.procs.push(Proc::spawn(Component::Kwok, &bin, &a, &cp.dir, group, &[("HOME", &home)])?);
            kwok_port = Some(port);
        }
        if opts.controller_manager {
            cp.wait_lease(Component::KubeControllerManager).await?;
        }
        if opts.scheduler {
            cp.wait_lease(Component::KubeScheduler).await?;
        }
        if let Some(port) = kwok_port {
            cp.wait_http(Component::Kwok, port, "/healthz").await?;
        }
        tracing::info!(dir = %cp.dir.display(), server = %cp.server, elapsed_ms = started.elapsed().as_millis() as u64, "control plane ready");
        cp.persistent = persistent;
        Ok(cp)
    }

    /// Fails if any component has exited.
    fn check_alive(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if let Some(status) = p.exited() {
                return Err(p.failure(format!("exited ({status})")));
            }
        }
        Ok(())
    }

    fn not_ready(&self, component: Component) -> Error {
        let p = self.procs.iter().find(|p| p.component == component).or(self.procs.last());
        match p {
            Some(p) => p.failure(format!("not ready within {}s", READY_TIMEOUT.as_secs())),
            None => Error::Build(format!("{component} was never started")),
        }
    }

    async fn wait_http(&mut self, component: Component, port: u16, path: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            self.check_alive()?;
            if http_status(port, path).await == Some(200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.not_ready(component))
    }

    async fn wait_apiserver(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = self.client().await?;
        while Instant::now() < deadline {
            self.check_alive()?;
            let req = http::Request::get("/readyz").body(Vec::new()).map_err(|e| Error::Kubeconfig(e.to_string()))?;
            if client.request_text(req).await.is_ok_and(|t| t.trim() == "ok") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(self.not_ready(Component::KubeApiserver))
    }

    /// The controller-manager and scheduler hold a Lease in kube-system once they run (leader election on
    /// a fresh etcd is immediate); their HTTPS health ports are off to avoid port clashes.
    async fn wait_lease(&mut self, component: Component) -> Result<()> {
        let leases: Api<Lease> = Api::namespaced(self.client().await?, "kube-system");
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            self.check_alive()?;
            if let Ok(Some(l)) = leases.get_opt(component.name()).await
                && l.spec.and_then(|s| s.holder_identity).is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(self.not_ready(component))
    }

    /// A new client as cluster admin. Each call builds its own client, so a shared control plane can
    /// serve tests running on different tokio runtimes.
    pub async fn client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// The admin kube config (kube's default retry layer off), for code that builds its own client.
    pub async fn config(&self) -> Result<Config> {
        config_from_kubeconfig(&self.kubeconfig).await
    }

    /// A client that authenticates with a bearer token (a ServiceAccount token, for RBAC tests).
    pub async fn client_with_token(&self, token: &str) -> Result<Client> {
        let mut config = config_from_kubeconfig(&self.kubeconfig).await?;
        config.auth_info = kube::config::AuthInfo { token: Some(token.to_owned().into()), ..Default::default() };
        Ok(Client::try_from(config)?)
    }

    /// The admin kubeconfig (for kubectl: `KUBECONFIG=<path> kubectl get nodes`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The apiserver URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The instance directory (certificates, kubeconfigs, logs, etcd data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process group of every component.
    pub fn process_group(&self) -> u32 {
        self.group
    }

    /// The binaries in use.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The last `lines` lines of every component's log.
    pub fn log_tails(&self, lines: usize) -> String {
        self.procs
            .iter()
            .map(|p| {
                let restarts = crate::process::tail(&p.files.events, lines);
                format!(
                    "===== {} ({}) =====\n{}\n----- supervisor -----\n{restarts}\n",
                    p.component,
                    p.files.log.display(),
                    p.tail(lines)
                )
            })
            .collect()
    }

    /// A guard that prints every component's log tail if the thread panics while it lives. Use it in
    /// tests on the shared instance, which is never dropped.
    pub fn logs_on_panic(&self) -> LogsOnPanic<'_> {
        LogsOnPanic(self)
    }

    /// Leaves the processes running (persistent mode) and forgets them.
    pub fn detach(mut self) {
        self.persistent = true;
        self.procs.clear();
    }
}

/// Prints a control plane's logs when dropped during a panic; see [`ControlPlane::logs_on_panic`].
#[derive(Debug)]
pub struct LogsOnPanic<'a>(&'a ControlPlane);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("control plane logs ({}):\n{}", self.0.dir.display(), self.0.log_tails(30));
        }
    }
}

/// A client from a kubeconfig file, with kube's default retry layer off.
///
/// kube 5 retries every 429/503/504 up to 15 times with backoff up to 1000 s by default
/// (`Config::default_retry`). Tests must see the server's real answers: an Eviction refused by a
/// PodDisruptionBudget is a 429, and with the default layer the call only returns after minutes.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    Ok(Client::try_from(config_from_kubeconfig(path).await?)?)
}

async fn config_from_kubeconfig(path: &Path) -> Result<Config> {
    let kc = Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
    config.default_retry = false;
    Ok(config)
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("control plane logs ({}):\n{}", self.dir.display(), self.log_tails(30));
        }
        if self.persistent {
            return;
        }
        // One signal to the group stops every supervisor and component at once (a supervisor stopped
        // first would leave its component running; a component stopped first would be restarted).
        signal_group("-KILL", self.group);
        for p in &mut self.procs {
            p.reap();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        // After a failure the directory (logs, certificates, etcd data) is kept for inspection; its path
        // heads the logs printed above.
        if self.remove_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
