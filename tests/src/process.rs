//! Child processes that cannot outlive the test, bounded waiting, and the root/tools check.

use crate::http::Endpoint;
use anyhow::{Context as _, Result, bail};
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How often [`wait_for`] polls.
const POLL: Duration = Duration::from_millis(50);
/// A helper whose child was killed exits within milliseconds.
const INNER_EXIT: Duration = Duration::from_secs(2);

/// A child process in its own process group, whose output goes to a log file. Dropping it kills
/// the whole group, so helpers such as `nsenter` never leave their children behind.
#[derive(Debug)]
pub struct Guarded {
    name: String,
    child: Child,
    log: PathBuf,
    /// The process a helper such as `nsenter` started and waits for; killed first so the helper
    /// reaps it, instead of leaving a zombie for the host's init.
    inner: Option<u32>,
}

// === impl Guarded ===

impl Guarded {
    /// Starts `command` in a new process group, stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("failed to open {}", log.display()))?;
        let err = out.try_clone().context("failed to clone log file")?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("failed to start {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            inner: None,
        })
    }

    /// Polls `GET path` at `endpoint` until it answers 200, for at most `timeout`. Fails at once,
    /// with the log, if the process exits first: a server that crashed never answers.
    pub fn wait_until_ok(
        &mut self,
        endpoint: &Endpoint,
        path: &str,
        timeout: Duration,
    ) -> Result<()> {
        let what = format!("{}'s {path} to answer 200", self.name);
        wait_for(&what, timeout, || {
            self.check_running()?;
            Ok(endpoint
                .get(path, &[])
                .is_ok_and(|r| r.status == 200)
                .then_some(()))
        })
    }

    /// Records the process this helper started, to kill it first.
    pub fn set_inner(&mut self, pid: u32) {
        self.inner = Some(pid);
    }

    /// The host PID of the direct child.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process already exited, with its log.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("{} exited ({status}); log:\n{}", self.name, self.log()),
            Err(error) => bail!("cannot wait for {}: {error}", self.name),
        }
    }

    /// Kills the inner process and lets the helper reap it, then SIGKILLs the whole group and
    /// reaps the child.
    pub fn kill(&mut self) {
        if let Some(inner) = self.inner.take().and_then(pid) {
            // ESRCH (already gone) is fine here and below: there is nothing left to kill.
            let _ = rustix::process::kill_process(inner, rustix::process::Signal::KILL);
            let _ = wait_for("the helper to exit", INNER_EXIT, || {
                Ok(self.child.try_wait()?.map(|_| ()))
            });
        }
        if let Some(group) = pid(self.child.id()) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pid(raw: u32) -> Option<rustix::process::Pid> {
    i32::try_from(raw)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

/// Polls `check` until it returns `Some`, for at most `timeout`. The error names `what` and
/// carries the last error `check` returned, which is usually the useful one.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            match last_error {
                Some(error) => bail!("timed out after {timeout:?} waiting for {what}: {error:#}"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `command` to completion and returns its output; fails with stdout and stderr when it
/// exits non-zero.
pub fn output(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("failed to run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// The stdout of `command`, which must succeed (see [`output`]).
pub fn stdout(command: &mut Command) -> Result<String> {
    let output = output(command)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Checks that we run as root and that every tool in `tools` is on PATH.
pub fn preflight(tools: &[&str]) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "the end-to-end tests need root: they build a PID namespace with `unshare --pid` \
             and switch users with setpriv (CI runs them as root)"
        );
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| which(tool).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing tools {missing:?}: run `scripts/setup` (Debian packages prometheus, \
             prometheus-process-exporter, util-linux)"
        );
    }
    Ok(())
}

/// A command running `program` that the kernel SIGKILLs when the spawning thread exits, so a
/// test or benchmark killed by a signal (no destructors) leaves no Prometheus or namespace behind.
/// (`setpriv --pdeathsig` sets `PR_SET_PDEATHSIG`, which survives the exec. It tracks the thread
/// that spawned it: spawn from the thread that owns the guard.)
pub fn dies_with_parent(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--", program]);
    command
}

/// The first executable called `tool` on PATH.
fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}
