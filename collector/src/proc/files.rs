//! File descriptors kept open across collections, so reading a procfs file costs one `pread`.
//!
//! procfs regenerates `stat`, `status`, `io` and `smaps_rollup` on every read at offset 0 (seq_file
//! resets its iterator there), so an fd opened once serves every later collection: one syscall per
//! file instead of openat + read + close, and no path walk. The open is also the expensive half in
//! the kernel (a dentry walk per path component and a seq_file allocation). An fd stays bound to
//! the process it was opened for: once that process is reaped its reads fail with ESRCH and lookups
//! under its directory with ENOENT, even if the pid is reused, which is how a new process behind
//! an old pid is noticed.
//!
//! A fixture tree is not procfs: a deleted file stays readable through an open fd. There the cache
//! is emptied at every listing, so each collection opens each file once, as before.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use rustix::io::Errno;

/// Never keep more than this many fds, whatever `RLIMIT_NOFILE` allows.
const MAX_CACHED_FDS: u64 = 4096;

/// The files of one process that are read at every collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFile {
    Stat,
    Status,
    Io,
    SmapsRollup,
}

/// Open fds per pid, bounded by a budget derived from `RLIMIT_NOFILE`.
#[derive(Debug)]
pub struct FdCache {
    pids: HashMap<i32, PidFds>,
    open: u64,
    budget: u64,
}

/// `/proc/<pid>` and what was opened under it.
#[derive(Debug)]
pub struct PidFds {
    pub dir: OwnedFd,
    files: PidFiles,
    /// `fd/`, whose size is the open-fd count (Linux 6.2+), and `task/`.
    pub fd_dir: Option<OwnedFd>,
    pub task_dir: Option<OwnedFd>,
    /// `task/<tid>/stat` and `task/<tid>/schedstat` by tid.
    pub threads: HashMap<i32, ThreadFds>,
}

/// The kept fd of each `PidFile`.
#[derive(Debug, Default)]
struct PidFiles {
    stat: Option<OwnedFd>,
    status: Option<OwnedFd>,
    io: Option<OwnedFd>,
    smaps_rollup: Option<OwnedFd>,
}

/// The kept fd of each `ThreadFile` of one thread.
#[derive(Debug, Default)]
pub struct ThreadFds {
    stat: Option<OwnedFd>,
    schedstat: Option<OwnedFd>,
}

/// The files of one thread that are read at every collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadFile {
    Stat,
    Schedstat,
}

// === impl ThreadFile ===

impl ThreadFile {
    /// The part of the path after `<tid>`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Stat => "/stat",
            Self::Schedstat => "/schedstat",
        }
    }
}

// === impl PidFile ===

impl PidFile {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stat => "stat",
            Self::Status => "status",
            Self::Io => "io",
            Self::SmapsRollup => "smaps_rollup",
        }
    }
}

// === impl FdCache ===

impl FdCache {
    pub fn new() -> Self {
        // Half the soft limit: the rest is for connections and the runtime.
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(MAX_CACHED_FDS);
        Self {
            pids: HashMap::new(),
            open: 0,
            budget: (soft / 2).min(MAX_CACHED_FDS),
        }
    }

    #[cfg(test)]
    pub fn with_budget(budget: u64) -> Self {
        Self {
            budget,
            ..Self::new()
        }
    }

    pub fn get(&self, pid: i32) -> Option<&PidFds> {
        self.pids.get(&pid)
    }

    pub fn get_mut(&mut self, pid: i32) -> Option<&mut PidFds> {
        self.pids.get_mut(&pid)
    }

    /// The entry of `pid`, opening `/proc/<pid>` under `root` when there is none.
    pub fn entry(&mut self, root: BorrowedFd<'_>, pid: i32) -> Result<&mut PidFds, Errno> {
        use std::collections::hash_map::Entry;
        match self.pids.entry(pid) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let dir = open_dir(root, Digits::default().format(pid))?;
                self.open += 1;
                Ok(entry.insert(PidFds {
                    dir,
                    files: PidFiles::default(),
                    fd_dir: None,
                    task_dir: None,
                    threads: HashMap::new(),
                }))
            }
        }
    }

    /// Closes everything of `pid`: it exited, or its pid now names another process.
    pub fn forget(&mut self, pid: i32) {
        if let Some(fds) = self.pids.remove(&pid) {
            self.open = self.open.saturating_sub(fds.count());
        }
    }

    /// Keeps only the pids in `live` (sorted).
    pub fn retain(&mut self, live: &[i32]) {
        let mut closed = 0;
        self.pids.retain(|pid, fds| {
            let keep = live.binary_search(pid).is_ok();
            if !keep {
                closed += fds.count();
            }
            keep
        });
        self.open = self.open.saturating_sub(closed);
    }

    pub fn clear(&mut self) {
        self.pids.clear();
        self.open = 0;
    }

    /// Whether one more fd may be kept; counts it if so.
    pub fn admit(&mut self) -> bool {
        let room = self.open < self.budget;
        self.open += u64::from(room);
        room
    }

    /// Forgets `n` fds that were closed by their owner.
    pub fn released(&mut self, n: u64) {
        self.open = self.open.saturating_sub(n);
    }
}

// === impl PidFds ===

impl PidFds {
    pub fn file(&self, file: PidFile) -> Option<BorrowedFd<'_>> {
        self.files.slot(file).as_ref().map(AsFd::as_fd)
    }

    pub fn set_file(&mut self, file: PidFile, fd: OwnedFd) {
        *self.files.slot_mut(file) = Some(fd);
    }

    fn count(&self) -> u64 {
        let f = &self.files;
        let files = [&f.stat, &f.status, &f.io, &f.smaps_rollup]
            .into_iter()
            .flatten()
            .count() as u64;
        let dirs = u64::from(self.fd_dir.is_some()) + u64::from(self.task_dir.is_some());
        1 + files + dirs + self.thread_fds()
    }

    /// Fds kept for threads.
    pub fn thread_fds(&self) -> u64 {
        self.threads.values().map(ThreadFds::count).sum()
    }
}

// === impl PidFiles ===

impl PidFiles {
    fn slot(&self, file: PidFile) -> &Option<OwnedFd> {
        match file {
            PidFile::Stat => &self.stat,
            PidFile::Status => &self.status,
            PidFile::Io => &self.io,
            PidFile::SmapsRollup => &self.smaps_rollup,
        }
    }

    fn slot_mut(&mut self, file: PidFile) -> &mut Option<OwnedFd> {
        match file {
            PidFile::Stat => &mut self.stat,
            PidFile::Status => &mut self.status,
            PidFile::Io => &mut self.io,
            PidFile::SmapsRollup => &mut self.smaps_rollup,
        }
    }
}

// === impl ThreadFds ===

impl ThreadFds {
    pub fn slot_mut(&mut self, file: ThreadFile) -> &mut Option<OwnedFd> {
        match file {
            ThreadFile::Stat => &mut self.stat,
            ThreadFile::Schedstat => &mut self.schedstat,
        }
    }

    fn count(&self) -> u64 {
        u64::from(self.stat.is_some()) + u64::from(self.schedstat.is_some())
    }
}

pub fn open_file<P: rustix::path::Arg>(dir: BorrowedFd<'_>, name: P) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

pub fn open_dir<P: rustix::path::Arg>(dir: BorrowedFd<'_>, name: P) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty())
}

/// Reads all of `fd` from offset 0 into `buf`, growing it when a read fills it; returns the length.
/// `buf` keeps its length (its bytes past the result are stale), so no read clears memory.
///
/// procfs builds `stat`, `status` and `io` in one go (`single_open`), so a read that does not fill
/// the buffer has returned all of it; the same holds for regular files.
pub fn read_all(fd: BorrowedFd<'_>, buf: &mut Vec<u8>, min: usize) -> Result<usize, Errno> {
    if buf.len() < min {
        buf.resize(min, 0);
    }
    let mut len = 0;
    loop {
        let space = buf.get_mut(len..).unwrap_or_default();
        let offered = space.len();
        match rustix::io::pread(fd, space, len as u64) {
            Ok(n) => {
                len += n;
                if n < offered {
                    return Ok(len);
                }
                // Filled the buffer: there may be more (a long cmdline). Grow and go on.
                buf.resize(buf.len() * 2, 0);
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Numeric entries of the directory `fd`, appended to `out`, read with `getdents64` into `buf`.
pub fn list_numeric(
    fd: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
    out: &mut Vec<i32>,
) -> Result<(), Errno> {
    rustix::fs::seek(fd, SeekFrom::Start(0))?;
    let mut dir = RawDir::new(fd, buf);
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if let Some(n) = super::parse::number(name).and_then(|n| i32::try_from(n).ok()) {
            out.push(n);
        }
    }
    Ok(())
}

/// Entries of the directory `fd` other than `.` and `..`.
pub fn count_entries(fd: BorrowedFd<'_>, buf: &mut [MaybeUninit<u8>]) -> Result<u64, Errno> {
    rustix::fs::seek(fd, SeekFrom::Start(0))?;
    let mut dir = RawDir::new(fd, buf);
    let mut n = 0;
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        n += u64::from(name != b"." && name != b"..");
    }
    Ok(n)
}

/// Errors that mean the fd's process is gone (reaped, or its pid reused).
pub fn is_stale(e: Errno) -> bool {
    e == Errno::SRCH || e == Errno::NOENT
}

/// `parts` joined in `buf`, as a `&str`; they are short ASCII (digits and file names).
pub fn join<'a>(buf: &'a mut [u8; 32], parts: &[&str]) -> &'a str {
    let mut n = 0;
    for part in parts {
        if let Some(dst) = buf.get_mut(n..n + part.len()) {
            dst.copy_from_slice(part.as_bytes());
            n += part.len();
        }
    }
    std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default()
}

/// Formats an integer without allocating.
#[derive(Default)]
pub struct Digits([u8; 12]);

impl Digits {
    pub fn format(&mut self, n: i32) -> &str {
        let mut n = n.unsigned_abs();
        let mut at = self.0.len();
        loop {
            at -= 1;
            self.0[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        std::str::from_utf8(&self.0[at..]).unwrap_or("0")
    }
}
