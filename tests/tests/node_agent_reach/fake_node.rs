//! The fake node the probes run against: the kubelet's pod directories, volumes and container
//! logs with the owners and modes the kubelet and the container runtimes give them.

use anyhow::{Context as _, Result};
use e2e::relay::{Kubelet, Podinfo, pod_uid, serve_body};
use kube_metrics_contract::metrics::POD_INFO;
use kube_metrics_contract::{relay, sidecar};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// KubeVirt's launcher user and group, the launcher pod's fsGroup (docs/kubevirt.md §1).
pub const QEMU: u32 = 107;
/// A tenant's pod with `fsGroup: 1000`, and another that runs as user 1000.
const TENANT: u32 = 1000;
/// The emptyDir and tmpfs volume directories: `0777`, sticky; setgid with an fsGroup.
const VOLUME_DIR: u32 = 0o3777;

/// The fake node's rows, and the root daemon's listener, kept open while the probes run.
pub struct Node {
    pub rows: Vec<Row>,
    _daemon: UnixListener,
}

/// One thing on the node, and whether each agent may reach it: the relay, the node collector, and
/// the relay as it ran before (uid 0, group 0 and 107).
pub struct Row {
    pub what: &'static str,
    pub path: PathBuf,
    pub want: [bool; 3],
}

/// One file of a projected volume (a Secret, a service-account token) in one of the fake node's
/// pods, as the atomic writer leaves it, and whether each agent may reach it.
struct ProjectedFile {
    what: &'static str,
    /// The pod, by the number its uid is made from ([`pod_uid`]).
    pod: usize,
    /// The volume plugin's directory, the volume, the file.
    at: (&'static str, &'static str, &'static str),
    /// The file's mode, owner and group.
    mode: (u32, u32, u32),
    want: [bool; 3],
}

/// `path` as a directory of `mode`, owned `uid:gid`.
fn dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    std::fs::create_dir_all(path)?;
    own(path, mode, uid, gid)
}

fn own(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    chown(path, Some(uid), Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// A pod's directory, `pods/<uid>/volumes/`, as the kubelet makes it.
fn pod_volumes(kubelet: &Kubelet, uid: &str) -> Result<PathBuf> {
    let pod = kubelet.root().join(relay::PODS_DIR).join(uid);
    dir(&pod, 0o750, 0, 0)?;
    let volumes = pod.join(relay::VOLUMES_DIR);
    dir(&volumes, 0o750, 0, 0)?;
    Ok(volumes)
}

/// One file of a volume the atomic writer fills (Secret, projected, downward API): the
/// plugin's directory, the volume's, `..data` to a timestamped directory, and `file ->
/// ..data/file`. Returns the path a container reads.
fn projected(
    volumes: &Path,
    plugin: &str,
    volume: &str,
    file: &str,
    (mode, uid, gid): (u32, u32, u32),
) -> Result<PathBuf> {
    let plugin = volumes.join(plugin);
    dir(&plugin, 0o750, 0, 0)?;
    let volume = plugin.join(volume);
    let data = volume.join("..2026_01_01_00_00_00.000000001");
    dir(&volume, VOLUME_DIR, 0, gid)?;
    dir(&data, 0o755, 0, gid)?;
    std::fs::write(data.join(file), "s3cr3t")?;
    own(&data.join(file), mode, uid, gid)?;
    let link = volume.join(relay::DOWNWARD_API_DATA);
    if !link.exists() {
        std::os::unix::fs::symlink(data.file_name().context("name")?, &link)?;
    }
    std::os::unix::fs::symlink(
        format!("{}/{file}", relay::DOWNWARD_API_DATA),
        volume.join(file),
    )?;
    Ok(volume.join(file))
}

/// A container's log file under `logs/<namespace>_<pod>_<uid>/<container>/0.log`.
fn log(kubelet: &Kubelet, pod: &str, mode: u32) -> Result<PathBuf> {
    let container = kubelet.pod_logs().join(pod).join("compute");
    dir(&container, 0o755, 0, 0)?;
    let file = container.join("0.log");
    std::fs::write(&file, "a line a program logged\n")?;
    own(&file, mode, 0, 0)?;
    Ok(file)
}

/// The fake node: a launcher pod with its collector, a tenant's pods, the webhook's pod (as the
/// manifests run it, with `webhook` its user and fsGroup, and as they ran it before), a root
/// daemon's socket, two container logs.
pub fn node(kubelet: &Kubelet, webhook: (u32, u32)) -> Result<Node> {
    std::fs::set_permissions(kubelet.root(), std::fs::Permissions::from_mode(0o755))?;
    own(&kubelet.root().join(relay::PODS_DIR), 0o750, 0, 0)?;
    own(&kubelet.pod_logs(), 0o755, 0, 0)?;
    let (y, n) = (true, false);
    let mut rows = vec![Row {
        what: "the pods directory, listed",
        path: kubelet.root().join(relay::PODS_DIR),
        want: [y, y, y],
    }];

    // The launcher pod: the relay's socket and the webhook's downward-API volume.
    let launcher = pod_uid(1);
    let podinfo = kubelet.project(
        &launcher,
        &Podinfo::relay(&launcher, "vms", "virt-launcher-a"),
    )?;
    serve_body(
        kubelet.bind(&launcher)?,
        format!(
            "# TYPE {POD_INFO} gauge\n{POD_INFO}{{namespace=\"vms\",pod=\"virt-launcher-a\"}} 1\n"
        )
        .into_bytes(),
    );
    let volumes = pod_volumes(kubelet, &launcher)?;
    own(&podinfo, VOLUME_DIR, 0, QEMU)?;
    own(&volumes.join(relay::DOWNWARD_API_DIR), 0o750, 0, 0)?;
    let data = podinfo.join(relay::DOWNWARD_API_DATA).canonicalize()?;
    own(&data, 0o755, 0, QEMU)?;
    for entry in std::fs::read_dir(&data)? {
        own(&entry?.path(), 0o644, 0, QEMU)?;
    }
    let socket = kubelet.root().join(relay::socket_path(
        &launcher,
        sidecar::SOCKET_VOLUME,
        sidecar::SOCKET_NAME,
    ));
    own(&volumes.join(relay::EMPTY_DIR), 0o750, 0, 0)?;
    own(socket.parent().context("socket dir")?, VOLUME_DIR, 0, QEMU)?;
    own(&socket, 0o660, QEMU, QEMU)?;
    let private = volumes.join(relay::EMPTY_DIR).join("private");
    dir(&private, VOLUME_DIR, 0, QEMU)?;
    std::fs::write(private.join("state"), "launcher")?;
    own(&private.join("state"), 0o600, QEMU, QEMU)?;
    rows.extend([
        Row {
            what: "launcher: the collector's socket, 0660 107:107",
            path: socket,
            want: [y, y, y],
        },
        Row {
            what: "launcher: the webhook's downward-API labels, 0644 root:107",
            path: podinfo.join(sidecar::PODINFO_LABELS),
            want: [y, y, y],
        },
        Row {
            what: "launcher: a file of its own in an emptyDir, 0600 107:107",
            path: private.join("state"),
            want: [n, y, n],
        },
    ]);

    // The Secrets and tokens of the launcher pod, the tenants' and the webhook's.
    for file in projected_files(webhook) {
        let volumes = pod_volumes(kubelet, &pod_uid(file.pod))?;
        let (plugin, volume, name) = file.at;
        rows.push(Row {
            what: file.what,
            path: projected(&volumes, plugin, volume, name, file.mode)?,
            want: file.want,
        });
    }

    // A root daemon's socket in its pod's emptyDir (umask 022), and two container logs.
    let volumes = pod_volumes(kubelet, &pod_uid(6))?;
    let run = volumes.join(relay::EMPTY_DIR).join("run");
    dir(&volume_parent(&run)?, 0o750, 0, 0)?;
    dir(&run, 0o1777, 0, 0)?;
    // Bound at a short path and moved: the kubelet's is longer than `sun_path` allows.
    let short = kubelet.root().join("d.sock");
    let listener = UnixListener::bind(&short)?;
    let daemon = run.join("d.sock");
    std::fs::rename(&short, &daemon)?;
    own(&daemon, 0o755, 0, 0)?;
    rows.extend([
        Row {
            what: "a root daemon's socket in an emptyDir, 0755 root:root",
            path: daemon,
            want: [n, n, y],
        },
        Row {
            what: "a container log as containerd writes it, 0640 root:root",
            path: log(kubelet, "apps_web-0_1", 0o640)?,
            want: [y, y, y],
        },
        Row {
            what: "a container log as CRI-O's conmon writes it, 0600 root:root",
            path: log(kubelet, "apps_web-1_2", 0o600)?,
            want: [n, n, y],
        },
    ]);
    Ok(Node {
        rows,
        _daemon: listener,
    })
}

/// The Secrets and tokens of the launcher pod (it runs as 107, fsGroup 107); of a tenant's pod
/// with fsGroup 1000, and one that runs as 1000 with none; of the webhook's pod as the manifests
/// run it now (its user and fsGroup given) and as they did (fsGroup 107, no runAsUser).
fn projected_files((webhook_uid, webhook_group): (u32, u32)) -> [ProjectedFile; 12] {
    let (y, n) = (true, false);
    let (secret, token) = ("kubernetes.io~secret", "kubernetes.io~projected");
    let api = (token, "kube-api-access", "token");
    [
        ProjectedFile {
            what: "launcher: a Secret of default mode, 0644 root:107",
            pod: 1,
            at: (secret, "cloudinit", "userdata"),
            mode: (0o644, 0, QEMU),
            want: [y, y, y],
        },
        ProjectedFile {
            what: "launcher: a Secret of mode 0400, 0440 root:107",
            pod: 1,
            at: (secret, "sysprep", "unattend"),
            mode: (0o440, 0, QEMU),
            want: [y, y, y],
        },
        ProjectedFile {
            what: "launcher: its token (runs as 107), 0600 107:107",
            pod: 1,
            at: api,
            mode: (0o600, QEMU, QEMU),
            want: [n, y, n],
        },
        ProjectedFile {
            what: "tenant: a Secret of default mode, 0644 root:1000",
            pod: 2,
            at: (secret, "db", "password"),
            mode: (0o644, 0, TENANT),
            want: [y, y, y],
        },
        ProjectedFile {
            what: "tenant: a Secret of mode 0400, 0440 root:1000",
            pod: 2,
            at: (secret, "tls", "tls.key"),
            mode: (0o440, 0, TENANT),
            want: [n, n, y],
        },
        ProjectedFile {
            what: "tenant: its token (no runAsUser), 0644 root:1000",
            pod: 2,
            at: api,
            mode: (0o644, 0, TENANT),
            want: [y, y, y],
        },
        ProjectedFile {
            what: "tenant: a Secret of mode 0400, no fsGroup, 0400 root:root",
            pod: 3,
            at: (secret, "tls", "tls.key"),
            mode: (0o400, 0, 0),
            want: [n, n, y],
        },
        ProjectedFile {
            what: "tenant: its token (runs as 1000), 0600 1000:1000",
            pod: 3,
            at: api,
            mode: (0o600, TENANT, TENANT),
            want: [n, n, n],
        },
        ProjectedFile {
            what: "webhook: its TLS key, 0440 root:fsGroup",
            pod: 4,
            at: (secret, "tls", "tls.key"),
            mode: (0o440, 0, webhook_group),
            want: [n, n, y],
        },
        ProjectedFile {
            what: "webhook: its token (runAsUser set), 0640 user:fsGroup",
            pod: 4,
            at: api,
            mode: (0o640, webhook_uid, webhook_group),
            want: [n, n, n],
        },
        ProjectedFile {
            what: "webhook as it was: its TLS key, 0440 root:107",
            pod: 5,
            at: (secret, "tls", "tls.key"),
            mode: (0o440, 0, QEMU),
            want: [y, y, y],
        },
        ProjectedFile {
            what: "webhook as it was: its token (no runAsUser), 0644 root:107",
            pod: 5,
            at: api,
            mode: (0o644, 0, QEMU),
            want: [y, y, y],
        },
    ]
}

fn volume_parent(path: &Path) -> Result<PathBuf> {
    path.parent()
        .map(Path::to_path_buf)
        .context("a volume has a parent")
}
