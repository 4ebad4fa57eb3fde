//! A memory cgroup with a limit, as a container's `resources.limits.memory` makes one, for one
//! process under test: cgroup v2 where its memory controller is available, else v1's memory
//! hierarchy. It says how high the group's usage went and whether the kernel OOM-killed in it.
//! Dropping it moves any process still inside back to the hierarchy's root and removes it.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A test-owned memory cgroup `kmc-test-mem-<pid>-<n>`.
#[derive(Debug)]
pub struct MemoryCgroup {
    root: PathBuf,
    dir: PathBuf,
    v2: bool,
}

// === impl MemoryCgroup ===

impl MemoryCgroup {
    /// Creates the group with a hard limit of `limit_bytes`. Err where no memory controller can
    /// be used (not root, or no hierarchy with one).
    pub fn new(limit_bytes: u64) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kmc-test-mem-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (root, v2) =
            memory_hierarchy().context("no cgroup hierarchy with a memory controller")?;
        let dir = root.join(name);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let group = Self { root, dir, v2 };
        let limit = limit_bytes.to_string();
        match group.v2 {
            true => group.write("memory.max", &limit)?,
            false => {
                group.write("memory.limit_in_bytes", &limit)?;
                // What the process allocated before it entered moves with it, where the kernel
                // still can (Linux 6.8 dropped it): it is small next to what is measured.
                let _ = group.write("memory.move_charge_at_immigrate", "3");
            }
        }
        Ok(group)
    }

    /// Moves process `pid` into the group.
    pub fn enter(&self, pid: u32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The most memory the group used at once, page cache included, in bytes.
    pub fn peak(&self) -> Result<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        let text = self.read(file)?;
        text.trim()
            .parse()
            .with_context(|| format!("{file}: {text}"))
    }

    /// How many processes the kernel OOM-killed in the group.
    pub fn oom_kills(&self) -> Result<u64> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = self.read(file)?;
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .with_context(|| format!("no oom_kill in {file}: {text}"))?;
        count
            .trim()
            .parse()
            .with_context(|| format!("{file}: {text}"))
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .with_context(|| format!("cannot write {value} to {}", path.display()))
    }

    fn read(&self, file: &str) -> Result<String> {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let pids = self.read("cgroup.procs").unwrap_or_default();
        for pid in pids.lines() {
            let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The root of a hierarchy whose memory controller can be used, and whether it is cgroup v2: the
/// cgroup2 mount if its root enables `memory` for its children, else v1's `memory` mount.
fn memory_hierarchy() -> Option<(PathBuf, bool)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut v1 = None;
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        let options = fields.next().unwrap_or_default();
        let target = PathBuf::from(target);
        match fstype {
            "cgroup2" if enables_memory(&target) => return Some((target, true)),
            "cgroup" if options.split(',').any(|o| o == "memory") => v1 = Some((target, false)),
            _ => {}
        }
    }
    v1
}

fn enables_memory(root: &Path) -> bool {
    std::fs::read_to_string(root.join("cgroup.subtree_control"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
}

/// Bytes of a Kubernetes memory quantity as the manifests write them: `128Mi`, `1Gi`, `512Ki`,
/// or plain bytes.
pub fn quantity_bytes(quantity: &str) -> Result<u64> {
    let units = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return Ok(number.parse::<u64>()? * factor);
        }
    }
    match quantity.parse() {
        Ok(bytes) => Ok(bytes),
        Err(_) => bail!("not a memory quantity: {quantity}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quantities_as_the_manifests_write_them() {
        assert_eq!(quantity_bytes("128Mi").unwrap(), 128 << 20);
        assert_eq!(quantity_bytes("512Ki").unwrap(), 512 << 10);
        assert_eq!(quantity_bytes("1000").unwrap(), 1000);
        assert!(quantity_bytes("1G").is_err());
    }
}
