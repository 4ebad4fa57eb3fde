//! Golden exposition text for both formats over one fake launcher pod.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p kube-metrics-collector --test exposition`
//! and review the diff.

mod common;

use common::{Tree, env, mk, render};
use kube_metrics_collector::exposition::Format;
use kube_metrics_contract::sidecar::{PODINFO_ANNOTATIONS, PODINFO_MEMORY_REQUEST};

fn launcher_pod() -> Tree {
    let tree = Tree::new();
    tree.podinfo_file(
        PODINFO_ANNOTATIONS,
        "kubevirt.io/domain=\"vm-0\"\nkubevirt.io/memory-overhead-bytes=\"231735296\"\n",
    );
    tree.podinfo_file(PODINFO_MEMORY_REQUEST, "2147483648\n");
    tree.put(&mk(1, "/pause", "pause"));
    tree.put(&mk(10, "/usr/bin/virt-launcher-monitor", "virt-launcher-m"));
    tree.put(&mk(11, "/usr/bin/virt-launcher", "virt-launcher"));
    tree.put(&mk(12, "/usr/sbin/virtqemud", "virtqemud"));
    let mut qemu = mk(20, "/usr/libexec/qemu-kvm", "qemu-kvm");
    qemu.argv
        .extend(["-name".into(), "guest=ns-0_vm-0,debug-threads=on".into()]);
    qemu.argv.extend(["-m".into(), "size=2097152k".into()]);
    qemu.threads = vec![
        (20, "qemu-kvm".into(), 10, 5),
        (21, "CPU 0/KVM".into(), 300, 40),
        (22, "IO iothread1".into(), 20, 10),
    ];
    tree.put(&qemu);
    tree
}

/// Lines that change from run to run.
fn stable(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.starts_with("kube_metrics_collector_collection_duration_seconds ")
                && !l.starts_with("kube_metrics_collector_build_info{")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn check(format: Format, file: &str) {
    let tree = launcher_pod();
    let got = stable(&render(&mut tree.scraper(env()), format));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got, want,
        "golden {file} differs; rerun with UPDATE_GOLDEN=1 if intended"
    );
}

#[test]
fn text_0_0_4_matches_golden() {
    check(Format::Text, "launcher-pod.prom");
}

#[test]
fn openmetrics_1_0_0_matches_golden() {
    check(Format::OpenMetrics, "launcher-pod.openmetrics");
}
