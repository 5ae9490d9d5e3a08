//! The operator binary as a process, as in production: a real local control plane with the CRDs and the
//! RBAC of `deploy/rbac/` (or the existing cluster `cargo xtask e2e --kubeconfig` names, see
//! [`EXISTING_CLUSTER`]), the binary running under its ServiceAccount's token, and vpsie-sim for VPSie.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod nodes;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vpsie_sim::{SimConfig, SimHandle};

/// Serialises the tests of one binary: each starts its own control plane and operators, and timing claims
/// (failover) must not compete with another test's start-up on two cores.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Set by `cargo xtask e2e --kubeconfig PATH`: run against that existing cluster instead of starting a
/// control plane. xtask installs the CRDs and RBAC there and cleans up between scenarios; the harness
/// only connects, issues the ServiceAccount's token and starts the simulator.
pub const EXISTING_CLUSTER: &str = "VPSIE_E2E_KUBECONFIG";

/// A control plane (or an existing cluster), the simulator and the operator's ServiceAccount kubeconfig.
pub struct Env {
    /// The local control plane; `None` against an existing cluster.
    pub cp: Option<testenv::ControlPlane>,
    pub sim: SimHandle,
    pub admin: Client,
    pub sa_kubeconfig: PathBuf,
    pub sa_token: String,
    pub dir: PathBuf,
}

fn kubectl(cp: &testenv::ControlPlane, args: &[&str]) {
    let out = Command::new(&cp.binaries().kubectl)
        .args(args)
        .env("KUBECONFIG", cp.kubeconfig_path())
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The cluster the test runs against: its admin client and kubeconfig, and where the operators' files go.
struct Cluster {
    cp: Option<testenv::ControlPlane>,
    admin: Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    /// A new local control plane with the CRDs (unless `crds` is false) and the RBAC of `deploy/`.
    async fn local(crds: bool, nodes: bool) -> Cluster {
        let mut builder = testenv::ControlPlane::builder();
        if !nodes {
            builder = builder.without_kwok().without_scheduler().without_controller_manager();
        }
        let cp = builder.start().await.expect("control plane");
        if crds {
            kubectl(&cp, &["apply", "-f", &repo().join("deploy/crds").display().to_string()]);
        }
        kubectl(&cp, &["apply", "-f", &repo().join("deploy/rbac").display().to_string()]);
        let admin = cp.client().await.expect("admin client");
        let (kubeconfig, dir) = (cp.kubeconfig_path().to_owned(), cp.dir().join("operator"));
        Cluster { cp: Some(cp), admin, kubeconfig, dir }
    }

    /// The existing cluster of [`EXISTING_CLUSTER`], where xtask has installed the CRDs and RBAC.
    async fn existing(kubeconfig: PathBuf, crds: bool) -> Cluster {
        assert!(
            crds,
            "this test runs without the CRDs, so it needs a control plane of its own: run it without {EXISTING_CLUSTER}"
        );
        let admin = testenv::client_from_kubeconfig(&kubeconfig).await.expect("a client from the given kubeconfig");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-existing-{}", std::process::id()));
        Cluster { cp: None, admin, kubeconfig, dir }
    }
}

impl Env {
    /// Starts everything; the credentials Secret holds `token` (and a delete password) and the simulator
    /// accepts only `token`. With `crds: false` the CRDs are not installed.
    pub async fn start(token: &str, crds: bool) -> Env {
        Self::build(token, crds, false).await
    }

    /// Everything, plus what nodes need: kwok, the scheduler and the controller-manager, a simulator whose
    /// booted VMs join the cluster as kwok Nodes, and the kubeadm join Secret `kube-system/vpsie-join`.
    pub async fn with_nodes(token: &str) -> Env {
        let env = Self::build(token, true, true).await;
        env.sim.join_cluster(env.admin.clone());
        let secrets: Api<Secret> = Api::namespaced(env.admin.clone(), "kube-system");
        let join = Secret {
            metadata: kube::api::ObjectMeta { name: Some("vpsie-join".into()), ..Default::default() },
            string_data: Some(
                [("apiServerEndpoint", "10.0.0.1:6443"), ("token", JOIN_TOKEN), ("caCertHash", "sha256:5eed")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            ..Default::default()
        };
        let pp = kube::api::PatchParams::apply("e2e").force();
        secrets.patch("vpsie-join", &pp, &kube::api::Patch::Apply(&join)).await.expect("join Secret");
        env
    }

    async fn build(token: &str, crds: bool, nodes: bool) -> Env {
        let Cluster { cp, admin, kubeconfig, dir } = match std::env::var_os(EXISTING_CLUSTER) {
            Some(path) => Cluster::existing(PathBuf::from(path), crds).await,
            None => Cluster::local(crds, nodes).await,
        };
        if crds {
            let groups: Api<autoscaler_api::NodeGroup> = Api::all(admin.clone());
            testenv::wait_for("CRDs established", Duration::from_secs(30), || {
                let groups = groups.clone();
                async move { Ok(groups.list(&Default::default()).await.map(|_| ()).map_err(|e| e.to_string())) }
            })
            .await
            .expect("CRDs");
        }
        let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "kube-system");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec { audiences: None, expiration_seconds: Some(3600), ..Default::default() }),
            ..Default::default()
        };
        let issued =
            sas.create_token_request("vpsie-autoscaler", &PostParams::default(), &request).await.expect("token");
        let sa_token = issued.status.and_then(|s| s.token).expect("token issued");
        std::fs::create_dir_all(&dir).expect("dir");
        let mut kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("admin kubeconfig");
        for a in &mut kc.auth_infos {
            if let Some(info) = a.auth_info.as_mut() {
                *info = kube::config::AuthInfo { token: Some(sa_token.clone().into()), ..Default::default() };
            }
        }
        let sa_kubeconfig = dir.join("sa.kubeconfig");
        std::fs::write(&sa_kubeconfig, serde_json::to_vec(&kc).expect("kubeconfig json")).expect("write kubeconfig");
        let sim = SimHandle::start(SimConfig {
            access_tokens: vec![token.to_owned()],
            account_password: DELETE_PASSWORD.to_owned(),
            boot_delay: Duration::from_millis(200),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let env = Env { cp, sim, admin, sa_kubeconfig, sa_token, dir };
        env.put_secret(&[("token", token), ("deletePassword", DELETE_PASSWORD)]).await;
        env
    }

    /// The control plane's log tails if the test panics (nothing against an existing cluster).
    pub fn logs_on_panic(&self) -> Option<testenv::LogsOnPanic<'_>> {
        self.cp.as_ref().map(testenv::ControlPlane::logs_on_panic)
    }

    /// Creates or replaces the credentials Secret `kube-system/vpsie-secret`.
    pub async fn put_secret(&self, data: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), "kube-system");
        let secret = Secret {
            metadata: kube::api::ObjectMeta { name: Some("vpsie-secret".into()), ..Default::default() },
            string_data: Some(data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..Default::default()
        };
        let pp = kube::api::PatchParams::apply("e2e").force();
        secrets.patch("vpsie-secret", &pp, &kube::api::Patch::Apply(&secret)).await.expect("apply Secret");
        // Server-side apply merges string data into data; drop keys this call does not name.
        let mut current = secrets.get("vpsie-secret").await.expect("Secret");
        if let Some(d) = current.data.as_mut() {
            d.retain(|k, _| data.iter().any(|(n, _)| n == k));
        }
        current.metadata.managed_fields = None;
        secrets.replace("vpsie-secret", &PostParams::default(), &current).await.expect("replace Secret");
    }

    /// Applies the CRDs (for an Env started without them) and waits until they serve.
    pub async fn install_crds(&self) {
        let cp = self.cp.as_ref().expect("a test that installs the CRDs runs on its own control plane");
        kubectl(cp, &["apply", "-f", &repo().join("deploy/crds").display().to_string()]);
        let groups: Api<autoscaler_api::NodeGroup> = Api::all(self.admin.clone());
        testenv::wait_for("CRDs established", Duration::from_secs(30), || {
            let groups = groups.clone();
            async move { Ok(groups.list(&Default::default()).await.map(|_| ()).map_err(|e| e.to_string())) }
        })
        .await
        .expect("CRDs");
    }

    /// Deletes the credentials Secret.
    pub async fn delete_secret(&self) {
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), "kube-system");
        secrets.delete("vpsie-secret", &DeleteParams::default()).await.expect("delete Secret");
    }

    /// Applies a NodeGroup of the simulator's catalog.
    pub async fn nodegroup(&self, name: &str, max: i32) {
        let ng: autoscaler_api::NodeGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": name},
            "spec": {"minNodes": 0, "maxNodes": max, "datacenterID": "dc-us-east-1",
                     "offeringIDs": ["sc-2cpu-4gb", "sc-4cpu-8gb"], "osImageID": "ubuntu-22.04-lts"}
        }))
        .expect("NodeGroup");
        let api: Api<autoscaler_api::NodeGroup> = Api::all(self.admin.clone());
        let pp = kube::api::PatchParams::apply("e2e-admin").force();
        api.patch(name, &pp, &kube::api::Patch::Apply(&ng)).await.expect("apply NodeGroup");
    }
}

/// The delete password the tests' Secret carries (checked against every captured output).
pub const DELETE_PASSWORD: &str = "del-pw-5c4b3a29";

/// The kubeadm bootstrap token of the join Secret (never to appear in any output).
pub const JOIN_TOKEN: &str = "j0in7k.5ecre7b00757rap";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// One operator process.
pub struct Operator {
    pub identity: String,
    pub child: Child,
    pub health: u16,
    pub metrics: u16,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub audit: PathBuf,
}

impl Operator {
    /// Starts the binary as `identity` under the ServiceAccount, with `extra` flags.
    pub fn start(env: &Env, identity: &str, extra: &[&str]) -> Operator {
        Self::start_with_env(env, identity, extra, &[])
    }

    /// Starts the binary as [`Operator::start`] does, with extra environment variables.
    pub fn start_with_env(env: &Env, identity: &str, extra: &[&str], vars: &[(&str, &str)]) -> Operator {
        let (health, metrics) = (free_port(), free_port());
        let stdout = env.dir.join(format!("{identity}.stdout"));
        let stderr = env.dir.join(format!("{identity}.stderr"));
        let audit = env.dir.join(format!("{identity}.audit"));
        let child = Command::new(env!("CARGO_BIN_EXE_vpsie-autoscaler"))
            .args(["--kubeconfig", &env.sa_kubeconfig.display().to_string()])
            .args(["--cluster-id", "e2e", "--identity", identity])
            .args(["--vpsie-base-url", &env.sim.base_url()])
            .args(["--health-addr", &format!("127.0.0.1:{health}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .args(["--audit-log", &audit.display().to_string()])
            .args(extra)
            .envs(vars.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(std::fs::File::create(&stdout).expect("stdout file")))
            .stderr(Stdio::from(std::fs::File::create(&stderr).expect("stderr file")))
            .spawn()
            .expect("operator starts");
        Operator { identity: identity.to_owned(), child, health, metrics, stdout, stderr, audit }
    }

    /// `GET path` on the health (`metrics: false`) or metrics port: status and body; status 0 when the
    /// connection fails.
    pub async fn get(&self, metrics: bool, path: &str) -> (u16, String) {
        let port = if metrics { self.metrics } else { self.health };
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return (0, String::new()) };
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            return (0, String::new());
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let start = Instant::now();
        loop {
            let (code, body) = self.get(false, "/readyz").await;
            if code == 200 {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{} not ready in {within:?}: {code} {body}\n{}",
                self.identity,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The value of an unlabelled gauge or counter in `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get(true, "/metrics").await;
        body.lines().find_map(|l| {
            l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
        })
    }

    /// Whether this replica says it leads.
    pub async fn is_leader(&self) -> bool {
        self.metric("vpsie_autoscaler_leader").await == Some(1.0)
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&self.stdout), read(&self.stderr))
    }

    /// Waits until the process exits at its crash point (`VPSIE_AUTOSCALER_FAILPOINT`).
    pub async fn wait_crash(&mut self, point: &str, within: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert_eq!(
                    status.code(),
                    Some(autoscaler_controller::failpoint::EXIT_CODE),
                    "{} exited otherwise than at {point}:\n{}",
                    self.identity,
                    self.output()
                );
                assert!(self.output().contains(&format!("crash point {point} reached")));
                return;
            }
            if start.elapsed() >= within {
                let state = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
                let state = state.lines().find(|l| l.starts_with("State:")).unwrap_or_default().to_owned();
                self.kill9();
                panic!(
                    "{} ({state}, {}) never reached {point}:\n{}",
                    self.identity,
                    self.stdout.display(),
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (or a kill after `within`).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after.get(n + 2..).unwrap_or_default();
    }
    out
}

/// Polls `check` every 100 ms until it holds (true) or `within` passes (false).
pub async fn holds_within<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms until it holds or `within` passes; returns the time it took.
pub async fn until<F, Fut>(what: &str, within: Duration, check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    assert!(holds_within(within, check).await, "{what}: not within {within:?}");
    start.elapsed()
}
