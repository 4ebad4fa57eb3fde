//! What the test itself reads from the host's /proc, to cross-check the collector.

use anyhow::{Context as _, Result, bail};

/// One `/proc/<pid>/status` field in bytes (`VmRSS:  1234 kB`).
pub fn status_bytes(pid: u32, field: &str) -> Result<u64> {
    let kib: u64 = status_field(pid, field)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("/proc/{pid}/status {field} is not a number of kB"))?;
    Ok(kib * 1024)
}

/// One `/proc/<pid>/status` field, as written.
pub fn status_field(pid: u32, field: &str) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
        .with_context(|| format!("/proc/{pid}/status has no {field}"))
}

/// The number of threads (`/proc/<pid>/task` entries).
pub fn threads(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot list /proc/{pid}/task"))?
        .count())
}

/// utime + stime of the whole process, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // comm may contain spaces and parentheses: the fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("/proc/{pid}/stat is too short");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// argv of a process, empty for kernel threads and zombies.
pub fn cmdline(pid: u32) -> Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
        .with_context(|| format!("cannot read /proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect())
}

/// PIDs whose parent is `parent`.
pub fn children(parent: u32) -> Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit while we look; it is then nobody's child.
        if status_field(pid, "PPid").is_ok_and(|ppid| ppid == parent.to_string()) {
            found.push(pid);
        }
    }
    Ok(found)
}
