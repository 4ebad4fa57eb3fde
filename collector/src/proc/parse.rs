//! Bytes of `/proc` files -> plain structs. No I/O, no allocation, no panics on any input.
//!
//! Hand-written rather than procfs's `FromRead` impls: procfs-core 0.18's `Stat::from_read` panics on
//! truncated input such as `1 (a)` (it slices `buf[end_paren + 2..]` unchecked), and its `Status` parser
//! builds a `HashMap<String, String>` of every line on each call, which is the allocation storm a
//! per-scrape reader must avoid (measured in docs/design.md, "Hand-written, and why").

/// The fields of `/proc/<pid>/stat` (or `task/<tid>/stat`) that we export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat<'a> {
    /// `comm`, up to 15 bytes, may contain spaces and parentheses.
    pub comm: &'a [u8],
    /// Single-letter state; `Z` for zombies.
    pub state: u8,
    pub minor_faults: u64,
    pub major_faults: u64,
    /// CPU time in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub num_threads: u64,
    /// Start time in clock ticks after boot: with the pid, the identity of a process.
    pub start_ticks: u64,
}

/// The fields of `/proc/<pid>/status` that we export, in bytes; `None` when the line is absent
/// (zombies and kernel threads have no `Vm*` lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub vm_size: Option<u64>,
    pub vm_rss: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub vm_data: Option<u64>,
    pub vm_stk: Option<u64>,
    pub vm_swap: Option<u64>,
    /// Page tables (`VmPTE`).
    pub vm_pte: Option<u64>,
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
    /// A known line carried a value we could not parse; the other fields are still good.
    pub malformed: bool,
}

/// Storage bytes from `/proc/<pid>/io`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub malformed: bool,
}

/// Why a file could not be parsed. Carries no data: the caller knows which file it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no `(comm)` in stat")]
    NoComm,
    #[error("stat has too few fields")]
    TooFewFields,
    #[error("stat field is not a number")]
    BadNumber,
}

/// Parses `/proc/<pid>/stat`.
pub fn stat(buf: &[u8]) -> Result<Stat<'_>, ParseError> {
    // `comm` sits between the first `(` and the *last* `)`: it may itself contain `)`.
    let open = buf
        .iter()
        .position(|&b| b == b'(')
        .ok_or(ParseError::NoComm)?;
    let close = buf
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(ParseError::NoComm)?;
    let comm = buf.get(open + 1..close).ok_or(ParseError::NoComm)?;
    let rest = buf.get(close + 1..).unwrap_or_default();
    let mut fields = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = fields
        .next()
        .and_then(|f| f.first().copied())
        .ok_or(ParseError::TooFewFields)?;
    // Indices after `state`, as in proc(5) minus 3: minflt is field 10, utime 14, starttime 22.
    let mut numbers = [0u64; 19];
    for slot in &mut numbers {
        let field = fields.next().ok_or(ParseError::TooFewFields)?;
        // Some fields (priority, nice) may be negative; we never export those, so clamp to 0.
        *slot = if field.first() == Some(&b'-') {
            0
        } else {
            number(field).ok_or(ParseError::BadNumber)?
        };
    }
    let [
        _ppid,
        _pgrp,
        _session,
        _tty,
        _tpgid,
        _flags,
        minflt,
        _cminflt,
        majflt,
        _cmajflt,
        utime,
        stime,
        _cutime,
        _cstime,
        _prio,
        _nice,
        num_threads,
        _itreal,
        start_ticks,
    ] = numbers;
    Ok(Stat {
        comm,
        state,
        minor_faults: minflt,
        major_faults: majflt,
        utime,
        stime,
        num_threads,
        start_ticks,
    })
}

/// Parses `/proc/<pid>/status`; unknown lines are ignored, a bad value only loses its own field.
pub fn status(buf: &[u8]) -> Status {
    let mut out = Status::default();
    // Only lines starting with these bytes matter; the rest (~45 of ~57) are skipped before any
    // work beyond finding their end.
    let wanted = |line: &&[u8]| matches!(line.first(), Some(b'V' | b'R' | b'v' | b'n'));
    for (key, value) in lines(buf).filter(wanted).filter_map(key_value) {
        let slot = match key {
            b"VmSize" => &mut out.vm_size,
            b"VmRSS" => &mut out.vm_rss,
            b"RssAnon" => &mut out.rss_anon,
            b"RssFile" => &mut out.rss_file,
            b"RssShmem" => &mut out.rss_shmem,
            b"VmData" => &mut out.vm_data,
            b"VmStk" => &mut out.vm_stk,
            b"VmSwap" => &mut out.vm_swap,
            b"VmPTE" => &mut out.vm_pte,
            b"voluntary_ctxt_switches" => &mut out.voluntary_ctxt_switches,
            b"nonvoluntary_ctxt_switches" => &mut out.nonvoluntary_ctxt_switches,
            _ => continue,
        };
        *slot = quantity(value);
        out.malformed |= slot.is_none();
    }
    out
}

/// Parses `/proc/<pid>/io`.
pub fn io(buf: &[u8]) -> Io {
    let mut out = Io::default();
    for (key, value) in key_values(buf) {
        let slot = match key {
            b"read_bytes" => &mut out.read_bytes,
            b"write_bytes" => &mut out.write_bytes,
            _ => continue,
        };
        *slot = quantity(value);
        out.malformed |= slot.is_none();
    }
    out
}

/// `Pss` of `/proc/<pid>/smaps_rollup`, in bytes.
pub fn pss(buf: &[u8]) -> Option<u64> {
    key_values(buf)
        .find(|(k, _)| *k == b"Pss")
        .and_then(|(_, v)| quantity(v))
}

/// Run time in nanoseconds, the first field of `task/<tid>/schedstat`; `None` when absent or 0
/// (a kernel without `CONFIG_SCHED_INFO` writes zeros).
pub fn schedstat(buf: &[u8]) -> Option<u64> {
    let first = buf.split(|b| b.is_ascii_whitespace()).next()?;
    number(first).filter(|&ns| ns > 0)
}

/// `btime` of `/proc/stat`: boot time, seconds since the epoch.
pub fn boot_time(buf: &[u8]) -> Option<u64> {
    buf.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"btime "))
        .and_then(|v| number(v.trim_ascii()))
}

/// The arguments of a `cmdline` file: NUL-separated, with an optional trailing NUL.
pub fn args(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    let trimmed = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    trimmed
        .split(|&b| b == 0)
        .filter(move |_| !cmdline.is_empty())
}

/// `key:   value` pairs of a status-like file.
fn key_values(buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    lines(buf).filter_map(key_value)
}

fn key_value(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (key, value) = line.split_at(colon);
    Some((key, value.get(1..).unwrap_or_default().trim_ascii()))
}

/// Lines of `buf`, found with a plain byte search (cheaper than `split` with a closure).
fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        Some(line)
    })
}

/// A decimal number, optionally followed by ` kB` (then multiplied to bytes).
fn quantity(value: &[u8]) -> Option<u64> {
    match value.strip_suffix(b" kB") {
        Some(kib) => number(kib.trim_ascii())?.checked_mul(1024),
        None => number(value),
    }
}

/// A non-empty run of ASCII digits that fits a u64.
pub(crate) fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const QEMU_STAT: &[u8] = b"4242 (qemu-kvm) S 1 4242 4242 0 -1 4194560 123456 0 78 0 1500 300 0 0 20 0 7 0 98765 4294967296 50000 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn reads_fields_of_a_real_stat_line() {
        let s = stat(QEMU_STAT).unwrap();
        assert_eq!(s.comm, b"qemu-kvm");
        assert_eq!(s.state, b'S');
        assert_eq!((s.minor_faults, s.major_faults), (123456, 78));
        assert_eq!((s.utime, s.stime), (1500, 300));
        assert_eq!(s.num_threads, 7);
        assert_eq!(s.start_ticks, 98765);
    }

    #[test]
    fn keeps_parentheses_and_spaces_inside_comm() {
        let line = b"7 (a) (b c) R 1 7 7 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 55 0 0";
        let s = stat(line).unwrap();
        assert_eq!(s.comm, b"a) (b c");
        assert_eq!((s.utime, s.stime, s.start_ticks), (3, 4, 55));
    }

    #[test]
    fn rejects_truncated_stat() {
        assert_eq!(stat(b"1 (a)"), Err(ParseError::TooFewFields));
        assert_eq!(stat(b"1 )x("), Err(ParseError::NoComm));
        assert_eq!(stat(b""), Err(ParseError::NoComm));
        assert_eq!(stat(b"1 (a) S 1 2 x"), Err(ParseError::BadNumber));
    }

    #[test]
    fn converts_status_kib_to_bytes_and_skips_bad_values() {
        let buf = b"Name:\tqemu-kvm\nVmSize:\t  2048 kB\nVmRSS:\t  lots kB\nRssAnon:\t 10 kB\nvoluntary_ctxt_switches:\t5\n";
        let s = status(buf);
        assert_eq!(s.vm_size, Some(2 * 1024 * 1024));
        assert_eq!(s.vm_rss, None);
        assert_eq!(s.rss_anon, Some(10 * 1024));
        assert_eq!(s.voluntary_ctxt_switches, Some(5));
        assert!(s.malformed);
    }

    #[test]
    fn zombie_status_has_no_memory() {
        let s = status(b"Name:\tdefunct\nState:\tZ (zombie)\nThreads:\t1\n");
        assert_eq!(s, Status::default());
    }

    #[test]
    fn reads_io_storage_bytes() {
        let i = io(
            b"rchar: 9\nwchar: 8\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n",
        );
        assert_eq!(
            (i.read_bytes, i.write_bytes, i.malformed),
            (Some(4096), Some(8192), false)
        );
    }

    #[test]
    fn reads_boot_time_and_pss() {
        assert_eq!(
            boot_time(b"cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time(b"cpu 1\n"), None);
        assert_eq!(pss(b"Rss:  8 kB\nPss:   3 kB\n"), Some(3072));
    }

    #[test]
    fn reads_schedstat_run_time() {
        assert_eq!(schedstat(b"123456789 5000 42\n"), Some(123_456_789));
        assert_eq!(schedstat(b"0 0 0\n"), None);
        assert_eq!(schedstat(b""), None);
        assert_eq!(schedstat(b"x 1 2"), None);
    }

    #[test]
    fn splits_cmdline_arguments() {
        let got: Vec<&[u8]> = args(b"/usr/libexec/qemu-kvm\0-name\0guest=ns_vm\0").collect();
        assert_eq!(
            got,
            vec![&b"/usr/libexec/qemu-kvm"[..], b"-name", b"guest=ns_vm"]
        );
        assert_eq!(args(b"").count(), 0);
    }

    #[test]
    fn number_rejects_overflow_and_junk() {
        assert_eq!(number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(number(b"18446744073709551616"), None);
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b""), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = stat(&buf);
            let _ = status(&buf);
            let _ = io(&buf);
            let _ = pss(&buf);
            let _ = boot_time(&buf);
            let _ = schedstat(&buf);
            let _ = args(&buf).count();
        }

        #[test]
        fn stat_never_panics_on_near_valid_lines(
            comm in "[ -~]{0,20}",
            tail in proptest::collection::vec("-?[0-9]{0,21}", 0..30),
        ) {
            let line = format!("12 ({comm}) S {}", tail.join(" "));
            let _ = stat(line.as_bytes());
        }
    }
}
