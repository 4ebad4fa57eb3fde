//! `kubectl kmc top`'s queries, rows and sorting.

use super::*;

fn sample(vm: &str, pairs: &[(&str, &str)], value: f64) -> Sample {
    let mut labels: BTreeMap<String, String> = [
        ("namespace", "a"),
        ("name", vm),
        ("pod", "p"),
        ("node", "n"),
    ]
    .iter()
    .chain(pairs)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    labels.retain(|_, v| !v.is_empty());
    Sample { labels, value }
}

fn process(vm: &str, process: &str, value: f64) -> Sample {
    sample(vm, &[("process", process)], value)
}

fn component(vm: &str, component: &str, value: f64) -> Sample {
    sample(vm, &[("component", component)], value)
}

const MI: f64 = crate::units::MI;

fn raw() -> Raw {
    Raw {
        resident: vec![
            process("small", "qemu", 600.0 * MI),
            process("small", "virt-launcher", 60.0 * MI),
            process("big", "qemu", 2000.0 * MI),
            process("big", "virtqemud", 30.0 * MI),
        ],
        cpu: vec![
            process("small", "qemu", 0.5),
            process("big", "qemu", 0.1),
            process("big", "virtqemud", 0.2),
            process("gone", "qemu", 0.2),
        ],
        component_overhead: vec![
            component("big", "qemu", 44.0 * MI),
            component("big", "virtqemud", 31.0 * MI),
        ],
        component_budget: vec![
            component("big", "qemu", 78.0 * MI),
            component("big", "virtqemud", 40.0 * MI),
            component("big", "swtpm", 53.0 * MI),
        ],
        overhead: vec![sample("big", &[], 75.0 * MI)],
        estimate: vec![sample("big", &[], 270.0 * MI), sample("gone", &[], 1.0)],
    }
}

#[test]
fn assembles_and_sorts_by_memory() {
    let mut usage = assemble(&raw());
    sort(&mut usage, SortBy::Memory);
    let order: Vec<(&str, Vec<&str>)> = usage
        .iter()
        .map(|v| {
            (
                v.vm.as_str(),
                v.roles.iter().map(|r| r.role.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("big", vec!["qemu", "virtqemud", "swtpm"]),
            ("small", vec!["qemu", "virt-launcher"])
        ]
    );
    assert_eq!(usage[0].resident_bytes, 2030.0 * MI);
    assert!((usage[0].cpu_cores - 0.3).abs() < 1e-9);
    assert_eq!(usage[0].overhead_bytes, Some(75.0 * MI));
    assert_eq!(usage[0].estimate_bytes, Some(270.0 * MI));
    assert_eq!(usage[0].roles[0].overhead_bytes, Some(44.0 * MI));
    assert_eq!(usage[0].roles[2].budget_bytes, Some(53.0 * MI));
    assert_eq!(usage[1].roles[0].overhead_bytes, None);
    assert_eq!(usage[1].estimate_bytes, None);
}

#[test]
fn sorts_by_cpu() {
    let mut usage = assemble(&raw());
    sort(&mut usage, SortBy::Cpu);
    assert_eq!(usage[0].vm, "small");
    assert_eq!(usage[1].roles[0].role, "virtqemud");
}

#[test]
fn a_pod_without_resident_memory_is_no_row() {
    let usage = assemble(&raw());
    assert!(usage.iter().all(|v| v.vm != "gone"), "{usage:?}");
}

#[test]
fn table() {
    let text = render(&assemble(&raw()), TopOutput::Table, SortBy::Memory).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "NAMESPACE   VM      ROLE            CPU(cores)   RESIDENT   OVERHEAD   BUDGET"
    );
    assert_eq!(
        lines[1],
        "a           big     (all)           300m         2030.0Mi   75.0Mi     270.0Mi"
    );
    assert_eq!(
        lines[2],
        "a           big     qemu            100m         2000.0Mi   44.0Mi     78.0Mi"
    );
    assert_eq!(
        lines[5],
        "a           small   (all)           500m         660.0Mi    -          -"
    );
    assert_eq!(lines.len(), 8);
}
