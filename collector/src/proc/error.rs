//! Why a read of `/proc` failed, and the kind it is counted as.

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::files::Digits;
use super::{Reader, parse};

/// `ESRCH`: reading a `/proc/<pid>` file whose process exited after `open`.
pub(super) const ESRCH: i32 = 3;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, enum_map::Enum)]
pub enum ErrorKind {
    Vanished,
    Permission,
    Parse,
    Io,
}

/// Read errors counted by kind.
pub type ErrorCounts = enum_map::EnumMap<ErrorKind, u64>;

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

/// Paths of failed reads, built only for error messages.
impl Reader {
    /// `<root>/<pid>/<parts...>` (or `<root>/<parts...>`), built only for error messages.
    pub(super) fn path_of(&self, pid: Option<i32>, parts: &[&str]) -> PathBuf {
        let mut path = self.root.path.clone();
        if let Some(pid) = pid {
            path.push(Digits::default().format(pid));
        }
        path.extend(parts);
        path
    }

    pub(super) fn io_error(
        &self,
        pid: i32,
        tid: Option<i32>,
        file: &str,
        errno: Errno,
    ) -> ReadError {
        ReadError::from_io(&self.file_path(pid, tid, file), errno.into())
    }

    pub(super) fn file_path(&self, pid: i32, tid: Option<i32>, file: &str) -> PathBuf {
        match tid {
            None => self.path_of(Some(pid), &[file]),
            Some(tid) => self.path_of(Some(pid), &["task", Digits::default().format(tid), file]),
        }
    }

    pub(super) fn parse_error_at(
        &self,
        pid: i32,
        tid: Option<i32>,
        reason: &'static str,
    ) -> ReadError {
        ReadError::Parse {
            path: self.file_path(pid, tid, "stat"),
            reason,
        }
    }

    pub(super) fn parse_error(
        &self,
        pid: Option<i32>,
        parts: &[&str],
        reason: &'static str,
    ) -> ReadError {
        ReadError::Parse {
            path: self.path_of(pid, parts),
            reason,
        }
    }
}

pub(super) fn parse_reason(error: parse::ParseError) -> &'static str {
    match error {
        parse::ParseError::NoComm => "no (comm)",
        parse::ParseError::TooFewFields => "too few fields",
        parse::ParseError::BadNumber => "field is not a number",
    }
}
