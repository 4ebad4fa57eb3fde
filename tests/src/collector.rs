//! Runs `kube-metrics-collector` inside a fake pod's namespace and talks to it.

use crate::http::{self, Connection};
use crate::pod::FakePod;
use crate::process::{Guarded, wait_for};
use anyhow::{Context as _, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// The collector reads /proc once before /readyz turns 200; that takes milliseconds.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Env the collector reads its identity from (docs/design.md).
pub const POD_NAME: &str = "virt-launcher-e2e-abcde";
pub const POD_NAMESPACE: &str = "e2e";
pub const NODE_NAME: &str = "e2e-node";

/// A collector serving inside a fake pod.
#[derive(Debug)]
pub struct Collector {
    /// Host PID of the collector process (not of its `nsenter`).
    pub pid: u32,
    pub addr: SocketAddr,
    pub socket: PathBuf,
    guard: Guarded,
}

// === impl Collector ===

impl Collector {
    /// Starts the collector in `pod`'s namespace listening on a free loopback port and on
    /// `<pod dir>/metrics.sock`, with `extra` flags; waits for /readyz.
    pub fn start(pod: &FakePod, extra: &[&str]) -> Result<Self> {
        let binary = crate::binaries::collector()?;
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        let socket = pod.dir().join("metrics.sock");
        let mut command = pod.command(None);
        command
            .arg(&binary)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--socket")
            .arg(&socket)
            .arg("--podinfo")
            .arg(pod.podinfo_dir())
            .args(extra);
        identity(&mut command);
        let argv0 = binary.to_string_lossy().into_owned();
        let (mut guard, pid) = pod.spawn_command("collector", command, &argv0)?;
        wait_for("the collector's /readyz", READY_TIMEOUT, || {
            guard.check_running()?;
            Ok(http::get(addr, "/readyz", &[])
                .is_ok_and(|r| r.status == 200)
                .then_some(()))
        })?;
        Ok(Self {
            pid,
            addr,
            socket,
            guard,
        })
    }

    /// One scrape of /metrics over TCP, negotiating like Prometheus.
    pub fn scrape(&self) -> Result<http::Response> {
        let response = http::get(
            self.addr,
            "/metrics",
            &[("Accept", http::PROMETHEUS_ACCEPT)],
        )?;
        if response.status != 200 {
            bail!("/metrics answered {}: {}", response.status, response.text());
        }
        Ok(response)
    }

    /// One GET over the Unix socket.
    pub fn get_unix(&self, path: &str) -> Result<http::Response> {
        Connection::unix(&self.socket)?.get(path, &[])
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }
}

/// Runs the collector once with `args` inside `pod` (as `uid` if given) and returns its output,
/// e.g. `-M`. Fails with the output when it exits non-zero.
pub fn run_once(pod: &FakePod, uid: Option<u32>, args: &[&str]) -> Result<Output> {
    let binary = crate::binaries::collector()?;
    let mut command = pod.command(uid);
    command.arg(&binary).args(args);
    identity(&mut command);
    let output = command
        .output()
        .with_context(|| format!("failed to run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

fn identity(command: &mut Command) {
    command
        .env("POD_NAME", POD_NAME)
        .env("POD_NAMESPACE", POD_NAMESPACE)
        .env("NODE_NAME", NODE_NAME);
}
