//! The public scrape API over fake proc trees: classification, sums, monotonic counters,
//! degradation on missing and malformed files, and the pod identity.

mod common;

use common::{Tree, env, mk, role_series, text, value};
use kube_metrics_collector::podinfo::Env;
use kube_metrics_contract::metrics::POD_INFO;
use kube_metrics_contract::sidecar::{
    PODINFO_ANNOTATIONS, PODINFO_LABELS, PODINFO_MEMORY_LIMIT, PODINFO_MEMORY_REQUEST,
};

const TPS: f64 = 100.0; // USER_HZ on every mainstream Linux architecture; the fake ticks assume it.

fn tree_with_domain() -> Tree {
    let tree = Tree::new();
    tree.podinfo_file(PODINFO_ANNOTATIONS, "kubevirt.io/domain=\"vm-0\"\n");
    tree
}

fn get(text: &str, name: &str, role: &str, rest: &str) -> f64 {
    let series = format!("{}{rest}", role_series(name, role));
    value(text, &series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn sums_two_processes_with_one_role_into_one_series() {
    let tree = tree_with_domain();
    tree.put(&mk(10, "/usr/sbin/virtlogd", "virtlogd"));
    tree.put(&mk(11, "/usr/sbin/virtlogd", "virtlogd"));
    let out = text(&mut tree.scraper(env()));
    assert_eq!(
        get(&out, "kubevirt_pod_infra_processes", "virtlogd", "}"),
        2.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virtlogd",
            ",type=\"user\"}"
        ),
        200.0 / TPS
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_memory_amount_bytes",
            "virtlogd",
            ",type=\"resident\"}"
        ),
        2.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        get(&out, "kubevirt_pod_infra_open_fds", "virtlogd", "}"),
        6.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_io_bytes_total",
            "virtlogd",
            ",direction=\"write\"}"
        ),
        16384.0
    );
    let series = out
        .lines()
        .filter(|l| l.starts_with("kubevirt_pod_infra_processes{") && l.contains("virtlogd"))
        .count();
    assert_eq!(series, 1, "{out}");
    // Expected roles that do not run are 0, not absent.
    assert_eq!(get(&out, "kubevirt_pod_infra_processes", "qemu", "}"), 0.0);
    assert_eq!(
        get(&out, "kubevirt_pod_infra_processes", "virtqemud", "}"),
        0.0
    );
}

#[test]
fn pid_reuse_keeps_the_old_counters_without_double_counting() {
    let tree = tree_with_domain();
    let mut old = mk(100, "/usr/bin/virt-launcher", "virt-launcher");
    old.utime = 500;
    tree.put(&old);
    let mut scraper = tree.scraper(env());
    let first = text(&mut scraper);
    assert_eq!(
        get(
            &first,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virt-launcher",
            ",type=\"user\"}"
        ),
        5.0
    );

    // Same pid, new start time: a different process with fresh counters.
    let mut new = old.clone();
    new.start = 9000;
    new.utime = 10;
    tree.put(&new);
    let second = text(&mut scraper);
    assert_eq!(
        get(
            &second,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virt-launcher",
            ",type=\"user\"}"
        ),
        5.1
    );
    assert_eq!(
        get(
            &second,
            "kubevirt_pod_infra_process_restarts_total",
            "virt-launcher",
            "}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &second,
            "kubevirt_pod_infra_processes",
            "virt-launcher",
            "}"
        ),
        1.0
    );

    // Growth of the new process counts once, the old one's total stays.
    new.utime = 30;
    tree.put(&new);
    let third = text(&mut scraper);
    assert_eq!(
        get(
            &third,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virt-launcher",
            ",type=\"user\"}"
        ),
        5.3
    );
}

#[test]
fn counters_never_decrease_when_a_member_exits_and_restarts() {
    let tree = tree_with_domain();
    let mut a = mk(20, "/usr/sbin/virtqemud", "virtqemud");
    let b = mk(21, "/usr/sbin/virtqemud", "virtqemud");
    tree.put(&a);
    tree.put(&b);
    let mut scraper = tree.scraper(env());
    let mut previous: Vec<(String, f64)> = counters(&text(&mut scraper));
    for step in 0..4 {
        match step {
            0 => tree.remove(21),
            1 => {
                a.utime += 7;
                a.read_bytes += 100;
                tree.put(&a);
            }
            2 => tree.put(&mk(22, "/usr/sbin/virtqemud", "virtqemud")),
            _ => tree.remove(20),
        }
        let now = counters(&text(&mut scraper));
        for (series, before) in &previous {
            let after = now.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
            assert!(
                after.is_some_and(|v| v >= *before),
                "step {step}: {series} went from {before} to {after:?}"
            );
        }
        previous = now;
    }
    let last = text(&mut scraper);
    assert_eq!(
        get(&last, "kubevirt_pod_infra_processes", "virtqemud", "}"),
        1.0
    );
    assert_eq!(
        get(
            &last,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virtqemud",
            ",type=\"user\"}"
        ),
        3.07
    );
    assert_eq!(
        get(
            &last,
            "kubevirt_pod_infra_process_restarts_total",
            "virtqemud",
            "}"
        ),
        1.0
    );
}

fn counters(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && l.split(['{', ' '])
                    .next()
                    .is_some_and(|n| n.ends_with("_total"))
        })
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn vanished_files_are_counted_and_keep_what_was_read() {
    let tree = tree_with_domain();
    tree.put(&mk(30, "/usr/bin/virt-launcher", "virt-launcher"));
    // The process exited after its stat was read: status, io and fd/ are gone.
    for file in ["status", "io"] {
        std::fs::remove_file(tree.pid_dir(30).join(file)).unwrap();
    }
    std::fs::remove_dir_all(tree.pid_dir(30).join("fd")).unwrap();
    // A pid directory that vanished entirely between listing and reading.
    std::fs::create_dir(tree.pid_dir(31)).unwrap();
    let out = text(&mut tree.scraper(env()));
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_cpu_seconds_total",
            "virt-launcher",
            ",type=\"user\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &out,
            "kube_metrics_collector_read_errors_total{kind=\"vanished\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &out,
            "kube_metrics_collector_read_errors_total{kind=\"parse\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn a_malformed_field_only_loses_that_field() {
    let tree = tree_with_domain();
    tree.put(&mk(40, "/usr/bin/virt-launcher", "virt-launcher"));
    std::fs::write(
        tree.pid_dir(40).join("status"),
        "Name:\tvirt-launcher\nVmRSS:\tgarbage kB\nRssAnon:\t300 kB\nvoluntary_ctxt_switches:\t9\n",
    )
    .unwrap();
    let out = text(&mut tree.scraper(env()));
    assert_eq!(
        value(
            &out,
            "kube_metrics_collector_read_errors_total{kind=\"parse\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_memory_amount_bytes",
            "virt-launcher",
            ",type=\"resident\"}"
        ),
        0.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_memory_amount_bytes",
            "virt-launcher",
            ",type=\"anonymous\"}"
        ),
        300.0 * 1024.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_io_bytes_total",
            "virt-launcher",
            ",direction=\"read\"}"
        ),
        4096.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_context_switches_total",
            "virt-launcher",
            ",type=\"voluntary\"}"
        ),
        9.0
    );
}

#[test]
fn truncated_comm_and_empty_cmdline_are_classified_by_comm() {
    let tree = tree_with_domain();
    // A zombie monitor: empty cmdline, comm truncated to 15 bytes, no Vm* lines in status.
    let mut zombie = mk(50, "", "virt-launcher-m");
    zombie.state = 'Z';
    zombie.rss_kib = None;
    zombie.fds = 0;
    tree.put(&zombie);
    let out = text(&mut tree.scraper(env()));
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_processes",
            "virt-launcher-monitor",
            "}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &out,
            "kubevirt_pod_infra_memory_amount_bytes",
            "virt-launcher-monitor",
            ",type=\"resident\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &out,
            "kube_metrics_collector_read_errors_total{kind=\"parse\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn excludes_self_pause_and_other_collectors() {
    let tree = tree_with_domain();
    tree.put(&mk(1, "/pause", "pause"));
    tree.put(&mk(
        60,
        "/usr/bin/kube-metrics-collector",
        "kube-metrics-co",
    ));
    tree.put(&mk(61, "/usr/local/bin/anything", "anything"));
    tree.put(&mk(62, "/usr/bin/sleep", "sleep"));
    std::os::unix::fs::symlink("61", tree.proc_root().join("self")).unwrap();
    let out = text(&mut tree.scraper(env()));
    assert_eq!(get(&out, "kubevirt_pod_infra_processes", "other", "}"), 1.0);
}

#[test]
fn splits_qemu_cpu_by_thread_class_and_keeps_exited_threads() {
    let tree = Tree::new();
    let mut qemu = mk(70, "/usr/libexec/qemu-kvm", "qemu-kvm");
    qemu.argv
        .extend(["-name".into(), "guest=ns-0_vm-0,debug-threads=on".into()]);
    qemu.threads = vec![
        (70, "qemu-kvm".into(), 10, 5),
        (71, "IO iothread1".into(), 20, 10),
        (72, "CPU 0/KVM".into(), 300, 40),
        (73, "CPU 1/KVM".into(), 200, 60),
        (74, "worker".into(), 1, 1),
    ];
    tree.put(&qemu);
    let mut scraper = tree.scraper(env());
    let out = text(&mut scraper);
    // The domain comes from QEMU's -name when no annotation says it.
    let vcpu = "kubevirt_pod_infra_qemu_thread_cpu_seconds_total{host=\"node-0\",domain=\"vm-0\",process=\"qemu\",class=\"vcpu\",type=\"user\"}";
    assert_eq!(value(&out, vcpu), Some(5.0), "{out}");
    let io = "kubevirt_pod_infra_qemu_thread_cpu_seconds_total{host=\"node-0\",domain=\"vm-0\",process=\"qemu\",class=\"iothread\",type=\"system\"}";
    assert_eq!(value(&out, io), Some(0.1));
    let other = "kubevirt_pod_infra_qemu_thread_cpu_seconds_total{host=\"node-0\",domain=\"vm-0\",process=\"qemu\",class=\"other\",type=\"user\"}";
    assert_eq!(value(&out, other), Some(0.11));
    assert_eq!(get(&out, "kubevirt_pod_infra_threads", "qemu", "}"), 5.0);

    // A vCPU thread exits: its time stays in the class.
    qemu.threads.retain(|t| t.0 != 73);
    tree.put(&qemu);
    let out = text(&mut scraper);
    assert_eq!(value(&out, vcpu), Some(5.0));
}

#[test]
fn malformed_downward_api_files_degrade_to_fallbacks() {
    let tree = Tree::new();
    tree.podinfo_file(
        PODINFO_ANNOTATIONS,
        "kubevirt.io/domain=unquoted\nkubevirt.io/memory-overhead-bytes=\"231735296\"\n",
    );
    tree.podinfo_file(PODINFO_LABELS, "\u{1}\u{2}nonsense\n");
    tree.podinfo_file(PODINFO_MEMORY_REQUEST, "1Gi\n");
    tree.podinfo_file(PODINFO_MEMORY_LIMIT, "2147483648\n");
    tree.put(&mk(80, "/usr/bin/virt-launcher", "virt-launcher"));
    let env = Env {
        node_name: None,
        ..env()
    };
    let out = text(&mut tree.scraper(env));
    let pod = "host=\"node-fixture\",domain=\"virt-launcher-vm-0-abcde\"";
    assert_eq!(
        value(
            &out,
            &format!("kubevirt_pod_infra_memory_overhead_estimate_bytes{{{pod}}}")
        ),
        Some(231_735_296.0)
    );
    assert_eq!(
        value(
            &out,
            &format!("kubevirt_pod_infra_compute_memory_bytes{{{pod},type=\"limit\"}}")
        ),
        Some(2_147_483_648.0)
    );
    assert!(!out.contains("type=\"request\""), "{out}");
    assert_eq!(
        value(
            &out,
            &format!(
                "{POD_INFO}{{{pod},namespace=\"ns-0\",pod=\"virt-launcher-vm-0-abcde\",name=\"virt-launcher-vm-0-abcde\"}}"
            )
        ),
        Some(1.0)
    );
}

#[test]
fn a_hot_plugged_dimm_counts_as_guest_ram_and_is_flagged() {
    let tree = tree_with_domain();
    tree.put_captured_qemu(90, "dimm-hotplug-256m-tcg");
    let out = text(&mut tree.scraper(env()));
    let guest = |kind: &str| {
        let series = format!(
            "kubevirt_pod_infra_guest_memory_bytes{{host=\"node-0\",domain=\"vm-0\",type=\"{kind}\"}}"
        );
        value(&out, &series).unwrap_or_else(|| panic!("no {series} in:\n{out}"))
    };
    const MIB: f64 = 1024.0 * 1024.0;
    assert_eq!(guest("size"), 256.0 * MIB, "the command line's");
    assert!(guest("resident") >= 256.0 * MIB, "{out}");
    let own = value(&out, "kubevirt_pod_infra_qemu_own_memory_bytes{").unwrap();
    assert!(own < 40.0 * MIB, "QEMU's own memory {own}");
    let health = |name: &str| {
        value(
            &out,
            &format!("kube_metrics_collector_guest_memory_{name} "),
        )
    };
    assert_eq!(health("unmatched_backends"), Some(0.0));
    assert_eq!(health("unexplained_bytes"), Some(256.0 * MIB));
}
