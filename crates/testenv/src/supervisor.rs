//! Each component runs under a small supervisor, as a kubelet runs static pods: a component that exits
//! while the control plane is meant to run is started again with the same flags after a backoff.
//!
//! The supervisor is a POSIX shell loop rather than a thread of the test process because a detached
//! control plane (`cargo xtask cluster up`) outlives the process that started it: the loop lives in the
//! control plane's process group and dies with it (drop, watchdog, `cluster down`). It writes the current
//! pid of its component to `<name>.pid` (for [`crate::ControlPlane::freeze`] and friends) and one line per
//! start and exit to `<name>.supervisor.log`, beside the component's own `<name>.log`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The first delay before restarting a component that exited (the kubelet's CrashLoopBackOff start).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
/// The longest delay; each exit doubles the last one up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A run at least this long resets the delay to [`INITIAL_BACKOFF`] (the kubelet resets after twice the
/// longest delay without a crash).
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// The loop. Arguments: `$0` component name, `$1` its log, `$2` the pid file, `$3` the supervisor log,
/// `$4`-`$6` the backoff (initial, max, reset, in seconds), then the command and its arguments. The pid
/// file is replaced whole (written aside, then renamed) and removed when the run ends, so a reader never
/// sees half a pid and never signals a pid that exited (and may be reused) during the backoff. `wait`
/// in a non-interactive dash or bash returns only when the child terminates, not when it is stopped
/// (SIGSTOP), so a frozen component is not mistaken for an exited one. SIGTERM or SIGKILL to the
/// process group ends the loop and the component together.
const SCRIPT: &str = r#"name=$0 log=$1 pidfile=$2 events=$3 initial=$4 max=$5 reset=$6
shift 6
delay=$initial
while :; do
  began=$(date +%s)
  "$@" >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$pidfile.new" && mv -f "$pidfile.new" "$pidfile"
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) started $name pid $child" >>"$events"
  wait "$child"
  status=$?
  rm -f "$pidfile"
  ran=$(( $(date +%s) - began ))
  if [ "$ran" -ge "$reset" ]; then delay=$initial; fi
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) exited $name pid $child status $status after ${ran}s; restarting in ${delay}s" >>"$events"
  sleep "$delay"
  delay=$(( delay * 2 ))
  if [ "$delay" -gt "$max" ]; then delay=$max; fi
done"#;

/// A component of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// etcd.
    Etcd,
    /// kube-apiserver.
    KubeApiserver,
    /// kube-controller-manager.
    KubeControllerManager,
    /// kube-scheduler.
    KubeScheduler,
    /// kwok, the fake kubelets.
    Kwok,
}

impl Component {
    /// Every component, in start-up order.
    pub const ALL: [Component; 5] = [
        Component::Etcd,
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::Kwok,
    ];

    /// The component's name, as in its log file's name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Kwok => "kwok",
        }
    }

    /// The component of a name (`etcd`, `kube-apiserver`, `apiserver`, `scheduler`, ...).
    pub fn parse(name: &str) -> Option<Component> {
        let bare = name.strip_prefix("kube-").unwrap_or(name);
        Component::ALL.into_iter().find(|c| c.name().strip_prefix("kube-").unwrap_or(c.name()) == bare)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One exit of a component, as its supervisor recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The pid that exited.
    pub pid: u32,
    /// Its exit status as the shell reports it (128 + signal number for a signal).
    pub status: i32,
    /// How long it had run, in seconds.
    pub ran_seconds: u64,
    /// The delay before the next start, in seconds.
    pub restart_in_seconds: u64,
}

/// The files of one supervised component inside an instance directory.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    /// The component's own output.
    pub(crate) log: PathBuf,
    /// The pid of the component's current run.
    pub(crate) pid: PathBuf,
    /// One line per start and exit.
    pub(crate) events: PathBuf,
}

impl Files {
    pub(crate) fn new(dir: &Path, component: Component) -> Self {
        let name = component.name();
        Files {
            log: dir.join(format!("{name}.log")),
            pid: dir.join(format!("{name}.pid")),
            events: dir.join(format!("{name}.supervisor.log")),
        }
    }

    /// The pid of the component's current run, once the supervisor started it.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid).ok()?.trim().parse().ok()
    }

    /// Every exit recorded so far, oldest first.
    pub(crate) fn exits(&self) -> Vec<Exit> {
        std::fs::read_to_string(&self.events).unwrap_or_default().lines().filter_map(parse_exit).collect()
    }
}

/// Reads `<time> exited <name> pid <pid> status <status> after <n>s; restarting in <m>s`.
fn parse_exit(line: &str) -> Option<Exit> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.get(1) != Some(&"exited") {
        return None;
    }
    let after = |key: &str| words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).copied();
    let seconds = |w: &str| w.trim_end_matches(';').trim_end_matches('s').parse().ok();
    Some(Exit {
        pid: after("pid")?.parse().ok()?,
        status: after("status")?.parse().ok()?,
        ran_seconds: seconds(after("after")?)?,
        restart_in_seconds: seconds(after("in")?)?,
    })
}

/// The `sh` command line that runs `bin args` under the supervisor loop.
pub(crate) fn wrapper_args(component: Component, files: &Files, bin: &Path, args: &[String]) -> Vec<String> {
    let mut all = vec![
        "-c".to_owned(),
        SCRIPT.to_owned(),
        component.name().to_owned(),
        files.log.display().to_string(),
        files.pid.display().to_string(),
        files.events.display().to_string(),
        INITIAL_BACKOFF.as_secs().to_string(),
        MAX_BACKOFF.as_secs().to_string(),
        BACKOFF_RESET.as_secs().to_string(),
        bin.display().to_string(),
    ];
    all.extend(args.iter().cloned());
    all
}

/// A signal sent to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP: frozen, sockets open, nothing answered.
    Stop,
    /// SIGCONT: resumed.
    Cont,
    /// SIGKILL: gone at once; the supervisor restarts it after its backoff.
    Kill,
}

impl Signal {
    /// The signal's name without `SIG` (`STOP`, `CONT`, `KILL`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Kill => "KILL",
        }
    }
}

/// Sends `signal` to `component`'s current run in the instance directory `dir`; returns its pid.
pub fn send(dir: &Path, component: Component, signal: Signal) -> Result<u32> {
    let pid = current_pid(dir, component).ok_or(Error::NotRunning { component: component.name() })?;
    let status = std::process::Command::new("kill")
        .args([format!("-{}", signal.name()), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io(Path::new("kill"), e))?;
    if !status.success() {
        return Err(Error::Signal { component: component.name(), signal: signal.name().to_owned(), pid });
    }
    tracing::info!(%component, pid, signal = signal.name(), "signalled");
    Ok(pid)
}

/// The pid of `component`'s current run in the instance directory `dir` (also of a detached control
/// plane: `cargo xtask cluster` reads it), once its supervisor started it.
pub fn current_pid(dir: &Path, component: Component) -> Option<u32> {
    Files::new(dir, component).pid()
}

/// Every exit of `component` its supervisor recorded in the instance directory `dir`, oldest first.
pub fn recorded_exits(dir: &Path, component: Component) -> Vec<Exit> {
    Files::new(dir, component).exits()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exit_lines_are_read_and_start_lines_are_not() {
        let line = "2026-12-07T16:01:02Z exited kube-scheduler pid 4242 status 1 after 35s; restarting in 20s";
        assert_eq!(parse_exit(line), Some(Exit { pid: 4242, status: 1, ran_seconds: 35, restart_in_seconds: 20 }));
        assert_eq!(parse_exit("2026-12-07T16:01:02Z started kube-scheduler pid 4242"), None);
        assert_eq!(parse_exit(""), None);
    }

    #[test]
    fn components_are_named_with_or_without_the_kube_prefix() {
        assert_eq!(Component::parse("apiserver"), Some(Component::KubeApiserver));
        assert_eq!(Component::parse("kube-scheduler"), Some(Component::KubeScheduler));
        assert_eq!(Component::parse("etcd"), Some(Component::Etcd));
        assert_eq!(Component::parse("kubelet"), None);
        for c in Component::ALL {
            assert_eq!(Component::parse(c.name()), Some(c));
        }
    }

    /// The loop itself, on a command that exits at once: it restarts it after the initial delay, doubles
    /// the delay, and records each exit. Run with short delays through the same script.
    #[test]
    fn the_loop_restarts_what_exits_with_a_doubling_delay() {
        let dir = std::env::temp_dir().join(format!("testenv-supervisor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files::new(&dir, Component::Kwok);
        let mut args = wrapper_args(Component::Kwok, &files, Path::new("sh"), &["-c".into(), "exit 3".into()]);
        // initial 1 s, max 2 s, reset after 600 s.
        args[6] = "1".into();
        args[7] = "2".into();
        let mut child = std::process::Command::new("sh").args(&args).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while files.exits().len() < 4 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let exits = files.exits();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(exits.len() >= 4, "{exits:?}");
        assert!(exits.iter().all(|e| e.status == 3), "{exits:?}");
        let delays: Vec<u64> = exits.iter().take(4).map(|e| e.restart_in_seconds).collect();
        assert_eq!(delays, vec![1, 2, 2, 2]);
        let pids: std::collections::BTreeSet<u32> = exits.iter().map(|e| e.pid).collect();
        assert_eq!(pids.len(), exits.len(), "each run is a new process");
    }
}
