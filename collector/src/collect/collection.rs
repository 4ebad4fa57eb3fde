//! What one collection returns: per-role samples, QEMU's CPU time by thread class, read errors.

use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::Duration;

use crate::classify::{Roles, ThreadClass};
use crate::proc::ErrorCounts;
use crate::totals::Counters;

/// The per-process counters a ledger keeps monotonic; CPU in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    pub cpu: CpuTicks,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub major_faults: u64,
    pub minor_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// CPU time in clock ticks, `utime` and `stime` of `stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

/// One value per QEMU thread class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByThreadClass<T> {
    pub vcpu: T,
    pub iothread: T,
    pub other: T,
}

/// Memory of a role's live members, in bytes (docs/metrics.md, `kubevirt_pod_infra_memory_amount_bytes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub resident: u64,
    pub virtual_: u64,
    pub shared: u64,
    pub dirty: u64,
    pub anonymous: u64,
    pub file: u64,
    pub shmem: u64,
    pub swap: u64,
    pub page_tables: u64,
    /// Only with `--pss`.
    pub pss: Option<u64>,
}

/// What one collection saw of one role.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleSample {
    pub processes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub memory: Memory,
    /// Monotonic totals of live and exited members.
    pub counters: ProcessCounters,
    pub restarts: u64,
    /// Unix time the oldest live member started.
    pub start_time_seconds: Option<f64>,
    /// Whether the role ever had a member; never-seen roles export only their process count.
    pub seen: bool,
}

/// The result of one collection.
#[derive(Clone, Debug)]
pub struct Collection {
    pub roles: Arc<Roles>,
    pub per_role: Vec<RoleSample>,
    /// QEMU's CPU time by thread class.
    pub qemu_threads: ByThreadClass<CpuTicks>,
    pub ticks_per_second: u64,
    /// Read errors since start.
    pub errors: ErrorCounts,
    pub duration: Duration,
    /// `<name>` from a live QEMU's `-name guest=<ns>_<name>`.
    pub guest_name: Option<String>,
    /// QEMU's guest memory.
    pub guest: Option<super::GuestSample>,
    /// QEMU's devices that KubeVirt's overhead estimate has a term for.
    pub qemu_devices: Option<crate::qemu_devices::QemuDevices>,
}

// === impl ProcessCounters ===

impl Counters for ProcessCounters {
    fn zip_with(self, other: Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self {
            cpu: CpuTicks {
                user: f(self.cpu.user, other.cpu.user),
                system: f(self.cpu.system, other.cpu.system),
            },
            io_read_bytes: f(self.io_read_bytes, other.io_read_bytes),
            io_write_bytes: f(self.io_write_bytes, other.io_write_bytes),
            major_faults: f(self.major_faults, other.major_faults),
            minor_faults: f(self.minor_faults, other.minor_faults),
            voluntary_switches: f(self.voluntary_switches, other.voluntary_switches),
            involuntary_switches: f(self.involuntary_switches, other.involuntary_switches),
        }
    }
}

// === impl CpuTicks ===

impl Counters for CpuTicks {
    fn zip_with(self, other: Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self {
            user: f(self.user, other.user),
            system: f(self.system, other.system),
        }
    }
}

// === impl ByThreadClass ===

impl<T> Index<ThreadClass> for ByThreadClass<T> {
    type Output = T;

    fn index(&self, class: ThreadClass) -> &T {
        match class {
            ThreadClass::Vcpu => &self.vcpu,
            ThreadClass::Iothread => &self.iothread,
            ThreadClass::Other => &self.other,
        }
    }
}

impl<T> IndexMut<ThreadClass> for ByThreadClass<T> {
    fn index_mut(&mut self, class: ThreadClass) -> &mut T {
        match class {
            ThreadClass::Vcpu => &mut self.vcpu,
            ThreadClass::Iothread => &mut self.iothread,
            ThreadClass::Other => &mut self.other,
        }
    }
}

// === impl Memory ===

impl Memory {
    /// Adds `m` into `self`; `pss` stays `None` until some member has one.
    pub fn add(&mut self, m: &Memory) {
        self.resident += m.resident;
        self.virtual_ += m.virtual_;
        self.shared += m.shared;
        self.dirty += m.dirty;
        self.anonymous += m.anonymous;
        self.file += m.file;
        self.shmem += m.shmem;
        self.swap += m.swap;
        self.page_tables += m.page_tables;
        if let Some(pss) = m.pss {
            self.pss = Some(self.pss.unwrap_or(0) + pss);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_counters_combine_field_by_field() {
        let a = ProcessCounters {
            cpu: CpuTicks { user: 1, system: 2 },
            io_read_bytes: 3,
            io_write_bytes: 4,
            major_faults: 5,
            minor_faults: 6,
            voluntary_switches: 7,
            involuntary_switches: 8,
        };
        let b = a.zip_with(a, |x, y| x * 10 + y);
        let want = ProcessCounters {
            cpu: CpuTicks {
                user: 11,
                system: 22,
            },
            io_read_bytes: 33,
            io_write_bytes: 44,
            major_faults: 55,
            minor_faults: 66,
            voluntary_switches: 77,
            involuntary_switches: 88,
        };
        assert_eq!(b, want);
    }

    #[test]
    fn thread_classes_index_their_own_field() {
        let mut by = ByThreadClass::default();
        for (n, class) in ThreadClass::ALL.into_iter().enumerate() {
            by[class] = n + 1;
        }
        assert_eq!((by.vcpu, by.iothread, by.other), (1, 2, 3));
        assert_eq!(by[ThreadClass::Iothread], 2);
    }

    #[test]
    fn memory_adds_pss_only_when_known() {
        let mut sum = Memory::default();
        sum.add(&Memory {
            resident: 2,
            ..Memory::default()
        });
        assert_eq!((sum.resident, sum.pss), (2, None));
        sum.add(&Memory {
            resident: 3,
            pss: Some(4),
            ..Memory::default()
        });
        assert_eq!((sum.resident, sum.pss), (5, Some(4)));
    }
}
