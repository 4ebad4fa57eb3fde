//! The node collector (`kube-metrics-collector node`) over fake launcher pods in real cgroups:
//! each pod's processes move into its own kubepods-named scope, and a fake kubelet pods directory
//! and pod log directory say which pod was injected and who each pod is.

use crate::cgroups::CgroupTree;
use crate::pod::{FakePod, PodInfo};
use crate::relay::Kubelet;
use crate::{binaries, launcher, process};
use anyhow::{Context as _, Result};
use kube_metrics_contract::{relay, sidecar};
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
    /// Starts the core launcher processes of `vm` and moves each into pod `uid`'s scope; the
    /// kubelet gets what `kind` says.
    pub fn start(
        tree: &mut CgroupTree,
        kubelet: &Kubelet,
        uid: &str,
        namespace: &str,
        vm: &str,
        kind: Kind,
    ) -> Result<Self> {
        let name = format!("virt-launcher-{vm}-abcde");
        let specs = launcher::core_processes(namespace, vm, None);
        let pod = FakePod::with_processes(&PodInfo::launcher(vm, 0), specs)?;
        let scope = tree.pod_scope(uid, "compute")?;
        let keys: Vec<String> = pod.specs().map(|s| s.key.clone()).collect();
        for key in &keys {
            let pid = pod.pid(key)?;
            CgroupTree::enter(&scope, pid)?;
            tree.check_member(&scope, pid)?;
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

/// `kube-metrics-collector --proc-root /proc node --once` over `kubelet`: its stdout.
pub fn scrape_once(kubelet: &Kubelet) -> Result<String> {
    let mut command = Command::new(binaries::collector()?);
    command
        .args([
            "--proc-root",
            "/proc",
            "node",
            "--once",
            "--kubelet-pods-dir",
        ])
        .arg(kubelet.root().join(relay::PODS_DIR))
        .arg("--pod-logs-dir")
        .arg(kubelet.pod_logs());
    process::stdout(&mut command).context("node collector --once")
}
