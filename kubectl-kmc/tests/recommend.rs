//! The golden output of `recommend` for a generated fleet of 300 VMs. Backfilling 300 VMs into
//! Prometheus takes minutes on two cores, so their histories are read by hand from the model that
//! generates them and fed to the method and the renderer directly; tests/prometheus.rs holds that
//! reading to Prometheus' on the 12-VM fleet. The YAML's commands, pasted into a shell, give a
//! fake `kubectl` exactly the argv meant.

mod fleet;
mod paste;

use fleet::{DAY, END, HOUR, Vm, expect, golden, golden_file};
use kubectl_kmc::cli::RecommendOutput;
use kubectl_kmc::recommend::render;

#[test]
fn three_hundred_vms() {
    let vms = golden::fleet(300, "fleet", DAY + 6 * HOUR);
    let refs: Vec<&Vm> = vms.iter().collect();
    let advice = expect::advice(&refs, END);
    let table =
        render::render(&advice, &expect::settings(), RecommendOutput::Table).expect("render");
    golden_file("recommend-300.txt", &table);
}

/// Every printed command parses and passes kubectl exactly its words; names with dots (a
/// DNS-1123 subdomain) included.
#[test]
fn pasted_commands_pass_exactly_the_meant_argv() {
    let mut vms = golden::fleet(12, "fleet-a", DAY + 6 * HOUR);
    for vm in &mut vms {
        vm.name = format!("{}.example", vm.name);
    }
    let refs: Vec<&Vm> = vms.iter().collect();
    let advice = expect::advice(&refs, END);
    let yaml = render::render(&advice, &expect::settings(), RecommendOutput::Yaml).expect("render");
    let commands = paste::commands(&yaml);
    let added: Vec<_> = advice
        .vms
        .iter()
        .filter_map(|v| Some((v, v.added_overhead_mi?)))
        .collect();
    assert!(!added.is_empty(), "{yaml}");
    assert_eq!(commands.len(), 1 + added.len(), "{yaml}");
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        paste::argv(&commands[0], dir.path()),
        paste::ratio_patch(&render::ratio_text(advice.ratio))
    );
    for (command, (vm, mi)) in commands[1..].iter().zip(added) {
        assert_eq!(
            paste::argv(command, dir.path()),
            paste::vm_patch(&vm.namespace, &vm.vm, mi),
            "{command}"
        );
    }
}
