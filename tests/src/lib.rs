//! Harness for the end-to-end tests and the benchmark of `kube-metrics-collector`.
//!
//! It builds a fake virt-launcher pod out of real processes in a real PID namespace
//! (`unshare --pid --fork --mount-proc`), starts the collector inside that namespace, and talks to
//! it, to a real Prometheus and to Debian's `prometheus-process-exporter` over loopback or a Unix
//! socket. It also runs the node relay over a fake kubelet pods directory ([`relay`]), and renders
//! and inspects the kustomize manifests ([`manifests`], [`promql`]). Everything it starts is killed
//! when its guard is dropped, and every wait is bounded.
//!
//! It needs root (for the PID namespace) and the tools `scripts/setup` installs; [`preflight`]
//! says clearly what is missing instead of letting a test fail somewhere obscure.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod alerting;
pub mod bench;
pub mod binaries;
pub mod cgroups;
pub mod collector;
pub mod crd;
pub mod exposition;
pub mod fleet;
pub mod hostproc;
pub mod http;
pub mod launcher;
pub mod manifests;
pub mod memory_cgroup;
pub mod network_policy;
pub mod node;
pub mod overlay;
pub mod pod;
pub mod process;
pub mod process_exporter;
pub mod prometheus;
pub mod promql;
pub mod qemu;
pub mod qmp;
pub mod relay;
pub mod release;
pub mod scale;
pub mod user_workload;

pub use process::{Guarded, preflight, wait_for};

/// The workspace root: the directory above this crate's.
pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
