//! Tries each path it is given, as whatever user runs it, and prints one line per path: `yes <path>`
//! when it could (a directory listed, a Unix socket connected, a file's first byte read), `no
//! <path>` otherwise. The node agents' reach test runs it under `setpriv` as each agent's user.
//!
//! A socket is connected through `/proc/self/fd/N` of an `O_PATH` descriptor, as the relay does:
//! a kubelet path is longer than `sun_path` allows. Opening it needs search permission on every
//! directory above; connecting needs write permission on the socket.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;

use rustix::fs::{Mode, OFlags};

fn main() {
    for path in std::env::args().skip(1) {
        let reached = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(&path).is_ok(),
            Ok(meta) if meta.file_type().is_socket() => connect(&path),
            Ok(_) => std::fs::File::open(&path)
                .and_then(|mut file| file.read(&mut [0u8; 1]))
                .is_ok(),
            Err(_) => false,
        };
        println!("{} {path}", if reached { "yes" } else { "no" });
    }
}

fn connect(path: &str) -> bool {
    let Ok(socket) = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    UnixStream::connect(format!("/proc/self/fd/{}", socket.as_raw_fd())).is_ok()
}
