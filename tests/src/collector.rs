//! Runs `kube-metrics-collector` inside a fake pod's namespace and talks to it.

use crate::http::{self, Connection, Endpoint};
use crate::pod::FakePod;
use crate::process::{self, Guarded};
use anyhow::{Result, bail};
use kube_metrics_contract::sidecar;
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

/// The profile the collector runs with here unless a test's flags say otherwise: the full one,
/// whose every family the tests check against the host's `/proc`. The default profile is its
/// subset (the sidecar's goldens hold it to that), and `sidecar_e2e` counts it on a real pod.
pub const PROFILE: &str = "full";

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
    /// its socket in the pod directory, with `extra` flags; waits for /readyz.
    pub fn start(pod: &FakePod, extra: &[&str]) -> Result<Self> {
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        let (guard, pid) = serve(pod, (POD_NAMESPACE, POD_NAME), Some(addr), extra)?;
        Ok(Self {
            pid,
            addr,
            socket: socket(pod),
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

/// Starts a collector in `pod`'s namespace serving only on its socket in the pod directory, as pod `name`
/// in `namespace` (as in a pod scraped through the node relay); waits for /readyz on the socket.
/// Returns its guard and socket.
pub fn start_on_socket(pod: &FakePod, namespace: &str, name: &str) -> Result<(Guarded, PathBuf)> {
    start_on_socket_with(pod, namespace, name, &[])
}

/// [`start_on_socket`] with `extra` flags.
pub fn start_on_socket_with(
    pod: &FakePod,
    namespace: &str,
    name: &str,
    extra: &[&str],
) -> Result<(Guarded, PathBuf)> {
    let (guard, _pid) = serve(pod, (namespace, name), None, extra)?;
    Ok((guard, socket(pod)))
}

/// Runs the collector once with `args` inside `pod` (as `uid` if given) and returns its output,
/// e.g. `-M`. Fails with the output when it exits non-zero.
pub fn run_once(pod: &FakePod, uid: Option<u32>, args: &[&str]) -> Result<Output> {
    run_once_as(pod, uid, (POD_NAMESPACE, POD_NAME), NODE_NAME, args)
}

/// [`run_once`] as pod `(namespace, name)` on node `node`, as the downward API would say.
pub fn run_once_as(
    pod: &FakePod,
    uid: Option<u32>,
    identity: (&str, &str),
    node: &str,
    args: &[&str],
) -> Result<Output> {
    let binary = crate::binaries::collector()?;
    let mut command = pod.command(uid);
    command.arg(&binary).args(args);
    set_identity(&mut command, identity);
    command.env(sidecar::ENV_NODE_NAME, node);
    process::output(&mut command)
}

/// Starts the collector as `(namespace, pod)` serving on its socket and, if given, on `listen`,
/// with `extra` flags; waits until /readyz answers on `listen`, else on the socket. Returns its
/// guard and host PID.
fn serve(
    pod: &FakePod,
    identity: (&str, &str),
    listen: Option<SocketAddr>,
    extra: &[&str],
) -> Result<(Guarded, u32)> {
    let binary = crate::binaries::collector()?;
    let mut command = pod.command(None);
    command
        .arg(&binary)
        .arg("--socket")
        .arg(socket(pod))
        .arg("--podinfo")
        .arg(pod.podinfo_dir());
    if let Some(addr) = listen {
        command.arg("--listen").arg(addr.to_string());
    }
    command.args(extra);
    set_identity(&mut command, identity);
    let (mut guard, pid) = pod.spawn_command("collector", command, &binary.to_string_lossy())?;
    let ready_on = listen.map_or_else(|| Endpoint::Unix(socket(pod)), Endpoint::Tcp);
    guard.wait_until_ok(&ready_on, "/readyz", READY_TIMEOUT)?;
    Ok((guard, pid))
}

/// The socket in the pod directory, which stands for the collector's emptyDir.
fn socket(pod: &FakePod) -> PathBuf {
    pod.dir().join(sidecar::SOCKET_NAME)
}

/// Sets the env the downward API would: the pod's namespace and name, and the node; and
/// [`PROFILE`], which a `--metrics-profile` flag overrides.
fn set_identity(command: &mut Command, (namespace, pod): (&str, &str)) {
    command
        .env(sidecar::ENV_METRICS_PROFILE, PROFILE)
        .env(sidecar::ENV_POD_NAME, pod)
        .env(sidecar::ENV_POD_NAMESPACE, namespace)
        .env(sidecar::ENV_NODE_NAME, NODE_NAME);
}
