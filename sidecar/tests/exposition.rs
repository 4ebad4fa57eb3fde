//! Golden exposition text for both formats over one fake launcher pod.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p kube-metrics-collector --test exposition`
//! and review the diff.

mod common;

use common::{Tree, env, mk, render};
use kube_metrics_collect::families::Exclusions;
use kube_metrics_contract::metrics::Profile;
use kube_metrics_contract::sidecar::{PODINFO_ANNOTATIONS, PODINFO_MEMORY_REQUEST};
use kube_metrics_exposition::Format;

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
    check_profile(Profile::Full, format, file);
}

fn check_profile(profile: Profile, format: Format, file: &str) {
    let tree = launcher_pod();
    let exclude = Exclusions::parse(profile, &[]).unwrap();
    let got = stable(&render(&mut tree.scraper_with(env(), exclude), format));
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

/// The default profile of the same pod: what the rules, alerts, dashboards and `kubectl kmc` read.
/// Every line of it is a line of the full profile's golden.
#[test]
fn default_profile_matches_golden_and_is_part_of_the_full_one() {
    check_profile(Profile::Default, Format::Text, "launcher-pod.default.prom");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let full = std::fs::read_to_string(dir.join("launcher-pod.prom")).unwrap();
    let default = std::fs::read_to_string(dir.join("launcher-pod.default.prom")).unwrap();
    let samples = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (full, default) = (samples(&full), samples(&default));
    for line in &default {
        assert!(full.contains(line), "{line} is not in the full profile");
    }
    // Four roles ran; virtlogd is written at 0 for KubevirtInfraProcessMissing.
    let processes: Vec<&String> = default
        .iter()
        .filter(|l| l.starts_with("kubevirt_pod_infra_processes{"))
        .collect();
    assert_eq!(processes.len(), 5, "{processes:?}");
    assert!(
        processes
            .iter()
            .any(|l| l.contains("process=\"virtlogd\"") && l.ends_with(" 0"))
    );
    assert!(
        default.len() * 3 < full.len(),
        "{} of {}",
        default.len(),
        full.len()
    );
}
