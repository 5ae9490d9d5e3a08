//! Upstream binaries, built once from pinned Go modules and cached in
//! `~/.cache/vpsie-autoscaler/bin/<kubernetes-version>/`.
//!
//! * kube-apiserver, kube-controller-manager, kube-scheduler and kubectl come from `k8s.io/kubernetes`.
//!   That module requires its staging modules at `v0.0.0` and resolves them with `replace => ./staging`, so
//!   `go install …@version` is refused; we build from a small wrapper module that pins every staging module
//!   to the matching `v0.<minor>.<patch>` with replace directives derived from the upstream `go.mod`.
//! * kwok from `sigs.k8s.io/kwok` (no replace directives, so `go install` works), plus the node and pod
//!   stage definitions from the same module (kwok v0.8 ships no built-in stages).
//! * etcd from the `etcd-bin-vendored-linux-amd64` crate: a release binary shipped inside a crates.io
//!   package, so no Go build of etcd's multi-module repository (which `go install` also refuses) is needed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The Kubernetes release built (set once in `.cargo/config.toml`, in step with the k8s-openapi feature).
pub const KUBERNETES_VERSION: &str = env!("VPSIE_K8S_VERSION");
/// The kwok release built.
pub const KWOK_VERSION: &str = "v0.8.0";

const K8S_COMMANDS: &[&str] = &["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"];
/// kwok stage files (paths inside the kwok module) for nodes without leases and fast pods.
const KWOK_STAGES: &[&str] = &[
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
];

/// Paths of every binary a control plane needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// kube-apiserver.
    pub kube_apiserver: PathBuf,
    /// kube-controller-manager.
    pub kube_controller_manager: PathBuf,
    /// kube-scheduler.
    pub kube_scheduler: PathBuf,
    /// kubectl (for people).
    pub kubectl: PathBuf,
    /// kwok.
    pub kwok: PathBuf,
    /// kwok stages, one multi-document YAML file.
    pub kwok_stages: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

/// `~/.cache/vpsie-autoscaler` (or `$VPSIE_AUTOSCALER_CACHE`).
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("VPSIE_AUTOSCALER_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("vpsie-autoscaler")
}

/// The directory of this version's binaries.
pub fn bin_dir() -> PathBuf {
    cache_root().join("bin").join(format!("k8s-{KUBERNETES_VERSION}-kwok-{KWOK_VERSION}"))
}

impl Binaries {
    fn at(dir: &Path) -> Result<Self> {
        let etcd = etcd_bin_vendored_linux_amd64::etcd_bin_path()
            .map_err(|e| Error::Build(format!("no vendored etcd: {e:?}")))?
            .to_path_buf();
        Ok(Self {
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            kube_scheduler: dir.join("kube-scheduler"),
            kubectl: dir.join("kubectl"),
            kwok: dir.join("kwok"),
            kwok_stages: dir.join("kwok-stages.yaml"),
            etcd,
        })
    }

    fn complete(&self) -> bool {
        [&self.kube_apiserver, &self.kube_controller_manager, &self.kube_scheduler, &self.kubectl, &self.kwok]
            .iter()
            .all(|p| p.is_file())
            && self.kwok_stages.is_file()
            && self.etcd.is_file()
    }
}

/// Returns the cached binaries, building what is missing. Safe to call from several processes at once:
/// a file lock serialises builders, and the second one finds the cache filled.
pub fn ensure() -> Result<Binaries> {
    let dir = bin_dir();
    let bins = Binaries::at(&dir)?;
    if bins.complete() {
        return Ok(bins);
    }
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(".build.lock");
    let lock = fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if bins.complete() {
        return Ok(bins);
    }
    let started = Instant::now();
    let work = cache_root().join("build").join(KUBERNETES_VERSION);
    fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    if !K8S_COMMANDS.iter().all(|c| dir.join(c).is_file()) {
        build_kubernetes(&work, &dir)?;
    }
    if !bins.kwok.is_file() || !bins.kwok_stages.is_file() {
        build_kwok(&dir)?;
    }
    eprintln!("[testenv] binaries ready in {} after {:.0}s", dir.display(), started.elapsed().as_secs_f64());
    let _ = lock.unlock();
    if bins.complete() { Ok(bins) } else { Err(Error::Build(format!("binaries missing in {}", dir.display()))) }
}

fn go() -> Result<Command> {
    let probe = Command::new("go").arg("version").output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            return Err(Error::Build(
                "Go is not on PATH; it is needed once to build the Kubernetes binaries (see README)".into(),
            ));
        }
    }
    let mut cmd = Command::new("go");
    // Never try to download another Go toolchain: the module proxy is all we can reach.
    cmd.env("GOTOOLCHAIN", "local").env("GOFLAGS", "-buildvcs=false -mod=mod");
    Ok(cmd)
}

/// Runs a long command, printing what it does and the elapsed time every 30 s.
fn run_with_progress(what: &str, mut cmd: Command) -> Result<()> {
    eprintln!("[testenv] {what} (first run only; about 5 minutes on 2 cores)");
    let started = Instant::now();
    let mut child =
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| Error::Build(format!("{what}: {e}")))?;
    let stderr = child.stderr.take();
    let collector = std::thread::spawn(move || {
        let mut buf = String::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_string(&mut s, &mut buf);
        }
        buf
    });
    let mut next_report = Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(Error::Build(format!("{what}: {e}"))),
        }
        if started.elapsed() >= next_report {
            eprintln!("[testenv]   … {what}: {}s", started.elapsed().as_secs());
            next_report += Duration::from_secs(30);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = collector.join().unwrap_or_default();
    if !status.success() {
        let tail: String =
            output.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(Error::Build(format!("{what} failed ({status}):\n{tail}")));
    }
    eprintln!("[testenv] {what}: done in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The directory of a downloaded module in the Go module cache.
fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let out = go()?
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .output()
        .map_err(|e| Error::Build(format!("go mod download {module}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Build(format!("go mod download {module}@{version}: {e}: {text}{}", String::from_utf8_lossy(&out.stderr)))
    })?;
    if let Some(err) = json.get("Error").and_then(|e| e.as_str()) {
        return Err(Error::Build(format!("go mod download {module}@{version}: {err}")));
    }
    json.get("Dir")
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| Error::Build(format!("go mod download {module}@{version}: no Dir in {text}")))
}

/// The wrapper module's go.mod: k8s.io/kubernetes plus a replace for each staging module it resolves
/// locally upstream.
fn wrapper_go_mod(upstream_go_mod: &str) -> String {
    let staging_version = KUBERNETES_VERSION.replacen('1', "0", 1);
    let mut out = format!(
        "module vpsie-autoscaler/k8s-binaries\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v{KUBERNETES_VERSION}\n\nreplace (\n"
    );
    for line in upstream_go_mod.lines() {
        if let Some((module, target)) = line.trim().split_once("=>")
            && target.trim().starts_with("./staging/src/")
        {
            let module = module.trim();
            out.push_str(&format!("\t{module} => {module} v{staging_version}\n"));
        }
    }
    out.push_str(")\n");
    out
}

fn build_kubernetes(work: &Path, dest: &Path) -> Result<()> {
    let upstream = module_dir("k8s.io/kubernetes", &format!("v{KUBERNETES_VERSION}"))?;
    let go_mod_path = upstream.join("go.mod");
    let upstream_go_mod = fs::read_to_string(&go_mod_path).map_err(|e| Error::io(&go_mod_path, e))?;
    let write = |name: &str, text: String| {
        let p = work.join(name);
        fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    write("go.mod", wrapper_go_mod(&upstream_go_mod))?;
    let imports: String = K8S_COMMANDS.iter().map(|c| format!("\t_ \"k8s.io/kubernetes/cmd/{c}\"\n")).collect();
    write("tools.go", format!("//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"))?;
    let mut tidy = go()?;
    tidy.current_dir(work).args(["mod", "tidy"]);
    run_with_progress("resolving Kubernetes Go modules", tidy)?;

    let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap_or("0");
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion=v{KUBERNETES_VERSION} \
         -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor={minor}"
    );
    let staging = work.join("out");
    fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let mut build = go()?;
    build
        .current_dir(work)
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(format!("{}/", staging.display()));
    for c in K8S_COMMANDS {
        build.arg(format!("k8s.io/kubernetes/cmd/{c}"));
    }
    run_with_progress(&format!("building {} v{KUBERNETES_VERSION}", K8S_COMMANDS.join(", ")), build)?;
    for c in K8S_COMMANDS {
        let (from, to) = (staging.join(c), dest.join(c));
        fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}

fn build_kwok(dest: &Path) -> Result<()> {
    let staging = dest.join(".kwok-build");
    fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let mut install = go()?;
    install.env("GOBIN", &staging).args([
        "install",
        "-trimpath",
        "-ldflags",
        "-s -w",
        &format!("sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"),
    ]);
    run_with_progress(&format!("building kwok {KWOK_VERSION}"), install)?;
    let module = module_dir("sigs.k8s.io/kwok", KWOK_VERSION)?;
    let mut stages = String::new();
    for rel in KWOK_STAGES {
        let p = module.join(rel);
        let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        stages.push_str("---\n");
        stages.push_str(&text);
        if !text.ends_with('\n') {
            stages.push('\n');
        }
    }
    let stages_path = dest.join("kwok-stages.yaml");
    fs::write(&stages_path, stages).map_err(|e| Error::io(&stages_path, e))?;
    let to = dest.join("kwok");
    fs::rename(staging.join("kwok"), &to).map_err(|e| Error::io(&to, e))?;
    let _ = fs::remove_dir_all(&staging);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_pins_every_staging_module_to_the_matching_minor() {
        let upstream = "replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl\n\tgithub.com/x/y => github.com/x/y v1.0.0\n)\n";
        let m = wrapper_go_mod(upstream);
        let staging = KUBERNETES_VERSION.replacen('1', "0", 1);
        assert!(m.contains(&format!("k8s.io/api => k8s.io/api v{staging}")));
        assert!(m.contains(&format!("k8s.io/kubectl => k8s.io/kubectl v{staging}")));
        assert!(!m.contains("github.com/x/y"));
        assert!(m.contains(&format!("require k8s.io/kubernetes v{KUBERNETES_VERSION}")));
    }

    #[test]
    fn kubernetes_version_matches_the_k8s_openapi_feature() {
        let openapi = env!("K8S_OPENAPI_ENABLED_VERSION");
        assert!(KUBERNETES_VERSION.starts_with(&format!("{openapi}.")), "{KUBERNETES_VERSION} vs {openapi}");
    }
}
