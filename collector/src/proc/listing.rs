//! Directory listings under a process: the open-fd count of `fd/` and the thread ids of `task/`,
//! through directory fds kept open like the files' (`files.rs`).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;

use super::{ReadError, Reader, files, root_fd};

// === impl Reader ===

impl Reader {
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
                return count_fds(fd.as_fd(), self.procfs, &mut self.dirents);
            }
            if let Some(entry) = self.fds.get_mut(pid) {
                entry.fd_dir = Some(fd);
            }
        }
        let Some(fd) = self.fds.get(pid).and_then(|e| e.fd_dir.as_ref()) else {
            return Err(Errno::NOENT);
        };
        count_fds(fd.as_fd(), self.procfs, &mut self.dirents)
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
        let before = entry.thread_fds();
        entry
            .threads
            .retain(|tid, _| out.binary_search(tid).is_ok());
        let closed = before - entry.thread_fds();
        self.fds.released(closed);
        Ok(())
    }
}

/// Open fds of a process from its `fd/` directory.
fn count_fds(
    fd: BorrowedFd<'_>,
    procfs: bool,
    dirents: &mut [MaybeUninit<u8>],
) -> Result<u64, Errno> {
    if procfs {
        // Linux 6.2+: the size of `fd/` is the count, computed at `fstat` time.
        let size = rustix::fs::fstat(fd)?.st_size;
        if size > 0 {
            return Ok(size.unsigned_abs());
        }
    }
    files::count_entries(fd, dirents)
}
