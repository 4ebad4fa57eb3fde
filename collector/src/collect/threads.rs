//! QEMU's threads: CPU time by thread class, re-reading `stat` only for threads that ran.

use super::{Collector, CpuTicks};
use crate::classify::ThreadClass;
use crate::proc::ProcessKey;

/// A QEMU thread's last `stat` reading, reused while its run time shows it has not run since:
/// a sleeping thread's `stat` costs the kernel ~4x its `schedstat`, and most QEMU threads sleep.
/// Only a rename by another thread while this one sleeps goes unseen until it runs again, and
/// then only the class of its later CPU time changes (see `Ledger`).
#[derive(Debug)]
pub(super) struct ThreadRead {
    runtime_ns: u64,
    key: ProcessKey,
    class: usize,
    reading: CpuTicks,
    pub(super) generation: u64,
}

// === impl Collector ===

impl Collector {
    pub(super) fn collect_threads(&mut self, pid: i32) {
        let mut tids = std::mem::take(&mut self.tids);
        match self.reader.tids(pid, &mut tids) {
            Ok(()) => {
                for &tid in &tids {
                    self.collect_thread(pid, tid);
                }
            }
            Err(error) => self.count(&error),
        }
        self.tids = tids;
    }

    fn collect_thread(&mut self, pid: i32, tid: i32) {
        let generation = self.generation;
        // No run time (a fixture tree, or a kernel without it) only means `stat` is always read;
        // a thread that exited fails its `stat` read below, which is counted there.
        let runtime = match self.reader.thread_runtime(pid, tid) {
            Ok((Some(ns), fresh)) => Some((ns, fresh)),
            Ok((None, _)) | Err(_) => None,
        };
        if let Some((ns, false)) = runtime
            && let Some(known) = self.threads_read.get_mut(&tid)
            && known.runtime_ns == ns
        {
            known.generation = generation;
            self.threads.observe(known.key, known.class, known.reading);
            return;
        }
        match self.reader.stat(pid, Some(tid)) {
            Ok(stat) => {
                let key = ProcessKey {
                    pid: tid,
                    start_ticks: stat.start_ticks,
                };
                let class = ThreadClass::of(stat.comm) as usize;
                let reading = CpuTicks {
                    user: stat.utime,
                    system: stat.stime,
                };
                self.threads.observe(key, class, reading);
                match runtime {
                    Some((runtime_ns, _)) => {
                        let read = ThreadRead {
                            runtime_ns,
                            key,
                            class,
                            reading,
                            generation,
                        };
                        self.threads_read.insert(tid, read);
                    }
                    None => {
                        self.threads_read.remove(&tid);
                    }
                }
            }
            Err(error) => self.count(&error),
        }
    }
}
