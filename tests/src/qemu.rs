//! A real QEMU (Debian's `qemu-system-x86`) in a fake launcher pod, started the way libvirt starts
//! it for KubeVirt: argv[0] `/usr/libexec/qemu-kvm`, `-name guest=<namespace>_<vm>,debug-threads=on`,
//! boot RAM as a JSON `memory-backend-ram` object, `-m size=...k`, two vCPUs. KVM when `/dev/kvm`
//! can be opened, TCG otherwise; both name vCPU threads `CPU <n>/KVM|TCG`. Boot RAM may instead be
//! given as a bare `-m`, and room left to hot-plug memory over QMP ([`crate::qmp`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::pod::FakePod;
use crate::process::{Guarded, wait_for};
use crate::qmp::Qmp;

/// argv[0] of QEMU in KubeVirt's launcher image.
pub const QEMU_ARGV0: &str = "/usr/libexec/qemu-kvm";

/// Debian's binary.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// The boot disk's name in the pod's directory.
const SPIN_DISK: &str = "spin.img";

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
    pub boot: BootRam,
    /// Room for this much hot-plugged RAM (`-m ...,slots=2,maxmem=...`) and a QMP socket in the
    /// pod's directory ([`Qemu::qmp`]).
    pub hotplug_mib: Option<u64>,
}

/// How the command line gives boot RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootRam {
    /// As libvirt does: a `memory-backend-ram` named by `-machine memory-backend=`.
    Backend,
    /// A bare `-m` (with `-mem-prealloc` for `prealloc`): QEMU allocates boot RAM itself.
    Legacy,
}

/// A running QEMU in a fake pod.
#[derive(Debug)]
pub struct Qemu {
    pub pid: u32,
    pub argv: Vec<String>,
    /// Its QMP socket, when started with room to hot-plug.
    pub qmp: Option<PathBuf>,
    _guard: Guarded,
}

// === impl Guest ===

impl Guest {
    /// QEMU's command line, argv[0] included. Its files live in `dir`: the boot disk (used only
    /// when `spin` is set) and the QMP socket (only with `hotplug_mib`).
    pub fn argv(&self, dir: &Path) -> Vec<String> {
        let mut argv: Vec<String> = [
            QEMU_ARGV0,
            "-name",
            &format!("guest={}_{},debug-threads=on", self.namespace, self.vm),
        ]
        .map(String::from)
        .to_vec();
        argv.extend(self.memory_args());
        argv.extend(
            [
                "-accel",
                accel(),
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
            .map(String::from),
        );
        if self.hotplug_mib.is_some() {
            argv.push("-qmp".into());
            argv.push(format!(
                "unix:{},server=on,wait=off",
                qmp_socket(dir).display()
            ));
        }
        if self.spin {
            argv.push("-drive".into());
            argv.push(format!(
                "file={},format=raw,if=ide,snapshot=on",
                dir.join(SPIN_DISK).display()
            ));
        } else {
            argv.push("-S".into());
        }
        argv
    }

    /// `-machine`, `-m` and what else boot RAM takes.
    fn memory_args(&self) -> Vec<String> {
        let bytes = self.memory_mib << 20;
        let slots = self.hotplug_mib.map_or_else(String::new, |mib| {
            format!(",slots=2,maxmem={}M", self.memory_mib + mib)
        });
        match self.boot {
            BootRam::Backend => vec![
                "-machine".into(),
                "q35,usb=off,dump-guest-core=off,memory-backend=pc.ram".into(),
                "-m".into(),
                format!("size={}k{slots}", bytes >> 10),
                "-object".into(),
                format!(
                    r#"{{"qom-type":"memory-backend-ram","id":"pc.ram","size":{bytes}{}}}"#,
                    if self.prealloc {
                        r#","prealloc":true"#
                    } else {
                        ""
                    }
                ),
            ],
            BootRam::Legacy => {
                let mut args = vec![
                    "-machine".into(),
                    "q35,usb=off,dump-guest-core=off".into(),
                    "-m".into(),
                    format!("{}{slots}", self.memory_mib),
                ];
                if self.prealloc {
                    args.push("-mem-prealloc".into());
                }
                args
            }
        }
    }

    /// Starts QEMU as root inside `pod` and waits until its vCPU threads exist (and, with
    /// `prealloc`, until its RSS holds all guest RAM).
    pub fn start(&self, pod: &FakePod) -> Result<Qemu> {
        write_spin_disk(pod.dir())?;
        let argv = self.argv(pod.dir());
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
            qmp: self.hotplug_mib.map(|_| qmp_socket(pod.dir())),
            _guard: guard,
        })
    }
}

// === impl Qemu ===

impl Qemu {
    /// A QMP session; QEMU listens from before its vCPUs start.
    pub fn qmp(&self) -> Result<Qmp> {
        let socket = self
            .qmp
            .as_deref()
            .context("QEMU was started without room to hot-plug, so without QMP")?;
        Qmp::connect(socket)
    }
}

/// The QMP socket of a QEMU whose files live in `dir`.
fn qmp_socket(dir: &Path) -> PathBuf {
    dir.join("qmp.sock")
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
    let path = dir.join(SPIN_DISK);
    let mut disk = vec![0u8; 1 << 20];
    disk[..2].copy_from_slice(&[0xEB, 0xFE]);
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    std::fs::write(&path, disk).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
