//! `cargo xtask memory [--nodes N] [--pods N]`: the operator's resident memory on a large cluster.
//!
//! Fills a real local control plane with kwok nodes and pods bound to them (created in parallel batches),
//! then starts the release operator binary against it, waits until `/readyz` says every cache has synced, and
//! prints the peak resident set size (`VmHWM` from `/proc/<pid>/status`) and the current one. The figures
//! are also written to `target/bench/memory.json`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::PostParams;
use kube::{Api, Client};

/// Nodes created per request batch and pods created at once.
const PARALLEL: usize = 48;

fn pod(i: usize, node: &str) -> anyhow::Result<Pod> {
    // A Deployment-made pod of a typical size (~2.5 KB as JSON): two containers with env, ports, probes'
    // worth of detail, volume mounts, a projected token volume, an owner.
    let app = format!("svc-{}", i % 150);
    let env: Vec<serde_json::Value> = (0..10)
        .map(|k| serde_json::json!({"name": format!("SETTING_{k}"), "value": format!("value-{k}-{app}")}))
        .collect();
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("{app}-{i:06}"), "namespace": "load",
            "labels": {"app": app, "tier": if i.is_multiple_of(3) { "backend" } else { "frontend" }, "pod-template-hash": "7d9f8c6b5"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5"),
                                 "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]
        },
        "spec": {
            "nodeName": node, "serviceAccountName": "default",
            "containers": [
                {"name": "app", "image": format!("registry.example.com/{app}:1.2.3"), "command": ["/bin/server", "--port=8080"],
                 "env": env, "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "token", "mountPath": "/var/run/secrets/tokens"}]},
                {"name": "sidecar", "image": "registry.example.com/proxy:2.0", "args": ["--upstream=127.0.0.1:8080"],
                 "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}}}
            ],
            "volumes": [{"name": "config", "configMap": {"name": format!("{app}-config")}},
                        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    }))?)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

async fn ready(port: u16) -> bool {
    crate::stack::http_get(port, "/readyz").await.is_some_and(|a| a.status == 200)
}

fn progress(label: &str, done: usize, total: usize, started: Instant) {
    print!("\r  {label}: {done}/{total} ({:.0}s)", started.elapsed().as_secs_f64());
    let _ = std::io::stdout().flush();
}

/// Runs `creates` [`PARALLEL`] at a time, printing progress about every 2% of `total`.
async fn create_all<F>(
    label: &str,
    creates: impl Iterator<Item = F>,
    total: usize,
    started: Instant,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = kube::Result<()>>,
{
    let every = (total / 50).max(1);
    let mut done: usize = 0;
    let mut stream = futures::stream::iter(creates).buffer_unordered(PARALLEL);
    while stream.try_next().await?.is_some() {
        done += 1;
        if done.is_multiple_of(every) || done == total {
            progress(label, done, total, started);
        }
    }
    println!();
    Ok(())
}

pub(crate) async fn run(nodes: usize, pods: usize) -> anyhow::Result<()> {
    if nodes == 0 {
        bail!("--nodes must be at least 1 (the pods are bound to them)");
    }
    let binary = crate::ci::build_release_operator()?;
    println!("==> starting a local control plane (etcd, apiserver, kwok)");
    let cp = testenv::ControlPlane::builder().without_scheduler().without_controller_manager().start().await?;
    let client: Client = cp.client().await?;
    let kubectl = |args: &[&str]| {
        Command::new(&cp.binaries().kubectl).args(args).env("KUBECONFIG", cp.kubeconfig_path()).output()
    };
    kubectl(&["apply", "-f", &crate::ci::root().join("deploy/crds").display().to_string()]).context("kubectl")?;
    kubectl(&["create", "namespace", "load"]).context("kubectl")?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vpsie-secret"}, "stringData": {"token": "memory-bench"}
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;

    println!("==> creating {nodes} kwok nodes and {pods} pods");
    let started = Instant::now();
    let node_api: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = (0..nodes).map(|i| format!("kwok-node-{i:05}")).collect();
    let node_creates = names.iter().map(|n| {
        let api = node_api.clone();
        let node =
            testenv::KwokNode::new(n.clone(), "32", "128Gi").label("autoscaler.vpsie.com/nodegroup", "load").to_node();
        async move { api.create(&PostParams::default(), &node).await.map(|_| ()) }
    });
    create_all("nodes", node_creates, nodes, started).await?;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "load");
    let specs: Vec<Pod> = (0..pods).map(|i| pod(i, &names[i % nodes])).collect::<anyhow::Result<_>>()?;
    let pod_creates = specs.into_iter().map(|p| {
        let api = pod_api.clone();
        async move { api.create(&PostParams::default(), &p).await.map(|_| ()) }
    });
    create_all("pods", pod_creates, pods, started).await?;
    let fill = started.elapsed();
    println!("  filled in {:.0}s", fill.as_secs_f64());
    // Measure a settled cluster: wait until kwok has marked every pod Running (as a real cluster's kubelets
    // would have), so the operator's start-up is not also absorbing kwok's first status pass.
    let not_running = kube::api::ListParams::default().fields("status.phase!=Running").limit(1);
    let settle = Instant::now();
    loop {
        let left = pod_api.list_metadata(&not_running).await?;
        let remaining = left.metadata.remaining_item_count.unwrap_or(0) + left.items.len() as i64;
        print!("\r  pods not Running yet: {remaining}      ");
        let _ = std::io::stdout().flush();
        if remaining == 0 || settle.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!("\n  settled in {:.0}s", settle.elapsed().as_secs_f64());

    println!("==> starting the operator and waiting for its caches");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = cp.dir().join("operator-memory.log");
    // MEMORY_WRAPPER="valgrind --tool=massif" runs the operator under a profiler (figures then are the
    // profiler's; for finding where the memory goes, not for the record).
    let wrapper: Vec<String> =
        std::env::var("MEMORY_WRAPPER").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    let mut child = command
        .args(["--kubeconfig", &cp.kubeconfig_path().display().to_string(), "--cluster-id", "memory"])
        .args(["--vpsie-base-url", "http://127.0.0.1:9", "--leader-elect=false"])
        .args(["--health-addr", &format!("127.0.0.1:{port}"), "--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(std::fs::File::create(&log)?))
        .stderr(Stdio::null())
        .spawn()
        .context("starting the operator")?;
    let pid = child.id();
    let launched = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while !ready(port).await {
        samples.push((launched.elapsed().as_secs_f64(), status_kib(pid, "VmRSS:").unwrap_or(0)));
        if launched.elapsed() > Duration::from_secs(600) || child.try_wait()?.is_some() {
            let _ = child.kill();
            bail!("the operator did not become ready; log: {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let synced = launched.elapsed();
    // Let the first state-gauge pass and a catalog attempt run, then read the figures.
    for _ in 0..50 {
        samples.push((launched.elapsed().as_secs_f64(), status_kib(pid, "VmRSS:").unwrap_or(0)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if std::env::var_os("MEMORY_TRACE").is_some() {
        for (t, kib) in &samples {
            println!("  t={t:.1}s rss={:.1} MiB", *kib as f64 / 1024.0);
        }
    }
    let peak = status_kib(pid, "VmHWM:").context("reading VmHWM")?;
    let now = status_kib(pid, "VmRSS:").context("reading VmRSS")?;
    let anon = status_kib(pid, "RssAnon:").unwrap_or(0);
    let file = status_kib(pid, "RssFile:").unwrap_or(0);
    let threads = status_kib(pid, "Threads:").unwrap_or(0);
    // SIGTERM: the operator shuts down cleanly (and a profiler wrapper writes its report).
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let stopping = Instant::now();
    while child.try_wait()?.is_none() && stopping.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!("| Figure | vpsie-autoscaler | Anchor |");
    println!("|---|---|---|");
    println!(
        "| peak RSS, {nodes} nodes / {pods} pods | {:.1} MiB | Karpenter's suite: < 260 MB at 1,000 pods |",
        mib(peak)
    );
    println!(
        "| RSS after sync | {:.1} MiB ({:.1} anonymous, {:.1} file-backed; {threads} threads) | |",
        mib(now),
        mib(anon),
        mib(file)
    );
    println!("| cache sync from start | {:.1} s | |", synced.as_secs_f64());
    let out = crate::ci::target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    let json = serde_json::json!({
        "nodes": nodes, "pods": pods, "peak_rss_mib": mib(peak), "rss_after_sync_mib": mib(now), "rss_anon_mib": mib(anon), "rss_file_mib": mib(file),
        "cache_sync_seconds": synced.as_secs_f64(), "fill_seconds": fill.as_secs_f64(),
        "date": crate::ci::today(), "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
    });
    std::fs::write(out.join("memory.json"), serde_json::to_string_pretty(&json)?)?;
    println!("written to target/bench/memory.json");
    Ok(())
}
