//! The node collector (`kube-metrics-collector node`) over fake launcher pods in real cgroups:
//! each pod's processes move into its own kubepods-named scope, and a fake kubelet pods directory
//! and pod log directory say which pod was injected and who each pod is.

use crate::cgroups::CgroupTree;
use crate::pod::{FakePod, PodInfo};
use crate::relay::Kubelet;
use crate::{binaries, launcher, process};
use anyhow::{Context as _, Result};
use kube_metrics_contract::{relay, sidecar};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the kubelet shows of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The webhook skipped it: a log directory, no collector volume.
    Skipped,
    /// The webhook injected it: the collector's socket emptyDir is in its pod directory.
    Injected,
    /// No log directory: nobody attests who it is.
    Unattested,
}

/// One fake launcher pod on the fake node.
#[derive(Debug)]
pub struct NodePod {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub pod: FakePod,
}

// === impl NodePod ===

impl NodePod {
    /// Starts the core launcher processes of `vm` and moves each into pod `uid`'s scope (without a
    /// cgroup tree they stay where they are: see [`fixture_proc`]); the kubelet gets what `kind`
    /// says.
    pub fn start(
        tree: Option<&mut CgroupTree>,
        kubelet: &Kubelet,
        uid: &str,
        namespace: &str,
        vm: &str,
        kind: Kind,
    ) -> Result<Self> {
        let name = format!("virt-launcher-{vm}-abcde");
        let specs = launcher::core_processes(namespace, vm, None);
        let pod = FakePod::with_processes(&PodInfo::launcher(vm, 0), specs)?;
        if let Some(tree) = tree {
            let scope = tree.pod_scope(uid, "compute")?;
            for pid in pod
                .specs()
                .map(|s| pod.pid(&s.key))
                .collect::<Result<Vec<_>>>()?
            {
                CgroupTree::enter(&scope, pid)?;
                tree.check_member(&scope, pid)?;
            }
        }
        if kind != Kind::Unattested {
            let logs = kubelet.pod_logs().join(format!("{namespace}_{name}_{uid}"));
            std::fs::create_dir_all(logs)?;
        }
        let volumes = kubelet
            .root()
            .join(relay::PODS_DIR)
            .join(uid)
            .join(relay::VOLUMES_DIR);
        std::fs::create_dir_all(&volumes)?;
        if kind == Kind::Injected {
            std::fs::create_dir_all(volumes.join(relay::EMPTY_DIR).join(sidecar::SOCKET_VOLUME))?;
        }
        Ok(Self {
            uid: uid.to_owned(),
            namespace: namespace.to_owned(),
            name,
            pod,
        })
    }
}

/// For machines without a writable cgroup2 mount: a proc root holding a copy of the files the
/// collector reads of each pod's processes (`stat`, `status`, `io`, `cmdline`, as many `fd/`
/// entries, each thread's `stat`, `schedstat` and `comm`) and of `/proc/stat`, with a `cgroup`
/// file that puts them in their pod's scope as [`CgroupTree::pod_scope`] would.
pub fn fixture_proc(pods: &[&NodePod]) -> Result<tempfile::TempDir> {
    let mut by_pod = Vec::new();
    for pod in pods {
        let pids: Vec<u32> = pod
            .pod
            .specs()
            .map(|s| pod.pod.pid(&s.key))
            .collect::<Result<_>>()?;
        by_pod.push((pod.uid.clone(), pids));
    }
    fixture_proc_of(&by_pod)
}

/// Host pids by pod uid.
pub type PodPids = Vec<(String, Vec<u32>)>;

/// [`fixture_proc`] of `(pod uid, host pids)` pairs.
pub fn fixture_proc_of(pods: &PodPids) -> Result<tempfile::TempDir> {
    let root = tempfile::Builder::new()
        .prefix("e2e-fixture-proc-")
        .tempdir()?;
    std::fs::copy("/proc/stat", root.path().join("stat"))?;
    for (uid, pids) in pods {
        let cgroup = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-compute.scope\n",
            uid.replace('-', "_")
        );
        for &pid in pids {
            copy_process(
                &PathBuf::from(format!("/proc/{pid}")),
                &root.path().join(pid.to_string()),
                &cgroup,
            )?;
        }
    }
    Ok(root)
}

fn copy_process(real: &Path, copy: &Path, cgroup: &str) -> Result<()> {
    std::fs::create_dir_all(copy.join("fd"))?;
    for file in ["stat", "status", "io", "cmdline"] {
        std::fs::write(copy.join(file), std::fs::read(real.join(file))?)?;
    }
    std::fs::write(copy.join("cgroup"), cgroup)?;
    for (n, _) in std::fs::read_dir(real.join("fd"))?.enumerate() {
        std::fs::write(copy.join("fd").join(n.to_string()), "")?;
    }
    for task in std::fs::read_dir(real.join("task"))? {
        let task = task?;
        let dir = copy.join("task").join(task.file_name());
        std::fs::create_dir_all(&dir)?;
        for file in ["stat", "schedstat", "comm"] {
            std::fs::write(dir.join(file), std::fs::read(task.path().join(file))?)?;
        }
    }
    Ok(())
}

/// `kube-metrics-collector --proc-root <proc_root> node --once` over `kubelet`: its stdout.
pub fn scrape_once(proc_root: &Path, kubelet: &Kubelet) -> Result<String> {
    let mut command = Command::new(binaries::collector()?);
    command
        .env(
            kube_metrics_contract::sidecar::ENV_METRICS_PROFILE,
            crate::collector::PROFILE,
        )
        .arg("--proc-root")
        .arg(proc_root)
        .args(["node", "--once", "--kubelet-pods-dir"])
        .arg(kubelet.root().join(relay::PODS_DIR))
        .arg("--pod-logs-dir")
        .arg(kubelet.pod_logs());
    process::stdout(&mut command).context("node collector --once")
}
