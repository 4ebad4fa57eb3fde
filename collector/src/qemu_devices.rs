//! What of the VM KubeVirt's overhead estimate depends on, from QEMU's own command line: the vCPU
//! count, whether a display device is attached, whether a TPM is. No I/O.
//!
//! libvirt writes vCPUs as `-smp N[,maxcpus=M,sockets=...]` (N are the vCPUs online at start, what
//! KubeVirt counts), the video device KubeVirt adds unless `autoattachGraphicsDevice` is false as a
//! `-device` of one of the display drivers below, and an emulated TPM as `-tpmdev emulator,...`.
//! Devices come in QEMU's two syntaxes, as in `guest_memory`.

use crate::guest_memory::Fields;

/// QEMU device drivers that are a guest display: KubeVirt's video term pays for one of them.
const DISPLAY_DRIVERS: [&str; 9] = [
    "VGA",
    "bochs-display",
    "virtio-vga",
    "virtio-gpu-pci",
    "virtio-gpu-device",
    "ramfb",
    "cirrus-vga",
    "qxl-vga",
    "secondary-vga",
];

/// The VM's devices that KubeVirt's estimate has a term for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QemuDevices {
    /// vCPUs online at start; `None` when `-smp` is absent or unreadable.
    pub vcpus: Option<u32>,
    pub video: bool,
    pub tpm: bool,
}

// === impl QemuDevices ===

impl QemuDevices {
    /// Reads `-smp`, `-device`, `-vga` and `-tpmdev` of a QEMU argv; every other argument is
    /// ignored.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut devices = Self::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if !matches!(flag, b"-smp" | b"-device" | b"-vga" | b"-tpmdev") {
                continue;
            }
            let Some(value) = args.next().and_then(|v| std::str::from_utf8(v).ok()) else {
                continue;
            };
            match flag {
                b"-smp" => devices.vcpus = vcpus(value).or(devices.vcpus),
                b"-vga" => devices.video |= value != "none",
                b"-tpmdev" => devices.tpm = true,
                _ => devices.video |= is_display(value),
            }
        }
        devices
    }
}

/// `-smp N,...` or `-smp cpus=N,...`; without a count, the product of the topology's factors.
fn vcpus(value: &str) -> Option<u32> {
    let fields = Fields::parse(value, "cpus")?;
    let number = |key: &str| fields.get(key).and_then(|v| v.parse::<u32>().ok());
    if let Some(cpus) = number("cpus").filter(|&n| n > 0) {
        return Some(cpus);
    }
    let factors = ["sockets", "dies", "clusters", "cores", "threads"].map(number);
    factors.iter().any(Option::is_some).then(|| {
        factors
            .iter()
            .map(|f| f.unwrap_or(1))
            .fold(1u32, u32::saturating_mul)
    })
}

fn is_display(value: &str) -> bool {
    Fields::parse(value, "driver")
        .and_then(|f| f.get("driver").map(|d| DISPLAY_DRIVERS.contains(&d)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(args: &[&str]) -> QemuDevices {
        QemuDevices::from_args(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn vcpus_come_from_smp_in_every_form_libvirt_writes() {
        let table: [(&[&str], Option<u32>); 9] = [
            (&["-smp", "4,sockets=4,dies=1,cores=1,threads=1"], Some(4)),
            (
                &["-smp", "2,maxcpus=8,sockets=8,cores=1,threads=1"],
                Some(2),
            ),
            (&["-smp", "cpus=3"], Some(3)),
            (&["-smp", "sockets=2,cores=2,threads=2"], Some(8)),
            (&["-smp", "1"], Some(1)),
            (&["-smp", "lots"], None),
            (&["-smp"], None),
            (&["-m", "1024"], None),
            (&["-smp", "0,sockets=1,cores=3"], Some(3)),
        ];
        for (args, want) in table {
            assert_eq!(read(args).vcpus, want, "{args:?}");
        }
    }

    #[test]
    fn a_display_device_in_either_syntax_is_video() {
        let table: [(&[&str], bool); 8] = [
            (
                &[
                    "-device",
                    r#"{"driver":"VGA","id":"video0","vgamem_mb":16,"bus":"pcie.0","addr":"0x1"}"#,
                ],
                true,
            ),
            (&["-device", "bochs-display,id=video0,bus=pcie.0"], true),
            (
                &["-device", r#"{"driver":"virtio-gpu-pci","id":"video0"}"#],
                true,
            ),
            (&["-vga", "std"], true),
            (&["-vga", "none"], false),
            (
                &[
                    "-device",
                    r#"{"driver":"virtio-balloon-pci","id":"balloon0"}"#,
                ],
                false,
            ),
            (&["-device", "usb-tablet,id=input0"], false),
            (&["-device", "{broken"], false),
        ];
        for (args, want) in table {
            assert_eq!(read(args).video, want, "{args:?}");
        }
    }

    #[test]
    fn an_emulated_tpm_is_a_tpmdev() {
        assert!(
            read(&[
                "-tpmdev",
                r#"{"id":"tpm-tpm0","type":"emulator","chardev":"chrtpm"}"#
            ])
            .tpm
        );
        assert!(read(&["-tpmdev", "emulator,id=tpm-tpm0,chardev=chrtpm"]).tpm);
        assert!(!read(&["-chardev", "socket,id=chrtpm,path=/run/tpm.sock"]).tpm);
    }

    #[test]
    fn a_kubevirt_like_command_line_reads_whole() {
        let args = [
            "/usr/libexec/qemu-kvm",
            "-name",
            "guest=default_vm-a,debug-threads=on",
            "-smp",
            "4,sockets=4,dies=1,clusters=1,cores=1,threads=1",
            "-device",
            r#"{"driver":"virtio-vga","id":"video0","max_outputs":1}"#,
            "-tpmdev",
            r#"{"id":"tpm-tpm0","type":"emulator","chardev":"chrtpm"}"#,
        ];
        assert_eq!(
            read(&args),
            QemuDevices {
                vcpus: Some(4),
                video: true,
                tpm: true
            }
        );
    }
}
