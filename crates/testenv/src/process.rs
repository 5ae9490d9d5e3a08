//! Child processes of a control plane: each under its supervisor loop ([`crate::supervisor`]), logs to
//! files, one process group, and a watchdog that stops the group when the owning process dies (a shared
//! instance lives in a `static`, which is never dropped).

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::{Error, Result};
use crate::supervisor::{Component, Files, wrapper_args};

/// A running component: its supervisor loop (the child we hold) and the files it writes.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) component: Component,
    /// The supervisor loop; the component itself is its child.
    pub(crate) supervisor: Child,
    pub(crate) files: Files,
}

impl Proc {
    /// Starts `bin` with `args` under a supervisor loop, output to `<dir>/<name>.log`, in process group
    /// `group` (0: a new group led by the supervisor).
    pub(crate) fn spawn(
        component: Component,
        bin: &Path,
        args: &[String],
        dir: &Path,
        group: u32,
        env: &[(&str, &Path)],
    ) -> Result<Self> {
        let files = Files::new(dir, component);
        File::create(&files.log).map_err(|e| Error::io(&files.log, e))?;
        let mut cmd = Command::new("sh");
        cmd.args(wrapper_args(component, &files, bin, args))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group as i32);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let supervisor = cmd.spawn().map_err(|e| Error::io(bin, e))?;
        tracing::debug!(component = component.name(), supervisor = supervisor.id(), "started");
        Ok(Self { component, supervisor, files })
    }

    /// Whether the component (or its supervisor) has exited at least once, and how. Used while the
    /// control plane starts: an exit then is a failure to start, not a crash to restart.
    pub(crate) fn exited(&mut self) -> Option<String> {
        if let Some(exit) = self.files.exits().first() {
            return Some(format!("exit status {} after {}s", exit.status, exit.ran_seconds));
        }
        match self.supervisor.try_wait() {
            Ok(Some(status)) => Some(format!("supervisor {status}")),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// The last `n` lines of its log.
    pub(crate) fn tail(&self, n: usize) -> String {
        tail(&self.files.log, n)
    }

    pub(crate) fn failure(&self, problem: String) -> Error {
        Error::Component {
            component: self.component.name(),
            problem,
            log: self.files.log.display().to_string(),
            tail: self.tail(40),
        }
    }

    /// Reaps the supervisor once its group was killed.
    pub(crate) fn reap(&mut self) {
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

/// The last `n` lines of a file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Starts a shell watchdog that, once process `owner` is gone, stops process group `group` and removes
/// `dir`. It lives in its own group so stopping the control plane's group does not stop it first.
pub(crate) fn watchdog(owner: u32, group: u32, dir: &Path) -> Result<Child> {
    // dash's `kill` takes no `--`; a negative number after the signal is a process group.
    let script = r#"while kill -0 "$0" 2>/dev/null; do sleep 1; done
kill -TERM "-$1" 2>/dev/null; sleep 2; kill -KILL "-$1" 2>/dev/null; rm -rf "$2""#;
    Command::new("sh")
        .args(["-c", script, &owner.to_string(), &group.to_string()])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(Path::new("sh"), e))
}

pub(crate) fn signal_group(signal: &str, group: u32) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether any process of `group` is still running. Zombies do not count: processes orphaned by a
/// detached `cluster up` are reparented to PID 1, which on some machines never reaps them, and
/// `kill -0` succeeds on a zombie.
pub fn group_alive(group: u32) -> bool {
    let Ok(out) = Command::new("ps").args(["-eo", "pgid=,stat="]).output() else {
        return signal_group("-0", group);
    };
    String::from_utf8_lossy(&out.stdout).lines().any(|line| {
        let mut cols = line.split_whitespace();
        cols.next().and_then(|g| g.parse::<u32>().ok()) == Some(group) && !cols.next().unwrap_or("Z").starts_with('Z')
    })
}

/// Stops every process of a group: SIGTERM, then SIGKILL for whatever is left after `grace`
/// (used by `cargo xtask cluster down`). Returns whether the group is gone.
pub fn kill_group(group: u32, grace: std::time::Duration) -> bool {
    signal_group("-TERM", group);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if !group_alive(group) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    signal_group("-KILL", group);
    std::thread::sleep(std::time::Duration::from_millis(200));
    !group_alive(group)
}

/// A free TCP port on 127.0.0.1 (bind to 0, read, release).
pub(crate) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?;
    l.local_addr().map(|a| a.port()).map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))
}

/// A plain-HTTP GET on loopback (etcd and kwok health endpoints); the status code, or `None`.
pub(crate) async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1)?.parse().ok()
}
