//! The whole system on this machine, as the demo (and later harness commands) run it: the local control
//! plane with every component, vpsie-sim whose booted VMs join the cluster as kwok Nodes, the CRDs and the
//! RBAC of `deploy/`, the credentials and join Secrets, and the operator binary as its own process under its
//! ServiceAccount's token — as in production, not with the admin kubeconfig.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use vpsie_sim::{SimConfig, SimHandle};

/// The VPSie token the credentials Secret carries and the simulator accepts.
const TOKEN: &str = "demo-token";
/// The account password VM deletes send.
const DELETE_PASSWORD: &str = "demo-delete-password";
/// VPSie's VM endpoint: `POST` creates, `DELETE` (also under it) deletes.
const VM_PATH: &str = "/apps/v2/vm";

/// A kind of VM call in the simulator's request log.
pub(crate) enum VmCall {
    /// `POST /apps/v2/vm`.
    Create,
    /// `DELETE /apps/v2/vm...`.
    Delete,
}

/// The field manager of everything the harness applies.
pub(crate) const MANAGER: &str = "xtask";

/// How the simulated cloud behaves.
pub(crate) struct CloudTiming {
    /// From create request to an active VM.
    pub(crate) boot: Duration,
    /// From an active VM to its Node registering.
    pub(crate) join: Duration,
}

/// A running control plane, simulator and the operator's credentials. Dropping it stops every process.
pub(crate) struct Stack {
    /// The control plane (dropping it stops etcd, the apiserver and the rest).
    pub(crate) cp: testenv::ControlPlane,
    /// The simulated VPSie API.
    pub(crate) sim: SimHandle,
    /// An admin client (for the harness, never for the operator).
    pub(crate) admin: Client,
    /// A kubeconfig holding the operator ServiceAccount's token.
    pub(crate) sa_kubeconfig: PathBuf,
    /// Where the operator's log, audit log and kubeconfig go.
    pub(crate) dir: PathBuf,
}

impl Stack {
    /// Starts the control plane (building its binaries on first use) and the simulator, and installs
    /// what the operator needs. The operator's files go to `dir` (emptied first), which outlives the run.
    pub(crate) async fn start(timing: &CloudTiming, dir: PathBuf) -> anyhow::Result<Stack> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cp = testenv::ControlPlane::builder().start().await.context("starting the local control plane")?;
        let admin = cp.client().await.context("admin client")?;
        let sim = SimHandle::start(SimConfig {
            access_tokens: vec![TOKEN.to_owned()],
            account_password: DELETE_PASSWORD.to_owned(),
            boot_delay: timing.boot,
            ..SimConfig::default()
        })
        .await
        .context("starting vpsie-sim")?;
        sim.update_settings(|s| s.join_delay_ms = u64::try_from(timing.join.as_millis()).unwrap_or(u64::MAX));
        sim.join_cluster(admin.clone());
        let stack = Stack { sa_kubeconfig: dir.join("operator.kubeconfig"), cp, sim, admin, dir };
        stack.install().await?;
        Ok(stack)
    }

    /// The VM creates or deletes the simulator carried out (2xx), from its own request log.
    pub(crate) fn vm_calls(&self, call: VmCall) -> Vec<vpsie_sim::LoggedRequest> {
        let (method, exact) = match call {
            VmCall::Create => ("POST", true),
            VmCall::Delete => ("DELETE", false),
        };
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.method == method && (200..300).contains(&r.status))
            .filter(|r| if exact { r.path == VM_PATH } else { r.path.starts_with(VM_PATH) })
            .collect()
    }

    /// Runs kubectl with the admin kubeconfig; fails with its stderr.
    pub(crate) fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.cp.binaries().kubectl)
            .args(args)
            .env("KUBECONFIG", self.cp.kubeconfig_path())
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn install(&self) -> anyhow::Result<()> {
        let deploy = crate::ci::root().join("deploy");
        self.kubectl(&["apply", "-f", &deploy.join("crds").display().to_string()])?;
        self.kubectl(&["apply", "-f", &deploy.join("rbac").display().to_string()])?;
        let groups: Api<autoscaler_api::NodeGroup> = Api::all(self.admin.clone());
        testenv::wait_for("the CRDs to serve", Duration::from_secs(30), || {
            let groups = groups.clone();
            async move { Ok(groups.list(&Default::default()).await.map(|_| ()).map_err(|e| e.to_string())) }
        })
        .await?;
        self.put_secret("vpsie-secret", &[("token", TOKEN), ("deletePassword", DELETE_PASSWORD)]).await?;
        // What cloud-init needs to join a kubeadm cluster; the simulated VMs join as kwok Nodes instead.
        self.put_secret(
            "vpsie-join",
            &[("apiServerEndpoint", "10.0.0.1:6443"), ("token", "demo00.0000000000000000"), ("caCertHash", "sha256:0")],
        )
        .await?;
        self.write_sa_kubeconfig().await
    }

    async fn put_secret(&self, name: &str, data: &[(&str, &str)]) -> anyhow::Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), "kube-system");
        let secret = Secret {
            metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
            string_data: Some(data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..Default::default()
        };
        secrets
            .patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&secret))
            .await
            .with_context(|| format!("creating Secret kube-system/{name}"))?;
        Ok(())
    }

    /// The operator runs with its ServiceAccount's token, so the apiserver enforces `deploy/rbac/`.
    async fn write_sa_kubeconfig(&self) -> anyhow::Result<()> {
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), "kube-system");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec { expiration_seconds: Some(24 * 3600), ..Default::default() }),
            ..Default::default()
        };
        let issued = sas
            .create_token_request("vpsie-autoscaler", &PostParams::default(), &request)
            .await
            .context("a token for ServiceAccount kube-system/vpsie-autoscaler")?;
        let token = issued.status.and_then(|s| s.token).context("the TokenRequest returned no token")?;
        let mut kc = kube::config::Kubeconfig::read_from(self.cp.kubeconfig_path()).context("admin kubeconfig")?;
        for a in &mut kc.auth_infos {
            if let Some(info) = a.auth_info.as_mut() {
                *info = kube::config::AuthInfo { token: Some(token.clone().into()), ..Default::default() };
            }
        }
        std::fs::write(&self.sa_kubeconfig, serde_json::to_vec(&kc)?)
            .with_context(|| format!("writing {}", self.sa_kubeconfig.display()))?;
        Ok(())
    }
}

/// The operator binary running as a process. Dropping it kills the process.
pub(crate) struct OperatorProcess {
    child: Child,
    health_port: u16,
    /// Where its logs go (text format).
    pub(crate) log: PathBuf,
    /// Its audit log.
    pub(crate) audit: PathBuf,
    /// Its metrics port.
    pub(crate) metrics_port: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl OperatorProcess {
    /// Starts `binary` against the stack under the ServiceAccount, with `extra` flags; logs to
    /// `operator.log`.
    pub(crate) fn start(stack: &Stack, binary: &Path, extra: &[&str]) -> anyhow::Result<OperatorProcess> {
        Self::start_as(stack, binary, "vpsie-autoscaler-0", "operator", extra)
    }

    /// Starts a replica named `identity` whose log (appended to, so restarts add up) is `<file>.log` and
    /// audit log `<file>.audit.jsonl`.
    pub(crate) fn start_as(
        stack: &Stack,
        binary: &Path,
        identity: &str,
        file: &str,
        extra: &[&str],
    ) -> anyhow::Result<OperatorProcess> {
        let (health_port, metrics_port) = (free_port()?, free_port()?);
        let log = stack.dir.join(format!("{file}.log"));
        let audit = stack.dir.join(format!("{file}.audit.jsonl"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(binary)
            .args(["--kubeconfig", &stack.sa_kubeconfig.display().to_string()])
            .args(["--cluster-id", "demo", "--identity", identity])
            .args(["--vpsie-base-url", &stack.sim.base_url()])
            .args(["--health-addr", &format!("127.0.0.1:{health_port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--audit-log", &audit.display().to_string(), "--log-format", "text"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(OperatorProcess { child, health_port, log, audit, metrics_port })
    }

    /// Waits until `/readyz` answers 200; fails early when the process exits.
    pub(crate) async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the operator exited ({status}); its log: {}", self.log.display());
            }
            if http_get(self.health_port, "/readyz").await.is_some_and(|r| r.status == 200) {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!("the operator was not ready within {within:?}; its log: {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the operator has loaded the VPSie catalog (`vpsie_autoscaler_catalog_offerings` > 0);
    /// fails after `within` or when the process exits.
    pub(crate) async fn wait_catalog(&mut self, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.metric("vpsie_autoscaler_catalog_offerings").await.unwrap_or(0.0) <= 0.0 {
            self.check_alive()?;
            if started.elapsed() > within {
                bail!("the operator did not load the VPSie catalog within {within:?}; its log: {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The value of an unlabelled metric in `/metrics`, if exposed.
    pub(crate) async fn metric(&self, name: &str) -> Option<f64> {
        let answer = http_get(self.metrics_port, "/metrics").await?;
        answer.body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Fails when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("the operator exited ({status}); its log: {}", self.log.display()),
            None => Ok(()),
        }
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether `/metrics` says this replica leads.
    pub(crate) async fn leads(&self) -> bool {
        self.metric("vpsie_autoscaler_leader").await == Some(1.0)
    }

    /// SIGTERM and a wait for a clean exit (it releases its Lease), then SIGKILL if it lingers.
    pub(crate) fn stop(&mut self, within: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// An HTTP answer of one of the operator's ports.
pub(crate) struct HttpAnswer {
    /// Status code.
    pub(crate) status: u16,
    /// Body (not de-chunked: read values line by line).
    pub(crate) body: String,
}

/// `GET path` on a loopback port; `None` when the connection fails.
pub(crate) async fn http_get(port: u16, path: &str) -> Option<HttpAnswer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok())?;
    Some(HttpAnswer { status, body: body.to_owned() })
}
