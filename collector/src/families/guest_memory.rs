//! The guest-memory families (docs/metrics.md, "Guest memory"), written by the same builder.

use kube_metrics_exposition::Kind;

use super::Builder;
use crate::collect::GuestSample;

// === impl Builder ===

impl Builder<'_> {
    /// Guest RAM from QEMU's command line and smaps (docs/metrics.md, "Guest memory").
    pub(super) fn guest_memory(&mut self, g: &GuestSample) {
        self.family(
            "kubevirt_pod_infra_guest_memory_bytes",
            "Guest RAM of QEMU: size from its command line; resident, hugetlb and swap from the last smaps read.",
            Kind::Gauge,
        );
        let read = g.reading.map(|r| r.resident);
        let types = [
            ("size", g.memory.size()),
            ("resident", read.map(|r| r.resident)),
            ("hugetlb", read.map(|r| r.hugetlb)),
            ("swap", read.map(|r| r.swap)),
        ];
        for (kind, bytes) in types {
            if let (Some(bytes), false) = (bytes, self.skips_type(kind)) {
                self.infra(&[("type", kind)], bytes as f64);
            }
        }
        self.family(
            "kubevirt_pod_infra_qemu_own_memory_bytes",
            "QEMU's resident memory outside guest RAM, from the last smaps read.",
            Kind::Gauge,
        );
        if let Some(r) = read {
            self.infra(&[], r.other as f64);
        }
        self.family(
            "kubevirt_pod_infra_guest_memory_read_timestamp_seconds",
            "Unix time of the last smaps read of QEMU.",
            Kind::Gauge,
        );
        if let Some(r) = g.reading {
            self.infra(&[], r.unix_seconds);
        }
    }

    /// What the guest memory reader could not make out; 0 is the healthy value.
    pub(super) fn guest_memory_health(&mut self, g: &GuestSample) {
        self.family(
            "kube_metrics_collector_guest_memory_unparsed_arguments",
            "Memory arguments of QEMU's command line that could not be read.",
            Kind::Gauge,
        );
        self.plain(&[], f64::from(g.memory.unparsed));
        self.family(
            "kube_metrics_collector_guest_memory_unmatched_backends",
            "Memory backends of QEMU's command line without a mapping in the last smaps read.",
            Kind::Gauge,
        );
        if let Some(r) = g.reading {
            self.plain(&[], f64::from(r.resident.unmatched));
        }
        self.family(
            "kube_metrics_collector_guest_memory_unexplained_bytes",
            "Guest RAM in the last smaps read that QEMU's command line does not explain: mappings of backends added at run time, by size, and virtio-mem held beyond its requested size.",
            Kind::Gauge,
        );
        if let Some(r) = g.reading {
            self.plain(&[], r.resident.unexplained_bytes() as f64);
        }
    }
}
