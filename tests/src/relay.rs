//! The node relay (`kube-metrics-collector relay`) and the fake kubelet pods directory it reads.

use crate::http::{self, Endpoint};
use crate::process::Guarded;
use anyhow::{Context as _, Result};
use kube_metrics_contract::{relay, sidecar};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The relay lists the pods directory once before /healthz answers; that takes milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A kubelet root directory (`<root>/pods/<uid>/volumes/...`) in a temporary directory.
#[derive(Debug)]
pub struct Kubelet {
    root: TempDir,
}

/// A relay serving on a free loopback port.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    guard: Guarded,
}

// === impl Kubelet ===

impl Kubelet {
    /// An empty pods directory under a fresh temporary directory named `<prefix>...`.
    pub fn new(prefix: &str) -> Result<Self> {
        let root = tempfile::Builder::new().prefix(prefix).tempdir()?;
        std::fs::create_dir(root.path().join("pods"))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Moves a bound socket to where the kubelet shows pod `uid`'s collector socket:
    /// `<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/<socket>`. That path is
    /// longer than sun_path allows, so nothing can bind there directly; the kubelet's bind mount
    /// shows the same inode there, which a rename reproduces.
    pub fn move_socket(&self, socket: &Path, uid: &str) -> Result<PathBuf> {
        let target = self.root().join(relay::socket_path(
            uid,
            sidecar::SOCKET_VOLUME,
            sidecar::SOCKET_NAME,
        ));
        let dir = target.parent().context("a socket path has a parent")?;
        std::fs::create_dir_all(dir)?;
        std::fs::rename(socket, &target)
            .with_context(|| format!("cannot move {}", socket.display()))?;
        Ok(target)
    }

    /// A listener at pod `uid`'s socket path: bound at a short path, then moved into place.
    pub fn bind(&self, uid: &str) -> Result<UnixListener> {
        let short = self.root().join("bind.sock");
        let listener = UnixListener::bind(&short)
            .with_context(|| format!("cannot bind {}", short.display()))?;
        self.move_socket(&short, uid)?;
        Ok(listener)
    }
}

/// The UID of fake pod `i`: shaped like a real one, and different for every `i`.
pub fn pod_uid(i: usize) -> String {
    format!("5d5e2e1c-0000-4000-8000-{i:012}")
}

// === impl Relay ===

impl Relay {
    /// Starts `kube-metrics-collector relay` over `kubelet` with `extra` flags; waits for /healthz.
    pub fn start(kubelet: &Kubelet, extra: &[&str]) -> Result<Self> {
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        let mut command = Command::new(crate::binaries::collector()?);
        command
            .arg("relay")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--kubelet-root")
            .arg(kubelet.root())
            .args(extra);
        let mut guard = Guarded::spawn("relay", command, kubelet.root())?;
        guard.wait_until_ok(&Endpoint::Tcp(addr), "/healthz", START_TIMEOUT)?;
        Ok(Self { addr, guard })
    }

    /// Host PID of the relay process.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The relay's output so far, for failure messages.
    pub fn log(&self) -> String {
        self.guard.log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_uids_are_distinct_and_uuid_shaped() {
        assert_eq!(pod_uid(7), "5d5e2e1c-0000-4000-8000-000000000007");
        assert_ne!(pod_uid(1), pod_uid(10));
    }

    #[test]
    fn bound_socket_lands_where_the_relay_looks() {
        let kubelet = Kubelet::new("e2e-unit-kubelet-").unwrap();
        let _listener = kubelet.bind("uid-0").unwrap();
        let path = kubelet
            .root()
            .join("pods/uid-0/volumes/kubernetes.io~empty-dir")
            .join(sidecar::SOCKET_VOLUME)
            .join(sidecar::SOCKET_NAME);
        // Too long to connect to, which is the point: check it is the socket, by file type.
        let file_type = std::fs::metadata(&path).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_socket(&file_type));
        assert!(!kubelet.root().join("bind.sock").exists());
    }
}
