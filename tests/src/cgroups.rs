//! Real cgroups named as the kubelet names pods' (systemd driver, cgroup v2), under a test-owned
//! subtree `kmc-test-<pid>-<n>` of the machine's cgroup2 mount, for the node collector's tests.
//! Dropping the tree moves any process still inside back to the mount's root and removes it.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A test-owned subtree of a cgroup2 hierarchy.
#[derive(Debug)]
pub struct CgroupTree {
    mount: PathBuf,
    root: PathBuf,
    /// Leaf scopes, in creation order.
    scopes: Vec<PathBuf>,
}

// === impl CgroupTree ===

impl CgroupTree {
    /// Creates the subtree under the first writable cgroup2 mount (`/sys/fs/cgroup` on a
    /// cgroup-v2 host, `/sys/fs/cgroup/unified` on a hybrid one). Err if there is none.
    pub fn new() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mount = cgroup2_mount().context("no cgroup2 mount in /proc/self/mounts")?;
        let name = format!(
            "kmc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let root = mount.join(name);
        std::fs::create_dir(&root)
            .with_context(|| format!("cannot create {} (not root?)", root.display()))?;
        Ok(Self {
            mount,
            root,
            scopes: Vec::new(),
        })
    }

    /// Creates the burstable pod `uid`'s container scope `cri-containerd-<container>.scope` and
    /// returns it: `<tree>/kubepods.slice/kubepods-burstable.slice/
    /// kubepods-burstable-pod<uid, `-` as `_`>.slice/cri-containerd-<container>.scope`.
    pub fn pod_scope(&mut self, uid: &str, container: &str) -> Result<PathBuf> {
        let scope = self
            .root
            .join("kubepods.slice")
            .join("kubepods-burstable.slice")
            .join(format!(
                "kubepods-burstable-pod{}.slice",
                uid.replace('-', "_")
            ))
            .join(format!("cri-containerd-{container}.scope"));
        std::fs::create_dir_all(&scope)
            .with_context(|| format!("cannot create {}", scope.display()))?;
        self.scopes.push(scope.clone());
        Ok(scope)
    }

    /// Moves process `pid` (all its threads) into `scope`.
    pub fn enter(scope: &Path, pid: u32) -> Result<()> {
        std::fs::write(scope.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("cannot move {pid} into {}", scope.display()))
    }

    /// The cgroup path the kernel shows for `pid`, checked to be `scope`.
    pub fn check_member(&self, scope: &Path, pid: u32) -> Result<()> {
        let file = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let relative = scope.strip_prefix(&self.mount)?;
        let want = format!("0::/{}", relative.display());
        if !file.lines().any(|l| l == want) {
            bail!("{pid} is not in {want}: {file}");
        }
        Ok(())
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        let back = self.mount.join("cgroup.procs");
        for scope in &self.scopes {
            let pids = std::fs::read_to_string(scope.join("cgroup.procs")).unwrap_or_default();
            for pid in pids.lines() {
                let _ = std::fs::write(&back, pid);
            }
        }
        // Deepest first: a cgroup is removed with rmdir once it has no children and no processes.
        let mut dirs: Vec<PathBuf> = Vec::new();
        collect_dirs(&self.root, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(&dir);
        }
        let _ = std::fs::remove_dir(&self.root);
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            collect_dirs(&path, out);
            out.push(path);
        }
    }
}

/// The mount point of the first cgroup2 filesystem.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(target))
    })
}
