//! The golden output of `recommend` for a generated fleet of 300 VMs. Backfilling 300 VMs into
//! Prometheus takes minutes on two cores, so their histories are read by hand from the model that
//! generates them and fed to the method and the renderer directly; tests/prometheus.rs holds that
//! reading to Prometheus' on the 12-VM fleet.

mod fleet;

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
