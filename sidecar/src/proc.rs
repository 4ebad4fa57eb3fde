//! The only module that reads `/proc` (or a fixture tree standing in for it).
//!
//! `ProcRoot` is a value so tests point it at a directory of fixture files. `Reader` owns the
//! buffers that every read reuses, so a collection does not allocate per file.

pub mod parse;

mod files;

use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use files::{FdCache, PidFile};
pub use parse::{Io, Stat, Status};

/// Big enough for any `stat`, `status` or `io` file in one read.
const MIN_READ_BUFFER: usize = 4096;

/// `getdents64` buffer: a pid namespace's `/proc` or a process's `task/` in one or two calls.
const DIRENT_BUFFER: usize = 8192;

/// `statfs` type of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// `ESRCH`: reading a `/proc/<pid>` file whose process exited after `open`.
const ESRCH: i32 = 3;

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

/// Why one read failed; every variant is counted by its `kind`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The process exited between listing the root and reading its files. Routine; log at debug.
    #[error("process exited before {} could be read", path.display())]
    Vanished { path: PathBuf },
    /// `io`, `fd/` and `smaps_rollup` need ptrace-read access to the target.
    #[error("permission denied reading {}", path.display())]
    Permission { path: PathBuf },
    #[error("malformed {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: &'static str },
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The label value of `kube_metrics_collector_read_errors_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Vanished,
    Permission,
    Parse,
    Io,
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

// === impl ReadError ===

impl ReadError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Vanished { .. } => ErrorKind::Vanished,
            Self::Permission { .. } => ErrorKind::Permission,
            Self::Parse { .. } => ErrorKind::Parse,
            Self::Io { .. } => ErrorKind::Io,
        }
    }

    /// Maps an I/O error on a `/proc/<pid>` path to the kind we count it as.
    pub fn from_io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => Self::Vanished { path },
            io::ErrorKind::PermissionDenied => Self::Permission { path },
            _ if source.raw_os_error() == Some(ESRCH) => Self::Vanished { path },
            _ => Self::Io { path, source },
        }
    }
}

// === impl ErrorKind ===

impl ErrorKind {
    pub const ALL: [ErrorKind; 4] = [Self::Vanished, Self::Permission, Self::Parse, Self::Io];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vanished => "vanished",
            Self::Permission => "permission",
            Self::Parse => "parse",
            Self::Io => "io",
        }
    }
}

// === impl Reader ===

impl Reader {
    pub fn new(root: ProcRoot) -> Self {
        let root_dir = files::open_dir(rustix::fs::CWD, root.path.as_path()).ok();
        let procfs = root_dir.as_ref().is_some_and(|fd| {
            rustix::fs::fstatfs(fd).is_ok_and(|s| i64::from(s.f_type) == PROC_SUPER_MAGIC)
        });
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
            Some(tid) => self.read_thread_stat(pid, tid),
        };
        if let Err(errno) = read {
            return Err(self.io_error(pid, tid, "stat", errno));
        }
        match parse::stat(self.bytes()) {
            Ok(stat) => Ok(stat),
            Err(error) => Err(self.parse_error_at(pid, tid, parse_reason(error))),
        }
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

    /// Number of open fds of `pid`.
    pub fn fd_count(&mut self, pid: i32) -> Result<u64, ReadError> {
        self.fd_count_inner(pid)
            .map_err(|e| self.io_error(pid, None, "fd", e))
    }

    fn fd_count_inner(&mut self, pid: i32) -> Result<u64, Errno> {
        self.ensure_root()?;
        let entry = self.fds.entry(root_fd(&self.root_dir)?, pid)?;
        if entry.fd_dir.is_none() {
            let fd = files::open_dir(entry.dir.as_fd(), "fd")?;
            if !self.fds.admit() {
                // No room to keep it: count through this one fd.
                return self.count_fds(fd.as_fd());
            }
            if let Some(entry) = self.fds.get_mut(pid) {
                entry.fd_dir = Some(fd);
            }
        }
        let Some(fd) = self.fds.get_mut(pid).and_then(|e| e.fd_dir.as_ref()) else {
            return Err(Errno::NOENT);
        };
        let fd = fd.as_fd();
        if self.procfs {
            // Linux 6.2+: the size of `fd/` is the count, computed at `fstat` time.
            let size = rustix::fs::fstat(fd)?.st_size;
            if size > 0 {
                return Ok(size.unsigned_abs());
            }
        }
        files::count_entries(fd, &mut self.dirents)
    }

    fn count_fds(&mut self, fd: BorrowedFd<'_>) -> Result<u64, Errno> {
        if self.procfs {
            let size = rustix::fs::fstat(fd)?.st_size;
            if size > 0 {
                return Ok(size.unsigned_abs());
            }
        }
        files::count_entries(fd, &mut self.dirents)
    }

    /// Thread ids of `pid`, into `out` (cleared first). Closes the fds of threads not listed.
    pub fn tids(&mut self, pid: i32, out: &mut Vec<i32>) -> Result<(), ReadError> {
        out.clear();
        self.tids_inner(pid, out)
            .map_err(|e| self.io_error(pid, None, "task", e))
    }

    fn tids_inner(&mut self, pid: i32, out: &mut Vec<i32>) -> Result<(), Errno> {
        self.ensure_root()?;
        let entry = self.fds.entry(root_fd(&self.root_dir)?, pid)?;
        if entry.task_dir.is_none() {
            let fd = files::open_dir(entry.dir.as_fd(), "task")?;
            if !self.fds.admit() {
                // No room to keep it; `read_thread_stat` then opens `task/<tid>/stat` by path.
                files::list_numeric(fd.as_fd(), &mut self.dirents, out)?;
                out.sort_unstable();
                return Ok(());
            }
            if let Some(entry) = self.fds.get_mut(pid) {
                entry.task_dir = Some(fd);
            }
        }
        let Some(entry) = self.fds.get_mut(pid) else {
            return Err(Errno::NOENT);
        };
        let Some(task) = entry.task_dir.as_ref() else {
            return Err(Errno::NOENT);
        };
        files::list_numeric(task.as_fd(), &mut self.dirents, out)?;
        out.sort_unstable();
        let before = entry.threads.len();
        entry
            .threads
            .retain(|tid, _| out.binary_search(tid).is_ok());
        let closed = before - entry.threads.len();
        self.fds.released(closed as u64);
        Ok(())
    }

    /// Reads a per-process file into `buf` through its kept fd, opening (and keeping) it if needed.
    /// A kept fd that reports its process gone is dropped with everything of that pid, and `stat`
    /// is retried once through a fresh open: the pid may now name a new process.
    fn read_pid_file(&mut self, pid: i32, file: PidFile) -> Result<(), Errno> {
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

    fn read_thread_stat(&mut self, pid: i32, tid: i32) -> Result<(), Errno> {
        let Some(entry) = self.fds.get_mut(pid) else {
            return Err(Errno::NOENT);
        };
        if let Some(fd) = entry.threads.get(&tid) {
            match files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER) {
                Ok(len) => {
                    self.len = len;
                    return Ok(());
                }
                // The thread exited; a new one may have its tid. Reopen below.
                Err(e) if files::is_stale(e) => {
                    entry.threads.remove(&tid);
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
                join(&mut name, &["", digits.format(tid), "/stat"]),
            ),
            None => files::open_file(
                entry.dir.as_fd(),
                join(&mut name, &["task/", digits.format(tid), "/stat"]),
            ),
        }?;
        self.len = files::read_all(fd.as_fd(), &mut self.buf, MIN_READ_BUFFER)?;
        if self.fds.admit()
            && let Some(entry) = self.fds.get_mut(pid)
        {
            entry.threads.insert(tid, fd);
        }
        Ok(())
    }

    /// Reads `<root>/<parts...>` without keeping anything open.
    fn read_path(&mut self, parts: &[&str]) -> Result<(), ReadError> {
        let path = self.path_of(None, parts);
        let read = files::open_file(rustix::fs::CWD, path.to_str().unwrap_or(""))
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

    /// `<root>/<pid>/<parts...>` (or `<root>/<parts...>`), built only for error messages.
    fn path_of(&self, pid: Option<i32>, parts: &[&str]) -> PathBuf {
        let mut path = self.root.path.clone();
        if let Some(pid) = pid {
            path.push(Digits::default().format(pid));
        }
        path.extend(parts);
        path
    }

    fn io_error(&self, pid: i32, tid: Option<i32>, file: &str, errno: Errno) -> ReadError {
        ReadError::from_io(&self.file_path(pid, tid, file), errno.into())
    }

    fn file_path(&self, pid: i32, tid: Option<i32>, file: &str) -> PathBuf {
        match tid {
            None => self.path_of(Some(pid), &[file]),
            Some(tid) => self.path_of(Some(pid), &["task", Digits::default().format(tid), file]),
        }
    }

    fn parse_error_at(&self, pid: i32, tid: Option<i32>, reason: &'static str) -> ReadError {
        ReadError::Parse {
            path: self.file_path(pid, tid, "stat"),
            reason,
        }
    }

    fn parse_error(&self, pid: Option<i32>, parts: &[&str], reason: &'static str) -> ReadError {
        ReadError::Parse {
            path: self.path_of(pid, parts),
            reason,
        }
    }
}

fn root_fd(root: &Option<OwnedFd>) -> Result<BorrowedFd<'_>, Errno> {
    root.as_ref().map(AsFd::as_fd).ok_or(Errno::NOENT)
}

/// `parts` joined in `buf`, as a `&str`; they are short ASCII (digits and file names).
fn join<'a>(buf: &'a mut [u8; 32], parts: &[&str]) -> &'a str {
    let mut n = 0;
    for part in parts {
        if let Some(dst) = buf.get_mut(n..n + part.len()) {
            dst.copy_from_slice(part.as_bytes());
            n += part.len();
        }
    }
    std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default()
}

fn parse_reason(error: parse::ParseError) -> &'static str {
    match error {
        parse::ParseError::NoComm => "no (comm)",
        parse::ParseError::TooFewFields => "too few fields",
        parse::ParseError::BadNumber => "field is not a number",
    }
}

/// Formats an integer without allocating.
#[derive(Default)]
struct Digits([u8; 12]);

impl Digits {
    fn format(&mut self, n: i32) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_io_errors_to_counted_kinds() {
        // EACCES cannot be produced with file modes when tests run as root, so the mapping is tested
        // directly: this is the whole decision the reader makes for a permission failure.
        let path = Path::new("/proc/1/io");
        let kind = |e| ReadError::from_io(path, e).kind();
        assert_eq!(
            kind(io::Error::from(io::ErrorKind::PermissionDenied)),
            ErrorKind::Permission
        );
        assert_eq!(
            kind(io::Error::from_raw_os_error(13)),
            ErrorKind::Permission
        ); // EACCES
        assert_eq!(kind(io::Error::from_raw_os_error(1)), ErrorKind::Permission); // EPERM
        assert_eq!(
            kind(io::Error::from(io::ErrorKind::NotFound)),
            ErrorKind::Vanished
        );
        assert_eq!(
            kind(io::Error::from_raw_os_error(ESRCH)),
            ErrorKind::Vanished
        );
        assert_eq!(kind(io::Error::from_raw_os_error(5)), ErrorKind::Io); // EIO
    }

    #[test]
    fn reads_files_longer_than_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let pid_dir = dir.path().join("7");
        std::fs::create_dir(&pid_dir).unwrap();
        let long: Vec<u8> = (0..3 * MIN_READ_BUFFER + 17)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        std::fs::write(pid_dir.join("cmdline"), &long).unwrap();
        std::fs::write(pid_dir.join("io"), "read_bytes: 5\n").unwrap();
        let mut reader = Reader::new(ProcRoot::new(dir.path()));
        assert_eq!(reader.cmdline(7).unwrap(), &long[..]);
        assert_eq!(reader.io(7).unwrap().read_bytes, Some(5));
        assert_eq!(reader.cmdline(7).unwrap().len(), long.len());
        assert_eq!(reader.cmdline(8).unwrap_err().kind(), ErrorKind::Vanished);
    }

    #[test]
    fn formats_digits_without_allocating() {
        let mut d = Digits::default();
        assert_eq!(d.format(0), "0");
        assert_eq!(Digits::default().format(4_194_304), "4194304");
        assert_eq!(Digits::default().format(i32::MAX), "2147483647");
    }

    #[test]
    fn reads_this_process_from_the_real_proc() {
        let mut reader = Reader::new(ProcRoot::new("/proc"));
        let me = reader.self_pid().unwrap();
        assert_eq!(me, std::process::id() as i32);
        let stat = reader.stat(me, None).unwrap();
        assert!(stat.start_ticks > 0);
        assert!(stat.num_threads >= 1);
        assert!(reader.fd_count(me).unwrap() >= 3);
        let status = reader.status(me).unwrap();
        assert!(status.vm_rss.unwrap() > 0);
        assert!(reader.boot_time().unwrap() > 1_000_000_000);
    }
}
