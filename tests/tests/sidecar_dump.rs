//! `kube-metrics-collector -M` inside a fake virt-launcher pod: the output passes `promtool check
//! metrics`, a process the collector may not fully read is counted, not dropped, and what a pod
//! with the longest names sends fits the relay's caps with room to spare.

use anyhow::{Context as _, Result};
use e2e::collector;
use e2e::exposition::{self, Sample};
use e2e::hostproc;
use e2e::launcher::{self, QEMU_UID};
use e2e::pod::{FakePod, PodInfo, ProcessSpec};
use e2e::prometheus;
use kube_metrics_contract::limits::{MAX_BODY_BYTES, MAX_OUTPUT_BYTES, MAX_SERIES};

const NAMESPACE: &str = "e2e";
const VM: &str = "dumpvm";

fn dump(pod: &FakePod, uid: Option<u32>) -> Result<(String, Vec<Sample>)> {
    let podinfo = pod.podinfo_dir().to_string_lossy().into_owned();
    let output = collector::run_once(pod, uid, &["-M", "--podinfo", &podinfo])?;
    let text = String::from_utf8(output.stdout).context("-M printed non-UTF-8")?;
    let samples = exposition::parse(&text)?;
    Ok((text, samples))
}

#[test]
fn dump_passes_promtool() {
    e2e::preflight(&["unshare", "nsenter", "promtool"]).unwrap();
    let specs = launcher::core_processes(NAMESPACE, VM, None);
    let pod = FakePod::with_processes(&PodInfo::launcher(VM, 1), specs).unwrap();
    let (text, samples) = dump(&pod, None).unwrap();

    prometheus::promtool_check_metrics(text.as_bytes())
        .with_context(|| format!("--- input:\n{text}"))
        .unwrap();

    let qemu = [("process", "qemu")];
    assert_eq!(
        exposition::value(&samples, "kubevirt_pod_infra_processes", &qemu).unwrap(),
        1.0
    );
    assert_eq!(
        exposition::value(&samples, "kubevirt_pod_infra_threads", &qemu).unwrap(),
        6.0
    );
    assert!(
        exposition::select(&samples, "kubevirt_pod_infra_processes", &[])
            .iter()
            .all(|s| s.label("domain") == VM),
        "{text}"
    );
}

/// With no `kubevirt.io/domain` annotation, the domain comes from QEMU's `-name guest=<ns>_<vm>`.
#[test]
fn domain_falls_back_to_qemu_name() {
    e2e::preflight(&["unshare", "nsenter"]).unwrap();
    let mut info = PodInfo::launcher(VM, 1);
    info.annotations.remove("kubevirt.io/domain");
    let specs = launcher::core_processes(NAMESPACE, "from-qemu", None);
    let pod = FakePod::with_processes(&info, specs).unwrap();
    let (text, samples) = dump(&pod, None).unwrap();
    let processes = exposition::select(&samples, "kubevirt_pod_infra_processes", &[]);
    assert!(!processes.is_empty(), "{text}");
    assert!(
        processes.iter().all(|s| s.label("domain") == "from-qemu"),
        "{text}"
    );
}

/// The collector runs as qemu (107) like the rest of the pod, the monitor as root (as in KubeVirt's
/// root mode, and much like a monitor made non-dumpable by its file capability). The monitor's `io`
/// and `fd` are then unreadable: counted as permission errors, while its CPU and memory (from the
/// world-readable `stat` and `status`) are still exported.
#[test]
fn unreadable_fields_are_counted_not_fatal() {
    e2e::preflight(&["unshare", "nsenter", "setpriv"]).unwrap();
    let specs = launcher::core_processes(NAMESPACE, VM, Some(QEMU_UID))
        .into_iter()
        .map(|spec| match spec.key.as_str() {
            "virt-launcher-monitor" => spec.uid(None),
            _ => spec,
        });
    let pod = FakePod::with_processes(&PodInfo::launcher(VM, 1), specs).unwrap();
    let monitor_pid = pod.pid("virt-launcher-monitor").unwrap();
    assert_eq!(
        hostproc::status_field(monitor_pid, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("0")
    );

    let (text, samples) = dump(&pod, Some(QEMU_UID)).unwrap();
    let permission = exposition::value(
        &samples,
        "kube_metrics_collector_read_errors_total",
        &[("kind", "permission")],
    )
    .unwrap();
    assert!(permission > 0.0, "no permission errors counted:\n{text}");

    let monitor = [("process", "virt-launcher-monitor")];
    assert_eq!(
        exposition::value(&samples, "kubevirt_pod_infra_processes", &monitor).unwrap(),
        1.0
    );
    let cpu = exposition::select(&samples, "kubevirt_pod_infra_cpu_seconds_total", &monitor);
    assert_eq!(
        cpu.len(),
        2,
        "user and system CPU of the root process:\n{text}"
    );
    let resident = exposition::value(
        &samples,
        "kubevirt_pod_infra_memory_amount_bytes",
        &[("process", "virt-launcher-monitor"), ("type", "resident")],
    )
    .unwrap();
    let vm_rss = hostproc::status_bytes(monitor_pid, "VmRSS").unwrap() as f64;
    assert!(
        resident > 0.0 && (resident - vm_rss).abs() <= (vm_rss * 0.1).max(1024.0 * 1024.0),
        "monitor resident {resident} vs VmRSS {vm_rss}"
    );
    // The processes it may read fully are not affected.
    let qemu_threads = exposition::value(
        &samples,
        "kubevirt_pod_infra_threads",
        &[("process", "qemu")],
    )
    .unwrap();
    assert_eq!(qemu_threads, 6.0);
}

/// What the collector of a pod with the longest names Kubernetes allows (namespace 63, pod, node
/// and VM 253 characters) sends, and what the relay makes of it: the numbers behind the caps of
/// `kube_metrics_contract::limits`. The usual pod (its five processes) fits each cap at least 2.5
/// times, a pod with all twelve roles the collector knows and `--pss` at least 1.3 times.
#[test]
fn the_longest_names_fit_the_relays_caps() {
    e2e::preflight(&["unshare", "nsenter"]).unwrap();
    let (namespace, pod_name) = ("n".repeat(63), "p".repeat(253));
    let (node, vm) = ("h".repeat(253), "v".repeat(253));
    let relabelled = format!("namespace=\"{namespace}\",pod=\"{pod_name}\",").len();
    let core = launcher::core_processes(&namespace, &vm, None);
    let mut all = launcher::bench_processes(&namespace, &vm);
    all.push(ProcessSpec::new("libvirtd", &["/usr/sbin/libvirtd"]));
    all.push(ProcessSpec::new("other", &["/usr/bin/sleep-forever"]));
    for (what, specs, extra, room) in [
        ("five processes", core, &[][..], 2.5),
        ("twelve roles, --pss", all, &["--pss"][..], 1.3),
    ] {
        let pod = FakePod::with_processes(&PodInfo::launcher(&vm, 1), specs).unwrap();
        let podinfo = pod.podinfo_dir().to_string_lossy().into_owned();
        let args = [&["-M", "--podinfo", &podinfo][..], extra].concat();
        let output =
            collector::run_once_as(&pod, None, (&namespace, &pod_name), &node, &args).unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        // The relay adds namespace and pod to every line but pod_info, which has them.
        let forwarded = text.len() + (series - 1) * relabelled;
        println!(
            "{what}: {series} series, {} bytes, {forwarded} bytes relabelled",
            text.len()
        );
        for (measured, cap) in [
            (series, MAX_SERIES),
            (text.len(), MAX_BODY_BYTES),
            (forwarded, MAX_OUTPUT_BYTES),
        ] {
            assert!(
                measured as f64 * room <= cap as f64,
                "{what}: {measured} of {cap}"
            );
        }
    }
}
