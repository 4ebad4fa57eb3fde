//! The node relay (`kube-metrics-collector relay`) and the fake kubelet pods directory it reads.

use crate::http::{self, Endpoint};
use crate::process::Guarded;
use anyhow::{Context as _, Result};
use kube_metrics_contract::{pod, relay, sidecar};
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
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

/// What the webhook projects in a pod's downward-API volume and the relay reads back from the
/// kubelet's copy: the pod's uid, namespace, name and its `scrape` label.
#[derive(Clone, Debug)]
pub struct Podinfo {
    /// None for a pod injected by a webhook older than these files: labels only.
    pub uid: Option<String>,
    pub namespace: String,
    pub name: String,
    /// The value of `kube-metrics-collector.io/scrape` in the pod's labels, as the webhook set it.
    pub scrape: String,
    /// The pod's real namespace and name, for its log directory, when the files say otherwise.
    pub real: Option<(String, String)>,
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
        std::fs::create_dir(root.path().join("logs"))?;
        Ok(Self { root })
    }

    /// The kubelet's pod log directory (`/var/log/pods` on a node), here beside `pods`.
    pub fn pod_logs(&self) -> PathBuf {
        self.root().join("logs")
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

    /// Writes pod `uid`'s downward-API volume where the kubelet shows it,
    /// `<root>/pods/<uid>/volumes/kubernetes.io~downward-api/<volume>/`, as its atomic writer
    /// does: the files in a timestamped directory, `..data` pointing at that, and each file a
    /// symlink `<file> -> ..data/<file>`; and the pod's log directory
    /// `<namespace>_<name>_<uid>`, from which the relay takes its names. Returns the volume
    /// directory.
    pub fn project(&self, uid: &str, podinfo: &Podinfo) -> Result<PathBuf> {
        let dir = self
            .root()
            .join(relay::PODS_DIR)
            .join(uid)
            .join(relay::VOLUMES_DIR)
            .join(relay::DOWNWARD_API_DIR)
            .join(sidecar::PODINFO_VOLUME);
        let data = dir.join(DATA_DIR);
        std::fs::create_dir_all(&data)?;
        for (file, text) in podinfo.files() {
            std::fs::write(data.join(file), text)?;
            symlink(
                format!("{}/{file}", relay::DOWNWARD_API_DATA),
                dir.join(file),
            )?;
        }
        symlink(DATA_DIR, dir.join(relay::DOWNWARD_API_DATA))?;
        let (namespace, name) = podinfo
            .real
            .clone()
            .unwrap_or_else(|| (podinfo.namespace.clone(), podinfo.name.clone()));
        let logs = format!("{namespace}_{name}_{uid}");
        std::fs::create_dir_all(self.pod_logs().join(logs))?;
        Ok(dir)
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

// === impl Podinfo ===

impl Podinfo {
    /// A pod the webhook sent to the relay.
    pub fn relay(uid: &str, namespace: &str, name: &str) -> Self {
        Self {
            uid: Some(uid.to_owned()),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            scrape: pod::SCRAPE_RELAY.to_owned(),
            real: None,
        }
    }

    /// A pod Prometheus scrapes directly.
    pub fn direct(uid: &str, namespace: &str, name: &str) -> Self {
        Self {
            scrape: pod::SCRAPE_DIRECT.to_owned(),
            ..Self::relay(uid, namespace, name)
        }
    }

    /// The same pod, its spec projecting `namespace` and `name` files from annotations that say
    /// `namespace`/`name`: what a tenant can write in its own pod's spec.
    pub fn claiming(self, namespace: &str, name: &str) -> Self {
        Self {
            real: Some((self.namespace.clone(), self.name.clone())),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ..self
        }
    }

    /// The same pod as injected before the webhook projected uid, namespace and name.
    pub fn before_upgrade(self) -> Self {
        Self { uid: None, ..self }
    }

    /// `(file, text)` of every file, as the kubelet writes them: labels as `key="value"` lines.
    fn files(&self) -> Vec<(&'static str, String)> {
        let labels = format!(
            "kubevirt.io=\"virt-launcher\"\n{}=\"{}\"\nvm.kubevirt.io/name=\"{}\"",
            pod::SCRAPE,
            self.scrape,
            self.name
        );
        let mut files = vec![
            (sidecar::PODINFO_LABELS, labels),
            (sidecar::PODINFO_ANNOTATIONS, String::new()),
            (sidecar::PODINFO_MEMORY_REQUEST, "1073741824".to_owned()),
            (sidecar::PODINFO_MEMORY_LIMIT, "1073741824".to_owned()),
        ];
        if let Some(uid) = &self.uid {
            files.extend([
                (sidecar::PODINFO_UID, uid.clone()),
                (sidecar::PODINFO_NAMESPACE, self.namespace.clone()),
                (sidecar::PODINFO_NAME, self.name.clone()),
            ]);
        }
        files
    }
}

/// Answers every request on `listener` with `body` (text format 0.0.4), on a thread of its own,
/// one connection at a time, for as long as the process runs: a collector as small as can be,
/// saying whatever a test needs it to say.
pub fn serve_body(listener: UnixListener, body: Vec<u8>) {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else {
                continue;
            };
            // The request's head, then the answer; a client that went away is no concern here.
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match std::io::Read::read(&mut stream, &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                }
            }
            let _ = std::io::Write::write_all(&mut stream, head.as_bytes())
                .and_then(|()| std::io::Write::write_all(&mut stream, &body));
        }
    });
}

/// The timestamped directory of the kubelet's atomic writer, which `..data` points to.
const DATA_DIR: &str = "..2026_12_01_00_00_00.000000001";

/// The UID of fake pod `i`: shaped like a real one, and different for every `i`.
pub fn pod_uid(i: usize) -> String {
    format!("5d5e2e1c-0000-4000-8000-{i:012}")
}

// === impl Relay ===

impl Relay {
    /// Starts `kube-metrics-collector relay` over `kubelet` with `extra` flags; waits for /healthz.
    pub fn start(kubelet: &Kubelet, extra: &[&str]) -> Result<Self> {
        Self::start_with(kubelet, extra, Command::new(crate::binaries::collector()?))
    }

    /// Like [`Relay::start`], run by `setpriv` with `identity` (its options, e.g. `--reuid`):
    /// the relay as a DaemonSet's security context makes it.
    pub fn start_as(kubelet: &Kubelet, extra: &[&str], identity: &[String]) -> Result<Self> {
        let mut command = Command::new("setpriv");
        command
            .args(identity)
            .arg("--")
            .arg(crate::binaries::collector()?);
        Self::start_with(kubelet, extra, command)
    }

    /// Starts `command` (the collector binary, or something that runs it) with the relay's
    /// arguments appended.
    fn start_with(kubelet: &Kubelet, extra: &[&str], mut command: Command) -> Result<Self> {
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        command
            .arg("relay")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--kubelet-root")
            .arg(kubelet.root())
            .arg("--pod-logs-dir")
            .arg(kubelet.pod_logs())
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

    #[test]
    fn projected_files_are_reached_through_data() {
        let kubelet = Kubelet::new("e2e-unit-kubelet-").unwrap();
        let dir = kubelet
            .project("uid-0", &Podinfo::relay("uid-0", "ns", "pod"))
            .unwrap();
        assert!(dir.ends_with(
            "pods/uid-0/volumes/kubernetes.io~downward-api/kube-metrics-collector-podinfo"
        ));
        assert_eq!(
            std::fs::read_to_string(dir.join("namespace")).unwrap(),
            "ns"
        );
        assert_eq!(
            std::fs::read_link(dir.join("uid")).unwrap(),
            Path::new("..data/uid")
        );
        let labels = std::fs::read_to_string(dir.join("labels")).unwrap();
        assert!(
            labels.contains("kube-metrics-collector.io/scrape=\"relay\""),
            "{labels}"
        );
        let old = kubelet
            .project(
                "uid-1",
                &Podinfo::direct("uid-1", "ns", "p").before_upgrade(),
            )
            .unwrap();
        assert!(!old.join("uid").exists() && old.join("labels").exists());
        assert!(kubelet.pod_logs().join("ns_pod_uid-0").is_dir());
    }
}
