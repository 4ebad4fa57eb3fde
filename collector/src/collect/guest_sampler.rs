//! Guest RAM of the pod's QEMU: its size from the command line (parsed once per process, in
//! `collect`), its resident part from `/proc/<qemu>/smaps`, read at most once per interval.
//!
//! The kernel walks every page table of QEMU for `smaps` while it holds QEMU's mmap lock: about
//! 15-45 ms per resident GiB with 4 KiB pages (docs/metrics.md, "Guest memory"). Under the
//! sidecar's CPU limit that can take tens of seconds for a large guest, so when serving, the read
//! runs on a thread of its own and scrapes keep answering with the last reading. `-M` reads inline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::guest_memory::{self, GuestMemory, Resident};
use crate::proc::ProcessKey;

/// How the smaps reads are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMemoryConfig {
    /// At most one read per interval; `None` never reads smaps (size and page tables remain).
    pub interval: Option<Duration>,
    /// Read on a thread of its own (serving) or inline (`-M`, tests).
    pub background: bool,
}

/// What the collection reports of QEMU's guest memory.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestSample {
    pub memory: Arc<GuestMemory>,
    /// The latest smaps reading of this QEMU, if one finished.
    pub reading: Option<Reading>,
}

/// One smaps reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub key: ProcessKey,
    /// Unix time the read finished.
    pub unix_seconds: f64,
    pub resident: Resident,
}

/// Schedules smaps reads and keeps the latest.
#[derive(Debug)]
pub struct GuestSampler {
    config: GuestMemoryConfig,
    proc_root: PathBuf,
    latest: Arc<Mutex<Option<Reading>>>,
    in_flight: Arc<AtomicBool>,
    /// The process and time of the last read started.
    started: Option<(ProcessKey, Instant)>,
}

// === impl GuestSampler ===

impl GuestSampler {
    pub fn new(config: GuestMemoryConfig, proc_root: PathBuf) -> Self {
        Self {
            config,
            proc_root,
            latest: Arc::new(Mutex::new(None)),
            in_flight: Arc::new(AtomicBool::new(false)),
            started: None,
        }
    }

    /// The guest memory of QEMU `key`, starting a read of its smaps when one is due.
    pub fn sample(&mut self, key: ProcessKey, memory: &Arc<GuestMemory>) -> GuestSample {
        let now = Instant::now();
        let busy = self.in_flight.load(Ordering::Acquire);
        if due(self.started, key, now, self.config.interval, busy) {
            self.started = Some((key, now));
            self.start_read(key, Arc::clone(memory));
        }
        let reading = *self.latest.lock().unwrap_or_else(|p| p.into_inner());
        GuestSample {
            memory: Arc::clone(memory),
            reading: reading.filter(|r| r.key == key),
        }
    }

    fn start_read(&mut self, key: ProcessKey, memory: Arc<GuestMemory>) {
        let path = self.proc_root.join(key.pid.to_string()).join("smaps");
        let latest = Arc::clone(&self.latest);
        let in_flight = Arc::clone(&self.in_flight);
        in_flight.store(true, Ordering::Release);
        let read = move || {
            let _span = tracing::debug_span!("smaps", pid = key.pid).entered();
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let reading = Reading {
                        key,
                        unix_seconds: unix_now(),
                        resident: guest_memory::resident(&bytes, &memory),
                    };
                    tracing::debug!(
                        bytes = bytes.len(),
                        resident = reading.resident.resident,
                        unexplained = reading.resident.unexplained_bytes(),
                        "Read guest memory"
                    );
                    *latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(reading);
                }
                Err(error) => tracing::debug!(%error, "Cannot read QEMU's smaps"),
            }
            in_flight.store(false, Ordering::Release);
        };
        if !self.config.background {
            return read();
        }
        let spawned = std::thread::Builder::new().name("smaps".into()).spawn(read);
        if let Err(error) = spawned {
            self.in_flight.store(false, Ordering::Release);
            tracing::warn!(%error, "Cannot start the guest memory reader");
        }
    }
}

/// Whether a new smaps read of `key` is due at `now`: never while one runs or when reads are off;
/// at once for a QEMU not read before; else once `interval` has passed since the last start.
pub fn due(
    started: Option<(ProcessKey, Instant)>,
    key: ProcessKey,
    now: Instant,
    interval: Option<Duration>,
    in_flight: bool,
) -> bool {
    let Some(interval) = interval else {
        return false;
    };
    match started {
        _ if in_flight => false,
        Some((last, at)) if last == key => now.saturating_duration_since(at) >= interval,
        _ => true,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pid: i32) -> ProcessKey {
        ProcessKey {
            pid,
            start_ticks: 100,
        }
    }

    #[test]
    fn reads_are_due_once_per_interval_per_qemu() {
        let t0 = Instant::now();
        let minute = Some(Duration::from_secs(60));
        let after = |secs| t0 + Duration::from_secs(secs);
        let table = [
            (None, minute, false, t0, true, "first read of a QEMU"),
            (
                Some((key(1), t0)),
                minute,
                false,
                after(59),
                false,
                "inside the interval",
            ),
            (
                Some((key(1), t0)),
                minute,
                false,
                after(60),
                true,
                "interval passed",
            ),
            (
                Some((key(1), t0)),
                minute,
                true,
                after(600),
                false,
                "a read still runs",
            ),
            (
                Some((key(2), t0)),
                minute,
                false,
                after(1),
                true,
                "a new QEMU is read at once",
            ),
            (None, None, false, t0, false, "reads are off"),
        ];
        for (started, interval, busy, now, want, why) in table {
            assert_eq!(due(started, key(1), now, interval, busy), want, "{why}");
        }
    }

    #[test]
    fn inline_read_of_a_missing_process_reports_no_reading() {
        let root = tempfile::tempdir().unwrap();
        let config = GuestMemoryConfig {
            interval: Some(Duration::from_secs(60)),
            background: false,
        };
        let mut sampler = GuestSampler::new(config, root.path().to_owned());
        let sample = sampler.sample(key(7), &Arc::new(GuestMemory::default()));
        assert_eq!(sample.reading, None);
        assert!(!sampler.in_flight.load(Ordering::Acquire));
    }

    #[test]
    fn inline_read_measures_a_captured_qemu() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("7");
        std::fs::create_dir(&dir).unwrap();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qemu/");
        std::fs::copy(format!("{fixtures}prealloc-256m.smaps"), dir.join("smaps")).unwrap();
        let cmdline = std::fs::read(format!("{fixtures}prealloc-256m.cmdline")).unwrap();
        let memory = Arc::new(GuestMemory::from_args(crate::proc::parse::args(&cmdline)));
        let config = GuestMemoryConfig {
            interval: Some(Duration::from_secs(60)),
            background: false,
        };
        let mut sampler = GuestSampler::new(config, root.path().to_owned());
        let reading = sampler.sample(key(7), &memory).reading.expect("a reading");
        assert_eq!(reading.resident.resident, 256 << 20);
        assert_eq!(reading.key, key(7));
        assert!(reading.unix_seconds > 1.0e9);
    }
}
