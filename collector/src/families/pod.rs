//! The pod's own families: who it is (`pod_info`), KubeVirt's overhead estimate and budgets, the
//! compute container's memory request and limit.

use kube_metrics_exposition::Kind;

use super::{Builder, Scope};
use crate::collect::Collection;

// === impl Builder ===

impl Builder<'_> {
    pub(super) fn pod_families(&mut self, c: &Collection, scope: &Scope) {
        self.family(
            kube_metrics_contract::metrics::POD_INFO,
            "1, with the pod's namespace and name from the downward API, and the VMI's name and node \
             as KubeVirt's own series label them.",
            Kind::Gauge,
        );
        if scope.namespace.is_some() || scope.pod.is_some() {
            let ns = scope.namespace.as_deref().unwrap_or_default();
            let pod = scope.pod.as_deref().unwrap_or_default();
            let node = scope.node.as_deref();
            let labels = [
                ("namespace", ns),
                ("pod", pod),
                ("name", scope.domain.as_str()),
                ("node", node.unwrap_or_default()),
            ];
            // Where they lead every line, `namespace` and `pod` are not written twice.
            let first = if self.sections.is_some() { 2 } else { 0 };
            let end = if node.is_some() { 4 } else { 3 };
            let labels = labels.get(first..end).unwrap_or_default();
            self.infra(labels, 1.0);
        }
        self.family(
            "kubevirt_pod_infra_memory_overhead_estimate_bytes",
            "KubeVirt's memory overhead estimate (annotation kubevirt.io/memory-overhead-bytes).",
            Kind::Gauge,
        );
        if let Some(bytes) = scope.memory_overhead {
            self.infra(&[], bytes as f64);
        }
        self.overhead_budgets(c, scope);
        self.family(
            "kubevirt_pod_infra_compute_memory_bytes",
            "Memory request and limit of the compute container, from the downward API; guest: the guest RAM its memory cgroup charges.",
            Kind::Gauge,
        );
        // Pages on hugetlbfs are charged to the hugetlb controller, not to the memory limit.
        let guest = c
            .guest
            .as_ref()
            .and_then(|g| Some(g.memory.size()?.saturating_sub(g.memory.hugetlb())));
        for (kind, value) in [
            ("request", scope.memory_request),
            ("limit", scope.memory_limit),
            ("guest", guest),
        ] {
            if let Some(bytes) = value {
                self.infra(&[("type", kind)], bytes as f64);
            }
        }
    }
}
