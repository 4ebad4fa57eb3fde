//! A real QEMU (Debian's `qemu-system-x86`) in a fake launcher pod, started the way libvirt starts
//! it for KubeVirt: argv[0] `/usr/libexec/qemu-kvm`, `-name guest=<namespace>_<vm>,debug-threads=on`,
//! boot RAM as a JSON `memory-backend-ram` object, `-m size=...k`, two vCPUs. KVM when `/dev/kvm`
//! can be opened, TCG otherwise; both name vCPU threads `CPU <n>/KVM|TCG`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::pod::FakePod;
use crate::process::{Guarded, wait_for};

/// argv[0] of QEMU in KubeVirt's launcher image.
pub const QEMU_ARGV0: &str = "/usr/libexec/qemu-kvm";

/// Debian's binary.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// How long QEMU may take to start and preallocate a small guest.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the guest is given and does.
#[derive(Clone, Debug)]
pub struct Guest {
    pub namespace: String,
    pub vm: String,
    pub memory_mib: u64,
    /// Touch all guest RAM at start (`"prealloc":true`).
    pub prealloc: bool,
    /// Boot a sector that spins forever (`jmp $`), so the vCPU burns CPU; else stay paused (`-S`).
    pub spin: bool,
}

/// A running QEMU in a fake pod.
#[derive(Debug)]
pub struct Qemu {
    pub pid: u32,
    pub argv: Vec<String>,
    _guard: Guarded,
}

// === impl Guest ===

impl Guest {
    /// QEMU's command line, argv[0] included; `boot_disk` only matters when `spin` is set.
    pub fn argv(&self, boot_disk: &Path) -> Vec<String> {
        let bytes = self.memory_mib << 20;
        let mut argv: Vec<String> = [
            QEMU_ARGV0,
            "-name",
            &format!("guest={}_{},debug-threads=on", self.namespace, self.vm),
            "-machine",
            "q35,usb=off,dump-guest-core=off,memory-backend=pc.ram",
            "-accel",
            accel(),
            "-m",
            &format!("size={}k", bytes >> 10),
            "-object",
            &format!(
                r#"{{"qom-type":"memory-backend-ram","id":"pc.ram","size":{bytes}{}}}"#,
                if self.prealloc {
                    r#","prealloc":true"#
                } else {
                    ""
                }
            ),
            "-smp",
            "2,sockets=1,dies=1,cores=2,threads=1",
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-monitor",
            "none",
            "-serial",
            "none",
        ]
        .map(String::from)
        .to_vec();
        if self.spin {
            argv.push("-drive".into());
            argv.push(format!(
                "file={},format=raw,if=ide,snapshot=on",
                boot_disk.display()
            ));
        } else {
            argv.push("-S".into());
        }
        argv
    }

    /// Starts QEMU as root inside `pod` and waits until its vCPU threads exist (and, with
    /// `prealloc`, until its RSS holds all guest RAM).
    pub fn start(&self, pod: &FakePod) -> Result<Qemu> {
        let disk = write_spin_disk(pod.dir())?;
        let argv = self.argv(&disk);
        let mut command = pod.command(None);
        command
            .args(["bash", "-c", r#"exec -a "$0" "$@""#])
            .arg(QEMU_ARGV0)
            .arg(QEMU_BINARY)
            .args(argv.iter().skip(1));
        let (guard, pid) = pod.spawn_command("qemu", command, QEMU_ARGV0)?;
        let want_rss = if self.prealloc {
            self.memory_mib << 20
        } else {
            0
        };
        wait_for("QEMU's vCPUs and guest RAM", START_TIMEOUT, || {
            let vcpus = vcpu_threads(pid)?;
            let rss = crate::hostproc::status_bytes(pid, "VmRSS")?;
            Ok((vcpus == 2 && rss >= want_rss).then_some(()))
        })?;
        Ok(Qemu {
            pid,
            argv,
            _guard: guard,
        })
    }
}

/// `kvm` where this process may open `/dev/kvm`, else `tcg`.
pub fn accel() -> &'static str {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if usable { "kvm" } else { "tcg" }
}

/// Threads named `CPU <n>/KVM` or `CPU <n>/TCG`.
pub fn vcpu_threads(pid: u32) -> Result<usize> {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let comm = std::fs::read_to_string(task?.path().join("comm")).unwrap_or_default();
        n += usize::from(comm.starts_with("CPU ") && comm.contains('/'));
    }
    Ok(n)
}

/// A 1 MiB disk whose boot sector is `jmp $`: the BIOS boots it and the vCPU spins forever.
fn write_spin_disk(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("spin.img");
    let mut disk = vec![0u8; 1 << 20];
    disk[..2].copy_from_slice(&[0xEB, 0xFE]);
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    std::fs::write(&path, disk).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
