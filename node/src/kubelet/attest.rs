//! Who owns a socket, as the kubelet says: the pod's log directory names its
//! namespace and name (`logs`), and its downward-API volume
//! `<root>/pods/<uid>/volumes/kubernetes.io~downward-api/<volume>/`, in which
//! the webhook projects the pod's `labels`, `uid`, `namespace` and `name`,
//! says whether the webhook sent it to the relay. Blocking file I/O; callers
//! run it off the async workers.
//!
//! The collector's own `kubevirt_pod_infra_pod_info` is whatever the process
//! behind the socket chooses to write. The volume's files are written by the
//! kubelet, but which field each holds is the pod spec's choice, and a tenant
//! writes its pods' specs: a file called `namespace` may hold an annotation.
//! So the names come from the log directory, and the volume's uid, namespace
//! and name, where present, must agree with it. The kubelet writes the files
//! through symlinks (`labels -> ..data/labels`, `..data -> ..2024_01_01_...`);
//! the walk follows exactly those two shapes and nothing that leaves the volume.

use std::os::fd::OwnedFd;

use kube_metrics_contract::downward_api;
use kube_metrics_contract::pod::{SCRAPE, SCRAPE_DIRECT, SCRAPE_RELAY};
use kube_metrics_contract::relay::DOWNWARD_API_DATA;
use kube_metrics_contract::sidecar::{
    PODINFO_LABELS, PODINFO_NAME, PODINFO_NAMESPACE, PODINFO_UID,
};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::Identity;

/// Most one projected file may weigh: the labels of a pod fit many times over.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// The facts the kubelet projected for one pod, as read from its volume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projected {
    pub uid: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: Option<String>,
}

/// What the relay does with a pod's socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The webhook sent it to the relay: forward its series as this pod's.
    Relay(Identity),
    /// Prometheus scrapes it directly; relaying it too would count it twice.
    Direct,
}

/// Why a pod's socket cannot be attributed to anyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// No log directory for the pod's uid, or no downward-API volume.
    #[error("no attested identity")]
    Missing,
    /// The volume's namespace or name is not the one the kubelet's log
    /// directory gives: the pod's spec projects something else under that name.
    #[error("projected identity differs from the kubelet's")]
    Mismatch,
    /// A symlink that leaves the volume, a file that is not regular, too
    /// large or not UTF-8.
    #[error("attestation files are not what the kubelet writes")]
    Unsafe,
    /// The projected uid is not the uid of the directory it was found in.
    #[error("projected uid differs from the pod directory")]
    UidMismatch,
    /// The pod's labels do not send it to the relay.
    #[error("pod is not labelled for the relay")]
    NotRelay,
}

/// Where a symlink inside the volume may point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link<'a> {
    /// Another entry of the volume directory itself.
    Sibling(&'a str),
    /// `..data/<name>`: a file of the current timestamped directory.
    Data(&'a str),
    /// Anything else: absolute, `..`, deeper paths.
    Escapes,
}

// === impl AttestError ===

impl AttestError {
    /// The `reason` label value of the relay's failure counter.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "no_attested_identity",
            Self::Mismatch => "attestation_mismatch",
            Self::Unsafe => "attestation_unsafe",
            Self::UidMismatch => "uid_mismatch",
            Self::NotRelay => "not_relay",
        }
    }
}

/// Classifies a symlink target found in the volume directory.
pub fn link(target: &str) -> Link<'_> {
    let single = |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\0']);
    match target.split_once('/') {
        None if single(target) => Link::Sibling(target),
        Some((DOWNWARD_API_DATA, name)) if single(name) => Link::Data(name),
        _ => Link::Escapes,
    }
}

/// The value of the webhook's scrape label in a downward-API `labels` file
/// (`key="value"` lines, values quoted as Go's `%q` does).
pub fn scrape_label(labels: &str) -> Option<String> {
    labels.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key == SCRAPE).then(|| downward_api::unquote(value))?
    })
}

/// Decides what to do with the socket of the pod in directory `dir_uid`,
/// whose log directory names it `logged`. The volume's uid, namespace and
/// name are optional (pods injected before the webhook projected them have
/// labels only) but must agree when present.
pub fn decide(
    dir_uid: &str,
    projected: &Projected,
    logged: Option<&Identity>,
) -> Result<Route, AttestError> {
    fn non_empty(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let Some(logged) = logged else {
        return Err(AttestError::Missing);
    };
    if non_empty(&projected.uid).is_some_and(|uid| uid != dir_uid) {
        return Err(AttestError::UidMismatch);
    }
    let namespace = non_empty(&projected.namespace);
    let name = non_empty(&projected.name);
    if namespace.is_some_and(|ns| ns != logged.namespace) || name.is_some_and(|n| n != logged.pod) {
        return Err(AttestError::Mismatch);
    }
    match projected
        .labels
        .as_deref()
        .and_then(scrape_label)
        .as_deref()
    {
        Some(SCRAPE_RELAY) => Ok(Route::Relay(logged.clone())),
        Some(SCRAPE_DIRECT) => Ok(Route::Direct),
        _ => Err(AttestError::NotRelay),
    }
}

/// Reads the projected files of the volume directory `volume`.
pub fn read(volume: &OwnedFd) -> Result<Projected, AttestError> {
    Ok(Projected {
        uid: read_file(volume, PODINFO_UID)?,
        namespace: read_file(volume, PODINFO_NAMESPACE)?,
        name: read_file(volume, PODINFO_NAME)?,
        labels: read_file(volume, PODINFO_LABELS)?,
    })
}

/// One projected file: Ok(None) when absent, through at most the kubelet's
/// two symlinks, each confined to the volume.
fn read_file(volume: &OwnedFd, name: &str) -> Result<Option<String>, AttestError> {
    match open_regular(volume, name) {
        Ok(fd) => return read_bounded(fd).map(Some),
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {}
        Err(_) => return Err(AttestError::Unsafe),
    }
    match link(&read_link(volume, name)?) {
        Link::Sibling(sibling) => match open_regular(volume, sibling) {
            Ok(fd) => read_bounded(fd).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(_) => Err(AttestError::Unsafe),
        },
        Link::Data(file) => {
            let data = read_link(volume, DOWNWARD_API_DATA)?;
            let Link::Sibling(dir) = link(&data) else {
                return Err(AttestError::Unsafe);
            };
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let dir = rustix::fs::openat(volume, dir, flags, Mode::empty())
                .map_err(|_| AttestError::Unsafe)?;
            match open_regular(&dir, file) {
                Ok(fd) => read_bounded(fd).map(Some),
                Err(Errno::NOENT) => Ok(None),
                Err(_) => Err(AttestError::Unsafe),
            }
        }
        Link::Escapes => Err(AttestError::Unsafe),
    }
}

fn read_link(dir: &OwnedFd, name: &str) -> Result<String, AttestError> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|_| AttestError::Unsafe)?;
    target.into_string().map_err(|_| AttestError::Unsafe)
}

/// Opens `name` for reading if it is a regular file; a symlink fails with
/// ELOOP, and a FIFO cannot block the open.
fn open_regular(dir: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    match rustix::fs::fstat(&fd).map(|st| FileType::from_raw_mode(st.st_mode)) {
        Ok(FileType::RegularFile) => Ok(fd),
        _ => Err(Errno::INVAL),
    }
}

fn read_bounded(fd: OwnedFd) -> Result<String, AttestError> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = rustix::io::read(&fd, &mut buf).map_err(|_| AttestError::Unsafe)?;
        if n == 0 {
            break;
        }
        if out.len() + n > MAX_FILE_BYTES {
            return Err(AttestError::Unsafe);
        }
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    String::from_utf8(out).map_err(|_| AttestError::Unsafe)
}

#[cfg(test)]
mod tests;
