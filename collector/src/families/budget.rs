//! KubeVirt's budget for each process of the pod (`contract::estimate`), from QEMU's devices and
//! guest RAM: what the recording rules compare each measured component with.

use kube_metrics_contract::estimate::{self, ASSUMED_RELEASE, Shape};
use kube_metrics_exposition::Kind;

use super::{Builder, Scope};
use crate::collect::Collection;

// === impl Builder ===

impl Builder<'_> {
    /// One series per budgeted component, once QEMU's command line was read. The release and
    /// whether it was configured or assumed are labels, so that every budget says what it
    /// assumed.
    pub(super) fn overhead_budgets(&mut self, c: &Collection, scope: &Scope) {
        self.family(
            "kubevirt_pod_infra_memory_overhead_budget_bytes",
            "KubeVirt's memory overhead estimate for each process (resident memory and page tables), from QEMU's command line.",
            Kind::Gauge,
        );
        let Some(devices) = c.qemu_devices else {
            return;
        };
        let (release, source) = match scope.kubevirt_release {
            Some(release) => (release, "configured"),
            None => (ASSUMED_RELEASE, "assumed"),
        };
        let Some(constants) = release.constants() else {
            return;
        };
        let shape = Shape {
            memory_request: c.guest.as_ref().and_then(|g| g.memory.size()).unwrap_or(0),
            vcpus: devices.vcpus.unwrap_or(0),
            video: devices.video,
            tpm: devices.tpm,
            arm64: cfg!(target_arch = "aarch64"),
        };
        let release = release.to_string();
        for (component, bytes) in estimate::budgets(&shape, constants) {
            self.infra(
                &[
                    ("component", component.name()),
                    ("kubevirt_release", &release),
                    ("source", source),
                ],
                bytes as f64,
            );
        }
    }
}
