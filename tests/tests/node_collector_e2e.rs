//! The node collector on a fake node: two fake launcher pods whose processes run in real cgroups
//! named as the kubelet names them (systemd driver, cgroup v2, under a test-owned subtree), one
//! injected by the webhook (its pod directory has the collector's socket emptyDir) and one
//! skipped, and a third without a pod log directory. `kube-metrics-collector node --once` over the real `/proc` must report the skipped
//! pod, under the identity its pod log directory gives, with the process count, threads and RSS
//! `/proc` shows, nothing of the injected one, and count the unattested one's processes.

use anyhow::{Context as _, Result, ensure};
use e2e::cgroups::CgroupTree;
use e2e::exposition::{self, Sample};
use e2e::hostproc;
use e2e::node::{self, Kind, NodePod};
use e2e::relay::Kubelet;
use std::path::Path;

const SKIPPED_UID: &str = "0b5e7a1c-1111-4000-8000-00000000e2e1";
const INJECTED_UID: &str = "0b5e7a1c-2222-4000-8000-00000000e2e2";
const UNATTESTED_UID: &str = "0b5e7a1c-3333-4000-8000-00000000e2e3";

#[test]
fn reports_the_skipped_pod_once_under_its_attested_identity() {
    e2e::preflight(&["unshare", "nsenter"]).unwrap();
    // Real cgroups where the machine allows them (root, a writable cgroup2 mount); otherwise a
    // fixture proc root copied from the real one, and the test says so.
    // `KMC_E2E_FIXTURE_PROC=1` takes the fixture path anyway, to check it.
    let cgroups = match std::env::var_os("KMC_E2E_FIXTURE_PROC") {
        Some(_) => Err(anyhow::anyhow!("KMC_E2E_FIXTURE_PROC is set")),
        None => CgroupTree::new(),
    };
    let mut tree = match cgroups {
        Ok(tree) => Some(tree),
        Err(error) => {
            eprintln!(
                "node_collector_e2e: no writable cgroup2 ({error:#}): using a fixture proc root \
                 copied from /proc, with kubepods cgroup files"
            );
            None
        }
    };
    let kubelet = Kubelet::new("e2e-kubelet-node-").unwrap();
    let mut start = |uid, namespace, vm, kind| {
        NodePod::start(tree.as_mut(), &kubelet, uid, namespace, vm, kind).unwrap()
    };
    let skipped = start(SKIPPED_UID, "vms-a", "gpu-vm", Kind::Skipped);
    let injected = start(INJECTED_UID, "vms-b", "plain-vm", Kind::Injected);
    let unattested = start(UNATTESTED_UID, "vms-c", "ghost-vm", Kind::Unattested);
    let fixture = match tree {
        Some(_) => None,
        None => Some(node::fixture_proc(&[&skipped, &injected, &unattested]).unwrap()),
    };
    let proc_root = fixture.as_ref().map_or(Path::new("/proc"), |f| f.path());
    let text = node::scrape_once(proc_root, &kubelet).unwrap();
    if let Err(error) = check(&text, &skipped, &injected, &unattested) {
        panic!("{error:#}\n--- node collector output:\n{text}");
    }
    drop((skipped, injected, unattested));
    drop(tree);
}

fn check(text: &str, skipped: &NodePod, injected: &NodePod, unattested: &NodePod) -> Result<()> {
    let samples = exposition::parse(text)?;
    let count = |state: &str| {
        exposition::value(
            &samples,
            "kube_metrics_collector_node_pods",
            &[("state", state)],
        )
    };
    ensure!(count("collected")? == 1.0, "collected pods");
    ensure!(count("injected")? == 1.0, "injected pods");
    ensure!(count("unattested")? == 1.0, "unattested pods");
    let left_out = exposition::value(
        &samples,
        "kube_metrics_collector_node_unattested_processes",
        &[],
    )?;
    ensure!(
        left_out == unattested.pod.specs().count() as f64,
        "{left_out} unattested processes"
    );
    ensure!(count("unverified")? == 0.0, "unverified pods");
    ensure!(
        !samples
            .iter()
            .any(|s| s.label("pod") == injected.name || s.label("pod") == unattested.name),
        "the injected pod's series come from its own collector only, the unattested pod's from none"
    );
    let id = [
        ("namespace", skipped.namespace.as_str()),
        ("pod", skipped.name.as_str()),
    ];
    let info = exposition::select(&samples, "kubevirt_pod_infra_pod_info", &id);
    ensure!(info.len() == 1, "pod_info of the skipped pod: {info:?}");
    for spec in skipped.pod.specs() {
        let role = spec.key.as_str();
        let pid = skipped.pod.pid(role)?;
        let sel = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
            let mut s = vec![id[0], id[1], ("process", role)];
            s.extend_from_slice(extra);
            s
        };
        let processes = exposition::value(&samples, "kubevirt_pod_infra_processes", &sel(&[]))?;
        ensure!(processes == 1.0, "{role}: {processes} processes");
        let threads = exposition::value(&samples, "kubevirt_pod_infra_threads", &sel(&[]))?;
        let host_threads = hostproc::threads(pid)?;
        ensure!(
            threads == host_threads as f64,
            "{role}: {threads} threads, /proc says {host_threads}"
        );
        let resident = exposition::value(
            &samples,
            "kubevirt_pod_infra_memory_amount_bytes",
            &sel(&[("type", "resident")]),
        )?;
        let vm_rss = hostproc::status_bytes(pid, "VmRSS")? as f64;
        ensure!(
            (resident - vm_rss).abs() <= (vm_rss * 0.05).max(1024.0 * 1024.0),
            "{role}: resident {resident} vs VmRSS {vm_rss}"
        );
    }
    let every_series_is_the_pods = samples
        .iter()
        .filter(|s: &&Sample| s.name.starts_with("kubevirt_pod_infra_"))
        .all(|s| s.matches(&id));
    ensure!(
        every_series_is_the_pods,
        "a kubevirt_pod_infra_ series without the pod's labels"
    );
    let qemu_memory = exposition::value(
        &samples,
        "kubevirt_pod_infra_memory_amount_bytes",
        &[id[0], id[1], ("process", "qemu"), ("type", "anonymous")],
    )
    .context("qemu anonymous memory")?;
    ensure!(
        qemu_memory >= 64.0 * 1024.0 * 1024.0,
        "qemu touched 64 MiB: {qemu_memory}"
    );
    eprintln!(
        "checked: {} samples of {}/{}",
        samples.len(),
        skipped.namespace,
        skipped.name
    );
    Ok(())
}
