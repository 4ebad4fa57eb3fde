//! The only module that reads `/proc` (or a fixture tree standing in for it).
//!
//! `ProcRoot` is a value so tests point it at a directory of fixture files. `Reader` owns the
//! buffers that every read reuses, so a collection does not allocate per file, and keeps the fds
//! of procfs files open between collections (`files.rs`), so a read is one `pread`.

pub mod parse;

mod error;
mod files;
mod listing;

use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use error::parse_reason;
pub use error::{ErrorCounts, ErrorKind, ReadError};
use files::{Digits, FdCache, PidFile, ThreadFile, join};
pub use parse::{Io, Stat, Status};

/// Big enough for any `stat`, `status` or `io` file in one read.
const MIN_READ_BUFFER: usize = 4096;

/// Largest read buffer kept between reads. A command line can be 2 MiB (`ARG_MAX`), and the node
/// collector has a reader per pod: keeping each one's largest read would be 110 times that.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// `getdents64` buffer: a pid namespace's `/proc` or a process's `task/` in one or two calls.
const DIRENT_BUFFER: usize = 8192;

/// `statfs` type of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Root of a proc filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcRoot {
    path: PathBuf,
}

/// A process's identity: pids are reused, (pid, start time) is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub pid: i32,
    pub start_ticks: u64,
}

/// Reads files under a `ProcRoot` into reused buffers, keeping procfs fds open (see `files`).
#[derive(Debug)]
pub struct Reader {
    root: ProcRoot,
    /// The root directory, opened once; `None` until it could be opened.
    root_dir: Option<OwnedFd>,
    /// A real procfs: fds may be kept, and `fd/` reports the open-fd count as its size.
    procfs: bool,
    fds: FdCache,
    buf: Vec<u8>,
    /// Bytes of `buf` the last read filled.
    len: usize,
    dirents: Vec<MaybeUninit<u8>>,
}

// === impl ProcRoot ===

impl ProcRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

// === impl Reader ===

impl Reader {
    pub fn new(root: ProcRoot) -> Self {
        let root_dir = files::open_dir(rustix::fs::CWD, root.path.as_path()).ok();
        let procfs = root_dir.as_ref().is_some_and(is_procfs);
        Self {
            root,
            root_dir,
            procfs,
            fds: FdCache::new(),
            buf: vec![0; MIN_READ_BUFFER],
            len: 0,
            dirents: vec![MaybeUninit::uninit(); DIRENT_BUFFER],
        }
    }

    pub fn root(&self) -> &ProcRoot {
        &self.root
    }

    /// Numeric entries of the root, into `out` (cleared first, sorted). Closes the fds of every
    /// pid not listed.
    pub fn pids(&mut self, out: &mut Vec<i32>) -> io::Result<()> {
        out.clear();
        self.ensure_root()?;
        let root = root_fd(&self.root_dir)?;
        files::list_numeric(root, &mut self.dirents, out).map_err(io::Error::from)?;
        out.sort_unstable();
        if self.procfs {
            self.fds.retain(out);
        } else {
            self.fds.clear();
        }
        Ok(())
    }

    /// Closes the fds of every pid not in `live` (sorted), for callers that list pids themselves.
    pub fn retain(&mut self, live: &[i32]) {
        self.fds.retain(live);
    }

    /// Our own pid as the proc root sees it (`<root>/self`), if it has one.
    pub fn self_pid(&self) -> Option<i32> {
        let target = fs::read_link(self.root.path.join("self")).ok()?;
        target.file_name()?.to_str()?.parse().ok()
    }

    /// Boot time from `<root>/stat`, seconds since the epoch.
    pub fn boot_time(&mut self) -> Result<u64, ReadError> {
        self.read_path(&["stat"])?;
        parse::boot_time(self.bytes())
            .ok_or_else(|| self.parse_error(None, &["stat"], "no btime line"))
    }

    /// `<root>/sys/kernel/hostname`, the fallback for the `host` label.
    pub fn hostname(&mut self) -> Option<String> {
        self.read_path(&["sys", "kernel", "hostname"]).ok()?;
        let name = String::from_utf8_lossy(self.bytes().trim_ascii()).into_owned();
        (!name.is_empty()).then_some(name)
    }

    /// `<pid>/stat`, or `<pid>/task/<tid>/stat` when `tid` is given.
    pub fn stat(&mut self, pid: i32, tid: Option<i32>) -> Result<Stat<'_>, ReadError> {
        let read = match tid {
            None => self.read_pid_file(pid, PidFile::Stat),
            Some(tid) => self.read_thread_file(pid, tid, ThreadFile::Stat).map(drop),
        };
        if let Err(errno) = read {
            return Err(self.io_error(pid, tid, "stat", errno));
        }
        match parse::stat(self.bytes()) {
            Ok(stat) => Ok(stat),
            Err(error) => Err(self.parse_error_at(pid, tid, parse_reason(error))),
        }
    }

    /// Nanoseconds thread `tid` has run (`task/<tid>/schedstat`), and whether this is the first
    /// read of this thread through a kept fd: only then can an unchanged value be trusted to mean
    /// the same thread did not run. `None` when the kernel keeps no run times (zeros).
    pub fn thread_runtime(&mut self, pid: i32, tid: i32) -> Result<(Option<u64>, bool), ReadError> {
        let fresh = self
            .read_thread_file(pid, tid, ThreadFile::Schedstat)
            .map_err(|e| self.io_error(pid, Some(tid), "schedstat", e))?;
        Ok((parse::schedstat(self.bytes()), fresh))
    }

    pub fn status(&mut self, pid: i32) -> Result<Status, ReadError> {
        self.read_pid_file(pid, PidFile::Status)
            .map_err(|e| self.io_error(pid, None, "status", e))?;
        Ok(parse::status(self.bytes()))
    }

    pub fn io(&mut self, pid: i32) -> Result<Io, ReadError> {
        self.read_pid_file(pid, PidFile::Io)
            .map_err(|e| self.io_error(pid, None, "io", e))?;
        Ok(parse::io(self.bytes()))
    }

    /// Proportional set size; takes the target's mm lock, so only behind `--pss`.
    pub fn pss(&mut self, pid: i32) -> Result<u64, ReadError> {
        self.read_pid_file(pid, PidFile::SmapsRollup)
            .map_err(|e| self.io_error(pid, None, "smaps_rollup", e))?;
        parse::pss(self.bytes())
            .ok_or_else(|| self.parse_error(Some(pid), &["smaps_rollup"], "no Pss line"))
    }

    /// `<pid>/cmdline`; the bytes stay valid until the next read. Read once per process, so the
    /// fd is not kept.
    pub fn cmdline(&mut self, pid: i32) -> Result<&[u8], ReadError> {
        if self.buf.capacity() > MAX_KEPT_BUFFER {
            self.buf = vec![0; MIN_READ_BUFFER];
        }
        let read = self.ensure_root().and_then(|()| {
            let dir = self.fds.entry(root_fd(&self.root_dir)?, pid)?;
            let fd = files::open_file(dir.dir.as_fd(), "cmdline")?;
            files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER)
        });
        match read {
            Ok(len) => {
                self.len = len;
                Ok(self.bytes())
            }
            Err(e) => Err(self.io_error(pid, None, "cmdline", e)),
        }
    }

    /// Reads a per-process file into `buf` through its kept fd, opening (and keeping) it if needed.
    /// A kept fd that reports its process gone is dropped with everything of that pid, and `stat`
    /// is retried once through a fresh open: the pid may now name a new process.
    fn read_pid_file(&mut self, pid: i32, file: PidFile) -> Result<(), Errno> {
        if self.buf.capacity() > MAX_KEPT_BUFFER {
            self.buf = vec![0; MIN_READ_BUFFER];
        }
        self.ensure_root()?;
        if let Some(fd) = self.fds.get(pid).and_then(|e| e.file(file)) {
            match files::read_all(fd, &mut self.buf, MIN_READ_BUFFER) {
                Ok(len) => {
                    self.len = len;
                    return Ok(());
                }
                Err(e) if files::is_stale(e) => {
                    self.fds.forget(pid);
                    if file != PidFile::Stat {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let entry = self.fds.entry(root_fd(&self.root_dir)?, pid)?;
        let fd = files::open_file(entry.dir.as_fd(), file.name())?;
        self.len = files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER)?;
        if self.fds.admit()
            && let Some(entry) = self.fds.get_mut(pid)
        {
            entry.set_file(file, fd);
        }
        Ok(())
    }

    /// Reads a file of thread `tid` into `buf`, through its kept fd or a new one. Returns whether
    /// the fd is new: a kept one proves the thread is the one read before.
    fn read_thread_file(&mut self, pid: i32, tid: i32, file: ThreadFile) -> Result<bool, Errno> {
        let Some(entry) = self.fds.get_mut(pid) else {
            return Err(Errno::NOENT);
        };
        let slot = entry.threads.get_mut(&tid).map(|f| f.slot_mut(file));
        if let Some(kept) = slot
            && let Some(fd) = kept.as_ref()
        {
            match files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER) {
                Ok(len) => {
                    self.len = len;
                    return Ok(false);
                }
                // The thread exited; a new one may have its tid. Reopen below.
                Err(e) if files::is_stale(e) => {
                    *kept = None;
                    self.fds.released(1);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(entry) = self.fds.get_mut(pid) else {
            return Err(Errno::NOENT);
        };
        let mut digits = Digits::default();
        let mut name = [0u8; 32];
        let fd = match &entry.task_dir {
            Some(task) => files::open_file(
                task.as_fd(),
                join(&mut name, &["", digits.format(tid), file.suffix()]),
            ),
            None => files::open_file(
                entry.dir.as_fd(),
                join(&mut name, &["task/", digits.format(tid), file.suffix()]),
            ),
        }?;
        self.len = files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER)?;
        if self.fds.admit()
            && let Some(entry) = self.fds.get_mut(pid)
        {
            *entry.threads.entry(tid).or_default().slot_mut(file) = Some(fd);
        }
        Ok(true)
    }

    /// Reads `<root>/<parts...>` without keeping anything open.
    fn read_path(&mut self, parts: &[&str]) -> Result<(), ReadError> {
        let path = self.path_of(None, parts);
        let read = files::open_file(rustix::fs::CWD, path.as_path())
            .and_then(|fd| files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER));
        match read {
            Ok(len) => {
                self.len = len;
                Ok(())
            }
            Err(e) => Err(ReadError::from_io(&path, e.into())),
        }
    }

    /// Opens the root directory if it is not open yet (it did not exist at start).
    fn ensure_root(&mut self) -> Result<(), Errno> {
        if self.root_dir.is_none() {
            self.root_dir = Some(files::open_dir(rustix::fs::CWD, self.root.path.as_path())?);
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

#[allow(
    clippy::useless_conversion,
    reason = "`f_type` is i64 on x86_64 but a narrower type on other targets"
)]
fn is_procfs(dir: &OwnedFd) -> bool {
    rustix::fs::fstatfs(dir).is_ok_and(|s| i64::from(s.f_type) == PROC_SUPER_MAGIC)
}

fn root_fd(root: &Option<OwnedFd>) -> Result<BorrowedFd<'_>, Errno> {
    root.as_ref().map(AsFd::as_fd).ok_or(Errno::NOENT)
}

#[cfg(test)]
mod tests;
