//! The collector's own families: its build, its last collection's duration and read errors, what
//! its listeners' caps did.

use kube_metrics_contract::build::{REVISION, VERSION};
use kube_metrics_exposition::Kind;

use super::{Builder, ListenerConnections};
use crate::collect::Collection;
use crate::proc::ErrorKind;

// === impl Builder ===

impl Builder<'_> {
    pub(super) fn info(&mut self) {
        self.family(
            "kube_metrics_collector_build_info",
            "Build of kube-metrics-collector; always 1.",
            Kind::Gauge,
        );
        self.plain(&[("version", VERSION), ("revision", REVISION)], 1.0);
    }

    /// The collector's own families.
    pub(super) fn collector_families(
        &mut self,
        c: &Collection,
        connections: &[ListenerConnections],
    ) {
        self.family(
            "kube_metrics_collector_collection_duration_seconds",
            "How long the last read of /proc took.",
            Kind::Gauge,
        );
        self.plain(&[], c.duration.as_secs_f64());
        self.family(
            "kube_metrics_collector_read_errors_total",
            "Reads of /proc that failed; the process or field was skipped.",
            Kind::Counter,
        );
        for kind in ErrorKind::ALL {
            self.plain(&[("kind", kind.as_str())], c.errors[kind] as f64);
        }
        self.family(
            "kube_metrics_collector_connections_total",
            "Connections closed by a listener's cap: idle ones evicted for a new one, new ones refused while every connection was busy.",
            Kind::Counter,
        );
        for counts in connections {
            let listener = counts.listener;
            for (action, total) in [("evicted", counts.evicted), ("refused", counts.refused)] {
                self.plain(&[("listener", listener), ("action", action)], total as f64);
            }
        }
    }
}
