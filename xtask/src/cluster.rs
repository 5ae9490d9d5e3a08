//! `cargo xtask cluster up|down|status|kubeconfig|build|freeze|resume|kill`: the tests' control plane, left
//! running for people. Each component runs under its supervisor, which restarts what exits (see
//! `testenv::supervisor`), also after this command returned.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use testenv::ControlPlane;

fn dir() -> PathBuf {
    testenv::binaries::cache_root().join("cluster")
}

fn state_file() -> PathBuf {
    dir().join("state.json")
}

fn read_state() -> anyhow::Result<Option<serde_json::Value>> {
    match std::fs::read_to_string(state_file()) {
        Ok(t) => Ok(Some(serde_json::from_str(&t).context("reading cluster state")?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading cluster state"),
    }
}

fn group_alive(group: u64) -> bool {
    u32::try_from(group).is_ok_and(testenv::group_alive)
}

pub(crate) fn build() -> anyhow::Result<()> {
    let started = Instant::now();
    let bins = testenv::binaries::ensure()?;
    println!(
        "binaries in {} ({:.0}s)",
        bins.kube_apiserver.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) async fn up() -> anyhow::Result<()> {
    if let Some(s) = read_state()?
        && s["group"].as_u64().is_some_and(group_alive)
    {
        println!("already running; kubeconfig: {}", s["kubeconfig"].as_str().unwrap_or_default());
        return Ok(());
    }
    let started = Instant::now();
    let cp = ControlPlane::builder().persistent(dir().join("instance")).start().await?;
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    let state = serde_json::json!({
        "group": cp.process_group(),
        "kubeconfig": kubeconfig,
        "server": cp.server(),
        "dir": cp.dir(),
        "kubectl": cp.binaries().kubectl,
    });
    std::fs::write(state_file(), serde_json::to_string_pretty(&state)?).context("writing cluster state")?;
    println!("control plane up in {:.1}s at {}", started.elapsed().as_secs_f64(), cp.server());
    println!("export KUBECONFIG={kubeconfig}");
    println!("kubectl: {}", cp.binaries().kubectl.display());
    cp.detach();
    Ok(())
}

pub(crate) fn down() -> anyhow::Result<()> {
    let Some(s) = read_state()? else {
        println!("no cluster is running");
        return Ok(());
    };
    if let Some(group) = s["group"].as_u64().and_then(|g| u32::try_from(g).ok())
        && !testenv::kill_group(group, std::time::Duration::from_secs(5))
    {
        bail!("processes of group {group} did not stop");
    }
    let _ = std::fs::remove_file(state_file());
    if let Some(d) = s["dir"].as_str() {
        let _ = std::fs::remove_dir_all(d);
    }
    println!("stopped");
    Ok(())
}

pub(crate) async fn status() -> anyhow::Result<()> {
    let Some(s) = read_state()? else {
        bail!("no cluster is running (cargo xtask cluster up)");
    };
    let alive = s["group"].as_u64().is_some_and(group_alive);
    let path = PathBuf::from(s["kubeconfig"].as_str().unwrap_or_default());
    let ready = if alive {
        let client = testenv::client_from_kubeconfig(&path).await?;
        let req = http::Request::get("/readyz").body(Vec::new())?;
        client.request_text(req).await.map(|t| t.trim() == "ok").unwrap_or(false)
    } else {
        false
    };
    println!(
        "processes: {}; apiserver ready: {ready}; server: {}",
        if alive { "running" } else { "gone" },
        s["server"].as_str().unwrap_or_default()
    );
    println!("kubeconfig: {}", path.display());
    if let Some(d) = s["dir"].as_str() {
        for c in testenv::Component::ALL {
            let Some(pid) = testenv::supervisor::current_pid(Path::new(d), c) else { continue };
            let exits = testenv::supervisor::recorded_exits(Path::new(d), c);
            let last = exits.last().map(|e| format!(", last exit status {} after {}s", e.status, e.ran_seconds));
            println!("  {c}: pid {pid}, restarted {} time(s){}", exits.len(), last.unwrap_or_default());
        }
    }
    if !ready {
        bail!("the cluster is not ready");
    }
    Ok(())
}

/// Sends `signal` to one component of the running cluster (its supervisor restarts a killed one).
pub(crate) fn signal(component: &str, signal: testenv::Signal) -> anyhow::Result<()> {
    let Some(s) = read_state()? else {
        bail!("no cluster is running (cargo xtask cluster up)");
    };
    let Some(c) = testenv::Component::parse(component) else {
        let names: Vec<&str> = testenv::Component::ALL.iter().map(|c| c.name()).collect();
        bail!("unknown component '{component}'; one of: {}", names.join(", "));
    };
    let dir = s["dir"].as_str().context("cluster state has no dir")?;
    let pid = testenv::supervisor::send(Path::new(dir), c, signal)?;
    println!("SIG{} sent to {c} (pid {pid})", signal.name());
    Ok(())
}

pub(crate) fn kubeconfig() -> anyhow::Result<()> {
    let Some(s) = read_state()? else {
        bail!("no cluster is running (cargo xtask cluster up)");
    };
    println!("{}", s["kubeconfig"].as_str().unwrap_or_default());
    Ok(())
}
