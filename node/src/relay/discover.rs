//! Finds the collectors' Unix sockets under the kubelet root. Blocking file
//! I/O; callers run it off the async workers.
//!
//! Layout (docs/design.md): `<root>/pods/<pod-uid>/volumes/kubernetes.io~empty-dir/<volume>/<socket>`;
//! a pod with a socket is then attested from its downward-API volume (`attest`).
//! Every component below the root is opened relative to its parent with
//! `O_NOFOLLOW`, so no symlink can lead the relay out of the kubelet root; the
//! socket itself is held as an `O_PATH` descriptor and connected through
//! `/proc/self/fd/N`. That closes the race where a pod swaps its socket for a
//! symlink between the check and the connect, and it also avoids the 108-byte
//! `sun_path` limit that the full kubelet path (about 140 bytes) exceeds.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use kube_metrics_contract::relay::{DOWNWARD_API_DIR, EMPTY_DIR, PODS_DIR, VOLUMES_DIR};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use std::collections::HashMap;

use crate::kubelet::Identity;
use crate::kubelet::attest::{self, AttestError, Route};
use crate::kubelet::logs;

/// Where the collectors' sockets are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub kubelet_root: PathBuf,
    /// Name of the collector's `emptyDir` volume.
    pub volume: String,
    /// File name of the socket inside that volume.
    pub socket: String,
    /// Name of the webhook's downward-API volume in the pod.
    pub podinfo_volume: String,
    /// The kubelet's pod log directory, whose entries name each pod uid's namespace and name.
    pub pod_logs: PathBuf,
}

/// A collector socket found under the kubelet root, held open.
#[derive(Debug)]
pub struct Target {
    pub pod_uid: String,
    /// Who the kubelet says owns the socket.
    pub identity: Identity,
    /// `O_PATH` descriptor of the socket inode itself.
    socket: OwnedFd,
}

/// Why a pod's socket was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A component of the path, or the socket, is a symlink.
    Symlink,
    /// The socket path exists but is not a socket.
    NotSocket,
    /// A component could not be opened (permissions, odd file types).
    Unreadable,
    /// The pod's downward-API volume does not attribute the socket to it.
    Attest(AttestError),
}

/// Everything one walk of the kubelet root found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by pod uid.
    pub targets: Vec<Target>,
    pub skipped: Vec<(String, Skipped)>,
    /// Pods with a socket that Prometheus scrapes directly, sorted.
    pub direct: Vec<String>,
}

/// The pods directory itself could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list {}", path.display())]
pub struct DiscoverError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

// === impl Target ===

impl Target {
    /// A path that reaches exactly the inode found at discovery time.
    pub fn connect_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.socket.as_raw_fd()))
    }
}

// === impl Skipped ===

impl Skipped {
    /// The `reason` label value of the relay's failure counter.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Symlink => "symlink",
            Self::NotSocket => "not_socket",
            Self::Unreadable => "unreadable",
            Self::Attest(error) => error.reason(),
        }
    }
}

/// Walks the kubelet root once.
pub fn discover(layout: &Layout) -> Result<Discovery, DiscoverError> {
    let root = &layout.kubelet_root;
    let error = |source: Errno| DiscoverError {
        path: root.join(PODS_DIR),
        source: source.into(),
    };
    // The root itself is trusted configuration and may be a symlink.
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(error)?;
    let pods =
        rustix::fs::openat(&root_fd, PODS_DIR, dir_flags(false), Mode::empty()).map_err(error)?;
    let logged = logs::read(&layout.pod_logs).unwrap_or_else(|error| {
        // Every pod is then left out as unattested, and counted so.
        tracing::warn!(%error, path = %layout.pod_logs.display(), "Cannot list pod log directories");
        HashMap::new()
    });
    let mut discovery = Discovery::default();
    for entry in Dir::read_from(&pods).map_err(error)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(errno) => {
                tracing::warn!(error = %std::io::Error::from(errno), "Stopped listing pods");
                break;
            }
        };
        let Some(uid) = pod_uid(entry.file_name()) else {
            continue;
        };
        let found = find_socket(&pods, uid, layout).and_then(|socket| match socket {
            Some(socket) => route(&pods, uid, layout, logged.get(uid)).map(|r| Some((socket, r))),
            None => Ok(None),
        });
        match found {
            Ok(Some((socket, Route::Relay(identity)))) => discovery.targets.push(Target {
                pod_uid: uid.to_owned(),
                identity,
                socket,
            }),
            Ok(Some((_, Route::Direct))) => discovery.direct.push(uid.to_owned()),
            Ok(None) => {}
            Err(skipped) => discovery.skipped.push((uid.to_owned(), skipped)),
        }
    }
    discovery.targets.sort_by(|a, b| a.pod_uid.cmp(&b.pod_uid));
    discovery.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    discovery.direct.sort();
    Ok(discovery)
}

/// Reads pod `uid`'s downward-API volume and decides with the kubelet's names for it.
fn route(
    pods: &OwnedFd,
    uid: &str,
    layout: &Layout,
    logged: Option<&Identity>,
) -> Result<Route, Skipped> {
    let missing = Skipped::Attest(AttestError::Missing);
    let mut dir = open_dir(pods, uid)?.ok_or(missing)?;
    for name in [VOLUMES_DIR, DOWNWARD_API_DIR] {
        dir = open_dir(&dir, name)?.ok_or(missing)?;
    }
    // Listing needs a real descriptor, not O_PATH, for the files below.
    let volume = match rustix::fs::openat(
        &dir,
        layout.podinfo_volume.as_str(),
        dir_flags(false),
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(missing),
        Err(_) => return Err(Skipped::Attest(AttestError::Unsafe)),
    };
    let projected = attest::read(&volume).map_err(Skipped::Attest)?;
    attest::decide(uid, &projected, logged).map_err(Skipped::Attest)
}

/// Directory entries that can be a pod uid: not `.`/`..`, valid UTF-8.
fn pod_uid(name: &CStr) -> Option<&str> {
    name.to_str()
        .ok()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
}

/// Ok(None) when the pod has no such volume or socket (most pods): not a target.
fn find_socket(pods: &OwnedFd, uid: &str, layout: &Layout) -> Result<Option<OwnedFd>, Skipped> {
    let mut dir = match open_dir(pods, uid)? {
        Some(fd) => fd,
        None => return Ok(None),
    };
    for name in [VOLUMES_DIR, EMPTY_DIR, layout.volume.as_str()] {
        dir = match open_dir(&dir, name)? {
            Some(fd) => fd,
            None => return Ok(None),
        };
    }
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let socket = match rustix::fs::openat(&dir, layout.socket.as_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(_) => return Err(Skipped::Unreadable),
    };
    // With O_PATH|O_NOFOLLOW a symlink opens as itself, so fstat sees it.
    match rustix::fs::fstat(&socket).map(|st| FileType::from_raw_mode(st.st_mode)) {
        Ok(FileType::Socket) => Ok(Some(socket)),
        Ok(FileType::Symlink) => Err(Skipped::Symlink),
        Ok(_) => Err(Skipped::NotSocket),
        Err(_) => Err(Skipped::Unreadable),
    }
}

/// Opens `name` under `parent` as a directory without following a symlink.
fn open_dir(parent: &OwnedFd, name: &str) -> Result<Option<OwnedFd>, Skipped> {
    match rustix::fs::openat(parent, name, dir_flags(true), Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        // O_NOFOLLOW|O_DIRECTORY on a symlink fails with ELOOP or ENOTDIR;
        // look at the entry itself to say which it was.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    Err(Skipped::Symlink)
                }
                Ok(_) => Err(Skipped::Unreadable),
                Err(Errno::NOENT) => Ok(None),
                Err(_) => Err(Skipped::Unreadable),
            }
        }
        Err(_) => Err(Skipped::Unreadable),
    }
}

/// `O_PATH` is enough to walk through a directory; listing needs a real open.
fn dir_flags(path_only: bool) -> OFlags {
    let base = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if path_only {
        base | OFlags::PATH
    } else {
        base | OFlags::RDONLY
    }
}

/// Where a pod's downward-API volume is, for tests.
pub fn podinfo_path(layout: &Layout, pod_uid: &str) -> PathBuf {
    let base: &Path = &layout.kubelet_root;
    base.join(PODS_DIR)
        .join(pod_uid)
        .join(VOLUMES_DIR)
        .join(DOWNWARD_API_DIR)
        .join(&layout.podinfo_volume)
}

/// Where a pod's socket is, for logs and tests.
pub fn socket_path(layout: &Layout, pod_uid: &str) -> PathBuf {
    let base: &Path = &layout.kubelet_root;
    base.join(PODS_DIR)
        .join(pod_uid)
        .join(VOLUMES_DIR)
        .join(EMPTY_DIR)
        .join(&layout.volume)
        .join(&layout.socket)
}

#[cfg(test)]
mod tests;
