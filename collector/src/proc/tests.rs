//! Reader tests against fixture trees and the real `/proc`.

use super::error::ESRCH;
use super::*;
use std::process::{Command, Stdio};

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

/// CPU ticks (utime + stime) of this process.
fn cpu_ticks(reader: &mut Reader, pid: i32) -> u64 {
    let stat = reader.stat(pid, None).unwrap();
    stat.utime + stat.stime
}

#[test]
fn a_kept_fd_reads_fresh_values_every_time() {
    let mut reader = Reader::new(ProcRoot::new("/proc"));
    assert!(reader.procfs);
    let me = std::process::id() as i32;
    let before = cpu_ticks(&mut reader, me);
    assert!(
        reader
            .fds
            .get(me)
            .and_then(|e| e.file(PidFile::Stat))
            .is_some()
    );
    // Burn ~100 ms of CPU, 10 ticks at 100 Hz: the same fd must show it.
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < std::time::Duration::from_millis(100) {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    assert!(cpu_ticks(&mut reader, me) > before);
}

#[test]
fn a_reaped_process_is_vanished_through_its_kept_fds() {
    let mut child = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut reader = Reader::new(ProcRoot::new("/proc"));
    let start = reader.stat(pid, None).unwrap().start_ticks;
    assert!(start > 0);
    reader.status(pid).unwrap();
    let mut tids = Vec::new();
    reader.tids(pid, &mut tids).unwrap();
    assert_eq!(tids, vec![pid]);
    reader.stat(pid, Some(pid)).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reader.status(pid).unwrap_err().kind(), ErrorKind::Vanished);
    assert!(reader.fds.get(pid).is_none(), "stale fds are closed");
    assert_eq!(
        reader.stat(pid, None).unwrap_err().kind(),
        ErrorKind::Vanished
    );
    assert_eq!(
        reader.stat(pid, Some(pid)).unwrap_err().kind(),
        ErrorKind::Vanished
    );
}

#[test]
fn without_fd_budget_nothing_is_kept_and_everything_reads() {
    let mut reader = Reader::new(ProcRoot::new("/proc"));
    reader.fds = FdCache::with_budget(0);
    let me = std::process::id() as i32;
    for _ in 0..2 {
        assert!(reader.stat(me, None).unwrap().num_threads >= 1);
        assert!(reader.status(me).unwrap().vm_rss.unwrap() > 0);
        assert!(reader.fd_count(me).unwrap() >= 3);
        let mut tids = Vec::new();
        reader.tids(me, &mut tids).unwrap();
        assert!(tids.contains(&me));
        assert!(reader.stat(me, Some(me)).unwrap().start_ticks > 0);
    }
    let entry = reader.fds.get(me).unwrap();
    assert!(entry.file(PidFile::Stat).is_none());
    assert!(entry.task_dir.is_none() && entry.fd_dir.is_none());
}

#[test]
fn a_fixture_tree_is_reread_after_each_listing() {
    // A deleted fixture file stays readable through an open fd; the reader must not keep it.
    let dir = tempfile::tempdir().unwrap();
    let pid_dir = dir.path().join("7");
    std::fs::create_dir(&pid_dir).unwrap();
    std::fs::write(pid_dir.join("io"), "read_bytes: 5\n").unwrap();
    let mut reader = Reader::new(ProcRoot::new(dir.path()));
    assert!(!reader.procfs);
    let mut pids = Vec::new();
    reader.pids(&mut pids).unwrap();
    assert_eq!(pids, vec![7]);
    assert_eq!(reader.io(7).unwrap().read_bytes, Some(5));
    std::fs::remove_dir_all(&pid_dir).unwrap();
    std::fs::create_dir(&pid_dir).unwrap();
    std::fs::write(pid_dir.join("io"), "read_bytes: 9\n").unwrap();
    reader.pids(&mut pids).unwrap();
    assert_eq!(reader.io(7).unwrap().read_bytes, Some(9));
}

/// Polls `/proc/<pid>/task/<tid>/stat` until the thread is in an interruptible sleep (`S`).
fn wait_until_sleeping(pid: i32, tid: i32) {
    let path = format!("/proc/{pid}/task/{tid}/stat");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stat = fs::read_to_string(&path).unwrap();
        // The state follows the command name, which is in parentheses and may contain spaces.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('S') {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} not sleeping after 5 s: state {state:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn thread_runtime_stays_while_a_thread_sleeps_and_grows_while_it_runs() {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let link = fs::read_link("/proc/thread-self").unwrap();
        let tid: i32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        tid_tx.send(tid).unwrap();
        go_rx.recv().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        tid_tx.send(tid).unwrap();
        go_rx.recv().unwrap();
    });
    let tid = tid_rx.recv().unwrap();
    let me = std::process::id() as i32;
    // Blocked in `recv`, so its run time is settled.
    wait_until_sleeping(me, tid);
    let mut reader = Reader::new(ProcRoot::new("/proc"));
    let mut tids = Vec::new();
    reader.tids(me, &mut tids).unwrap();
    assert!(tids.contains(&tid));
    let (first, fresh) = reader.thread_runtime(me, tid).unwrap();
    assert!(fresh, "the first read opens the fd");
    assert!(first.unwrap() > 0);
    // The subject: time passes while the thread sleeps, and its run time must not move.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(reader.thread_runtime(me, tid).unwrap(), (first, false));
    go_tx.send(()).unwrap();
    tid_rx.recv().unwrap();
    // Back in `recv`: the kernel has accounted the spin.
    wait_until_sleeping(me, tid);
    let (after, fresh) = reader.thread_runtime(me, tid).unwrap();
    assert!(!fresh);
    assert!(
        // 30 ms of wall-clock spinning is at least 1 ms of CPU even on a loaded machine.
        after.unwrap() >= first.unwrap() + 1_000_000,
        "{after:?} vs {first:?}"
    );
    go_tx.send(()).unwrap();
    worker.join().unwrap();
    // `join` returns once the thread has stopped running; the kernel releases its task entry just
    // after that.
    let task = format!("/proc/{me}/task/{tid}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Path::new(&task).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{task} still there 5 s after join"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Gone: the kept fd says so, and so does a fresh open.
    let gone = reader.thread_runtime(me, tid).unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::Vanished);
}
