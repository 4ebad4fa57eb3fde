//! Reads the processes of a virt-launcher pod from `/proc` and writes their metric families: the
//! library under both collectors, the one injected into each pod (`sidecar/`) and the hostPID node
//! collector (`node/`).
//!
//! Per process it reads `stat`, `status`, `io`, the size of `fd/`, `cmdline` once per (pid, start
//! time), and for QEMU each thread's `schedstat` (and its `stat` when it ran since the last read);
//! with `pss`, `smaps_rollup`. The fds of these files stay open between collections, so each read
//! is one `pread` (`proc/files.rs`). Processes are classified into roles by argv[0] and QEMU's
//! threads into classes (`classify`), summed per role with counters that never go backwards across
//! exits and pid reuse (`collect`, `totals`); QEMU's guest RAM comes from its command line and
//! `smaps` (`guest_memory`). `families` writes docs/metrics.md's families from one collection.
//! No server, no flags, no pod identity: the binaries bring those.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod classify;
pub mod collect;
pub mod families;
pub mod guest_memory;
pub mod proc;
pub mod qemu_devices;
pub mod totals;

use kube_metrics_contract::estimate::Release;

use classify::Roles;
use collect::{Collector, GuestMemoryConfig};
use families::Exclusions;
use proc::ProcRoot;

/// How a collector reads `/proc` and what it writes: the flags both collectors share.
#[derive(Clone, Debug)]
pub struct Config {
    pub proc_root: ProcRoot,
    pub roles: Roles,
    pub pss: bool,
    pub guest_memory: GuestMemoryConfig,
    /// The KubeVirt release of the budgets; `None`: assumed.
    pub kubevirt_release: Option<Release>,
    /// The metrics profile and `--exclude`.
    pub exclude: Exclusions,
}

// === impl Config ===

impl Config {
    /// A collector of the processes under `proc_root`: all of them, or the pids it is given.
    pub fn collector(&self) -> Collector {
        Collector::new(
            self.proc_root.clone(),
            self.roles.clone(),
            self.pss,
            self.guest_memory,
        )
    }
}
