//! One walk over `/proc`: read each visible process, classify it, feed the per-role ledgers.
//!
//! Blocking; callers run it off the async runtime. What cannot change for a `ProcessKey` (its role,
//! QEMU's guest name) is cached, so `cmdline` is read once per process. Every failed read is
//! counted by kind and the process keeps the fields that did read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod collection;
mod guest_sampler;
mod threads;

pub use collection::{ByThreadClass, Collection, CpuTicks, Memory, ProcessCounters, RoleSample};
pub use guest_sampler::{GuestMemoryConfig, GuestSample, Reading, due};

use crate::classify::{Class, RoleId, Roles, ThreadClass, qemu_guest_name};
use crate::guest_memory::GuestMemory;
use crate::proc::{ErrorCounts, ErrorKind, ProcRoot, ProcessKey, ReadError, Reader};
use crate::qemu_devices::QemuDevices;
use crate::totals::Ledger;

/// Longest QEMU command line read for guest memory, devices and the guest name. KubeVirt's is a few
/// KiB, some 100 KiB with its most disks (256); past this the process still counts as QEMU.
pub const MAX_QEMU_CMDLINE: usize = 256 * 1024;

/// Walks a proc root; keeps the state that makes counters monotonic.
#[derive(Debug)]
pub struct Collector {
    reader: Reader,
    roles: Arc<Roles>,
    pss: bool,
    ticks_per_second: u64,
    boot_time: Option<u64>,
    self_pid: Option<i32>,
    known: HashMap<ProcessKey, Known>,
    processes: Ledger<ProcessKey, ProcessCounters>,
    threads: Ledger<ProcessKey, CpuTicks>,
    errors: ErrorCounts,
    generation: u64,
    warned_permission: bool,
    pids: Vec<i32>,
    tids: Vec<i32>,
    gauges: Vec<RoleSample>,
    /// QEMU threads by tid, as last read from their `stat`.
    threads_read: HashMap<i32, threads::ThreadRead>,
    guest: guest_sampler::GuestSampler,
}

/// Cached per process: what cannot change while (pid, start time) stays the same.
#[derive(Debug)]
struct Known {
    class: Class,
    /// Re-classify when `comm` changes: that is what an `exec` does.
    comm: Comm,
    guest_name: Option<String>,
    /// QEMU's guest RAM as its command line gives it.
    guest_memory: Option<Arc<GuestMemory>>,
    /// QEMU's devices that KubeVirt's estimate has a term for.
    devices: Option<QemuDevices>,
    generation: u64,
}

/// `comm` is at most 15 bytes; kept inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Comm([u8; 16], usize);

// === impl Collector ===

impl Collector {
    pub fn new(root: ProcRoot, roles: Roles, pss: bool, guest: GuestMemoryConfig) -> Self {
        let guest = guest_sampler::GuestSampler::new(guest, root.path().to_owned());
        let mut reader = Reader::new(root);
        let boot_time = match reader.boot_time() {
            Ok(btime) => Some(btime),
            Err(error) => {
                tracing::warn!(%error, "Boot time unknown; start times will be missing");
                None
            }
        };
        let self_pid = reader.self_pid();
        let classes = roles.len();
        Self {
            reader,
            roles: Arc::new(roles),
            pss,
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1),
            boot_time,
            self_pid,
            known: HashMap::new(),
            processes: Ledger::new(classes),
            threads: Ledger::new(ThreadClass::ALL.len()),
            errors: ErrorCounts::default(),
            generation: 0,
            warned_permission: false,
            pids: Vec::new(),
            tids: Vec::new(),
            gauges: vec![RoleSample::default(); classes],
            threads_read: HashMap::new(),
            guest,
        }
    }

    /// `<root>/sys/kernel/hostname`.
    pub fn hostname(&mut self) -> Option<String> {
        self.reader.hostname()
    }

    /// Reads every visible process once.
    pub fn collect(&mut self) -> Collection {
        let started = Instant::now();
        let mut pids = std::mem::take(&mut self.pids);
        match self.reader.pids(&mut pids) {
            Ok(()) => self.collect_listed(&pids),
            Err(error) => {
                // Without a listing nothing can be swept: keep every total as it was.
                self.reset_gauges();
                self.count(&ReadError::from_io(self.reader.root().path(), error));
            }
        }
        self.pids = pids;
        self.finish(started.elapsed())
    }

    /// Reads only `pids` (sorted), listed by the caller: the node collector's share of one pod.
    /// Processes not in `pids` are treated as gone.
    pub fn collect_pids(&mut self, pids: &[i32]) -> Collection {
        let started = Instant::now();
        self.reader.retain(pids);
        self.collect_listed(pids);
        self.finish(started.elapsed())
    }

    fn reset_gauges(&mut self) {
        self.gauges
            .iter_mut()
            .for_each(|g| *g = RoleSample::default());
    }

    fn collect_listed(&mut self, pids: &[i32]) {
        self.reset_gauges();
        for &pid in pids {
            self.collect_process(pid);
        }
        self.processes.sweep();
        self.threads.sweep();
        let generation = self.generation;
        self.known.retain(|_, k| k.generation == generation);
        self.threads_read.retain(|_, t| t.generation == generation);
        self.generation += 1;
    }

    fn collect_process(&mut self, pid: i32) {
        if Some(pid) == self.self_pid {
            return;
        }
        let stat = match self.reader.stat(pid, None) {
            Ok(stat) => stat,
            Err(error) => return self.count(&error),
        };
        let key = ProcessKey {
            pid,
            start_ticks: stat.start_ticks,
        };
        let comm = Comm::new(stat.comm);
        let mut reading = ProcessCounters {
            cpu: CpuTicks {
                user: stat.utime,
                system: stat.stime,
            },
            major_faults: stat.major_faults,
            minor_faults: stat.minor_faults,
            ..ProcessCounters::default()
        };
        let num_threads = stat.num_threads;

        let Class::Role(role) = self.class_of(key, comm) else {
            return;
        };
        let start_time = self
            .boot_time
            .map(|btime| btime as f64 + key.start_ticks as f64 / self.ticks_per_second as f64);
        if let Some(g) = self.gauges.get_mut(role) {
            g.processes += 1;
            g.threads += num_threads;
            g.start_time_seconds = match (g.start_time_seconds, start_time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // A process that vanished mid-read keeps what was read; the next sweep retires it.
        if self.read_details(pid, role, &mut reading).is_err() {
            self.processes.observe(key, role, reading);
            return;
        }
        self.processes.observe(key, role, reading);
        if role == Roles::QEMU {
            self.collect_threads(pid);
        }
    }

    /// `status`, `io`, `fd/` and (opt-in) `smaps_rollup`; each failure only loses its own fields.
    fn read_details(
        &mut self,
        pid: i32,
        role: RoleId,
        reading: &mut ProcessCounters,
    ) -> Result<(), ()> {
        let mut memory = Memory::default();
        match self.reader.status(pid) {
            Ok(s) => {
                if s.malformed {
                    self.count_kind(ErrorKind::Parse);
                }
                let file = s.rss_file.unwrap_or(0);
                let shmem = s.rss_shmem.unwrap_or(0);
                memory.resident = s.vm_rss.unwrap_or(0);
                memory.virtual_ = s.vm_size.unwrap_or(0);
                memory.shared = file + shmem;
                memory.dirty = s.vm_data.unwrap_or(0) + s.vm_stk.unwrap_or(0);
                memory.anonymous = s.rss_anon.unwrap_or(0);
                memory.file = file;
                memory.shmem = shmem;
                memory.swap = s.vm_swap.unwrap_or(0);
                memory.page_tables = s.vm_pte.unwrap_or(0);
                reading.voluntary_switches = s.voluntary_ctxt_switches.unwrap_or(0);
                reading.involuntary_switches = s.nonvoluntary_ctxt_switches.unwrap_or(0);
            }
            Err(error) => self.count_or_stop(&error)?,
        }
        match self.reader.io(pid) {
            Ok(io) => {
                if io.malformed {
                    self.count_kind(ErrorKind::Parse);
                }
                reading.io_read_bytes = io.read_bytes.unwrap_or(0);
                reading.io_write_bytes = io.write_bytes.unwrap_or(0);
            }
            Err(error) => self.count_or_stop(&error)?,
        }
        let fds = match self.reader.fd_count(pid) {
            Ok(n) => n,
            Err(error) => {
                self.count_or_stop(&error)?;
                0
            }
        };
        if self.pss {
            match self.reader.pss(pid) {
                Ok(pss) => memory.pss = Some(pss),
                Err(error) => self.count_or_stop(&error)?,
            }
        }
        if let Some(g) = self.gauges.get_mut(role) {
            g.open_fds += fds;
            g.memory.add(&memory);
        }
        Ok(())
    }

    /// The cached class of `key`, or a fresh one from its cmdline.
    fn class_of(&mut self, key: ProcessKey, comm: Comm) -> Class {
        let generation = self.generation;
        if let Some(known) = self.known.get_mut(&key)
            && known.comm == comm
        {
            known.generation = generation;
            return known.class;
        }
        let (class, guest_name, guest_memory, devices) = match self.reader.cmdline(key.pid) {
            Ok(cmdline) => {
                let class = self.roles.classify(cmdline, comm.bytes());
                match class {
                    // A command line past the cap is no KubeVirt QEMU's; what it would make us
                    // keep per pod (backend ids, the guest name) is what a node's 110 pods would
                    // multiply.
                    Class::Role(Roles::QEMU) if cmdline.len() <= MAX_QEMU_CMDLINE => {
                        let args = || crate::proc::parse::args(cmdline);
                        (
                            class,
                            qemu_guest_name(cmdline),
                            Some(Arc::new(GuestMemory::from_args(args()))),
                            Some(QemuDevices::from_args(args())),
                        )
                    }
                    _ => (class, None, None, None),
                }
            }
            Err(error) => {
                self.count(&error);
                (self.roles.classify(b"", comm.bytes()), None, None, None)
            }
        };
        self.known.insert(
            key,
            Known {
                class,
                comm,
                guest_name,
                guest_memory,
                devices,
                generation,
            },
        );
        class
    }

    fn finish(&mut self, duration: Duration) -> Collection {
        let totals = self.processes.totals();
        let mut per_role = self.gauges.clone();
        for (sample, total) in per_role.iter_mut().zip(totals) {
            sample.counters = total.counters;
            sample.restarts = total.newcomers;
            sample.seen = total.seen;
        }
        let mut qemu_threads = ByThreadClass::default();
        for (class, total) in ThreadClass::ALL.into_iter().zip(self.threads.totals()) {
            qemu_threads[class] = total.counters;
        }
        let qemu = self
            .known
            .iter()
            .filter(|(_, k)| k.class == Class::Role(Roles::QEMU));
        let guest_name = qemu.clone().find_map(|(_, k)| k.guest_name.clone());
        // A launcher pod runs one QEMU; the lowest pid is the one kept when there are more. Its
        // memory and devices come from the same command line.
        let kept = qemu
            .filter_map(|(key, k)| Some((*key, Arc::clone(k.guest_memory.as_ref()?), k.devices)))
            .min_by_key(|(key, _, _)| key.pid);
        let qemu_devices = kept.as_ref().and_then(|(_, _, devices)| *devices);
        let guest = kept.map(|(key, memory, _)| self.guest.sample(key, &memory));
        Collection {
            roles: Arc::clone(&self.roles),
            per_role,
            qemu_threads,
            ticks_per_second: self.ticks_per_second,
            errors: self.errors,
            duration,
            guest_name,
            guest,
            qemu_devices,
        }
    }

    /// Counts a failed optional read; a vanished process stops the reads of that process.
    fn count_or_stop(&mut self, error: &ReadError) -> Result<(), ()> {
        self.count(error);
        match error.kind() {
            ErrorKind::Vanished => Err(()),
            _ => Ok(()),
        }
    }

    fn count(&mut self, error: &ReadError) {
        let kind = error.kind();
        self.count_kind(kind);
        match kind {
            ErrorKind::Vanished => tracing::debug!(%error, "Process exited during collection"),
            ErrorKind::Permission if !self.warned_permission => {
                self.warned_permission = true;
                tracing::warn!(%error, "Cannot read some process files; counting them as read errors");
            }
            ErrorKind::Permission => tracing::debug!(%error, "Permission denied"),
            ErrorKind::Parse | ErrorKind::Io => {
                tracing::warn!(%error, "Skipping unreadable process file")
            }
        }
    }

    fn count_kind(&mut self, kind: ErrorKind) {
        self.errors[kind] += 1;
    }
}

// === impl Comm ===

impl Comm {
    fn new(bytes: &[u8]) -> Self {
        let mut out = Self::default();
        let n = bytes.len().min(out.0.len());
        if let (Some(dst), Some(src)) = (out.0.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        out.1 = n;
        out
    }

    fn bytes(&self) -> &[u8] {
        self.0.get(..self.1).unwrap_or_default()
    }
}
