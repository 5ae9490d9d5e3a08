//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// The Kubernetes minor the binaries enable in k8s-openapi; clippy and docs over the whole workspace
/// need it in the environment.
pub(crate) const K8S_OPENAPI_VERSION: &str = "1.36";

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// Where cargo puts what it builds (`CARGO_TARGET_DIR` or `target/`).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Today's date (UTC, `YYYY-MM-DD`) for recorded figures.
pub(crate) fn today() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

/// Builds the release operator binary (what `bench`, `chaos` and `memory` measure) and returns its path.
pub(crate) fn build_release_operator() -> anyhow::Result<PathBuf> {
    println!("==> building the operator (release)");
    let status = cargo().args(["build", "--release", "--locked", "-p", "vpsie-autoscaler"]).status();
    if !status.context("cargo build")?.success() {
        print_free_disk();
        bail!("building the operator failed");
    }
    Ok(target_dir().join("release/vpsie-autoscaler"))
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root()).env("K8S_OPENAPI_ENABLED_VERSION", K8S_OPENAPI_VERSION);
    // `cargo run` hands xtask its own package's variables (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...); a
    // build script among our dependencies tracks them, so a nested build that inherits them rebuilds kube
    // and its dependencies, and the next plain build rebuilds them back.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            c.env_remove(name.as_ref());
        }
    }
    c
}

fn step(name: &str, mut cmd: Command) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("==> {name}");
    let status = cmd.status().with_context(|| format!("starting {name}"))?;
    println!(
        "<== {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        print_free_disk();
        bail!("{name} failed ({status})");
    }
    Ok(())
}

/// Prints the free space where cargo builds: a build or link that fails for no reason shown is most often
/// a full disk, and the log should say so.
pub(crate) fn print_free_disk() {
    let out =
        Command::new("df").args(["-h", "--output=avail,size"]).arg(target_dir().parent().unwrap_or(&root())).output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().nth(1) {
            println!("    disk where cargo builds: {} free", line.split_whitespace().collect::<Vec<_>>().join(" of "));
        }
    }
}

pub(crate) fn run(deny: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    step("cargo fmt --check", fmt)?;

    println!("==> crdgen --check");
    crate::crdgen::run(true)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    step("cargo clippy -D warnings", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    step("cargo test --workspace", test)?;

    let mut doc = cargo();
    doc.args(["doc", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings");
    for lib in [
        "vpsie-client",
        "vpsie-sim",
        "autoscaler-api",
        "autoscaler-drain",
        "autoscaler-decision",
        "decision-lab",
        "autoscaler-controller",
    ] {
        doc.args(["-p", lib]);
    }
    step("cargo doc (no warnings)", doc)?;

    println!("==> vpsie-client example against vpsie-sim");
    example()?;

    // The README's first command, end to end: the whole system scales a workload up and down.
    let mut demo = cargo();
    demo.args(["run", "--quiet", "--locked", "-p", "xtask", "--", "demo"]);
    step("cargo xtask demo (scale-up then scale-down)", demo)?;

    if deny {
        let mut d = cargo();
        d.args(["deny", "--locked", "check", "bans", "licenses", "sources"]);
        step("cargo deny check bans licenses sources", d)?;
    }
    println!("ci: all checks passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Kills the simulator when the example is done or fails.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn example() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--locked", "-p", "vpsie-sim", "-p", "vpsie-client", "--example", "quickstart", "--bins"]);
    step("build simulator and example", build)?;
    let target = root().join("target/debug");
    let mut sim = Reap(
        Command::new(target.join("vpsie-sim"))
            .args(["--port", "0", "--boot-delay-ms", "300"])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting vpsie-sim")?,
    );
    let stdout = sim.0.stdout.take().context("simulator stdout")?;
    let mut base = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("vpsie-sim listening on ") {
            base = Some(url.trim().to_owned());
            break;
        }
    }
    let base = base.context("the simulator did not print its address")?;
    let mut ex = Command::new(target.join("examples/quickstart"));
    ex.env("VPSIE_BASE_URL", &base).env("VPSIE_TOKEN", "sim-token").env("VPSIE_DELETE_PASSWORD", "sim-password");
    step("quickstart example", ex)
}
