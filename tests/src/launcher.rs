//! The processes of a virt-launcher pod, as KubeVirt starts them (docs/kubevirt.md §1), for the fake pod.

use crate::pod::ProcessSpec;

/// The uid every launcher process runs as in KubeVirt's default non-root mode.
pub const QEMU_UID: u32 = 107;

/// QEMU's command line as libvirt writes it, shortened; `-name` carries the domain.
pub fn qemu_argv(namespace: &str, vm: &str) -> Vec<String> {
    [
        "/usr/libexec/qemu-kvm",
        "-name",
        &format!("guest={namespace}_{vm},debug-threads=on"),
        "-S",
        "-machine",
        "pc-q35-rhel9.6.0,usb=off,dump-guest-core=off",
        "-smp",
        "2,sockets=1,dies=1,cores=1,threads=2",
        "-m",
        "size=131072k",
        "-no-shutdown",
    ]
    .map(String::from)
    .to_vec()
}

/// QEMU's threads in the benchmark pod besides those of [`core_processes`]: two more vCPUs, more
/// I/O threads, display workers and a pool of 15 `worker`s.
const QEMU_BENCH_THREADS: [&str; 21] = [
    "CPU 2/KVM",
    "CPU 3/KVM",
    "IO iothread2",
    "IO mon_iothread",
    "vnc_worker",
    "SPICE Worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
    "worker",
];

/// The five processes of every launcher pod. QEMU has two vCPUs that burn a little CPU, an I/O
/// thread and workers, and touches 64 MiB; virtlogd burns a little too, so a restart of it has a
/// CPU counter worth keeping.
pub fn core_processes(namespace: &str, vm: &str, uid: Option<u32>) -> Vec<ProcessSpec> {
    let qemu_argv = qemu_argv(namespace, vm);
    let qemu_argv: Vec<&str> = qemu_argv.iter().map(String::as_str).collect();
    vec![
        ProcessSpec::new("virt-launcher-monitor", &["/usr/bin/virt-launcher-monitor"])
            .threads(&["virt-launcher-m"; 4]),
        ProcessSpec::new(
            "virt-launcher",
            &[
                "/usr/bin/virt-launcher",
                "--qemu-timeout",
                "240s",
                "--name",
                vm,
            ],
        )
        .threads(&["virt-launcher"; 8])
        .mem_mib(8),
        ProcessSpec::new(
            "virtqemud",
            &[
                "/usr/sbin/virtqemud",
                "-f",
                "/var/run/libvirt/virtqemud.conf",
            ],
        )
        .threads(&[
            "rpc-virtqemud",
            "rpc-worker",
            "rpc-worker",
            "prio-rpc-worker",
        ]),
        ProcessSpec::new(
            "virtlogd",
            &["/usr/sbin/virtlogd", "-f", "/etc/libvirt/virtlogd.conf"],
        )
        .burn(&["main"]),
        ProcessSpec::new("qemu", &qemu_argv)
            .threads(&["CPU 0/KVM", "CPU 1/KVM", "IO iothread1", "worker", "worker"])
            .burn(&["CPU 0/KVM", "CPU 1/KVM"])
            .mem_mib(64),
    ]
    .into_iter()
    .map(|spec| spec.uid(uid))
    .collect()
}

/// Ten processes and about 100 threads: the pod size the README's measured costs are stated for.
pub fn bench_processes(namespace: &str, vm: &str) -> Vec<ProcessSpec> {
    let mut specs = core_processes(namespace, vm, None);
    for spec in &mut specs {
        // Nothing burns in the benchmark: the exporters' own CPU is what is measured.
        spec.burn.clear();
        let extra: &[&str] = match spec.key.as_str() {
            "virt-launcher-monitor" => &["virt-launcher-m"; 4],
            "virt-launcher" => &["virt-launcher"; 14],
            "virtqemud" => &["rpc-worker"; 16],
            "qemu" => &QEMU_BENCH_THREADS,
            _ => &[],
        };
        spec.threads.extend(extra.iter().map(|t| (*t).to_owned()));
    }
    specs.extend([
        ProcessSpec::new(
            "swtpm",
            &[
                "swtpm",
                "socket",
                "--tpmstate",
                "dir=/var/lib/libvirt/swtpm",
                "--tpm2",
            ],
        ),
        ProcessSpec::new(
            "passt",
            &["/usr/bin/passt.avx2", "--one-off", "--foreground"],
        ),
        ProcessSpec::new(
            "virtiofsd",
            &[
                "/usr/libexec/virtiofsd",
                "--socket-path=/var/run/kubevirt/virtiofs.sock",
            ],
        )
        .threads(&["virtiofsd"; 7]),
        virt_tail(),
        ProcessSpec::new(
            "container-disk",
            &[
                "/usr/bin/container-disk",
                "--copy-path",
                "/var/run/kubevirt-ephemeral-disks/disk",
            ],
        ),
    ]);
    specs
}

/// virt-tail, which copies the serial console's log to the compute container's output, with its
/// seven threads.
pub fn virt_tail() -> ProcessSpec {
    ProcessSpec::new(
        "virt-tail",
        &[
            "/usr/bin/virt-tail",
            "--logfile",
            "/var/run/kubevirt-private/console.log",
        ],
    )
    .threads(&["virt-tail"; 7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_pod_is_ten_processes_and_about_a_hundred_threads() {
        let specs = bench_processes("ns", "vm");
        assert_eq!(specs.len(), 10);
        let threads: usize = specs.iter().map(ProcessSpec::thread_count).sum();
        assert!((95..=105).contains(&threads), "{threads}");
    }

    #[test]
    fn qemu_names_its_domain() {
        assert!(qemu_argv("ns", "vm").contains(&"guest=ns_vm,debug-threads=on".to_owned()));
    }
}
