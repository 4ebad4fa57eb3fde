//! The node collector's scrape over a fixture `/proc` (runs anywhere, as any user; the real-cgroup
//! version is tests/tests/node_collector_e2e.rs): processes of several pods, told apart only by
//! their `cgroup` files, and a fake kubelet pods directory and pod log directory. Only the
//! uninjected launcher pod with an attested identity is reported, under that identity; a pod that
//! goes away is dropped.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Tree, mk};
use kube_metrics_collect::classify::Roles;
use kube_metrics_collect::collect::GuestMemoryConfig;
use kube_metrics_collect::families::Exclusions;
use kube_metrics_collect::proc::ProcRoot;
use kube_metrics_node::collector::pods::{Layout, NodeScraper, PodCounts};

const SKIPPED: &str = "6f1c0e8a-0000-4000-8000-000000000001";
const INJECTED_BY_VOLUME: &str = "6f1c0e8a-0000-4000-8000-000000000002";
const INJECTED_BY_PROCESS: &str = "6f1c0e8a-0000-4000-8000-000000000003";
const UNATTESTED: &str = "6f1c0e8a-0000-4000-8000-000000000004";
const NOT_A_LAUNCHER: &str = "6f1c0e8a-0000-4000-8000-000000000005";

struct Node {
    tree: Tree,
    kubelet: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let node = Self {
            tree: Tree::new(),
            kubelet: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(node.pods()).unwrap();
        fs::create_dir_all(node.logs()).unwrap();
        node
    }

    /// A node with one pod of each kind: a skipped launcher pod with an attested identity
    /// (pids 100-103), launcher pods injected by volume (200-) and by process (300-, 310), an
    /// unattested launcher pod (400-), an nginx pod with a collector of its own (500, 501), and
    /// systemd on the host.
    fn mixed() -> Self {
        let node = Self::new();
        node.process(1, "/sbin/init", "systemd", None);
        node.launcher(100, SKIPPED);
        node.log_dir("vms-a", "virt-launcher-gpu-vm-abcde", SKIPPED);
        node.launcher(200, INJECTED_BY_VOLUME);
        node.log_dir("vms-b", "virt-launcher-b-abcde", INJECTED_BY_VOLUME);
        fs::create_dir_all(
            node.pods()
                .join(INJECTED_BY_VOLUME)
                .join("volumes/kubernetes.io~empty-dir/kube-metrics-collector-socket"),
        )
        .unwrap();
        node.launcher(300, INJECTED_BY_PROCESS);
        node.process(
            310,
            "/usr/bin/kube-metrics-collector",
            "kube-metrics-co",
            Some(INJECTED_BY_PROCESS),
        );
        node.log_dir("vms-c", "virt-launcher-c-abcde", INJECTED_BY_PROCESS);
        node.launcher(400, UNATTESTED);
        node.process(500, "/usr/sbin/nginx", "nginx", Some(NOT_A_LAUNCHER));
        // A collector outside a launcher pod (the node collector's own pod) is not an injected pod.
        node.process(
            501,
            "/usr/bin/kube-metrics-collector",
            "kube-metrics-co",
            Some(NOT_A_LAUNCHER),
        );
        node.log_dir("web", "nginx-abcde", NOT_A_LAUNCHER);
        node
    }

    fn pods(&self) -> PathBuf {
        self.kubelet.path().join("pods")
    }

    fn logs(&self) -> PathBuf {
        self.kubelet.path().join("logs")
    }

    /// A process in pod `uid`'s container scope (v2, systemd driver), or on the host for `None`.
    fn process(&self, pid: i32, argv0: &str, comm: &str, uid: Option<&str>) {
        self.tree.put(&mk(pid, argv0, comm));
        let cgroup = match uid {
            Some(uid) => format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{pid}.scope\n",
                uid.replace('-', "_")
            ),
            None => "0::/system.slice/sshd.service\n".to_owned(),
        };
        fs::write(self.tree.pid_dir(pid).join("cgroup"), cgroup).unwrap();
    }

    fn launcher(&self, first_pid: i32, uid: &str) {
        self.process(first_pid, "/pause", "pause", Some(uid));
        self.process(
            first_pid + 1,
            "/usr/bin/virt-launcher-monitor",
            "virt-launcher-m",
            Some(uid),
        );
        self.process(
            first_pid + 2,
            "/usr/bin/virt-launcher",
            "virt-launcher",
            Some(uid),
        );
        self.process(
            first_pid + 3,
            "/usr/libexec/qemu-kvm",
            "qemu-kvm",
            Some(uid),
        );
    }

    fn log_dir(&self, namespace: &str, name: &str, uid: &str) {
        fs::create_dir_all(self.logs().join(format!("{namespace}_{name}_{uid}"))).unwrap();
    }

    fn scraper(&self) -> NodeScraper {
        let config = kube_metrics_collect::Config {
            proc_root: ProcRoot::new(self.tree.proc_root()),
            roles: Roles::new(&[]),
            pss: false,
            guest_memory: GuestMemoryConfig {
                interval: None,
                background: false,
            },
            kubevirt_release: None,
            exclude: Exclusions::full(),
        };
        let layout = Layout {
            kubelet_pods: self.pods(),
            pod_logs: self.logs(),
            socket_volume: "kube-metrics-collector-socket".into(),
        };
        NodeScraper::new(config, layout, Some("node-0".into()))
    }
}

fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(&format!("{name}{{")))
        .collect()
}

#[test]
fn reports_only_the_uninjected_attested_launcher_pod() {
    let node = Node::mixed();

    let mut scraper = node.scraper();
    let text = String::from_utf8(scraper.scrape()).unwrap();
    assert_eq!(
        scraper.last,
        PodCounts {
            collected: 1,
            injected: 2,
            unverified: 0,
            unattested: 1,
            unattested_processes: 4,
            // The fixture's QEMU has no `-name`.
            domain_fallbacks: 1,
        },
        "{text}"
    );
    let id = r#"namespace="vms-a",pod="virt-launcher-gpu-vm-abcde""#;
    let processes = series(&text, "kubevirt_pod_infra_processes");
    assert!(!processes.is_empty(), "{text}");
    assert!(processes.iter().all(|l| l.contains(id)), "{processes:#?}");
    for role in ["virt-launcher-monitor", "virt-launcher", "qemu"] {
        let line = format!(
            "kubevirt_pod_infra_processes{{{id},host=\"node-0\",domain=\"virt-launcher-gpu-vm-abcde\",process=\"{role}\"}} 1"
        );
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    // The fixture's 1024 KiB VmRSS per process.
    let resident = format!(
        "kubevirt_pod_infra_memory_amount_bytes{{{id},host=\"node-0\",domain=\"virt-launcher-gpu-vm-abcde\",process=\"qemu\",type=\"resident\"}} 1048576"
    );
    assert!(text.lines().any(|l| l == resident), "{resident}\n{text}");
    assert_eq!(
        series(&text, "kubevirt_pod_infra_pod_info").len(),
        1,
        "{text}"
    );
    for other in ["vms-b", "vms-c", "web"] {
        assert!(
            !text.contains(&format!("namespace=\"{other}\"")),
            "{other}:\n{text}"
        );
    }

    // The pod goes away: its series go with it at the next scrape.
    for pid in 100..104 {
        node.tree.remove(pid);
    }
    let text = String::from_utf8(scraper.scrape()).unwrap();
    assert_eq!(scraper.last.collected, 0, "{text}");
    assert!(
        series(&text, "kubevirt_pod_infra_processes").is_empty(),
        "{text}"
    );
}

#[test]
fn an_unreadable_listing_reports_nothing() {
    let node = Node::new();
    fs::remove_dir_all(node.tree.proc_root()).unwrap();
    let mut scraper = node.scraper();
    let text = String::from_utf8(scraper.scrape()).unwrap();
    assert_eq!(scraper.last, PodCounts::default());
    assert!(
        text.contains("kube_metrics_collector_node_pods{state=\"collected\"} 0"),
        "{text}"
    );
}

/// VmHWM of this process, in KiB.
fn peak_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_node_full_of_pods_with_huge_guest_names_stays_small() {
    // maxPods: 110 ordinary pods, each running a `qemu-kvm` whose guest name is 130 KB (an
    // argument's most is 128 KiB of a 2 MiB command line).
    const PODS: usize = 110;
    let node = Node::new();
    let name = "g".repeat(130_000);
    for i in 0..PODS {
        let uid = format!("6f1c0e8a-0000-4000-8000-{i:012}");
        let pid = 1000 + i as i32;
        node.process(pid, "/usr/libexec/qemu-kvm", "qemu-kvm", Some(&uid));
        let cmdline =
            format!("/usr/libexec/qemu-kvm\0-name\0guest=ns-{i}_{name},debug-threads=on\0");
        fs::write(node.tree.pid_dir(pid).join("cmdline"), cmdline).unwrap();
        node.log_dir(&format!("ns-{i}"), &format!("pod-{i}"), &uid);
    }
    let before = peak_kib();
    let mut scraper = node.scraper();
    scraper.scrape();
    let text = String::from_utf8(scraper.scrape()).unwrap();
    let grew = peak_kib().saturating_sub(before);
    println!(
        "attack 7: {PODS} pods with 130 KB guest names: body {} KiB, {} series, peak RSS +{:.1} MiB, fallbacks {}",
        text.len() / 1024,
        text.lines().filter(|l| !l.starts_with('#')).count(),
        grew as f64 / 1024.0,
        scraper.last.domain_fallbacks,
    );
    assert_eq!(scraper.last.collected, PODS as u64);
    assert_eq!(scraper.last.domain_fallbacks, PODS as u64);
    assert!(
        !text.contains("ggggggggggggggggggggggggggggggggggg"),
        "a guest name reached a label"
    );
    assert!(
        text.contains(r#"domain="pod-7""#),
        "the pod's name stands in"
    );
    // Each pod's exposition is tens of KiB, not 74 series of 130 KB (9.6 MB per pod).
    assert!(text.len() < PODS * 32 * 1024, "{} bytes", text.len());
    assert!(grew < 64 * 1024, "grew {grew} KiB");
}

/// What one `node --once` prints for a fixed node: skipped pods with and without a guest name, a
/// pod recreated under an attested name already served, injected, unattested and other pods, in
/// both profiles. The two durations are the only values that vary from run to run. With
/// `KMC_COLLECTOR_BINARY` naming another build (the previous code's), the same test holds that
/// build's output to the same golden files.
#[test]
fn node_once_prints_the_golden_output() {
    let node = Node::mixed();
    node.process(104, "/usr/sbin/virtqemud", "virtqemud", Some(SKIPPED));
    node.process(105, "/usr/sbin/virtlogd", "virtlogd", Some(SKIPPED));
    let mut qemu = mk(106, "/usr/libexec/qemu-kvm", "qemu-kvm");
    qemu.threads = vec![
        (106, "qemu-kvm".into(), 40, 20),
        (107, "CPU 0/KVM".into(), 900, 300),
        (108, "CPU 1/KVM".into(), 800, 200),
        (109, "IO iothread1".into(), 30, 70),
        (110, "worker".into(), 5, 5),
    ];
    node.tree.put(&qemu);
    fs::copy(
        node.tree.pid_dir(100).join("cgroup"),
        node.tree.pid_dir(106).join("cgroup"),
    )
    .unwrap();
    fs::write(
        node.tree.pid_dir(106).join("cmdline"),
        "/usr/libexec/qemu-kvm\0-name\0guest=vms-a_gpu-vm,debug-threads=on\0-m\0size=2097152k\0",
    )
    .unwrap();
    node.tree.remove(103);
    // A second skipped VM without a guest name, and a pod recreated under the first one's name.
    const SECOND: &str = "6f1c0e8a-0000-4000-8000-000000000006";
    const RECREATED: &str = "6f1c0e8a-0000-4000-8000-000000000007";
    node.launcher(600, SECOND);
    node.log_dir("vms-d", "virt-launcher-d-abcde", SECOND);
    node.launcher(700, RECREATED);
    node.log_dir("vms-a", "virt-launcher-gpu-vm-abcde", RECREATED);

    for (profile, file) in [("full", "node.prom"), ("default", "node.default.prom")] {
        let binary = std::env::var_os("KMC_COLLECTOR_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_kube-metrics-collector").into());
        let output = std::process::Command::new(binary)
            .env_clear()
            .env("NODE_NAME", "node-0")
            .arg("--proc-root")
            .arg(node.tree.proc_root())
            .args(["--metrics-profile", profile, "node", "--once"])
            .arg("--kubelet-pods-dir")
            .arg(node.pods())
            .arg("--pod-logs-dir")
            .arg(node.logs())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = without_durations(&String::from_utf8(output.stdout).unwrap());
        let path = format!(
            "{}/tests/fixtures/golden/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            fs::write(&path, &text).unwrap();
        }
        let golden = fs::read_to_string(&path).unwrap();
        assert!(
            text == golden,
            "{file} differs; rerun with UPDATE_GOLDEN=1 if intended:\n{text}"
        );
    }
}

/// `text` with the values of the two duration gauges replaced by `D`.
fn without_durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let timed = [
            "kube_metrics_collector_collection_duration_seconds",
            "kube_metrics_collector_node_scrape_duration_seconds",
        ]
        .iter()
        .any(|name| line.starts_with(name));
        match line.rsplit_once(' ') {
            Some((series, _)) if timed => out.push_str(&format!("{series} D")),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
